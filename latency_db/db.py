"""``LatencyDB``: the SQLite database of what was measured, on which device, under which protocol."""

from __future__ import annotations

import contextlib
import math
import os
import sqlite3
import statistics
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from latency_db import csvio, merge, pg, schema, tables
from latency_db.records import REFERENCE_SPACE, DeviceRecord, MeasurementRecord, ModelRecord, Status


class LatencyDB:
    """A latency database file: models, devices and append-only measurements; or, given a
    ``postgresql://`` URL, the same database on a PostgreSQL server (:mod:`latency_db.pg`).

    Contract:
        * Opening creates the parent directories and the file, migrates an older schema in one
          transaction, and puts the file in WAL mode, so readers never block the writer and several
          processes (agents, the host) may write one file concurrently; each write waits up to
          ``timeout_s`` for the lock.
        * Every write method is one ``BEGIN IMMEDIATE`` transaction: it happens whole or not at all.
        * Measurements are never updated or deleted (the schema's triggers refuse it); models and
          devices are never overwritten, only completed (:meth:`add_model` fills NULL columns).
        * Records read back equal the records written (tuples stay tuples, ``Status`` stays
          ``Status``), except that an empty ``MeasurementRecord.created_at`` is stored as the time
          of the insert and a measurement's ``space``/``arch``/``model_sha256`` are read from its
          model row.
        * One instance holds one connection and is not thread-safe: use one per thread/process.

    Args:
        path: the database file (created if missing).
        timeout_s: how long a write waits for another writer's lock before failing.
        read_only: open with ``mode=ro``: never writes the file; write methods raise
            ``PermissionError``; the file must exist and have the current schema.

    Raises:
        SchemaError: the file is not a SQLite file, is another program's SQLite file, or has a
            newer schema than this code (the message says to upgrade hwnas).

    Example:
        >>> import tempfile, os
        >>> from latency_db import LatencyDB, ModelRecord, DeviceRecord, MeasurementRecord, Status
        >>> path = os.path.join(tempfile.mkdtemp(), "lat.db")
        >>> with LatencyDB(path) as db:
        ...     db.add_model(ModelRecord("ab12", space="nb201", arch="|none~0|"))
        ...     db.add_device(DeviceRecord("pi4-1", "pi4", {"cores": 4}))
        ...     db.add_measurement(MeasurementRecord(
        ...         uid="u1", model_sha256="ab12", device_id="pi4-1", runtime="onnxruntime",
        ...         provider="cpu", config={"repeat": 3}, config_hash="c1", status=Status.OK,
        ...         samples_ms=(1.0, 1.2, 1.1), median_ms=1.1))
        ...     db.has_measurement(model_sha256="ab12", device_id="pi4-1",
        ...                        runtime="onnxruntime", config_hash="c1")
        True
        True
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout_s: float = 30.0,
                 read_only: bool = False) -> None:
        self._timeout_s = float(timeout_s)
        self._read_only = read_only
        if pg.is_url(path):  # a shared PostgreSQL database (latency_db.pg)
            self._path: Any = str(path)
            self._conn: Any = pg.connect(self._path, timeout_s=self._timeout_s, read_only=read_only)
        else:
            self._path = Path(path)
            self._conn = schema.connect(self._path, timeout_s=self._timeout_s, read_only=read_only)
            self._conn.row_factory = sqlite3.Row

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def path(self) -> Any:
        """The database file as a ``Path``, or the ``postgresql://`` URL as given."""
        return self._path

    @property
    def schema_version(self) -> int:
        """The file's schema version (``PRAGMA user_version``); equals ``SCHEMA_VERSION``."""
        if isinstance(self._conn, pg.PgConnection):
            return self._conn.schema_version()
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        """Close the connection; further calls on this instance fail. Idempotent."""
        self._conn.close()

    def __enter__(self) -> LatencyDB:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = ", read_only=True" if self._read_only else ""
        return f"LatencyDB({str(self._path)!r}{mode})"

    def _write(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """A write transaction on this database (``BEGIN IMMEDIATE`` ... ``COMMIT``)."""
        if self._read_only:
            raise PermissionError(f"latency database {self._path} is opened read-only")
        if isinstance(self._conn, pg.PgConnection):
            return self._conn.write_transaction()
        return schema.write_transaction(self._conn)

    # -- writes ----------------------------------------------------------------------------------

    def add_model(self, m: ModelRecord) -> None:
        """Insert ``m``, or fill in the metadata columns that are NULL in its existing row.

        The existing row is the one with ``m.sha256``, or for ``sha256=None`` the unhashed row with
        ``(m.space, m.arch)``. Stored non-NULL values are never overwritten.

        Raises:
            ValueError: ``m.sha256`` is None and ``m.space`` or ``m.arch`` is None.
        """
        with self._write():
            tables.upsert_model(self._conn, m)

    def add_device(self, d: DeviceRecord) -> None:
        """Insert ``d`` unless a device with ``d.device_id`` exists (then nothing changes)."""
        with self._write():
            tables.insert_device(self._conn, d)

    def add_measurement(self, r: MeasurementRecord) -> bool:
        """Append ``r``. Returns False, writing nothing, if ``r.uid`` is already stored.

        The model is found by ``r.model_sha256``, or by ``(r.space, r.arch)`` among unhashed models
        when ``model_sha256`` is None; it and ``r.device_id`` must already be stored.

        Raises:
            ValueError: unknown model or device, or space/arch contradicting the model row.
        """
        with self._write():
            return tables.insert_measurement(self._conn, r)

    def add_measurements(self, rs: Iterable[MeasurementRecord]) -> int:
        """Append all of ``rs`` in one transaction; return how many were new (by uid).

        Raises:
            ValueError: as :meth:`add_measurement`; then nothing of ``rs`` is stored.
        """
        model_ids: dict[tables.ModelKey, int] = {}
        with self._write():
            return sum(tables.insert_measurement(self._conn, r, model_ids) for r in rs)

    # -- reads -----------------------------------------------------------------------------------

    def has_measurement(self, *, model_sha256: str, device_id: str, runtime: str, config_hash: str,
                        statuses: Iterable[Status | str] | None = (Status.OK,)) -> bool:
        """Whether this model was measured on this device/runtime/config with one of ``statuses``.

        This is the resume check of the device agent. ``statuses=None`` accepts any status.
        """
        where = ["mo.sha256 = ?", "m.device_id = ?", "m.runtime = ?", "m.config_hash = ?"]
        params: list[Any] = [model_sha256, device_id, runtime, config_hash]
        if statuses is not None:
            values = [Status(s).value for s in statuses]
            where.append(f"m.status IN ({', '.join('?' * len(values))})")
            params += values
        sql = ("SELECT 1 FROM measurements AS m JOIN models AS mo ON mo.id = m.model_id"
               f" WHERE {' AND '.join(where)} LIMIT 1")
        return self._conn.execute(sql, params).fetchone() is not None

    def model(self, sha256: str) -> ModelRecord | None:
        """The model with this sha256, or None."""
        row = tables.find_model(self._conn, sha256, None, None)
        return None if row is None else tables.model_from_row(row)

    def models(self, space: str | None = None) -> list[ModelRecord]:
        """All models (of ``space`` if given), in insertion order."""
        if space is None:
            rows = self._conn.execute("SELECT * FROM models ORDER BY id")
        else:
            rows = self._conn.execute("SELECT * FROM models WHERE space = ? ORDER BY id", (space,))
        return [tables.model_from_row(row) for row in rows]

    def device(self, device_id_or_name: str) -> DeviceRecord | None:
        """The device with this id, else the one device with this name, else None.

        Raises:
            ValueError: no device has this id and several share this name (the message lists ids).
        """
        row = self._conn.execute(
            "SELECT * FROM devices WHERE device_id = ?", (device_id_or_name,)).fetchone()
        if row is not None:
            return tables.device_from_row(row)
        rows = self._conn.execute(
            "SELECT * FROM devices WHERE name = ? ORDER BY created_at, device_id",
            (device_id_or_name,)).fetchall()
        if len(rows) > 1:
            ids = ", ".join(r["device_id"] for r in rows)
            raise ValueError(f"device name {device_id_or_name!r} is ambiguous; use an id: {ids}")
        return tables.device_from_row(rows[0]) if rows else None

    def devices(self) -> list[DeviceRecord]:
        """All devices, in insertion order."""
        rows = self._conn.execute("SELECT * FROM devices ORDER BY rowid")
        return [tables.device_from_row(row) for row in rows]

    def measurements(self, *, device: str | None = None, runtime: str | None = None,
                     status: Status | str | None = None, space: str | None = None,
                     model_sha256: str | None = None,
                     arch: str | None = None) -> list[MeasurementRecord]:
        """Measurements matching every given filter, in insertion order.

        The rows of the agent's drift reference (models of space
        :data:`~latency_db.records.REFERENCE_SPACE`) are left out unless ``space`` asks for them:
        they describe the run, not a candidate.

        Args:
            device: a device id or a device name (all devices of that name).
            runtime: e.g. ``onnxruntime``.
            status: ``Status`` or its value.
            space, arch: of the measured model.
            model_sha256: of the measured model.
        """
        where: list[str] = []
        params: list[Any] = []
        if device is not None:
            where.append("(m.device_id = ? OR d.name = ?)")
            params += [device, device]
        status_value = None if status is None else Status(status).value
        filters = (("m.runtime", runtime), ("m.status", status_value),
                   ("mo.space", space), ("mo.arch", arch), ("mo.sha256", model_sha256))
        for column, value in filters:
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if space is None:
            where.append("(mo.space IS NULL OR mo.space <> ?)")
            params.append(REFERENCE_SPACE)
        return [tables.measurement_from_row(row)
                for row in tables.select_measurements(self._conn, where, params)]

    def select(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        """Rows of one read-only query (``SELECT``/``WITH``) in the SQLite dialect of this package.

        For dashboards and reports that aggregate and paginate in SQL rather than load every
        record: rows read by position or by column name (``sqlite3.Row``, or its PostgreSQL
        stand-in, with ``?`` placeholders and ``sum(x = 'v')`` translated). Nothing is written.

        Raises:
            ValueError: ``sql`` is not a single SELECT/WITH statement.
        """
        head = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
        if head not in ("SELECT", "WITH") or ";" in sql.rstrip().rstrip(";"):
            raise ValueError("LatencyDB.select runs one SELECT (or WITH ... SELECT) statement")
        return list(self._conn.execute(sql, list(params)).fetchall())

    def summary(self) -> dict[str, Any]:
        """A JSON-able overview of the database.

        Returns:
            ``{"path", "schema_version", "models", "devices", "measurements", "by_device_runtime",
            "reference_runs"}`` where ``by_device_runtime`` has one dict per (device name, runtime),
            sorted, with ``device, runtime, n_ok, n_error, n_timeout, n_models`` (distinct models,
            any status), ``median_ms`` (median of the ok rows' ``median_ms``), ``min_median_ms``,
            ``max_median_ms`` (None without ok rows) and ``last_measured`` (latest ``created_at``);
            the drift reference's rows are not counted there (see :meth:`reference_runs`).
        """
        counts = self._conn.execute(
            "SELECT (SELECT count(*) FROM models), (SELECT count(*) FROM devices),"
            " (SELECT count(*) FROM measurements)").fetchone()
        not_ref = "(mo.space IS NULL OR mo.space <> ?)"
        groups = self._conn.execute(
            "SELECT d.name AS device, m.runtime AS runtime,"
            " sum(CASE WHEN m.status = 'ok' THEN 1 ELSE 0 END) AS n_ok,"
            " sum(CASE WHEN m.status = 'error' THEN 1 ELSE 0 END) AS n_error,"
            " sum(CASE WHEN m.status = 'timeout' THEN 1 ELSE 0 END) AS n_timeout,"
            " count(DISTINCT m.model_id) AS n_models, max(m.created_at) AS last_measured"
            " FROM measurements AS m JOIN devices AS d ON d.device_id = m.device_id"
            f" JOIN models AS mo ON mo.id = m.model_id WHERE {not_ref}"
            " GROUP BY d.name, m.runtime ORDER BY d.name, m.runtime", (REFERENCE_SPACE,)).fetchall()
        medians: dict[tuple[str, str], list[float]] = {}
        for row in self._conn.execute(
                "SELECT d.name, m.runtime, m.median_ms FROM measurements AS m"
                " JOIN devices AS d ON d.device_id = m.device_id JOIN models AS mo ON mo.id = m.model_id"
                f" WHERE m.status = 'ok' AND m.median_ms IS NOT NULL AND {not_ref}", (REFERENCE_SPACE,)):
            medians.setdefault((row[0], row[1]), []).append(row[2])
        by_group = []
        for g in groups:
            values = medians.get((g["device"], g["runtime"]), [])
            entry = {key: g[key] for key in g.keys()}
            entry.update(median_ms=statistics.median(values) if values else None,
                         min_median_ms=min(values, default=None),
                         max_median_ms=max(values, default=None))
            by_group.append(entry)
        return {"path": str(self._path), "schema_version": self.schema_version,
                "models": counts[0], "devices": counts[1], "measurements": counts[2],
                "by_device_runtime": by_group, "reference_runs": self.reference_runs()}

    def reference_runs(self, *, device: str | None = None, config_hash: str | None = None) -> list[dict[str, Any]]:
        """The drift reference's level per run of the interleaved protocol, oldest first.

        One dict per (device, runtime, config hash, run): ``device`` (name), ``device_id``,
        ``runtime``, ``config_hash``, ``run_id``, ``median_ms`` (median of the run's batches'
        panel levels: a batch's level is the geometric mean of its references' medians, the one
        reference's median for runs before the panel), ``members`` (per batch of a panel, each
        reference's log median minus the log panel level, by arch: how networks of different sizes
        moved against the panel between batches), ``batches``, ``drift_within`` (largest absolute second-half / first-half
        change of a batch, signed), ``shift`` (this run's median over the previous run's of the
        same device and config, minus 1; None for the first) and ``created_at``.

        Args:
            device: only this device (id or name).
            config_hash: only runs under this protocol.
        """
        runs: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        for r in self.measurements(device=device, space=REFERENCE_SPACE, status=Status.OK):
            if config_hash is not None and r.config_hash != config_hash or r.median_ms is None:
                continue
            run_id = str(r.environment.get("run_id") or r.uid)
            key = (r.device_id, r.runtime, r.config_hash, run_id)
            entry = runs.setdefault(key, {"device_id": r.device_id, "runtime": r.runtime,
                                          "config_hash": r.config_hash, "run_id": run_id, "medians": {},
                                          "drift_within": None, "created_at": r.created_at})
            batch = r.environment.get("batch", r.uid)
            entry["medians"].setdefault(batch, {})[r.arch or r.model_sha256] = math.log(float(r.median_ms))
            drift = r.environment.get("drift_within")
            if isinstance(drift, (int, float)) and (entry["drift_within"] is None or abs(drift) > abs(entry["drift_within"])):
                entry["drift_within"] = float(drift)
        names = {d.device_id: d.name for d in self.devices()}
        out: list[dict[str, Any]] = []
        previous: dict[tuple[str, str, str], float] = {}
        for (device_id, runtime, chash, _), entry in runs.items():
            batches = list(entry.pop("medians").values())
            medians = [math.exp(sum(logs.values()) / len(logs)) for logs in batches]
            level = statistics.median(medians)
            entry["members"] = [{k: v - math.log(m) for k, v in logs.items()} for logs, m in zip(batches, medians)
                                if len(logs) > 1]
            before = previous.get((device_id, runtime, chash))
            entry.update(device=names.get(device_id, device_id), median_ms=level, batches=len(medians),
                         shift=None if before is None else level / before - 1.0)
            previous[(device_id, runtime, chash)] = level
            out.append(entry)
        return out

    # -- files -----------------------------------------------------------------------------------

    def export_csv(self, path: str | os.PathLike[str]) -> int:
        """Write one CSV row per measurement, atomically; return the number of rows.

        See :func:`latency_db.csvio.export_csv` for the columns.
        """
        return csvio.export_csv(self._conn, Path(path))

    def import_csv(self, path: str | os.PathLike[str], *, source: str | None = None) -> dict[str, int]:
        """Import a latency table (``space, arch, device, latency_ms``) in one transaction.

        See :func:`latency_db.csvio.import_csv` for the format, validation and identities.

        Returns:
            ``{"rows", "added", "skipped", "not_ok"}``: data rows read, measurements added, rows
            not added (already imported, or a ``status`` column other than ok), of which not ok.

        Raises:
            ValueError: a missing column or a bad value (one line naming it); nothing is stored.
        """
        with self._write():
            return csvio.import_csv(self._conn, Path(path), source=source)

    def merge_from(self, other: str | os.PathLike[str] | LatencyDB,
                   scope: merge.MergeScope | None = None) -> dict[str, int]:
        """Copy in the other database's models, devices and the measurements not stored here.

        Measurements are matched by uid and copied unchanged (source included); models are matched
        as in :meth:`add_model` (and their NULL columns filled); devices by id. Idempotent. A path
        is opened read-only and never modified. One transaction. With ``scope``, only its devices'
        measurements of its models come in, and the models from its records (see
        :class:`latency_db.merge.MergeScope`); the rest is counted as ``ignored_measurements``.

        Returns:
            ``{"models", "models_updated", "devices", "measurements", "measurements_skipped",
            "reference_measurements", "ignored_measurements"}``.
        """
        if isinstance(other, LatencyDB):
            with self._write():
                return merge.merge_connections(self._conn, other._conn, scope)
        with LatencyDB(other, timeout_s=self._timeout_s, read_only=True) as source:
            with self._write():
                return merge.merge_connections(self._conn, source._conn, scope)
