"""NB201 supernet, weight-sharing evaluator and DARTS with a latency term (tiny nets, fixed seeds)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import require_module

torch = require_module("torch")

from hwnas.evaluate.supernet import SupernetEvaluator  # noqa: E402
from hwnas.nets.nb201_net import NB201Network  # noqa: E402
from hwnas.nets.nb201_supernet import NB201Supernet  # noqa: E402
from hwnas.space import MacroSpace, NB201Space  # noqa: E402
from hwnas.space.nb201 import OPS  # noqa: E402
from hwnas.strategy.darts import DARTS  # noqa: E402

SPACE = NB201Space()
ALL_NONE = SPACE.parse("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
#: Explicit synthetic per-edge latency table (ms): conv3x3 expensive, conv1x1 moderate, the rest cheap.
TABLE = np.tile([0.0, 0.05, 1.0, 5.0, 0.3], (6, 1))
CONV3 = OPS.index("nor_conv_3x3")
TINY_DARTS = dict(channels=4, cells=1, resolution=8, batch_size=32, alpha_lr=3e-3)


pytestmark = pytest.mark.usefixtures("torch_one_thread")



@pytest.fixture(scope="module")
def trained(digits):
    torch.set_num_threads(1)
    return SupernetEvaluator(SPACE, digits, epochs=2, channels=4, resolution=8, seed=0).train()


# -- the supernet network ------------------------------------------------------------------------
def test_single_path_equals_the_standalone_network() -> None:
    torch.manual_seed(0)
    sup = NB201Supernet(channels=4, cells=2).eval()
    ops = [3, 1, 2, 0, 4, 3]
    net = NB201Network([OPS[o] for o in ops], channels=4, cells_per_stage=2).eval()
    state = {}
    for k, v in sup.state_dict().items():
        parts = k.split(".")
        if parts[0] == "layers" and parts[2] == "edges":  # layers.i.edges.e.ops.o.rest -> cells.i.edge_ops.e.rest
            if int(parts[5]) == ops[int(parts[3])]:
                state[".".join(["cells", parts[1], "edge_ops", parts[3], *parts[6:]])] = v
        else:
            state[k.replace("layers.", "cells.", 1)] = v
    net.load_state_dict(state)  # strict: every weight of the standalone net comes from the path
    x = torch.randn(2, 3, 8, 8)
    assert torch.allclose(sup(x, ops), net(x), atol=1e-6)
    onehot = torch.nn.functional.one_hot(torch.tensor(ops), 5).float()
    assert torch.allclose(sup(x, onehot), net(x), atol=1e-6)
    assert not torch.allclose(sup(x, torch.full((6, 5), 0.2)), net(x), atol=1e-3)
    with pytest.raises(ValueError, match="6 op indices"):
        sup(x, [1, 2, 3])
    with pytest.raises(ValueError, match="6x5"):
        sup(x, torch.ones(6, 4))


# -- weight-sharing evaluator --------------------------------------------------------------------
def test_supernet_evaluator_scores_and_leaves_weights_alone(trained) -> None:
    before = {k: v.clone() for k, v in trained.net_.state_dict().items()}
    good = trained.evaluate(SPACE.from_index(1))  # conv-rich cell
    dead = trained.evaluate(ALL_NONE)
    assert 0.0 <= dead.accuracy <= 100.0 and 0.0 <= good.accuracy <= 100.0
    assert good.accuracy > dead.accuracy + 5.0  # the all-none cell cannot see its input: chance (10 %)
    assert good.source == "supernet:digits" and good.extra["supernet_train_s"] > 0
    assert trained.evaluate(SPACE.from_index(1)).accuracy == good.accuracy  # deterministic
    after = trained.net_.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN recalibration on a copy only


def test_finetune_changes_the_score_not_the_supernet(trained, digits) -> None:
    ft = SupernetEvaluator(SPACE, digits, epochs=2, channels=4, resolution=8, seed=0, finetune_steps=3)
    ft.net_, ft.train_s_ = trained.net_, trained.train_s_
    before = {k: v.clone() for k, v in trained.net_.state_dict().items()}
    arch = SPACE.from_index(5)
    assert ft.evaluate(arch).extra["val_loss"] != trained.evaluate(arch).extra["val_loss"]
    assert all(torch.equal(before[k], v) for k, v in trained.net_.state_dict().items())


def test_save_load_round_trip(trained, digits, tmp_path) -> None:
    path = tmp_path / "supernet.pt"
    trained.save(path)
    fresh = SupernetEvaluator(SPACE, digits, epochs=2, channels=4, resolution=8, seed=0).load(path)
    for i in (1, 9):
        assert fresh.evaluate(SPACE.from_index(i)).accuracy == trained.evaluate(SPACE.from_index(i)).accuracy
    assert fresh.train_s_ == pytest.approx(trained.train_s_)
    with pytest.raises(ValueError, match="channels=4"):
        SupernetEvaluator(SPACE, digits, channels=8, resolution=8).load(path)
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not an hwnas supernet"):
        fresh.load(tmp_path / "other.pt")


def test_supernet_refuses_other_spaces(digits, trained) -> None:
    with pytest.raises(ValueError, match="nb201 space only"):
        SupernetEvaluator(MacroSpace(), digits)
    with pytest.raises(ValueError, match="nb201 space only"):
        trained.evaluate(MacroSpace().sample(np.random.default_rng(0)))


# -- DARTS ---------------------------------------------------------------------------------------
def test_latency_term_moves_darts_to_faster_cells(digits) -> None:
    free = DARTS(SPACE, digits, op_latency=TABLE, steps_per_ask=15, seed=0, **TINY_DARTS)
    hard = DARTS(SPACE, digits, op_latency=TABLE, budget_ms=3.0, steps_per_ask=15, seed=0, **TINY_DARTS)
    huge = DARTS(SPACE, digits, op_latency=TABLE, budget_ms=3.0, mode="soft", latency_weight=1e3,
                 steps_per_ask=15, seed=0, **TINY_DARTS)  # fmt: skip
    arch_free, arch_hard = free.ask(), hard.ask()
    huge.ask()
    assert hard.table_latency(arch_hard) < free.table_latency(arch_free)
    assert hard.expected_latency() < free.expected_latency()
    conv3 = {name: s.alphas()[:, CONV3] for name, s in (("free", free), ("huge", huge))}
    assert np.all(conv3["huge"] < 0.2) and np.all(conv3["huge"] < conv3["free"])
    assert CONV3 not in SPACE.encode(huge.derive())


def test_state_dict_resumes_exactly(digits) -> None:
    a = DARTS(SPACE, digits, op_latency=TABLE, budget_ms=4.0, steps_per_ask=3, seed=2, **TINY_DARTS)
    b = DARTS(SPACE, digits, op_latency=TABLE, budget_ms=4.0, steps_per_ask=3, seed=2, **TINY_DARTS)
    a.ask()
    b.load_state_dict(json.loads(json.dumps(a.state_dict())))
    assert b.step_ == a.step_ == 3
    nxt_a, nxt_b = a.ask(), b.ask()
    assert nxt_a == nxt_b and np.array_equal(a.alphas(), b.alphas())
    assert all(torch.equal(v, b.net_.state_dict()[k]) for k, v in a.net_.state_dict().items())
    a.tell(nxt_a, 90.0)  # scores are ignored
    assert np.array_equal(a.alphas(), b.alphas())


def test_default_state_stays_small(digits) -> None:
    s = DARTS(SPACE, digits, steps_per_ask=1)
    assert sum(p.numel() for p in s.net_.parameters()) < 110_000  # channels 8, cells 1
    s.ask()
    assert len(json.dumps(s.state_dict())) < 1_100_000


def test_latency_table_fitted_from_latency_of(digits) -> None:
    def latency_of(arch):  # additive per (edge, op), plus 2 ms of fixed overhead
        return 2.0 + 1.5 * float(TABLE[np.arange(6), SPACE.encode(arch)].sum())

    s = DARTS(SPACE, digits, latency_of=latency_of, budget_ms=5.0, seed=1, **TINY_DARTS)
    assert s.latency_fit_["samples"] == 60 and s.latency_fit_["r2"] > 0.999
    rng = np.random.default_rng(7)
    for arch in (SPACE.sample(rng) for _ in range(10)):
        assert s.table_latency(arch) == pytest.approx(latency_of(arch), abs=1e-6)
    assert s.op_latency_.min() >= 0.0


def test_prefilter_picks_the_best_feasible_arch(digits) -> None:
    s = DARTS(SPACE, digits, op_latency=TABLE, steps_per_ask=2, seed=0, **TINY_DARTS)
    s.ask()
    argmax = s.derive()
    assert s.table_latency(argmax) > 0.0
    limit = s.table_latency(argmax) / 2
    s.prefilter = lambda a: s.table_latency(a) <= limit
    got = s.derive()
    assert got != argmax and s.table_latency(got) <= limit
    s.prefilter = lambda a: False
    assert s.derive() == argmax  # nothing feasible: the argmax, for the search to reject


def test_darts_argument_errors(digits) -> None:
    with pytest.raises(ValueError, match="nb201 space only"):
        DARTS(MacroSpace(), digits)
    with pytest.raises(ValueError, match="latency source"):
        DARTS(SPACE, digits, budget_ms=3.0, **TINY_DARTS)
    with pytest.raises(ValueError, match="mode"):
        DARTS(SPACE, digits, mode="medium", **TINY_DARTS)
    with pytest.raises(ValueError, match="6x5"):
        DARTS(SPACE, digits, op_latency=np.ones((6, 4)), **TINY_DARTS)
    with pytest.raises(ValueError, match="no latency table"):
        DARTS(SPACE, digits, **TINY_DARTS).expected_latency()
