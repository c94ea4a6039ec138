"""The network of a macro-space architecture: MobileNetV2-style stem, searched stages, head."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from hwnas.space.macro_ops import FIRST_BLOCK_CHANNELS, HEAD_CHANNELS, STEM_CHANNELS, parse_op


def conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    """Conv2d (no bias) -> BatchNorm2d [-> ReLU6]."""
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
    ]
    if act:
        layers.append(nn.ReLU6(inplace=False))
    return nn.Sequential(*layers)


class MBConv(nn.Module):
    """Inverted residual block: [1x1 expand] -> kxk depthwise -> 1x1 project, identity shortcut
    when the input and output shapes agree."""

    def __init__(self, c_in: int, c_out: int, kernel: int, expansion: int, stride: int) -> None:
        super().__init__()
        hidden = c_in * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(conv_bn(c_in, hidden, 1))
        layers.append(conv_bn(hidden, hidden, kernel, stride, groups=hidden))
        layers.append(conv_bn(hidden, c_out, 1, act=False))
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return x + out if self.residual else out


class MacroNetwork(nn.Module):
    """Stem (3x3 s2 to 32, MBConv k3e1 to 16), the searched stages, 1x1 conv head to 1280,
    global pooling and a linear classifier.

    Args:
        stages: ``(stride, width, ops)`` per stage, as ``MacroSpace.stages`` returns.
        num_classes: classifier outputs.
        width_mult: scales every width (stem, first block, stages, head) to
            ``max(1, round(width * width_mult))``; 1.0 (the default) is the architecture as
            specified. Used by the trained evaluators to train downscaled networks.
    """

    def __init__(
        self, stages: Sequence[tuple[int, int, Sequence[str]]], num_classes: int = 1000, width_mult: float = 1.0
    ) -> None:
        super().__init__()
        if not width_mult > 0:
            raise ValueError(f"macro: width_mult must be > 0, got {width_mult}")

        def scaled(width: int) -> int:
            return width if width_mult == 1.0 else max(1, int(round(width * width_mult)))

        stem, first, head = scaled(STEM_CHANNELS), scaled(FIRST_BLOCK_CHANNELS), scaled(HEAD_CHANNELS)
        blocks: list[nn.Module] = [conv_bn(3, stem, 3, stride=2), MBConv(stem, first, 3, 1, 1)]
        c = first
        for stride, width, ops in stages:
            for i, op in enumerate(ops):
                spec = parse_op(op)
                if spec is None:  # skip: identity, never the first layer of a stage
                    continue
                kernel, expansion = spec
                blocks.append(MBConv(c, scaled(width), kernel, expansion, stride if i == 0 else 1))
                c = scaled(width)
        blocks.append(conv_bn(c, head, 1))
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(head, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))
