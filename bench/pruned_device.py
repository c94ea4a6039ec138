#!/usr/bin/env python
"""A pruned-form latency table made on this machine, learned from graphs of the default export.

Issue 15's "third-party table" check, end to end with the product's own commands:

1. ``--cells`` random NB201 cells with a path from input to output (default 1,100) are exported in
   the **pruned** form (``hwnas export --form pruned``: no ``none`` edges, no dead operations) and
   measured here with ``device_agent run`` (the interleaved protocol, into ``meas.db``);
2. their latencies are written as a third-party table keyed by arch string (``space, arch,
   device, latency_ms``) and imported with ``hwnas db import-csv`` into a fresh ``table.db``, so the
   product knows nothing of how they were timed. The latency written is the run's
   reference-normalised value, ``ref_ratio`` x the run's median reference level (drift between
   batches divided out), or ``median_ms`` with ``--raw``;
3. ``hwnas predictor train`` (GNN, GBDT, FLOPs) on ``--train`` of them (default 900),
   from graphs of the DEFAULT (reference-form) export, and ``hwnas predictor eval`` on the rest:
   Spearman and the share within ±10%;
4. the noise ceiling: ``--ceiling`` (default 100) of the evaluation cells measured again in a
   second run, scored against the first, as a predictor would be.

Goal (issue 15): Spearman >= 0.98 and >= 90% within ±10% on the rest, or this machine's noise
ceiling for the same cells where that is lower.

    python bench/pruned_device.py [--cells 1100] [--train 900] [--ceiling 100] [--threads 1] [--work .bench/pruned]

A second run with the same ``--work`` resumes the measurements (the agent skips measured models).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from onboard_device import run  # noqa: E402  (bench scripts share their subprocess runner)
from predictor_nb201 import has_path  # noqa: E402

DEVICE = "this-cpu-pruned"


def table_rows(db_path: Path, raw: bool) -> dict[str, float]:
    """arch string -> latency (ms) of the run in ``db_path``: ``ref_ratio`` x the median panel
    level of its runs (:meth:`latency_db.LatencyDB.reference_runs`) (or ``median_ms`` with ``raw``). Models without a ratio keep
    their median."""
    from latency_db import LatencyDB

    with LatencyDB(db_path, read_only=True) as db:
        levels = [run["median_ms"] for run in db.reference_runs() if run["median_ms"]]  # panel levels
        level = float(np.median(levels)) if levels else None
        out = {}
        for r in db.measurements(status="ok"):
            ratio = r.environment.get("ref_ratio")
            value = r.median_ms if raw or ratio is None or level is None else ratio * level
            if r.arch and value:
                out[r.arch] = float(value)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cells", type=int, default=1100, help="cells measured (default 1100)")
    ap.add_argument("--train", type=int, default=900, help="cells trained on (default 900); the rest are scored")
    ap.add_argument("--ceiling", type=int, default=100, help="evaluation cells measured again (default 100)")
    ap.add_argument("--kinds", default="gnn,gbdt,flops", help="predictor kinds (default gnn,gbdt,flops)")
    ap.add_argument("--raw", action="store_true", help="write median_ms, not the reference-normalised latency")
    ap.add_argument("--threads", type=int, default=1, help="the agent's intra-op threads (default 1: onnxruntime's "
                    "default takes every core and spins, which on a shared 2-core machine makes runs disagree)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, default=Path(".bench/pruned"))
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args()
    if args.train >= args.cells:
        sys.exit(f"--train ({args.train}) must be smaller than --cells ({args.cells})")

    from hwnas.space import NB201Space

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    t: dict[str, float] = {}
    space = NB201Space()
    rng = np.random.default_rng(args.seed)
    cells: list[str] = []
    for i in rng.permutation(space.size):
        spec = space.from_index(int(i)).spec
        if has_path(spec):
            cells.append(spec)
        if len(cells) == args.cells:
            break
    train, rest = cells[: args.train], cells[args.train :]
    again = rest[: args.ceiling]
    for name, items in (("all", cells), ("train", train), ("rest", rest), ("again", again)):
        (work / f"{name}.txt").write_text("\n".join(items) + "\n")

    # 1. measure the pruned cells (resumable)
    models = work / "models"
    if not (models / "manifest.jsonl").is_file():
        run(["hwnas", "export", "--space", "nb201", "--archs", str(work / "all.txt"), "--out", str(models),
             "--form", "pruned", "--json"], "export pruned", t)  # fmt: skip
    run(["device_agent", "run", "--threads", str(args.threads), "--models", str(models), "--db", str(work / "meas.db"), "--device-name", "this-cpu",
         "--progress", "none", "--json"], "measure", t)  # fmt: skip

    # 2. the third-party table, keyed by arch string, imported
    lat = table_rows(work / "meas.db", args.raw)
    table = work / "table.csv"
    with open(table, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["space", "arch", "device", "latency_ms"])
        for arch in cells:
            if arch in lat:
                w.writerow(["nb201", arch, DEVICE, f"{lat[arch]:.6f}"])
    tdb = work / "table.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(tdb) + suffix).unlink(missing_ok=True)
    run(["hwnas", "db", "import-csv", str(table), "--db", str(tdb)], "import", t)

    # 3. predictors from graphs of the default export
    common = ["--db", str(tdb), "--device", DEVICE, "--cache", str(work / "cache"), "--json"]
    rows = {}
    for kind in args.kinds.split(","):
        out = work / f"{kind}.json"
        run(["hwnas", "predictor", "train", "--kind", kind, "--archs", str(work / "train.txt"), "--out", str(out),
             "--calibration-folds", "0", *common], f"train {kind}", t)  # fmt: skip
        rows[kind] = run(["hwnas", "predictor", "eval", "--model", str(out), "--archs", str(work / "rest.txt"),
                          *common], f"eval {kind}", t)  # fmt: skip

    # 4. noise ceiling: the first `--ceiling` evaluation cells measured again
    again_models = work / "again_models"
    if not (again_models / "manifest.jsonl").is_file():
        run(["hwnas", "export", "--space", "nb201", "--archs", str(work / "again.txt"), "--out", str(again_models),
             "--form", "pruned", "--json"], "export again", t)  # fmt: skip
    run(["device_agent", "run", "--threads", str(args.threads), "--models", str(again_models), "--db", str(work / "again.db"),
         "--device-name", "this-cpu", "--progress", "none", "--json"], "measure again", t)  # fmt: skip
    second = table_rows(work / "again.db", args.raw)
    from hwnas.predictors.metrics import evaluate

    common_archs = [a for a in again if a in lat and a in second]
    ceiling = evaluate(np.array([lat[a] for a in common_archs]), np.array([second[a] for a in common_archs]))
    same = {k: v for k, v in rows.items()}
    for kind in same:  # the predictors on the same cells as the ceiling
        same[kind] = run(["hwnas", "predictor", "eval", "--model", str(work / f"{kind}.json"),
                          "--archs", str(work / "again.txt"), *common], f"eval {kind}", t)  # fmt: skip

    print(f"pruned-form NB201 table made here: {len(lat)} cells measured ({t.get('measure', 0):.0f} s), "
          f"imported by arch string as {DEVICE!r}; trained on {len(train)} from graphs of the default export")
    print(f"{'predictor':<12}{'rest: Spearman':>16}{'±10%':>7}{'MAPE':>7}   {'ceiling cells: Spearman':>24}{'±10%':>7}")
    for kind, m in rows.items():
        s = same[kind]
        print(f"{kind:<12}{m['spearman']:16.3f}{m['within_10pct']:7.0%}{m['mape']:7.1%}   "
              f"{s['spearman']:24.3f}{s['within_10pct']:7.0%}")
    print(f"{'noise ceiling':<12}{'':>16}{'':>7}{'':>7}   {ceiling['spearman']:24.3f}{ceiling['within_10pct']:7.0%}"
          f"   ({len(common_archs)} cells measured again in a second run, against the first)")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "same_cells": same, "ceiling": ceiling, "timings": t,
                                         "cells": len(lat)}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    t0 = time.perf_counter()
    rc = main()
    print(f"total {time.perf_counter() - t0:.0f} s")
    sys.exit(rc)
