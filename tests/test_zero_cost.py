"""Zero-cost proxies: reference values on tiny nets, degenerate cells, determinism, errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import require_module

torch = require_module("torch")

from hwnas.evaluate.zero_cost import PROXIES, SCORE_FLOOR, ZeroCostEvaluator, score, score_all  # noqa: E402
from hwnas.space import MacroSpace, NB201Space  # noqa: E402

SPACE = NB201Space()
ALL_NONE = SPACE.parse("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
ALL_SKIP = SPACE.decode([1] * 6)
TINY = dict(batch_size=12, resolution=8, channels=4, cells=1)



pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_synflow_matches_closed_form_on_a_linear_net() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    w1, b1 = net[0].weight.detach().abs().double().numpy(), net[0].bias.detach().abs().double().numpy()
    w2 = net[3].weight.detach().abs().double().numpy()
    # BN removed, |params|, input of ones: R = sum(|W2| (|W1| 1 + |b1|) + |b2|)
    h = w1.sum(1) + b1
    expected = (w1 * w2.sum(0)[:, None]).sum() + (w2 * h[None, :]).sum()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    got = score(net, torch.randn(5, 3), torch.zeros(5, dtype=torch.long), "synflow")
    assert got == pytest.approx(expected, rel=1e-12)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # caller's net untouched


def test_synflow_unclamps_relu6_so_large_activations_do_not_saturate() -> None:
    torch.manual_seed(0)
    lin = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    with torch.no_grad():
        lin[0].weight.mul_(50.0)  # hidden units far above 6 for an all-ones input
    clamped = torch.nn.Sequential(lin[0], torch.nn.ReLU6(), lin[2])
    x, y = torch.randn(5, 3), torch.zeros(5, dtype=torch.long)
    # ReLU6 scored as the ReLU net: a clamp at 6 would cut every gradient through the first layer
    assert score(clamped, x, y, "synflow") == pytest.approx(score(lin, x, y, "synflow"), rel=1e-12)
    assert isinstance(clamped[1], torch.nn.ReLU6)  # the caller's net is untouched


def test_jacob_cov_matches_closed_form_when_jacobians_are_identical() -> None:
    net = torch.nn.Linear(6, 3, bias=False)  # d(sum f)/dx is the same row for every input
    n, k = 5, 1e-5
    got = score(net, torch.randn(n, 6), torch.zeros(n, dtype=torch.long), "jacob_cov")
    # correlation matrix of identical rows is all ones: eigenvalues n, 0, ..., 0
    expected = -((math.log(n + k) + 1 / (n + k)) + (n - 1) * (math.log(k) + 1 / k))
    assert got == pytest.approx(expected, rel=1e-6)


def test_grad_norm_and_snip_on_a_linear_net() -> None:
    torch.manual_seed(1)
    net = torch.nn.Linear(4, 3)
    x, y = torch.randn(8, 4), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    torch.nn.functional.cross_entropy(net(x), y).backward()
    g, w = net.weight.grad.clone(), net.weight.detach()
    net.zero_grad()
    assert score(net, x, y, "grad_norm") == pytest.approx(float(g.norm()), rel=1e-6)
    assert score(net, x, y, "snip") == pytest.approx(float((g * w).abs().sum()), rel=1e-6)
    assert score(net, x, y, "params") == 4 * 3 + 3


def test_every_proxy_is_finite_and_metrics_are_consistent(digits) -> None:
    ev = ZeroCostEvaluator(SPACE, digits, proxy="snip", **TINY)
    for arch in (SPACE.from_index(1), SPACE.from_index(0), ALL_SKIP):
        m = ev.evaluate(arch)
        assert set(m.extra["all"]) == set(PROXIES)
        assert all(math.isfinite(v) for v in m.extra["all"].values())
        assert m.accuracy == m.extra["score"] == m.extra["all"]["snip"] > 0
        assert m.source == "zero-cost:snip" and m.cost_s > 0
        json.dumps(m.extra)
    only = ZeroCostEvaluator(SPACE, digits, proxy="params", all_proxies=False, **TINY).evaluate(ALL_SKIP)
    assert only.extra["all"] == {"params": ev.evaluate(ALL_SKIP).extra["all"]["params"]}


def test_all_none_cell_scores_lowest(digits) -> None:
    ev = ZeroCostEvaluator(SPACE, digits, **TINY)
    others = [ev.evaluate(a).extra["all"] for a in (ALL_SKIP, SPACE.from_index(1), SPACE.from_index(7))]
    dead = ev.evaluate(ALL_NONE).extra["all"]
    for proxy in ("synflow", "grad_norm", "snip", "jacob_cov"):
        assert dead[proxy] < min(o[proxy] for o in others), proxy
    assert dead["synflow"] == 0.0 and dead["jacob_cov"] == SCORE_FLOOR and math.isfinite(dead["jacob_cov"])


def test_deterministic_given_seed(digits) -> None:
    arch = SPACE.from_index(3)
    a = ZeroCostEvaluator(SPACE, digits, seed=5, **TINY).evaluate(arch).extra["all"]
    b = ZeroCostEvaluator(SPACE, digits, seed=5, **TINY).evaluate(arch).extra["all"]
    c = ZeroCostEvaluator(SPACE, digits, seed=6, **TINY).evaluate(arch).extra["all"]
    assert a == b
    assert a["synflow"] != c["synflow"] and a["params"] == c["params"]


def test_score_all_subset_and_bad_names(digits) -> None:
    ev = ZeroCostEvaluator(SPACE, digits, **TINY)
    x, y = ev.batch
    assert x.shape == (12, 3, 8, 8) and y.dtype == torch.int64
    got = score_all(ev.network(ALL_SKIP), x, y, ("params", "synflow"))
    assert list(got) == ["params", "synflow"]
    with pytest.raises(ValueError, match="synflow, snip, grad_norm, jacob_cov, params"):
        ZeroCostEvaluator(SPACE, digits, proxy="naswot")
    with pytest.raises(ValueError, match="choose one of"):
        score(ev.network(ALL_SKIP), x, y, "fisher")


def test_other_space_arch_is_refused(digits) -> None:
    ev = ZeroCostEvaluator(SPACE, digits, **TINY)
    macro_arch = MacroSpace().sample(np.random.default_rng(0))
    with pytest.raises(ValueError, match="nb201"):
        ev.evaluate(macro_arch)
