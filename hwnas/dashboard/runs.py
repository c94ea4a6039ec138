"""Search and codesign output folders: finding them, and reading them without writing anything.

A run folder holds ``study.db`` (the trials, written as they finish: :mod:`hwnas.study`) and, once
the run has ended, ``result.json``. Runs are found in the given roots and one level below them (a
folder of folders works). A run is named by an id ``<root index>/<folder name>`` that the server
only ever looks up in the list found here, so a request can never name a path of its own.

Example:
    >>> runs = find_runs([Path("runs")])                               # doctest: +SKIP
    >>> data = load_run(runs[0]); data.kind, len(data.trials)          # doctest: +SKIP
    ('search', 30)
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from hwnas.study import Trial, TrialState

#: A run whose study.db was last written longer ago than this, without a newer result.json, is
#: shown as interrupted rather than running.
STALE_S = 600.0


@dataclass(frozen=True)
class RunRef:
    """Where a run folder is, and its id (``<root index>/<name>``)."""

    run_id: str
    path: Path


@dataclass(frozen=True)
class RunData:
    """What one run folder holds, read at one moment.

    Attributes:
        ref: the folder.
        kind: ``search`` or ``codesign``.
        state: ``running``, ``interrupted`` or ``finished``.
        ident: the study's ``{"strategy", "space"}``.
        settings: the study's settings (budget, evaluator, objectives, ...).
        trials: every trial, by number.
        result: ``result.json`` (empty while running).
        updated: the newest write time (seconds since the epoch).
    """

    ref: RunRef
    kind: str
    state: str
    ident: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    trials: tuple[Trial, ...] = ()
    result: dict[str, Any] = field(default_factory=dict)
    updated: float = 0.0

    def counts(self) -> dict[str, int]:
        """Trials per state (every state present, zeros included) and ``total``."""
        out = {s.value: 0 for s in TrialState}
        for t in self.trials:
            out[t.state.value] += 1
        out["total"] = len(self.trials)
        return out


def _is_run(folder: Path) -> bool:
    return (folder / "study.db").is_file() or (folder / "result.json").is_file()


def find_runs(roots: Sequence[Path]) -> list[RunRef]:
    """Run folders among ``roots`` and their direct sub-folders, in a stable order."""
    out: list[RunRef] = []
    for i, root in enumerate(roots):
        root = Path(root)
        if _is_run(root):
            out.append(RunRef(f"{i}/.", root))
        if root.is_dir():
            for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()):
                if _is_run(sub):
                    out.append(RunRef(f"{i}/{sub.name}", sub))
    return out


def read_trials(path: Path) -> tuple[dict[str, Any], tuple[Trial, ...]]:
    """The meta table (JSON values decoded, ``strategy_state`` left out) and the trials of a
    ``study.db``, opened read-only (``mode=ro``: a running search's writes are not disturbed)."""
    conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=10.0)
    try:
        meta = {}
        for key, value in conn.execute("SELECT key, value FROM meta WHERE key <> 'strategy_state'"):
            try:
                meta[key] = json.loads(value)
            except ValueError:
                meta[key] = value
        rows = conn.execute("SELECT number, arch, state, score, metrics, error FROM trials ORDER BY number").fetchall()
    finally:
        conn.close()
    trials = tuple(Trial(int(r[0]), str(r[1]), TrialState(r[2]), r[3], _json_dict(r[4]), r[5]) for r in rows)
    return meta, trials


def _json_dict(text: Any) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _mtime(*paths: Path) -> float:
    return max((p.stat().st_mtime for p in paths if p.exists()), default=0.0)


def load_run(ref: RunRef, now: float | None = None) -> RunData:
    """Read a run folder. A folder whose files cannot be read yet (a search just starting) gives a
    run with no trials rather than an error."""
    study, result_path = ref.path / "study.db", ref.path / "result.json"
    meta: dict[str, Any] = {}
    trials: tuple[Trial, ...] = ()
    if study.is_file():
        try:
            meta, trials = read_trials(study)
        except sqlite3.Error:
            pass
    result: dict[str, Any] = {}
    if result_path.is_file():
        try:
            loaded = json.loads(result_path.read_text())
            result = loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError):
            result = {}
    study_time = _mtime(study, ref.path / "study.db-wal")
    result_time = _mtime(result_path)
    if result and result_time >= study_time:
        state = "finished"
    else:
        state = "running" if (now or time.time()) - study_time < STALE_S else "interrupted"
    settings = meta.get("settings") if isinstance(meta.get("settings"), dict) else {}
    ident = meta.get("ident") if isinstance(meta.get("ident"), dict) else {}
    codesign = "hw_space" in settings or "hw_space" in result or str(ident.get("space", "")).startswith("joint-")
    return RunData(ref, "codesign" if codesign else "search", state, ident, settings, trials, result,
                   max(study_time, result_time))
