"""The interleaved protocol on real models: faults pinned inside a batch, Ctrl-C keeps finished
batches, the drift reference's rows, and the statistics of rounds.

Models are tiny real ONNX graphs (``onnx.helper``, no torch); faults are real: the worker process
is sent SIGSEGV (a crash) or SIGSTOP (a hang) while it visits a chosen model.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import default_sigint, require_module

onnx = require_module("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from device_agent.cli import main  # noqa: E402
from device_agent.interleave import InterleavedRunner  # noqa: E402
from device_agent.models import ModelFile, discover_models  # noqa: E402
from device_agent.protocol import MeasureConfig  # noqa: E402
from device_agent.reference import REFERENCE_ARCH, REFERENCE_ARCHS, REFERENCE_PANEL, reference_model  # noqa: E402
from device_agent.stats import repeat_interval, summarize_rounds  # noqa: E402
from latency_db import LatencyDB, Status  # noqa: E402
from latency_db.records import REFERENCE_SPACE  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
POSIX = pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="needs POSIX signals")


def conv(path: Path, channels: int) -> Path:
    """A 3x3 conv + ReLU on 1x3x32x32 with ``channels`` outputs (distinct files, distinct sha256)."""
    w = numpy_helper.from_array(np.random.default_rng(channels).standard_normal((channels, 3, 3, 3)).astype(np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "W"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["y"])],
        "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def folder_of(tmp_path: Path, n: int) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    for i in range(n):
        conv(folder / f"{chr(ord('a') + i)}_conv{4 * (i + 1)}.onnx", 4 * (i + 1))
    return folder


# -- faults inside a batch ---------------------------------------------------------------------------


@POSIX
def test_crash_and_hang_inside_a_batch_are_pinned_to_their_models(tmp_path: Path) -> None:
    folder = folder_of(tmp_path, 4)
    (folder / "e_bad.onnx").write_bytes(b"not an onnx file")
    models = discover_models(folder, with_graph_summary=False)
    cfg = MeasureConfig(warmup=1, min_repeat_ms=1.0, timeout_s=3.0, min_rounds=6, max_rounds=6, batch_size=8)
    faults = {("b_conv8", 2): signal.SIGSEGV, ("c_conv12", 4): signal.SIGSTOP}

    def on_visit(model: ModelFile, round_no: int) -> None:
        sig = faults.pop((model.key, round_no), None)
        if sig is not None:
            os.kill(runner.worker_pid, sig)  # type: ignore[arg-type]  # it never runs Python again

    with InterleavedRunner(cfg, device_id="t", reference=reference_model(), on_visit=on_visit, seed=1) as runner:
        (batch,) = list(runner.measure(models))
    assert not faults, "every fault was injected"
    by_key = {m.key: r for m, r in batch.records}
    assert set(by_key) == {"a_conv4", "b_conv8", "c_conv12", "d_conv16", "e_bad"}
    assert by_key["b_conv8"].status is Status.ERROR and "worker crashed (signal 11 SIGSEGV)" in by_key["b_conv8"].error
    assert by_key["c_conv12"].status is Status.TIMEOUT and by_key["c_conv12"].error == "exceeded --timeout-s 3.0 s"
    assert by_key["e_bad"].status is Status.ERROR and "load failed" in by_key["e_bad"].error
    for key in ("a_conv4", "d_conv16"):
        ok = by_key[key]
        assert ok.status is Status.OK and len(ok.samples_ms) == 6  # no round was lost to the faults
        assert len(ok.environment["worker_pids"]) == 3  # re-loaded after each fault, in a new worker
        assert ok.environment["loads"] == 3 and ok.environment["stop"] == "max_rounds"
        assert ok.ci_low_ms <= ok.median_ms <= ok.ci_high_ms and ok.environment["interval"] == "repeat-pi95"
        assert ok.environment["ref_ratio"] > 0 and ok.environment["run_id"] == runner.run_id
    assert batch.reference is not None and batch.reference[1].status is Status.OK
    assert len(batch.reference[1].samples_ms) == 6


def test_a_model_that_fails_to_run_is_an_error_and_the_batch_goes_on(tmp_path: Path) -> None:
    folder = folder_of(tmp_path, 2)
    # loads fine (the shape is only checked when it runs): Reshape to an impossible shape
    shape = numpy_helper.from_array(np.array([7, 7], dtype=np.int64), "shape")
    graph = helper.make_graph([helper.make_node("Reshape", ["x", "shape"], ["y"])], "bad",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 10])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [shape])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(folder / "z_reshape.onnx"))
    cfg = MeasureConfig(warmup=0, min_repeat_ms=1.0, min_rounds=6, max_rounds=6)
    with InterleavedRunner(cfg, device_id="t", reference=None) as runner:
        (batch,) = list(runner.measure(discover_models(folder, with_graph_summary=False)))
    status = {m.key: r.status for m, r in batch.records}
    assert status == {"a_conv4": Status.OK, "b_conv8": Status.OK, "z_reshape": Status.ERROR}
    assert batch.reference is None
    ok = batch.records[0][1]
    assert "ref_ratio" not in ok.environment and ok.environment["interval"] == "repeat-pi95"


# -- Ctrl-C ------------------------------------------------------------------------------------------


@POSIX
def test_ctrl_c_keeps_every_finished_batch(tmp_path: Path, wait_for_measurements) -> None:
    folder = folder_of(tmp_path, 5)
    db_path = tmp_path / "lat.db"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "device_agent", "run", "--models", str(folder), "--db", str(db_path),
           "--batch-size", "2", "--min-rounds", "40", "--max-rounds", "40", "--min-repeat-ms", "5", "--warmup", "1"]
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
    try:
        rows = wait_for_measurements(db_path)
        assert rows, "the first batch was never stored"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    with LatencyDB(db_path, read_only=True) as db:
        models = db.measurements()
        refs = db.measurements(space=REFERENCE_SPACE)
    assert 2 <= len(models) < 5 and len(models) % 2 == 0  # whole batches only
    assert f"interrupted; {len(models)} measurement(s) stored" in err
    assert all(r.status is Status.OK and len(r.samples_ms) == 40 for r in models)
    assert len(refs) == 3 * (len(models) // 2)  # the panel's three reference rows per stored batch
    for pid in {p for r in models for p in r.environment["worker_pids"]}:
        with pytest.raises(ProcessLookupError):  # the worker was stopped and reaped
            os.kill(pid, 0)


# -- the drift reference -----------------------------------------------------------------------------


def test_reference_rows_are_stored_and_identifiable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = folder_of(tmp_path, 3)
    db_path = tmp_path / "lat.db"
    argv = ["run", "--models", str(folder), "--db", str(db_path), "--batch-size", "2", "--min-rounds", "8",
            "--max-rounds", "8", "--min-repeat-ms", "1", "--warmup", "1", "--device-name", "box"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "reference (batch 0)" in out and "reference (batch 1)" in out and "interval repeat-pi95" in out
    assert "panel level" in out
    with LatencyDB(db_path, read_only=True) as db:
        models = db.measurements()
        refs = db.measurements(space=REFERENCE_SPACE)
        assert len(models) == 3 and len(refs) == 2 * 3  # the candidates' queries never see the references
        assert all(r.arch in REFERENCE_ARCHS and r.environment["role"] == "reference" for r in refs)
        assert {r.arch for r in refs} == REFERENCE_ARCHS and REFERENCE_ARCH in REFERENCE_ARCHS
        assert db.model(refs[0].model_sha256).space == REFERENCE_SPACE  # type: ignore[union-attr]
        assert {r.environment["run_id"] for r in models + refs} == {refs[0].environment["run_id"]}
        for r in models:
            mine = [x for x in refs if x.environment["batch"] == r.environment["batch"]]
            panel = r.environment["reference"]
            assert sorted(panel["uids"]) == sorted(x.uid for x in mine) and panel["panel"] == REFERENCE_PANEL
            level = float(np.exp(np.mean(np.log([x.median_ms for x in mine]))))
            assert panel["median_ms"] == pytest.approx(level, rel=1e-5)
            assert r.environment["ref_ratio"] == pytest.approx(r.median_ms / level, rel=1e-4)
            low, high = r.environment["ref_ratio_interval"]
            assert low < r.environment["ref_ratio"] < high
            # how networks move against the panel: from this batch's halves, then from the batches so far
            assert panel["tracking"] >= 0
            assert panel["tracking_from"] == ("halves of this batch" if r.environment["batch"] == 0 else "2 batches")
            # the first batch of the first run has no level to compare with; the second has the first's
            assert r.environment["history_runs"] == r.environment["batch"]
            assert (r.environment["interval_parts"]["history"] > 0) == (r.environment["batch"] > 0)
        for r in models + refs:  # stored samples are the timed ones divided by the batch's level at each
            env = r.environment
            assert len(env["raw_samples_ms"]) == len(env["visit_level"]) == len(env["visit_t_s"]) == 8
            assert np.allclose(np.asarray(env["raw_samples_ms"]) / np.asarray(env["visit_level"]), r.samples_ms,
                               rtol=1e-4)
            assert env["visit_t_s"] == sorted(env["visit_t_s"])
        (run,) = db.reference_runs()
        assert run["batches"] == 2 and run["shift"] is None and run["device"] == "box"
        assert len(run["members"]) == 2 and set(run["members"][0]) == REFERENCE_ARCHS
        assert sum(run["members"][0].values()) == pytest.approx(0.0, abs=1e-9)  # log ratios to their mean
    assert main([*argv, "--force"]) == 0  # a second run: its level is compared with the first's
    capsys.readouterr()
    with LatencyDB(db_path, read_only=True) as db:
        first, second = db.reference_runs()
        assert math.isclose(second["shift"], second["median_ms"] / first["median_ms"] - 1.0)
        newest = db.measurements()[-1]
        assert newest.environment["interval_parts"]["history"] > 0  # earlier runs widen the interval


# -- statistics of rounds ------------------------------------------------------------------------------


def test_tracking_widens_the_ratio_interval_by_how_far_networks_move_against_the_panel() -> None:
    from device_agent.stats import Tracking, ratio_interval, t975, tracking_sd

    assert tracking_sd([{"a": 0.1, "b": -0.1}]) is None  # one batch says nothing about between batches
    t = tracking_sd([{"a": 0.10, "b": -0.10}, {"a": 0.12, "b": -0.12}, {"a": 0.08, "b": -0.08}])
    # 2 references: each ratio to their mean moves with sd * sqrt(1 - 1/2), and each batch's two
    # ratios sum to zero, so 4 naive degrees of freedom are 2
    assert t is not None and t.panel_size == 2 and t.dof == pytest.approx(2.0)
    assert t.sd == pytest.approx(math.sqrt(4 * 0.02**2 / 2))
    x, ref = [2.0, 2.02, 1.98, 2.01, 1.99, 2.0, 2.0, 2.01], [1.0] * 8
    _, low0, high0 = ratio_interval(x, ref)  # type: ignore[misc]
    r, low, high = ratio_interval(x, ref, Tracking(0.02, 6.0, 3))  # type: ignore[misc]
    assert low < low0 < r < high0 < high
    half = math.log(high / r)  # at least t(6) * sqrt(2 * (1 + 1/3)) * sd: two runs, each over a 3-panel
    assert half >= t975(6) * math.sqrt(8 / 3) * 0.02
    few = ratio_interval(x, ref, Tracking(0.02, 2.0, 3))  # the same sd from fewer batches: wider
    assert few is not None and few[2] > high


def test_tracking_covers_simulated_runs_at_95_percent() -> None:
    """Under Tracking's own model (every network, references included, moves independently against
    the machine's level from batch to batch), two runs' ratios to a 3-reference panel differ by less
    than the half-width estimated from a run's 4 batches in about 95% of draws: neither the
    estimate's bias (references are part of the level) nor its few degrees of freedom are left out."""
    from device_agent.stats import tracking_sd

    rng = np.random.default_rng(0)
    sd, k, batches, hits, draws = 0.01, 3, 4, 0, 4000
    for _ in range(draws):
        refs = rng.normal(0.0, sd, (batches, k))
        members = [{str(i): v - row.mean() for i, v in enumerate(row)} for row in refs]
        t = tracking_sd(members)
        assert t is not None
        # a network in one batch of each of two runs, each over its batch's panel
        a, b = (rng.normal(0.0, sd) - rng.normal(0.0, sd, k).mean() for _ in range(2))
        hits += abs(a - b) <= t.halfwidth()
    assert 0.93 <= hits / draws <= 0.975


