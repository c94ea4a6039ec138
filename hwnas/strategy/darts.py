"""Differentiable architecture search (DARTS, Liu et al. 2019) on NB201, with a latency term.

Each NB201 edge's choice is relaxed to a softmax over its five operations with logits ``alpha``
(6x5) and the supernet (:class:`~hwnas.nets.nb201_supernet.NB201Supernet`) computes the weighted
sum of every op. First-order bi-level optimisation alternates

1. an ``alpha`` step (Adam) on a validation batch:
   ``loss = CE + latency_weight * penalty(E[lat])``, then
2. a weight step (SGD, momentum, cosine-annealed learning rate, gradient clipping 5) on a
   training batch with ``alpha`` fixed,

where the training split of the dataset is cut in two fixed halves (weights / ``alpha``). The
latency term (as in FBNet / ProxylessNAS) is the expected latency under ``alpha``::

    E[lat] = base + sum_e sum_o softmax(alpha_e)_o * c[e, o]

with the per-edge, per-op table ``c`` given (``op_latency``; ``base`` = 0) or fitted at
construction by non-negative least squares (``scipy.optimize.nnls``) to ``latency_of`` on
``latency_samples`` architectures drawn from the strategy's RNG (features: one-hot (edge, op) and
an intercept, which is ``base``). Penalties, relative to ``budget_ms``: ``hard``:
``relu(E[lat] / budget - 1)`` (nothing below the budget, a steep wall above it); ``soft``:
``E[lat] / budget`` (always trades accuracy for speed).

``ask()`` runs ``steps_per_ask`` bi-level steps and returns the derived architecture (argmax of
``alpha`` on every edge), so a study with budget N evaluates the architectures along the DARTS
trajectory (the study does not re-evaluate repeats). ``tell`` ignores scores.

Example:
    >>> from hwnas.space import NB201Space
    >>> from hwnas.strategy.darts import DARTS
    >>> s = DARTS(NB201Space(), channels=4, resolution=8, batch_size=16, steps_per_ask=2)
    >>> s.ask().space, s.alphas().shape
    ('nb201', (6, 5))
"""

from __future__ import annotations

import base64
import functools
import math
import os
import zlib
from typing import TYPE_CHECKING, Any, Callable, Mapping

import numpy as np

from hwnas.evaluate.datasets import ImageData
from hwnas.space.base import Arch, SearchSpace
from hwnas.space.nb201 import EDGES, OPS, NB201Space
from hwnas.strategy.base import Strategy

if TYPE_CHECKING:
    import torch

FORMAT = "hwnas.darts/1"
_SHAPE = (len(EDGES), len(OPS))


def encode_tensor(t: torch.Tensor) -> dict[str, Any]:
    """JSON-able exact copy of a tensor: ``{"shape", "dtype", "zb64"}``, the base64 of its raw bytes
    byte-shuffled (every value's first bytes, then their second bytes...) and zlib-compressed."""
    a = t.detach().cpu().contiguous().numpy()
    shuffled = np.frombuffer(a.tobytes(), dtype=np.uint8).reshape(-1, a.dtype.itemsize).T.tobytes()
    packed = base64.b64encode(zlib.compress(shuffled)).decode("ascii")
    return {"shape": list(a.shape), "dtype": a.dtype.str, "zb64": packed}


def decode_tensor(obj: Mapping[str, Any], device: str = "cpu") -> torch.Tensor:
    """Inverse of :func:`encode_tensor`."""
    import torch

    dtype = np.dtype(obj["dtype"])
    raw = np.frombuffer(zlib.decompress(base64.b64decode(obj["zb64"])), dtype=np.uint8)
    a = raw.reshape(dtype.itemsize, -1).T.copy().view(dtype).reshape(obj["shape"])
    return torch.from_numpy(a).to(device)


