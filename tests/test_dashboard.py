"""``hwnas dashboard`` and ``hwnas report`` in a real browser: Debian's chromium driven by Playwright.

One module-scoped world (a latency DB of 3 devices, a real search and a real codesign run made
in-process, a flops predictor), one server on a free 127.0.0.1 port and one browser serve every
test. Each page must load with no console error; charts must hold the expected points; a search
started during the test must appear on the Live page and its trial count grow; a device named
``<img src=x onerror=alert(1)>`` and an arch holding ``<script>`` must render as text and run
nothing; report.html must draw its charts from file:// with the network off.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import on_ci, toy_latency

XSS_DEVICE = "<img src=x onerror=alert(1)>"
XSS_ARCH = "|<script>alert(2)</script>~0|"
N_ARCHS = 24
SEARCH_EVALS = 16


def _need(what: str, hint: str) -> None:
    message = f"{what} is missing; install it: {hint}"
    if on_ci():
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message, allow_module_level=True)


CHROMIUM = os.environ.get("HWNAS_TEST_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
if not CHROMIUM:
    _need("chromium", "apt-get install -y chromium (make test does)")
try:
    from playwright.sync_api import sync_playwright
except ImportError:
    _need("playwright", "pip install 'hwnas[dev]'")
try:
    import plotly  # noqa: F401
except ImportError:
    _need("plotly", "pip install 'hwnas[host]'")


def _cli(*argv: str) -> None:
    from hwnas.cli import main

    assert main(list(argv)) == 0, argv


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A latency DB (toy, toy2 = 1.5 x toy + 0.3, and the hostile device), a finished search, a
    finished codesign, a flops predictor, all real outputs of the hwnas commands."""
    from hwnas.space import NB201Space

    root = tmp_path_factory.mktemp("dash")
    space = NB201Space()
    archs = [space.from_index(i * 611).spec for i in range(N_ARCHS)]
    with open(root / "lat.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["space", "arch", "device", "latency_ms"])
        for a in archs:
            w.writerow(["nb201", a, "toy", toy_latency(a)])
            w.writerow(["nb201", a, "toy2", 1.5 * toy_latency(a) + 0.3])
        w.writerow(["custom", XSS_ARCH, XSS_DEVICE, 3.5])
    db = root / "lat.db"
    _cli("db", "import-csv", str(root / "lat.csv"), "--db", str(db))
    runs = root / "runs"
    _cli("search", "--space", "nb201", "--strategy", "random", "--evaluator", "tabular", "--latency-source", "flops",
         "--db", str(db), "--device", "toy", "--cache", str(root / "cache"), "--latency-budget-ms", "6",
         "--budget-evals", str(SEARCH_EVALS), "--out", str(runs / "search1"), "--json")
    _cli("codesign", "--space", "nb201", "--strategy", "random", "--budget-evals", "2", "--out", str(runs / "cd1"), "--json")
    _cli("predictor", "train", "--kind", "flops", "--device", "toy", "--db", str(db), "--cache", str(root / "cache"),
         "--out", str(root / "flops.json"), "--json")
    return {"root": root, "db": db, "runs": runs, "predictor": root / "flops.json", "archs": archs}


@pytest.fixture(scope="module")
def server(world):
    from hwnas.dashboard.server import DashboardApp, make_server

    old_cache = os.environ.get("HWNAS_CACHE")
    os.environ["HWNAS_CACHE"] = str(world["root"] / "cache")  # the predictor view's graph cache
    app = DashboardApp(db=str(world["db"]), runs=[world["runs"]], predictors=[world["predictor"]])
    srv = make_server(app, "127.0.0.1", 0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_port}"
    srv.shutdown()
    srv.server_close()
    if old_cache is None:
        os.environ.pop("HWNAS_CACHE", None)
    else:
        os.environ["HWNAS_CACHE"] = old_cache


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


class Page:
    """A browser page that records console errors, uncaught exceptions and dialogs (alert)."""

    def __init__(self, browser, offline: bool = False, bypass_csp: bool = False) -> None:
        self.context = browser.new_context(offline=offline, bypass_csp=bypass_csp, viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))

    def open(self, url: str) -> Page:
        self.page.goto(url)
        self.wait("window.hwnasCharts !== undefined && document.readyState === 'complete'")
        return self

    def wait(self, expression: str, timeout_s: float = 10.0) -> None:
        """Poll ``expression`` until it is true (``wait_for_function`` evaluates strings with eval,
        which the dashboard's Content-Security-Policy refuses)."""
        deadline = time.monotonic() + timeout_s
        while not self.page.evaluate(expression):
            assert time.monotonic() < deadline, f"timed out waiting for {expression}"
            time.sleep(0.2)

    def points(self) -> dict[str, list[int]]:
        """Chart id -> number of x values of each trace, as plotly.js holds them."""
        return self.page.evaluate(
            "Object.fromEntries(Array.from(document.querySelectorAll('div.chart')).map("
            "d => [d.id.slice(6), (d.data || []).map(t => (t.x || []).length)]))")

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def page(browser):
    p = Page(browser)
    yield p
    p.close()


