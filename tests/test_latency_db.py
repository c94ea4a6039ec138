"""Tests of latency_db on real SQLite files."""

from __future__ import annotations

import csv
import dataclasses
import doctest
import hashlib
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import latency_db
from latency_db import (
    SCHEMA_VERSION,
    DeviceRecord,
    LatencyDB,
    MeasurementRecord,
    ModelRecord,
    SchemaError,
    Status,
)
from latency_db import db as db_module
from latency_db import schema

SHA_A, SHA_B, SHA_C = "a" * 64, "b" * 64, "c" * 64
PI = DeviceRecord("dev-pi", "pi4", {"cpu": "Cortex-A72", "cores": 4, "os": ["Linux", "6.1"]})
BOX = DeviceRecord("dev-box", "box", {"cpu": "EPYC", "cores": 16})


def model(sha: str | None, space: str = "nb201", arch: str | None = None, **kw: object) -> ModelRecord:
    return ModelRecord(sha, space=space, arch=arch or f"arch-{sha}", **kw)


def meas(uid: str, sha: str | None, device: str = "dev-pi", *, status: Status = Status.OK,
         median: float | None = 1.0, runtime: str = "onnxruntime", config_hash: str = "cfg1",
         **kw: object) -> MeasurementRecord:
    ok = status is Status.OK
    fields: dict[str, object] = dict(
        uid=uid, model_sha256=sha, device_id=device, runtime=runtime, provider="cpu",
        config={"warmup": 5, "repeat": 3, "threads": 1}, config_hash=config_hash, status=status,
        error=None if ok else f"{status.value}: boom",
        samples_ms=(median, median, median) if ok and median is not None else (),
        median_ms=median if ok else None, number=10, environment={"governor": "performance"},
        agent_version="0.1.0", created_at=f"2024-01-01T00:00:{len(uid):02d}.000+00:00",
        space="nb201", arch=f"arch-{sha}" if sha else None)
    fields.update(kw)
    return MeasurementRecord(**fields)  # type: ignore[arg-type]


@pytest.fixture
def db(tmp_path: Path) -> LatencyDB:
    with LatencyDB(tmp_path / "lat.db") as handle:
        yield handle


@pytest.fixture
def filled(db: LatencyDB) -> LatencyDB:
    """3 models, 2 devices, 6 measurements (ok, error, timeout on two devices and runtimes)."""
    for sha in (SHA_A, SHA_B):
        db.add_model(model(sha))
    db.add_model(model(SHA_C, space="macro"))
    db.add_device(PI)
    db.add_device(BOX)
    db.add_measurements([
        meas("m1", SHA_A, median=1.0),
        meas("m2", SHA_B, median=3.0),
        meas("m3", SHA_C, median=2.0, space="macro", arch=f"arch-{SHA_C}"),
        meas("m4", SHA_A, status=Status.ERROR),
        meas("m5", SHA_A, "dev-box", median=0.5),
        meas("m6", SHA_B, "dev-box", status=Status.TIMEOUT, runtime="tvm"),
    ])
    return db


def one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(exc.value)
    assert "\n" not in message and message
    return message


# -- round trips -------------------------------------------------------------------------------


def test_round_trip_of_every_record_type(db: LatencyDB) -> None:
    full = ModelRecord(SHA_A, space="nb201", arch="|nor_conv_3x3~0|+|none~0|skip_connect~1|",
                       key="k0001", flops=123_456_789_012, params=42_000, input_shape=(1, 3, 32, 32),
                       graph_summary={"ops": {"Conv": 3, "Relu": 2}, "nodes": 9, "opset": 17})
    bare = ModelRecord(SHA_B)
    unhashed = ModelRecord(None, space="macro", arch="x")
    for m in (full, bare, unhashed):
        db.add_model(m)
    db.add_device(PI)
    records = [
        meas("m1", SHA_A, samples_ms=(1.25, 1.5, 0.1 + 0.2), median_ms=1.5, p90_ms=1.5, p99_ms=1.5,
             mean_ms=0.95, std_ms=0.6, ci_low_ms=0.5, ci_high_ms=1.7,
             arch=full.arch, environment={"temp_c": [41.5, 43.0], "ort": "1.32.0"}),
        meas("m2", SHA_B, status=Status.ERROR, space=None, arch=None),
        meas("m3", None, status=Status.TIMEOUT, space="macro", arch="x", source="import:x.csv"),
    ]
    assert db.add_measurements(records) == 3
    assert db.model(SHA_A) == full and db.model(SHA_B) == bare and db.model("f" * 64) is None
    assert db.models() == [full, bare, unhashed]
    assert db.models(space="macro") == [unhashed]
    assert db.device("dev-pi") == PI and db.device("pi4") == PI and db.devices() == [PI]
    got = db.measurements()
    assert got == records
    assert isinstance(got[0].samples_ms, tuple) and type(got[1].status) is Status
    assert isinstance(db.model(SHA_A).input_shape, tuple)  # type: ignore[union-attr]


