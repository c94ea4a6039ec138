"""Calibrated predictive intervals: out-of-fold log residuals of a predictor on its own training data.

:func:`calibrate` refits a fresh copy of the predictor (same configuration) ``folds`` times, each on
all models but one fold, and keeps for every device the log residuals ``log(measured) -
log(bounded prediction)`` of the held-out models (bounded as :func:`hwnas.predictors.support.predict_interval`
bounds them). Their empirical quantiles are the interval's ends: split-conformal prediction, so the
nominal 90% interval covers about 90% of new models drawn like the training ones. Models a search
finds are not drawn like them; :func:`~hwnas.predictors.support.predict_interval` widens the interval of
graphs outside the training support.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from hwnas.predictors.records import LatencyRecord, PredictorError

#: Folds by default; fewer models than this many per fold use leave-one-out-like folds.
DEFAULT_FOLDS = 5


def out_of_fold_residuals(predictor: Any, records: Sequence[LatencyRecord], folds: int = DEFAULT_FOLDS,
                          seed: int = 0) -> dict[str, np.ndarray]:
    """Per device, the log residuals of every model when its fold was held out.

    Args:
        predictor: a predictor (fitted or not); copies are made with ``type(p)(**p.get_config())``.
        records: its training records.
        folds: number of folds (>= 2), over models (all devices of a model share its fold).
        seed: the fold assignment's seed.

    Raises:
        PredictorError: fewer than 2 folds, or too few models to fit a fold.
    """
    from hwnas.predictors.support import predict_interval

    if folds < 2:
        raise PredictorError(f"--calibration-folds must be at least 2, got {folds}")
    keys = list(dict.fromkeys(r.key for r in records))
    folds = min(folds, len(keys))
    order = np.random.default_rng(seed).permutation(len(keys))
    fold_of = {keys[i]: f for f, part in enumerate(np.array_split(order, folds)) for i in part}
    out: dict[str, list[float]] = {}
    for f in range(folds):
        train = [r for r in records if fold_of[r.key] != f]
        test = [r for r in records if fold_of[r.key] == f]
        clone = type(predictor)(**predictor.get_config()).fit(train)
        for device in sorted({r.device for r in test}):
            if device not in clone.devices:
                continue
            rows = [r for r in test if r.device == device]
            pred = predict_interval(clone, [r.graph for r in rows], device=device)
            resid = np.log([r.latency_ms for r in rows]) - np.log(pred.mean_ms)
            out.setdefault(device, []).extend(float(v) for v in resid)
    return {d: np.asarray(v) for d, v in out.items()}


def calibrate(predictor: Any, records: Sequence[LatencyRecord], folds: int = DEFAULT_FOLDS, seed: int = 0) -> Any:
    """Sets ``predictor.calibration_`` from :func:`out_of_fold_residuals`; returns the predictor.

    Costs ``folds`` extra fits. The predictor itself should be fitted on all of ``records``.
    """
    predictor.calibration_ = out_of_fold_residuals(predictor, records, folds, seed)
    return predictor


def coverage(measured_ms: Sequence[float], low_ms: Sequence[float], high_ms: Sequence[float]) -> float:
    """Share of ``measured_ms`` inside ``[low_ms, high_ms]``."""
    m = np.asarray(measured_ms, dtype=np.float64)
    if m.size == 0:
        return float("nan")
    return float(np.mean((m >= np.asarray(low_ms)) & (m <= np.asarray(high_ms))))


__all__ = ["DEFAULT_FOLDS", "calibrate", "coverage", "out_of_fold_residuals"]
