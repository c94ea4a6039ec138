"""The latency database's SQLite schema, its migrations, and how a connection is opened.

The schema is versioned with ``PRAGMA user_version``: version ``N`` means the first ``N`` entries
of :data:`MIGRATIONS` have been applied. Opening a database applies the missing migrations in one
``BEGIN IMMEDIATE`` transaction, so a crash or a concurrent opener never sees a half-migrated file.
``PRAGMA application_id`` marks a file as a latency database, so another program's SQLite file is
refused instead of being written into.

To change the schema, append a :class:`Migration` (never edit a released one); ``SCHEMA_VERSION``
follows from the list's length.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

APPLICATION_ID = 0x68774E41  # "hwNA": marks a SQLite file as an hwnas latency database.


class SchemaError(Exception):
    """The file cannot be used as a latency database by this version of the code.

    Raised, with a one-line message naming the file, when the file is not a SQLite database, is a
    SQLite database written by another program, or has a schema newer than this code knows.
    """


@dataclass(frozen=True)
class Migration:
    """One step of the schema history.

    Attributes:
        version: the schema version after this migration (1 for the initial schema).
        description: one line saying what the step changes.
        statements: SQL statements run in order, inside the migration's transaction.
    """

    version: int
    description: str
    statements: tuple[str, ...]


_V1 = (
    """CREATE TABLE models (
        id INTEGER PRIMARY KEY,
        sha256 TEXT UNIQUE,
        space TEXT,
        arch TEXT,
        key TEXT,
        flops INTEGER,
        params INTEGER,
        input_shape TEXT,
        graph_summary TEXT,
        created_at TEXT NOT NULL,
        CHECK (sha256 IS NOT NULL OR (space IS NOT NULL AND arch IS NOT NULL))
    )""",
    "CREATE UNIQUE INDEX models_space_arch_unhashed ON models (space, arch) WHERE sha256 IS NULL",
    "CREATE INDEX models_space_arch ON models (space, arch)",
    """CREATE TABLE devices (
        device_id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        created_at TEXT NOT NULL
    )""",
    "CREATE INDEX devices_name ON devices (name)",
    """CREATE TABLE measurements (
        id INTEGER PRIMARY KEY,
        uid TEXT NOT NULL UNIQUE,
        model_id INTEGER NOT NULL REFERENCES models (id),
        device_id TEXT NOT NULL REFERENCES devices (device_id),
        runtime TEXT NOT NULL,
        provider TEXT NOT NULL,
        config TEXT NOT NULL,
        config_hash TEXT NOT NULL,
        status TEXT NOT NULL,
        error TEXT,
        samples TEXT NOT NULL,
        median_ms REAL,
        p90_ms REAL,
        p99_ms REAL,
        mean_ms REAL,
        std_ms REAL,
        ci_low_ms REAL,
        ci_high_ms REAL,
        number INTEGER,
        environment TEXT NOT NULL,
        agent_version TEXT,
        source TEXT NOT NULL,
        created_at TEXT NOT NULL
    )""",
    """CREATE INDEX measurements_resume
        ON measurements (model_id, device_id, runtime, config_hash, status)""",
    "CREATE INDEX measurements_device ON measurements (device_id, runtime, status)",
    """CREATE TRIGGER measurements_no_update BEFORE UPDATE ON measurements
        BEGIN SELECT RAISE(ABORT, 'measurements are append-only'); END""",
    """CREATE TRIGGER measurements_no_delete BEFORE DELETE ON measurements
        BEGIN SELECT RAISE(ABORT, 'measurements are append-only'); END""",
)

def canonical_timestamp_sql(column: str) -> str:
    """SQL (SQLite and PostgreSQL alike) turning a stored ``...+00:00`` timestamp (seconds or
    microseconds) into the one format, ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    return (f"CASE WHEN substr({column}, 20, 1) = '.' THEN substr({column}, 1, 23) || 'Z' "
            f"ELSE substr({column}, 1, 19) || '.000Z' END")


#: The tables whose ``created_at`` the timestamp migration rewrites.
TIMESTAMPED = ("models", "devices", "measurements")


def _timestamps_sqlite() -> tuple[str, ...]:
    rewrite = tuple(f"UPDATE {t} SET created_at = {canonical_timestamp_sql('created_at')} "
                    f"WHERE created_at LIKE '%+00:00'" for t in TIMESTAMPED)  # fmt: skip
    return ("DROP TRIGGER measurements_no_update", *rewrite, _V1[-2])


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial schema: models, devices, append-only measurements", _V1),
    Migration(2, "one timestamp format: created_at written before as +00:00 becomes ...mmmZ", _timestamps_sqlite()),
)

SCHEMA_VERSION: int = len(MIGRATIONS)


