"""Shared fixtures: paths to the reference data, tiny exported candidate folders, and the policy for
services and optional packages the suite needs (:func:`require`)."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import pytest

#: Each service or optional package some tests need, with how to get it (``make test`` installs all).
INSTALL_HINTS = {
    "sshd": "make services (Debian's openssh-server: apt-get install openssh-server)",
    "postgresql": "make services (Debian's postgresql: apt-get install postgresql)",
    "psycopg": "pip install 'hwnas[postgres]'",
    "ray": "pip install 'hwnas[ray]'",
    "tvm": "pip install 'hwnas[tvm]'",
    "onnx": "pip install 'hwnas[host]'",
    "torch": "pip install 'hwnas[host]'",
}


def on_ci() -> bool:
    """Whether the suite runs under CI (``CI=true``, as GitHub Actions and most CI systems set it)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def require(what: str, why: str = "") -> NoReturn:
    """Stop the calling test because ``what`` (a key of :data:`INSTALL_HINTS`) is missing: a failure
    under CI (a green CI run must not hide an untested feature), a skip elsewhere; both say how to
    install it. Call it where a test would call ``pytest.skip``/``importorskip`` (also at module level)."""
    message = f"{what} is missing{f' ({why})' if why else ''}; install it: {INSTALL_HINTS[what]}"
    if on_ci():
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message, allow_module_level=True)


def sshd_or_require() -> str:
    """The OpenSSH server the SSH tests start (``$HWNAS_TEST_SSHD``, else Debian's ``sshd``), or
    :func:`require` when it is not there."""
    from hwnas.remote.local_sshd import SSHD

    path = os.environ.get("HWNAS_TEST_SSHD") or SSHD
    if not os.path.exists(path):
        require("sshd", f"no {path}")
    return path


def require_module(name: str, what: str | None = None) -> ModuleType:
    """``importlib.import_module(name)``, or :func:`require` (``what``, default ``name``) when it fails."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        require(what or name.split(".")[0], str(exc))


ROOT = Path(__file__).resolve().parent.parent
NB201_DATA = Path(os.environ.get("HWNAS_NB201_DATA", ROOT.parent / "shared" / "datasets" / "nb201"))

#: Test files that take longest (TVM builds, SSH deployments, killed searches; ~1-3 min each on the
#: 2-core CI machine), run first: ``make test`` hands whole files to its workers in collection order,
#: and one of these handed out last would leave the other worker idle for minutes.
LONGEST_FIRST = ("test_tvm_runtime.py", "test_profile_ssh.py", "test_tvm_tune.py", "test_executors.py",
                 "test_ray_executor.py", "test_search_matrix.py", "test_dashboard.py", "test_arch_encode.py",
                 "test_search_outputs.py", "test_codesign.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Collects the files of :data:`LONGEST_FIRST` first, in that order; the rest keep theirs."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture(scope="session")
def nb201_accuracy_csv() -> Path:
    path = NB201_DATA / "accuracy.csv"
    if not path.exists():
        pytest.skip(f"NAS-Bench-201 reference table not found at {path}")
    return path


@pytest.fixture(scope="session")
def nb201_candidates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four exported NB201 candidates (real torch -> ONNX export), shared by the session."""
    from hwnas.export import export_archs
    from hwnas.space import NB201Space

    space = NB201Space()
    out = tmp_path_factory.mktemp("nb201_candidates")
    export_archs(space, [space.from_index(i) for i in (0, 1, 2, 3)], out)
    return out


@pytest.fixture
def torch_one_thread():
    """Torch at one thread for the test, restored after: two threads on a shared 2-core machine
    spin-wait on each other (up to 100x slower). Evaluators never change the count themselves."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's digits as :class:`hwnas.evaluate.datasets.ImageData` (seed 0 split)."""
    from hwnas.evaluate.datasets import load_dataset

    return load_dataset("digits")


def toy_latency(arch: str) -> float:
    """A stand-in device for search tests: conv3x3 edges cost 2 ms, conv1x1 0.5 ms, on top of 1 ms."""
    ops = [t.split("~")[0] for t in arch.split("|") if t and t != "+"]
    return 1.0 + 2.0 * ops.count("nor_conv_3x3") + 0.5 * ops.count("nor_conv_1x1")


def import_toy_latencies(folder: Path, archs: list[str]) -> Path:
    """A latency DB holding :func:`toy_latency` of ``archs`` as device "toy" (via ``hwnas db import-csv``)."""
    import csv

    from hwnas.cli import main

    table = folder / "lat.csv"
    with open(table, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["space", "arch", "device", "latency_ms"])
        w.writerows(["nb201", a, "toy", toy_latency(a)] for a in archs)
    path = folder / "lat.db"
    assert main(["db", "import-csv", str(table), "--db", str(path)]) == 0
    return path


@pytest.fixture(scope="session")
def toy_lat():
    """:func:`toy_latency`, for tests that compare against the stand-in device."""
    return toy_latency


