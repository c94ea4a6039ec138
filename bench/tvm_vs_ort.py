"""TVM-compiled NB201 candidates against onnxruntime on this CPU, through ``device_agent run``.

Exports ``--n`` NB201 candidates and measures them with ``--runtime onnxruntime``, with ``--runtime
tvm`` untuned, and (the first ``--tune-models``) with ``--tvm-tune-trials T`` (MetaSchedule), all
into one database with the same protocol (1 thread). Prints per model the medians and the ratios
TVM/onnxruntime, then their medians, and the wall time of compiling and tuning.

Run: ``.venv/bin/python bench/tvm_vs_ort.py [--n 10] [--tune-models 2] [--tune-trials 32]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

FLAGS = ["--threads", "1", "--warmup", "3", "--repeats", "10", "--min-repeat-ms", "20", "--timeout-s", "1800"]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10)
    p.add_argument("--tune-models", type=int, default=2)
    p.add_argument("--tune-trials", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    from hwnas.cli import main as hwnas_main
    from latency_db import LatencyDB

    tmp = Path(tempfile.mkdtemp(prefix="hwnas-bench-tvm-"))
    models, tuned = tmp / "models", tmp / "tuned"
    assert hwnas_main(["export", "--space", "nb201", "--sample", str(args.n), "--seed", str(args.seed),
                       "--out", str(models)]) == 0  # fmt: skip
    tuned.mkdir()
    for f in sorted(models.glob("*.onnx"))[: args.tune_models]:
        shutil.copy(f, tuned / f.name)
    db = tmp / "bench.db"
    env = {**os.environ, "DEVICE_AGENT_TVM_CACHE": str(tmp / "tvm-cache")}
    walls = {}
    for label, folder, extra in (("onnxruntime", models, []), ("tvm untuned", models, ["--runtime", "tvm"]),
                                 (f"tvm tuned {args.tune_trials}", tuned,
                                  ["--runtime", "tvm", "--tvm-tune-trials", str(args.tune_trials)])):  # fmt: skip
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "device_agent", "run", "--models", str(folder), "--db", str(db), *FLAGS,
                        *extra], check=True, stdout=subprocess.DEVNULL, env=env)  # fmt: skip
        walls[label] = time.perf_counter() - t0
    with LatencyDB(db) as ldb:
        rows = ldb.measurements(status="ok")
    by: dict[str, dict[str, float]] = {}
    for m in rows:
        key = "onnxruntime" if m.runtime == "onnxruntime" else f"tvm{m.config.get('tvm_tune_trials', 0)}"
        by.setdefault(m.model_sha256, {})[key] = float(m.median_ms)
    tk = f"tvm{args.tune_trials}"
    print(f"{'model':>10} {'ort ms':>8} {'tvm ms':>9} {'tvm/ort':>8} {'tuned ms':>9} {'tuned/ort':>9}")
    r_un, r_tu = [], []
    for sha, v in sorted(by.items(), key=lambda kv: kv[1].get("onnxruntime", 0)):
        if "onnxruntime" not in v or "tvm0" not in v:
            continue
        r_un.append(v["tvm0"] / v["onnxruntime"])
        tuned_ms = v.get(tk)
        if tuned_ms is not None:
            r_tu.append(tuned_ms / v["onnxruntime"])
        print(f"{sha[:10]:>10} {v['onnxruntime']:>8.3f} {v['tvm0']:>9.3f} {r_un[-1]:>8.1f} "
              + (f"{tuned_ms:>9.3f} {r_tu[-1]:>9.1f}" if tuned_ms is not None else f"{'-':>9} {'-':>9}"))
    print(f"\nmedian TVM/onnxruntime: untuned {statistics.median(r_un):.1f}x over {len(r_un)} models"
          + (f"; tuned ({args.tune_trials} trials) {statistics.median(r_tu):.1f}x over {len(r_tu)}" if r_tu else ""))
    print("wall: " + ", ".join(f"{k} {v:.1f} s" for k, v in walls.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