def test_measurement_space_and_arch_come_from_the_model_row(db: LatencyDB) -> None:
    db.add_model(model(SHA_A))
    db.add_device(PI)
    db.add_measurement(meas("m1", SHA_A, space=None, arch=None, created_at=""))
    (got,) = db.measurements()
    assert (got.space, got.arch) == ("nb201", f"arch-{SHA_A}")
    assert got.created_at.startswith("20") and got.created_at.endswith("Z")


# -- writes ------------------------------------------------------------------------------------


def test_add_model_is_idempotent_and_fills_only_nulls(db: LatencyDB) -> None:
    db.add_model(ModelRecord(SHA_A))
    db.add_model(ModelRecord(SHA_A, space="nb201", flops=10, input_shape=(1, 3, 8, 8)))
    db.add_model(ModelRecord(SHA_A, space="macro", arch="a1", flops=99, params=5))
    db.add_model(ModelRecord(SHA_A))
    assert db.models() == [ModelRecord(SHA_A, space="nb201", arch="a1", flops=10, params=5,
                                       input_shape=(1, 3, 8, 8))]
    db.add_model(ModelRecord(None, space="nb201", arch="a1"))
    db.add_model(ModelRecord(None, space="nb201", arch="a1", key="k"))
    assert db.models()[1:] == [ModelRecord(None, space="nb201", arch="a1", key="k")]
    with pytest.raises(ValueError) as exc:
        db.add_model(ModelRecord(None, space="nb201"))
    assert "space and arch" in one_line(exc)


def test_add_device_is_idempotent_by_id(db: LatencyDB) -> None:
    db.add_device(PI)
    db.add_device(dataclasses.replace(PI, name="renamed", fingerprint={}))
    assert db.devices() == [PI]


def test_unknown_model_or_device_is_a_one_line_value_error(db: LatencyDB) -> None:
    db.add_model(model(SHA_A))
    db.add_device(PI)
    with pytest.raises(ValueError, match="unknown model") as exc:
        db.add_measurement(meas("m1", SHA_B))
    one_line(exc)
    with pytest.raises(ValueError, match="unknown model"):
        db.add_measurement(meas("m1", None, space="nb201", arch="nope"))
    with pytest.raises(ValueError, match="unknown device") as exc:
        db.add_measurement(meas("m1", SHA_A, "dev-nope"))
    one_line(exc)
    with pytest.raises(ValueError, match="contradicts"):
        db.add_measurement(meas("m1", SHA_A, space="macro"))
    with pytest.raises(ValueError, match="unknown device"):  # one bad record: the batch rolls back
        db.add_measurements([meas("ok1", SHA_A), meas("bad", SHA_A, "dev-nope")])
    assert db.measurements() == []


def test_duplicate_uid_is_not_inserted(db: LatencyDB) -> None:
    db.add_model(model(SHA_A))
    db.add_device(PI)
    assert db.add_measurement(meas("m1", SHA_A, median=1.0)) is True
    assert db.add_measurement(meas("m1", SHA_A, median=9.0)) is False
    assert db.add_measurements([meas("m1", SHA_A), meas("m2", SHA_A), meas("m2", SHA_A)]) == 1
    assert [m.median_ms for m in db.measurements()] == [1.0, 1.0]


def test_measurements_are_append_only(filled: LatencyDB) -> None:
    conn = sqlite3.connect(filled.path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE measurements SET median_ms = 0")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM measurements")
    conn.close()


def test_has_measurement_by_status(filled: LatencyDB) -> None:
    key = dict(device_id="dev-pi", runtime="onnxruntime", config_hash="cfg1")
    assert filled.has_measurement(model_sha256=SHA_A, **key)
    assert not filled.has_measurement(model_sha256=SHA_A, **{**key, "config_hash": "cfg2"})
    assert not filled.has_measurement(model_sha256=SHA_B, **{**key, "device_id": "dev-box"},
                                      statuses=(Status.OK,))
    box_tvm = {**key, "device_id": "dev-box", "runtime": "tvm"}
    assert not filled.has_measurement(model_sha256=SHA_B, **box_tvm)
    assert filled.has_measurement(model_sha256=SHA_B, **box_tvm, statuses=("ok", "timeout"))
    assert filled.has_measurement(model_sha256=SHA_B, **box_tvm, statuses=None)
    assert not filled.has_measurement(model_sha256=SHA_B, **box_tvm, statuses=())


