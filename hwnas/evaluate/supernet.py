"""Weight-sharing evaluator: one NB201 supernet trained once, every candidate inherits its weights.

One-shot NAS (Bender et al. 2018; ENAS; Guo et al. 2020, "Single Path One-Shot", SPOS): the
supernet (:class:`~hwnas.nets.nb201_supernet.NB201Supernet`) is trained once with a uniformly
sampled single path per batch. A candidate is then scored without training it: its path of the
supernet is copied out, its BatchNorm statistics are recalibrated on a few training batches (the
shared running statistics mix every path and are wrong for any one of them; recalibrating them is
what makes one-shot accuracies rank architectures at all), optionally fine-tuned a few steps, and
its validation accuracy is returned.

The supernet is trained lazily by the first ``evaluate`` (or explicitly by :meth:`train`) and can
be saved and loaded without pickle (:meth:`SupernetEvaluator.save`, :meth:`~SupernetEvaluator.load`).
Evaluators in several processes would each train their own supernet: train and save it once, and
have every worker ``load`` it.

Example:
    >>> from hwnas.evaluate.supernet import SupernetEvaluator
    >>> from hwnas.space import NB201Space
    >>> space = NB201Space()
    >>> ev = SupernetEvaluator(space, epochs=1, channels=4, resolution=8)
    >>> 0.0 <= ev.evaluate(space.from_index(1)).accuracy <= 100.0
    True
"""

from __future__ import annotations

import copy
import functools
import io
import json
import math
import os
import time
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from hwnas.evaluate.base import Evaluator, Metrics
from hwnas.evaluate.datasets import ImageData, resolve_dataset
from hwnas.space.base import Arch, SearchSpace
from hwnas.space.nb201 import NB201Space

if TYPE_CHECKING:
    import torch

    from hwnas.nets.nb201_supernet import NB201Supernet

FORMAT = "hwnas.supernet/1"


def image_tensor(x: np.ndarray, resolution: int, device: str = "cpu") -> torch.Tensor:
    """Images ``x`` (float32 N x C x H x W, C = 1 or 3) as a 3-channel ``resolution``-square tensor
    on ``device`` (see :func:`hwnas.evaluate.train.prepare_images`)."""
    import torch

    from hwnas.evaluate.train import prepare_images

    return prepare_images(torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32)), resolution).to(device)


def cosine_lr(base: float, step: int, total: int) -> float:
    """Cosine-annealed learning rate at ``step`` of ``total`` (reaches 0 at ``total``, then stays)."""
    return 0.5 * base * (1.0 + math.cos(math.pi * min(step, total) / max(total, 1)))


