"""A :class:`~hwnas.latency.model.LatencyModel` as a search uses it: one architecture at a time,
memoised, timed, with what each answer said kept for the trial's record."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from hwnas.latency.model import LatencyModel
from hwnas.space.base import Arch


@dataclass
class LatencySource:
    """``source(arch)`` is the latency of ``arch`` in ms (memoised) from ``model``.

    ``time_s`` accumulates the seconds spent in the model (memo hits cost nothing). A model with a
    ``generation`` (the closed loop, which adapts its predictor) invalidates the memo when it
    changes. ``resolver`` is the graph resolver of a model that reads model graphs (its
    ``encode_s`` is the part of ``time_s`` spent making graphs), else ``None``.
    """

    model: LatencyModel
    time_s: float = 0.0
    _memo: dict[str, float] = field(default_factory=dict)
    details: dict[str, dict[str, Any]] = field(default_factory=dict)
    _generation: int = 0

    @property
    def label(self) -> str:
        return self.model.label

    @property
    def cheap(self) -> bool:
        return self.model.cheap

    @property
    def table(self) -> dict[str, float] | None:
        """The latency table of a table model, else ``None``."""
        return getattr(self.model, "table", None)

    @property
    def meter(self) -> Any:
        """The meter of a model that measures on this machine (directly, as a table's fallback,
        or in the closed loop), else ``None``."""
        for m in (self.model, getattr(self.model, "fallback", None)):
            if m is not None and getattr(m, "meter", None) is not None:
                return m.meter
        return None

    @property
    def loop(self) -> Any:
        """The :class:`~hwnas.latency.closed_loop.ClosedLoop`, when the model is one."""
        from hwnas.latency.closed_loop import ClosedLoop

        return self.model if isinstance(self.model, ClosedLoop) else None

    @property
    def resolver(self) -> Any:
        return getattr(self.model, "resolver", None)

    def detail(self, arch: Arch) -> dict[str, Any]:
        """What the model said of ``arch`` beyond the latency (see
        :meth:`~hwnas.latency.model.Estimate.details`; ``{}`` for tables and meters)."""
        self(arch)
        return dict(self.details.get(arch.spec, {}))

    def __call__(self, arch: Arch) -> float:
        gen = getattr(self.model, "generation", 0)
        if gen != self._generation:
            self._memo.clear()  # the closed loop adapted its predictor: predictions changed
            self._generation = gen
        if arch.spec not in self._memo:
            t0 = time.perf_counter()
            try:
                est = self.model.estimate([arch])[0]
            finally:
                self.time_s += time.perf_counter() - t0
            self._memo[arch.spec] = float(est.ms)
            self.details[arch.spec] = est.details()
        return self._memo[arch.spec]

    def timing(self) -> dict[str, float | int | None]:
        """For result files: ``latency_computed`` (distinct architectures whose latency was
        computed), ``latency_s`` (time in the model) and ``graph_encode_s`` (of it, making graphs;
        ``None`` for models without graphs), in seconds rounded to milliseconds."""
        enc = None if self.resolver is None else round(float(self.resolver.encode_s), 3)
        return {"latency_computed": len(self._memo), "latency_s": round(self.time_s, 3), "graph_encode_s": enc}


__all__ = ["LatencySource"]
