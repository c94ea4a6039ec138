"""``hwnas db ...``: inspect, export, import and merge latency databases."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hwnas.cli.dbopen import CONFIG_HELP, open_latency_db
from hwnas.errors import CLIError
from latency_db import LatencyDB, MeasurementRecord, Status
from latency_db.pg import is_url


def _open_existing(path: str) -> LatencyDB:
    if not is_url(path) and not Path(path).is_file():
        raise CLIError(f"--db {path}: no such database file (profile a device with device_agent run first)")
    return open_latency_db(path)


def _fmt_ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def cmd_summary(args: argparse.Namespace) -> int:
    from hwnas.cli.output import emit

    with _open_existing(args.db) as db:
        summary = db.summary()
    lines = [f"{args.db}: schema v{summary.get('schema_version')}"]
    for k, v in summary.items():
        if isinstance(v, (int, float, str)) and k != "schema_version":
            lines.append(f"  {k}: {v}")
    for row in summary.get("by_device_runtime", []):
        lines.append(
            f"  {row['device']} / {row['runtime']}: {row['n_models']} models, {row['n_ok']} ok, "
            f"{row['n_error']} error, {row['n_timeout']} timeout; median of medians "
            f"{_fmt_ms(row['median_ms'])} ms (min {_fmt_ms(row['min_median_ms'])}, "
            f"max {_fmt_ms(row['max_median_ms'])}); last {row['last_measured']}"
        )
    runs = summary.get("reference_runs", [])
    if runs:
        lines.append("  drift reference per interleaved run (same network every round; shift = level / previous run's):")
    for run in runs[-10:]:
        within = "-" if run["drift_within"] is None else f"{run['drift_within']:+.1%}"
        shift = "-" if run["shift"] is None else f"{run['shift']:+.1%}"
        lines.append(f"    {run['device']} / {run['runtime']} {run['created_at'][:19]} config {run['config_hash'][:8]}: "
                     f"{_fmt_ms(run['median_ms'])} ms, {run['batches']} batch(es), drift within {within}, shift {shift}")
    if len(runs) > 10:
        lines.append(f"    ... {len(runs) - 10} earlier run(s) (--json lists all)")
    emit(summary, args.json, "\n".join(lines))
    return 0


def latest_ok(records: list[MeasurementRecord]) -> list[MeasurementRecord]:
    """The newest OK measurement per (model, device, runtime, config), in first-seen order."""
    latest: dict[tuple[Any, ...], MeasurementRecord] = {}
    for r in records:
        if r.status == Status.OK:
            latest[(r.model_sha256, r.space, r.arch, r.device_id, r.runtime, r.config_hash)] = r
    return list(latest.values())


def format_table(rows: list[dict[str, Any]]) -> str:
    """A fixed-width table of ``rows`` (keys: key, arch, device, median_ms, interval_pct, interval,
    p90_ms, repeats, run_shift, ref_ratio, ref_ratio_interval): p50 with its interval, how far the
    row's run sat from the device's first run (its panel level; "-" for rows without one), and the
    ratio to the panel with its interval."""
    header = (f"{'model':<20} {'device':<16} {'p50 ms':>9} {'interval':>14} {'p90 ms':>9} {'reps':>5} "
              f"{'run drift':>9} {'/ panel':>15}  arch")
    lines = [header, "-" * len(header)]
    for r in rows:
        arch = (r["arch"] or "")[:70]
        pct = r.get("interval_pct")
        short = _INTERVAL_SHORT.get(r.get("interval") or "", "") + ("*" if r.get("history_runs") == 0 else "")
        interval = "-" if pct is None else f"±{pct:.1f}% {short}".rstrip()
        shift = r.get("run_shift")
        ratio, bounds = r.get("ref_ratio"), r.get("ref_ratio_interval")
        panel = "-" if ratio is None else f"{ratio:.3f}" + (
            f" ±{(bounds[1] - bounds[0]) / 2 / ratio:.1%}" if bounds and ratio else "")
        lines.append(
            f"{(r['key'] or '')[:20]:<20} {r['device'][:16]:<16} {_fmt_ms(r['median_ms']):>9} {interval:>14} "
            f"{_fmt_ms(r['p90_ms']):>9} {r['repeats']:>5} {'-' if shift is None else f'{shift:+.1%}':>9} {panel:>15}  {arch}"
        )
    from device_agent.stats import INTERVAL_MEANING

    used = sorted({r.get("interval") for r in rows if r.get("interval")})
    for kind in used:
        lines.append(f"interval {_INTERVAL_SHORT.get(kind, kind)} = {kind}: {INTERVAL_MEANING.get(kind, kind)}")
    if any(r.get("history_runs") == 0 for r in rows):
        lines.append("rep*: no earlier run of the device in this database and no earlier batch in its run, so "
                     "run-to-run level changes are not in the interval yet (see hwnas db summary)")
    if any(r.get("run_shift") is not None for r in rows):
        lines.append("run drift: the level of the row's run (its drift references' panel level) over the device's first run's")
    if any(r.get("ref_ratio") is not None for r in rows):
        lines.append("/ panel: the median over its batch's panel level (ref_ratio) and its repeat interval: what repeats "
                     "across runs on a drifting machine; rank by it (the p50 interval also holds the machine's level)")
    return "\n".join(lines)


#: Interval labels stored by the agent (``environment["interval"]``; ``device_agent.stats``), shortened.
_INTERVAL_SHORT = {"repeat-pi95": "rep", "median-ci95": "ci", "min-max": "rng"}


def cmd_table(args: argparse.Namespace) -> int:
    from hwnas.cli.output import emit

    with _open_existing(args.db) as db:
        records = latest_ok(db.measurements(device=args.device, runtime=args.runtime))
        names = {d.device_id: d.name for d in db.devices()}
        keys = {m.sha256: m.key for m in db.models()}
        runs = db.reference_runs(device=args.device)
    first: dict[tuple[str, str, str], float] = {}
    level: dict[str, float] = {}
    for run in runs:
        first.setdefault((run["device_id"], run["runtime"], run["config_hash"]), run["median_ms"])
        level[run["run_id"]] = run["median_ms"]
    rows = []
    for r in records:
        env = r.environment if isinstance(r.environment, dict) else {}
        base = first.get((r.device_id, r.runtime, r.config_hash))
        run_level = level.get(str(env.get("run_id")))
        pct = None
        if r.ci_low_ms is not None and r.ci_high_ms is not None and r.median_ms:
            pct = (r.ci_high_ms - r.ci_low_ms) / 2 / r.median_ms * 100
        rows.append({
            "key": keys.get(r.model_sha256) or (r.model_sha256 or "")[:12],
            "arch": r.arch,
            "space": r.space,
            "device": names.get(r.device_id, r.device_id),
            "runtime": r.runtime,
            "median_ms": r.median_ms,
            "ci_low_ms": r.ci_low_ms,
            "ci_high_ms": r.ci_high_ms,
            "interval_pct": pct,
            "interval": env.get("interval") or ("median-ci95" if r.source == "agent" and pct is not None else None),
            "p90_ms": r.p90_ms,
            "repeats": len(r.samples_ms),
            "ref_ratio": env.get("ref_ratio"),
            "ref_ratio_interval": env.get("ref_ratio_interval"),
            "history_runs": env.get("history_runs"),
            "run_shift": None if base is None or run_level is None else run_level / base - 1.0,
        })
    rows.sort(key=lambda r: (r["device"], r["median_ms"] if r["median_ms"] is not None else float("inf")))
    emit(rows, args.json, format_table(rows) + f"\n{len(rows)} models")
    return 0


def cmd_export_csv(args: argparse.Namespace) -> int:
    from hwnas.cli.output import emit

    with _open_existing(args.db) as db:
        n = db.export_csv(args.csv)
    emit({"rows": n, "csv": args.csv}, args.json, f"wrote {n} measurements to {args.csv}")
    return 0


def check_archs(path: str) -> None:
    """Validate the ``arch`` of every row whose ``space`` is one of hwnas's spaces.

    Raises:
        ValueError: one line naming the file, the line and what is wrong with the string.
    """
    import csv

    from hwnas.space import SPACES, get_space

    spaces = {name: get_space(name) for name in SPACES}
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        for n, row in enumerate(reader, start=2):
            space = spaces.get((row.get("space") or "").strip())
            arch = (row.get("arch") or "").strip()
            if space is not None and arch:
                try:
                    parsed = space.parse(arch)
                except ValueError as exc:
                    raise ValueError(f"{path}:{n}: {exc}") from None
                if parsed.spec != arch:
                    raise ValueError(f"{path}:{n}: write the arch in canonical form {parsed.spec!r}")


def cmd_import_csv(args: argparse.Namespace) -> int:
    from hwnas.cli.output import emit

    if not Path(args.file).exists():
        raise CLIError(f"{args.file}: no such file")
    if Path(args.file).is_dir():
        raise CLIError(f"{args.file}: is a folder, expected a CSV file")
    check_archs(args.file)
    with LatencyDB(args.db) as db:
        counts = db.import_csv(args.file, source=args.source)
    emit(counts, args.json, f"{args.file} -> {args.db}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from hwnas.cli.output import emit

    if not is_url(args.source) and not Path(args.source).is_file():
        raise CLIError(f"{args.source}: no such database file")
    with open_latency_db(args.db) as db:
        counts = db.merge_from(args.source)
    emit(counts, args.json, f"merged {args.source} into {args.db}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


def cmd_quantile(args: argparse.Namespace) -> int:
    """Print the ``--q`` percentile of a device's latencies (newest OK median per model)."""
    import numpy as np

    from hwnas.cli.output import emit
    from hwnas.predictors.base import PredictorError
    from hwnas.predictors.dataset import device_rows

    if not 0.0 <= args.q <= 100.0:
        raise CLIError(f"--q must be a percentile in [0, 100], got {args.q}")
    with _open_existing(args.db) as db:
        try:
            rows = device_rows(db, args.device, args.runtime, args.config)
        except PredictorError as exc:
            raise CLIError(str(exc)) from None
    value = float(np.percentile([r.latency_ms for r in rows], args.q))
    emit({"device": args.device, "q": args.q, "latency_ms": value, "models": len(rows)}, args.json, f"{value:.6g}")
    return 0


