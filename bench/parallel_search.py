"""Wall time of a proxy-training search in this process, with 1 worker and with 2 workers.

The same seeded random search (so the same candidates) on NB201 with the proxy evaluator (real
training on digits, 1 torch thread per process) and a cheap latency source (the FLOPs model of
this machine's DB, fitted by ``make run``), run three ways: in-process (no ``--workers``),
``--workers 1`` and ``--workers 2``. Prints each wall time (median of ``--repeats`` runs), the
speed-up of 2 workers over 1, and the pool's overhead per trial (workers 1 minus in-process,
divided by the trials).

Run after ``make run`` (it needs the DB): ``.venv/bin/python bench/parallel_search.py [--evals 12]``
"""

from __future__ import annotations

import argparse
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
    args = p.parse_args(argv)
    if not Path(args.db).is_file():
        raise SystemExit(f"{args.db}: no latency DB; run make run first (or pass --db and --device)")
    base = [sys.executable, "-m", "hwnas.cli", "search", "--space", "nb201", "--strategy", "random", "--evaluator",
            "proxy", "--epochs", str(args.epochs), "--subsample", "0.5", "--threads", "1", "--latency-source", "flops", "--db",
            args.db, "--device", args.device, "--budget-evals", str(args.evals), "--seed", "0", "--json"]  # fmt: skip
    walls: dict[str, list[float]] = {"in-process": [], "workers 1": [], "workers 2": []}
    for _ in range(args.repeats):
        for label, extra in (("in-process", []), ("workers 1", ["--workers", "1"]), ("workers 2", ["--workers", "2"])):
            with tempfile.TemporaryDirectory() as out:
                t0 = time.perf_counter()
                subprocess.run([*base, "--out", out, *extra], check=True, stdout=subprocess.DEVNULL)
                walls[label].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in walls.items()}
    for k, v in walls.items():
        print(f"{k:>11}: median {med[k]:.1f} s  (runs: {', '.join(f'{x:.1f}' for x in v)})")
    print(f"speed-up, 2 workers over 1: {med['workers 1'] / med['workers 2']:.2f}x; "
          f"over in-process: {med['in-process'] / med['workers 2']:.2f}x")
    print(f"pool overhead per trial (workers 1 - in-process) / {args.evals}: "
          f"{(med['workers 1'] - med['in-process']) / args.evals * 1e3:.0f} ms (includes spawning the worker)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
