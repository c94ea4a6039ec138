"""What a predictor's training data covered, and predictions that stay inside it or say they don't.

A search pushes its latency model exactly where the model is wrong: it hunts for cells that look
fast. So every learned predictor keeps a :class:`Support` from its training records: the range of
each whole-model feature, the operator types seen, and each device's latency range. Then
:func:`predict_interval` returns, for each graph,

* ``mean_ms``: the prediction, kept inside the **documented range** ``[min / RANGE_FACTOR,
  max x RANGE_FACTOR]`` of the device's training latencies;
* ``low_ms``, ``high_ms``: a predictive interval at the asked level, from the predictor's
  calibration (:mod:`hwnas.predictors.calibration`: quantiles of out-of-fold log residuals), widened
  x :data:`EXTRAPOLATION_WIDEN` in log space for extrapolated graphs, and kept inside the range;
* for an extrapolated graph, ``mean_ms`` is also kept within the band that an analytical baseline
  fitted to the device allows (latency ~ FLOPs, bytes moved and operator count, non-negative
  coefficients: :func:`fit_baseline`), so extrapolation degrades to a physically plausible estimate;
* ``extrapolated``: the graph lies outside the training support (a whole-model feature outside its
  training range, or an operator type no training graph had), or the raw prediction had to be
  brought back into the range.

Example:
    >>> from hwnas.predictors.support import predict_interval      # doctest: +SKIP
    >>> p = predict_interval(predictor, graphs, level=0.9)         # doctest: +SKIP
    >>> p.mean_ms, p.high_ms, p.extrapolated                         # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from hwnas.graph.data import GraphData
from hwnas.predictors.records import LatencyRecord, PredictorError

#: Predictions are kept within [training min / RANGE_FACTOR, training max x RANGE_FACTOR] per device.
RANGE_FACTOR = 2.0
#: An extrapolated graph's interval is this many times wider in log space.
EXTRAPOLATION_WIDEN = 2.0
#: Whole-model features of the analytical baseline (:func:`fit_baseline`): latency ~ a FLOPs +
#: b bytes moved + c operators + d, every coefficient >= 0 (so it never falls as work grows).
BASELINE_FEATURES = ("flops", "bytes", "num_nodes")
#: An extrapolated prediction is kept within the baseline's training residual band widened by this
#: (log space) on each side.
BASELINE_MARGIN = 0.25
#: Without a calibration, the interval is +-this in log space (a factor of ~1.65) at 90%, scaled
#: with the normal quantile for other levels: a loud default, not a measured one.
UNCALIBRATED_LOG_HALFWIDTH_90 = 0.5


@dataclass(frozen=True)
class Support:
    """The training data's extent. Immutable; JSON-able through :meth:`state` / :meth:`from_state`.

    Attributes:
        gmin, gmax: per whole-model feature (``GraphData.graph_features``), the training range.
        ops_seen: per node feature column, whether any training node had it non-zero (the op
            one-hot columns make this "operator types seen").
        devices: device names, in the order of ``ymin`` / ``ymax``.
        ymin, ymax: each device's training latency range in ms.
        base_coef: per device, the analytical baseline's coefficients (:func:`fit_baseline`).
        base_band: per device, the min and max log residual of the baseline on training models.
    """

    gmin: np.ndarray
    gmax: np.ndarray
    ops_seen: np.ndarray
    devices: tuple[str, ...]
    ymin: np.ndarray
    ymax: np.ndarray
    base_coef: np.ndarray | None = None
    base_band: np.ndarray | None = None

    @classmethod
    def from_records(cls, records: Sequence[LatencyRecord]) -> Support:
        """The support of ``records`` (at least one)."""
        if not records:
            raise PredictorError("no training records to take the support of")
        graphs = {r.key: r.graph for r in records}
        g = np.stack([gr.graph_features for gr in graphs.values()]).astype(np.float64)
        seen = np.zeros(next(iter(graphs.values())).x.shape[1], dtype=bool)
        for gr in graphs.values():
            if gr.num_nodes:
                seen |= np.any(np.asarray(gr.x) != 0, axis=0)
        devices = tuple(sorted({r.device for r in records}))
        lat = {d: [r.latency_ms for r in records if r.device == d] for d in devices}
        ymin = np.array([min(lat[d]) for d in devices])
        ymax = np.array([max(lat[d]) for d in devices])
        if not _has_baseline_features(graphs.values()):
            return cls(g.min(0), g.max(0), seen, devices, ymin, ymax)
        fits = [fit_baseline([r.graph for r in records if r.device == d], lat[d]) for d in devices]
        return cls(g.min(0), g.max(0), seen, devices, ymin, ymax, np.stack([f[0] for f in fits]),
                   np.stack([f[1] for f in fits]))

    def with_device(self, device: str, latencies_ms: Sequence[float], graphs: Sequence[GraphData] = ()) -> Support:
        """This support plus a device (adaptation): its latency range, and its graphs' features."""
        if not len(latencies_ms):
            raise PredictorError(f"no latencies of {device!r} to take the range of")
        gmin, gmax, seen = self.gmin.copy(), self.gmax.copy(), self.ops_seen.copy()
        for gr in graphs:
            f = np.asarray(gr.graph_features, dtype=np.float64)
            gmin, gmax = np.minimum(gmin, f), np.maximum(gmax, f)
            if gr.num_nodes:
                seen |= np.any(np.asarray(gr.x) != 0, axis=0)
        keep = [i for i, d in enumerate(self.devices) if d != device]
        usable = len(graphs) == len(latencies_ms) and len(graphs) >= 2 and _has_baseline_features(graphs)
        coef, band = fit_baseline(graphs, latencies_ms) if usable else (None, None)
        base_coef = base_band = None
        if coef is not None and self.base_coef is not None and self.base_band is not None:
            base_coef = np.vstack([self.base_coef[keep], coef])
            base_band = np.vstack([self.base_band[keep], band])
        return Support(gmin, gmax, seen, tuple(self.devices[i] for i in keep) + (device,),
                       np.append(self.ymin[keep], min(latencies_ms)), np.append(self.ymax[keep], max(latencies_ms)),
                       base_coef, base_band)

    def outside(self, graphs: Sequence[GraphData]) -> np.ndarray:
        """Bool per graph: a whole-model feature outside its training range, or an unseen column."""
        out = np.zeros(len(graphs), dtype=bool)
        tol = 1e-9 * np.maximum(np.abs(self.gmax), 1.0)
        for i, gr in enumerate(graphs):
            f = np.asarray(gr.graph_features, dtype=np.float64)
            if np.any(f < self.gmin - tol) or np.any(f > self.gmax + tol):
                out[i] = True
            elif gr.num_nodes and np.any(np.any(np.asarray(gr.x) != 0, axis=0) & ~self.ops_seen):
                out[i] = True
        return out

    def bounds(self, device: str) -> tuple[float, float]:
        """The documented prediction range of ``device`` in ms."""
        if device not in self.devices:
            raise PredictorError(f"no training latencies of {device!r}; the predictor knows: {', '.join(self.devices)}")
        i = self.devices.index(device)
        return float(self.ymin[i]) / RANGE_FACTOR, float(self.ymax[i]) * RANGE_FACTOR

    def baseline_band(self, graphs: Sequence[GraphData], device: str) -> tuple[np.ndarray, np.ndarray] | None:
        """Per graph, the ms range the analytical baseline allows: its prediction times the
        exponentials of its training residual band widened by :data:`BASELINE_MARGIN`; None
        without a baseline for ``device``."""
        if self.base_coef is None or self.base_band is None or device not in self.devices:
            return None
        i = self.devices.index(device)
        base = baseline_ms(self.base_coef[i], graphs)
        lo, hi = self.base_band[i]
        return base * np.exp(lo - BASELINE_MARGIN), base * np.exp(hi + BASELINE_MARGIN)

    def state(self) -> dict[str, Any]:
        """JSON-able form."""
        out = {"gmin": self.gmin.tolist(), "gmax": self.gmax.tolist(), "ops_seen": self.ops_seen.astype(int).tolist(),
               "devices": list(self.devices), "ymin": self.ymin.tolist(), "ymax": self.ymax.tolist()}
        if self.base_coef is not None and self.base_band is not None:
            out.update(base_coef=self.base_coef.tolist(), base_band=self.base_band.tolist())
        return out

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> Support:
        """Inverse of :meth:`state`."""
        coef, band = data.get("base_coef"), data.get("base_band")
        return cls(np.asarray(data["gmin"], dtype=np.float64), np.asarray(data["gmax"], dtype=np.float64),
                   np.asarray(data["ops_seen"], dtype=bool), tuple(data["devices"]),
                   np.asarray(data["ymin"], dtype=np.float64), np.asarray(data["ymax"], dtype=np.float64),
                   None if coef is None else np.asarray(coef, dtype=np.float64),
                   None if band is None else np.asarray(band, dtype=np.float64))


