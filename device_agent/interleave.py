"""The ``interleaved`` protocol: batches of models timed in shuffled rounds, with drift references.

Why: samples taken back to back are correlated, and the machine drifts between models and between
runs (other tenants, the clock, the caches), so one model after another gives medians that do not
repeat and intervals that measure the wrong spread. Here every round visits every model of a batch
once, in a fresh shuffled order, so each model's samples are spread over the whole batch and share
its drift; the interval comes from the spread between rounds (:func:`device_agent.stats.repeat_interval`).

Guarding: the parent drives every load and every visit of the worker (:mod:`device_agent.guard`),
so a crash or a hang is pinned to the model in flight. That model is recorded as ``error`` or
``timeout``; the worker is replaced and the batch's other models are loaded again (with the
``number`` they were calibrated with) and go on. The batch's records are yielded together once the
batch is done, so a caller that stores each batch keeps every finished batch on Ctrl-C.
"""

from __future__ import annotations

import math
import random
import sys
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from latency_db.records import MeasurementRecord, Status

from device_agent.drift import local_levels
from device_agent.fingerprint import environment, read_temperatures
from device_agent.guard import Worker, WorkerDied, WorkerTimeout
from device_agent.models import ModelFile
from device_agent.protocol import REFERENCE_PANEL, MeasureConfig, MeasureResult
from device_agent.runner import make_record
from device_agent.stats import (
    Tracking, half_change, median_rel_halfwidths, ratio_interval, repeat_interval, stats_of_rounds, tracking_sd)

#: How a model's rounds ended (``environment["stop"]``).
STOP_CONVERGED, STOP_TIME_CAP, STOP_MAX_ROUNDS = "converged", "time_cap", "max_rounds"
#: How the reference's rounds end: with the batch's last model.
STOP_BATCH_END = "batch_end"
#: Batches (this run's and earlier runs') whose references give the tracking part of ``ref_ratio_interval``.
_TRACKING_BATCHES = 12


@dataclass
class _Entry:
    """One model of a batch while it is measured (mutable; private to this module)."""

    model: ModelFile
    ident: str
    samples: list[float] = field(default_factory=list)
    rounds_seen: list[int] = field(default_factory=list)  # round of each sample
    times: list[float] = field(default_factory=list)  # mid-time of each sample's visit (monotonic s)
    levels: np.ndarray | None = None  # the machine's level at each sample (device_agent.drift)
    number: int | None = None
    env: dict[str, Any] = field(default_factory=dict)
    failure: MeasureResult | None = None
    stop: str | None = None
    loaded: bool = False
    reference: bool = False  # a drift reference (loaded with the runner's reference config)
    busy_s: float = 0.0

    @property
    def active(self) -> bool:
        return self.failure is None and self.stop is None

    @property
    def corrected(self) -> list[float]:
        """The samples divided by the machine's level at each (the raw samples without levels)."""
        if self.levels is None or len(self.levels) != len(self.samples):
            return list(self.samples)
        return [float(v) for v in np.asarray(self.samples) / self.levels]


@dataclass(frozen=True)
class BatchEvent:
    """Progress of a batch, for a display: after loading and after every round."""

    batch: int
    batches: int
    round: int
    active: int
    finished: int
    size: int


@dataclass(frozen=True)
class BatchResult:
    """The records of one finished batch: its models', then the references' (those timed)."""

    batch: int
    records: list[tuple[ModelFile, MeasurementRecord]]
    references: list[tuple[ModelFile, MeasurementRecord]]

    @property
    def reference(self) -> tuple[ModelFile, MeasurementRecord] | None:
        """The first (smallest) reference's file and record, or None without references."""
        return self.references[0] if self.references else None


