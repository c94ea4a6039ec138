"""Build the strategy and the evaluator that ``hwnas search`` (and ``hwnas codesign``) asked for.

Each factory validates its flags and turns a bad value into a one-line :class:`CLIError` before
any work starts.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, Callable

from hwnas.errors import CLIError
from hwnas.space.base import Arch, SearchSpace

STRATEGIES = ("random", "evolution", "rl", "predictor", "darts", "nsga2")
EVALUATORS = ("tabular", "train", "proxy", "supernet", "zero-cost")
ZERO_COST = ("synflow", "snip", "grad_norm", "jacob_cov", "params")


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


def _knobs(args: argparse.Namespace) -> dict[str, Any]:
    return {k: getattr(args, k) for k in ("epochs", "subsample", "resolution", "channels", "cells") if getattr(args, k, None) is not None}


def make_evaluator(args: argparse.Namespace, space: SearchSpace) -> Any:
    """The evaluator named by ``args.evaluator``."""
    data = dataset_of(args)
    if args.evaluator == "tabular":
        from hwnas.evaluate import NB201Tabular

        if space.name != "nb201":
            raise CLIError("--evaluator tabular covers --space nb201 only; use train, proxy or zero-cost")
        try:
            return NB201Tabular(data)
        except ValueError as exc:
            raise CLIError(str(exc)) from None
    check_training_flags(args)
    try:
        if args.evaluator in ("train", "proxy"):
            from hwnas.evaluate.train import ProxyEvaluator, TrainEvaluator

            cls = TrainEvaluator if args.evaluator == "train" else ProxyEvaluator
            settings = dataclasses.replace(cls.default_settings, **_knobs(args), device=args.train_device, seed=args.seed)
            return cls(space, data, settings)
        if args.evaluator == "supernet":
            from hwnas.evaluate.supernet import SupernetEvaluator

            if space.name != "nb201":
                raise CLIError("--evaluator supernet covers --space nb201 only (the NB201 one-shot supernet)")
            kw = {k: v for k, v in _knobs(args).items() if k != "subsample"}
            return SupernetEvaluator(space, data, device=args.train_device, seed=args.seed, **kw)
        from hwnas.evaluate.zero_cost import ZeroCostEvaluator

        kw = {k: v for k, v in _knobs(args).items() if k in ("resolution", "channels", "cells")}
        return ZeroCostEvaluator(space, data, proxy=args.proxy, seed=args.seed, all_proxies=False, **kw)
    except ValueError as exc:
        raise CLIError(str(exc)) from None


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
    kw = {k: v for k, v in _knobs(args).items() if k in ("resolution", "channels", "cells")}
    try:
        return DARTS(space, "digits" if args.evaluator == "tabular" else dataset_of(args), latency_of=latency_of,
                     budget_ms=budget, mode=args.constraint, device=args.train_device, seed=seed, **kw)  # fmt: skip
    except ValueError as exc:
        raise CLIError(str(exc)) from None
