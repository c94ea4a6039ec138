"""PostgreSQL backend of :class:`latency_db.LatencyDB`, for a database shared by a team.

``LatencyDB("postgresql://user@host:port/dbname")`` opens a PostgreSQL database instead of a
SQLite file; everything above the connection (``tables``, ``merge``, ``csvio``, the query API) is
the same code, talking to a :class:`PgConnection` that speaks the small SQL dialect those modules
use: ``?`` placeholders become ``%s``, ``ORDER BY rowid`` the devices' insertion sequence, and
``sum(x = 'v')`` a ``CASE`` sum. The schema mirrors SQLite's (same tables, columns, unique keys and
append-only measurements, enforced by triggers) and is versioned in a ``latency_db_meta`` table,
migrated under an advisory lock. Every write transaction takes one transaction-level advisory lock
first, as SQLite's ``BEGIN IMMEDIATE`` takes the write lock: concurrent writers (several
``hwnas profile`` runs) serialise instead of racing on the find-then-insert of a model.

psycopg (v3) is imported only here, only for URLs: the device agent never needs a driver.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from typing import Any

#: Advisory lock key of write transactions and migrations ("hwNA").
LOCK_KEY = 0x68774E41

_PG_V1 = (
    """CREATE TABLE models (
        id BIGSERIAL PRIMARY KEY, sha256 TEXT UNIQUE, space TEXT, arch TEXT, key TEXT, flops BIGINT,
        params BIGINT, input_shape TEXT, graph_summary TEXT, created_at TEXT NOT NULL,
        CHECK (sha256 IS NOT NULL OR (space IS NOT NULL AND arch IS NOT NULL)))""",
    "CREATE UNIQUE INDEX models_space_arch_unhashed ON models (space, arch) WHERE sha256 IS NULL",
    "CREATE INDEX models_space_arch ON models (space, arch)",
    """CREATE TABLE devices (
        device_id TEXT PRIMARY KEY, name TEXT NOT NULL, fingerprint TEXT NOT NULL, created_at TEXT NOT NULL,
        seq BIGSERIAL NOT NULL)""",
    "CREATE INDEX devices_name ON devices (name)",
    """CREATE TABLE measurements (
        id BIGSERIAL PRIMARY KEY, uid TEXT NOT NULL UNIQUE, model_id BIGINT NOT NULL REFERENCES models (id),
        device_id TEXT NOT NULL REFERENCES devices (device_id), runtime TEXT NOT NULL, provider TEXT NOT NULL,
        config TEXT NOT NULL, config_hash TEXT NOT NULL, status TEXT NOT NULL, error TEXT, samples TEXT NOT NULL,
        median_ms DOUBLE PRECISION, p90_ms DOUBLE PRECISION, p99_ms DOUBLE PRECISION, mean_ms DOUBLE PRECISION,
        std_ms DOUBLE PRECISION, ci_low_ms DOUBLE PRECISION, ci_high_ms DOUBLE PRECISION, number BIGINT,
        environment TEXT NOT NULL, agent_version TEXT, source TEXT NOT NULL, created_at TEXT NOT NULL)""",
    "CREATE INDEX measurements_resume ON measurements (model_id, device_id, runtime, config_hash, status)",
    "CREATE INDEX measurements_device ON measurements (device_id, runtime, status)",
    """CREATE FUNCTION latency_db_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'measurements are append-only'; END $$""",
    """CREATE TRIGGER measurements_no_update BEFORE UPDATE OR DELETE ON measurements
        FOR EACH ROW EXECUTE FUNCTION latency_db_append_only()""",
)

def _pg_v2() -> tuple[str, ...]:
    from latency_db.schema import TIMESTAMPED, canonical_timestamp_sql

    rewrite = tuple(f"UPDATE {t} SET created_at = {canonical_timestamp_sql('created_at')} "
                    f"WHERE created_at LIKE '%+00:00'" for t in TIMESTAMPED)  # fmt: skip
    return ("ALTER TABLE measurements DISABLE TRIGGER measurements_no_update", *rewrite,
            "ALTER TABLE measurements ENABLE TRIGGER measurements_no_update")


#: PostgreSQL DDL per schema version, parallel to :data:`latency_db.schema.MIGRATIONS`.
PG_MIGRATIONS: tuple[tuple[str, ...], ...] = (_PG_V1, _pg_v2())

_SUM_EQ = re.compile(r"sum\(([\w.]+) = ('[^']*')\)")


def is_url(location: object) -> bool:
    """Whether ``location`` names a PostgreSQL database rather than a SQLite file."""
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def translate(sql: str) -> str:
    """The SQLite-flavoured SQL of ``latency_db`` in PostgreSQL's dialect (see the module docstring)."""
    sql = _SUM_EQ.sub(r"sum(CASE WHEN \1 = \2 THEN 1 ELSE 0 END)", sql)
    return sql.replace("ORDER BY rowid", "ORDER BY seq").replace("?", "%s")


