"""Where accuracy evaluations run: in this process, or in a local pool of worker processes.

An executor evaluates architectures (by their canonical spec) with the evaluator a search was
configured with, and returns ``concurrent.futures.Future`` objects of plain dicts
``{"accuracy", "source", "cost_s", "extra"}`` (:func:`metrics_dict`). The study
(:meth:`hwnas.study.Study.optimize_parallel`) keeps several in flight and records each result as
it arrives.

* :class:`InProcessExecutor`: evaluates at ``submit`` (the sequential default).
* :class:`LocalPoolExecutor`: ``workers`` processes (spawned, so no torch state is forked), each
  building the evaluator once from its frozen config (:class:`EvaluatorSpec`) and keeping
  it for every later trial. A worker that dies mid-evaluation (killed, out of memory) breaks the
  pool: :meth:`LocalPoolExecutor.lost` recognises that, :meth:`LocalPoolExecutor.restart` starts a
  new pool, and the study resubmits the trials that were in flight.
* :class:`RayExecutor`: one Ray task per evaluation on an existing cluster (``address`` as for
  ``ray.init``: ``auto``, ``HOST:PORT``, or ``local`` for a cluster of this machine started by
  the executor), with per-trial CPUs/GPUs; Ray's worker processes keep the built evaluator between
  tasks. A worker killed mid-task surfaces as ``WorkerCrashedError``: the study resubmits it.

Worker-process state lives in :data:`_WORKER`, a module dict that only the pool's initializer
writes, inside each worker process (the standard pattern of ``ProcessPoolExecutor``); the driver
never reads it.
"""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from hwnas.evaluate.config import EvaluatorConfig

#: Per-worker-process state: the evaluator and space, built once by :func:`_init_worker`.
_WORKER: dict[str, Any] = {}


@dataclass(frozen=True)
class EvaluatorSpec:
    """What a worker needs to rebuild the search's evaluator: its frozen config, the space name,
    and torch threads per worker (picklable, so it travels to worker processes and Ray tasks)."""

    config: EvaluatorConfig
    space: str
    threads: int = 1

    def build(self) -> tuple[Any, Any]:
        """``(space, evaluator)``, as the driver built them."""
        from hwnas.space import get_space

        space = get_space(self.space)
        return space, self.config.build(space)


def metrics_dict(m: Any) -> dict[str, Any]:
    """An evaluator's ``Metrics`` as the plain dict executors return."""
    return {"accuracy": m.accuracy, "source": m.source, "cost_s": m.cost_s, "extra": dict(m.extra)}


def _init_worker(spec: EvaluatorSpec) -> None:
    try:
        import torch

        torch.set_num_threads(max(1, int(spec.threads)))
    except ImportError:
        pass
    _WORKER["space"], _WORKER["evaluator"] = spec.build()


def _evaluate_in_worker(arch_spec: str) -> dict[str, Any]:
    space, evaluator = _WORKER["space"], _WORKER["evaluator"]
    return metrics_dict(evaluator.evaluate(space.parse(arch_spec)))


def _evaluate_in_ray(spec: EvaluatorSpec, arch_spec: str) -> dict[str, Any]:
    """Body of the Ray task: build the evaluator once per Ray worker process, then evaluate."""
    if _WORKER.get("spec") != spec:
        _init_worker(spec)
        _WORKER["spec"] = spec
    return _evaluate_in_worker(arch_spec)


class InProcessExecutor:
    """Evaluates in the calling process, at ``submit`` time."""

    workers = 1

    def __init__(self, space: Any, evaluator: Any) -> None:
        self.space, self.evaluator = space, evaluator

    def submit(self, arch_spec: str) -> Future:
        return run_now(lambda: metrics_dict(self.evaluator.evaluate(self.space.parse(arch_spec))))

    def lost(self, exc: BaseException) -> bool:
        return False

    def restart(self) -> None:
        pass

    def close(self) -> None:
        pass