def test_every_page_loads_without_console_errors_and_charts_hold_the_points(world, server, page) -> None:
    result = json.loads((world["runs"] / "search1" / "result.json").read_text())
    done = [t for t in result["trials"] if t["state"] == "complete"]
    front = result["pareto_front"]
    expected = {
        "/devices": {"device-counts": [3, 3, 3]},
        "/measurements?a=toy&b=toy2": {"histogram": [1, 1, 1], "pair": [N_ARCHS]},
        "/predictors?device=toy": None,
        "/searches": {}, "/codesign": {}, "/live": {},
        "/run?id=0%2Fsearch1": {"trials": [len(done), len(done)]},
        "/run?id=0%2Fcd1": None,
    }
    for path, charts in expected.items():
        page.errors.clear()
        page.open(server + path)
        pts = page.points()
        assert page.errors == [], (path, page.errors)
        assert page.page.evaluate("window.hwnasCharts") == len(pts), path
        for chart, lengths in (charts or {}).items():
            if chart == "histogram":  # one trace per device with ok rows, one bar per bin
                assert len(pts[chart]) == 3 and all(n == 40 for n in pts[chart]), pts
            else:
                assert pts[chart] == lengths, (path, chart, pts)
        if path.startswith("/run?id=0%2Fsearch1"):
            complete, rejected, pareto = pts["tradeoff"][:3]
            assert complete == len(done) and pareto == len(front)
            assert rejected == sum(t["state"] == "rejected" and t.get("latency_ms") is not None for t in result["trials"])
            assert page.page.inner_text("[data-text=n_trials]") == str(len(result["trials"]))
        if path.startswith("/run?id=0%2Fcd1"):
            cd = json.loads((world["runs"] / "cd1" / "result.json").read_text())
            n = sum(t["state"] == "complete" for t in cd["trials"])
            for x in ("latency_ms", "energy_uj", "area_mm2"):
                assert pts[f"front-{x}"][0] == n
            layers = pts["layer-util"][0]
            from hw_space import ENERGY_PARTS  # one energy series per part (phy since issue 19)

            assert layers > 10 and pts["layer-cycles"] == [layers] * 3 and len(pts["layer-energy"]) == len(ENERGY_PARTS)
            assert "the chosen accelerator" in page.page.inner_text("main")
        if path.startswith("/predictors"):
            predicted, extrapolated = pts["predictor"][:2]
            assert predicted + extrapolated == N_ARCHS
            assert "Spearman" in page.page.inner_text("main")
    assert page.dialogs == []


@pytest.mark.parametrize("bypass_csp", [False, True], ids=["csp", "escaping-alone"])
def test_hostile_names_render_as_text_and_run_nothing(server, browser, bypass_csp) -> None:
    page = Page(browser, bypass_csp=bypass_csp)
    try:
        _hostile_names(server, page)
    finally:
        page.close()


