"""``hwnas profile`` against a real OpenSSH server on 127.0.0.1 (Debian's openssh-server; make test
installs it). The server runs as this user with generated host and client keys; the "device" is this
machine, running the agent of this checkout's virtual environment."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import require, require_module, sshd_or_require

from device_agent.reference import PANEL_FILES
from hwnas.remote.local_sshd import free_port, make_key, start_sshd
from hwnas.remote.ssh import HostKeyError, SSHTarget, connect, remote_command, run

_free_port = free_port


def _start_sshd(d: Path, client_pub: str):
    sshd_or_require()  # a failure under CI=true, else a skip (tests/conftest.py)
    try:
        return start_sshd(d, client_pub)
    except RuntimeError as exc:
        require("sshd", str(exc))


@pytest.fixture(scope="module")
def client_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("client")
    return make_key(d / "client_key")


def _device(tmp_path_factory: pytest.TempPathFactory, client_key: Path, name: str):
    d = tmp_path_factory.mktemp(name)
    proc, port = _start_sshd(d, client_key.with_suffix(".pub").read_text())
    yield {"port": port, "key": str(client_key), "dir": d, "pid": proc.pid}
    proc.terminate()
    proc.wait(5)


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory, client_key: Path):
    yield from _device(tmp_path_factory, client_key, "sshd")


@pytest.fixture(scope="module")
def sshd2(tmp_path_factory: pytest.TempPathFactory, client_key: Path):
    """A second server: a second device."""
    yield from _device(tmp_path_factory, client_key, "sshd2")


def _target(sshd: dict) -> SSHTarget:
    return SSHTarget("127.0.0.1", None, sshd["port"], sshd["key"])


def test_unknown_key_refused_then_accepted_and_changed_key_refused(sshd: dict, tmp_path: Path) -> None:
    kh = tmp_path / "known_hosts"
    with pytest.raises(HostKeyError, match=r"unknown host key .*SHA256:.*--accept-new-host-key"):
        connect(_target(sshd), kh)
    assert not kh.exists()
    connect(_target(sshd), kh, accept_new=True).close()
    assert f"[127.0.0.1]:{sshd['port']}" in kh.read_text()
    connect(_target(sshd), kh).close()  # now known
    # the same name with another key: always refused, even with accept_new
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    kind, b64 = other.with_suffix(".pub").read_text().split()[:2]
    kh.write_text(f"[127.0.0.1]:{sshd['port']} {kind} {b64}\n")
    with pytest.raises(HostKeyError, match="CHANGED"):
        connect(_target(sshd), kh, accept_new=True)


def test_quoted_arguments_run_nothing_extra(sshd: dict, tmp_path: Path) -> None:
    kh = tmp_path / "kh"
    client = connect(_target(sshd), kh, accept_new=True)
    marker = tmp_path / "pwned"
    try:
        for evil in (f"x; touch {marker}", f"$(touch {marker})", f"`touch {marker}`", f"a'b\"c && touch {marker}"):
            code, out, _ = run(client, remote_command(["printf", "%s", evil]))
            assert code == 0 and out == evil
        assert not marker.exists()
    finally:
        client.close()


def test_profile_end_to_end_resumes_without_duplicates(sshd: dict, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from hwnas.cli import main as hwnas_main
    from latency_db import LatencyDB

    models = tmp_path / "models"
    assert hwnas_main(["export", "--space", "nb201", "--sample", "3", "--seed", "5", "--out", str(models)]) == 0
    host_db, remote = tmp_path / "host.db", tmp_path / "device dir; $(touch x)"
    argv = ["profile", "--host", f"127.0.0.1:{sshd['port']}", "--identity", sshd["key"], "--known-hosts",
            str(tmp_path / "kh"), "--accept-new-host-key", "--no-install", "--python", sys.executable,
            "--remote-dir", str(remote), "--models", str(models), "--db", str(host_db), "--device-name",
            "pi 'four'; echo", "--warmup", "1", "--min-rounds", "3", "--max-rounds", "3", "--min-repeat-ms", "1", "--json"]  # fmt: skip
    assert hwnas_main(argv) == 0
    with LatencyDB(host_db) as db:
        first = db.measurements()
        assert len(first) == 3 and {m.status.value for m in first} == {"ok"}
        assert db.devices()[0].name == "pi 'four'; echo"
    assert (remote / "models").is_dir() and not (tmp_path / "x").exists()
    # a second run uploads nothing, measures nothing, duplicates nothing
    assert hwnas_main(argv) == 0
    with LatencyDB(host_db) as db:
        assert [m.uid for m in db.measurements()] == [m.uid for m in first]
    # measurements the host never received (a run cut off before the merge) come in with the next run;
    # rows of other device names / models never sent, and changed model metadata, on the device do not
    with LatencyDB(host_db) as db:
        sent = {m.model_sha256: db.model(m.model_sha256) for m in first}
    _plant_foreign_rows(remote / "latency.db", first[0])
    host_db.unlink()
    capsys.readouterr()
    assert hwnas_main(argv) == 0
    assert json.loads(capsys.readouterr().out)["merged"]["ignored_measurements"] == 2
    with LatencyDB(host_db) as db:
        assert sorted(m.uid for m in db.measurements()) == sorted(m.uid for m in first)
        assert [d.name for d in db.devices()] == ["pi 'four'; echo"]
        assert {sha: db.model(sha) for sha in sent} == sent and len(db.models()) == len(sent) + len(PANEL_FILES)  # + the reference panel


def _plant_foreign_rows(device_db: Path, mine) -> None:
    """Another device name's row, a row of a model never sent, and changed metadata of a sent model."""
    import dataclasses
    import sqlite3

    from latency_db import DeviceRecord, LatencyDB, ModelRecord

    with LatencyDB(device_db) as db:
        db.add_device(DeviceRecord("f" * 16, "someone-else", {}))
        db.add_model(ModelRecord("e" * 64, space="nb201", arch="never-sent"))
        db.add_measurements([dataclasses.replace(mine, uid="foreign-device", device_id="f" * 16),
                             dataclasses.replace(mine, uid="foreign-model", model_sha256="e" * 64, arch="never-sent")])
    with sqlite3.connect(device_db) as con:
        con.execute("UPDATE models SET arch = 'tampered', flops = 1 WHERE sha256 = ?", (mine.model_sha256,))