@contextlib.contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Run the body in one ``BEGIN IMMEDIATE`` transaction: commit on success, roll back on error.

    ``BEGIN IMMEDIATE`` takes the write lock up front (waiting up to the busy timeout), so two
    writers never deadlock upgrading read locks. The connection must use ``isolation_level=None``.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def connect(path: Path, *, timeout_s: float, read_only: bool = False) -> sqlite3.Connection:
    """Open ``path`` as a latency database and bring its schema up to :data:`SCHEMA_VERSION`.

    Writable opens create the parent directories and the file, switch the file to WAL mode and
    migrate it. Read-only opens (``mode=ro``) never write to the file (SQLite may leave empty
    ``-wal``/``-shm`` files beside it) and require the current schema version.

    The connection has ``isolation_level=None`` (transactions are explicit), ``foreign_keys=ON``,
    ``busy_timeout`` = ``timeout_s`` and, in WAL mode, ``synchronous=NORMAL`` (durable across
    process crashes; a power cut may lose the last commits but never corrupts the file).

    Raises:
        SchemaError: not a SQLite file, another program's SQLite file, or a newer schema.
        FileNotFoundError: ``read_only`` and the file does not exist.
        sqlite3.OperationalError: the file cannot be opened or stays locked (message names it).
    """
    if read_only and not path.is_file():
        raise FileNotFoundError(f"latency database not found: {path}")
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    _check_header(path)
    target = path.resolve().as_uri() + "?mode=ro" if read_only else str(path)
    try:
        conn = sqlite3.connect(target, uri=read_only, timeout=timeout_s, isolation_level=None)
    except sqlite3.Error as exc:
        raise _describe(path, exc) from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {max(0, int(timeout_s * 1000))}")
        _check_version(conn, path, _user_version(conn))
        if read_only:
            _check_current(conn, path)
        else:
            if _enable_wal(conn, timeout_s):
                conn.execute("PRAGMA synchronous = NORMAL")
            migrate(conn, path)
        conn.execute("PRAGMA foreign_keys = ON")
    except sqlite3.Error as exc:
        conn.close()
        raise _describe(path, exc) from exc
    except BaseException:
        conn.close()
        raise
    return conn


SQLITE_HEADER = b"SQLite format 3\x00"


def _check_header(path: Path) -> None:
    """Refuse a non-empty file that does not start with SQLite's header.

    SQLite itself treats any file shorter than a page header as an empty database and would
    overwrite it, so a stray one-line text file passed as ``--db`` would be lost.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(len(SQLITE_HEADER))
    except (FileNotFoundError, IsADirectoryError):
        return
    if head and head != SQLITE_HEADER:
        raise SchemaError(f"{path} is not a SQLite database (wrong header); pass another --db path")


def _enable_wal(conn: sqlite3.Connection, timeout_s: float) -> bool:
    """Put the file in WAL mode (persistent); True if it is in WAL mode afterwards.

    Switching a new file to WAL needs an exclusive lock, and SQLite reports a concurrent opener's
    lock as ``database is locked`` at once instead of calling the busy handler; so retry with
    back-off until ``timeout_s`` has passed. A file already in WAL mode is not written.
    """
    deadline = time.monotonic() + timeout_s
    delay = 0.001
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            if mode != "wal":
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            return bool(mode == "wal")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(2 * delay, 0.05)


def migrate(conn: sqlite3.Connection, path: Path) -> int:
    """Apply the migrations ``conn``'s file lacks, all in one transaction; return the version.

    Safe against concurrent openers: the version is re-read after the write lock is taken, so a
    migration another process just applied is not applied twice.
    """
    if _user_version(conn) == SCHEMA_VERSION:
        return SCHEMA_VERSION
    with write_transaction(conn):
        version = _check_version(conn, path, _user_version(conn))
        if version == 0:
            n_objects = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if n_objects:
                raise SchemaError(
                    f"{path} is a SQLite database of another program, not a latency database")
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        for migration in MIGRATIONS[version:]:
            for statement in migration.statements:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    return SCHEMA_VERSION


def _user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _check_version(conn: sqlite3.Connection, path: Path, version: int) -> int:
    """Refuse files with a newer schema or another program's application id; return ``version``."""
    if version > SCHEMA_VERSION:
        raise SchemaError(
            f"{path} has latency database schema version {version}, newer than the supported "
            f"{SCHEMA_VERSION}: upgrade hwnas to open it"
        )
    if version > 0 and conn.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
        raise SchemaError(f"{path} is a SQLite database of another program, not a latency database")
    return version


def _check_current(conn: sqlite3.Connection, path: Path) -> None:
    version = _user_version(conn)
    if version != SCHEMA_VERSION:
        raise SchemaError(
            f"{path} has latency database schema version {version}, older than {SCHEMA_VERSION}; "
            "it cannot be migrated read-only: open it writable once (LatencyDB(path)) to migrate it"
        )


def _describe(path: Path, exc: sqlite3.Error) -> Exception:
    """Turn a sqlite3 error met while opening into a one-line error that names the file."""
    message = " ".join(str(exc).split())
    if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
        return SchemaError(f"{path} is not a SQLite database ({message})")
    return sqlite3.OperationalError(f"cannot open latency database {path}: {message}")
