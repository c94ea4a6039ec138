"""onnxruntime backend: session construction, deterministic inputs and the timing protocol.

Named ``ort`` (not ``onnxruntime``) so it never shadows the real package. Importing this module
imports onnxruntime and numpy.

``make_session`` and ``time_model`` are public so a benchmark can build exactly the agent's session
and compare a bare ``session.run`` loop against the agent's protocol.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import onnxruntime as ort

from device_agent.protocol import MeasureConfig

#: Short provider names accepted by ``--provider``; each maps to its provider chain (CPU last, so
#: nodes a provider cannot run fall back to CPU exactly as onnxruntime does by default).
PROVIDER_ALIASES: dict[str, str] = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "migraphx": "MIGraphXExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "dml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "xnnpack": "XnnpackExecutionProvider",
    "qnn": "QNNExecutionProvider",
    "acl": "ACLExecutionProvider",
    "armnn": "ArmNNExecutionProvider",
}

#: Seed of the random input tensors (inputs are identical across runs and devices).
INPUT_SEED = 0

#: Calibration aims at this multiple of ``min_repeat_ms`` (see ``MeasureConfig``).
CALIBRATION_MARGIN = 1.2

_DTYPES: dict[str, Any] = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(int16)": np.int16,
    "tensor(uint16)": np.uint16,
    "tensor(int32)": np.int32,
    "tensor(uint32)": np.uint32,
    "tensor(int64)": np.int64,
    "tensor(uint64)": np.uint64,
    "tensor(bool)": np.bool_,
}


def available_providers() -> list[str]:
    """Full names of the providers this onnxruntime build offers."""
    return list(ort.get_available_providers())


def _full_name(provider: str) -> str:
    return PROVIDER_ALIASES.get(provider.lower(), provider)


def canonical_provider(provider: str) -> str:
    """The short alias of ``provider`` when it has one (``CUDAExecutionProvider`` -> ``cuda``).

    Used so that ``--provider cuda`` and ``--provider CUDAExecutionProvider`` produce the same
    config hash.
    """
    full = _full_name(provider)
    for alias, name in PROVIDER_ALIASES.items():
        if name == full:
            return alias
    return full


def resolve_providers(provider: str) -> list[str]:
    """The provider chain for ``provider``: the requested provider, then CPU.

    Raises:
        ValueError: one line naming ``--provider`` and listing the available providers when the
            requested one is not in this onnxruntime build.
    """
    full = _full_name(provider)
    available = available_providers()
    if full not in available:
        shown = ", ".join(
            f"{canonical_provider(p)} ({p})" if canonical_provider(p) != p else p for p in available
        )
        what = f"{full} is not available" if full != provider else "not available"
        raise ValueError(
            f"--provider {provider}: {what} in this onnxruntime {ort.__version__} build; "
            f"available: {shown}"
        )
    chain = [full]
    if full != "CPUExecutionProvider":
        chain.append("CPUExecutionProvider")
    return chain


def session_options(config: MeasureConfig) -> ort.SessionOptions:
    """The agent's SessionOptions: ``config.threads`` intra-op threads (0 = onnxruntime's default),
    1 inter-op thread, sequential execution, all graph optimisations, errors-only logging."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = int(config.threads)
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    return so


def random_feeds(session: ort.InferenceSession, seed: int = INPUT_SEED) -> dict[str, np.ndarray]:
    """Deterministic random inputs for every graph input of ``session`` (:func:`random_inputs`).

    Raises:
        ValueError: for an input type that cannot be synthesised (strings, sequences, maps).
    """
    specs = []
    for arg in session.get_inputs():
        dtype = _DTYPES.get(arg.type)
        if dtype is None:
            raise ValueError(f"input {arg.name!r} has unsupported type {arg.type}")
        specs.append((arg.name, arg.shape or [], dtype))
    return random_inputs(specs, seed)


