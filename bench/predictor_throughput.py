#!/usr/bin/env python
"""How fast can a GNN predictor rank all 15,625 NB201 cells?

Uses NB201 graphs already in the graph cache (run ``bench/predictor_nb201.py`` first, or pass
``--encode N`` to encode N archs here), fits a GNN on them for a few epochs (the speed of
inference does not depend on training), then times, median of ``--repeats``:

* cold: GNN embedding of 15,625 graphs (the cached graphs tiled to 15,625) + head + argsort;
* warm: what ``hwnas predictor predict`` does once the embeddings are cached: load the
  embedding cache from disk, one head product, argsort.

    python bench/predictor_throughput.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time

import numpy as np

N_NB201 = 15625


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--mlp-depth", type=int, default=1, help="GIN update depth of the predictor")
    ap.add_argument("--encode", type=int, default=300, help="NB201 archs to take from (or add to) the graph cache")
    args = ap.parse_args()

    import torch

    from hwnas.graph.cache import GraphCache, default_cache_dir
    from hwnas.graph.resolve import GraphResolver
    from hwnas.predictors.base import LatencyRecord
    from hwnas.predictors.embed_cache import EmbeddingCache
    from hwnas.predictors.gnn import GNNPredictor
    from hwnas.space import NB201Space

    space = NB201Space()
    idx = np.random.default_rng(0).choice(N_NB201, size=args.encode, replace=False)
    archs = [space.from_index(int(i)).spec for i in idx]
    graphs = GraphResolver(GraphCache(default_cache_dir())).graphs_for([(None, "nb201", a) for a in archs], workers=2)
    recs = [LatencyRecord(a, g, "dev", 1.0 + g.flops / 1e8) for a, g in zip(archs, graphs)]
    pred = GNNPredictor(epochs=2, mlp_depth=args.mlp_depth).fit(recs)
    big = (graphs * (N_NB201 // len(graphs) + 1))[:N_NB201]
    keys = [f"nb201:{i}" for i in range(N_NB201)]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {len(graphs)} distinct graphs tiled to {N_NB201}, "
          f"{np.mean([g.num_nodes for g in big]):.0f} nodes each on average")  # fmt: skip

    cold = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        emb = pred.embed(big)
        order = np.argsort(pred.predict_log_from_embedding(emb))
        cold.append(time.perf_counter() - t0)
    cache = EmbeddingCache(tempfile.mkdtemp(prefix="hwnas-emb-"))
    digest = pred.embedding_digest()
    cache.store(digest, keys, emb)
    warm = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        table = cache.load(digest)
        e = np.stack([table[k] for k in keys])
        order = np.argsort(pred.predict_log_from_embedding(e))
        warm.append(time.perf_counter() - t0)
    assert len(order) == N_NB201
    print(f"cold (GNN forward on every graph): median {statistics.median(cold):.2f} s  (all: {', '.join(f'{t:.2f}' for t in cold)})")
    print(f"warm (cached embeddings, any adapted device): median {statistics.median(warm) * 1e3:.0f} ms")
    print(f"goal < 1 s: cold {'yes' if statistics.median(cold) < 1 else 'NO'}, warm {'yes' if statistics.median(warm) < 1 else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
