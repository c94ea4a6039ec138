#!/usr/bin/env python
"""Does the agent measure what a bare onnxruntime loop measures, and does it repeat itself?

For N exported NB201 candidates (default 20):

1. ``device_agent run`` (the real CLI, in its own process, guarded worker and all) into database A;
2. a bare loop here: an ``InferenceSession`` with the same session options written out by hand
   (intra-op threads, 1 inter-op thread, sequential, all optimisations), the same warm-up, then
   blocks of back-to-back ``session.run`` calls of at least ``--min-repeat-ms`` each, median of
   the per-call block times;
3. ``device_agent run`` again into database B.

Prints per model the agent's median (run 1), the bare median, their ratio, and the drift between
the two agent runs; then the medians of those over all models. Goals: the ratio within 5% of 1,
the drift within 3%.

    python bench/agent_overhead.py [--n 20] [--threads 1] [--repeats 30] [--min-repeat-ms 20]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort


def bare_median_ms(path: Path, threads: int, warmup: int, repeats: int, min_repeat_ms: float) -> float:
    """Median per-call latency from a plain onnxruntime loop (no agent code involved)."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    x = np.random.default_rng(0).standard_normal([d if isinstance(d, int) else 1 for d in inp.shape])
    feeds = {inp.name: x.astype(np.float32)}
    for _ in range(warmup):
        sess.run(None, feeds)
    t0 = time.perf_counter()
    sess.run(None, feeds)
    one_ms = (time.perf_counter() - t0) * 1e3
    number = max(1, math.ceil(min_repeat_ms * 1.2 / max(one_ms, 1e-3)))
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        for _ in range(number):
            sess.run(None, feeds)
        samples.append((time.perf_counter_ns() - t0) / number / 1e6)
    return statistics.median(samples)


def agent_run(models: Path, db: Path, args: argparse.Namespace) -> dict[str, float]:
    """Run the real ``device_agent run``; return {file name: median_ms}."""
    cmd = [
        sys.executable, "-m", "device_agent", "run", "--models", str(models), "--db", str(db),
        "--threads", str(args.threads), "--warmup", str(args.warmup), "--repeats", str(args.repeats),
        "--min-repeat-ms", str(args.min_repeat_ms), "--json",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"device_agent run failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    out = json.loads(proc.stdout)
    return {Path(r["file"]).name: r["median_ms"] for r in out["results"] if r["status"] == "ok"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=20, help="number of NB201 candidates (default 20)")
    ap.add_argument("--seed", type=int, default=1, help="sampling seed (default 1)")
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads for both (default 1)")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--min-repeat-ms", type=float, default=20.0)
    ap.add_argument("--work", help="working folder (default: a temporary one)")
    args = ap.parse_args()

    from hwnas.cli.export import sample_distinct
    from hwnas.export import export_archs
    from hwnas.space import NB201Space

    work = Path(args.work or tempfile.mkdtemp(prefix="hwnas-bench-"))
    models = work / "candidates"
    space = NB201Space()
    export_archs(space, sample_distinct(space, args.n, args.seed), models)
    for db in ("a.db", "b.db"):
        for suffix in ("", "-wal", "-shm"):
            Path(str(work / db) + suffix).unlink(missing_ok=True)

    print(f"{args.n} NB201 candidates, threads={args.threads}, repeats={args.repeats}, "
          f"min-repeat-ms={args.min_repeat_ms}, onnxruntime {ort.__version__}, {os.cpu_count()} CPUs")  # fmt: skip
    agent1 = agent_run(models, work / "a.db", args)
    bare = {
        p.name: bare_median_ms(p, args.threads, args.warmup, args.repeats, args.min_repeat_ms)
        for p in sorted(models.glob("*.onnx"))
    }
    agent2 = agent_run(models, work / "b.db", args)

    print(f"{'model':<18} {'agent ms':>9} {'bare ms':>9} {'ratio':>7} {'agent2 ms':>10} {'drift':>7}")
    ratios, drifts = [], []
    for name in sorted(bare):
        a1, b, a2 = agent1[name], bare[name], agent2[name]
        ratio, drift = a1 / b, a2 / a1 - 1.0
        ratios.append(ratio)
        drifts.append(drift)
        print(f"{Path(name).stem:<18} {a1:9.3f} {b:9.3f} {ratio:7.3f} {a2:10.3f} {drift:+7.1%}")
    overall_ratio = statistics.median(ratios)
    overall_drift = statistics.median(abs(d) for d in drifts)
    total_ratio = sum(agent1.values()) / sum(bare.values())
    print(f"median ratio agent/bare: {overall_ratio:.3f} (sum-of-medians ratio {total_ratio:.3f}); "
          f"goal within 5%: {'yes' if abs(overall_ratio - 1) <= 0.05 else 'NO'}")  # fmt: skip
    print(f"median |drift| between agent runs: {overall_drift:.1%}; "
          f"goal within 3%: {'yes' if overall_drift <= 0.03 else 'NO'}")  # fmt: skip
    print(f"max |ratio-1| {max(abs(r - 1) for r in ratios):.1%}, max |drift| {max(abs(d) for d in drifts):.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
