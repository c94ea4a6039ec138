"""Validate hw_space.systolic.compute_cycles against SCALE-Sim itself.

For ResNet-18 and MobileNet layers (``hw_space.workload.resnet18()`` / ``mobilenet()``, written as
SCALE-Sim topology CSVs with ``write_topology_csv``) x WS/OS/IS x several array shapes, run SCALE-Sim
in a subprocess and compare, per layer, our stall-free compute cycles with its COMPUTE_REPORT
(``Total Cycles - Stall Cycles`` and ``Total Cycles``; SCALE-Sim v3 also reports ``Total Cycles
(incl. prefetch)``, a DRAM-side span we do not model and only print). Mapping efficiency and compute
utilisation are compared too.

SCALE-Sim is NOT a dependency of hwnas: it pins nothing but breaks on numpy 2 (``int()`` of a
1-element array in ``double_buffered_scratchpad_mem.py``), so this script makes its own virtual
environment on first use (``python3 -m venv .hwnas/scalesim-venv`` + ``pip install scalesim
"numpy<2"``) and runs SCALE-Sim with that interpreter. Run from the repository root with hwnas's
venv::

    .venv/bin/python bench/scalesim_compare.py                 # default layer subset, ~3-6 min
    .venv/bin/python bench/scalesim_compare.py --layers all    # full networks: ~1 h of SCALE-Sim

SCALE-Sim is slow (a Python loop over every cycle of the demand matrices, ~60 us per cycle), so
the default runs a documented subset of layers (``SUBSETS``) that covers every distinct kind of
layer: 3x3 stride 1 and 2, 1x1 stride 1 and 2, FC, SCALE-Sim's ceil output size where the stride
does not divide (MobileNet Conv1 and Conv26; ResNet Conv1 is left out for time), MobileNet's
depthwise-as-conv layers (one filter, stride 2) and pointwise layers; ~6 M simulated cycles, i.e.
~6 CPU-minutes of SCALE-Sim. The array shapes include a non-square one (32x16), which catches
rows/cols mix-ups that square arrays hide. Traces are not written (``save_disk_space=True`` in its
Python API; its CLI ``scalesim.scale`` ignores ``-s N``). SRAMs are 64 MB each and the interface
bandwidth is CALC (estimated), so SCALE-Sim reports no stalls.

Results go to stdout and ``.bench/scalesim_compare.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hw_space.systolic import compute_cycles, compute_utilization, mapping_efficiency  # noqa: E402
from hw_space.workload import Layer, mobilenet, resnet18, write_topology_csv  # noqa: E402

NETWORKS = {"resnet18": resnet18, "mobilenet": mobilenet}
# Default layer subset per network (see the module docstring for the selection rationale).
SUBSETS = {
    "resnet18": ["Conv3_1a", "Conv3_s", "Conv4_s", "Conv5_s", "FC"],
    "mobilenet": ["Conv1", "Conv5", "Conv12", "Conv13", "Conv24", "Conv26"],
}
DATAFLOWS = ("ws", "os", "is")
DEFAULT_ARRAYS = "16x16,32x32,32x16"
SCALESIM_PIP = ["scalesim", "numpy<2"]

CFG_TEMPLATE = """[general]
run_name = run

[run_presets]
InterfaceBandwidth = CALC
UseRamulatorTrace = False

[architecture_presets]
ArrayHeight = {rows}
ArrayWidth = {cols}
IfmapSramSzkB = {sram_kb}
FilterSramSzkB = {sram_kb}
OfmapSramSzkB = {sram_kb}
IfmapOffset = 0
FilterOffset = 10000000
OfmapOffset = 20000000
Dataflow = {dataflow}
Bandwidth = 10
ReadRequestBuffer = 32
WriteRequestBuffer = 32

[layout]
IfmapCustomLayout = False
IfmapSRAMBankBandwidth = 10
IfmapSRAMBankNum = 10
IfmapSRAMBankPort = 2
FilterCustomLayout = False
FilterSRAMBankBandwidth = 10
FilterSRAMBankNum = 10
FilterSRAMBankPort = 2

