#!/usr/bin/env python
"""Do two runs of the agent agree, and do its intervals cover the difference?

For each size in ``--sizes`` (default 12 and 50 NB201 cells), and for each protocol (the default
``interleaved`` and, for comparison, ``sequential``), runs the real ``device_agent run`` twice back
to back, each into a fresh database, and prints:

* ``within 3%``: models whose medians in the two runs differ by at most 3%;
* ``spearman``: rank correlation of the two runs' medians;
* ``coverage``: share of the second run's medians inside the first run's stored interval, and of
  the first run's inside the second's (both directions, pooled);
* ``s/model``: wall time of one run (the agent process, start-up included) per model;
* for ``interleaved``, the Spearman correlation two runs would reach if they differed only by the
  sampling of their rounds (:func:`sampling_spearman`): the most ranking can repeat at this length;
* for ``interleaved``, four views of the same two runs (:func:`interleaved_views`): the raw
  medians; the drift-corrected ones the agent stores (each visit divided by the batch's level at
  that moment, from the neighbouring visits of the other models: ``device_agent.drift``); the
  ratio to the small reference alone (the agent's only reference before the panel); and the stored
  ``ref_ratio``, over the batch's panel level (geometric mean of three references' medians) -- and
  the runs' panel levels.

Goals (issue 12): >= 10 of 12 and >= 85% of 50 within 3%, Spearman >= 0.98, coverage >= 90%, wall
time per model no more than 2x the sequential protocol's.

    python bench/repeatability.py [--sizes 12,50] [--threads 1] [--seed 0] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr


def agent_run(models: Path, db: Path, protocol: str, threads: int, extra: list[str]) -> tuple[dict[str, Any], float]:
    """One real ``device_agent run`` into a fresh ``db``; ``(its --json report, wall seconds)``."""
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "device_agent", "run", "--models", str(models), "--db", str(db),
           "--threads", str(threads), "--protocol", protocol, "--json", *extra]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"device_agent run failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    return json.loads(proc.stdout), wall


def compare(a: dict[str, dict[str, Any]], b: dict[str, dict[str, Any]], value: str, low: str, high: str) -> dict[str, float]:
    """Agreement of two runs' ``value`` per model, and coverage of each run's [low, high] by the other."""
    keys = sorted(set(a) & set(b))
    x = np.array([a[k][value] for k in keys])
    y = np.array([b[k][value] for k in keys])
    rel = np.abs(y / x - 1.0)
    covered = [lo <= other[k][value] <= hi
               for this, other in ((a, b), (b, a)) for k in keys
               for lo, hi in [(this[k][low], this[k][high])]]  # fmt: skip
    return {"n": len(keys), "within3": int(np.sum(rel <= 0.03)), "worst": float(rel.max()),
            "median_diff": float(np.median(rel)), "spearman": float(spearmanr(x, y)[0]),
            "coverage": float(np.mean(covered)), "mean_shift": float(np.median(y / x) - 1.0)}


def rows_of(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per model key: median and interval, and the reference-normalised ratio with its interval."""
    out = {}
    for r in report["results"]:
        if r["status"] != "ok":
            continue
        out[r["key"]] = {"median": r["median_ms"], "lo": r["ci_low_ms"], "hi": r["ci_high_ms"]}
    return out


