"""Opening the latency database from a ``--db`` flag, with one-line errors; the ``--config`` help."""

from __future__ import annotations

from pathlib import Path

from hwnas.errors import CLIError
from latency_db import LatencyDB
from latency_db.pg import is_url

CONFIG_HELP = ("only measurements under this protocol config (a prefix of its hash, as listed when a device has "
               "several configurations: runtime, provider, threads, protocol)")  # fmt: skip


def open_latency_db(path: str, read_only: bool = False) -> LatencyDB:
    """``LatencyDB(path)`` with a PostgreSQL server that cannot be reached as a one-line ``CLIError``."""
    try:
        return LatencyDB(path, read_only=read_only)
    except (ConnectionError, ImportError) as exc:
        raise CLIError(f"--db: {exc}") from None


def open_db(path: str) -> LatencyDB:
    """An existing database (file or PostgreSQL URL), read-only; ``CLIError`` when the file is missing."""
    if not is_url(path) and not Path(path).is_file():
        raise CLIError(f"--db {path}: no such database file")
    return open_latency_db(path, read_only=True)


__all__ = ["CONFIG_HELP", "open_db", "open_latency_db"]
