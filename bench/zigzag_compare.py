"""hw_space's cost model against ZigZag, a second analytical oracle: latency and energy per layer.

ZigZag (KU Leuven, ``zigzag-dse`` on PyPI; L. Mei et al., "ZigZag: Enlarging Joint Architecture-
Mapping Design Space Exploration for DNN Accelerators", IEEE TC 70(8), 2021) models a memory
hierarchy per operand and searches the temporal mapping (loop order and which memory level keeps
each loop's data: LOMA). hw_space's :class:`hw_space.cost.CostModel` has one fixed tiling per
dataflow. This script builds the same accelerator for both (``bench/zigzag_bridge.py``: same array,
spatial unrolling, RF, shared global buffer, bandwidths, and hw_space's per-word energies converted
into ZigZag's per-access costs), runs ResNet-18 and MobileNet layers on two designs, and prints per
layer the latency ratio (hw_space / ZigZag cycles), the energy ratio, and the energy by level side
by side (MAC, RF, global buffer, DRAM), then geometric means per design and the largest gaps with
their cause.

Designs: ``ws16``, a 16 x 16 weight-stationary systolic array at 8 bit (``bench/codesign_nb201.py``'s
reference: 64 B RF per PE, 256 KB buffer, 16 B/cycle DRAM, 64 B/cycle NoC), and ``eyeriss``, a
12 x 14 row-stationary array at 16 bit (520 B of scratch pads per PE, 108 KB buffer, 24 B/cycle NoC;
DRAM 4 B/cycle, not ``bench/hw_cost_eyeriss.py``'s 3.6, because ZigZag's ports are whole bits and
at least one 16-bit word wide).

Layers (``hw_space.workload``; 12, every kind): ResNet-18 3x3 stride 1 (Conv2_1a, Conv4_2a,
Conv5_1b), 3x3 stride 2 (Conv3_1a), 1x1 stride 2 (Conv3_s), FC; MobileNet Conv1 (3 channels),
pointwise Conv5 and Conv13, and depthwise Conv2 (stride 1), Conv4 (stride 2), Conv14, turned into
true depthwise layers (``groups = channels``; SCALE-Sim's file stores them as C-deep single-filter
convs).

What each model counts, so what the ratios can and cannot mean:

* hw_space energy = DRAM + global buffer + NoC (buffer <-> array words and inter-PE hops) + RF + MAC
  + leakage. ZigZag has no interconnect energy (its ``calc_energy`` leaves interconnection energy out as future work:
  energy") and no leakage, so the energy ratio is printed twice: ``E all`` (hw_space's total) and
  ``E cmp`` (hw_space without NoC and leakage: the parts both models count).
* hw_space latency = ``max(compute, DRAM words / dram_bw, NoC words / noc_bw)``, perfect double
  buffering. ZigZag's ``latency_total2`` = temporal-mapping cycles + stalls where a memory port
  cannot keep up in a loop's window + the first load and last write-back + the systolic drain.

ZigZag runs in its own virtual environment (``.hwnas/zigzag-venv``, made on first use with
``python3 -m venv`` + ``pip install zigzag-dse==3.9.1 six``; hwnas does not depend on it), one
subprocess per design, with LOMA's ``lpf_limit`` (``--lpf``, default 6) and the EDP criterion.
The mapping search matters for the row-stationary design: at ``--lpf 2`` ZigZag finds mappings up
to 4x slower than at 6 on some layers (its ``ws16`` mappings do not change). Run from the
repository root with hwnas's venv (3-7 minutes on a shared 2-core machine; ``--lpf 4``: ~2)::

    .venv/bin/python bench/zigzag_compare.py

The largest gaps, and their causes (each printed only where the run's numbers bear it out, by
:func:`explain`):

* **Fold overhead** (systolic latency, hw_space > ZigZag): hw_space is SCALE-Sim-exact, so every
  fold pays ``2 rows + cols - 2`` cycles of weight load, skew and drain beside its ``T`` useful
  cycles; ZigZag charges one drain per layer. The FC layer (``T`` = 1 pixel) is ~47x apart in
  compute cycles, 7x7 layers ~2.8x, 14x14 ~1.3x.
* **Spatial unrolling** (hw_space < ZigZag): ZigZag unrolls whole loops, so a 3-channel layer fills
  9 of 16 rows where hw_space's im2col fold of ``R S C = 27`` fills 84 %.
* **1x1 stride 2** (energy and DRAM-bound latency, hw_space > ZigZag): hw_space moves the whole
  ifmap from DRAM, ZigZag only the pixels the stride reads (a quarter); the truth for a DRAM burst
  layout lies between (skipped rows need not be fetched, skipped columns are).
* **Row-stationary psums** (buffer energy, hw_space < ZigZag): hw_space's RS count assumes psums stay
  in the PEs across every channel pass (``O (2 r_folds - 1)`` buffer words); with Eyeriss's 24-word
  psum spad ZigZag finds no mapping that does so, and sends psums back to the buffer: 5-7x the
  buffer words. A real gap of hw_space's RS model (it ignores the psum spad's capacity).
* **Depthwise on RS** (hw_space slower): hw_space packs its replicated sets over the strips of one
  group only; on a 14x14 depthwise layer (one strip) 3 of 4 sets idle.
* **RF of a stationary operand**: ZigZag reads a weight that stays in a PE's register once
  (``access_same_data_considered_as_no_access``); hw_space charges an RF read per MAC (WS depthwise).
* **Energy hw_space counts and ZigZag does not**: NoC words and inter-PE hops (WS: 2 hops per MAC at
  the array level's 2x MAC energy) and leakage, ~39 % of hw_space's WS energy and ~9 % of its RS
  energy here: hence ``E all`` against ``E cmp``.

Results go to stdout and ``.bench/zigzag_compare.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import zigzag_bridge as zb  # noqa: E402

from hw_space.cost import RF_ACCESSES_PER_MAC, CostModel  # noqa: E402
from hw_space.energy import EnergyTable  # noqa: E402
from hw_space.rowstationary import rs_mapping  # noqa: E402
from hw_space.spec import AcceleratorSpec  # noqa: E402
from hw_space.systolic import SYSTOLIC_DATAFLOWS  # noqa: E402
from hw_space.workload import Layer, mobilenet, resnet18  # noqa: E402

DESIGNS = {
    "ws16": AcceleratorSpec(rows=16, cols=16, rf_bytes=64, gbuf_bytes=256 * 1024, dataflow="ws",
                            dram_bw=16.0, noc_bw=64.0, clock_mhz=800.0, precision_bits=8),
    "eyeriss": AcceleratorSpec(rows=12, cols=14, rf_bytes=520, gbuf_bytes=108 * 1024, dataflow="rs",
                               dram_bw=4.0, noc_bw=24.0, clock_mhz=200.0, precision_bits=16),
}
RESNET = ["Conv2_1a", "Conv3_1a", "Conv3_s", "Conv4_2a", "Conv5_1b", "FC"]
MOBILENET = ["Conv1", "Conv2", "Conv4", "Conv5", "Conv13", "Conv14"]
MOBILENET_DW = {"Conv2", "Conv4", "Conv14"}
PARTS = ("mac", "rf", "gbuf", "dram")

RUNNER = r"""
import json, logging, sys
logging.basicConfig(level=logging.WARNING)  # before ZigZag's own basicConfig(INFO), which then no-ops
from zigzag.api import get_hardware_performance_zigzag
work, lpf, opt = sys.argv[1], int(sys.argv[2]), sys.argv[3]
_, _, cmes = get_hardware_performance_zigzag(
    f"{work}/workload.yaml", f"{work}/accelerator.yaml", f"{work}/mapping.yaml", opt=opt,
    dump_folder=f"{work}/out", lpf_limit=lpf, loma_show_progress_bar=False)
