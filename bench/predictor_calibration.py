#!/usr/bin/env python
"""Are the predictors' intervals honest? Coverage of the 90% interval on held-out NB201 cells.

For each device of NAS-Bench-201's published latency table (13 devices), and each training size
(``--sizes``, default 50 and 900 cells drawn at random), fits a predictor of each ``--kinds`` on that
device alone, calibrates its interval on out-of-fold refits (:mod:`hwnas.predictors.calibration`),
and scores it on ``--held`` other cells: Spearman, MAPE, share within +-10%, the coverage of the 90%
interval (goal: median over devices in 85-95%), and the share of held-out cells flagged
``extrapolated``. For the GNN it also fits "today's" GNN (``robust=False``: the 1e-6 deviation
floor and no clipping this version replaced) and prints its Spearman beside the new one.

Cells with no path from input to output (341) are left out, as the table's README advises.

    python bench/predictor_calibration.py [--sizes 50,900] [--kinds gnn,gbdt] [--devices all] [--held 2000]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TABLE = ROOT.parent / "shared" / "datasets" / "nb201" / "latency_ms.csv"
sys.path.insert(0, str(ROOT / "bench"))

from predictor_nb201 import has_path, load_table  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--table", default=str(DEFAULT_TABLE))
    ap.add_argument("--sizes", default="50,900", help="training cells per device (default 50,900)")
    ap.add_argument("--kinds", default="gnn,gbdt", help="predictor kinds (default gnn,gbdt)")
    ap.add_argument("--devices", default="all", help="comma-separated devices or all")
    ap.add_argument("--held", type=int, default=2000, help="held-out cells scored per device (default 2000)")
    ap.add_argument("--folds", default="5,3", help="calibration folds per size, in --sizes order (default 5,3)")
    ap.add_argument("--epochs", type=int, default=60, help="GNN epochs (default 60)")
    ap.add_argument("--no-today", action="store_true", help="skip the robust=False GNN")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from hwnas.graph.arch_encode import ArchEncoder
    from hwnas.predictors import predictor_kinds
    from hwnas.predictors.base import LatencyRecord
    from hwnas.predictors.calibration import calibrate, coverage
    from hwnas.predictors.gnn import GNNPredictor
    from hwnas.predictors.metrics import evaluate
    from hwnas.predictors.support import predict_interval
    from hwnas.space import NB201Space

    archs, devices, lat = load_table(Path(args.table))
    if args.devices != "all":
        devices_sel = [d.strip() for d in args.devices.split(",")]
    else:
        devices_sel = devices
    space, enc = NB201Space(), ArchEncoder()
    usable = np.array([i for i, a in enumerate(archs) if has_path(a)])
    rng = np.random.default_rng(args.seed)
    sizes = [int(s) for s in args.sizes.split(",")]
    folds = [int(f) for f in args.folds.split(",")]
    need = max(sizes) + args.held
    pool = rng.choice(usable, min(need, len(usable)), replace=False)
    t0 = time.perf_counter()
    graphs = {int(i): enc.encode(space, space.parse(archs[i])) for i in pool}
    print(f"{len(graphs)} NB201 cells encoded in {time.perf_counter() - t0:.1f} s; devices: {len(devices_sel)}; "
          f"sizes {sizes}; kinds {args.kinds}")  # fmt: skip
    held = pool[max(sizes):]
    kinds = predictor_kinds()
    results: dict[tuple[str, int], list[dict[str, float]]] = {}
    header = f"{'device':<14} {'kind':<5} {'n':>4} {'spearman':>8} {'today':>6} {'MAPE':>6} {'±10%':>5} {'cover90':>7} {'extrap':>6} {'fit+cal s':>9}"
    print(header)
    for dev in devices_sel:
        d = devices.index(dev)
        y_held = lat[held, d]
        g_held = [graphs[int(i)] for i in held]
        for size, k in zip(sizes, folds):
            train_idx = pool[:size]
            recs = [LatencyRecord(archs[i], graphs[int(i)], dev, float(lat[i, d]), "nb201") for i in train_idx]
            for kind in args.kinds.split(","):
                t1 = time.perf_counter()
                make = (lambda **kw: GNNPredictor(epochs=args.epochs, seed=args.seed, **kw)) if kind == "gnn" else kinds[kind]
                pred = make().fit(recs)
                calibrate(pred, recs, folds=k, seed=args.seed)
                took = time.perf_counter() - t1
                p = predict_interval(pred, g_held, level=0.9)
                m = evaluate(y_held, p.mean_ms)
                row = {"spearman": m["spearman"], "mape": m["mape"], "within10": m["within_10pct"],
                       "coverage": coverage(y_held, p.low_ms, p.high_ms), "extrap": float(p.extrapolated.mean())}
                today = "-"
                if kind == "gnn" and not args.no_today:
                    old = GNNPredictor(epochs=args.epochs, seed=args.seed, robust=False).fit(recs)
                    row["today_spearman"] = float(spearmanr(old.predict(g_held), y_held).statistic)
                    today = f"{row['today_spearman']:.3f}"
                results.setdefault((kind, size), []).append(row)
                print(f"{dev:<14} {kind:<5} {size:>4} {row['spearman']:8.3f} {today:>6} {row['mape']:6.1%} "
                      f"{row['within10']:5.0%} {row['coverage']:7.1%} {row['extrap']:6.1%} {took:9.1f}", flush=True)
    print("\nmedian over devices (goal: coverage of the 90% interval in 85-95% at every size):")
    for (kind, size), rows in sorted(results.items()):
        med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        today = f", today's GNN Spearman {med['today_spearman']:.3f}" if "today_spearman" in med else ""
        print(f"  {kind:<5} n={size:<4} Spearman {med['spearman']:.3f}{today}, MAPE {med['mape']:.1%}, "
              f"±10% {med['within10']:.0%}, coverage {med['coverage']:.1%} (devices {min(r['coverage'] for r in rows):.0%}"
              f"-{max(r['coverage'] for r in rows):.0%}), extrapolated {med['extrap']:.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
