"""CSV export and import of latency tables.

Export writes one row per measurement (columns :data:`EXPORT_COLUMNS`), atomically. Import reads
tables measured elsewhere (another lab's latency CSV, an older tool's output, this module's own
export) with at least the columns ``space, arch, device, latency_ms`` (``median_ms`` accepted in
place of ``latency_ms``); every other column is ignored except ``status`` (rows not ``ok`` are
skipped) and ``model_sha256`` (attach to that model when it is stored).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from latency_db import tables
from latency_db.fileio import atomic_path
from latency_db.records import DeviceRecord, MeasurementRecord, ModelRecord, Status

EXPORT_COLUMNS = (
    "uid", "space", "arch", "model_sha256", "model_key", "device", "device_id", "runtime",
    "provider", "config_hash", "status", "median_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms",
    "ci_low_ms", "ci_high_ms", "repeats", "number", "error", "source", "created_at",
)
REQUIRED_COLUMNS = ("space", "arch", "device")
LATENCY_COLUMNS = ("latency_ms", "median_ms")  # the first one present is used


def export_csv(conn: sqlite3.Connection, path: Path) -> int:
    """Write every measurement of ``conn``'s database to ``path`` as CSV; return the row count.

    The file is written to a temporary file in the same directory and moved into place with
    ``os.replace``, so ``path`` is either the old file or the complete new one, never half-written.
    Columns are :data:`EXPORT_COLUMNS`: ``device`` is the device name, ``repeats`` the number of
    samples; empty cells are NULLs; floats are written exactly (``repr``).
    """
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(EXPORT_COLUMNS)
        n_rows = 0
        for row in tables.select_measurements(conn):
            values = dict(row, device=row["device_name"], repeats=len(json.loads(row["samples"])))
            writer.writerow([values[column] for column in EXPORT_COLUMNS])
            n_rows += 1
    return n_rows


@dataclass(frozen=True)
class ImportRow:
    """One validated data row of an imported table.

    Attributes:
        line: line number in the file (the header is line 1).
        space, arch: the model's identity (None only when ``model_sha256`` names a stored model).
        device: device name.
        latency_ms: the latency, finite and >= 0.
        model_sha256: a stored model's sha256 to attach to, else None.
    """

    line: int
    space: str | None
    arch: str | None
    device: str
    latency_ms: float
    model_sha256: str | None


def imported_device_id(name: str) -> str:
    """The device id of a device known only by ``name`` from an imported table."""
    return "imported:" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]


def read_table(conn: sqlite3.Connection, path: Path) -> tuple[list[ImportRow], int]:
    """Parse and validate every row of the CSV at ``path``; write nothing.

    Returns:
        The rows to import, and the number of rows skipped for a ``status`` other than ok.

    Raises:
        ValueError: empty file, missing column, or a bad value; one line naming the file and the
            column or line number.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            lines = list(_parse(conn, path, csv.reader(f)))
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not a UTF-8 text file ({exc.reason} at byte {exc.start})") from exc
    except csv.Error as exc:
        raise ValueError(f"{path}: malformed CSV ({exc})") from exc
    rows = [row for row in lines if row is not None]
    return rows, len(lines) - len(rows)


def _parse(conn: sqlite3.Connection, path: Path, reader: Any) -> Iterator[ImportRow | None]:
    """Yield an :class:`ImportRow` per data row, or None for a row whose status is not ok."""
    header = [name.strip() for name in next(reader, [])]
    if not any(header):
        raise ValueError(f"{path}: empty CSV file; expected a header with columns "
                         f"{', '.join(REQUIRED_COLUMNS)}, latency_ms")
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    latency_column = next((c for c in LATENCY_COLUMNS if c in header), None)
    if latency_column is None:
        missing.append("latency_ms (or median_ms)")
    if missing:
        raise ValueError(f"{path}: missing column {', '.join(repr(c) for c in missing)}")
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue
        values = {name: cells[i].strip() if i < len(cells) else "" for i, name in enumerate(header)}
        if values.get("status", "") not in ("", Status.OK.value):
            yield None
            continue
        yield _validate(conn, path, reader.line_num, values, latency_column)


def _validate(conn: sqlite3.Connection, path: Path, line: int, values: dict[str, str],
              latency_column: str) -> ImportRow:
    where = f"{path}: line {line}"
    sha = values.get("model_sha256") or None
    if sha is not None and tables.find_model(conn, sha, None, None) is None:
        sha = None
    for column in REQUIRED_COLUMNS:
        if not values[column] and (column == "device" or sha is None):
            raise ValueError(f"{where}: column {column!r} is empty")
    text = values[latency_column]
    try:
        latency = float(text)
    except ValueError:
        raise ValueError(f"{where}: column {latency_column!r} is not a number: {text!r}") from None
    if not math.isfinite(latency) or latency < 0:
        raise ValueError(f"{where}: column {latency_column!r} must be a finite number >= 0, "
                         f"got {text!r}")
    return ImportRow(line, values["space"] or None, values["arch"] or None, values["device"],
                     latency, sha)


def import_csv(conn: sqlite3.Connection, path: Path, *, source: str | None = None) -> dict[str, int]:
    """Validate every row of ``path``, then store them; call inside one write transaction.

    Each row becomes: a device ``imported_device_id(name)`` (fingerprint ``{"name": name,
    "imported": true}``); the stored model ``model_sha256`` if that column names one, else an
    unhashed model ``(space, arch)``; and an ok measurement with runtime ``imported``, provider
    ``""``, ``samples_ms=(latency,)``, ``median_ms=latency`` and source ``import:<file name>`` (or
    ``source``). Its uid is derived from (source, device, space, arch, latency, line number), so
    importing the same file again adds nothing.

    Returns:
        ``{"rows", "added", "skipped", "not_ok"}``.

    Raises:
        ValueError: as :func:`read_table`, or a row contradicting its model (naming the line).
    """
    rows, not_ok = read_table(conn, path)
    source = source or f"import:{path.name}"
    for name in sorted({row.device for row in rows}):
        tables.insert_device(conn, DeviceRecord(imported_device_id(name), name,
                                                {"name": name, "imported": True}))
    model_ids: dict[tables.ModelKey, int] = {}
    added = 0
    created_at = tables.now_utc()
    for row in rows:
        try:
            if row.model_sha256 is None:
                tables.upsert_model(conn, ModelRecord(None, space=row.space, arch=row.arch))
            identity = [source, row.device, row.space, row.arch, repr(row.latency_ms), row.line]
            uid = hashlib.sha256(json.dumps(identity).encode("utf-8")).hexdigest()[:32]
            record = MeasurementRecord(
                uid=uid, model_sha256=row.model_sha256, device_id=imported_device_id(row.device),
                runtime="imported", provider="", config={}, config_hash="", status=Status.OK,
                samples_ms=(row.latency_ms,), median_ms=row.latency_ms, source=source,
                created_at=created_at, space=row.space, arch=row.arch)
            added += tables.insert_measurement(conn, record, model_ids)
        except ValueError as exc:
            raise ValueError(f"{path}: line {row.line}: {exc}") from exc
    n_rows = len(rows) + not_ok
    return {"rows": n_rows, "added": added, "skipped": n_rows - added, "not_ok": not_ok}
