"""Baseline latency predictors (FLOPs/params linear, lookup table, GBDT) and evaluation metrics.

The conformance tests run every baseline kind through the :class:`Predictor` contract, in the manner
of scikit-learn's ``check_estimator``. Graphs are small synthetic :class:`GraphData` built by hand
from a vocabulary of operator signatures whose per-occurrence cost is known.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hwnas.graph.data import GraphData
from hwnas.graph.encode import ENCODER_VERSION, GRAPH_FEATURES, LOG_SCALED, NODE_FEATURES
from hwnas.predictors import (
    FlopsLinear,
    GBDTPredictor,
    LatencyRecord,
    LookupTable,
    ParamsLinear,
    PredictorError,
    evaluate,
    load_predictor,
    noise_ceiling,
    predictor_kinds,
    save_predictor,
)
from hwnas.predictors.gbdt import graph_feature_matrix

# signature -> (op type, flops, params, cost in ms of one occurrence)
VOCAB: dict[str, tuple[str, int, int, float]] = {
    "Conv|k3x3|s1|g1|c16>16|32x32": ("Conv", 4_718_592, 2_304, 0.100),
    "Conv|k1x1|s1|g1|c16>16|32x32": ("Conv", 524_288, 256, 0.013),
    "Conv|k3x3|s1|g1|c32>32|16x16": ("Conv", 4_718_592, 9_216, 0.090),
    "Conv|k3x3|s2|g1|c16>32|16x16": ("Conv", 2_359_296, 4_608, 0.050),
    "AveragePool|k3x3|s1|16|32x32": ("AveragePool", 147_456, 0, 0.008),
    "Relu|16|32x32": ("Relu", 16_384, 0, 0.004),
    "Add|16|32x32": ("Add", 16_384, 0, 0.003),
    "Gemm|c64>10": ("Gemm", 1_280, 650, 0.002),
}
OVERHEAD_MS = 0.5
KEYS = list(VOCAB)
_GF = {name: i for i, name in enumerate(GRAPH_FEATURES)}
_NF = {name: i for i, name in enumerate(NODE_FEATURES)}


def make_graph(counts: dict[str, int]) -> GraphData:
    """A chain graph with ``counts[key]`` nodes of each signature, features filled like the encoder's."""
    keys = [k for k in KEYS for _ in range(counts.get(k, 0))]
    n = len(keys)
    x = np.zeros((n, len(NODE_FEATURES)), dtype=np.float32)
    gf = np.zeros(len(GRAPH_FEATURES), dtype=np.float64)
    flops = params = 0
    for i, k in enumerate(keys):
        op, f, p, _ = VOCAB[k]
        x[i, _NF[f"op_{op}"]] = 1.0
        x[i, _NF["flops"]] = np.log1p(f) if "flops" in LOG_SCALED else f
        gf[_GF[f"count_{op}"]] += 1
        flops += f
        params += p
    gf[_GF["flops"]], gf[_GF["params"]], gf[_GF["num_nodes"]] = flops, params, n
    edge_index = np.array([np.arange(n - 1), np.arange(1, n)], dtype=np.int64).reshape(2, -1)
    return GraphData(x, edge_index, gf.astype(np.float32), tuple(VOCAB[k][0] for k in keys), tuple(keys), flops, params)


def true_latency(counts: dict[str, int]) -> float:
    return OVERHEAD_MS + sum(VOCAB[k][3] * c for k, c in counts.items())


def make_records(n: int, seed: int, noise: float = 0.02, device: str = "pi4") -> list[LatencyRecord]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        counts = {k: int(c) for k, c in zip(KEYS, rng.integers(0, 6, size=len(KEYS)))}
        lat = true_latency(counts) * (1.0 + noise * rng.standard_normal())
        out.append(LatencyRecord(f"m{seed}-{i}", make_graph(counts), device, float(lat), "synthetic"))
    return out


@pytest.fixture(scope="module")
def train() -> list[LatencyRecord]:
    return make_records(40, seed=1)