def random_inputs(specs: list[tuple[str, list[Any], Any]], seed: int = INPUT_SEED) -> dict[str, np.ndarray]:
    """Deterministic random arrays for ``(name, shape, numpy dtype)`` inputs, in order; every runtime
    of the agent feeds the same ones.

    Symbolic or unknown dimensions become 1. Floats are standard normal; integers are uniform in
    ``[0, 10)`` (safe as indices for most embedding tables); booleans are fair coin flips.
    """
    rng = np.random.default_rng(seed)
    feeds: dict[str, np.ndarray] = {}
    for name, dims, dtype in specs:
        shape = tuple(d if isinstance(d, int) and d > 0 else 1 for d in dims)
        if np.issubdtype(dtype, np.floating):
            value = rng.standard_normal(shape).astype(dtype)
        elif np.dtype(dtype) == np.bool_:
            value = rng.integers(0, 2, size=shape).astype(np.bool_)
        else:
            value = rng.integers(0, 10, size=shape).astype(dtype)
        feeds[name] = value
    return feeds


def make_session(
    path: str | Path, config: MeasureConfig
) -> tuple[ort.InferenceSession, dict[str, np.ndarray]]:
    """Builds the session and inputs exactly as the agent does.

    Args:
        path: the ONNX file.
        config: the protocol (``threads`` and ``provider`` are used here).

    Returns:
        ``(session, feeds)``.

    Raises:
        ValueError: unavailable provider, or an input type that cannot be synthesised.
        Exception: whatever onnxruntime raises for a corrupt or unsupported model.

    Example:
        >>> session, feeds = make_session("model.onnx", MeasureConfig())  # doctest: +SKIP
        >>> samples_ms, number = time_model(session, feeds, MeasureConfig())  # doctest: +SKIP
    """
    providers = resolve_providers(config.provider)
    session = ort.InferenceSession(
        str(path), sess_options=session_options(config), providers=providers
    )
    return session, random_feeds(session)


def _time_calls(run: Any, feeds: dict[str, np.ndarray], number: int) -> int:
    """Nanoseconds taken by ``number`` back-to-back calls; nothing else in the timed region."""
    clock = time.perf_counter_ns
    start = clock()
    for _ in range(number):
        run(None, feeds)
    return clock() - start


def calibrate_number(run: Any, feeds: dict[str, np.ndarray], min_repeat_ms: float) -> int:
    """Calls per repeat so that one repeat lasts >= 1.2 x ``min_repeat_ms``, timed as the agent times
    an onnxruntime repeat (:func:`calibrate_with` over back-to-back ``run(None, feeds)`` calls)."""
    return calibrate_with(lambda number: _time_calls(run, feeds, number), min_repeat_ms)


def calibrate_with(trial: Callable[[int], float], min_repeat_ms: float) -> int:
    """Calls per repeat so that one repeat lasts >= 1.2 x ``min_repeat_ms``, where ``trial(number)``
    runs ``number`` back-to-back calls and returns the nanoseconds they took **on the timer the
    samples are taken with** (a runtime with its own timer calibrates with it).

    Starts at 1 and grows ``number`` (extrapolating from the last trial; at most x10 and at least
    +1 per step) until **two consecutive** trials of ``number`` back-to-back calls each reach the
    target. The confirmation trial matters for small models that keep getting faster during the
    first thousand calls (caches, branch predictors, frequency ramp-up): a single trial would fix
    ``number`` too small. It is skipped when one call alone lasts over twice the target. All
    trials are discarded.
    """
    target_ns = min_repeat_ms * CALIBRATION_MARGIN * 1e6
    number = 1
    reached_with: int | None = None  # number whose last trial reached the target
    while True:
        elapsed = trial(number)
        if elapsed >= target_ns:
            if reached_with == number or (number == 1 and elapsed >= 2 * target_ns):
                return number
            reached_with = number
            continue
        reached_with = None
        guess = number * 10 if elapsed <= 0 else math.ceil(number * target_ns / elapsed * 1.05)
        number = max(number + 1, min(guess, number * 10))


