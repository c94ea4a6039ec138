#!/usr/bin/env python
"""Does a predictor-guided search's answer meet its budget when measured? Three ways to use the predictor.

On this machine: export ``--cells`` (50) random NB201 cells, measure them with ``device_agent run``,
train a GNN on them (``hwnas predictor train``, calibrated intervals), and set the budget at the
``--pct`` (30th) percentile of their latencies. Then ``--seeds`` (10) searches of ``--evals`` (60)
evaluations each (``--strategy``, tabular CIFAR-10 accuracy, latency from the predictor) in three
settings:

* ``mean``: judged on the point prediction (``--latency-confidence 0.5 --no-measure-uncertain``), as
  hwnas did before intervals;
* ``upper``: judged on the 0.9 quantile of the calibrated interval (``--no-measure-uncertain``);
* ``loop``: ``--measure-uncertain``: candidates whose interval straddles the budget are measured here,
  the predictor adapted every 5, the answer confirmed by measurement. Each loop search starts from a
  copy of the 50-cell database, so seeds do not share measurements.

Every distinct answer is then measured in one ``device_agent run`` (the interleaved protocol, all
answers in the same rounds), and per setting the bench prints: answers feasible by that
measurement, raw and at the drift reference's level of the base run (``ref_ratio`` x that level:
the machine's conditions when the budget was set), and, for the loop, by its own confirmation, the accuracy regret against the best cell
found feasible by measurement anywhere in the bench, the extra measurements per search, and the wall
time per search. Resumable: finished searches are kept under ``--work``.

    python bench/search_closed_loop.py [--work .hwnas/bench-closed-loop] [--seeds 10] [--evals 60]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SETTINGS = {
    "mean": ["--latency-confidence", "0.5", "--no-measure-uncertain"],
    "upper": ["--latency-confidence", "0.9", "--no-measure-uncertain"],
    "loop": ["--latency-confidence", "0.9", "--measure-uncertain"],
}
DEVICE = "bench-closed-loop"


def sh(*cmd: str) -> str:
    """Run a command, return its stdout; stop the bench with its stderr's last line if it fails."""
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)  # noqa: S603
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"{' '.join(cmd[:3])} ... failed: {tail}")
    return proc.stdout


def setup(work: Path, cells: int, seed: int) -> tuple[Path, Path, Path]:
    """The measured cells, their database and the GNN trained on them (made once, then reused)."""
    cdir, db, pred = work / "cells", work / "base.db", work / "predictor.json"
    if not pred.exists():
        t0 = time.perf_counter()
        sh(str(BIN / "hwnas"), "export", "--space", "nb201", "--sample", str(cells), "--seed", str(seed), "--out", str(cdir))
        sh(str(BIN / "device_agent"), "run", "--models", str(cdir), "--db", str(db), "--device-name", DEVICE)
        sh(str(BIN / "hwnas"), "predictor", "train", "--kind", "gnn", "--db", str(db), "--device", DEVICE, "--models",
           str(cdir), "--epochs", "60", "--out", str(pred))  # fmt: skip
        print(f"setup: {cells} cells measured, GNN trained and calibrated in {time.perf_counter() - t0:.0f} s", flush=True)
    return cdir, db, pred


