"""The graph of a candidate network, as predictors see it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, eq=False)
class GraphData:
    """Operator graph of one ONNX model with numeric features (numpy only; no torch).

    Nodes are the model's operators (``Constant`` nodes are folded away), edges are the tensors
    between them (producer -> consumer). Feature columns are named by
    :data:`hwnas.graph.encode.NODE_FEATURES` and :data:`hwnas.graph.encode.GRAPH_FEATURES`.

    Attributes:
        x: float32 ``[num_nodes, len(NODE_FEATURES)]`` node features.
        edge_index: int64 ``[2, num_edges]``; row 0 the producer node, row 1 the consumer.
        graph_features: float32 ``[len(GRAPH_FEATURES)]`` whole-model features (FLOPs, params,
            bytes, op counts, ...), raw (not log-scaled).
        op_types: ONNX op type of each node.
        node_keys: a lookup-table signature of each node (op type with its kernel, stride, groups,
            channels and output size), e.g. ``"Conv|k3x3|s1|g1|c16>16|32x32"``.
        flops: 2 x MACs of the model (as :func:`hwnas.onnx_graph.graph_stats`).
        params: parameter count of the model.
        node_names: the ONNX name of each node (to match per-node profiles), or empty.
        arch_features: float32 features of the model's architecture in its search space
            (:meth:`hwnas.space.base.SearchSpace.arch_features`: one-hot decisions, and for NB201
            which edges are live and how many input-to-output paths there are), or empty for a
            model that is not an architecture of a known space. Attached by
            :class:`hwnas.graph.resolve.GraphResolver`, which knows the architecture; the graph
            encoders never see it.
    """

    x: np.ndarray
    edge_index: np.ndarray
    graph_features: np.ndarray
    op_types: tuple[str, ...]
    node_keys: tuple[str, ...]
    flops: int
    params: int
    node_names: tuple[str, ...] = ()
    arch_features: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))

    @property
    def num_nodes(self) -> int:
        return int(self.x.shape[0])
