"""Find the graph of a model named by a database row: cache, candidate folders, direct build, export.

A latency-database row names its model by the sha256 of its ONNX bytes and, for models of
hwnas's spaces, by ``space`` and ``arch``. :class:`GraphResolver` turns such a triple into a
:class:`~hwnas.graph.data.GraphData`, trying in order:

1. the cache, by sha256, then by ``"space:arch"``;
2. an ONNX file with that sha256 in one of ``model_dirs`` (their ``manifest.jsonl`` first, then
   the sha256 of the ``*.onnx`` files the manifests do not list; a listed file whose bytes no
   longer match the manifest is an error);
3. for an architecture of hwnas's spaces, building its graph directly with
   :class:`~hwnas.graph.arch_encode.ArchEncoder` (about a millisecond, no torch; the same graph as
   encoding its export). These graphs are not cached: reading one back from the cache costs as much
   as building it again, and writing it more;
4. otherwise (``direct=False``, or a space without a direct encoding) re-exporting ``arch``
   through :func:`hwnas.export.arch_to_onnx`, the same path as ``hwnas export`` (about 0.2 s; cached
   under the sha256 of the exported bytes and under ``"space:arch"``).

Steps 3 and 4 build the resolver's ``form`` (``reference`` by default, the default export; see
:mod:`hwnas.export`); graphs of the ``pruned`` form are cached under ``"space:arch@pruned"``, so
the two never mix. A model found by its sha256 is the graph of that file, whatever its form.

Anything else is a :class:`~hwnas.predictors.base.PredictorError`.

Every graph of a model with a known architecture (from the reference, or from the manifest that
lists its file) comes back with :attr:`~hwnas.graph.data.GraphData.arch_features` set from its
space (:meth:`~hwnas.space.base.SearchSpace.arch_features`); they are attached on the way out, not
cached (computing them costs microseconds).

Example:
    >>> from hwnas.graph import GraphResolver
    >>> resolver = GraphResolver(cache=None)
    >>> g = resolver.graph_for(None, "nb201", "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
    >>> g.op_types[:3]
    ('Conv', 'Relu', 'Conv')
"""

from __future__ import annotations

import dataclasses
import hashlib
import multiprocessing
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from hwnas.graph.arch_encode import ArchEncoder
from hwnas.graph.cache import GraphCache
from hwnas.graph.data import GraphData
from hwnas.space.base import SearchSpace

#: ``(sha256, space, arch)`` of one model; any part may be ``None``.
ModelRef = tuple[str | None, str | None, str | None]


def _error(message: str) -> Exception:
    """A :class:`~hwnas.predictors.base.PredictorError` (imported late: ``hwnas.predictors``
    modules import this package)."""
    from hwnas.predictors.base import PredictorError

    return PredictorError(message)


@dataclass(frozen=True)
class _Job:
    """One graph to encode: an ONNX file (``path``), or an architecture to build directly
    (``direct``) or to export."""

    sha256: str | None
    path: str | None = None
    space: str | None = None
    arch: str | None = None
    direct: bool = False
    form: str = "reference"

    @property
    def ident(self) -> tuple[str, ...]:
        return ("file", self.path) if self.path else ("arch", str(self.space), str(self.arch))

    @property
    def label(self) -> str:
        return self.path if self.path else f"{self.space}:{self.arch}"


