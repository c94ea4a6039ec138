"""Atomic file writes, for every package of hwnas (stdlib only, so the device side and
``hw_space`` can use it too): a reader, or a crash, never sees a half-written file.

:func:`atomic_path` yields a temporary path in the target's folder; when the block ends without
an exception the file is flushed to disk and moved into place with ``os.replace``, else removed.
:func:`atomic_write` writes bytes or text through it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], mode: int | None = None) -> Iterator[Path]:
    """A temporary path next to ``path`` to write; moved onto ``path`` when the block succeeds.

    Args:
        path: the file to (re)place; its folder is created.
        mode: permission bits of the result (default: those of the file it replaces, else 0o644).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode is None:
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: str | os.PathLike[str], data: bytes | str, mode: int | None = None) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` atomically; returns ``path``."""
    with atomic_path(path, mode) as tmp:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(path)


__all__ = ["atomic_path", "atomic_write"]
