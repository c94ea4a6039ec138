"""What an architecture costs on a device: the :class:`LatencyModel` protocol that search and
codesign hold, whatever answers it (a latency table, a learned predictor, a measurement on this
machine, the closed loop of both, an accelerator's cost model).

A model answers a batch of architectures with one :class:`Estimate` each: the latency the search
judges (``ms``), and, where the model has them, its point prediction and 90% interval, whether it
was measured, and whether it extrapolated. ``cheap`` says whether a call is free (it may then also
serve a strategy's feasibility filter) or costs a measurement; ``label`` says where latencies
come from, for result files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence, runtime_checkable

from hwnas.space.base import Arch


class NoLatency(ValueError):
    """The model has no latency of an architecture (a partial table)."""


@dataclass(frozen=True)
class Estimate:
    """A latency, in milliseconds, and how sure it is.

    Attributes:
        ms: the latency a budget is judged on: measured, from a table, or the model's chosen
            quantile (``--latency-confidence``).
        mean_ms, low_ms, high_ms: the point prediction and its 90% interval (learned models).
        measured: ``ms`` was measured on the device.
        extrapolated: the prediction left the model's training support.
    """

    ms: float
    mean_ms: float | None = None
    low_ms: float | None = None
    high_ms: float | None = None
    measured: bool = False
    extrapolated: bool = False
    extra: tuple[tuple[str, Any], ...] = ()

    def details(self) -> dict[str, Any]:
        """What a trial records beside ``latency_ms`` (``latency_mean_ms``, ``latency_low_ms``,
        ``latency_high_ms``, ``extrapolated``, ``latency_measured``; only what the model knows)."""
        out: dict[str, Any] = {}
        if self.mean_ms is not None:
            out.update(latency_mean_ms=self.mean_ms, latency_low_ms=self.low_ms, latency_high_ms=self.high_ms,
                       extrapolated=self.extrapolated)  # fmt: skip
        if self.measured or self.mean_ms is not None:
            out["latency_measured"] = self.measured
        out.update(dict(self.extra))
        return out


@runtime_checkable
class LatencyModel(Protocol):
    """``estimate(archs)`` -> one :class:`Estimate` per architecture, in order.

    Raises (from ``estimate``):
        NoLatency: an architecture the model cannot answer for.
    """

    label: str
    cheap: bool

    def estimate(self, archs: Sequence[Arch]) -> list[Estimate]: ...


__all__ = ["Estimate", "LatencyModel", "NoLatency"]
