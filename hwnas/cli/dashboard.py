"""``hwnas dashboard`` and ``hwnas report``: flags to objects, then the server or the report."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from hwnas.errors import CLIError


def cmd_dashboard(args: argparse.Namespace) -> int:
    from hwnas.dashboard.server import DashboardApp, make_server
    from latency_db.pg import is_url

    if not is_url(args.db) and not Path(args.db).is_file():
        raise CLIError(f"--db {args.db}: no such database file")
    for folder in args.runs:
        if not Path(folder).is_dir():
            raise CLIError(f"--runs {folder}: no such folder")
    for f in args.predictor:
        if not Path(f).is_file():
            raise CLIError(f"--predictor {f}: no such file")
    app = DashboardApp(db=args.db, runs=[Path(r) for r in args.runs], predictors=[Path(p) for p in args.predictor])
    with app.open_db():  # fail now, with one line, on a database that cannot be opened read-only
        pass
    try:
        server = make_server(app, args.host, args.port, verbose=args.verbose)
    except OSError as exc:
        raise CLIError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    host, port = server.server_address[:2]
    print(f"hwnas dashboard on http://{host}:{port}/ (read-only; Ctrl-C stops it)", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from hwnas.dashboard.report import write_report

    path = write_report(Path(args.dir))
    print(json.dumps({"report": str(path)}) if args.json else f"report: {path}")
    return 0


def add_parsers(sub: Any, default_db: str) -> None:
    """Register ``dashboard`` and ``report`` on the ``hwnas`` sub-command parser."""
    p = sub.add_parser(
        "dashboard", help="a local, read-only web dashboard over a latency DB and run folders",
        description="Serve Devices, Measurements, Predictors, Searches, Codesign and Live views over a latency "
        "database (opened read-only) and search/codesign output folders. Binds 127.0.0.1 unless --host says otherwise.")
    p.add_argument("--db", default=default_db, help=f"latency database: SQLite path or postgresql:// URL (default {default_db})")
    p.add_argument("--runs", nargs="*", default=[], metavar="DIR",
                   help="search/codesign output folders, or folders of them (a running search shows up live)")
    p.add_argument("--predictor", action="append", default=[], metavar="FILE",
                   help="predictor file for the Predictors view (repeatable)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    p.add_argument("--verbose", action="store_true", help="log every request to stderr")
    p.set_defaults(func=cmd_dashboard)

    q = sub.add_parser("report", help="write DIR/report.html: the search or codesign views of one run, self-contained",
                       description="Write DIR/report.html, one file that opens offline (plotly.js inlined, no CDN).")
    q.add_argument("dir", metavar="DIR", help="a search or codesign output folder (holding study.db/result.json)")
    q.add_argument("--json", action="store_true", help="print the report's path as JSON")
    q.set_defaults(func=cmd_report)
