"""Pareto dominance on objective tables: fronts, crowding distance, 2-D hypervolume.

Rows of ``points`` are candidates, columns objectives; ``maximize[j]`` says whether column ``j``
is better high (accuracy) or low (latency). Row ``a`` dominates row ``b`` when it is at least as
good in every column and strictly better in one. Identical rows do not dominate each other (both
stay on the front). Pure functions; NaN values are not allowed.

Example:
    >>> import numpy as np
    >>> from hwnas.strategy.pareto import pareto_front, non_dominated_sort
    >>> pts = np.array([[90.0, 5.0], [92.0, 9.0], [89.0, 6.0], [93.0, 12.0]])  # accuracy, latency
    >>> pareto_front(pts, maximize=[True, False]).tolist()
    [0, 1, 3]
    >>> [f.tolist() for f in non_dominated_sort(pts, [True, False])]
    [[0, 1, 3], [2]]
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def _minimised(points: np.ndarray | Sequence[Sequence[float]], maximize: Sequence[bool]) -> np.ndarray:
    """``points`` as a float matrix in which every column is to be minimised."""
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2:
        raise ValueError(f"points must be a 2-D array (rows: candidates, columns: objectives), got shape {pts.shape}")
    if len(maximize) != pts.shape[1]:
        raise ValueError(f"maximize has {len(maximize)} entries for {pts.shape[1]} objectives")
    if np.isnan(pts).any():
        raise ValueError("points must not contain NaN")
    return np.where(np.asarray(maximize, dtype=bool)[None, :], -pts, pts)


def _front_of(pts: np.ndarray) -> np.ndarray:
    """Indices (ascending) of the non-dominated rows of a minimisation table."""
    order = np.lexsort(pts.T[::-1])  # by first column, ties by the next ones
    front: list[int] = []
    for i in order:
        if front:
            f = pts[front]
            if np.any(np.all(f <= pts[i], axis=1) & np.any(f < pts[i], axis=1)):
                continue
        front.append(int(i))
    return np.sort(np.array(front, dtype=np.int64))


def pareto_front(points: np.ndarray | Sequence[Sequence[float]], maximize: Sequence[bool]) -> np.ndarray:
    """Indices (ascending) of the non-dominated rows of ``points``.

    In lexicographic order a row can only be dominated by rows before it, and a dominated row's
    dominator is dominated by, or is, a front row seen earlier; so each row is checked against the
    front found so far: O(n · front size).
    """
    pts = _minimised(points, maximize)
    if len(pts) == 0:
        return np.zeros(0, dtype=np.int64)
    return _front_of(pts)


def non_dominated_sort(points: np.ndarray | Sequence[Sequence[float]], maximize: Sequence[bool]) -> list[np.ndarray]:
    """Successive Pareto fronts: ``[front 0, front 1, ...]``, each an ascending index array.

    Front 0 is :func:`pareto_front`; front ``k`` is the front of what remains without fronts
    ``0..k-1``. Every row is in exactly one front.
    """
    pts = _minimised(points, maximize)
    left = np.arange(len(pts))
    fronts: list[np.ndarray] = []
    while len(left):
        f = left[_front_of(pts[left])]
        fronts.append(f)
        left = np.setdiff1d(left, f, assume_unique=True)
    return fronts


def crowding_distance(points: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """NSGA-II crowding distance of each row (within one front; boundary rows get ``inf``).

    Per objective, rows are sorted and each inner row adds the gap between its neighbours,
    divided by the objective's range; direction does not matter.
    """
    pts = np.asarray(points, dtype=np.float64)
    n = len(pts)
    dist = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for j in range(pts.shape[1]):
        order = np.argsort(pts[:, j], kind="stable")
        col = pts[order, j]
        span = col[-1] - col[0]
        dist[order[0]] = dist[order[-1]] = np.inf
        if span > 0:
            dist[order[1:-1]] += (col[2:] - col[:-2]) / span
    return dist


def hypervolume_2d(points: np.ndarray | Sequence[Sequence[float]], maximize: Sequence[bool], ref: Sequence[float]) -> float:
    """Area dominated by ``points`` (two objectives) and bounded by the reference point ``ref``.

    ``ref`` is a point worse than every point of interest in both objectives (e.g. the lowest
    accuracy and the highest latency); points not better than ``ref`` in both add nothing.
    """
    pts = _minimised(points, maximize)
    if pts.shape[1] != 2:
        raise ValueError(f"hypervolume_2d needs two objectives, got {pts.shape[1]}")
    r = _minimised(np.asarray([ref], dtype=np.float64), maximize)[0]
    pts = pts[np.all(pts < r, axis=1)]
    if len(pts) == 0:
        return 0.0
    front = pts[_front_of(pts)]
    front = front[np.argsort(front[:, 0], kind="stable")]
    area, prev_y = 0.0, r[1]
    for x, y in front:
        if y < prev_y:
            area += (r[0] - x) * (prev_y - y)
            prev_y = y
    return float(area)
