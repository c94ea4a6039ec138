"""TVM backend of the agent: compile an ONNX model with TVM's Relax frontend, cache the library, time
it with TVM's own time evaluator under the agent's protocol.

Imported lazily (only for ``--runtime tvm``); needs ``apache-tvm`` (``pip install hwnas[tvm]``),
never torch.

* **Target**: ``--tvm-target`` is a JSON object (TVM 0.27 refuses target strings with options),
  e.g. ``{"kind": "llvm", "mtriple": "aarch64-linux-gnu", "num-cores": 4}``; a bare kind such as
  ``llvm`` is accepted; empty means this machine's CPU: ``{"kind": "llvm", "mcpu": <LLVM's name of
  the host CPU, e.g. znver3>, "num-cores": threads or all cores}`` (without ``mcpu`` over RPC: the
  board's CPU is not this one). A bare ``{"kind": "llvm"}`` is a generic x86 (SSE2 only).
* **Compilation**: ``tvm.relax.frontend.onnx.from_onnx`` (symbolic input dims set to 1), then
  ``tvm.compile``. With ``--tvm-tune-trials N`` > 0 the model is tuned alone with MetaSchedule and
  compiled from that database. Tuning builds with :func:`build_kernel` on :func:`pooled_builder`
  after :func:`cpu_tensor_intrinsics` (TVM's own builder re-imports every backend's tensor
  intrinsics, about a CPU-minute, in fresh workers for every batch). With a shared database (``--tvm-db``, see
  :mod:`device_agent.tvm_tune`) the model goes through :func:`prepare_module` and
  :func:`compile_with_database`, which fuses with :func:`fuse_for_tasks` as task extraction does
  (so workload keys match) and schedules each fused function from the database (``anchor-block``
  equality: a conv tuned with another fused epilogue is replayed through its anchor trace);
  functions not in the database, or whose trace does not replay, keep TVM's default code.
* **Cache**: the exported library is stored under ``$DEVICE_AGENT_TVM_CACHE`` (default
  ``~/.cache/device_agent/tvm``) keyed by sha256 of (model sha256, target, TVM version, tuning
  trials[, database content hash]), written atomically; a cache hit skips compilation and tuning.
  Databases are snapshotted by content hash under ``<cache>/db/<hash>/`` (what is compiled
  against is exactly what was hashed).
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
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

from device_agent.protocol import MeasureConfig

BUILDER_TIMEOUT_S = 300.0

#: Workload equality of shared databases: a record tuned for a conv serves the same conv with
#: another fused epilogue (replayed through its anchor trace).
MODULE_EQUALITY = "anchor-block"

#: The two files of a MetaSchedule JSON database, in the order they are hashed.
DB_FILES = ("database_workload.json", "database_tuning_record.json")


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


def host_cpu() -> str:
    """LLVM's name of this machine's CPU (e.g. ``znver3``, ``cortex-a72``); ``""`` when LLVM only
    knows it as ``generic``. Needs TVM."""
    cpu = str(tvm_module().target.codegen.llvm_get_system_cpu() or "")
    return "" if cpu == "generic" else cpu


def canonical_target(config: MeasureConfig) -> str:
    """Canonical JSON of the config's target (what is hashed and stored). With no ``--tvm-target``
    and no RPC, the host's ``mcpu`` is named (needs TVM); a given target is kept as given."""
    target = parse_target(config.tvm_target, config.threads)
    if not (config.tvm_target or "").strip() and not config.tvm_rpc and target["kind"] == "llvm":
        cpu = host_cpu()
        if cpu:
            target["mcpu"] = cpu
    return json.dumps(target, sort_keys=True, separators=(",", ":"))


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


def db_snapshot_dir(content_sha256: str) -> Path:
    """Where the database with this content hash is snapshotted (``<cache>/db/<hash>``)."""
    return cache_dir() / "db" / content_sha256


