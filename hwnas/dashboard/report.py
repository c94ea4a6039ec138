"""``report.html``: one self-contained page with the search or codesign views of one run folder.

The file inlines plotly.js from the Python package and the page script, and embeds the figures as
JSON, so it opens from ``file://`` with no network and no server; it is the run page of the
dashboard without the navigation, the live polling and the file links.

Example:
    >>> from pathlib import Path
    >>> write_report(Path("runs/search1"))          # doctest: +SKIP
    PosixPath('runs/search1/report.html')
"""

from __future__ import annotations

from pathlib import Path

from hwnas.dashboard import analysis, views_runs
from hwnas.dashboard.charts import plotly_js
from hwnas.dashboard.markup import document
from hwnas.dashboard.runs import RunData, RunRef, load_run

REPORT_NAME = "report.html"


def render_report(out_dir: Path) -> str:
    """The report of the run in ``out_dir`` as an HTML string.

    Raises:
        FileNotFoundError: ``out_dir`` holds neither ``study.db`` nor ``result.json``.
        ImportError: plotly is missing (the message says how to install it).
    """
    out_dir = Path(out_dir)
    if not ((out_dir / "study.db").is_file() or (out_dir / "result.json").is_file()):
        raise FileNotFoundError(f"{out_dir} is not a search or codesign output folder (no study.db or result.json)")
    run = load_run(RunRef(out_dir.name or str(out_dir), out_dir))

    def layers(r: RunData) -> dict:
        return analysis.codesign_layers(r.result["best"], str(r.result.get("space") or r.ident.get("space")))

    title = f"hwnas {run.kind} report: {out_dir.resolve().name}"
    return document(title, views_runs.run_view(run, layers), standalone_js=plotly_js(), nav=False)


def write_report(out_dir: Path) -> Path:
    """Write ``out_dir/report.html`` (atomically) for the search or codesign run in ``out_dir``;
    return its path. What ``hwnas report DIR`` runs, and ``hwnas search``/``codesign`` at their end.

    Raises:
        FileNotFoundError: ``out_dir`` is not a run folder.
        ImportError: plotly is missing.
    """
    from hwnas.fileio import atomic_write_bytes

    path = Path(out_dir) / REPORT_NAME
    atomic_write_bytes(path, render_report(Path(out_dir)).encode("utf-8"))
    return path
