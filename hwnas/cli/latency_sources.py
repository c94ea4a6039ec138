"""Latency sources of ``hwnas search``: where a candidate's latency in milliseconds comes from.

* ``measured``: export the candidate and measure it now on this machine with ``device_agent``
  (stored in ``--db`` as it is measured; see :mod:`hwnas.local_meter`);
* ``db``: the device's latencies already in the latency database (measured, or imported tables);
* ``predictor``: a predictor file from ``hwnas predictor train|adapt``;
* ``flops`` / ``params`` / ``lut``: a FLOPs-linear, params-linear or per-operator lookup-table
  model fitted now on the device's measurements in ``--db`` (so budgets stay in milliseconds).

Each is built here from the flags as a :class:`~hwnas.latency.model.LatencyModel`
(:mod:`hwnas.latency.sources`) and handed to the search as a memoised
:class:`~hwnas.latency.source.LatencySource`, with a label for the result file, marked *cheap* when
it costs no measurement (cheap sources also serve the strategies' feasibility prefilter, so a hard
budget rejects candidates before they are proposed).

The learned sources (``predictor``, ``flops``, ``params``, ``lut``) return the
``--latency-confidence`` quantile of their predictive distribution (default 0.9: the latency the
model says the candidate stays under with probability 0.9; 0.5 is the point prediction), bounded
and flagged as
:func:`hwnas.predictors.support.predict_interval` bounds and flags it; :meth:`LatencySource.detail`
holds the point prediction, the 90% interval and the extrapolation flag of each candidate.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hwnas.errors import CLIError
from hwnas.latency import LatencySource, MeterLatency, PredictorLatency, TableLatency
from hwnas.latency.closed_loop import MAX_MEASUREMENTS, ClosedLoop
from hwnas.latency.reference_level import at_level, reference_level
from hwnas.space.base import SearchSpace

SOURCES = ("measured", "db", "predictor", "flops", "params", "lut")


def make_source(args: argparse.Namespace, space: SearchSpace, out: Path, budget_ms: float | None = None) -> LatencySource:
    """The source chosen by ``args.latency_source`` (see the module docstring); a learned source
    with a hard ``budget_ms`` runs in a :class:`~hwnas.latency.closed_loop.ClosedLoop` when
    ``--measure-uncertain`` is on (by default when ``--device`` is this machine).

    Raises:
        CLIError: a missing ``--db``/``--device``/``--predictor``, a database without
            measurements of the device, or ``--measure-uncertain`` for a device that is not this
            machine.
    """
    kind = args.latency_source
    if _remote(args) and kind in ("measured", "db"):
        raise CLIError(f"--host measures a learned source's uncertain candidates on the device; --latency-source {kind} "
                       "does not predict (profile the device with hwnas profile, or use --latency-source predictor)")  # fmt: skip
    if kind == "measured":
        return LatencySource(_meter_model(args, space, out))
    if kind == "db":
        return LatencySource(_from_db(args, space, out))
    loop = _closed_loop_wanted(args, budget_ms)
    model = _from_predictor(args, space) if kind == "predictor" else _fitted(args, space, kind)
    if loop:
        return LatencySource(_with_closed_loop(args, space, out, model, float(budget_ms)))  # type: ignore[arg-type]
    return LatencySource(model)


def _meter_model(args: argparse.Namespace, space: SearchSpace, out: Path) -> MeterLatency:
    from hwnas.local_meter import LocalMeter

    meter = LocalMeter(args.db, out / "models", space, device_name=args.device)
    return MeterLatency(meter, f"measured:{args.device or 'this machine'}")


def _closed_loop_wanted(args: argparse.Namespace, budget_ms: float | None) -> bool:
    """Whether to measure uncertain candidates: ``--measure-uncertain`` on, or left unset (auto)
    with a hard budget and ``--device`` naming this machine in ``--db``, or ``--host`` given (the
    device ``--device`` names is measured there)."""
    wanted = getattr(args, "measure_uncertain", None)
    host = _remote(args)
    if wanted is False:
        if host:
            raise CLIError("--host measures uncertain candidates there; drop it with --no-measure-uncertain")
        return False
    hard = budget_ms is not None and getattr(args, "constraint", "hard") == "hard"
    if not hard:
        if wanted or host:
            raise CLIError("--measure-uncertain needs a hard --latency-budget-ms (it measures candidates whose interval straddles it)")
        return False
    if not args.device:
        if wanted or host:
            raise CLIError("--measure-uncertain needs --device D: this machine's name in --db, or the name of "
                           "the --host device")  # fmt: skip
        return False
    if host:
        _device_id(args.db, args.device)  # the device must be in --db; the host is checked at its first measurement
        return True
    here = _is_this_machine(args.db, args.device)
    if wanted and not here:
        raise CLIError(f"--measure-uncertain: device {args.device!r} in {args.db} is not this machine (another "
                       "fingerprint), and measuring it here would mix devices; run the search on that device, or "
                       "drop --measure-uncertain")  # fmt: skip
    return here


def _remote(args: argparse.Namespace) -> str | None:
    """Where the closed loop measures when not on this machine: ``--host`` or ``--inventory``."""
    return getattr(args, "host", None) or getattr(args, "inventory", None)


def _device_id(db_path: str, device: str) -> str:
    """The id of ``device`` (name or id) in the database; ``CLIError`` when it is not there."""
    from latency_db import LatencyDB

    rec = None
    if Path(db_path).exists():
        with LatencyDB(db_path, read_only=True) as db:
            rec = db.device(device)
    if rec is None:
        raise CLIError(f"--device {device!r} is not in {db_path}: profile it first (hwnas profile --host ...)")
    return str(rec.device_id)


def _remote_meter(args: argparse.Namespace, space: SearchSpace, out: Path) -> Any:
    """The :class:`~hwnas.remote.meter.RemoteMeter` of ``--host`` for the device ``--device``."""
    import sys

    from hwnas.remote.meter import RemoteMeter
    from hwnas.remote.profile import AgentFlags
    from hwnas.remote.ssh import SSHTarget

    python, remote_dir = args.remote_python, args.remote_dir
    if args.host and args.inventory:
        raise CLIError("--host and --inventory both name the device to measure on; pass one")
    try:
        if args.inventory:
            from hwnas.remote.inventory import load_inventory

            entry = next((d for d in load_inventory(args.inventory) if d.name == args.device), None)
            if entry is None:
                raise CLIError(f"--inventory {args.inventory} has no [[device]] named {args.device!r} (--device)")
            target, python, remote_dir = entry.target(args.ssh_config), entry.python, entry.remote_dir
        else:
            target = SSHTarget.from_flags(args.host, args.identity, args.ssh_config)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    device_id = _device_id(args.db, args.device)
    from latency_db import LatencyDB

    with LatencyDB(args.db, read_only=True) as db:
        name = db.device(args.device).name
    quiet = getattr(args, "json", False)
    return RemoteMeter(target, args.db, out / "models", space, device_id, flags=AgentFlags(device_name=name),
                       python=python, known_hosts=args.known_hosts, accept_new=args.accept_new_host_key,
                       remote_dir=remote_dir, install=not args.no_install,
                       on_line=(lambda line: None) if quiet else (lambda line: print(f"[{target.host}] {line}", file=sys.stderr)))  # fmt: skip


def _is_this_machine(db_path: str, device: str) -> bool:
    """Whether ``device`` (name or id) in the database has this machine's fingerprint."""
    from device_agent.fingerprint import device_fingerprint, device_id

    from latency_db import LatencyDB

    if not Path(db_path).exists():
        return False
    with LatencyDB(db_path, read_only=True) as db:
        rec = db.device(device)
    return rec is not None and rec.device_id == device_id(device_fingerprint(name=rec.name))


