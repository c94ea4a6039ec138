"""Profile a device over SSH: upload candidates, run ``device_agent run`` there, merge its results.

Flow of :func:`profile_remote` (one device): connect with strict host keys; check the remote agent's
protocol version against this one's; upload the ``.onnx`` files (and ``manifest.jsonl``) by SFTP,
skipping those whose sha256 already matches on the device (uploads go to a temporary name, then an
atomic rename); run the agent with its progress lines streamed back; copy the device's database
(with its WAL) back and merge into the host database only what this run asked for: the
measurements of the device it profiled (its id, asked of the device's agent for ``--device-name``)
of the models it sent (and of the agent's drift reference). Everything else in the device's
database (rows of other device names on the same box, models sent by other runs) is ignored and
counted; the models' metadata is taken from the files sent, never from the device's rows
(:class:`latency_db.merge.MergeScope`).

Nothing is lost and nothing is duplicated: the agent stores each measurement on the device as it
is taken and skips models already measured there, and the host merge matches measurements by uid.
A connection dropped mid-run is retried (``retries`` times): the agent left running from the
lost connection is stopped first (SIGINT, then SIGKILL after 10 s; it keeps what it stored), so two
agents never measure the same model; the agent run again measures only what is missing, and the
merge brings in everything stored so far.
"""

from __future__ import annotations

import json
import posixpath
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from hwnas.remote.ssh import SSHTarget, connect, remote_command, run, stream

#: Remote helper: sha256 of each file of a folder, as one JSON object (no shell globbing).
_HASH_SCRIPT = (
    "import hashlib,json,os,sys\n"
    "d=sys.argv[1]\n"
    "out={}\n"
    "for n in (os.listdir(d) if os.path.isdir(d) else []):\n"
    "    p=os.path.join(d,n)\n"
    "    if os.path.isfile(p):\n"
    "        out[n]=hashlib.sha256(open(p,'rb').read()).hexdigest()\n"
    "print(json.dumps(out))\n"
)


@dataclass(frozen=True)
class AgentFlags:
    """``device_agent run`` flags passed through (None: the agent's default)."""

    runtime: str | None = None
    threads: int | None = None
    warmup: int | None = None
    repeats: int | None = None
    min_repeat_ms: float | None = None
    timeout_s: float | None = None
    device_name: str | None = None
    tvm_target: str | None = None
    tvm_tune_trials: int | None = None
    protocol: str | None = None
    min_rounds: int | None = None
    max_rounds: int | None = None
    target_ci: float | None = None
    time_cap_s: float | None = None
    batch_size: int | None = None
    tvm_db: str | None = None  # a local database folder: shipped, then passed as the device's copy

    def argv(self) -> list[str]:
        """The flags, except ``tvm_db`` (a local path: :func:`ship_tvm_db` gives the device's)."""
        out: list[str] = []
        for name, value in vars(self).items():
            if value is not None and name != "tvm_db":
                out += [f"--{name.replace('_', '-')}", str(value)]
        return out


def tvm_db_files(folder: str) -> list[Path]:
    """The files of a TVM tuning database folder (``device_agent tvm-tune``), checked here first so
    that a corrupt one is refused before connecting; ``ValueError`` (one line)."""
    from device_agent import tvm_tune
    from device_agent.runtimes.tvm_rt import DB_FILES

    tvm_tune.read_db(folder)
    return [Path(folder) / name for name in (*DB_FILES, tvm_tune.MANIFEST)]


def ship_tvm_db(client: Any, folder: str, base: str, python: str) -> str:
    """Upload the database ``folder`` to ``<base>/tvm-db/<its name>`` (files already there with the
    same sha256 are kept); the device's path, for ``device_agent run --tvm-db``."""
    files = tvm_db_files(folder)
    remote = posixpath.join(base, "tvm-db", Path(folder).resolve().name)
    run(client, remote_command(["mkdir", "-p", remote]))
    upload(client, files, remote, python)
    return remote


#: Remote helper: the device id the agent stores its rows under for ``--device-name`` argv[1] ('' = default).
_DEVICE_ID_SCRIPT = (
    "import sys\n"
    "from device_agent.fingerprint import device_fingerprint, device_id\n"
    "print(device_id(device_fingerprint(sys.argv[1] or None)))\n"
)


def merged_text(merged: dict[str, int]) -> str:
    """``"2 new measurement(s)"``, with ``" (+1 of the drift reference)"`` when the device's
    interleaved run also stored its reference's rows (see ``latency_db.merge``), and ``"; ignored 3
    rows for other devices/models"`` when the device's database held rows this run did not ask for."""
    refs = int(merged.get("reference_measurements", 0))
    ignored = int(merged.get("ignored_measurements", 0))
    text = f"{int(merged.get('measurements', 0)) - refs} new measurement(s)"
    text += f" (+{refs} of the drift reference)" if refs else ""
    return text + (f"; ignored {ignored} rows for other devices/models" if ignored else "")