def _has_baseline_features(graphs: Any) -> bool:
    """Whether every graph carries the encoder's whole-model features (hand-made test graphs may not)."""
    from hwnas.graph.encode import GRAPH_FEATURES

    return all(len(g.graph_features) == len(GRAPH_FEATURES) for g in graphs)


def _baseline_design(graphs: Sequence[GraphData]) -> np.ndarray:
    from hwnas.graph.encode import GRAPH_FEATURES

    cols = [GRAPH_FEATURES.index(name) for name in BASELINE_FEATURES]
    f = np.stack([np.asarray(g.graph_features, dtype=np.float64)[cols] for g in graphs])
    return np.concatenate([f, np.ones((len(graphs), 1))], axis=1)


def baseline_ms(coef: np.ndarray, graphs: Sequence[GraphData]) -> np.ndarray:
    """The analytical baseline's latency of ``graphs`` (ms, floored at a microsecond)."""
    return np.maximum(_baseline_design(graphs) @ coef, 1e-3)


def fit_baseline(graphs: Sequence[GraphData], latencies_ms: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Non-negative least squares of latency on :data:`BASELINE_FEATURES` and a constant, in
    relative error (each row divided by its latency, floored at a tenth of the median latency so
    that a near-empty model timed at microseconds does not decide the fit).

    Returns:
        ``(coef, band)``: the coefficients (in the features' units) and the 5th and 95th
        percentiles of the training log residuals ``log(latency / baseline)``.
    """
    from scipy.optimize import nnls

    a = _baseline_design(graphs)
    y = np.asarray(latencies_ms, dtype=np.float64)
    scale = np.maximum(np.abs(a).max(axis=0), 1e-12)
    w = 1.0 / np.maximum(y, 0.1 * float(np.median(y)))
    sol, _ = nnls(a / scale * w[:, None], y * w)
    coef = sol / scale
    resid = np.log(y) - np.log(baseline_ms(coef, graphs))
    return coef, np.quantile(resid, [0.05, 0.95])


@dataclass(frozen=True)
class Prediction:
    """Predicted latencies with an interval (see the module docstring). Arrays, one entry per graph."""

    mean_ms: np.ndarray
    low_ms: np.ndarray
    high_ms: np.ndarray
    extrapolated: np.ndarray
    level: float

    def quantile_ms(self, q: float) -> np.ndarray:
        """The latency at quantile ``q`` of the predictive distribution (log-normal between the
        interval's ends; 0.5 is the mean): what ``--latency-confidence q`` judges a budget on."""
        from scipy.stats import norm

        if not 0.0 < q < 1.0:
            raise PredictorError(f"a confidence must be in (0, 1), got {q}")
        z_level = float(norm.ppf(0.5 + self.level / 2))
        z = float(norm.ppf(q))
        log_mean = np.log(self.mean_ms)
        side = np.where(z >= 0, np.log(self.high_ms) - log_mean, log_mean - np.log(self.low_ms))
        return np.exp(log_mean + z * side / z_level)


def predict_interval(predictor: Any, graphs: Sequence[GraphData], device: str | None = None, level: float = 0.9,
                     raw_ms: np.ndarray | None = None) -> Prediction:
    """Bounded predictions with intervals and extrapolation flags (see the module docstring).

    Args:
        predictor: a fitted :class:`~hwnas.predictors.base.Predictor` (its ``support_`` and
            ``calibration_``, when it has them, are used; without a support nothing is bounded).
        graphs: the models.
        device: as for ``predict``.
        level: the interval's nominal coverage, in (0, 1).
        raw_ms: the predictor's own predictions of ``graphs``, when already computed (a GNN
            ranking from cached embeddings); default: ``predictor.predict(graphs, device)``.
    """
    from scipy.stats import norm

    if not 0.0 < level < 1.0:
        raise PredictorError(f"an interval level must be in (0, 1), got {level}")
    raw = np.asarray(predictor.predict(graphs, device=device) if raw_ms is None else raw_ms, dtype=np.float64)
    dev = device if device is not None else (predictor.devices[0] if len(predictor.devices) == 1 else None)
    support: Support | None = getattr(predictor, "support_", None)
    flagged = np.zeros(len(graphs), dtype=bool)
    mean = np.where(np.isfinite(raw) & (raw > 0), raw, np.nan)
    if support is not None and dev in support.devices:
        lo, hi = support.bounds(dev)
        flagged |= support.outside(graphs)
        flagged |= ~np.isfinite(mean) | (mean < lo) | (mean > hi)
        band = support.baseline_band(graphs, dev)
        if band is not None:  # outside the support, fall back towards the physically plausible
            geo = np.sqrt(band[0] * band[1])
            mean = np.where(flagged, np.clip(np.where(np.isfinite(mean), mean, geo), band[0], band[1]), mean)
        mean = np.clip(np.nan_to_num(mean, nan=np.sqrt(lo * hi)), lo, hi)
    else:
        lo, hi = 0.0, np.inf
        flagged |= ~np.isfinite(mean)
        mean = np.nan_to_num(mean, nan=1.0)
    calibration = getattr(predictor, "calibration_", None) or {}
    resid = calibration.get(dev) if dev is not None else None
    if resid is not None and len(resid) >= 5:
        r = np.asarray(resid, dtype=np.float64)
        q_lo, q_hi = (float(v) for v in np.quantile(r, [(1 - level) / 2, (1 + level) / 2]))
    else:
        half = UNCALIBRATED_LOG_HALFWIDTH_90 * float(norm.ppf(0.5 + level / 2) / norm.ppf(0.95))
        q_lo, q_hi = -half, half
    q_lo, q_hi = min(q_lo, 0.0), max(q_hi, 0.0)
    widen = np.where(flagged, EXTRAPOLATION_WIDEN, 1.0)
    low = np.clip(mean * np.exp(q_lo * widen), lo, hi)
    high = np.clip(mean * np.exp(q_hi * widen), lo, hi)
    return Prediction(mean, np.minimum(low, mean), np.maximum(high, mean), flagged, float(level))


__all__ = ["BASELINE_FEATURES", "EXTRAPOLATION_WIDEN", "RANGE_FACTOR", "Prediction", "Support", "baseline_ms",
           "fit_baseline", "predict_interval"]