class SupernetEvaluator(Evaluator):
    """Validation accuracy (%) of an NB201 cell with weights inherited from a shared supernet.

    Args:
        space: the NB201 space (the only one with a supernet).
        dataset: ``"digits"`` (default), another :func:`~hwnas.evaluate.datasets.load_dataset` spec,
            or :class:`ImageData`; images are made 3-channel at ``resolution``.
        epochs: supernet training epochs (one uniformly sampled path per batch).
        channels, cells: supernet width C and cells per stage N.
        resolution: input height and width.
        batch_size: training batch size (also of BN recalibration and fine-tuning).
        lr, momentum, weight_decay: SGD (Nesterov) with cosine annealing over the whole training.
        bn_batches: training batches that recalibrate a candidate's BatchNorm statistics.
        finetune_steps: SGD steps (at ``finetune_lr``) on a copy of the candidate's path before
            scoring it (0: none).
        device: torch device string.
        seed: seeds initialisation, path sampling, batch order, BN batches and fine-tuning.
        progress: called as ``progress(epoch, epochs, mean_loss)`` after each training epoch.

    ``evaluate(arch)`` returns ``Metrics(accuracy=validation accuracy %, cost_s=evaluation time
    (not the one-time supernet training, which is ``extra["supernet_train_s"]``),
    source="supernet:<dataset>")``. The same seed, settings and architecture give the same metrics;
    evaluation never changes the supernet's stored weights or statistics.

    Attributes:
        net_: the trained supernet (None before training or loading).
        train_s_: seconds the supernet training took (as recorded, when loaded).
    """

    name = "supernet"

    def __init__(
        self,
        space: SearchSpace,
        dataset: str | os.PathLike[str] | ImageData = "digits",
        *,
        epochs: int = 40,
        channels: int = 8,
        cells: int = 1,
        resolution: int = 16,
        batch_size: int = 64,
        lr: float = 0.05,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        bn_batches: int = 4,
        finetune_steps: int = 0,
        finetune_lr: float = 0.01,
        device: str = "cpu",
        seed: int = 0,
        progress: Callable[[int, int, float], None] | None = None,
    ) -> None:
        if not isinstance(space, NB201Space):
            raise ValueError(f"supernet evaluator covers the nb201 space only, not {space.name!r}")
        if min(epochs, channels, cells, bn_batches) < 1 or batch_size < 2 or resolution < 4 or finetune_steps < 0:
            raise ValueError("supernet: need epochs, channels, cells, bn_batches >= 1, batch_size >= 2, "
                             "resolution >= 4 and finetune_steps >= 0")  # fmt: skip
        self.space = space
        self.dataset = dataset
        self.epochs, self.channels, self.cells, self.resolution = epochs, channels, cells, resolution
        self.batch_size, self.lr, self.momentum, self.weight_decay = batch_size, lr, momentum, weight_decay
        self.bn_batches, self.finetune_steps, self.finetune_lr = bn_batches, finetune_steps, finetune_lr
        self.device, self.seed, self.progress = device, seed, progress
        self.net_: NB201Supernet | None = None
        self.train_s_: float | None = None

    # -- data ----------------------------------------------------------------------------------
    @functools.cached_property
    def data(self) -> ImageData:
        """The dataset (loaded on first use)."""
        return resolve_dataset(self.dataset)

    @functools.cached_property
    def _tensors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        import torch

        d = self.data
        return (
            image_tensor(d.x_train, self.resolution, self.device), torch.as_tensor(d.y_train, device=self.device),
            image_tensor(d.x_val, self.resolution, self.device), torch.as_tensor(d.y_val, device=self.device),
        )  # fmt: skip

    def _batches(self, order: np.ndarray) -> list[np.ndarray]:
        chunks = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        return [c for c in chunks if len(c) >= 2] or [order]

    def config(self) -> dict[str, Any]:
        """What determines the supernet's shape and inputs (checked by :meth:`load`)."""
        return {"channels": self.channels, "cells": self.cells, "num_classes": self.data.num_classes,
                "resolution": self.resolution, "dataset": self.data.name}  # fmt: skip

    # -- training ------------------------------------------------------------------------------
    def build(self) -> NB201Supernet:
        """A freshly initialised supernet (seeded; no global RNG touched)."""
        import torch

        from hwnas.nets.nb201_supernet import NB201Supernet

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            net = NB201Supernet(self.channels, self.cells, self.data.num_classes)
        return net.to(self.device)

    def train(self) -> SupernetEvaluator:
        """Train the supernet (SPOS: a uniform random path per batch); returns ``self``."""
        import torch
        import torch.nn.functional as F

        start = time.perf_counter()
        xt, yt, _, _ = self._tensors
        net = self.build()
        rng = np.random.default_rng([self.seed, 0])
        opt = torch.optim.SGD(net.parameters(), lr=self.lr, momentum=self.momentum,
                              weight_decay=self.weight_decay, nesterov=self.momentum > 0)  # fmt: skip
        total = self.epochs * len(self._batches(np.arange(len(xt))))
        step = 0
        net.train()
        for epoch in range(self.epochs):
            losses = []
            for idx in self._batches(rng.permutation(len(xt))):
                ops = rng.integers(0, 5, size=6).tolist()
                for group in opt.param_groups:
                    group["lr"] = cosine_lr(self.lr, step, total)
                loss = F.cross_entropy(net(xt[idx], ops), yt[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
                opt.step()
                losses.append(loss.item())
                step += 1
            if self.progress is not None:
                self.progress(epoch + 1, self.epochs, float(np.mean(losses)))
        net.eval()
        self.net_, self.train_s_ = net, time.perf_counter() - start
        return self

    # -- evaluation ----------------------------------------------------------------------------
    def evaluate(self, arch: Arch) -> Metrics:
        if arch.space != self.space.name:
            raise ValueError(f"supernet evaluator covers the nb201 space only, not {arch.space!r}")
        ops = self.space.encode(arch).tolist()
        if self.net_ is None:
            self.train()
        start = time.perf_counter()
        net = self.path_network(ops)
        acc, loss = self._validate(net, ops)
        return Metrics(
            accuracy=round(acc, 4),
            cost_s=time.perf_counter() - start,
            source=f"supernet:{self.data.name}",
            extra={"val_loss": round(loss, 6), "supernet_train_s": round(float(self.train_s_ or 0.0), 3),
                   "epochs": self.epochs, "channels": self.channels, "cells": self.cells,
                   "resolution": self.resolution, "bn_batches": self.bn_batches,
                   "finetune_steps": self.finetune_steps},
        )  # fmt: skip

    def path_network(self, ops: list[int]) -> NB201Supernet:
        """A copy of the trained supernet prepared for path ``ops`` (6 op indices): fine-tuned
        ``finetune_steps`` steps if asked, BatchNorm statistics recalibrated, in eval mode.
        The stored supernet is left untouched."""
        import torch
        import torch.nn.functional as F

        if self.net_ is None:
            raise ValueError("supernet: not trained yet; call train() or load() first")
        xt, yt, _, _ = self._tensors
        net = copy.deepcopy(self.net_)
        if self.finetune_steps:
            rng = np.random.default_rng([self.seed, 2, *ops])
            opt = torch.optim.SGD(net.parameters(), lr=self.finetune_lr, momentum=self.momentum)
            net.train()
            for _ in range(self.finetune_steps):
                idx = rng.choice(len(xt), size=min(self.batch_size, len(xt)), replace=False)
                loss = F.cross_entropy(net(xt[idx], ops), yt[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        for m in net.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.reset_running_stats()
                m.momentum = None  # cumulative average over the recalibration batches
        net.train()
        with torch.no_grad():
            for idx in self._bn_batches:
                net(xt[idx], ops)
        return net.eval()

    @functools.cached_property
    def _bn_batches(self) -> list[np.ndarray]:
        n = len(self._tensors[0])
        order = np.random.default_rng([self.seed, 1]).permutation(n)
        return self._batches(order)[: self.bn_batches]

    def _validate(self, net: NB201Supernet, ops: list[int]) -> tuple[float, float]:
        import torch
        import torch.nn.functional as F

        _, _, xv, yv = self._tensors
        correct, loss = 0, 0.0
        with torch.no_grad():
            for i in range(0, len(xv), 256):
                out = net(xv[i : i + 256], ops)
                loss += float(F.cross_entropy(out, yv[i : i + 256], reduction="sum"))
                correct += int((out.argmax(1) == yv[i : i + 256]).sum())
        return 100.0 * correct / max(len(xv), 1), loss / max(len(xv), 1)

    # -- persistence ---------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the trained supernet: a ``torch.save`` file of plain tensors and a JSON config
        string (loadable with ``weights_only=True``; nothing is pickled)."""
        import torch

        import hwnas
        from hwnas.fileio import atomic_write_bytes

        if self.net_ is None:
            raise ValueError("supernet: nothing to save; call train() first")
        config = {**self.config(), "epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr,
                  "seed": self.seed, "train_s": self.train_s_, "hwnas": hwnas.__version__,
                  "torch": torch.__version__}  # fmt: skip
        state = {k: v.detach().cpu() for k, v in self.net_.state_dict().items()}
        buf = io.BytesIO()
        torch.save({"format": FORMAT, "config": json.dumps(config, sort_keys=True), "state_dict": state}, buf)
        atomic_write_bytes(path, buf.getvalue())

    def load(self, path: str | os.PathLike[str]) -> SupernetEvaluator:
        """Load a supernet written by :meth:`save` (``torch.load(weights_only=True)``); returns ``self``.

        Raises:
            ValueError: not a supernet file, or trained with another shape, resolution or dataset.
        """
        import torch

        try:
            blob = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as exc:  # noqa: BLE001 - report any unreadable file the same way
            raise ValueError(f"{path}: not a readable supernet file ({type(exc).__name__})") from None
        if not isinstance(blob, dict) or blob.get("format") != FORMAT:
            raise ValueError(f"{path}: not an hwnas supernet file (format {FORMAT})")
        saved = json.loads(blob["config"])
        diff = [f"{k}={saved.get(k)!r} (here {v!r})" for k, v in self.config().items() if saved.get(k) != v]
        if diff:
            raise ValueError(f"{path}: supernet was trained with {', '.join(diff)}; construct the evaluator to match")
        net = self.build()
        net.load_state_dict(blob["state_dict"])
        self.net_, self.train_s_ = net.eval(), float(saved.get("train_s") or 0.0)
        return self
