#!/usr/bin/env python
"""Weight sharing on NAS-Bench-201: how well one-shot accuracies rank architectures.

Trains one NB201 supernet (:class:`hwnas.evaluate.supernet.SupernetEvaluator`, SPOS: a uniform
random path per batch) on ``--dataset`` (default digits), then scores ``--n`` distinct seeded NB201
architectures with inherited weights (BN recalibrated per path) and reports the Spearman and Kendall
rank correlation of those accuracies with NB201's CIFAR-10 / CIFAR-100 test accuracy (the shipped
table), next to the parameter count of the same architectures as a baseline, and the time spent.

    python bench/supernet_nb201.py [--n 50] [--epochs 40] [--finetune-steps 0] [--threads 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=50, help="architectures to score")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dataset", default="digits", help="digits, cifar10, or a cifar-10-batches-bin folder / .npz")
    ap.add_argument("--epochs", type=int, default=None, help="supernet epochs (default: the evaluator's)")
    ap.add_argument("--channels", type=int, default=None)
    ap.add_argument("--cells", type=int, default=None)
    ap.add_argument("--resolution", type=int, default=None)
    ap.add_argument("--finetune-steps", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared machine)")
    ap.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = ap.parse_args()

    import torch
    from scipy.stats import kendalltau, spearmanr

    from hwnas.evaluate.supernet import SupernetEvaluator
    from hwnas.evaluate.tabular import NB201Tabular
    from hwnas.space import NB201Space

    torch.set_num_threads(args.threads)
    space = NB201Space()
    table = NB201Tabular().table
    opts = {k: v for k, v in (("epochs", args.epochs), ("channels", args.channels), ("cells", args.cells),
                              ("resolution", args.resolution)) if v is not None}  # fmt: skip
    ev = SupernetEvaluator(space, args.dataset, finetune_steps=args.finetune_steps, seed=args.seed, **opts)
    idx = np.random.default_rng(args.seed).choice(space.size, size=args.n, replace=False)
    ev.train()
    start = time.perf_counter()
    acc = np.array([ev.evaluate(space.from_index(int(i))).accuracy for i in idx])
    eval_s = time.perf_counter() - start
    params = np.array([sum(p.numel() for p in space.to_torch(space.from_index(int(i))).parameters()) for i in idx])
    result = {"n": args.n, "dataset": ev.data.name, "epochs": ev.epochs, "channels": ev.channels, "cells": ev.cells,
              "resolution": ev.resolution, "finetune_steps": ev.finetune_steps,
              "supernet_train_s": round(float(ev.train_s_), 1), "eval_s_per_arch": round(eval_s / args.n, 3),
              "supernet_acc": {"min": float(acc.min()), "median": float(np.median(acc)),
                               "max": float(acc.max())}}  # fmt: skip
    for name, x in (("supernet", acc), ("params", params)):
        for col, target in (("cifar10", table[idx, 0]), ("cifar100", table[idx, 1])):
            result[f"{name}_spearman_{col}"] = round(float(spearmanr(x, target).statistic), 4)
        result[f"{name}_kendall_cifar10"] = round(float(kendalltau(x, table[idx, 0]).statistic), 4)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"NB201 weight sharing: {args.n} archs (seed {args.seed}); supernet C={ev.channels} N={ev.cells} at "
          f"{ev.resolution}x{ev.resolution} on {ev.data.name}, {ev.epochs} epochs, finetune {ev.finetune_steps} steps")
    print(f"supernet training {result['supernet_train_s']} s; evaluation {result['eval_s_per_arch']} s/arch; "
          f"one-shot val accuracy min/median/max {acc.min():.1f}/{np.median(acc):.1f}/{acc.max():.1f} %")
    print(f"{'score':<10}{'rho C10':>9}{'rho C100':>10}{'tau C10':>9}")
    for name in ("supernet", "params"):
        print(f"{name:<10}{result[f'{name}_spearman_cifar10']:>9.3f}{result[f'{name}_spearman_cifar100']:>10.3f}"
              f"{result[f'{name}_kendall_cifar10']:>9.3f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
