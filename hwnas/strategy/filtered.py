"""A strategy middleware that never hands out architectures a filter refuses (as NNI's ``Filter``).

:class:`Filtered` asks its inner strategy until an architecture passes ``accept``; each refused one
is told to the inner strategy as rejected (score ``None``, ``metrics["refused"]``) without becoming a
trial, so no evaluation is spent on it and a learning strategy steers away from it. The search uses
it for a partial ``db`` latency table: architectures the table lacks are skipped, never evaluated.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from hwnas.space.base import Arch
from hwnas.strategy.base import Strategy

#: Refusals in a row before :meth:`Filtered.ask` gives up.
MAX_REFUSALS = 20_000


class Filtered(Strategy):
    """``inner`` with ``accept`` applied to every ask (see the module docstring).

    Args:
        inner: the strategy to wrap; its name, space, state and tells are the wrapper's.
        accept: whether an architecture may be handed out.
        reason: what a refusal means, for ``metrics["refused"]`` and the error when every ask is refused.

    Raises (from :meth:`ask`):
        ValueError: :data:`MAX_REFUSALS` refusals in a row.
    """

    def __init__(self, inner: Strategy, accept: Callable[[Arch], bool], reason: str) -> None:
        self.inner = inner
        self.accept = accept
        self.reason = reason
        self.refused = 0

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.inner.name

    @property
    def space(self) -> Any:  # type: ignore[override]
        return self.inner.space

    @property
    def prefilter(self) -> Any:  # type: ignore[override]
        return self.inner.prefilter

    def use_feasibility(self, test: Callable[[Arch], bool], costly: bool = False) -> None:
        self.inner.use_feasibility(test, costly)

    def ask(self) -> Arch:
        for _ in range(MAX_REFUSALS):
            arch = self.inner.ask()
            if self.accept(arch):
                return arch
            self.refused += 1
            self.inner.tell(arch, None, {"refused": self.reason})
        raise ValueError(f"{MAX_REFUSALS} architectures in a row refused ({self.reason}): the search cannot go on")

    def tell(self, arch: Arch, score: float | None, metrics: Mapping[str, Any] | None = None) -> None:
        self.inner.tell(arch, score, metrics)

    def state_dict(self) -> dict[str, Any]:
        return self.inner.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.inner.load_state_dict(state)


__all__ = ["MAX_REFUSALS", "Filtered"]