class Row(tuple):  # type: ignore[type-arg]
    """A result row readable by position and by column name, like ``sqlite3.Row``."""

    _names: tuple[str, ...] = ()

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        if isinstance(key, str):
            try:
                return tuple.__getitem__(self, self._names.index(key))
            except ValueError:
                raise IndexError(f"no column {key!r}") from None
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


def _row_factory(cursor: Any) -> Any:
    names = tuple(d.name for d in cursor.description or ())
    cls = type("Row", (Row,), {"_names": names})
    return lambda values: cls(values)


class PgConnection:
    """The subset of ``sqlite3.Connection`` that ``latency_db`` uses, over psycopg (autocommit on;
    transactions are explicit, as with ``isolation_level=None``)."""

    def __init__(self, conn: Any, url: str) -> None:
        self._conn, self.url = conn, url
        self.row_factory: Any = None  # accepted and ignored: rows are always :class:`Row`

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._conn.execute(translate(sql), tuple(params) if params else None)

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        return bool(self._conn.info.transaction_status != TransactionStatus.IDLE)

    @contextlib.contextmanager
    def write_transaction(self) -> Iterator[PgConnection]:
        """One transaction holding the writers' advisory lock; commit on success, roll back on error."""
        self._conn.execute("BEGIN")
        try:
            self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            yield self
            self._conn.execute("COMMIT")
        except BaseException:
            if self.in_transaction:
                self._conn.execute("ROLLBACK")
            raise

    def schema_version(self) -> int:
        row = self._conn.execute("SELECT value FROM latency_db_meta WHERE key = 'schema_version'").fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        self._conn.close()


def connect(url: str, *, timeout_s: float, read_only: bool = False) -> PgConnection:
    """Open ``url`` and bring its schema to the current version (read-only: require it).

    Raises:
        ImportError: psycopg is not installed (the message says how to get it).
        SchemaError: a newer schema than this code, or (read-only) an older or missing one.
        ConnectionError: the server cannot be reached or refuses the login (one line).
    """
    from latency_db.schema import SCHEMA_VERSION, SchemaError

    try:
        import psycopg
    except ImportError:
        raise ImportError("a postgresql:// database needs psycopg: pip install 'hwnas[postgres]'") from None
    try:
        raw = psycopg.connect(url, autocommit=True, row_factory=_row_factory, connect_timeout=max(1, int(timeout_s)))
    except psycopg.Error as exc:
        raise ConnectionError(f"cannot open {_redact(url)}: {' '.join(str(exc).split())}") from None
    conn = PgConnection(raw, url)
    try:
        raw.execute(f"SET lock_timeout = {max(1, int(timeout_s * 1000))}")
        if read_only:
            exists = raw.execute("SELECT to_regclass('latency_db_meta') IS NOT NULL").fetchone()[0]
            version = conn.schema_version() if exists else 0
            if version != SCHEMA_VERSION:
                raise SchemaError(f"{_redact(url)} is not a latency database at schema {SCHEMA_VERSION}"
                                  + (f" (it has {version}: upgrade hwnas)" if version > SCHEMA_VERSION else ""))
            return conn
        # the whole bootstrap under the writers' lock: concurrent first openers of an empty database
        # would otherwise race on CREATE TABLE (PostgreSQL's IF NOT EXISTS is not atomic)
        with conn.write_transaction():
            raw.execute("CREATE TABLE IF NOT EXISTS latency_db_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            version = conn.schema_version()
            if version > SCHEMA_VERSION:
                raise SchemaError(f"{_redact(url)} has latency-database schema {version}, newer than this hwnas "
                                  f"({SCHEMA_VERSION}): upgrade hwnas")
            for ddl in PG_MIGRATIONS[version:]:
                for statement in ddl:
                    raw.execute(statement)
            if version < SCHEMA_VERSION:
                raw.execute("INSERT INTO latency_db_meta VALUES ('schema_version', %s) ON CONFLICT (key) "
                            "DO UPDATE SET value = EXCLUDED.value", (str(SCHEMA_VERSION),))  # fmt: skip
    except BaseException:
        conn.close()
        raise
    return conn


def _redact(url: str) -> str:
    """``url`` without a password."""
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


__all__ = ["PG_MIGRATIONS", "PgConnection", "Row", "connect", "is_url", "translate"]