def open_database(folder: str | Path) -> Any:
    """The MetaSchedule JSON database in ``folder`` (its :data:`DB_FILES`), with
    :data:`MODULE_EQUALITY`; ``FileNotFoundError`` when a file is missing."""
    tvm_module()
    import tvm.s_tir.meta_schedule as ms

    paths = [Path(folder) / name for name in DB_FILES]
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"tvm database file {p} is missing")
    return ms.database.JSONDatabase(str(paths[0]), str(paths[1]), allow_missing=False, module_equality=MODULE_EQUALITY)


def prepare_module(model: Any) -> Any:
    """The Relax module of an ONNX ``model`` (a path or a loaded ``ModelProto``) as it is compiled
    and tuned: ``from_onnx`` (symbolic dims 1, weights as constants), then
    ``DecomposeOpsForInference`` (batch norm to arithmetic)."""
    tvm_module()
    import onnx
    from tvm import relax
    from tvm.relax.frontend.onnx import from_onnx

    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model))
    with _quiet_stderr():
        mod = from_onnx(model, shape_dict={n: dims for n, dims, _ in _graph_inputs(model)}, keep_params_in_input=False)
        return relax.transform.DecomposeOpsForInference()(mod)


def fuse_for_tasks(mod: Any, target: Any) -> Any:
    """``mod`` (from :func:`prepare_module`) after the passes ``compile_relax`` runs before it
    applies a database (library dispatch, LegalizeOps, AnnotateTIROpPattern, FoldConstant,
    FuseOps, FuseTIR): the fused TIR functions whose keys the database is queried with."""
    tvm = tvm_module()
    from tvm import relax
    from tvm.relax import pipeline

    passes = [*pipeline.library_dispatch_passes(target), relax.transform.LegalizeOps(),
              relax.transform.AnnotateTIROpPattern(), relax.transform.FoldConstant(), relax.transform.FuseOps(),
              relax.transform.FuseTIR()]  # fmt: skip
    with target, tvm.transform.PassContext(opt_level=3):
        return tvm.transform.Sequential(passes)(mod)


def build_kernel(mod: Any, target: Any, _params: Any) -> Any:
    """The builder's ``f_build``: MetaSchedule's ``default_build`` without its import of
    ``tvm.s_tir.tensor_intrin``, which parses every intrinsic of every backend as TVMScript (about
    a CPU-minute here) in each build worker, and the pool of build workers is restarted for every
    batch. Lowering a scheduled kernel needs no intrinsic registry."""
    from tvm.driver import build as tvm_build
    from tvm.s_tir.transform import RemoveWeightLayoutRewriteBlock

    return tvm_build(RemoveWeightLayoutRewriteBlock(skip_tensor_rewrite=True)(mod), target=target)


def pooled_builder(pool: Any, timeout_s: float) -> Any:
    """A MetaSchedule builder like ``LocalBuilder`` (with :func:`build_kernel`) whose build workers
    live across batches, each recycled after 32 builds (``LocalBuilder`` starts a fresh pool for
    every batch, against a slow memory leak, so each batch pays an interpreter start and TVM
    import per worker: several CPU-seconds, as much as building the batch's kernels). ``pool`` is
    a ``PopenPoolExecutor``; the caller shuts it down."""
    from tvm.ir.utils import derived_object
    from tvm.s_tir.meta_schedule.builder import BuilderResult, PyBuilder
    from tvm.s_tir.meta_schedule.builder.local_builder import _serialize_params, _worker_func
    from tvm.support.popen_pool import StatusKind

    @derived_object
    class PooledBuilder(PyBuilder):
        def build(self, build_inputs: list[Any]) -> list[Any]:
            args = [(build_kernel, None, b.mod, b.target, _serialize_params(b.params)) for b in build_inputs]
            results = []
            for r in pool.map_with_error_catching(lambda x: _worker_func(*x), args):
                if r.status == StatusKind.COMPLETE:
                    results.append(BuilderResult(r.value, None))
                elif r.status == StatusKind.TIMEOUT:
                    results.append(BuilderResult(None, f"build timed out after {timeout_s} s"))
                else:
                    results.append(BuilderResult(None, f"build failed: {r.value}"))
            return results

    return PooledBuilder()


