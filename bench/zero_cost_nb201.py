#!/usr/bin/env python
"""Zero-cost proxies on NAS-Bench-201: rank correlation with the benchmark's trained accuracy.

Samples ``--n`` distinct NB201 architectures (seeded), scores each untrained network (NB201 size
``--channels``/``--cells``, default 16/5 as in the benchmark) with every proxy of
:mod:`hwnas.evaluate.zero_cost` on one batch of ``--dataset`` (default ``digits``: 8x8 grey digits
upsampled to ``--resolution`` and repeated to 3 channels; a cifar-10-batches-bin folder gives the
setting of the paper), and reports each proxy's Spearman rank correlation with NB201's CIFAR-10
and CIFAR-100 test accuracy (the shipped table), plus FLOPs (2 x conv/linear MACs at batch 1) and
the time per architecture.

    python bench/zero_cost_nb201.py [--n 200] [--dataset digits|PATH] [--threads 1] [--json]

Published values with CIFAR-10 batches (Abdelfattah et al. 2021, all 15,625 archs): synflow
~0.74, jacob_cov ~0.73, snip ~0.64, grad_norm ~0.64, #params ~0.73 (CIFAR-10).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def flops(net, x) -> float:  # noqa: ANN001 - torch types imported lazily
    """2 x multiply-accumulates of the Conv2d and Linear layers for one image of ``x``."""
    import torch
    from torch import nn

    total = [0]

    def hook(mod, inp, out) -> None:  # noqa: ANN001
        if isinstance(mod, nn.Conv2d):
            k = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
            total[0] += out.numel() * k
        else:
            total[0] += mod.in_features * mod.out_features * (out.numel() // mod.out_features)

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        net.eval()(x[:1])
    for h in handles:
        h.remove()
    return 2.0 * total[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200, help="architectures to sample")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dataset", default="digits", help="digits, cifar10, or a cifar-10-batches-bin folder / .npz")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--resolution", type=int, default=32)
    ap.add_argument("--channels", type=int, default=16)
    ap.add_argument("--cells", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared machine)")
    ap.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = ap.parse_args()

    import torch
    from scipy.stats import kendalltau, spearmanr

    from hwnas.evaluate.tabular import NB201Tabular
    from hwnas.evaluate.zero_cost import PROXIES, ZeroCostEvaluator, score
    from hwnas.space import NB201Space

    torch.set_num_threads(args.threads)
    space = NB201Space()
    table = NB201Tabular().table
    idx = np.random.default_rng(args.seed).choice(space.size, size=args.n, replace=False)
    ev = ZeroCostEvaluator(space, args.dataset, batch_size=args.batch_size, resolution=args.resolution,
                           channels=args.channels, cells=args.cells, seed=args.seed)  # fmt: skip
    x, y = ev.batch
    names = (*PROXIES, "flops")
    scores = {p: np.zeros(args.n) for p in names}
    secs = {p: 0.0 for p in names}
    start = time.perf_counter()
    for i, a in enumerate(idx):
        net = ev.network(space.from_index(int(a)))
        for p in names:
            t0 = time.perf_counter()
            scores[p][i] = flops(net, x) if p == "flops" else score(net, x, y, p, seed=args.seed)
            secs[p] += time.perf_counter() - t0
        if (i + 1) % 20 == 0:
            print(f"  {i + 1}/{args.n} archs, {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    result = {"n": args.n, "dataset": ev.data.name, "batch_size": len(x), "resolution": args.resolution,
              "channels": args.channels, "cells": args.cells, "total_s": round(time.perf_counter() - start, 1),
              "proxies": {}}  # fmt: skip
    for p in names:
        row = {"ms_per_arch": round(1000 * secs[p] / args.n, 1)}
        for col, target in (("cifar10", table[idx, 0]), ("cifar100", table[idx, 1])):
            row[f"spearman_{col}"] = round(float(spearmanr(scores[p], target).statistic), 4)
        row["kendall_cifar10"] = round(float(kendalltau(scores[p], table[idx, 0]).statistic), 4)
        result["proxies"][p] = row
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"NB201 zero-cost proxies: {args.n} archs (seed {args.seed}), {ev.data.name} batch of {len(x)} at "
          f"{args.resolution}x{args.resolution}, network C={args.channels} N={args.cells}; {result['total_s']} s")
    print(f"{'proxy':<11}{'rho C10':>9}{'rho C100':>10}{'tau C10':>9}{'ms/arch':>9}")
    for p, r in result["proxies"].items():
        print(f"{p:<11}{r['spearman_cifar10']:>9.3f}{r['spearman_cifar100']:>10.3f}{r['kendall_cifar10']:>9.3f}"
              f"{r['ms_per_arch']:>9.0f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