def test_repeat_interval_divides_out_what_the_reference_shares() -> None:
    rng = np.random.default_rng(0)
    level = 1.0 + 0.1 * np.abs(rng.standard_normal(40))  # slowdowns that hit every visit of a round
    ref = 0.2 * level * (1 + 0.002 * rng.standard_normal(40))
    model = 1.0 * level * (1 + 0.002 * rng.standard_normal(40))
    parts = repeat_interval(model, ref)
    assert parts is not None
    assert max(parts.sampling_below, parts.sampling_above) < 0.01  # the ratio hardly moves
    assert parts.level > 0.01 and parts.history == 0  # the level did: it stays in the raw interval
    assert parts.low < np.median(model) < parts.high
    alone = repeat_interval(model)  # without a reference, the phases are sampling noise
    assert alone is not None and max(alone.sampling_below, alone.sampling_above) > 3 * max(
        parts.sampling_below, parts.sampling_above)
    with_history = repeat_interval(model, ref, history=[float(np.median(ref)) * 1.05])
    assert with_history is not None and math.isclose(with_history.history, 2 * math.log(1.05), rel_tol=1e-9)
    assert with_history.high - with_history.low > parts.high - parts.low
    with pytest.raises(ValueError, match="reference has 3 samples"):
        repeat_interval(model, ref[:3])


def test_summarize_rounds_labels_its_interval() -> None:
    assert summarize_rounds([1.0, 1.1, 0.9]).interval == "min-max"  # n <= 5: no 95% pair
    s = summarize_rounds([1.0, 1.1, 0.9, 1.0, 1.05, 0.95, 1.0, 1.02])
    assert s.interval == "repeat-pi95" and s.ci_low < s.median < s.ci_high
    assert math.isclose(s.rel_halfwidth, (s.ci_high - s.ci_low) / 2 / s.median)
