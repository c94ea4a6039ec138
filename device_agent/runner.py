"""Measures model files one by one in a guarded, persistent worker process.

The worker (:mod:`device_agent.worker`, started with this interpreter) is started once and
reused across models. It is killed and replaced when a model runs past ``timeout_s``, and replaced
when it dies (segfault, ``os._exit``, killed from outside). Each of those outcomes becomes a
record (status ``timeout`` or ``error``); the remaining models are still measured.

The runner does not know about the database: it yields complete
:class:`latency_db.records.MeasurementRecord` values and takes a ``skip`` predicate for resume.
"""

from __future__ import annotations

import sys
import time
import uuid
from typing import Any, Callable, Iterable, Iterator

from latency_db.records import MeasurementRecord, Status
from latency_db.tables import now_utc

from device_agent import __version__
from device_agent.fingerprint import environment, read_temperatures
from device_agent.guard import Worker, WorkerDied, WorkerStartError, WorkerTimeout
from device_agent.models import ModelFile
from device_agent.protocol import MeasureConfig, MeasureResult

def make_record(
    model: ModelFile, result: MeasureResult, config: MeasureConfig, *, device_id: str,
    environment: dict[str, Any] | None = None,
) -> MeasurementRecord:
    """Builds the database record of one measurement (new uid, timestamp now)."""
    stats = result.stats
    env = dict(environment or {})
    env.update(result.environment)
    if stats is not None:
        env["interval"] = stats.interval  # what ci_low_ms/ci_high_ms are (device_agent.stats)
    return MeasurementRecord(
        uid=uuid.uuid4().hex,
        model_sha256=model.sha256,
        device_id=device_id,
        runtime=config.runtime,
        provider=config.provider,
        config={**config.to_dict(), "form": model.form} if model.form else config.to_dict(),
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
        created_at=now_utc(),
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
        self._worker: Worker | None = None

    @property
    def worker_pid(self) -> int | None:
        """Process id of the current worker, or None when none is running."""
        return self._worker.pid if self._worker is not None else None

    def _ensure_worker(self) -> Worker:
        if self._worker is not None and self._worker.proc.poll() is not None:
            self._worker.kill()  # died between models: reap it and close its pipes
            self._worker = None
        if self._worker is None:
            self._worker = Worker(self.config.runtime, self.python, self.startup_timeout_s)
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
        except WorkerTimeout:
            worker.kill()
            self._worker = None
            result = MeasureResult.failure(
                Status.TIMEOUT, f"exceeded --timeout-s {float(self.config.timeout_s)} s"
            )
        except WorkerDied as died:
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
