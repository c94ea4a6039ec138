"""``hwnas hw ...``: the accelerator side of codesign on the command line.

    hwnas hw cost --topology resnet18.csv --rows 32 --cols 32 --dataflow ws --json
    hwnas hw cost --onnx model.onnx --spec eyeriss.yaml --batch 4

Strings become :class:`hw_space.AcceleratorSpec` / :class:`hw_space.CostModel` here and nowhere else.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from hwnas.errors import CLIError

# used when neither --spec nor a flag sets a field: a mid-size 8-bit systolic array
DEFAULT_SPEC: dict[str, Any] = dict(rows=32, cols=32, rf_bytes=64, gbuf_bytes=256 * 1024, dataflow="ws",
                                    dram_bw=16.0, noc_bw=64.0, clock_mhz=500.0, precision_bits=8)
_FLAG_FIELDS = ("rows", "cols", "rf_bytes", "gbuf_bytes", "dataflow", "dram_bw", "noc_bw", "clock_mhz",
                "precision_bits", "voltage", "dram_tech", "dram_channels")  # last three: issue 19 physical


def build_spec(args: argparse.Namespace) -> Any:
    """The spec from ``--spec`` (or :data:`DEFAULT_SPEC`) with every given flag overriding its field."""
    from hw_space import AcceleratorSpec

    try:
        if args.spec:
            if not Path(args.spec).is_file():
                raise CLIError(f"--spec {args.spec}: no such file")
            spec = AcceleratorSpec.load(args.spec)
        else:
            spec = AcceleratorSpec(**DEFAULT_SPEC)
        overrides = {f: getattr(args, f) for f in _FLAG_FIELDS if getattr(args, f, None) is not None}
        overrides.update(_memory_overrides(args))
        return dataclasses.replace(spec, **overrides)
    except (ValueError, ImportError) as exc:
        raise CLIError(str(exc).splitlines()[0]) from None


def _memory_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """``--sram-kb I,F,O`` and ``--bandwidth-words N`` (issue 19) as spec fields; one-line ``CLIError``."""
    out: dict[str, Any] = {}
    text = getattr(args, "sram_kb", None)
    if text is not None:
        parts = [p.strip() for p in str(text).split(",")]
        if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
            raise CLIError(f"--sram-kb must be three positive KB sizes ifmap,filter,ofmap (e.g. 64,64,64), "
                           f"got {text!r}")
        out["sram_kb"] = tuple(int(p) for p in parts)
    if getattr(args, "bandwidth_words", None) is not None:
        out["bandwidth_words"] = args.bandwidth_words
    return out


def load_layers(args: argparse.Namespace) -> list[Any]:
    """Layers of ``--topology CSV`` or ``--onnx FILE``; one-line ``CLIError`` on bad input."""
    from hw_space import layers_from_onnx, read_topology_csv

    flag, path = ("--topology", args.topology) if args.topology else ("--onnx", args.onnx)
    if not Path(path).is_file():
        raise CLIError(f"{flag} {path}: no such file")
    try:
        layers = read_topology_csv(path) if args.topology else layers_from_onnx(path)
    except (ValueError, ImportError) as exc:
        raise CLIError(f"{flag} {path}: {str(exc).splitlines()[0]}") from None
    except Exception as exc:  # onnx parse errors have their own types
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CLIError(f"{flag} {path}: cannot read: {why}") from None
    if not layers:
        what = "no layers" if args.topology else "no Conv, Gemm or MatMul nodes"
        raise CLIError(f"{flag} {path}: {what} to cost")
    return layers


def _dram_text(s: dict[str, Any]) -> str:
    """DRAM as the spec sets it: ``N x tech`` channels (issue 19) or ``dram_bw`` bytes/cycle."""
    if s.get("dram_tech"):
        return f"{s['dram_channels']} x {s['dram_tech']}"
    return f"{s['dram_bw']:g} B/cyc"


def cost_report(spec: Any, layers: list[Any], batch: int) -> dict[str, Any]:
    """The ``--json`` document: ``{"layers": [...], "network": {...}, "spec": {...}}``."""
    from hw_space import ENERGY_PARTS, CostModel

    model = CostModel(spec, traffic=True)
    try:
        d = model.layers(layers, batch=batch)
    except ValueError as exc:
        raise CLIError(str(exc).splitlines()[0]) from None
    rows = []
    for i, name in enumerate(d["name"]):
        rows.append({
            "name": name, "kind": layers[i].kind, "macs": int(d["macs"][i]), "compute_cycles": int(d["compute_cycles"][i]),
            "total_cycles": int(d["total_cycles"][i]), "latency_ms": float(d["latency_ms"][i]),
            "energy_uj": float(d["energy_uj"][i]), "utilization": float(d["utilization"][i]),
            "dram_bytes": int(d["dram_bytes"][i]), "power_mw": float(d["power_mw"][i]),
            "energy_breakdown_uj": {p: float(d[f"energy_{p}_uj"][i]) for p in ENERGY_PARTS},
            "traffic": _traffic(d, i), "stall_cycles": int(d["stall_cycles"][i]),
        })
    return {"layers": rows, "network": model.network(layers, batch, per_layer=d), "spec": spec.to_dict()}


def _traffic(d: dict[str, Any], i: int) -> dict[str, dict[str, int]] | None:
    """Layer ``i``'s SCALE-Sim traffic in words, ``{"sram": {...}, "dram": {...}}``; ``None`` where
    SCALE-Sim has no model (the ``rs`` dataflow, memory-bound steps)."""
    if not bool(d["traffic_modelled"][i]):
        return None
    return {level: {f"{op}_{rw}": int(d[f"{level}_{op}_{rw}"][i])
                    for op, rw in (("ifmap", "reads"), ("filter", "reads"), ("ofmap", "writes"))}
            for level in ("sram", "dram")}


def _kwords(traffic: dict[str, dict[str, int]] | None, level: str) -> str:
    return "-" if traffic is None else f"{sum(traffic[level].values()) / 1e3:,.1f}"


def format_cost(report: dict[str, Any]) -> str:
    """Human-readable per-layer table and network totals."""
    s, n = report["spec"], report["network"]
    head = (f"{'layer':<22} {'kind':<7} {'compute cyc':>12} {'total cyc':>12} {'latency ms':>11} {'energy uJ':>11} "
            f"{'util':>6} {'SRAM kw':>9} {'DRAM kw':>9} {'stalls':>9}")
    mem = ("; SRAMs " + "/".join(str(v) for v in s["sram_kb"]) + " KB (ifmap/filter/ofmap), "
           + (f"USER {s['bandwidth_words']} words/cyc" if s.get("bandwidth_words") else "CALC")
           if s.get("sram_kb") else "")
    lines = [f"{s['rows']}x{s['cols']} {s['dataflow'].upper()}, RF {s['rf_bytes']} B/PE, buffer "
             f"{s['gbuf_bytes'] / 1024:g} KB, DRAM {_dram_text(s)}, NoC {s['noc_bw']:g} B/cyc, "
             f"{s['clock_mhz']:g} MHz, {s['precision_bits']}-bit; batch {n['batch']}{mem}", head, "-" * len(head)]
    for r in report["layers"]:
        name = r["name"] if len(r["name"]) <= 22 else "…" + r["name"][-21:]
        lines.append(f"{name:<22} {r['kind']:<7} {r['compute_cycles']:>12,} {r['total_cycles']:>12,} "
                     f"{r['latency_ms']:>11.4f} {r['energy_uj']:>11.2f} {r['utilization']:>6.1%} "
                     f"{_kwords(r['traffic'], 'sram'):>9} {_kwords(r['traffic'], 'dram'):>9} {r['stall_cycles']:>9,}")
    br = ", ".join(f"{k} {v:.1f}" for k, v in n["energy_breakdown_uj"].items())
    lines += ["-" * len(head),
              f"network: {n['layers']} layers, {n['macs']:,} MACs, {n['total_cycles']:,} cycles "
              f"({n['compute_cycles']:,} compute), {n['latency_ms']:.4f} ms, utilisation {n['utilization']:.1%}",
              f"energy {n['energy_uj']:.2f} uJ ({br}); power {n['power_mw']:.1f} mW",
              f"area {n['area_mm2']:.3f} mm^2; EDP {n['edp_uj_ms']:.4g} uJ*ms"]
    return "\n".join(lines)


def cmd_hw_cost(args: argparse.Namespace) -> int:
    from hwnas.cli.output import emit

    if args.batch < 1:
        raise CLIError(f"--batch must be a positive integer, got {args.batch}")
    spec = build_spec(args)
    report = cost_report(spec, load_layers(args), args.batch)
    emit(report, args.json, format_cost(report))
    return 0


def add_parsers(sub: Any) -> None:
    """Register ``hwnas hw`` and its sub-commands on the top-level sub-parsers ``sub``."""
    p_hw = sub.add_parser("hw", help="accelerator cost model (codesign hardware side)")
    hw_sub = p_hw.add_subparsers(dest="hw_command", metavar="SUBCOMMAND", required=True)
    q = hw_sub.add_parser(
        "cost", help="cycles, latency, energy and area of a network on an accelerator",
        description="Analytical cost of each conv/GEMM layer on one accelerator (SCALE-Sim-exact systolic "
        "compute cycles for ws/os/is, an Eyeriss row-stationary model for rs; memory traffic per level; "
        "energy from Eyeriss's normalised access costs; per layer, SCALE-Sim's SRAM/DRAM traffic per operand "
        "and stall cycles). Flags override fields of --spec.")
    src = q.add_mutually_exclusive_group(required=True)
    src.add_argument("--topology", metavar="CSV", help="SCALE-Sim topology CSV")
    src.add_argument("--onnx", metavar="FILE", help="ONNX model (conv, gemm, matmul layers)")
    q.add_argument("--spec", metavar="JSON|YAML", help="accelerator spec file (default: a 32x32 WS design)")
    q.add_argument("--rows", type=int, help="PE rows")
    q.add_argument("--cols", type=int, help="PE columns")
    q.add_argument("--dataflow", choices=("ws", "os", "is", "rs"), help="dataflow")
    q.add_argument("--rf-bytes", dest="rf_bytes", type=int, help="register file bytes per PE")
    q.add_argument("--gbuf-bytes", dest="gbuf_bytes", type=int, help="global buffer bytes")
    q.add_argument("--dram-bw", dest="dram_bw", type=float, help="DRAM bandwidth, bytes/cycle")
    q.add_argument("--noc-bw", dest="noc_bw", type=float, help="buffer-to-array bandwidth, bytes/cycle")
    q.add_argument("--clock-mhz", dest="clock_mhz", type=float, help="clock, MHz")
    q.add_argument("--precision-bits", dest="precision_bits", type=int, help="8 or 16")
    # issue 19 physical costs (hw_space.physical)
    q.add_argument("--voltage", type=float, help="core supply, V (0.82-1.17; clock must not exceed f_max(V))")
    q.add_argument("--dram-tech", dest="dram_tech", help="DRAM technology: lpddr4, ddr3, gddr5, hbm2 "
                   "(needs --dram-channels; replaces --dram-bw)")
    q.add_argument("--dram-channels", dest="dram_channels", type=int, help="whole DRAM channels of --dram-tech")
    q.add_argument("--sram-kb", dest="sram_kb", metavar="I,F,O",
                   help="SCALE-Sim memory system: ifmap,filter,ofmap SRAM sizes in KB, e.g. 64,64,64 "
                   "(per-layer traffic then counts DRAM re-reads; default: unbounded SRAMs)")
    q.add_argument("--bandwidth-words", dest="bandwidth_words", type=int, metavar="N",
                   help="SCALE-Sim USER-mode interface bandwidth, words/cycle (needs --sram-kb; adds "
                   "stall cycles to the latency); default: CALC mode, no stalls")
    q.add_argument("--batch", type=int, default=1, help="batch size (default 1)")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=cmd_hw_cost)


__all__ = ["DEFAULT_SPEC", "add_parsers", "build_spec", "cost_report", "format_cost", "load_layers"]