def _hostile_names(server: str, page: Page) -> None:
    for path in ("/devices", "/measurements", "/measurements?device=" + urllib.request.quote(XSS_DEVICE)):
        page.open(server + path)
        text = page.page.inner_text("main")
        assert XSS_DEVICE in text, path
        assert page.page.query_selector("main img") is None
        scripts = page.page.evaluate("Array.from(document.scripts).map(s => s.src || s.type)")
        assert all(s.endswith((".js", "application/json")) for s in scripts), scripts
    assert XSS_ARCH in page.page.inner_text("#measurements")
    # the arch in hover text of a chart: plotly shows it as text too
    page.open(server + "/measurements?a=" + urllib.request.quote(XSS_DEVICE) + "&b=toy")
    page.page.wait_for_timeout(300)
    assert page.dialogs == [] and page.errors == []
    assert page.page.evaluate("window.__pwned === undefined")


def test_files_only_from_run_folders(world, server) -> None:
    def get(path: str) -> int:
        try:
            with urllib.request.urlopen(server + path) as r:
                assert r.headers["Content-Security-Policy"].startswith("default-src 'none'")
                return r.status
        except urllib.error.HTTPError as exc:
            return exc.code

    assert get("/file?id=0%2Fsearch1&name=result.json") == 200
    for bad in ("/file?id=0%2Fsearch1&name=..%2F..%2Flat.db", "/file?id=0%2Fsearch1&name=study.db",
                "/file?id=..%2F..&name=result.json", "/run?id=%2Fetc", "/nothing"):
        assert get(bad) == 404, bad


def test_a_search_started_now_shows_up_live_and_its_trial_count_grows(world, server, page) -> None:
    out = world["runs"] / "live1"
    cmd = [sys.executable, "-m", "hwnas.cli", "search", "--space", "nb201", "--strategy", "random", "--evaluator",
           "tabular", "--latency-source", "flops", "--db", str(world["db"]), "--device", "toy", "--cache",
           str(world["root"] / "cache"), "--latency-budget-ms", "6", "--budget-evals", "5000", "--out", str(out),
           "--json"]
    page.open(server + "/live")
    log = open(world["root"] / "live1.log", "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=log, start_new_session=True)
    try:
        live = ("Array.from(document.querySelectorAll('#live tbody tr'))"
                ".filter(tr => tr.cells[0].textContent === '0/live1').map(tr => +tr.cells[3].textContent)[0]")
        page.wait(f"({live}) > 0", 90)  # the Live page polls: no reload
        first = page.page.evaluate(live)
        state = page.page.evaluate(live.replace("+tr.cells[3]", "tr.cells[2]"))
        assert state == "running"
        page.wait(f"({live}) > {first}", 30)
        # the run's own page updates its count and charts as trials finish
        page.open(server + "/run?id=0%2Flive1")
        before = int(page.page.inner_text("[data-text=n_trials]"))
        page.wait(f"+document.querySelector('[data-text=n_trials]').textContent > {before}", 30)
        assert page.points()["trials"][0] > 0 and page.errors == []
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()


def test_report_opens_offline_from_file_and_draws_its_charts(world, browser) -> None:
    from hwnas.dashboard import write_report

    for run, n_charts in (("search1", 2), ("cd1", 8)):
        path = write_report(world["runs"] / run)
        assert path == world["runs"] / run / "report.html"
        html = path.read_text()
        assert "<script src=" not in html and "Plotly" in html
        p = Page(browser, offline=True)
        requests: list[str] = []
        p.page.on("request", lambda r: requests.append(r.url))
        try:
            p.open(path.as_uri())
            assert p.errors == [], p.errors
            assert p.page.evaluate("window.hwnasCharts") == n_charts
            assert p.page.locator("div.chart .main-svg").count() >= 1
            assert all(len(v) > 0 and sum(v) > 0 for v in p.points().values())
            assert [u for u in requests if not u.startswith(("file:", "data:", "blob:"))] == []
        finally:
            p.close()


def test_cli_report_and_safe_defaults(world, capsys) -> None:
    from hwnas.cli import build_parser, main
    from latency_db import LatencyDB

    assert main(["report", str(world["runs"] / "search1"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["report"].endswith("report.html")
    assert main(["report", str(world["root"])]) == 2  # not a run folder: one line, non-zero
    args = build_parser().parse_args(["dashboard", "--db", str(world["db"])])
    assert args.host == "127.0.0.1"
    with LatencyDB(world["db"], read_only=True) as db:
        with pytest.raises(ValueError):
            db.select("DELETE FROM models")
        with pytest.raises(ValueError):
            db.select("SELECT 1; DROP TABLE models")
