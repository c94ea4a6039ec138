"""Search strategies behind one ask/tell interface (:mod:`hwnas.strategy.base`): random, aging
evolution, REINFORCE, predictor-based (GP surrogate), DARTS and NSGA-II. Importing this package
does not import torch."""

from hwnas.strategy.base import Strategy
from hwnas.strategy.darts import DARTS
from hwnas.strategy.evolution import RegularizedEvolution
from hwnas.strategy.nsga2 import NSGA2
from hwnas.strategy.pareto import non_dominated_sort, pareto_front
from hwnas.strategy.predictor_based import PredictorSearch
from hwnas.strategy.random_search import RandomSearch
from hwnas.strategy.rl import REINFORCE

__all__ = [
    "Strategy",
    "RandomSearch",
    "RegularizedEvolution",
    "REINFORCE",
    "PredictorSearch",
    "NSGA2",
    "DARTS",
    "pareto_front",
    "non_dominated_sort",
]
