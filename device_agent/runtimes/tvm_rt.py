"""TVM backend of the agent: compile an ONNX model with TVM's Relax frontend, cache the library, time
it with TVM's own time evaluator under the agent's protocol.

Imported lazily (only for ``--runtime tvm``); needs ``apache-tvm`` (``pip install hwnas[tvm]``),
never torch.

* **Target**: ``--tvm-target`` is a JSON object (TVM 0.27 refuses target strings with options),
  e.g. ``{"kind": "llvm", "mtriple": "aarch64-linux-gnu", "num-cores": 4}``; a bare kind such as
  ``llvm`` is accepted; empty means ``{"kind": "llvm", "num-cores": threads or all cores}``.
* **Compilation**: ``tvm.relax.frontend.onnx.from_onnx`` (symbolic input dims set to 1), then
  ``tvm.compile``; with ``--tvm-tune-trials N`` > 0 the module is legalised to TIR and tuned with
  MetaSchedule (``tune_relax``, builder timeout raised to 300 s: its build workers exceed the
  default 30 s on a small machine; the ``random`` cost model, so no xgboost is needed) and
  compiled from the tuning database.
* **Cache**: the exported library is stored under ``$DEVICE_AGENT_TVM_CACHE`` (default
  ``~/.cache/device_agent/tvm``) keyed by sha256 of (model sha256, target, TVM version, tuning
  trials), written atomically; a cache hit skips compilation and tuning.
* **Timing**: ``warmup`` calls discarded, ``number`` calibrated like onnxruntime's (at least 1.2 x
  ``min_repeat_ms`` per repeat) but on the timer the samples are taken with, TVM's time evaluator
  (a Python loop of VM calls would count the Python overhead the evaluator leaves out), then
  ``vm.time_evaluator("main", number, repeat=repeats)``; samples are its per-repeat means, in ms.
* **Remote (RPC)**: with ``--tvm-rpc HOST:PORT`` (a ``python -m tvm.exec.rpc_server``) or
  ``tracker:HOST:PORT:KEY`` (a device registered with an RPC tracker), the library is compiled here
  for ``--tvm-target``, uploaded, loaded into a Relax VM on the remote CPU and timed there by the
  same time evaluator, which also calibrates ``number`` there (so the network is never timed).
  Inputs are created on the remote device.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

from device_agent.protocol import MeasureConfig

BUILDER_TIMEOUT_S = 300.0


def tvm_module() -> Any:
    """The ``tvm`` package; ``ImportError`` with the install hint."""
    try:
        import tvm
    except ImportError:
        raise ImportError("--runtime tvm needs apache-tvm: pip install 'hwnas[tvm]' (or apache-tvm==0.27.0.post1)") from None
    return tvm


def parse_target(text: str, threads: int = 0) -> dict[str, Any]:
    """The target dict of ``--tvm-target`` (see the module docstring); ``ValueError`` (one line)."""
    text = (text or "").strip()
    if not text:
        return {"kind": "llvm", "num-cores": int(threads or os.cpu_count() or 1)}
    if text.startswith("{"):
        try:
            target = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--tvm-target is not valid JSON: {exc}") from None
        if not isinstance(target, dict) or not isinstance(target.get("kind"), str):
            raise ValueError('--tvm-target must be a JSON object with a "kind", e.g. {"kind": "llvm", "num-cores": 4}')
        return target
    if any(c.isspace() for c in text) or "-" in text:
        raise ValueError(f"--tvm-target {text!r}: TVM 0.27 refuses target strings with options; pass a JSON object "
                         'such as {"kind": "llvm", "mcpu": "cortex-a72", "num-cores": 4}')
    return {"kind": text}


def canonical_target(config: MeasureConfig) -> str:
    """Canonical JSON of the config's target (what is hashed and stored)."""
    return json.dumps(parse_target(config.tvm_target, config.threads), sort_keys=True, separators=(",", ":"))


