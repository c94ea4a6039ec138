"""The search-space interface and the architecture value type.

A search space owns the set of architectures a search may pick from. It turns architectures into
stable strings (for files, databases, manifests) and integer vectors (for strategies and
predictors), samples and mutates them, and builds the PyTorch network of an architecture.
"""

from __future__ import annotations

import abc
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator, Protocol, Sequence, runtime_checkable

import numpy as np

if TYPE_CHECKING:  # torch is imported lazily by the spaces that build networks
    import torch


@dataclass(frozen=True, order=True)
class Arch:
    """One architecture of a named search space.

    An ``Arch`` is an immutable value: ``space`` names the space and ``spec`` is the space's
    canonical string for the architecture, so two ``Arch`` objects are equal exactly when they are
    the same architecture. It is JSON-serialisable via :meth:`to_json` / :meth:`from_json`.

    Build it through the space (``space.parse(text)``, ``space.sample(rng)``), which validates and
    canonicalises the string; the constructor does not validate.
    """

    space: str
    spec: str

    def to_json(self) -> dict[str, str]:
        """Return ``{"space": ..., "arch": ...}``."""
        return {"space": self.space, "arch": self.spec}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Arch:
        """Inverse of :meth:`to_json` (no validation; use ``space.parse`` to validate)."""
        return cls(space=str(obj["space"]), spec=str(obj["arch"]))

    def digest(self, n: int = 12) -> str:
        """First ``n`` hex digits of the sha256 of ``"space:spec"``: stable across runs and hosts."""
        return hashlib.sha256(f"{self.space}:{self.spec}".encode()).hexdigest()[:n]


class SearchSpace(abc.ABC):
    """A set of architectures with a canonical encoding.

    Contract:
        * ``parse(s)`` accepts any string that names an architecture of the space and returns the
          canonical :class:`Arch`; anything else raises ``ValueError`` with a one-line message
          that says what is wrong.
        * ``decode(encode(a)) == a`` and ``parse(a.spec) == a`` for every architecture ``a``.
        * ``sample(rng)`` and ``mutate(a, rng)`` depend only on their arguments (no global RNG):
          the same generator state gives the same architecture. ``mutate`` returns an
          architecture different from ``a``.
        * ``key(a)`` is a short, stable, file-name-safe identifier.
        * Instances are immutable and safe to share between threads.
    """

    #: Short name used in strings, manifests and databases.
    name: str = ""

    @property
    @abc.abstractmethod
    def size(self) -> int:
        """Number of distinct architectures (a Python int: may exceed 2**64)."""

    @property
    def is_finite_enumerable(self) -> bool:
        """Whether :meth:`enumerate` is supported (small enough to list)."""
        return False

    def enumerate(self) -> Iterator[Arch]:
        """Yield every architecture, in the space's index order.

        Raises:
            ValueError: the space is too large to enumerate.
        """
        raise ValueError(f"space {self.name!r} has {self.size:.3g} architectures: too many to enumerate")

    @abc.abstractmethod
    def parse(self, text: str) -> Arch:
        """Validate ``text`` and return the canonical architecture it names."""

    def contains(self, arch: Arch | str) -> bool:
        """Whether ``arch`` (an :class:`Arch` or a string) belongs to this space."""
        if isinstance(arch, Arch):
            if arch.space != self.name:
                return False
            arch = arch.spec
        try:
            return self.parse(arch).spec == arch
        except ValueError:
            return False

    @abc.abstractmethod
    def sample(self, rng: np.random.Generator) -> Arch:
        """Draw an architecture (uniformly over the space's decisions)."""

    @abc.abstractmethod
    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch:
        """Change one decision of ``arch`` and return the (different) result."""

    @abc.abstractmethod
    def encode(self, arch: Arch) -> np.ndarray:
        """Integer vector of the architecture's decisions (dtype int64, fixed length)."""

    @abc.abstractmethod
    def decode(self, vector: Sequence[int] | np.ndarray) -> Arch:
        """Inverse of :meth:`encode`; raises ``ValueError`` for an out-of-range vector."""

    @property
    @abc.abstractmethod
    def cardinalities(self) -> tuple[int, ...]:
        """Number of choices of each position of the integer vector."""

    def arch_features(self, arch: Arch) -> np.ndarray:
        """Float32 features of ``arch`` for predictors, fixed length per space: by default the
        one-hot of each decision of :meth:`encode`. Spaces may add their own (NB201 adds which
        edges do work and how many paths join input and output)."""
        vec = self.encode(arch)
        out = np.zeros(sum(self.cardinalities), dtype=np.float32)
        out[np.cumsum((0,) + self.cardinalities[:-1]) + vec] = 1.0
        return out

    def key(self, arch: Arch) -> str:
        """Short stable identifier, safe as a file name (``<space>-<digest>`` by default)."""
        return f"{self.name}-{arch.digest()}"

    @abc.abstractmethod
    def input_shape(self, arch: Arch) -> tuple[int, int, int, int]:
        """Input tensor shape ``(1, C, H, W)`` of the architecture's network at batch 1."""

    def _check_space(self, arch: Arch) -> None:
        if arch.space != self.name:
            raise ValueError(f"architecture belongs to space {arch.space!r}, not {self.name!r}")


def check_vector(vector: Sequence[int] | np.ndarray, cards: Sequence[int], space: str) -> list[int]:
    """Validate an integer vector against per-position cardinalities and return it as ints."""
    vec = [int(v) for v in np.asarray(vector).ravel()]
    if len(vec) != len(cards):
        raise ValueError(f"{space}: vector must have {len(cards)} entries, got {len(vec)}")
    for i, (v, c) in enumerate(zip(vec, cards)):
        if not 0 <= v < c:
            raise ValueError(f"{space}: vector entry {i} is {v}, must be in [0, {c})")
    return vec


@runtime_checkable
class TorchBuildable(Protocol):
    """A space whose architectures are networks that can be built in PyTorch (NB201, macro);
    separate from :class:`SearchSpace`, so spaces that are not networks (the codesign space of
    network x accelerator pairs) do not pretend to build one."""

    def to_torch(self, arch: Arch, num_classes: int | None = None) -> torch.nn.Module:
        """Build the PyTorch network of ``arch`` (randomly initialised, train mode)."""
        ...
