"""The shared TVM tuning database (device_agent/tvm_tune.py): tasks deduplicated across models, a
real (tiny) MetaSchedule tuning, a never-tuned model compiled against the database with its hash in
the config, corrupt and foreign databases refused in one line, the host's target by default."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import require_module

tvm = require_module("tvm")
from device_agent import tvm_tune  # noqa: E402
from device_agent.protocol import MeasureConfig  # noqa: E402
from device_agent.runtimes import tvm_rt  # noqa: E402


def conv_model(path: Path, epilogue: str, cout: int = 8, seed: int = 0) -> Path:
    """A 1x8x8x8 input through a 3x3 conv (8 -> ``cout``) and ``relu`` or a bias ``add``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    inits = [numpy_helper.from_array(rng.standard_normal((cout, 8, 3, 3)).astype(np.float32), "w")]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1])]
    if epilogue == "relu":
        nodes.append(helper.make_node("Relu", ["c"], ["y"]))
    else:
        inits.append(numpy_helper.from_array(rng.standard_normal((1, cout, 1, 1)).astype(np.float32), "b"))
        nodes.append(helper.make_node("Add", ["c", "b"], ["y"]))
    graph = helper.make_graph(nodes, path.stem, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, cout, 8, 8])], inits)  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


def _agent(*argv: str, cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DEVICE_AGENT_TVM_CACHE": str(cache)}
    return subprocess.run([sys.executable, "-m", "device_agent", *argv], capture_output=True, text=True, env=env)


def _host_target() -> str:
    return tvm_rt.canonical_target(MeasureConfig(runtime="tvm", threads=1))


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A database tuned (2 trials) on one conv+relu model, for the host's target with 1 core."""
    root = tmp_path_factory.mktemp("tvmdb")
    conv_model(root / "tune" / "a.onnx", "relu")
    p = _agent("tvm-tune", "--models", str(root / "tune"), "--db", str(root / "db"), "--trials-per-task", "2",
               "--threads", "1", "--jobs", "1", "--json", cache=root / "cache")  # fmt: skip
    assert p.returncode == 0, p.stderr
    return {"root": root, "db": root / "db", "manifest": json.loads(p.stdout), "cache": root / "cache"}


def test_identical_workloads_from_two_models_dedupe_to_one_task(tmp_path: Path) -> None:
    target = tvm.target.Target(json.loads(_host_target()))
    paths = [conv_model(tmp_path / "a.onnx", "relu", seed=0), conv_model(tmp_path / "b.onnx", "add", seed=1),
             conv_model(tmp_path / "c.onnx", "relu", cout=16, seed=2)]  # fmt: skip
    per_model = [tvm_tune.model_tasks(p, target) for p in paths]
    assert [len(t) for t in per_model] == [1, 1, 1]
    tasks = tvm_tune.dedupe(per_model)
    # a's conv+relu and b's conv+add (other weights, other epilogue) are one workload; c's wider conv is another
    assert [(t.weight, t.models) for t in tasks] == [(2, 2), (1, 1)]
    assert tvm_tune.dedupe([per_model[0], per_model[0]])[0].weight == 2


def test_tune_writes_a_database_with_manifest_and_skips_what_it_holds(tuned: dict, tmp_path: Path) -> None:
    m = tuned["manifest"]
    assert m["format"] == tvm_tune.FORMAT and m["target"] == json.loads(_host_target())
    assert m["tvm_version"] == tvm.__version__ and m["module_equality"] == "anchor-block"
    assert m["runs"][-1]["unique_tasks"] == 1 and m["runs"][-1]["tuned_tasks"] == 1 and m["workloads"] == 1
    assert m["tasks_without_record"] == 0
    assert tvm_tune.read_db(tuned["db"]).content_sha256 == m["content_sha256"]
    db = tmp_path / "db"
    shutil.copytree(tuned["db"], db)
    conv_model(tmp_path / "other" / "b.onnx", "add", seed=5)  # the same conv, never tuned: nothing to do
    p = _agent("tvm-tune", "--models", str(tmp_path / "other"), "--db", str(db), "--trials-per-task", "2", "--threads",
               "1", "--json", cache=tuned["cache"])  # fmt: skip
    assert p.returncode == 0, p.stderr
    again = json.loads(p.stdout)
    assert again["runs"][-1]["tuned_tasks"] == 0 and len(again["runs"]) == 2
    assert again["content_sha256"] == m["content_sha256"]


def test_untuned_candidate_compiles_against_the_database_and_records_its_hash(tuned: dict, tmp_path: Path) -> None:
    from latency_db import LatencyDB

    models = tmp_path / "m"
    conv_model(models / "b.onnx", "add", seed=3)  # never tuned: its conv matches a's through the anchor block
    flags = ["run", "--models", str(models), "--db", str(tmp_path / "l.db"), "--runtime", "tvm", "--threads", "1",
             "--warmup", "1", "--min-rounds", "3", "--max-rounds", "3", "--min-repeat-ms", "2", "--json"]  # fmt: skip
    p = _agent(*flags, "--tvm-db", str(tuned["db"]), cache=tuned["cache"])
    assert p.returncode == 0, p.stderr
    p = _agent(*flags, cache=tuned["cache"])  # untuned beside it: another config, not skipped
    assert p.returncode == 0 and json.loads(p.stdout)["measured"] == 1, p.stderr
    with LatencyDB(tmp_path / "l.db") as ldb:
        rows = ldb.measurements(runtime="tvm")
    with_db = [r for r in rows if r.config.get("tvm_db")]
    without = [r for r in rows if not r.config.get("tvm_db")]
    assert len(with_db) == 1 and len(without) == 1 and with_db[0].config_hash != without[0].config_hash
    (r,) = with_db
    assert r.config["tvm_db"] == tuned["manifest"]["content_sha256"] == r.environment["tvm_db"]
    assert json.loads(r.config["tvm_target"]) == tuned["manifest"]["target"] and r.median_ms > 0
    assert (tuned["cache"] / "db" / r.config["tvm_db"]).is_dir()


def test_corrupt_or_foreign_database_refused_in_one_line(tuned: dict, tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    conv_model(tmp_path / "m" / "a.onnx", "relu")

    def refused(db: Path, *extra: str) -> str:  # through the command line: exit 2, one line
        p = _agent("run", "--models", str(tmp_path / "m"), "--db", str(tmp_path / "l.db"), "--runtime", "tvm", "--threads",
                   "1", "--tvm-db", str(db), *extra, cache=tmp_path / "c")  # fmt: skip
        assert p.returncode == 2 and p.stderr.count("\n") == 1, p.stderr
        return p.stderr

    def refusal(db: Path, target: str = "") -> str:  # the same check in this process
        with pytest.raises(tvm_tune.DatabaseError) as info:
            tvm_tune.use_db(db, target or _host_target())
        assert "\n" not in str(info.value)
        return str(info.value)

    def copy(name: str) -> Path:
        return Path(shutil.copytree(tuned["db"], tmp_path / name))

    # foreign: another CPU named in the target, or a generic target, or another TVM version
    err = refused(tuned["db"], "--tvm-target", '{"kind": "llvm", "mcpu": "cortex-a72", "num-cores": 1}')
    assert "tuned for another target: mcpu" in err and "'cortex-a72'" in err
    assert "tuned for another target" in refusal(tuned["db"], '{"kind":"llvm","num-cores":1}')
    old = copy("old")
    manifest = json.loads((old / "manifest.json").read_text())
    (old / "manifest.json").write_text(json.dumps({**manifest, "tvm_version": "0.1.0"}))
    assert "TVM 0.1.0" in refusal(old)
    # corrupt: a record file cut short, a file missing, a manifest that is not JSON, content edited
    cut = copy("cut")
    rec = cut / "database_tuning_record.json"
    rec.write_bytes(rec.read_bytes()[: len(rec.read_bytes()) // 2])
    assert "database_tuning_record.json is corrupt" in refused(cut)
    gone = copy("gone")
    (gone / "database_workload.json").unlink()
    assert "database_workload.json is missing" in refusal(gone)
    bad = copy("bad")
    (bad / "manifest.json").write_text("{")
    assert "manifest.json is corrupt" in refusal(bad)
    edited = copy("edited")
    (edited / "database_tuning_record.json").write_text("")
    assert "do not match manifest.json" in refusal(edited)
    assert "no manifest.json" in refusal(tmp_path / "m")
    assert "no such folder" in refusal(tmp_path / "nowhere")


def test_default_target_names_the_host_cpu_and_db_hash_enters_the_config_hash() -> None:
    host = json.loads(tvm_rt.canonical_target(MeasureConfig(runtime="tvm", threads=2)))
    assert host == {"kind": "llvm", "num-cores": 2, **({"mcpu": tvm_rt.host_cpu()} if tvm_rt.host_cpu() else {})}
    rpc = json.loads(tvm_rt.canonical_target(MeasureConfig(runtime="tvm", threads=2, tvm_rpc="board:9090")))
    assert "mcpu" not in rpc  # the board's CPU is not this one
    given = '{"kind": "llvm", "num-cores": 1}'
    assert json.loads(tvm_rt.canonical_target(MeasureConfig(runtime="tvm", tvm_target=given))) == json.loads(given)
    base = MeasureConfig(runtime="tvm", tvm_target='{"kind":"llvm"}')
    with_db = MeasureConfig(runtime="tvm", tvm_target='{"kind":"llvm"}', tvm_db="a" * 64)
    assert base.config_hash() != with_db.config_hash()
    assert MeasureConfig(runtime="onnxruntime", tvm_db="").config_hash() == MeasureConfig().config_hash()
    with pytest.raises(ValueError, match="tvm_db"):
        MeasureConfig(runtime="tvm", tvm_db="not-a-hash").validate()


def test_hwnas_tvm_tune_refuses_bad_usage_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from hwnas.cli import main as hwnas_main

    assert hwnas_main(["tvm", "tune", "--out", str(tmp_path / "db")]) == 2
    assert "--space S --sample N" in capsys.readouterr().err
    (tmp_path / "m").mkdir()
    assert hwnas_main(["tvm", "tune", "--models", str(tmp_path / "m"), "--out", str(tmp_path / "db")]) == 2
    err = capsys.readouterr().err
    assert "no .onnx files" in err and err.count("\n") == 1


def test_profile_ships_the_database_to_the_device(tuned: dict, tmp_path: Path) -> None:
    """``hwnas profile --tvm-db`` over a real OpenSSH server on 127.0.0.1 (this machine is the
    device): the folder is uploaded, the agent there compiles against its copy, the hash comes back."""
    from conftest import require, sshd_or_require

    from hwnas.cli import main as hwnas_main
    from hwnas.remote.local_sshd import make_key, start_sshd
    from latency_db import LatencyDB

    sshd_or_require()
    key = make_key(tmp_path / "client_key")
    try:
        proc, port = start_sshd(tmp_path / "sshd", key.with_suffix(".pub").read_text())
    except RuntimeError as exc:
        require("sshd", str(exc))
    try:
        conv_model(tmp_path / "models" / "b.onnx", "add", seed=4)
        argv = ["profile", "--host", f"127.0.0.1:{port}", "--identity", str(key), "--known-hosts", str(tmp_path / "kh"),
                "--accept-new-host-key", "--no-install", "--python", sys.executable, "--remote-dir", str(tmp_path / "dev"),
                "--models", str(tmp_path / "models"), "--db", str(tmp_path / "h.db"), "--runtime", "tvm", "--threads", "1",
                "--tvm-db", str(tuned["db"]), "--warmup", "1", "--min-rounds", "3", "--max-rounds", "3",
                "--min-repeat-ms", "2", "--json"]  # fmt: skip
        assert hwnas_main(argv) == 0
        assert (tmp_path / "dev" / "tvm-db" / "db" / "manifest.json").is_file()
        with LatencyDB(tmp_path / "h.db") as db:
            (m,) = db.measurements(runtime="tvm")
        assert m.config["tvm_db"] == tuned["manifest"]["content_sha256"]
        corrupt = Path(shutil.copytree(tuned["db"], tmp_path / "bad"))
        (corrupt / "database_workload.json").unlink()
        assert hwnas_main([*argv[:-1], "--tvm-db", str(corrupt)]) == 2  # refused here, before connecting
    finally:
        proc.terminate()
        proc.wait(5)
