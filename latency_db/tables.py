"""Rows <-> records, and the inserts and selects of the three tables, on a bare connection.

These functions neither open nor commit transactions: callers (:class:`latency_db.LatencyDB`,
the CSV importer, the merger) wrap them in :func:`latency_db.schema.write_transaction`, so that
several inserts share one transaction. JSON columns are written with ``sort_keys=True``; tuples are
stored as JSON lists and read back as tuples where the record field is a tuple.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from typing import Any

from latency_db.records import DeviceRecord, MeasurementRecord, ModelRecord, Status

MODEL_COLUMNS = ("space", "arch", "key", "flops", "params", "input_shape", "graph_summary")
_STAT_COLUMNS = ("median_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms", "ci_low_ms", "ci_high_ms")
_MEASUREMENT_COLUMNS = (
    "uid", "model_id", "device_id", "runtime", "provider", "config", "config_hash", "status",
    "error", "samples", *_STAT_COLUMNS, "number", "environment", "agent_version", "source",
    "created_at",
)

# Measurements joined with their model (sha256, space, arch) and device (name); filters go in WHERE.
MEASUREMENT_SELECT = (
    "SELECT m.*, mo.sha256 AS model_sha256, mo.space AS space, mo.arch AS arch, mo.key AS model_key,"
    " d.name AS device_name FROM measurements AS m"
    " JOIN models AS mo ON mo.id = m.model_id JOIN devices AS d ON d.device_id = m.device_id"
)

ModelKey = tuple[str | None, str | None, str | None]


def now_utc() -> str:
    """The current time as the one timestamp format of the database: ISO-8601 UTC with milliseconds
    and a ``Z`` suffix, e.g. ``2025-01-31T12:00:00.123Z`` (what the agent, the importer and the
    model/device rows all write). Rows written before this format was the only one end in
    ``+00:00`` instead; readers take both (:func:`parse_utc`), and the two sort alike to the millisecond."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_utc(text: str) -> datetime:
    """A stored timestamp (``...Z`` or ``...+00:00``) as an aware UTC datetime; ``ValueError`` if it is neither."""
    value = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    if value.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no time zone")
    return value.astimezone(timezone.utc)


def dumps(value: Any) -> str | None:
    """Canonical JSON (``sort_keys=True``) of ``value``; None stays None (SQL NULL)."""
    return None if value is None else json.dumps(value, sort_keys=True)


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def model_from_row(row: sqlite3.Row) -> ModelRecord:
    """Decode a ``models`` row."""
    shape = _loads(row["input_shape"])
    return ModelRecord(
        sha256=row["sha256"], space=row["space"], arch=row["arch"], key=row["key"],
        flops=row["flops"], params=row["params"],
        input_shape=None if shape is None else tuple(shape),
        graph_summary=_loads(row["graph_summary"]),
    )


def device_from_row(row: sqlite3.Row) -> DeviceRecord:
    """Decode a ``devices`` row."""
    return DeviceRecord(row["device_id"], row["name"], json.loads(row["fingerprint"]))


def measurement_from_row(row: sqlite3.Row) -> MeasurementRecord:
    """Decode a row of :data:`MEASUREMENT_SELECT` (space/arch/sha256 come from the model row)."""
    return MeasurementRecord(
        uid=row["uid"], model_sha256=row["model_sha256"], device_id=row["device_id"],
        runtime=row["runtime"], provider=row["provider"], config=json.loads(row["config"]),
        config_hash=row["config_hash"], status=Status(row["status"]), error=row["error"],
        samples_ms=tuple(json.loads(row["samples"])),
        **{column: row[column] for column in _STAT_COLUMNS},
        number=row["number"], environment=json.loads(row["environment"]),
        agent_version=row["agent_version"], source=row["source"], created_at=row["created_at"],
        space=row["space"], arch=row["arch"],
    )


def _model_values(m: ModelRecord) -> dict[str, Any]:
    shape = None if m.input_shape is None else [int(d) for d in m.input_shape]
    values = {column: getattr(m, column) for column in MODEL_COLUMNS}
    values.update(flops=_opt_int(m.flops), params=_opt_int(m.params), input_shape=dumps(shape),
                  graph_summary=dumps(m.graph_summary))
    return values


def find_model(conn: sqlite3.Connection, sha256: str | None, space: str | None,
               arch: str | None) -> sqlite3.Row | None:
    """The model row with ``sha256``, or (``sha256`` None) the unhashed row with (space, arch)."""
    if sha256 is not None:
        return conn.execute("SELECT * FROM models WHERE sha256 = ?", (sha256,)).fetchone()
    return conn.execute(
        "SELECT * FROM models WHERE sha256 IS NULL AND space = ? AND arch = ?", (space, arch)
    ).fetchone()


