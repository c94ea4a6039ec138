"""The latency-database views: Devices, Measurements, Predictors. Each returns the page body (Safe
markup); every value shown goes through :mod:`hwnas.dashboard.markup`'s escaping."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from hwnas.dashboard import charts, queries
from hwnas.dashboard.markup import Safe, chart, esc, facts, fmt, link, section, table
from latency_db import LatencyDB


def _options(name: str, values: Sequence[str], selected: str | None, blank: str = "any") -> Safe:
    opts = [f'<option value="">{esc(blank)}</option>'] + [
        f'<option value="{esc(v)}"{" selected" if v == selected else ""}>{esc(v)}</option>' for v in values]
    return Safe(f'<label>{esc(name)} <select name="{esc(name)}">{"".join(opts)}</select></label>')


def _text_input(name: str, value: Any, size: int = 12) -> Safe:
    return Safe(f'<label>{esc(name)} <input name="{esc(name)}" value="{esc("" if value is None else value)}" size="{size}"></label>')


def devices_view(db: LatencyDB) -> Safe:
    """Every device: fingerprint, configurations, counts, noise, last measured; a chart of
    measurements per device (one bar per device) and of noise (one bar per device with intervals)."""
    devs = queries.devices_overview(db)
    rows = []
    for d in devs:
        fp = d["fingerprint"]
        cores = f"{fmt(fp.get('physical_cores'))}/{fmt(fp.get('logical_cores'))}"
        configs = "; ".join(f"{c['runtime']}/{c['provider']} {c['config_hash'][:8]} ({c['n']})" for c in d["configs"])
        env = "; ".join(f"{k}={v}" for k, v in d["environment"].items())
        rows.append([link("/measurements", {"device": d["device_id"]}, d["name"]), d["device_id"],
                     fp.get("cpu_model"), cores, fp.get("memory_gib"), fp.get("os") or fp.get("system"), env, configs,
                     d["n_models"], f"{d['n_ok']} / {d['n_error']} / {d['n_timeout']}",
                     None if d["noise"] is None else f"{100 * d['noise']:.2f}%", d["last_measured"]])
    names = [d["name"] for d in devs]
    counts = charts.bars_figure("measurements per device", names, {"ok": [d["n_ok"] for d in devs],
                                "error": [d["n_error"] for d in devs], "timeout": [d["n_timeout"] for d in devs]},
                                "measurements", stacked=True)
    counts["layout"]["xaxis"]["title"]["text"] = "device"
    noisy = [d for d in devs if d["noise"] is not None]
    noise = charts.bars_figure("noise: median relative width of the median's interval",
                               [d["name"] for d in noisy], {"noise (%)": [100 * d["noise"] for d in noisy]}, "%")
    noise["layout"]["xaxis"]["title"]["text"] = "device"
    headers = ["name", "id", "CPU", "cores (phys/log)", "memory GiB", "OS", "environment (latest)",
               "runtime/provider config (rows)", "models", "ok / error / timeout", "noise", "last measured"]
    return Safe(section(f"{len(devs)} devices", table(headers, rows, "devices"))
                + Safe('<div class="grid">') + chart("device-counts", counts) + chart("device-noise", noise)
                + Safe("</div>"))


def measurements_view(db: LatencyDB, query: Mapping[str, str]) -> Safe:
    """The filter form, one page of the table, the latency distribution per device (same filters)
    and, with ``a`` and ``b``, the two devices side by side."""
    flt = queries.MeasurementFilter.from_query(query)
    try:
        page_no = max(0, int(query.get("page", "0") or 0))
    except ValueError:
        page_no = 0
    choices = queries.filter_choices(db)
    form = Safe('<form method="get" action="/measurements">'
                + _options("device", choices["device"], flt.device) + _options("runtime", choices["runtime"], flt.runtime)
                + _options("status", choices["status"], flt.status) + _options("space", choices["space"], flt.space)
                + _text_input("arch", flt.arch, 24) + _text_input("min_ms", flt.min_ms, 6)
                + _text_input("max_ms", flt.max_ms, 6) + '<button type="submit">filter</button></form>')
    page = queries.measurement_page(db, flt, page_no)
    rows = [[r["id"], r["created_at"], r["device"], r["runtime"], r["provider"], r["status"], r["space"], r["arch"],
             r["median_ms"], None if r["ci_low_ms"] is None else f"{fmt(r['ci_low_ms'])} – {fmt(r['ci_high_ms'])}",
             r["error"]] for r in page["rows"]]
    nav = []
    base = flt.as_query()
    if page["page"] > 0:
        nav.append(link("/measurements", {**base, "page": page["page"] - 1}, "« previous"))
    nav.append(esc(f" page {page['page'] + 1} of {page['pages']} ({page['total']} rows) "))
    if page["page"] + 1 < page["pages"]:
        nav.append(link("/measurements", {**base, "page": page["page"] + 1}, "next »"))
    pager = Safe('<p class="pager">' + "".join(nav) + "</p>")
    headers = ["id", "created", "device", "runtime", "provider", "status", "space", "arch", "median ms",
               "interval ms", "error"]
    body = section("measurements", form, pager, table(headers, rows, "measurements"), pager)
    body += section("latency distribution", chart("histogram", charts.histogram_figure(queries.latency_histograms(db, flt))))
    a, b = (query.get("a") or "").strip(), (query.get("b") or "").strip()
    pair_form = Safe('<form method="get" action="/measurements">' + _options("a", choices["device"], a or None, "device A")
                     + _options("b", choices["device"], b or None, "device B")
                     + '<button type="submit">compare</button></form>')
    parts: list[Any] = [pair_form]
    if a and b:
        pair = queries.device_pair(db, a, b)
        parts += [facts([("models on both", pair["n"]), ("Spearman", pair["spearman"])]),
                  chart("pair", charts.pair_figure(pair))]
    return Safe(body + section("two devices side by side", *parts))


def predictors_view(db: LatencyDB, predictors: Sequence[Path], query: Mapping[str, str],
                    compute: Callable[[Path, str], dict[str, Any]]) -> Safe:
    """Pick a predictor file (given on the command line) and a device; show predicted vs measured
    with intervals, Spearman, MAPE, share within ±10%, coverage and the extrapolated rows.
    ``compute(path, device)`` is :func:`hwnas.dashboard.analysis.predictor_vs_measured` (cached)."""
    if not predictors:
        return section("predictors", esc("No predictor files: start the dashboard with --predictor FILE "
                                         "(from hwnas predictor train/adapt)."))
    devices = queries.filter_choices(db)["device"]
    try:
        index = int(query.get("p", "0") or 0)
    except ValueError:
        index = 0
    index = min(max(index, 0), len(predictors) - 1)
    device = (query.get("device") or "").strip() or (devices[0] if devices else "")
    opts = "".join(f'<option value="{i}"{" selected" if i == index else ""}>{esc(p.name)}</option>'
                   for i, p in enumerate(predictors))
    form = Safe(f'<form method="get" action="/predictors"><label>predictor <select name="p">{opts}</select></label>'
                + _options("device", devices, device, "device") + '<button type="submit">compare</button></form>')
    if not device:
        return section("predictors", form, esc("The database holds no device."))
    try:
        res = compute(predictors[index], device)
    except Exception as exc:  # a predictor that cannot judge this device: say why, on the page
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return section("predictors", form, Safe(f'<p class="note">{esc(msg)}</p>'))
    m = res["metrics"]
    pct = (lambda v: None if v is None else f"{100 * v:.1f}%")
    summary = facts([("file", str(predictors[index])), ("kind", res["kind"]), ("device", device), ("models", m["n"]),
                     ("Spearman", m.get("spearman")), ("MAPE", pct(m.get("mape"))),
                     ("within ±10%", pct(m.get("within_10pct"))),
                     (f"{m['level']:.0%} interval covers", pct(m.get("coverage"))),
                     ("calibrated", m["calibrated"]), ("extrapolated", m["extrapolated"])])
    fig = charts.interval_figure(res["labels"], res["measured"], res["mean"], res["low"], res["high"],
                                 res["extrapolated"], f"{res['kind']} on {device}")
    flagged = [[lab, meas, mean, f"{fmt(lo)} – {fmt(hi)}", "yes" if tr else "no"]
               for lab, meas, mean, lo, hi, ex, tr in zip(res["labels"], res["measured"], res["mean"], res["low"],
                                                          res["high"], res["extrapolated"], res["trained"]) if ex]
    return Safe(section("predicted vs measured", form, summary, chart("predictor", fig))
                + section(f"{len(flagged)} extrapolated rows",
                          table(["model", "measured ms", "predicted ms", "interval ms", "in training set"],
                                flagged, "extrapolated")))
