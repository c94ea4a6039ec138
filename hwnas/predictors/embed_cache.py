"""Cache of GNN embeddings, so that ranking a space twice costs one matrix product.

A GNN predictor's embedding of a model does not depend on the device: adapting to a new device
only changes the head. Embeddings are stored per embedding network (its digest, see
:meth:`hwnas.predictors.gnn.GNNPredictor.embedding_digest`) and per model key (ONNX sha256 or
``"space:arch"``), in one ``.npz`` per network (loaded with ``allow_pickle=False``, written
atomically). With the embeddings of all 15,625 NB201 cells cached, predicting or ranking them on
any device adapted from the same base takes milliseconds.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from hwnas.fileio import atomic_savez


class EmbeddingCache:
    """Embeddings by (embedding-network digest, model key).

    Not safe for concurrent writers of the same digest (the last writer wins; nothing is
    corrupted because writes are atomic).
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    def _path(self, digest: str) -> Path:
        return self.folder / f"{digest}.npz"

    def load(self, digest: str) -> dict[str, np.ndarray]:
        """All cached embeddings of one network (empty on a miss or an unreadable file)."""
        try:
            with np.load(self._path(digest), allow_pickle=False) as z:
                keys, emb = z["keys"].tolist(), z["emb"]
        except (OSError, KeyError, ValueError):
            return {}
        return dict(zip((str(k) for k in keys), emb))

    def store(self, digest: str, keys: Sequence[str], emb: np.ndarray) -> None:
        """Add ``emb[i]`` for ``keys[i]`` to the network's file."""
        table = self.load(digest)
        table.update(zip(keys, np.asarray(emb, dtype=np.float64)))
        if not table:
            return
        atomic_savez(self._path(digest), keys=np.array(list(table), dtype=np.str_), emb=np.stack(list(table.values())))
