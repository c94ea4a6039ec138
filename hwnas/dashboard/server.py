"""The dashboard's HTTP server: the standard library's ``ThreadingHTTPServer`` and a small router.

Why the standard library: the app is read-only, has a dozen GET routes and no sessions or forms
that post, so a framework would add a dependency (and its updates) for nothing the app needs;
``http.server`` is always there, and a thread per request keeps a slow page (a predictor's graphs)
from blocking the live polls.

Safety: the server binds 127.0.0.1 unless told otherwise; each request opens the latency database
read-only (``LatencyDB(read_only=True)``; one connection per request, since a connection is not
thread-safe) and closes it; run folders are looked up by id among those found under ``--runs`` and
only their plain top-level files (``result.json``, ``pareto.png``, ...) are served; every page is
sent with a Content-Security-Policy that allows scripts from this origin only (no inline script)
and ``X-Content-Type-Options: nosniff``.

Example:
    >>> app = DashboardApp(db="lat.db", runs=[Path("runs")])             # doctest: +SKIP
    >>> server = make_server(app, "127.0.0.1", 8080); server.serve_forever()  # doctest: +SKIP
"""

from __future__ import annotations

import mimetypes
import threading
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from hwnas.dashboard import analysis, views_db, views_runs
from hwnas.dashboard.assets import APP_JS
from hwnas.dashboard.markup import Safe, document, esc, script_json
from hwnas.dashboard.runs import RunData, find_runs, load_run

CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
#: Files of a run folder that may be served (plain files directly inside it).
SERVED_SUFFIXES = (".json", ".png", ".html", ".csv", ".jsonl", ".txt")


