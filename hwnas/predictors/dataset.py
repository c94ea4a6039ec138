"""Training data for predictors, read from the latency database.

One row per (model, device): the newest OK measurement's median under one configuration of the
device (:class:`Configuration`: device id, runtime, provider, threads, protocol config hash), so a
CPU run and a CUDA run, or two boards that share a name, never become one training set. A model is
identified by its ONNX sha256, or by ``"space:arch"`` for rows imported from a table without a
file; its graph comes from :class:`hwnas.graph.resolve.GraphResolver` (cache, candidate folders, or
export of the arch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np

from hwnas.predictors.base import LatencyRecord, PredictorError
from latency_db import LatencyDB, MeasurementRecord, Status
from latency_db.records import REFERENCE_SPACE


@dataclass(frozen=True)
class Row:
    """A model's latency on a device, before its graph is attached."""

    key: str
    sha256: str | None
    space: str | None
    arch: str | None
    device: str
    latency_ms: float
    node_profile: dict[str, float] | None = None


def model_key(sha256: str | None, space: str | None, arch: str | None) -> str:
    """Identity of a model in predictor files: the ONNX sha256, else ``"space:arch"``."""
    if sha256:
        return sha256
    if space and arch:
        return f"{space}:{arch}"
    raise PredictorError("a measurement has neither a model sha256 nor a space and arch")


@dataclass(frozen=True)
class Configuration:
    """One way a device was measured: the key of a training set.

    Attributes:
        device_id: the device's id (two boards that share a name have two).
        runtime, provider: e.g. ``onnxruntime``, ``cpu``.
        threads: the protocol's thread count (None: the runtime's default, or an imported table).
        config_hash: the protocol config's hash (``--config`` selects by a prefix of it; ``""``
            for imported tables).
    """

    device_id: str
    runtime: str
    provider: str
    threads: int | None
    config_hash: str

    def describe(self, n_models: int, with_device: bool) -> str:
        """``"3f2a91c0 (onnxruntime/cpu, 4 threads, 12 models)"``, the device id first when asked."""
        where = f"device {self.device_id}, " if with_device else ""
        threads = "default threads" if self.threads is None else f"{self.threads} thread" + "s" * (self.threads != 1)
        what = f"{self.runtime}/{self.provider}" if self.provider else self.runtime
        return f"{self.config_hash[:8] or '(no hash)'} ({where}{what}, {threads}, {n_models} models)"


def _configuration(r: MeasurementRecord) -> Configuration:
    threads = r.config.get("threads") if isinstance(r.config, dict) else None
    return Configuration(r.device_id, r.runtime, r.provider or "", threads if isinstance(threads, int) else None,
                         r.config_hash or "")  # fmt: skip


def configurations(recs: Sequence[MeasurementRecord]) -> dict[Configuration, int]:
    """The configurations of ``recs`` (candidates' rows; the drift reference is not a configuration)
    with how many distinct models each has, in order of first appearance."""
    seen: dict[Configuration, set[str | None]] = {}
    for r in recs:
        if r.space != REFERENCE_SPACE:
            seen.setdefault(_configuration(r), set()).add(r.model_sha256 or f"{r.space}:{r.arch}")
    return {c: len(models) for c, models in seen.items()}


def _one_configuration(recs: list[MeasurementRecord], device: str, config: str | None) -> list[MeasurementRecord]:
    """The rows of the one configuration of ``recs`` (of prefix ``config`` when given); a one-line
    :class:`PredictorError` that lists them and the flags that pick one when there are several."""
    if config:
        recs = [r for r in recs if (r.config_hash or "").startswith(config)]
    found = configurations(recs)
    if len(found) <= 1:
        return recs
    ids = {c.device_id for c in found}
    listed = "; ".join(c.describe(n, len(ids) > 1) for c, n in found.items())
    flags = ["--config HASH"] + (["--runtime R"] if len({c.runtime for c in found}) > 1 else [])
    flags += ["--device ID"] if len(ids) > 1 else []
    raise PredictorError(f"device {device!r} has measurements under {len(found)} configurations: {listed}; "
                         f"pick one with {' or '.join(flags)}")


def device_rows(db: LatencyDB, device: str, runtime: str | None = None, config: str | None = None) -> list[Row]:
    """Newest OK latency per model on ``device`` (name or id) under its one configuration.

    Args:
        db: the latency database.
        device: a device name (all devices of that name) or id.
        runtime: only rows of this runtime.
        config: only rows whose protocol config hash starts with this prefix.

    Raises:
        PredictorError: unknown device (the message lists the known ones), several configurations
            (:class:`Configuration`) left after ``runtime``/``config`` (the message lists them and
            the flags that pick one), or no OK measurement.
    """
    devices = db.devices()
    names = {d.name for d in devices} | {d.device_id for d in devices}
    if device not in names:
        known = ", ".join(sorted({d.name for d in devices})) or "none"
        raise PredictorError(f"unknown device {device!r} in {db.path}; devices there: {known}")
    recs = _one_configuration(db.measurements(device=device, status=Status.OK, runtime=runtime), device, config)
    latest: dict[str, Row] = {}
    for r in recs:
        if r.median_ms is None or not r.median_ms > 0:
            continue
        key = model_key(r.model_sha256, r.space, r.arch)
        profile = r.environment.get("node_profile_ms") if isinstance(r.environment, dict) else None
        latest[key] = Row(key, r.model_sha256, r.space, r.arch, device, float(r.median_ms), profile or None)
    if not latest:
        under = f" under configuration {config}" if config else ""
        raise PredictorError(f"device {device!r} has no OK measurement{under} in {db.path}")
    return list(latest.values())


def subsample(rows: Sequence[Row], n: int | None, seed: int, exclude: Iterable[str] = ()) -> list[Row]:
    """``n`` rows drawn without replacement (all when ``n`` is None), skipping keys in ``exclude``.

    Raises:
        PredictorError: fewer rows than asked for.
    """
    skip = set(exclude)
    pool = [r for r in rows if r.key not in skip]
    if n is None:
        return pool
    if n < 1:
        raise PredictorError(f"--samples must be a positive integer, got {n}")
    if n > len(pool):
        raise PredictorError(f"--samples {n}: only {len(pool)} measured models available on device {rows[0].device!r}" if rows else "no rows")
    idx = np.random.default_rng(seed).choice(len(pool), size=n, replace=False)
    return [pool[i] for i in sorted(idx)]


def attach_graphs(
    rows: Sequence[Row], resolver: object, *, workers: int = 1, on_progress: Callable[[int, int], None] | None = None
) -> list[LatencyRecord]:
    """Resolve the graph of every distinct model of ``rows`` and build training records."""
    unique: dict[str, Row] = {}
    for r in rows:
        unique.setdefault(r.key, r)
    items = [(r.sha256, r.space, r.arch) for r in unique.values()]
    graphs = resolver.graphs_for(items, workers=workers, on_progress=on_progress)  # type: ignore[attr-defined]
    by_key = dict(zip(unique, graphs))
    return [LatencyRecord(r.key, by_key[r.key], r.device, r.latency_ms, r.space, r.node_profile) for r in rows]
