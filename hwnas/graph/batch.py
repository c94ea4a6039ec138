"""Graphs as PyTorch Geometric batches, and the standardisation of their node features.

torch and torch_geometric are imported only when :func:`to_pyg` is called (they come with
``pip install 'hwnas[host]'``); :class:`FeatureScaler` needs numpy only.

Example:
    >>> import numpy as np
    >>> from hwnas.graph import FeatureScaler, encode_onnx, to_pyg
    >>> from hwnas.space import NB201Space
    >>> from hwnas.export import arch_to_onnx
    >>> space = NB201Space()
    >>> graphs = [encode_onnx(arch_to_onnx(space, space.from_index(i))) for i in (1, 2)]
    >>> scaler = FeatureScaler().fit(graphs)
    >>> batch = to_pyg(graphs, y=np.array([1.0, 2.0]), scaler=scaler)
    >>> batch.num_graphs, tuple(batch.graph_features.shape), batch.x.shape[1]
    (2, (2, 40), 41)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from hwnas.graph.data import GraphData
from hwnas.graph.encode import NODE_FEATURES, NUM_OP_COLUMNS

if TYPE_CHECKING:
    import torch_geometric.data

_STD_FLOOR = 1e-6

#: Robust scaling (:func:`robust_std`, :func:`standardize`): a column's deviation is at least this
#: fraction of its typical magnitude (``max(|mean|, 1)``), and standardised values are clipped to
#: ``[-CLIP, CLIP]``, so a value that no training graph had (an op count that was constant, a
#: feature that was always 0) moves a model's input by at most ``CLIP`` deviations instead of a
#: million (the 1e-94 ms predictions of a GNN trained on 50 cells).
REL_STD_FLOOR = 0.1
CLIP = 5.0


def robust_std(std: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """``std`` floored at :data:`REL_STD_FLOOR` x ``max(|mean|, 1)`` per column."""
    return np.maximum(np.asarray(std, dtype=np.float64), REL_STD_FLOOR * np.maximum(np.abs(mean), 1.0))


def standardize(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``(x - mean) / std`` clipped to ``[-CLIP, CLIP]`` (float64)."""
    return np.clip((np.asarray(x, dtype=np.float64) - mean) / std, -CLIP, CLIP)


def _pyg() -> tuple[Any, Any]:
    try:
        import torch
        import torch_geometric.data
    except ImportError:
        raise ImportError("graph batches need torch and torch_geometric: pip install 'hwnas[host]'") from None
    return torch, torch_geometric.data


def to_pyg(
    graphs: Sequence[GraphData],
    y: np.ndarray | None = None,
    *,
    scaler: FeatureScaler | None = None,
) -> torch_geometric.data.Batch:
    """A PyTorch Geometric ``Batch`` of ``graphs``.

    The batch has ``x`` (float32 ``[total_nodes, len(NODE_FEATURES)]``, transformed by ``scaler``
    when given), ``edge_index`` (int64, offset per graph as PyG does), ``batch`` (graph of each
    node), ``graph_features`` (float32 ``[B, len(GRAPH_FEATURES)]``, raw) and, with ``y``,
    ``y`` (float32 ``[B]`` for a 1-D ``y``, ``[B, k]`` for a 2-D one).

    Raises:
        ImportError: torch or torch_geometric is missing (the message says what to install).
        ValueError: ``y`` does not have one row per graph.
    """
    torch, pyg = _pyg()
    if y is not None:
        y = np.asarray(y, dtype=np.float32)
        if y.ndim == 0 or y.shape[0] != len(graphs):
            raise ValueError(f"y has {y.shape[0] if y.ndim else 0} rows for {len(graphs)} graphs")
    data = []
    for i, g in enumerate(graphs):
        x = scaler.transform_x(g.x) if scaler is not None else g.x
        d = pyg.Data(
            x=torch.as_tensor(np.asarray(x, dtype=np.float32)),
            edge_index=torch.as_tensor(np.asarray(g.edge_index, dtype=np.int64).reshape(2, -1)),
            graph_features=torch.as_tensor(np.asarray(g.graph_features, dtype=np.float32).reshape(1, -1)),
            num_nodes=g.num_nodes,
        )
        if y is not None:
            d.y = torch.as_tensor(y[i : i + 1])
        data.append(d)
    return pyg.Batch.from_data_list(data)