def search(work: Path, setting: str, seed: int, args: argparse.Namespace, cdir: Path, db: Path, pred: Path,
           budget: float) -> dict:  # fmt: skip
    out = work / setting / f"seed{seed}"
    done = out / "bench.json"
    if done.exists():
        return json.loads(done.read_text())
    run_db = out / "lat.db"
    if setting == "loop" and not run_db.exists():
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy(db, run_db)
    t0 = time.perf_counter()
    proc = subprocess.run([str(BIN / "hwnas"), "search", "--space", "nb201", "--strategy", args.strategy, "--evaluator",
                           "tabular", "--latency-source", "predictor", "--predictor", str(pred), "--device", DEVICE,
                           "--models", str(cdir), "--latency-budget-ms", f"{budget:.6f}", "--budget-evals",
                           str(args.evals), "--seed", str(seed), "--db", str(run_db if setting == "loop" else db),
                           "--out", str(out), "--json", *SETTINGS[setting]],
                          capture_output=True, text=True, cwd=ROOT)  # fmt: skip # noqa: S603
    wall = time.perf_counter() - t0
    row: dict = {"setting": setting, "seed": seed, "wall_s": wall, "arch": None}
    result_file = out / "result.json"
    if result_file.exists():
        res = json.loads(result_file.read_text())
        loop = res.get("closed_loop") or {}
        row["extra_measurements"] = loop.get("measured", 0)
        row["loop_measured"] = {m["arch"]: m["measured_ms"] for m in loop.get("measurements", [])}
        if proc.returncode == 0 and res.get("best"):
            b = res["best"]
            row.update(arch=b["arch"], accuracy=b["accuracy"], judged_ms=b["latency_ms"],
                       confirmed=bool(loop.get("confirmed")) if loop else None,
                       marginal=bool(loop.get("marginal")))  # fmt: skip
    if row["arch"] is None:
        row["error"] = (proc.stderr.strip().splitlines() or ["no answer"])[-1]
    out.mkdir(parents=True, exist_ok=True)
    done.write_text(json.dumps(row))
    return row


def measure_answers(work: Path, archs: list[str], level: float | None) -> tuple[dict[str, float], dict[str, float], float | None]:
    """Every answer measured in one interleaved ``device_agent run``: arch -> median ms, arch ->
    ms at the base run's reference ``level`` (ref_ratio x level), and this run's level."""
    vdir, vdb = work / "answers", work / "answers.db"
    listing = work / "answers.txt"
    listing.write_text("\n".join(archs) + "\n")
    sh(str(BIN / "hwnas"), "export", "--space", "nb201", "--archs", str(listing), "--out", str(vdir))
    if not vdb.exists():
        sh(str(BIN / "device_agent"), "run", "--models", str(vdir), "--db", str(vdb), "--device-name", DEVICE)
    return medians(vdb), medians(vdb, level), reference_level(vdb)


def medians(db: Path, level: float | None = None) -> dict[str, float]:
    """arch -> newest median ms of the NB201 models in a latency database; with ``level``, their
    ``ref_ratio`` x level instead (the measurement at the drift reference's level of another run)."""
    sys.path.insert(0, str(ROOT))
    from latency_db import LatencyDB

    out: dict[str, float] = {}
    with LatencyDB(db, read_only=True) as ldb:
        models = {m.sha256: m.arch for m in ldb.models("nb201")}
        for r in ldb.measurements():
            if r.median_ms and models.get(r.model_sha256):
                ratio = r.environment.get("ref_ratio")
                out[models[r.model_sha256]] = float(ratio) * level if level and ratio else float(r.median_ms)
    return out


