"""What ``device_agent run`` prints: the results table, the drift references' lines, and their
``--json`` rows. Pure formatting of records; nothing here measures or stores."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import IO, Any


def fmt_ms(value: float | None) -> str:
    """A latency in ms with 3-4 significant digits (``-`` for None)."""
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:.1f}"
    return f"{value:.3f}" if value >= 1 else f"{value:.4f}"


def print_table(rows: list[dict[str, Any]], references: list[Any], out: IO[str]) -> None:
    """The measured rows (result dicts of ``device_agent run --json``), fastest first, what their
    intervals mean, one line per batch of its drift references (their medians, the panel level and
    the largest drift within the batch), and the errors."""
    from device_agent.stats import INTERVAL_MEANING

    measured = [r for r in rows if r["status"] != "skipped"]
    measured.sort(key=lambda r: (r["median_ms"] is None, r["median_ms"] or 0.0, r["key"]))
    header = ["key", "arch", "status", "p50_ms", "interval", "p90_ms", "samples", "stop", "/ref"]
    table = []
    for r in measured:
        arch = r["arch"] or "-"
        ci = "-"
        if r.get("ci_low_ms") is not None and r.get("ci_high_ms") is not None and r["median_ms"]:
            ci = f"±{(r['ci_high_ms'] - r['ci_low_ms']) / 2 / r['median_ms']:.1%}"
        table.append([r["key"], arch if len(arch) <= 40 else arch[:37] + "...", r["status"],
                      fmt_ms(r["median_ms"]), ci, fmt_ms(r["p90_ms"]), str(r.get("repeats") or "-"),
                      r.get("stop") or "-", "-" if r.get("ref_ratio") is None else f"{r['ref_ratio']:.3f}"])
    if table:
        widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(header)]
        right = {3, 4, 5, 6, 8}
        for row in [header, *table]:
            cells = [c.rjust(w) if i in right else c.ljust(w)
                     for i, (c, w) in enumerate(zip(row, widths))]
            print("  ".join(cells).rstrip(), file=out)
        for kind in sorted({r["interval"] for r in measured if r.get("interval")}):
            print(f"interval {kind}: {INTERVAL_MEANING.get(kind, kind)}", file=out)
        if any(r.get("ref_ratio") is not None for r in measured):
            print("/ref: median over the batch's panel level (geometric mean of the drift references' medians)",
                  file=out)
    for line in reference_lines(references):
        print(line, file=out)
    for r in measured:
        if r["error"]:
            print(f"{r['key']}: {r['status']}: {r['error']}", file=out)


def reference_lines(references: list[Any]) -> list[str]:
    """One line per batch: ``reference (batch B): <name> <median> ms, ...; panel level L ms over R
    rounds, drift within the batch D (second half / first)``, failures named."""
    by_batch: dict[Any, list[Any]] = defaultdict(list)
    for ref in references:
        by_batch[ref.environment.get("batch")].append(ref)
    lines = []
    for batch, refs in by_batch.items():
        parts, drifts, logs = [], [], []
        for ref in refs:
            name = (ref.arch or "reference").rsplit("/", 1)[-1]
            if ref.status.value != "ok":
                parts.append(f"{name} {ref.status.value}: {ref.error}")
                continue
            parts.append(f"{name} {fmt_ms(ref.median_ms)} ms")
            logs.append(ref.median_ms)
            if ref.environment.get("drift_within") is not None:
                drifts.append(ref.environment["drift_within"])
        text = f"reference (batch {batch}): " + ", ".join(parts)
        if logs and len(logs) == len(refs):
            level = math.exp(sum(math.log(v) for v in logs) / len(logs))
            drift = max(drifts, key=abs) if drifts else None
            text += (f"; panel level {fmt_ms(level)} ms over {len(refs[0].samples_ms)} rounds, drift within the batch "
                     f"{'-' if drift is None else f'{drift:+.1%}'} (second half / first)")
        lines.append(text)
    return lines


def reference_row(record: Any) -> dict[str, Any]:
    """A drift reference's row in ``device_agent run --json``."""
    env = record.environment
    return {"uid": record.uid, "arch": record.arch, "batch": env.get("batch"), "status": record.status.value,
            "median_ms": record.median_ms, "rounds": len(record.samples_ms),
            "drift_within": env.get("drift_within"), "run_id": env.get("run_id"), "error": record.error}
