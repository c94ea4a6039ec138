"""Lookup-table predictor: a model's latency is the sum of its operators' latencies.

Each node is identified by its signature ``graph.node_keys[i]`` (op type with kernel, stride,
groups, channels and output size). The table is either learned from end-to-end latencies by
non-negative least squares (:meth:`LookupTable.fit`) or read from per-node profiles
(:meth:`LookupTable.fit_profile`).

Unknown signatures at predict time (a fallback, counted per graph by ``unknown_counts``):

1. with ``scale_by`` set (a column of :data:`hwnas.graph.encode.NODE_FEATURES`, by default the
   node's ``"flops"``; ``"bytes"`` suits memory-bound devices), the node costs
   ``rate[op] * value[node]`` where ``rate[op]`` is the summed cost over the summed value of that
   op type's known signatures (learned by :meth:`LookupTable.fit`) — the op type's cost per FLOP
   (or per byte). Log-scaled columns are un-scaled first;
2. otherwise (``scale_by=None``, after :meth:`LookupTable.fit_profile`, or when the op type's
   known signatures all have value 0, e.g. FLOPs of a Reshape), the mean cost of the op type's
   known signatures;
3. for an op type never seen, the median cost of all known signatures.

Example:
    >>> import numpy as np
    >>> from hwnas.graph.data import GraphData
    >>> from hwnas.predictors.lut import LookupTable
    >>> def g(*keys):
    ...     return GraphData(np.zeros((len(keys), 1), np.float32), np.zeros((2, 0), np.int64),
    ...                      np.zeros(1, np.float32), tuple(k.split("|")[0] for k in keys), keys, 0, 0)
    >>> lut = LookupTable().fit_profile([{"Conv|k3": 2.0, "Relu|": 0.1}, {"Conv|k3": 4.0}], device="pi4")
    >>> lut.predict([g("Conv|k3", "Relu|", "Relu|")]).round(6).tolist()
    [3.2]
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from hwnas.graph.data import GraphData
from hwnas.predictors.base import LatencyRecord, Predictor, PredictorError, check_records, single_device
from hwnas.predictors.support import Support


def _op_of(signature: str) -> str:
    """Op type of a signature (its text before the first ``|``)."""
    return signature.split("|", 1)[0]


class LookupTable(Predictor):
    """Sum of per-signature operator latencies plus a constant per-inference overhead, one device.

    Args:
        overhead: learn a constant per-model overhead (session call, input copy) with the table.
        relative: weight each model by ``1 / latency`` in the least-squares fit, so that relative
            rather than absolute error is minimised (small models count as much as big ones).
        scale_by: name of the node feature by which the cost of an unknown signature is scaled
            (module docstring); ``None`` uses the op type's mean cost. With a name, training and
            predicted graphs must have the encoder's node-feature columns.

    Attributes (after fit):
        devices_: the one device.
        signatures_: known signatures, in table order.
        costs_: float64 ms per occurrence of each signature (>= 0).
        overhead_ms_: the constant per-model overhead (>= 0).

    Note:
        Signatures that always occur together in the training models are not identifiable; NNLS
        then splits their joint cost in some way, which is harmless for predicting models made of
        the same blocks. Use :meth:`fit_profile` when per-node timings are available.
    """

    kind = "lut"

    def __init__(self, overhead: bool = True, relative: bool = False, scale_by: str | None = "flops") -> None:
        self.overhead = overhead
        self.relative = relative
        self.scale_by = scale_by

    # ------------------------------------------------------------------ fitting
    def fit(self, records: Sequence[LatencyRecord]) -> LookupTable:
        """Learn per-signature latencies from end-to-end latencies by NNLS; returns ``self``.

        Solves ``min ||A c - y||`` with ``c >= 0``, where ``A[m, s]`` counts signature ``s`` in model
        ``m`` (plus a column of ones for the overhead).

        Raises:
            PredictorError: fewer than two records, several devices, bad latencies.
        """
        from scipy.optimize import nnls

        check_records(records, 2)
        device = single_device(records, self.kind)
        if all(r.node_profile and len(r.graph.node_names) == r.graph.num_nodes for r in records):
            return self._fit_profiled(records, device)
        index: dict[str, int] = {}
        sig_ops: list[str] = []
        unit_sum: list[float] = []
        unit_n: list[int] = []
        rows: list[np.ndarray] = []
        for r in records:
            g = r.graph
            units = self._units(g)
            cols = []
            for i, key in enumerate(g.node_keys):
                j = index.get(key)
                if j is None:
                    j = index[key] = len(sig_ops)
                    sig_ops.append(g.op_types[i] if i < len(g.op_types) else _op_of(key))
                    unit_sum.append(0.0)
                    unit_n.append(0)
                if units is not None:
                    unit_sum[j] += float(units[i])
                    unit_n[j] += 1
                cols.append(j)
            rows.append(np.asarray(cols, dtype=np.int64))
        n_sig = len(sig_ops)
        if n_sig == 0:
            raise PredictorError("lut predictor: the training graphs have no nodes")
        A = np.zeros((len(records), n_sig + (1 if self.overhead else 0)), dtype=np.float64)
        for m, cols in enumerate(rows):
            np.add.at(A[m], cols, 1.0)
        if self.overhead:
            A[:, -1] = 1.0
        y = np.array([r.latency_ms for r in records], dtype=np.float64)
        if self.relative:
            A, b = A / y[:, None], np.ones_like(y)
        else:
            b = y
        sol, _ = nnls(A, b, maxiter=max(50 * A.shape[1], 1000))
        units_mean = None
        if self.scale_by is not None:
            units_mean = np.array(unit_sum) / np.maximum(np.array(unit_n), 1)
        self._set_table(device, list(index), sig_ops, sol[:n_sig], float(sol[n_sig]) if self.overhead else 0.0, units_mean)
        self.floor_ms_ = float(0.01 * y.min())
        self.support_ = Support.from_records(records)
        return self

    def fit_profile(
        self, per_node: Sequence[Mapping[str, float]], device: str, overhead_ms: float = 0.0
    ) -> LookupTable:
        """Build the table from measured per-node latencies; returns ``self``.

        Args:
            per_node: one mapping per profiled model (e.g. from onnxruntime's per-node profiling),
                signature -> milliseconds of one occurrence of it. A signature seen in several
                mappings gets the mean of its values.
            device: the device the profiles were measured on.
            overhead_ms: constant per-model overhead to add to every prediction.

        The op type of a signature is taken as its text before the first ``|``. No scaling data is
        available here, so unknown signatures use the op type's mean (``scale_by`` is ignored).

        Raises:
            PredictorError: no signatures, or a latency that is negative or not finite.
        """
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        for prof in per_node:
            for sig, ms in prof.items():
                v = float(ms)
                if not np.isfinite(v) or v < 0:
                    raise PredictorError(f"per-node latency must be a non-negative number, got {ms!r} for {sig!r}")
                sums[sig] = sums.get(sig, 0.0) + v
                counts[sig] = counts.get(sig, 0) + 1
        if not sums:
            raise PredictorError("fit_profile needs at least one profiled node")
        if not (np.isfinite(overhead_ms) and overhead_ms >= 0):
            raise PredictorError(f"overhead_ms must be a non-negative number, got {overhead_ms!r}")
        sigs = list(sums)
        costs = np.array([sums[s] / counts[s] for s in sigs], dtype=np.float64)
        self._set_table(str(device), sigs, [_op_of(s) for s in sigs], costs, float(overhead_ms), None)
        self.floor_ms_ = 1e-6
        return self

    def _fit_profiled(self, records: Sequence[LatencyRecord], device: str) -> LookupTable:
        """Table from per-node profiles (``device_agent run --profile-nodes``), calibrated on the
        end-to-end latencies.

        Each node's cost is its profiled kernel time, matched by ONNX node name; a node the
        runtime fused into another has no entry and costs 0 (its time is in the node that
        absorbed it). Profiling inflates kernel times and misses the time between kernels, so
        the summed table is calibrated as ``latency = a * sum + b`` (a > 0, b >= 0, least
        squares over the records) and stored scaled.
        """
        from scipy.optimize import lsq_linear

        per_model: list[dict[str, float]] = []
        for r in records:
            occ: dict[str, list[float]] = {}
            prof = r.node_profile or {}
            for name, key in zip(r.graph.node_names, r.graph.node_keys):
                occ.setdefault(key, []).append(float(prof.get(name, 0.0)))
            per_model.append({k: float(np.mean(v)) for k, v in occ.items()})
        self.fit_profile(per_model, device)
        sums = self.predict([r.graph for r in records]) - self.overhead_ms_
        y = np.array([r.latency_ms for r in records])
        sol = lsq_linear(np.stack([sums, np.ones_like(sums)], 1), y, bounds=([1e-6, 0.0], [np.inf, np.inf]))
        a, b = float(sol.x[0]), float(sol.x[1])
        self.fit_profile([{k: v * a for k, v in m.items()} for m in per_model], device, overhead_ms=b)
        self.floor_ms_ = max(1e-6, 0.01 * float(y.min()))
        self.support_ = Support.from_records(records)
        return self

    def _units(self, g: GraphData) -> np.ndarray | None:
        """Raw value of the ``scale_by`` node feature of each node of ``g`` (None without scaling)."""
        if self.scale_by is None:
            return None
        from hwnas.graph.encode import LOG_SCALED, NODE_FEATURES

        if self.scale_by not in NODE_FEATURES:
            raise PredictorError(f"lut scale_by {self.scale_by!r} is not a node feature; use one of NODE_FEATURES or None")
        x = np.asarray(g.x)
        if x.ndim != 2 or x.shape[1] != len(NODE_FEATURES):
            raise PredictorError(
                f"lut scale_by needs the encoder's {len(NODE_FEATURES)} node features, a graph has shape {x.shape}"
            )
        v = x[:, NODE_FEATURES.index(self.scale_by)].astype(np.float64)
        return np.expm1(v) if self.scale_by in LOG_SCALED else v

    def _set_table(
        self,
        device: str,
        sigs: list[str],
        sig_ops: list[str],
        costs: np.ndarray,
        overhead_ms: float,
        units: np.ndarray | None,
    ) -> None:
        ops = sorted(set(sig_ops))
        op_of_sig = np.array([ops.index(o) for o in sig_ops], dtype=np.int64)
        op_mean = np.array([costs[op_of_sig == k].mean() for k in range(len(ops))], dtype=np.float64)
        op_rate = np.full(len(ops), np.nan)
        if units is not None:
            for k in range(len(ops)):
                u = units[op_of_sig == k].sum()
                if u > 0:
                    op_rate[k] = costs[op_of_sig == k].sum() / u
        self.devices_ = [device]
        self.signatures_ = list(sigs)
        self.sig_ops_ = list(sig_ops)
        self.costs_ = np.asarray(costs, dtype=np.float64)
        self.overhead_ms_ = float(overhead_ms)
        self.op_types_ = ops
        self.op_mean_ms_ = op_mean
        self.op_rate_ = op_rate
        self.default_ms_ = float(np.median(self.costs_))
        self._index = {s: i for i, s in enumerate(self.signatures_)}
        self._op_index = {o: i for i, o in enumerate(ops)}

    # --------------------------------------------------------------- predicting
    def _predict_one(self, g: GraphData) -> tuple[float, int]:
        total = self.overhead_ms_
        unknown = 0
        units = None
        for i, key in enumerate(g.node_keys):
            j = self._index.get(key)
            if j is not None:
                total += self.costs_[j]
                continue
            unknown += 1
            op = g.op_types[i] if i < len(g.op_types) else _op_of(key)
            k = self._op_index.get(op)
            if k is None:
                total += self.default_ms_
                continue
            if self.scale_by is not None and np.isfinite(self.op_rate_[k]):
                if units is None:
                    units = self._units(g)
                total += self.op_rate_[k] * max(float(units[i]), 0.0)
            else:
                total += self.op_mean_ms_[k]
        return total, unknown

    def predict(self, graphs: Sequence[GraphData], device: str | None = None) -> np.ndarray:
        """Latency (ms, float64, > 0) of each graph (no side effect; see :meth:`unknown_counts`)."""
        self._device_index(device)
        out = np.empty(len(graphs), dtype=np.float64)
        for n, g in enumerate(graphs):
            out[n], _ = self._predict_one(g)
        return np.maximum(out, self.floor_ms_)

    def unknown_counts(self, graphs: Sequence[GraphData]) -> np.ndarray:
        """Number of nodes of each graph whose signature is not in the table (no side effect)."""
        self._check_fitted()
        return np.array([sum(k not in self._index for k in g.node_keys) for g in graphs], dtype=np.int64)

    # -------------------------------------------------------------- persistence
    def get_config(self) -> dict[str, Any]:
        return {"overhead": bool(self.overhead), "relative": bool(self.relative), "scale_by": self.scale_by}

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        self._check_fitted()
        meta = {
            "devices": list(self.devices_),
            "signatures": list(self.signatures_),
            "sig_ops": list(self.sig_ops_),
            "op_types": list(self.op_types_),
        }
        arrays = {
            "costs": self.costs_,
            "op_mean_ms": self.op_mean_ms_,
            "op_rate": self.op_rate_,
            "scalars": np.array([self.overhead_ms_, self.default_ms_, self.floor_ms_], dtype=np.float64),
        }
        return meta, arrays

    def set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        try:
            sigs = [str(s) for s in meta["signatures"]]
            sig_ops = [str(s) for s in meta["sig_ops"]]
            ops = [str(s) for s in meta["op_types"]]
            devices = [str(d) for d in meta["devices"]]
            costs = np.asarray(arrays["costs"], dtype=np.float64)
            op_mean = np.asarray(arrays["op_mean_ms"], dtype=np.float64)
            op_rate = np.asarray(arrays["op_rate"], dtype=np.float64)
            overhead, default, floor = (float(v) for v in np.asarray(arrays["scalars"], dtype=np.float64))
        except (KeyError, TypeError, ValueError):
            raise PredictorError("lut predictor state is incomplete or malformed") from None
        if not (len(sigs) == len(sig_ops) == costs.size and len(ops) == op_mean.size == op_rate.size == len(set(ops))):
            raise PredictorError("lut predictor state is malformed: table sizes disagree")
        if len(devices) != 1 or not set(sig_ops) <= set(ops):
            raise PredictorError("lut predictor state is malformed")
        self.devices_, self.signatures_, self.sig_ops_, self.costs_ = devices, sigs, sig_ops, costs
        self.overhead_ms_, self.default_ms_, self.floor_ms_ = overhead, default, floor
        self.op_types_, self.op_mean_ms_, self.op_rate_ = ops, op_mean, op_rate
        self._index = {s: i for i, s in enumerate(sigs)}
        self._op_index = {o: i for i, o in enumerate(ops)}
