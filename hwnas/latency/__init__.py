"""What an architecture costs on a device: the :class:`LatencyModel` protocol, its models
(:mod:`~hwnas.latency.sources`, :mod:`~hwnas.latency.closed_loop`) and the memoised
:class:`LatencySource` a search holds."""

from hwnas.latency.model import Estimate, LatencyModel, NoLatency
from hwnas.latency.source import LatencySource
from hwnas.latency.sources import AcceleratorLatency, MeterLatency, PredictorLatency, TableLatency

__all__ = ["AcceleratorLatency", "Estimate", "LatencyModel", "LatencySource", "MeterLatency", "NoLatency",
           "PredictorLatency", "TableLatency"]