@dataclass
class DashboardApp:
    """What the dashboard serves: a latency database, run folders and predictor files.

    Holds no open connection (each request opens the database read-only) and a small cache of
    slow results (predictor comparisons, codesign layer costs) keyed by what they depend on.
    Thread-safe.

    Args:
        db: a SQLite path or ``postgresql://`` URL (None: the database views say there is none).
        runs: folders holding run folders (or run folders themselves).
        predictors: predictor files the Predictors view may load.
    """

    db: str | None
    runs: list[Path] = field(default_factory=list)
    predictors: list[Path] = field(default_factory=list)
    _cache: dict[Any, Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def open_db(self) -> Any:
        """The latency database, read-only (the caller closes it)."""
        from latency_db import LatencyDB

        if not self.db:
            raise FileNotFoundError("no latency database: start the dashboard with --db PATH_OR_URL")
        return LatencyDB(self.db, read_only=True)

    def all_runs(self) -> list[RunData]:
        """Every run folder, read now."""
        return [load_run(ref) for ref in find_runs(self.runs)]

    def run(self, run_id: str) -> RunData | None:
        """The run with this id, or None (ids are only looked up, never turned into paths)."""
        for ref in find_runs(self.runs):
            if ref.run_id == run_id:
                return load_run(ref)
        return None

    def cached(self, key: Any, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per ``key`` (a failure is not cached)."""
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        value = compute()
        with self._lock:
            if len(self._cache) > 64:
                self._cache.clear()
            self._cache[key] = value
        return value

    def codesign_layers(self, run: RunData) -> dict[str, Any]:
        best = run.result["best"]
        key = ("layers", str(run.ref.path), run.updated)
        return self.cached(key, lambda: analysis.codesign_layers(best, str(run.result.get("space") or run.ident.get("space"))))

    def predictor(self, path: Path, device: str) -> dict[str, Any]:
        key = ("predictor", str(path), path.stat().st_mtime if path.exists() else 0, device, self.db)

        def compute() -> dict[str, Any]:
            with self.open_db() as db:
                return analysis.predictor_vs_measured(db, path, device)

        return self.cached(key, compute)

    def run_files(self, run: RunData) -> list[str]:
        """Plain files directly in the run folder that may be served."""
        return sorted(p.name for p in run.ref.path.iterdir()
                      if p.is_file() and not p.is_symlink() and p.suffix in SERVED_SUFFIXES)


class Response:
    """A response: status, content type, body bytes."""

    def __init__(self, body: bytes | str, content_type: str = "text/html; charset=utf-8",
                 status: HTTPStatus = HTTPStatus.OK, headers: dict[str, str] | None = None) -> None:
        self.body = body.encode("utf-8") if isinstance(body, str) else body
        self.content_type, self.status, self.headers = content_type, status, headers or {}


def _json(obj: Any) -> Response:
    return Response(script_json(obj), "application/json; charset=utf-8")


def _page(title: str, body: Safe, active: str, poll: str | None = None, state: str | None = None) -> Response:
    html = document(title, body, active=active, poll=poll)
    if state is not None:
        html = html.replace("<body", f'<body data-state="{esc(state)}"', 1)
    return Response(html)


def _error(status: HTTPStatus, message: str) -> Response:
    return Response(document(f"{status.value} {status.phrase}", Safe(f"<p>{esc(message)}</p>")), status=status)


def _with_db(app: DashboardApp, fn: Callable[[Any], Safe]) -> Safe:
    try:
        db = app.open_db()
    except Exception as exc:  # a missing or unreachable database is shown, not a 500
        return Safe(f'<p class="note">{esc(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)}</p>')
    with db:
        return fn(db)


def route(app: DashboardApp, path: str, query: dict[str, str]) -> Response:
    """The response to ``GET path?query`` (``query``: the first value of each parameter)."""
    if path == "/":
        return Response(b"", status=HTTPStatus.FOUND, headers={"Location": "/devices"})
    if path == "/favicon.ico":
        return Response(b"", "image/x-icon", status=HTTPStatus.NO_CONTENT)
    if path == "/static/app.js":
        return Response(APP_JS, "text/javascript; charset=utf-8")
    if path == "/static/plotly.min.js":
        from hwnas.dashboard.charts import plotly_js

        return Response(app.cached("plotly.js", plotly_js), "text/javascript; charset=utf-8",
                        headers={"Cache-Control": "max-age=3600"})
    if path == "/devices":
        return _page("Devices", _with_db(app, views_db.devices_view), path)
    if path == "/measurements":
        return _page("Measurements", _with_db(app, lambda db: views_db.measurements_view(db, query)), path)
    if path == "/predictors":
        return _page("Predictors", _with_db(app, lambda db: views_db.predictors_view(
            db, app.predictors, query, app.predictor)), path)
    if path in ("/searches", "/codesign"):
        kind = "search" if path == "/searches" else "codesign"
        return _page("Searches" if kind == "search" else "Codesign", views_runs.run_list_view(app.all_runs(), kind), path)
    if path == "/live":
        return _page("Live", views_runs.live_view(app.all_runs()), path, poll="/api/live")
    if path == "/api/live":
        runs = app.all_runs()
        return _json({"rows": {"live": views_runs.live_rows(runs)},
                      "text": {"n_running": sum(r.state == "running" for r in runs)}})
    if path in ("/run", "/api/run", "/file"):
        run = app.run(query.get("id", ""))
        if run is None:
            return _error(HTTPStatus.NOT_FOUND, "no such run")
        if path == "/api/run":
            return _json(views_runs.run_payload(run))
        if path == "/file":
            return _run_file(app, run, query.get("name", ""))
        active = "/codesign" if run.kind == "codesign" else "/searches"
        poll = None if run.state == "finished" else views_runs.run_href(run).replace("/run?", "/api/run?")
        return _page(f"{run.kind} {run.ref.run_id}", views_runs.run_view(run, app.codesign_layers, app.run_files(run)),
                     active, poll=poll, state=run.state)
    return _error(HTTPStatus.NOT_FOUND, "no such page")


def _run_file(app: DashboardApp, run: RunData, name: str) -> Response:
    """A plain file directly in the run folder, by name (no separators, no hidden files)."""
    if name not in app.run_files(run):
        return _error(HTTPStatus.NOT_FOUND, "no such file in this run")
    target = run.ref.path / name
    kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if kind == "text/html":  # a report is shown as source rather than run under this origin
        kind = "text/plain"
    return Response(target.read_bytes(), kind + ("; charset=utf-8" if kind.startswith("text/") or kind.endswith("json") else ""))


class Handler(BaseHTTPRequestHandler):
    """Serves GET and HEAD through :func:`route`; the app is the server's ``app`` attribute."""

    server_version = "hwnas-dashboard"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._serve(send_body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(send_body=False)

    def _serve(self, send_body: bool) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        try:
            response = route(self.server.app, parts.path, query)  # type: ignore[attr-defined]
        except Exception as exc:  # one failing page must not take the server down
            self.log_error("error on %s: %r", parts.path, exc)
            response = _error(HTTPStatus.INTERNAL_SERVER_ERROR, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        for k, v in response.headers.items():
            self.send_header(k, v)
        if "Cache-Control" not in response.headers:
            self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if send_body:
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        if getattr(self.server, "verbose", False):
            super().log_message(format, *args)


def make_server(app: DashboardApp, host: str = "127.0.0.1", port: int = 8080, verbose: bool = False) -> ThreadingHTTPServer:
    """A bound (not yet serving) server for ``app``; port 0 picks a free port (``server.server_port``)."""
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    server.app = app  # type: ignore[attr-defined]
    server.verbose = verbose  # type: ignore[attr-defined]
    return server


__all__ = ["CSP", "DashboardApp", "Handler", "Response", "make_server", "route"]
