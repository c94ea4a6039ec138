"""How well predicted latencies match measured ones, and how well they could at best.

Search ranks candidates, so rank agreement (Spearman, Kendall's tau-b) matters most; the relative
error figures (MAPE, share within ±5 % / ±10 %, RMSE of log latency) say whether a predicted
number can be used against a latency budget. :func:`noise_ceiling` estimates the best any
predictor can reach on a device, from models that are computationally identical.

Example:
    >>> from hwnas.predictors.metrics import evaluate
    >>> m = evaluate([1.0, 2.0, 4.0], [1.0, 2.1, 4.0])
    >>> m["spearman"], m["within_5pct"]
    (1.0, 1.0)
"""

from __future__ import annotations

import warnings
from typing import Any, Hashable, Sequence

import numpy as np

from hwnas.predictors.base import PredictorError


def _as_latencies(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    try:
        a = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise PredictorError(f"{name} must be numbers") from None
    if a.ndim != 1:
        raise PredictorError(f"{name} must be one-dimensional, got shape {a.shape}")
    bad = ~(np.isfinite(a) & (a > 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise PredictorError(f"{name} must be positive finite milliseconds, got {a[i]!r} at index {i}")
    return a


def _rank_corr(fn: Any, a: np.ndarray, b: np.ndarray, **kw: Any) -> float:
    """A rank correlation; NaN (no warning) when either side is constant."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = fn(a, b, **kw)
    return float(r.statistic if hasattr(r, "statistic") else r[0])


def evaluate(y_true_ms: Sequence[float] | np.ndarray, y_pred_ms: Sequence[float] | np.ndarray) -> dict[str, float]:
    """Agreement between measured and predicted latencies.

    Args:
        y_true_ms: measured latencies (ms), positive and finite.
        y_pred_ms: predicted latencies (ms) of the same models in the same order, positive and finite.

    Returns:
        ``n`` (int); ``spearman`` and ``kendall_tau_b`` (rank correlations, ties averaged / tau-b
        corrected; NaN when either side is constant); ``mape`` (mean ``|pred/true - 1|``, a
        fraction, not percent); ``within_5pct`` / ``within_10pct`` (share of models with
        ``|pred/true - 1| <= 0.05`` / ``0.10``); ``rmse_log`` (root mean square of
        ``log(pred) - log(true)``).

    Raises:
        PredictorError: lengths differ, fewer than two points, or a value is not positive finite.
    """
    t = _as_latencies(y_true_ms, "y_true_ms")
    from scipy import stats

    p = _as_latencies(y_pred_ms, "y_pred_ms")
    if t.shape != p.shape:
        raise PredictorError(f"y_true_ms and y_pred_ms differ in length: {t.size} vs {p.size}")
    if t.size < 2:
        raise PredictorError(f"need at least 2 points to evaluate, got {t.size}")
    rel = np.abs(p / t - 1.0)
    # A tiny tolerance so that e.g. 1.05 vs 1.0 (rel = 0.05000000000000004) counts as within 5 %.
    eps = 1e-12
    return {
        "n": int(t.size),
        "spearman": _rank_corr(stats.spearmanr, t, p),
        "kendall_tau_b": _rank_corr(stats.kendalltau, t, p, variant="b"),
        "mape": float(rel.mean()),
        "within_5pct": float(np.mean(rel <= 0.05 + eps)),
        "within_10pct": float(np.mean(rel <= 0.10 + eps)),
        "rmse_log": float(np.sqrt(np.mean((np.log(p) - np.log(t)) ** 2))),
    }


def noise_ceiling(latencies_ms: Sequence[float] | np.ndarray, groups: Sequence[Hashable]) -> dict[str, float]:
    """Best agreement any predictor can reach, given the device's own measurement noise.

    Models in one group are computationally identical (same operators on same shapes, e.g. NB201
    cells that differ only in dead edges), so no predictor working from the computation can tell
    them apart. Each model of a group of at least two is "predicted" by the mean latency of the
    *other* members of its group (leave-one-out); singleton groups are left out.

    Args:
        latencies_ms: measured latency of each model (ms), positive and finite.
        groups: a group id (any hashable) per model.

    Returns:
        :func:`evaluate` of the leave-one-out predictions over the models in groups of >= 2
        (``spearman``, ``within_10pct``, ... ; ``n`` counts those models) plus ``groups``, the
        number of such groups.

    Raises:
        PredictorError: lengths differ, or fewer than two models lie in groups of at least two.

    Example:
        >>> r = noise_ceiling([1.0, 3.0, 10.0, 10.5, 5.0], ["a", "a", "b", "b", "c"])
        >>> round(r["spearman"], 3), r["within_10pct"], r["n"], r["groups"]
        (0.6, 0.5, 4, 2)
    """
    y = _as_latencies(latencies_ms, "latencies_ms")
    g = list(groups)
    if len(g) != y.size:
        raise PredictorError(f"latencies_ms and groups differ in length: {y.size} vs {len(g)}")
    members: dict[Hashable, list[int]] = {}
    for i, gid in enumerate(g):
        members.setdefault(gid, []).append(i)
    idx: list[int] = []
    pred: list[float] = []
    n_groups = 0
    for rows in members.values():
        if len(rows) < 2:
            continue
        n_groups += 1
        vals = y[rows]
        loo = (vals.sum() - vals) / (len(rows) - 1)
        idx.extend(rows)
        pred.extend(loo.tolist())
    if len(idx) < 2:
        raise PredictorError("noise_ceiling needs at least one group of two or more identical models")
    out: dict[str, float] = dict(evaluate(y[idx], np.asarray(pred)))
    out["groups"] = n_groups
    return out