def _with_closed_loop(args: argparse.Namespace, space: SearchSpace, out: Path, src: PredictorLatency,
                      budget_ms: float) -> ClosedLoop:  # fmt: skip
    """``src``'s predictor in a closed loop that measures on this machine, or on the ``--host``
    device (see :mod:`hwnas.latency.closed_loop`)."""
    from hwnas.local_meter import LocalMeter

    import dataclasses

    from hwnas.cli.predictor import graph_resolver
    from hwnas.predictors.dataset import attach_graphs

    remote = _remote(args)
    meter = _remote_meter(args, space, out) if remote else LocalMeter(args.db, out / "models", space, device_name=args.device)
    resolver = src.resolver
    level = reference_level(args.db, args.device, out / "reference_level.json")

    def records() -> list[Any]:
        """The device's rows, the loop's own candidates at their level-corrected latency."""
        rows = [r for r in _device_records(args, False) if r.space in (None, space.name)]
        done = {a: m.measured_ms for a, m in loop.measured.items()}
        rows = [dataclasses.replace(r, latency_ms=done[r.arch]) if r.arch in done else r for r in rows]
        return attach_graphs(rows, graph_resolver(args))

    loop = ClosedLoop(
        predictor=src.predictor, device=src.device, budget_ms=budget_ms, confidence=_confidence(args),
        graph_of=src.graph_of, parse=space.parse, measure=lambda arch: at_level(meter.measure(arch), level),
        records=records, log_path=out / "measured.json",
        max_measurements=getattr(args, "measure_max", None) or MAX_MEASUREMENTS,
        label=f"{src.label}, measured where uncertain on {args.device}" + (f" ({remote})" if remote else ""),
        resolver=resolver, meter=meter,
    )  # fmt: skip
    return loop


