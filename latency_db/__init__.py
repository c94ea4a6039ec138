"""The latency database: what was measured, on which device, under which protocol.

A single SQLite file (stdlib ``sqlite3`` only, so the device agent can write it on the device) in
WAL mode, with a versioned schema that is migrated on open. Models are content-addressed by the
sha256 of their ONNX bytes, devices are keyed by their fingerprint id, and measurements are
append-only rows carrying the configuration and environment that produced them. Tables can be
exported to and imported from CSV, and two databases can be merged.

This package imports nothing outside the standard library and never imports ``hwnas``.

Example:
    >>> import os, tempfile
    >>> from latency_db import LatencyDB, ModelRecord, DeviceRecord, MeasurementRecord, Status
    >>> path = os.path.join(tempfile.mkdtemp(), "latency.db")
    >>> with LatencyDB(path) as db:
    ...     db.add_model(ModelRecord("9f2c", space="nb201", arch="|nor_conv_3x3~0|", flops=1000))
    ...     db.add_device(DeviceRecord("rpi4-7a1b", "rpi4", {"cpu": "Cortex-A72", "cores": 4}))
    ...     db.add_measurement(MeasurementRecord(
    ...         uid="5b1e", model_sha256="9f2c", device_id="rpi4-7a1b", runtime="onnxruntime",
    ...         provider="cpu", config={"warmup": 10, "repeat": 3}, config_hash="h1",
    ...         status=Status.OK, samples_ms=(2.0, 2.1, 2.2), median_ms=2.1))
    ...     [m.median_ms for m in db.measurements(device="rpi4", status="ok")]
    ...     db.summary()["by_device_runtime"][0]["n_ok"]
    True
    [2.1]
    1
"""

from __future__ import annotations

from latency_db.db import LatencyDB
from latency_db.records import DeviceRecord, MeasurementRecord, ModelRecord, Status
from latency_db.schema import SCHEMA_VERSION, SchemaError

__all__ = [
    "SCHEMA_VERSION",
    "DeviceRecord",
    "LatencyDB",
    "MeasurementRecord",
    "ModelRecord",
    "SchemaError",
    "Status",
]