# -- queries -----------------------------------------------------------------------------------


def uids(records: list[MeasurementRecord]) -> list[str]:
    return [r.uid for r in records]


def test_measurement_filters(filled: LatencyDB) -> None:
    assert uids(filled.measurements()) == ["m1", "m2", "m3", "m4", "m5", "m6"]
    assert uids(filled.measurements(device="dev-box")) == ["m5", "m6"]
    assert uids(filled.measurements(device="box")) == ["m5", "m6"]
    assert uids(filled.measurements(device="pi4", status=Status.OK)) == ["m1", "m2", "m3"]
    assert uids(filled.measurements(status="error")) == ["m4"]
    assert uids(filled.measurements(status=Status.TIMEOUT, runtime="tvm")) == ["m6"]
    assert uids(filled.measurements(space="macro")) == ["m3"]
    assert uids(filled.measurements(model_sha256=SHA_A, device="pi4")) == ["m1", "m4"]
    assert filled.measurements(device="nowhere") == []
    with pytest.raises(ValueError):
        filled.measurements(status="fine")


def test_device_lookup_by_ambiguous_name(db: LatencyDB) -> None:
    db.add_device(PI)
    db.add_device(dataclasses.replace(PI, device_id="dev-pi-2"))
    assert db.device("dev-pi-2") is not None and db.device("nothing") is None
    with pytest.raises(ValueError, match="ambiguous"):
        db.device("pi4")


def test_summary_numbers(filled: LatencyDB) -> None:
    s = filled.summary()
    assert (s["schema_version"], s["models"], s["devices"], s["measurements"]) == (SCHEMA_VERSION, 3, 2, 6)
    box_ort, box_tvm, pi_ort = s["by_device_runtime"]
    assert pi_ort == {"device": "pi4", "runtime": "onnxruntime", "n_ok": 3, "n_error": 1,
                      "n_timeout": 0, "n_models": 3, "median_ms": 2.0, "min_median_ms": 1.0,
                      "max_median_ms": 3.0, "last_measured": "2024-01-01T00:00:02.000+00:00"}
    assert (box_ort["device"], box_ort["n_ok"], box_ort["median_ms"]) == ("box", 1, 0.5)
    assert (box_tvm["n_timeout"], box_tvm["median_ms"], box_tvm["min_median_ms"]) == (1, None, None)
    assert json.loads(json.dumps(s)) == s


# -- CSV ---------------------------------------------------------------------------------------


def test_export_then_import_into_a_fresh_db(filled: LatencyDB, tmp_path: Path) -> None:
    out = tmp_path / "sub" / "lat.csv"
    assert filled.export_csv(out) == 6
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["uid"] for r in rows] == ["m1", "m2", "m3", "m4", "m5", "m6"]
    assert rows[0]["device"] == "pi4" and rows[0]["repeats"] == "3" and rows[3]["median_ms"] == ""
    assert [p.name for p in out.parent.iterdir()] == ["lat.csv"]  # no temp file left behind
    with LatencyDB(tmp_path / "fresh.db") as fresh:
        counts = fresh.import_csv(out)
        assert counts == {"rows": 6, "added": 4, "skipped": 2, "not_ok": 2}
        got = fresh.measurements()
        old_names = {d.device_id: d.name for d in filled.devices()}
        expected = [(m.space, m.arch, old_names[m.device_id], m.median_ms)
                    for m in filled.measurements(status="ok")]
        names = {d.device_id: d.name for d in fresh.devices()}
        assert [(m.space, m.arch, names[m.device_id], m.median_ms) for m in got] == expected
        assert {m.source for m in got} == {"import:lat.csv"} and got[0].samples_ms == (1.0,)
        pi = fresh.device("pi4")
        assert pi == DeviceRecord("imported:" + hashlib.sha256(b"pi4").hexdigest()[:16], "pi4",
                                  {"name": "pi4", "imported": True})
        assert all(m.sha256 is None for m in fresh.models())
        assert fresh.import_csv(out) == {"rows": 6, "added": 0, "skipped": 6, "not_ok": 2}
        assert len(fresh.measurements()) == 4
    with LatencyDB(tmp_path / "fresh.db") as again:
        assert len(again.measurements()) == 4


