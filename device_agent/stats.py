"""Summary statistics of latency samples, with an interval that is labelled as what it is.

Two kinds of sample, two intervals (:attr:`Stats.interval` names which one a value carries):

* ``median-ci95`` (:func:`summarize`, the ``sequential`` protocol): the distribution-free 95% CI
  of the median of back-to-back repeats. Those repeats are correlated and the machine drifts
  between models and runs, so it says little about what a repeat run would give.
* ``repeat-pi95`` (:func:`summarize_rounds`, the ``interleaved`` protocol): a 95% interval for the
  median that a repeat run of the same protocol would report, from the spread between rounds
  (each round visits every model once, at a different time), see :func:`repeat_interval`.
* ``min-max``: too few samples for either (n <= 5); the interval is the samples' range.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

#: Confidence level of :attr:`Stats.ci_low` / :attr:`Stats.ci_high`.
CI_LEVEL = 0.95

#: Labels of :attr:`Stats.interval`.
INTERVAL_MEDIAN_CI = "median-ci95"
INTERVAL_REPEAT = "repeat-pi95"
INTERVAL_MIN_MAX = "min-max"

#: What each label means, for ``--help``, tables and the README.
INTERVAL_MEANING = {
    INTERVAL_MEDIAN_CI: "95% CI of the median of back-to-back repeats (order statistics)",
    INTERVAL_REPEAT: "95% interval for the median of a repeat run (from the spread between rounds)",
    INTERVAL_MIN_MAX: "min-max of the samples (too few for a 95% interval)",
}


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
        ci_low, ci_high: the interval named by ``interval`` (see the module docstring).
        interval: ``median-ci95``, ``repeat-pi95`` or ``min-max``.
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
    interval: str = INTERVAL_MEDIAN_CI

    @property
    def rel_halfwidth(self) -> float:
        """Half the interval's width over the median (0.012 = +-1.2%); inf for a zero median."""
        if self.median <= 0:
            return math.inf
        return (self.ci_high - self.ci_low) / 2.0 / self.median

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
    x = _checked(samples_ms)
    n = int(x.size)
    ranks = median_ci_ranks(n)
    if ranks is None:
        return _stats(x, x.min(), x.max(), INTERVAL_MIN_MAX)
    xs = np.sort(x)
    return _stats(x, xs[ranks[0] - 1], xs[ranks[1] - 1], INTERVAL_MEDIAN_CI)


def median_rel_halfwidths(samples: Sequence[float]) -> tuple[float, float] | None:
    """Relative distances ``(below, above)`` from the median to the ends of its distribution-free
    95% CI (order statistics, as in :func:`summarize`); None when n <= 5."""
    x = _checked(samples)
    ranks = median_ci_ranks(int(x.size))
    if ranks is None:
        return None
    xs = np.sort(x)
    m = float(np.median(x))
    if m <= 0:
        return None
    return (m - float(xs[ranks[0] - 1])) / m, (float(xs[ranks[1] - 1]) - m) / m


def half_change(samples_in_order: Sequence[float]) -> float:
    """``median(second half) / median(first half) - 1`` of a series (0 for fewer than 2)."""
    x = _checked(samples_in_order)
    half = int(x.size) // 2
    if half == 0:
        return 0.0
    first, second = float(np.median(x[:half])), float(np.median(x[-half:]))
    return second / first - 1.0 if first > 0 else 0.0


def half_drift(samples_in_order: Sequence[float]) -> float:
    """``|half_change|``: how far a series moved from its first half to its second."""
    return abs(half_change(samples_in_order))


@dataclass(frozen=True)
class RepeatInterval:
    """A 95% interval for the median that a repeat run would report, and what it is made of.

    All parts are relative (0.01 = 1% of the median), combined in quadrature on each side into a
    log half-width ``w``; the interval is ``[median x exp(-w_below), median x exp(w_above)]``:

    * ``sampling``: the 95% CI of the median of the model's per-round ratios to the reference
      (what more rounds shrink), widened by sqrt(2) because a repeat run's median has an error of
      its own; without a reference, of its raw per-round samples;
    * ``trend``: how far those ratios (or samples) moved from the first half of the rounds to the
      second: rounds close in time are alike, so the CI alone is too narrow when the machine's
      load changes over the batch;
    * ``level``: the same for the reference's median: how well this run pinned the machine's level;
    * ``drift``: the reference's drift while the batch ran (second half against first half);
    * ``history``: the run-to-run spread of the reference's median on this device in earlier runs
      (twice the RMS of the log ratios to up to 5 of them), 0 without history.

    Attributes:
        low, high: the interval, in the samples' unit.
        sampling_below, sampling_above, trend, level, drift, history: the parts.
    """

    low: float
    high: float
    sampling_below: float
    sampling_above: float
    trend: float
    level: float
    drift: float
    history: float

    def ratio_bounds(self, ratio: float) -> tuple[float, float]:
        """The interval of the reference-normalised value ``ratio`` (the model's median ratio to the
        reference): only the ``sampling`` and ``trend`` parts, since dividing removes the level."""
        return (ratio * math.exp(-math.sqrt(2.0 * self.sampling_below**2 + self.trend**2)),
                ratio * math.exp(math.sqrt(2.0 * self.sampling_above**2 + self.trend**2)))


