"""The agent's TVM runtime: real Relax compilation (apache-tvm, installed by make test), the compiled
library cache, MetaSchedule tuning on a tiny model and the RPC path. (Target parsing and config
hashing need no TVM: tests/test_device_agent_units.py.)"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import require_module

tvm = require_module("tvm")
from device_agent.reference import PANEL_FILES  # noqa: E402
from device_agent.runtimes import tvm_rt  # noqa: E402


def _agent(*argv: str, env_cache: Path) -> tuple[int, str, str]:
    import os
    import subprocess

    env = {**os.environ, "DEVICE_AGENT_TVM_CACHE": str(env_cache)}
    p = subprocess.run([sys.executable, "-m", "device_agent", "run", *argv], capture_output=True, text=True, env=env)
    return p.returncode, p.stdout, p.stderr


def test_tvm_runtime_measures_nb201_and_caches_the_library(tmp_path: Path) -> None:
    from hwnas.cli import main as hwnas_main
    from latency_db import LatencyDB

    models = tmp_path / "models"
    assert hwnas_main(["export", "--space", "nb201", "--sample", "2", "--seed", "1", "--out", str(models)]) == 0
    db, cache = tmp_path / "l.db", tmp_path / "cache"
    flags = ["--models", str(models), "--db", str(db), "--threads", "1", "--warmup", "1", "--min-rounds", "4",
             "--max-rounds", "4", "--min-repeat-ms", "5", "--json"]  # fmt: skip
    code, out, err = _agent(*flags, "--runtime", "tvm", env_cache=cache)
    assert code == 0, err
    report = json.loads(out)
    assert report["measured"] == 2 and len(list(cache.glob("*.so"))) == 2 + len(PANEL_FILES)  # models + panel
    refs = report["references"]  # the interleaved protocol times TVM's reference panel too
    assert len(refs) == len(PANEL_FILES) and all(r["status"] == "ok" and r["rounds"] == 4 for r in refs)
    code, out, err = _agent(*flags, env_cache=cache)  # onnxruntime beside it, same DB
    assert code == 0, err
    with LatencyDB(db) as ldb:
        tv = ldb.measurements(runtime="tvm")
        ort = ldb.measurements(runtime="onnxruntime")
    assert len(tv) == 2 and len(ort) == 2
    m = tv[0]
    host = {"mcpu": tvm_rt.host_cpu()} if tvm_rt.host_cpu() else {}  # the default target names this CPU
    assert json.loads(m.config["tvm_target"]) == {"kind": "llvm", "num-cores": 1, **host} and m.config["tvm_tune_trials"] == 0
    assert m.environment["tvm_version"] == tvm.__version__ and m.environment["tvm_cache_hit"] is False
    assert m.median_ms > 0 and len(m.samples_ms) == 4 and m.environment["interval"] == "min-max"
    assert m.environment["ref_ratio"] > 0
    code, out, err = _agent(*flags, "--runtime", "tvm", env_cache=cache)  # measured already: skipped
    assert code == 0 and json.loads(out)["skipped"] == 2
    code, out, err = _agent(*flags, "--runtime", "tvm", "--force", env_cache=cache)
    with LatencyDB(db) as ldb:
        again = ldb.measurements(runtime="tvm")[-1]
    assert code == 0 and again.environment["tvm_cache_hit"] is True and "compile_s" not in again.environment


def test_tvm_flags_refused_without_tvm_runtime(tmp_path: Path) -> None:
    (tmp_path / "m.onnx").write_bytes(b"x")
    code, _, err = _agent("--models", str(tmp_path), "--db", str(tmp_path / "d.db"), "--tvm-tune-trials", "4",
                          env_cache=tmp_path)
    assert code == 2 and "need --runtime tvm" in err
    code, _, err = _agent("--models", str(tmp_path), "--db", str(tmp_path / "d.db"), "--runtime", "tvm",
                          "--tvm-target", "llvm -mcpu=skylake", env_cache=tmp_path)
    assert code == 2 and "JSON object" in err and "\n" not in err.strip()


def test_metaschedule_tuning_on_a_tiny_model(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((8, 8, 3, 3)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 8, 8])], [w])
    models = tmp_path / "m"
    models.mkdir()
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(models / "conv.onnx"))
    code, out, err = _agent("--models", str(models), "--db", str(tmp_path / "t.db"), "--runtime", "tvm", "--threads",
                            "1", "--warmup", "1", "--min-rounds", "3", "--max-rounds", "3", "--min-repeat-ms", "2", "--tvm-tune-trials", "2",
                            "--timeout-s", "600", "--json", env_cache=tmp_path / "c")  # fmt: skip
    assert code == 0, err
    from latency_db import LatencyDB

    from latency_db.records import REFERENCE_SPACE

    with LatencyDB(tmp_path / "t.db") as ldb:
        (m,) = ldb.measurements()
        refs = ldb.measurements(space=REFERENCE_SPACE)
    assert m.config["tvm_tune_trials"] == 2 and m.environment["compile_s"] > 0 and m.median_ms > 0
    assert m.environment["tvm_tune_trials"] == 2
    # the drift panel is compiled untuned (it measures the machine), but its rows group with the run
    assert len(refs) == len(PANEL_FILES) and all(r.environment["tvm_tune_trials"] == 0 for r in refs)
    assert {r.config_hash for r in refs} == {m.config_hash}


def test_tvm_rpc_server_path(tmp_path: Path) -> None:
    """A real TVM RPC server on 127.0.0.1 stands for a board: compile here, upload, time there."""
    import socket
    import subprocess
    import time

    from hwnas.cli import main as hwnas_main
    from hwnas.remote.local_sshd import free_port
    from latency_db import LatencyDB

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "tvm.exec.rpc_server", "--host", "127.0.0.1", "--port", str(port),
                               "--port-end", str(port + 1)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        models = tmp_path / "models"
        assert hwnas_main(["export", "--space", "nb201", "--sample", "1", "--seed", "2", "--out", str(models)]) == 0
        flags = ["--models", str(models), "--db", str(tmp_path / "r.db"), "--runtime", "tvm", "--threads", "1",
                 "--warmup", "1", "--min-rounds", "3", "--max-rounds", "3", "--min-repeat-ms", "5"]  # fmt: skip
        code, _, err = _agent(*flags, "--tvm-rpc", f"127.0.0.1:{port}", env_cache=tmp_path / "c")
        assert code == 2 and "needs --device-name" in err
        code, _, err = _agent(*flags, "--tvm-rpc", f"127.0.0.1:{port}", "--device-name", "board-rpc",
                              env_cache=tmp_path / "c")  # fmt: skip
        assert code == 0, err
        with LatencyDB(tmp_path / "r.db") as ldb:
            (m,) = ldb.measurements(device="board-rpc")
        assert m.environment["tvm_rpc"] == f"127.0.0.1:{port}" and m.median_ms > 0 and m.number >= 1
        # the reference panel shares the model's one session (an rpc_server serves one at a time)
        assert m.environment["ref_ratio"] > 0
        code, _, err = _agent(*flags, "--tvm-rpc", "nowhere", "--device-name", "b", env_cache=tmp_path / "c")
        assert code == 2 and "HOST:PORT" in err
    finally:
        server.terminate()
        server.wait(10)
