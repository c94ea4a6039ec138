"""The evaluator of a search as a frozen, picklable value: what a worker process or a Ray task
needs to build the same evaluator as the driver (never the command's arguments)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from hwnas.space.base import SearchSpace

#: Evaluator kinds (``hwnas search --evaluator``).
EVALUATORS = ("tabular", "train", "proxy", "supernet", "zero-cost")
#: Zero-cost proxies (``--proxy``).
ZERO_COST = ("synflow", "snip", "grad_norm", "jacob_cov", "params")


@dataclass(frozen=True)
class EvaluatorConfig:
    """How candidates are scored.

    Attributes:
        kind: one of :data:`EVALUATORS`.
        dataset: tabular: ``cifar10``/``cifar100``/``imagenet16_120``; trained: ``digits``,
            ``cifar10``, a folder or an ``.npz`` (see :mod:`hwnas.evaluate.datasets`).
        epochs, subsample, resolution, channels, cells: training knobs (None: the kind's default).
        proxy: the zero-cost score (one of :data:`ZERO_COST`).
        train_device: torch device for training (``cpu``, ``cuda[:N]``).
        seed: seed of training and of zero-cost scores.
    """

    kind: str
    dataset: str
    epochs: int | None = None
    subsample: float | None = None
    resolution: int | None = None
    channels: int | None = None
    cells: int | None = None
    proxy: str = "synflow"
    train_device: str = "cpu"
    seed: int = 0

    def knobs(self, *names: str) -> dict[str, Any]:
        """The training knobs that are set, restricted to ``names`` when given."""
        keys = names or ("epochs", "subsample", "resolution", "channels", "cells")
        return {k: getattr(self, k) for k in keys if getattr(self, k) is not None}

    def build(self, space: SearchSpace) -> Any:
        """The evaluator over ``space``.

        Raises:
            ValueError: one line, for a kind that does not cover ``space`` or a bad setting.
        """
        if self.kind not in EVALUATORS:
            raise ValueError(f"unknown evaluator {self.kind!r}; choose one of {', '.join(EVALUATORS)}")
        if self.kind == "tabular":
            from hwnas.evaluate import NB201Tabular

            if space.name != "nb201":
                raise ValueError("--evaluator tabular covers --space nb201 only; use train, proxy or zero-cost")
            return NB201Tabular(self.dataset)
        if self.kind in ("train", "proxy"):
            from hwnas.evaluate.train import ProxyEvaluator, TrainEvaluator

            cls = TrainEvaluator if self.kind == "train" else ProxyEvaluator
            settings = dataclasses.replace(cls.default_settings, **self.knobs(), device=self.train_device, seed=self.seed)
            return cls(space, self.dataset, settings)
        if self.kind == "supernet":
            from hwnas.evaluate.supernet import SupernetEvaluator

            if space.name != "nb201":
                raise ValueError("--evaluator supernet covers --space nb201 only (the NB201 one-shot supernet)")
            kw = self.knobs("epochs", "resolution", "channels", "cells")
            return SupernetEvaluator(space, self.dataset, device=self.train_device, seed=self.seed, **kw)
        from hwnas.evaluate.zero_cost import ZeroCostEvaluator

        kw = self.knobs("resolution", "channels", "cells")
        return ZeroCostEvaluator(space, self.dataset, proxy=self.proxy, seed=self.seed, all_proxies=False, **kw)


__all__ = ["EVALUATORS", "ZERO_COST", "EvaluatorConfig"]
