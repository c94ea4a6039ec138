"""NAS-Bench-201's cell vocabulary: its operations and edges (a leaf module, shared by the space,
the cell's liveness analysis and the torch network, none of which import each other for it)."""

from __future__ import annotations

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: (to_node, from_node) of each of the 6 edges, in the order of the string and of the vector.
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))

__all__ = ["EDGES", "OPS"]
