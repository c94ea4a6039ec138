"""GNN predictor on real exported NB201 graphs, few-shot adaptation, and the predictor CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hwnas.graph.cache import GraphCache
from hwnas.graph.resolve import GraphResolver
from hwnas.predictors import predictor_kinds
from hwnas.predictors.adapt import HeadPrior, adapt_head, select_informative
from hwnas.predictors.base import LatencyRecord, PredictorError, load_predictor, save_predictor
from hwnas.predictors.gnn import GNNPredictor
from hwnas.predictors.metrics import evaluate
from hwnas.space import NB201Space

OP_COST = {"none": 0.05, "skip_connect": 0.02, "nor_conv_1x1": 0.3, "nor_conv_3x3": 1.0, "avg_pool_3x3": 0.2}


def device_latency(arch: str, speeds: dict[str, float], base: float) -> float:
    """A synthetic device: base + per-op cost x device-specific speed (additive over edges)."""
    ops = [t.split("~")[0] for t in arch.split("|") if t and t != "+"]
    return base + sum(OP_COST[o] * speeds.get(o, 1.0) for o in ops)


DEVICES = {
    "devA": ({"nor_conv_3x3": 1.0}, 1.0),
    "devB": ({"nor_conv_3x3": 2.0, "avg_pool_3x3": 0.5}, 0.5),
    "devC": ({"nor_conv_1x1": 3.0}, 2.0),
    "devD": ({"skip_connect": 5.0, "none": 3.0}, 0.2),
}


@pytest.fixture(scope="module")
def nb201_graphs(tmp_path_factory):
    space = NB201Space()
    archs = [space.from_index(i) for i in range(0, 15625, 390)][:40]
    resolver = GraphResolver(GraphCache(tmp_path_factory.mktemp("cache")))
    graphs = resolver.graphs_for([(None, "nb201", a.spec) for a in archs])
    return [a.spec for a in archs], graphs


def records(archs, graphs, devices):
    return [
        LatencyRecord(f"nb201:{a}", g, d, device_latency(a, *DEVICES[d]), "nb201")
        for d in devices
        for a, g in zip(archs, graphs)
    ]


@pytest.fixture(scope="module")
def trained(nb201_graphs):
    archs, graphs = nb201_graphs
    pred = GNNPredictor(epochs=60, hidden=32, seed=0).fit(records(archs[:30], graphs[:30], ["devA", "devB", "devC"]))
    return pred


def test_gnn_learns_and_ranks_held_out(nb201_graphs, trained) -> None:
    archs, graphs = nb201_graphs
    for dev in ("devA", "devB", "devC"):
        y = np.array([device_latency(a, *DEVICES[dev]) for a in archs[30:]])
        m = evaluate(y, trained.predict(graphs[30:], device=dev))
        assert m["spearman"] > 0.8, (dev, m)
    with pytest.raises(PredictorError, match="unknown device"):
        trained.predict(graphs[:2], device="devZ")
    with pytest.raises(PredictorError, match="choose one"):
        trained.predict(graphs[:2])


def test_gnn_save_load_identical(tmp_path, nb201_graphs, trained) -> None:
    _, graphs = nb201_graphs
    path = save_predictor(trained, tmp_path / "p.json", {"spaces": ["nb201"], "devices": trained.devices})
    assert json.loads(path.read_text())["kind"] == "gnn"
    loaded = load_predictor(path, predictor_kinds()).predictor
    np.testing.assert_allclose(loaded.predict(graphs, "devB"), trained.predict(graphs, "devB"), rtol=1e-5)


def test_adapt_to_unseen_device_beats_prior(nb201_graphs, trained) -> None:
    archs, graphs = nb201_graphs
    emb = trained.embed(graphs)
    prior = HeadPrior.from_heads(*trained.heads())
    y = np.array([device_latency(a, *DEVICES["devD"]) for a in archs])
    picks = select_informative(prior, emb[:30], 8)
    assert len(set(picks.tolist())) == 8
    res = adapt_head(prior, emb[picks], np.log(y[picks]))
    adapted = trained.with_heads(["devD"], res.w[None, :], np.array([res.b]))
    held = np.setdiff1d(np.arange(len(archs)), picks)
    after = evaluate(y[held], adapted.predict([graphs[i] for i in held]))
    before = evaluate(y[held], np.exp(emb[held] @ prior.mean[:-1] + prior.mean[-1]))
    assert after["spearman"] > before["spearman"] and after["mape"] < before["mape"]
    with pytest.raises(PredictorError, match="too few samples"):
        adapt_head(prior, emb[:2], np.log(y[:2]))


def test_adapt_head_matches_the_evidence_computed_over_the_samples() -> None:
    """adapt_head works in the head's space; the same empirical-Bayes choice, evidence and
    posterior mean follow from the K x K covariance of the samples (the textbook form)."""
    from hwnas.predictors.adapt import NOISE_VARS, PRIOR_SCALES

    rng = np.random.default_rng(3)
    prior = HeadPrior.from_heads(rng.normal(size=(12, 6)), rng.normal(size=12))
    for n in (3, 12, 200):
        emb = rng.normal(size=(n, 6))
        y = emb @ rng.normal(size=6) + 0.5 + 0.1 * rng.normal(size=n)
        phi = np.concatenate([emb, np.ones((n, 1))], axis=1)
        resid = y - phi @ prior.mean
        best = None
        for c in PRIOR_SCALES:
            for s2 in NOISE_VARS:
                cov_y = c * phi @ prior.cov @ phi.T + s2 * np.eye(n)
                ll = -0.5 * (np.linalg.slogdet(cov_y)[1] + resid @ np.linalg.solve(cov_y, resid) + n * np.log(2 * np.pi))
                if best is None or ll > best[0]:
                    best = (ll, c, s2, prior.mean + c * prior.cov @ phi.T @ np.linalg.solve(cov_y, resid))
        res = adapt_head(prior, emb, y)
        assert (res.prior_scale, res.noise_var) == best[1:3]
        assert res.log_evidence == pytest.approx(best[0], rel=1e-9, abs=1e-9)
        assert np.allclose(np.append(res.w, res.b), best[3], rtol=1e-7, atol=1e-9)


def test_pairwise_rank_loss_option(nb201_graphs) -> None:
    archs, graphs = nb201_graphs
    pred = GNNPredictor(epochs=15, hidden=16, rank_weight=1.0).fit(records(archs[:20], graphs[:20], ["devA"]))
    assert pred.predict(graphs[20:]).shape == (len(graphs) - 20,)


def test_inference_path_equals_pyg_message_passing(nb201_graphs, trained) -> None:
    """embed() aggregates with index_add (no PyG call overhead); it must equal PyG's GINConv."""
    import torch

    _, graphs = nb201_graphs
    fast = trained.embed(graphs)
    with torch.no_grad():
        for idx, x, ei, batch, gf in trained._batches(trained._inputs(graphs), np.arange(len(graphs)), 7):
            ref = trained.net_.embed(x, ei, batch, gf, pyg=True).double().numpy()
            np.testing.assert_allclose(fast[idx], ref, rtol=1e-5, atol=1e-5)
