"""The latency models a search can hold (:class:`~hwnas.latency.model.LatencyModel`):

* :class:`TableLatency`: a device's latencies already in the database (measured or imported);
  architectures it lacks raise :class:`~hwnas.latency.model.NoLatency`, or are measured by a
  fallback model when one is given;
* :class:`PredictorLatency`: a fitted predictor, bounded, with its calibrated interval; the
  latency judged is the ``confidence`` quantile (0.5: the point prediction);
* :class:`MeterLatency`: a measurement on this machine through ``device_agent``
  (:class:`~hwnas.local_meter.LocalMeter`);
* :class:`AcceleratorLatency`: the analytical cost model of one accelerator;
* :class:`~hwnas.latency.closed_loop.ClosedLoop`: a predictor measured where it is unsure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from hwnas.latency.model import Estimate, LatencyModel, NoLatency
from hwnas.space.base import Arch


@dataclass
class TableLatency:
    """Latencies looked up in ``table`` (arch spec -> ms); ``fallback`` answers the others (and
    its answers join the table), else they raise :class:`NoLatency`."""

    table: dict[str, float]
    label: str
    fallback: LatencyModel | None = None

    @property
    def cheap(self) -> bool:
        return self.fallback is None

    def estimate(self, archs: Sequence[Arch]) -> list[Estimate]:
        missing = [a for a in archs if a.spec not in self.table]
        if missing:
            if self.fallback is None:
                raise NoLatency(f"no latency of this architecture in {self.label}")
            for a, e in zip(missing, self.fallback.estimate(missing)):
                self.table[a.spec] = e.ms
        return [Estimate(self.table[a.spec]) for a in archs]


@dataclass
class PredictorLatency:
    """A fitted predictor's bounded prediction, judged at quantile ``confidence`` of its interval.

    Args:
        predictor: any fitted :class:`~hwnas.predictors.base.Predictor`.
        device: its device (``None`` for a single-device predictor).
        graph_of: the graph of an architecture, as the predictor was trained on.
        confidence: the quantile judged (0.5: the point prediction).
        label: where latencies come from.
        resolver: the graph resolver behind ``graph_of``, if any (for timing reports).
    """

    predictor: Any
    device: str | None
    graph_of: Callable[[Arch], Any]
    confidence: float
    label: str
    resolver: Any = None
    cheap: bool = True

    def estimate(self, archs: Sequence[Arch]) -> list[Estimate]:
        from hwnas.predictors.support import predict_interval

        p = predict_interval(self.predictor, [self.graph_of(a) for a in archs], device=self.device, level=0.9)
        judged = p.mean_ms if self.confidence == 0.5 else p.quantile_ms(self.confidence)
        extra = (("latency_confidence", self.confidence),)
        return [Estimate(float(judged[i]), float(p.mean_ms[i]), float(p.low_ms[i]), float(p.high_ms[i]),
                         extrapolated=bool(p.extrapolated[i]), extra=extra) for i in range(len(archs))]  # fmt: skip


@dataclass
class MeterLatency:
    """Measured now, on this machine, by ``meter`` (a :class:`~hwnas.local_meter.LocalMeter`:
    exported, timed by ``device_agent run`` and stored in its database)."""

    meter: Any
    label: str
    cheap: bool = False

    def estimate(self, archs: Sequence[Arch]) -> list[Estimate]:
        return [Estimate(self.meter.latency_ms(a), measured=True) for a in archs]


@dataclass
class AcceleratorLatency:
    """The analytical latency of each architecture's network on one accelerator ``spec``
    (:class:`~hwnas.codesign.hw_eval.HardwareCost`; layers cached per architecture)."""

    cost: Any
    spec: Any
    label: str = "accelerator cost model"
    cheap: bool = True
    _memo: dict[str, float] = field(default_factory=dict)

    def estimate(self, archs: Sequence[Arch]) -> list[Estimate]:
        out = []
        for a in archs:
            if a.spec not in self._memo:
                self._memo[a.spec] = float(self.cost.metrics(a, self.spec)["latency_ms"])
            out.append(Estimate(self._memo[a.spec]))
        return out


__all__ = ["AcceleratorLatency", "MeterLatency", "PredictorLatency", "TableLatency"]