[sparsity]
SparsitySupport = false
SparseRep = ellpack_block
OptimizedMapping = false
BlockSize = 8
RandomNumberGeneratorSeed = 40
"""

RUNNER = """
import sys
from scalesim.scale_sim import scalesim
cfg, topo, layout, out = sys.argv[1:5]
s = scalesim(save_disk_space=True, verbose=False, config=cfg, topology=topo, layout=layout)
s.run_scale(top_path=out)
"""


def log(msg: str) -> None:
    print(msg, flush=True)


def ensure_venv(venv: Path) -> tuple[Path, str]:
    """Return (python, scalesim version) of the SCALE-Sim venv, creating it on first use."""
    py = venv / "bin" / "python"
    probe = [str(py), "-c", "import importlib.metadata as m, scalesim, numpy; "
             "print(m.version('scalesim'), numpy.__version__)"]
    if py.exists():
        r = subprocess.run(probe, capture_output=True, text=True)
        if r.returncode == 0:
            ver, npv = r.stdout.split()
            log(f"[venv] using {venv} (scalesim {ver}, numpy {npv})")
            return py, ver
        log(f"[venv] {venv} exists but cannot import scalesim; reinstalling")
    else:
        log(f"[venv] creating {venv}: python3 -m venv {venv}")
        venv.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
    cmd = [str(py), "-m", "pip", "install", "-q", *SCALESIM_PIP]
    log(f"[venv] {' '.join(cmd)}  (numpy<2: SCALE-Sim's memory model fails on numpy 2)")
    subprocess.run(cmd, check=True)
    r = subprocess.run(probe, capture_output=True, text=True, check=True)
    ver, npv = r.stdout.split()
    log(f"[venv] installed scalesim {ver}, numpy {npv}")
    return py, ver


def parse_compute_report(path: Path) -> list[dict[str, float]]:
    """Rows of COMPUTE_REPORT.csv keyed by stripped header (v2 and v3 headers both work)."""
    with open(path, newline="") as f:
        rows = [[c.strip() for c in r] for r in csv.reader(f)]
    header = [h for h in rows[0] if h]
    return [{h: float(v) for h, v in zip(header, r)} for r in rows[1:] if any(r)]


def run_scalesim(py: Path, layers: list[Layer], rows: int, cols: int, dataflow: str,
                 workdir: Path, sram_kb: int) -> tuple[list[dict[str, float]], float]:
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = workdir / "scale.cfg"
    cfg.write_text(CFG_TEMPLATE.format(rows=rows, cols=cols, dataflow=dataflow, sram_kb=sram_kb))
    topo = write_topology_csv(workdir / "topology.csv", layers)
    layout = workdir / "layout.csv"  # required by v3's loader; unused without custom layouts
    layout.write_text("Layer name,\n")
    out = workdir / "out"
    t0 = time.perf_counter()
    r = subprocess.run([str(py), "-c", RUNNER, str(cfg), str(topo), str(layout), str(out)],
                       capture_output=True, text=True, cwd=workdir)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"SCALE-Sim failed ({workdir}):\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}")
    return parse_compute_report(out / "run" / "COMPUTE_REPORT.csv"), wall


def our_time(layers: list[Layer], rows: int, cols: int, dataflow: str, repeats: int = 200) -> float:
    """Best-of-``repeats`` seconds for compute_cycles over all layers (Layer objects in)."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        compute_cycles(layers, rows, cols, dataflow)
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--venv", default=str(ROOT / ".hwnas" / "scalesim-venv"))
    ap.add_argument("--networks", default="resnet18,mobilenet")
    ap.add_argument("--dataflows", default=",".join(DATAFLOWS))
    ap.add_argument("--arrays", default=DEFAULT_ARRAYS, help="RxC list, e.g. 16x16,32x32")
    ap.add_argument("--layers", default="subset", help="subset (default), all, or a number N: "
                    "the first N layers of each network")
    ap.add_argument("--jobs", type=int, default=2, help="SCALE-Sim processes in parallel")
    ap.add_argument("--sram-kb", type=int, default=65536, help="each of the three SRAMs")
    ap.add_argument("--out", default=str(ROOT / ".bench" / "scalesim_compare.json"))
    ap.add_argument("--keep", default=None, help="keep SCALE-Sim inputs/reports under this dir")
    args = ap.parse_args(argv)

    py, version = ensure_venv(Path(args.venv))
    arrays = [tuple(int(v) for v in a.lower().split("x")) for a in args.arrays.split(",")]
    nets: dict[str, list[Layer]] = {}
    for name in args.networks.split(","):
        layers = NETWORKS[name]()
        if args.layers == "subset":
            keep = set(SUBSETS[name])
            layers = [lay for lay in layers if lay.name in keep]
        elif args.layers != "all":
            layers = layers[:int(args.layers)]
        nets[name] = layers
        log(f"[layers] {name}: {', '.join(lay.name for lay in layers)}")
    jobs = [(n, df, r, c) for n in nets for df in args.dataflows.split(",") for (r, c) in arrays]
    log(f"[run] {len(jobs)} SCALE-Sim runs, {args.jobs} in parallel, SRAMs {args.sram_kb} kB, "
        "bandwidth CALC, no traces")

    tmp = tempfile.TemporaryDirectory(prefix="scalesim-cmp-") if args.keep is None else None
    base = Path(args.keep) if args.keep else Path(tmp.name)
    t_start = time.perf_counter()

    def one(job):
        n, df, r, c = job
        rep, wall = run_scalesim(py, nets[n], r, c, df, base / f"{n}_{df}_{r}x{c}", args.sram_kb)
        log(f"[done] {n} {df} {r}x{c}: {wall:.1f} s")
        return job, rep, wall

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as ex:
        results = list(ex.map(one, jobs))
    total_wall = time.perf_counter() - t_start

    table, per_layer, golden = [], [], []
    hdr = (f"{'network':<10} {'df':<3} {'array':<6} {'layers':>6} {'=T-S':>5} {'=T':>4} "
           f"{'max|d(T-S)|':>11} {'stalls':>6} {'map.eff':>8} {'c.util':>8} {'scalesim s':>10} "
           f"{'ours us':>8} {'speedup':>9}")
    log("\n" + hdr + "\n" + "-" * len(hdr))
    for (n, df, r, c), rep, wall in results:
        layers = nets[n]
        ours = compute_cycles(layers, r, c, df)
        me = mapping_efficiency(layers, r, c, df) * 100
        cu = compute_utilization(layers, r, c, df) * 100
        if len(rep) != len(layers):
            raise RuntimeError(f"{n} {df} {r}x{c}: SCALE-Sim reported {len(rep)} layers, "
                               f"expected {len(layers)}")
        total = np.array([row["Total Cycles"] for row in rep], dtype=np.int64)
        stall = np.array([row["Stall Cycles"] for row in rep], dtype=np.int64)
        pref = np.array([row.get("Total Cycles (incl. prefetch)", np.nan) for row in rep])
        s_me = np.array([row["Mapping Efficiency %"] for row in rep])
        s_cu = np.array([row["Compute Util %"] for row in rep])
        diff = ours - (total - stall)
        t_ours = our_time(layers, r, c, df)
        row = dict(network=n, dataflow=df, rows=r, cols=c, layers=len(layers),
                   match_total_minus_stall=int(np.sum(diff == 0)),
                   match_total=int(np.sum(ours == total)),
                   max_abs_diff=int(np.max(np.abs(diff))),
                   stall_cycles=int(stall.sum()),
                   max_abs_diff_mapping_eff_pct=float(np.max(np.abs(me - s_me))),
                   max_abs_diff_compute_util_pct=float(np.max(np.abs(cu - s_cu))),
                   scalesim_wall_s=wall, ours_s=t_ours, speedup=wall / t_ours)
        table.append(row)
        log(f"{n:<10} {df:<3} {f'{r}x{c}':<6} {len(layers):>6} {row['match_total_minus_stall']:>5} "
            f"{row['match_total']:>4} {row['max_abs_diff']:>11} {row['stall_cycles']:>6} "
            f"{row['max_abs_diff_mapping_eff_pct']:>8.1e} {row['max_abs_diff_compute_util_pct']:>8.1e} "
            f"{wall:>10.1f} {t_ours * 1e6:>8.1f} {wall / t_ours:>9.2e}")
        for i, lay in enumerate(layers):
            per_layer.append(dict(network=n, layer=lay.name, dataflow=df, rows=r, cols=c,
                                  ours=int(ours[i]), scalesim_total=int(total[i]),
                                  scalesim_stall=int(stall[i]),
                                  scalesim_total_incl_prefetch=None if np.isnan(pref[i]) else int(pref[i]),
                                  mapping_eff_pct=float(s_me[i]), compute_util_pct=float(s_cu[i])))
            golden.append((n, lay.name, df, r, c, int(total[i] - stall[i])))
    n_all = sum(t["layers"] for t in table)
    n_ok = sum(t["match_total_minus_stall"] for t in table)
    n_tot = sum(t["match_total"] for t in table)
    wall_sum = sum(t["scalesim_wall_s"] for t in table)
    ours_sum = sum(t["ours_s"] for t in table)
    log(f"\nexact matches: {n_ok}/{n_all} on Total-Stall, {n_tot}/{n_all} on Total "
        f"(stalls reported: {sum(t['stall_cycles'] for t in table)})")
    log(f"SCALE-Sim {version}: {wall_sum:.1f} s summed over runs ({total_wall:.1f} s wall with "
        f"{args.jobs} jobs); ours {ours_sum * 1e3:.3f} ms summed; speed ratio {wall_sum / ours_sum:.2e}x")
    mism = [p for p in per_layer if p["ours"] != p["scalesim_total"] - p["scalesim_stall"]]
    for p in mism:
        log(f"MISMATCH {p}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(scalesim_version=version, date=time.strftime("%Y-%m-%d"),
                                   layers_mode=args.layers, sram_kb=args.sram_kb, table=table,
                                   per_layer=per_layer), indent=1))
    log(f"wrote {out}")
    if tmp is not None:
        tmp.cleanup()
    return 0 if not mism else 1


if __name__ == "__main__":
    sys.exit(main())
