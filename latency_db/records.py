"""Records that cross the latency database boundary.

All records are frozen dataclasses: a record is a fact that was observed (a model, a device, one
measurement of a model on a device) and is never edited after it is written. Failures are data: a
measurement whose model failed to load or ran past its timeout is stored with its status and error
message, exactly like a successful one.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


#: ``ModelRecord.space`` of the device agent's drift reference: a fixed network timed in every
#: round of an interleaved run (``device_agent.reference``). Its rows are stored with the run, but
#: ``LatencyDB.measurements`` leaves them out unless asked for with ``space=REFERENCE_SPACE``.
REFERENCE_SPACE = "reference"


class Status(str, enum.Enum):
    """Outcome of measuring one model: ``ok``, ``error`` (load/run failure) or ``timeout``."""

    OK = "ok"
    ERROR = "error"
    TIMEOUT = "timeout"


@dataclass(frozen=True)
class ModelRecord:
    """A candidate network.

    Models are content-addressed: ``sha256`` is the hex digest of the ONNX file's bytes. Rows
    imported from a table without an ONNX file (``hwnas db import-csv``) have ``sha256=None`` and are
    identified by ``(space, arch)`` instead.

    Attributes:
        sha256: hex sha256 of the ONNX bytes, or None for an imported row without a file.
        space: search-space name (``nb201``, ``macro``) or None for a foreign model.
        arch: the architecture's stable string in its space, or None.
        key: short stable key of the architecture (file stem of the exported ONNX).
        flops: multiply-accumulates x2 of one forward pass at batch 1, if known.
        params: number of parameters, if known.
        input_shape: input tensor shape, e.g. ``[1, 3, 32, 32]``.
        graph_summary: small JSON-able dict (op-type counts, node count, opset).
    """

    sha256: str | None
    space: str | None = None
    arch: str | None = None
    key: str | None = None
    flops: int | None = None
    params: int | None = None
    input_shape: tuple[int, ...] | None = None
    graph_summary: dict[str, Any] | None = None


@dataclass(frozen=True)
class DeviceRecord:
    """A device, keyed by its fingerprint.

    Attributes:
        device_id: stable id derived from the static fingerprint (see ``device_agent.fingerprint``)
            or, for imported tables, from the device name.
        name: human label (``--device-name``, or the hostname by default).
        fingerprint: static facts: CPU model, cores, memory, OS/kernel, machine, ...
    """

    device_id: str
    name: str
    fingerprint: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MeasurementRecord:
    """One measurement of one model on one device under one configuration. Append-only.

    Attributes:
        uid: globally unique id (uuid4 hex); used to de-duplicate when merging databases.
        model_sha256: the model's sha256 (None for imported rows without a file).
        space, arch: identify imported models without a file (and denormalised for queries);
            records read back from ``LatencyDB`` take them from the model row.
        device_id: the device's id (see DeviceRecord).
        runtime: ``onnxruntime`` or ``tvm`` (or ``imported`` for tables from elsewhere).
        provider: execution provider / target (``cpu``, ``cuda``, ``llvm``...).
        config: the measurement protocol as a JSON-able dict (warmup, repeats, min_repeat_ms,
            threads, ...); ``config_hash`` is its canonical hash, used for resume.
        status: ok / error / timeout; ``error`` holds the one-line message when not ok.
        samples_ms: per-repeat mean latency of one call, in milliseconds.
        median_ms ... ci_high_ms: statistics of ``samples_ms`` (None when not ok).
        number: back-to-back calls per repeat sample.
        environment: dynamic facts at measurement time (governor, frequency, temperature
            before/after, runtime versions, thread settings).
        agent_version: version of the agent that measured.
        source: where the row was first written: ``agent``, or ``import:<file name>`` for rows
            from ``LatencyDB.import_csv``. ``LatencyDB.merge_from`` copies rows unchanged (uid,
            source and created_at included), so merged databases converge to the same rows.
        created_at: ISO-8601 UTC timestamp; an empty string is stored as the time of the insert.
    """

    uid: str
    model_sha256: str | None
    device_id: str
    runtime: str
    provider: str
    config: dict[str, Any]
    config_hash: str
    status: Status
    error: str | None = None
    samples_ms: tuple[float, ...] = ()
    median_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    mean_ms: float | None = None
    std_ms: float | None = None
    ci_low_ms: float | None = None
    ci_high_ms: float | None = None
    number: int | None = None
    environment: dict[str, Any] = field(default_factory=dict)
    agent_version: str | None = None
    source: str = "agent"
    created_at: str = ""
    space: str | None = None
    arch: str | None = None
