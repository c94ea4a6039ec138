"""Architecture features beside the graph: the space's encoding, attached by the resolver, read by
every learned predictor; one predictor learns a table timed on either form from default graphs."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from hwnas.export import read_manifest
from hwnas.graph import GraphResolver
from hwnas.predictors import GBDTPredictor, PredictorError, load_predictor, predictor_kinds, save_predictor
from hwnas.predictors.base import LatencyRecord
from hwnas.predictors.linear import FlopsLinear
from hwnas.predictors.metrics import evaluate
from hwnas.space import MacroSpace, NB201Space
from hwnas.space.nb201 import OPS
from hwnas.space.nb201_cell import LIVENESS_FEATURES, CellPlan

N_NB201 = 30 + len(LIVENESS_FEATURES)
COST = {"none": 0.3, "skip_connect": 0.05, "nor_conv_1x1": 1.0, "nor_conv_3x3": 3.0, "avg_pool_3x3": 0.6}


def test_space_features() -> None:
    space = NB201Space()
    f = space.arch_features(space.parse("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"))
    named = dict(zip(LIVENESS_FEATURES, f[30:].tolist()))
    assert f.shape == (N_NB201,) and f.dtype == np.float32 and f[:30].sum() == 6
    assert named["live_edge_3"] == 1 and named["live_edge_0"] == 0 and named["dead_convs"] == 1
    assert named["paths"] == 1 and named["live_paths"] == 1 and named["output_live"] == 1
    dead = dict(zip(LIVENESS_FEATURES, space.arch_features(space.decode([0] * 6))[30:].tolist()))
    assert dead["output_live"] == 0 and dead["paths"] == 0 and dead["computed_nodes"] == 0
    macro = MacroSpace()
    m = macro.arch_features(macro.sample(np.random.default_rng(0)))
    assert m.shape == (sum(macro.cardinalities),) and m.sum() == len(macro.cardinalities)


def test_resolver_attaches_features_by_arch_and_by_manifest(nb201_candidates) -> None:
    space = NB201Space()
    (entry, *_) = read_manifest(nb201_candidates)
    by_arch = GraphResolver(None).graph_for(None, "nb201", entry["arch"])
    by_file = GraphResolver(None, [nb201_candidates]).graph_for(entry["sha256"], None, None)
    want = space.arch_features(space.parse(entry["arch"]))
    assert np.array_equal(by_arch.arch_features, want) and np.array_equal(by_file.arch_features, want)
    assert GraphResolver(None).graph_for(None, "nb201", entry["arch"]).arch_features.shape == (N_NB201,)


def _tables(n: int, seed: int) -> tuple[list, np.ndarray, np.ndarray]:
    """Graphs of the default export (reference form) of ``n`` cells with a path, and two toy
    latency tables: every edge timed (reference) and only live edges timed (pruned), 1% noise."""
    space, rng = NB201Space(), np.random.default_rng(seed)
    archs: dict[str, None] = {}
    while len(archs) < n:
        a = space.sample(rng)
        if CellPlan.of([OPS[o] for o in space.encode(a)]).output_live:
            archs[a.spec] = None
    graphs = GraphResolver(None).graphs_for([(None, "nb201", a) for a in archs])
    ref, pruned = [], []
    for a in archs:
        plan = CellPlan.of([OPS[o] for o in space.encode(space.parse(a))])
        ref.append(2.0 + sum(COST[o] for o in plan.ops))
        pruned.append(2.0 + sum(COST[plan.ops[e]] for e in plan.live_edges))
    noise = np.exp(rng.normal(0, 0.01, size=(2, n)))
    return graphs, np.array(ref) * noise[0], np.array(pruned) * noise[1]


@pytest.mark.parametrize("make", [lambda a: GBDTPredictor(n_estimators=150, arch_features=a),
                                  lambda a: FlopsLinear(arch_features=a)], ids=["gbdt", "linear"])
def test_one_predictor_learns_either_form_from_default_graphs(make) -> None:
    graphs, ref, pruned = _tables(400, 3)
    train, test = slice(0, 300), slice(300, None)
    scores = {}
    for form, y in (("reference", ref), ("pruned", pruned)):
        for use in (False, True):
            recs = [LatencyRecord(str(i), g, "dev", float(v)) for i, (g, v) in enumerate(zip(graphs[train], y[train]))]
            pred = make(use).fit(recs)
            assert pred.n_arch_ == (N_NB201 if use else 0)
            scores[form, use] = evaluate(y[test], pred.predict(graphs[test]))
    for form in ("reference", "pruned"):
        assert scores[form, True]["spearman"] >= 0.97, (form, scores[form, True])
        assert scores[form, True]["within_10pct"] >= 0.9, (form, scores[form, True])
    assert scores["pruned", True]["within_10pct"] > scores["pruned", False]["within_10pct"]


def test_arch_predictors_save_load_and_refuse_graphs_without_features(tmp_path) -> None:
    graphs, ref, _ = _tables(40, 4)
    recs = [LatencyRecord(str(i), g, "dev", float(v)) for i, (g, v) in enumerate(zip(graphs, ref))]
    for pred in (GBDTPredictor(n_estimators=20).fit(recs), FlopsLinear(arch_features=True).fit(recs)):
        path = save_predictor(pred, tmp_path / f"{pred.kind}.json", {})
        back = load_predictor(path, predictor_kinds()).predictor
        assert back.n_arch_ == N_NB201
        np.testing.assert_allclose(back.predict(graphs), pred.predict(graphs), rtol=1e-6)
        bare = GraphResolver(None).graph_for(None, "nb201", "|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
        with pytest.raises(PredictorError, match="architecture features"):
            back.predict([dataclasses.replace(bare, arch_features=np.zeros(0, np.float32))])
        # a file from before architecture features (no n_arch in its state) loads and ignores them
        old = make_old(pred, graphs)
        old_doc = json.loads(save_predictor(old, tmp_path / "old.json", {}).read_text())
        old_doc["meta"].pop("n_arch")
        old_doc["config"].pop("arch_features")
        (tmp_path / "old.json").write_text(json.dumps(old_doc))
        loaded = load_predictor(tmp_path / "old.json", predictor_kinds()).predictor
        assert loaded.n_arch_ == 0
        np.testing.assert_allclose(loaded.predict(graphs), old.predict(graphs), rtol=1e-6)


def make_old(pred, graphs):
    """The same kind fitted without architecture features (what an older hwnas wrote)."""
    recs = [LatencyRecord(str(i), g, "dev", 1.0 + i * 0.01) for i, g in enumerate(graphs)]
    if isinstance(pred, GBDTPredictor):
        return GBDTPredictor(n_estimators=20, arch_features=False).fit(recs)
    return FlopsLinear(arch_features=False).fit(recs)
