"""Inference runtimes the agent can measure with, behind one small interface.

This is the one place where the ``--runtime``/``--provider`` strings become a backend. Backend
modules are imported lazily: importing this package does not import onnxruntime.

Supported: ``onnxruntime`` (module :mod:`device_agent.runtimes.ort`) and ``tvm`` (module
:mod:`device_agent.runtimes.tvm_rt`: Relax-compiled, cached libraries; needs apache-tvm).
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from pathlib import Path
from typing import Any, Protocol

from latency_db.records import Status

from device_agent.protocol import MeasureConfig, MeasureResult, one_line

#: Names accepted by ``--runtime``.
SUPPORTED_RUNTIMES: tuple[str, ...] = ("onnxruntime", "tvm")


def _check_runtime(runtime: str) -> None:
    if runtime not in SUPPORTED_RUNTIMES:
        raise ValueError(
            f"--runtime {runtime}: unsupported runtime; supported: {', '.join(SUPPORTED_RUNTIMES)}"
        )


def resolve_config(config: MeasureConfig) -> MeasureConfig:
    """Validates ``config`` against this machine and returns its canonical form.

    Checks the field ranges (:meth:`MeasureConfig.validate`), that the runtime is supported and
    that the provider is available; canonicalises the provider name (``CUDAExecutionProvider`` ->
    ``cuda``) so that equivalent spellings share a config hash.

    Raises:
        ValueError: one line naming the flag to fix.
    """
    config.validate()
    _check_runtime(config.runtime)
    if config.runtime == "tvm":
        from device_agent.runtimes import tvm_rt

        if config.provider not in ("cpu", "CPUExecutionProvider"):
            raise ValueError(f"--provider {config.provider}: the tvm runtime runs on the CPU; use --provider cpu")
        tvm_rt.tvm_module()
        if config.tvm_rpc:
            tvm_rt.parse_rpc(config.tvm_rpc)
        return dataclasses.replace(config, provider="cpu", tvm_target=tvm_rt.canonical_target(config))
    if config.tvm_target or config.tvm_tune_trials or config.tvm_rpc:
        raise ValueError("--tvm-target, --tvm-tune-trials and --tvm-rpc need --runtime tvm")
    from device_agent.runtimes import ort

    ort.resolve_providers(config.provider)
    return dataclasses.replace(config, provider=ort.canonical_provider(config.provider))


def preload(runtime: str) -> dict[str, Any]:
    """Imports the runtime's backend (so its import time is not charged to the first model) and
    returns its versions and providers."""
    _check_runtime(runtime)
    if runtime == "tvm":
        from device_agent.runtimes import tvm_rt

        return {"runtime": runtime, "version": tvm_rt.tvm_module().__version__, "providers": ["cpu"]}
    from device_agent.runtimes import ort

    return {"runtime": runtime, "version": ort.ort.__version__,
            "providers": ort.available_providers()}


def runtime_info(runtime: str) -> dict[str, Any]:
    """Like :func:`preload`, but returns ``{"error": ...}`` instead of raising."""
    try:
        return preload(runtime)
    except Exception as exc:  # noqa: BLE001 - reported as data
        return {"runtime": runtime, "error": one_line(exc)}


def measure_file(path: str | Path, config: MeasureConfig) -> MeasureResult:
    """Measures one model in this process under ``config`` (no timeout, no crash guard).

    The guarded, timed-out version is :class:`device_agent.runner.Runner`, which calls this in its
    worker process. Load and run failures are returned as ``Status.ERROR`` with onnxruntime's
    message on one line; a session that silently fell back from the requested provider to CPU is
    an error too (its numbers would be mislabelled).

    Returns:
        A :class:`MeasureResult`; ``environment`` holds ``load_ms`` and ``session_providers``.
    """
    _check_runtime(config.runtime)
    if config.runtime == "tvm":
        return _measure_tvm(path, config)
    from device_agent.runtimes import ort

    env: dict[str, Any] = {}
    start = time.perf_counter()
    loaded = _load_ort(path, config, env)
    if isinstance(loaded, MeasureResult):
        return loaded
    session, feeds = loaded
    try:
        samples_ms, number = ort.time_model(session, feeds, config)
    except Exception as exc:  # noqa: BLE001 - failures are data
        return MeasureResult.failure(Status.ERROR, f"run failed: {one_line(exc)}", env)
    if config.profile_nodes > 0:
        try:
            env["node_profile_ms"] = ort.profile_nodes(path, config, feeds)
        except Exception as exc:  # noqa: BLE001 - the timing stands; the profile is extra
            env["node_profile_error"] = one_line(exc)
    env["measure_s"] = round(time.perf_counter() - start, 3)
    return MeasureResult.success(samples_ms, number, env)


def _load_ort(path: str | Path, config: MeasureConfig, env: dict[str, Any]) -> Any:
    """``(session, feeds)``, or a failed :class:`MeasureResult` (load failure, provider fallback);
    fills ``env`` with ``load_ms`` and ``session_providers``."""
    from device_agent.runtimes import ort

    start = time.perf_counter()
    try:
        session, feeds = ort.make_session(path, config)
    except Exception as exc:  # noqa: BLE001 - failures are data
        return MeasureResult.failure(Status.ERROR, f"load failed: {one_line(exc)}", env)
    env["load_ms"] = round((time.perf_counter() - start) * 1e3, 3)
    env["session_providers"] = list(session.get_providers())
    wanted = ort.resolve_providers(config.provider)[0]
    if wanted not in env["session_providers"]:
        return MeasureResult.failure(
            Status.ERROR,
            f"provider {wanted} could not be used "
            f"(session runs on {', '.join(env['session_providers'])})",
            env,
        )
    return session, feeds


class Timer(Protocol):
    """A model loaded, warmed up and calibrated, ready to be timed in visits."""

    number: int

    def visit(self) -> float:
        """One untimed call, then ``number`` timed back-to-back calls; ms per call."""
        ...


def open_timer(path: str | Path, config: MeasureConfig, number: int | None = None,
               sessions: dict[str, Any] | None = None) -> tuple[Timer | None, MeasureResult | None, dict[str, Any]]:
    """Loads ``path`` for the ``interleaved`` protocol (in this process, unguarded).

    Args:
        path: the model file.
        config: the protocol.
        number: calls per visit to reuse (a model re-loaded after a worker restart); None
            calibrates.
        sessions: the caller's open TVM RPC sessions by address, shared by the models it loads
            together (see :func:`device_agent.runtimes.tvm_rt.open_remote`).

    Returns:
        ``(timer, None, environment)``, or ``(None, failure, environment)`` when the model cannot
        be loaded, warmed up or calibrated (failures are data).
    """
    _check_runtime(config.runtime)
    env: dict[str, Any] = {}
    start = time.perf_counter()
    try:
        if config.runtime == "tvm":
            from device_agent.runtimes import tvm_rt

            vm, dev, inputs = _load_tvm(path, config, env, sessions)
            env["load_ms"] = round((time.perf_counter() - start) * 1e3, 3)
            timer: Timer = tvm_rt.VmTimer(vm, inputs, dev, config, number)
        else:
            from device_agent.runtimes import ort

            loaded = _load_ort(path, config, env)
            if isinstance(loaded, MeasureResult):
                return None, loaded, env
            timer = ort.SessionTimer(loaded[0], loaded[1], config, number)
    except Exception as exc:  # noqa: BLE001 - failures are data
        what = "tvm compile/load" if config.runtime == "tvm" and "load_ms" not in env else "load/warm-up"
        return None, MeasureResult.failure(Status.ERROR, f"{what} failed: {one_line(exc)}", env), env
    env["ready_ms"] = round((time.perf_counter() - start) * 1e3, 3)
    return timer, None, env


def _load_tvm(path: str | Path, config: MeasureConfig, env: dict[str, Any],
              sessions: dict[str, Any] | None = None) -> tuple[Any, Any, list[Any]]:
    """``(vm, device, inputs)`` of ``path``: compiled (or from the cache) and loaded here or over RPC;
    the compile facts go into ``env``. Raises whatever TVM raises."""
    from device_agent.runtimes import tvm_rt

    sha = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    lib, info = tvm_rt.compile_model(path, config, sha)
    env.update(info)
    if config.tvm_rpc:
        vm, dev, remote = tvm_rt.open_remote(config, lib, sessions)
        env.update(remote)
    else:
        vm, dev = tvm_rt.load(lib)
    return vm, dev, tvm_rt.make_inputs(path, dev)


def _measure_tvm(path: str | Path, config: MeasureConfig) -> MeasureResult:
    """:func:`measure_file` for ``--runtime tvm``: compile (or take from the cache), load, time."""
    from device_agent.runtimes import tvm_rt

    env: dict[str, Any] = {}
    start = time.perf_counter()
    try:
        vm, dev, inputs = _load_tvm(path, config, env)
    except Exception as exc:  # noqa: BLE001 - failures are data
        return MeasureResult.failure(Status.ERROR, f"tvm compile/load failed: {one_line(exc)}", env)
    env["load_ms"] = round((time.perf_counter() - start) * 1e3, 3)
    try:
        samples_ms, number = tvm_rt.time_model(vm, inputs, dev, config)
    except Exception as exc:  # noqa: BLE001 - failures are data
        return MeasureResult.failure(Status.ERROR, f"run failed: {one_line(exc)}", env)
    env["measure_s"] = round(time.perf_counter() - start, 3)
    return MeasureResult.success(samples_ms, number, env)


__all__ = ["SUPPORTED_RUNTIMES", "Timer", "measure_file", "open_timer", "preload", "resolve_config", "runtime_info"]
