"""Zero-cost proxies: score an untrained network from one batch, in about a second.

Definitions follow Abdelfattah et al. 2021, "Zero-Cost Proxies for Lightweight NAS" (ICLR), and
their reference code (SamsungLabs ``zero-cost-nas``, ``foresight/pruners/measures``). Weight-based
sums run over the weights of ``Conv2d`` and ``Linear`` layers, as there. Every proxy is computed on
a copy of the network (the caller's network is never changed), and higher is better for all:

* ``synflow`` (Tanaka et al. 2020): with BatchNorm removed (the reference's ``bn=False`` copy)
  and clamped activations (ReLU6) unclamped to ReLU (the score assumes a positive-homogeneous net),
  every parameter replaced by its absolute value and the network in double precision, the sum of
  the outputs for one all-ones input is back-propagated; score ``sum |w * dR/dw|``.
* ``snip`` (Lee et al. 2019): cross-entropy on the batch (train mode, batch-statistics BN);
  score ``sum |w * dL/dw|`` (the gradient of the loss with respect to a multiplicative mask).
* ``grad_norm``: same loss; score ``sum over layers of ||dL/dW||_2``.
* ``jacob_cov`` (Mellor et al. 2021, NASWOT v1, as in the reference): ``J`` = gradient of the
  summed outputs with respect to each input image (train mode), ``C`` = correlation matrix of the
  rows of ``J``, eigenvalues ``v``; score ``-sum(log(v + k) + 1 / (v + k))``, ``k = 1e-5``
  (``eigvalsh`` of the symmetric matrix instead of the reference's ``eig``: same values).
* ``params``: number of parameters (the baseline every proxy has to beat).

Degenerate networks: a cell whose output is disconnected from its input (NB201's all-``none``
cell, say) passes no gradient, so ``synflow``, ``snip`` and ``grad_norm`` are exactly 0 (the
lowest possible value) and ``jacob_cov``'s correlation matrix is undefined. Any NaN or -inf score
is reported as :data:`SCORE_FLOOR` (finite, below every real score) and +inf as the largest
float, so searches and JSON files never see non-finite numbers.

Example:
    >>> from hwnas.evaluate.zero_cost import ZeroCostEvaluator
    >>> from hwnas.space import NB201Space
    >>> space = NB201Space()
    >>> ev = ZeroCostEvaluator(space, proxy="synflow", batch_size=8, channels=4, cells=1)
    >>> m = ev.evaluate(space.from_index(1))
    >>> m.source, m.accuracy > 0, sorted(m.extra["all"])
    ('zero-cost:synflow', True, ['grad_norm', 'jacob_cov', 'params', 'snip', 'synflow'])
"""

from __future__ import annotations

import copy
import functools
import math
import os
import sys
import time
from typing import TYPE_CHECKING, Iterable

import numpy as np

from hwnas.evaluate.base import Evaluator, Metrics
from hwnas.evaluate.datasets import ImageData
from hwnas.space.base import Arch, SearchSpace
from hwnas.space.nb201 import OPS, NB201Space

if TYPE_CHECKING:
    import torch
    from torch import nn

PROXIES: tuple[str, ...] = ("synflow", "snip", "grad_norm", "jacob_cov", "params")
#: Score given for NaN / -inf (a network that passes no gradient): finite, below any real score.
SCORE_FLOOR = -1e30


def finite_score(value: float) -> float:
    """``value``, with NaN and -inf mapped to :data:`SCORE_FLOOR` and +inf to the largest float."""
    value = float(value)
    if math.isnan(value) or value == -math.inf:
        return SCORE_FLOOR
    return sys.float_info.max if value == math.inf else value


def _check_proxy(proxy: str) -> None:
    if proxy not in PROXIES:
        raise ValueError(f"zero-cost: unknown proxy {proxy!r}; choose one of {', '.join(PROXIES)}")