def cache_dir() -> Path:
    """Where compiled libraries are kept (``$DEVICE_AGENT_TVM_CACHE`` or ``~/.cache/device_agent/tvm``)."""
    return Path(os.environ.get("DEVICE_AGENT_TVM_CACHE") or Path.home() / ".cache" / "device_agent" / "tvm")


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence TVM's C++ log lines (e.g. one warning per loaded function) on fd 2."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _graph_inputs(model: Any) -> list[tuple[str, list[int], Any]]:
    """``(name, dims, numpy dtype)`` of the graph inputs that are not initializers; unknown dims 1."""
    from onnx import helper

    init = {i.name for i in model.graph.initializer}
    return [(vi.name, [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1 for d in vi.type.tensor_type.shape.dim],
             helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type))
            for vi in model.graph.input if vi.name not in init]  # fmt: skip


def compile_model(path: str | Path, config: MeasureConfig, model_sha256: str) -> tuple[Path, dict[str, Any]]:
    """The compiled library of ``path`` for ``config`` (from the cache, or built and cached) and
    facts for the environment (``tvm_version``, ``tvm_target``, ``tvm_tune_trials``, ``compile_s``,
    ``tvm_cache_hit``)."""
    tvm = tvm_module()
    target = canonical_target(config)
    key = hashlib.sha256(json.dumps([model_sha256, target, tvm.__version__, int(config.tvm_tune_trials)]).encode()).hexdigest()
    lib = cache_dir() / f"{key}.so"
    info: dict[str, Any] = {"tvm_version": tvm.__version__, "tvm_target": json.loads(target),
                            "tvm_tune_trials": int(config.tvm_tune_trials), "tvm_cache_hit": lib.is_file()}  # fmt: skip
    if lib.is_file():
        return lib, info
    import onnx
    from tvm import relax
    from tvm.relax.frontend.onnx import from_onnx

    t0 = time.perf_counter()
    model = onnx.load(str(path))
    tgt = tvm.target.Target(json.loads(target))
    with _quiet_stderr():
        mod = from_onnx(model, shape_dict={n: dims for n, dims, _ in _graph_inputs(model)}, keep_params_in_input=False)
        if config.tvm_tune_trials > 0:
            import tvm.s_tir.meta_schedule as ms

            mod = relax.transform.DecomposeOpsForInference()(mod)
            mod = relax.transform.LegalizeOps()(mod)
            with tempfile.TemporaryDirectory(prefix="device_agent-tune-") as work:
                db = ms.relax_integration.tune_relax(
                    mod, params={}, target=tgt, work_dir=work, max_trials_global=int(config.tvm_tune_trials),
                    num_trials_per_iter=min(64, int(config.tvm_tune_trials)),
                    builder=ms.builder.LocalBuilder(timeout_sec=BUILDER_TIMEOUT_S), cost_model="random", strategy="replay-trace",
                    seed=0)  # fmt: skip
                ex = ms.relax_integration.compile_relax(db, mod, tgt, params=None)
        else:
            ex = tvm.compile(mod, target=tgt)
        lib.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".so", dir=lib.parent)
        os.close(fd)
        try:
            ex.export_library(tmp)
            os.replace(tmp, lib)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    info["compile_s"] = round(time.perf_counter() - t0, 3)
    return lib, info


def load(lib: Path) -> tuple[Any, Any]:
    """``(vm, device)``: a Relax VM on the CPU over the compiled library ``lib``."""
    tvm = tvm_module()
    from tvm import relax

    dev = tvm.cpu()
    with _quiet_stderr():
        vm = relax.VirtualMachine(tvm.runtime.load_module(str(lib)), dev)
    return vm, dev


def make_inputs(model_path: str | Path, dev: Any) -> list[Any]:
    """The inputs onnxruntime would get (:func:`device_agent.runtimes.ort.random_inputs`), on ``dev``."""
    import onnx

    from device_agent.runtimes.ort import random_inputs

    tvm = tvm_module()
    model = onnx.load(str(model_path), load_external_data=False)
    return [tvm.runtime.tensor(a, dev) for a in random_inputs(_graph_inputs(model)).values()]


