"""Trained evaluators: train each candidate from scratch and report its validation accuracy.

:class:`TrainEvaluator` trains the candidate's network (downscaled if asked) on a dataset's training
split and scores top-1 accuracy on the validation split. :class:`ProxyEvaluator` is the same with
cheap defaults (a *training proxy* that ranks architectures). Every knob is a field of
:class:`TrainSettings`, and they combine.

NB201 cells are trained in ``NB201Network(ops, channels, cells)``; macro architectures in
``MacroNetwork`` with every width scaled by ``channels / 32`` (32: the stem width) and at most
``cells`` layers per stage. The macro space's input resolution (128-224) is a latency decision and
is not used: images are trained at ``resolution`` or at the dataset's native size.

Cost on digits, one CPU thread: the default ``TrainEvaluator`` (full-size NB201 C=16 N=5, 6
epochs at 8x8) takes 1.7-16 s per candidate (8 s on average); ``ProxyEvaluator`` 0.5-1.8 s (1.2 s).
``torch`` is imported on first use, never when this module is imported.

Example:
    >>> from hwnas.evaluate.train import ProxyEvaluator, TrainEvaluator, TrainSettings
    >>> from hwnas.space import NB201Space
    >>> space = NB201Space()
    >>> ev = ProxyEvaluator(space, "digits", TrainSettings(epochs=1, channels=4, cells=1, subsample=0.3))
    >>> m = ev.evaluate(space.from_index(1))
    >>> m.source, m.extra["channels"], 0.0 <= m.accuracy <= 100.0
    ('proxy:digits', 4, True)
    >>> TrainEvaluator(space, "digits", TrainSettings(epochs=1, cells=1)).evaluate(space.from_index(1)).source
    'train:digits'
"""

from __future__ import annotations

import math
import os
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator, Union

import numpy as np

from hwnas.evaluate.base import Evaluator, Metrics
from hwnas.evaluate.datasets import ImageData, load_dataset
from hwnas.space.base import Arch, SearchSpace

if TYPE_CHECKING:
    import torch
    from torch.utils.data import Dataset

    DatasetArg = Union[str, os.PathLike[str], ImageData, tuple[Dataset, Dataset]]

OPTIMIZERS = ("adam", "sgd")
_DEVICE = re.compile(r"cpu|cuda(:\d+)?")


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True)
class TrainSettings:
    """How a candidate is trained; validated on construction (a one-line ``ValueError`` per field).

    Attributes:
        epochs: passes over the (subsampled) training split, >= 1.
        batch_size: images per step, >= 1.
        lr: peak learning rate, cosine-annealed to 0 over all steps.
        weight_decay: decoupled (AdamW) or L2 (SGD) weight decay, >= 0.
        optimizer: ``"adam"`` (AdamW, the default: trains NB201's deep plain cells in few epochs
            where SGD does not) or ``"sgd"`` (momentum 0.9, Nesterov; lr ~0.05-0.1).
        subsample: fraction in (0, 1] of the training split used, stratified by class and seeded;
            the validation split is always used whole.
        resolution: images are resized bilinearly to ``resolution`` x ``resolution`` (>= 4; NB201
            needs a multiple of 4); ``None`` keeps the dataset's native size.
        channels: width: NB201 stem channels C (stages C, 2C, 4C); macro stem channels, every
            width scaled by ``channels / 32``. ``None``: the space's own width.
        cells: depth: NB201 cells per stage N; macro, at most this many layers per stage (the
            first ones). ``None``: the space's own depth.
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (checked against the machine when an
            evaluator is built).
        seed: seeds the split, the subsample, the initial weights and the batch order.
    """

    epochs: int = 6
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 5e-4
    optimizer: str = "adam"
    subsample: float = 1.0
    resolution: int | None = None
    channels: int | None = None
    cells: int | None = None
    device: str = "cpu"
    seed: int = 0

    def __post_init__(self) -> None:
        opt_int = "None (the space's default) or an integer >= 1"
        checks = (
            ("epochs", _is_int(self.epochs) and self.epochs >= 1, "an integer >= 1"),
            ("batch_size", _is_int(self.batch_size) and self.batch_size >= 1, "an integer >= 1"),
            ("lr", _is_real(self.lr) and math.isfinite(self.lr) and self.lr > 0, "a finite number > 0"),
            ("weight_decay", _is_real(self.weight_decay) and 0 <= self.weight_decay < math.inf, "finite and >= 0"),
            ("optimizer", self.optimizer in OPTIMIZERS, " or ".join(OPTIMIZERS)),
            ("subsample", _is_real(self.subsample) and 0 < self.subsample <= 1, "a fraction in (0, 1]"),
            ("resolution", self.resolution is None or (_is_int(self.resolution) and self.resolution >= 4),
             "None (native size) or an integer >= 4"),
            ("channels", self.channels is None or (_is_int(self.channels) and self.channels >= 1), opt_int),
            ("cells", self.cells is None or (_is_int(self.cells) and self.cells >= 1), opt_int),
            ("device", isinstance(self.device, str) and _DEVICE.fullmatch(self.device), "'cpu', 'cuda' or 'cuda:N'"),
            ("seed", _is_int(self.seed) and self.seed >= 0, "an integer >= 0"),
        )  # fmt: skip
        for name, ok, what in checks:
            if not ok:
                raise ValueError(f"TrainSettings.{name} must be {what}, got {getattr(self, name)!r}")