def _device_records(args: argparse.Namespace, with_graphs: bool) -> list[Any]:
    from hwnas.cli.dbopen import open_db
    from hwnas.cli.predictor import graph_resolver
    from hwnas.predictors.base import PredictorError
    from hwnas.predictors.dataset import attach_graphs, device_rows

    if not args.device:
        raise CLIError(f"--latency-source {args.latency_source} needs --device D (a device with measurements in --db)")
    try:
        with open_db(args.db) as db:
            rows = device_rows(db, args.device, None, getattr(args, "config", None))
    except PredictorError as exc:
        raise CLIError(str(exc)) from None
    return attach_graphs(rows, graph_resolver(args)) if with_graphs else rows


def _from_db(args: argparse.Namespace, space: SearchSpace, out: Path) -> TableLatency:
    """The device's table in the DB; with ``--measure-missing`` (this machine only) architectures
    missing from it are measured here and stored, else they raise
    :class:`~hwnas.latency.model.NoLatency`."""
    table = {r.arch: r.latency_ms for r in _device_records(args, False) if r.space == space.name and r.arch}
    if not table:
        raise CLIError(f"--db {args.db} has no {space.name} latencies of device {args.device!r}")
    fallback = None
    if getattr(args, "measure_missing", False):
        if not _is_this_machine(args.db, args.device):
            raise CLIError(f"--measure-missing: device {args.device!r} in {args.db} is not this machine (another "
                           "fingerprint); measuring it here would mix devices")  # fmt: skip
        fallback = _meter_model(args, space, out)
    return TableLatency(table, f"db:{args.device}", fallback)


def _from_predictor(args: argparse.Namespace, space: SearchSpace) -> PredictorLatency:
    from hwnas.cli.predictor import load_predictor_file
    from hwnas.predictors.base import PredictorError

    if not args.predictor:
        raise CLIError("--latency-source predictor needs --predictor FILE (from `hwnas predictor train`)")
    pf = load_predictor_file(args.predictor)
    pred = pf.predictor
    spaces = pf.fingerprint.get("spaces") or []
    if spaces and space.name not in spaces:
        raise CLIError(f"--predictor {args.predictor} was trained on {', '.join(spaces)} models, not {space.name}")
    try:
        pred._device_index(args.device)
    except PredictorError as exc:
        raise CLIError(str(exc)) from None
    return _learned(args, space, pred, args.device, f"predictor:{Path(args.predictor).name}")


def _confidence(args: argparse.Namespace) -> float:
    q = float(getattr(args, "latency_confidence", 0.5) or 0.5)
    if not 0.0 < q < 1.0:
        raise CLIError(f"--latency-confidence must be in (0, 1), e.g. 0.9 (0.5 = the point prediction), got {q}")
    return q


def _learned(args: argparse.Namespace, space: SearchSpace, pred: Any, device: str | None, label: str) -> PredictorLatency:
    """A model over a fitted predictor: bounded predictions, the ``--latency-confidence`` quantile."""
    from hwnas.cli.predictor import graph_resolver

    q = _confidence(args)
    resolver = graph_resolver(args)
    suffix = "" if q == 0.5 else f", q{q:g}"
    return PredictorLatency(pred, device, lambda arch: resolver.graph_for(None, space.name, arch.spec), q,
                            f"{label}{suffix}", resolver)  # fmt: skip


def _fitted(args: argparse.Namespace, space: SearchSpace, kind: str) -> PredictorLatency:
    from hwnas.predictors import FlopsLinear, LookupTable, ParamsLinear

    records = _device_records(args, True)
    if len(records) < 3:
        raise CLIError(f"--latency-source {kind} needs at least 3 measurements of {args.device!r} in {args.db} to fit")
    from hwnas.predictors.calibration import calibrate

    model = {"flops": FlopsLinear, "params": ParamsLinear, "lut": LookupTable}[kind]()
    model.fit(records)
    if len(records) >= 10:  # cheap models: calibrate their intervals on 5 refits
        calibrate(model, records)
    return _learned(args, space, model, None, f"{kind}:{args.device} ({len(records)} measurements)")
