"""GNN latency predictor: message passing over the ONNX operator graph, one head per device.

The network embeds a model's graph into a small vector ``h`` (GIN message passing over the
operator nodes, sum and mean pooling, plus the standardised whole-model features such as FLOPs and,
with ``arch_features=True``, the architecture's own encoding: :mod:`hwnas.predictors.arch_inputs`),
and predicts the log latency on device ``d`` as ``w_d · h + b_d``. Trained on several devices at
once, the embedding captures what makes a network slow anywhere, and a device is just its head:
that is what makes few-shot adaptation to a new device work (see :mod:`hwnas.predictors.adapt`).

Example:
    >>> from hwnas.predictors.gnn import GNNPredictor
    >>> pred = GNNPredictor(epochs=50).fit(records)            # doctest: +SKIP
    >>> pred.predict(graphs, device="pixel3")                   # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from hwnas.graph.data import GraphData
from hwnas.predictors.arch_inputs import arch_matrix, arch_width
from hwnas.predictors.base import LatencyRecord, Predictor, PredictorError, check_records
from hwnas.predictors.support import Support


#: Graphs per forward pass when embedding (no gradients; small batches keep activations in cache).
INFERENCE_BATCH = 64
#: Fewest held-out graphs for early stopping (:class:`GNNPredictor` ``validation``); below, none.
MIN_VALIDATION = 20


def _torch() -> Any:
    try:
        import torch
        import torch_geometric  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise PredictorError(f"the GNN predictor needs torch and torch-geometric: pip install 'hwnas[host]' ({exc})") from None
    return torch


def _build_net(n_node: int, n_graph: int, hidden: int, layers: int, embed_dim: int, n_dev: int, mlp_depth: int = 2) -> Any:
    torch = _torch()
    from torch import nn
    from torch_geometric.nn import GINConv, global_add_pool, global_mean_pool

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inp = nn.Sequential(nn.Linear(n_node, hidden), nn.ReLU())
            self.convs = nn.ModuleList(
                GINConv(_mlp(nn, hidden, mlp_depth), train_eps=True)
                for _ in range(layers)
            )
            self.glob = nn.Sequential(nn.Linear(n_graph, hidden), nn.ReLU())
            self.out = nn.Sequential(nn.Linear(3 * hidden, hidden), nn.ReLU(), nn.Linear(hidden, embed_dim))
            self.heads = nn.Linear(embed_dim, n_dev)

        def embed(self, x: Any, edge_index: Any, batch: Any, gfeat: Any, pyg: bool = True) -> Any:
            h = self.inp(x)
            for conv in self.convs:
                if pyg:  # PyG's GIN message passing (training)
                    h = h + torch.relu(conv(h, edge_index))
                else:  # the same sum aggregation and update, without PyG's per-call machinery
                    agg = torch.zeros_like(h).index_add_(0, edge_index[1], h.index_select(0, edge_index[0]))
                    h = h + torch.relu(conv.nn((1 + conv.eps) * h + agg))
            pooled = torch.cat([global_add_pool(h, batch) / 100.0, global_mean_pool(h, batch), self.glob(gfeat)], 1)
            return self.out(pooled)

        def forward(self, x: Any, edge_index: Any, batch: Any, gfeat: Any) -> Any:
            return self.heads(self.embed(x, edge_index, batch, gfeat))

    return Net()


def _mlp(nn: Any, width: int, depth: int) -> Any:
    """GIN's update function: ``depth`` linear layers with ReLU between them."""
    layers: list[Any] = []
    for i in range(depth):
        if i:
            layers.append(nn.ReLU())
        layers.append(nn.Linear(width, width))
    return nn.Sequential(*layers)