def time_model(
    session: ort.InferenceSession, feeds: dict[str, np.ndarray], config: MeasureConfig
) -> tuple[list[float], int]:
    """Runs the protocol of :class:`~device_agent.protocol.MeasureConfig` on a built session.

    ``config.warmup`` calls discarded, ``number`` calibrated once, then ``config.repeats`` repeats
    of ``number`` back-to-back calls timed with ``time.perf_counter_ns``.

    Returns:
        ``(samples_ms, number)``: ``config.repeats`` samples, each the repeat's wall time divided
        by ``number``, in milliseconds.
    """
    run = session.run
    for _ in range(config.warmup):
        run(None, feeds)
    number = calibrate_number(run, feeds, config.min_repeat_ms)
    samples_ms: list[float] = []
    for _ in range(config.repeats):
        elapsed = _time_calls(run, feeds, number)
        samples_ms.append(elapsed / number / 1e6)
    return samples_ms, number


class SessionTimer:
    """A loaded model timed in visits (the ``interleaved`` protocol).

    Construction runs ``config.warmup`` discarded calls and calibrates ``number`` (unless given:
    a model re-loaded after a worker restart keeps the ``number`` it had). Each :meth:`visit` runs
    one untimed call (the model's caches went cold while other models ran), then times ``number``
    back-to-back calls.
    """

    def __init__(self, session: ort.InferenceSession, feeds: dict[str, np.ndarray], config: MeasureConfig,
                 number: int | None = None) -> None:
        self.session, self.feeds = session, feeds
        run = session.run
        for _ in range(config.warmup):
            run(None, feeds)
        self.number = int(number) if number else calibrate_number(run, feeds, config.min_repeat_ms)

    def visit(self) -> float:
        """One visit; returns the mean latency of one call in milliseconds."""
        run, feeds = self.session.run, self.feeds
        run(None, feeds)
        return _time_calls(run, feeds, self.number) / self.number / 1e6


#: Suffixes onnxruntime appends to a node's name in its profile (kernel event, layout variants).
_PROFILE_SUFFIXES = ("_kernel_time", "_output_0_nchwc", "_nchwc")


def profile_nodes(path: str | Path, config: MeasureConfig, feeds: dict[str, np.ndarray]) -> dict[str, float]:
    """Median kernel time (ms) of each node over ``config.profile_nodes`` profiled calls.

    Runs in a session of its own (same options plus onnxruntime's profiler), after the timed
    protocol, so profiling never slows the timed samples. Keys are the ONNX node names as the
    optimised graph has them, with onnxruntime's ``_kernel_time`` / layout suffixes removed: a
    node that the optimiser fused into another (a Relu into its Conv) has no entry, its time is
    in the node that absorbed it. Nodes onnxruntime inserted (layout reorders) keep their own
    names, which match no node of the original graph.
    """
    import json
    import os
    import statistics
    import tempfile

    so = session_options(config)
    so.enable_profiling = True
    with tempfile.TemporaryDirectory(prefix="device_agent-prof-") as tmp:
        so.profile_file_prefix = os.path.join(tmp, "profile")
        session = ort.InferenceSession(str(path), sess_options=so, providers=resolve_providers(config.provider))
        for _ in range(2 + config.profile_nodes):
            session.run(None, feeds)
        trace = session.end_profiling()
        with open(trace) as f:
            events = json.load(f)
    runs = 2 + config.profile_nodes
    durations: dict[str, list[float]] = {}
    for ev in events:
        if ev.get("cat") != "Node" or "dur" not in ev:
            continue
        name = str(ev.get("name", ""))
        for suffix in _PROFILE_SUFFIXES:
            if name.endswith(suffix):
                name = name[: -len(suffix)]
        durations.setdefault(name, []).append(float(ev["dur"]) / 1e3)
    # each node appears once per run; the first two runs are warm-up
    return {k: round(statistics.median(v[-config.profile_nodes :] if len(v) >= runs else v), 6) for k, v in durations.items()}
