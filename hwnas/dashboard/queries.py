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
from dataclasses import dataclass, fields
from typing import Any, Mapping

import numpy as np

from latency_db import LatencyDB
from latency_db.records import REFERENCE_SPACE

#: Rows per page of the measurements table.
PAGE_SIZE = 50
#: Most points a device-vs-device scatter holds.
PAIR_LIMIT = 5000
_NOT_REF = "m.model_id NOT IN (SELECT id FROM models WHERE space = ?)"
#: Recent ok rows of a device that its noise is the median over.
NOISE_ROWS = 500
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

    def where(self) -> tuple[str, list[Any]]:
        """A SQL ``WHERE`` clause over ``measurements AS m`` alone (models and devices in
        sub-queries, so counts and aggregates need no join) and its parameters."""
        where, params = [_NOT_REF], [REFERENCE_SPACE]
        if self.device is not None:
            where.append("m.device_id IN (SELECT device_id FROM devices WHERE device_id = ? OR name = ?)")
            params += [self.device, self.device]
        for column, value in (("m.runtime", self.runtime), ("m.status", self.status)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if self.space is not None:
            where.append("m.model_id IN (SELECT id FROM models WHERE space = ?)")
            params.append(self.space)
        if self.arch is not None:
            where.append("m.model_id IN (SELECT id FROM models WHERE arch LIKE ?)")
            params.append("%" + self.arch.replace("%", "").replace("_", "") + "%")
        if self.min_ms is not None:
            where.append("m.median_ms >= ?")
            params.append(self.min_ms)
        if self.max_ms is not None:
            where.append("m.median_ms <= ?")
            params.append(self.max_ms)
        return " WHERE " + " AND ".join(where), params


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = value


def _in(ids: list[Any]) -> str:
    return "(" + ", ".join("?" * len(ids)) + ")" if ids else "(NULL)"


def _noise(db: LatencyDB, device_id: str) -> float | None:
    """Median relative width of the median's interval over the device's latest ok rows.

    ``device_id || ''`` keeps SQLite from the device index: walking the table from its newest row
    finds a device's recent rows without visiting all of its older ones."""
    rows = db.select(
        "SELECT (m.ci_high_ms - m.ci_low_ms) / m.median_ms FROM measurements AS m WHERE m.device_id || '' = ?"
        f" AND m.status = 'ok' AND m.median_ms > 0 AND m.ci_high_ms IS NOT NULL AND m.ci_low_ms IS NOT NULL"
        f" AND {_NOT_REF} ORDER BY m.id DESC LIMIT ?", [device_id, REFERENCE_SPACE, NOISE_ROWS])
    values = sorted(float(r[0]) for r in rows)
    return values[(len(values) - 1) // 2] if values else None


def devices_overview(db: LatencyDB) -> list[dict[str, Any]]:
    """One dict per device, in insertion order.

    Keys: ``device_id, name, fingerprint`` (dict), ``created_at``, ``n`` (measurements), ``n_ok,
    n_error, n_timeout, n_models, last_measured``, ``configs`` (list of ``runtime, provider,
    config_hash, n``), ``noise`` (median, over the device's latest :data:`NOISE_ROWS` ok rows, of
    the relative width of the median's interval ``(ci_high - ci_low) / median``; None without
    intervals), ``environment`` (the latest measurement's governor, version and thread facts).

    Every aggregate is a scan of an index or a short walk from the newest row: no sort of the
    whole table (a 200,000-row database answers in well under a second).
    """
    status: dict[str, dict[str, int]] = {}
    for r in db.select("SELECT device_id, status, count(*) FROM measurements GROUP BY device_id, status"):
        status.setdefault(r[0], {})[r[1]] = int(r[2])
    for r in db.select("SELECT m.device_id, m.status, count(*) FROM measurements AS m WHERE m.model_id IN"
                       " (SELECT id FROM models WHERE space = ?) GROUP BY m.device_id, m.status", [REFERENCE_SPACE]):
        status[r[0]][r[1]] -= int(r[2])  # the drift reference's rows (few: found through the resume index)
    n_models = {r[0]: int(r[1]) for r in db.select(
        "SELECT x.device_id, count(*) FROM (SELECT DISTINCT m.device_id AS device_id, m.model_id AS model_id"
        f" FROM measurements AS m WHERE {_NOT_REF}) AS x GROUP BY x.device_id", [REFERENCE_SPACE])}
    groups: dict[tuple[str, str, str], list[int]] = {}  # (device, runtime, config) -> [rows, an id]
    for r in db.select("SELECT device_id, runtime, config_hash, count(*), max(id) FROM measurements"
                       " GROUP BY model_id, device_id, runtime, config_hash"):  # in the resume index's order
        g = groups.setdefault((r[0], r[1], r[2]), [0, int(r[4])])
        g[0] += int(r[3])
    last_ids = {r[0]: int(r[1]) for r in db.select("SELECT device_id, max(id) FROM measurements GROUP BY device_id")}
    wanted = sorted({g[1] for g in groups.values()} | set(last_ids.values()))
    by_id = {int(r[0]): r for r in db.select(
        f"SELECT id, provider, created_at, environment FROM measurements WHERE id IN {_in(wanted)}", wanted)}
    configs: dict[str, list[dict[str, Any]]] = {}
    for (dev, runtime, chash), (n, any_id) in sorted(groups.items(), key=lambda kv: (kv[0][0], -kv[1][0])):
        configs.setdefault(dev, []).append({"runtime": runtime, "provider": by_id[any_id][1], "config_hash": chash, "n": n})
    out = []
    for d in db.select("SELECT device_id, name, fingerprint, created_at FROM devices ORDER BY rowid"):
        dev = d["device_id"]
        counts = status.get(dev, {})
        last = by_id.get(last_ids.get(dev, -1))
        env: dict[str, Any] = {}
        if last is not None:
            flat: dict[str, Any] = {}
            _flatten("", _loads(last[3]), flat)
            env = {k: v for k, v in sorted(flat.items()) if "governor" in k or "version" in k or k.endswith("threads")}
        out.append({
            "device_id": dev, "name": d["name"], "fingerprint": _loads(d["fingerprint"]) or {},
            "created_at": d["created_at"], "n": sum(counts.values()), "n_ok": counts.get("ok", 0),
            "n_error": counts.get("error", 0), "n_timeout": counts.get("timeout", 0), "n_models": n_models.get(dev, 0),
            "last_measured": last[2] if last is not None else None, "configs": configs.get(dev, []),
            "noise": _noise(db, dev) if counts.get("ok") else None, "environment": env,
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
    total = int(db.select("SELECT count(*) FROM measurements AS m" + where, params)[0][0])
    pages = max(1, -(-total // size))
    page = min(max(0, int(page)), pages - 1)
    rows = db.select(
        "SELECT m.id AS id, m.created_at AS created_at, d.name AS device, m.device_id AS device_id,"
        " m.runtime AS runtime, m.provider AS provider, m.status AS status, mo.space AS space, mo.arch AS arch,"
        " mo.key AS key, m.median_ms AS median_ms, m.ci_low_ms AS ci_low_ms, m.ci_high_ms AS ci_high_ms,"
        " m.error AS error" + _JOIN + where + " ORDER BY m.id DESC LIMIT ? OFFSET ?", [*params, size, page * size])
    return {"total": total, "page": page, "pages": pages, "size": size, "rows": [dict(zip(r.keys(), r)) for r in rows]}


def latency_histograms(db: LatencyDB, flt: MeasurementFilter, bins: int = 40) -> dict[str, Any]:
    """The ok rows' median latency per device, binned on one shared scale (min/max in SQL, then one
    scan of two columns binned with numpy; only the counts reach the browser).

    Returns:
        ``{"edges": [bins + 1 floats], "devices": {name: [count per bin]}}`` (empty without ok rows).
    """
    ok = MeasurementFilter(**{**flt.__dict__, "status": "ok"})
    where, params = ok.where()
    where += " AND m.median_ms IS NOT NULL"
    lo, hi = db.select("SELECT min(m.median_ms), max(m.median_ms) FROM measurements AS m" + where, params)[0]
    if lo is None:
        return {"edges": [], "devices": {}}
    lo, hi = float(lo), float(hi)
    width = (hi - lo) / bins if hi > lo else 1.0
    edges = [lo + i * width for i in range(bins + 1)]
    names = {r[0]: r[1] for r in db.select("SELECT device_id, name FROM devices")}
    # one scan, binned here: a SQL GROUP BY (device, bin) makes SQLite sort every row, 2-3x slower
    rows = db.select("SELECT m.device_id, m.median_ms FROM measurements AS m" + where, params)
    ids = np.array([r[0] for r in rows], dtype=object)
    values = np.array([r[1] for r in rows], dtype=np.float64)
    idx = np.clip(((values - lo) / width).astype(np.int64), 0, bins - 1)
    out: dict[str, list[int]] = {}
    for dev in sorted(set(ids.tolist())):
        counts = np.bincount(idx[ids == dev], minlength=bins)
        out[names.get(dev, dev)] = [int(c) for c in counts]
    return {"edges": edges, "devices": out}


def device_pair(db: LatencyDB, a: str, b: str, limit: int = PAIR_LIMIT) -> dict[str, Any]:
    """The models measured ok on both devices (ids or names): their mean median latency on each.

    Returns:
        ``{"a", "b", "n", "points": [(arch, ms_a, ms_b)], "spearman"}`` (at most ``limit`` points;
        Spearman over them, None below 3).
    """
    def ids(device: str) -> list[str]:
        return [r[0] for r in db.select("SELECT device_id FROM devices WHERE device_id = ? OR name = ?", [device, device])]

    ida, idb = ids(a), ids(b)
    sub = ("SELECT m.model_id AS model_id, avg(m.median_ms) AS v FROM measurements AS m WHERE m.device_id IN {}"
           " AND m.status = 'ok' AND m.median_ms IS NOT NULL GROUP BY m.model_id")
    rows = db.select(f"SELECT mo.arch AS arch, x.v AS va, y.v AS vb FROM ({sub.format(_in(ida))}) AS x"
                     f" JOIN ({sub.format(_in(idb))}) AS y ON y.model_id = x.model_id JOIN models AS mo ON mo.id = x.model_id"
                     " WHERE mo.space IS NULL OR mo.space <> ? ORDER BY x.model_id LIMIT ?",
                     [*ida, *idb, REFERENCE_SPACE, limit])
    points = [(r["arch"], float(r["va"]), float(r["vb"])) for r in rows]
    rho = None
    if len(points) >= 3:
        from scipy.stats import spearmanr

        value = spearmanr([p[1] for p in points], [p[2] for p in points]).statistic
        rho = None if value != value else float(value)
    return {"a": a, "b": b, "n": len(points), "points": points, "spearman": rho}


def filter_choices(db: LatencyDB) -> dict[str, list[str]]:
    """Distinct device names, runtimes, statuses and spaces, for the filter form."""
    pairs = db.select("SELECT DISTINCT runtime, status FROM measurements")
    return {
        "device": [r[0] for r in db.select("SELECT DISTINCT name FROM devices ORDER BY name")],
        "runtime": sorted({r[0] for r in pairs}),
        "status": sorted({r[1] for r in pairs}),
        "space": [r[0] for r in db.select(
            "SELECT DISTINCT space FROM models WHERE space IS NOT NULL AND space <> ? ORDER BY space",
            [REFERENCE_SPACE])],
    }
