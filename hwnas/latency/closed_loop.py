"""A learned latency model corrected by the device during a search (``--measure-uncertain``).

A search hunts for candidates that look fast, so it pushes its latency model exactly where the
model is wrong. :class:`ClosedLoop` answers "what does this candidate cost" from a fitted predictor,
and measures on the device instead whenever the predictor cannot tell which side of the budget the
candidate is on:

* the 90% interval lies under the budget: the candidate is feasible by prediction, and its
  latency is the ``confidence`` quantile of the prediction (as without the loop);
* the interval lies over the budget: infeasible by prediction, same latency;
* the interval *straddles* the budget: the candidate is measured (``measure(arch)``, which stores
  the measurement in the latency database) and its measured latency is returned. Every
  ``adapt_every`` measurements the predictor is adapted (:func:`adapt_predictor`) on everything
  the device has measured, and the measurements' out-of-sample residuals join its calibration,
  so the intervals become those of the region the search explores.

At most ``max_measurements`` candidates are measured per search, confirmations included: the last
:func:`confirm_reserve` of them are kept for :meth:`ClosedLoop.confirm`, and later straddlers are
judged on the quantile. :meth:`ClosedLoop.confirm` measures the search's answer before it is
reported feasible, going down the ranking until a measurement meets the budget with the upper end
of its repeat interval (a repeat run should meet it too); when none does within the allowance, the
best one whose median meets it is returned, marked ``marginal``.

Every measurement (with the prediction it replaced) is appended to a JSON log written atomically
(``OUT/measured.json``), so a resumed search measures nothing twice, counts what it already
spent, and adapts the predictor at start on what was measured before.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from hwnas.fileio import atomic_write_bytes
from hwnas.latency.model import Estimate
from hwnas.predictors.records import LatencyRecord
from hwnas.space.base import Arch

#: Measurements between two adaptations of the predictor.
ADAPT_EVERY = 5
#: Candidates measured per search, at most: for uncertainty and to confirm the answer together.
MAX_MEASUREMENTS = 30
#: Of those, kept for confirming the answer (fewer when the cap is small; see :func:`confirm_reserve`).
CONFIRM_RESERVE = 3
#: Answers measured by :meth:`ClosedLoop.confirm` before it gives up.
MAX_CONFIRM = 5
#: Nominal coverage of the interval whose straddling the budget triggers a measurement.
LEVEL = 0.9


@dataclass
class Measured:
    """One candidate measured by the loop: the measurement and the prediction it replaced."""

    arch: str
    measured_ms: float
    predicted_ms: float
    low_ms: float
    high_ms: float
    reason: str  # "uncertain" (its interval straddled the budget) or "confirm" (the answer)
    repeat_high_ms: float | None = None  # upper end of the measurement's repeat interval

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class ClosedLoop:
    """Latency of candidates from ``predictor``, measured where it straddles ``budget_ms``.

    Args:
        predictor: a fitted predictor (any learned kind). Adapted copies of it replace
            :attr:`current` as measurements come in; each adaptation starts from this one.
        device: the predictor's device (``None`` for a single-device predictor).
        graph_of: the graph of an architecture (as the predictor was trained on).
        parse: an architecture from its spec string (the space's ``parse``).
        budget_ms: the hard latency budget.
        confidence: quantile judged when nothing is measured (``--latency-confidence``).
        measure: measures an architecture on the device and stores it; returns its median ms and
            the upper end of the interval a repeat measurement would fall in (the agent's
            ``ci_high_ms``; the median again when there is none).
        records: the device's measured records (graphs attached), read afresh at each adaptation.
        log_path: the JSON log of measurements (read on start when it exists: resume).
        max_measurements: cap on measurements per search (uncertainty and confirmation).
        adapt_every: measurements between adaptations.
        label, resolver, meter: where latencies come from, the graph resolver behind
            ``graph_of`` and the meter behind ``measure`` (for reports and the measurement gate).
    """

    predictor: Any
    device: str | None
    graph_of: Callable[[Arch], Any]
    parse: Callable[[str], Arch]
    budget_ms: float
    confidence: float
    measure: Callable[[Arch], tuple[float, float]]
    records: Callable[[], Sequence[LatencyRecord]]
    log_path: Path
    max_measurements: int = MAX_MEASUREMENTS
    adapt_every: int = ADAPT_EVERY
    label: str = "closed loop"
    resolver: Any = None
    meter: Any = None
    cheap: bool = True  # measurements are few and capped; the prefilter may ask it
    generation: int = 0
    measured: dict[str, Measured] = field(default_factory=dict)
    adaptations: int = 0
    _since_adapt: int = 0
    current: Any = None

    def __post_init__(self) -> None:
        self.current = self.predictor
        if self.log_path.exists():
            data = json.loads(self.log_path.read_text())
            for m in data.get("measurements", []):
                self.measured[m["arch"]] = Measured(**m)
            if self.measured:
                self._adapt()

    # -- the latency source ------------------------------------------------------------------------
    def __call__(self, arch: Arch) -> float:
        return float(self.latency(arch)["latency_ms"])

    def estimate(self, archs: Sequence[Arch]) -> list[Estimate]:
        """:class:`~hwnas.latency.model.LatencyModel`: :meth:`latency` of each architecture."""
        out = []
        for a in archs:
            d = self.latency(a)
            extra = (("latency_confidence", d["latency_confidence"]),) if "latency_confidence" in d else ()
            out.append(Estimate(d["latency_ms"], d["latency_mean_ms"], d["latency_low_ms"], d["latency_high_ms"],
                                measured=d["latency_measured"], extrapolated=bool(d.get("extrapolated")), extra=extra))  # fmt: skip
        return out

    def latency(self, arch: Arch) -> dict[str, Any]:
        """The latency of ``arch`` and how it was obtained: ``latency_ms`` (measured, or the
        ``confidence`` quantile), ``latency_measured``, and the prediction (``latency_mean_ms``,
        ``latency_low_ms``, ``latency_high_ms``, ``extrapolated``)."""
        if arch.spec in self.measured:
            m = self.measured[arch.spec]
            return {"latency_ms": m.measured_ms, "latency_measured": True, "latency_mean_ms": m.predicted_ms,
                    "latency_low_ms": m.low_ms, "latency_high_ms": m.high_ms}  # fmt: skip
        p = self._predict(arch)
        out = {"latency_mean_ms": float(p.mean_ms[0]), "latency_low_ms": float(p.low_ms[0]),
               "latency_high_ms": float(p.high_ms[0]), "extrapolated": bool(p.extrapolated[0]),
               "latency_confidence": self.confidence}  # fmt: skip
        straddles = out["latency_low_ms"] <= self.budget_ms < out["latency_high_ms"]
        if straddles and self.spent() < self.max_measurements - confirm_reserve(self.max_measurements):
            m = self._measure(arch, out, "uncertain")
            return {**out, "latency_ms": m.measured_ms, "latency_measured": True}
        judged = out["latency_mean_ms"] if self.confidence == 0.5 else float(p.quantile_ms(self.confidence)[0])
        return {**out, "latency_ms": judged, "latency_measured": False}

    def spent(self) -> int:
        """Candidates measured so far, for uncertainty or to confirm (this run and the runs it
        resumes)."""
        return len(self.measured)

    def uncertain(self) -> int:
        """Candidates measured because their interval straddled the budget."""
        return sum(m.reason == "uncertain" for m in self.measured.values())

    def confirm(self, ranked: Sequence[Any]) -> tuple[Any | None, list[dict[str, Any]]]:
        """The first of ``ranked`` (trials, best first, with ``arch`` and ``metrics``) confirmed by
        measurement: the upper end of its measurement's repeat interval (where a repeat run's
        median should fall) is within the budget. Answers not yet measured are measured, at most
        :data:`MAX_CONFIRM` and never beyond ``max_measurements`` in all; past that, the ranking
        is searched for answers the loop measured already. When none is confirmed
        so, the first whose measured median is within the budget is returned and marked
        ``marginal`` in ``checked`` (a repeat may miss the budget); ``None`` when no median is.
        Returns the trial and what was checked (``measured_ms``, ``repeat_high_ms``,
        ``meets_budget`` by the median, ``repeat_meets_budget``, ``marginal``)."""
        checked: list[dict[str, Any]] = []
        trials: list[Any] = []  # the trial of each row of checked
        fresh = 0
        for t in ranked:
            if t.arch not in self.measured:
                if fresh >= MAX_CONFIRM or self.spent() >= self.max_measurements:
                    continue  # out of measurements: go on down to the answers measured already
                fresh += 1
                m = t.metrics
                pred = {k: float(m.get(k, m.get("latency_ms", 0.0)))
                        for k in ("latency_mean_ms", "latency_low_ms", "latency_high_ms")}  # fmt: skip
                self._measure(self.parse(t.arch), pred, "confirm")
            m = self.measured[t.arch]
            high = m.repeat_high_ms if m.repeat_high_ms is not None else m.measured_ms
            row = {"arch": t.arch, "measured_ms": m.measured_ms, "repeat_high_ms": high,
                   "meets_budget": m.measured_ms <= self.budget_ms, "repeat_meets_budget": high <= self.budget_ms,
                   "marginal": False}  # fmt: skip
            checked.append(row)
            trials.append(t)
            if row["repeat_meets_budget"]:
                break
        i = next((i for i, c in enumerate(checked) if c["repeat_meets_budget"]), None)
        if i is None:
            i = next((i for i, c in enumerate(checked) if c["meets_budget"]), None)
            if i is not None:
                checked[i]["marginal"] = True
        return (None if i is None else trials[i]), checked

    def summary(self) -> dict[str, Any]:
        """For result files: counts, adaptations and every measurement with its prediction."""
        rows = [m.as_dict() for m in self.measured.values()]
        inside = [m.low_ms <= m.measured_ms <= m.high_ms for m in self.measured.values()]
        return {"measured": len(rows), "measured_uncertain": self.uncertain(), "adaptations": self.adaptations,
                "max_measurements": self.max_measurements, "inside_interval": int(sum(inside)),
                "measurements": rows}  # fmt: skip

    # -- internals -----------------------------------------------------------------------------------
    def _predict(self, arch: Arch) -> Any:
        from hwnas.predictors.support import predict_interval

        return predict_interval(self.current, [self.graph_of(arch)], device=self.device, level=LEVEL)

    def _measure(self, arch: Arch, pred: dict[str, Any], reason: str) -> Measured:
        ms, high = (float(v) for v in self.measure(arch))
        m = Measured(arch.spec, ms, pred["latency_mean_ms"], pred["latency_low_ms"], pred["latency_high_ms"], reason,
                     max(high, ms))  # fmt: skip
        self.measured[arch.spec] = m
        self._save()
        self._since_adapt += 1
        if reason == "uncertain" and self._since_adapt >= self.adapt_every:
            self._adapt()
        return m

    def _save(self) -> None:
        data = {"budget_ms": self.budget_ms, "device": self.device,
                "measurements": [m.as_dict() for m in self.measured.values()]}  # fmt: skip
        atomic_write_bytes(self.log_path, json.dumps(data, indent=1).encode())

    def _adapt(self) -> None:
        """Adapt the predictor on the device's records and the loop's out-of-sample residuals."""
        records = list(self.records())
        if len(records) < 3:
            return
        residuals = [float(np.log(m.measured_ms / m.predicted_ms)) for m in self.measured.values() if m.predicted_ms > 0]
        self.current = adapt_predictor(self.predictor, self.device, records, residuals)
        self.adaptations += 1
        self.generation += 1
        self._since_adapt = 0


def confirm_reserve(max_measurements: int) -> int:
    """Measurements of the cap kept for confirming the answer: :data:`CONFIRM_RESERVE`, at most
    half the cap, and at least one (the answer is measured before it is reported)."""
    return min(CONFIRM_RESERVE, max(1, max_measurements // 2))


def adapt_predictor(predictor: Any, device: str | None, records: Sequence[LatencyRecord], residuals: Sequence[float]) -> Any:
    """A copy of ``predictor`` adapted to ``records`` (one device's measurements, graphs attached).

    A GNN keeps its embedding and refits the device's head by Bayesian linear regression with the
    current head as the prior mean (:func:`hwnas.predictors.adapt.adapt_head`): seconds, not a
    retraining. Other kinds are refitted on the records (they fit in seconds). Either way the
    calibration residuals of the device are the old ones plus ``residuals`` (log measured over
    predicted, of models the predictor had not seen), and the support grows to the records.
    """
    dev = device if device is not None else predictor.devices[0]
    recs = [LatencyRecord(r.key, r.graph, dev, r.latency_ms, r.space, r.node_profile) for r in records]
    if getattr(predictor, "kind", None) == "gnn":
        from hwnas.predictors.adapt import HeadPrior, adapt_head

        w, b = predictor.heads()
        d = predictor.devices.index(dev)
        theta = np.concatenate([w[d], [b[d]]])
        scale = float(np.mean(theta[:-1] ** 2)) or 1e-2
        emb = predictor.embed([r.graph for r in recs])
        res = adapt_head(HeadPrior(theta, scale * np.eye(len(theta))), emb, np.log([r.latency_ms for r in recs]))
        w = w.copy()
        b = b.copy()
        w[d], b[d] = res.w, res.b
        new = predictor.with_heads(list(predictor.devices), w, b)
    else:
        new = type(predictor)(**predictor.get_config()).fit(recs)
    support = getattr(predictor, "support_", None)
    if support is not None:
        new.support_ = support.with_device(dev, [r.latency_ms for r in recs], [r.graph for r in recs])
    calibration = dict(getattr(predictor, "calibration_", None) or {})
    old = np.asarray(calibration.get(dev, []), dtype=np.float64)
    calibration[dev] = np.concatenate([old, np.asarray(residuals, dtype=np.float64)])
    new.calibration_ = calibration
    return new


__all__ = ["ADAPT_EVERY", "CONFIRM_RESERVE", "MAX_CONFIRM", "MAX_MEASUREMENTS", "ClosedLoop", "Measured", "adapt_predictor"]
