"""Two real processes writing one latency database at the same time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from latency_db import LatencyDB, Status

N_PER_PROCESS = 300
ROOT = Path(__file__).resolve().parents[1]

# Each writer adds the same models and devices, then appends its own measurements one transaction
# at a time, interleaving with the other writer. It says "ready" once its imports are done and
# starts when the parent, having heard both, writes a line to its stdin.
WRITER = """
import sys
from latency_db import DeviceRecord, LatencyDB, MeasurementRecord, ModelRecord, Status

path, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
print("ready", flush=True)
sys.stdin.readline()
with LatencyDB(path, timeout_s=20) as db:
    for i in range(n):
        sha = f"{i % 7:064x}"
        db.add_model(ModelRecord(sha, space="nb201", arch=f"a{i % 7}"))
        db.add_device(DeviceRecord(f"dev{i % 2}", f"device-{i % 2}", {"cores": 4}))
        db.add_measurement(MeasurementRecord(
            uid=f"{tag}-{i}", model_sha256=sha, device_id=f"dev{i % 2}", runtime="onnxruntime",
            provider="cpu", config={"repeat": 3}, config_hash="c", status=Status.OK,
            samples_ms=(float(i),), median_ms=float(i)))
print("done", flush=True)
"""


@pytest.mark.parametrize("create_first", [True, False], ids=["existing-file", "fresh-file"])
def test_two_processes_append_concurrently(tmp_path: Path, create_first: bool) -> None:
    path = tmp_path / "shared" / "lat.db"
    if create_first:
        LatencyDB(path).close()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), tag, str(N_PER_PROCESS)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env, cwd=ROOT)
        for tag in ("p1", "p2")
    ]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    for proc in procs:  # both are started (interpreters loaded) before either gets "go"
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    outputs = [proc.communicate(timeout=60) for proc in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0 and out.strip() == "done", err
    with LatencyDB(path) as db:
        rows = db.measurements()
        assert len(rows) == 2 * N_PER_PROCESS
        assert {r.uid for r in rows} == {f"{t}-{i}" for t in ("p1", "p2") for i in range(N_PER_PROCESS)}
        assert all(r.status is Status.OK for r in rows)
        assert len(db.models()) == 7 and len(db.devices()) == 2
        tags = [r.uid.split("-")[0] for r in rows]
        switches = sum(a != b for a, b in zip(tags, tags[1:]))
        print(f"writers took turns {switches} times")  # > 1 means their transactions interleaved
        assert db.summary()["measurements"] == 2 * N_PER_PROCESS