@pytest.fixture(scope="module")
def test_set() -> list[LatencyRecord]:
    return make_records(30, seed=2, noise=0.0)


BASELINES = {
    "flops": FlopsLinear,
    "params": ParamsLinear,
    "lut": LookupTable,
    "gbdt": GBDTPredictor,
}
#: Kinds expected to rank the held-out synthetic models well (latency is ~ linear in FLOPs there).
GOOD_RANKERS = {"flops", "lut", "gbdt"}


@pytest.fixture(scope="module")
def fitted(train: list[LatencyRecord]) -> dict[str, object]:
    return {kind: cls().fit(train) for kind, cls in BASELINES.items()}


# --------------------------------------------------------------------------- conformance


def test_predictor_kinds() -> None:
    kinds = predictor_kinds()
    assert {k: kinds[k] for k in BASELINES} == BASELINES
    assert all(cls.kind == k for k, cls in kinds.items())
    assert predictor_kinds() is not kinds  # a fresh dict, not a registry


def test_import_does_not_pull_torch() -> None:
    code = "import sys, hwnas.predictors; sys.exit(1 if 'torch' in sys.modules else 0)"
    root = Path(__file__).resolve().parent.parent
    assert subprocess.run([sys.executable, "-c", code], cwd=root, env={"PYTHONPATH": str(root)}).returncode == 0


@pytest.mark.parametrize("kind", BASELINES)
def test_constructor_only_stores_params(kind: str) -> None:
    pred = BASELINES[kind]()
    config = pred.get_config()
    json.dumps(config)
    clone = BASELINES[kind](**config)
    assert clone.get_config() == config
    assert not [a for a in vars(pred) if a.endswith("_")]
    assert pred.devices == []


@pytest.mark.parametrize("kind", BASELINES)
def test_fit_returns_self_and_predict_contract(kind: str, train: list[LatencyRecord], test_set: list[LatencyRecord]) -> None:
    pred = BASELINES[kind]()
    assert pred.fit(train) is pred
    assert pred.devices == ["pi4"]
    y = pred.predict([r.graph for r in test_set])
    assert y.shape == (len(test_set),) and y.dtype == np.float64
    assert np.all(np.isfinite(y)) and np.all(y > 0)
    assert np.array_equal(pred.predict([r.graph for r in test_set], device="pi4"), y)
    assert pred.predict([]).shape == (0,)
    with pytest.raises(PredictorError, match="unknown device"):
        pred.predict([test_set[0].graph], device="jetson")
    # refitting is deterministic
    assert np.array_equal(BASELINES[kind]().fit(train).predict([r.graph for r in test_set]), y)


@pytest.mark.parametrize("kind", sorted(GOOD_RANKERS))
def test_ranks_held_out_models(kind: str, fitted: dict, test_set: list[LatencyRecord]) -> None:
    y = np.array([r.latency_ms for r in test_set])
    m = evaluate(y, fitted[kind].predict([r.graph for r in test_set]))
    assert m["spearman"] > 0.9, m


@pytest.mark.parametrize("kind", BASELINES)
def test_save_load_round_trip(kind: str, fitted: dict, test_set: list[LatencyRecord], tmp_path: Path) -> None:
    pred = fitted[kind]
    path = save_predictor(pred, tmp_path / f"{kind}.json", {"devices": ["pi4"], "spaces": ["synthetic"]})
    raw = path.read_bytes()
    doc = json.loads(raw)  # the whole file is JSON: no pickle anywhere
    assert doc["kind"] == kind and doc["fingerprint"]["encoder_version"] == ENCODER_VERSION
    assert b"pickle" not in raw
    loaded = load_predictor(path, predictor_kinds())
    assert type(loaded.predictor) is type(pred) and loaded.fingerprint["devices"] == ["pi4"]
    graphs = [r.graph for r in test_set]
    assert np.array_equal(loaded.predictor.predict(graphs), pred.predict(graphs))
    assert loaded.predictor.devices == ["pi4"]


