"""The ``hwnas`` command line: the one place where strings become objects.

This package is the command line's edge: ``main`` and the parser here, one module per command
(:mod:`~hwnas.cli.export`, :mod:`~hwnas.cli.db`, :mod:`~hwnas.cli.predictor`,
:mod:`~hwnas.cli.search` with :mod:`~hwnas.cli.setup` and :mod:`~hwnas.cli.latency_sources`,
:mod:`~hwnas.cli.hw`, :mod:`~hwnas.cli.codesign`, :mod:`~hwnas.cli.profile`,
:mod:`~hwnas.cli.dashboard`, :mod:`~hwnas.cli.tvm`) and the output helpers in :mod:`~hwnas.cli.output`. Flags become
objects here; nothing outside this package imports it or takes an ``argparse.Namespace``.

Every sub-command has ``--help``, exits non-zero with a one-line ``hwnas: error: ...`` on bad
input, and prints machine-readable JSON with ``--json``.

    hwnas space info --space nb201
    hwnas export --space nb201 --sample 50 --seed 0 --out candidates/
    device_agent run --models candidates/ --db .hwnas/latency.db
    hwnas db summary --db .hwnas/latency.db
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from hwnas import __version__
from hwnas.errors import CLIError
from latency_db import SchemaError

DEFAULT_DB = ".hwnas/latency.db"


def build_parser() -> argparse.ArgumentParser:
    """The ``hwnas`` parser with every sub-command."""
    from hwnas.cli import codesign, dashboard, db, export, hw, predictor, profile, search, tvm

    parser = argparse.ArgumentParser(
        prog="hwnas",
        description="Hardware-aware neural architecture search: spaces, ONNX export, latency database.",
    )
    parser.add_argument("--version", action="version", version=f"hwnas {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    export.add_parsers(sub)
    db.add_parsers(sub, DEFAULT_DB)
    predictor.add_parsers(sub, DEFAULT_DB)
    search.add_parser(sub, DEFAULT_DB)
    hw.add_parsers(sub)
    codesign.add_parser(sub, DEFAULT_DB)
    profile.add_parser(sub, DEFAULT_DB)
    dashboard.add_parsers(sub, DEFAULT_DB)
    tvm.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hwnas`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (CLIError, ValueError, FileNotFoundError, PermissionError, SchemaError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"hwnas: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hwnas: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `hwnas db table | head`: the reader left; no traceback, and none at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