def _weighted_layers(net: nn.Module) -> list[nn.Module]:
    from torch import nn

    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _strip_batchnorm(module: nn.Module) -> None:
    """BatchNorm layers become identities and clamped ReLUs (ReLU6, Hardtanh) plain ReLUs: synflow
    scores the network as a positive linear map, and a clamp at 6 saturates under an all-ones input
    and positive weights (every MobileNet-style macro network then scored about 1e3, flat)."""
    from torch import nn

    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(module, name, nn.Identity())
        elif isinstance(child, nn.Hardtanh):  # nn.ReLU6 is a Hardtanh(0, 6)
            setattr(module, name, nn.ReLU())
        else:
            _strip_batchnorm(child)


def _synflow(net: nn.Module, x: torch.Tensor) -> float:
    import torch

    net = copy.deepcopy(net)
    _strip_batchnorm(net)
    net = net.double().eval()  # no BN left; eval keeps any dropout deterministic
    with torch.no_grad():
        for t in net.state_dict().values():
            if t.is_floating_point():
                t.abs_()
    out = net(torch.ones((1, *x.shape[1:]), dtype=torch.float64, device=x.device))
    out.sum().backward()
    layers = [m for m in _weighted_layers(net) if m.weight.grad is not None]
    return float(sum(float((m.weight.detach() * m.weight.grad).abs().sum()) for m in layers))


