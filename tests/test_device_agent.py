"""Tests of the device agent on real models: sessions, guarded runner, CLI into a real LatencyDB.

Models are tiny real ONNX files committed under tests/fixtures/onnx (no onnx, no torch needed:
``make test`` also runs this file in the agent-only environment). The suite keeps the protocol short (warmup 1, repeats 3, min-repeat-ms 1) so it runs in seconds on two cores.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import default_sigint

from device_agent import PROTOCOL_VERSION, __version__
from device_agent.cli import main
from device_agent.fingerprint import device_fingerprint, device_id
from device_agent.models import discover_models, sha256_file
from device_agent.protocol import MeasureConfig, MeasureResult
from device_agent.runner import Runner
from device_agent.runtimes import measure_file, resolve_config
from device_agent.runtimes.ort import calibrate_number, make_session, time_model
from latency_db import LatencyDB, Status

ROOT = Path(__file__).resolve().parent.parent
HAS_ONNX = importlib.util.find_spec("onnx") is not None  # graph summaries need it; the agent does not
FAST = ["--warmup", "1", "--repeats", "3", "--min-repeat-ms", "1", "--min-rounds", "3", "--max-rounds", "3"]
FAST_CONFIG = MeasureConfig(warmup=1, repeats=3, min_repeat_ms=1.0, timeout_s=30.0, min_rounds=3, max_rounds=3)


# -- tiny real models ------------------------------------------------------------------------------
# Committed files (tests/fixtures/onnx, written by its make_fixtures.py), so these tests run in the
# agent-only environment (numpy + onnxruntime, no onnx, no torch: make test-agent).

FIXTURES = ROOT / "tests" / "fixtures" / "onnx"


def _copy(name: str, path: Path) -> Path:
    shutil.copyfile(FIXTURES / name, path)
    return path


def conv_relu(path: Path) -> Path:
    """Conv 3->8, 3x3, then Relu, on a 1x3x32x32 input."""
    return _copy("conv_relu.onnx", path)


def matmul(path: Path) -> Path:
    """x[N, 64] @ ones(64, 64) (a symbolic dim, set to 1)."""
    return _copy("matmul.onnx", path)


def slow_chain(path: Path) -> Path:
    """~100 x 2 GFLOP per call: a 1024x1024 input multiplied by itself 100 times."""
    return _copy("slow_chain.onnx", path)


def corrupt(path: Path) -> Path:
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 300, dtype=np.uint8).tobytes())
    return path


@pytest.fixture()
def good_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    conv_relu(folder / "a_conv.onnx")
    matmul(folder / "b_mm.onnx")
    return folder


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err

# -- protocol on a real session --------------------------------------------------------------------


def test_protocol_on_a_real_session(tmp_path: Path) -> None:
    cfg = MeasureConfig(warmup=10, repeats=5, min_repeat_ms=3.0, threads=1)
    session, feeds = make_session(matmul(tmp_path / "mm.onnx"), cfg)
    assert feeds["x"].shape == (1, 64) and feeds["x"].dtype == np.float32  # symbolic dim -> 1
    _, feeds2 = make_session(tmp_path / "mm.onnx", cfg)
    assert np.array_equal(feeds["x"], feeds2["x"])  # deterministic inputs
    for _attempt in range(3):  # a shared CI machine can slow calibration down; retry then fail
        samples, number = time_model(session, feeds, cfg)
        assert len(samples) == cfg.repeats and number > 1  # a 64x64 MatMul is far below 3 ms
        if all(s * number >= cfg.min_repeat_ms for s in samples):
            break
    else:
        pytest.fail(f"repeats shorter than --min-repeat-ms: number={number}, samples={samples}")

    def slow_call(_outputs: object, _feeds: object) -> None:
        end = time.perf_counter_ns() + 3_000_000
        while time.perf_counter_ns() < end:
            pass

    assert calibrate_number(slow_call, {}, min_repeat_ms=1.0) == 1  # one call already long enough


def test_measure_file_in_process(tmp_path: Path) -> None:
    ok = measure_file(conv_relu(tmp_path / "c.onnx"), FAST_CONFIG)
    assert ok.ok and len(ok.samples_ms) == 3 and ok.stats is not None and ok.number >= 1
    assert ok.environment["session_providers"][0] == "CPUExecutionProvider"
    assert MeasureResult.from_dict(json.loads(json.dumps(ok.to_dict()))) == ok
    bad = measure_file(corrupt(tmp_path / "bad.onnx"), FAST_CONFIG)
    assert bad.status is Status.ERROR and "\n" not in bad.error and "load failed" in bad.error


# -- models and info -------------------------------------------------------------------------------


def test_discover_models_with_manifest(good_dir: Path) -> None:
    conv_sha = sha256_file(good_dir / "a_conv.onnx")
    lines = [
        {"key": "a_conv", "arch": "|nor_conv_3x3~0|", "space": "nb201", "flops": 1234,
         "params": 216, "input_shape": [1, 3, 32, 32], "sha256": conv_sha},
        {"file": "b_mm.onnx", "arch": "stale", "space": "nb201", "sha256": "0" * 64},
    ]
    text = "\n".join(json.dumps(x) for x in lines) + "\n"
    (good_dir / "manifest.jsonl").write_text(text)
    warnings: list[str] = []
    models = discover_models(good_dir, warn=warnings.append)
    assert [m.key for m in models] == ["a_conv", "b_mm"]
    conv, mm = models
    assert (conv.sha256, conv.arch) == (conv_sha, "|nor_conv_3x3~0|")
    assert (conv.record.space, conv.record.flops, conv.record.params) == ("nb201", 1234, 216)
    assert conv.record.input_shape == (1, 3, 32, 32)
    if HAS_ONNX:
        assert conv.record.graph_summary["op_counts"] == {"Conv": 1, "Relu": 1}
        assert conv.record.graph_summary["node_count"] == 2 and conv.record.graph_summary["opset"] == 17
    else:  # the agent-only environment: no graph summary, the rest as usual
        assert conv.record.graph_summary is None
    assert mm.arch is None and mm.record.space is None  # hash mismatch: file wins, metadata ignored
    assert any("b_mm.onnx" in w and "does not match" in w for w in warnings)
    single = discover_models(good_dir / "b_mm.onnx", warn=warnings.append)  # one file is fine
    assert [m.key for m in single] == ["b_mm"]
    (good_dir / "manifest.jsonl").write_text(text + "not json\n")  # a malformed line: refused, naming it
    with pytest.raises(ValueError, match=r"manifest.jsonl:3: not valid JSON"):
        discover_models(good_dir, warn=warnings.append)
    (good_dir / "manifest.jsonl").write_text(text)

def test_info_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["info", "--json", "--device-name", "x1"], capsys)
    data = json.loads(out)
    assert code == 0 and data["protocol_version"] == PROTOCOL_VERSION
    assert data["agent_version"] == __version__
    assert data["device_id"] == device_id(device_fingerprint("x1"))
    assert data["runtimes"]["onnxruntime"]["version"]


# -- CLI -------------------------------------------------------------------------------------------


def test_cli_run_resume_and_force(good_dir: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    db_path = tmp_path / "out" / "lat.db"
    argv = ["run", "--models", str(good_dir), "--db", str(db_path), "--device-name", "t", *FAST]
    code, out, err = _run(argv, capsys)
    assert code == 0, err
    assert "a_conv" in out and "b_mm" in out and "measured 2, skipped 0, failed 0" in out
    did = device_id(device_fingerprint("t"))
    with LatencyDB(db_path) as db:
        rows = db.measurements(device=did)
        assert len(rows) == 2 and all(r.status is Status.OK for r in rows)
        r = rows[0]
        assert len(r.samples_ms) == 3 and r.ci_low_ms <= r.median_ms <= r.ci_high_ms
        assert r.config_hash == resolve_config(FAST_CONFIG).config_hash()
        assert r.config["repeats"] == 3 and r.number >= 1
        assert r.source == "agent" and r.agent_version == __version__ and r.created_at.endswith("Z")
        assert "temperature_before_c" in r.environment and "onnxruntime_version" in r.environment
        assert db.device(did).name == "t"
        summary = db.model(sha256_file(good_dir / "a_conv.onnx")).graph_summary
        assert summary["node_count"] == 2 if HAS_ONNX else summary is None

    code, out, _ = _run([*argv, "--json"], capsys)
    data = json.loads(out)
    assert code == 0 and (data["measured"], data["skipped"], data["failed"]) == (0, 2, 0)
    assert data["device_id"] == did and data["config"]["repeats"] == 3
    assert {r["status"] for r in data["results"]} == {"skipped"}

    code, out, _ = _run([*argv, "--json", "--force"], capsys)
    data = json.loads(out)
    assert code == 0 and (data["measured"], data["skipped"]) == (2, 0)
    assert all(r["median_ms"] > 0 and r["error"] is None for r in data["results"])
    keys = {"file", "key", "arch", "sha256", "status", "median_ms", "p90_ms", "error"}
    assert keys <= set(data["results"][0])
    with LatencyDB(db_path) as db:
        assert len(db.measurements(device=did)) == 4  # append-only


@pytest.mark.parametrize("extra, needle", [
    (["--models", "{tmp}/missing"], "--models"),
    (["--models", "{tmp}/empty"], "no .onnx files"),
    (["--models", "{tmp}/notes.txt"], "not a folder or an .onnx file"),
    (["--models", "{good}", "--repeats", "0"], "--repeats"),
    (["--models", "{good}", "--repeats", "-3"], "--repeats"),
    (["--models", "{good}", "--warmup", "-1"], "--warmup"),
    (["--models", "{good}", "--min-repeat-ms", "0"], "--min-repeat-ms"),
    (["--models", "{good}", "--timeout-s", "0"], "--timeout-s"),
    (["--models", "{good}", "--repeats", "x"], "--repeats"),
    (["--models", "{good}", "--runtime", "tvmx"], "supported: onnxruntime"),
    (["--models", "{good}", "--provider", "nosuch"], "cpu (CPUExecutionProvider)"),
    (["--models", "{good}", "--db", "{tmp}"], "--db"),
    (["--models", "{good}", "--db", "{tmp}/notes.txt"], "--db"),
    ([], "--models"),
])
def test_cli_bad_input_is_one_line_exit_2(
    extra: list[str], needle: str, good_dir: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("not a database\n" * 100)
    db_path = tmp_path / "db" / "lat.db"
    argv = ["run", "--db", str(db_path)] + [a.format(tmp=tmp_path, good=good_dir) for a in extra]
    code, out, err = _run(argv, capsys)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("device_agent: error: "), err
    assert needle in lines[0], err
    assert not db_path.exists()  # nothing ran


def test_cli_progress_line_on_a_terminal(good_dir: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty, out = Tty(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", tty)
    monkeypatch.setattr(sys, "stdout", out)
    assert main(["run", "--models", str(good_dir), "--db", str(tmp_path / "l.db"), *FAST]) == 0
    text = tty.getvalue()
    assert "\r" in text and "[0/2] batch 1/1 round 1: 2 of 2 measuring" in text and "[2/2] b_mm ok" in text
    tty.seek(0)
    tty.truncate()
    assert main(["run", "--models", str(good_dir), "--db", str(tmp_path / "s.db"), "--protocol", "sequential", *FAST]) == 0
    text = tty.getvalue()
    assert "\r" in text and "[0/2] a_conv measuring" in text and "[2/2] b_mm ok" in text
    assert "\n" not in text  # one updating line, cleared at the end
    assert "measured 2" in out.getvalue()


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_cli_ctrl_c_keeps_what_was_measured_sequential(tmp_path: Path, wait_for_measurements) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    conv_relu(folder / "a_conv.onnx")
    slow_chain(folder / "b_slow.onnx")
    db_path = tmp_path / "lat.db"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "device_agent", "run", "--models", str(folder),
                             "--db", str(db_path), "--protocol", "sequential", *FAST], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
    try:
        rows = wait_for_measurements(db_path)
        assert rows, "first model was never stored"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted; 1 measurement(s) stored" in err
    with pytest.raises(ProcessLookupError):  # the worker was stopped and reaped
        os.kill(rows[0].environment["worker_pid"], 0)


def test_cli_no_command_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run([], capsys)
    assert code == 2 and err.startswith("device_agent: error: ")


def test_cli_corrupt_model_is_recorded_and_retried(good_dir: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    corrupt(good_dir / "0_bad.onnx")
    db_path = tmp_path / "lat.db"
    argv = ["run", "--models", str(good_dir), "--db", str(db_path), "--json", *FAST]
    code, out, _ = _run(argv, capsys)
    data = json.loads(out)
    assert code == 1 and (data["measured"], data["failed"]) == (2, 1)
    status = {r["key"]: r["status"] for r in data["results"]}
    assert status == {"0_bad": "error", "a_conv": "ok", "b_mm": "ok"}
    with LatencyDB(db_path) as db:
        bad = db.measurements(status="error")
        assert len(bad) == 1 and "Protobuf" in bad[0].error and "\n" not in bad[0].error
    code, out, _ = _run(argv, capsys)  # resume: failures are retried, OK ones skipped
    data = json.loads(out)
    assert code == 1 and (data["measured"], data["skipped"], data["failed"]) == (0, 2, 1)


def test_cli_timeout_then_next_model_measured_sequential(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    slow_chain(folder / "a_slow.onnx")
    conv_relu(folder / "b_conv.onnx")
    db_path = tmp_path / "lat.db"
    start = time.monotonic()
    code, out, _ = _run(["run", "--models", str(folder), "--db", str(db_path), "--timeout-s", "1",
                         "--warmup", "3", "--repeats", "3", "--min-repeat-ms", "1", "--protocol", "sequential"], capsys)
    assert time.monotonic() - start < 20
    assert code == 1 and "exceeded --timeout-s 1.0 s" in out and "failed 1" in out
    with LatencyDB(db_path) as db:
        (timeout,) = db.measurements(status="timeout")
        assert timeout.error == "exceeded --timeout-s 1.0 s" and timeout.median_ms is None
        (ok,) = db.measurements(status="ok")
        assert ok.model_sha256 == sha256_file(folder / "b_conv.onnx")
        assert ok.environment["worker_pid"] != timeout.environment["worker_pid"]  # fresh worker


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_worker_killed_mid_model_is_an_error_and_next_model_measured(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    slow_chain(folder / "a_slow.onnx")
    conv_relu(folder / "b_conv.onnx")
    models = discover_models(folder, with_graph_summary=False)
    killed: list[int] = []
    with Runner(FAST_CONFIG, device_id="test") as runner:
        def on_start(model):  # noqa: ANN001
            if model.key == "a_slow":
                pid = runner.worker_pid
                killed.append(pid)
                threading.Timer(0.5, os.kill, (pid, signal.SIGKILL)).start()

        results = list(runner.measure(models, on_start=on_start))
    (m1, crashed), (m2, ok) = results
    assert crashed.status is Status.ERROR and crashed.error.startswith("worker crashed (signal 9")
    assert ok.status is Status.OK and ok.environment["worker_pid"] != killed[0]


def test_runner_skip_predicate_is_lazy(good_dir: Path) -> None:
    models = discover_models(good_dir, with_graph_summary=False)
    seen: list[str] = []
    with Runner(FAST_CONFIG, device_id="test") as runner:
        out = list(runner.measure(models, skip=lambda m: seen.append(m.key) or m.key == "b_mm"))
    assert seen == ["a_conv", "b_mm"] and [m.key for m, _ in out] == ["a_conv"]


def test_package_never_imports_torch(tmp_path: Path) -> None:
    model = conv_relu(tmp_path / "c.onnx")
    code = f"""
