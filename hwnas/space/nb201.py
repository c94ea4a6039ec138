"""The NAS-Bench-201 cell space (micro search space).

One cell of 4 nodes is searched and reused everywhere in the network: node 0 is the cell input,
node ``j`` sums one operation applied to every earlier node ``i < j``, node 3 is the output. That is
6 edges with 5 operations each, 5**6 = 15,625 architectures. The standard string lists the edges
node by node::

    |op~0|+|op~0|op~1|+|op~0|op~1|op~2|

Indices follow NAS-Bench-201's own order (``arch_idx``), which is not lexicographic; the order is
shipped in ``data/nb201_order.u16.gz`` (see ``data/README.md`` for its provenance).

Example:
    >>> import numpy as np
    >>> from hwnas.space import NB201Space
    >>> space = NB201Space()
    >>> space.size
    15625
    >>> arch = space.from_index(0)
    >>> arch.spec
    '|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|'
    >>> space.index(arch), space.key(arch)
    (0, 'nb201-00000')
"""

from __future__ import annotations

import functools
import gzip
from importlib import resources
from typing import TYPE_CHECKING, Iterator, Sequence

import numpy as np

from hwnas.space.base import Arch, SearchSpace, check_vector
from hwnas.space.nb201_ops import EDGES, OPS

if TYPE_CHECKING:
    import torch

N_ARCHS = len(OPS) ** len(EDGES)


def _code(ops: Sequence[int]) -> int:
    return sum(int(o) * len(OPS) ** i for i, o in enumerate(ops))


def _ops_of_code(code: int) -> list[int]:
    return [(code // len(OPS) ** i) % len(OPS) for i in range(len(EDGES))]


def format_arch(ops: Sequence[int]) -> str:
    """Standard NB201 string of 6 op indices (edge order of :data:`EDGES`)."""
    parts, e = [], 0
    for node in (1, 2, 3):
        parts.append("|" + "|".join(f"{OPS[ops[e + i]]}~{i}" for i in range(node)) + "|")
        e += node
    return "+".join(parts)


class NB201Space(SearchSpace):
    """NAS-Bench-201's cell space with the standard CIFAR network.

    Args:
        channels: stem width C; stages run at C, 2C, 4C (16 in NAS-Bench-201).
        cells_per_stage: N cells per stage (5 in NAS-Bench-201).
        num_classes: classifier outputs (10 for CIFAR-10).
        resolution: input height and width (32).
    """

    name = "nb201"

    def __init__(
        self, channels: int = 16, cells_per_stage: int = 5, num_classes: int = 10, resolution: int = 32
    ) -> None:
        if channels < 1 or cells_per_stage < 1 or num_classes < 1 or resolution < 4:
            raise ValueError("nb201: channels, cells_per_stage, num_classes must be >= 1, resolution >= 4")
        self.channels = channels
        self.cells_per_stage = cells_per_stage
        self.num_classes = num_classes
        self.resolution = resolution

    # -- index order -------------------------------------------------------------------------
    @functools.cached_property
    def _order(self) -> tuple[np.ndarray, np.ndarray]:
        raw = resources.files("hwnas.space").joinpath("data/nb201_order.u16.gz").read_bytes()
        codes = np.frombuffer(gzip.decompress(raw), dtype="<u2").astype(np.int64)
        if codes.shape != (N_ARCHS,):
            raise RuntimeError("hwnas/space/data/nb201_order.u16.gz is damaged: reinstall hwnas")
        index_of_code = np.empty(N_ARCHS, dtype=np.int64)
        index_of_code[codes] = np.arange(N_ARCHS)
        return codes, index_of_code

    def index(self, arch: Arch | str) -> int:
        """NAS-Bench-201 ``arch_idx`` of an architecture."""
        arch = self._as_arch(arch)
        return int(self._order[1][_code(self.encode(arch))])

    def from_index(self, idx: int) -> Arch:
        """Architecture with NAS-Bench-201 ``arch_idx`` ``idx``."""
        if not 0 <= int(idx) < N_ARCHS:
            raise ValueError(f"nb201: index must be in [0, {N_ARCHS}), got {idx}")
        return self.decode(_ops_of_code(int(self._order[0][int(idx)])))

    # -- SearchSpace -------------------------------------------------------------------------
    @property
    def size(self) -> int:
        return N_ARCHS

    @property
    def is_finite_enumerable(self) -> bool:
        return True

    def enumerate(self) -> Iterator[Arch]:
        for idx in range(N_ARCHS):
            yield self.from_index(idx)

    @property
    def cardinalities(self) -> tuple[int, ...]:
        return (len(OPS),) * len(EDGES)

    def parse(self, text: str) -> Arch:
        text = text.strip()
        nodes = text.split("+")
        if len(nodes) != 3:
            raise ValueError(f"nb201: expected 3 nodes joined by '+' like |op~0|+|op~0|op~1|+|..., got {text!r}")
        ops: list[int] = []
        for j, node in enumerate(nodes, start=1):
            if not (node.startswith("|") and node.endswith("|")):
                raise ValueError(f"nb201: node {j} must be written |op~i|...|, got {node!r}")
            edges = node[1:-1].split("|")
            if len(edges) != j:
                raise ValueError(f"nb201: node {j} must have {j} edges, got {len(edges)} in {node!r}")
            for i, edge in enumerate(edges):
                op, sep, src = edge.partition("~")
                if not sep or src != str(i):
                    raise ValueError(f"nb201: edge {edge!r} of node {j} must read op~{i}")
                if op not in OPS:
                    raise ValueError(f"nb201: unknown op {op!r}; ops are {', '.join(OPS)}")
                ops.append(OPS.index(op))
        return Arch(self.name, format_arch(ops))

    def sample(self, rng: np.random.Generator) -> Arch:
        return self.decode(rng.integers(0, len(OPS), size=len(EDGES)))

    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch:
        vec = self.encode(arch)
        pos = int(rng.integers(len(EDGES)))
        vec[pos] = (vec[pos] + int(rng.integers(1, len(OPS)))) % len(OPS)
        return self.decode(vec)

    def encode(self, arch: Arch) -> np.ndarray:
        self._check_space(arch)
        ops = [t.split("~")[0] for t in arch.spec.replace("+", "").split("|") if t]
        return np.array([OPS.index(o) for o in ops], dtype=np.int64)

    def decode(self, vector: Sequence[int] | np.ndarray) -> Arch:
        return Arch(self.name, format_arch(check_vector(vector, self.cardinalities, self.name)))

    def key(self, arch: Arch) -> str:
        return f"nb201-{self.index(arch):05d}"

    def arch_features(self, arch: Arch) -> np.ndarray:
        """One-hot op of each edge, then the cell's liveness and path features
        (:func:`hwnas.space.nb201_cell.liveness_features`)."""
        from hwnas.space.nb201_cell import liveness_features

        ops = [OPS[o] for o in self.encode(arch)]
        return np.concatenate([super().arch_features(arch), liveness_features(ops)]).astype(np.float32)

    def input_shape(self, arch: Arch) -> tuple[int, int, int, int]:
        return (1, 3, self.resolution, self.resolution)

    def to_torch(self, arch: Arch, num_classes: int | None = None) -> torch.nn.Module:
        from hwnas.nets.nb201_net import NB201Network

        self._check_space(arch)
        return NB201Network(
            [OPS[o] for o in self.encode(arch)],
            channels=self.channels,
            cells_per_stage=self.cells_per_stage,
            num_classes=num_classes or self.num_classes,
        )

    def _as_arch(self, arch: Arch | str) -> Arch:
        return self.parse(arch) if isinstance(arch, str) else arch
