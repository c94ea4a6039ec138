"""Measure architectures one at a time on an SSH device, into the host's latency DB.

:class:`RemoteMeter` is :class:`~hwnas.local_meter.LocalMeter`'s counterpart for a device reached
over SSH (``hwnas search --host``, the closed loop of ``--measure-uncertain``): each architecture
is exported into one local folder (which keeps every candidate measured so far, with its
manifest) and that folder is profiled with :func:`hwnas.remote.profile.profile_remote`, the code
behind ``hwnas profile``. Only files the device lacks are uploaded, the agent there measures only
what it has not measured yet (the new candidate, with the drift reference), and its rows are merged
into the host database before the latency is returned. The agent's result row is then read back
from the host database: median, interval, ``ref_ratio`` and its interval.

Host keys are verified as by ``hwnas profile`` (an unknown key is refused unless ``accept_new``).
The device is checked before its first measurement (after it, when the agent is deployed by that
measurement): the agent there must store its rows under the device id that ``--device`` names in
the host database, so a search never mixes devices.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

from hwnas.local_meter import MeasureError, stored_row
from hwnas.remote.profile import AgentFlags, profile_remote
from hwnas.remote.ssh import HostKeyError, SSHTarget
from hwnas.space.base import Arch, SearchSpace


@dataclasses.dataclass
class RemoteMeter:
    """Measures architectures of ``space`` on the SSH device ``target`` (see the module docstring).

    Args:
        target: the device.
        db: the host latency database the device's rows are merged into.
        models_dir: local folder of the exported candidates (kept between measurements).
        space: the search space.
        device_id: the id ``--device`` names in ``db``; the device's agent must report it.
        flags: agent flags (``device_name`` is the name the device has in ``db``).
        python: the device's python (the base of the agent's venv with ``install``).
        known_hosts, accept_new: host-key checking, as ``hwnas profile``.
        remote_dir: working folder on the device.
        install: deploy this checkout's agent on the device first (once per meter).
        on_line: progress lines of the remote agent.
    """

    target: SSHTarget
    db: str
    models_dir: Path
    space: SearchSpace
    device_id: str
    flags: AgentFlags = dataclasses.field(default_factory=AgentFlags)
    python: str = "python3"
    known_hosts: str | None = None
    accept_new: bool = False
    remote_dir: str = ".hwnas-agent"
    install: bool = True
    on_line: Callable[[str], None] = lambda line: None
    #: Called before each measurement (kept for the search's measurement gate; the device is remote).
    before_measure: Callable[[], None] | None = None
    _checked: bool = False

    def measure(self, arch: Arch) -> dict[str, Any]:
        """Export (if needed), measure on the device and merge; the agent's row for ``arch``
        (``median_ms``, ``ci_low_ms``, ``ci_high_ms``, ``ref_ratio``, ``ref_ratio_interval``...).

        Raises:
            MeasureError: the device is not ``device_id``, it could not be reached, or the
                measurement failed there (one line).
        """
        from hwnas.export import export_archs

        if not self._checked and not self.install:
            self._check_device()
        entry = export_archs(self.space, [arch], self.models_dir)[0]
        path = self.models_dir / f"{entry['key']}.onnx"
        try:
            summary = profile_remote(self.target, self.models_dir, self.db, python=self.python,
                                     known_hosts=self.known_hosts, accept_new=self.accept_new,
                                     remote_dir=self.remote_dir, flags=self.flags, install=self.install,
                                     on_line=self.on_line)  # fmt: skip
        except (HostKeyError, ConnectionError, RuntimeError, ValueError, OSError) as exc:
            raise MeasureError(f"{self.target.host}: {' '.join(str(exc).split())}") from None
        if summary["device_id"] != self.device_id:
            raise MeasureError(_other_device(self.target.host, summary["device_id"], self.device_id))
        self._checked = True
        if self.install:  # deployed once: later measurements run the agent of the venv it made
            self.python, self.install = summary["python"], False
        row = stored_row(self.db, self.device_id, entry["sha256"])
        if not row:
            raise MeasureError(f"{entry['key']}: no measurement from {self.target.host} (agent exit {summary['agent_exit']})")
        return {**row, "sha256": entry["sha256"], "file": str(path), "status": "ok"}

    def _check_device(self) -> None:
        """Before anything is uploaded: the agent already on the device (``install`` off) must
        store its rows under ``device_id``. (With ``install`` the agent is deployed by the first
        measurement, which checks the same after it.)"""
        from hwnas.remote.profile import remote_device_id
        from hwnas.remote.ssh import connect

        try:
            client = connect(self.target, self.known_hosts, self.accept_new)
            try:
                found = remote_device_id(client, self.python, self.flags.device_name)
            finally:
                client.close()
        except (HostKeyError, ConnectionError, RuntimeError, OSError) as exc:
            raise MeasureError(f"{self.target.host}: {' '.join(str(exc).split())}") from None
        if found != self.device_id:
            raise MeasureError(_other_device(self.target.host, found, self.device_id))
        self._checked = True

    def latency_ms(self, arch: Arch) -> float:
        """Median latency of ``arch`` in milliseconds (see :meth:`measure`)."""
        return float(self.measure(arch)["median_ms"])


def _other_device(host: str, found: str, wanted: str) -> str:
    return (f"{host} stores its rows as device {found}, not {wanted} (--device): it is another device; "
            "pass the host of that device, or the device of that host")


__all__ = ["RemoteMeter"]
