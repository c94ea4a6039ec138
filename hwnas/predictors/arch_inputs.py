"""The architecture features a learned predictor reads beside the graph (a leaf module).

:attr:`hwnas.graph.data.GraphData.arch_features` carry the space's own encoding of a model's
architecture (one-hot decisions; for NB201 also which edges are live and the paths between input
and output). A predictor fitted with them records their number (``n_arch_``) and then needs them
for every graph it predicts; one fitted without them (``n_arch_ == 0``, and every predictor file
written before they existed) ignores them, so old files keep working.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from hwnas.graph.data import GraphData
from hwnas.predictors.records import PredictorError


def arch_width(graphs: Sequence[GraphData], use: bool) -> int:
    """How many architecture features to fit on: their common number when ``use`` and every graph
    has the same non-zero number, else 0 (the predictor then reads the graph alone)."""
    if not use or not graphs:
        return 0
    widths = {int(np.asarray(g.arch_features).size) for g in graphs}
    return widths.pop() if len(widths) == 1 else 0


def arch_matrix(graphs: Sequence[GraphData], n_arch: int) -> np.ndarray:
    """``[len(graphs), n_arch]`` float64 architecture features (``[n, 0]`` when ``n_arch == 0``).

    Raises:
        PredictorError: a graph has no architecture features, or another number of them (a model
            outside the space the predictor was fitted on).
    """
    if n_arch == 0:
        return np.zeros((len(graphs), 0))
    rows = [np.asarray(g.arch_features, dtype=np.float64).reshape(-1) for g in graphs]
    bad = next((r.size for r in rows if r.size != n_arch), None)
    if bad is not None:
        raise PredictorError(
            f"this predictor reads {n_arch} architecture features, a graph has {bad}: predict models "
            "of the space it was fitted on, through the graph resolver (which attaches them)"
        )
    return np.stack(rows) if rows else np.zeros((0, n_arch))