def reference_level(db: Path) -> float | None:
    """The drift reference's median ms over the runs in a latency database (None without any)."""
    sys.path.insert(0, str(ROOT))
    from latency_db import LatencyDB

    with LatencyDB(db, read_only=True) as ldb:
        levels = [r["median_ms"] for r in ldb.reference_runs(device=DEVICE) if r.get("median_ms")]
    return statistics.median(levels) if levels else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", default=str(ROOT / ".hwnas" / "bench-closed-loop"), help="working folder (resumable)")
    ap.add_argument("--cells", type=int, default=50, help="cells measured to train the GNN (default 50)")
    ap.add_argument("--pct", type=float, default=30, help="budget percentile of their latencies (default 30)")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--evals", type=int, default=60)
    ap.add_argument("--strategy", default="predictor", help="search strategy (default predictor, as make run)")
    ap.add_argument("--settings", default="mean,upper,loop")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    cdir, db, pred = setup(work, args.cells, 0)
    base = medians(db)
    import numpy as np

    budget = float(np.percentile(list(base.values()), args.pct))
    print(f"budget: {budget:.3f} ms, the {args.pct:g}th percentile of {len(base)} cells measured here", flush=True)
    rows = []
    for setting in args.settings.split(","):
        for seed in range(args.seeds):
            row = search(work, setting, seed, args, cdir, db, pred, budget)
            rows.append(row)
            print(f"  {setting:5} seed {seed}: {row.get('arch') or row.get('error')} acc {row.get('accuracy')} "
                  f"extra {row.get('extra_measurements', 0)} ({row['wall_s']:.0f} s)", flush=True)  # fmt: skip
    answers = sorted({r["arch"] for r in rows if r["arch"]})
    base_level = reference_level(db)
    measured, leveled, answer_level = measure_answers(work, answers, base_level)
    if base_level and answer_level:
        print(f"drift reference: {base_level:.4f} ms in the base run, {answer_level:.4f} ms in the answers' run "
              f"({answer_level / base_level - 1:+.1%})")
    sys.path.insert(0, str(ROOT))
    from hwnas.evaluate import NB201Tabular
    from hwnas.space import NB201Space

    space, tab = NB201Space(), NB201Tabular("cifar10")

    def acc(arch: str) -> float:
        return float(tab.evaluate(space.parse(arch)).accuracy)

    feasible = {a for a, ms in measured.items() if ms <= budget} | {a for a, ms in leveled.items() if ms <= budget}
    for r in rows:  # every cell measured anywhere in the bench: the base cells, the loops' measurements
        feasible |= {a for a, ms in r.get("loop_measured", {}).items() if ms <= budget}
    feasible |= {a for a, ms in base.items() if ms <= budget}
    best_acc = max(acc(a) for a in feasible) if feasible else float("nan")
    print(f"\nbest cell feasible by measurement anywhere in the bench: {best_acc:.2f}% ({len(feasible)} feasible cells seen)")
    print(f"{'setting':8} {'feasible (re-measured)':>22} {'at base level':>13} {'confirmed':>9} {'regret pp':>18} "
          f"{'regret, base level':>18} {'extra meas.':>17} {'wall s':>7}")  # fmt: skip
    for setting in args.settings.split(","):
        rs = [r for r in rows if r["setting"] == setting]
        ok = [r for r in rs if r["arch"] and measured.get(r["arch"], float("inf")) <= budget]
        ok_level = [r for r in rs if r["arch"] and leveled.get(r["arch"], float("inf")) <= budget]
        conf = sum(bool(r.get("confirmed")) for r in rs)
        regrets = [best_acc - r["accuracy"] for r in ok]
        regrets_level = [best_acc - r["accuracy"] for r in ok_level]
        extra = [r.get("extra_measurements", 0) for r in rs]
        reg = f"{statistics.mean(regrets):.2f} (max {max(regrets):.2f})" if regrets else "-"
        reg_level = f"{statistics.mean(regrets_level):.2f} (max {max(regrets_level):.2f})" if regrets_level else "-"
        ex = f"{statistics.median(extra):.0f} (max {max(extra)})"
        print(f"{setting:8} {len(ok):>12} of {len(rs):<7} {len(ok_level):>13} {conf if setting == 'loop' else '-':>9} {reg:>18} {reg_level:>18} {ex:>17} "
              f"{statistics.median(r['wall_s'] for r in rs):>7.0f}")  # fmt: skip
    for r in rows:
        if r["setting"] == "loop" and r["arch"] and measured.get(r["arch"], 0) > budget:
            print(f"  loop seed {r['seed']}: {r['arch']} judged {r.get('judged_ms', 0):.3f} ms, re-measured "
                  f"{measured[r['arch']]:.3f} ms ({leveled.get(r['arch'], float('nan')):.3f} at the base level)")
    ratios = [measured[r["arch"]] / budget for r in rows if r["arch"] in measured]
    print(f"answers re-measured: {len(measured)}; answer latency / budget: median {statistics.median(ratios):.2f}, "
          f"max {max(ratios):.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
