"""What the commands print: JSON or text (:func:`emit`), a one-line progress on a terminal, and a
run's ``report.html`` (:func:`write_run_report`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable


def progress_printer(stream: Any = None) -> Callable[[int, int, str], None] | None:
    """A one-line progress printer for a terminal, or None when ``stream`` is not a TTY."""
    stream = stream or sys.stderr
    if not stream.isatty():
        return None

    def show(i: int, total: int, text: str) -> None:
        end = "\n" if i == total else ""
        stream.write(f"\r\033[K[{i}/{total}] {text}{end}")
        stream.flush()

    return show


def emit(obj: Any, as_json: bool, text: str | None = None) -> None:
    """Print ``obj`` as JSON, or ``text`` (defaulting to a JSON dump) for humans."""
    if as_json:
        print(json.dumps(obj, indent=2, sort_keys=True, default=str))
    else:
        print(text if text is not None else json.dumps(obj, indent=2, sort_keys=True, default=str))


def write_run_report(out: Path) -> Path | None:
    """``OUT/report.html`` of a search or codesign run (:func:`hwnas.dashboard.write_report`), or
    None when the dashboard's plotly is not installed (nothing else is lost)."""
    try:
        from hwnas.dashboard import write_report
    except ImportError:
        return None
    try:
        return write_report(out)
    except ImportError:
        return None


__all__ = ["emit", "progress_printer", "write_run_report"]
