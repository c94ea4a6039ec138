"""Latency predictors: FLOPs/params proxies, lookup table, GBDT and (optionally) GNN.

All implement :class:`~hwnas.predictors.base.Predictor`. Importing this package does not import
torch; the GNN predictor is only looked up inside :func:`predictor_kinds`.

Example:
    >>> from hwnas.predictors import predictor_kinds
    >>> sorted(k for k in predictor_kinds() if k != "gnn")
    ['flops', 'gbdt', 'lut', 'params']
"""

from __future__ import annotations

from hwnas.predictors.base import (
    LatencyRecord,
    Predictor,
    PredictorError,
    PredictorFile,
    check_records,
    load_predictor,
    save_predictor,
)
from hwnas.predictors.gbdt import GBDTPredictor
from hwnas.predictors.linear import FlopsLinear, ParamsLinear
from hwnas.predictors.lut import LookupTable
from hwnas.predictors.metrics import evaluate, noise_ceiling

__all__ = [
    "FlopsLinear",
    "GBDTPredictor",
    "LatencyRecord",
    "LookupTable",
    "ParamsLinear",
    "Predictor",
    "PredictorError",
    "PredictorFile",
    "check_records",
    "evaluate",
    "load_predictor",
    "noise_ceiling",
    "predictor_kinds",
    "save_predictor",
]


def predictor_kinds() -> dict[str, type[Predictor]]:
    """The predictor classes by ``kind`` (a fresh dict each call; no import-time registry).

    Every kind of this hwnas is listed, whether or not its optional packages are installed (the
    GNN module imports torch only when used): a kind that cannot be fitted here is refused by
    :func:`hwnas.predictors.kinds.check_available` with how to install what it needs, not left
    out to look unknown.
    """
    kinds: dict[str, type[Predictor]] = {
        FlopsLinear.kind: FlopsLinear,
        ParamsLinear.kind: ParamsLinear,
        LookupTable.kind: LookupTable,
        GBDTPredictor.kind: GBDTPredictor,
    }
    from hwnas.predictors.gnn import GNNPredictor

    kinds["gnn"] = GNNPredictor
    return kinds