def add_parsers(sub: Any, default_db: str) -> None:
    """Register ``hwnas db ...`` on the top-level sub-parser collection."""
    p_db = sub.add_parser("db", help="inspect, export, import and merge latency databases")
    db_sub = p_db.add_subparsers(dest="db_command", metavar="SUBCOMMAND", required=True)

    def add(name: str, help_: str, func: Any) -> argparse.ArgumentParser:
        p = db_sub.add_parser(name, help=help_, description=help_)
        p.add_argument("--db", default=default_db, help=f"SQLite database file (default {default_db})")
        p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(func=func)
        return p

    add("summary", "counts of models, devices and measurements, per device and runtime", cmd_summary)
    p = add("table", "p50/p90 latency of every measured model (newest OK measurement)", cmd_table)
    p.add_argument("--device", help="only this device (name or id)")
    p.add_argument("--runtime", help="only this runtime (onnxruntime, tvm, imported)")
    p = add("quantile", "the Q-th percentile of a device's latencies in ms (e.g. a budget for hwnas search)", cmd_quantile)
    p.add_argument("--device", required=True, help="device (name or id)")
    p.add_argument("--q", type=float, default=50.0, help="percentile in [0, 100] (default 50)")
    p.add_argument("--runtime", help="only this runtime (needed when the device has several)")
    p.add_argument("--config", metavar="HASH", help=CONFIG_HELP)
    p = add("export", "write one CSV row per measurement (atomically)", cmd_export_csv)
    p.add_argument("--csv", required=True, metavar="OUT", help="CSV file to write")
    p = add(
        "import-csv",
        "import a latency table: columns space, arch, device, latency_ms (others ignored); "
        "rows are marked as imported with the file's name as source; importing twice adds nothing",
        cmd_import_csv,
    )
    p.add_argument("file", metavar="FILE", help="CSV file to import")
    p.add_argument("--source", help="source label stored with the rows (default: the file's name)")
    p = add("merge", "copy every model, device and measurement of SOURCE that --db lacks (idempotent)", cmd_merge)
    p.add_argument("source", metavar="SOURCE", help="database file or postgresql:// URL to merge from (read-only)")
