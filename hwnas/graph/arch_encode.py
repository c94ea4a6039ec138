"""The encoded graph of an architecture of hwnas's spaces in about a millisecond: no torch, no export.

:func:`hwnas.graph.encode.encode_onnx` of :func:`hwnas.export.arch_to_onnx` is the truth (it is what
the device measures) but costs about 0.2 s a network. :class:`ArchEncoder` gives the same
:class:`~hwnas.graph.data.GraphData` (node features, edges, node keys and names, graph features,
FLOPs, params: equal arrays, not approximately equal) by replaying each network's forward pass as
the exporter records it (a :class:`~hwnas.graph.sketch.GraphSketch`): the same operators in the same
order, with the same module scopes, BatchNorm folded into the convolution before it, ``ReLU6`` as
``Clip``, NB201's ``none`` as ``Mul`` by a constant 0, ``skip`` as nothing, and identical pure
nodes merged as TorchScript's common-subexpression elimination merges them.

The replays below mirror :mod:`hwnas.nets.nb201_net` and :mod:`hwnas.nets.macro_net`; a change to
either network (or an exporter that writes another graph) must change them too, and
``tests/test_arch_encode.py`` fails until it does. Spaces without a replay (or subclasses, which may
build other networks) are not :meth:`ArchEncoder.supports`-ed: encode their exports.

Example:
    >>> from hwnas.space import NB201Space
    >>> enc = ArchEncoder()
    >>> space = NB201Space()
    >>> g = enc.encode(space, space.from_index(1))
    >>> g.node_keys[0], g.node_names[0]
    ('Conv|k3x3|s1|g1|c3>16|32x32', '/stem/stem.0/Conv')
"""

from __future__ import annotations

from hwnas.graph.data import GraphData
from hwnas.graph.sketch import Attrs, GraphSketch, NodeTemplates
from hwnas.space.base import Arch, SearchSpace
from hwnas.space.macro import FIRST_BLOCK_CHANNELS, HEAD_CHANNELS, STEM_CHANNELS, MacroSpace, parse_op
from hwnas.space.nb201 import EDGES, OPS, NB201Space
from hwnas.space.nb201_cell import CellPlan

#: ``nn.BatchNorm2d`` defaults as the exporter writes them (epsilon as float32).
_BN_ATTRS: Attrs = (("epsilon", 9.999999747378752e-06), ("momentum", 0.8999999761581421), ("training_mode", 0))
_GEMM_ATTRS: Attrs = (("alpha", 1.0), ("beta", 1.0), ("transB", 1))


class ArchEncoder:
    """Encoded graphs of NB201 and macro architectures, equal to encoding their ONNX exports.

    Contract:
        * ``encode(space, arch, form) == encode_onnx(arch_to_onnx(space, arch, form=form))`` field by
          field, for every architecture of a supported space (any constructor settings of the
          space) and both forms.
        * Deterministic, and no torch: the first network of a new shape computes its node
          templates with ONNX shape inference (milliseconds), later ones reuse them.
        * Holds a growing memo of node templates; not thread-safe (use one per thread).
    """

    def __init__(self) -> None:
        self._templates = NodeTemplates()

    @staticmethod
    def supports(space: SearchSpace) -> bool:
        """Whether ``space``'s networks have a replay here (exactly these classes, not subclasses)."""
        return type(space) in (NB201Space, MacroSpace)

    def encode(self, space: SearchSpace, arch: Arch, form: str = "reference") -> GraphData:
        """The graph of ``arch``'s network exported in ``form`` (:data:`hwnas.export.FORMS`).

        Raises:
            ValueError: the space is not supported, ``arch`` is not one of its architectures, or
                the form is unknown.
        """
        if not self.supports(space):
            raise ValueError(f"no direct graph encoding for space {space.name!r}: encode its ONNX export")
        if form not in ("reference", "pruned"):
            raise ValueError(f"unknown form {form!r}; choose one of: reference, pruned")
        sketch = GraphSketch(self._templates, space.input_shape(arch))
        if isinstance(space, NB201Space):
            _nb201(sketch, space, arch, pruned=form == "pruned")
        else:
            assert isinstance(space, MacroSpace)
            _macro(sketch, space, arch)
        return sketch.graph()


# -- shared layers -------------------------------------------------------------------------------


