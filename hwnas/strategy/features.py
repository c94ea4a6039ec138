"""Feature vectors of architectures for the strategies' own surrogate models.

:func:`arch_features` turns a batch of integer vectors (``space.encode``) into a float matrix a
regressor can learn from: the one-hot encoding of every decision, for any space, plus for the
NB201 cell the structure a one-hot encoding hides (BANANAS' path encoding, Whyte et al. 2020, and
counts of the operations on live paths). Pure functions of their inputs: no state, no RNG.

Example:
    >>> import numpy as np
    >>> from hwnas.space import NB201Space
    >>> from hwnas.strategy.features import arch_features
    >>> space = NB201Space()
    >>> arch_features(space, np.array([space.encode(space.from_index(0))])).shape
    (1, 126)
"""

from __future__ import annotations

import numpy as np

from hwnas.space.base import SearchSpace

#: Input-to-output paths of the NB201 cell, as indices into its 6 edges
#: ``(1,0) (2,0) (2,1) (3,0) (3,1) (3,2)``.
NB201_PATHS: tuple[tuple[int, ...], ...] = ((3,), (0, 4), (1, 5), (0, 2, 5))
_NB201_OPS = 5  # none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3


def one_hot(vectors: np.ndarray, cards: tuple[int, ...]) -> np.ndarray:
    """``[n, sum(cards)]`` float32 one-hot encoding of ``[n, len(cards)]`` integer vectors."""
    vectors = np.asarray(vectors, dtype=np.int64).reshape(-1, len(cards))
    offsets = np.concatenate([[0], np.cumsum(cards)[:-1]]).astype(np.int64)
    out = np.zeros((len(vectors), int(sum(cards))), dtype=np.float32)
    rows = np.repeat(np.arange(len(vectors)), len(cards))
    out[rows, (vectors + offsets).ravel()] = 1.0
    return out


def nb201_structure(vectors: np.ndarray) -> np.ndarray:
    """Structure features of NB201 cells, ``[n, 96]`` float32.

    Columns: path encoding (how many live input-to-output paths carry each sequence of non-``none``
    operations: 4 + 16 + 64 columns by path length), the number of live paths, the length of the
    longest live path, and the count of each operation over all edges and over live edges (an edge
    is live when it lies on a path without ``none``).
    """
    v = np.asarray(vectors, dtype=np.int64).reshape(-1, 6)
    n = len(v)
    k = _NB201_OPS - 1  # operations other than none
    blocks = {1: np.zeros((n, k), np.float32), 2: np.zeros((n, k**2), np.float32), 3: np.zeros((n, k**3), np.float32)}
    live_edge = np.zeros((n, 6), dtype=bool)
    n_live = np.zeros(n, np.float32)
    longest = np.zeros(n, np.float32)
    rows = np.arange(n)
    for path in NB201_PATHS:
        ops = v[:, list(path)]
        live = np.all(ops > 0, axis=1)
        code = np.zeros(n, dtype=np.int64)
        for j in range(len(path)):
            code = code * k + np.maximum(ops[:, j] - 1, 0)
        np.add.at(blocks[len(path)], (rows[live], code[live]), 1.0)
        live_edge[:, list(path)] |= live[:, None]
        n_live += live
        longest = np.maximum(longest, live * len(path))
    counts = np.stack([(v == o).sum(1) for o in range(_NB201_OPS)], axis=1).astype(np.float32)
    live_counts = np.stack([((v == o) & live_edge).sum(1) for o in range(_NB201_OPS)], axis=1).astype(np.float32)
    return np.concatenate([blocks[1], blocks[2], blocks[3], n_live[:, None], longest[:, None], counts, live_counts], axis=1)


def arch_features(space: SearchSpace, vectors: np.ndarray) -> np.ndarray:
    """Float32 features of ``[n, len(space.cardinalities)]`` integer vectors of ``space``.

    One-hot for every space; NB201 adds :func:`nb201_structure`.
    """
    cards = tuple(space.cardinalities)
    feats = one_hot(vectors, cards)
    if space.name == "nb201" and cards == (_NB201_OPS,) * 6:
        feats = np.concatenate([feats, nb201_structure(vectors)], axis=1)
    return feats
