"""Strategies' ask/tell contract, and the study's storage and resume, on the NB201 tabular benchmark."""

from __future__ import annotations

import json

import pytest

from hwnas.constraints import Constraint, Objective
from hwnas.evaluate import NB201Tabular
from hwnas.space import NB201Space
from hwnas.strategy import RandomSearch, RegularizedEvolution
from hwnas.study import Study, TrialState

SPACE = NB201Space()
TABULAR = NB201Tabular()


def latency(arch) -> float:
    """A stand-in latency for tests: conv3x3 edges are expensive."""
    ops = [t.split("~")[0] for t in arch.spec.split("|") if t and t != "+"]
    return 1.0 + 2.0 * ops.count("nor_conv_3x3") + 0.5 * ops.count("nor_conv_1x1")


def make_eval(objective):
    def evaluate(arch):
        m = {"accuracy": TABULAR.evaluate(arch).accuracy, "latency_ms": latency(arch)}
        return m, objective.score(m)

    return evaluate


STRATEGIES = [lambda seed: RandomSearch(SPACE, seed), lambda seed: RegularizedEvolution(SPACE, 10, 3, seed)]


@pytest.mark.parametrize("make", STRATEGIES, ids=["random", "evolution"])
def test_strategy_conformance(make) -> None:
    a, b = make(3), make(3)
    objective = Objective(None, "hard")
    ev = make_eval(objective)
    for _ in range(25):  # same seed, same asks and tells -> same proposals
        x, y = a.ask(), b.ask()
        assert x == y and SPACE.contains(x)
        a.tell(x, ev(x)[1])
        b.tell(y, ev(y)[1])
    c = make(99)
    c.load_state_dict(json.loads(json.dumps(a.state_dict())))
    assert [c.ask() for _ in range(5)] == [a.ask() for _ in range(5)]


def test_hard_budget_never_accepts_infeasible(tmp_path) -> None:
    objective = Objective(Constraint("latency_ms", 5.0), "hard")
    with Study(tmp_path / "s.db", RegularizedEvolution(SPACE, 10, 3, seed=1)) as study:
        best = study.optimize(make_eval(objective), n_trials=60)
        assert best is not None and best.metrics["latency_ms"] <= 5.0
        rejected = [t for t in study.trials() if t.state == TrialState.REJECTED]
        assert rejected and all(t.metrics["latency_ms"] > 5.0 for t in rejected)


def test_study_resumes_after_interrupt_without_losing_or_repeating(tmp_path) -> None:
    calls: list[str] = []
    objective = Objective(Constraint("latency_ms", 7.0), "soft")
    inner = make_eval(objective)

    def evaluate(arch):
        calls.append(arch.spec)
        if len(calls) == 8:
            raise KeyboardInterrupt  # the user presses Ctrl-C during the 8th evaluation
        return inner(arch)

    path = tmp_path / "study.db"
    study = Study(path, RegularizedEvolution(SPACE, 5, 2, seed=4))
    with pytest.raises(KeyboardInterrupt):
        study.optimize(evaluate, n_trials=20)
    done_before = [t for t in study.trials() if t.state != TrialState.PENDING]
    study.close()
    assert len(done_before) == 7

    with Study(path, RegularizedEvolution(SPACE, 5, 2, seed=4)) as again:
        best = again.optimize(evaluate, n_trials=20)
        trials = again.trials()
        assert [t for t in trials if t.number <= 7 and t.state != TrialState.PENDING] == done_before
        assert sum(t.state != TrialState.PENDING for t in trials) == 20 and best is not None
        assert calls[8] == calls[7]  # the interrupted trial is the first evaluated after resuming
    with pytest.raises(ValueError, match="use another --out"):
        Study(path, RandomSearch(SPACE, 0))


def test_failures_are_recorded_and_search_goes_on(tmp_path) -> None:
    def evaluate(arch):
        if "nor_conv_3x3~0|+" in arch.spec:
            raise RuntimeError("out of memory\nsecond line")
        return {"accuracy": 1.0}, 1.0

    with Study(tmp_path / "f.db", RandomSearch(SPACE, 0)) as study:
        study.optimize(evaluate, n_trials=30)
        failed = [t for t in study.trials() if t.state == TrialState.FAILED]
        assert failed and all(t.error == "out of memory" for t in failed)
        assert len(study.trials()) == 30