def cpu_tensor_intrinsics() -> None:
    """Register the CPU tensor intrinsics (x86, ARM) before ``TuneContext`` imports all of
    ``tvm.s_tir.tensor_intrin`` (CUDA's hundreds of TVMScript functions: about a CPU-minute per
    process): the package is entered into ``sys.modules`` without running its ``__init__``. CPU
    schedule rules use these two only. A no-op when the package is already imported."""
    import importlib
    import importlib.util

    import tvm.s_tir

    name = "tvm.s_tir.tensor_intrin"
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None:
        return
    package = importlib.util.module_from_spec(spec)
    sys.modules[name] = package
    tvm.s_tir.tensor_intrin = package  # type: ignore[attr-defined]
    for sub in ("x86", "arm_cpu"):
        importlib.import_module(f"{name}.{sub}")


def compile_with_database(mod: Any, target: Any, database: Any) -> tuple[Any, int, int]:
    """``(executable, functions scheduled from the database, TIR functions)`` of ``mod`` (from
    :func:`prepare_module`): fused by :func:`fuse_for_tasks`, each fused function replaced by its
    database schedule, then lowered like ``compile_relax``. Unlike ``MetaScheduleApplyDatabase``,
    a function whose record cannot be replayed (an anchor trace that leaves an epilogue block
    unscheduled: "All blocks should have been scheduled...") keeps TVM's default code instead of
    failing the whole model."""
    tvm = tvm_module()
    from tvm import relax, tirx
    from tvm.relax import pipeline

    import tvm.s_tir.meta_schedule as ms
    import tvm_ffi
    from tvm.s_tir import Schedule

    fused = fuse_for_tasks(mod, target)
    normalize = tvm.get_global_func("tvm.s_tir.meta_schedule.normalize_mod")
    hits = total = 0
    for gv, func in list(fused.functions_items()):
        if not isinstance(func, tirx.PrimFunc):
            continue
        total += 1
        query = normalize(func)
        record = database.query_tuning_record(query, target, gv.name_hint)
        if record is None:
            continue
        try:
            if tvm_ffi.structural_equal(record.workload.mod, query):  # the tuned workload itself (names may differ)
                sch = database.query_schedule(query, target, gv.name_hint)
            else:  # the same anchor block with another epilogue: its trace replayed on this function
                sch = Schedule(query)
                ms.trace_apply.schedule_using_anchor_trace(sch, record.trace, target)
        except Exception:  # noqa: BLE001 - TVMError of a trace that does not replay: default code
            continue
        fused[gv] = sch.mod["main"].with_attr("global_symbol", gv.name_hint).with_attr("tirx.is_scheduled", True)
        hits += 1

    passes = [relax.transform.RewriteDataflowReshape(), relax.transform.ToNonDataflow(),  # compile_relax's lowering
              relax.transform.RemovePurityChecking(), relax.transform.CallTIRRewrite(), *pipeline.finalize_passes(target)]

    @tvm.transform.module_pass(opt_level=3)
    def lower(m: Any, _ctx: Any) -> Any:
        return tvm.transform.Sequential(passes)(m)

    with target, tvm.transform.PassContext(opt_level=3):
        return relax.build(fused, target=target, relax_pipeline=lower), hits, total


