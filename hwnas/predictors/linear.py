"""Proxy baselines: latency as a linear function of a model's FLOPs or parameter count.

Example:
    >>> import numpy as np
    >>> from hwnas.graph.data import GraphData
    >>> from hwnas.predictors.base import LatencyRecord
    >>> from hwnas.predictors.linear import FlopsLinear
    >>> def g(flops):
    ...     return GraphData(np.zeros((1, 1), np.float32), np.zeros((2, 0), np.int64),
    ...                      np.zeros(1, np.float32), ("Conv",), ("Conv|k3",), flops, 10)
    >>> recs = [LatencyRecord(f"m{i}", g(f), "pi4", 1.0 + f * 1e-6) for i, f in enumerate([1e6, 2e6, 4e6])]
    >>> FlopsLinear().fit(recs).predict([g(3_000_000)]).round(6).tolist()
    [4.0]
"""

from __future__ import annotations

import abc

from typing import Any, Sequence

import numpy as np

from hwnas.graph.data import GraphData
from hwnas.predictors.arch_inputs import arch_matrix, arch_width
from hwnas.predictors.base import LatencyRecord, Predictor, PredictorError, check_records, single_device
from hwnas.predictors.support import Support


class _ProxyLinear(Predictor):
    """``latency_ms = a * x + b`` (or ``log latency = a * log x + b``) for one scalar ``x`` of a graph.

    Args:
        log_space: fit in log-log space (``x`` below 1 is taken as 1 so its log is defined). A power
            law suits devices whose latency grows sub-linearly with work; the default, a line,
            keeps a fixed per-inference overhead ``b``.
        arch_features: add the architecture features of the graphs as further columns (a ridge
            fit, so that 10 samples of 50 columns stay determined): a cell's live convolutions
            per kind are what a pruned implementation's latency is linear in. Off by default, so
            that the kind stays the one-number proxy baseline it is named for.

    Attributes (after fit):
        devices_: the one device fitted.
        coef_: float64 ``[a, w_1 .. w_n_arch, b]``.
        n_arch_: number of architecture features in the fit (0 without them).
        floor_ms_: predictions are clipped to at least this (1 % of the smallest training latency),
            so a line with a negative intercept never predicts zero or negative time.
    """

    _min_records = 2

    def __init__(self, log_space: bool = False, arch_features: bool = False) -> None:
        self.log_space = log_space
        self.arch_features = arch_features

    @abc.abstractmethod
    def _x(self, graph: GraphData) -> float:
        """The proxy of ``graph`` (FLOPs or params)."""

    def _design(self, graphs: Sequence[GraphData], n_arch: int = 0) -> np.ndarray:
        x = np.array([float(self._x(g)) for g in graphs], dtype=np.float64)
        if not np.all(np.isfinite(x)) or np.any(x < 0):
            raise PredictorError(f"{self.kind} predictor needs non-negative finite graph {self.kind}")
        if self.log_space:
            x = np.log(np.maximum(x, 1.0))
        return np.column_stack([x, arch_matrix(graphs, n_arch), np.ones_like(x)])

    def fit(self, records: Sequence[LatencyRecord]) -> _ProxyLinear:
        """Least-squares fit on ``records`` of one device; returns ``self``.

        Raises:
            PredictorError: fewer than two records, records of several devices, bad latencies.
        """
        check_records(records, self._min_records)
        device = single_device(records, self.kind)
        y = np.array([r.latency_ms for r in records], dtype=np.float64)
        graphs = [r.graph for r in records]
        self.n_arch_ = arch_width(graphs, self.arch_features)
        A = self._design(graphs, self.n_arch_)
        target = np.log(y) if self.log_space else y
        if self.n_arch_:  # ridge on the standardised columns, intercept and proxy unpenalised
            scale = np.maximum(A.std(axis=0), 1e-9)
            scale[-1] = 1.0
            penalty = np.full(A.shape[1], np.sqrt(1e-2 * len(y)))
            penalty[[0, -1]] = 0.0
            An = np.vstack([A / scale, np.diag(penalty)])
            coef, *_ = np.linalg.lstsq(An, np.concatenate([target, np.zeros(A.shape[1])]), rcond=None)
            coef = coef / scale
        else:
            coef, *_ = np.linalg.lstsq(A, target, rcond=None)
        self.coef_ = coef.astype(np.float64)
        self.floor_ms_ = float(0.01 * y.min())
        self.devices_ = [device]
        self.support_ = Support.from_records(records)
        return self

    def predict(self, graphs: Sequence[GraphData], device: str | None = None) -> np.ndarray:
        """Latency (ms, float64, >= ``floor_ms_``) of each graph on the fitted device."""
        self._device_index(device)
        if len(graphs) == 0:
            return np.zeros(0, dtype=np.float64)
        z = self._design(graphs, getattr(self, "n_arch_", 0)) @ self.coef_
        y = np.exp(z) if self.log_space else z
        return np.maximum(y, self.floor_ms_).astype(np.float64)

    def get_config(self) -> dict[str, Any]:
        return {"log_space": bool(self.log_space), "arch_features": bool(self.arch_features)}

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        self._check_fitted()
        return {"devices": list(self.devices_), "n_arch": int(self.n_arch_)}, {
            "coef": self.coef_,
            "floor_ms": np.array([self.floor_ms_], dtype=np.float64),
        }

    def set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        try:
            coef = np.asarray(arrays["coef"], dtype=np.float64)
            floor = float(np.asarray(arrays["floor_ms"]).reshape(-1)[0])
            devices = [str(d) for d in meta["devices"]]
            n_arch = int(meta.get("n_arch", 0))  # files from before architecture features: none
        except (KeyError, IndexError, TypeError, ValueError):
            raise PredictorError(f"{self.kind} predictor state is incomplete or malformed") from None
        if coef.shape != (2 + n_arch,) or len(devices) != 1:
            raise PredictorError(f"{self.kind} predictor state is malformed: coef shape {coef.shape}")
        self.coef_, self.floor_ms_, self.devices_, self.n_arch_ = coef, floor, devices, n_arch


class FlopsLinear(_ProxyLinear):
    """Latency as a linear function of ``graph.flops`` on one device (see :class:`_ProxyLinear`)."""

    kind = "flops"

    def _x(self, graph: GraphData) -> float:
        return graph.flops


class ParamsLinear(_ProxyLinear):
    """Latency as a linear function of ``graph.params`` on one device (see :class:`_ProxyLinear`)."""

    kind = "params"

    def _x(self, graph: GraphData) -> float:
        return graph.params