class GraphResolver:
    """Graphs of models named by ``(sha256, space, arch)``; see the module docstring for the order.

    Contract:
        * The same reference always gives an equal graph (encoding and export are deterministic).
        * Every graph that had to be encoded from an ONNX file or an export is put in the cache
          (when there is one), so a second run over the same models exports and encodes nothing.
          Graphs built directly are not cached (rebuilding one is as cheap as reading it back).
        * The index of ``model_dirs`` is built lazily, once per resolver: files added to the
          folders afterwards are not seen by this resolver.
        * Not thread-safe (the lazy index); use one resolver per thread.

    Args:
        cache: where encoded graphs are kept, or ``None`` for no caching.
        model_dirs: candidate folders (as written by ``hwnas export``) to look ONNX files up in.
        direct: build the graphs of architectures of hwnas's spaces directly (the default); ``False``
            exports them through torch instead (the reference path, for tests and benchmarks).
        form: the form in which architectures are built or exported (:data:`hwnas.export.FORMS`).

    Attributes:
        encode_s: seconds this resolver has spent making graphs that were not cached (building,
            reading and encoding files, exporting), for reports of where a run's time goes.
    """

    def __init__(
        self,
        cache: GraphCache | None,
        model_dirs: Sequence[str | os.PathLike[str]] = (),
        *,
        direct: bool = True,
        form: str = "reference",
    ) -> None:
        if form not in ("reference", "pruned"):
            raise ValueError(f"unknown form {form!r}; choose one of: reference, pruned")
        self.cache = cache
        self.model_dirs = tuple(Path(d) for d in model_dirs)
        self.direct = direct
        self.form = form
        self._manifest_index: dict[str, Path] | None = None
        self._file_index: dict[str, Path] | None = None
        self._spaces: dict[str, SearchSpace] = {}
        self._arch_encoder: ArchEncoder | None = None
        self._manifest_archs: dict[str, tuple[str, str]] = {}
        self._arch_memo: dict[tuple[str, str], object] = {}
        self.encode_s = 0.0

    def graph_for(self, sha256: str | None, space: str | None, arch: str | None) -> GraphData:
        """Graph of one model.

        Raises:
            PredictorError: no cached graph, no file with that sha256 and no architecture to
                export; or the file/architecture cannot be encoded.
        """
        return self.graphs_for([(sha256, space, arch)])[0]

    def graphs_for(
        self,
        items: Sequence[ModelRef],
        *,
        workers: int = 1,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> list[GraphData]:
        """Graphs of many models, in the order of ``items``.

        Every item is checked before any encoding starts, so an unresolvable one fails fast.
        Graphs built directly are built in this process. Graphs encoded from files or exports
        are encoded in this process too, or with ``workers > 1`` in a pool of that many ``spawn``
        processes; the parent caches each result as it arrives, so an interrupted run resumes
        where it stopped.

        Args:
            items: ``(sha256, space, arch)`` per model.
            workers: processes for encoding misses (1: in this process).
            on_progress: called as ``on_progress(done, total)`` (``total == len(items)``): once
                after the cache lookups if any hit, then after each encoded graph.

        Raises:
            PredictorError: as :meth:`graph_for`.
        """
        total = len(items)
        results: list[GraphData | None] = [None] * total
        jobs: dict[tuple[str, ...], _Job] = {}
        waiting: dict[tuple[str, ...], list[int]] = {}
        for i, (sha, space, arch) in enumerate(items):
            sha = sha.lower() if sha else None
            hit = self._cached(sha, space, arch)
            if hit is not None:
                results[i] = hit
                continue
            job = self._job(sha, space, arch)
            jobs.setdefault(job.ident, job)
            waiting.setdefault(job.ident, []).append(i)
        done = total - sum(len(v) for v in waiting.values())
        if done and on_progress:
            on_progress(done, total)

        def finish(job: _Job, graph: GraphData, exported_sha: str | None) -> None:
            nonlocal done
            if not job.direct:  # a direct graph's strings are its node templates' already
                graph = _interned(graph)
            self._store(job, graph, exported_sha)
            for i in waiting[job.ident]:
                results[i] = graph
            done += len(waiting[job.ident])
            if on_progress:
                on_progress(done, total)

        t0 = time.perf_counter()
        try:
            self._run_jobs(jobs, workers, finish)
        finally:
            self.encode_s += time.perf_counter() - t0
        return [self._with_arch(g, sha, space, arch) for g, (sha, space, arch) in zip(results, items) if g is not None]

    def _with_arch(self, graph: GraphData, sha: str | None, space: str | None, arch: str | None) -> GraphData:
        """``graph`` with the architecture features of its model (from the reference, else from
        the manifest that listed its file), unchanged when the model has no known architecture."""
        if not (space and arch) and sha:
            if self._manifest_index is None and self.model_dirs:
                self._manifest_index = self._read_manifests()
            space, arch = self._manifest_archs.get(sha.lower(), (None, None))
        if not (space and arch):
            return graph
        feats = self._arch_memo.get((space, arch))
        if feats is None:
            try:
                space_obj = self._space(space)
                feats = space_obj.arch_features(space_obj.parse(arch))
            except ValueError:  # a space or architecture hwnas does not know: no features
                feats = graph.arch_features
            self._arch_memo[(space, arch)] = feats
        return dataclasses.replace(graph, arch_features=feats)

    def _run_jobs(
        self,
        jobs: dict[tuple[str, ...], _Job],
        workers: int,
        finish: Callable[[_Job, GraphData, str | None], None],
    ) -> None:
        """Make the graph of every job, calling ``finish(job, graph, exported_sha)`` for each."""
        for job in [j for j in jobs.values() if j.direct]:
            finish(job, self._build(job), None)
        pending = [j for j in jobs.values() if not j.direct]
        if workers <= 1 or len(pending) <= 1:
            for job in pending:
                finish(job, *_run_job(job, False))
        else:
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=min(workers, len(pending)), mp_context=ctx) as pool:
                futures: dict[Future[tuple[GraphData, str | None]], _Job] = {
                    pool.submit(_run_job, job, True): job for job in pending
                }
                try:
                    remaining = set(futures)
                    while remaining:
                        finished, remaining = wait(remaining, return_when=FIRST_COMPLETED)
                        for fut in finished:
                            finish(futures[fut], *fut.result())
                except BaseException:
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise

    # -- lookups ---------------------------------------------------------------------------

    def _cached(self, sha: str | None, space: str | None, arch: str | None) -> GraphData | None:
        if self.cache is None:
            return None
        if sha:
            hit = self.cache.get(sha)
            if hit is not None:
                return hit
        if space and arch:
            return self.cache.get(self._arch_key(space, arch))
        return None

    def _arch_key(self, space: str, arch: str) -> str:
        """Cache key of an architecture's graph in this resolver's form."""
        return f"{space}:{arch}" if self.form == "reference" else f"{space}:{arch}@{self.form}"

    def _job(self, sha: str | None, space: str | None, arch: str | None) -> _Job:
        if sha:
            path = self._find(sha)
            if path is not None:
                return _Job(sha256=sha, path=str(path))
        if space and arch:
            try:
                space_obj = self._space(space)
                space_obj.parse(arch)
            except ValueError as exc:
                raise _error(f"cannot export model {space}:{arch}: {exc}") from None
            direct = self.direct and ArchEncoder.supports(space_obj)
            return _Job(sha256=sha, space=space, arch=arch, direct=direct, form=self.form)
        if sha:
            raise _error(f"no ONNX file for model {sha[:12]}: pass the folder of its candidates with --models DIR")
        raise _error("a model has neither sha256 nor architecture: cannot find its ONNX graph")

    def _space(self, name: str) -> SearchSpace:
        """The space named ``name`` (one object per name and resolver)."""
        space = self._spaces.get(name)
        if space is None:
            from hwnas.space import get_space

            space = self._spaces[name] = get_space(name)
        return space

    def _build(self, job: _Job) -> GraphData:
        """The graph of a ``direct`` job, built by this resolver's :class:`ArchEncoder`."""
        if self._arch_encoder is None:
            self._arch_encoder = ArchEncoder()
        space = self._space(str(job.space))
        try:
            return self._arch_encoder.encode(space, space.parse(str(job.arch)), job.form)
        except Exception as exc:  # a replay that cannot type a node: one line naming the model
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise _error(f"cannot encode model {job.label}: {msg}") from None

    def _find(self, sha: str) -> Path | None:
        """File in ``model_dirs`` whose bytes have this sha256, if any."""
        from device_agent.models import sha256_file

        if self._manifest_index is None:
            self._manifest_index = self._read_manifests()
        path = self._manifest_index.get(sha)
        if path is not None:  # the manifest's word; the encoding job checks the bytes
            return path
        if self._file_index is None:
            listed = {p.resolve() for p in self._manifest_index.values()}
            self._file_index = {}
            for folder in self.model_dirs:
                for f in sorted(folder.glob("*.onnx")):
                    if f.resolve() not in listed:
                        self._file_index.setdefault(sha256_file(f), f)
        return self._file_index.get(sha)

    def _read_manifests(self) -> dict[str, Path]:
        from hwnas.export import read_manifest

        index: dict[str, Path] = {}
        for folder in self.model_dirs:
            if not folder.is_dir():
                raise _error(f"models folder {folder} does not exist")
            try:
                entries = read_manifest(folder)
            except ValueError as exc:
                raise _error(str(exc)) from None
            for e in entries:
                sha, name = e.get("sha256"), e.get("file")
                if isinstance(sha, str) and isinstance(name, str) and (folder / name).is_file():
                    index.setdefault(sha.lower(), folder / name)
                    if isinstance(e.get("space"), str) and isinstance(e.get("arch"), str):
                        self._manifest_archs.setdefault(sha.lower(), (e["space"], e["arch"]))
        return index

    def _store(self, job: _Job, graph: GraphData, exported_sha: str | None) -> None:
        if self.cache is None or job.direct:
            return
        if job.path and job.sha256:
            self.cache.put(job.sha256, graph)
        if exported_sha:
            self.cache.put(exported_sha, graph)
        if job.space and job.arch:
            self.cache.put(self._arch_key(job.space, job.arch), graph)


