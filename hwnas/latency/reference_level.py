"""Measurements on this machine in the units of its earlier runs: the drift reference's level.

A device's latencies, the predictor trained on them and a budget taken from them all come from
the runs in the database. A model measured later, alone, is timed under other conditions: a
candidate timed alone runs faster than in a batch of 16 (warmer caches; the reference showed
0.20 against 0.34 ms here), and the machine's level drifts between runs. The agent stores each
model's ``ref_ratio`` (its median over the reference panel's level in the same batch), so
``ref_ratio x level`` puts a new measurement in the units of the earlier runs.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any


def reference_level(db_path: str, device: str, memo: Path) -> float | None:
    """The drift reference's level (median ms) over ``device``'s runs in the database when first
    asked: the conditions its latencies, the predictor and the budget come from (None without
    any). Kept in ``memo``, so a resumed search keeps its level (its own runs, in the database
    since, do not move it)."""
    from latency_db import LatencyDB

    from hwnas.fileio import atomic_write_bytes

    if memo.exists():
        return json.loads(memo.read_text())["level_ms"]
    with LatencyDB(db_path, read_only=True) as db:
        runs = [r for r in db.reference_runs(device=device) if r.get("median_ms")]
    # the newest run's protocol only: runs under another (one reference before the panel) are in other units
    levels = [r["median_ms"] for r in runs if r["config_hash"] == runs[-1]["config_hash"]]
    level = float(statistics.median(levels)) if levels else None
    atomic_write_bytes(memo, json.dumps({"level_ms": level}).encode())
    return level


def at_level(row: dict[str, Any], level: float | None) -> tuple[float, float]:
    """An agent result row's median and the upper end of its repeat interval, brought to the
    reference ``level``: ``ref_ratio`` x level, and the upper end of the ratio's repeat interval
    x level. Without a level or a ``ref_ratio``: the raw median and the row's own interval."""
    median = float(row["median_ms"])
    high = float(row.get("ci_high_ms") or median)
    ratio = row.get("ref_ratio")
    if level is None or not ratio:
        return median, high
    bounds = row.get("ref_ratio_interval")
    scaled = float(ratio) * level
    return scaled, (float(bounds[1]) * level if bounds else high * scaled / median)
