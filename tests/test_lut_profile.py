"""Per-node profiles from the agent feed the lookup-table predictor."""

from __future__ import annotations

import numpy as np

from device_agent.cli import main as agent_main
from hwnas.graph.cache import GraphCache
from hwnas.graph.resolve import GraphResolver
from hwnas.predictors.dataset import attach_graphs, device_rows
from hwnas.predictors.lut import LookupTable
from latency_db import LatencyDB


def test_profiled_lut_from_agent_measurements(nb201_candidates, tmp_path) -> None:
    db = tmp_path / "p.db"
    argv = ["run", "--models", str(nb201_candidates), "--db", str(db), "--warmup", "1", "--min-rounds", "3",
            "--max-rounds", "3", "--min-repeat-ms", "1", "--profile-nodes", "3", "--device-name", "prof", "--json"]  # fmt: skip
    assert agent_main(argv) == 0
    with LatencyDB(db) as ldb:
        rows = device_rows(ldb, "prof")
        (m,) = [r for r in ldb.measurements() if r.model_sha256 == rows[0].sha256]
        assert m.samples_ms and len(m.samples_ms) == 3  # profiling did not add samples
    assert len(rows) == 4 and all(r.node_profile for r in rows)
    records = attach_graphs(rows, GraphResolver(GraphCache(tmp_path / "cache"), model_dirs=[nb201_candidates]))
    g = records[0].graph
    matched = sum(name in records[0].node_profile for name in g.node_names)
    assert matched > 0.3 * g.num_nodes  # most kernels keep their ONNX node's name
    lut = LookupTable().fit(records)
    pred = lut.predict([r.graph for r in records])
    y = np.array([r.latency_ms for r in records])
    # four models of different cost: the profiled table orders them as measured (timings on a
    # shared machine are noisy, so no tight error bound here; bench/predictor_local.py has those)
    assert np.all(pred > 0) and np.corrcoef(np.log(pred), np.log(y))[0, 1] > 0.7
    # a bad value is refused by the agent's config check
    assert agent_main(["run", "--models", str(nb201_candidates), "--db", str(db), "--profile-nodes", "-1"]) == 2
