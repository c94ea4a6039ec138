"""Build the encoded graph of a network node by node, as the ONNX exporter would write it, without
torch and without an ONNX model.

:class:`GraphSketch` records the operators a network's forward pass emits, in trace order, and
applies what ``torch.onnx.export`` (TorchScript-based, ``do_constant_folding=True``) does to them:

* **common-subexpression elimination**: a node without weights whose op type, attributes, constant
  inputs and input tensors equal those of an earlier node *is* that node (two ``avg_pool_3x3`` edges
  reading the same tensor become one ``AveragePool``; two sums of the same terms one ``Add``);
* **names**: ``<scope>/<OpType>``, then ``_1``, ``_2``, ... for the next nodes of that name (only
  nodes that survive elimination take a name);
* ``Constant`` nodes are not recorded (the encoder drops them); their scalar values are inputs.

:class:`NodeTemplates` gives each distinct node signature (op type, attributes, input shapes,
weight shapes, constants) its feature row, lookup key, output shape and MACs, computed once with
the encoder's own :func:`~hwnas.graph.encode.node_features` on a one-node ONNX model after ONNX
shape inference; afterwards a node costs a dictionary lookup. So the features of a sketched graph
are the encoder's by construction, and what the sketch must get right is only the structure:
which nodes, in which order, wired how. ``tests/test_arch_encode.py`` holds that against real
exports.

Assumptions (true of hwnas's spaces, and stated so that a new space checks them): every node has
one output; every weight (initializer) belongs to one node; the inputs of a node are its data
tensors, then its weights, then its scalar constants.

Example:
    >>> sketch = GraphSketch(NodeTemplates(), (1, 3, 8, 8))
    >>> a = sketch.add("/relu", "Relu", [sketch.input])
    >>> b = sketch.add("/relu_again", "Relu", [sketch.input])  # the same computation
    >>> a == b, sketch.add("", "Add", [a, b]) != a
    (True, True)
    >>> g = sketch.graph()
    >>> g.node_names, g.edge_index.tolist()
    (('/relu/Relu', '/Add'), [[0], [1]])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from hwnas.graph.data import GraphData

#: A node attribute value as the sketch stores it: ints, floats, strings, tuples of them.
AttrValue = Any
#: ``(name, value)`` pairs of a node's attributes, in the order the exporter writes them.
Attrs = tuple[tuple[str, AttrValue], ...]

OPSET = 17


@dataclass(frozen=True)
class NodeTemplate:
    """What the encoder makes of one node signature.

    Attributes:
        index: position in its :class:`NodeTemplates` (rows of :meth:`NodeTemplates.tables`).
        op: ONNX op type.
        row: float64 feature row (:data:`~hwnas.graph.encode.NODE_FEATURES` columns).
        sums: float64 contribution to the graph-feature sums (op count, bytes, FLOPs buckets).
        key: the node's lookup key.
        out_shape: shape of its output (from ONNX shape inference).
        macs: its multiply-accumulates (:func:`~hwnas.onnx_graph.node_macs`).
        params: elements of its weights.
    """

    index: int
    op: str
    row: np.ndarray
    sums: np.ndarray
    key: str
    out_shape: tuple[int, ...]
    macs: int
    params: int


class NodeTemplates:
    """Memo of :class:`NodeTemplate` by node signature.

    Contract:
        * ``get`` returns what :func:`~hwnas.graph.encode.encode_onnx` computes for such a node in
          any model where its inputs have these shapes (it runs the encoder's code on a one-node
          model), and the same object for the same signature.
        * Grows with the number of distinct signatures (32 for the NB201 space, about 2,150 for the
          macro space: ~1 KB each); not thread-safe.
    """

    def __init__(self) -> None:
        self._memo: dict[tuple[Any, ...], NodeTemplate] = {}
        self._n = 0
        self._rows: np.ndarray | None = None  # capacity doubles as templates arrive
        self._sums: np.ndarray | None = None

    def __len__(self) -> int:
        return self._n

    def tables(self) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, sums)``: every template's :attr:`~NodeTemplate.row` and
        :attr:`~NodeTemplate.sums` stacked in :attr:`~NodeTemplate.index` order (views)."""
        if self._rows is None or self._sums is None:
            raise ValueError("no node templates yet")
        return self._rows[: self._n], self._sums[: self._n]

    def _append(self, tpl: NodeTemplate) -> None:
        if self._rows is None or self._sums is None or self._n == len(self._rows):
            cap = max(64, 2 * self._n)
            rows, sums = np.empty((cap, tpl.row.size)), np.empty((cap, tpl.sums.size))
            if self._rows is not None and self._sums is not None:
                rows[: self._n], sums[: self._n] = self._rows[: self._n], self._sums[: self._n]
            self._rows, self._sums = rows, sums
        self._rows[self._n], self._sums[self._n] = tpl.row, tpl.sums
        self._n += 1

    def get(
        self,
        op: str,
        attrs: Attrs,
        in_shapes: tuple[tuple[int, ...], ...],
        pattern: tuple[int, ...],
        weights: tuple[tuple[int, ...], ...],
        consts: tuple[float, ...],
    ) -> NodeTemplate:
        """Template of a node: ``in_shapes`` of its data inputs, ``pattern[i]`` the position of the
        first data input that is the same tensor as input ``i``, ``weights`` the shapes of its
        initializers, ``consts`` its scalar ``Constant`` inputs.

        Raises:
            ValueError: ONNX shape inference cannot type the node's output.
        """
        sig = (op, attrs, in_shapes, pattern, weights, consts)
        tpl = self._memo.get(sig)
        if tpl is None:
            tpl = self._memo[sig] = _compute(self._n, op, attrs, in_shapes, pattern, weights, consts)
            self._append(tpl)
        return tpl


