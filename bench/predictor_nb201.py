#!/usr/bin/env python
"""Latency predictors on NAS-Bench-201's published latency tables (13 devices).

Leave-one-device-out: for each device, a GNN is pre-trained on the other 12 (``--pretrain``
architectures each), then adapted to the held-out device from K = 10 / 20 / 50 of its measured
models (random, averaged over ``--seeds`` draws; and the K that ``predictor suggest`` picks), and
scored on the rest of the pool: Spearman and the share within ±10%. Beside every row: FLOPs alone
(its Spearman, and ±10% of a FLOPs-linear fit on the same K), the device's noise ceiling
(architectures with the same operations on their edges do the same work; predicting each by the
mean of its twins is the best any predictor can do against that device's own noise), and a GNN
trained on that device alone with 100 and 900 samples, beside the other path for as many samples:
the pre-trained base's head adapted on the same 900 (``hwnas predictor adapt`` on a device with 900
measured models; ``hwnas predictor eval`` tells on a device which of the two is better).

The data go through the product's own path: the wide table becomes a long CSV imported with
``hwnas db import-csv``; graphs come from the same export path as ``hwnas export`` (ONNX ->
graph), cached in ``$HWNAS_CACHE`` (first run: ~0.2 s per architecture and worker).

    python bench/predictor_nb201.py [--pool 3000] [--pretrain 1000] [--devices all] [--workers 2]

Architectures with no path from input to output (341) are left out of every score, as the
table's README advises (some devices report near-zero latency for them).

``--arch-features both`` (the default) runs every GNN twice: reading the graph alone (hwnas before
issue 15) and the graph plus the architecture's own encoding (one-hot decisions, live edges, paths:
:meth:`hwnas.space.base.SearchSpace.arch_features`); rows are labelled ``graph`` and ``+arch``.
A GBDT on 900 samples, with and without them, is printed beside the single-device GNN, and the
two blended (the mean of their log predictions: ``GNN+GBDT``).

``--ensemble N`` pre-trains N bases per held-out device (seeds 0..N-1), adapts each on the same K
samples and averages their log predictions; ``suggest`` picks with the first base.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TABLE = ROOT.parent / "shared" / "datasets" / "nb201" / "latency_ms.csv"


def load_table(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    with open(path) as f:
        rows = list(csv.DictReader(f))
    devices = [c for c in rows[0] if c not in ("arch_idx", "arch_str")]
    lat = np.array([[float(r[d]) for d in devices] for r in rows])
    return [r["arch_str"] for r in rows], devices, lat


def has_path(arch: str) -> bool:
    """Whether some path from the cell input to its output avoids ``none``."""
    toks = [t for t in arch.split("|") if t and t != "+"]
    ops = [t.split("~")[0] for t in toks]
    edges = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
    live = {0}
    for (dst, src), op in zip(edges, ops):
        if op != "none" and src in live:
            live.add(dst)
    return 3 in live


def _useful_ops(arch: str) -> list[str]:
    """Ops of the edges that lie on a path from the cell input to its output (what a runtime that
    prunes zero branches executes)."""
    toks = [t for t in arch.split("|") if t and t != "+"]
    ops = [t.split("~")[0] for t in toks]
    edges = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
    fwd, bwd = {0}, {3}
    for (dst, src), op in zip(edges, ops):
        if op != "none" and src in fwd:
            fwd.add(dst)
    for (dst, src), op in reversed(list(zip(edges, ops))):
        if op != "none" and dst in bwd:
            bwd.add(src)
    return [op for (dst, src), op in zip(edges, ops) if op != "none" and src in fwd and dst in bwd]


def noise_ceiling_groups(archs: list[str]) -> list[np.ndarray]:
    """Two groupings of computationally identical archs: the multiset of all six operations (same
    work when every edge runs, as in NAS-Bench-201's code), and the multiset of the operations on
    input-to-output paths (same work when a runtime prunes zero branches)."""
    out = []
    for key_of in (lambda a: [t.split("~")[0] for t in a.split("|") if t and t != "+"], _useful_ops):
        ids: dict[tuple[str, ...], int] = {}
        out.append(np.array([ids.setdefault(tuple(sorted(key_of(a))), len(ids)) for a in archs]))
    return out


def import_long_csv(table: Path, archs: list[str], devices: list[str], lat: np.ndarray, db: Path) -> None:
    from hwnas.cli import main as hwnas_main

    long_csv = db.parent / "nb201_latency_long.csv"
    with open(long_csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["space", "arch", "device", "latency_ms"])
        for j, d in enumerate(devices):
            for a, v in zip(archs, lat[:, j]):
                w.writerow(["nb201", a, d, v])
    if hwnas_main(["db", "import-csv", str(long_csv), "--db", str(db), "--source", table.name, "--json"]) != 0:
        sys.exit("import failed")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--table", type=Path, default=DEFAULT_TABLE)
    ap.add_argument("--pool", type=int, default=3000, help="architectures scored (default 3000 of 15,625)")
    ap.add_argument("--pretrain", type=int, default=1000, help="architectures per pre-training device (default 1000)")
    ap.add_argument("--devices", default="all", help="held-out devices, comma-separated (default all 13)")
    ap.add_argument("--shots", default="10,20,50")
    ap.add_argument("--single", default="100,900", help="single-device training sizes")
    ap.add_argument("--seeds", type=int, default=3, help="random draws of the K adaptation samples")
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--hidden", type=int, default=None, help="GNN width (default: the predictor's)")
    ap.add_argument("--mlp-depth", type=int, default=None, help="GIN update depth (default: the predictor's)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--arch-features", choices=("both", "on", "off"), default="both",
                    help="GNNs and GBDTs with the architecture features, without, or both (default)")
    ap.add_argument("--ensemble", type=int, default=1,
                    help="pre-train this many bases (seeds 0..N-1) per held-out device, adapt each on the same "
                         "K samples and average their log predictions (default 1: no ensemble)")
    ap.add_argument("--json", type=Path, help="also write all numbers here (rewritten after every device)")
    args = ap.parse_args()

    from hwnas.fileio import atomic_write_bytes
    from hwnas.graph.cache import GraphCache, default_cache_dir
    from hwnas.graph.resolve import GraphResolver
    from hwnas.predictors.adapt import HeadPrior, adapt_head, select_informative
    from hwnas.predictors.base import LatencyRecord
    from hwnas.predictors.gbdt import GBDTPredictor
    from hwnas.predictors.gnn import GNNPredictor
    from hwnas.predictors.linear import FlopsLinear
    from hwnas.predictors.metrics import evaluate
    from hwnas.predictors.dataset import device_rows
    from latency_db import LatencyDB

    gnn_kw = {"epochs": args.epochs, "seed": 0, **({"hidden": args.hidden} if args.hidden else {}),
              **({"mlp_depth": args.mlp_depth} if args.mlp_depth else {})}
    archs, devices, lat = load_table(args.table)
    held_out = devices if args.devices == "all" else args.devices.split(",")
    shots = [int(k) for k in args.shots.split(",")]
    singles = [int(k) for k in args.single.split(",")]
    rng = np.random.default_rng(0)
    pool = np.sort(rng.choice(len(archs), size=min(args.pool, len(archs)), replace=False))
    scored = np.array([has_path(archs[i]) for i in pool])
    groups = noise_ceiling_groups(archs)
    print(f"NB201 latency table: {len(archs)} archs x {len(devices)} devices; pool {len(pool)} "
          f"({scored.sum()} with a path are scored); pre-train {args.pretrain} archs/device; "
          f"GNN {gnn_kw}; ensemble of {args.ensemble} base(s)")  # fmt: skip

    # 1. the product's import path, then read back per device
    work = Path(tempfile.mkdtemp(prefix="hwnas-bench-pred-"))
    t0 = time.perf_counter()
    import_long_csv(args.table, archs, devices, lat, work / "nb201.db")
    print(f"imported {lat.size} rows with hwnas db import-csv in {time.perf_counter() - t0:.1f} s")
    with LatencyDB(work / "nb201.db", read_only=True) as db:
        table = {d: {r.arch: r.latency_ms for r in device_rows(db, d)} for d in devices}

    # 2. graphs of the pool, through the export path, cached
    resolver = GraphResolver(GraphCache(default_cache_dir()))
    t0 = time.perf_counter()
    graphs = resolver.graphs_for([(None, "nb201", archs[i]) for i in pool], workers=args.workers,
                                 on_progress=lambda i, n: print(f"\rgraphs {i}/{n}", end="", file=sys.stderr))  # fmt: skip
    print(f"\rgraphs of {len(pool)} archs ready in {time.perf_counter() - t0:.1f} s (cache: {default_cache_dir()})")
    flops = np.array([g.flops for g in graphs], dtype=float)
    y_all = np.array([[table[d][archs[i]] for d in devices] for i in pool])

    def records(idx: np.ndarray, devs: list[str]) -> list[LatencyRecord]:
        return [LatencyRecord(f"nb201:{archs[pool[i]]}", graphs[i], d, table[d][archs[pool[i]]], "nb201")
                for d in devs for i in idx]  # fmt: skip

    results = []
    variants = {"both": (False, True), "on": (True,), "off": (False,)}[args.arch_features]
    header = (f"{'device':<15}{'features':>8}{'ceiling':>11}{'FLOPs':>7} | " + " ".join(f"{'K=' + str(k):>13}" for k in shots)
              + f" {'K=10 sugg':>13} | " + " ".join(f"{'single ' + str(n):>13}" for n in singles)
              + f" {'adapt ' + str(singles[-1]):>13} {'GBDT ' + str(singles[-1]):>13} {'GNN+GBDT':>13}")  # fmt: skip
    print("Spearman / within ±10% on the pool (minus the samples used)")
    print(header)
    cand = np.flatnonzero(scored)
    def _device_variant(row: dict, use_arch: bool) -> None:
        dev = str(row["device"])
        y = y_all[:, devices.index(dev)]
        kw = {**gnn_kw, "arch_features": use_arch}
        # pre-train on the other devices
        others = [d for d in devices if d != dev]
        pre_idx = np.sort(np.random.default_rng(1).choice(cand, size=min(args.pretrain, len(cand)), replace=False))
        t0 = time.perf_counter()
        bases = [GNNPredictor(**{**kw, "seed": s}).fit(records(pre_idx, others)) for s in range(args.ensemble)]
        row["_base"] = bases[0]
        row["pretrain_s"] = (time.perf_counter() - t0) / len(bases)
        embs = [b.embed(graphs) for b in bases]
        priors = [HeadPrior.from_heads(*b.heads()) for b in bases]
        emb, prior = embs[0], priors[0]

        def adapted(idx: np.ndarray) -> np.ndarray:
            """Log predictions on the pool, each base adapted on ``idx``, averaged over the bases."""
            out = []
            for e, p in zip(embs, priors):
                res = adapt_head(p, e[idx], np.log(y[idx]))
                out.append(e @ res.w + res.b)
            return np.mean(out, axis=0)

        def score(pred_log: np.ndarray, used: np.ndarray) -> tuple[float, float]:
            mask = scored.copy()
            mask[used] = False
            r = evaluate(y[mask], np.exp(pred_log[mask]))
            return r["spearman"], r["within_10pct"]

        for k in shots:
            sp, w10, fw10 = [], [], []
            for s in range(args.seeds):
                idx = np.random.default_rng(100 + s).choice(cand, size=k, replace=False)
                a, b = score(adapted(idx), idx)
                sp.append(a)
                w10.append(b)
                fl = FlopsLinear().fit([LatencyRecord(str(i), graphs[i], dev, y[i]) for i in idx])
                mask = scored.copy()
                mask[idx] = False
                fw10.append(evaluate(y[mask], fl.predict([graphs[i] for i in np.flatnonzero(mask)]))["within_10pct"])
            row[f"k{k}_spearman"], row[f"k{k}_within10"] = float(np.mean(sp)), float(np.mean(w10))
            row[f"k{k}_flops_within10"] = float(np.mean(fw10))
        sugg = select_informative(prior, emb[cand], 10)
        idx = cand[sugg]
        row["k10s_spearman"], row["k10s_within10"] = score(adapted(idx), idx)

        for n in singles:
            idx = np.sort(np.random.default_rng(7).choice(cand, size=min(n, len(cand) - 10), replace=False))
            single = GNNPredictor(**kw).fit(records(idx, [dev]))
            pl = np.log(single.predict(graphs))
            row[f"single{n}_spearman"], row[f"single{n}_within10"] = score(pl, idx)
        # the other product path with as many samples: the base's head adapted on the same ones
        row["adaptn_spearman"], row["adaptn_within10"] = score(adapted(idx), idx)
        gb = GBDTPredictor(arch_features=use_arch).fit(records(idx, [dev]))
        gl = np.log(gb.predict(graphs))
        row["gbdt_spearman"], row["gbdt_within10"] = score(gl, idx)
        row["blend_spearman"], row["blend_within10"] = score((pl + gl) / 2.0, idx)

    def _dump() -> None:
        """Write the rows so far (so a long run stopped part-way keeps its finished devices)."""
        if args.json:
            rows = [{k: v for k, v in r.items() if k != "_base"} for r in results]
            atomic_write_bytes(args.json, json.dumps(rows, indent=2).encode())

    def _print_row(row: dict) -> None:
        cells = [("+arch" if row["arch_features"] else "graph").rjust(8),
                 f"{row['ceiling_spearman']:.3f}/{row['ceiling_within10']:.2f}".rjust(10), f"{row['flops_spearman']:7.3f}", " |"]  # fmt: skip
        cells += [f"{row[f'k{k}_spearman']:.3f}/{row[f'k{k}_within10']:.2f}".rjust(13) for k in shots]
        cells += [f"{row['k10s_spearman']:.3f}/{row['k10s_within10']:.2f}".rjust(13), " |"]
        cells += [f"{row[f'single{n}_spearman']:.3f}/{row[f'single{n}_within10']:.2f}".rjust(13) for n in singles]
        cells += [f"{row['adaptn_spearman']:.3f}/{row['adaptn_within10']:.2f}".rjust(13),
                  f"{row['gbdt_spearman']:.3f}/{row['gbdt_within10']:.2f}".rjust(13),
                  f"{row['blend_spearman']:.3f}/{row['blend_within10']:.2f}".rjust(13)]
        print(f"{row['device']:<15}" + " ".join(cells), flush=True)

    for dev in held_out:
        t = devices.index(dev)
        y = y_all[:, t]
        row: dict[str, object] = {"device": dev}
        # noise ceiling over the whole table: the grouping that explains this device best
        full = lat[:, t]
        ok = np.array([has_path(a) for a in archs])
        best = (-1.0, 0.0)
        for grp in groups:
            sums, cnts = np.bincount(grp, weights=full), np.bincount(grp)
            loo = (sums[grp] - full) / np.maximum(cnts[grp] - 1, 1)
            m = ok & (cnts[grp] > 1)
            cand_c = (float(spearmanr(loo[m], full[m]).statistic), float(np.mean(np.abs(loo[m] / full[m] - 1) <= 0.10)))
            best = max(best, cand_c)
        row["ceiling_spearman"], row["ceiling_within10"] = best
        row["flops_spearman"] = float(spearmanr(flops[scored], y[scored]).statistic)
        for use_arch in variants:
            row = dict(row) if use_arch is not variants[0] else row
            row["arch_features"] = use_arch
            _device_variant(row, use_arch)
            results.append(row)
            _print_row(row)
            _dump()

    for use_arch in variants:
        rows = [r for r in results if r["arch_features"] == use_arch]

        def mean(key: str) -> float:
            return float(statistics.mean(r[key] for r in rows))  # type: ignore[misc]

        print(f"{'mean':<15}" + ("+arch" if use_arch else "graph").rjust(8)
              + f"{mean('ceiling_spearman'):.3f}/{mean('ceiling_within10'):.2f}".rjust(11) + f"{mean('flops_spearman'):7.3f}  |"
              + " ".join(f"{mean(f'k{k}_spearman'):.3f}/{mean(f'k{k}_within10'):.2f}".rjust(13) for k in shots)
              + f"{mean('k10s_spearman'):.3f}/{mean('k10s_within10'):.2f}".rjust(14) + "  |"
              + " ".join(f"{mean(f'single{n}_spearman'):.3f}/{mean(f'single{n}_within10'):.2f}".rjust(13) for n in singles)
              + f"{mean('adaptn_spearman'):.3f}/{mean('adaptn_within10'):.2f}".rjust(14)
              + f"{mean('gbdt_spearman'):.3f}/{mean('gbdt_within10'):.2f}".rjust(14)
              + f"{mean('blend_spearman'):.3f}/{mean('blend_within10'):.2f}".rjust(14))  # fmt: skip
        n = singles[-1]
        at = {path: sum(r[f"{key}_spearman"] >= r["ceiling_spearman"] - 0.005 for r in rows)  # type: ignore[operator]
              for path, key in (("train", f"single{n}"), ("adapt", "adaptn"))}
        best = sum(max(r[f"single{n}_spearman"], r["adaptn_spearman"]) >= r["ceiling_spearman"] - 0.005  # type: ignore[type-var, operator]
                   for r in rows)
        print(f"  {n} samples, Spearman at or within 0.005 of the noise ceiling (or above): trained on the device "
              f"alone {at['train']}/{len(rows)}, base adapted {at['adapt']}/{len(rows)}, the better of the two "
              f"{best}/{len(rows)}")  # fmt: skip
        beats = sum(r["k10_spearman"] > r["flops_spearman"] for r in rows)  # type: ignore[operator]
        print(f"  GNN (K=10) beats FLOPs on {beats}/{len(rows)} devices; FLOPs-linear ±10% with K=10: "
              f"{mean('k10_flops_within10'):.2f}")  # fmt: skip
    base = results[-1]["_base"]

    # throughput: rank every NB201 arch = embed all graphs + one head
    t0 = time.perf_counter()
    emb = base.embed(graphs)
    per_graph = (time.perf_counter() - t0) / len(graphs)
    t0 = time.perf_counter()
    big = np.tile(emb, (int(np.ceil(15625 / len(emb))), 1))[:15625]
    order = np.argsort(big @ base.heads()[0][0] + base.heads()[1][0])
    head_s = time.perf_counter() - t0
    print(f"ranking throughput: GNN embedding {1 / per_graph:,.0f} graphs/s -> all 15,625 NB201 archs in "
          f"{per_graph * 15625:.2f} s cold (graphs encoded); {head_s * 1e3:.1f} ms from cached embeddings"
          + ("" if len(graphs) >= 15625 else f" (measured on {len(graphs)} graphs, scaled)"))  # fmt: skip
    assert len(order) == 15625
    _dump()
    return 0


if __name__ == "__main__":
    sys.exit(main())
