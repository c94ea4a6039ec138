"""Which parts of an NB201 cell do work: live edges, folded constants, paths (numpy only, no torch).

The reference cell computes every edge. Most of that work is dead in two ways:

* an edge whose op is ``none`` multiplies by zero;
* an operation whose input carries no signal from the cell's input (its node is fed only by ``none``
  edges, or by operations on such nodes), or whose output reaches no later node that feeds the
  cell's output.

:class:`CellPlan` works this out from the 6 op names. An edge is **live** when its op is not
``none``, its source depends on the cell's input, and its target feeds the output through live
edges. A node depends on the input when a non-``none`` edge from such a node enters it (node 0 does).
The value of a node that does *not* depend on the input is a constant (with BatchNorm folded, a
convolution of zeros is its BatchNorm shift, not zero); what such nodes add to a later node is that
node's **constant**, of one of three kinds: ``zero`` (nothing to add), ``uniform`` (one value a
channel) or ``map`` (a value a channel and pixel: a 3x3 convolution of a uniform constant, whose
zero padding makes the border differ).

The pruned network (:mod:`hwnas.nets.nb201_net`), its graph replay
(:mod:`hwnas.graph.arch_encode`) and the architecture features
(:func:`hwnas.space.nb201_features.arch_features`) all read this one plan.

Example:
    >>> plan = CellPlan.of(["nor_conv_3x3", "none", "none", "skip_connect", "none", "avg_pool_3x3"])
    >>> plan.live_edges, plan.output_live
    ((0, 3), True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from hwnas.space.nb201_ops import EDGES, OPS

#: Kinds of the constant a node receives from nodes that do not depend on the input, in order.
CONST_KINDS = ("zero", "uniform", "map")
CONVS = ("nor_conv_1x1", "nor_conv_3x3")


def _apply_kind(op: str, kind: str) -> str:
    """Kind of ``op`` applied to a constant of ``kind`` (eval mode, BatchNorm folded)."""
    if op in CONVS:
        if kind == "zero":
            return "uniform"  # ReLU(0) = 0, conv of zeros = 0, BatchNorm shift: one value a channel
        if op == "nor_conv_3x3" and kind == "uniform":
            return "map"  # zero padding: border pixels see fewer terms
        return kind
    return kind  # skip and count_include_pad=False average pooling keep a constant's kind


@dataclass(frozen=True)
class CellPlan:
    """What an NB201 cell computes once dead work is removed.

    Attributes:
        ops: the 6 op names in edge order (:data:`hwnas.space.nb201.EDGES`).
        live_edges: indices of the live edges, in edge order.
        computed: the nodes (1-3) the pruned cell computes, in order: a node with a live edge into it.
        const_kind: per node 0-3, the kind of the constant it receives from input-independent nodes.
        input_dependent: per node 0-3, whether its value depends on the cell's input.
        output_live: whether the output (node 3) depends on the input. When it does not, the pruned
            cell returns ``x * 0`` plus node 3's constant: the reference's output, at the input's
            shape (all zeros when the constant's kind is ``zero``).
    """

    ops: tuple[str, ...]
    live_edges: tuple[int, ...]
    computed: tuple[int, ...]
    const_kind: tuple[str, ...]
    input_dependent: tuple[bool, ...]
    output_live: bool

    @classmethod
    def of(cls, ops: Sequence[str]) -> CellPlan:
        """The plan of a cell with these 6 op names.

        Raises:
            ValueError: not 6 ops of :data:`hwnas.space.nb201.OPS`.
        """
        ops = tuple(ops)
        if len(ops) != len(EDGES) or any(o not in OPS for o in ops):
            raise ValueError(f"nb201: a cell has {len(EDGES)} ops of {', '.join(OPS)}, got {ops!r}")
        dep = [True, False, False, False]
        kind = ["zero"] * 4
        for e, ((dst, src), op) in enumerate(zip(EDGES, ops)):
            if op == "none":
                continue
            if dep[src]:
                dep[dst] = True
            else:
                k = _apply_kind(op, kind[src])
                kind[dst] = max(kind[dst], k, key=CONST_KINDS.index)
        # backward: nodes that feed the output through non-none edges from input-dependent nodes
        needed = {3} if dep[3] else set()
        for e in reversed(range(len(EDGES))):
            dst, src = EDGES[e]
            if ops[e] != "none" and dep[src] and dst in needed and src > 0:
                needed.add(src)
        live = tuple(e for e, ((dst, src), op) in enumerate(zip(EDGES, ops)) if op != "none" and dep[src] and dst in needed)
        computed = tuple(sorted({EDGES[e][0] for e in live}))
        return cls(ops, live, computed, tuple(kind), tuple(dep), dep[3])

    def edges_into(self, node: int) -> tuple[int, ...]:
        """Live edges into ``node``, in edge order."""
        return tuple(e for e in self.live_edges if EDGES[e][0] == node)

    def adds_constant(self, node: int) -> bool:
        """Whether the pruned cell adds a constant to ``node`` (a computed node, or a dead output)."""
        return self.const_kind[node] != "zero" and (node in self.computed or (node == 3 and not self.output_live))


#: Names of :func:`liveness_features`, in order.
LIVENESS_FEATURES: tuple[str, ...] = (
    tuple(f"live_edge_{e}" for e in range(len(EDGES)))
    + tuple(f"live_{op}" for op in OPS[1:])
    + ("paths", "live_paths", "conv_paths", "longest_live_convs", "computed_nodes", "output_live",
       "const_uniform", "const_map", "dead_convs")
)  # fmt: skip


def _paths(ops: Sequence[str], edges: Sequence[int], weight: Sequence[int] | None = None) -> tuple[int, int]:
    """Number of node-0-to-node-3 paths over ``edges``, and the most ``weight`` along one."""
    count = [1, 0, 0, 0]
    best = [0, -1, -1, -1]
    for e in sorted(edges):
        dst, src = EDGES[e]
        count[dst] += count[src]
        if best[src] >= 0:
            best[dst] = max(best[dst], best[src] + (weight[e] if weight is not None else 1))
    return count[3], max(best[3], 0)


def liveness_features(ops: Sequence[str]) -> np.ndarray:
    """Float32 features of which parts of a cell do work (:data:`LIVENESS_FEATURES`).

    Which edges are live; live edges per op kind; input-to-output paths over non-``none`` edges
    (what the reference form computes on), over live edges, and over live convolutions only; the
    most convolutions on one live path; how many nodes the pruned cell computes; whether the output
    depends on the input; folded constants by kind; convolutions the reference computes that the
    pruned form does not.
    """
    plan = CellPlan.of(ops)
    live = np.zeros(len(EDGES), dtype=np.float32)
    live[list(plan.live_edges)] = 1.0
    per_op = [sum(plan.ops[e] == op for e in plan.live_edges) for op in OPS[1:]]
    nonzero = [e for e, op in enumerate(plan.ops) if op != "none"]
    convs = [int(op in CONVS) for op in plan.ops]
    paths, _ = _paths(plan.ops, nonzero)
    live_paths, longest = _paths(plan.ops, plan.live_edges, convs)
    conv_paths, _ = _paths(plan.ops, [e for e in plan.live_edges if convs[e]])
    consts = [plan.const_kind[n] for n in (1, 2, 3) if plan.adds_constant(n)]
    dead_convs = sum(convs) - sum(convs[e] for e in plan.live_edges)
    rest = [paths, live_paths, conv_paths, longest, len(plan.computed), float(plan.output_live),
            consts.count("uniform"), consts.count("map"), dead_convs]  # fmt: skip
    return np.concatenate([live, np.array(per_op + rest, dtype=np.float32)])