def repeat_interval(samples: Sequence[float], reference: Sequence[float] | None = None,
                    history: Sequence[float] = ()) -> RepeatInterval | None:
    """The ``repeat-pi95`` interval of the ``interleaved`` protocol (see :class:`RepeatInterval`).

    Args:
        samples: the model's per-round samples, in round order.
        reference: the reference's samples of the same rounds (same length and order), or None.
        history: the reference's medians in earlier runs on this device under this protocol.

    Returns:
        The interval, or None when n <= 5 (no 95% pair of order statistics).

    Example:
        >>> ri = repeat_interval([1.0, 1.1, 0.9, 1.0, 1.05, 0.95, 1.0, 1.02])
        >>> round(ri.low, 3), round(ri.high, 3)
        (0.868, 1.152)
    """
    x = _checked(samples)
    m = float(np.median(x))
    level = drift = hist = 0.0
    if reference is not None:
        ref = _checked(reference)
        if ref.size != x.size:
            raise ValueError(f"reference has {ref.size} samples for the model's {x.size}")
        spread = median_rel_halfwidths(x / ref)
        trend = half_drift(x / ref)
        ref_spread = median_rel_halfwidths(ref)
        if ref_spread is not None:
            level = max(ref_spread)
        drift = half_drift(ref)
        ref_median = float(np.median(ref))
        logs = [math.log(ref_median / h) for h in list(history)[-5:] if h > 0]
        if logs:
            hist = 2.0 * math.sqrt(sum(v * v for v in logs) / len(logs))
    else:
        spread = median_rel_halfwidths(x)
        trend = half_drift(x)
    if spread is None:
        return None
    below, above = spread
    shared = trend**2 + 2.0 * level**2 + drift**2 + hist**2
    low = m * math.exp(-math.sqrt(2.0 * below**2 + shared))  # multiplicative: never below 0, however noisy
    high = m * math.exp(math.sqrt(2.0 * above**2 + shared))
    return RepeatInterval(low, high, below, above, trend, level, drift, hist)


#: Two-sided 97.5% quantiles of Student's t for 1..30 degrees of freedom (no scipy on a device).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042)


def t975(dof: float) -> float:
    """Student's t quantile for a two-sided 95% interval with ``dof`` degrees of freedom: exact to
    3 decimals up to 30 (a fractional ``dof`` rounds down, the wider side), the Cornish-Fisher series
    beyond, 1.96 for infinity.

    Example:
        >>> t975(2), t975(2.7), round(t975(100), 3), round(t975(math.inf), 2)
        (4.303, 4.303, 1.984, 1.96)
    """
    if dof < 1:
        raise ValueError(f"t975 needs at least 1 degree of freedom, got {dof}")
    if dof <= len(_T975):
        return _T975[int(dof) - 1]
    z = 1.959964
    return z + (z**3 + z) / (4 * dof) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * dof**2)


@dataclass(frozen=True)
class Tracking:
    """How far a network's log ratio to the panel level moves between batches.

    Model: in a batch, each network's log median is its own constant, plus the batch's level, plus a
    term of standard deviation ``sd`` of its own (how it "tracks" the machine's level, independent
    between networks and batches). The panel level is the mean of ``panel_size`` references' logs,
    so a network's log ratio to it varies with ``sd * sqrt(1 + 1 / panel_size)`` between batches,
    and the difference of two runs with ``sqrt(2)`` times that.

    Attributes:
        sd: the per-network standard deviation (log units), estimated from the references.
        dof: its degrees of freedom (:func:`t975` widens the interval by how few there are).
        panel_size: the references in a batch's panel.
    """

    sd: float
    dof: float
    panel_size: int

    def halfwidth(self) -> float:
        """The 95% half-width (log units) of the difference of two runs' log ratios to the panel."""
        return t975(self.dof) * math.sqrt(2.0 * (1.0 + 1.0 / self.panel_size)) * self.sd


