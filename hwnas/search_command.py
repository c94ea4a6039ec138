"""``hwnas search``: a budgeted search, resumable, with a JSON result.

This first version covers the random and evolution strategies, the tabular NB201 evaluator, and
the ``db`` (latencies measured or imported into the latency database) and ``predictor`` latency
sources; the other strategies, evaluators and sources of the search issue come next.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, Callable

from hwnas.errors import CLIError

STRATEGIES = ("random", "evolution")
EVALUATORS = ("tabular",)
SOURCES = ("db", "predictor")


def _latency_source(args: argparse.Namespace, space: Any) -> tuple[Callable[[Any], float], str]:
    """``arch -> latency_ms`` and a label of where latencies come from."""
    if args.latency_source == "db":
        from hwnas.predictor_commands import open_db
        from hwnas.predictors.dataset import device_rows

        if not args.device:
            raise CLIError("--latency-source db needs --device D (a device in --db)")
        with open_db(args.db) as db:
            table = {r.arch: r.latency_ms for r in device_rows(db, args.device, None) if r.space == space.name and r.arch}
        if not table:
            raise CLIError(f"--db {args.db} has no {space.name} latencies of device {args.device!r}")

        def from_db(arch: Any) -> float:
            if arch.spec not in table:
                raise ValueError(f"no latency of this architecture on {args.device} in {args.db}")
            return table[arch.spec]

        return from_db, f"db:{args.device}"
    if not args.predictor:
        raise CLIError("--latency-source predictor needs --predictor FILE")
    from hwnas.predictor_commands import load_predictor_file, graph_resolver

    pred = load_predictor_file(args.predictor).predictor
    pred._device_index(args.device)
    resolver = graph_resolver(args)

    def from_predictor(arch: Any) -> float:
        graph = resolver.graph_for(None, space.name, arch.spec)
        return float(pred.predict([graph], device=args.device)[0])

    return from_predictor, f"predictor:{Path(args.predictor).name}"


def cmd_search(args: argparse.Namespace) -> int:
    from hwnas.cli import emit
    from hwnas.constraints import Constraint, Objective, parse_budget, parse_weights
    from hwnas.evaluate import NB201Tabular
    from hwnas.space import get_space
    from hwnas.strategy import RandomSearch, RegularizedEvolution
    from hwnas.study import Study, TrialState

    space = get_space(args.space)
    if args.evaluator == "tabular" and space.name != "nb201":
        raise CLIError("--evaluator tabular covers --space nb201 only")
    if args.budget_evals < 1:
        raise CLIError(f"--budget-evals must be a positive integer, got {args.budget_evals}")
    budget = parse_budget(args.latency_budget_ms) if args.latency_budget_ms is not None else None
    weights = parse_weights(args.weights) if args.weights else {}
    objective = Objective(Constraint("latency_ms", budget) if budget else None, args.constraint, weights=weights)
    latency_of, lat_source = _latency_source(args, space)
    evaluator = NB201Tabular(args.dataset)
    strategy = RandomSearch(space, args.seed) if args.strategy == "random" else RegularizedEvolution(space, seed=args.seed)

    def evaluate(arch: Any) -> tuple[dict[str, Any], float | None]:
        lat = latency_of(arch)
        metrics: dict[str, Any] = {"latency_ms": lat, "latency_source": lat_source}
        if objective.mode == "hard" and objective.constraint and lat > objective.constraint.bound:
            return metrics, None  # rejected before any training
        m = evaluator.evaluate(arch)
        metrics.update(accuracy=m.accuracy, accuracy_source=m.source, eval_cost_s=m.cost_s)
        return metrics, objective.score(metrics)

    out = Path(args.out)
    t0 = time.perf_counter()
    with Study(out / "study.db", strategy) as study:
        best = study.optimize(evaluate, args.budget_evals)
        trials = study.trials()
    wall = time.perf_counter() - t0
    result = {
        "space": space.name,
        "strategy": args.strategy,
        "evaluator": args.evaluator,
        "constraint": args.constraint,
        "latency_budget_ms": budget,
        "weights": weights,
        "best": None if best is None else {"arch": best.arch, "score": best.score, **best.metrics},
        "evaluations": sum(t.state != TrialState.PENDING and not t.metrics.get("duplicate") for t in trials),
        "trials": [{"number": t.number, "arch": t.arch, "state": t.state.value, "score": t.score, **t.metrics} for t in trials],
        "wall_s": round(wall, 3),
    }
    from hwnas.fileio import atomic_write_bytes

    atomic_write_bytes(out / "result.json", json.dumps(result, indent=2, sort_keys=True).encode())
    if best is None:
        raise CLIError(
            f"no feasible architecture: none of {len(trials)} trials met --latency-budget-ms {budget}; raise the budget"
        )
    emit(result if args.json else None, args.json,
         f"best of {result['evaluations']} evaluations: {best.arch}\n  accuracy {best.metrics.get('accuracy')} % "
         f"({best.metrics.get('accuracy_source')}), latency {best.metrics['latency_ms']:.3f} ms ({lat_source}); "
         f"result: {out / 'result.json'}")  # fmt: skip
    return 0


def add_parser(sub: Any, default_db: str) -> None:
    """Register ``hwnas search``."""
    q = sub.add_parser(
        "search",
        help="find the most accurate architecture under a latency budget (resumable with the same --out)",
        description="Budgeted architecture search. Trials are stored in OUT/study.db as they finish: "
        "interrupt it and run the same command again to continue. Writes OUT/result.json.",
    )
    q.add_argument("--space", choices=("nb201", "macro"), default="nb201")
    q.add_argument("--strategy", choices=STRATEGIES, default="evolution")
    q.add_argument("--evaluator", choices=EVALUATORS, default="tabular")
    q.add_argument("--dataset", default="cifar10", help="tabular: cifar10, cifar100 or imagenet16_120")
    q.add_argument("--latency-source", choices=SOURCES, default="db")
    q.add_argument("--db", default=default_db, help=f"latency database (default {default_db})")
    q.add_argument("--device", help="device whose latency counts (db source; or a device of a multi-device predictor)")
    q.add_argument("--predictor", help="predictor file (predictor source)")
    q.add_argument("--latency-budget-ms", help="latency budget in ms, e.g. 5 or 5ms")
    q.add_argument("--constraint", choices=("hard", "soft"), default="hard",
                   help="hard: reject candidates over budget before training; soft: MnasNet reward or --weights")  # fmt: skip
    q.add_argument("--weights", help="soft objective as a weighted sum, e.g. accuracy=1,latency_ms=-0.5")
    q.add_argument("--budget-evals", type=int, default=100, help="number of trials (default 100)")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--out", required=True, help="folder for study.db and result.json")
    q.add_argument("--models", action="append", metavar="DIR", help=argparse.SUPPRESS)
    q.add_argument("--cache", metavar="DIR", help="graph cache (predictor source)")
    q.add_argument("--json", action="store_true", help="print the result as JSON")
    q.set_defaults(func=cmd_search)