@pytest.mark.parametrize("kind", BASELINES)
def test_predict_before_fit(kind: str, test_set: list[LatencyRecord]) -> None:
    with pytest.raises(PredictorError, match="not fitted"):
        BASELINES[kind]().predict([test_set[0].graph])
    with pytest.raises(PredictorError, match="not fitted"):
        BASELINES[kind]().get_state()


@pytest.mark.parametrize("kind", BASELINES)
def test_multi_device_records_refused(kind: str, train: list[LatencyRecord]) -> None:
    mixed = train[:20] + make_records(20, seed=3, device="jetson")
    with pytest.raises(PredictorError, match="one device") as e:
        BASELINES[kind]().fit(mixed)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("kind", BASELINES)
def test_too_few_or_bad_records_refused(kind: str, train: list[LatencyRecord]) -> None:
    with pytest.raises(PredictorError, match="at least"):
        BASELINES[kind]().fit(train[:1])
    with pytest.raises(PredictorError, match="at least"):
        BASELINES[kind]().fit([])
    bad = list(train)
    bad[3] = LatencyRecord("bad", train[3].graph, "pi4", float("nan"))
    with pytest.raises(PredictorError, match="positive"):
        BASELINES[kind]().fit(bad)


def _doc(pred: object, tmp_path: Path) -> tuple[Path, dict]:
    path = save_predictor(pred, tmp_path / "p.json", {})
    return path, json.loads(path.read_text())


