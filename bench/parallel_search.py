"""Wall time of a proxy-training search in this process, with 1 worker and with 2 workers.

The same seeded random search (so the same candidates) on NB201 with the proxy evaluator (real
training on digits, 1 torch thread per process) and a cheap latency source (the FLOPs model of
this machine's DB, fitted by ``make run``), run three ways: in-process (no ``--workers``),
``--workers 1`` and ``--workers 2``. Prints each wall time (median of ``--repeats`` runs), the
speed-up of 2 workers over 1, and the pool's overhead per trial (workers 1 minus in-process,
divided by the trials). Each command's time includes its fixed start (importing torch, building
the evaluator, exporting and plotting the best at the end), which does not parallelise; the search
loop's own time (``wall_s`` of result.json, worker start-up included) is printed beside it.

With ``--ray`` it also starts a throwaway local Ray cluster (``ray start --head``, 2 CPUs,
``RAY_AUTH_MODE=disabled``) and runs the search there (``--ray-address``); with ``--overhead``
the evaluator is the tabular one (no training), so the differences are the per-trial cost of the
process pool and of Ray themselves.

Run after ``make run`` (it needs the DB):
``.venv/bin/python bench/parallel_search.py [--evals 12] [--epochs 6] [--ray] [--overhead --evals 60]``
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--evals", type=int, default=12)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--epochs", type=int, default=2, help="proxy training epochs per candidate (default 2)")
    p.add_argument("--db", default=".hwnas/latency.db")
    p.add_argument("--device", default=socket.gethostname())
    p.add_argument("--ray", action="store_true", help="also run on a local Ray cluster started for the bench")
    p.add_argument("--overhead", action="store_true", help="tabular evaluator: measure per-trial overhead only")
    args = p.parse_args(argv)
    if not Path(args.db).is_file():
        raise SystemExit(f"{args.db}: no latency DB; run make run first (or pass --db and --device)")
    evaluator = ["tabular"] if args.overhead else ["proxy", "--epochs", str(args.epochs), "--subsample", "0.5"]
    base = [sys.executable, "-m", "hwnas.cli", "search", "--space", "nb201", "--strategy", "random", "--evaluator",
            *evaluator, "--threads", "1", "--latency-source", "flops", "--db", args.db, "--device", args.device,
            "--budget-evals", str(args.evals), "--seed", "0", "--json"]  # fmt: skip
    modes = [("in-process", []), ("workers 1", ["--workers", "1"]), ("workers 2", ["--workers", "2"])]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    ray_bin = str(Path(sys.executable).parent / "ray")
    if args.ray:
        from ray.util import get_node_ip_address

        from hwnas.remote.local_sshd import free_port

        port = free_port()
        subprocess.run([ray_bin, "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
                        "--disable-usage-stats"], check=True, capture_output=True, env=env)  # fmt: skip
        modes.append(("ray 2 cpus", ["--ray-address", f"{get_node_ip_address()}:{port}"]))
    walls: dict[str, list[float]] = {label: [] for label, _ in modes}
    search: dict[str, list[float]] = {label: [] for label, _ in modes}  # result.json wall_s: the search loop only
    try:
        for _ in range(args.repeats):
            for label, extra in modes:
                with tempfile.TemporaryDirectory() as out:
                    t0 = time.perf_counter()
                    subprocess.run([*base, "--out", out, *extra], check=True, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, env=env)  # fmt: skip
                    walls[label].append(time.perf_counter() - t0)
                    search[label].append(float(json.loads((Path(out) / "result.json").read_text())["wall_s"]))
    finally:
        if args.ray:
            subprocess.run([ray_bin, "stop", "--force"], capture_output=True, env=env)
    med = {k: statistics.median(v) for k, v in walls.items()}
    print(f"NB201 random search, {args.evals} trials, evaluator {' '.join(evaluator)}, 1 torch thread per process")
    loop = {k: statistics.median(v) for k, v in search.items()}
    for k, v in walls.items():
        print(f"{k:>11}: median {med[k]:.1f} s per command, {loop[k]:.1f} s in the search loop "
              f"(runs: {', '.join(f'{x:.1f}' for x in v)})")
    print(f"speed-up, 2 workers over 1: {med['workers 1'] / med['workers 2']:.2f}x per command, "
          f"{loop['workers 1'] / loop['workers 2']:.2f}x in the search loop; over in-process: "
          f"{med['in-process'] / med['workers 2']:.2f}x / {loop['in-process'] / loop['workers 2']:.2f}x")
    for k in walls:
        if k != "in-process":
            print(f"overhead per trial, {k} vs in-process: {(med[k] - med['in-process']) / args.evals * 1e3:+.0f} ms "
                  "(includes starting the workers / joining the cluster)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
