"""A search study: ask/tell over a strategy, every trial stored in SQLite, resumable.

Trials live in ``<path>`` (a SQLite file, WAL mode): a trial row is written *pending* when asked
and completed when told, in the same transaction as the strategy's state. So a search killed at
any point (Ctrl-C, a crash) loses no finished evaluation: re-opening the study restores the
strategy, hands out the interrupted pending trials first, and carries on.

Example:
    >>> from hwnas.study import Study
    >>> from hwnas.strategy import RandomSearch
    >>> from hwnas.space import NB201Space
    >>> study = Study("study.db", RandomSearch(NB201Space(), seed=0))   # doctest: +SKIP
    >>> study.optimize(lambda arch: ({"accuracy": 1.0}, 1.0), n_trials=10)  # doctest: +SKIP
"""

from __future__ import annotations

import enum
import json
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any, Callable

from hwnas.space.base import Arch
from hwnas.strategy.base import Strategy

_SCHEMA = """
CREATE TABLE IF NOT EXISTS trials (
    number INTEGER PRIMARY KEY, arch TEXT NOT NULL, state TEXT NOT NULL, score REAL,
    metrics TEXT NOT NULL DEFAULT '{}', error TEXT);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class TrialState(str, enum.Enum):
    """Lifecycle of a trial."""

    PENDING = "pending"
    COMPLETE = "complete"
    REJECTED = "rejected"
    FAILED = "failed"


@dataclass(frozen=True)
class Trial:
    """One evaluation of one architecture (a record: never edited once finished)."""

    number: int
    arch: str
    state: TrialState
    score: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


class Study:
    """Drives a :class:`~hwnas.strategy.base.Strategy`, storing trials in a SQLite file.

    Args:
        path: the study file (created with its folder).
        strategy: the strategy; if the file holds a saved state of a strategy of the same name,
            it is restored (resume). A file of another strategy or space is refused.
        settings: JSON-able settings that scores depend on (budget, evaluator, latency source...):
            stored on creation; resuming with different ones is refused, naming them, since the
            stored scores would no longer compare.
    """

    def __init__(self, path: str | os.PathLike[str], strategy: Strategy, settings: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.strategy = strategy
        self._db = sqlite3.connect(str(self.path), isolation_level=None, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        ident = {"strategy": strategy.name, "space": strategy.space.name}
        row = self._db.execute("SELECT value FROM meta WHERE key='ident'").fetchone()
        if row is None:
            self._db.execute("INSERT INTO meta VALUES ('ident', ?)", (json.dumps(ident),))
        elif json.loads(row[0]) != ident:
            raise ValueError(f"{self.path} holds a {json.loads(row[0])} study, not {ident}: use another --out")
        if settings is not None:
            wanted = json.loads(json.dumps(settings, sort_keys=True))
            row = self._db.execute("SELECT value FROM meta WHERE key='settings'").fetchone()
            if row is None:
                self._db.execute("INSERT INTO meta VALUES ('settings', ?)", (json.dumps(wanted, sort_keys=True),))
            elif json.loads(row[0]) != wanted:
                old = json.loads(row[0])
                diff = sorted(k for k in set(old) | set(wanted) if old.get(k) != wanted.get(k))
                self._db.close()
                raise ValueError(f"{self.path} was started with other settings ({', '.join(diff)}): "
                                 "run it with the same ones to resume, or use another --out")  # fmt: skip
        state = self._db.execute("SELECT value FROM meta WHERE key='strategy_state'").fetchone()
        if state is not None:
            strategy.load_state_dict(json.loads(state[0]))
        # trials left pending by an interrupted run are handed out again first
        self._resume = [t.number for t in self.trials() if t.state == TrialState.PENDING]

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Study:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ask(self) -> Trial:
        """A pending trial: an interrupted one if any, else a new arch from the strategy."""
        if self._resume:
            return self.trial(self._resume.pop(0))
        arch = self.strategy.ask()
        self._db.execute("BEGIN IMMEDIATE")
        cur = self._db.execute("INSERT INTO trials (arch, state) VALUES (?, ?)", (arch.spec, TrialState.PENDING.value))
        self._save_state()
        self._db.execute("COMMIT")
        return self.trial(int(cur.lastrowid))

    def tell(self, number: int, state: TrialState, score: float | None = None,
             metrics: dict[str, Any] | None = None, error: str | None = None) -> Trial:  # fmt: skip
        """Finish trial ``number`` and tell the strategy, atomically."""
        trial = self.trial(number)
        if trial.state != TrialState.PENDING:
            raise ValueError(f"trial {number} is already {trial.state.value}")
        self.strategy.tell(self.strategy.space.parse(trial.arch), score if state == TrialState.COMPLETE else None,
                           metrics or {})  # fmt: skip
        self._db.execute("BEGIN IMMEDIATE")
        self._db.execute(
            "UPDATE trials SET state=?, score=?, metrics=?, error=? WHERE number=?",
            (state.value, score, json.dumps(metrics or {}, sort_keys=True), error, number),
        )
        self._save_state()
        self._db.execute("COMMIT")
        return self.trial(number)

    def _save_state(self) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO meta VALUES ('strategy_state', ?)", (json.dumps(self.strategy.state_dict()),)
        )

    def trial(self, number: int) -> Trial:
        row = self._db.execute("SELECT number, arch, state, score, metrics, error FROM trials WHERE number=?", (number,)).fetchone()
        if row is None:
            raise KeyError(f"no trial {number}")
        return Trial(row[0], row[1], TrialState(row[2]), row[3], json.loads(row[4]), row[5])

    def trials(self) -> list[Trial]:
        rows = self._db.execute("SELECT number FROM trials ORDER BY number").fetchall()
        return [self.trial(r[0]) for r in rows]

    def best(self) -> Trial | None:
        """The complete trial with the highest score (None if there is none)."""
        done = [t for t in self.trials() if t.state == TrialState.COMPLETE and t.score is not None]
        return max(done, key=lambda t: t.score) if done else None  # type: ignore[arg-type,return-value]

    def optimize(
        self, evaluate: Callable[[Arch], tuple[dict[str, Any], float | None]], n_trials: int,
        on_trial: Callable[[Trial], None] | None = None,
    ) -> Trial | None:  # fmt: skip
        """Run until the study holds ``n_trials`` finished trials; returns the best.

        ``evaluate(arch)`` returns ``(metrics, score)``; a None score marks the trial rejected
        (hard constraint). An exception marks it failed with its message; the search goes on.
        ``on_trial`` is called with each finished trial (progress display).
        An architecture already evaluated in this study is not evaluated again: its metrics are
        reused (``metrics["duplicate"] = True``).
        """
        from hwnas.executors import run_now

        return self.optimize_parallel(lambda arch: run_now(lambda: evaluate(arch)), n_trials, in_flight=1,
                                      on_trial=on_trial)  # fmt: skip

    def optimize_parallel(
        self, submit: Callable[[Arch], Future], n_trials: int, in_flight: int,
        on_trial: Callable[[Trial], None] | None = None, lost: Callable[[BaseException], bool] = lambda exc: False,
        restart: Callable[[], None] = lambda: None, max_retries: int = 2,
    ) -> Trial | None:  # fmt: skip
        """:meth:`optimize` with up to ``in_flight`` trials evaluated at once; returns the best.

        ``submit(arch)`` starts an evaluation and returns a ``concurrent.futures.Future`` of
        ``(metrics, score)`` (already done for a trial decided on the driver, e.g. rejected by a
        cheap latency check). Results are told in the order they arrive, each in its own
        transaction, so a driver killed mid-search loses no finished trial and resumes with the
        pending ones. An exception whose ``lost(exc)`` is true (a worker process died) calls
        ``restart()`` and resubmits the trial, at most ``max_retries`` times, then records it failed
        (``worker lost``); any other exception records the trial failed. An architecture asked
        while the same one is in flight waits for that result instead of being evaluated twice.
        """
        if in_flight < 1:
            raise ValueError(f"in_flight must be >= 1, got {in_flight}")
        existing = self.trials()
        seen = {t.arch: t for t in existing if t.state in (TrialState.COMPLETE, TrialState.REJECTED)}
        finished = sum(t.state != TrialState.PENDING for t in existing)
        started = finished
        running: dict[Future, tuple[Trial, int]] = {}
        waiting: dict[str, list[int]] = {}  # arch in flight -> later trials of the same arch

        def finish(number: int, state: TrialState, score: float | None, metrics: dict[str, Any],
                   error: str | None = None) -> Trial:  # fmt: skip
            done = self.tell(number, state, score, metrics, error)
            if on_trial:
                on_trial(done)
            return done

        while finished < n_trials:
            while started < n_trials and len(running) < in_flight:
                trial = self.ask()
                started += 1
                if trial.arch in seen:
                    prev = seen[trial.arch]
                    finish(trial.number, prev.state, prev.score, {**prev.metrics, "duplicate": True})
                    finished += 1
                elif trial.arch in waiting:
                    waiting[trial.arch].append(trial.number)
                else:
                    waiting[trial.arch] = []
                    running[submit(self.strategy.space.parse(trial.arch))] = (trial, 0)
            if not running:
                continue
            done_set, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in done_set:
                trial, attempts = running.pop(fut)
                exc = fut.exception()
                if exc is not None and lost(exc) and attempts < max_retries:
                    restart()
                    running[submit(self.strategy.space.parse(trial.arch))] = (trial, attempts + 1)
                    continue
                if exc is not None:
                    msg = "worker lost" if lost(exc) else (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                    result = finish(trial.number, TrialState.FAILED, None, {}, msg)
                else:
                    metrics, score = fut.result()
                    state = TrialState.COMPLETE if score is not None else TrialState.REJECTED
                    result = seen[trial.arch] = finish(trial.number, state, score, metrics)
                finished += 1
                for number in waiting.pop(trial.arch, []):
                    extra = {**result.metrics, "duplicate": True}
                    finish(number, result.state, result.score, extra, result.error)
                    finished += 1
        return self.best()
