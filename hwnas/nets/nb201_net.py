"""The NAS-Bench-201 network: stem, three stages of cells joined by residual reduction blocks.

Follows NAS-Bench-201's ``TinyNetwork`` / ``InferCell``: stem conv 3x3 to C channels + BN; N cells
at C, a ResNet basic block with stride 2 to 2C, N cells at 2C, a block to 4C, N cells at 4C; BN,
ReLU, global average pooling and a linear classifier. Operations: ``nor_conv_kxk`` is
ReLU-Conv-BN, ``avg_pool_3x3`` is a stride-1 average pool, ``skip_connect`` the identity.

Every edge is computed, as in NAS-Bench-201's reference implementation and in the published
latency tables measured with it: ``none`` is its ``Zero`` op (``x * 0``), and an operation whose
input node carries only zeros still runs. So the exported graph does the work that the benchmark's
devices timed; two cells with the same operations on the same edges are the same graph.

:meth:`NB201Network.pruned` gives the deployable form of a network with its current weights: each
cell computes only its live edges (:class:`hwnas.space.nb201_cell.CellPlan`), and what dead nodes
add in eval mode (a convolution of zeros is its BatchNorm shift) is folded into one constant per
node. It computes the same function as the eval-mode reference network, with the same weights.
"""

from __future__ import annotations

import copy
from typing import Sequence

import torch
from torch import nn

from hwnas.space.nb201_ops import EDGES
from hwnas.space.nb201_cell import CellPlan


class ReLUConvBN(nn.Sequential):
    """ReLU -> Conv2d (no bias) -> BatchNorm2d."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out),
        )


def make_op(name: str, channels: int) -> nn.Module:
    """The module of one NB201 edge operation at ``channels`` channels, stride 1."""
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"nb201: no module for op {name!r}")


class Zero(nn.Module):
    """NAS-Bench-201's ``none`` op: ``x * 0`` (keeps the shape, and the work of what follows)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