@pytest.mark.parametrize("kind", BASELINES)
@pytest.mark.parametrize(
    "corrupt",
    [
        lambda d: d.update(format_version=99),
        lambda d: d["fingerprint"].update(encoder_version=ENCODER_VERSION + 98),
        lambda d: d.update(kind="nonsense"),
        lambda d: d.update(format="something-else"),
    ],
    ids=["format_version", "encoder_version", "kind", "format"],
)
def test_bad_files_refused_with_one_line(kind: str, corrupt, fitted: dict, tmp_path: Path) -> None:
    path, doc = _doc(fitted[kind], tmp_path)
    corrupt(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(PredictorError) as e:
        load_predictor(path, predictor_kinds())
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("kind", BASELINES)
def test_garbage_and_truncated_state_refused(kind: str, fitted: dict, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.json"
    garbage.write_bytes(b"\x80\x04\x95 not json at all")
    with pytest.raises(PredictorError, match="not JSON") as e:
        load_predictor(garbage, predictor_kinds())
    assert "\n" not in str(e.value)
    path, doc = _doc(fitted[kind], tmp_path)
    doc["state"] = {}
    path.write_text(json.dumps(doc))
    with pytest.raises(PredictorError) as e:
        load_predictor(path, predictor_kinds())
    assert "\n" not in str(e.value)


def test_no_pickle_in_predictor_sources() -> None:
    root = Path(__file__).resolve().parent.parent / "hwnas" / "predictors"
    for name in ("__init__.py", "linear.py", "lut.py", "gbdt.py", "metrics.py"):
        text = (root / name).read_text()
        assert "import pickle" not in text and "allow_pickle=True" not in text and "joblib" not in text, name


# ------------------------------------------------------------------------------ linear


@pytest.mark.parametrize("cls", [FlopsLinear, ParamsLinear])
def test_linear_recovers_line_and_power_law(cls: type, train: list[LatencyRecord]) -> None:
    attr = "flops" if cls is FlopsLinear else "params"
    x = np.array([getattr(r.graph, attr) for r in train], dtype=np.float64)
    line = [LatencyRecord(r.key, r.graph, "pi4", 0.5 + 2e-7 * v) for r, v in zip(train, x)]
    p = cls().fit(line)
    np.testing.assert_allclose(p.coef_, [2e-7, 0.5], rtol=1e-6)
    power = [LatencyRecord(r.key, r.graph, "pi4", 3e-4 * v**0.8) for r, v in zip(train, x) if v >= 1]
    q = cls(log_space=True).fit(power)
    np.testing.assert_allclose(q.coef_, [0.8, np.log(3e-4)], rtol=1e-8)


def test_linear_prediction_floor(train: list[LatencyRecord]) -> None:
    p = FlopsLinear().fit(train)
    tiny = make_graph({KEYS[-1]: 1})
    p.coef_ = np.array([1e-9, -100.0])  # a line that would go negative
    y = p.predict([tiny])
    assert y[0] == pytest.approx(0.01 * min(r.latency_ms for r in train))


# ---------------------------------------------------------------------------------- LUT


def test_lut_recovers_costs_exactly_without_noise() -> None:
    records = make_records(40, seed=4, noise=0.0)
    for relative in (False, True):
        lut = LookupTable(relative=relative).fit(records)
        costs = dict(zip(lut.signatures_, lut.costs_))
        assert set(costs) == set(KEYS)
        for k in KEYS:
            assert costs[k] == pytest.approx(VOCAB[k][3], abs=1e-9)
        assert lut.overhead_ms_ == pytest.approx(OVERHEAD_MS, abs=1e-9)
        graphs = [r.graph for r in records]
        np.testing.assert_allclose(lut.predict(graphs), [r.latency_ms for r in records], rtol=1e-9)
        assert lut.unknown_counts(graphs).tolist() == [0] * len(records)


def _graph_with_extra(extra: list[tuple[str, str, int]]) -> GraphData:
    """make_graph({first conv: 1}) plus nodes (signature, op type, flops) not in VOCAB."""
    base = make_graph({KEYS[0]: 1})
    x = np.zeros((len(extra), len(NODE_FEATURES)), dtype=np.float32)
    for i, (_, op, f) in enumerate(extra):
        x[i, _NF["flops"]] = np.log1p(f) if "flops" in LOG_SCALED else f
    return GraphData(
        np.vstack([base.x, x]),
        base.edge_index,
        base.graph_features,
        base.op_types + tuple(e[1] for e in extra),
        base.node_keys + tuple(e[0] for e in extra),
        base.flops,
        base.params,
    )


def test_lut_unknown_signatures_fall_back_per_op_type() -> None:
    records = make_records(40, seed=4, noise=0.0)
    g = _graph_with_extra([("Conv|k5x5|new", "Conv", 1_000_000), ("Softmax|10", "Softmax", 10)])
    known = OVERHEAD_MS + VOCAB[KEYS[0]][3]
    conv = [k for k in KEYS if VOCAB[k][0] == "Conv"]
    rate = sum(VOCAB[k][3] for k in conv) / sum(VOCAB[k][1] for k in conv)  # ms per FLOP of Conv
    median = float(np.median([VOCAB[k][3] for k in KEYS]))

    lut = LookupTable().fit(records)  # scale_by="flops"
    assert lut.predict([g])[0] == pytest.approx(known + rate * 1_000_000 + median, rel=1e-5)
    assert lut.unknown_counts([g, records[0].graph]).tolist() == [2, 0]

    flat = LookupTable(scale_by=None).fit(records)
    conv_mean = float(np.mean([VOCAB[k][3] for k in conv]))
    assert flat.predict([g])[0] == pytest.approx(known + conv_mean + median, rel=1e-7)

    with pytest.raises(PredictorError, match="not a node feature"):
        LookupTable(scale_by="nonsense").fit(records)


def test_lut_fit_profile_averages_duplicates(tmp_path: Path) -> None:
    a, b = KEYS[0], KEYS[5]
    lut = LookupTable().fit_profile([{a: 0.1, b: 0.004}, {a: 0.3}], device="pi4", overhead_ms=0.2)
    assert lut.devices == ["pi4"]
    costs = dict(zip(lut.signatures_, lut.costs_))
    assert costs == {a: pytest.approx(0.2), b: pytest.approx(0.004)}
    g = make_graph({a: 2, b: 3})
    assert lut.predict([g])[0] == pytest.approx(0.2 + 2 * 0.2 + 3 * 0.004)
    loaded = load_predictor(save_predictor(lut, tmp_path / "lut.json", {}), predictor_kinds()).predictor
    assert np.array_equal(loaded.predict([g]), lut.predict([g]))
    with pytest.raises(PredictorError, match="at least one"):
        LookupTable().fit_profile([], device="pi4")
    with pytest.raises(PredictorError, match="non-negative"):
        LookupTable().fit_profile([{a: -1.0}], device="pi4")


# --------------------------------------------------------------------------------- GBDT


def test_gbdt_numpy_traversal_equals_sklearn(fitted: dict, test_set: list[LatencyRecord], tmp_path: Path) -> None:
    pred = fitted["gbdt"]
    assert pred.get_config() == {
        "n_estimators": 300, "max_depth": 3, "learning_rate": 0.05, "subsample": 0.8, "random_state": 0,
        "arch_features": True,
    }  # fmt: skip
    graphs = [r.graph for r in test_set] + [make_graph({KEYS[i]: i + 1}) for i in range(len(KEYS))]
    X = graph_feature_matrix(graphs)
    sk = pred.model_.predict(X)
    np.testing.assert_allclose(pred._raw_predict(X), sk, rtol=0, atol=1e-9)
    np.testing.assert_allclose(np.log(pred.predict(graphs)), sk, rtol=0, atol=1e-9)
    loaded = load_predictor(save_predictor(pred, tmp_path / "g.json", {}), predictor_kinds()).predictor
    assert not hasattr(loaded, "model_")
    np.testing.assert_allclose(np.log(loaded.predict(graphs)), sk, rtol=0, atol=1e-9)
    meta, arrays = pred.get_state()
    assert len(arrays) <= 8  # trees concatenated, not one array per tree


def test_gbdt_refuses_graphs_with_other_feature_count(fitted: dict) -> None:
    g = make_graph({KEYS[0]: 1})
    short = GraphData(g.x, g.edge_index, g.graph_features[:-1], g.op_types, g.node_keys, g.flops, g.params)
    with pytest.raises(PredictorError, match="feature counts differ"):
        fitted["gbdt"].predict([short])


# ------------------------------------------------------------------------------ metrics


def test_evaluate_perfect_prediction() -> None:
    y = [1.0, 2.0, 3.5, 10.0]
    m = evaluate(y, y)
    assert m["n"] == 4 and m["spearman"] == pytest.approx(1.0) and m["kendall_tau_b"] == pytest.approx(1.0)
    assert m["mape"] == 0.0 and m["rmse_log"] == 0.0
    assert m["within_5pct"] == 1.0 and m["within_10pct"] == 1.0


def test_evaluate_known_values_and_ties() -> None:
    m = evaluate([1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 3.3, 4.1])
    # pairs: 5 concordant, 0 discordant, 1 tied in the prediction only -> 5 / sqrt(5 * 6)
    assert m["kendall_tau_b"] == pytest.approx(5 / np.sqrt(30))
    # ranks 1,2,3,4 vs 1.5,1.5,3,4: Pearson of the ranks
    assert m["spearman"] == pytest.approx(np.corrcoef([1, 2, 3, 4], [1.5, 1.5, 3, 4])[0, 1])
    rel = np.array([0.0, 0.5, 0.1, 0.025])
    assert m["mape"] == pytest.approx(rel.mean())
    assert m["within_5pct"] == 0.5 and m["within_10pct"] == 0.75  # 3.3 vs 3.0 is exactly 10 %
    assert m["rmse_log"] == pytest.approx(np.sqrt(np.mean(np.log([1, 0.5, 1.1, 1.025]) ** 2)))


def test_evaluate_validates_input() -> None:
    for true, pred, msg in [
        ([1.0, 2.0], [1.0], "differ in length"),
        ([1.0], [1.0], "at least 2"),
        ([1.0, 0.0], [1.0, 1.0], "positive"),
        ([1.0, 2.0], [1.0, float("nan")], "positive"),
        ([1.0, 2.0], [1.0, -3.0], "positive"),
    ]:
        with pytest.raises(PredictorError, match=msg) as e:
            evaluate(true, pred)
        assert "\n" not in str(e.value)
    const = evaluate([1.0, 2.0, 3.0], [2.0, 2.0, 2.0])
    assert np.isnan(const["spearman"]) and np.isnan(const["kendall_tau_b"])


def test_noise_ceiling_by_hand() -> None:
    # groups a: [1, 3] -> LOO predictions [3, 1]; b: [10, 10.5] -> [10.5, 10]; c is a singleton (left out).
    # ranks of truth 1,2,3,4 vs predictions 2,1,4,3: d^2 = 4 -> spearman = 1 - 6*4/(4*15) = 0.6;
    # within 10 %: 10.5/10 and 10/10.5 only -> 0.5.
    r = noise_ceiling([1.0, 3.0, 10.0, 10.5, 5.0], ["a", "a", "b", "b", "c"])
    assert r["n"] == 4 and r["groups"] == 2
    assert r["spearman"] == pytest.approx(0.6)
    assert r["within_10pct"] == 0.5
    # three identical models: each predicted by the mean of the other two
    r3 = noise_ceiling([1.0, 1.0, 1.3, 5.0, 5.0], [0, 0, 0, 1, 1])
    # group 0 predicts 1.15, 1.15, 1.0 for 1.0, 1.0, 1.3 (all off by > 10 %); group 1 predicts 5, 5 exactly
    assert r3["within_10pct"] == pytest.approx(2 / 5) and r3["groups"] == 2
    with pytest.raises(PredictorError, match="at least one group"):
        noise_ceiling([1.0, 2.0, 3.0], ["a", "b", "c"])
    with pytest.raises(PredictorError, match="differ in length"):
        noise_ceiling([1.0, 2.0], ["a"])


# --------------------------------------------------------------------------- GNN early stopping


def test_validation_split_keeps_every_device_trained() -> None:
    from hwnas.predictors.gnn import MIN_VALIDATION, _validation_split

    measured = np.ones((300, 3), dtype=bool)
    measured[10:, 2] = False  # a device measured on 10 graphs only
    held = _validation_split(measured, 0.1, seed=0)
    assert len(held) == 30 and np.all(np.diff(held) > 0)
    assert measured[held, 2].sum() <= 1  # keeps >= 90% of its 10 graphs
    assert np.array_equal(held, _validation_split(measured, 0.1, seed=0))
    assert not np.array_equal(held, _validation_split(measured, 0.1, seed=1))
    assert len(_validation_split(measured, 0.0, seed=0)) == 0
    small = np.ones((10 * MIN_VALIDATION - 10, 1), dtype=bool)  # 10% would hold out fewer than the minimum
    assert len(_validation_split(small, 0.1, seed=0)) == 0


def test_gnn_keeps_the_epoch_with_lowest_held_out_error(tmp_path: Path) -> None:
    """On noisy data the GNN keeps the best epoch's weights (and says which), and the file keeps
    the record; with ``validation=0`` every graph trains for every epoch."""
    pytest.importorskip("torch")
    from hwnas.predictors.gnn import GNNPredictor

    recs = make_records(260, seed=3, noise=0.3)
    pred = GNNPredictor(epochs=12, hidden=16, validation=0.1).fit(recs)
    errs = pred.validation_errors_
    assert pred.n_validation_ == 26 and len(errs) == 12
    assert pred.best_epoch_ == int(np.argmin(errs)) + 1
    back = load_predictor(save_predictor(pred, tmp_path / "p.json", {}), predictor_kinds()).predictor
    assert (back.best_epoch_, back.n_validation_) == (pred.best_epoch_, 26)
    assert np.allclose(back.validation_errors_, errs, atol=1e-6)
    graphs = [r.graph for r in recs[:20]]
    np.testing.assert_allclose(back.predict(graphs), pred.predict(graphs), rtol=1e-5)
    off = GNNPredictor(epochs=12, hidden=16, validation=0.0).fit(recs)
    assert (off.n_validation_, off.best_epoch_, off.validation_errors_) == (0, 12, [])
