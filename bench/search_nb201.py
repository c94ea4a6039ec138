#!/usr/bin/env python
"""Budgeted search on NAS-Bench-201: strategies against random search.

Accuracy: the tabular evaluator (CIFAR-10). Latency: each shared device's published table as the
measured latency; the budget is the 30th percentile of that device's latencies (hard constraint).
Every strategy gets ``strategy.prefilter`` = "the device's table says it fits the budget" (the
latency source is a cheap table, known before training); strategies that rank candidates use it,
random and evolution ignore it. For each strategy and ``--seeds`` seeds, a study runs until
``--evals`` evaluations; reported per device and overall (medians over seeds; overall: median over
devices of those medians):

* evaluations until the best feasible accuracy of the whole space is found (capped at --evals:
  "not found" counts as --evals), and ``found``: the share of seeds that found it. An evaluation
  is a candidate that was scored: candidates over the budget are rejected before any training and
  cost nothing, and repeats are not re-evaluated,
* the ratio of random search's evaluations-to-best to the strategy's, two ways: against the capped
  random runs (``x rnd``; a lower bound: random rarely finds the best within --evals) and against
  random search's exact, uncapped median (``x rnd*``; prefixed ``<=`` when the strategy's own
  median is at the cap, where it is an upper bound): random search with free rejections and
  no repeats visits the feasible architectures in a uniformly random order, so the number of
  evaluations to the first of the k best among N feasible has P(T > t) = C(N-k, t) / C(N, t),
* regret (best feasible accuracy of the space − best found) at 50 / 100 / 150 evaluations.

Strategies (``--strategies``, comma-separated): random, random-feasible (random samples redrawn
until the prefilter accepts them: the same evaluations as random, fewer trials), evolution
(population 20, tournament 5), rl (REINFORCE, lr 0.3), predictor (PredictorSearch defaults: GP,
path features, Thompson sampling, n_init 10, batch 2), nsga2 (accuracy max / latency min,
population 20; optimises both objectives, so its accuracy regret is not its own goal).

    python bench/search_nb201.py [--seeds 20] [--evals 150] [--devices pixel3,gold_6240]
                                 [--strategies random,predictor]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # small matrices: threads only contend

import argparse  # noqa: E402
import csv  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT.parent / "shared" / "datasets" / "nb201" / "latency_ms.csv"
ALL = ("random", "random-feasible", "evolution", "rl", "predictor", "nsga2")
DEFAULT = ("random", "random-feasible", "evolution", "rl", "predictor")


def exact_random_median(n_feasible: int, k_best: int) -> int:
    """Median evaluations for uniform random order to reach one of ``k_best`` of ``n_feasible``."""
    survive = 1.0  # P(T > t)
    for t in range(1, n_feasible + 1):
        survive *= (n_feasible - k_best - (t - 1)) / (n_feasible - (t - 1))
        if survive <= 0.5:
            return t
    return n_feasible


def make_strategies(space: Any) -> dict[str, Callable[[int], Any]]:
    from hwnas.strategy import NSGA2, REINFORCE, PredictorSearch, RandomSearch, RegularizedEvolution

    class FeasibleRandom(RandomSearch):
        """Random search that redraws (up to 1000 times) until the prefilter accepts."""

        name = "random-feasible"

        def ask(self):  # type: ignore[no-untyped-def]
            for _ in range(1000):
                arch = self.space.sample(self.rng)
                if self.prefilter is None or self.prefilter(arch):
                    break
            return arch

    return {
        "random": lambda s: RandomSearch(space, s),
        "random-feasible": lambda s: FeasibleRandom(space, s),
        "evolution": lambda s: RegularizedEvolution(space, population=20, sample=5, seed=s),
        "rl": lambda s: REINFORCE(space, lr=0.3, seed=s),
        "predictor": lambda s: PredictorSearch(space, seed=s),
        "nsga2": lambda s: NSGA2(space, (("accuracy", "max"), ("latency_ms", "min")), population=20, seed=s),
    }


def run_one(
    strategy: Any, evaluate: Callable[[Any], tuple[dict, float | None]], evals: int, max_trials: int
) -> tuple[list[float], int]:
    """Drive a study until ``evals`` evaluations (or ``max_trials`` trials); best-so-far curve and trials."""
    from hwnas.study import Study, TrialState

    curve: list[float] = []
    best, trials = -np.inf, 0
    with tempfile.TemporaryDirectory() as tmp, Study(Path(tmp) / "s.db", strategy) as study:
        seen: dict[str, Any] = {}
        while len(curve) < evals and trials < max_trials:
            trial = study.ask()
            trials += 1
            if trial.arch in seen:  # as Study.optimize: a repeat is told, not evaluated
                prev = seen[trial.arch]
                study.tell(trial.number, prev.state, prev.score, {**prev.metrics, "duplicate": True})
                continue
            metrics, score = evaluate(study.strategy.space.parse(trial.arch))
            state = TrialState.COMPLETE if score is not None else TrialState.REJECTED
            seen[trial.arch] = study.tell(trial.number, state, score, metrics)
            if score is not None:
                best = max(best, metrics["accuracy"])
                curve.append(best)
    return (curve + [best] * evals)[:evals], trials


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--evals", type=int, default=150)
    ap.add_argument("--devices", default="all")
    ap.add_argument("--strategies", default=",".join(DEFAULT), help=f"comma-separated, of: {', '.join(ALL)}")
    ap.add_argument("--max-trials", type=int, default=0, help="trial cap per run (default: 20 x --evals)")
    ap.add_argument("--table", type=Path, default=TABLE)
    args = ap.parse_args()
    names = [s.strip() for s in args.strategies.split(",") if s.strip()]
    unknown = [s for s in names if s not in ALL]
    names = [s for s in ALL if s in names]  # random first: the others' ratios need it
    if unknown or not names:
        ap.error(f"--strategies: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(ALL)}")

    from hwnas.constraints import Constraint, Objective
    from hwnas.evaluate import NB201Tabular
    from hwnas.space import NB201Space

    space = NB201Space()
    acc = NB201Tabular().table[:, 0].astype(float)
    with open(args.table) as f:
        rows = list(csv.DictReader(f))
    devices = [c for c in rows[0] if c not in ("arch_idx", "arch_str")]
    if args.devices != "all":
        devices = args.devices.split(",")
    makers = make_strategies(space)
    checkpoints = [c for c in (50, 100, 150) if c <= args.evals]
    max_trials = args.max_trials or 20 * args.evals
    print(f"NB201 CIFAR-10 tabular accuracy; budget = 30th percentile of each device's latency; "
          f"{args.seeds} seeds x {args.evals} evaluations; medians over seeds")  # fmt: skip
    head = f"{'device':<15}{'strategy':<16}{'evals to best':>14}{'found':>7}{'x rnd':>7}{'x rnd*':>8}"
    print(head + "".join(f"{'regret@' + str(c):>11}" for c in checkpoints), flush=True)
    keys = ["evals", "found", "x_rnd", "x_exact"] + [str(c) for c in checkpoints]
    summary: dict[str, dict[str, list[float]]] = {n: {k: [] for k in keys} for n in names}
    exact_all: list[float] = []
    t0 = time.time()
    for dev in devices:
        lat = np.array([float(r[dev]) for r in rows])
        budget = float(np.percentile(lat, 30))
        feasible = lat <= budget
        best_acc = acc[feasible].max()
        exact = exact_random_median(int(feasible.sum()), int(np.sum(acc[feasible] >= best_acc - 1e-9)))
        exact_all.append(exact)
        objective = Objective(Constraint("latency_ms", budget), "hard")

        def evaluate(arch: Any, lat: np.ndarray = lat, objective: Objective = objective) -> tuple[dict, float | None]:
            i = space.index(arch)
            m = {"accuracy": float(acc[i]), "latency_ms": float(lat[i])}
            return m, objective.score(m)

        def prefilter(arch: Any, feasible: np.ndarray = feasible) -> bool:
            return bool(feasible[space.index(arch)])

        random_med = None
        for name in names:
            to_best, regrets, trials, hits = [], {c: [] for c in checkpoints}, [], []
            for seed in range(args.seeds):
                strategy = makers[name](seed)
                strategy.prefilter = prefilter
                curve, n_trials = run_one(strategy, evaluate, args.evals, max_trials)
                trials.append(n_trials)
                hits.append(curve[-1] >= best_acc - 1e-9)
                to_best.append(next((i + 1 for i, b in enumerate(curve) if b >= best_acc - 1e-9), args.evals))
                for c in checkpoints:
                    regrets[c].append(best_acc - curve[c - 1])
            med = statistics.median(to_best)
            found = float(np.mean(hits))
            if name == "random":
                random_med = med
            x_rnd = (random_med / med) if random_med else float("nan")
            row = {"evals": med, "found": found, "x_rnd": x_rnd, "x_exact": exact / med}
            row.update({str(c): statistics.median(regrets[c]) for c in checkpoints})
            for k, v in row.items():
                summary[name][k].append(v)
            x_exact = ("<=" if med >= args.evals else "") + f"{exact / med:.1f}"  # capped: an upper bound
            print(f"{dev:<15}{name:<16}{med:>14.0f}{found:>7.0%}{x_rnd:>7.1f}{x_exact:>8}"
                  + "".join(f"{row[str(c)]:>11.3f}" for c in checkpoints), flush=True)  # fmt: skip
            print(f"  [{time.time() - t0:6.0f}s] {dev} {name}: median {statistics.median(trials):.0f} trials per run",
                  file=sys.stderr, flush=True)  # fmt: skip
        print(f"{dev:<15}{'random exact':<16}{exact:>14.0f}   (uncapped median; {int(feasible.sum())} feasible)", flush=True)
    print("overall (median over devices):")
    for name, s in summary.items():
        capped = "<=" if statistics.median(s["evals"]) >= args.evals else ""
        print(f"{'':<15}{name:<16}{statistics.median(s['evals']):>14.0f}{statistics.median(s['found']):>7.0%}"
              f"{statistics.median(s['x_rnd']):>7.1f}{capped + format(statistics.median(s['x_exact']), '.1f'):>8}"
              + "".join(f"{statistics.median(s[str(c)]):>11.3f}" for c in checkpoints))  # fmt: skip
    print(f"{'':<15}{'random exact':<16}{statistics.median(exact_all):>14.0f}")
    print(f"goal: >= 5x fewer evaluations to the best than random (x rnd*: vs random's exact median; x rnd: vs random "
          f"capped at {args.evals}, a lower bound), and regret@150 <= 0.1 (median)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
