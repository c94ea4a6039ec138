"""Regularized (aging) evolution (Real et al., 2019).

The population is the ``population`` most recent evaluations; each new candidate mutates the
best of ``sample`` members drawn at random from it, and the oldest member dies as a new one is
told. Rejected candidates (score None) never enter the population. Asks before the population is
full are random samples, so several trials can be in flight at any time (asynchronous evolution).
"""

from __future__ import annotations

from collections import deque
from typing import Any, Mapping

from hwnas.space.base import Arch, SearchSpace
from hwnas.strategy.base import Strategy


class RegularizedEvolution(Strategy):
    """Aging evolution.

    Args:
        space: the search space.
        population: size of the population (the most recent accepted evaluations).
        sample: tournament size.
        seed: RNG seed.
    """

    name = "evolution"

    def __init__(self, space: SearchSpace, population: int = 50, sample: int = 10, seed: int = 0) -> None:
        if population < 2 or not 1 <= sample <= population:
            raise ValueError(f"evolution: need population >= 2 and 1 <= sample <= population, got {population}, {sample}")
        super().__init__(space, seed)
        self.population = population
        self.sample = sample
        self.members: deque[tuple[Arch, float]] = deque(maxlen=population)

    def ask(self) -> Arch:
        if len(self.members) < self.population:
            return self.space.sample(self.rng)
        picks = self.rng.choice(len(self.members), size=self.sample, replace=False)
        parent = max((self.members[int(i)] for i in picks), key=lambda m: m[1])[0]
        return self.space.mutate(parent, self.rng)

    def tell(self, arch: Arch, score: float | None, metrics: Mapping[str, Any] | None = None) -> None:
        if score is not None:
            self.members.append((arch, float(score)))

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "members": [[a.spec, s] for a, s in self.members]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.members = deque(((self.space.parse(a), float(s)) for a, s in state["members"]), maxlen=self.population)