def _loss_grads(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    import torch.nn.functional as F

    net = copy.deepcopy(net).train()
    net.zero_grad(set_to_none=True)
    F.cross_entropy(net(x), y).backward()
    return [(m.weight.detach(), m.weight.grad.detach()) for m in _weighted_layers(net) if m.weight.grad is not None]


def _jacob_cov(net: nn.Module, x: torch.Tensor) -> float:
    import torch

    net = copy.deepcopy(net).train()
    xg = x.detach().clone().requires_grad_(True)
    out = net(xg)
    out.backward(torch.ones_like(out))
    jac = xg.grad.detach().reshape(len(x), -1).double().cpu().numpy()
    with np.errstate(all="ignore"):
        corr = np.corrcoef(jac)
        if not np.all(np.isfinite(corr)):
            return SCORE_FLOOR
        v = np.linalg.eigvalsh(corr)
        k = 1e-5
        return float(-np.sum(np.log(v + k) + 1.0 / (v + k)))


def score(net: nn.Module, x: torch.Tensor, y: torch.Tensor, proxy: str, *, seed: int = 0) -> float:
    """One proxy of ``net`` on the batch ``(x, y)`` (finite; see the module docstring).

    Any randomness in the network's forward (dropout) draws from a torch RNG seeded with ``seed``
    inside a forked RNG state, so the global RNG is untouched and the score reproducible.

    Raises:
        ValueError: unknown ``proxy``, or a batch of fewer than 2 images for ``jacob_cov``.
    """
    import torch

    _check_proxy(proxy)
    if proxy == "params":
        return float(sum(p.numel() for p in net.parameters()))
    if proxy == "jacob_cov" and len(x) < 2:
        raise ValueError("zero-cost: jacob_cov needs a batch of at least 2 images")
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        torch.manual_seed(seed)
        if proxy == "synflow":
            value = _synflow(net, x)
        elif proxy == "jacob_cov":
            value = _jacob_cov(net, x)
        else:
            pairs = _loss_grads(net, x, y)
            if proxy == "snip":
                value = sum(float((w * g).abs().sum()) for w, g in pairs)
            else:
                value = sum(float(g.norm()) for _, g in pairs)
    return finite_score(value)


def score_all(
    net: nn.Module, x: torch.Tensor, y: torch.Tensor, proxies: Iterable[str] = PROXIES, *, seed: int = 0
) -> dict[str, float]:
    """Every proxy in ``proxies`` (default: all of :data:`PROXIES`) of ``net`` on ``(x, y)``.

    Args:
        net: the (untrained) network; not modified.
        x: float32 images ``N x C x H x W`` in the network's input format.
        y: int64 labels ``N`` (used by ``snip`` and ``grad_norm``).
    """
    return {p: score(net, x, y, p, seed=seed) for p in proxies}


class ZeroCostEvaluator(Evaluator):
    """Scores architectures by a zero-cost proxy of their untrained network.

    **The returned ``Metrics.accuracy`` is the proxy score, not an accuracy**: higher is better,
    but its scale depends on the proxy (``synflow`` can reach 1e40, ``jacob_cov`` is negative),
    so compare scores of one proxy only. ``extra`` holds ``{"proxy": name, "score": value,
    "all": {proxy: score}}`` (``all``: every proxy, computed in the same call unless
    ``all_proxies=False``).

    Args:
        space: the search space; its networks must take 3-channel images. NB201 networks are built
            at ``channels`` / ``cells`` per stage (the size the score is computed at); other spaces
            use ``space.to_torch``.
        dataset: ``"digits"`` (default) or another ``load_dataset`` spec, or :class:`ImageData`.
        proxy: one of :data:`PROXIES`.
        batch_size: images in the scoring batch (drawn from the training split with ``seed``).
        resolution: images are resized to this (digits: 8x8 upsampled) and made 3-channel.
        channels, cells: NB201 network size.
        seed: seeds the network's initialisation and the batch; same seed, same score.
        all_proxies: also compute every other proxy into ``extra["all"]``.
    """

    name = "zero-cost"

    def __init__(
        self,
        space: SearchSpace,
        dataset: str | os.PathLike[str] | ImageData = "digits",
        proxy: str = "synflow",
        batch_size: int = 64,
        resolution: int = 32,
        channels: int = 16,
        cells: int = 5,
        seed: int = 0,
        all_proxies: bool = True,
    ) -> None:
        _check_proxy(proxy)
        if batch_size < 2 or resolution < 4 or channels < 1 or cells < 1:
            raise ValueError("zero-cost: need batch_size >= 2, resolution >= 4, channels >= 1 and cells >= 1")
        self.space, self.dataset, self.proxy = space, dataset, proxy
        self.batch_size, self.resolution, self.channels, self.cells = batch_size, resolution, channels, cells
        self.seed, self.all_proxies = seed, all_proxies

    @functools.cached_property
    def data(self) -> ImageData:
        """The dataset (loaded on first use)."""
        from hwnas.evaluate.datasets import resolve_dataset

        return resolve_dataset(self.dataset)

    @functools.cached_property
    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The scoring batch ``(x, y)``: ``batch_size`` training images, 3-channel, at ``resolution``."""
        import torch

        from hwnas.evaluate.supernet import image_tensor

        d = self.data
        n = min(self.batch_size, len(d.x_train))
        idx = np.sort(np.random.default_rng(self.seed).choice(len(d.x_train), n, replace=False))
        return image_tensor(d.x_train[idx], self.resolution), torch.as_tensor(d.y_train[idx])

    def network(self, arch: Arch) -> nn.Module:
        """The untrained network of ``arch`` (seeded initialisation, train mode)."""
        import torch

        if arch.space != self.space.name:
            raise ValueError(f"zero-cost evaluator covers the {self.space.name} space, not {arch.space!r}")
        if self.space.input_shape(arch)[1] != 3:
            raise ValueError(f"zero-cost: {self.space.name} networks must take 3-channel images")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            if isinstance(self.space, NB201Space):
                from hwnas.nets.nb201_net import NB201Network

                ops = [OPS[o] for o in self.space.encode(arch)]
                return NB201Network(ops, self.channels, self.cells, self.data.num_classes)
            return self.space.to_torch(arch, num_classes=self.data.num_classes)

    def evaluate(self, arch: Arch) -> Metrics:
        start = time.perf_counter()
        net = self.network(arch)
        x, y = self.batch
        proxies = PROXIES if self.all_proxies else (self.proxy,)
        scores = score_all(net, x, y, proxies, seed=self.seed)
        return Metrics(
            accuracy=scores[self.proxy],
            cost_s=time.perf_counter() - start,
            source=f"zero-cost:{self.proxy}",
            extra={"proxy": self.proxy, "score": scores[self.proxy], "all": scores, "batch_size": len(x),
                   "resolution": self.resolution, "channels": self.channels, "cells": self.cells},
        )  # fmt: skip