class InterleavedRunner:
    """Measures models in batches under the ``interleaved`` protocol (see :class:`MeasureConfig`).

    Contract: :meth:`measure` yields one :class:`BatchResult` per batch, with exactly one record per
    model that is not skipped, whatever the model does (load failure -> ``error``; worker death
    while loading or visiting it -> ``error`` ``worker crashed (...)``; no answer within
    ``timeout_s`` -> ``timeout``), plus one record per reference.
    Only a worker that cannot start raises (:class:`device_agent.guard.WorkerStartError`). Not
    thread-safe. Use as a context manager (or call :meth:`close`).

    Args:
        config: the protocol, validated, with ``protocol == "interleaved"``.
        device_id: stored in every record.
        reference: the drift references (:func:`device_agent.reference.reference_panel`), one
            reference file, or None. Each model's ``ref_ratio`` is over the panel level: the
            geometric mean of the references' drift-corrected medians (none when one failed).
        python: interpreter of the worker (default: this one).
        startup_timeout_s: how long a new worker may take to import its runtime.
        seed: seed of the shuffled round orders (default: random).
        history: the panel levels of earlier runs on this device under this protocol (the
            ``history`` part of :class:`device_agent.stats.RepeatInterval`). Each finished batch's
            panel level is added to it, so later batches of a run also carry how far the
            machine's level moved between the run's earlier batches.
        on_visit: called with each model just before its visit is sent (tests pin faults with it).
        members: earlier batches' references against their panel level (``members`` of
            :meth:`latency_db.LatencyDB.reference_runs`); with this run's batches they give the
            ``tracking`` part of ``ref_ratio_interval`` (:func:`device_agent.stats.tracking_sd`).
    """

    def __init__(
        self, config: MeasureConfig, *, device_id: str, reference: ModelFile | Sequence[ModelFile] | None = None,
        python: str | None = None, startup_timeout_s: float = 120.0, seed: int | None = None,
        history: Sequence[float] = (), on_visit: Callable[[ModelFile, int], None] | None = None,
        members: Sequence[dict[str, float]] = (),
    ) -> None:  # fmt: skip
        self.config = config
        # The drift references measure the machine, not a schedule: TVM compiles them untuned
        # whatever the run's tuning (tuning them would cost what a candidate's tuning costs, once
        # per trial count and database). Their records keep the run's config, so that they group
        # with its models; their environment's ``tvm_tune_trials`` (0) says what was compiled.
        self.reference_config = (replace(config, tvm_tune_trials=0, tvm_db="") if config.runtime == "tvm" else config)
        self.device_id = device_id
        self.references: list[ModelFile] = (
            [] if reference is None else [reference] if isinstance(reference, ModelFile) else list(reference))
        self.python = python or sys.executable
        self.startup_timeout_s = startup_timeout_s
        self.on_visit = on_visit
        self.history = tuple(float(h) for h in history)
        self.members = [dict(m) for m in members]
        self.run_id = uuid.uuid4().hex
        self._rng = random.Random(seed)
        self._worker: Worker | None = None
        self._t_batch = 0.0  # monotonic start of the batch being measured

    @property
    def worker_pid(self) -> int | None:
        """Process id of the current worker, or None."""
        return self._worker.pid if self._worker is not None else None

    # -- worker ---------------------------------------------------------------------------------

    def _ensure_worker(self, entries: list[_Entry]) -> Worker:
        """The live worker; a new one (every loaded entry marked for re-loading) after a death."""
        if self._worker is not None and self._worker.proc.poll() is not None:
            self._drop_worker(entries)
        if self._worker is None:
            self._worker = Worker(self.config.runtime, self.python, self.startup_timeout_s)
        return self._worker

    def _drop_worker(self, entries: list[_Entry]) -> None:
        if self._worker is not None:
            self._worker.kill()
            self._worker = None
        for e in entries:
            e.loaded = False

    def _request(self, entry: _Entry, message: dict[str, Any], entries: list[_Entry]) -> dict[str, Any] | None:
        """Sends one request about ``entry``; a hang or a death is pinned to it (None returned)."""
        worker = self._ensure_worker(entries)
        entry.env.setdefault("worker_pids", [])
        if worker.pid not in entry.env["worker_pids"]:
            entry.env["worker_pids"].append(worker.pid)
        try:
            return worker.request(message, self.config.timeout_s)
        except WorkerTimeout:
            entry.failure = MeasureResult.failure(
                Status.TIMEOUT, f"exceeded --timeout-s {float(self.config.timeout_s)} s", entry.env)
        except WorkerDied as died:
            entry.failure = MeasureResult.failure(Status.ERROR, f"worker crashed ({died.description})", entry.env)
        self._drop_worker(entries)
        return None

    def _load(self, entry: _Entry, entries: list[_Entry]) -> None:
        config = self.reference_config if entry.reference else self.config
        message = {"op": "load", "id": entry.ident, "path": str(entry.model.path.resolve()),
                   "config": config.to_dict(), "number": entry.number}
        answer = self._request(entry, message, entries)
        if answer is None:
            return
        if answer.get("op") == "loaded":
            entry.loaded = True
            entry.number = int(answer["number"])
            for key, value in answer.get("environment", {}).items():
                entry.env.setdefault(key, value)  # the first load's facts
            entry.env["loads"] = entry.env.get("loads", 0) + 1
        elif answer.get("op") == "failed":
            entry.failure = MeasureResult.from_dict(answer["result"])
        else:
            entry.failure = MeasureResult.failure(Status.ERROR, f"worker: {answer.get('error', answer)}", entry.env)

    def _visit(self, entry: _Entry, round_no: int, entries: list[_Entry]) -> None:
        self._ensure_worker(entries)  # a worker that died between requests is nobody's fault: replace it
        if not entry.loaded:
            self._load(entry, entries)
            if not entry.active:
                return
        if self.on_visit is not None:
            self.on_visit(entry.model, round_no)
        start = time.monotonic()
        answer = self._request(entry, {"op": "visit", "id": entry.ident}, entries)
        end = time.monotonic()
        entry.busy_s += end - start
        if answer is None:
            return
        if answer.get("op") == "visited":
            entry.samples.append(float(answer["ms"]))
            entry.rounds_seen.append(round_no)
            entry.times.append((start + end) / 2.0)
        elif answer.get("op") == "failed":
            entry.failure = MeasureResult.from_dict(answer["result"])
            entry.loaded = False
        else:
            entry.failure = MeasureResult.failure(Status.ERROR, f"worker: {answer.get('error', answer)}", entry.env)

    def _finish(self, entry: _Entry, stop: str, entries: list[_Entry]) -> None:
        entry.stop = stop
        if self.config.profile_nodes > 0 and self.config.runtime == "onnxruntime" and entry.loaded:
            answer = self._request(entry, {"op": "profile", "id": entry.ident}, entries)
            if answer is None:  # the profile crashed the worker: the timing stands
                entry.failure = None
                entry.env["node_profile_error"] = "the profiling session crashed the worker"
            elif "node_profile_ms" in answer:
                entry.env["node_profile_ms"] = answer["node_profile_ms"]
            else:
                entry.env["node_profile_error"] = answer.get("error")
        if entry.loaded and self._worker is not None:
            try:
                self._worker.request({"op": "unload", "id": entry.ident}, self.config.timeout_s)
            except (WorkerTimeout, WorkerDied):
                self._drop_worker(entries)
        entry.loaded = False

    # -- batches --------------------------------------------------------------------------------

    def measure(
        self, models: Iterable[ModelFile], *, skip: Callable[[ModelFile], bool] | None = None,
        on_progress: Callable[[BatchEvent], None] | None = None,
    ) -> Iterator[BatchResult]:  # fmt: skip
        """Measures ``models`` batch by batch, yielding each batch's records when it is done.

        Args:
            models: the files to measure (input order is kept within the records of a batch).
            skip: True skips a model (resume); evaluated for every model before the first batch.
            on_progress: called after a batch's models are loaded and after every round.

        Raises:
            WorkerStartError: a worker process could not be started.
        """
        todo = [m for m in models if skip is None or not skip(m)]
        batches = even_batches(todo, self.config.batch_size)
        for index, batch in enumerate(batches):
            yield self._run_batch(index, len(batches), batch, on_progress)

    def _run_batch(self, index: int, n_batches: int, batch: list[ModelFile],
                   on_progress: Callable[[BatchEvent], None] | None) -> BatchResult:
        cfg = self.config
        base_env = environment(cfg)
        base_env["temperature_before_c"] = read_temperatures()
        entries = [_Entry(model, f"m{i}") for i, model in enumerate(batch)]
        refs = [_Entry(m, f"ref{i}", reference=True) for i, m in enumerate(self.references)]
        everyone = entries + refs
        t_batch = self._t_batch = time.monotonic()
        for e in everyone:
            self._load(e, everyone)

        def progress(round_no: int) -> None:
            if on_progress is not None:
                active = sum(e.active for e in entries)
                on_progress(BatchEvent(index, n_batches, round_no, active, len(entries) - active, len(entries)))

        progress(0)
        t_rounds = time.monotonic()
        cap_s = cfg.time_cap_s * max(1, len(entries))
        round_no = 0
        while any(e.active for e in entries):
            round_no += 1
            order = [e for e in everyone if e.active]
            self._rng.shuffle(order)
            for e in order:
                if e.active:
                    self._visit(e, round_no, everyone)
            elapsed = time.monotonic() - t_rounds
            _set_levels(everyone)
            for e in entries:
                if not e.active:
                    continue
                stop = self._stop_reason(e, round_no, elapsed, cap_s)
                if stop is not None:
                    self._finish(e, stop, everyone)
            progress(round_no)
        for r in refs:
            if r.active:
                self._finish(r, STOP_BATCH_END, everyone)
        _set_levels(everyone)

        base_env["temperature_after_c"] = read_temperatures()
        base_env["batch_wall_s"] = round(time.monotonic() - t_batch, 3)
        ref_records = [(r.model, self._record(r, index, round_no, base_env, None, role="reference")) for r in refs]
        panel = _panel(refs, [rec for _, rec in ref_records])
        panel_by_round = _panel_by_round(refs) if panel is not None else {}
        tracking: Tracking | None = None
        if panel is not None and len(refs) > 1:
            self.members.append({str(rec.arch): math.log(float(rec.median_ms or 0.0) / panel["median_ms"])
                                 for _, rec in ref_records})
            tracking = tracking_sd(self.members[-_TRACKING_BATCHES:])
            source = f"{min(len(self.members), _TRACKING_BATCHES)} batches"
            if tracking is None:
                tracking, source = _halves_tracking(refs, panel_by_round), "halves of this batch"
            if tracking is not None:
                panel.update(tracking=round(tracking.sd, 6), tracking_dof=round(tracking.dof, 3),
                             tracking_from=source, tracking_halfwidth=round(tracking.halfwidth(), 6))
        records = [(e.model, self._record(e, index, round_no, base_env, _aligned(e, panel_by_round), panel=panel,
                                          ref_all=list(panel_by_round.values()), tracking=tracking)) for e in entries]
        if panel is not None:
            self.history = (*self.history, float(panel["median_ms"]))
        return BatchResult(index, records, ref_records)

    def _stop_reason(self, e: _Entry, round_no: int, elapsed_s: float, cap_s: float) -> str | None:
        """Why ``e`` stops after this round, or None: converged when the 95% CI of the median of its
        drift-corrected samples is within ``target_rel_ci``."""
        cfg = self.config
        if round_no >= cfg.max_rounds:
            return STOP_MAX_ROUNDS
        if len(e.samples) < cfg.min_rounds:
            return None
        spread = median_rel_halfwidths(e.corrected)
        if spread is not None and max(spread) <= cfg.target_rel_ci:
            return STOP_CONVERGED
        if elapsed_s >= cap_s:
            return STOP_TIME_CAP
        return None

    def _record(self, e: _Entry, batch: int, rounds: int, base_env: dict[str, Any], ref: list[float] | None,
                *, role: str = "model", panel: dict[str, Any] | None = None,
                ref_all: Sequence[float] = (), tracking: Tracking | None = None) -> MeasurementRecord:
        """The record of ``e``; ``ref`` is the panel level (:func:`_panel_by_round`) in ``e``'s rounds
        (or None), ``ref_all`` in all rounds, ``panel`` its summary (:func:`_panel`), ``tracking`` the batch's :class:`~device_agent.stats.Tracking` (or None). The record's samples are ``e``'s drift-corrected ones (``raw_samples_ms`` and
        ``visit_level`` in its environment keep what was timed and the level divided out)."""
        env = dict(base_env)
        env.update(e.env)
        env.update(run_id=self.run_id, batch=batch, role=role, batch_rounds=rounds, wall_s=round(e.busy_s, 3))
        if e.failure is not None:
            return make_record(e.model, e.failure, self.config, device_id=self.device_id, environment=env)
        if not e.samples:  # every visit was lost to restarts of the worker
            failure = MeasureResult.failure(Status.ERROR, "no visit completed", env)
            return make_record(e.model, failure, self.config, device_id=self.device_id, environment=env)
        env.update(rounds=len(e.samples), stop=e.stop)
        env["visit_t_s"] = [round(t - self._t_batch, 4) for t in e.times]  # when each sample was taken
        y = e.corrected
        if e.levels is not None:
            env["samples"] = "drift-corrected: raw_samples_ms / visit_level"
            env["raw_samples_ms"] = [round(v, 6) for v in e.samples]
            env["visit_level"] = [round(float(v), 5) for v in e.levels]
            env["raw_median_ms"] = round(float(np.median(e.samples)), 6)
        parts = None
        if role == "reference":
            env["drift_within"] = round(half_change(e.samples), 6)  # raw: what the machine did
            env["history_ms"] = list(self.history[-5:])
            parts = repeat_interval(y)
        elif panel is not None and ref is not None:
            env["reference"] = panel
            # the ratio to the panel level itself (so ref_ratio x level is the median); its relative
            # interval from the per-round panel series (its medians' CIs and the model's trend)
            exact = float(np.median(y)) / float(panel["median_ms"])
            env["ref_ratio"] = round(exact, 6)
            ratio = ratio_interval(y, ref_all, tracking) if ref_all else None
            parts = repeat_interval(y, ref, self.history)
            if ratio is not None:
                env["ref_ratio_interval"] = [round(exact * ratio[1] / ratio[0], 6), round(exact * ratio[2] / ratio[0], 6)]
            if parts is not None:
                env["interval_parts"] = {k: round(getattr(parts, k), 6) for k in
                                         ("sampling_below", "sampling_above", "trend", "level", "drift", "history")}
                env["history_runs"] = min(len(self.history), 5)  # earlier runs' and batches' levels used
        else:
            parts = repeat_interval(y)
        stats = stats_of_rounds(y, parts)
        env["rel_halfwidth"] = round(stats.rel_halfwidth, 6)
        result = MeasureResult(Status.OK, tuple(y), e.number or 1, stats, None, env)
        return make_record(e.model, result, self.config, device_id=self.device_id, environment=env)

    def close(self) -> None:
        """Stops the worker, if any. Idempotent."""
        if self._worker is not None:
            self._worker.close()
            self._worker = None

    def __enter__(self) -> InterleavedRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def even_batches(items: Sequence[ModelFile], size: int) -> list[list[ModelFile]]:
    """``items`` in order, cut into the fewest batches of at most ``size``, as even as possible.

    Even batches, because a batch's rounds and its drift correction draw on its other models: 50
    models at 16 make 13 + 13 + 12 + 12, not 16 + 16 + 16 + 2.

    Example:
        >>> [len(b) for b in even_batches(list(range(50)), 16)]
        [13, 13, 12, 12]
    """
    if not items:
        return []
    n = -(-len(items) // size)
    base, extra = divmod(len(items), n)
    out, start = [], 0
    for i in range(n):
        stop = start + base + (1 if i < extra else 0)
        out.append(list(items[start:stop]))
        start = stop
    return out


def _set_levels(entries: list[_Entry]) -> None:
    """Sets ``levels`` of every entry with samples and no failure, from all of them together."""
    usable = [e for e in entries if e.failure is None and e.samples]
    for e in entries:
        e.levels = None
    levels = local_levels([e.times for e in usable], [e.samples for e in usable])
    for e, lv in zip(usable, levels):
        e.levels = lv


def _panel(refs: list[_Entry], records: list[MeasurementRecord]) -> dict[str, Any] | None:
    """The batch's panel level: ``{"panel", "median_ms", "uids", "model_sha256s"}``, ``median_ms``
    the geometric mean of the references' drift-corrected medians; None without references or when
    one of them failed (a panel short of a member would be in other units)."""
    if not records or any(r.status is not Status.OK or not r.median_ms for r in records):
        return None
    level = float(np.exp(np.mean(np.log([float(r.median_ms) for r in records]))))  # type: ignore[arg-type]
    return {"panel": REFERENCE_PANEL if len(refs) > 1 else "single", "median_ms": round(level, 6),
            "uids": [r.uid for r in records], "model_sha256s": [r.model_sha256 for r in records]}


def _halves_tracking(refs: list[_Entry], panel_by_round: dict[int, float]) -> Tracking | None:
    """:func:`~device_agent.stats.tracking_sd` from one batch: each reference's log ratio to the
    panel level in the first half of the rounds against the second (how it moves between batches,
    from the only batch there is yet; its few degrees of freedom widen the interval)."""
    rounds = sorted(panel_by_round)
    half = len(rounds) // 2
    if half < 2:
        return None
    members, by_ref = [], [dict(zip(r.rounds_seen, r.corrected)) for r in refs]
    for part in (rounds[:half], rounds[half:]):
        level = float(np.median([panel_by_round[k] for k in part]))
        members.append({r.ident: math.log(float(np.median([series[k] for k in part])) / level)
                        for r, series in zip(refs, by_ref)})
    return tracking_sd(members)


def _panel_by_round(refs: list[_Entry]) -> dict[int, float]:
    """The panel level of each round that every reference was visited in: the geometric mean of
    their drift-corrected samples of that round."""
    by_round = [dict(zip(r.rounds_seen, r.corrected)) for r in refs]
    rounds = sorted(set.intersection(*(set(b) for b in by_round))) if by_round else []
    return {k: float(np.exp(np.mean([np.log(b[k]) for b in by_round]))) for k in rounds}


def _aligned(e: _Entry, ref_by_round: dict[int, float]) -> list[float] | None:
    """The panel level in ``e``'s rounds, or None when some round has none."""
    out = [ref_by_round.get(r) for r in e.rounds_seen]
    return None if not out or any(v is None for v in out) else [float(v) for v in out]  # type: ignore[arg-type]


__all__ = ["BatchEvent", "BatchResult", "InterleavedRunner", "even_batches", "STOP_BATCH_END", "STOP_CONVERGED", "STOP_MAX_ROUNDS",
           "STOP_TIME_CAP"]
