"""Aggregations and pages of a latency database, computed in SQL (never the whole table in Python).

Every function takes an open :class:`latency_db.LatencyDB` (read-only is enough) and runs a few
``LatencyDB.select`` queries; they work on SQLite files and on ``postgresql://`` databases alike.
Rows of the agent's drift reference (space ``reference``) are left out, as in ``LatencyDB.measurements``.
Results are plain JSON-able dicts and lists; strings in them are raw (escaping is the views' job).

Example:
    >>> from latency_db import LatencyDB                                      # doctest: +SKIP
    >>> with LatencyDB("lat.db", read_only=True) as db:                        # doctest: +SKIP
    ...     page = measurement_page(db, MeasurementFilter(status="ok"), page=0)
    ...     page["total"], len(page["rows"])
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, fields
from typing import Any, Mapping

from latency_db import LatencyDB
from latency_db.records import REFERENCE_SPACE

#: Rows per page of the measurements table.
PAGE_SIZE = 50
#: Most points a device-vs-device scatter holds.
PAIR_LIMIT = 5000
_NOT_REF = "(mo.space IS NULL OR mo.space <> ?)"
_JOIN = " FROM measurements AS m JOIN models AS mo ON mo.id = m.model_id JOIN devices AS d ON d.device_id = m.device_id"


@dataclass(frozen=True)
class MeasurementFilter:
    """Filters of the measurements table; None means "any". Built from a query string at the edge.

    Attributes:
        device: a device id or name.
        runtime, status, space: exact values.
        arch: a substring of the architecture string.
        min_ms, max_ms: bounds on the median latency (ms).
    """

    device: str | None = None
    runtime: str | None = None
    status: str | None = None
    space: str | None = None
    arch: str | None = None
    min_ms: float | None = None
    max_ms: float | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> MeasurementFilter:
        """From query-string values; blanks are None; a latency bound that is not a number is ignored."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = (query.get(f.name) or "").strip()
            if not raw:
                continue
            if f.name in ("min_ms", "max_ms"):
                try:
                    values[f.name] = float(raw)
                except ValueError:
                    continue
            else:
                values[f.name] = raw
        return cls(**values)

    def as_query(self) -> dict[str, str]:
        """The non-empty filters as query-string values."""
        return {f.name: str(getattr(self, f.name)) for f in fields(self) if getattr(self, f.name) is not None}

    def where(self, skip_device: bool = False) -> tuple[str, list[Any]]:
        """A SQL ``WHERE`` clause (over ``m``, ``mo``, ``d``) and its parameters."""
        where, params = [_NOT_REF], [REFERENCE_SPACE]
        if self.device is not None and not skip_device:
            where.append("(m.device_id = ? OR d.name = ?)")
            params += [self.device, self.device]
        for column, value in (("m.runtime", self.runtime), ("m.status", self.status), ("mo.space", self.space)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if self.arch is not None:
            where.append("mo.arch LIKE ?")
            params.append("%" + self.arch.replace("%", "").replace("_", "") + "%")
        if self.min_ms is not None:
            where.append("m.median_ms >= ?")
            params.append(self.min_ms)
        if self.max_ms is not None:
            where.append("m.median_ms <= ?")
            params.append(self.max_ms)
        return " WHERE " + " AND ".join(where), params


def _median_offset(db: LatencyDB, sql: str, params: list[Any], n: int) -> float | None:
    """The median of a one-column ordered query with ``n`` rows, by ``LIMIT 1 OFFSET``."""
    if n <= 0:
        return None
    rows = db.select(sql + " LIMIT 1 OFFSET ?", [*params, (n - 1) // 2])
    return None if not rows or rows[0][0] is None else float(rows[0][0])


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = value


def devices_overview(db: LatencyDB) -> list[dict[str, Any]]:
    """One dict per device, in insertion order.

    Keys: ``device_id, name, fingerprint`` (dict), ``created_at``, ``n`` (measurements), ``n_ok,
    n_error, n_timeout, n_models, last_measured``, ``configs`` (list of ``runtime, provider,
    config_hash, n``), ``noise`` (median over ok rows of the relative width of the median's interval,
    ``(ci_high - ci_low) / median``; None without intervals), ``environment`` (the latest
    measurement's governor and version facts, flattened).
    """
    stats = {r["device_id"]: r for r in db.select(
        "SELECT m.device_id AS device_id, count(*) AS n,"
        " sum(CASE WHEN m.status = 'ok' THEN 1 ELSE 0 END) AS n_ok,"
        " sum(CASE WHEN m.status = 'error' THEN 1 ELSE 0 END) AS n_error,"
        " sum(CASE WHEN m.status = 'timeout' THEN 1 ELSE 0 END) AS n_timeout,"
        " sum(CASE WHEN m.status = 'ok' AND m.median_ms > 0 AND m.ci_high_ms IS NOT NULL"
        " AND m.ci_low_ms IS NOT NULL THEN 1 ELSE 0 END) AS n_ci,"
        " count(DISTINCT m.model_id) AS n_models, max(m.created_at) AS last_measured"
        f" FROM measurements AS m JOIN models AS mo ON mo.id = m.model_id WHERE {_NOT_REF}"
        " GROUP BY m.device_id", [REFERENCE_SPACE])}
    configs: dict[str, list[dict[str, Any]]] = {}
    for r in db.select("SELECT device_id, runtime, provider, config_hash, count(*) AS n FROM measurements"
                       " GROUP BY device_id, runtime, provider, config_hash ORDER BY device_id, n DESC"):
        configs.setdefault(r["device_id"], []).append(
            {"runtime": r["runtime"], "provider": r["provider"], "config_hash": r["config_hash"], "n": int(r["n"])})
    out = []
    for d in db.select("SELECT device_id, name, fingerprint, created_at FROM devices ORDER BY rowid"):
        s = stats.get(d["device_id"])
        n_ci = int(s["n_ci"] or 0) if s is not None else 0
        noise = _median_offset(
            db, "SELECT (m.ci_high_ms - m.ci_low_ms) / m.median_ms AS w FROM measurements AS m"
            f" JOIN models AS mo ON mo.id = m.model_id WHERE m.device_id = ? AND {_NOT_REF}"
            " AND m.status = 'ok' AND m.median_ms > 0 AND m.ci_high_ms IS NOT NULL AND m.ci_low_ms IS NOT NULL"
            " ORDER BY w", [d["device_id"], REFERENCE_SPACE], n_ci)
        env: dict[str, Any] = {}
        last = db.select("SELECT environment FROM measurements WHERE device_id = ? ORDER BY id DESC LIMIT 1",
                         [d["device_id"]])
        if last:
            flat: dict[str, Any] = {}
            _flatten("", _loads(last[0][0]), flat)
            env = {k: v for k, v in sorted(flat.items()) if "governor" in k or "version" in k or k.endswith("threads")}
        out.append({
            "device_id": d["device_id"], "name": d["name"], "fingerprint": _loads(d["fingerprint"]) or {},
            "created_at": d["created_at"], "n": int(s["n"]) if s else 0,
            "n_ok": int(s["n_ok"] or 0) if s else 0, "n_error": int(s["n_error"] or 0) if s else 0,
            "n_timeout": int(s["n_timeout"] or 0) if s else 0, "n_models": int(s["n_models"]) if s else 0,
            "last_measured": s["last_measured"] if s else None, "configs": configs.get(d["device_id"], []),
            "noise": noise, "environment": env,
        })
    return out


def _loads(text: Any) -> Any:
    try:
        return json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return None


def measurement_page(db: LatencyDB, flt: MeasurementFilter, page: int = 0, size: int = PAGE_SIZE) -> dict[str, Any]:
    """One page of the filtered measurements, newest first.

    Returns:
        ``{"total", "page", "pages", "size", "rows"}``; each row has ``id, created_at, device,
        device_id, runtime, provider, status, space, arch, key, median_ms, ci_low_ms, ci_high_ms, error``.
    """
    where, params = flt.where()
    total = int(db.select("SELECT count(*)" + _JOIN + where, params)[0][0])
    pages = max(1, -(-total // size))
    page = min(max(0, int(page)), pages - 1)
    rows = db.select(
        "SELECT m.id AS id, m.created_at AS created_at, d.name AS device, m.device_id AS device_id,"
        " m.runtime AS runtime, m.provider AS provider, m.status AS status, mo.space AS space, mo.arch AS arch,"
        " mo.key AS key, m.median_ms AS median_ms, m.ci_low_ms AS ci_low_ms, m.ci_high_ms AS ci_high_ms,"
        " m.error AS error" + _JOIN + where + " ORDER BY m.id DESC LIMIT ? OFFSET ?", [*params, size, page * size])
    return {"total": total, "page": page, "pages": pages, "size": size, "rows": [dict(zip(r.keys(), r)) for r in rows]}


def latency_histograms(db: LatencyDB, flt: MeasurementFilter, bins: int = 40) -> dict[str, Any]:
    """The ok rows' median latency per device, binned in SQL on one shared scale.

    Returns:
        ``{"edges": [bins + 1 floats], "devices": {name: [count per bin]}}`` (empty without ok rows).
    """
    ok = MeasurementFilter(**{**flt.__dict__, "status": "ok"})
    where, params = ok.where()
    where += " AND m.median_ms IS NOT NULL"
    lo, hi = db.select("SELECT min(m.median_ms), max(m.median_ms)" + _JOIN + where, params)[0]
    if lo is None:
        return {"edges": [], "devices": {}}
    lo, hi = float(lo), float(hi)
    width = (hi - lo) / bins if hi > lo else 1.0
    edges = [lo + i * width for i in range(bins + 1)]
    out: dict[str, list[int]] = {}
    for fn in ("floor", "CAST"):  # floor() where SQL has it (PostgreSQL, SQLite with math functions)
        expr = "floor((m.median_ms - ?) / ?)" if fn == "floor" else "CAST((m.median_ms - ?) / ? AS INTEGER)"
        try:
            rows = db.select(f"SELECT d.name AS name, {expr} AS b, count(*) AS n" + _JOIN + where
                             + " GROUP BY d.name, b ORDER BY d.name", [lo, width, *params])
            break
        except sqlite3.OperationalError:
            continue
    for r in rows:
        counts = out.setdefault(r["name"], [0] * bins)
        counts[min(bins - 1, max(0, int(r["b"])))] += int(r["n"])
    return {"edges": edges, "devices": out}


def device_pair(db: LatencyDB, a: str, b: str, limit: int = PAIR_LIMIT) -> dict[str, Any]:
    """The models measured ok on both devices (ids or names): their mean median latency on each.

    Returns:
        ``{"a", "b", "n", "points": [(arch, ms_a, ms_b)], "spearman"}`` (at most ``limit`` points;
        Spearman over them, None below 3).
    """
    sub = ("SELECT m.model_id AS model_id, avg(m.median_ms) AS v FROM measurements AS m"
           " JOIN devices AS d ON d.device_id = m.device_id"
           " WHERE (m.device_id = ? OR d.name = ?) AND m.status = 'ok' AND m.median_ms IS NOT NULL GROUP BY m.model_id")
    rows = db.select(f"SELECT mo.arch AS arch, x.v AS va, y.v AS vb FROM ({sub}) AS x JOIN ({sub}) AS y"
                     f" ON y.model_id = x.model_id JOIN models AS mo ON mo.id = x.model_id WHERE {_NOT_REF}"
                     " ORDER BY x.model_id LIMIT ?", [a, a, b, b, REFERENCE_SPACE, limit])
    points = [(r["arch"], float(r["va"]), float(r["vb"])) for r in rows]
    rho = None
    if len(points) >= 3:
        from scipy.stats import spearmanr

        value = spearmanr([p[1] for p in points], [p[2] for p in points]).statistic
        rho = None if value != value else float(value)
    return {"a": a, "b": b, "n": len(points), "points": points, "spearman": rho}


def filter_choices(db: LatencyDB) -> dict[str, list[str]]:
    """Distinct device names, runtimes, statuses and spaces, for the filter form."""
    return {
        "device": [r[0] for r in db.select("SELECT DISTINCT name FROM devices ORDER BY name")],
        "runtime": [r[0] for r in db.select("SELECT DISTINCT runtime FROM measurements ORDER BY runtime")],
        "status": [r[0] for r in db.select("SELECT DISTINCT status FROM measurements ORDER BY status")],
        "space": [r[0] for r in db.select(
            "SELECT DISTINCT space FROM models WHERE space IS NOT NULL AND space <> ? ORDER BY space",
            [REFERENCE_SPACE])],
    }
