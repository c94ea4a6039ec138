"""A MobileNetV2/FBNet-like macro search space.

Unlike the NB201 cell space (one cell reused everywhere), every layer here is chosen
independently. The network is a stem, six searched stages and a head; the search decides

* the input resolution (128, 160, 192 or 224),
* per stage, the number of layers (1-4) and the width (three choices per stage),
* per layer, the operation: an inverted-residual MBConv block with kernel 3/5/7 and expansion
  1/3/6, or ``skip`` (identity; not allowed for the first layer of a stage, which changes stride
  and width),
* and through these the topology: identity shortcuts wrap every MBConv whose input and output
  shapes agree, and ``skip`` layers remove blocks.

The canonical string lists the resolution and then each stage as ``width:op-op-...``::

    224|24:k3e6-k5e3|32:k3e1-skip-k7e6|64:k5e6|96:k3e3-k3e3|160:k7e6|320:k3e6

Example:
    >>> import numpy as np
    >>> from hwnas.space import MacroSpace
    >>> space = MacroSpace()
    >>> arch = space.sample(np.random.default_rng(0))
    >>> space.parse(arch.spec) == arch and space.decode(space.encode(arch)) == arch
    True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from hwnas.space.base import Arch, SearchSpace, check_vector
from hwnas.space.macro_ops import FIRST_BLOCK_CHANNELS, HEAD_CHANNELS, STEM_CHANNELS, parse_op

if TYPE_CHECKING:
    import torch

RESOLUTIONS: tuple[int, ...] = (128, 160, 192, 224)
#: Operations of a layer; ``skip`` must stay last (the first layer of a stage cannot use it).
OPS: tuple[str, ...] = ("k3e1", "k3e3", "k3e6", "k5e1", "k5e3", "k5e6", "k7e1", "k7e3", "k7e6", "skip")
#: (stride of the first layer, width choices) per stage, after MobileNetV2's 24/32/64/96/160/320.
STAGES: tuple[tuple[int, tuple[int, ...]], ...] = (
    (2, (16, 24, 32)),
    (2, (24, 32, 40)),
    (2, (48, 64, 80)),
    (1, (72, 96, 120)),
    (2, (120, 160, 200)),
    (1, (240, 320, 400)),
)
MAX_DEPTH = 4
_PER_STAGE = 2 + MAX_DEPTH  # depth, width, op of each layer slot


class MacroSpace(SearchSpace):
    """MobileNetV2-like macro space (see the module docstring).

    Args:
        num_classes: classifier outputs (1000, ImageNet-style, by default).
    """

    name = "macro"

    def __init__(self, num_classes: int = 1000) -> None:
        if num_classes < 1:
            raise ValueError("macro: num_classes must be >= 1")
        self.num_classes = num_classes

    @property
    def size(self) -> int:
        per_stage = 0
        for depth in range(1, MAX_DEPTH + 1):
            per_stage += (len(OPS) - 1) * len(OPS) ** (depth - 1)
        total = len(RESOLUTIONS)
        for _, widths in STAGES:
            total *= len(widths) * per_stage
        return total

    @property
    def cardinalities(self) -> tuple[int, ...]:
        cards = [len(RESOLUTIONS)]
        for _, widths in STAGES:
            cards += [MAX_DEPTH, len(widths), len(OPS) - 1] + [len(OPS)] * (MAX_DEPTH - 1)
        return tuple(cards)

    def parse(self, text: str) -> Arch:
        parts = text.strip().split("|")
        if len(parts) != 1 + len(STAGES):
            raise ValueError(
                f"macro: expected a resolution and {len(STAGES)} stages joined by '|' "
                f"like 224|24:k3e6-k5e3|..., got {len(parts)} parts"
            )
        try:
            res = int(parts[0])
        except ValueError:
            raise ValueError(f"macro: resolution must be an integer, got {parts[0]!r}") from None
        if res not in RESOLUTIONS:
            raise ValueError(f"macro: resolution {res} not in {RESOLUTIONS}")
        vec = [RESOLUTIONS.index(res)]
        for s, (part, (_, widths)) in enumerate(zip(parts[1:], STAGES), start=1):
            width_s, sep, ops_s = part.partition(":")
            if not sep:
                raise ValueError(f"macro: stage {s} must read width:op-op..., got {part!r}")
            if not width_s.isdigit() or int(width_s) not in widths:
                raise ValueError(f"macro: stage {s} width {width_s!r} not in {widths}")
            ops = ops_s.split("-")
            if not 1 <= len(ops) <= MAX_DEPTH:
                raise ValueError(f"macro: stage {s} must have 1 to {MAX_DEPTH} layers, got {len(ops)}")
            for op in ops:
                if op not in OPS:
                    raise ValueError(f"macro: unknown op {op!r} in stage {s}; ops are {', '.join(OPS)}")
            if ops[0] == "skip":
                raise ValueError(f"macro: the first layer of stage {s} cannot be skip (it changes shape)")
            op_ids = [OPS.index(o) for o in ops] + [0] * (MAX_DEPTH - len(ops))
            vec += [len(ops) - 1, widths.index(int(width_s))] + op_ids
        return self.decode(vec)

    def sample(self, rng: np.random.Generator) -> Arch:
        return self.decode([int(rng.integers(c)) for c in self.cardinalities])

    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch:
        vec = self.encode(arch)
        cards = self.cardinalities
        # positions that matter: resolution, every depth and width, ops of layers within depth
        live = [0]
        for s in range(len(STAGES)):
            base = 1 + s * _PER_STAGE
            live += [base, base + 1] + [base + 2 + i for i in range(int(vec[base]) + 1)]
        pos = live[int(rng.integers(len(live)))]
        vec[pos] = (vec[pos] + int(rng.integers(1, cards[pos]))) % cards[pos]
        return self.decode(vec)

    def encode(self, arch: Arch) -> np.ndarray:
        self._check_space(arch)
        return np.array(self._vector_of(arch.spec), dtype=np.int64)

    def decode(self, vector: Sequence[int] | np.ndarray) -> Arch:
        vec = check_vector(vector, self.cardinalities, self.name)
        parts = [str(RESOLUTIONS[vec[0]])]
        for s, (_, widths) in enumerate(STAGES):
            base = 1 + s * _PER_STAGE
            depth = vec[base] + 1
            ops = [OPS[v] for v in vec[base + 2 : base + 2 + depth]]
            parts.append(f"{widths[vec[base + 1]]}:{'-'.join(ops)}")
        return Arch(self.name, "|".join(parts))

    def _vector_of(self, spec: str) -> list[int]:
        parts = spec.split("|")
        vec = [RESOLUTIONS.index(int(parts[0]))]
        for part, (_, widths) in zip(parts[1:], STAGES):
            width_s, _, ops_s = part.partition(":")
            ops = ops_s.split("-")
            vec += [len(ops) - 1, widths.index(int(width_s))]
            vec += [OPS.index(o) for o in ops] + [0] * (MAX_DEPTH - len(ops))
        return vec

    def stages(self, arch: Arch) -> list[tuple[int, int, list[str]]]:
        """``(stride, width, ops)`` of each stage of ``arch``."""
        self._check_space(arch)
        out = []
        for part, (stride, _) in zip(arch.spec.split("|")[1:], STAGES):
            width_s, _, ops_s = part.partition(":")
            out.append((stride, int(width_s), ops_s.split("-")))
        return out

    def input_shape(self, arch: Arch) -> tuple[int, int, int, int]:
        self._check_space(arch)
        res = int(arch.spec.split("|", 1)[0])
        return (1, 3, res, res)

    def to_torch(self, arch: Arch, num_classes: int | None = None) -> torch.nn.Module:
        from hwnas.nets.macro_net import MacroNetwork

        return MacroNetwork(self.stages(arch), num_classes=num_classes or self.num_classes)