@pytest.fixture(scope="session")
def toy_db_of():
    """:func:`import_toy_latencies`: build a toy-device DB of chosen cells."""
    return import_toy_latencies


@pytest.fixture(scope="session")
def toy_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every NB201 cell's :func:`toy_latency` on device "toy", in a latency DB shared by the session."""
    from hwnas.space import NB201Space

    return import_toy_latencies(tmp_path_factory.mktemp("toy"), [a.spec for a in NB201Space().enumerate()])


def _pg_bin() -> Path | None:
    import glob

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@pytest.fixture(scope="session")
def pg_url():
    """A PostgreSQL server from Debian's packages (make test installs postgresql), started for the
    session on 127.0.0.1 as the ``postgres`` user, trust auth; yields a URL factory: each call
    creates a fresh database and returns its ``postgresql://`` URL."""
    import shutil
    import socket
    import subprocess
    import tempfile
    import uuid

    require_module("psycopg")
    bindir = _pg_bin()
    if bindir is None or shutil.which("runuser") is None:
        require("postgresql", "no /usr/lib/postgresql/*/bin/initdb, or no runuser")
    root = Path(tempfile.mkdtemp(prefix="hwnas-pg-", dir="/tmp"))
    root.chmod(0o755)
    as_pg: list[str] = [] if os.getuid() != 0 else ["runuser", "-u", "postgres", "--"]
    if as_pg:
        shutil.chown(root, "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run([*as_pg, str(bindir / "initdb"), "-D", str(root / "data"), "-A", "trust", "-U", "hwnas",
                    "--no-sync"], check=True, capture_output=True)  # fmt: skip
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    start = subprocess.run([*as_pg, str(bindir / "pg_ctl"), "-D", str(root / "data"), "-o", opts, "-l",
                            str(root / "log"), "-w", "start"], capture_output=True, text=True)  # fmt: skip
    if start.returncode != 0:
        require("postgresql", f"it did not start: {start.stderr[-300:]}")
    import psycopg

    def make() -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(f"postgresql://hwnas@127.0.0.1:{port}/postgres", autocommit=True) as con:
            con.execute(f"CREATE DATABASE {name}")
        return f"postgresql://hwnas@127.0.0.1:{port}/{name}"

    yield make
    subprocess.run([*as_pg, str(bindir / "pg_ctl"), "-D", str(root / "data"), "-m", "immediate", "stop"],
                   capture_output=True)  # fmt: skip
    shutil.rmtree(root, ignore_errors=True)


def _kill_mid_search(argv: list[str], out: Path, after: int = 3) -> tuple[int, list[tuple]]:
    """Start the search command ``argv`` (in its own process group), SIGKILL the group once
    ``after`` trials of ``out/study.db`` are finished (or 240 s passed); returns how many were
    finished and their ``(number, arch, state, score)`` rows."""
    import signal
    import sqlite3
    import subprocess
    import time

    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    done, deadline = 0, time.monotonic() + 240
    while time.monotonic() < deadline and done < after:
        time.sleep(0.5)
        if (out / "study.db").exists():
            with sqlite3.connect(out / "study.db") as con:
                try:
                    done = con.execute("SELECT COUNT(*) FROM trials WHERE state != 'pending'").fetchone()[0]
                except sqlite3.OperationalError:
                    done = 0
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its workers
    proc.wait()
    with sqlite3.connect(out / "study.db") as con:
        rows = con.execute("SELECT number, arch, state, score FROM trials WHERE state != 'pending'").fetchall()
    return done, rows


@pytest.fixture(scope="session")
def kill_mid_search():
    """:func:`_kill_mid_search`: kill a search command mid-run (driver-fault tests)."""
    return _kill_mid_search


def _wait_for_measurements(db_path: Path, timeout_s: float = 60.0) -> list:
    """Polls ``db_path`` until it holds a measurement (read-only; the writer may still be creating it)."""
    import time

    from latency_db import LatencyDB

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        time.sleep(0.05)
        if db_path.exists():
            try:
                with LatencyDB(db_path, read_only=True) as db:
                    rows = db.measurements()
            except Exception:  # noqa: BLE001 - file still being created
                rows = []
            if rows:
                return rows
    return []


@pytest.fixture(scope="session")
def wait_for_measurements():
    """``wait(db_path, timeout_s=60) -> rows``: the first measurements a running agent stored, or []."""
    return _wait_for_measurements


def default_sigint() -> None:
    """``preexec_fn`` for a child that a test interrupts with SIGINT: a shell that starts jobs in the
    background leaves SIGINT ignored, and Python keeps an ignored SIGINT ignored."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(scope="session")
def pixel3() -> dict[str, float]:
    """NAS-Bench-201's published pixel3 latencies (``../shared/datasets/nb201``): arch string -> ms."""
    import csv

    path = NB201_DATA / "latency_ms.csv"
    if not path.exists():
        pytest.fail(f"NAS-Bench-201 latency table missing at {path}")
    with open(path) as f:
        return {r["arch_str"]: float(r["pixel3"]) for r in csv.DictReader(f)}