def tracking_sd(members: Sequence[dict[str, float]]) -> Tracking | None:
    """:class:`Tracking` from the references' log ratios to their batch's panel level (``members``:
    one ``{reference: log ratio}`` per batch). None with fewer than two batches of a reference.

    Each reference's deviations from its mean over batches are pooled. A reference is a member of
    the level it is divided by, so its ratio varies with ``sd * sqrt(1 - 1/k)`` (k references per
    batch) and each batch's ratios sum to zero: the estimate divides by ``(1 - 1/k)`` times the
    naive degrees of freedom, which is unbiased for ``sd`` squared under :class:`Tracking`'s model.

    Example:
        >>> t = tracking_sd([{"a": -1.0, "b": 1.0}, {"a": -1.02, "b": 1.02}])
        >>> round(t.sd, 4), t.dof, t.panel_size
        (0.02, 1.0, 2)
    """
    by: dict[str, list[float]] = {}
    for batch in members:
        for key, value in batch.items():
            by.setdefault(key, []).append(float(value))
    dev2, naive = 0.0, 0
    for values in by.values():
        if len(values) > 1:
            mean = sum(values) / len(values)
            dev2 += sum((v - mean) ** 2 for v in values)
            naive += len(values) - 1
    if not naive:
        return None
    k = max(2, round(sum(len(b) for b in members) / len(members)))
    dof = naive * (1.0 - 1.0 / k)
    return Tracking(math.sqrt(dev2 / dof), dof, k)


def ratio_interval(samples: Sequence[float], reference: Sequence[float],
                   tracking: Tracking | None = None) -> tuple[float, float, float] | None:
    """``median(samples) / median(reference)`` and a 95% interval for it in a repeat run.

    For drift-corrected samples of one batch (:mod:`device_agent.drift`): the drift is already
    divided out, so the two medians are taken over all their rounds rather than round by round
    (the reference's noise then enters once, through its median, not once per round). The
    interval's parts, in quadrature in log space: the 95% CIs of both medians, each x sqrt(2) as a
    repeat run has errors of its own, the trend of the samples over the batch, and ``tracking``
    (:meth:`Tracking.halfwidth`: how far a network's ratio to the panel moves between two runs,
    with Student's t for the few batches it is estimated from).

    Returns:
        ``(ratio, low, high)``, or None when either series has 5 samples or fewer.

    Example:
        >>> r, lo, hi = ratio_interval([2.0, 2.1, 1.9, 2.0, 2.05, 1.95, 2.0, 2.02], [1.0] * 8)
        >>> round(r, 3), round(lo, 3), round(hi, 3)
        (2.0, 1.863, 2.147)
    """
    x, ref = _checked(samples), _checked(reference)
    mine, theirs = median_rel_halfwidths(x), median_rel_halfwidths(ref)
    if mine is None or theirs is None:
        return None
    ratio = float(np.median(x)) / float(np.median(ref))
    moves = tracking.halfwidth() if tracking is not None else 0.0
    shared = half_drift(x) ** 2 + 2.0 * max(theirs) ** 2 + moves**2
    low = ratio * math.exp(-math.sqrt(2.0 * mine[0] ** 2 + shared))
    high = ratio * math.exp(math.sqrt(2.0 * mine[1] ** 2 + shared))
    return ratio, low, high


def summarize_rounds(samples_in_round_order: Sequence[float], reference: Sequence[float] | None = None,
                     history: Sequence[float] = ()) -> Stats:
    """Summarises the per-round samples of the ``interleaved`` protocol.

    Like :func:`summarize`, but the interval is :func:`repeat_interval` (``repeat-pi95``); ``min-max``
    for n <= 5.

    Example:
        >>> s = summarize_rounds([1.0, 1.1, 0.9, 1.0, 1.05, 0.95, 1.0, 1.02])
        >>> s.interval, s.median
        ('repeat-pi95', 1.0)
    """
    return stats_of_rounds(samples_in_round_order, repeat_interval(samples_in_round_order, reference, history))


def stats_of_rounds(samples_in_round_order: Sequence[float], interval: RepeatInterval | None) -> Stats:
    """:func:`summarize_rounds` with the interval already computed (``min-max`` when it is None)."""
    x = _checked(samples_in_round_order)
    if interval is None:
        return _stats(x, x.min(), x.max(), INTERVAL_MIN_MAX)
    return _stats(x, interval.low, interval.high, INTERVAL_REPEAT)


def _checked(samples_ms: Sequence[float]) -> np.ndarray:
    x = np.asarray(samples_ms, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("cannot summarize zero samples")
    if not np.all(np.isfinite(x)):
        raise ValueError("samples must be finite")
    return x


def _stats(x: np.ndarray, low: float, high: float, interval: str) -> Stats:
    n = int(x.size)
    std = float(np.std(x, ddof=1)) if n > 1 else 0.0
    return Stats(
        n=n,
        median=float(np.median(x)),
        p90=float(np.percentile(x, 90)),
        p99=float(np.percentile(x, 99)),
        mean=float(np.mean(x)),
        std=std if math.isfinite(std) else 0.0,
        min=float(np.min(x)),
        max=float(np.max(x)),
        ci_low=float(low),
        ci_high=float(high),
        interval=interval,
    )
