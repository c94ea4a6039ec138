"""TVM-compiled NB201 candidates against onnxruntime on this CPU, through ``device_agent run``.

Exports ``--n`` NB201 candidates (seed ``--seed``) and measures them, all into one database with the
same protocol (1 thread):

1. ``onnxruntime``;
2. TVM untuned on the generic target ``{"kind": "llvm", "num-cores": 1}`` (what the agent did before);
3. TVM untuned on the host's target (the default: ``mcpu`` named);
4. TVM compiled against a shared database tuned by ``hwnas tvm tune`` on a *different* sample of
   NB201 (``--tune-sample`` cells, seed ``--tune-seed``), so that reuse is what is tested.

Prints per model the medians and the ratios TVM/onnxruntime, their medians, the tuning's wall and
CPU time, the number of unique tasks, and how many of the measured candidates' tasks the database
holds.

Run: ``.venv/bin/python bench/tvm_vs_ort.py [--n 10] [--tune-sample 30] [--trials-per-task 32] [--work DIR]``
(with ``--work`` an existing database there is extended, its tasks skipped).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

FLAGS = ["--threads", "1", "--warmup", "3", "--repeats", "10", "--min-repeat-ms", "20", "--timeout-s", "1800"]
GENERIC = '{"kind": "llvm", "num-cores": 1}'

#: Run in the agent's environment (no torch): the share of a folder's tasks that the database holds.
COVERAGE = """
import json, sys
from pathlib import Path
import tvm
from device_agent import tvm_tune
from device_agent.runtimes import tvm_rt
db = tvm_tune.read_db(sys.argv[2])
target = tvm.target.Target(db.manifest["target"])
database = tvm_rt.open_database(sys.argv[2])
tasks = tvm_tune.dedupe(tvm_tune.model_tasks(p, target) for p in tvm_tune.find_models(sys.argv[1]))
held = [t for t in tasks if database.has_workload(t.mod)]
print(json.dumps({"tasks": len(tasks), "held": len(held), "calls": sum(t.weight for t in tasks),
                  "calls_held": sum(t.weight for t in held)}))
"""


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tune-sample", type=int, default=30)
    p.add_argument("--tune-seed", type=int, default=1)
    p.add_argument("--trials-per-task", type=int, default=32)
    p.add_argument("--jobs", type=int, default=0, help="parallel builds while tuning (0: all cores)")
    p.add_argument("--work", help="folder for candidates, database and results (default: a new temporary one)")
    args = p.parse_args(argv)
    from hwnas.cli import main as hwnas_main
    from hwnas.cli.export import sample_distinct
    from hwnas.space import get_space
    from latency_db import LatencyDB

    tmp = Path(args.work or tempfile.mkdtemp(prefix="hwnas-bench-tvm-"))
    tmp.mkdir(parents=True, exist_ok=True)
    models, tvm_db, db = tmp / "models", tmp / "tvm-db", tmp / "bench.db"
    space = get_space("nb201")
    overlap = set(sample_distinct(space, args.n, args.seed)) & set(sample_distinct(space, args.tune_sample, args.tune_seed))
    assert hwnas_main(["export", "--space", "nb201", "--sample", str(args.n), "--seed", str(args.seed),
                       "--out", str(models)]) == 0  # fmt: skip
    env = {**os.environ, "DEVICE_AGENT_TVM_CACHE": str(tmp / "tvm-cache")}

    def agent(*extra: str) -> float:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "device_agent", "run", "--models", str(models), "--db", str(db), *FLAGS,
                        *extra], check=True, stdout=subprocess.DEVNULL, env=env)  # fmt: skip
        return time.perf_counter() - t0

    walls = {"onnxruntime": agent(), "tvm generic": agent("--runtime", "tvm", "--tvm-target", GENERIC),
             "tvm mcpu": agent("--runtime", "tvm")}  # fmt: skip
    t0, c0 = time.perf_counter(), _cpu_children()
    tune = subprocess.run([sys.executable, "-m", "hwnas.cli", "tvm", "tune", "--space", "nb201", "--sample", str(args.tune_sample),
                           "--seed", str(args.tune_seed), "--trials-per-task", str(args.trials_per_task), "--threads", "1",
                           "--jobs", str(args.jobs), "--out", str(tvm_db), "--json"],
                          check=True, capture_output=True, text=True, env=env)  # fmt: skip
    tune_wall, tune_cpu = time.perf_counter() - t0, _cpu_children() - c0
    manifest = json.loads(tune.stdout)
    walls["tvm db"] = agent("--runtime", "tvm", "--tvm-db", str(tvm_db))
    cov = json.loads(subprocess.run([sys.executable, "-c", COVERAGE, str(models), str(tvm_db)], check=True,
                                    capture_output=True, text=True, env=env).stdout)  # fmt: skip

    with LatencyDB(db) as ldb:
        rows = ldb.measurements(status="ok")
    by: dict[str, dict[str, float]] = {}
    for m in rows:
        if m.runtime == "onnxruntime":
            key = "ort"
        else:
            key = "db" if m.config.get("tvm_db") else "mcpu" if "mcpu" in json.loads(m.config["tvm_target"]) else "generic"
        by.setdefault(m.model_sha256, {})[key] = float(m.median_ms)
    cols = ("generic", "mcpu", "db")
    ratios: dict[str, list[float]] = {c: [] for c in cols}
    print(f"{'model':>10} {'ort ms':>8} " + " ".join(f"{c + ' ms':>10} {'/ort':>6}" for c in cols))
    for sha, v in sorted(by.items(), key=lambda kv: kv[1].get("ort", 0)):
        if "ort" not in v:
            continue
        cells = []
        for c in cols:
            if c in v:
                ratios[c].append(v[c] / v["ort"])
                cells.append(f"{v[c]:>10.3f} {ratios[c][-1]:>6.2f}")
            else:
                cells.append(f"{'-':>10} {'-':>6}")
        print(f"{sha[:10]:>10} {v['ort']:>8.3f} " + " ".join(cells))
    print("\nmedian TVM/onnxruntime over " + ", ".join(
        f"{c}: {statistics.median(r):.2f}x ({len(r)} models)" for c, r in ratios.items() if r))
    last = manifest["runs"][-1]
    print(f"database: {manifest['workloads']} workloads; this run: {last['unique_tasks']} unique tasks in "
          f"{last['models']} NB201 cells (seed {args.tune_seed}, {len(overlap)} shared with the measured ones), "
          f"{last['tuned_tasks']} tuned x {args.trials_per_task} trials, cost model {last['cost_model']}; tuning "
          f"{tune_wall:.0f} s wall, {tune_cpu / 60:.1f} CPU-min (export included; the agent's own count: "
          f"{last['tuning_s']:.0f} s, {last['cpu_s'] / 60:.1f} CPU-min)")
    print(f"the measured candidates' {cov['tasks']} unique tasks: {cov['held']} in the database "
          f"({cov['calls_held']} of {cov['calls']} calls)")
    print("wall: " + ", ".join(f"{k} {v:.1f} s" for k, v in walls.items()) + f"; results in {tmp}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
