"""Evaluators: what a candidate's accuracy is (tabular lookup, training, proxies, weight sharing,
zero-cost). Each returns metrics for one architecture; see :mod:`hwnas.evaluate.base`.
Importing this package does not import torch (the trained evaluators import it when used)."""

from hwnas.evaluate.base import Evaluator, Metrics
from hwnas.evaluate.supernet import SupernetEvaluator
from hwnas.evaluate.tabular import NB201Tabular
from hwnas.evaluate.train import ProxyEvaluator, TrainEvaluator, TrainSettings
from hwnas.evaluate.zero_cost import ZeroCostEvaluator

__all__ = [
    "Evaluator",
    "Metrics",
    "NB201Tabular",
    "ProxyEvaluator",
    "SupernetEvaluator",
    "TrainEvaluator",
    "TrainSettings",
    "ZeroCostEvaluator",
]
