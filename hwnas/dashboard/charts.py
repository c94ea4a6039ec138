"""Plotly figures as plain dicts (``{"data": [...], "layout": {...}}``), drawn by plotly.js in the page.

Figures are built as JSON-able dicts rather than ``plotly.graph_objects`` (no validation cost, no
Python plotly needed to serve them); the JavaScript comes from the plotly package
(:func:`plotly_js`). Hover texts carry architecture strings and device names: they are passed
through :func:`label` (``html.escape``), since plotly.js reads a few HTML tags in texts; plotly
shows the escaped entities as the original characters, as text.

Every figure builder returns a figure whose traces hold exactly the points described in its
docstring, so tests can count them.
"""

from __future__ import annotations

import html
from typing import Any, Sequence

Fig = dict[str, Any]


def plotly_js() -> str:
    """The minified plotly.js bundled in the Python ``plotly`` package (never fetched from a network).

    Raises:
        ImportError: plotly is not installed (the message says how to get it).
    """
    try:
        from importlib.resources import files

        return (files("plotly") / "package_data" / "plotly.min.js").read_text(encoding="utf-8")
    except (ImportError, FileNotFoundError, ModuleNotFoundError):
        raise ImportError("the dashboard and report need plotly: pip install 'hwnas[host]'") from None


def label(text: Any) -> str:
    """``text`` escaped for plotly's text rendering (which understands a few HTML tags)."""
    return html.escape(str(text), quote=True)


def _layout(title: str, x: str, y: str, **extra: Any) -> dict[str, Any]:
    return {"title": {"text": label(title)}, "xaxis": {"title": {"text": label(x)}},
            "yaxis": {"title": {"text": label(y)}}, "margin": {"l": 60, "r": 20, "t": 40, "b": 50},
            "height": 360, "hovermode": "closest", **extra}


def scatter(name: str, xs: Sequence[Any], ys: Sequence[Any], texts: Sequence[Any] | None = None,
            mode: str = "markers", **extra: Any) -> dict[str, Any]:
    """A scatter trace (``texts`` escaped for hover)."""
    trace = {"type": "scatter", "mode": mode, "name": label(name), "x": list(xs), "y": list(ys), **extra}
    if texts is not None:
        trace["text"] = [label(t) for t in texts]
        trace["hoverinfo"] = "x+y+text"
    return trace


def budget_line(x: float | None) -> dict[str, Any]:
    """Layout extras: a dashed vertical line at ``x`` (a latency budget), or nothing."""
    if x is None:
        return {}
    return {"shapes": [{"type": "line", "xref": "x", "yref": "paper", "x0": x, "x1": x, "y0": 0, "y1": 1,
                        "line": {"dash": "dash", "color": "#c0392b"}}],
            "annotations": [{"x": x, "y": 1, "xref": "x", "yref": "paper", "text": f"budget {x:g}",
                             "showarrow": False, "yanchor": "bottom"}]}


def histogram_figure(hist: dict[str, Any]) -> Fig:
    """One bar trace per device of :func:`~hwnas.dashboard.queries.latency_histograms` (one bar per bin)."""
    edges = hist["edges"]
    centres = [(a + b) / 2 for a, b in zip(edges, edges[1:])]
    width = edges[1] - edges[0] if len(edges) > 1 else 1
    data = [{"type": "bar", "name": label(name), "x": centres, "y": counts, "width": width, "opacity": 0.6}
            for name, counts in sorted(hist["devices"].items())]
    return {"data": data, "layout": _layout("median latency per device", "median latency (ms)", "measurements",
                                            barmode="overlay")}


def pair_figure(pair: dict[str, Any]) -> Fig:
    """Device A vs device B: one marker per model measured on both, and the y = x line."""
    pts = pair["points"]
    xs, ys = [p[1] for p in pts], [p[2] for p in pts]
    rho = pair["spearman"]
    title = f"{pair['a']} vs {pair['b']}: {len(pts)} models" + ("" if rho is None else f", Spearman {rho:.3f}")
    data = [scatter("models", xs, ys, [p[0] for p in pts])]
    layout = _layout(title, f"{pair['a']} (ms)", f"{pair['b']} (ms)")
    layout["xaxis"]["type"] = layout["yaxis"]["type"] = "log"
    return {"data": data, "layout": layout}


def trials_figure(trials: Sequence[Any]) -> Fig:
    """Score of each complete trial by trial number, and the best so far (a step line, one point per
    complete trial)."""
    done = [t for t in trials if t.state.value == "complete" and t.score is not None]
    best: list[float] = []
    for t in done:
        best.append(max(float(t.score), best[-1]) if best else float(t.score))
    data = [scatter("score", [t.number for t in done], [t.score for t in done], [t.arch for t in done]),
            scatter("best so far", [t.number for t in done], best, mode="lines", line={"shape": "hv"})]
    return {"data": data, "layout": _layout("trials", "trial", "score")}


