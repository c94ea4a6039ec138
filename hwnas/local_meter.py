"""Export architectures and measure them on this machine with ``device_agent``, into the latency DB.

This is the ``measured`` latency source of ``hwnas search`` and the re-measurement of
``--verify-top``: each architecture is exported to ``models_dir/<key>.onnx`` (with its manifest
entry) and measured by ``device_agent run`` in its own process — the same command, protocol and
guarded worker a user runs on a device, so hwnas depends on the agent's command line and protocol
types only. The agent stores the record in the latency database *before* the latency is returned,
so an interrupted search keeps every measurement, and an architecture already measured on this
device under the same protocol is not measured again (unless ``force``).

Example:
    >>> with LocalMeter(".hwnas/latency.db", "out/models", NB201Space()) as meter:  # doctest: +SKIP
    ...     print(meter.latency_ms(arch))
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

from device_agent.protocol import MeasureConfig

from hwnas.space.base import Arch, SearchSpace


class MeasureError(RuntimeError):
    """A measurement did not produce a latency (the agent's record says why)."""


class LocalMeter:
    """Measures architectures of ``space`` on this machine through ``device_agent run``.

    Args:
        db: latency database path (created by the agent if missing).
        models_dir: where the exported ONNX files and their manifest go.
        space: the search space.
        config: the measurement protocol; default: the configuration of this device's newest
            measurement in ``db`` (:func:`profile_config`: its threads, runtime, protocol...), else
            ``device_agent run``'s defaults, so what a search measures (and ``--verify-top``
            re-measures) is comparable with the device's profile and with predictors trained on it.
        device_name: name of this device in the database (default: the agent's, the hostname).
        force: measure again even when the database already holds a measurement.
        python: interpreter that runs the agent (default: this one).

    Each :meth:`measure` call runs one agent process (about a second of start-up on top of the
    measurement). Safe to use from one thread at a time.
    """

    def __init__(
        self, db: str | os.PathLike[str], models_dir: str | os.PathLike[str], space: SearchSpace, *,
        config: MeasureConfig | None = None, device_name: str | None = None, force: bool = False,
        python: str | None = None,
    ) -> None:  # fmt: skip
        self.db = Path(db)
        self.models_dir = Path(models_dir)
        self.space = space
        self.config = config or profile_config(self.db, device_name) or MeasureConfig()
        self.device_name = device_name
        self.force = force
        self.python = python or sys.executable
        self.device_id: str | None = None
        #: Called before each measurement (a search's :class:`~hwnas.executors.MeasureGate`
        #: waits there for evaluations running on this machine to finish).
        self.before_measure: Callable[[], None] | None = None

    def _command(self, path: Path) -> list[str]:
        c = self.config
        cmd = [self.python, "-m", "device_agent", "run", "--models", str(path), "--db", str(self.db), "--json",
               "--runtime", c.runtime, "--provider", c.provider, "--threads", str(c.threads),
               "--warmup", str(c.warmup), "--repeats", str(c.repeats), "--min-repeat-ms", str(c.min_repeat_ms),
               "--timeout-s", str(c.timeout_s), "--protocol", c.protocol, "--min-rounds", str(c.min_rounds),
               "--max-rounds", str(c.max_rounds), "--target-ci", str(c.target_rel_ci), "--time-cap-s", str(c.time_cap_s),
               "--batch-size", str(c.batch_size)]  # fmt: skip
        if self.device_name:
            cmd += ["--device-name", self.device_name]
        if self.force:
            cmd.append("--force")
        return cmd

    def measure(self, arch: Arch) -> dict[str, Any]:
        """Export (if needed) and measure ``arch``; returns the agent's result row
        (``median_ms``, ``p90_ms``, ``ci_low_ms``, ``ci_high_ms``, ``sha256``, ``file``...).

        Raises:
            MeasureError: the measurement failed or timed out (the record is stored anyway), or
                the agent could not run.
        """
        from hwnas.export import export_archs

        if self.before_measure is not None:
            self.before_measure()
        entry = export_archs(self.space, [arch], self.models_dir)[0]
        path = self.models_dir / f"{entry['key']}.onnx"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [_root(), os.environ.get("PYTHONPATH")]))}
        proc = subprocess.run(self._command(path), capture_output=True, text=True, env=env)  # noqa: S603
        try:
            report = json.loads(proc.stdout)
        except json.JSONDecodeError:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise MeasureError(f"device_agent run failed (exit {proc.returncode}): {tail}") from None
        self.device_id = report["device_id"]
        row = dict(report["results"][0])
        if row["status"] == "skipped":
            row.update(self._stored(row["sha256"], report["config_hash"]))
        if row["status"] not in ("ok", "skipped") or not row.get("median_ms"):
            raise MeasureError(f"{entry['key']}: measurement {row['status']}: {row.get('error')}")
        return row

    def _stored(self, sha256: str, config_hash: str) -> dict[str, Any]:
        """The newest OK measurement of ``sha256`` on this device under ``config_hash``."""
        return {**stored_row(self.db, self.device_id, sha256, config_hash), "reused": True}

    def latency_ms(self, arch: Arch) -> float:
        """Median latency of ``arch`` in milliseconds (see :meth:`measure`)."""
        return float(self.measure(arch)["median_ms"])

    def close(self) -> None:
        """Nothing to release (each measurement runs its own agent); kept for symmetry."""

    def __enter__(self) -> LocalMeter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def profile_config(db_path: str | os.PathLike[str], device_name: str | None = None) -> MeasureConfig | None:
    """The measurement configuration of ``device_name``'s newest measurement (a candidate's, not a
    drift reference's) in the database at ``db_path``; None without a database or a measurement.

    A profile taken with ``--threads 1`` (or TVM, or the sequential protocol) is then measured and
    re-measured the same way by a search: a default-threads measurement of the same network can
    differ by 2x on a shared machine, and would read as the predictor's error.

    Args:
        db_path: a SQLite latency database path.
        device_name: the device's name in the database (default: the agent's, this hostname).
    """
    from device_agent.fingerprint import hostname
    from latency_db import LatencyDB

    if not Path(db_path).is_file():
        return None
    with LatencyDB(db_path, read_only=True) as db:
        rows = db.measurements(device=device_name or hostname())
    return MeasureConfig.from_dict(rows[-1].config) if rows and rows[-1].config else None


def stored_row(db_path: str | os.PathLike[str], device_id: str | None, sha256: str,
               config_hash: str | None = None) -> dict[str, Any]:
    """The newest OK measurement of ``sha256`` on ``device_id`` in the database (under
    ``config_hash`` when given), as the fields of the agent's result row it stands for
    (``median_ms``, interval, ``uid``, ``ref_ratio`` and its interval); ``{}`` without one."""
    from latency_db import LatencyDB
    from latency_db.records import Status

    with LatencyDB(db_path, read_only=True) as db:
        recs = [r for r in db.measurements(device=device_id, model_sha256=sha256, status=Status.OK)
                if r.median_ms and (config_hash is None or r.config_hash == config_hash)]  # fmt: skip
    if not recs:
        return {}
    r = recs[-1]
    return {"median_ms": r.median_ms, "p90_ms": r.p90_ms, "ci_low_ms": r.ci_low_ms, "ci_high_ms": r.ci_high_ms,
            "uid": r.uid, "ref_ratio": r.environment.get("ref_ratio"),
            "ref_ratio_interval": r.environment.get("ref_ratio_interval")}  # fmt: skip


def _root() -> str:
    """The folder holding the ``device_agent`` package, so a source checkout runs the agent too."""
    import device_agent

    return str(Path(device_agent.__file__).resolve().parent.parent)