#: Defaults of :class:`TrainEvaluator`: the space's full network at the dataset's native size.
TRAIN_DEFAULTS = TrainSettings()
#: Defaults of :class:`ProxyEvaluator`; change one knob with ``dataclasses.replace(PROXY_DEFAULTS, epochs=5)``.
PROXY_DEFAULTS = TrainSettings(epochs=3, batch_size=32, lr=3e-3, subsample=0.5, resolution=16, channels=8, cells=1)


def stratified_subset(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of ``round(fraction * n_c)`` (at least 1) seeded picks from each class ``c``."""
    if fraction >= 1.0:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    picks = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        picks.append(rng.permutation(idx)[: max(1, int(round(fraction * len(idx))))])
    return np.sort(np.concatenate(picks))


def check_device(device: str) -> None:
    """Raise a one-line ``ValueError`` if ``device`` names a CUDA device this machine lacks."""
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r}: torch.cuda.is_available() is False here; use device='cpu'")
    if device.startswith("cuda") and int(device.partition(":")[2] or 0) >= torch.cuda.device_count():
        raise ValueError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) here")


def prepare_images(x: torch.Tensor, resolution: int | None) -> torch.Tensor:
    """A batch as float N x 3 x H x W: 1 channel repeated to 3, resized bilinearly if asked
    (``ValueError`` unless the images are N x H x W or N x C x H x W with C = 1 or 3)."""
    import torch.nn.functional as F

    x = x.float()
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"images must be N x C x H x W with 1 or 3 channels, got shape {tuple(x.shape)}")
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if resolution is not None and tuple(x.shape[2:]) != (resolution, resolution):
        shrink = min(x.shape[2:]) > resolution
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False, antialias=shrink)
    return x.contiguous()


def build_network(
    space: SearchSpace, arch: Arch, settings: TrainSettings, num_classes: int
) -> tuple[torch.nn.Module, int, int]:
    """The (randomly initialised) network ``arch`` is trained as, with its channels and cells;
    ``ValueError`` if ``arch`` is not of ``space`` or ``space`` is neither NB201 nor macro."""
    from hwnas.space.macro import MAX_DEPTH, STEM_CHANNELS, MacroSpace
    from hwnas.space.nb201 import OPS, NB201Space

    if arch.space != space.name:
        raise ValueError(f"{space.name} evaluator cannot train an architecture of space {arch.space!r}")
    arch = space.parse(arch.spec)
    if isinstance(space, NB201Space):
        from hwnas.nets.nb201_net import NB201Network

        channels = settings.channels or space.channels
        cells = settings.cells or space.cells_per_stage
        ops = [OPS[o] for o in space.encode(arch)]
        return NB201Network(ops, channels, cells, num_classes), channels, cells
    if isinstance(space, MacroSpace):
        from hwnas.nets.macro_net import MacroNetwork

        channels = settings.channels or STEM_CHANNELS
        cells = settings.cells or MAX_DEPTH
        stages = [(stride, width, ops[:cells]) for stride, width, ops in space.stages(arch)]
        return MacroNetwork(stages, num_classes, width_mult=channels / STEM_CHANNELS), channels, cells
    raise ValueError(f"trained evaluators know the nb201 and macro spaces, not {space.name!r}")


def _labels_of(ds: Any) -> np.ndarray:
    import torch

    targets = getattr(ds, "targets", None)
    if targets is None and hasattr(ds, "tensors"):  # TensorDataset
        targets = ds.tensors[-1]
    if targets is None:
        targets = [int(ds[i][1]) for i in range(len(ds))]
    return torch.as_tensor(targets).reshape(-1).long().numpy()


class TrainEvaluator(Evaluator):
    """Top-1 validation accuracy of a candidate trained from scratch.

    The dataset is loaded (and, for arrays, subsampled, resized and moved to the device) once in
    the constructor; each ``evaluate`` builds the network, trains it and scores it.

    Contract:
        * ``evaluate`` is deterministic for a given ``settings.seed`` and architecture on CPU (at
          one thread count); it restores torch's global RNG state and never changes thread counts.
        * ``cost_s`` is the wall time of training and validation (not loading); ``extra`` records
          the settings in effect (``epochs``, ``resolution``, ``channels``, ``cells``,
          ``subsample``, ``device``...), ``train_loss`` (last epoch's mean), ``val_loss``,
          ``n_train``, ``n_val`` and ``params``. An architecture of another space: ``ValueError``.

    Args:
        space: an :class:`~hwnas.space.NB201Space` or :class:`~hwnas.space.MacroSpace`.
        dataset: a :func:`~hwnas.evaluate.datasets.load_dataset` spec (``"digits"``, ``"cifar10"``,
            a path), an :class:`ImageData`, or a ``(train, val)`` pair of torch datasets whose
            items are ``(image C x H x W, label)`` (labels are read once, from ``.targets`` when
            the dataset has it).
        settings: how to train; ``None`` uses the class's ``default_settings``.
        num_workers: DataLoader workers for a torch dataset pair (arrays need none).
        progress: called with a one-line message after each epoch and evaluation.
    """

    name = "train"
    default_settings: TrainSettings = TRAIN_DEFAULTS

    def __init__(
        self,
        space: SearchSpace,
        dataset: DatasetArg = "digits",
        settings: TrainSettings | None = None,
        *,
        num_workers: int = 0,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        from hwnas.space.macro import MacroSpace
        from hwnas.space.nb201 import NB201Space

        if not isinstance(space, (NB201Space, MacroSpace)):
            raise ValueError(f"{self.name} evaluator trains nb201 or macro architectures, not {space.name!r}")
        if settings is not None and not isinstance(settings, TrainSettings):
            raise ValueError(f"settings must be a TrainSettings, got {type(settings).__name__}")
        if not _is_int(num_workers) or num_workers < 0:
            raise ValueError(f"num_workers must be an integer >= 0, got {num_workers!r}")
        self.space = space
        self.settings = settings or self.default_settings
        self.num_workers = int(num_workers)
        self.progress = progress
        check_device(self.settings.device)
        self._load(dataset)
        if isinstance(space, NB201Space) and any(r % 4 for r in np.atleast_1d(self.resolution)):
            msg = f"resolution must be a multiple of 4, got {self.resolution}; set TrainSettings.resolution"
            raise ValueError(f"nb201 networks halve the image twice: {msg}")

    # -- data --------------------------------------------------------------------------------
    def _load(self, dataset: DatasetArg) -> None:
        from torch.utils.data import Subset, TensorDataset

        s = self.settings
        self._in_memory = not isinstance(dataset, (tuple, list))
        if self._in_memory:  # arrays: subsampled, prepared and moved to the device once
            data = dataset if isinstance(dataset, ImageData) else load_dataset(dataset, seed=s.seed)
            keep = stratified_subset(data.y_train, s.subsample, s.seed)
            x_train, y_train = self._tensors(data.x_train[keep], data.y_train[keep])
            self._train_ds = TensorDataset(x_train, y_train)
            self._val_ds = TensorDataset(*self._tensors(data.x_val, data.y_val))
            self.dataset_name, self.num_classes = data.name, data.num_classes
            h, w = x_train.shape[2:]
        else:
            if len(dataset) != 2 or not all(hasattr(d, "__getitem__") and hasattr(d, "__len__") for d in dataset):
                raise ValueError("dataset pair must be (train, val) torch Datasets with __getitem__ and __len__")
            train, self._val_ds = dataset
            labels, val_labels = _labels_of(train), _labels_of(self._val_ds)
            if len(labels) == 0 or len(val_labels) == 0:
                raise ValueError("dataset pair: the training and validation datasets must not be empty")
            keep = stratified_subset(labels, s.subsample, s.seed)
            self._train_ds = Subset(train, keep.tolist()) if len(keep) < len(train) else train
            self.dataset_name = getattr(train, "name", type(train).__name__)
            self.num_classes = int(max(labels.max(), val_labels.max()) + 1)
            h, w = (s.resolution, s.resolution) if s.resolution else np.shape(train[0][0])[-2:]
        self.n_train, self.n_val = len(self._train_ds), len(self._val_ds)
        self.resolution = int(h) if h == w else [int(h), int(w)]

    def _tensors(self, x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        dev = torch.device(self.settings.device)
        return prepare_images(torch.from_numpy(x), self.settings.resolution).to(dev), torch.from_numpy(y).long().to(dev)

    def _batches(self, train: bool, gen: torch.Generator | None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Prepared ``(images, labels)`` batches on the device (train: shuffled, no size-1 batch)."""
        import torch
        from torch.utils.data import BatchSampler, DataLoader

        s = self.settings
        ds = self._train_ds if train else self._val_ds
        order = torch.randperm(len(ds), generator=gen).tolist() if train else range(len(ds))
        batches = BatchSampler(order, s.batch_size if train else 4 * s.batch_size, train and self._drop_last)
        if self._in_memory:  # a TensorDataset indexed by a list of indices returns the whole batch
            loader = DataLoader(ds, sampler=batches, batch_size=None)
        else:
            loader = DataLoader(ds, batch_sampler=batches, num_workers=self.num_workers, pin_memory=s.device != "cpu")
        for x, y in loader:
            yield prepare_images(x, s.resolution).to(s.device), torch.as_tensor(y).long().to(s.device)

    @property
    def _drop_last(self) -> bool:
        """Whether training drops a last batch of one image (BatchNorm needs two or more)."""
        return self.n_train % self.settings.batch_size == 1 and self.n_train > 1

    # -- evaluation --------------------------------------------------------------------------
    def evaluate(self, arch: Arch) -> Metrics:
        import torch

        s = self.settings
        start = time.perf_counter()
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(s.seed)
            net, channels, cells = build_network(self.space, arch, s, self.num_classes)
            net = net.to(s.device)
            gen = torch.Generator().manual_seed(s.seed)
            train_loss = self._train(net, gen, arch)
            accuracy, val_loss = self._validate(net)
        cost = time.perf_counter() - start
        if self.progress is not None:
            self.progress(f"{self.name} {self.space.key(arch)}: val accuracy {accuracy:.2f}% ({cost:.1f}s)")
        extra = {  # losses: None if training diverged (NaN is not JSON)
            "epochs": s.epochs, "train_loss": _finite(train_loss), "val_loss": _finite(val_loss),
            "n_train": self.n_train, "n_val": self.n_val, "resolution": self.resolution,
            "channels": channels, "cells": cells, "subsample": s.subsample, "device": s.device,
            "params": int(sum(p.numel() for p in net.parameters())), "batch_size": s.batch_size,
            "optimizer": s.optimizer, "lr": s.lr, "seed": s.seed,
        }  # fmt: skip
        return Metrics(round(accuracy, 4), cost_s=cost, source=f"{self.name}:{self.dataset_name}", extra=extra)

    def _train(self, net: torch.nn.Module, gen: torch.Generator, arch: Arch) -> float:
        """Train ``net`` in place; return the mean training loss of the last epoch."""
        import torch
        import torch.nn.functional as F

        s = self.settings
        if s.optimizer == "adam":
            opt: torch.optim.Optimizer = torch.optim.AdamW(net.parameters(), s.lr, weight_decay=s.weight_decay)
        else:
            opt = torch.optim.SGD(net.parameters(), s.lr, momentum=0.9, nesterov=True, weight_decay=s.weight_decay)
        steps = s.epochs * max(1, math.ceil(self.n_train / s.batch_size) - self._drop_last)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
        mean_loss = math.nan
        for epoch in range(1, s.epochs + 1):
            net.train()
            total = torch.zeros((), device=s.device)
            seen = 0
            for x, y in self._batches(True, gen):
                loss = F.cross_entropy(net(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if sched.last_epoch < steps:
                    sched.step()
                total += loss.detach() * len(y)
                seen += len(y)
            mean_loss = float(total) / max(seen, 1)
            if self.progress is not None:
                self.progress(f"{self.name} {self.space.key(arch)}: epoch {epoch}/{s.epochs} loss {mean_loss:.4f}")
        return mean_loss

    def _validate(self, net: torch.nn.Module) -> tuple[float, float]:
        """Top-1 accuracy (%) and mean cross-entropy of ``net`` on the validation split."""
        import torch
        import torch.nn.functional as F

        net.eval()
        correct, loss, seen = 0, 0.0, 0
        with torch.no_grad():
            for x, y in self._batches(False, None):
                out = net(x)
                loss += float(F.cross_entropy(out, y, reduction="sum"))
                correct += int((out.argmax(1) == y).sum())
                seen += len(y)
        return 100.0 * correct / max(seen, 1), loss / max(seen, 1)


class ProxyEvaluator(TrainEvaluator):
    """A training proxy: :class:`TrainEvaluator` with cheap defaults (:data:`PROXY_DEFAULTS`: 3
    epochs, batch 32, Adam lr 3e-3, half the training split at 16x16, C=8, one cell per stage).
    Its accuracy ranks architectures, it does not measure them; ``source`` reads ``proxy:<dataset>``.
    """

    name = "proxy"
    default_settings = PROXY_DEFAULTS
