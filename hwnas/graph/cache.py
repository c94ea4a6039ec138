"""A folder of encoded graphs, one ``.npz`` file per model, so that encoding happens once.

Keys are a model's ONNX sha256 (hex) or ``"space:arch"``. The sha256 is the file name itself;
any other key is hashed (``k-<sha256 of the key>.npz``), so every key gives a safe, fixed-length
name. Each file holds numeric arrays and numpy unicode arrays only, and is read with
``allow_pickle=False``; it records :data:`~hwnas.graph.encode.ENCODER_VERSION` and its key, and a
file of another encoder version, of another key, or that cannot be read is a miss (the next
``put`` overwrites it). A graph's
:attr:`~hwnas.graph.data.GraphData.arch_features` are kept when it has them; a file from before
they existed reads back without them, which is what it held (the resolver attaches them to every
graph it returns, cached or not, so no version bump was needed). Writes go to a temporary file in
the same folder and are renamed into place with ``os.replace``, so readers (other processes
included) never see a half-written file.

Example:
    >>> import tempfile
    >>> from hwnas.graph.cache import GraphCache
    >>> cache = GraphCache(tempfile.mkdtemp())
    >>> cache.get("nb201:|none~0|+|none~0|none~1|+|none~0|none~1|none~2|") is None
    True
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import zipfile
from pathlib import Path

import numpy as np

from hwnas.fileio import atomic_savez
from hwnas.graph.data import GraphData
from hwnas.graph.encode import ENCODER_VERSION

_SHA256 = re.compile(r"[0-9a-f]{64}")


def default_cache_dir() -> Path:
    """``$HWNAS_CACHE/graphs`` (``.hwnas/cache/graphs`` when unset), read when called."""
    return Path(os.environ.get("HWNAS_CACHE", ".hwnas/cache")) / "graphs"


def _canonical(key: str) -> str:
    """sha256 keys in lower case; other keys as given."""
    return key.lower() if _SHA256.fullmatch(key.lower()) else key


class GraphCache:
    """Encoded graphs on disk, keyed by ONNX sha256 or ``"space:arch"``.

    Contract:
        * ``get(key)`` returns a graph equal (same arrays, keys, op types, flops, params) to the one
          last ``put`` under ``key``, or ``None``: never raises for a missing, damaged, foreign or
          outdated file.
        * ``put`` is atomic and safe to call from several processes at once (the last one wins;
          all write the same content for the same key).
        * The object holds no state but its folder; it is safe to share between threads.

    Args:
        folder: where the files live (created on the first ``put``).
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    def path(self, key: str) -> Path:
        """File that holds ``key``'s graph."""
        k = _canonical(key)
        name = k if _SHA256.fullmatch(k) else "k-" + hashlib.sha256(k.encode()).hexdigest()
        return self.folder / f"{name}.npz"

    def get(self, key: str) -> GraphData | None:
        """The cached graph of ``key``, or ``None`` on a miss."""
        path = self.path(key)
        try:
            with np.load(path, allow_pickle=False) as z:
                if int(z["encoder_version"]) != ENCODER_VERSION or str(z["key"]) != _canonical(key):
                    return None
                if "node_names" not in z.files:  # written before node names were kept
                    return None
                return GraphData(
                    x=z["x"],
                    edge_index=z["edge_index"],
                    graph_features=z["graph_features"],
                    op_types=tuple(sys.intern(str(s)) for s in z["op_types"].tolist()),
                    node_keys=tuple(sys.intern(str(s)) for s in z["node_keys"].tolist()),
                    node_names=tuple(str(s) for s in z["node_names"].tolist()),
                    flops=int(z["flops"]),
                    params=int(z["params"]),
                    arch_features=z["arch_features"] if "arch_features" in z.files else np.zeros(0, np.float32),
                )
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile):
            return None

    def put(self, key: str, graph: GraphData) -> Path:
        """Store ``graph`` under ``key`` (atomically); returns the file written."""
        path = self.path(key)
        self.folder.mkdir(parents=True, exist_ok=True)
        arrays = {
            "encoder_version": np.array(ENCODER_VERSION, dtype=np.int64),
            "key": np.array(_canonical(key), dtype=np.str_),
            "x": np.asarray(graph.x, dtype=np.float32),
            "edge_index": np.asarray(graph.edge_index, dtype=np.int64).reshape(2, -1),
            "graph_features": np.asarray(graph.graph_features, dtype=np.float32),
            "op_types": np.array(graph.op_types, dtype=np.str_).reshape(-1),
            "node_keys": np.array(graph.node_keys, dtype=np.str_).reshape(-1),
            "node_names": np.array(graph.node_names, dtype=np.str_).reshape(-1),
            "flops": np.array(graph.flops, dtype=np.int64),
            "params": np.array(graph.params, dtype=np.int64),
            "arch_features": np.asarray(graph.arch_features, dtype=np.float32).reshape(-1),
        }
        atomic_savez(path, **arrays)
        return path

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None

    def __repr__(self) -> str:
        return f"GraphCache({str(self.folder)!r})"