def _conv(
    sk: GraphSketch, scope: str, x: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1, bias: bool = True
) -> int:
    """``nn.Conv2d(padding=kernel // 2)``; ``bias`` also when a BatchNorm was folded into it."""
    c_in = sk.shape(x)[1]
    p = kernel // 2
    attrs: Attrs = (
        ("dilations", (1, 1)),
        ("group", groups),
        ("kernel_shape", (kernel, kernel)),
        ("pads", (p, p, p, p)),
        ("strides", (stride, stride)),
    )
    weights = ((c_out, c_in // groups, kernel, kernel),) + (((c_out,),) if bias else ())
    return sk.add(scope, "Conv", [x], attrs=attrs, weights=weights)


def _avg_pool(sk: GraphSketch, scope: str, x: int, kernel: int, stride: int, pad: int, count_include_pad: int) -> int:
    attrs: Attrs = (
        ("ceil_mode", 0),
        ("count_include_pad", count_include_pad),
        ("kernel_shape", (kernel, kernel)),
        ("pads", (pad, pad, pad, pad)),
        ("strides", (stride, stride)),
    )
    return sk.add(scope, "AveragePool", [x], attrs=attrs)


def _classifier(sk: GraphSketch, x: int, num_classes: int) -> None:
    """``AdaptiveAvgPool2d(1)``, ``torch.flatten(x, 1)``, ``nn.Linear``."""
    x = sk.add("/pool", "GlobalAveragePool", [x])
    x = sk.add("", "Flatten", [x], attrs=(("axis", 1),))
    c = sk.shape(x)[1]
    sk.add("/classifier", "Gemm", [x], attrs=_GEMM_ATTRS, weights=((num_classes, c), (num_classes,)))


# -- NB201 (hwnas.nets.nb201_net) ----------------------------------------------------------------


def _nb201(sk: GraphSketch, space: NB201Space, arch: Arch, pruned: bool = False) -> None:
    ops = [OPS[o] for o in space.encode(arch)]
    plan = CellPlan.of(ops) if pruned else None
    x = _conv(sk, "/stem/stem.0", sk.input, space.channels, 3)  # stem conv + BN
    c, layer = space.channels, 0
    for stage in range(3):
        if stage > 0:
            x = _basic_block(sk, f"/cells/cells.{layer}", x, 2 * c)
            c, layer = 2 * c, layer + 1
        for _ in range(space.cells_per_stage):
            if plan is None:
                x = _cell(sk, f"/cells/cells.{layer}", x, ops)
            else:
                x = _pruned_cell(sk, f"/cells/cells.{layer}", x, plan)
            layer += 1
    if not sk.is_unconsumed_conv(x):  # a pruned cell may end in a conv: the exporter folds BN into it
        x = sk.add("/lastact/lastact.0", "BatchNormalization", [x], attrs=_BN_ATTRS, weights=((c,),) * 4)
    x = sk.add("/lastact/lastact.1", "Relu", [x])
    _classifier(sk, x, space.num_classes)


def _cell(sk: GraphSketch, scope: str, x: int, ops: list[str]) -> int:
    """``NB201Cell.forward``: every edge's op, then each node's sum, node by node."""
    nodes = [x]
    for node in (1, 2, 3):
        terms = [
            _edge(sk, f"{scope}/edge_ops.{e}", f"edge_ops.{e}", op, nodes[src])
            for e, ((dst, src), op) in enumerate(zip(EDGES, ops))
            if dst == node
        ]
        total = terms[0]
        for t in terms[1:]:
            total = sk.add(scope, "Add", [total, t])
        nodes.append(total)
    return nodes[3]


def _pruned_cell(sk: GraphSketch, scope: str, x: int, plan: CellPlan) -> int:
    """``PrunedNB201Cell.forward``: live edges node by node, each node's constant added last."""
    nodes = {0: x}
    for node in plan.computed:
        terms = [_edge(sk, f"{scope}/edge_ops.{e}", f"edge_ops.{e}", plan.ops[e], nodes[EDGES[e][1]]) for e in plan.edges_into(node)]
        total = terms[0]
        for t in terms[1:]:
            total = sk.add(scope, "Add", [total, t])
        if plan.adds_constant(node):
            total = _add_constant(sk, scope, total, plan.const_kind[node])
        nodes[node] = total
    if plan.output_live:
        return nodes[3]
    out = sk.add(scope, "Mul", [x], consts=(0.0,))
    return _add_constant(sk, scope, out, plan.const_kind[3]) if plan.adds_constant(3) else out


def _add_constant(sk: GraphSketch, scope: str, x: int, kind: str) -> int:
    """``x + const``: a ``[1, C, 1, 1]`` (uniform) or ``[1, C, H, W]`` (map) initializer."""
    _, c, h, w = sk.shape(x)
    return sk.add(scope, "Add", [x], weights=((1, c, 1, 1) if kind == "uniform" else (1, c, h, w),))


def _edge(sk: GraphSketch, scope: str, name: str, op: str, x: int) -> int:
    if op == "none":  # Zero: x.mul(0.0)
        return sk.add(scope, "Mul", [x], consts=(0.0,))
    if op == "skip_connect":
        return x
    if op in ("nor_conv_1x1", "nor_conv_3x3"):  # ReLU -> Conv (+ folded BN)
        x = sk.add(f"{scope}/{name}.0", "Relu", [x])
        return _conv(sk, f"{scope}/{name}.1", x, sk.shape(x)[1], 1 if op == "nor_conv_1x1" else 3)
    if op == "avg_pool_3x3":
        return _avg_pool(sk, scope, x, 3, 1, 1, count_include_pad=0)
    raise ValueError(f"nb201: no replay of op {op!r}")


def _basic_block(sk: GraphSketch, scope: str, x: int, c_out: int) -> int:
    """``ResNetBasicBlock.forward``: ``downsample(x) + conv_b(conv_a(x))``."""
    d = _avg_pool(sk, f"{scope}/downsample/downsample.0", x, 2, 2, 0, count_include_pad=1)
    d = _conv(sk, f"{scope}/downsample/downsample.1", d, c_out, 1, bias=False)
    a = sk.add(f"{scope}/conv_a/conv_a.0", "Relu", [x])
    a = _conv(sk, f"{scope}/conv_a/conv_a.1", a, c_out, 3, stride=2)
    b = sk.add(f"{scope}/conv_b/conv_b.0", "Relu", [a])
    b = _conv(sk, f"{scope}/conv_b/conv_b.1", b, c_out, 3)
    return sk.add(scope, "Add", [d, b])


# -- macro (hwnas.nets.macro_net) ----------------------------------------------------------------


def _macro(sk: GraphSketch, space: MacroSpace, arch: Arch) -> None:
    x = _conv_bn(sk, "/features/features.0", "features.0", sk.input, STEM_CHANNELS, 3, stride=2)
    x = _mbconv(sk, 1, x, FIRST_BLOCK_CHANNELS, 3, 1, 1)
    block = 2
    for stride, width, ops in space.stages(arch):
        for i, op in enumerate(ops):
            spec = parse_op(op)
            if spec is None:  # skip: no module, no node
                continue
            x = _mbconv(sk, block, x, width, spec[0], spec[1], stride if i == 0 else 1)
            block += 1
    x = _conv_bn(sk, f"/features/features.{block}", f"features.{block}", x, HEAD_CHANNELS, 1)
    _classifier(sk, x, space.num_classes)


def _conv_bn(
    sk: GraphSketch, scope: str, name: str, x: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True
) -> int:
    """``conv_bn``: Conv (+ folded BN) [-> ReLU6 as ``Clip(x, 0, 6)``]."""
    x = _conv(sk, f"{scope}/{name}.0", x, c_out, kernel, stride, groups)
    if act:
        x = sk.add(f"{scope}/{name}.2", "Clip", [x], consts=(0.0, 6.0))
    return x


def _mbconv(sk: GraphSketch, block: int, x: int, c_out: int, kernel: int, expansion: int, stride: int) -> int:
    """``MBConv.forward``: [1x1 expand] -> kxk depthwise -> 1x1 project [+ x]."""
    scope = f"/features/features.{block}"
    c_in = sk.shape(x)[1]
    hidden = c_in * expansion
    h, j = x, 0
    if expansion != 1:
        h = _conv_bn(sk, f"{scope}/body/body.{j}", f"body.{j}", h, hidden, 1)
        j += 1
    h = _conv_bn(sk, f"{scope}/body/body.{j}", f"body.{j}", h, hidden, kernel, stride, groups=hidden)
    j += 1
    h = _conv_bn(sk, f"{scope}/body/body.{j}", f"body.{j}", h, c_out, 1, act=False)
    if stride == 1 and c_in == c_out:
        h = sk.add(scope, "Add", [x, h])
    return h