def upsert_model(conn: sqlite3.Connection, m: ModelRecord) -> str:
    """Insert ``m``, or fill the columns that are NULL in its existing row; never overwrite.

    Returns:
        ``"added"``, ``"updated"`` (some NULL columns filled) or ``"unchanged"``.

    Raises:
        ValueError: ``sha256`` is None and ``space`` or ``arch`` is missing.
    """
    if m.sha256 is None and (m.space is None or m.arch is None):
        raise ValueError("a model without sha256 needs both space and arch")
    values = _model_values(m)
    row = find_model(conn, m.sha256, m.space, m.arch)
    if row is None:
        columns = ("sha256", *MODEL_COLUMNS, "created_at")
        conn.execute(
            f"INSERT INTO models ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
            (m.sha256, *values.values(), now_utc()),
        )
        return "added"
    fills = {c: v for c, v in values.items() if v is not None and row[c] is None}
    if not fills:
        return "unchanged"
    assignments = ", ".join(f"{column} = ?" for column in fills)
    conn.execute(f"UPDATE models SET {assignments} WHERE id = ?", (*fills.values(), row["id"]))
    return "updated"


def insert_device(conn: sqlite3.Connection, d: DeviceRecord) -> bool:
    """Insert ``d`` unless its ``device_id`` exists (the stored row is kept); True if inserted."""
    cursor = conn.execute(
        "INSERT INTO devices (device_id, name, fingerprint, created_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (device_id) DO NOTHING",
        (d.device_id, d.name, dumps(d.fingerprint), now_utc()),
    )
    return cursor.rowcount == 1


def _resolve_model_id(conn: sqlite3.Connection, r: MeasurementRecord) -> int:
    """The id of the model ``r`` measured; ValueError (one line) if unknown or contradicted."""
    if r.model_sha256 is None and (r.space is None or r.arch is None):
        raise ValueError(f"measurement {r.uid}: needs model_sha256 or both space and arch")
    row = find_model(conn, r.model_sha256, r.space, r.arch)
    if row is None:
        what = f"sha256 {r.model_sha256}" if r.model_sha256 else f"space {r.space!r} arch {r.arch!r}"
        raise ValueError(f"measurement {r.uid}: unknown model ({what}); add_model it first")
    for column in ("space", "arch"):
        mine, stored = getattr(r, column), row[column]
        if mine is not None and stored is not None and mine != stored:
            raise ValueError(
                f"measurement {r.uid}: {column} {mine!r} contradicts model {row['sha256']}'s {stored!r}"
            )
    return int(row["id"])


def insert_measurement(conn: sqlite3.Connection, r: MeasurementRecord,
                       model_ids: dict[ModelKey, int] | None = None) -> bool:
    """Append ``r``; False (nothing written) if its uid exists.

    Args:
        conn: connection inside a write transaction.
        r: the measurement; an empty ``created_at`` is stored as the current time.
        model_ids: optional cache of resolved model ids, valid for one transaction only.

    Raises:
        ValueError: unknown model or device, or an invalid status (one-line message).
    """
    status = Status(r.status)
    key = (r.model_sha256, r.space, r.arch)
    model_id = model_ids.get(key) if model_ids is not None else None
    if model_id is None:
        model_id = _resolve_model_id(conn, r)
        if model_ids is not None:
            model_ids[key] = model_id
    if conn.execute("SELECT 1 FROM devices WHERE device_id = ?", (r.device_id,)).fetchone() is None:
        raise ValueError(f"measurement {r.uid}: unknown device {r.device_id!r}; add_device it first")
    values = (
        r.uid, model_id, r.device_id, r.runtime, r.provider, dumps(r.config), r.config_hash,
        status.value, r.error, dumps([float(s) for s in r.samples_ms]),
        *(_opt_float(getattr(r, column)) for column in _STAT_COLUMNS), _opt_int(r.number),
        dumps(r.environment),
        r.agent_version, r.source, r.created_at or now_utc(),
    )
    cursor = conn.execute(
        f"INSERT INTO measurements ({', '.join(_MEASUREMENT_COLUMNS)})"
        f" VALUES ({', '.join('?' * len(_MEASUREMENT_COLUMNS))}) ON CONFLICT (uid) DO NOTHING",
        values,
    )
    return cursor.rowcount == 1


def select_measurements(conn: sqlite3.Connection, where: Sequence[str] = (),
                        params: Sequence[Any] = ()) -> Iterator[sqlite3.Row]:
    """Rows of :data:`MEASUREMENT_SELECT` matching all ``where`` clauses, in insertion order."""
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    yield from conn.execute(f"{MEASUREMENT_SELECT}{clause} ORDER BY m.id", tuple(params))