def parse_rpc(text: str) -> tuple[str, str, int, str | None]:
    """``("server"|"tracker", host, port, key)`` of ``--tvm-rpc``; ``ValueError`` (one line)."""
    parts = text.strip().split(":")
    kind = "tracker" if parts[0] == "tracker" else "server"
    body = parts[1:] if kind == "tracker" else parts
    want = 3 if kind == "tracker" else 2
    if len(body) != want or not body[1].isdigit() or not body[0] or (kind == "tracker" and not body[2]):
        raise ValueError(f"--tvm-rpc must be HOST:PORT (an rpc_server) or tracker:HOST:PORT:KEY, got {text!r}")
    return kind, body[0], int(body[1]), body[2] if kind == "tracker" else None


def open_remote(config: MeasureConfig, lib: Path) -> tuple[Any, Any, dict[str, Any]]:
    """``(vm, remote device, info)``: ``lib`` uploaded to ``config.tvm_rpc`` and loaded there."""
    tvm_module()
    from tvm import relax, rpc

    kind, host, port, key = parse_rpc(config.tvm_rpc)
    session = rpc.connect_tracker(host, port).request(key) if kind == "tracker" else rpc.connect(host, port)
    session.upload(str(lib))
    dev = session.cpu()
    vm = relax.VirtualMachine(session.load_module(lib.name), dev)
    return vm, dev, {"tvm_rpc": config.tvm_rpc}


def _warm_up(vm: Any, inputs: list[Any], dev: Any, config: MeasureConfig) -> None:
    """``config.warmup`` discarded calls: here, or over RPC inside one time evaluator."""
    if config.tvm_rpc:
        if config.warmup:
            vm.time_evaluator("main", dev, number=config.warmup, repeat=1)(*inputs)
    else:
        main = vm["main"]
        for _ in range(config.warmup):
            main(*inputs)


def calibrate(vm: Any, inputs: list[Any], dev: Any, min_repeat_ms: float) -> int:
    """``number`` for ``min_repeat_ms`` (:func:`~device_agent.runtimes.ort.calibrate_with`), each trial
    timed by TVM's time evaluator: the timer the samples are taken with, here or over RPC."""
    from device_agent.runtimes.ort import calibrate_with

    def trial(number: int) -> float:
        mean_s = float(vm.time_evaluator("main", dev, number=number, repeat=1)(*inputs).results[0])
        return mean_s * number * 1e9

    return calibrate_with(trial, min_repeat_ms)


def time_model(vm: Any, inputs: list[Any], dev: Any, config: MeasureConfig) -> tuple[list[float], int]:
    """The agent's protocol with TVM's time evaluator, here or over RPC; ``(samples_ms, number)``."""
    _warm_up(vm, inputs, dev, config)
    number = calibrate(vm, inputs, dev, config.min_repeat_ms)
    timer = vm.time_evaluator("main", dev, number=number, repeat=config.repeats)
    return [float(s) * 1e3 for s in timer(*inputs).results], number


class VmTimer:
    """A compiled model timed in visits (the ``interleaved`` protocol), locally or over RPC.

    Construction runs the warm-up and calibrates ``number`` (unless given); each :meth:`visit` runs
    one untimed call, then TVM's time evaluator over ``number`` calls (one repeat).
    """

    def __init__(self, vm: Any, inputs: list[Any], dev: Any, config: MeasureConfig, number: int | None = None) -> None:
        self.vm, self.inputs, self.dev, self.remote = vm, inputs, dev, bool(config.tvm_rpc)
        if number:
            self.number = int(number)
            for _ in range(config.warmup):
                self._call()
        else:
            _warm_up(vm, inputs, dev, config)
            self.number = calibrate(vm, inputs, dev, config.min_repeat_ms)
        self._evaluator = vm.time_evaluator("main", dev, number=self.number, repeat=1)

    def _call(self) -> None:
        if self.remote:
            self.vm.time_evaluator("main", self.dev, number=1, repeat=1)(*self.inputs)
        else:
            self.vm["main"](*self.inputs)

    def visit(self) -> float:
        """One visit; returns the mean latency of one call in milliseconds."""
        self._call()
        return float(self._evaluator(*self.inputs).results[0]) * 1e3


__all__ = ["VmTimer", "calibrate", "canonical_target", "compile_model", "load", "make_inputs", "open_remote", "parse_rpc",
           "parse_target", "time_model", "tvm_module"]
