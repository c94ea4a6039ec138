"""The strategy interface: ask for an architecture, tell its score.

Contract:
    * ``ask()`` proposes an architecture of the strategy's space; several may be asked before
      any is told (trials in flight).
    * ``tell(arch, score, metrics)`` reports a finished evaluation; ``score`` is higher-is-better,
      or None when the candidate was rejected (a hard constraint) or failed. ``metrics`` holds what
      was measured (``accuracy``, ``latency_ms``...), for strategies with several objectives.
    * ``prefilter``, when set (by the search, for cheap latency sources), says whether an
      architecture can be feasible at all; strategies that rank many candidates may skip those
      it refuses without spending a trial. Strategies may ignore it.
    * ``state_dict()`` is JSON-able and, given to ``load_state_dict`` of a fresh strategy with
      the same constructor arguments, continues exactly where the first left off (same future
      asks), so an interrupted search resumes.
    * All randomness comes from the seed given to the constructor (no global RNG).
"""

from __future__ import annotations

import abc
from typing import Any, Callable, Mapping

import numpy as np

from hwnas.space.base import Arch, SearchSpace


class Strategy(abc.ABC):
    """Base of search strategies (see the module docstring for the contract)."""

    name: str = ""

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        self.space = space
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.prefilter: Callable[[Arch], bool] | None = None

    def use_feasibility(self, test: Callable[[Arch], bool], costly: bool = False) -> None:
        """Offer a feasibility test (the search's hard latency budget on a cheap source, a partial
        table's coverage): strategies that rank many candidates use it to skip refused ones
        without spending a trial; ``costly`` says each call costs real work (a prediction), so
        check few. By default it becomes :attr:`prefilter`; strategies may ignore it."""
        self.prefilter = test

    @abc.abstractmethod
    def ask(self) -> Arch:
        """The next architecture to evaluate."""

    def tell(self, arch: Arch, score: float | None, metrics: Mapping[str, Any] | None = None) -> None:  # noqa: B027
        """Learn from a finished evaluation (no-op by default)."""

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state: the RNG plus what subclasses add."""
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.rng.bit_generator.state = state["rng"]
