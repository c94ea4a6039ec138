"""Constraints and scalar objectives of a budgeted search.

A :class:`Constraint` maps a candidate's measured or predicted values to a number that is <= 0
when the candidate is feasible. Hard constraints reject infeasible candidates before any training;
soft constraints fold the violation into the objective instead: MnasNet's reward
``ACC · (LAT / T)^w`` (Tan et al., 2019; ``w = -0.07`` by default) or a user-weighted sum.

Strings from the command line become these objects in :func:`parse_budget` and
:func:`parse_weights`, which refuse malformed input with one line that says what to fix.

Example:
    >>> from hwnas.constraints import Constraint, Objective
    >>> budget = Constraint("latency_ms", 5.0)
    >>> budget.value({"latency_ms": 4.0}), budget.feasible({"latency_ms": 6.0})
    (-1.0, False)
    >>> round(Objective(budget, mode="soft").score({"accuracy": 90.0, "latency_ms": 10.0}), 3)
    85.737
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Mapping, Sequence

MODES = ("hard", "soft")
#: Metric names a weighted objective may use (higher accuracy is better, the rest lower).
WEIGHTABLE = ("accuracy", "latency_ms", "energy_mj", "train_time_s", "params", "flops")


@dataclass(frozen=True)
class Constraint:
    """``metric <= bound``; :meth:`value` is ``metric - bound`` (feasible iff <= 0)."""

    metric: str
    bound: float

    def __post_init__(self) -> None:
        if not (isinstance(self.bound, (int, float)) and math.isfinite(self.bound) and self.bound > 0):
            raise ValueError(f"the bound on {self.metric} must be a positive number, got {self.bound!r}")

    def value(self, metrics: Mapping[str, float]) -> float:
        """How far ``metrics`` is over the bound (negative: under it).

        Raises:
            ValueError: the metric is missing.
        """
        if self.metric not in metrics:
            raise ValueError(f"constraint on {self.metric!r}, but the candidate has no such metric")
        return float(metrics[self.metric]) - float(self.bound)

    def feasible(self, metrics: Mapping[str, float]) -> bool:
        return self.value(metrics) <= 0.0


@dataclass(frozen=True)
class Objective:
    """Scalar score to maximise, from accuracy and a latency constraint.

    Args:
        constraint: the latency budget (``Constraint("latency_ms", T)``), or None for none.
        mode: ``hard``: infeasible candidates score None (rejected) and feasible ones score their
            accuracy; ``soft``: every candidate scores, by ``weights`` if given, else by MnasNet's
            ``accuracy · (latency / T)^w``.
        w: MnasNet exponent (negative; -0.07 by default).
        weights: for a weighted sum, ``{metric: weight}``; accuracy should weigh positively and
            costs negatively.
    """

    constraint: Constraint | None = None
    mode: str = "hard"
    w: float = -0.07
    weights: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"--constraint must be one of {', '.join(MODES)}, got {self.mode!r}")
        if not (math.isfinite(self.w) and self.w <= 0):
            raise ValueError(f"the MnasNet exponent w must be a number <= 0, got {self.w!r}")
        if self.mode == "soft" and self.constraint is None and not self.weights:
            raise ValueError("a soft constraint needs --latency-budget-ms or --weights")

    def score(self, metrics: Mapping[str, float]) -> float | None:
        """Higher is better; None means rejected (hard constraint violated)."""
        acc = float(metrics["accuracy"])
        if self.mode == "hard":
            if self.constraint is not None and not self.constraint.feasible(metrics):
                return None
            return acc
        if self.weights:
            missing = [k for k in self.weights if k not in metrics]
            if missing:
                raise ValueError(f"--weights names {', '.join(missing)}, which this search does not measure")
            return float(sum(wt * float(metrics[k]) for k, wt in self.weights.items()))
        assert self.constraint is not None
        lat = float(metrics[self.constraint.metric])
        if not lat > 0:
            raise ValueError(f"latency must be positive for the MnasNet reward, got {lat!r}")
        return acc * (lat / self.constraint.bound) ** self.w


_BUDGET = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(ms)?\s*$")


def parse_budget(text: str | float) -> float:
    """``"5"``, ``"5ms"``, ``"0.8 ms"`` -> milliseconds; anything else (negative, zero, NaN, words)
    raises ``ValueError`` with a one-line message."""
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        m = _BUDGET.match(str(text))
        if not m:
            raise ValueError(f"--latency-budget-ms must be a positive number of milliseconds like 5 or 5ms, got {text!r}")
        value = float(m.group(1))
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"--latency-budget-ms must be a positive number of milliseconds, got {text!r}")
    return value


def parse_weights(text: str, weightable: Sequence[str] = WEIGHTABLE,
                  example: str = "accuracy=1,latency_ms=-0.5") -> dict[str, float]:  # fmt: skip
    """``"accuracy=1,latency_ms=-0.5"`` -> ``{"accuracy": 1.0, "latency_ms": -0.5}``, over the
    metrics ``weightable`` (a search's by default; codesign passes its own).

    Raises:
        ValueError: one line naming the bad item (not ``name=number``, an unknown metric, a
            repeated name, a non-finite number, or all weights zero).
    """
    out: dict[str, float] = {}
    for item in (p.strip() for p in str(text).split(",")):
        if not item:
            continue
        name, sep, num = item.partition("=")
        name = name.strip()
        if not sep:
            raise ValueError(f"--weights items must read metric=number, got {item!r}")
        if name not in weightable:
            raise ValueError(f"--weights: unknown metric {name!r}; use {', '.join(weightable)}")
        if name in out:
            raise ValueError(f"--weights: {name} given twice")
        try:
            value = float(num)
        except ValueError:
            raise ValueError(f"--weights: {name}={num.strip()!r} is not a number") from None
        if not math.isfinite(value):
            raise ValueError(f"--weights: {name} must be a finite number, got {num.strip()!r}")
        out[name] = value
    if not out or all(v == 0 for v in out.values()):
        raise ValueError(f"--weights needs at least one non-zero weight, e.g. {example}")
    return out