class FeatureScaler:
    """Standardises node features column by column: ``(x - mean_) / std_``.

    The op one-hot columns are left as they are (mean 0, std 1); numeric columns use the mean and
    standard deviation over all nodes of the graphs given to :meth:`fit`, the deviation floored
    relative to the column's scale (:func:`robust_std`), and transformed values are clipped to
    ``[-CLIP, CLIP]``, so constant columns and unseen values do not blow up. The learned state is
    two float64 arrays, saved and restored without pickle through :meth:`state` / :meth:`from_state`.
    """

    def __init__(self, robust: bool = True) -> None:
        self.robust = robust  # False: the 1e-6 floor and no clipping of hwnas before 0.2 (ablations)
        self.mean_: np.ndarray | None = None
        self.std_: np.ndarray | None = None

    def fit(self, graphs: Sequence[GraphData]) -> FeatureScaler:
        """Learn the column statistics of the nodes of ``graphs``; returns ``self``.

        Raises:
            ValueError: no nodes at all, or feature columns other than ``NODE_FEATURES``.
        """
        xs = [np.asarray(g.x, dtype=np.float64) for g in graphs if g.num_nodes]
        if not xs:
            raise ValueError("cannot fit a feature scaler on graphs without nodes")
        x = np.concatenate(xs)
        if x.shape[1] != len(NODE_FEATURES):
            raise ValueError(f"graphs have {x.shape[1]} node features, the encoder has {len(NODE_FEATURES)}")
        mean = x.mean(axis=0)
        std = robust_std(x.std(axis=0), mean) if self.robust else np.maximum(x.std(axis=0), _STD_FLOOR)
        mean[:NUM_OP_COLUMNS] = 0.0
        std[:NUM_OP_COLUMNS] = 1.0
        self.mean_, self.std_ = mean, std
        return self

    def transform_x(self, x: np.ndarray) -> np.ndarray:
        """Standardised copy of node features ``x`` (float32 ``[n, len(NODE_FEATURES)]``)."""
        if self.mean_ is None or self.std_ is None:
            raise ValueError("feature scaler is not fitted: call fit() first")
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.mean_.shape[0]:
            raise ValueError(f"expected node features of shape [n, {self.mean_.shape[0]}], got {list(x.shape)}")
        if not self.robust:
            return ((x - self.mean_) / self.std_).astype(np.float32)
        return standardize(x, self.mean_, self.std_).astype(np.float32)

    def state(self) -> dict[str, np.ndarray]:
        """``{"mean": ..., "std": ...}`` (float64 copies)."""
        if self.mean_ is None or self.std_ is None:
            raise ValueError("feature scaler is not fitted: call fit() first")
        return {"mean": self.mean_.copy(), "std": self.std_.copy()}

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> FeatureScaler:
        """Inverse of :meth:`state`.

        Raises:
            ValueError: missing arrays, or arrays of another length than ``NODE_FEATURES``.
        """
        try:
            mean = np.asarray(state["mean"], dtype=np.float64).reshape(-1)
            std = np.asarray(state["std"], dtype=np.float64).reshape(-1)
        except KeyError as exc:
            raise ValueError(f"feature scaler state lacks {exc.args[0]!r}") from None
        if mean.shape != (len(NODE_FEATURES),) or std.shape != mean.shape:
            raise ValueError(
                f"feature scaler state has {mean.shape[0]} columns, the encoder has {len(NODE_FEATURES)}; retrain"
            )
        new = cls()
        new.mean_, new.std_ = mean.copy(), np.maximum(std, _STD_FLOOR)
        return new

    def __repr__(self) -> str:
        return f"FeatureScaler(fitted={self.mean_ is not None})"
