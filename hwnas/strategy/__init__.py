"""Search strategies behind one ask/tell interface (:mod:`hwnas.strategy.base`)."""

from hwnas.strategy.base import Strategy
from hwnas.strategy.evolution import RegularizedEvolution
from hwnas.strategy.random_search import RandomSearch

__all__ = ["Strategy", "RandomSearch", "RegularizedEvolution"]
