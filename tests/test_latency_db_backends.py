"""The latency database contract on both backends: a SQLite file and a real PostgreSQL server
(started by the suite; make test installs Debian's postgresql). Also merges between them, and
concurrent writers on PostgreSQL."""

from __future__ import annotations

import dataclasses
import multiprocessing
from pathlib import Path

import pytest
from conftest import require_module

from latency_db import SCHEMA_VERSION, DeviceRecord, LatencyDB, MeasurementRecord, ModelRecord, Status


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "lat.db")
    return request.getfixturevalue("pg_url")()


def _m(uid: str, sha: str = "ab12", dev: str = "pi4-1", ms: float = 1.1, status: Status = Status.OK,
       runtime: str = "onnxruntime") -> MeasurementRecord:  # fmt: skip
    return MeasurementRecord(uid=uid, model_sha256=sha, device_id=dev, runtime=runtime, provider="cpu",
                             config={"repeats": 3}, config_hash="c1", status=status,
                             samples_ms=(1.0, 1.2, ms) if status == Status.OK else (),
                             median_ms=ms if status == Status.OK else None,
                             error=None if status == Status.OK else "boom")  # fmt: skip


def _fill(db: LatencyDB) -> None:
    db.add_model(ModelRecord("ab12", space="nb201", arch="|none~0|", flops=10))
    db.add_model(ModelRecord("cd34", space="nb201", arch="|skip~0|"))
    db.add_device(DeviceRecord("pi4-1", "pi4", {"cores": 4}))
    db.add_device(DeviceRecord("jet-1", "jetson", {"cores": 6}))
    assert db.add_measurement(_m("u1"))
    assert db.add_measurements([_m("u2", "cd34", ms=2.0), _m("u3", "ab12", "jet-1", ms=0.5),
                                _m("u4", "cd34", status=Status.ERROR)]) == 3  # fmt: skip


def test_contract_round_trip_queries_and_summary(location: str) -> None:
    with LatencyDB(location) as db:
        assert db.schema_version == SCHEMA_VERSION
        _fill(db)
        assert not db.add_measurement(_m("u1"))  # same uid: not stored twice
        db.add_model(ModelRecord("ab12", params=99))  # fills a NULL column, never overwrites
        assert db.model("ab12").params == 99 and db.model("ab12").flops == 10
        db.add_device(DeviceRecord("pi4-1", "renamed", {}))
        assert db.device("pi4-1").name == "pi4" and [d.device_id for d in db.devices()] == ["pi4-1", "jet-1"]
        assert [m.uid for m in db.measurements()] == ["u1", "u2", "u3", "u4"]
        assert [m.uid for m in db.measurements(device="pi4", status="ok")] == ["u1", "u2"]
        assert [m.uid for m in db.measurements(arch="|skip~0|")] == ["u2", "u4"]
        got = db.measurements(model_sha256="ab12", device="jet-1")[0]
        assert got.samples_ms == (1.0, 1.2, 0.5) and got.status is Status.OK and got.config == {"repeats": 3}
        assert db.has_measurement(model_sha256="cd34", device_id="pi4-1", runtime="onnxruntime", config_hash="c1")
        assert not db.has_measurement(model_sha256="cd34", device_id="jet-1", runtime="onnxruntime", config_hash="c1")
        s = db.summary()
        assert (s["models"], s["devices"], s["measurements"]) == (2, 2, 4)
        pi = next(g for g in s["by_device_runtime"] if g["device"] == "pi4")
        assert (pi["n_ok"], pi["n_error"], pi["n_models"]) == (2, 1, 2) and pi["median_ms"] == pytest.approx(1.55)
        with pytest.raises(ValueError, match="unknown device"):
            db.add_measurement(_m("u9", dev="nowhere"))
        with pytest.raises(ValueError, match="unknown model"):
            db.add_measurement(_m("u9", sha="ffff"))
        assert [m.uid for m in db.measurements()] == ["u1", "u2", "u3", "u4"]  # a failed write stored nothing
    with LatencyDB(location, read_only=True) as ro:
        assert len(ro.measurements()) == 4
        with pytest.raises(PermissionError):
            ro.add_measurement(_m("u5"))


def test_measurements_are_append_only(location: str) -> None:
    with LatencyDB(location) as db:
        _fill(db)
        for sql in ("UPDATE measurements SET median_ms = 0", "DELETE FROM measurements"):
            with pytest.raises(Exception, match="append-only"):
                with db._write() as conn:
                    conn.execute(sql)
        assert len(db.measurements()) == 4


def test_merge_sqlite_into_postgresql_and_back(tmp_path: Path, pg_url) -> None:
    url = pg_url()
    with LatencyDB(tmp_path / "device.db") as dev:
        _fill(dev)
    with LatencyDB(url) as shared:
        shared.add_model(ModelRecord("ab12", space="nb201", arch="|none~0|"))
        shared.add_device(DeviceRecord("x-1", "x", {}))
        first = shared.merge_from(tmp_path / "device.db")
        again = shared.merge_from(tmp_path / "device.db")
        assert first["measurements"] == 4 and again == {**again, "measurements": 0, "measurements_skipped": 4}
    with LatencyDB(tmp_path / "back.db") as back:
        counts = back.merge_from(url)
        assert counts["measurements"] == 4 and counts["devices"] == 3
        assert sorted(m.uid for m in back.measurements()) == ["u1", "u2", "u3", "u4"]
    from hwnas.cli import main as hwnas_main

    assert hwnas_main(["db", "merge", str(tmp_path / "device.db"), "--db", url, "--json"]) == 0
    assert hwnas_main(["db", "merge", url, "--db", str(tmp_path / "back2.db"), "--json"]) == 0
    assert hwnas_main(["db", "summary", "--db", url, "--json"]) == 0
    assert hwnas_main(["db", "summary", "--db", "postgresql://nobody@127.0.0.1:1/x"]) == 2


def _writer(url: str, who: int, n: int) -> None:
    with LatencyDB(url) as db:
        db.add_device(DeviceRecord(f"dev-{who}", f"dev{who}", {}))
        for i in range(n):
            db.add_model(ModelRecord(f"sha{i}", space="nb201", arch=f"|a{i}|"))  # the same models from both
            db.add_measurement(dataclasses.replace(_m(f"{who}-{i}", f"sha{i}", f"dev-{who}")))


def test_two_concurrent_writers_on_postgresql_lose_nothing(pg_url) -> None:
    url = pg_url()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(url, who, 40)) for who in (1, 2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    with LatencyDB(url) as db:
        assert len(db.measurements()) == 80 and len(db.models()) == 40 and len(db.devices()) == 2


def test_bad_url_is_one_line(tmp_path: Path) -> None:
    require_module("psycopg")
    with pytest.raises(ConnectionError, match=r"cannot open postgresql://u:\*\*\*@127.0.0.1:1/x"):
        LatencyDB("postgresql://u:secret@127.0.0.1:1/x", timeout_s=2)


def _open_and_read(url: str) -> None:
    with LatencyDB(url) as db:
        db.summary()


def test_concurrent_first_openers_of_an_empty_postgresql_database(pg_url) -> None:
    """Regression: CREATE TABLE IF NOT EXISTS is not atomic in PostgreSQL; the bootstrap runs under
    the writers' advisory lock, so several processes opening a new database at once all succeed."""
    ctx = multiprocessing.get_context("spawn")
    for _ in range(3):
        url = pg_url()
        procs = [ctx.Process(target=_open_and_read, args=(url,)) for _ in range(5)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        assert [p.exitcode for p in procs] == [0] * 5
