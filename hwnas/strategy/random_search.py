"""Random search: the baseline every strategy is measured against."""

from __future__ import annotations

from hwnas.space.base import Arch
from hwnas.strategy.base import Strategy


class RandomSearch(Strategy):
    """Uniform samples of the space; learns nothing from scores."""

    name = "random"

    def ask(self) -> Arch:
        return self.space.sample(self.rng)