class DARTS(Strategy):
    """First-order DARTS over the NB201 cell with an optional expected-latency penalty.

    Args:
        space: the NB201 space (``ValueError`` otherwise).
        dataset: ``"digits"``, another ``load_dataset`` spec, or :class:`ImageData`.
        latency_of: latency (ms) of an architecture; the per-op table is fitted to it (see the
            module docstring). Ignored when ``op_latency`` is given.
        op_latency: 6x5 per-edge, per-op latency table (ms), rows in edge order, columns in
            :data:`~hwnas.space.nb201.OPS` order.
        budget_ms: the latency budget; None: no latency term.
        latency_weight: lambda; None: 10 for ``hard``, 1 for ``soft``.
        mode: ``hard`` (penalise only above the budget) or ``soft`` (penalise all latency).
        channels, cells, resolution: supernet width, cells per stage and input size (kept small:
            the supernet and its optimiser state travel in :meth:`state_dict`).
        batch_size: images per weight step and per ``alpha`` step.
        w_lr, w_lr_min, w_momentum, w_weight_decay: SGD of the weights; the learning rate anneals
            from ``w_lr`` to ``w_lr_min`` over ``total_steps`` (cosine), then stays.
        alpha_lr, alpha_weight_decay: Adam of ``alpha`` (betas 0.5, 0.999).
        steps_per_ask: bi-level steps run by each :meth:`ask`.
        total_steps: horizon of the cosine schedule.
        latency_samples: architectures ``latency_of`` is called on to fit the table.
        seed: seeds the supernet, ``alpha``, the data halves, batches and the latency samples.
        device: torch device string.

    Prefilter: if the search set :attr:`prefilter` and it refuses the argmax architecture, the
    derived one is the best it accepts along a greedy walk: repeatedly move the edge whose next
    op is the least below that edge's best (smallest ``alpha`` margin) to that next op, at most
    ``6 * 4`` moves; if none is accepted, the argmax architecture is returned (and rejected).

    Attributes:
        op_latency_: the 6x5 table ``c`` (None without a latency source); ``latency_base_``: base.
        latency_fit_: ``{"samples", "rmse_ms", "r2"}`` of the least-squares fit (None if given).
        step_: bi-level steps run so far.
    """

    name = "darts"

    def __init__(
        self,
        space: SearchSpace,
        dataset: str | os.PathLike[str] | ImageData = "digits",
        *,
        latency_of: Callable[[Arch], float] | None = None,
        op_latency: Any = None,
        budget_ms: float | None = None,
        latency_weight: float | None = None,
        mode: str = "hard",
        channels: int = 8,
        cells: int = 1,
        resolution: int = 16,
        batch_size: int = 64,
        w_lr: float = 0.025,
        w_lr_min: float = 0.001,
        w_momentum: float = 0.9,
        w_weight_decay: float = 3e-4,
        alpha_lr: float = 3e-4,
        alpha_weight_decay: float = 1e-3,
        steps_per_ask: int = 10,
        total_steps: int = 500,
        latency_samples: int = 60,
        seed: int = 0,
        device: str = "cpu",
    ) -> None:
        import torch

        from hwnas.nets.nb201_supernet import NB201Supernet

        if not isinstance(space, NB201Space):
            raise ValueError(f"darts searches the nb201 space only, not {space.name!r}")
        if mode not in ("hard", "soft"):
            raise ValueError(f"darts: mode must be 'hard' or 'soft', got {mode!r}")
        if budget_ms is not None and not budget_ms > 0:
            raise ValueError(f"darts: budget_ms must be > 0, got {budget_ms}")
        if budget_ms is not None and latency_of is None and op_latency is None:
            raise ValueError("darts: budget_ms needs a latency source; pass op_latency or latency_of")
        if min(steps_per_ask, total_steps, channels, cells) < 1 or batch_size < 2 or latency_samples < 2:
            raise ValueError("darts: need steps_per_ask, total_steps, channels, cells >= 1, batch_size >= 2 "
                             "and latency_samples >= 2")  # fmt: skip
        super().__init__(space, seed)
        self.dataset, self.budget_ms, self.mode = dataset, budget_ms, mode
        self.latency_weight = latency_weight if latency_weight is not None else (10.0 if mode == "hard" else 1.0)
        self.channels, self.cells, self.resolution, self.batch_size = channels, cells, resolution, batch_size
        self.w_lr, self.w_lr_min, self.total_steps, self.steps_per_ask = w_lr, w_lr_min, total_steps, steps_per_ask
        self.device = device
        self.op_latency_, self.latency_base_, self.latency_fit_ = self._latency_table(
            op_latency, latency_of, latency_samples
        )
        data = self._data
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.net_ = NB201Supernet(channels, cells, data.num_classes).to(device).train()
        gen = torch.Generator().manual_seed(seed)
        self.alpha_ = torch.nn.Parameter((1e-3 * torch.randn(_SHAPE, generator=gen)).to(device))
        self._w_opt = torch.optim.SGD(self.net_.parameters(), lr=w_lr, momentum=w_momentum,
                                      weight_decay=w_weight_decay)  # fmt: skip
        self._a_opt = torch.optim.Adam([self.alpha_], lr=alpha_lr, betas=(0.5, 0.999),
                                       weight_decay=alpha_weight_decay)  # fmt: skip
        self.step_ = 0

    # -- latency ---------------------------------------------------------------------------------
    def _latency_table(
        self, op_latency: Any, latency_of: Callable[[Arch], float] | None, samples: int
    ) -> tuple[np.ndarray | None, float, dict[str, float] | None]:
        if op_latency is not None:
            table = np.asarray(op_latency, dtype=np.float64)
            if table.shape != _SHAPE or not np.all(np.isfinite(table)):
                raise ValueError(f"darts: op_latency must be a finite 6x5 table (edges x ops), got shape {table.shape}")
            return table, 0.0, None
        if latency_of is None:
            return None, 0.0, None
        from scipy.optimize import nnls

        archs = [self.space.sample(self.rng) for _ in range(samples)]
        x = np.zeros((samples, 1 + _SHAPE[0] * _SHAPE[1]))
        x[:, 0] = 1.0
        for i, a in enumerate(archs):
            x[i, 1 + np.arange(_SHAPE[0]) * _SHAPE[1] + self.space.encode(a)] = 1.0
        y = np.array([float(latency_of(a)) for a in archs])
        if not np.all(np.isfinite(y)):
            raise ValueError("darts: latency_of returned a non-finite latency; it must give milliseconds")
        coef, _ = nnls(x, y)
        resid = y - x @ coef
        ss = float(((y - y.mean()) ** 2).sum())
        fit = {"samples": samples, "rmse_ms": float(np.sqrt((resid**2).mean())),
               "r2": 1.0 - float((resid**2).sum()) / ss if ss > 0 else 1.0}  # fmt: skip
        return coef[1:].reshape(_SHAPE), float(coef[0]), fit

    def _require_table(self) -> np.ndarray:
        if self.op_latency_ is None:
            raise ValueError("darts: no latency table; pass op_latency or latency_of")
        return self.op_latency_

    def expected_latency(self) -> float:
        """``E[lat]`` (ms) under the current ``alpha`` (``ValueError`` without a latency source)."""
        return self.latency_base_ + float((self.alphas() * self._require_table()).sum())

    def table_latency(self, arch: Arch) -> float:
        """Latency (ms) of ``arch`` by the table: ``base + sum_e c[e, op_e]``."""
        ops = self.space.encode(arch)
        return self.latency_base_ + float(self._require_table()[np.arange(len(EDGES)), ops].sum())

    def alphas(self) -> np.ndarray:
        """``softmax(alpha)`` per edge, 6x5 float64 (rows: edges, columns: ops)."""
        import torch

        with torch.no_grad():
            return torch.softmax(self.alpha_.detach().double(), dim=-1).cpu().numpy()

    # -- search ----------------------------------------------------------------------------------
    @functools.cached_property
    def _data(self) -> ImageData:
        from hwnas.evaluate.datasets import resolve_dataset

        return resolve_dataset(self.dataset)

    @functools.cached_property
    def _halves(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        import torch

        from hwnas.evaluate.supernet import image_tensor

        d = self._data
        order = np.random.default_rng([self.seed, 1]).permutation(len(d.x_train))
        if len(order) < 4:
            raise ValueError("darts: the dataset needs at least 4 training images")
        x = image_tensor(d.x_train[order], self.resolution, self.device)
        y = torch.as_tensor(d.y_train[order], device=self.device)
        h = len(order) // 2
        return x[:h], y[:h], x[h:], y[h:]

    def _penalty(self, weights: torch.Tensor) -> torch.Tensor | None:
        import torch

        if self.budget_ms is None or self.op_latency_ is None:
            return None
        table = torch.as_tensor(self.op_latency_, dtype=weights.dtype, device=weights.device)
        ratio = (self.latency_base_ + (weights * table).sum()) / self.budget_ms
        return torch.relu(ratio - 1.0) if self.mode == "hard" else ratio

    def step(self) -> None:
        """One bi-level step: an ``alpha`` step on a validation batch, then a weight step."""
        import torch
        import torch.nn.functional as F

        xt, yt, xv, yv = self._halves
        bt = self.rng.choice(len(xt), min(self.batch_size, len(xt)), replace=False)
        bv = self.rng.choice(len(xv), min(self.batch_size, len(xv)), replace=False)
        self.net_.train()
        weights = torch.softmax(self.alpha_, dim=-1)
        loss = F.cross_entropy(self.net_(xv[bv], weights), yv[bv])
        penalty = self._penalty(weights)
        if penalty is not None:
            loss = loss + self.latency_weight * penalty
        self._a_opt.zero_grad(set_to_none=True)
        (self.alpha_.grad,) = torch.autograd.grad(loss, [self.alpha_])
        self._a_opt.step()

        cos = 0.5 * (1.0 + math.cos(math.pi * min(self.step_, self.total_steps) / self.total_steps))
        for group in self._w_opt.param_groups:
            group["lr"] = self.w_lr_min + (self.w_lr - self.w_lr_min) * cos
        loss = F.cross_entropy(self.net_(xt[bt], torch.softmax(self.alpha_.detach(), dim=-1)), yt[bt])
        self._w_opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.net_.parameters(), 5.0)
        self._w_opt.step()
        self.step_ += 1

    def ask(self) -> Arch:
        for _ in range(self.steps_per_ask):
            self.step()
        return self.derive()

    def derive(self) -> Arch:
        """The architecture ``alpha`` prefers (argmax per edge), or, if :attr:`prefilter` refuses
        it, the best accepted one of the greedy walk in the class docstring."""
        a = self.alpha_.detach().double().cpu().numpy()
        order = np.argsort(-a, axis=1, kind="stable")
        rank = np.zeros(len(EDGES), dtype=np.int64)
        rows = np.arange(len(EDGES))
        best = self.space.decode(order[rows, rank])
        if self.prefilter is None:
            return best
        arch = best
        for _ in range(len(EDGES) * (len(OPS) - 1)):
            if self.prefilter(arch):
                return arch
            movable = rank < len(OPS) - 1
            nxt = order[rows, np.minimum(rank + 1, len(OPS) - 1)]
            drop = np.where(movable, a[rows, order[:, 0]] - a[rows, nxt], np.inf)
            rank[int(np.argmin(drop))] += 1
            arch = self.space.decode(order[rows, rank])
        return arch if self.prefilter(arch) else best

    # -- resume ----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """JSON-able: RNG, step count, ``alpha``, supernet weights and both optimisers' states
        (tensors via :func:`encode_tensor`; under 1 MB of JSON at the default size)."""

        import torch

        def opt_state(opt: torch.optim.Optimizer) -> list[Any]:
            return [[int(k), {n: encode_tensor(v) if torch.is_tensor(v) else {"value": v} for n, v in s.items()}]
                    for k, s in opt.state_dict()["state"].items()]  # fmt: skip

        return {**super().state_dict(), "format": FORMAT, "step": self.step_, "alpha": encode_tensor(self.alpha_),
                "net": {k: encode_tensor(v) for k, v in self.net_.state_dict().items()},
                "w_opt": opt_state(self._w_opt), "alpha_opt": opt_state(self._a_opt)}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        import torch

        if state.get("format") != FORMAT:
            raise ValueError(f"darts: not a DARTS state (format {FORMAT}); was it saved by another strategy?")
        super().load_state_dict(state)
        self.step_ = int(state["step"])
        with torch.no_grad():
            self.alpha_.copy_(decode_tensor(state["alpha"], self.device))
        self.net_.load_state_dict({k: decode_tensor(v, self.device) for k, v in state["net"].items()})
        for opt, key in ((self._w_opt, "w_opt"), (self._a_opt, "alpha_opt")):
            sd = opt.state_dict()
            sd["state"] = {int(k): {n: decode_tensor(v, self.device) if "zb64" in v else v["value"]
                                    for n, v in s.items()} for k, s in state[key]}  # fmt: skip
            opt.load_state_dict(sd)
