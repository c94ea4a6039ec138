"""Evaluators: what a candidate's accuracy is (tabular lookup, training, proxies, weight sharing,
zero-cost). Each returns metrics for one architecture; see :mod:`hwnas.evaluate.base`."""

from hwnas.evaluate.base import Evaluator, Metrics
from hwnas.evaluate.tabular import NB201Tabular

__all__ = ["Evaluator", "Metrics", "NB201Tabular"]
