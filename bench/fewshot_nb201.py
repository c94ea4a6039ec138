#!/usr/bin/env python
"""Few-shot adaptation methods compared on one multi-device base, leave-one-HEAD-out (a cheap proxy).

``bench/predictor_nb201.py`` is the real protocol: a base pre-trained on 12 devices per held-out
device (13 pre-trainings of minutes each). This script asks a narrower question at a fraction of
the cost: given an embedding, which way of fitting a new device's head from K = 10 measurements
ranks best? For each of the 13 devices it hides that device's head of one 13-device base (by default
the shipped ``nb201-public``), builds the prior from the other 12, and adapts:

- ``blr random``: the product's ``adapt`` (Bayesian linear regression, empirical Bayes) on K random
  cells, mean over ``--seeds`` draws;
- ``blr suggest``: the same on the K cells that ``predictor suggest`` picks;
- ``ft random`` / ``ft suggest``: then also fine-tune the embedding's last layer with the head on
  the K cells (L2 pull toward the base's weights), the "beyond the head" idea;
- ``stack suggest``: the new device as a ridge combination of the other 12 devices' predictions.

The embedding has seen the hidden device in pre-training, so absolute figures are optimistic; use
them to rank methods, and ``predictor_nb201.py`` for the goal.

    python bench/fewshot_nb201.py [--base nb201-public] [--pool 3000] [--seeds 5]
"""

from __future__ import annotations

import argparse
import copy
import sys
import time

import numpy as np

from predictor_nb201 import DEFAULT_TABLE, has_path, load_table


def finetune(base, graphs, y_log: np.ndarray, w0: np.ndarray, b0: float, all_graphs, steps: int, lam: float) -> np.ndarray:
    """Fine-tune ``net.out`` and a head (started at ``w0, b0``) on ``graphs``; log-ms of ``all_graphs``."""
    import torch

    net = copy.deepcopy(base.net_)
    for p in net.parameters():
        p.requires_grad_(False)
    params = list(net.out.parameters())
    for p in params:
        p.requires_grad_(True)
    ref = [p.detach().clone() for p in params]
    w = torch.tensor(w0, dtype=torch.float32, requires_grad=True)
    b = torch.tensor(float(b0), dtype=torch.float32, requires_grad=True)
    opt = torch.optim.Adam([*params, w, b], lr=1e-3)
    _, x, ei, batch, gf = next(base._batches(base._inputs(graphs), np.arange(len(graphs)), size=len(graphs)))
    target = torch.tensor(y_log, dtype=torch.float32)
    for _ in range(steps):
        h = net.embed(x, ei, batch, gf)
        loss = ((h @ w + b - target) ** 2).mean() + lam * sum(((p - r) ** 2).sum() for p, r in zip(params, ref))
        opt.zero_grad()
        loss.backward()
        opt.step()
    tuned = copy.copy(base)
    tuned.net_ = net.eval()
    return tuned.embed(all_graphs) @ w.detach().double().numpy() + float(b)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default="nb201-public")
    ap.add_argument("--table", default=str(DEFAULT_TABLE))
    ap.add_argument("--pool", type=int, default=3000)
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--ft-steps", type=int, default=60)
    ap.add_argument("--ft-l2", type=float, default=1e-2)
    args = ap.parse_args()

    from hwnas.graph.cache import GraphCache, default_cache_dir
    from hwnas.graph.resolve import GraphResolver
    from hwnas.cli.predictor import load_predictor_file
    from hwnas.predictors.adapt import HeadPrior, adapt_head, select_informative
    from hwnas.predictors.metrics import evaluate

    base = load_predictor_file(args.base).predictor
    archs, devices, lat = load_table(args.table)
    pool = np.sort(np.random.default_rng(0).choice(len(archs), size=min(args.pool, len(archs)), replace=False))
    scored = np.array([has_path(archs[i]) for i in pool])
    cand = np.flatnonzero(scored)
    graphs = GraphResolver(GraphCache(default_cache_dir())).graphs_for([(None, "nb201", archs[i]) for i in pool])
    emb = base.embed(graphs)
    W, B = base.heads()
    k = args.k
    methods = ("blr random", "blr suggest", "ft random", "ft suggest", "stack suggest")
    print(f"leave-one-head-out on {args.base} ({len(base.devices)} devices), pool {len(pool)}, K={k}; Spearman / ±10%")
    print(f"{'device':<15}" + "".join(f"{m:>17}" for m in methods))
    table: dict[str, list[tuple[float, float]]] = {m: [] for m in methods}
    t0 = time.perf_counter()
    for dev in devices:
        if dev not in base.devices:
            continue
        d = base.devices.index(dev)
        keep = [i for i in range(len(base.devices)) if i != d]
        prior = HeadPrior.from_heads(W[keep], B[keep])
        y = lat[pool, devices.index(dev)]

        def score(pred_log: np.ndarray, used: np.ndarray) -> tuple[float, float]:
            mask = scored.copy()
            mask[used] = False
            r = evaluate(y[mask], np.exp(pred_log[mask]))
            return r["spearman"], r["within_10pct"]

        draws = [np.random.default_rng(100 + s).choice(cand, size=k, replace=False) for s in range(args.seeds)]
        sugg = cand[select_informative(prior, emb[cand], k)]
        row: dict[str, tuple[float, float]] = {}
        for name, sets in (("random", draws), ("suggest", [sugg])):
            blr, ft = [], []
            for idx in sets:
                res = adapt_head(prior, emb[idx], np.log(y[idx]))
                blr.append(score(emb @ res.w + res.b, idx))
                ft.append(score(finetune(base, [graphs[i] for i in idx], np.log(y[idx]), res.w, res.b, graphs,
                                         args.ft_steps, args.ft_l2), idx))  # fmt: skip
            row[f"blr {name}"] = tuple(np.mean(blr, axis=0))
            row[f"ft {name}"] = tuple(np.mean(ft, axis=0))
        # the new device as a combination of the known ones (HELP-like: a device is what the others say)
        P = emb @ W[keep].T + B[keep]
        X = np.concatenate([P[sugg], np.ones((k, 1))], axis=1)
        lam = 1.0
        coef = np.linalg.solve(X.T @ X + lam * np.diag([1.0] * len(keep) + [0.0]), X.T @ np.log(y[sugg]))
        row["stack suggest"] = score(np.concatenate([P, np.ones((len(P), 1))], axis=1) @ coef, sugg)
        for m in methods:
            table[m].append(row[m])
        print(f"{dev:<15}" + "".join(f"{row[m][0]:.3f}/{row[m][1]:.2f}".rjust(17) for m in methods), flush=True)
    print(f"{'mean':<15}" + "".join(f"{np.mean([v[0] for v in table[m]]):.3f}/{np.mean([v[1] for v in table[m]]):.2f}".rjust(17)
                                    for m in methods) + f"   ({time.perf_counter() - t0:.0f} s)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
