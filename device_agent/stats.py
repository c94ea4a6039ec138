"""Summary statistics of latency samples, with a distribution-free confidence interval."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

#: Confidence level of :attr:`Stats.ci_low` / :attr:`Stats.ci_high`.
CI_LEVEL = 0.95


@dataclass(frozen=True)
class Stats:
    """Statistics of ``n`` latency samples, in the samples' unit (milliseconds in this package).

    Attributes:
        n: number of samples.
        median: sample median.
        p90, p99: 90th / 99th percentiles (numpy's linear interpolation).
        mean: arithmetic mean.
        std: sample standard deviation (ddof=1); 0.0 for a single sample.
        min, max: extremes.
        ci_low, ci_high: distribution-free 95% confidence interval of the median: order statistics
            ``x(j)`` and ``x(n-j+1)`` with the largest ``j`` such that the binomial coverage
            ``1 - 2 P(Binom(n, 1/2) <= j-1)`` is at least 95%. For ``n <= 5`` no pair reaches 95%
            and the interval falls back to ``[min, max]`` (coverage ``1 - 2**(1-n)``).
    """

    n: int
    median: float
    p90: float
    p99: float
    mean: float
    std: float
    min: float
    max: float
    ci_low: float
    ci_high: float

    def to_dict(self) -> dict[str, Any]:
        """All fields as a dict."""
        return asdict(self)


def median_ci_ranks(n: int, level: float = CI_LEVEL) -> tuple[int, int] | None:
    """1-based ranks ``(j, n-j+1)`` of the distribution-free CI of the median.

    Returns the narrowest symmetric pair of order statistics whose coverage is at least ``level``,
    computed exactly with integer binomial coefficients, or None when even ``(1, n)`` falls short
    (``n <= 5`` at 95%).

    Example:
        >>> median_ci_ranks(20)
        (6, 15)
        >>> median_ci_ranks(5) is None
        True
    """
    if n < 1:
        raise ValueError(f"need at least one sample, got n={n}")
    total = 1 << n
    # Largest j with 2 * P(B <= j-1) <= 1 - level, i.e. cum(j-1) * 2 <= (1 - level) * 2**n.
    alpha_num = round((1.0 - level) * 1_000_000)  # exact integer comparison below
    best = 0
    cum = 0  # sum_{i < j} C(n, i)
    coef = 1  # C(n, j)
    for j in range(1, n // 2 + 1):
        cum += coef  # now sum_{i <= j-1} C(n, i)
        coef = coef * (n - (j - 1)) // j
        if cum * 2 * 1_000_000 <= alpha_num * total:
            best = j
        else:
            break
    if best == 0:
        return None
    return best, n - best + 1


def summarize(samples_ms: Sequence[float]) -> Stats:
    """Summarises latency samples.

    Args:
        samples_ms: one or more finite samples (any order).

    Returns:
        A :class:`Stats`.

    Raises:
        ValueError: if ``samples_ms`` is empty or holds a non-finite value.

    Example:
        >>> s = summarize([1.0, 2.0, 3.0, 4.0, 5.0])
        >>> s.median, s.ci_low, s.ci_high
        (3.0, 1.0, 5.0)
    """
    x = np.sort(np.asarray(samples_ms, dtype=np.float64).ravel())
    n = int(x.size)
    if n == 0:
        raise ValueError("cannot summarize zero samples")
    if not np.all(np.isfinite(x)):
        raise ValueError("samples must be finite")
    ranks = median_ci_ranks(n)
    if ranks is None:
        lo, hi = x[0], x[-1]
    else:
        lo, hi = x[ranks[0] - 1], x[ranks[1] - 1]
    std = float(np.std(x, ddof=1)) if n > 1 else 0.0
    return Stats(
        n=n,
        median=float(np.median(x)),
        p90=float(np.percentile(x, 90)),
        p99=float(np.percentile(x, 99)),
        mean=float(np.mean(x)),
        std=std if math.isfinite(std) else 0.0,
        min=float(x[0]),
        max=float(x[-1]),
        ci_low=float(lo),
        ci_high=float(hi),
    )