class LocalPoolExecutor:
    """``workers`` spawned processes evaluating with the evaluator of ``spec`` (module docstring)."""

    def __init__(self, spec: EvaluatorSpec, workers: int) -> None:
        if int(workers) < 1:
            raise ValueError(f"--workers must be a positive integer, got {workers}")
        self.spec, self.workers = spec, int(workers)
        self.restarts = 0
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init_worker, initargs=(self.spec,))  # fmt: skip

    def submit(self, arch_spec: str) -> Future:
        try:
            return self._pool.submit(_evaluate_in_worker, arch_spec)
        except BrokenProcessPool as exc:  # broken between a result and this submit
            fut: Future = Future()
            fut.set_exception(exc)
            return fut

    def lost(self, exc: BaseException) -> bool:
        """Whether ``exc`` means a worker died (not that the evaluation failed)."""
        return isinstance(exc, BrokenProcessPool)

    def restart(self) -> None:
        """A fresh pool if the current one is broken (idempotent while it works)."""
        broken = getattr(self._pool, "_broken", False)
        if broken:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
            self.restarts += 1

    def worker_pids(self) -> list[int]:
        """PIDs of the live worker processes (for tests and diagnostics)."""
        return [p.pid for p in (getattr(self._pool, "_processes", None) or {}).values() if p.pid]

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class RayExecutor:
    """Evaluations as Ray tasks on a cluster (see the module docstring). ``workers`` bounds the
    trials in flight (default: the cluster's CPUs divided by ``cpus_per_trial``)."""

    def __init__(self, spec: EvaluatorSpec, address: str, cpus_per_trial: float = 1.0, gpus_per_trial: float = 0.0,
                 workers: int | None = None) -> None:  # fmt: skip
        try:
            import ray
        except ImportError:
            raise RuntimeError("--ray-address needs Ray: pip install 'hwnas[ray]' (ray==2.60.0)") from None
        if cpus_per_trial <= 0 or gpus_per_trial < 0:
            raise ValueError(f"--ray-cpus-per-trial must be > 0 and --ray-gpus-per-trial >= 0, got {cpus_per_trial}, "
                             f"{gpus_per_trial}")  # fmt: skip
        self._ray = ray
        self.spec = spec
        self.started = not ray.is_initialized()
        if self.started:
            try:
                ray.init(address=None if address == "local" else address, include_dashboard=False,
                         log_to_driver=False, configure_logging=False)  # fmt: skip
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise RuntimeError(f"--ray-address {address}: cannot join the cluster: {' '.join(str(exc).split())[:300]} "
                                   "(a cluster with token auth needs its token on this machine; a throwaway one can be "
                                   "started with RAY_AUTH_MODE=disabled)") from None
        cpus = float(ray.cluster_resources().get("CPU", 1.0))
        self.workers = int(workers) if workers else max(1, int(cpus // cpus_per_trial))
        self._task = ray.remote(_evaluate_in_ray).options(num_cpus=cpus_per_trial, num_gpus=gpus_per_trial,
                                                         max_retries=0)  # fmt: skip
        self._spec_ref = ray.put(spec)

    def submit(self, arch_spec: str) -> Future:
        return self._task.remote(self._spec_ref, arch_spec).future()

    def lost(self, exc: BaseException) -> bool:
        errors = self._ray.exceptions
        return isinstance(exc, (errors.WorkerCrashedError, errors.NodeDiedError, errors.LocalRayletDiedError))

    def restart(self) -> None:
        pass  # Ray replaces dead workers itself

    def close(self) -> None:
        if self.started:
            self._ray.shutdown()


def then(fut: Future, fn: Any) -> Future:
    """A future of ``fn(fut.result())``: ``fut``'s exception, or ``fn``'s, is passed on instead."""
    out: Future = Future()

    def done(f: Future) -> None:
        exc = f.exception()
        if exc is None:
            try:
                out.set_result(fn(f.result()))
                return
            except Exception as err:  # noqa: BLE001 - recorded as a failed trial
                exc = err
        out.set_exception(exc)

    fut.add_done_callback(done)
    return out


class MeasureGate:
    """Keeps measurements on this machine from overlapping evaluations running on it.

    Every evaluation's future is :meth:`track`-ed; :meth:`quiesce` (called by a meter before it
    times anything) blocks until all tracked evaluations have finished. The driver dispatches
    nothing while it measures (it is one thread), so a measurement never shares the cores with a
    training. ``pauses`` counts the measurements that had to wait.
    """

    def __init__(self) -> None:
        self._inflight: set[Future] = set()
        self._lock = threading.Lock()
        self.pauses = 0

    def track(self, fut: Future) -> Future:
        """Register ``fut`` (an evaluation in flight); returns it."""
        with self._lock:
            self._inflight.add(fut)
        fut.add_done_callback(self._discard)
        return fut

    def _discard(self, fut: Future) -> None:
        with self._lock:
            self._inflight.discard(fut)

    def quiesce(self) -> None:
        """Wait until no tracked evaluation is running."""
        with self._lock:
            pending = [f for f in self._inflight if not f.done()]
        if pending:
            self.pauses += 1
            wait(pending)


def run_now(fn: Any) -> Future:
    """A future of ``fn()``, run here and now; an ``Exception`` is stored in it (the study records a
    failed trial), a ``BaseException`` such as Ctrl-C propagates."""
    out: Future = Future()
    try:
        out.set_result(fn())
    except Exception as exc:  # noqa: BLE001 - failures are data
        out.set_exception(exc)
    return out


def done_future(value: Any) -> Future:
    """A future already holding ``value`` (a trial decided on the driver)."""
    out: Future = Future()
    out.set_result(value)
    return out


def run_trials(study: Any, n_trials: int, submit: Any, executor: Any, on_trial: Any) -> Any:
    """``study.optimize_parallel(submit, ...)`` with the executor's in-flight bound and worker-loss
    handling; the executor is closed after."""
    try:
        return study.optimize_parallel(submit, n_trials, in_flight=executor.workers, on_trial=on_trial,
                                       lost=executor.lost, restart=executor.restart)  # fmt: skip
    finally:
        executor.close()


__all__ = ["EvaluatorSpec", "InProcessExecutor", "LocalPoolExecutor", "MeasureGate", "RayExecutor",
           "done_future", "metrics_dict", "run_now", "run_trials", "then"]
