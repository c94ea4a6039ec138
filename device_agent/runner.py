"""Measures model files one by one in a guarded, persistent worker process.

The worker (:mod:`device_agent.worker`, started with this interpreter) is started once and
reused across models. It is killed and replaced when a model runs past ``timeout_s``, and replaced
when it dies (segfault, ``os._exit``, killed from outside). Each of those outcomes becomes a
record (status ``timeout`` or ``error``); the remaining models are still measured.

The runner does not know about the database: it yields complete
:class:`latency_db.records.MeasurementRecord` values and takes a ``skip`` predicate for resume.
"""

from __future__ import annotations

import collections
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator

from latency_db.records import MeasurementRecord, Status

from device_agent import __version__
from device_agent.fingerprint import environment, read_temperatures
from device_agent.models import ModelFile
from device_agent.protocol import MeasureConfig, MeasureResult, one_line

_EOF = object()


class WorkerStartError(RuntimeError):
    """The worker process could not be started (not a property of any model)."""


class _WorkerDied(Exception):
    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class _WorkerTimeout(Exception):
    pass


# The worker imports the same device_agent as the parent: the folder holding this package goes
# first on sys.path unless it is already there (an installed package: leave the order alone).
_BOOTSTRAP = (
    "import sys; root = sys.argv.pop(1); "
    "root in sys.path or sys.path.insert(0, root); "
    "from device_agent.worker import main; sys.exit(main(sys.argv[1:]))"
)


def _package_root() -> str:
    return str(Path(__file__).resolve().parent.parent)


def _pump(stream: IO[str], sink: Callable[[Any], None], end: Any) -> None:
    try:
        for line in stream:
            sink(line)
    except (OSError, ValueError):
        pass
    finally:
        sink(end)


