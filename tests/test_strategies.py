"""Every strategy (random, evolution, REINFORCE, predictor-guided, NSGA-II): the ask/tell contract, the
study's storage and resume, plus behaviour that can fail; one file for the strategy extension point."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hwnas.constraints import Constraint, Objective
from hwnas.evaluate import NB201Tabular
from hwnas.space import MacroSpace, NB201Space
from hwnas.strategy import NSGA2, REINFORCE, PredictorSearch, RandomSearch, RegularizedEvolution, non_dominated_sort, pareto_front
from hwnas.strategy.pareto import crowding_distance, hypervolume_2d
from hwnas.study import Study, TrialState

NB201 = NB201Space()
MACRO = MacroSpace()
TABULAR = NB201Tabular()


def nb201_latency(arch) -> float:
    """A stand-in latency for tests: conv3x3 edges are expensive."""
    v = NB201.encode(arch)
    return 1.0 + 2.0 * float(np.sum(v == 3)) + 0.5 * float(np.sum(v == 2))


def make_eval(objective):
    def evaluate(arch):
        m = {"accuracy": TABULAR.evaluate(arch).accuracy, "latency_ms": nb201_latency(arch)}
        return m, objective.score(m)

    return evaluate


def macro_metrics(arch) -> dict[str, float]:
    """Synthetic metrics for the macro space (no table exists): wider/deeper is slower and better."""
    v = MACRO.encode(arch).astype(float)
    weights = np.sin(np.arange(len(v)) * 1.7) + 1.5  # fixed, position-dependent
    return {"accuracy": 50.0 + float(weights @ v) / 3.0, "latency_ms": 1.0 + float(v.sum()) / 4.0}


def metrics_of(arch) -> dict[str, float]:
    if arch.space == "nb201":
        return {"accuracy": TABULAR.evaluate(arch).accuracy, "latency_ms": nb201_latency(arch)}
    return macro_metrics(arch)


OBJECTIVES = {
    "nb201": Objective(Constraint("latency_ms", 7.0), "hard"),
    "macro": Objective(Constraint("latency_ms", 20.0), "hard"),
}
SPACES = {"nb201": NB201, "macro": MACRO}
MAKERS = {
    "random": lambda space, seed: RandomSearch(space, seed),
    "evolution": lambda space, seed: RegularizedEvolution(space, 10, 3, seed),
    "rl": lambda space, seed: REINFORCE(space, lr=0.2, seed=seed),
    "predictor": lambda space, seed: PredictorSearch(space, n_init=6, batch=3, pool=200, seed=seed),
    "predictor-gbdt-ucb": lambda space, seed: PredictorSearch(
        space, n_init=6, batch=4, pool=200, model="gbdt", ensemble=2, acquisition="ucb", seed=seed
    ),
    "nsga2": lambda space, seed: NSGA2(space, population=6, seed=seed),
}


CASES = [(k, s) for k in ("random", "evolution", "rl", "predictor", "nsga2") for s in ("nb201", "macro")] + [
    ("predictor-gbdt-ucb", "macro")
]


@pytest.mark.parametrize("kind,space_name", CASES)
def test_strategy_conformance(kind: str, space_name: str) -> None:
    space, objective, make = SPACES[space_name], OBJECTIVES[space_name], MAKERS[kind]
    a, b = make(space, 3), make(space, 3)
    for _ in range(22):  # same seed, same asks and tells -> same proposals
        x, y = a.ask(), b.ask()
        assert x == y and space.contains(x)
        m = metrics_of(x)
        a.tell(x, objective.score(m), m)
        b.tell(y, objective.score(m), m)
    extra = a.ask()  # one in flight when the state is saved
    c = make(space, 99)
    c.load_state_dict(json.loads(json.dumps(a.state_dict())))
    m = metrics_of(extra)
    for s in (a, c):
        s.tell(extra, objective.score(m), m)
    assert [c.ask() for _ in range(6)] == [a.ask() for _ in range(6)]


@pytest.mark.parametrize("kind", ["rl", "predictor", "nsga2"])
def test_study_runs_and_resumes(kind: str, tmp_path) -> None:
    objective = OBJECTIVES["nb201"]

    def evaluate(arch):
        m = metrics_of(arch)
        return m, objective.score(m)

    with Study(tmp_path / "s.db", MAKERS[kind](NB201, 1)) as study:
        study.optimize(evaluate, n_trials=15)
    with Study(tmp_path / "s.db", MAKERS[kind](NB201, 1)) as again:
        best = again.optimize(evaluate, n_trials=30)
        assert len(again.trials()) == 30 and best is not None and best.metrics["latency_ms"] <= 7.0


def test_bad_parameters_are_refused_in_one_line() -> None:
    for make in (
        lambda: REINFORCE(NB201, lr=0),
        lambda: REINFORCE(NB201, decay=1.0),
        lambda: PredictorSearch(NB201, n_init=1),
        lambda: PredictorSearch(NB201, acquisition="ei"),
        lambda: PredictorSearch(NB201, model="svm"),
        lambda: NSGA2(NB201, objectives=(("accuracy", "up"),)),
        lambda: NSGA2(NB201, population=2),
    ):
        with pytest.raises(ValueError) as err:
            make()
        assert "\n" not in str(err.value)


def test_nsga2_tell_without_its_objectives_is_an_error() -> None:
    nsga = NSGA2(NB201, population=4, seed=0)
    arch = nsga.ask()
    with pytest.raises(ValueError, match=r"without objective\(s\) latency_ms .*metrics: accuracy") as err:
        nsga.tell(arch, 1.0, {"accuracy": 90.0})
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="accuracy"):
        nsga.tell(arch, 1.0, {"accuracy": "n/a", "latency_ms": 2.0})
    nsga.tell(arch, None, {})  # a failed trial: nothing to rank, not an error
    assert nsga.offspring == []


# -- REINFORCE -------------------------------------------------------------------------------
def test_rl_policy_concentrates_on_rewarded_choices() -> None:
    rl = REINFORCE(NB201, lr=0.1, seed=0)
    conv3 = 3  # index of nor_conv_3x3
    before = np.mean([p[conv3] for p in rl.probabilities()])
    for _ in range(150):
        arch = rl.ask()
        rl.tell(arch, float(np.sum(NB201.encode(arch) == conv3)))
    after = [p[conv3] for p in rl.probabilities()]
    assert before == pytest.approx(0.2)
    assert np.mean(after) > 0.5 and min(after) > 0.3


def test_rl_rejections_push_the_policy_away() -> None:
    rl = REINFORCE(NB201, lr=0.1, seed=1)
    pool = 4  # avg_pool_3x3 on the first edge is "over budget"
    for _ in range(150):
        arch = rl.ask()
        rl.tell(arch, None if NB201.encode(arch)[0] == pool else 50.0)
    probs = rl.probabilities()
    assert probs[0][pool] < 0.1  # from 0.2
    assert all(p[pool] > 0.15 for p in probs[1:])  # the other edges were not pushed


def test_rl_respects_prefilter_and_avoids_repeats() -> None:
    rl = REINFORCE(NB201, lr=0.5, seed=2)
    rl.prefilter = lambda a: nb201_latency(a) <= 5.0
    asked = []
    for _ in range(60):
        arch = rl.ask()
        asked.append(arch.spec)
        rl.tell(arch, float(np.sum(NB201.encode(arch) == 2)))
    assert len(set(asked)) == len(asked)
    assert all(nb201_latency(NB201.parse(s)) <= 5.0 for s in asked)


# -- predictor-guided search -----------------------------------------------------------------
def _best_at(strategy, budget: int) -> tuple[float, list[str]]:
    """Best tabular accuracy within ``budget`` distinct evaluations, and every ask made."""
    seen: dict[str, float] = {}
    asked: list[str] = []
    while len(seen) < budget and len(asked) < 10 * budget:
        arch = strategy.ask()
        asked.append(arch.spec)
        acc = seen.get(arch.spec)
        if acc is None:
            acc = seen[arch.spec] = TABULAR.evaluate(arch).accuracy
        strategy.tell(arch, acc, {"accuracy": acc})
    return max(seen.values()), asked


def test_predictor_beats_random_at_equal_budget_and_never_reasks() -> None:
    seeds = (0, 1, 2)
    pred, rand = [], []
    for seed in seeds:
        best, asked = _best_at(PredictorSearch(NB201, seed=seed), 60)
        assert len(asked) == len(set(asked)) == 60
        pred.append(best)
        rand.append(_best_at(RandomSearch(NB201, seed), 60)[0])
    assert np.mean(pred) > np.mean(rand) + 0.3, (pred, rand)
    assert np.mean(pred) > 94.0  # the space's best is 94.37


def test_predictor_asks_only_what_the_prefilter_accepts() -> None:
    ok = lambda a: nb201_latency(a) <= 4.0  # noqa: E731
    strategy = PredictorSearch(NB201, n_init=5, batch=5, seed=4)
    strategy.prefilter = ok
    best, asked = _best_at(strategy, 30)
    assert len(set(asked)) == 30 and all(ok(NB201.parse(s)) for s in asked)


# -- NSGA-II and Pareto helpers --------------------------------------------------------------
def test_nsga2_front_improves_on_the_random_population() -> None:
    maximize, ref = [True, False], (80.0, 15.0)  # accuracy (max), stand-in latency (min)
    gains, vs_random = [], []
    for seed in (0, 1):
        nsga = NSGA2(NB201, objectives=(("accuracy", "max"), ("latency_ms", "min")), population=20, seed=seed)
        told = []
        while nsga.generation < 9:
            arch = nsga.ask()
            m = metrics_of(arch)
            told.append((m["accuracy"], m["latency_ms"]))
            nsga.tell(arch, m["accuracy"], m)
        assert len(told) == 9 * 20
        final = hypervolume_2d(np.array([v for _, v in nsga.front()]), maximize, ref)
        gains.append(final / hypervolume_2d(np.array(told[:20]), maximize, ref))
        rand = RandomSearch(NB201, seed)
        same_budget = [tuple(metrics_of(a).values()) for a in (rand.ask() for _ in range(len(told)))]
        vs_random.append(final / hypervolume_2d(np.array(same_budget), maximize, ref))
    assert min(gains) > 1.05, gains  # the final front dominates more than the initial random one
    assert np.mean(vs_random) > 1.0, vs_random  # and more than random search at equal budget


def test_nsga2_ranks_rejected_after_feasible_and_ignores_failures() -> None:
    nsga = NSGA2(NB201, population=4, seed=0)
    for _ in range(8):
        arch = nsga.ask()
        m = metrics_of(arch)
        nsga.tell(arch, None if m["latency_ms"] > 5 else m["accuracy"], m)
        nsga.tell(nsga.ask(), None, {})  # a failure: no metrics, ignored
    assert nsga.generation == 2
    feas = [m[2] for m in nsga.parents]
    ranks = nsga._ranks(nsga.parents)
    assert all(r_f < r_i for r_f, f in zip(ranks, feas) if f for r_i, i in zip(ranks, feas) if not i)


def test_pareto_helpers_on_hand_made_points() -> None:
    # accuracy (max), latency (min)
    pts = np.array([[90.0, 5.0], [92.0, 9.0], [89.0, 6.0], [93.0, 12.0], [90.0, 5.0], [88.0, 20.0]])
    assert pareto_front(pts, [True, False]).tolist() == [0, 1, 3, 4]  # duplicates both stay
    assert [f.tolist() for f in non_dominated_sort(pts, [True, False])] == [[0, 1, 3, 4], [2], [5]]
    assert pareto_front(pts, [False, True]).tolist() == [5]  # reversed directions
    assert pareto_front(np.zeros((0, 2)), [True, False]).tolist() == []
    cd = crowding_distance(np.array([[1.0, 4.0], [2.0, 2.0], [3.0, 1.5], [4.0, 1.0]]))
    assert np.isinf(cd[0]) and np.isinf(cd[3]) and cd[1] > cd[2] > 0
    assert hypervolume_2d([[1.0, 0.0], [0.0, 1.0]], [False, False], [2.0, 2.0]) == pytest.approx(3.0)
    assert hypervolume_2d([[93.0, 2.0]], [True, False], [90.0, 4.0]) == pytest.approx(6.0)
    with pytest.raises(ValueError, match="entries for 2 objectives"):
        pareto_front(pts, [True])


def test_study_trials_of_nsga2_keep_rejections(tmp_path) -> None:
    objective = OBJECTIVES["nb201"]
    with Study(tmp_path / "n.db", NSGA2(NB201, population=8, seed=2)) as study:
        study.optimize(lambda a: (metrics_of(a), objective.score(metrics_of(a))), n_trials=40)
        states = {t.state for t in study.trials()}
    assert TrialState.COMPLETE in states and TrialState.REJECTED in states


class FakeRestrictedSpace(NB201Space):
    """A fake space with invalid combinations (edges 0 and 1 may not share an op), for crossover."""

    name = "nb201"

    def decode(self, vector):  # type: ignore[no-untyped-def]
        if int(vector[0]) == int(vector[1]):
            raise ValueError("fake: edges 0 and 1 share an op")
        return super().decode(vector)

    def sample(self, rng):  # type: ignore[no-untyped-def]
        while True:
            try:
                return self.decode(rng.integers(0, 5, size=6))
            except ValueError:
                continue

    def mutate(self, arch, rng):  # type: ignore[no-untyped-def]
        while True:
            try:
                return super().mutate(arch, rng)
            except ValueError:
                continue


def test_nsga2_survives_crossover_into_invalid_vectors() -> None:
    space = FakeRestrictedSpace()
    nsga = NSGA2(space, population=8, crossover=1.0, seed=0)
    for _ in range(80):
        arch = nsga.ask()
        v = space.encode(arch)
        assert v[0] != v[1]
        m = metrics_of(arch)
        nsga.tell(arch, m["accuracy"], m)
    assert nsga.generation >= 8


def test_hard_budget_never_accepts_infeasible(tmp_path) -> None:
    objective = Objective(Constraint("latency_ms", 5.0), "hard")
    with Study(tmp_path / "s.db", RegularizedEvolution(NB201, 10, 3, seed=1)) as study:
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
    study = Study(path, RegularizedEvolution(NB201, 5, 2, seed=4))
    with pytest.raises(KeyboardInterrupt):
        study.optimize(evaluate, n_trials=20)
    done_before = [t for t in study.trials() if t.state != TrialState.PENDING]
    study.close()
    assert len(done_before) == 7

    with Study(path, RegularizedEvolution(NB201, 5, 2, seed=4)) as again:
        best = again.optimize(evaluate, n_trials=20)
        trials = again.trials()
        assert [t for t in trials if t.number <= 7 and t.state != TrialState.PENDING] == done_before
        assert sum(t.state != TrialState.PENDING for t in trials) == 20 and best is not None
        assert calls[8] == calls[7]  # the interrupted trial is the first evaluated after resuming
    with pytest.raises(ValueError, match="use another --out"):
        Study(path, RandomSearch(NB201, 0))


def test_failures_are_recorded_and_search_goes_on(tmp_path) -> None:
    def evaluate(arch):
        if "nor_conv_3x3~0|+" in arch.spec:
            raise RuntimeError("out of memory\nsecond line")
        return {"accuracy": 1.0}, 1.0

    with Study(tmp_path / "f.db", RandomSearch(NB201, 0)) as study:
        study.optimize(evaluate, n_trials=30)
        failed = [t for t in study.trials() if t.state == TrialState.FAILED]
        assert failed and all(t.error == "out of memory" for t in failed)
        assert len(study.trials()) == 30