def test_import_attaches_to_a_stored_model_by_sha(db: LatencyDB, tmp_path: Path) -> None:
    db.add_model(model(SHA_A))
    table = tmp_path / "t.csv"
    table.write_text(f"space,arch,device,latency_ms,model_sha256,extra\n"
                     f"nb201,arch-{SHA_A},pi,1.5,{SHA_A},x\n"
                     f"nb201,other,pi,2,{SHA_B},y\n")
    assert db.import_csv(table, source="lab-x")["added"] == 2
    first, second = db.measurements()
    assert (first.model_sha256, second.model_sha256, second.arch) == (SHA_A, None, "other")
    assert first.source == "lab-x" and first.runtime == "imported" and first.provider == ""


@pytest.mark.parametrize("text, match", [
    ("", "empty CSV"),
    ("space,arch,latency_ms\nnb201,a,1\n", "missing column 'device'"),
    ("space,arch,device\nnb201,a,pi\n", "missing column 'latency_ms"),
    ("space,arch,device,latency_ms\nnb201,a,pi,1\nnb201,b,pi,fast\n",
     "line 3: column 'latency_ms' is not a number"),
    ("space,arch,device,median_ms\nnb201,a,pi,1\nnb201,b,pi,-2\n", "line 3: column 'median_ms' must be"),
    ("space,arch,device,latency_ms\nnb201,a,pi,nan\n", "line 2: column 'latency_ms' must be"),
    ("space,arch,device,latency_ms\nnb201,,pi,1\n", "line 2: column 'arch' is empty"),
])
def test_import_rejects_bad_input_and_inserts_nothing(db: LatencyDB, tmp_path: Path, text: str,
                                                      match: str) -> None:
    table = tmp_path / "bad.csv"
    table.write_text(text)
    with pytest.raises(ValueError, match=match) as exc:
        db.import_csv(table)
    assert str(table) in one_line(exc)
    assert db.summary()["models"] == db.summary()["devices"] == db.summary()["measurements"] == 0


