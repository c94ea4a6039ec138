"""The machine's level at every visit of an interleaved batch, from the visits next to it in time.

Why: on a shared machine the speed of every model moves together, and fast: another tenant's job
on the sibling hyper-thread, the clock, the caches. In a batch of 13 models a round lasts about half
a second, so one reference visit per round is often far in time from the model visit it is divided
into, and on this project's 2-core machine the level moved by 20-40% within a round. Every visit of
*every* model of the batch is a probe of that level, though: ``x / median(x)`` of the model it
belongs to. The level at a visit is the median of those probes among its nearest visits in time,
leaving out the visit's own model (its own noise must not explain itself away). Dividing the
samples by it removes the drift that the batch's models share and keeps what is each model's own.

This needs no extra visits, so it costs no time. It cannot remove what all visits of a batch share
(a whole batch run on a slower machine): between runs that is what the reference model is for;
:mod:`device_agent.interleave` divides the corrected medians of models and reference.

Example:
    >>> import numpy as np
    >>> r = np.arange(12)
    >>> t = [3.0 * r, 3.0 * r + 1, 3.0 * r + 2]  # three models visited in turns
    >>> level = 1 + 0.3 * r / 11  # the machine slows by 30% over the batch
    >>> x = [2.0 * level * np.array([1.0, 1.02] * 6), 5.0 * level, 1.0 * level]  # model 0: 2% noise
    >>> spread = lambda v: round(float(np.ptp(v) / np.median(v)), 3)
    >>> [spread(xi) for xi in x]
    [0.281, 0.261, 0.261]
    >>> [spread(xi / li) for xi, li in zip(x, local_levels(t, x))]
    [0.033, 0.014, 0.014]
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

#: Visits on each side of a visit that its level is taken from (other models' visits only).
NEIGHBOURS = 3
#: Passes of (level from medians, medians from corrected samples).
ITERATIONS = 2


def local_levels(times: Sequence[Sequence[float]], samples: Sequence[Sequence[float]], *,
                 neighbours: int = NEIGHBOURS, iterations: int = ITERATIONS) -> list[np.ndarray]:
    """The machine's relative level at every sample of every series (1.0 = the batch's typical level).

    Args:
        times: per series (a model, or the reference), the time of each of its visits, any clock.
        samples: per series, the sample of each visit (same lengths as ``times``), all > 0.
        neighbours: visits taken on each side in time order; visits of the same series in that
            window are skipped, not replaced.
        iterations: passes; each re-estimates every series' median from its corrected samples.

    Returns:
        Per series, an array of levels, one per sample: divide the samples by it. A visit with no
        other series' visit in its window (a batch of one model) gets 1.0, as does every visit
        when there is a single series.

    Raises:
        ValueError: lengths differ, or a sample is not positive and finite.
    """
    if len(times) != len(samples):
        raise ValueError(f"{len(times)} time series for {len(samples)} sample series")
    t_parts, x_parts, owner_parts = [], [], []
    for i, (t, x) in enumerate(zip(times, samples)):
        t_arr, x_arr = np.asarray(t, dtype=np.float64), np.asarray(x, dtype=np.float64)
        if t_arr.shape != x_arr.shape or t_arr.ndim != 1:
            raise ValueError(f"series {i}: {t_arr.size} times for {x_arr.size} samples")
        if x_arr.size and not (np.all(np.isfinite(x_arr)) and np.all(x_arr > 0)):
            raise ValueError(f"series {i}: samples must be positive and finite")
        t_parts.append(t_arr)
        x_parts.append(x_arr)
        owner_parts.append(np.full(t_arr.size, i))
    if not t_parts or sum(p.size for p in t_parts) == 0:
        return [np.ones(0) for _ in t_parts]
    t_all, x_all, owner = (np.concatenate(p) for p in (t_parts, x_parts, owner_parts))
    order = np.argsort(t_all, kind="stable")
    x_sorted, own_sorted = x_all[order], owner[order]
    n = x_sorted.size
    offsets = np.arange(-neighbours, neighbours + 1)
    window = np.arange(n)[:, None] + offsets[None, :]
    inside = (window >= 0) & (window < n)
    window = np.clip(window, 0, n - 1)
    usable = inside & (own_sorted[window] != own_sorted[:, None])
    medians = np.array([np.median(x) if x.size else 1.0 for x in x_parts])
    level = np.ones(n)
    for _ in range(max(1, iterations)):
        probe = x_sorted / medians[own_sorted]
        vals = np.where(usable, probe[window], np.nan)
        has = usable.any(axis=1)
        level = np.ones(n)
        level[has] = np.nanmedian(vals[has], axis=1)
        corrected = x_sorted / level
        medians = np.array([np.median(corrected[own_sorted == i]) if x_parts[i].size else 1.0
                            for i in range(len(x_parts))])
    out = np.empty(n)
    out[order] = level
    return [out[owner == i] for i in range(len(x_parts))]


__all__ = ["ITERATIONS", "NEIGHBOURS", "local_levels"]
