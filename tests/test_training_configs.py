"""Training sets are one configuration of a device (device id, runtime, provider, threads, protocol
config hash): several are refused with a one-line error that lists them and the flag that picks one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hwnas.cli import main
from hwnas.predictors.base import PredictorError
from hwnas.predictors.dataset import device_rows
from latency_db import DeviceRecord, LatencyDB, MeasurementRecord, ModelRecord, Status
from latency_db.records import REFERENCE_SPACE

ARCHS = [f"|nor_conv_3x3~0|+|{a}~0|{b}~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"
         for a in ("none", "skip_connect", "nor_conv_1x1") for b in ("none", "nor_conv_3x3")]
H1, H4 = "1" * 64, "4" * 64


def _row(uid: str, sha: str, device: str, threads: int, chash: str, ms: float) -> MeasurementRecord:
    return MeasurementRecord(uid=uid, model_sha256=sha, device_id=device, runtime="onnxruntime", provider="cpu",
                             config={"threads": threads}, config_hash=chash, status=Status.OK,
                             samples_ms=(ms,), median_ms=ms)  # fmt: skip


def _db(path: Path, *, second_board: bool = False) -> Path:
    """Device "pi" measured with 1 and 4 threads (and the drift reference under a third hash)."""
    with LatencyDB(path) as db:
        db.add_device(DeviceRecord("pi-one", "pi", {}))
        db.add_model(ModelRecord("r" * 64, space=REFERENCE_SPACE, arch="device_agent/reference-v1"))
        rows = [_row("ref", "r" * 64, "pi-one", 1, "f" * 64, 0.5)]
        for i, arch in enumerate(ARCHS):
            sha = f"{i:x}" * 64
            db.add_model(ModelRecord(sha[:64], space="nb201", arch=arch))
            rows += [_row(f"a{i}", sha[:64], "pi-one", 1, H1, 2.0 + i), _row(f"b{i}", sha[:64], "pi-one", 4, H4, 1.0 + i)]
        if second_board:
            db.add_device(DeviceRecord("pi-two", "pi", {}))
            rows += [_row(f"c{i}", f"{i:x}" * 64, "pi-two", 1, H1, 3.0 + i) for i in range(len(ARCHS))]
        db.add_measurements(rows)
    return path


def test_several_configurations_are_refused_and_one_is_picked_by_hash_prefix(tmp_path: Path) -> None:
    with LatencyDB(_db(tmp_path / "lat.db")) as db:
        with pytest.raises(PredictorError) as exc:
            device_rows(db, "pi")
        msg = str(exc.value)
        assert "\n" not in msg and "2 configurations" in msg and "--config HASH" in msg
        assert "11111111 (onnxruntime/cpu, 1 thread, 6 models)" in msg and "44444444 (" in msg
        assert "ffffffff" not in msg  # the drift reference is not a configuration
        assert sorted(r.latency_ms for r in device_rows(db, "pi", config="4444")) == [1.0 + i for i in range(6)]
        with pytest.raises(PredictorError, match="no OK measurement under configuration 9"):
            device_rows(db, "pi", config="9")


def test_two_boards_sharing_a_name_are_two_configurations(tmp_path: Path) -> None:
    with LatencyDB(_db(tmp_path / "lat.db", second_board=True)) as db:
        with pytest.raises(PredictorError, match=r"device pi-one, .*device pi-two, .*--config HASH or --device ID"):
            device_rows(db, "pi", config="1111")
        assert len(device_rows(db, "pi-two")) == 6


def test_commands_refuse_in_one_line_and_take_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(_db(tmp_path / "lat.db"))
    for argv in (["db", "quantile", "--db", db, "--device", "pi"],
                 ["predictor", "train", "--db", db, "--device", "pi", "--kind", "flops", "--out", str(tmp_path / "p")],
                 ["search", "--space", "nb201", "--evaluator", "tabular", "--latency-source", "db", "--db", db,
                  "--device", "pi", "--budget-evals", "2", "--out", str(tmp_path / "s")]):  # fmt: skip
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and "2 configurations" in err and "--config HASH" in err, err
    assert main(["db", "quantile", "--db", db, "--device", "pi", "--config", "4444", "--q", "0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["latency_ms"] == 1.0
    out = tmp_path / "flops.json"
    assert main(["predictor", "train", "--db", db, "--device", "pi", "--config", "1111", "--kind", "flops",
                 "--calibration-folds", "0", "--out", str(out), "--json"]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out)["records"] == 6
