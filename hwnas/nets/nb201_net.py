"""The NAS-Bench-201 network: stem, three stages of cells joined by residual reduction blocks.

Follows NAS-Bench-201's ``TinyNetwork`` / ``InferCell``: stem conv 3x3 to C channels + BN; N cells
at C, a ResNet basic block with stride 2 to 2C, N cells at 2C, a block to 4C, N cells at 4C; BN,
ReLU, global average pooling and a linear classifier. Operations: ``nor_conv_kxk`` is
ReLU-Conv-BN, ``avg_pool_3x3`` is a stride-1 average pool, ``skip_connect`` the identity.

Every edge is computed, as in NAS-Bench-201's reference implementation and in the published
latency tables measured with it: ``none`` is its ``Zero`` op (``x * 0``), and an operation whose
input node carries only zeros still runs. So the exported graph does the work that the benchmark's
devices timed; two cells with the same operations on the same edges are the same graph.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from hwnas.space.nb201 import EDGES


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
