"""Graphs of candidate networks from their ONNX graphs: encoding, caching, resolving, batching.

* :func:`encode_onnx` turns any ONNX model into a :class:`GraphData` (numpy arrays).
* :class:`ArchEncoder` builds the same graph for an architecture of hwnas's spaces directly, in
  about a millisecond (no torch, no export).
* :class:`GraphCache` keeps encoded graphs on disk (``.npz``, no pickle).
* :class:`GraphResolver` finds the graph of a database row: cache, candidate folders, re-export.
* :func:`to_pyg` / :class:`FeatureScaler` feed graphs to PyTorch Geometric (torch imported lazily).
"""

from __future__ import annotations

from hwnas.graph.arch_encode import ArchEncoder
from hwnas.graph.batch import FeatureScaler, to_pyg
from hwnas.graph.cache import GraphCache, default_cache_dir
from hwnas.graph.data import GraphData
from hwnas.graph.encode import ENCODER_VERSION, GRAPH_FEATURES, NODE_FEATURES, OP_VOCAB, encode_onnx
from hwnas.graph.resolve import GraphResolver

__all__ = [
    "ArchEncoder",
    "ENCODER_VERSION",
    "GRAPH_FEATURES",
    "NODE_FEATURES",
    "OP_VOCAB",
    "FeatureScaler",
    "GraphCache",
    "GraphData",
    "GraphResolver",
    "default_cache_dir",
    "encode_onnx",
    "to_pyg",
]
