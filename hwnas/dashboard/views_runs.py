"""The run views: Searches and Codesign (lists and one run), Live, and the JSON a live page polls.

A run page is built from :func:`run_payload` (its figures and counts), so the page and its live
updates (``/api/run``) can never disagree; the static parts (the answer, its re-measurement, the
chosen accelerator) are drawn once the run has finished.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence
from urllib.parse import urlencode

from hwnas.dashboard import charts
from hwnas.dashboard.markup import Safe, chart, esc, facts, fmt, link, section, table
from hwnas.dashboard.runs import RunData
from hwnas.study import TrialState

#: Codesign fronts drawn: (x metric, y metric), accuracy against each hardware cost.
CODESIGN_FRONTS = (("latency_ms", "accuracy"), ("energy_uj", "accuracy"), ("area_mm2", "accuracy"))


def run_href(run: RunData) -> str:
    """The page of one run."""
    return "/run?" + urlencode({"id": run.ref.run_id})


def _budget(run: RunData) -> float | None:
    value = run.result.get("latency_budget_ms", run.settings.get("budget_ms"))
    if value is None:
        value = (run.settings.get("budgets") or {}).get("latency_ms") if isinstance(run.settings.get("budgets"), dict) else None
    return float(value) if isinstance(value, (int, float)) else None


def _best(run: RunData) -> Any:
    done = [t for t in run.trials if t.state == TrialState.COMPLETE and t.score is not None]
    return max(done, key=lambda t: float(t.score)) if done else None


def run_payload(run: RunData) -> dict[str, Any]:
    """The live parts of a run page: ``{"figs": {id: figure}, "text": {key: value}}``."""
    from hwnas.search_report import front_of

    counts = run.counts()
    best = _best(run)
    text = {"state": run.state, "n_trials": counts["total"], "n_complete": counts["complete"],
            "n_rejected": counts["rejected"], "n_failed": counts["failed"], "n_pending": counts["pending"],
            "best_score": fmt(best.score) if best else "-", "best_arch": best.arch if best else "-"}
    figs = {"trials": charts.trials_figure(run.trials)}
    if run.kind == "codesign":
        for x, y in CODESIGN_FRONTS:
            figs[f"front-{x}"] = charts.tradeoff_figure(run.trials, x, y, front_of(run.trials, x, y),
                                                        run.settings.get("budgets", {}).get(x) if isinstance(
                                                            run.settings.get("budgets"), dict) else None)
    else:
        figs["tradeoff"] = charts.tradeoff_figure(run.trials, "latency_ms", "accuracy",
                                                  front_of(run.trials, "latency_ms", "accuracy"), _budget(run),
                                                  "accuracy vs latency")
    return {"figs": figs, "text": text}


def _counts_block(text: dict[str, Any]) -> Safe:
    keys = (("state", "state"), ("trials", "n_trials"), ("complete", "n_complete"), ("rejected", "n_rejected"),
            ("failed", "n_failed"), ("pending", "n_pending"), ("best score", "best_score"), ("best arch", "best_arch"))
    return facts([(name, Safe(f'<span data-text="{key}">{esc(fmt(text[key]))}</span>')) for name, key in keys])


def run_list_view(runs: Sequence[RunData], kind: str) -> Safe:
    """A table of the runs of ``kind`` (search or codesign)."""
    rows = []
    for r in runs:
        if r.kind != kind:
            continue
        c, best = r.counts(), _best(r)
        rows.append([link("/run", {"id": r.ref.run_id}, r.ref.run_id), str(r.ref.path), r.state,
                     r.ident.get("strategy"), r.ident.get("space"), r.settings.get("evaluator"),
                     c["total"], c["complete"], c["rejected"], c["failed"], best.score if best else None,
                     best.arch if best else None])
    headers = ["run", "folder", "state", "strategy", "space", "evaluator", "trials", "complete", "rejected", "failed",
               "best score", "best arch"]
    title = "searches" if kind == "search" else "codesign runs"
    note = "" if rows else esc(f"No {title} found in the --runs folders.")
    return section(f"{len(rows)} {title}", table(headers, rows, f"{kind}-runs"), note)


def _verify_section(result: dict[str, Any]) -> Safe:
    v = result.get("verify")
    if not isinstance(v, dict) or not v.get("models"):
        return Safe("")
    models = v["models"]
    labels = [m.get("arch", "") for m in models]
    measured = [m.get("measured_ms") for m in models]
    mean = [m.get("latency_mean_ms", m.get("predicted_ms")) for m in models]
    low = [m.get("latency_low_ms", mean[i]) for i, m in enumerate(models)]
    high = [m.get("latency_high_ms", mean[i]) for i, m in enumerate(models)]
    fig = charts.interval_figure(labels, measured, mean, low, high, [bool(m.get("extrapolated")) for m in models],
                                 "answer re-measured: predicted vs measured")
    rows = [[m.get("arch"), m.get("accuracy"), m.get("predicted_ms"), m.get("judged_ms"), m.get("measured_ms"),
             m.get("ratio")] for m in models]
    return section("re-measurement of the top candidates (result.json verify)",
                   facts([("device", v.get("device")), ("models", v.get("k")), ("median ratio", v.get("median_ratio")),
                          ("MAPE %", v.get("mape_pct"))]),
                   table(["arch", "accuracy", "predicted ms", "judged ms", "measured ms", "measured / predicted"],
                         rows, "verify"), chart("verify", fig))


def _closed_loop_section(result: dict[str, Any]) -> Safe:
    c = result.get("closed_loop")
    if not isinstance(c, dict):
        return Safe("")
    scalars = [(k, v) for k, v in sorted(c.items()) if not isinstance(v, (dict, list))]
    parts: list[Any] = [facts(scalars)]
    for k, v in sorted(c.items()):
        if isinstance(v, list) and v and all(isinstance(e, dict) for e in v):
            cols = sorted({key for e in v for key in e})
            parts.append(table(cols, [[e.get(col) for col in cols] for e in v]))
        elif isinstance(v, dict):
            parts.append(facts([(f"{k}.{kk}", vv if not isinstance(vv, (dict, list)) else str(vv))
                                for kk, vv in sorted(v.items())]))
    return section("closed loop: candidates measured during the search", *parts)


def _answer_section(run: RunData) -> Safe:
    best = run.result.get("best")
    if not isinstance(best, dict):
        return Safe("")
    pairs = [(k, v if not isinstance(v, (dict, list)) else str(v)) for k, v in sorted(best.items())]
    return section("the answer (result.json best)", facts(pairs))


def _codesign_sections(run: RunData, layers: Callable[[RunData], dict[str, Any]]) -> Safe:
    best = run.result.get("best")
    if not isinstance(best, dict) or not isinstance(best.get("hw"), dict):
        return Safe("")
    spec = section("the chosen accelerator", facts(sorted(best["hw"].items())))
    try:
        d = layers(run)
    except Exception as exc:  # a network that cannot be rebuilt here: the rest of the page still shows
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return Safe(spec + section("per-layer cost", Safe(f'<p class="note">{esc(msg)}</p>')))
    names = d["names"]
    t = d["totals"]
    totals = facts([("layers", t.get("layers")), ("latency ms", t.get("latency_ms")), ("energy uJ", t.get("energy_uj")),
                    ("utilisation", t.get("utilization")), ("area mm2", t.get("area_mm2")),
                    ("DRAM bytes", t.get("dram_bytes"))])
    cyc = {k: v for k, v in d["cycles"].items() if k != "total"}
    return Safe(spec + section(
        "per-layer cost of the chosen pair", totals, Safe('<div class="grid">'),
        chart("layer-cycles", charts.bars_figure("cycles per layer (the largest bounds the layer)", names, cyc,
                                                 "cycles", log=True)),
        chart("layer-energy", charts.bars_figure("energy per layer by memory level", names, d["energy"], "uJ",
                                                 stacked=True)),
        chart("layer-util", charts.bars_figure("PE utilisation per layer", names, {"utilisation": d["utilization"]},
                                               "MACs / (cycles x PEs)")),
        chart("roofline", charts.roofline_figure(names, d["intensity"], d["perf"], d["peak"], d["bandwidth"])),
        Safe("</div>")))


def run_view(run: RunData, layers: Callable[[RunData], dict[str, Any]], files: Sequence[str] = ()) -> Safe:
    """One run: counts, trials and best so far, the trade-off chart(s) with budget and Pareto front;
    when finished, the answer and its re-measurement (search) or the chosen accelerator and its
    per-layer cost (codesign). ``files``: run-folder files to link (``/file``)."""
    p = run_payload(run)
    figs = p["figs"]
    head = facts([("folder", str(run.ref.path)), ("kind", run.kind), ("strategy", run.ident.get("strategy")),
                  ("space", run.ident.get("space")),
                  ("settings", ", ".join(f"{k}={v}" for k, v in sorted(run.settings.items())))])
    charts_html = Safe('<div class="grid">' + "".join(chart(k, f) for k, f in figs.items()) + "</div>")
    body = Safe(section("run", head, _counts_block(p["text"])) + section("progress", charts_html))
    if run.kind == "codesign":
        body += _codesign_sections(run, layers)
    else:
        body += _answer_section(run) + _verify_section(run.result) + _closed_loop_section(run.result)
    if files:
        body += section("files", Safe(" ".join(link("/file", {"id": run.ref.run_id, "name": f}, f) for f in files)))
    return Safe(body)


def live_rows(runs: Sequence[RunData]) -> list[list[Any]]:
    """Rows of the Live table: runs not finished first, newest write first."""
    order = sorted(runs, key=lambda r: (r.state == "finished", -r.updated))
    out = []
    for r in order:
        c = r.counts()
        best = _best(r)
        out.append([{"href": run_href(r), "text": r.ref.run_id}, r.kind, r.state, c["total"], c["complete"],
                    c["rejected"], c["failed"], fmt(best.score) if best else None])
    return out


LIVE_HEADERS = ["run", "kind", "state", "trials", "complete", "rejected", "failed", "best score"]


def live_view(runs: Sequence[RunData]) -> Safe:
    """Every run, the running ones first, refreshed by polling ``/api/live``."""
    rows = [[link(c["href"].split("?")[0], {"id": c["text"]}, c["text"]) if isinstance(c, dict) else c
             for c in row] for row in live_rows(runs)]
    running = sum(r.state == "running" for r in runs)
    return section("runs (refreshed every few seconds)",
                   facts([("running", Safe(f'<span data-text="n_running">{running}</span>'))]),
                   table(LIVE_HEADERS, rows, "live"))