def _compute(
    index: int,
    op: str,
    attrs: Attrs,
    in_shapes: tuple[tuple[int, ...], ...],
    pattern: tuple[int, ...],
    weights: tuple[tuple[int, ...], ...],
    consts: tuple[float, ...],
) -> NodeTemplate:
    from onnx import TensorProto, helper

    from hwnas.graph.encode import add_node_to_sums, graph_feature_sums, node_features, node_row
    from hwnas.onnx_graph import node_macs, shaped_graph

    data = [f"in{p}" for p in pattern]
    inputs = [helper.make_tensor_value_info(f"in{p}", TensorProto.FLOAT, list(in_shapes[p])) for p in sorted(set(pattern))]
    inits = [_declared(f"w{i}", s) for i, s in enumerate(weights)]
    const_nodes = [
        helper.make_node("Constant", [], [f"c{i}"], value=helper.make_tensor(f"c{i}_value", TensorProto.FLOAT, [], [v]))
        for i, v in enumerate(consts)
    ]
    names = data + [t.name for t in inits] + [n.output[0] for n in const_nodes]
    kwargs = {k: list(v) if isinstance(v, tuple) else v for k, v in attrs}
    node = helper.make_node(op, names, ["out"], name="node", **kwargs)
    graph = helper.make_graph(
        [*const_nodes, node], "template", inputs, [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)], inits
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    try:
        sg = shaped_graph(model)
    except Exception as exc:  # onnx's inference errors: one line naming the node
        raise ValueError(f"cannot infer the output shape of {op} with inputs {list(in_shapes)}: {exc}") from None
    if "out" not in sg.shapes:
        raise ValueError(f"cannot infer the output shape of {op} with inputs {list(in_shapes)}")
    const = set(sg.initializers) | {n.output[0] for n in const_nodes}
    inferred = next(n for n in sg.graph.node if n.name == "node")
    feats, key = node_features(inferred, list(inferred.input), sg.shapes, const, sg.initializers)
    sums = graph_feature_sums()
    add_node_to_sums(sums, op, feats)
    return NodeTemplate(
        index=index,
        op=op,
        row=node_row(op, feats),
        sums=sums,
        key=key,
        out_shape=tuple(int(d) for d in sg.shapes["out"]),
        macs=int(node_macs(inferred, sg.shapes)),
        params=int(sum(int(np.prod(s)) if s else 1 for s in weights)),
    )


def _declared(name: str, dims: tuple[int, ...]) -> Any:
    """A float initializer with ``dims`` and no data: shape inference and the encoder read only
    its dims, and a 1280x400 convolution costs nothing to declare."""
    from onnx import TensorProto

    t = TensorProto(name=name, data_type=TensorProto.FLOAT)
    t.dims.extend(dims)
    return t


