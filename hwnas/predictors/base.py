"""The latency-predictor interface and its file format.

A predictor maps the graph of a model to its latency on a device. All predictors (FLOPs-linear,
params-linear, lookup table, GBDT, GNN) answer the same question, so search code holds a
:class:`Predictor` without caring which one.

File format (never pickle): one JSON document ::

    {"format": "hwnas-predictor", "format_version": 1, "kind": "gnn", "config": {...},
     "fingerprint": {"hwnas": "0.1.0", "encoder_version": 1, "spaces": ["nb201"],
                     "devices": [...], "trained_on": [...model keys...]},
     "state": {"name": {"dtype": "float32", "shape": [..], "data": "<base64>"}, ...}}

Arrays are stored as base64 of their little-endian bytes; loading checks the format version, the
encoder version and the kind, and refuses anything else with a one-line message.
"""

from __future__ import annotations

import abc
import base64
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hwnas.graph.data import GraphData
from hwnas.predictors.records import LatencyRecord, PredictorError

FORMAT = "hwnas-predictor"
FORMAT_VERSION = 1


def encode_array(a: np.ndarray) -> dict[str, Any]:
    """JSON-able form of a numeric array (dtype, shape, base64 of little-endian bytes)."""
    a = np.ascontiguousarray(a)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"only numeric arrays can be saved, got {a.dtype}")
    le = a.astype(a.dtype.newbyteorder("<"), copy=False)
    return {"dtype": a.dtype.str.lstrip("<>|="), "shape": list(a.shape), "data": base64.b64encode(le.tobytes()).decode()}


def decode_array(obj: dict[str, Any]) -> np.ndarray:
    """Inverse of :func:`encode_array` (no pickle, no object arrays)."""
    dtype = np.dtype(obj["dtype"]).newbyteorder("<")
    if dtype.kind not in "biuf":
        raise PredictorError(f"predictor file holds an array of unsupported dtype {obj['dtype']!r}")
    raw = base64.b64decode(obj["data"])
    return np.frombuffer(raw, dtype=dtype).reshape(obj["shape"]).astype(dtype.newbyteorder("="))


class Predictor(abc.ABC):
    """Predicts latency (milliseconds) from model graphs.

    Contract (scikit-learn style):
        * The constructor only stores its parameters; learned state lives in attributes ending in
          ``_`` and is set by :meth:`fit`, which returns ``self``.
        * ``fit(records)`` learns from :class:`LatencyRecord` s of one or more devices.
          Predictors that model one device refuse records of several with :class:`PredictorError`.
        * ``predict(graphs, device=None)`` returns float64 milliseconds, one per graph, > 0.
          ``device`` picks a device of a multi-device predictor; ``None`` means the only (or the
          adapted) device. An unknown device raises :class:`PredictorError` naming the known ones.
        * ``state()`` / ``from_state()`` round-trip the learned state through JSON-able config and
          numpy arrays, so :func:`save_predictor` / :func:`load_predictor` never pickle.
        * ``fit`` also sets ``support_`` (:class:`hwnas.predictors.support.Support`: what the
          training data covered); :func:`hwnas.predictors.calibration.calibrate` sets
          ``calibration_`` (out-of-fold log residuals per device). Both are saved with the file, and
          :func:`hwnas.predictors.support.predict_interval` turns them into bounded predictions
          with intervals and extrapolation flags.
        * Instances are not thread-safe while fitting; ``predict`` does not mutate.
    """

    #: Short name used by the CLI (``--kind``) and in files.
    kind: str = ""

    @abc.abstractmethod
    def fit(self, records: Sequence[LatencyRecord]) -> Predictor:
        """Learn from ``records``; returns ``self``."""

    @abc.abstractmethod
    def predict(self, graphs: Sequence[GraphData], device: str | None = None) -> np.ndarray:
        """Latency in milliseconds of each graph on ``device``."""

    @property
    def devices(self) -> list[str]:
        """Devices this predictor can predict for (after ``fit``)."""
        return list(getattr(self, "devices_", []))

    @abc.abstractmethod
    def get_config(self) -> dict[str, Any]:
        """Constructor parameters, JSON-able."""

    @abc.abstractmethod
    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Learned state: a JSON-able dict and named numpy arrays."""

    @abc.abstractmethod
    def set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`get_state` returned."""

    def _check_fitted(self) -> None:
        if not getattr(self, "devices_", None):
            raise PredictorError(f"{self.kind} predictor is not fitted: call fit() first")

    def _device_index(self, device: str | None) -> int:
        self._check_fitted()
        devices = self.devices
        if device is None:
            if len(devices) == 1:
                return 0
            raise PredictorError(f"this predictor knows {len(devices)} devices; choose one of: {', '.join(devices)}")
        if device not in devices:
            raise PredictorError(f"unknown device {device!r}; this predictor knows: {', '.join(devices)}")
        return devices.index(device)


