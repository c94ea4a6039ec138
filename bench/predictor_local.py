#!/usr/bin/env python
"""Latency predictors on real measurements of this machine.

Exports ``--nb201`` NB201 and ``--macro`` macro-space candidates, profiles them here with
``device_agent run`` (the real agent, into a fresh SQLite database), then trains every predictor
kind on a random ``--train-frac`` of the models and scores it on the rest: Spearman, Kendall tau-b,
MAPE and the share within ±10%, beside FLOPs alone. Both spaces are mixed in one predictor, so the
ranking spans two orders of magnitude of latency.

    python bench/predictor_local.py [--nb201 100] [--macro 100] [--work .bench/local]

A second run with the same ``--work`` reuses the measurements (the agent resumes).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nb201", type=int, default=100)
    ap.add_argument("--macro", type=int, default=100)
    ap.add_argument("--train-frac", type=float, default=0.7)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1, help="agent intra-op threads (default 1: steadier)")
    ap.add_argument("--epochs", type=int, default=150)
    ap.add_argument("--work", type=Path, default=Path(".bench/local"))
    args = ap.parse_args()

    from hwnas.cli import main as hwnas_main
    from hwnas.graph.cache import GraphCache, default_cache_dir
    from hwnas.graph.resolve import GraphResolver
    from hwnas.predictors import predictor_kinds
    from hwnas.predictors.dataset import attach_graphs, device_rows
    from hwnas.predictors.metrics import evaluate
    from latency_db import LatencyDB

    cands = args.work / "candidates"
    db = args.work / "latency.db"
    for space, n in (("nb201", args.nb201), ("macro", args.macro)):
        if hwnas_main(["export", "--space", space, "--sample", str(n), "--seed", "11", "--out", str(cands)]) != 0:
            return 1
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "device_agent", "run", "--models", str(cands), "--db", str(db), "--device-name", "local",
           "--threads", str(args.threads), "--repeats", str(args.repeats), "--warmup", "5",
           "--profile-nodes", "10", "--json"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode not in (0, 1):
        sys.exit(f"device_agent run failed: {proc.stderr.strip()[-400:]}")
    print(f"profiled {args.nb201} NB201 + {args.macro} macro candidates with device_agent in {time.perf_counter() - t0:.0f} s")

    with LatencyDB(db, read_only=True) as ldb:
        rows = device_rows(ldb, "local")
    resolver = GraphResolver(GraphCache(default_cache_dir()), model_dirs=[cands])
    records = attach_graphs(rows, resolver, workers=2)
    n = len(records)
    perm = np.random.default_rng(0).permutation(n)
    n_train = int(round(args.train_frac * n))
    train = [records[i] for i in perm[:n_train]]
    test = [records[i] for i in perm[n_train:]]
    y = np.array([r.latency_ms for r in test])
    print(f"{sum(bool(r.node_profile) for r in records)} models carry per-node profiles (the lut kind uses them)")
    print(f"{n} measured models ({sum(r.space == 'nb201' for r in records)} nb201, "
          f"{sum(r.space == 'macro' for r in records)} macro), latency {min(r.latency_ms for r in records):.3f}"
          f"-{max(r.latency_ms for r in records):.1f} ms; train {len(train)}, test {len(test)}")  # fmt: skip
    flops_rho = float(spearmanr([r.graph.flops for r in test], y).statistic)
    print(f"{'kind':<8}{'Spearman':>10}{'tau-b':>8}{'MAPE':>8}{'±10%':>8}{'fit s':>8}   (FLOPs alone: Spearman {flops_rho:.3f})")
    for kind, cls in predictor_kinds().items():
        pred = cls(epochs=args.epochs) if kind == "gnn" else cls()
        t0 = time.perf_counter()
        pred.fit(train)
        took = time.perf_counter() - t0
        m = evaluate(y, pred.predict([r.graph for r in test]))
        print(f"{kind:<8}{m['spearman']:10.4f}{m['kendall_tau_b']:8.4f}{m['mape']:8.1%}{m['within_10pct']:8.1%}{took:8.1f}")
        for space in ("nb201", "macro"):
            sub = [i for i, r in enumerate(test) if r.space == space]
            if kind == "gnn" and len(sub) > 2:
                ms = evaluate(y[sub], pred.predict([test[i].graph for i in sub]))
                fl = float(spearmanr([test[i].graph.flops for i in sub], y[sub]).statistic)
                print(f"  {space:<6}{ms['spearman']:10.4f}{ms['kendall_tau_b']:8.4f}{ms['mape']:8.1%}"
                      f"{ms['within_10pct']:8.1%}          (FLOPs alone: {fl:.3f})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