rows = []
for cme, _ in cmes[0][1]:
    hier = cme.accelerator.memory_hierarchy
    by_mem = {}
    for lop, parts in cme.mem_energy_breakdown.items():
        mop = cme.memory_operand_links.layer_to_mem_op(lop)
        for lvl, pj in zip(hier.get_memory_levels(mem_op=mop), parts):
            by_mem.setdefault(lvl.name, {})[str(lop)] = float(pj)
    rows.append(dict(
        name=cme.layer.name, latency=float(cme.latency_total2), temporal=float(cme.ideal_temporal_cycle),
        ideal=float(cme.ideal_cycle), stall=float(cme.stall_slack_comb), onload=float(cme.data_onloading_cycle),
        offload=float(cme.data_offloading_cycle), drain=float(cme.systolic_drain_cycle),
        mac_pj=float(cme.mac_energy), mem_pj=by_mem, energy_pj=float(cme.energy_total),
        stall_ports={f"{lvl.name}.{port}": float(c) for lvl, ports in
                     zip(cme.mem_level_list, cme.stall_slack_comb_collect) for port, c in ports.items() if c > 0},
        spatial=str(cme.layer.spatial_mapping), temporal_mapping=str(cme.mapping.temporal_mapping)))
print("ZIGZAG_JSON " + json.dumps(rows))
"""


def log(msg: str = "") -> None:
    print(msg, flush=True)


def ensure_venv(venv: Path) -> tuple[Path, str]:
    """Return (python, zigzag-dse version) of the ZigZag venv, creating it on first use."""
    py = venv / "bin" / "python"
    probe = [str(py), "-c", "import importlib.metadata as m, six, zigzag.api; print(m.version('zigzag-dse'))"]
    if py.exists():
        r = subprocess.run(probe, capture_output=True, text=True)
        if r.returncode == 0:
            log(f"[venv] using {venv} (zigzag-dse {r.stdout.strip()})")
            return py, r.stdout.strip()
        log(f"[venv] {venv} exists but cannot import zigzag; reinstalling")
    else:
        log(f"[venv] creating {venv}: python3 -m venv {venv}")
        venv.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
    cmd = [str(py), "-m", "pip", "install", "-q", *zb.ZIGZAG_PIP]
    log(f"[venv] {' '.join(cmd)}  (six: zigzag-dse 3.9.1 imports it without declaring it)")
    subprocess.run(cmd, check=True)
    ver = subprocess.run(probe, capture_output=True, text=True, check=True).stdout.strip()
    log(f"[venv] installed zigzag-dse {ver}")
    return py, ver


def pick_layers() -> list[Layer]:
    """The 12 compared layers, prefixed by network (``r18_``/``mb_``) so names stay unique."""
    r18 = {lay.name: lay for lay in resnet18()}
    mb = {lay.name: lay for lay in mobilenet()}
    out = []
    for n in RESNET:
        lay = r18[n]
        out.append(Layer(f"r18_{n}", lay.ifmap_h, lay.ifmap_w, lay.filter_h, lay.filter_w,
                         lay.channels, lay.num_filter, lay.stride))
    for n in MOBILENET:
        lay = mb[n]
        lay = Layer(f"mb_{n}", lay.ifmap_h, lay.ifmap_w, lay.filter_h, lay.filter_w, lay.channels,
                    lay.num_filter, lay.stride)
        out.append(zb.depthwise(lay) if n in MOBILENET_DW else lay)
    return out


def run_zigzag(py: Path, layers: list[Layer], spec: AcceleratorSpec, name: str, work: Path,
               lpf: int, opt: str) -> tuple[dict[str, dict[str, Any]], float]:
    """Write ZigZag's three inputs for ``spec`` and run it; per-layer results by layer name."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "workload.yaml").write_text(json.dumps(zb.workload(layers, spec.precision_bits), indent=1))
    (work / "accelerator.yaml").write_text(json.dumps(zb.accelerator(spec, name=name), indent=1))
    (work / "mapping.yaml").write_text(json.dumps(zb.mapping(layers, spec), indent=1))
    t0 = time.perf_counter()
    r = subprocess.run([str(py), "-c", RUNNER, str(work), str(lpf), opt], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    line = next((ln for ln in r.stdout.splitlines() if ln.startswith("ZIGZAG_JSON ")), None)
    if r.returncode != 0 or line is None:
        raise RuntimeError(f"ZigZag failed on {name} ({work}):\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}")
    return {row["name"]: row for row in json.loads(line[len("ZIGZAG_JSON "):])}, wall


def zigzag_parts(row: dict[str, Any]) -> dict[str, float]:
    """ZigZag's energy by hw_space part (µJ): MAC, RF, global buffer, DRAM."""
    parts = dict.fromkeys(PARTS, 0.0)
    parts["mac"] = row["mac_pj"] * 1e-6
    for mem, per_op in row["mem_pj"].items():
        parts[zb.LEVEL_OF_MEMORY[mem]] += sum(per_op.values()) * 1e-6
    return parts


def gmean(xs: list[float]) -> float:
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def compare(spec: AcceleratorSpec, layers: list[Layer], zz: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-layer rows: hw_space and ZigZag cycles, energies by part, words by level, ratios."""
    ours = CostModel(spec, EnergyTable()).layers(layers)
    pj = zb.word_pj(spec)
    wb = spec.precision_bits // 8
    rows = []
    for i, lay in enumerate(layers):
        z = zz[lay.name]
        zp = zigzag_parts(z)
        hp = {p: float(ours[f"energy_{p}_uj"][i]) for p in ("mac", "rf", "gbuf", "dram", "noc", "leak")}
        h_cmp = sum(hp[p] for p in PARTS)
        z_all = z["energy_pj"] * 1e-6
        rows.append(dict(
            layer=lay.name, macs=int(ours["macs"][i]),
            ours_cycles=int(ours["total_cycles"][i]), ours_compute=int(ours["compute_cycles"][i]),
            ours_dram_cycles=int(ours["dram_cycles"][i]), ours_noc_cycles=int(ours["noc_cycles"][i]),
            zz_cycles=z["latency"], zz_temporal=z["temporal"], zz_stall=z["stall"],
            zz_onload=z["onload"], zz_offload=z["offload"], zz_drain=z["drain"],
            lat_ratio=int(ours["total_cycles"][i]) / z["latency"],
            compute_ratio=int(ours["compute_cycles"][i]) / (z["temporal"] + z["drain"]),
            ours_energy_uj=float(ours["energy_uj"][i]), ours_parts_uj=hp, zz_energy_uj=z_all,
            zz_parts_uj=zp, e_all_ratio=float(ours["energy_uj"][i]) / z_all, e_cmp_ratio=h_cmp / z_all,
            ours_words=dict(dram=int(ours["dram_bytes"][i]) // wb, gbuf=int(ours["gbuf_accesses"][i]),
                            rf=int(ours["rf_accesses"][i])),
            zz_words={p: zp[p] * 1e6 / pj[p] for p in ("dram", "gbuf", "rf")},
            zz_stall_ports=z.get("stall_ports", {}),
            zz_spatial=z["spatial"], zz_temporal_mapping=z["temporal_mapping"]))
    return rows


def print_design(name: str, spec: AcceleratorSpec, rows: list[dict[str, Any]]) -> dict[str, float]:
    log(f"\n== {name}: {spec.rows}x{spec.cols} {spec.dataflow.upper()}, {spec.precision_bits} bit, RF "
        f"{spec.rf_bytes} B/PE, buffer {spec.gbuf_bytes // 1024} KB, DRAM {spec.dram_bw:g} B/cyc, "
        f"NoC {spec.noc_bw:g} B/cyc")
    hdr = (f"{'layer':<14} {'ours cyc':>9} {'zz cyc':>9} {'lat':>5} {'comp':>5} {'E all':>5} {'E cmp':>5} | "
           + " ".join(f"{p + ' h/z (uJ)':>17}" for p in PARTS))
    log(hdr + "\n" + "-" * len(hdr))
    for r in rows:
        h, z = r["ours_parts_uj"], r["zz_parts_uj"]
        cells = " ".join(f"{h[p]:>8.3g}/{z[p]:<8.3g}" for p in PARTS)
        log(f"{r['layer']:<14} {r['ours_cycles']:>9} {r['zz_cycles']:>9.0f} {r['lat_ratio']:>5.2f} "
            f"{r['compute_ratio']:>5.2f} {r['e_all_ratio']:>5.2f} {r['e_cmp_ratio']:>5.2f} | {cells}")
    g = {k: gmean([r[k] for r in rows]) for k in ("lat_ratio", "compute_ratio", "e_all_ratio", "e_cmp_ratio")}
    for p in PARTS:
        pr = [r["ours_parts_uj"][p] / r["zz_parts_uj"][p] for r in rows if r["zz_parts_uj"][p] > 0]
        g[f"{p}_ratio"] = gmean(pr) if pr else float("nan")
    log(f"{'geomean':<14} {'':>9} {'':>9} {g['lat_ratio']:>5.2f} {g['compute_ratio']:>5.2f} "
        f"{g['e_all_ratio']:>5.2f} {g['e_cmp_ratio']:>5.2f} | "
        + " ".join(f"{g[p + '_ratio']:>17.2f}" for p in PARTS))
    return g


def explain(spec: AcceleratorSpec, lay: Layer, r: dict[str, Any]) -> list[str]:
    """Causes of this layer's gaps, each printed only if the data bear it out (a checked rule)."""
    out = []
    px, k, n = lay.ofmap_px, lay.window, lay.filters_per_group
    zz_comp = r["zz_temporal"] + r["zz_drain"]
    if spec.dataflow in SYSTOLIC_DATAFLOWS and r["compute_ratio"] > 1.1:
        t = {"ws": px, "os": k, "is": n}[spec.dataflow]
        extra = (spec.rows + spec.cols - 2) if spec.dataflow == "os" else (2 * spec.rows + spec.cols - 2)
        if abs((t + extra) / t - r["compute_ratio"]) / r["compute_ratio"] < 0.15:
            out.append(f"fold overhead: hw_space (SCALE-Sim-exact) spends {extra} fill/skew/drain cycles per "
                       f"fold beside T={t} useful ones, (T+{extra})/T = {(t + extra) / t:.2f}; ZigZag charges "
                       f"the systolic drain once per layer")
    if r["compute_ratio"] < 0.9:
        util_z = r["macs"] / (zz_comp * spec.num_pes)
        util_h = r["macs"] / (r["ours_compute"] * spec.num_pes)
        out.append(f"spatial unrolling: ZigZag unrolls whole loops ({r['zz_spatial']}), {util_z:.0%} of PE-"
                   f"cycles busy, against hw_space's {util_h:.0%} (im2col fold of R*S*C, or packed RS sets)")
    if spec.dataflow == "rs" and zb.is_depthwise(lay) and r["compute_ratio"] > 1.5:
        mp = rs_mapping([lay], spec.rows, spec.cols)
        out.append(f"depthwise RS: hw_space packs its {int(mp['sets_parallel'][0])} replicated sets over the "
                   f"{int(mp['e_folds'][0])} strip(s) of one group only; ZigZag unrolls G over them")
    zd, hd = r["zz_words"]["dram"], r["ours_words"]["dram"]
    if lay.stride > 1 and lay.filter_h == 1 and hd > 1.3 * zd:
        out.append(f"1x1 stride {lay.stride}: hw_space moves the whole {lay.ifmap_h}x{lay.ifmap_w}x{lay.channels} "
                   f"ifmap from DRAM ({hd} words in all), ZigZag only the pixels the stride reads ({zd:.0f})")
    if spec.dataflow == "rs" and r["zz_words"]["gbuf"] > 2 * r["ours_words"]["gbuf"]:
        spad = zb.rf_words(spec)["O"]
        fit = (f"a row of F={lay.ofmap_w} psums exceeds the {spad}-word psum spad" if lay.ofmap_w > spad
               else f"the {spad}-word psum spad holds one row of F={lay.ofmap_w}, not several filters' rows")
        out.append(f"psums: hw_space's RS count keeps psums in the PEs across all channel passes "
                   f"(O*(2*r_folds-1) buffer words), but {fit}; ZigZag's mapping sends them back to the "
                   f"buffer: {r['zz_words']['gbuf']:.3g} against {r['ours_words']['gbuf']:.3g} buffer words")
    if r["ours_words"]["rf"] > 10 * max(r["zz_words"]["rf"], 1.0):
        out.append("RF: ZigZag reads an operand that stays in the PE's register once "
                   "(access_same_data_considered_as_no_access); hw_space charges "
                   f"{RF_ACCESSES_PER_MAC[spec.dataflow]} RF access(es) per MAC")
    stall = r["zz_stall"] + r["zz_onload"] + r["zz_offload"]
    if stall > 0.2 * r["zz_temporal"] and r["lat_ratio"] < 0.9:
        ports = ", ".join(f"{p} {c:.0f}" for p, c in r["zz_stall_ports"].items()) or "none"
        out.append(f"ZigZag stalls {r['zz_stall']:.0f} cycles (per port: {ports}) + {r['zz_onload']:.0f} first "
                   f"load: its ports serve a transfer per loop window; hw_space overlaps all traffic "
                   f"(max of compute {r['ours_compute']}, DRAM {r['ours_dram_cycles']}, NoC {r['ours_noc_cycles']})")
    if r["ours_cycles"] == r["ours_dram_cycles"] and 0.9 <= r["lat_ratio"] <= 1.1:
        out.append("DRAM-bound in both (agreement expected: the same words over the same port)")
    return out


def print_gaps(name: str, spec: AcceleratorSpec, layers: list[Layer], rows: list[dict[str, Any]]) -> None:
    """The three largest latency and energy gaps of a design, with their checked causes."""
    by = {lay.name: lay for lay in layers}
    h_all = sum(r["ours_energy_uj"] for r in rows)
    extra = sum(r["ours_parts_uj"]["noc"] + r["ours_parts_uj"]["leak"] for r in rows)
    log(f"-- {name}: largest gaps (|log ratio|), causes checked against the data above")
    log(f"   E all vs E cmp: hw_space's NoC + leakage, which ZigZag does not model, are {extra / h_all:.0%} "
        f"of its energy on these layers (NoC: buffer<->array words and {'2 inter-PE hops per MAC' if spec.dataflow != 'rs' else 'R-1 psum hops per row'})")
    for key, label in (("lat_ratio", "latency"), ("e_cmp_ratio", "energy (cmp)")):
        top = sorted(rows, key=lambda r: -abs(math.log(r[key])))[:3]
        for r in top:
            causes = explain(spec, by[r["layer"]], r) or ["(no checked cause; see the JSON)"]
            log(f"   {label} {r['layer']} x{r[key]:.2f}: " + "\n      ".join(causes))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--venv", default=str(ROOT / ".hwnas" / "zigzag-venv"))
    ap.add_argument("--designs", default=",".join(DESIGNS), help=f"comma list of {', '.join(DESIGNS)}")
    ap.add_argument("--lpf", type=int, default=6, help="ZigZag LOMA lpf_limit (temporal-mapping search size)")
    ap.add_argument("--opt", default="EDP", choices=("EDP", "energy", "latency"),
                    help="ZigZag's criterion for picking a mapping")
    ap.add_argument("--out", default=str(ROOT / ".bench" / "zigzag_compare.json"))
    ap.add_argument("--keep", default=None, help="keep ZigZag's inputs and outputs under this dir")
    args = ap.parse_args(argv)
    names = args.designs.split(",")
    unknown = [n for n in names if n not in DESIGNS]
    if unknown:
        ap.error(f"unknown design(s) {', '.join(unknown)}; choose from {', '.join(DESIGNS)}")

    py, version = ensure_venv(Path(args.venv))
    layers = pick_layers()
    log(f"[layers] {', '.join(lay.name for lay in layers)}")
    tmp = tempfile.TemporaryDirectory(prefix="zigzag-cmp-") if args.keep is None else None
    base = Path(args.keep) if args.keep else Path(tmp.name)
    result: dict[str, Any] = dict(zigzag_version=version, date=time.strftime("%Y-%m-%d"), lpf_limit=args.lpf,
                                  opt=args.opt, energy_table=EnergyTable().to_dict(), designs={})
    for name in names:
        spec = DESIGNS[name]
        zz, wall = run_zigzag(py, layers, spec, name, base / name, args.lpf, args.opt)
        log(f"[zigzag] {name}: {len(zz)} layers in {wall:.1f} s")
        rows = compare(spec, layers, zz)
        g = print_design(name, spec, rows)
        print_gaps(name, spec, layers, rows)
        result["designs"][name] = dict(spec=spec.to_dict(), zigzag_wall_s=wall, geomean=g, layers=rows)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    log(f"\nwrote {out}")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