def test_export_replaces_the_old_file_atomically(filled: LatencyDB, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "lat.csv"
    out.write_text("old\n")

    def fail(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(latency_db.fileio.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        filled.export_csv(out)
    assert out.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"] == []


# -- merge -------------------------------------------------------------------------------------


def test_merge_both_ways_is_idempotent_and_leaves_the_other_file_unchanged(tmp_path: Path) -> None:
    with LatencyDB(tmp_path / "a.db") as a, LatencyDB(tmp_path / "b.db") as b:
        for handle in (a, b):
            handle.add_device(PI)
        a.add_model(ModelRecord(SHA_A))
        b.add_model(model(SHA_A, flops=7))  # completes a's row on merge
        b.add_model(ModelRecord(None, space="macro", arch="u"))
        b.add_device(BOX)
        a.add_measurements([meas(uid, SHA_A, space=None, arch=None) for uid in ("a1", "shared")])
        b.add_measurements([meas("b1", SHA_A, "dev-box"), meas("shared", SHA_A),
                            meas("b2", None, space="macro", arch="u", status=Status.ERROR)])
    b_path = tmp_path / "b.db"
    before = (b_path.read_bytes(), b_path.stat().st_mtime_ns)
    with LatencyDB(tmp_path / "a.db") as a:
        counts = a.merge_from(b_path)
        assert counts == {"models": 1, "models_updated": 1, "devices": 1, "measurements": 2,
                          "measurements_skipped": 1, "reference_measurements": 0, "ignored_measurements": 0}
        assert a.merge_from(b_path) == {"models": 0, "models_updated": 0, "devices": 0,
                                        "measurements": 0, "measurements_skipped": 3, "reference_measurements": 0,
                                        "ignored_measurements": 0}
        assert a.merge_from(a)["measurements"] == 0
        assert uids(a.measurements()) == ["a1", "shared", "b1", "b2"]
        assert a.model(SHA_A) == model(SHA_A, flops=7)
        with LatencyDB(b_path) as b:
            assert b.merge_from(a)["measurements"] == 1
            assert b.merge_from(a)["measurements"] == 0
            assert sorted(uids(b.measurements())) == sorted(uids(a.measurements()))
            assert sorted(map(str, b.measurements())) == sorted(map(str, a.measurements()))
    assert (b_path.read_bytes(), b_path.stat().st_mtime_ns) != before  # b was written by b.merge_from
    a_path = tmp_path / "a.db"
    before = (a_path.read_bytes(), a_path.stat().st_mtime_ns)
    with LatencyDB(tmp_path / "c.db") as c:
        assert c.merge_from(a_path)["measurements"] == 4
    assert (a_path.read_bytes(), a_path.stat().st_mtime_ns) == before


def test_scoped_merge_takes_only_the_profiled_device_and_the_sent_models(tmp_path: Path) -> None:
    """A device's DB with foreign rows planted: another device name, a model never sent, and the sent
    model's metadata changed there. Only the wanted rows come in, the models from the trusted records."""
    from latency_db.merge import MergeScope

    ref = ModelRecord(SHA_C, space="reference", arch="device_agent/reference-v1")
    with LatencyDB(tmp_path / "device.db") as dev:
        dev.add_model(model(SHA_A, arch="tampered", flops=1))  # the sent model, metadata changed
        dev.add_model(model(SHA_B))  # never sent
        dev.add_model(ref)
        dev.add_device(PI)
        dev.add_device(BOX)  # another device name on the same box
        dev.add_measurements([meas("ok1", SHA_A, arch="tampered"), meas("ref1", SHA_C, space="reference",
                              arch=ref.arch), meas("other-model", SHA_B), meas("other-device", SHA_A, "dev-box",
                              arch="tampered")])  # fmt: skip
    trusted = {SHA_A: model(SHA_A, flops=42), SHA_C: ref}
    with LatencyDB(tmp_path / "host.db") as host:
        counts = host.merge_from(tmp_path / "device.db", MergeScope(frozenset({"dev-pi"}), trusted))
        assert counts == {"models": 2, "models_updated": 0, "devices": 1, "measurements": 2, "measurements_skipped": 0,
                          "reference_measurements": 1, "ignored_measurements": 2}  # fmt: skip
        assert uids(host.measurements()) == ["ok1"] and uids(host.measurements(space="reference")) == ["ref1"]
        assert [d.device_id for d in host.devices()] == ["dev-pi"]
        assert host.model(SHA_A) == model(SHA_A, flops=42) and host.model(SHA_B) is None
        again = host.merge_from(tmp_path / "device.db", MergeScope(frozenset({"dev-pi"}), trusted))
        assert (again["measurements"], again["measurements_skipped"], again["ignored_measurements"]) == (0, 2, 2)


def test_one_timestamp_format_written_and_both_read(db: LatencyDB, tmp_path: Path) -> None:
    """Every row is written as ``...T..:..:..sssZ`` (as the agent writes measurements); rows from
    before, ending in ``+00:00``, still read and parse to the same instant."""
    from latency_db.tables import now_utc, parse_utc

    table = tmp_path / "t.csv"
    table.write_text("space,arch,device,latency_ms\nnb201,a,pi,1\n")
    db.import_csv(table)
    db.add_model(model(SHA_A))
    db.add_device(PI)
    db.add_measurement(meas("new", SHA_A, created_at=""))
    db.add_measurement(meas("old", SHA_A, created_at="2024-01-01T00:00:00.000+00:00"))
    conn = sqlite3.connect(db.path)
    stamps = [r[0] for t in ("models", "devices", "measurements") for r in conn.execute(f"SELECT created_at FROM {t}")]
    conn.close()
    fresh = [s for s in stamps if not s.startswith("2024-01-01")]
    assert len(fresh) == 6 and all(len(s) == 24 and s.endswith("Z") for s in fresh + [now_utc()]), fresh
    assert parse_utc("2024-01-01T00:00:00.000+00:00") == parse_utc("2024-01-01T00:00:00.000Z")
    assert [m.created_at for m in db.measurements(model_sha256=SHA_A)][-1] == "2024-01-01T00:00:00.000+00:00"
    with pytest.raises(ValueError):
        parse_utc("2024-01-01T00:00:00")


# -- schema and file handling ------------------------------------------------------------------


def test_new_file_is_wal_with_current_schema(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "lat.db"
    with LatencyDB(path, timeout_s=5) as db:
        assert db.path == path and db.schema_version == SCHEMA_VERSION == 2
        assert db._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db._conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert db._conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_newer_schema_raises_schema_error(tmp_path: Path) -> None:
    path = tmp_path / "lat.db"
    LatencyDB(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(SchemaError, match="upgrade hwnas") as exc:
        LatencyDB(path)
    assert str(path) in one_line(exc)
    with pytest.raises(SchemaError, match="upgrade hwnas"):
        LatencyDB(path, read_only=True)


@pytest.mark.parametrize("content", [b"x", b"hello", b"hello, this is not a database\n" * 200])
def test_non_sqlite_file_raises_a_one_line_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(content)
    with pytest.raises(SchemaError, match="not a SQLite database") as exc:
        LatencyDB(path)
    assert str(path) in one_line(exc)
    assert path.read_bytes() == content  # the user's file is left as it was


def test_foreign_sqlite_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    with pytest.raises(SchemaError, match="another program") as exc:
        LatencyDB(path)
    one_line(exc)
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 0


def test_older_schema_is_migrated_in_one_transaction(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "lat.db"
    with LatencyDB(path) as db:
        db.add_model(ModelRecord(SHA_A))
    current = schema.SCHEMA_VERSION
    v2 = schema.Migration(current + 1, "add a note column", ("ALTER TABLE models ADD COLUMN note TEXT",))
    broken = schema.Migration(current + 1, "fails halfway", ("ALTER TABLE models ADD COLUMN note TEXT",
                                                              "THIS IS NOT SQL"))
    monkeypatch.setattr(schema, "SCHEMA_VERSION", current + 1)
    monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS, broken))
    with pytest.raises(sqlite3.OperationalError, match="syntax error"):
        LatencyDB(path)
    conn = sqlite3.connect(path)
    columns = [row[1] for row in conn.execute("PRAGMA table_info(models)")]
    assert conn.execute("PRAGMA user_version").fetchone()[0] == current and "note" not in columns
    conn.close()
    monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS[:current], v2))
    with LatencyDB(path) as db:
        assert db.schema_version == current + 1 and db.models() == [ModelRecord(SHA_A)]
        assert "note" in [row[1] for row in db._conn.execute("PRAGMA table_info(models)")]


def test_read_only_never_writes(filled: LatencyDB) -> None:
    with LatencyDB(filled.path, read_only=True) as ro:
        assert len(ro.measurements()) == 6
        with pytest.raises(PermissionError, match="read-only"):
            ro.add_device(BOX)
    with pytest.raises(FileNotFoundError):
        LatencyDB(filled.path.with_name("missing.db"), read_only=True)


def test_package_imports_only_the_standard_library() -> None:
    code = ("import sys, latency_db; bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "{'numpy', 'torch', 'onnx', 'onnxruntime', 'hwnas'}); print(bad); assert not bad")
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root,
                   env={"PYTHONPATH": str(root), "PATH": ""})


def test_docstring_examples_run() -> None:
    for module in (latency_db, db_module):
        assert doctest.testmod(module).failed == 0


def test_timestamps_of_a_version_1_file_are_migrated_to_the_one_format(tmp_path: Path) -> None:
    """A file written at schema 1 with ``+00:00`` timestamps (seconds and microseconds) opens at the
    current schema with every ``created_at`` in the ``...mmmZ`` format, measurements included
    (append-only again afterwards)."""
    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA application_id = {schema.APPLICATION_ID}")
    for statement in schema.MIGRATIONS[0].statements:
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.execute("INSERT INTO models (sha256, created_at) VALUES ('ab', '2025-01-31T12:00:00.123456+00:00')")
    conn.execute("INSERT INTO devices (device_id, name, fingerprint, created_at) VALUES ('d', 'pi', '{}', "
                 "'2025-01-31T12:00:01+00:00')")  # fmt: skip
    columns = [r[1] for r in conn.execute("PRAGMA table_info(measurements)") if r[1] != "id"]
    values = {c: "x" for c in columns} | {"model_id": 1, "device_id": "d", "samples": "[]", "environment": "{}",
                                            "config": "{}", "created_at": "2025-01-31T12:00:02.500000+00:00"}  # fmt: skip
    for c in ("median_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms", "ci_low_ms", "ci_high_ms", "number", "error",
              "agent_version"):
        values[c] = None
    conn.execute(f"INSERT INTO measurements ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})", list(values.values()))
    conn.commit()
    conn.close()
    with LatencyDB(path) as db:
        assert db.schema_version == SCHEMA_VERSION
        rows = [r[0] for t in ("models", "devices", "measurements") for r in db._conn.execute(f"SELECT created_at FROM {t}")]
        assert rows == ["2025-01-31T12:00:00.123Z", "2025-01-31T12:00:01.000Z", "2025-01-31T12:00:02.500Z"]
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db._conn.execute("UPDATE measurements SET runtime = 'y'")