class GNNPredictor(Predictor):
    """Graph neural network latency predictor over one or several devices.

    Args:
        hidden: width of node states.
        layers: message-passing layers (GIN with residual connections).
        embed_dim: size of the model embedding ``h`` that the per-device heads read.
        epochs: training epochs over the distinct graphs.
        lr: Adam learning rate (cosine-decayed to 1% over the epochs).
        batch_size: graphs per step.
        weight_decay: Adam weight decay.
        rank_weight: weight of a pairwise logistic ranking loss added to the squared error on
            standardised log latency (0 = off). Pairs are the graphs of a batch on one device.
        mlp_depth: linear layers in each GIN update (1 by default: as accurate as 2 in
            leave-one-device-out on NB201 and ~25% faster to evaluate).
        seed: seed of initialisation and batch order.
        robust: robust input scaling (a deviation floor relative to each feature's scale, values
            clipped to +-5 deviations: :func:`hwnas.graph.batch.standardize`); False is the 1e-6
            floor without clipping of hwnas before 0.2, kept for ablations only: it lets an unseen
            feature value move a prediction by orders of magnitude.
        arch_features: read the architecture features of the graphs beside the whole-model
            features, when every training graph has them (``n_arch_`` of them; a predictor file
            from before they existed has none and keeps working without them).
        validation: share of the distinct graphs held out to choose when to stop (early
            stopping): training runs all ``epochs`` on the rest and keeps the weights of the epoch
            with the lowest squared error on the held-out graphs (``best_epoch_``; the error
            after every epoch is ``validation_errors_``, both saved with the file). Without it a
            noisy device's table is over-fitted: on NAS-Bench-201's phone and server-CPU tables,
            900 samples, 60 epochs gave Spearman 0.904-0.951 where 15-30 gave 0.922-0.961. Held out
            only when that leaves every device at least 90% of its graphs (and 4) and holds out at
            least :data:`MIN_VALIDATION` graphs; otherwise (small data) every graph trains for all
            epochs. 0 turns it off.
    """

    kind = "gnn"

    def __init__(
        self,
        hidden: int = 48,
        layers: int = 3,
        embed_dim: int = 16,
        epochs: int = 80,
        lr: float = 3e-3,
        batch_size: int = 64,
        weight_decay: float = 1e-5,
        rank_weight: float = 0.0,
        seed: int = 0,
        mlp_depth: int = 1,
        robust: bool = True,
        arch_features: bool = True,
        validation: float = 0.1,
    ) -> None:
        self.hidden = hidden
        self.layers = layers
        self.embed_dim = embed_dim
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.rank_weight = rank_weight
        self.seed = seed
        self.mlp_depth = mlp_depth
        self.robust = robust
        self.arch_features = arch_features
        self.validation = validation

    def get_config(self) -> dict[str, Any]:
        return {
            "hidden": self.hidden,
            "layers": self.layers,
            "embed_dim": self.embed_dim,
            "epochs": self.epochs,
            "lr": self.lr,
            "batch_size": self.batch_size,
            "weight_decay": self.weight_decay,
            "rank_weight": self.rank_weight,
            "seed": self.seed,
            "mlp_depth": self.mlp_depth,
            "robust": self.robust,
            "arch_features": self.arch_features,
            "validation": self.validation,
        }

    # -- inputs ----------------------------------------------------------------------------------
    def _gfeat(self, graphs: Sequence[GraphData]) -> np.ndarray:
        """log1p graph features, standardised robustly (relative deviation floor, clipped: see
        :func:`hwnas.graph.batch.standardize`)."""
        from hwnas.graph.batch import standardize

        g = self._raw_gfeat(graphs, getattr(self, "n_arch_", 0))
        if not self.robust:
            return ((g - self.gmean_) / self.gstd_).astype(np.float32)
        return standardize(g, self.gmean_, self.gstd_).astype(np.float32)

    @staticmethod
    def _raw_gfeat(graphs: Sequence[GraphData], n_arch: int) -> np.ndarray:
        """``log1p`` of each graph's whole-model features, then its ``n_arch`` architecture features."""
        g = np.stack([gr.graph_features for gr in graphs]).astype(np.float64)
        if n_arch:
            g = np.concatenate([g, arch_matrix(graphs, n_arch)], axis=1)
        return np.log1p(np.maximum(g, 0.0))

    def _scaled_nodes(self, graphs: Sequence[GraphData]) -> np.ndarray:
        """Node features of all ``graphs`` stacked, standardised and clipped to ``[-CLIP, CLIP]``
        (float32, in place: no 8-byte temporaries over millions of nodes)."""
        from hwnas.graph.batch import CLIP

        state = self.scaler_.state()
        flat = np.concatenate([g.x for g in graphs]).astype(np.float32, copy=False)
        flat -= state["mean"].astype(np.float32)
        flat /= state["std"].astype(np.float32)
        if self.robust:
            np.clip(flat, -CLIP, CLIP, out=flat)
        return flat

    def _inputs(self, graphs: Sequence[GraphData]) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
        """Scaled node features (one vectorised pass over all nodes), edge indices and graph
        features, computed once per call."""
        sizes = [g.x.shape[0] for g in graphs]
        xs = np.split(self._scaled_nodes(graphs), np.cumsum(sizes)[:-1])
        return xs, [g.edge_index for g in graphs], self._gfeat(graphs)

    def _batches(
        self, inputs: tuple[list[np.ndarray], list[np.ndarray], np.ndarray], order: np.ndarray, size: int | None = None
    ) -> Any:
        """Yield ``(indices, x, edge_index, batch, gfeat)`` tensors: the disjoint union of the
        graphs of each mini-batch, laid out as PyTorch Geometric's ``Batch`` lays it out."""
        torch = _torch()
        xs, eis, gf = inputs
        size = size or self.batch_size
        for start in range(0, len(order), size):
            idx = order[start : start + size]
            sizes = np.array([xs[i].shape[0] for i in idx])
            offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
            x = torch.from_numpy(np.concatenate([xs[i] for i in idx]))
            ei = torch.from_numpy(np.concatenate([eis[i] + o for i, o in zip(idx, offsets)], axis=1).astype(np.int64))
            batch = torch.from_numpy(np.repeat(np.arange(len(idx)), sizes))
            yield idx, x, ei, batch, torch.from_numpy(gf[idx])

    def _consecutive_batches(self, graphs: Sequence[GraphData], size: int) -> Any:
        """Like :meth:`_batches` over ``graphs`` in order, built from one concatenation of all
        nodes and edges: each batch is a slice (inference ranks whole spaces, so this matters)."""
        torch = _torch()
        n_nodes = np.array([g.x.shape[0] for g in graphs])
        n_edges = np.array([g.edge_index.shape[1] for g in graphs])
        node_off = np.concatenate([[0], np.cumsum(n_nodes)])
        edge_off = np.concatenate([[0], np.cumsum(n_edges)])
        flat = self._scaled_nodes(graphs)
        edges = np.concatenate([g.edge_index for g in graphs], axis=1).astype(np.int64, copy=False)
        edges += np.repeat(node_off[:-1], n_edges)
        graph_of_node = np.repeat(np.arange(len(graphs)), n_nodes)
        gf = self._gfeat(graphs)
        for s in range(0, len(graphs), size):
            e = min(s + size, len(graphs))
            a, b = node_off[s], node_off[e]
            yield (
                np.arange(s, e),
                torch.from_numpy(flat[a:b]),
                torch.from_numpy(edges[:, edge_off[s] : edge_off[e]] - a),
                torch.from_numpy(graph_of_node[a:b] - s),
                torch.from_numpy(gf[s:e]),
            )

    # -- fit -------------------------------------------------------------------------------------
    def fit(self, records: Sequence[LatencyRecord]) -> GNNPredictor:
        check_records(records, minimum=4)
        torch = _torch()
        from hwnas.graph.batch import FeatureScaler, robust_std

        keys = list(dict.fromkeys(r.key for r in records))
        devices = sorted({r.device for r in records})
        kidx = {k: i for i, k in enumerate(keys)}
        didx = {d: i for i, d in enumerate(devices)}
        graphs: list[GraphData] = [None] * len(keys)  # type: ignore[list-item]
        y = np.full((len(keys), len(devices)), np.nan)
        for r in records:
            graphs[kidx[r.key]] = r.graph
            y[kidx[r.key], didx[r.device]] = np.log(r.latency_ms)
        # per-device standardisation of log latency
        self.ymean_ = np.nanmean(y, axis=0)
        self.ystd_ = np.maximum(np.nanstd(y, axis=0), 1e-3)
        ys = (y - self.ymean_) / self.ystd_
        self.scaler_ = FeatureScaler(robust=self.robust).fit(graphs)
        self.n_arch_ = arch_width(graphs, self.arch_features)
        g = self._raw_gfeat(graphs, self.n_arch_)
        self.gmean_ = g.mean(0)
        self.gstd_ = robust_std(g.std(0), self.gmean_) if self.robust else np.maximum(g.std(0), 1e-6)
        self.devices_ = devices

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            net = _build_net(graphs[0].x.shape[1], g.shape[1], self.hidden, self.layers, self.embed_dim, len(devices), self.mlp_depth)
            opt = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
            held = _validation_split(~np.isnan(ys), self.validation, self.seed)
            train = np.setdiff1d(np.arange(len(graphs)), held)
            steps = self.epochs * int(np.ceil(len(train) / self.batch_size))
            sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.01 + 0.99 * 0.5 * (1 + np.cos(np.pi * min(s / max(steps, 1), 1.0))))
            rng = np.random.default_rng(self.seed)
            target = torch.from_numpy(np.nan_to_num(ys).astype(np.float32))
            mask = torch.from_numpy(~np.isnan(ys))
            inputs = self._inputs(graphs)
            best: tuple[float, int, dict[str, Any] | None] = (np.inf, self.epochs, None)
            errors: list[float] = []
            for epoch in range(1, self.epochs + 1):
                net.train()
                for idx, x, ei, batch, gf in self._batches(inputs, train[rng.permutation(len(train))]):
                    pred = net(x, ei, batch, gf)
                    t, m = target[idx], mask[idx]
                    loss = ((pred - t) ** 2)[m].mean()
                    if self.rank_weight > 0:
                        loss = loss + self.rank_weight * _pairwise_rank_loss(pred, t, m)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    sched.step()
                if len(held):
                    err = self._held_out_error(net, inputs, held, target, mask)
                    errors.append(err)
                    if err < best[0]:
                        best = (err, epoch, {k: v.detach().clone() for k, v in net.state_dict().items()})
            if best[2] is not None:
                net.load_state_dict(best[2])
        net.eval()
        self.net_ = net
        self.best_epoch_, self.n_validation_, self.validation_errors_ = best[1], len(held), errors
        self.support_ = Support.from_records(records)
        return self

    def _held_out_error(self, net: Any, inputs: Any, held: np.ndarray, target: Any, mask: Any) -> float:
        """Mean squared error (standardised log latency) of ``net`` on the ``held`` graphs."""
        torch = _torch()
        net.eval()
        total, count = 0.0, 0
        with torch.inference_mode():
            for idx, x, ei, batch, gf in self._batches(inputs, held, INFERENCE_BATCH):
                m = mask[idx]
                total += float(((net(x, ei, batch, gf) - target[idx]) ** 2)[m].sum())
                count += int(m.sum())
        return total / max(count, 1)

    # -- predict ---------------------------------------------------------------------------------
    def embed(self, graphs: Sequence[GraphData]) -> np.ndarray:
        """Embeddings ``h`` of ``graphs`` (float64 ``[n, embed_dim]``), device-independent."""
        self._check_fitted()
        torch = _torch()
        out = np.empty((len(graphs), self.embed_dim))
        with torch.inference_mode():
            for idx, x, ei, batch, gf in self._consecutive_batches(graphs, INFERENCE_BATCH):
                out[idx] = self.net_.embed(x, ei, batch, gf, pyg=False).double().numpy()
        return out

    def embedding_digest(self) -> str:
        """Digest of everything the embedding depends on (not the heads): a predictor adapted
        from this one shares it, so cached embeddings carry over to new devices."""
        import hashlib
        import json

        _, arrays = self.get_state()
        h = hashlib.sha256(json.dumps(self.get_config(), sort_keys=True).encode())
        for k in sorted(arrays):
            if k.startswith("net.heads.") or k in ("ymean", "ystd"):
                continue
            a = np.ascontiguousarray(arrays[k])
            h.update(f"{k}:{a.dtype.str}:{a.shape}".encode())
            h.update(a.tobytes())
        return h.hexdigest()[:16]

    def heads(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-device heads in log-millisecond space: ``log ms = h @ W[d] + b[d]``."""
        self._check_fitted()
        w = self.net_.heads.weight.detach().double().numpy()
        b = self.net_.heads.bias.detach().double().numpy()
        return w * self.ystd_[:, None], b * self.ystd_ + self.ymean_

    def predict_log_from_embedding(self, emb: np.ndarray, device: str | None = None) -> np.ndarray:
        """Log-millisecond predictions from embeddings (fast path for ranking many models)."""
        d = self._device_index(device)
        w, b = self.heads()
        return emb @ w[d] + b[d]

    def predict(self, graphs: Sequence[GraphData], device: str | None = None) -> np.ndarray:
        d = self._device_index(device)
        if not graphs:
            return np.empty(0)
        return np.exp(self.predict_log_from_embedding(self.embed(graphs), self.devices[d]))

    # -- state -----------------------------------------------------------------------------------
    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        self._check_fitted()
        arrays = {f"net.{k}": v.detach().numpy() for k, v in self.net_.state_dict().items()}
        arrays.update({f"scaler.{k}": v for k, v in self.scaler_.state().items()})
        arrays.update(ymean=self.ymean_, ystd=self.ystd_, gmean=self.gmean_, gstd=self.gstd_)
        meta = {
            "devices": self.devices_,
            "n_node": int(self.scaler_.state()["mean"].shape[0]),
            "n_graph": int(self.gmean_.shape[0]),  # whole-model features and architecture features
            "n_arch": int(self.n_arch_),
            "best_epoch": getattr(self, "best_epoch_", None),
            "n_validation": getattr(self, "n_validation_", 0),
            "validation_errors": [round(e, 6) for e in getattr(self, "validation_errors_", [])],
        }
        return meta, arrays

    def set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        torch = _torch()
        from hwnas.graph.batch import FeatureScaler

        self.devices_ = list(meta["devices"])
        self.n_arch_ = int(meta.get("n_arch", 0))  # files from before architecture features: none
        self.best_epoch_, self.n_validation_ = meta.get("best_epoch"), int(meta.get("n_validation", 0))
        self.validation_errors_ = [float(e) for e in meta.get("validation_errors", [])]
        self.ymean_, self.ystd_ = arrays["ymean"], arrays["ystd"]
        self.gmean_, self.gstd_ = arrays["gmean"], arrays["gstd"]
        self.scaler_ = FeatureScaler.from_state({k[7:]: v for k, v in arrays.items() if k.startswith("scaler.")})
        net = _build_net(meta["n_node"], meta["n_graph"], self.hidden, self.layers, self.embed_dim, len(self.devices_), self.mlp_depth)
        state = {k[4:]: torch.from_numpy(np.array(v)) for k, v in arrays.items() if k.startswith("net.")}
        net.load_state_dict(state)
        net.eval()
        self.net_ = net

    def with_heads(self, devices: list[str], w: np.ndarray, b: np.ndarray) -> GNNPredictor:
        """A copy that shares the embedding network and predicts for ``devices`` with heads
        ``(w, b)`` given in log-millisecond space (as :meth:`heads` returns them)."""
        new = GNNPredictor(**self.get_config())
        meta, arrays = self.get_state()
        arrays = {k: v for k, v in arrays.items() if not k.startswith("net.heads.")}
        arrays["ymean"] = np.zeros(len(devices))
        arrays["ystd"] = np.ones(len(devices))
        arrays["net.heads.weight"] = w.astype(np.float32)
        arrays["net.heads.bias"] = b.astype(np.float32)
        new.set_state({**meta, "devices": list(devices)}, arrays)
        return new


def _validation_split(measured: np.ndarray, share: float, seed: int) -> np.ndarray:
    """Indices of the graphs held out for early stopping (sorted; empty: none).

    ``measured[g, d]`` says whether graph ``g`` has a latency on device ``d``. Graphs are drawn in
    a random order (seeded) and held out while every device keeps at least 90% of its graphs and
    at least 4, up to ``share`` of all graphs; fewer than :data:`MIN_VALIDATION` held out means
    the data are too few to spare any, and none are.
    """
    n = measured.shape[0]
    want = int(round(share * n))
    if want < MIN_VALIDATION:  # also share <= 0
        return np.empty(0, dtype=np.int64)
    counts = measured.sum(axis=0)
    floor = np.maximum(np.ceil(0.9 * counts), 4)
    left = counts.copy()
    held = []
    for g in np.random.default_rng([seed, 0x5EED]).permutation(n):
        row = measured[g]
        if np.all(left[row] - 1 >= floor[row]):
            held.append(g)
            left[row] -= 1
            if len(held) == want:
                break
    return np.sort(np.array(held, dtype=np.int64)) if len(held) >= MIN_VALIDATION else np.empty(0, dtype=np.int64)


def _pairwise_rank_loss(pred: Any, target: Any, mask: Any) -> Any:
    """Mean logistic loss over ordered pairs of graphs (same device, both measured)."""
    torch = _torch()
    losses = []
    for d in range(pred.shape[1]):
        m = mask[:, d]
        if int(m.sum()) < 2:
            continue
        p, t = pred[m, d], target[m, d]
        dp = p[:, None] - p[None, :]
        sign = torch.sign(t[:, None] - t[None, :])
        valid = sign != 0
        if valid.any():
            losses.append(torch.nn.functional.softplus(-sign[valid] * dp[valid]).mean())
    return torch.stack(losses).mean() if losses else pred.sum() * 0.0