def tradeoff_figure(trials: Sequence[Any], x: str, y: str, front: Sequence[dict[str, Any]],
                    budget: float | None = None, title: str | None = None) -> Fig:
    """``y`` vs ``x`` of the complete trials (one marker each), rejected ones that have ``x`` (at their
    ``y``, or at the lowest complete ``y`` when they were rejected before evaluation),
    the Pareto front (``front``: dicts with ``x``, ``y``, ``arch``) and a budget line on ``x``."""
    def has(t: Any) -> bool:
        return isinstance(t.metrics.get(x), (int, float)) and isinstance(t.metrics.get(y), (int, float))

    done = [t for t in trials if t.state.value == "complete" and has(t)]
    rejected = [t for t in trials if t.state.value == "rejected" and isinstance(t.metrics.get(x), (int, float))]
    floor = min((t.metrics[y] for t in done), default=0)  # rejected before evaluation: drawn at the bottom
    data = [scatter("complete", [t.metrics[x] for t in done], [t.metrics[y] for t in done], [t.arch for t in done]),
            scatter("rejected", [t.metrics[x] for t in rejected],
                    [t.metrics[y] if isinstance(t.metrics.get(y), (int, float)) else floor for t in rejected],
                    [f"rejected: {t.arch}" for t in rejected], marker={"symbol": "x", "color": "#999"}),
            scatter("Pareto front", [p[x] for p in front], [p[y] for p in front], [p["arch"] for p in front],
                    mode="lines+markers", line={"shape": "hv"})]
    return {"data": data, "layout": _layout(title or f"{y} vs {x}", x, y, **budget_line(budget))}


def interval_figure(labels: Sequence[str], measured: Sequence[float], mean: Sequence[float],
                    low: Sequence[float] | None, high: Sequence[float] | None,
                    flagged: Sequence[bool] | None = None, title: str = "predicted vs measured") -> Fig:
    """Predicted (with its interval as error bars, where given) against measured, one marker per
    model; extrapolated models (``flagged``) in their own trace; the y = x line."""
    flagged = list(flagged) if flagged is not None else [False] * len(measured)
    traces = []
    for name, keep in (("predicted", [not f for f in flagged]), ("extrapolated", flagged)):
        idx = [i for i, k in enumerate(keep) if k]
        trace = scatter(name, [measured[i] for i in idx], [mean[i] for i in idx], [labels[i] for i in idx])
        if low is not None and high is not None:
            trace["error_y"] = {"type": "data", "symmetric": False,
                                "array": [max(0.0, high[i] - mean[i]) for i in idx],
                                "arrayminus": [max(0.0, mean[i] - low[i]) for i in idx]}
        traces.append(trace)
    values = [v for v in (*measured, *mean) if v is not None and v > 0]
    if values:
        lo, hi = min(values), max(values)
        traces.append(scatter("y = x", [lo, hi], [lo, hi], mode="lines", line={"dash": "dot", "color": "#888"}))
    return {"data": traces, "layout": _layout(title, "measured (ms)", "predicted (ms)")}


def bars_figure(title: str, names: Sequence[str], series: dict[str, Sequence[float]], y: str,
                stacked: bool = False, log: bool = False) -> Fig:
    """One bar trace per entry of ``series``, a bar per name (layers)."""
    data = [{"type": "bar", "name": label(k), "x": [label(n) for n in names], "y": list(v)} for k, v in series.items()]
    layout = _layout(title, "layer", y, barmode="stack" if stacked else "group")
    if log:
        layout["yaxis"]["type"] = "log"
    return {"data": data, "layout": layout}


def roofline_figure(names: Sequence[str], intensity: Sequence[float], perf: Sequence[float],
                    peak: float, bandwidth: float) -> Fig:
    """Layers at (MACs per DRAM byte, MACs per cycle), under the roofs ``peak`` (MACs/cycle) and
    ``bandwidth`` (bytes/cycle): one marker per layer with DRAM traffic, and the roof line."""
    pts = [(n, i, p) for n, i, p in zip(names, intensity, perf) if i > 0 and p > 0]
    data = [scatter("layers", [p[1] for p in pts], [p[2] for p in pts], [p[0] for p in pts])]
    if pts:
        lo = min(min(p[1] for p in pts), peak / bandwidth) / 4
        hi = max(max(p[1] for p in pts), peak / bandwidth) * 4
        ridge = peak / bandwidth
        data.append(scatter("roof", [lo, ridge, hi], [lo * bandwidth, peak, peak], mode="lines",
                            line={"color": "#c0392b"}))
    layout = _layout("roofline", "operational intensity (MAC / DRAM byte)", "MAC / cycle")
    layout["xaxis"]["type"] = layout["yaxis"]["type"] = "log"
    return {"data": data, "layout": layout}
