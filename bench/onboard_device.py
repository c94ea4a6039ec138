#!/usr/bin/env python
"""Onboard this machine as a new device with the shipped base predictor and ten measurements.

The README's flow, timed, with the product's own commands (subprocesses, start-up included):

1. ``hwnas predictor suggest --base nb201-public -k 10``: the ten cells to measure;
2. ``hwnas export --archs`` them (reference form by default: ``--form``);
3. ``device_agent run`` on them, into a fresh latency database;
4. ``hwnas predictor adapt --base nb201-public --samples 10``.

Then, for scoring, one interleaved ``device_agent run --force`` over the suggested ten, ten random
cells and 100 other random cells (one run, so drift between runs favours no method), and on the
100, with ``hwnas predictor eval --archs``:

- the shipped base adapted on the suggested ten (the method), and on the random ten (baseline);
- a FLOPs-linear fit on the suggested ten (baseline);
- the flow's own predictor (adapted from step 3's measurements) against the scoring run;
- the noise ceiling: the 100 measured again in a second run, scored against the first.

    python bench/onboard_device.py [--base nb201-public] [-k 10] [--eval 100] [--form reference]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BIN = Path(sys.executable).parent


def run(cmd: list[str], what: str, timings: dict[str, float]) -> dict:
    """Run one product command (``hwnas`` / ``device_agent`` of this venv), time it, parse --json."""
    exe = str(BIN / cmd[0]) if (BIN / cmd[0]).exists() else cmd[0]
    t0 = time.perf_counter()
    proc = subprocess.run([exe, *cmd[1:]], capture_output=True, text=True)
    timings[what] = timings.get(what, 0.0) + time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError:
        return {}


def noise_ceiling(db_a: str, db_b: str, device: str, archs: set[str]) -> dict:
    """Spearman / ±10% / MAPE of one run's latencies of ``archs`` against another's: what no
    predictor scored against run A can beat, since run B is as good a guess as any."""
    from hwnas.predictors.dataset import device_rows
    from hwnas.predictors.metrics import evaluate
    from latency_db import LatencyDB

    runs = []
    for path in (db_a, db_b):
        with LatencyDB(path, read_only=True) as db:
            runs.append({r.arch: r.latency_ms for r in device_rows(db, device) if r.arch in archs})
    common = sorted(set(runs[0]) & set(runs[1]))
    return evaluate(np.array([runs[0][a] for a in common]), np.array([runs[1][a] for a in common]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default="nb201-public", help="base predictor: a file or a shipped name")
    ap.add_argument("-k", type=int, default=10, help="cells measured for adapting (default 10)")
    ap.add_argument("--eval", type=int, default=100, help="random cells measured for scoring (default 100)")
    ap.add_argument("--pool", type=int, default=2000, help="suggest's candidates (default 2000)")
    ap.add_argument("--form", choices=("reference", "pruned"), default="reference")
    ap.add_argument("--device-name", default="onboard-this-cpu")
    ap.add_argument("--threads", type=int, default=1, help="the agent's intra-op threads (default 1: onnxruntime's "
                    "default takes every core and spins, which on a shared 2-core machine makes runs disagree)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-ceiling", dest="ceiling", action="store_false",
                    help="skip measuring the evaluation cells a second time (the noise ceiling)")
    ap.add_argument("--work", type=Path, help="working folder (default: a new temporary one)")
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args()

    from hwnas.space import NB201Space

    work = args.work or Path(tempfile.mkdtemp(prefix="hwnas-onboard-"))
    work.mkdir(parents=True, exist_ok=True)
    db, dev, t = str(work / "lat.db"), args.device_name, {}
    common = ["--cache", str(work / "cache"), "--json"]
    sugg = work / "suggested.txt"

    # -- the flow, timed -------------------------------------------------------------------------
    t_flow = time.perf_counter()
    run(["hwnas", "predictor", "suggest", "--base", args.base, "--space", "nb201", "-k", str(args.k),
         "--pool", str(args.pool), "--seed", str(args.seed), "--out", str(sugg), *common], "suggest", t)  # fmt: skip
    run(["hwnas", "export", "--space", "nb201", "--archs", str(sugg), "--out", str(work / "sugg_models"),
         "--form", args.form, "--json"], "export", t)  # fmt: skip
    run(["device_agent", "run", "--threads", str(args.threads), "--models", str(work / "sugg_models"), "--db", db, "--device-name", dev,
         "--progress", "none", "--json"], "measure", t)  # fmt: skip
    run(["hwnas", "predictor", "adapt", "--base", args.base, "--db", db, "--device", dev, "--samples", str(args.k),
         "--out", str(work / "flow.json"), *common], "adapt", t)  # fmt: skip
    flow_s = time.perf_counter() - t_flow
    flow_steps = dict(t)

    # -- the scoring run: suggested + random + evaluation cells, one interleaved measurement ------
    chosen = set(sugg.read_text().split())
    space = NB201Space()
    rng = np.random.default_rng(args.seed + 1)
    others: list[str] = []
    for i in rng.permutation(space.size):
        spec = space.from_index(int(i)).spec
        if spec not in chosen:
            others.append(spec)
        if len(others) == args.k + args.eval:
            break
    rand, evals = work / "random.txt", work / "eval.txt"
    rand.write_text("\n".join(others[: args.k]) + "\n")
    evals.write_text("\n".join(others[args.k :]) + "\n")
    every = work / "all.txt"
    every.write_text(sugg.read_text() + rand.read_text() + evals.read_text())
    t_score = time.perf_counter()
    run(["hwnas", "export", "--space", "nb201", "--archs", str(every), "--out", str(work / "all_models"),
         "--form", args.form, "--json"], "export all", t)  # fmt: skip
    run(["device_agent", "run", "--threads", str(args.threads), "--models", str(work / "all_models"), "--db", db, "--device-name", dev, "--force",
         "--progress", "none", "--json"], "measure all", t)  # fmt: skip
    run(["hwnas", "predictor", "adapt", "--base", args.base, "--db", db, "--device", dev, "--archs", str(sugg),
         "--out", str(work / "sugg.json"), *common], "adapt", t)  # fmt: skip
    run(["hwnas", "predictor", "adapt", "--base", args.base, "--db", db, "--device", dev, "--archs", str(rand),
         "--out", str(work / "rand.json"), *common], "adapt", t)  # fmt: skip
    run(["hwnas", "predictor", "train", "--kind", "flops", "--db", db, "--device", dev, "--archs", str(sugg),
         "--calibration-folds", "0", "--out", str(work / "flops.json"), *common], "train flops", t)  # fmt: skip
    rows = {}
    for label, model in (("base adapted on the suggested 10", "sugg.json"), ("base adapted on 10 random", "rand.json"),
                         ("FLOPs fit on the suggested 10", "flops.json"),
                         ("the flow's predictor (own measurements)", "flow.json")):  # fmt: skip
        m = run(["hwnas", "predictor", "eval", "--model", str(work / model), "--db", db, "--device", dev,
                 "--archs", str(evals), *common], "eval", t)  # fmt: skip
        rows[label] = m
    score_s = time.perf_counter() - t_score
    ceiling = None
    if args.ceiling:  # this machine's own noise: the evaluation cells measured again, in a second run
        db2 = str(work / "again.db")
        run(["hwnas", "export", "--space", "nb201", "--archs", str(evals), "--out", str(work / "eval_models"),
             "--form", args.form, "--json"], "export again", t)  # fmt: skip
        run(["device_agent", "run", "--threads", str(args.threads), "--models", str(work / "eval_models"), "--db", db2, "--device-name", dev,
             "--progress", "none", "--json"], "measure again", t)  # fmt: skip
        ceiling = noise_ceiling(db, db2, dev, set(evals.read_text().split()))

    print(f"onboarding this machine ({dev}, {args.form} form) from --base {args.base}; work folder {work}")
    print(f"flow (suggest -> export {args.k} -> device_agent run -> adapt): {flow_s:.1f} s wall "
          f"({', '.join(f'{k} {v:.1f} s' for k, v in flow_steps.items())})")  # fmt: skip
    print(f"scoring run ({2 * args.k + args.eval} cells measured in one interleaved run, evals): {score_s:.1f} s")
    print(f"{'on the ' + str(args.eval) + ' evaluation cells':<42}{'Spearman':>9}{'±10%':>8}{'MAPE':>8}")
    for label, m in rows.items():
        print(f"{label:<42}{m['spearman']:9.3f}{m['within_10pct']:8.0%}{m['mape']:8.1%}")
    if ceiling:
        print(f"{'noise ceiling (a second run of the 100)':<42}{ceiling['spearman']:9.3f}{ceiling['within_10pct']:8.0%}"
              f"{ceiling['mape']:8.1%}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"flow_s": flow_s, "flow_steps": flow_steps, "score_s": score_s, "timings": t,
                                         "results": rows, "ceiling": ceiling, "work": str(work)}, indent=2, default=str))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