import sys, importlib, io, contextlib, pkgutil
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('torch', 'hwnas'):
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
import device_agent
for info in pkgutil.walk_packages(device_agent.__path__, 'device_agent.'):
    importlib.import_module(info.name)
from device_agent.cli import main
from device_agent.models import discover_models
from device_agent.protocol import MeasureConfig
from device_agent.runner import Runner
from device_agent.runtimes import measure_file
cfg = MeasureConfig(warmup=1, repeats=3, min_repeat_ms=1.0)
assert measure_file({str(model)!r}, cfg).ok
with Runner(cfg, device_id='x') as r:
    [(m, rec)] = r.measure(discover_models({str(model)!r}))
assert rec.status.value == 'ok', rec
with contextlib.redirect_stdout(io.StringIO()):
    assert main(['run', '--models', {str(model)!r}, '--db', {str(tmp_path / 'x.db')!r},
                 '--warmup', '1', '--repeats', '3', '--min-repeat-ms', '1']) == 0
    assert main(['info']) == 0
bad = sorted(n for n in sys.modules if n.split('.')[0] in ('torch', 'hwnas'))
assert not bad, bad
print('clean')
"""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "clean", proc.stderr


def test_python_dash_m_entry_point(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "device_agent", "--version"], capture_output=True,
                          text=True, env=env, timeout=60)
    assert proc.returncode == 0 and __version__ in proc.stdout
    proc = subprocess.run(
        [sys.executable, "-m", "device_agent", "run", "--models", str(tmp_path / "nope")],
        capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("device_agent: error: --models")
