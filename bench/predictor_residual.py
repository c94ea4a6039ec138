#!/usr/bin/env python
"""Does the GNN gain from learning log latency as a residual on an analytical baseline? (issue 14, part 2)

For each device of NAS-Bench-201's published latency table and each training size (``--sizes``,
default 50 and 900 random cells), fits the GNN two ways on the same cells and scores both on
``--held`` other cells (Spearman, MAPE, share within +-10%):

* ``plain``: the GNN on log latency, as hwnas trains it;
* ``residual``: the analytical baseline of :mod:`hwnas.predictors.support` (non-negative least
  squares of latency on FLOPs, bytes moved and op counts, fitted on the training cells) times a GNN
  trained on latency / baseline, i.e. log latency minus the baseline's log.

Cells with no path from input to output (341) are left out, as the table's README advises.

    python bench/predictor_residual.py [--sizes 50,900] [--devices all] [--held 2000] [--epochs 60]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from predictor_nb201 import DEFAULT_TABLE, has_path, load_table  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--table", default=str(DEFAULT_TABLE))
    ap.add_argument("--sizes", default="50,900", help="training cells per device (default 50,900)")
    ap.add_argument("--devices", default="all", help="comma-separated devices or all")
    ap.add_argument("--held", type=int, default=2000, help="held-out cells scored per device (default 2000)")
    ap.add_argument("--epochs", type=int, default=60, help="GNN epochs (default 60)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from hwnas.graph.arch_encode import ArchEncoder
    from hwnas.predictors.base import LatencyRecord
    from hwnas.predictors.gnn import GNNPredictor
    from hwnas.predictors.metrics import evaluate
    from hwnas.predictors.support import baseline_ms, fit_baseline
    from hwnas.space import NB201Space

    archs, devices, lat = load_table(Path(args.table))
    chosen = devices if args.devices == "all" else [d.strip() for d in args.devices.split(",")]
    space, enc = NB201Space(), ArchEncoder()
    usable = np.array([i for i, a in enumerate(archs) if has_path(a)])
    rng = np.random.default_rng(args.seed)
    sizes = [int(s) for s in args.sizes.split(",")]
    pool = rng.choice(usable, min(max(sizes) + args.held, len(usable)), replace=False)
    graphs = {int(i): enc.encode(space, space.parse(archs[i])) for i in pool}
    held = pool[max(sizes):]
    g_held = [graphs[int(i)] for i in held]
    rows: dict[tuple[str, int], list[dict[str, float]]] = {}
    print(f"{'device':<14} {'n':>4} {'form':<9} {'spearman':>8} {'MAPE':>6} {'±10%':>5} {'fit s':>6}")
    for dev in chosen:
        d = devices.index(dev)
        y_held = lat[held, d]
        for size in sizes:
            idx = pool[:size]
            g_train = [graphs[int(i)] for i in idx]
            y_train = np.array([float(lat[i, d]) for i in idx])
            coef, _ = fit_baseline(g_train, y_train)
            base_train, base_held = baseline_ms(coef, g_train), baseline_ms(coef, g_held)
            for form in ("plain", "residual"):
                t0 = time.perf_counter()
                target = y_train if form == "plain" else y_train / base_train
                recs = [LatencyRecord(archs[i], g, dev, float(v), "nb201") for i, g, v in zip(idx, g_train, target)]
                gnn = GNNPredictor(epochs=args.epochs, seed=args.seed).fit(recs)
                pred = np.asarray(gnn.predict(g_held), dtype=np.float64)
                if form == "residual":
                    pred = pred * base_held
                m = evaluate(y_held, pred)
                row = {"spearman": m["spearman"], "mape": m["mape"], "within10": m["within_10pct"]}
                rows.setdefault((form, size), []).append(row)
                print(f"{dev:<14} {size:>4} {form:<9} {row['spearman']:8.3f} {row['mape']:6.1%} {row['within10']:5.0%} "
                      f"{time.perf_counter() - t0:6.1f}", flush=True)  # fmt: skip
    print(f"\nmedian over {len(chosen)} device(s):")
    for (form, size), rs in sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        print(f"  n={size:<4} {form:<9} Spearman {statistics.median(r['spearman'] for r in rs):.3f}, "
              f"MAPE {statistics.median(r['mape'] for r in rs):.1%}, ±10% {statistics.median(r['within10'] for r in rs):.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
