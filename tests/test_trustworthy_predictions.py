"""Predictions that stay sane out of distribution, say so, and come with calibrated intervals.

Latencies are NAS-Bench-201's published pixel3 table (``../shared/datasets/nb201``); graphs are the
encoder's (:class:`hwnas.graph.arch_encode.ArchEncoder`, equal to encoding the exports).
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from conftest import NB201_DATA
from hwnas.graph.arch_encode import ArchEncoder
from hwnas.predictors.base import LatencyRecord, load_predictor, save_predictor
from hwnas.predictors.calibration import calibrate, coverage
from hwnas.predictors.support import RANGE_FACTOR, predict_interval
from hwnas.space import MacroSpace, NB201Space

ENC = ArchEncoder()


@pytest.fixture(scope="module")
def pixel3() -> list[tuple[str, float]]:
    path = NB201_DATA / "latency_ms.csv"
    if not path.exists():
        pytest.fail(f"NAS-Bench-201 latency table missing at {path}")
    with open(path) as f:
        return [(r["arch_str"], float(r["pixel3"])) for r in csv.DictReader(f)]


def records(space, rows) -> list[LatencyRecord]:
    return [LatencyRecord(a, ENC.encode(space, space.parse(a)), "pixel3", y, space.name) for a, y in rows]


def test_gnn_on_50_cells_stays_sane_on_a_feature_value_it_never_saw(pixel3) -> None:
    """The `make run` failure: a GNN fitted on 50 cells predicted 1e-94 ms for cells whose op counts
    no training graph had (a graph feature constant in training, standardised by a 1e-6 floor)."""
    from hwnas.predictors.gnn import GNNPredictor

    space = NB201Space()
    rng = np.random.default_rng(0)
    no_pool = [r for r in pixel3 if "avg_pool" not in r[0]]
    train = records(space, [no_pool[i] for i in rng.choice(len(no_pool), 50, replace=False)])
    pred = GNNPredictor(epochs=40).fit(train)
    unseen = [r for r in pixel3 if r[0].count("avg_pool") >= 2][:40]
    graphs = [ENC.encode(space, space.parse(a)) for a, _ in unseen]
    raw = pred.predict(graphs)
    lo, hi = pred.support_.bounds("pixel3")
    assert np.all(np.isfinite(raw)) and raw.min() > lo / 100  # was ~1e-94 ms before robust scaling
    p = predict_interval(pred, graphs)
    assert p.extrapolated.all()  # an op count no training graph had: outside the support, and said so
    assert np.all((p.mean_ms >= lo) & (p.mean_ms <= hi))
    assert lo == pytest.approx(min(r.latency_ms for r in train) / RANGE_FACTOR)
    assert np.all((p.low_ms <= p.mean_ms) & (p.mean_ms <= p.high_ms))
    truth = np.array([y for _, y in unseen])
    ratio = p.mean_ms / truth
    assert np.median(np.abs(np.log(ratio))) < np.log(3)  # degraded towards the baseline, not to noise


@pytest.mark.parametrize("space_name", ["nb201", "macro"])
@pytest.mark.parametrize("kind", ["flops", "gbdt", "lut"])
def test_no_unflagged_prediction_outside_the_documented_range(space_name, kind, pixel3) -> None:
    """Property: over random unseen cells, every prediction is inside [min/2, 2 max] of the training
    latencies, and every graph outside the training support (or whose raw prediction had to be
    brought into the range) is flagged."""
    from hwnas.predictors import predictor_kinds

    space = NB201Space() if space_name == "nb201" else MacroSpace()
    rng = np.random.default_rng(1)
    if space_name == "nb201":
        rows = [pixel3[i] for i in rng.choice(len(pixel3), 260, replace=False)]
    else:  # no published macro table: a synthetic device (named so), latency from FLOPs and depth with noise
        archs = [space.sample(rng) for _ in range(260)]
        rows = []
        for a in archs:
            g = ENC.encode(space, a)
            rows.append((a.spec, float(2e-8 * g.flops + 0.01 * g.num_nodes) * float(np.exp(0.1 * rng.standard_normal()))))
    train, test = records(space, rows[:60]), records(space, rows[60:])
    pred = predictor_kinds()[kind]().fit(train)
    graphs = [r.graph for r in test]
    raw = pred.predict(graphs)
    p = predict_interval(pred, graphs)
    lo, hi = pred.support_.bounds("pixel3")
    assert np.all((p.mean_ms >= lo) & (p.mean_ms <= hi)) and np.all((p.low_ms >= lo) & (p.high_ms <= hi))
    assert np.all(p.extrapolated[(raw < lo) | (raw > hi) | ~np.isfinite(raw)])
    assert np.array_equal(p.extrapolated & ~((raw < lo) | (raw > hi)), pred.support_.outside(graphs) & ~((raw < lo) | (raw > hi)))
    inside = ~p.extrapolated
    assert np.allclose(p.mean_ms[inside], raw[inside])  # in the support the prediction is the predictor's own


def test_calibrated_interval_covers_about_its_level_and_survives_a_file(pixel3, tmp_path) -> None:
    from hwnas.predictors import predictor_kinds
    from hwnas.predictors.gbdt import GBDTPredictor

    space = NB201Space()
    rng = np.random.default_rng(2)
    idx = rng.permutation(len(pixel3))
    train = records(space, [pixel3[i] for i in idx[:200]])
    held = records(space, [pixel3[i] for i in idx[200:800]])
    pred = calibrate(GBDTPredictor().fit(train), train, folds=5)
    assert len(pred.calibration_["pixel3"]) == 200
    p = predict_interval(pred, [r.graph for r in held], level=0.9)
    cov = coverage([r.latency_ms for r in held], p.low_ms, p.high_ms)
    assert 0.8 <= cov <= 0.97, cov
    path = save_predictor(pred, tmp_path / "g.json", {"spaces": ["nb201"]})
    back = load_predictor(path, predictor_kinds()).predictor
    q = predict_interval(back, [r.graph for r in held[:20]], level=0.9)
    assert np.allclose(q.low_ms, p.low_ms[:20]) and np.array_equal(q.extrapolated, p.extrapolated[:20])
    assert "support" in json.loads(path.read_text())
    # the quantile the search judges a budget on: 0.5 is the mean, 0.9 under the interval's top
    assert np.allclose(p.quantile_ms(0.5), p.mean_ms)
    q90 = p.quantile_ms(0.9)
    assert np.all((q90 >= p.mean_ms) & (q90 <= p.high_ms))