class NB201Cell(nn.Module):
    """A searched cell (stride 1, channels preserved)."""

    def __init__(self, ops: Sequence[str], channels: int) -> None:
        super().__init__()
        self.edge_ops = nn.ModuleList(make_op(op, channels) for op in ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes: list[torch.Tensor] = [x]
        for node in (1, 2, 3):
            terms = [op(nodes[src]) for (dst, src), op in zip(EDGES, self.edge_ops) if dst == node]
            total = terms[0]
            for t in terms[1:]:
                total = total + t
            nodes.append(total)
        return nodes[3]

    def pruned(self, input_shape: Sequence[int]) -> PrunedNB201Cell:
        """The deployable form of this cell (eval mode, the current weights) for inputs of
        ``input_shape`` ``(N, C, H, W)``; shares the live edges' modules with this cell."""
        return PrunedNB201Cell(self, input_shape)


class PrunedNB201Cell(nn.Module):
    """An NB201 cell without ``none`` edges and without operations that have no path from its
    input or to its output (see :class:`~hwnas.space.nb201_cell.CellPlan`).

    The constants that input-independent nodes add to a computed node are evaluated once, from the
    reference cell's weights in eval mode, and stored as buffers ``const_<node>`` (``[1, C, 1, 1]``
    for a ``uniform`` constant, ``[1, C, H, W]`` for a ``map``). A cell whose output does not
    depend on its input returns ``x * 0`` plus node 3's constant: the reference's value, at the
    input's shape. The module list ``edge_ops`` keeps the reference's indices (its keys are the
    live edges), so parameter names and exported node names match the reference's.
    """

    def __init__(self, cell: NB201Cell, input_shape: Sequence[int]) -> None:
        super().__init__()
        ops = [_op_name(m) for m in cell.edge_ops]
        self.plan = CellPlan.of(ops)
        self.edge_ops = nn.ModuleDict({str(e): cell.edge_ops[e] for e in self.plan.live_edges})
        consts = _cell_constants(cell, self.plan, input_shape)
        for node in (1, 2, 3):
            if self.plan.adds_constant(node):
                self.register_buffer(f"const_{node}", consts[node])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes: dict[int, torch.Tensor] = {0: x}
        for node in self.plan.computed:
            terms = [self.edge_ops[str(e)](nodes[EDGES[e][1]]) for e in self.plan.edges_into(node)]
            total = terms[0]
            for t in terms[1:]:
                total = total + t
            if self.plan.adds_constant(node):
                total = total + getattr(self, f"const_{node}")
            nodes[node] = total
        if self.plan.output_live:
            return nodes[3]
        out = x.mul(0.0)
        return out + self.const_3 if self.plan.adds_constant(3) else out


def _op_name(module: nn.Module) -> str:
    """The NB201 op name of an edge module built by :func:`make_op`."""
    if isinstance(module, Zero):
        return "none"
    if isinstance(module, nn.Identity):
        return "skip_connect"
    if isinstance(module, nn.AvgPool2d):
        return "avg_pool_3x3"
    if isinstance(module, ReLUConvBN):
        return "nor_conv_1x1" if module[1].kernel_size == (1, 1) else "nor_conv_3x3"
    raise TypeError(f"nb201: not an edge op module: {type(module).__name__}")


@torch.no_grad()
def _cell_constants(cell: NB201Cell, plan: CellPlan, input_shape: Sequence[int]) -> dict[int, torch.Tensor]:
    """Per node, what input-independent nodes add to it in eval mode, shaped by its kind."""
    was_training = cell.training
    cell.eval()
    try:
        shape = (1,) + tuple(int(d) for d in input_shape[1:])
        const = [torch.zeros(shape) for _ in range(4)]  # value of each input-independent node
        for e, ((dst, src), op) in enumerate(zip(EDGES, cell.edge_ops)):
            if plan.ops[e] != "none" and not plan.input_dependent[src]:
                const[dst] = const[dst] + op(const[src])
    finally:
        cell.train(was_training)
    out = {}
    for node, kind in enumerate(plan.const_kind):
        c = const[node]
        out[node] = c[:, :, :1, :1].clone() if kind == "uniform" else c
    return out


class ResNetBasicBlock(nn.Module):
    """Reduction block: two ReLU-Conv-BN 3x3 (first with stride 2) + avgpool/1x1 conv shortcut."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride=2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2), nn.Conv2d(c_in, c_out, 1, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class NB201Network(nn.Module):
    """The NAS-Bench-201 CIFAR network for one cell (``ops``: 6 op names in edge order)."""

    def __init__(
        self, ops: Sequence[str], channels: int = 16, cells_per_stage: int = 5, num_classes: int = 10
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))
        layers: list[nn.Module] = []
        c = channels
        for stage in range(3):
            if stage > 0:
                layers.append(ResNetBasicBlock(c, 2 * c))
                c *= 2
            layers.extend(NB201Cell(ops, c) for _ in range(cells_per_stage))
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=False))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.lastact(self.cells(self.stem(x)))
        return self.classifier(torch.flatten(self.pool(x), 1))

    def pruned(self, input_shape: Sequence[int]) -> NB201Network:
        """The deployable form of this network with its current weights, in eval mode.

        A copy whose cells are :class:`PrunedNB201Cell` s; it computes what this network computes
        in eval mode for inputs of ``input_shape`` (the constants depend on each cell's spatial
        size). Every other module (stem, reduction blocks, head) is copied unchanged.
        """
        net = copy.deepcopy(self).eval()
        shapes: list[tuple[int, ...]] = []
        hooks = [
            m.register_forward_pre_hook(lambda _m, args: shapes.append(tuple(args[0].shape)))
            for m in net.cells if isinstance(m, NB201Cell)
        ]
        try:
            with torch.no_grad():
                net(torch.zeros(tuple(int(d) for d in input_shape)))
        finally:
            for h in hooks:
                h.remove()
        it = iter(shapes)
        net.cells = nn.Sequential(*(m.pruned(next(it)) if isinstance(m, NB201Cell) else m for m in net.cells))
        return net
