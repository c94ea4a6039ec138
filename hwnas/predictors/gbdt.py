"""Gradient-boosted trees on whole-graph features, saved as plain arrays (no pickle).

The model is scikit-learn's :class:`~sklearn.ensemble.GradientBoostingRegressor` on
``log1p(graph.graph_features)`` predicting ``log(latency_ms)``. Its trees are exported as a few
concatenated numpy arrays; prediction always runs through a vectorised numpy traversal of them
(the same code after :meth:`GBDTPredictor.fit` and after loading), which equals scikit-learn's own
prediction to rounding.

Feature columns are taken positionally from ``graph.graph_features``; only their number is kept
(``n_features_``), so the predictor does not depend on the column names, only on the encoder
version recorded in the predictor file. With ``arch_features=True`` (the default) the columns of
the architecture's own encoding follow (:mod:`hwnas.predictors.arch_inputs`; ``n_arch_`` of them).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from hwnas.graph.data import GraphData
from hwnas.predictors.arch_inputs import arch_matrix, arch_width
from hwnas.predictors.base import LatencyRecord, Predictor, PredictorError, check_records, single_device
from hwnas.predictors.support import Support

_TREE_ARRAYS = ("left", "right", "feature", "threshold", "value", "roots")


def graph_feature_matrix(graphs: Sequence[GraphData], n_features: int | None = None) -> np.ndarray:
    """``[len(graphs), n_features]`` float32 matrix of ``sign(f) * log1p(|f|)`` of graph features.

    ``log1p`` for the non-negative features the encoder produces; the sign keeps the transform
    defined should a feature ever be negative. Float32, because scikit-learn's trees split float32.

    Raises:
        PredictorError: graphs disagree in feature count (or with ``n_features``), or a feature is
            not finite.
    """
    rows = [np.asarray(g.graph_features, dtype=np.float64).reshape(-1) for g in graphs]
    sizes = {r.size for r in rows} | ({n_features} if n_features is not None else set())
    if len(sizes) > 1:
        raise PredictorError(
            f"graph feature counts differ ({', '.join(map(str, sorted(sizes)))}); "
            "graphs from another encoder version?"
        )
    if not rows:
        return np.zeros((0, n_features or 0), dtype=np.float32)
    f = np.stack(rows)
    if not np.all(np.isfinite(f)):
        raise PredictorError("graph features must be finite")
    return (np.sign(f) * np.log1p(np.abs(f))).astype(np.float32)


class GBDTPredictor(Predictor):
    """Gradient-boosted regression trees on graph-level features, one device.

    Args:
        n_estimators, max_depth, learning_rate, subsample, random_state: passed to
            :class:`sklearn.ensemble.GradientBoostingRegressor` (squared error on log latency).
        arch_features: also split on the architecture features of the graphs, when all have them.

    Attributes (after fit or load):
        devices_: the one device.
        n_features_: number of graph features the trees were fitted on.
        n_arch_: number of architecture features after them (0: graph features only).
        init_: the constant initial prediction (mean training log latency).
        trees_: dict of concatenated tree arrays — ``left``/``right`` (child node index, global;
            -1 at leaves), ``feature``, ``threshold``, ``value`` (leaf value), ``roots`` (root node
            of each tree).
        depth_: depth of the deepest tree (number of traversal steps).
        model_: the fitted scikit-learn model (after ``fit`` only; not saved).
    """

    kind = "gbdt"

    def __init__(
        self,
        n_estimators: int = 300,
        max_depth: int = 3,
        learning_rate: float = 0.05,
        subsample: float = 0.8,
        random_state: int | None = 0,
        arch_features: bool = True,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.subsample = subsample
        self.random_state = random_state
        self.arch_features = arch_features

    def _matrix(self, graphs: Sequence[GraphData], n_features: int | None, n_arch: int) -> np.ndarray:
        """Graph features, then architecture features, both ``sign(f) * log1p(|f|)``, float32."""
        X = graph_feature_matrix(graphs, n_features)
        if n_arch == 0:
            return X
        A = arch_matrix(graphs, n_arch)
        return np.concatenate([X, (np.sign(A) * np.log1p(np.abs(A))).astype(np.float32)], axis=1)

    def fit(self, records: Sequence[LatencyRecord]) -> GBDTPredictor:
        """Fit the trees on ``records`` of one device; returns ``self``.

        Raises:
            PredictorError: fewer than 5 records, several devices, bad latencies or features.
        """
        from sklearn.ensemble import GradientBoostingRegressor

        check_records(records, 5)
        device = single_device(records, self.kind)
        graphs = [r.graph for r in records]
        n_arch = arch_width(graphs, self.arch_features)
        X = self._matrix(graphs, None, n_arch)
        if X.shape[1] == 0:
            raise PredictorError("gbdt predictor needs graph features, the graphs have none")
        y = np.log(np.array([r.latency_ms for r in records], dtype=np.float64))
        model = GradientBoostingRegressor(
            loss="squared_error",
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            learning_rate=self.learning_rate,
            subsample=self.subsample,
            random_state=self.random_state,
        ).fit(X, y)
        self.model_ = model
        self._export(model)
        self.n_features_ = int(X.shape[1]) - n_arch
        self.n_arch_ = n_arch
        self.devices_ = [device]
        self.support_ = Support.from_records(records)
        return self

    def _export(self, model: Any) -> None:
        """Flatten the fitted trees of ``model`` into a few concatenated arrays."""
        parts: dict[str, list[np.ndarray]] = {k: [] for k in _TREE_ARRAYS}
        offset = 0
        depth = 0
        for est in model.estimators_[:, 0]:
            t = est.tree_
            n = int(t.node_count)
            left = t.children_left.astype(np.int64)
            right = t.children_right.astype(np.int64)
            leaf = left < 0
            parts["left"].append(np.where(leaf, -1, left + offset))
            parts["right"].append(np.where(leaf, -1, right + offset))
            parts["feature"].append(np.where(leaf, 0, t.feature).astype(np.int64))
            parts["threshold"].append(t.threshold.astype(np.float64))
            parts["value"].append(t.value.reshape(n, -1)[:, 0].astype(np.float64))
            parts["roots"].append(np.array([offset], dtype=np.int64))
            offset += n
            depth = max(depth, int(t.max_depth))
        self.trees_ = {k: np.concatenate(v) for k, v in parts.items()}
        init = model.init_
        if init == "zero":  # pragma: no cover - we never ask for it
            self.init_ = 0.0
        else:
            self.init_ = float(np.asarray(init.constant_, dtype=np.float64).reshape(-1)[0])
        self.lr_ = float(model.learning_rate)
        self.depth_ = depth

    def _raw_predict(self, X: np.ndarray) -> np.ndarray:
        """Sum of the boosted trees at float32 features ``X``, looping over depth, not samples."""
        t = self.trees_
        n = X.shape[0]
        node = np.broadcast_to(t["roots"], (n, t["roots"].size)).copy()  # [samples, trees]
        rows = np.arange(n)[:, None]
        for _ in range(self.depth_):
            left = t["left"][node]
            inner = left >= 0
            go_left = X[rows, t["feature"][node]] <= t["threshold"][node]
            node = np.where(inner, np.where(go_left, left, t["right"][node]), node)
        return self.init_ + self.lr_ * t["value"][node].sum(axis=1)

    def predict(self, graphs: Sequence[GraphData], device: str | None = None) -> np.ndarray:
        """Latency (ms, float64, > 0) of each graph: ``exp`` of the boosted log-latency."""
        self._device_index(device)
        X = self._matrix(graphs, self.n_features_, getattr(self, "n_arch_", 0))
        if X.shape[0] == 0:
            return np.zeros(0, dtype=np.float64)
        return np.exp(self._raw_predict(X))

    def get_config(self) -> dict[str, Any]:
        return {
            "n_estimators": int(self.n_estimators),
            "max_depth": int(self.max_depth),
            "learning_rate": float(self.learning_rate),
            "subsample": float(self.subsample),
            "random_state": None if self.random_state is None else int(self.random_state),
            "arch_features": bool(self.arch_features),
        }

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        self._check_fitted()
        meta = {
            "devices": list(self.devices_),
            "n_features": self.n_features_,
            "n_arch": self.n_arch_,
            "depth": self.depth_,
        }
        arrays = {f"tree_{k}": v for k, v in self.trees_.items()}
        arrays["init_lr"] = np.array([self.init_, self.lr_], dtype=np.float64)
        return meta, arrays

    def set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        try:
            trees = {k: np.asarray(arrays[f"tree_{k}"]) for k in _TREE_ARRAYS}
            init, lr = (float(v) for v in np.asarray(arrays["init_lr"], dtype=np.float64))
            devices = [str(d) for d in meta["devices"]]
            n_features, depth = int(meta["n_features"]), int(meta["depth"])
            n_arch = int(meta.get("n_arch", 0))  # files from before architecture features: none
        except (KeyError, TypeError, ValueError):
            raise PredictorError("gbdt predictor state is incomplete or malformed") from None
        if not self._consistent(trees, n_features + n_arch) or len(devices) != 1 or depth < 0 or n_arch < 0:
            raise PredictorError("gbdt predictor state is malformed: tree arrays are inconsistent")
        self.trees_ = {k: v.astype(np.float64 if k in ("threshold", "value") else np.int64) for k, v in trees.items()}
        self.init_, self.lr_, self.depth_ = init, lr, depth
        self.n_features_, self.n_arch_, self.devices_ = n_features, n_arch, devices

    @staticmethod
    def _consistent(trees: dict[str, np.ndarray], n_features: int) -> bool:
        """Whether loaded tree arrays index only within themselves and the feature vector."""
        n = trees["left"].size
        if n == 0 or trees["roots"].ndim != 1 or trees["roots"].size == 0:
            return False
        if any(trees[k].shape != (n,) for k in ("left", "right", "feature", "threshold", "value")):
            return False
        if any(trees[k].dtype.kind not in "iu" for k in ("left", "right", "feature", "roots")):
            return False
        children = np.concatenate([trees["left"], trees["right"]])
        return bool(
            children.min() >= -1
            and children.max() < n
            and trees["roots"].min() >= 0
            and trees["roots"].max() < n
            and trees["feature"].min() >= 0
            and trees["feature"].max() < n_features
        )
