"""A fleet of devices: the ``--inventory devices.toml`` file and profiling its devices concurrently.

Inventory format (TOML, one ``[[device]]`` table per device; ``name`` and ``host`` required)::

    [[device]]
    name = "pi4"                 # device name in the latency DB (device_agent --device-name)
    host = "raspberrypi.local"   # or user@host:port, or a ~/.ssh/config Host alias
    user = "pi"
    port = 22
    key = "~/.ssh/id_ed25519"
    python = "/usr/bin/python3"
    runtime = "onnxruntime"
    threads = 4
    remote_dir = ".hwnas-agent"  # working folder on the device

:func:`profile_fleet` profiles every device in its own thread into one host database (the merges
are SQLite transactions; the latency DB takes concurrent writers) and reports each device's outcome;
one device failing does not stop the others.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from hwnas.remote.profile import AgentFlags, merged_text, profile_remote
from hwnas.remote.ssh import SSHTarget

_FIELDS = {"name": str, "host": str, "user": str, "port": int, "key": str, "python": str, "runtime": str,
           "threads": int, "remote_dir": str}  # fmt: skip


@dataclass(frozen=True)
class DeviceEntry:
    """One inventory device (see the module docstring)."""

    name: str
    host: str
    user: str | None = None
    port: int | None = None
    key: str | None = None
    python: str = "python3"
    runtime: str | None = None
    threads: int | None = None
    remote_dir: str = ".hwnas-agent"

    def target(self, ssh_config: str | None = None) -> SSHTarget:
        """The SSH target: ``host`` parsed, then ``user``/``port``/``key``, then ``~/.ssh/config``."""
        t = SSHTarget.parse(self.host)
        t = SSHTarget(t.host, self.user or t.user, self.port or t.port,
                      os.path.expanduser(self.key) if self.key else None)  # fmt: skip
        return t.with_ssh_config(ssh_config)


def load_inventory(path: str | os.PathLike[str]) -> list[DeviceEntry]:
    """The devices of an inventory file; ``ValueError`` (one line) naming the file, device and field."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        raise ValueError("--inventory needs Python 3.11 or newer (tomllib)") from None

    p = Path(path)
    if not p.is_file():
        raise ValueError(f"--inventory {p}: no such file")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"--inventory {p}: not valid TOML: {exc}") from None
    extra = sorted(set(data) - {"device"})
    if extra or not isinstance(data.get("device"), list) or not data["device"]:
        raise ValueError(f"--inventory {p}: expected [[device]] tables only" + (f", found {', '.join(extra)}" if extra else ""))
    out: list[DeviceEntry] = []
    for i, item in enumerate(data["device"], start=1):
        where = f"--inventory {p}: device {i}"
        unknown = sorted(set(item) - set(_FIELDS))
        if unknown:
            raise ValueError(f"{where}: unknown field {unknown[0]!r}; allowed: {', '.join(_FIELDS)}")
        for field in ("name", "host"):
            if not item.get(field):
                raise ValueError(f"{where}: {field} is required")
        for field, kind in _FIELDS.items():
            if field in item and (not isinstance(item[field], kind) or isinstance(item[field], bool)):
                raise ValueError(f"{where} ({item['name']}): {field} must be a {kind.__name__}, got {item[field]!r}")
        if any(d.name == item["name"] for d in out):
            raise ValueError(f"{where}: the name {item['name']!r} is used twice")
        entry = DeviceEntry(**item)
        try:
            entry.target(ssh_config=os.devnull)
        except ValueError as exc:
            raise ValueError(f"{where} ({entry.name}): {exc}") from None
        out.append(entry)
    return out


def profile_fleet(devices: list[DeviceEntry], models: Path, host_db: str, *, flags: AgentFlags,
                  known_hosts: str | None = None, accept_new: bool = False, install: bool = True,
                  ssh_config: str | None = None, retries: int = 2, connect_timeout_s: float = 15.0,
                  on_status: Callable[[str, str], None] = lambda name, text: None) -> list[dict[str, Any]]:
    """Profile every device concurrently; per device, in inventory order, ``{"name", "ok", ...}``:
    the :func:`profile_remote` summary, or ``"error"`` (one line). ``on_status(name, text)`` gets each
    device's progress lines (from its own thread). With ``install``, the agent wheel of this checkout
    is built once for the run (not once per device thread) and deployed to every device; a failed
    build fails every device with its message."""
    with tempfile.TemporaryDirectory(prefix="hwnas-wheel-") as wheel_dir:
        wheel, failed = None, None
        if install:
            from hwnas.remote.deploy import build_wheel

            for dev in devices:
                on_status(dev.name, "building the agent wheel of this checkout (once for the fleet)")
            try:
                wheel = build_wheel(Path(wheel_dir))
            except RuntimeError as exc:
                failed = " ".join(str(exc).split())
        if failed is not None:
            return [{"name": dev.name, "ok": False, "error": failed} for dev in devices]
        return _profile_devices(devices, models, host_db, flags, known_hosts, accept_new, install, wheel, ssh_config,
                                retries, connect_timeout_s, on_status)  # fmt: skip


def _profile_devices(devices: list[DeviceEntry], models: Path, host_db: str, flags: AgentFlags, known_hosts: str | None,
                     accept_new: bool, install: bool, wheel: Path | None, ssh_config: str | None, retries: int,
                     connect_timeout_s: float, on_status: Callable[[str, str], None]) -> list[dict[str, Any]]:
    """:func:`profile_fleet` after the wheel is built: one thread per device."""
    lock = threading.Lock()

    def one(dev: DeviceEntry) -> dict[str, Any]:
        def line(text: str) -> None:
            with lock:
                on_status(dev.name, text)

        dev_flags = dataclasses.replace(flags, runtime=dev.runtime or flags.runtime,
                                        threads=dev.threads or flags.threads, device_name=dev.name)
        try:
            summary = profile_remote(dev.target(ssh_config), models, host_db, python=dev.python,
                                     known_hosts=known_hosts, accept_new=accept_new, remote_dir=dev.remote_dir,
                                     flags=dev_flags, retries=retries, connect_timeout_s=connect_timeout_s,
                                     install=install, wheel=wheel, on_line=line)  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - one device's failure is reported, the fleet goes on
            line(f"failed: {' '.join(str(exc).split())}")
            return {"name": dev.name, "ok": False, "error": " ".join(str(exc).split())}
        line(f"done: {merged_text(summary['merged'])}")
        return {"name": dev.name, "ok": summary["agent_exit"] == 0, **summary}

    with ThreadPoolExecutor(max_workers=max(1, len(devices)), thread_name_prefix="profile") as pool:
        return list(pool.map(one, devices))


__all__ = ["DeviceEntry", "load_inventory", "profile_fleet"]