def compile_model(path: str | Path, config: MeasureConfig, model_sha256: str) -> tuple[Path, dict[str, Any]]:
    """The compiled library of ``path`` for ``config`` (from the cache, or built and cached) and
    facts for the environment (``tvm_version``, ``tvm_target``, ``tvm_tune_trials``, ``tvm_db``
    and ``tvm_db_functions`` (scheduled from it, of all) when compiled against a database,
    ``compile_s``, ``tvm_cache_hit``).

    With ``config.tvm_db`` (a content hash) the database must have been snapshotted under
    :func:`db_snapshot_dir` (``device_agent run --tvm-db`` does it); ``FileNotFoundError`` if not."""
    tvm = tvm_module()
    target = canonical_target(config)
    parts: list[Any] = [model_sha256, target, tvm.__version__, int(config.tvm_tune_trials)]
    if config.tvm_db:
        parts.append(config.tvm_db)
    key = hashlib.sha256(json.dumps(parts).encode()).hexdigest()
    lib = cache_dir() / f"{key}.so"
    info: dict[str, Any] = {"tvm_version": tvm.__version__, "tvm_target": json.loads(target),
                            "tvm_tune_trials": int(config.tvm_tune_trials), "tvm_cache_hit": lib.is_file()}  # fmt: skip
    if config.tvm_db:
        info["tvm_db"] = config.tvm_db
    if lib.is_file():
        return lib, info
    import onnx

    t0 = time.perf_counter()
    model = onnx.load(str(path))
    tgt = tvm.target.Target(json.loads(target))
    mod = prepare_module(model)
    with _quiet_stderr():
        if config.tvm_db or config.tvm_tune_trials > 0:
            import tvm.s_tir.meta_schedule as ms

            if config.tvm_db:
                ex, hits, total = compile_with_database(mod, tgt, open_database(db_snapshot_dir(config.tvm_db)))
                info["tvm_db_functions"] = [hits, total]
            else:  # this model alone; tasks extracted after the compile's own fusion, so that the keys match
                from tvm.support.popen_pool import PopenPoolExecutor

                cpu_tensor_intrinsics()
                pool = PopenPoolExecutor(max_workers=os.cpu_count() or 1, timeout=BUILDER_TIMEOUT_S, maximum_process_uses=32)
                runner = ms.runner.LocalRunner()
                with tempfile.TemporaryDirectory(prefix="device_agent-tune-") as work:
                    try:
                        db = ms.relax_integration.tune_relax(
                            fuse_for_tasks(mod, tgt), params={}, target=tgt, work_dir=work,
                            max_trials_global=int(config.tvm_tune_trials), num_trials_per_iter=min(64, int(config.tvm_tune_trials)),
                            builder=pooled_builder(pool, BUILDER_TIMEOUT_S), runner=runner, cost_model="random",
                            strategy="replay-trace", seed=0)  # fmt: skip
                    finally:  # both pools: a runner worker left behind outlives this process, idle
                        pool.shutdown()
                        runner.pool.shutdown()
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


def open_remote(config: MeasureConfig, lib: Path, sessions: dict[str, Any] | None = None) -> tuple[Any, Any, dict[str, Any]]:
    """``(vm, remote device, info)``: ``lib`` uploaded to ``config.tvm_rpc`` and loaded there.

    ``sessions`` (address -> open RPC session, owned by the caller) shares one session among the
    models loaded together: an ``rpc_server`` serves one session at a time (a second connect waits
    for the first to close), and a tracker could hand each session a different board, while the
    interleaved protocol needs the batch and its reference panel side by side on one board.
    """
    tvm_module()
    from tvm import relax, rpc

    session = (sessions or {}).get(config.tvm_rpc)
    if session is None:
        kind, host, port, key = parse_rpc(config.tvm_rpc)
        session = rpc.connect_tracker(host, port).request(key) if kind == "tracker" else rpc.connect(host, port)
        if sessions is not None:
            sessions[config.tvm_rpc] = session
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


__all__ = ["DB_FILES", "MODULE_EQUALITY", "VmTimer", "calibrate", "canonical_target", "compile_model", "compile_with_database",
           "build_kernel", "cpu_tensor_intrinsics", "db_snapshot_dir", "pooled_builder",
           "fuse_for_tasks", "host_cpu", "load", "make_inputs", "open_database", "open_remote", "parse_rpc", "parse_target",
           "prepare_module", "time_model", "tvm_module"]