def merge_scope(files: Sequence[Path], device_id: str) -> Any:
    """The :class:`latency_db.merge.MergeScope` of one run: ``device_id``, and the models of the
    ``.onnx`` ``files`` sent (records built here from the files and their ``manifest.jsonl``, as the
    agent builds them) plus the agent's drift references."""
    from device_agent.models import discover_models
    from device_agent.reference import reference_panel
    from latency_db.merge import MergeScope

    onnx = [f for f in files if f.suffix == ".onnx"]
    folder = onnx[0].parent
    sent = {f.name for f in onnx}
    models = [m for m in discover_models(folder, warn=lambda message: None) if m.path.name in sent]
    return MergeScope(frozenset({device_id}), {m.sha256: m.record for m in [*models, *reference_panel()]})


def remote_device_id(client: Any, python: str, device_name: str | None) -> str:
    """The id under which the device's agent (run by ``python``) stores rows for ``device_name``
    (None: its default, the hostname); ``RuntimeError`` (one line) when it cannot be read."""
    code, out, err = run(client, remote_command([python, "-c", _DEVICE_ID_SCRIPT, device_name or ""]))
    found = out.strip().splitlines()[-1:] if code == 0 else []
    if not found or not re.fullmatch(r"[0-9a-f]{16}", found[0]):
        raise RuntimeError(f"cannot read the device id from the device's agent: {' '.join((err or out).split())[-200:]}")
    return found[0]


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _local_files(models: Path) -> list[Path]:
    if models.is_file() and models.suffix == ".onnx":
        return [models]
    if not models.is_dir():
        raise ValueError(f"--models {models}: not a folder of .onnx files")
    files = sorted(models.glob("*.onnx")) + ([models / "manifest.jsonl"] if (models / "manifest.jsonl").is_file() else [])
    if not any(f.suffix == ".onnx" for f in files):
        raise ValueError(f"--models {models}: no .onnx files")
    return files


def agent_version(client: Any, python: str) -> tuple[str, int]:
    """``(agent version, protocol version)`` of the agent the device's ``python`` runs; ``RuntimeError``
    (one line) when it is missing."""
    code, out, err = run(client, remote_command([python, "-m", "device_agent", "--version"]))
    m = re.search(r"device_agent (\S+) \(protocol (\d+)\)", out + err)
    if code != 0 or not m:
        why = " ".join((err or out).split())[-200:]
        raise RuntimeError(f"no device agent on the device with {python} ({why}); install it (drop --no-install) "
                           "or pass --python")
    return m.group(1), int(m.group(2))


def upload(client: Any, files: Sequence[Path], remote_dir: str, python: str) -> tuple[int, int]:
    """Upload ``files`` into ``remote_dir`` unless the same sha256 is there; ``(uploaded, skipped)``."""
    code, out, err = run(client, remote_command([python, "-c", _HASH_SCRIPT, remote_dir]))
    if code != 0:
        raise RuntimeError(f"cannot list {remote_dir} on the device: {' '.join(err.split())[-200:]}")
    remote = json.loads(out.strip().splitlines()[-1])
    sftp = client.open_sftp()
    sent = 0
    try:
        for f in files:
            if remote.get(f.name) == _sha256(f):
                continue
            tmp = posixpath.join(remote_dir, f".{f.name}.part")
            sftp.put(str(f), tmp)
            sftp.posix_rename(tmp, posixpath.join(remote_dir, f.name))
            sent += 1
    finally:
        sftp.close()
    return sent, len(files) - sent


def pull_and_merge(client: Any, remote_db: str, host_db: str, scope: Any) -> dict[str, int]:
    """Copy the device's database (and its WAL, if any) back and merge the rows of ``scope`` (a
    :class:`latency_db.merge.MergeScope`) into ``host_db``."""
    from latency_db import LatencyDB

    sftp = client.open_sftp()
    with tempfile.TemporaryDirectory(prefix="hwnas-pull-") as tmp:
        local = Path(tmp) / "device.db"
        try:
            sftp.get(remote_db, str(local))
        except FileNotFoundError:
            sftp.close()
            return {"measurements": 0, "measurements_skipped": 0, "models": 0, "devices": 0, "ignored_measurements": 0}
        for suffix in ("-wal",):
            try:
                sftp.get(remote_db + suffix, str(local) + suffix)
            except FileNotFoundError:
                pass
        sftp.close()
        LatencyDB(local).close()  # replays the WAL into the copy
        with LatencyDB(host_db) as db:
            return db.merge_from(local, scope)


_PID_TAG = "HWNAS_AGENT_PID"


def stop_agent(client: Any, pid: int) -> None:
    """Stop the remote agent ``pid`` left by a lost connection (SIGINT, then SIGKILL after ~10 s)."""
    script = (f"kill -INT {int(pid)} 2>/dev/null || exit 0; i=0; while kill -0 {int(pid)} 2>/dev/null; do "
              f"i=$((i+1)); [ $i -ge 50 ] && kill -KILL {int(pid)} 2>/dev/null && break; sleep 0.2; done; exit 0")
    run(client, script, timeout_s=30.0)


