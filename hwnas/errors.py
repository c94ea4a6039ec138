"""Errors that the command line prints as one line (exit code 2)."""

from __future__ import annotations


class CLIError(Exception):
    """A user error: bad flag, missing file, invalid value. Printed as ``hwnas: error: <message>``."""