def interleaved_views(db: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """The interleaved run's models four ways, each ``{key: {median, lo, hi}}``, from its database.

    * ``raw``: the median of the samples as timed, with :func:`repeat_interval` of those samples;
    * ``drift-corrected``: what the agent stores (samples divided by the batch's level at each visit,
      :mod:`device_agent.drift`), with the stored interval;
    * ``/ small reference``: the drift-corrected median over the small reference's (v1, the only
      reference before the panel; how ``ref_ratio`` was defined then), with the stored ratio's
      relative interval;
    * ``/ reference panel``: the stored ``ref_ratio`` (over the geometric mean of the three
      references' medians) and its interval.
    """
    import numpy as np

    from device_agent.reference import REFERENCE_ARCH
    from device_agent.stats import repeat_interval
    from latency_db import LatencyDB

    views: dict[str, dict[str, dict[str, Any]]] = {v: {} for v in VIEWS}
    with LatencyDB(db, read_only=True) as conn:
        keys = {m.sha256: m.key for m in conn.models()}
        small = {(r.environment["run_id"], r.environment["batch"]): r
                 for r in conn.measurements(space="reference", status="ok") if r.arch == REFERENCE_ARCH}
        for r in conn.measurements(status="ok"):
            env, key = r.environment, keys[r.model_sha256]
            raw = np.asarray(env.get("raw_samples_ms", r.samples_ms))
            ri = repeat_interval(raw)
            views["raw"][key] = {"median": float(np.median(raw)), "lo": ri.low if ri else raw.min(),
                                 "hi": ri.high if ri else raw.max()}
            views["drift-corrected"][key] = {"median": r.median_ms, "lo": r.ci_low_ms, "hi": r.ci_high_ms}
            if "ref_ratio" not in env or "ref_ratio_interval" not in env:
                continue
            lo, hi = env["ref_ratio_interval"]
            views["/ reference panel"][key] = {"median": env["ref_ratio"], "lo": lo, "hi": hi}
            ref = small.get((env.get("run_id"), env.get("batch")))
            if ref is not None and ref.median_ms:
                ratio = r.median_ms / ref.median_ms
                views["/ small reference"][key] = {"median": ratio, "lo": ratio * lo / env["ref_ratio"],
                                                   "hi": ratio * hi / env["ref_ratio"]}
    return views


VIEWS = ("raw", "drift-corrected", "/ small reference", "/ reference panel")


def sampling_spearman(db: Path, draws: int = 300, seed: int = 0) -> tuple[float, float]:
    """The Spearman correlation two runs would have if they differed only by the sampling of
    their rounds: each model's ``ref_ratio`` recomputed from a bootstrap resample of its rounds,
    twice, correlated; ``(median, 10th percentile)`` over ``draws`` pairs. Models closer together
    than their sampling error cannot be ranked the same way twice by any run this long."""
    from latency_db import LatencyDB

    with LatencyDB(db, read_only=True) as conn:
        series = [np.asarray(r.samples_ms) / r.median_ms * r.environment["ref_ratio"]
                  for r in conn.measurements(status="ok") if "ref_ratio" in r.environment]  # fmt: skip
    rng = np.random.default_rng(seed)

    def replica() -> list[float]:
        return [float(np.median(rng.choice(x, len(x)))) for x in series]

    rho = [float(spearmanr(replica(), replica())[0]) for _ in range(draws)]
    return float(np.median(rho)), float(np.percentile(rho, 10))


def panel_levels(references: list[dict[str, Any]]) -> list[float]:
    """Each batch's panel level (geometric mean of its references' medians) from ``--json`` rows."""
    by_batch: dict[Any, list[float]] = {}
    for r in references:
        if r["status"] == "ok":
            by_batch.setdefault(r["batch"], []).append(float(np.log(r["median_ms"])))
    return [round(float(np.exp(np.mean(v))), 4) for _, v in sorted(by_batch.items())]


def line(name: str, c: dict[str, float], s_per_model: float | None) -> str:  # noqa: D103
    wall = "" if s_per_model is None else f"  {s_per_model:6.2f} s/model"
    return (f"  {name:<35} within 3%: {c['within3']:>3}/{c['n']:<3} ({c['within3'] / c['n']:4.0%})  "
            f"worst {c['worst']:5.1%}  spearman {c['spearman']:.3f}  coverage {c['coverage']:4.0%}  "
            f"run shift {c['mean_shift']:+5.1%}{wall}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="12,50", help="comma-separated numbers of NB201 cells (default 12,50)")
    ap.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    ap.add_argument("--protocols", default="interleaved,sequential", help="protocols to compare")
    ap.add_argument("--agent-args", default="", help="extra device_agent run flags, e.g. '--min-rounds 30'")
    ap.add_argument("--keep", help="keep candidates and databases in this folder")
    args = ap.parse_args()

    from hwnas.cli.export import sample_distinct
    from hwnas.export import export_archs
    from hwnas.space import NB201Space

    import onnxruntime as ort

    work = Path(args.keep or tempfile.mkdtemp(prefix="hwnas-repeat-"))
    work.mkdir(parents=True, exist_ok=True)
    space = NB201Space()
    print(f"onnxruntime {ort.__version__}, {os.cpu_count()} CPUs, threads={args.threads}, work={work}")
    summary: dict[str, Any] = {}
    for n in [int(s) for s in args.sizes.split(",")]:
        models = work / f"cells{n}"
        if not (models / "manifest.jsonl").is_file():
            export_archs(space, sample_distinct(space, n, args.seed), models)
        print(f"\n{n} NB201 cells (seed {args.seed}), two runs back to back per protocol:")
        walls: dict[str, float] = {}
        for protocol in args.protocols.split(","):
            extra = args.agent_args.split() if protocol == "interleaved" else []
            runs = [agent_run(models, work / f"{protocol}{n}-{i}.db", protocol, args.threads, extra) for i in (0, 1)]
            walls[protocol] = statistics.mean(w for _, w in runs) / n
            c = compare(rows_of(runs[0][0]), rows_of(runs[1][0]), "median", "lo", "hi")
            summary[f"{protocol}{n}"] = c | {"s_per_model": walls[protocol]}
            if protocol != "interleaved":
                print(line(protocol, c, walls[protocol]))
            else:
                va, vb = (interleaved_views(work / f"{protocol}{n}-{i}.db") for i in (0, 1))
                for view in VIEWS:
                    if va[view] and vb[view]:
                        cv = compare(va[view], vb[view], "median", "lo", "hi")
                        summary[f"{protocol}{n}-{view}"] = cv
                        print(line(f"interleaved {view}", cv, walls[protocol] if view == "raw" else None))
                limits = [sampling_spearman(work / f"{protocol}{n}-{i}.db") for i in (0, 1)]
                summary[f"{protocol}{n}-sampling-spearman"] = limits
                print("  Spearman if the runs differed only by sampling their rounds (bootstrap, median / 10th "
                      "percentile): " + ", ".join(f"run {i + 1} {m:.3f} / {p:.3f}" for i, (m, p) in enumerate(limits)))
                refs = [panel_levels(rep["references"]) for rep, _ in runs]
                drifts = [r["drift_within"] for rep, _ in runs for r in rep["references"] if r.get("drift_within") is not None]
                print(f"  panel levels per batch, ms: run 1 {refs[0]}, run 2 {refs[1]}; "
                      f"drift within batches {min(drifts, default=0):+.1%} .. {max(drifts, default=0):+.1%}")
        if "interleaved" in walls and "sequential" in walls:
            print(f"  wall time per model, interleaved / sequential: {walls['interleaved'] / walls['sequential']:.2f}x")
    (work / "summary.json").write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