def _run_job(job: _Job, in_worker: bool) -> tuple[GraphData, str | None]:
    """Encode one job; returns the graph and, for an export, the sha256 of the exported bytes.

    Runs in the parent or in a ``spawn`` worker (importable at module level for pickling).
    """
    from hwnas.graph.encode import encode_onnx
    from hwnas.predictors.base import PredictorError

    try:
        if job.path:
            data = Path(job.path).read_bytes()
            if job.sha256 and hashlib.sha256(data).hexdigest() != job.sha256:
                raise PredictorError(f"{job.path}: its sha256 is not the manifest's; export the folder again")
            return encode_onnx(data), None
        from hwnas.export import arch_to_onnx
        from hwnas.space import get_space

        if in_worker:
            import torch

            torch.set_num_threads(1)  # one process per core: no oversubscription
        space = get_space(str(job.space))
        data = arch_to_onnx(space, space.parse(str(job.arch)), form=job.form)
        return encode_onnx(data), hashlib.sha256(data).hexdigest()
    except PredictorError:
        raise
    except Exception as exc:  # a damaged file, an export failure: one line naming the model
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _error(f"cannot encode model {job.label}: {msg}") from None


def _interned(graph: GraphData) -> GraphData:
    """``graph`` with its strings interned (thousands of graphs share a few hundred node keys)."""
    return dataclasses.replace(
        graph,
        op_types=tuple(sys.intern(s) for s in graph.op_types),
        node_keys=tuple(sys.intern(s) for s in graph.node_keys),
    )
