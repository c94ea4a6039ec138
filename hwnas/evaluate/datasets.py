"""Image classification datasets for the trained evaluators, as numpy arrays (no downloads).

``load_dataset(spec)`` understands:

* ``digits``: scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes), offline;
* ``cifar10``: the CIFAR-10 *binary* version (``cifar-10-batches-bin``) from ``$HWNAS_CIFAR10`` or
  ``./data/cifar-10-batches-bin``; the pickled "python version" is refused on purpose (unpickling a
  file someone handed you runs their code);
* a path: a ``cifar-10-batches-bin`` folder, or an ``.npz`` file with arrays ``x`` (N,H,W), (N,H,W,C)
  or (N,C,H,W), uint8 or float, and ``y`` (N,) integer labels; optional ``x_val``/``y_val`` give a
  fixed validation split.

Images come back as float32 (N, C, H, W), standardised per channel with training-split statistics;
labels as int64. The train/validation split is stratified and depends only on ``seed``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CIFAR_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR_TEST = "test_batch.bin"
_CIFAR_RECORD = 1 + 3 * 32 * 32


@dataclass(frozen=True)
class ImageData:
    """A dataset split into training and validation arrays.

    Attributes:
        name: what was loaded (``digits``, ``cifar10``, a file name).
        x_train, y_train, x_val, y_val: images (float32, N×C×H×W) and labels (int64).
        num_classes: number of classes (labels are 0..num_classes-1).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    num_classes: int

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]


def resolve_dataset(dataset: str | os.PathLike[str] | ImageData) -> ImageData:
    """``dataset`` as :class:`ImageData`: a spec for :func:`load_dataset` is loaded, data passes through."""
    return dataset if isinstance(dataset, ImageData) else load_dataset(dataset)


def load_dataset(spec: str | os.PathLike[str], *, seed: int = 0, val_fraction: float = 0.2) -> ImageData:
    """Load ``spec`` (see the module docstring) with a seeded, stratified validation split.

    Raises:
        ValueError: unknown name, missing or malformed files; the message says what to provide.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    text = str(spec)
    if text == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        x = (d.images.astype(np.float32) / 16.0)[:, None]
        return _split("digits", x, d.target.astype(np.int64), seed, val_fraction)
    if text == "cifar10":
        folder = Path(os.environ.get("HWNAS_CIFAR10", "data/cifar-10-batches-bin"))
        if not folder.is_dir():
            raise ValueError(
                f"--dataset cifar10: no CIFAR-10 binary folder at {folder}; set HWNAS_CIFAR10 to your "
                "cifar-10-batches-bin folder or pass its path as --dataset PATH"
            )
        return _cifar(folder)
    path = Path(text)
    if path.is_dir():
        return _cifar(path)
    if path.suffix == ".npz" and path.is_file():
        return _npz(path, seed, val_fraction)
    if path.suffix == ".npz" or path.exists():
        raise ValueError(f"--dataset {text}: not a readable .npz file or cifar-10-batches-bin folder")
    raise ValueError(f"--dataset {text!r}: use digits, cifar10, a cifar-10-batches-bin folder or an .npz file")


def _cifar(folder: Path) -> ImageData:
    if (folder / "data_batch_1").exists() and not (folder / "data_batch_1.bin").exists():
        raise ValueError(
            f"{folder} holds the pickled CIFAR-10 'python version', which hwnas will not unpickle; "
            "use the binary version (cifar-10-batches-bin)"
        )
    missing = [f for f in (*CIFAR_FILES, CIFAR_TEST) if not (folder / f).is_file()]
    if missing:
        raise ValueError(f"{folder} is not a cifar-10-batches-bin folder: missing {', '.join(missing)}")

    def read(files: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        raw = np.concatenate([np.fromfile(folder / f, dtype=np.uint8) for f in files])
        if raw.size % _CIFAR_RECORD:
            raise ValueError(f"{folder}: batch files are truncated (size not a multiple of {_CIFAR_RECORD} bytes)")
        rec = raw.reshape(-1, _CIFAR_RECORD)
        return rec[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / 255.0, rec[:, 0].astype(np.int64)

    xt, yt = read(CIFAR_FILES)
    xv, yv = read((CIFAR_TEST,))
    return _standardise("cifar10", xt, yt, xv, yv)


def _npz(path: Path, seed: int, val_fraction: float) -> ImageData:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise ValueError(f"--dataset {path}: cannot read it as .npz ({exc})") from None
    if "x" not in arrays or "y" not in arrays:
        raise ValueError(f"--dataset {path}: needs arrays 'x' (images) and 'y' (labels), has {sorted(arrays)}")
    x, y = _as_nchw(arrays["x"], path), _labels(arrays["y"], path)
    if len(x) != len(y):
        raise ValueError(f"--dataset {path}: {len(x)} images but {len(y)} labels")
    if "x_val" in arrays and "y_val" in arrays:
        xv, yv = _as_nchw(arrays["x_val"], path), _labels(arrays["y_val"], path)
        return _standardise(path.name, x, y, xv, yv)
    return _split(path.name, x, y, seed, val_fraction)


def _as_nchw(x: np.ndarray, path: Path) -> np.ndarray:
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255.0
    elif not np.issubdtype(x.dtype, np.number):
        raise ValueError(f"--dataset {path}: images must be numeric, got {x.dtype}")
    x = x.astype(np.float32)
    if x.ndim == 3:
        return x[:, None]
    if x.ndim == 4:
        return x if x.shape[1] in (1, 3) or x.shape[3] not in (1, 3) else x.transpose(0, 3, 1, 2).copy()
    raise ValueError(f"--dataset {path}: images must be (N,H,W), (N,H,W,C) or (N,C,H,W), got shape {x.shape}")


def _labels(y: np.ndarray, path: Path) -> np.ndarray:
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or (y.size and y.min() < 0):
        raise ValueError(f"--dataset {path}: labels must be a 1-D array of non-negative integers")
    return y.astype(np.int64)


def _split(name: str, x: np.ndarray, y: np.ndarray, seed: int, val_fraction: float) -> ImageData:
    from sklearn.model_selection import train_test_split

    classes, counts = np.unique(y, return_counts=True)
    stratify = y if counts.min() >= 2 else None
    xt, xv, yt, yv = train_test_split(x, y, test_size=val_fraction, random_state=seed, stratify=stratify)
    return _standardise(name, xt, yt, xv, yv)


def _standardise(name: str, xt: np.ndarray, yt: np.ndarray, xv: np.ndarray, yv: np.ndarray) -> ImageData:
    mean = xt.mean(axis=(0, 2, 3), keepdims=True)
    std = xt.std(axis=(0, 2, 3), keepdims=True) + 1e-6
    n_classes = int(max(yt.max(initial=0), yv.max(initial=0)) + 1)
    return ImageData(name, ((xt - mean) / std).astype(np.float32), yt, ((xv - mean) / std).astype(np.float32), yv, n_classes)
