"""What ``hwnas search`` leaves behind: progress while it runs, then ``best.onnx``, the Pareto plot
and the re-measurement of the top candidates (``--verify-top``)."""

from __future__ import annotations

import io
import math
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from hwnas.space.base import SearchSpace
from hwnas.study import Trial, TrialState


def progress(total: int, done: int = 0, stream: Any = None) -> Callable[[Trial], None] | None:
    """A per-trial progress bar with the best so far, rewritten in place; None when ``stream`` is
    not a terminal (logs and pipes stay clean). ``done``: trials already finished (a resumed study)."""
    stream = stream or sys.stderr
    if not stream.isatty():
        return None
    state = {"n": done, "best": None, "lat": None}

    def show(trial: Trial) -> None:
        state["n"] += 1
        n = state["n"]
        if trial.state == TrialState.COMPLETE and trial.score is not None and (state["best"] is None or trial.score > state["best"]):
            state["best"], state["lat"] = trial.score, trial.metrics.get("latency_ms")
        best = "none feasible yet" if state["best"] is None else f"best score {state['best']:.4g}"
        if state["lat"] is not None:
            best += f" @ {state['lat']:.3g} ms"
        width = 24
        filled = min(width, width * n // max(total, 1))
        line = f"search [{'#' * filled}{'.' * (width - filled)}] {n}/{total} {best} | last: {trial.state.value}"
        stream.write("\r\033[K" + line + ("\n" if n >= total else ""))
        stream.flush()

    return show


def trial_summary(trials: Sequence[Trial]) -> dict[str, Any]:
    """The result-file fields every study shares: counts of evaluated (duplicates not counted),
    rejected and failed trials, and every trial with its metrics."""
    return {
        "evaluations": sum(t.state == TrialState.COMPLETE and not t.metrics.get("duplicate") for t in trials),
        "rejected": sum(t.state == TrialState.REJECTED and not t.metrics.get("duplicate") for t in trials),
        "failed": sum(t.state == TrialState.FAILED for t in trials),
        "trials": [{"number": t.number, "arch": t.arch, "state": t.state.value, "score": t.score, "error": t.error,
                    **t.metrics} for t in trials],  # fmt: skip
    }


def ranked(trials: Sequence[Trial]) -> list[Trial]:
    """Complete trials, best score first, one per architecture."""
    seen: set[str] = set()
    out = []
    for t in sorted((t for t in trials if t.state == TrialState.COMPLETE and t.score is not None),
                    key=lambda t: -float(t.score)):  # type: ignore[arg-type]  # fmt: skip
        if t.arch not in seen:
            seen.add(t.arch)
            out.append(t)
    return out


def front_of(trials: Sequence[Trial], x: str = "latency_ms", y: str = "accuracy") -> list[dict[str, Any]]:
    """The complete trials on the Pareto front of (min ``x``, max ``y``), by increasing ``x``."""
    from hwnas.strategy.pareto import pareto_front

    done = {t.arch: t for t in trials if t.state == TrialState.COMPLETE
            and isinstance(t.metrics.get(x), (int, float)) and isinstance(t.metrics.get(y), (int, float))}  # fmt: skip
    pts = list(done.values())
    if not pts:
        return []
    idx = pareto_front(np.array([(t.metrics[x], t.metrics[y]) for t in pts], dtype=float), maximize=[False, True])
    return sorted(({"arch": pts[i].arch, x: pts[i].metrics[x], y: pts[i].metrics[y]} for i in idx), key=lambda r: r[x])


def export_best(space: SearchSpace, arch_spec: str, out: Path, *, form: str = "pruned") -> Path:
    """Write the best architecture to ``out/best.onnx`` (atomically) and return the path.

    The deployable ``pruned`` form by default (no ``none`` edges, no dead operations; the same
    outputs as the reference form): this file is what gets shipped, not a benchmark replica.
    """
    from hwnas.export import arch_to_onnx
    from hwnas.fileio import atomic_write_bytes

    path = out / "best.onnx"
    atomic_write_bytes(path, arch_to_onnx(space, space.parse(arch_spec), form=form))
    return path


def verify_order(trials: Sequence[Trial], answer: str | None = None) -> list[Trial]:
    """:func:`ranked` with the trial of arch ``answer`` (when given and present) moved first."""
    order = ranked(trials)
    return [t for t in order if t.arch == answer] + [t for t in order if t.arch != answer]


def verify_top(space: SearchSpace, trials: Sequence[Trial], k: int, db: str, out: Path,
               on_progress: Callable[[int, int, str], None] | None = None, answer: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Export the ``k`` best candidates and measure them on this machine (``device_agent``, into
    ``db``); predicted (the latency the search used) against measured, per model and overall.
    With ``answer`` (an arch among ``trials``: the search's answer when it is not simply the best
    ranked, as after a closed loop's confirmation) that one comes first, marked ``answer``.

    ``measured_ms`` is in the units of the machine's earlier runs in ``db`` (what a predictor
    and a budget from them are in, and what a closed loop measured in): the model's ratio to the
    reference panel times the panel's level over those runs
    (:mod:`hwnas.latency.reference_level`; kept in ``out/reference_level.json``, where a closed
    loop has already put it at the search's start; else over the runs up to the first of these
    measurements); ``measured_raw_ms`` is the median as timed. Without earlier runs
    with a reference, both are the median as timed."""
    from hwnas.latency.reference_level import at_level, reference_level
    from hwnas.local_meter import LocalMeter, MeasureError

    rows = []
    top = verify_order(trials, answer)[:k]
    meter = LocalMeter(db, out / "verify", space, force=True)  # a fresh measurement, not the stored one
    memo = out / "reference_level.json"
    level: float | None = None
    for i, t in enumerate(top, start=1):
        if on_progress:
            on_progress(i, len(top), f"measuring {t.arch}")
        # the point prediction where the source has one (a learned source judges the budget on a quantile)
        predicted = t.metrics.get("latency_mean_ms", t.metrics.get("latency_ms"))
        row: dict[str, Any] = {"arch": t.arch, "score": t.score, "accuracy": t.metrics.get("accuracy"),
                               "predicted_ms": predicted, "judged_ms": t.metrics.get("latency_ms"),
                               "predicted_source": t.metrics.get("latency_source"), "answer": t.arch == answer}  # fmt: skip
        for key in ("latency_mean_ms", "latency_low_ms", "latency_high_ms", "extrapolated"):
            if key in t.metrics:
                row[key] = t.metrics[key]
        try:
            m = meter.measure(space.parse(t.arch))
            if level is None and meter.device_id is not None:  # the device is known once the agent ran
                level = reference_level(str(db), meter.device_id, memo)
            ms, high = at_level(m, level)
            row.update(measured_ms=ms, measured_raw_ms=m["median_ms"], repeat_high_ms=high,
                       measured_p90_ms=m.get("p90_ms"), onnx=m["file"])  # fmt: skip
            if row["predicted_ms"]:
                row["ratio"] = row["measured_ms"] / row["predicted_ms"]
        except MeasureError as exc:
            row["error"] = str(exc)
        rows.append(row)
    ok = [r for r in rows if r.get("ratio")]
    summary: dict[str, Any] = {"k": len(rows), "device": meter.device_id, "db": str(db), "models": rows,
                               "level_ms": level}
    if ok:
        ratios = np.array([r["ratio"] for r in ok])
        summary["median_ratio"] = float(np.median(ratios))
        summary["mape_pct"] = float(np.mean(np.abs(ratios - 1.0)) * 100)
        if len(ok) >= 3:
            from scipy.stats import spearmanr

            rho = spearmanr([r["predicted_ms"] for r in ok], [r["measured_ms"] for r in ok]).statistic
            summary["spearman"] = None if math.isnan(rho) else float(rho)
    return summary


def closed_loop_text(c: dict[str, Any]) -> str:
    """What the closed loop of ``--measure-uncertain`` did: measurements, adaptations, coverage,
    and the answer's confirmation."""
    n = c["measured_uncertain"]
    line = (f"closed loop: measured {n} uncertain candidate{'s' * (n != 1)} and {c['measured'] - n} to confirm the answer "
            f"on this machine (at most {c['max_measurements']} in all), adapted the predictor {c['adaptations']} "
            f"time{'s' * (c['adaptations'] != 1)}")
    if c["measured"]:
        line += f"; {c['inside_interval']} of {c['measured']} measured inside their 90% interval"
    checked = c.get("checked") or []
    ok = [i for i, k in enumerate(checked) if k.get("marginal")] or \
        [i for i, k in enumerate(checked) if k.get("repeat_meets_budget", k["meets_budget"])]
    if ok:
        i = ok[0]
        first = checked[i]
        how = ("its median meets the budget, but a repeat run's median may reach "
               if first.get("marginal") else "a repeat run's median within ")
        line += (f"\n  answer confirmed by measurement: {first['measured_ms']:.3f} ms ({how}{first['repeat_high_ms']:.3f} ms, 95%)"
                 + (f" (after {i} better-ranked candidate(s) measured over budget or too close to it)" if i else ""))
    if c.get("unmeasured_above"):
        line += (f"\n  {c['unmeasured_above']} better-ranked candidate(s) predicted within the budget were left unmeasured "
                 "(the loop's measurements ran out; --measure-max raises the cap, --verify-top measures them after the answer)")
    return line


def verify_text(v: dict[str, Any]) -> str:
    """Human-readable table of :func:`verify_top`'s result."""
    at = v.get("level_ms") is not None
    lines = [f"re-measured the top {v['k']} on this machine (device {str(v['device'])[:12]})"
             + (f", in the units of its earlier runs (ratio to the reference panel x their level {v['level_ms']:.3f} ms;"
                " 'as timed' is the raw median of this run):" if at else ":"),
             f"  {'predicted ms':>12} {'90% interval':>17} {'measured ms':>12} {'as timed':>9} {'ratio':>6}  arch"]  # fmt: skip
    inside = []
    for r in v["models"]:
        if "error" in r:
            lines.append(f"  {'':>12} {'':>17} {'failed':>12} {'':>9} {'':>6}  {r['arch']}: {r['error']}")
            continue
        pred = f"{r['predicted_ms']:.3f}" if r.get("predicted_ms") else "-"
        ratio = f"{r['ratio']:.2f}" if r.get("ratio") else "-"
        interval = "-"
        if r.get("latency_low_ms") is not None and r.get("latency_high_ms") is not None:
            interval = f"{r['latency_low_ms']:.3f}-{r['latency_high_ms']:.3f}" + ("*" if r.get("extrapolated") else "")
            inside.append(r["latency_low_ms"] <= r["measured_ms"] <= r["latency_high_ms"])
        raw = r.get("measured_raw_ms", r["measured_ms"])
        lines.append(f"  {pred:>12} {interval:>17} {r['measured_ms']:>12.3f} {raw:>9.3f} {ratio:>6}  {r['arch']}"
                     + ("  <- the answer" if r.get("answer") else ""))
    if inside:
        lines.append(f"  {sum(inside)} of {len(inside)} measured inside the 90% interval"
                     + ("; * = outside the predictor's training support (extrapolated)" if any(r.get("extrapolated") for r in v["models"]) else ""))
    if "median_ratio" in v:
        tail = f"  measured/predicted: median {v['median_ratio']:.2f}, mean |error| {v['mape_pct']:.1f}%"
        if v.get("spearman") is not None:
            tail += f", Spearman {v['spearman']:.2f}"
        lines.append(tail)
    return "\n".join(lines)


def pareto_plot(trials: Sequence[Trial], path: Path, *, budget_ms: float | None, title: str,
                x: str = "latency_ms", y: str = "accuracy") -> Path | None:  # fmt: skip
    """Scatter of every evaluated candidate (``x`` against ``y``), the Pareto front drawn through
    the non-dominated ones, the budget and the best; written atomically as PNG. None when fewer
    than one trial has both metrics."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from hwnas.fileio import atomic_write_bytes
    from hwnas.strategy.pareto import pareto_front

    pts = [(float(t.metrics[x]), float(t.metrics[y]), t.state == TrialState.COMPLETE) for t in trials
           if isinstance(t.metrics.get(x), (int, float)) and isinstance(t.metrics.get(y), (int, float))]  # fmt: skip
    if not pts:
        return None
    arr = np.array([(a, b) for a, b, _ in pts])
    ok = np.array([c for _, _, c in pts])
    feasible = ok if budget_ms is None else ok & (arr[:, 0] <= budget_ms)
    fig = Figure(figsize=(6.4, 4.4), dpi=120)
    ax = fig.subplots()
    ax.scatter(arr[~feasible, 0], arr[~feasible, 1], s=12, c="0.7", marker="x", label="over budget / rejected")
    ax.scatter(arr[feasible, 0], arr[feasible, 1], s=14, c="tab:blue", alpha=0.7, label="evaluated")
    front = arr[pareto_front(arr, maximize=[False, True])]
    front = front[np.argsort(front[:, 0])]
    ax.step(front[:, 0], front[:, 1], where="post", c="tab:red", lw=1.5, label="Pareto front")
    if budget_ms is not None:
        ax.axvline(budget_ms, c="k", ls="--", lw=1, label=f"budget {budget_ms:g} ms")
    if feasible.any():
        b = arr[feasible][np.argmax(arr[feasible, 1])]
        ax.scatter([b[0]], [b[1]], s=120, marker="*", c="gold", edgecolors="k", zorder=5, label="best")
    ax.set_xlabel(x.replace("_ms", " (ms)").replace("_", " "))
    ax.set_ylabel(y.replace("_", " "))
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(path, buf.getvalue())
    return path
