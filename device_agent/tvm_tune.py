"""A MetaSchedule tuning database shared by every candidate of a search space: tune once, compile
any candidate of the space at tuned speed (``device_agent tvm-tune``, ``device_agent run --tvm-db``).

Runs on the device: numpy-free, torch-free, hwnas-free; TVM is imported lazily.

**Tuning** (:func:`tune`): each model is imported and fused exactly as the compile does it
(:func:`~device_agent.runtimes.tvm_rt.prepare_module`, :func:`~device_agent.runtimes.tvm_rt.fuse_for_tasks`,
so that the keys match); its tasks are extracted with ``anchor-block`` equality; the tasks of all
models are deduplicated (:func:`dedupe`: identical workloads of different models, or a conv with a
different fused epilogue, become one task whose weight is the sum of theirs); tasks the database
already holds a record for are skipped; the rest are tuned with ``trials_per_task`` trials each
(``max_trials_global`` = tasks x trials, so every task gets its share; evolutionary search, the
``random`` cost model by default: no xgboost, no torch on the device; builder timeout 300 s).

**The database folder** holds MetaSchedule's JSON database pruned to the best record per workload
(:data:`~device_agent.runtimes.tvm_rt.DB_FILES`) and ``manifest.json``: format, target, TVM
version, module equality, the content hash, and what produced it (space, trials per task, tasks,
wall and CPU seconds, cost model, runs). Files are replaced atomically, the manifest last.

**Its identity** (:func:`content_hash`) is sha256 over the two database files, each as
``name NUL sha256(bytes) LF`` in :data:`DB_FILES` order. It goes into the measurement config
(``tvm_db``) and the compile cache key.

**Opening** (:func:`read_db`, :func:`check_compatible`, :func:`use_db`): a missing or unparseable
file, or content that does not match the manifest's hash (edited, half-copied), is refused as
corrupt; a database tuned for another target (kind, mcpu, mtriple) or another TVM version is refused
as foreign; each in one line naming the file or what differs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from device_agent.runtimes import tvm_rt

#: ``format`` of manifest.json.
FORMAT = "hwnas-tvm-db/1"
MANIFEST = "manifest.json"
#: Target fields a database must share with the compile target (``num-cores`` may differ).
TARGET_KEYS = ("kind", "mcpu", "mtriple")
#: Cost models accepted by ``--cost-model`` (``xgb`` needs xgboost, ``mlp`` needs torch).
COST_MODELS = ("random", "xgb", "mlp")
#: Search strategies accepted by ``--strategy``.
STRATEGIES = ("evolutionary", "replay-trace")


class DatabaseError(ValueError):
    """A tuning database that cannot be used: corrupt, foreign or missing (one-line message)."""


@dataclass(frozen=True)
class TuningDB:
    """A verified database folder: its content hash, manifest and the bytes that were hashed."""

    path: Path
    content_sha256: str
    manifest: dict[str, Any]
    blobs: dict[str, bytes]


@dataclass
class Task:
    """One deduplicated workload: a representative ``ExtractedTask``, the summed weight (calls over
    all models) and the number of models it occurs in."""

    extracted: Any
    weight: int
    models: int

    @property
    def mod(self) -> Any:
        """The fused TIR module tuned and looked up (``dispatched[0]``)."""
        return self.extracted.dispatched[0]


def content_hash(blobs: dict[str, bytes]) -> str:
    """sha256 over the database files (see the module docstring)."""
    h = hashlib.sha256()
    for name in tvm_rt.DB_FILES:
        h.update(name.encode() + b"\0" + hashlib.sha256(blobs[name]).hexdigest().encode() + b"\n")
    return h.hexdigest()


def _json_lines(name: Path, data: bytes) -> list[Any]:
    out = []
    for n, line in enumerate(data.decode("utf-8", "replace").splitlines(), start=1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DatabaseError(f"tvm database {name} is corrupt: line {n} is not JSON ({exc.msg}); re-tune it") from None
    return out


def read_db(folder: str | Path) -> TuningDB:
    """The database in ``folder``, verified (files present, each line JSON, records pointing at
    workloads that exist, content matching the manifest's hash); :class:`DatabaseError` if not."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatabaseError(f"--tvm-db {folder}: no such folder; tune one with hwnas tvm tune or device_agent tvm-tune")
    mpath = folder / MANIFEST
    if not mpath.is_file():
        raise DatabaseError(f"--tvm-db {folder}: no {MANIFEST}: not a database made by hwnas tvm tune / device_agent tvm-tune")
    try:
        manifest = json.loads(mpath.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatabaseError(f"tvm database {mpath} is corrupt: not JSON ({exc}); re-tune it") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DatabaseError(f"tvm database {mpath}: format {manifest.get('format') if isinstance(manifest, dict) else None!r}, "
                            f"expected {FORMAT!r}")
    blobs = {}
    for name in tvm_rt.DB_FILES:
        if not (folder / name).is_file():
            raise DatabaseError(f"tvm database {folder / name} is missing; copy the whole folder or re-tune it")
        blobs[name] = (folder / name).read_bytes()
    workloads = _json_lines(folder / tvm_rt.DB_FILES[0], blobs[tvm_rt.DB_FILES[0]])
    for record in _json_lines(folder / tvm_rt.DB_FILES[1], blobs[tvm_rt.DB_FILES[1]]):
        if not (isinstance(record, list) and len(record) == 2 and isinstance(record[0], int) and 0 <= record[0] < len(workloads)):
            raise DatabaseError(f"tvm database {folder / tvm_rt.DB_FILES[1]} is corrupt: a record names no workload of "
                                f"{tvm_rt.DB_FILES[0]}; re-tune it")
    digest = content_hash(blobs)
    if manifest.get("content_sha256") != digest:
        raise DatabaseError(f"tvm database {folder}: its files do not match {MANIFEST} (edited or partly copied); "
                            "copy the whole folder again or re-tune it")
    return TuningDB(folder, digest, manifest, blobs)


def check_compatible(db: TuningDB, target: dict[str, Any], tvm_version: str) -> None:
    """:class:`DatabaseError` (one line naming what differs) unless ``db`` was tuned for ``target``'s
    kind, mcpu and mtriple with TVM ``tvm_version``."""
    tuned = db.manifest.get("target") or {}
    diff = [f"{k} {tuned.get(k)!r} (run: {target.get(k)!r})" for k in TARGET_KEYS if tuned.get(k) != target.get(k)]
    if db.manifest.get("tvm_version") != tvm_version:
        diff.append(f"TVM {db.manifest.get('tvm_version')} (here: {tvm_version})")
    if diff:
        raise DatabaseError(f"--tvm-db {db.path} was tuned for another target: {'; '.join(diff)}; "
                            "tune one for this target or pass the matching --tvm-target")


def snapshot(db: TuningDB) -> Path:
    """Copies the hashed bytes of ``db`` to :func:`~device_agent.runtimes.tvm_rt.db_snapshot_dir`
    (once per content hash; the folder appears whole or not at all); its path."""
    final = tvm_rt.db_snapshot_dir(db.content_sha256)
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{db.content_sha256[:12]}.", dir=final.parent))
    try:
        for name, data in db.blobs.items():
            (tmp / name).write_bytes(data)
        (tmp / MANIFEST).write_text(json.dumps(db.manifest, indent=1, sort_keys=True))
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.is_dir():  # not a concurrent snapshot of the same content
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def target_of(tvm_target: str, threads: int) -> str:
    """The canonical target JSON for ``--tvm-target``/``--threads`` as ``device_agent run`` makes it
    (the host's ``mcpu`` when no target is given); ``ValueError`` (one line)."""
    from device_agent.protocol import MeasureConfig

    return tvm_rt.canonical_target(MeasureConfig(runtime="tvm", threads=max(0, int(threads)), tvm_target=tvm_target or ""))


def use_db(folder: str | Path, target_json: str) -> str:
    """``device_agent run --tvm-db``: verify ``folder`` for the run's canonical target, snapshot it
    and return its content hash (for ``MeasureConfig.tvm_db``); :class:`DatabaseError` (one line)."""
    tvm = tvm_rt.tvm_module()
    db = read_db(folder)
    check_compatible(db, json.loads(target_json), tvm.__version__)
    snapshot(db)
    return db.content_sha256


# -- tasks -----------------------------------------------------------------------------------------


def model_tasks(path: str | Path, target: Any) -> list[Any]:
    """The tuning tasks (``ExtractedTask``) of one ONNX model, extracted after the compile's own
    fusion, with ``anchor-block`` equality."""
    import tvm.s_tir.meta_schedule as ms

    mod = tvm_rt.fuse_for_tasks(tvm_rt.prepare_module(path), target)
    return list(ms.relax_integration.extract_tasks(mod, target, module_equality=tvm_rt.MODULE_EQUALITY))


def dedupe(per_model: Iterable[Sequence[Any]]) -> list[Task]:
    """Tasks of several models, one per workload under ``anchor-block`` equality, in first-seen
    order; weights summed, models counted."""
    import tvm.s_tir.meta_schedule as ms

    seen = ms.database.MemoryDatabase(module_equality=tvm_rt.MODULE_EQUALITY)
    reps: list[tuple[Any, Task]] = []
    for tasks in per_model:
        counted: set[int] = set()
        for t in tasks:
            wl = seen.commit_workload(t.dispatched[0])
            i = next((i for i, (w, _) in enumerate(reps) if w.same_as(wl)), None)
            if i is None:
                reps.append((wl, Task(t, 0, 0)))
                i = len(reps) - 1
            reps[i][1].weight += int(t.weight)
            if i not in counted:
                reps[i][1].models += 1
                counted.add(i)
    return [task for _, task in reps]


def _has_record(db: Any, task: Task, target: Any) -> bool:
    return bool(db.has_workload(task.mod)) and db.query_tuning_record(task.mod, target, task.extracted.task_name) is not None


def _atomic_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _cpu_s() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def tune(models: Sequence[Path], out: str | Path, target_json: str, trials_per_task: int, *, space: str = "",
         cost_model: str = "random", strategy: str = "evolutionary", trials_per_iter: int = 16, jobs: int = 0, seed: int = 0,
         on_line: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
    """Tune the union of the tasks of ``models`` into the database folder ``out`` (created, or
    extended: its workloads are skipped) for the target ``target_json``; returns the manifest.

    Example:
        >>> tune(sorted(Path("candidates").glob("*.onnx")), "tvm-db", '{"kind":"llvm","mcpu":"znver3","num-cores":1}',
        ...      32)["content_sha256"]  # doctest: +SKIP
        '3f0c...'

    Raises:
        DatabaseError: ``out`` holds a corrupt database or one for another target / TVM version.
        ValueError: bad arguments (one line).
    """
    tvm = tvm_rt.tvm_module()
    import tvm.s_tir.meta_schedule as ms

    if trials_per_task < 1:
        raise ValueError(f"--trials-per-task must be a positive integer, got {trials_per_task}")
    if cost_model not in COST_MODELS:
        raise ValueError(f"--cost-model must be one of {', '.join(COST_MODELS)}, got {cost_model!r}")
    if strategy not in STRATEGIES:
        raise ValueError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if not models:
        raise ValueError("no .onnx models to tune")
    out, target_dict = Path(out), json.loads(target_json)
    target = tvm.target.Target(target_dict)
    old = read_db(out) if (out / MANIFEST).exists() else None
    if old is None and any((out / name).exists() for name in tvm_rt.DB_FILES):
        raise DatabaseError(f"--db {out} holds MetaSchedule files but no {MANIFEST}: give an empty or new folder")
    if old is not None:
        check_compatible(old, target_dict, tvm.__version__)
    t0, c0 = time.perf_counter(), _cpu_s()
    per_model = []
    for n, path in enumerate(models, start=1):
        per_model.append(model_tasks(path, target))
        on_line(f"extracted {len(per_model[-1])} task(s) of {Path(path).name} ({n}/{len(models)})")
    tasks = dedupe(per_model)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".tune-", dir=out) as work:
        paths = [Path(work) / name for name in tvm_rt.DB_FILES]
        for p, name in zip(paths, tvm_rt.DB_FILES):
            p.write_bytes(old.blobs[name] if old else b"")
        database = ms.database.JSONDatabase(str(paths[0]), str(paths[1]), module_equality=tvm_rt.MODULE_EQUALITY)
        todo = [t for t in tasks if not _has_record(database, t, target)]
        on_line(f"{sum(len(m) for m in per_model)} task(s) in {len(models)} model(s), {len(tasks)} unique, "
                f"{len(tasks) - len(todo)} already in the database, {len(todo)} to tune x {trials_per_task} trials")
        if todo:
            quiet = logging.getLogger("tvm.s_tir.meta_schedule")
            if quiet.level == logging.NOTSET:  # its console handler would print every step, at DEBUG, on stdout
                quiet.setLevel(logging.WARNING)
            with contextlib.redirect_stdout(sys.stderr):
                _run_tuning(ms, todo, database, work, trials_per_task, cost_model, strategy, trials_per_iter, jobs, seed)
        if todo or old is None:  # the best record per workload, old and new
            pruned_dir = Path(work) / "pruned"
            pruned_dir.mkdir()
            database.dump_pruned(ms.database.JSONDatabase(work_dir=str(pruned_dir), module_equality=tvm_rt.MODULE_EQUALITY))
            blobs = {name: (pruned_dir / name).read_bytes() for name in tvm_rt.DB_FILES}
        else:  # nothing new: the same bytes, the same content hash
            blobs = dict(old.blobs)
        missing = sum(not _has_record(database, t, target) for t in tasks)
    runs = list((old.manifest.get("runs") or []) if old else [])
    runs.append({"space": space, "models": len(models), "unique_tasks": len(tasks), "tuned_tasks": len(todo),
                 "trials_per_task": trials_per_task, "cost_model": cost_model, "strategy": strategy,
                 "tuning_s": round(time.perf_counter() - t0, 1), "cpu_s": round(_cpu_s() - c0, 1)})  # fmt: skip
    manifest = {"format": FORMAT, "content_sha256": content_hash(blobs), "target": target_dict, "tvm_version": tvm.__version__,
                "module_equality": tvm_rt.MODULE_EQUALITY, "space": space or (old.manifest.get("space", "") if old else ""),
                "workloads": blobs[tvm_rt.DB_FILES[0]].count(b"\n"), "tasks_without_record": missing,
                "tuning_s": round(sum(r["tuning_s"] for r in runs), 1), "cpu_s": round(sum(r["cpu_s"] for r in runs), 1),
                "runs": runs}  # fmt: skip
    for name in tvm_rt.DB_FILES:
        _atomic_bytes(out / name, blobs[name])
    _atomic_bytes(out / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode())
    on_line(f"database {out}: {manifest['workloads']} workload(s), content {manifest['content_sha256'][:16]}")
    return manifest


def _run_tuning(ms: Any, todo: list[Task], database: Any, work: str, trials: int, cost_model: str, strategy: str,
                per_iter: int, jobs: int, seed: int) -> None:
    """MetaSchedule over ``todo`` into ``database``: ``trials`` per task, builds on ``jobs`` workers.
    The evolutionary search runs with a population of 128 (not 512): with few trials per task its
    sampling, not the measuring, would dominate the cost."""
    jobs = int(jobs or os.cpu_count() or 1)
    tvm_rt.cpu_tensor_intrinsics()
    search = (ms.search_strategy.EvolutionarySearch(population_size=128, init_min_unmeasured=32, genetic_num_iters=2)
              if strategy == "evolutionary" else "replay-trace")
    contexts, weights = ms.relax_integration.extracted_tasks_to_tune_contexts(
        [t.extracted for t in todo], work_dir=work, strategy=search, num_threads=jobs, seed=seed)
    if len(contexts) == len(todo):  # none skipped as already scheduled: the summed weights line up
        weights = [float(t.weight) for t in todo]
    runner = ms.runner.LocalRunner(timeout_sec=60, evaluator_config=ms.runner.EvaluatorConfig(
        number=3, repeat=1, min_repeat_ms=20, enable_cpu_cache_flush=False))
    from tvm.support.popen_pool import PopenPoolExecutor

    pool = PopenPoolExecutor(max_workers=jobs, timeout=tvm_rt.BUILDER_TIMEOUT_S, maximum_process_uses=32)
    try:
        ms.tune.tune_tasks(
            tasks=contexts, task_weights=weights, work_dir=work, max_trials_global=trials * len(contexts),
            max_trials_per_task=trials, num_trials_per_iter=max(1, min(per_iter, trials)),
            builder=tvm_rt.pooled_builder(pool, tvm_rt.BUILDER_TIMEOUT_S), runner=runner, database=database,
            cost_model=cost_model, task_scheduler="gradient", module_equality=tvm_rt.MODULE_EQUALITY)
    finally:  # both pools: a runner worker left behind outlives this process, idle
        pool.shutdown()
        runner.pool.shutdown()


def summary(manifest: dict[str, Any], folder: str | Path) -> str:
    """One line on the last tuning run of ``manifest`` (stored in ``folder``)."""
    r = manifest["runs"][-1]
    return (f"{folder}: {r['unique_tasks']} unique task(s) in {r['models']} model(s), {r['tuned_tasks']} tuned x "
            f"{r['trials_per_task']} trials in {r['tuning_s']} s ({r['cpu_s']} CPU s); content {manifest['content_sha256']}")


def find_models(folder: str | Path) -> list[Path]:
    """The ``.onnx`` files of ``folder`` (or the file itself), sorted; ``ValueError`` if none."""
    p = Path(folder)
    models = [p] if p.is_file() and p.suffix == ".onnx" else sorted(p.glob("*.onnx")) if p.is_dir() else []
    if not models:
        raise ValueError(f"--models {folder}: no .onnx files")
    return models


__all__ = ["COST_MODELS", "DatabaseError", "FORMAT", "MANIFEST", "Task", "TuningDB", "check_compatible",
           "content_hash", "dedupe", "find_models", "summary", "target_of", "model_tasks", "read_db", "snapshot", "tune", "use_db"]
