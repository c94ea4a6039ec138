"""A local, read-only web dashboard over a latency database and run folders, and ``report.html``.

Modules: :mod:`~hwnas.dashboard.queries` (SQL aggregation and pagination of the latency DB),
:mod:`~hwnas.dashboard.runs` (finding and reading search/codesign folders),
:mod:`~hwnas.dashboard.analysis` (predictor vs measured, per-layer codesign cost),
:mod:`~hwnas.dashboard.charts` (plotly figures as dicts), :mod:`~hwnas.dashboard.markup` (escaped
HTML), ``views_db`` / ``views_runs`` (the pages), :mod:`~hwnas.dashboard.server` (routes and the
stdlib HTTP server), :mod:`~hwnas.dashboard.report` (the self-contained report) and
:mod:`~hwnas.cli.dashboard` (``hwnas dashboard``, ``hwnas report``).

Nothing heavy is imported here: ``from hwnas.dashboard import write_report`` is cheap.
"""

from __future__ import annotations

from pathlib import Path


def write_report(out_dir: Path) -> Path:
    """Write ``out_dir/report.html``; see :func:`hwnas.dashboard.report.write_report`."""
    from hwnas.dashboard.report import write_report as write

    return write(Path(out_dir))


__all__ = ["write_report"]