def check_records(records: Sequence[LatencyRecord], minimum: int = 2) -> None:
    """Validate training records: enough of them, positive finite latencies."""
    if len(records) < minimum:
        raise PredictorError(f"need at least {minimum} measured models to fit, got {len(records)}")
    bad = [r for r in records if not (np.isfinite(r.latency_ms) and r.latency_ms > 0)]
    if bad:
        raise PredictorError(f"latency must be a positive number, got {bad[0].latency_ms!r} for {bad[0].key}")


def single_device(records: Sequence[LatencyRecord], kind: str) -> str:
    """The one device of ``records``; :class:`PredictorError` if they span several.

    Used by every single-device predictor.
    """
    devices = sorted({r.device for r in records})
    if len(devices) != 1:
        raise PredictorError(
            f"the {kind} predictor models one device, records span {len(devices)}: {', '.join(devices)}"
            "; fit one per device"
        )
    return devices[0]


@dataclass
class PredictorFile:
    """A predictor with the fingerprint of what produced it."""

    predictor: Predictor
    fingerprint: dict[str, Any] = field(default_factory=dict)


def save_predictor(pred: Predictor, path: str | os.PathLike, fingerprint: dict[str, Any]) -> Path:
    """Write ``pred`` to ``path`` as one JSON document, atomically."""
    from hwnas import __version__
    from hwnas.fileio import atomic_write_bytes
    from hwnas.graph.encode import ENCODER_VERSION

    meta, arrays = pred.get_state()
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": pred.kind,
        "config": pred.get_config(),
        "fingerprint": {"hwnas": __version__, "encoder_version": ENCODER_VERSION, **fingerprint},
        "meta": meta,
        "state": {k: encode_array(v) for k, v in arrays.items()},
    }
    support = getattr(pred, "support_", None)
    if support is not None:  # what the training data covered (hwnas.predictors.support)
        doc["support"] = support.state()
    calibration = getattr(pred, "calibration_", None)
    if calibration:  # out-of-fold log residuals per device (hwnas.predictors.calibration)
        doc["calibration"] = {d: [float(v) for v in r] for d, r in calibration.items()}
    path = Path(path)
    atomic_write_bytes(path, json.dumps(doc, sort_keys=True).encode())
    return path


def load_predictor(path: str | os.PathLike, kinds: dict[str, type[Predictor]]) -> PredictorFile:
    """Read a predictor file written by :func:`save_predictor`.

    Args:
        kinds: the predictor classes by ``kind`` (from :func:`hwnas.predictors.predictor_kinds`).

    Raises:
        PredictorError: not a predictor file, another format or encoder version, unknown kind.
    """
    from hwnas.graph.encode import ENCODER_VERSION

    p = Path(path)
    if not p.is_file():
        raise PredictorError(f"{p}: no such predictor file")
    try:
        doc = json.loads(p.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise PredictorError(f"{p}: not a predictor file (not JSON)") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise PredictorError(f"{p}: not an hwnas predictor file")
    if doc.get("format_version") != FORMAT_VERSION:
        raise PredictorError(
            f"{p}: predictor file format v{doc.get('format_version')}, this hwnas reads v{FORMAT_VERSION}; retrain it"
        )
    fp = doc.get("fingerprint")
    if not isinstance(fp, dict):
        raise PredictorError(f"{p}: damaged predictor file (no fingerprint)")
    if fp.get("encoder_version") != ENCODER_VERSION:
        raise PredictorError(
            f"{p}: made with graph encoder v{fp.get('encoder_version')}, this hwnas has v{ENCODER_VERSION}; retrain it"
        )
    cls = kinds.get(doc.get("kind", ""))
    if cls is None:
        raise PredictorError(f"{p}: unknown predictor kind {doc.get('kind')!r}")
    try:
        pred = cls(**doc.get("config", {}))
        pred.set_state(doc.get("meta", {}), {k: decode_array(v) for k, v in doc.get("state", {}).items()})
        if isinstance(doc.get("support"), dict):
            from hwnas.predictors.support import Support

            pred.support_ = Support.from_state(doc["support"])
        if isinstance(doc.get("calibration"), dict):
            pred.calibration_ = {str(d): np.asarray(r, dtype=np.float64) for d, r in doc["calibration"].items()}
    except PredictorError:
        raise
    except (TypeError, KeyError, ValueError, AttributeError) as exc:
        raise PredictorError(f"{p}: damaged or incompatible predictor file ({type(exc).__name__}: {exc})") from None
    return PredictorFile(pred, fp)
