"""The evaluator interface: an architecture in, its metrics out."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any

from hwnas.space.base import Arch


@dataclass(frozen=True)
class Metrics:
    """What an evaluation found about one architecture.

    Attributes:
        accuracy: top-1 accuracy in percent (higher is better).
        cost_s: wall time the evaluation took (training time for trained evaluators; 0 for a
            table lookup), so searches can report what they spent.
        source: where the accuracy comes from (``"tabular:nb201/cifar10"``, ``"train:digits"``...).
        extra: anything else the evaluator measured (loss, epochs, proxy settings), JSON-able.
    """

    accuracy: float
    cost_s: float = 0.0
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class Evaluator(abc.ABC):
    """Scores architectures of one search space.

    Contract:
        * ``evaluate(arch)`` returns :class:`Metrics` or raises ``ValueError`` with a one-line
          message for an architecture it cannot score (another space, say).
        * Evaluators with randomness take a seed in their constructor; the same seed and
          architecture give the same metrics where the underlying computation allows it.
        * ``evaluate`` may be called from several processes at once (each with its own instance).
    """

    #: Short name used by the CLI (``--evaluator``).
    name: str = ""

    @abc.abstractmethod
    def evaluate(self, arch: Arch) -> Metrics:
        """Metrics of ``arch``."""