class _Worker:
    """One worker process and the threads that drain its pipes."""

    def __init__(self, runtime: str, python: str, startup_timeout_s: float) -> None:
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        try:
            self.proc = subprocess.Popen(
                [python, "-c", _BOOTSTRAP, _package_root(), "--runtime", runtime],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True, encoding="utf-8", errors="replace", bufsize=1, env=env,
            )
        except OSError as exc:
            raise WorkerStartError(f"cannot start worker {python!r}: {exc}") from None
        self._lines: queue.Queue[Any] = queue.Queue()
        self._stderr: collections.deque[str] = collections.deque(maxlen=20)
        self._threads = [
            threading.Thread(target=_pump, args=(self.proc.stdout, self._lines.put, _EOF),
                             daemon=True),
            threading.Thread(target=_pump, args=(self.proc.stderr, self._on_stderr, None),
                             daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        try:
            ready = self._receive(startup_timeout_s)
        except _WorkerTimeout:
            self.kill()
            raise WorkerStartError(f"worker did not start within {startup_timeout_s:g} s") from None
        except _WorkerDied as died:
            raise WorkerStartError(f"worker failed to start: {died.description}") from None
        self.busy = False  # a request is in flight
        self.pid: int = int(ready.get("pid", self.proc.pid))
        self.runtime_info: dict[str, Any] = ready.get("runtime", {})

    def _on_stderr(self, line: str | None) -> None:
        if line is not None and line.strip():
            self._stderr.append(line.rstrip())

    def _describe_exit(self) -> str:
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.proc.returncode
        if code is not None and code < 0:
            try:
                name = signal.Signals(-code).name
                what = f"signal {-code} {name}"
            except ValueError:
                what = f"signal {-code}"
        else:
            what = f"exit code {code}"
        self._threads[1].join(timeout=1)
        tail = self._stderr[-1] if self._stderr else ""
        return what + (f"; stderr: {one_line(tail, 300)}" if tail else "")

    def _receive(self, timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _WorkerTimeout()
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                raise _WorkerTimeout() from None
            if line is _EOF:
                raise _WorkerDied(self._describe_exit())
            try:
                message = json.loads(line)
            except ValueError:
                continue  # not protocol output
            if isinstance(message, dict):
                return message

    def request(self, message: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """Sends one request and waits for its answer.

        Raises:
            _WorkerTimeout: no answer within ``timeout_s`` (the worker is left running).
            _WorkerDied: the worker exited.
        """
        self.busy = True
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps(message) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            raise _WorkerDied(self._describe_exit()) from None
        answer = self._receive(timeout_s)
        self.busy = False
        return answer

    def kill(self) -> None:
        """Kills the worker (SIGKILL on POSIX) and reaps it."""
        if self.proc.poll() is None:
            try:
                self.proc.kill()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - unkillable process
            pass
        self._close_pipes()

    def close(self, timeout_s: float = 5.0) -> None:
        """Asks the worker to exit; kills it if it does not within ``timeout_s``, or at once when
        a request is still in flight (e.g. interrupted by Ctrl-C)."""
        if self.proc.poll() is None and not self.busy:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps({"op": "exit"}) + "\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=timeout_s)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                pass
        self.kill()

    def _close_pipes(self) -> None:
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass


def utc_now() -> str:
    """The current time as ISO-8601 UTC with a ``Z`` suffix, e.g. ``2025-01-31T12:00:00.123Z``."""
    now = datetime.now(timezone.utc)
    return now.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make_record(
    model: ModelFile, result: MeasureResult, config: MeasureConfig, *, device_id: str,
    environment: dict[str, Any] | None = None,
) -> MeasurementRecord:
    """Builds the database record of one measurement (new uid, timestamp now)."""
    stats = result.stats
    env = dict(environment or {})
    env.update(result.environment)
    return MeasurementRecord(
        uid=uuid.uuid4().hex,
        model_sha256=model.sha256,
        device_id=device_id,
        runtime=config.runtime,
        provider=config.provider,
        config=config.to_dict(),
        config_hash=config.config_hash(),
        status=result.status,
        error=result.error,
        samples_ms=result.samples_ms,
        median_ms=stats.median if stats else None,
        p90_ms=stats.p90 if stats else None,
        p99_ms=stats.p99 if stats else None,
        mean_ms=stats.mean if stats else None,
        std_ms=stats.std if stats else None,
        ci_low_ms=stats.ci_low if stats else None,
        ci_high_ms=stats.ci_high if stats else None,
        number=result.number,
        environment=env,
        agent_version=__version__,
        source="agent",
        created_at=utc_now(),
        space=model.record.space,
        arch=model.record.arch,
    )


class Runner:
    """Measures models under one :class:`MeasureConfig` in a guarded worker process.

    Contract: :meth:`measure` yields exactly one record per model that is not skipped, in input
    order, whatever the model does (load failure -> ``error`` with the runtime's message; worker
    death -> ``error`` ``worker crashed (signal 11 SIGSEGV)``; over time -> ``timeout``). Only a
    worker that cannot start at all raises (:class:`WorkerStartError`). Not thread-safe; use one
    runner per thread. Use as a context manager (or call :meth:`close`) to stop the worker.

    Args:
        config: the protocol, already validated (see ``device_agent.runtimes.resolve_config``).
        device_id: id stored in every record.
        python: interpreter for the worker (default: this one).
        startup_timeout_s: how long a new worker may take to import its runtime.

    Example:
        >>> with Runner(MeasureConfig(repeats=5), device_id="abc") as runner:  # doctest: +SKIP
        ...     for model, record in runner.measure(discover_models("candidates/")):
        ...         print(model.key, record.status.value, record.median_ms)
    """

    def __init__(
        self, config: MeasureConfig, *, device_id: str, python: str | None = None,
        startup_timeout_s: float = 120.0,
    ) -> None:
        self.config = config
        self.device_id = device_id
        self.python = python or sys.executable
        self.startup_timeout_s = startup_timeout_s
        self._worker: _Worker | None = None

    @property
    def worker_pid(self) -> int | None:
        """Process id of the current worker, or None when none is running."""
        return self._worker.pid if self._worker is not None else None

    def _ensure_worker(self) -> _Worker:
        if self._worker is not None and self._worker.proc.poll() is not None:
            self._worker.kill()  # died between models: reap it and close its pipes
            self._worker = None
        if self._worker is None:
            self._worker = _Worker(self.config.runtime, self.python, self.startup_timeout_s)
        return self._worker

    def measure_one(self, model: ModelFile) -> MeasurementRecord:
        """Measures one model (starting a worker if needed) and returns its record."""
        env = environment(self.config)
        env["temperature_before_c"] = read_temperatures()
        worker = self._ensure_worker()
        env["worker_pid"] = worker.pid
        start = time.monotonic()
        request = {"op": "measure", "path": str(model.path.resolve()),
                   "config": self.config.to_dict()}
        try:
            answer = worker.request(request, self.config.timeout_s)
            if answer.get("op") == "result":
                result = MeasureResult.from_dict(answer["result"])
            else:
                result = MeasureResult.failure(
                    Status.ERROR, f"worker: {answer.get('error', answer)}"
                )
        except _WorkerTimeout:
            worker.kill()
            self._worker = None
            result = MeasureResult.failure(
                Status.TIMEOUT, f"exceeded --timeout-s {float(self.config.timeout_s)} s"
            )
        except _WorkerDied as died:
            worker.kill()
            self._worker = None
            result = MeasureResult.failure(Status.ERROR, f"worker crashed ({died.description})")
        env["wall_s"] = round(time.monotonic() - start, 3)
        env["temperature_after_c"] = read_temperatures()
        return make_record(model, result, self.config, device_id=self.device_id, environment=env)

    def measure(
        self,
        models: Iterable[ModelFile],
        *,
        skip: Callable[[ModelFile], bool] | None = None,
        on_start: Callable[[ModelFile], None] | None = None,
    ) -> Iterator[tuple[ModelFile, MeasurementRecord]]:
        """Measures ``models`` in order, yielding ``(model, record)`` as each finishes.

        Args:
            models: the files to measure.
            skip: called just before each model; True skips it (no record). Evaluated lazily,
                so records stored by the caller for earlier models are seen (resume, duplicates).
            on_start: called just before a model is sent to the worker (progress display).

        Raises:
            WorkerStartError: a worker process could not be started.
        """
        for model in models:
            if skip is not None and skip(model):
                continue
            self._ensure_worker()  # so that on_start sees worker_pid
            if on_start is not None:
                on_start(model)
            yield model, self.measure_one(model)

    def close(self) -> None:
        """Stops the worker process, if any. Idempotent."""
        if self._worker is not None:
            self._worker.close()
            self._worker = None

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def measure(
    models: Iterable[ModelFile],
    config: MeasureConfig,
    *,
    device_id: str,
    skip: Callable[[ModelFile], bool] | None = None,
    on_start: Callable[[ModelFile], None] | None = None,
) -> Iterator[tuple[ModelFile, MeasurementRecord]]:
    """Convenience generator: a :class:`Runner` that is closed when iteration ends or stops.

    Example:
        >>> models = discover_models("candidates/")  # doctest: +SKIP
        >>> for model, rec in measure(models, MeasureConfig(), device_id="x"):  # doctest: +SKIP
        ...     db.add_measurement(rec)
    """
    with Runner(config, device_id=device_id) as runner:
        yield from runner.measure(models, skip=skip, on_start=on_start)
