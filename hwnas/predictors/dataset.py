"""Training data for predictors, read from the latency database.

One row per (model, device): the newest OK measurement's median. A model is identified by its ONNX
sha256, or by ``"space:arch"`` for rows imported from a table without a file; its graph comes from
:class:`hwnas.graph.resolve.GraphResolver` (cache, candidate folders, or export of the arch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np

from hwnas.predictors.base import LatencyRecord, PredictorError
from latency_db import LatencyDB, Status


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


def device_rows(db: LatencyDB, device: str, runtime: str | None = None) -> list[Row]:
    """Newest OK latency per model on ``device`` (name or id).

    Raises:
        PredictorError: unknown device (the message lists the known ones), several runtimes on
            the device and none chosen, or no OK measurement.
    """
    devices = db.devices()
    names = {d.name for d in devices} | {d.device_id for d in devices}
    if device not in names:
        known = ", ".join(sorted({d.name for d in devices})) or "none"
        raise PredictorError(f"unknown device {device!r} in {db.path}; devices there: {known}")
    recs = db.measurements(device=device, status=Status.OK, runtime=runtime)
    runtimes = sorted({r.runtime for r in recs})
    if len(runtimes) > 1:
        raise PredictorError(f"device {device!r} has measurements of several runtimes ({', '.join(runtimes)}): pick one with --runtime")
    latest: dict[str, Row] = {}
    for r in recs:
        if r.median_ms is None or not r.median_ms > 0:
            continue
        key = model_key(r.model_sha256, r.space, r.arch)
        profile = r.environment.get("node_profile_ms") if isinstance(r.environment, dict) else None
        latest[key] = Row(key, r.model_sha256, r.space, r.arch, device, float(r.median_ms), profile or None)
    if not latest:
        raise PredictorError(f"device {device!r} has no OK measurement in {db.path}")
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
