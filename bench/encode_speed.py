#!/usr/bin/env python
"""Graph encoding of candidates: built directly (ArchEncoder) against exported through torch.

Three figures, each measured in this run:

1. Milliseconds per architecture to get a candidate's graph from a cold (empty) graph cache, both
   spaces: ``direct`` (the resolver's default: :class:`hwnas.graph.ArchEncoder`) and ``export``
   (``GraphResolver(direct=False)``: build the torch network, export to ONNX, shape inference,
   encode, cache). Medians over ``--fast-n`` / ``--slow-n`` random architectures, one resolver each
   (so ``direct`` reuses the node templates of earlier networks, as a run does); the first network
   of a fresh encoder, which computes its templates, is printed apart. The exports run after one
   warm-up export (torch's import is not counted). Every direct graph timed is also compared with
   the exported one where both were made.
2. Wall time of ``hwnas predictor predict --space nb201 --all`` (a subprocess: start-up included)
   with an empty graph and embedding cache, after training a small GNN (``--epochs``) on
   ``--train`` NB201 cells whose latencies come from the shared NAS-Bench-201 table (``--device``
   column), imported into a throwaway latency database.
3. The share of a predictor-source search's wall time spent making graphs: ``hwnas search
   --strategy predictor --evaluator tabular --latency-source predictor`` (``--evals`` evaluations,
   budget: the 30th percentile of the imported latencies), from its own ``result.json``
   (``graph_encode_s`` / ``wall_s``); and what that share would be with the export path (its
   graphs made at the ``export`` median above).

    python bench/encode_speed.py [--fast-n 300] [--slow-n 30] [--train 200] [--evals 60]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import csv
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
NB201_DATA = Path(os.environ.get("HWNAS_NB201_DATA", ROOT.parent / "shared" / "datasets" / "nb201"))


def _hwnas(*args: str) -> tuple[float, str]:
    """Run ``hwnas ARGS`` in a subprocess; its wall time and stdout (exits on failure)."""
    cmd = [sys.executable, "-c", "import sys; from hwnas.cli import main; sys.exit(main(sys.argv[1:]))", *args]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    took = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"hwnas {' '.join(args)} failed: {(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")
    return took, proc.stdout


def _same(a, b) -> bool:
    return (
        all(np.array_equal(getattr(a, f), getattr(b, f)) for f in ("x", "edge_index", "graph_features"))
        and (a.op_types, a.node_keys, a.node_names, a.flops, a.params)
        == (b.op_types, b.node_keys, b.node_names, b.flops, b.params)
    )


def per_arch(fast_n: int, slow_n: int, seed: int) -> dict[str, dict[str, float]]:
    from hwnas.graph import ArchEncoder, GraphCache, GraphResolver
    from hwnas.space import get_space

    out = {}
    for name in ("nb201", "macro"):
        space = get_space(name)
        rng = np.random.default_rng(seed)
        archs = list(dict.fromkeys(space.sample(rng).spec for _ in range(fast_n)))
        t0 = time.perf_counter()
        ArchEncoder().encode(space, space.parse(archs[-1]))
        first_ms = (time.perf_counter() - t0) * 1e3
        with tempfile.TemporaryDirectory() as tmp:
            fast = GraphResolver(GraphCache(Path(tmp) / "direct"))
            fast_s, fast_graphs = [], {}
            for spec in archs:
                t0 = time.perf_counter()
                fast_graphs[spec] = fast.graph_for(None, name, spec)
                fast_s.append(time.perf_counter() - t0)
            slow = GraphResolver(GraphCache(Path(tmp) / "export"), direct=False)
            slow.graph_for(None, name, space.sample(np.random.default_rng(seed + 1)).spec)  # warm-up: torch's import
            slow_s, equal = [], 0
            for spec in archs[:slow_n]:
                t0 = time.perf_counter()
                g = slow.graph_for(None, name, spec)
                slow_s.append(time.perf_counter() - t0)
                equal += _same(g, fast_graphs[spec])
        f, s = statistics.median(fast_s) * 1e3, statistics.median(slow_s) * 1e3
        out[name] = {"direct_ms": f, "direct_p90_ms": float(np.percentile(fast_s, 90) * 1e3), "first_ms": first_ms,
                     "export_ms": s, "speedup": s / f, "direct_n": len(fast_s), "export_n": len(slow_s),
                     "equal": equal}  # fmt: skip
        print(f"{name:6s} direct {f:6.2f} ms/arch (p90 {out[name]['direct_p90_ms']:.2f}; first network of a fresh "
              f"encoder {first_ms:.0f} ms; n={len(fast_s)})   export {s:7.1f} ms/arch (n={len(slow_s)})   "
              f"{s / f:5.0f}x   direct == export for {equal}/{len(slow_s)}", flush=True)  # fmt: skip
    return out


def make_db(folder: Path, device: str, n: int, seed: int) -> tuple[Path, float]:
    """A latency DB of ``n`` random NB201 cells on ``device`` (the shared table's column); returns
    it and the 30th percentile of those latencies."""
    table = NB201_DATA / "latency_ms.csv"
    if not table.exists():
        sys.exit(f"NAS-Bench-201 latency table not found at {table} (set HWNAS_NB201_DATA)")
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f))
    if device not in rows[0]:
        sys.exit(f"--device {device}: not a column of {table}")
    pick = np.random.default_rng(seed).choice(len(rows), size=n, replace=False)
    lat = [(rows[i]["arch_str"], float(rows[i][device])) for i in pick]
    path = folder / "lat.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["space", "arch", "device", "latency_ms"])
        w.writerows(["nb201", a, device, v] for a, v in lat)
    db = folder / "lat.db"
    _hwnas("db", "import-csv", str(path), "--db", str(db))
    return db, float(np.percentile([v for _, v in lat], 30))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fast-n", type=int, default=300, help="architectures per space for the direct median")
    ap.add_argument("--slow-n", type=int, default=30, help="architectures per space for the export median")
    ap.add_argument("--train", type=int, default=200, help="NB201 cells to train the predictor on")
    ap.add_argument("--epochs", type=int, default=20, help="GNN training epochs")
    ap.add_argument("--device", default="pixel3", help="column of the shared NB201 latency table")
    ap.add_argument("--evals", type=int, default=60, help="evaluations of the search")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", metavar="FILE", help="also write the figures to FILE")
    args = ap.parse_args()

    print(f"-- 1. ms per architecture, cold graph cache ({os.cpu_count()} cores)", flush=True)
    figures: dict = {"per_arch": per_arch(args.fast_n, args.slow_n, args.seed)}

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        db, budget = make_db(work, args.device, args.train, args.seed)
        pred = work / "pred.json"
        took, _ = _hwnas("predictor", "train", "--kind", "gnn", "--db", str(db), "--device", args.device,
                         "--epochs", str(args.epochs), "--cache", str(work / "train-cache"), "--out", str(pred))  # fmt: skip
        print(f"-- 2. predictor predict --all (GNN trained on {args.train} cells of {args.device}, {args.epochs} "
              f"epochs, in {took:.0f} s)", flush=True)  # fmt: skip
        took, _ = _hwnas("predictor", "predict", "--model", str(pred), "--space", "nb201", "--all", "--json",
                         "--cache", str(work / "empty-cache"), "--out", str(work / "all.csv"))  # fmt: skip
        with open(work / "all.csv") as f:
            n_rows = sum(1 for _ in f) - 1
        figures["predict_all_s"] = took
        print(f"hwnas predictor predict --space nb201 --all from an empty cache: {took:.1f} s for {n_rows} "
              f"architectures ({took / n_rows * 1e3:.2f} ms each, start-up included)", flush=True)  # fmt: skip

        print(f"-- 3. predictor-source search, {args.evals} evaluations, budget {budget:.3f} ms", flush=True)
        out = work / "search"
        _hwnas("search", "--space", "nb201", "--strategy", "predictor", "--evaluator", "tabular",
               "--latency-source", "predictor", "--predictor", str(pred), "--device", args.device,
               "--latency-budget-ms", f"{budget:.6g}", "--budget-evals", str(args.evals), "--seed", str(args.seed),
               "--cache", str(work / "search-cache"), "--db", str(db), "--out", str(out), "--json")  # fmt: skip
        res = json.loads((out / "result.json").read_text())
        wall, enc, n = res["wall_s"], res["graph_encode_s"], res["latency_computed"]
        export_ms = figures["per_arch"]["nb201"]["export_ms"]
        slow_enc = n * export_ms / 1e3
        slow_share = slow_enc / (wall - enc + slow_enc)
        figures["search"] = {"wall_s": wall, "graph_encode_s": enc, "latency_s": res["latency_s"], "graphs": n,
                             "share": enc / wall, "export_share_estimate": slow_share}  # fmt: skip
        print(f"search wall {wall:.2f} s; {n} graphs made in {enc:.2f} s = {enc / wall:.1%} of the wall time "
              f"(latency source in all: {res['latency_s']:.2f} s). With the export path: ~{slow_enc:.0f} s of "
              f"graphs, {slow_share:.0%} of ~{wall - enc + slow_enc:.0f} s", flush=True)  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
