"""Several trials in flight: the study's parallel loop, the local process pool (--workers), a worker
killed mid-evaluation, and the driver killed mid-search."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from concurrent.futures import Future
from pathlib import Path

import pytest

from hwnas.cli.setup import evaluator_spec
from hwnas.executors import EvaluatorSpec, InProcessExecutor, LocalPoolExecutor, then
from hwnas.space import NB201Space
from hwnas.strategy import RandomSearch
from hwnas.study import Study, TrialState


def _search(db: Path, *extra: str) -> dict:
    from hwnas.cli import main as hwnas_main

    argv = ["search", "--space", "nb201", "--strategy", "random", "--evaluator", "tabular", "--latency-source",
            "db", "--device", "toy", "--db", str(db), "--budget-evals", "10", "--seed", "3", "--latency-budget-ms",
            "5", "--json", *extra]  # fmt: skip
    assert hwnas_main(argv) == 0
    return json.loads((Path(argv[argv.index("--out") + 1]) / "result.json").read_text())


def test_same_seeded_search_in_process_and_with_two_workers(tmp_path: Path, toy_db: Path, capsys) -> None:
    seq = _search(toy_db, "--out", str(tmp_path / "seq"))
    par = _search(toy_db, "--out", str(tmp_path / "par"), "--workers", "2")
    capsys.readouterr()
    key = lambda r: sorted((t["arch"], t["state"], t.get("accuracy")) for t in r["trials"])  # noqa: E731
    assert len(seq["trials"]) == len(par["trials"]) == 10
    assert key(seq) == key(par)  # random search asks the same archs whatever the order of tells
    assert [t["number"] for t in par["trials"]] == list(range(1, 11))  # each trial recorded once
    assert par["best"]["arch"] == seq["best"]["arch"]


def _proxy_spec() -> EvaluatorSpec:
    args = argparse.Namespace(evaluator="proxy", dataset=None, epochs=1, subsample=0.5, resolution=None,
                              channels=None, cells=None, train_device="cpu", seed=0, proxy="synflow")  # fmt: skip
    return evaluator_spec(args, "nb201")


def _submit_with(executor) -> object:
    return lambda arch: then(executor.submit(arch.spec), lambda m: ({"accuracy": m["accuracy"]}, m["accuracy"]))


def test_worker_killed_mid_evaluation_is_retried_and_nothing_is_lost(tmp_path: Path) -> None:
    executor = LocalPoolExecutor(_proxy_spec(), workers=2)
    killed: list[int] = []

    def on_trial(trial) -> None:
        if not killed:  # after the first result, kill a worker that is busy with the next trial
            pids = executor.worker_pids()
            assert pids
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    try:
        with Study(tmp_path / "s.db", RandomSearch(NB201Space(), seed=1)) as study:
            study.optimize_parallel(_submit_with(executor), 6, in_flight=2, on_trial=on_trial,
                                    lost=executor.lost, restart=executor.restart)  # fmt: skip
            trials = study.trials()
    finally:
        executor.close()
    assert killed and executor.restarts >= 1
    assert len(trials) == 6 and [t.number for t in trials] == list(range(1, 7))
    assert all(t.state == TrialState.COMPLETE and t.score is not None for t in trials), trials


def test_failures_and_lost_workers_past_retries_are_recorded(tmp_path: Path) -> None:
    class Boom:
        def evaluate(self, arch):
            raise RuntimeError("no GPU memory")

    ex = InProcessExecutor(NB201Space(), Boom())
    with Study(tmp_path / "f.db", RandomSearch(NB201Space(), seed=0)) as study:
        study.optimize_parallel(_submit_with(ex), 3, in_flight=2)
        assert {t.state for t in study.trials()} == {TrialState.FAILED}
        assert study.trials()[0].error == "no GPU memory"

    def always_lost(arch) -> Future:
        f: Future = Future()
        f.set_exception(OSError("worker died"))
        return f

    restarts: list[int] = []
    with Study(tmp_path / "l.db", RandomSearch(NB201Space(), seed=0)) as study:
        study.optimize_parallel(always_lost, 2, in_flight=2, lost=lambda e: isinstance(e, OSError),
                                restart=lambda: restarts.append(1), max_retries=2)  # fmt: skip
        assert [t.error for t in study.trials()] == ["worker lost", "worker lost"] and len(restarts) == 4
    with pytest.raises(ValueError, match="in_flight"):
        Study(tmp_path / "x.db", RandomSearch(NB201Space(), seed=0)).optimize_parallel(always_lost, 1, in_flight=0)


def test_driver_killed_mid_search_resumes_without_loss(tmp_path: Path, toy_db: Path, kill_mid_search) -> None:
    db = toy_db
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "hwnas.cli", "search", "--space", "nb201", "--strategy", "evolution", "--evaluator",
            "proxy", "--epochs", "1", "--subsample", "0.3", "--threads", "1", "--latency-source", "db",
            "--device", "toy", "--db", str(db), "--budget-evals", "8", "--seed", "0", "--workers", "2",
            "--out", str(out), "--json"]  # fmt: skip
    done, before = kill_mid_search(argv, out)
    assert 3 <= done < 8
    rerun = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    result = json.loads((out / "result.json").read_text())
    assert len(result["trials"]) == 8 and all(t["state"] != "pending" for t in result["trials"])
    after = {t["number"]: (t["arch"], t["state"], t["score"]) for t in result["trials"]}
    for number, arch, state, score in before:  # nothing recorded before the kill changed or was redone
        assert after[number] == (arch, state, score)


def test_codesign_with_two_workers_records_every_trial_once(tmp_path: Path, capsys) -> None:
    from hwnas.cli import main as hwnas_main

    def run(out: Path, *extra: str) -> dict:
        argv = ["codesign", "--strategy", "random", "--mode", "nested", "--budget-evals", "6", "--seed", "4",
                "--area-budget-mm2", "10", "--out", str(out), "--json", *extra]  # fmt: skip
        assert hwnas_main(argv) == 0
        return json.loads((out / "result.json").read_text())

    seq, par = run(tmp_path / "seq"), run(tmp_path / "par", "--workers", "2")
    capsys.readouterr()
    key = lambda r: sorted((t["arch"], t.get("hw_key"), t.get("accuracy")) for t in r["trials"])  # noqa: E731
    assert key(seq) == key(par) and [t["number"] for t in par["trials"]] == list(range(1, 7))


def test_measure_gate_waits_for_every_evaluation_in_flight() -> None:
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from hwnas.executors import MeasureGate

    gate, release = MeasureGate(), threading.Event()
    with ThreadPoolExecutor(2) as pool:
        futs = [gate.track(pool.submit(release.wait, 10)) for _ in range(2)]
        threading.Timer(0.3, release.set).start()
        t0 = time.perf_counter()
        gate.quiesce()
        assert all(f.done() for f in futs) and time.perf_counter() - t0 >= 0.25 and gate.pauses == 1
    gate.quiesce()  # nothing in flight: no wait, no pause counted
    assert gate.pauses == 1


def test_measured_latency_never_overlaps_an_evaluation_in_a_pool_of_two(tmp_path: Path, capsys) -> None:
    """With 2 local workers training candidates, each measurement on this machine first waits until
    no training runs (the gate is the only way the driver measures; its waits are counted)."""
    from hwnas.cli import main as hwnas_main

    out, db = tmp_path / "run", tmp_path / "lat.db"
    argv = ["search", "--strategy", "random", "--evaluator", "proxy", "--epochs", "1", "--subsample", "0.1", "--threads",
            "1", "--latency-source", "measured", "--db", str(db), "--latency-budget-ms", "1000", "--budget-evals", "3",
            "--seed", "1", "--workers", "2", "--out", str(out), "--json"]  # fmt: skip
    assert hwnas_main(argv) == 0, capsys.readouterr().err
    result = json.loads((out / "result.json").read_text())
    assert len(result["trials"]) == 3 and result["failed"] == 0
    assert result["measurement_pauses"] >= 1  # at least one measurement found a training running and waited
