"""Build the strategy and the evaluator that ``hwnas search`` (and ``hwnas codesign``) asked for.

Each factory validates its flags and turns a bad value into a one-line :class:`CLIError` before
any work starts.
"""

from __future__ import annotations

import argparse
from typing import Any, Callable

from hwnas.errors import CLIError
from hwnas.evaluate.config import EVALUATORS, ZERO_COST, EvaluatorConfig
from hwnas.executors import EvaluatorSpec, InProcessExecutor, LocalPoolExecutor, RayExecutor
from hwnas.space.base import Arch, SearchSpace

STRATEGIES = ("random", "evolution", "rl", "predictor", "darts", "nsga2")


def dataset_of(args: argparse.Namespace) -> str:
    """The dataset flag with its per-evaluator default (tabular: cifar10; trained: digits)."""
    if args.dataset:
        return str(args.dataset)
    return "cifar10" if args.evaluator == "tabular" else "digits"


def _positive(name: str, value: Any, kind: type = int) -> None:
    if value is not None and not (isinstance(value, kind) and value > 0):
        raise CLIError(f"{name} must be a positive {'integer' if kind is int else 'number'}, got {value}")


def check_training_flags(args: argparse.Namespace) -> None:
    """Refuse malformed training knobs (one line each)."""
    for flag in ("epochs", "resolution", "channels", "cells"):
        _positive(f"--{flag}", getattr(args, flag, None))
    sub = getattr(args, "subsample", None)
    if sub is not None and not 0.0 < sub <= 1.0:
        raise CLIError(f"--subsample must be a fraction in (0, 1], got {sub}")
    dev = getattr(args, "train_device", "cpu")
    if dev not in ("cpu", "cuda") and not str(dev).startswith("cuda:"):
        raise CLIError(f"--train-device must be cpu or cuda[:N], got {dev!r}")
    if str(dev).startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise CLIError(f"--train-device {dev}: this torch has no CUDA device; use --train-device cpu")


def evaluator_config(args: argparse.Namespace) -> EvaluatorConfig:
    """The flags of the evaluator as its frozen config (training knobs checked first)."""
    if args.evaluator != "tabular":
        check_training_flags(args)
    knobs = {k: getattr(args, k, None) for k in ("epochs", "subsample", "resolution", "channels", "cells")}
    return EvaluatorConfig(args.evaluator, dataset_of(args), **knobs, proxy=getattr(args, "proxy", "synflow"),
                           train_device=getattr(args, "train_device", "cpu"), seed=args.seed)  # fmt: skip


def make_evaluator(args: argparse.Namespace, space: SearchSpace) -> Any:
    """The evaluator named by ``args.evaluator`` (:meth:`EvaluatorConfig.build`); one-line ``CLIError``."""
    try:
        return evaluator_config(args).build(space)
    except ValueError as exc:
        raise CLIError(str(exc)) from None


def evaluator_spec(args: argparse.Namespace, space: str, threads: int = 1) -> EvaluatorSpec:
    """What worker processes and Ray tasks rebuild the evaluator from."""
    return EvaluatorSpec(evaluator_config(args), space, threads)


def make_strategy(
    args: argparse.Namespace, space: SearchSpace, latency_of: Callable[[Arch], float], budget: float | None,
) -> Any:  # fmt: skip
    """The strategy named by ``args.strategy``, seeded with ``args.seed``."""
    from hwnas import strategy as st

    name, seed = args.strategy, args.seed
    if name == "random":
        return st.RandomSearch(space, seed)
    if name == "evolution":
        return st.RegularizedEvolution(space, population=min(50, max(4, args.budget_evals // 3)),
                                       sample=min(10, max(2, args.budget_evals // 15)), seed=seed)  # fmt: skip
    if name == "rl":
        return st.REINFORCE(space, seed=seed)
    if name == "predictor":
        return st.PredictorSearch(space, n_init=min(20, max(5, args.budget_evals // 5)), seed=seed)
    if name == "nsga2":
        return st.NSGA2(space, population=min(20, max(4, args.budget_evals // 4)), seed=seed)
    if space.name != "nb201":
        raise CLIError("--strategy darts covers --space nb201 only (the NB201 supernet)")
    from hwnas.strategy.darts import DARTS

    check_training_flags(args)
    kw = {k: getattr(args, k) for k in ("resolution", "channels", "cells") if getattr(args, k, None) is not None}
    try:
        return DARTS(space, "digits" if args.evaluator == "tabular" else dataset_of(args), latency_of=latency_of,
                     budget_ms=budget, mode=args.constraint, device=args.train_device, seed=seed, **kw)  # fmt: skip
    except ValueError as exc:
        raise CLIError(str(exc)) from None


def add_executor_flags(parser: Any) -> None:
    """``--workers``, ``--ray-address``, ``--ray-cpus-per-trial``, ``--ray-gpus-per-trial``."""
    parser.add_argument("--workers", type=int, help="evaluate N candidates at once in N local worker processes "
                        "(spawned; each builds the evaluator once; a worker that dies is replaced and its trial "
                        "retried). Default: one at a time in this process")  # fmt: skip
    parser.add_argument("--ray-address", metavar="ADDR", help="evaluate on a Ray cluster, one task per candidate: "
                        "auto, HOST:PORT, or local (a cluster of this machine); --workers then bounds the trials in "
                        "flight (default: cluster CPUs / --ray-cpus-per-trial)")  # fmt: skip
    parser.add_argument("--ray-cpus-per-trial", type=float, default=1.0, help="CPUs each Ray evaluation reserves (default 1)")
    parser.add_argument("--ray-gpus-per-trial", type=float, default=0.0, help="GPUs each Ray evaluation reserves (default 0)")


def make_executor(args: argparse.Namespace, space: Any, evaluator: Any) -> Any:
    """The executor the flags of :func:`add_executor_flags` ask for; without them an
    :class:`InProcessExecutor` over ``evaluator`` (sequential). ``CLIError`` (one line) for bad
    values or an unreachable cluster."""
    if args.workers is None and not args.ray_address:
        return InProcessExecutor(space, evaluator)
    if args.workers is not None and args.workers < 1:
        raise CLIError(f"--workers must be a positive integer, got {args.workers}")
    if getattr(args, "strategy", None) == "darts":
        raise CLIError("--workers/--ray-address do not apply to --strategy darts (it trains one supernet)")
    spec = evaluator_spec(args, space.name, threads=getattr(args, "threads", None) or 1)
    try:
        if args.ray_address:
            return RayExecutor(spec, args.ray_address, args.ray_cpus_per_trial, args.ray_gpus_per_trial, args.workers)
        return LocalPoolExecutor(spec, args.workers)
    except (RuntimeError, ValueError) as exc:
        raise CLIError(" ".join(str(exc).split())) from None
