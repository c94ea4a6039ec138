"""Evaluations on a real local Ray cluster (``ray start --head`` on this machine; ray is installed by
make test): the same seeded search as in-process, and a Ray worker killed mid-evaluation."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import require, require_module

ray = require_module("ray")

from hwnas.remote.local_sshd import free_port  # noqa: E402

RAY = str(Path(sys.executable).parent / "ray")


@pytest.fixture(scope="module")
def ray_address(tmp_path_factory: pytest.TempPathFactory):
    port = free_port()
    # a throwaway cluster on this machine: no auth token (Ray writes one to the home folder otherwise)
    saved = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    start = subprocess.run([RAY, "start", "--head", f"--port={port}", "--num-cpus=2",
                            "--include-dashboard=false", "--disable-usage-stats"], capture_output=True, text=True,
                           env=env, timeout=180)  # fmt: skip
    if start.returncode != 0:
        require("ray", f"ray start failed: {start.stderr[-300:]}")
    from ray.util import get_node_ip_address

    yield f"{get_node_ip_address()}:{port}"  # Ray rewrites 127.0.0.1 to this address anyway
    subprocess.run([RAY, "stop", "--force"], capture_output=True, timeout=120)
    if saved is None:
        os.environ.pop("RAY_AUTH_MODE", None)
    else:
        os.environ["RAY_AUTH_MODE"] = saved


def test_same_seeded_search_on_ray(tmp_path: Path, toy_db: Path, ray_address: str, capsys) -> None:
    from hwnas.cli import main as hwnas_main

    def run(out: Path, *extra: str) -> dict:
        argv = ["search", "--space", "nb201", "--strategy", "random", "--evaluator", "tabular", "--latency-source",
                "db", "--device", "toy", "--db", str(toy_db), "--budget-evals", "8", "--seed", "5",
                "--latency-budget-ms", "5", "--out", str(out), "--json", *extra]  # fmt: skip
        assert hwnas_main(argv) == 0
        return json.loads((out / "result.json").read_text())

    seq, par = run(tmp_path / "seq"), run(tmp_path / "ray", "--ray-address", ray_address)
    capsys.readouterr()
    key = lambda r: sorted((t["arch"], t["state"], t.get("accuracy")) for t in r["trials"])  # noqa: E731
    assert key(seq) == key(par) and [t["number"] for t in par["trials"]] == list(range(1, 9))


def test_ray_worker_killed_mid_evaluation_loses_nothing(tmp_path: Path, ray_address: str) -> None:
    import argparse
    from hwnas.cli.setup import evaluator_spec
    from hwnas.executors import RayExecutor, then
    from hwnas.space import NB201Space
    from hwnas.strategy import RandomSearch
    from hwnas.study import Study, TrialState

    args = argparse.Namespace(evaluator="proxy", dataset=None, epochs=2, subsample=0.5, resolution=None,
                              channels=None, cells=None, train_device="cpu", seed=0, proxy="synflow")  # fmt: skip
    ex = RayExecutor(evaluator_spec(args, "nb201"), ray_address)
    killed: list[str] = []

    def submit(arch):
        return then(ex.submit(arch.spec), lambda m: ({"accuracy": m["accuracy"]}, m["accuracy"]))

    first_done = threading.Event()

    def killer() -> None:  # once a trial has finished, kill the Ray worker running the next one
        first_done.wait(120)
        for _ in range(400):
            pids = subprocess.run(["pgrep", "-f", "ray::_evaluate_in_ray"], capture_output=True, text=True).stdout.split()
            if pids:
                os.kill(int(pids[0]), signal.SIGKILL)
                killed.append(pids[0])
                return
            time.sleep(0.05)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()

    def on_trial(trial) -> None:
        first_done.set()

    try:
        with Study(tmp_path / "s.db", RandomSearch(NB201Space(), seed=2)) as study:
            study.optimize_parallel(submit, 6, in_flight=ex.workers, on_trial=on_trial, lost=ex.lost, restart=ex.restart)
            trials = study.trials()
    finally:
        ex.close()
    thread.join(1)
    assert len(killed) == 1  # a worker was killed mid-evaluation
    assert [t.number for t in trials] == list(range(1, 7))
    assert all(t.state == TrialState.COMPLETE for t in trials), [(t.state, t.error) for t in trials]


def test_driver_killed_mid_search_on_ray_resumes(tmp_path: Path, toy_db: Path, ray_address: str,
                                                 kill_mid_search) -> None:
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "hwnas.cli", "search", "--space", "nb201", "--strategy", "evolution", "--evaluator",
            "proxy", "--epochs", "1", "--subsample", "0.3", "--threads", "1", "--latency-source", "db", "--device", "toy",
            "--db", str(toy_db), "--budget-evals", "8", "--seed", "0", "--ray-address", ray_address, "--out", str(out),
            "--json"]  # fmt: skip
    done, before = kill_mid_search(argv, out)
    assert 3 <= done < 8
    rerun = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-500:]
    trials = json.loads((out / "result.json").read_text())["trials"]
    assert len(trials) == 8 and all(t["state"] != "pending" for t in trials)
    after = {t["number"]: (t["arch"], t["state"], t["score"]) for t in trials}
    assert all(after[n] == (a, s, sc) for n, a, s, sc in before)