class GraphSketch:
    """One network's graph under construction (see the module docstring).

    Tensors are integers: :attr:`input` is the network input, and :meth:`add` returns the tensor a
    node produces. :meth:`graph` encodes what was added.

    Args:
        templates: the signature memo to use (share one across networks for speed).
        input_shape: shape of the network input, e.g. ``(1, 3, 32, 32)``.
    """

    input = 0

    def __init__(self, templates: NodeTemplates, input_shape: Sequence[int]) -> None:
        self._templates = templates
        self.input_shape = tuple(int(d) for d in input_shape)
        self._shapes: list[tuple[int, ...]] = [self.input_shape]
        self._producer: list[int] = [-1]
        self._nodes: list[NodeTemplate] = []
        self._names: list[str] = []
        self._edges: list[tuple[int, int]] = []
        self._longest: list[int] = []  # nodes on the longest path ending at each node
        self._cse: dict[tuple[Any, ...], int] = {}
        self._name_uses: dict[str, int] = {}

    def shape(self, tensor: int) -> tuple[int, ...]:
        """Shape of a tensor."""
        return self._shapes[tensor]

    def add(
        self,
        scope: str,
        op: str,
        inputs: Sequence[int],
        *,
        attrs: Attrs = (),
        weights: tuple[tuple[int, ...], ...] = (),
        consts: tuple[float, ...] = (),
    ) -> int:
        """Add a node (or find the earlier node it is identical to); returns its output tensor.

        Args:
            scope: the module path the exporter names it by, e.g. ``"/cells/cells.0/edge_ops.2"``.
            op: ONNX op type.
            inputs: its data input tensors.
            attrs: its attributes (hashable values: tuples, not lists).
            weights: shapes of its initializers (each a new tensor: nodes with weights are never merged).
            consts: values of its scalar ``Constant`` inputs.
        """
        data = tuple(inputs)
        if not weights:
            cse_key = (op, attrs, data, consts)
            hit = self._cse.get(cse_key)
            if hit is not None:
                return hit
        pattern = tuple(data.index(t) for t in data)
        tpl = self._templates.get(op, attrs, tuple(self._shapes[t] for t in data), pattern, weights, consts)
        node = len(self._nodes)
        self._nodes.append(tpl)
        base = f"{scope}/{op}"
        uses = self._name_uses.get(base, 0)
        self._name_uses[base] = uses + 1
        self._names.append(f"{base}_{uses}" if uses else base)
        longest = 1
        for p in sorted({self._producer[t] for t in data}):
            if p >= 0:
                self._edges.append((p, node))
                longest = max(longest, self._longest[p] + 1)
        self._longest.append(longest)  # nodes arrive in topological order
        tensor = len(self._shapes)
        self._shapes.append(tpl.out_shape)
        self._producer.append(node)
        if not weights:
            self._cse[cse_key] = tensor
        return tensor

    def is_unconsumed_conv(self, tensor: int) -> bool:
        """Whether ``tensor`` is the output of a ``Conv`` that no node reads yet: a BatchNorm added
        after it is folded into it by the exporter (so the replay adds none)."""
        node = self._producer[tensor]
        return node >= 0 and self._nodes[node].op == "Conv" and all(p != node for p, _ in self._edges)

    def graph(self) -> GraphData:
        """The encoded graph of the nodes added so far (equal to what ``encode_onnx`` gives for the
        exported model, when the sketch follows the exporter)."""
        from hwnas.graph.encode import NODE_FEATURES, assemble, graph_feature_sums

        nodes = self._nodes
        if nodes:
            rows, sums_table = self._templates.tables()
            ids = np.fromiter((t.index for t in nodes), dtype=np.int64, count=len(nodes))
            x = rows[ids]
            sums = sums_table[ids].sum(axis=0)  # integers: exact in any order
        else:
            x = np.zeros((0, len(NODE_FEATURES)), dtype=np.float64)
            sums = graph_feature_sums()
        edges = sorted(self._edges)
        edge_index = np.array(edges, dtype=np.int64).reshape(-1, 2).T.copy()
        return assemble(
            x,
            edge_index,
            sums,
            op_types=tuple(t.op for t in nodes),
            node_keys=tuple(t.key for t in nodes),
            node_names=tuple(self._names),
            flops=2 * sum(t.macs for t in nodes),
            params=sum(t.params for t in nodes),
            input_shape=self.input_shape,
            depth=max(self._longest, default=0),
        )
