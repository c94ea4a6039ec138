"""The NAS-Bench-201 supernet: every cell edge holds all five operations (weight sharing).

Same macro skeleton as :class:`~hwnas.nets.nb201_net.NB201Network` (stem; three stages of N cells
joined by residual reduction blocks; BN, ReLU, global pooling, linear classifier), but each of the
6 cell edges is a :class:`MixedOp` over :data:`~hwnas.space.nb201.OPS`. All cells share one
choice (NB201 reuses its cell everywhere), passed with each forward:

* a **fixed architecture**, 6 op indices in edge order: only the chosen op of each edge runs
  (one-shot / single-path weight sharing, SPOS); its weights are the ones the stand-alone network
  of that architecture would use;
* an **edge weighting**, a 6x5 tensor (rows: edges, columns: ops; e.g. ``softmax(alpha, -1)``):
  every op runs and edge ``e`` outputs ``sum_o w[e, o] * op_o(x)`` (DARTS' continuous
  relaxation; gradients flow to ``w``).

Example:
    >>> import torch
    >>> from hwnas.nets.nb201_supernet import NB201Supernet
    >>> net = NB201Supernet(channels=4, cells=1)
    >>> x = torch.zeros(2, 3, 8, 8)
    >>> net(x, [3, 1, 0, 2, 4, 3]).shape, net(x, torch.full((6, 5), 0.2)).shape
    (torch.Size([2, 10]), torch.Size([2, 10]))
"""

from __future__ import annotations

from typing import Sequence, Union

import torch
from torch import nn

from hwnas.nets.nb201_net import ResNetBasicBlock, make_op
from hwnas.space.nb201 import EDGES, OPS

#: What a supernet forward takes as its architecture: 6 op indices, or a 6x5 weight tensor.
Choice = Union[Sequence[int], torch.Tensor]


class MixedOp(nn.Module):
    """All NB201 operations of one edge; runs one of them (an index) or their weighted sum."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.ops = nn.ModuleList(make_op(name, channels) for name in OPS)

    def forward(self, x: torch.Tensor, choice: int | torch.Tensor) -> torch.Tensor:
        if isinstance(choice, int):
            return self.ops[choice](x)
        out = choice[0] * self.ops[0](x)
        for w, op in zip(choice[1:], self.ops[1:]):
            out = out + w * op(x)
        return out


class SuperCell(nn.Module):
    """An NB201 cell (stride 1, channels preserved) whose 6 edges are :class:`MixedOp`."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList(MixedOp(channels) for _ in EDGES)

    def forward(self, x: torch.Tensor, choice: Sequence[int] | torch.Tensor) -> torch.Tensor:
        nodes: list[torch.Tensor] = [x]
        for node in (1, 2, 3):
            total: torch.Tensor | None = None
            for e, ((dst, src), edge) in enumerate(zip(EDGES, self.edges)):
                if dst == node:
                    term = edge(nodes[src], choice[e])
                    total = term if total is None else total + term
            nodes.append(total)  # type: ignore[arg-type]
        return nodes[3]


class NB201Supernet(nn.Module):
    """The NB201 network with every operation on every edge (see the module docstring).

    Args:
        channels: stem width C; stages run at C, 2C, 4C.
        cells: N cells per stage.
        num_classes: classifier outputs.
        in_channels: input image channels.

    ``forward(x, choice)``: ``choice`` is 6 op indices (single path) or a 6x5 tensor of per-edge
    op weights (mixed). Raises ``ValueError`` for anything else.
    """

    def __init__(self, channels: int = 16, cells: int = 5, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        if min(channels, cells, num_classes, in_channels) < 1:
            raise ValueError("supernet: channels, cells, num_classes and in_channels must be >= 1")
        self.channels, self.cells, self.num_classes, self.in_channels = channels, cells, num_classes, in_channels
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)
        )
        layers: list[nn.Module] = []
        c = channels
        for stage in range(3):
            if stage > 0:
                layers.append(ResNetBasicBlock(c, 2 * c))
                c *= 2
            layers.extend(SuperCell(c) for _ in range(cells))
        self.layers = nn.ModuleList(layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=False))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    @staticmethod
    def check_choice(choice: Choice) -> list[int] | torch.Tensor:
        """Validate ``choice``: 6 op indices (returned as ints) or a 6x5 tensor (returned as is)."""
        n_edges, n_ops = len(EDGES), len(OPS)
        if isinstance(choice, torch.Tensor) and choice.is_floating_point():
            if tuple(choice.shape) != (n_edges, n_ops):
                shape = tuple(choice.shape)
                raise ValueError(f"supernet: edge weights must be a {n_edges}x{n_ops} tensor, got shape {shape}")
            return choice
        ops = [int(o) for o in (choice.tolist() if isinstance(choice, torch.Tensor) else choice)]
        if len(ops) != n_edges or not all(0 <= o < n_ops for o in ops):
            raise ValueError(f"supernet: a path is {n_edges} op indices in [0, {n_ops}), got {ops}")
        return ops

    def forward(self, x: torch.Tensor, choice: Choice) -> torch.Tensor:
        choice = self.check_choice(choice)
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x, choice) if isinstance(layer, SuperCell) else layer(x)
        x = self.lastact(x)
        return self.classifier(torch.flatten(self.pool(x), 1))