def profile_remote(target: SSHTarget, models: Path, host_db: str, *, python: str = "python3",
                   known_hosts: str | None = None, accept_new: bool = False, remote_dir: str = ".hwnas-agent",
                   flags: AgentFlags = AgentFlags(), retries: int = 2, connect_timeout_s: float = 15.0,
                   install: bool = False, wheel: Path | None = None,
                   on_line: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
    """Profile ``models`` on ``target`` into ``host_db`` (see the module docstring); a summary dict.

    Raises :class:`~hwnas.remote.ssh.HostKeyError`, ``ConnectionError`` (the device never answers),
    ``RuntimeError`` (no agent / protocol mismatch / the run failed after ``retries`` reconnects),
    ``ValueError`` (bad ``models``). With ``install``, a wheel of this checkout is deployed into
    ``<remote_dir>/venv`` first (:func:`hwnas.remote.deploy.deploy_agent`, with ``python`` as the
    device's base interpreter) and the agent runs from there: ``wheel`` when given (a fleet builds
    it once for all its devices), else one built here.
    """
    files = _local_files(models)
    if flags.tvm_db:
        if flags.runtime != "tvm":
            raise ValueError("--tvm-db needs --runtime tvm")
        tvm_db_files(flags.tvm_db)
    with tempfile.TemporaryDirectory(prefix="hwnas-wheel-") as wheel_dir:
        if install and wheel is None:
            from hwnas.remote.deploy import build_wheel

            on_line("building the agent wheel of this checkout")
            wheel = build_wheel(Path(wheel_dir))
        return _profile_loop(target, files, host_db, python, known_hosts, accept_new, remote_dir, flags, retries,
                             connect_timeout_s, wheel if install else None, on_line)  # fmt: skip


def _profile_loop(target: SSHTarget, files: list[Path], host_db: str, python: str, known_hosts: str | None,
                  accept_new: bool, remote_dir: str, flags: AgentFlags, retries: int, connect_timeout_s: float,
                  wheel: Path | None, on_line: Callable[[str], None]) -> dict[str, Any]:
    from device_agent import PROTOCOL_VERSION

    attempts, pid = 0, None

    def lines(text: str) -> None:
        nonlocal pid
        if text.startswith(_PID_TAG + " "):
            pid = int(text.split()[1])
        else:
            on_line(text)

    while True:
        attempts += 1
        try:
            client = connect(target, known_hosts, accept_new, connect_timeout_s)
        except ConnectionError:
            if attempts == 1 or attempts > retries:
                raise
            on_line("reconnect failed; retrying in 3 s")
            time.sleep(3.0)
            continue
        try:
            _, home, _ = run(client, "pwd")
            base = remote_dir if remote_dir.startswith("/") else posixpath.join(home.strip(), remote_dir)
            mdir, rdb = posixpath.join(base, "models"), posixpath.join(base, "latency.db")
            run(client, remote_command(["mkdir", "-p", mdir]))
            if pid is not None:
                stop_agent(client, pid)
                pid = None
            agent_python = python
            if wheel is not None:
                from hwnas.remote.deploy import deploy_agent

                agent_python = deploy_agent(client, base, python, wheel, on_line,
                                            extras=("tvm",) if flags.runtime == "tvm" else ())
            version, protocol = agent_version(client, agent_python)
            if protocol != PROTOCOL_VERSION:
                raise RuntimeError(f"the device's agent {version} speaks protocol {protocol}, this host {PROTOCOL_VERSION}: "
                                   "install the same hwnas version on both")
            device_id = remote_device_id(client, agent_python, flags.device_name)
            sent, kept = upload(client, files, mdir, agent_python)
            argv = [agent_python, "-m", "device_agent", "run", "--models", mdir, "--db", rdb, "--progress", "lines",
                    *flags.argv()]
            if flags.tvm_db:
                argv += ["--tvm-db", ship_tvm_db(client, flags.tvm_db, base, agent_python)]
            t0 = time.perf_counter()
            try:
                code = stream(client, f"echo {_PID_TAG} $$; exec {remote_command(argv)}", lines)
            except (OSError, EOFError, TimeoutError) as exc:
                if attempts > retries:
                    raise RuntimeError(f"the run on {target.host} broke off {attempts} times ({exc}); "
                                       "re-run the same command to resume") from None
                on_line(f"connection lost ({exc}); reconnecting")
                continue
            merged = pull_and_merge(client, rdb, host_db, merge_scope(files, device_id))
            return {"host": target.host, "port": target.port, "agent_version": version, "protocol": protocol,
                    "python": agent_python, "uploaded": sent, "already_there": kept, "agent_exit": code,
                    "attempts": attempts, "run_s": round(time.perf_counter() - t0, 2), "remote_db": rdb, "device_id": device_id,
                    "db": host_db, "merged": merged}  # fmt: skip
        finally:
            client.close()


__all__ = ["AgentFlags", "agent_version", "merge_scope", "merged_text", "profile_remote", "pull_and_merge",
           "remote_device_id", "ship_tvm_db", "stop_agent", "tvm_db_files", "upload"]