def test_profile_errors_are_one_line(sshd: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hwnas.cli import main as hwnas_main

    base = ["profile", "--models", str(tmp_path), "--db", str(tmp_path / "h.db"), "--no-install"]
    for extra in (["--host", "bad host:"], ["--host", f"127.0.0.1:{sshd['port']}", "--identity", sshd["key"],
                                            "--known-hosts", str(tmp_path / "empty_kh")],
                  ["--host", f"127.0.0.1:{_free_port()}", "--connect-timeout-s", "2"]):  # fmt: skip
        assert hwnas_main(base + extra) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("hwnas: error:") and "\n" not in err, err


@pytest.mark.parametrize("kill", ["connection", "agent"])
def test_killed_mid_run_loses_and_duplicates_nothing(sshd: dict, tmp_path: Path, kill: str) -> None:
    import signal

    from hwnas.cli import main as hwnas_main
    from hwnas.remote.profile import AgentFlags, profile_remote
    from latency_db import LatencyDB

    models = tmp_path / "models"
    assert hwnas_main(["export", "--space", "nb201", "--sample", "5", "--seed", "9", "--out", str(models)]) == 0
    seen: list[str] = []
    remote = tmp_path / "device"

    def on_line(line: str) -> None:
        seen.append(line)
        if line.startswith("[2/") and sum(x.startswith("[2/") for x in seen) == 1:  # mid-run, once
            if kill == "connection":  # the sshd processes serving this session die: the link drops
                pids = subprocess.run(["pgrep", "-P", str(sshd["pid"])], capture_output=True, text=True).stdout.split()
            else:  # the agent itself dies
                pids = subprocess.run(["pgrep", "-f", f"device_agent run --models {remote}"], capture_output=True,
                                      text=True).stdout.split()  # fmt: skip
            assert pids
            for pid in pids:
                os.kill(int(pid), signal.SIGKILL)

    summary = profile_remote(_target(sshd), models, str(tmp_path / "host.db"), python=sys.executable,
                             known_hosts=str(tmp_path / "kh"), accept_new=True, remote_dir=str(remote),
                             flags=AgentFlags(warmup=1, min_rounds=3, max_rounds=3, min_repeat_ms=1.0), on_line=on_line)  # fmt: skip
    assert summary["attempts"] == 2 and summary["agent_exit"] == 0, (summary, seen)
    assert any("reconnecting" in line for line in seen)
    with LatencyDB(tmp_path / "host.db") as db:
        ms = db.measurements()
        remote_ms = LatencyDB(remote / "latency.db").measurements()
    assert len(remote_ms) == 5 and sorted(m.uid for m in ms) == sorted(m.uid for m in remote_ms)
    assert sorted(m.model_sha256 for m in ms) == sorted({m.model_sha256 for m in ms})  # one per model
    assert {m.status.value for m in ms} == {"ok"}


def test_profile_deploys_the_agent_into_a_venv(sshd: dict, tmp_path: Path) -> None:
    """Without --no-install: a wheel of this checkout goes into REMOTE_DIR/venv (numpy and onnxruntime
    from the device's package index, here PyPI); the second run finds it installed."""
    from hwnas.cli import main as hwnas_main
    from latency_db import LatencyDB

    models = tmp_path / "models"
    assert hwnas_main(["export", "--space", "nb201", "--sample", "1", "--seed", "3", "--out", str(models)]) == 0
    remote = tmp_path / "device"
    argv = ["profile", "--host", f"127.0.0.1:{sshd['port']}", "--identity", sshd["key"], "--known-hosts",
            str(tmp_path / "kh"), "--accept-new-host-key", "--python", sys._base_executable,  # type: ignore[attr-defined]
            "--remote-dir", str(remote), "--models", str(models), "--db", str(tmp_path / "host.db"),
            "--warmup", "1", "--min-rounds", "3", "--max-rounds", "3", "--min-repeat-ms", "1", "--json"]  # fmt: skip
    assert hwnas_main(argv) == 0
    vpy = remote / "venv" / "bin" / "python"
    assert vpy.exists() and (remote / "venv" / ".hwnas-wheel-sha256").is_file()
    probe = subprocess.run([str(vpy), "-c", "import device_agent, onnxruntime, importlib.util as u; "
                            "print(u.find_spec('torch') is None)"], capture_output=True, text=True)  # fmt: skip
    assert probe.stdout.strip() == "True", probe.stderr  # the agent's venv has no torch
    stamp = (remote / "venv" / ".hwnas-wheel-sha256").stat().st_mtime
    assert hwnas_main(argv) == 0  # installed already: not reinstalled
    assert (remote / "venv" / ".hwnas-wheel-sha256").stat().st_mtime == stamp
    with LatencyDB(tmp_path / "host.db") as db:
        assert len(db.measurements()) == 1


def test_silent_device_times_out_instead_of_hanging(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import threading

    from hwnas.cli import main as hwnas_main

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    held: list[socket.socket] = []
    threading.Thread(target=lambda: held.append(server.accept()[0]), daemon=True).start()
    (tmp_path / "m.onnx").write_bytes(b"never read")
    t0 = time.perf_counter()
    code = hwnas_main(["profile", "--host", f"127.0.0.1:{server.getsockname()[1]}", "--models", str(tmp_path),
                       "--no-install", "--connect-timeout-s", "1.5", "--known-hosts", str(tmp_path / "kh")])
    assert code == 2 and time.perf_counter() - t0 < 20
    assert "did not answer within 1.5 s" in capsys.readouterr().err
    server.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_inventory_profiles_devices_concurrently(sshd: dict, sshd2: dict, tmp_path: Path, backend: str,
                                                 capsys: pytest.CaptureFixture[str], request) -> None:
    from hwnas.cli import main as hwnas_main
    from latency_db import LatencyDB

    models = tmp_path / "models"
    assert hwnas_main(["export", "--space", "nb201", "--sample", "2", "--seed", "4", "--out", str(models)]) == 0
    inv = tmp_path / "devices.toml"
    rows = [("pi-a", sshd["port"]), ("pi-b", sshd2["port"]), ("gone", _free_port())]
    inv.write_text("".join(
        f'[[device]]\nname = "{n}"\nhost = "127.0.0.1:{p}"\nkey = "{sshd["key"]}"\npython = "{sys.executable}"\n'
        f'threads = 1\nremote_dir = "{tmp_path / n}"\n\n' for n, p in rows))
    db = tmp_path / "fleet.db" if backend == "sqlite" else request.getfixturevalue("pg_url")()
    code = hwnas_main(["profile", "--inventory", str(inv), "--models", str(models), "--db", str(db), "--no-install",
                       "--known-hosts", str(tmp_path / "kh"), "--accept-new-host-key", "--connect-timeout-s", "3",
                       "--warmup", "1", "--min-rounds", "3", "--max-rounds", "3", "--min-repeat-ms", "1"])  # fmt: skip
    out = capsys.readouterr()
    assert code == 1  # one device is unreachable; the others are profiled
    assert "pi-a: ok, 2 new" in out.out and "pi-b: ok, 2 new" in out.out and "gone: FAILED: cannot connect" in out.out
    assert "[pi-a] [1/2]" in out.err and "[pi-b] [2/2]" in out.err  # one progress stream per device
    with LatencyDB(db) as ldb:
        names = sorted(d.name for d in ldb.devices())
        assert names == ["pi-a", "pi-b"] and len(ldb.measurements(device="pi-a")) == 2
        assert len(ldb.measurements(device="pi-b")) == 2


def test_profile_with_the_tvm_runtime_over_ssh(sshd: dict, tmp_path: Path) -> None:
    require_module("tvm")
    from hwnas.cli import main as hwnas_main
    from latency_db import LatencyDB

    models = tmp_path / "models"
    assert hwnas_main(["export", "--space", "nb201", "--sample", "1", "--seed", "8", "--out", str(models)]) == 0
    argv = ["profile", "--host", f"127.0.0.1:{sshd['port']}", "--identity", sshd["key"], "--known-hosts",
            str(tmp_path / "kh"), "--accept-new-host-key", "--no-install", "--python", sys.executable,
            "--remote-dir", str(tmp_path / "dev"), "--models", str(models), "--db", str(tmp_path / "h.db"),
            "--runtime", "tvm", "--tvm-target", '{"kind": "llvm", "num-cores": 1}', "--warmup", "1", "--min-rounds", "3", "--max-rounds", "3",
            "--min-repeat-ms", "5", "--json"]  # fmt: skip
    assert hwnas_main(argv) == 0
    with LatencyDB(tmp_path / "h.db") as db:
        (m,) = db.measurements(runtime="tvm")
    assert m.config["tvm_target"] == '{"kind":"llvm","num-cores":1}' and "tvm_version" in m.environment


def test_search_closed_loop_measures_on_the_host_device(sshd: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        toy_db_of) -> None:  # fmt: skip
    """``hwnas search --host``: the closed loop measures uncertain candidates and the answer on the
    SSH device that ``--device`` names, merging each measurement into the host DB; a host that is
    another device than ``--device`` is refused in one line."""
    import statistics

    from hwnas.cli import main as hwnas_main
    from latency_db import LatencyDB

    models, host_db, remote = tmp_path / "models", tmp_path / "host.db", tmp_path / "device"
    ssh = ["--host", f"127.0.0.1:{sshd['port']}", "--identity", sshd["key"], "--known-hosts", str(tmp_path / "kh")]
    assert hwnas_main(["export", "--space", "nb201", "--sample", "4", "--seed", "3", "--out", str(models)]) == 0
    assert hwnas_main(["profile", *ssh, "--accept-new-host-key", "--no-install", "--python", sys.executable,
                       "--remote-dir", str(remote), "--models", str(models), "--db", str(host_db), "--device-name", "board",
                       "--warmup", "1", "--min-rounds", "3", "--max-rounds", "3", "--min-repeat-ms", "1", "--json"]) == 0  # fmt: skip
    with LatencyDB(host_db) as db:
        before = len(db.measurements())
        budget = statistics.median(m.median_ms for m in db.measurements())
    out = tmp_path / "search"
    remote_flags = [*ssh, "--no-install", "--remote-python", sys.executable, "--remote-dir", str(remote)]
    capsys.readouterr()
    code = hwnas_main(["search", "--strategy", "random", "--latency-source", "flops", "--db", str(host_db), "--device",
                       "board", *remote_flags, "--latency-budget-ms", f"{budget:.4f}", "--budget-evals", "4",
                       "--measure-max", "2", "--seed", "0", "--out", str(out), "--json"])  # fmt: skip
    err = capsys.readouterr().err
    assert code in (0, 2), err
    log = json.loads((out / "measured.json").read_text())["measurements"]
    assert 1 <= len(log) <= 2  # the answer at least is measured, within the cap
    with LatencyDB(host_db) as db:
        assert len(db.measurements()) == before + len(log)  # each merged into the host DB, under the board
        assert {d.name for d in db.devices()} == {"board"}
    if code == 0:
        result = json.loads((out / "result.json").read_text())
        assert result["best"]["latency_measured"] and "127.0.0.1" in result["latency_source"]
    elif "no feasible architecture" in err:
        # four random cells against the median of four others, on a shared machine: all four may
        # be slower; then every one the loop measured was measured over the budget
        assert all(m["measured_ms"] > float(f"{budget:.4f}") for m in log), (log, budget)
    else:
        assert "no answer confirmed by measurement" in err, err
    # --device names a device the host is not (here the inventory's entry for it points at the
    # board): refused in one line, nothing uploaded or stored
    (tmp_path / "toy").mkdir()
    toy = toy_db_of(tmp_path / "toy", [json.loads(line)["arch"] for line in (models / "manifest.jsonl").read_text().splitlines()])
    inventory = tmp_path / "devices.toml"
    inventory.write_text(f'[[device]]\nname = "toy"\nhost = "127.0.0.1"\nport = {sshd["port"]}\nkey = "{sshd["key"]}"\n'
                         f'python = "{sys.executable}"\nremote_dir = "{remote}"\n')  # fmt: skip
    code = hwnas_main(["search", "--strategy", "random", "--latency-source", "flops", "--db", str(toy), "--device", "toy",
                       "--inventory", str(inventory), "--known-hosts", str(tmp_path / "kh"), "--no-install",
                       "--latency-budget-ms", "1000", "--budget-evals", "2", "--out", str(tmp_path / "other")])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and "is another device" in err and "\n" not in err, err
    with LatencyDB(toy) as db:
        assert [d.name for d in db.devices()] == ["toy"] and len(db.measurements()) == 4  # nothing uploaded or merged
