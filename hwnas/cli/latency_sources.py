"""Latency sources of ``hwnas search``: where a candidate's latency in milliseconds comes from.

* ``measured``: export the candidate and measure it now on this machine with ``device_agent``
  (stored in ``--db`` as it is measured; see :mod:`hwnas.local_meter`);
* ``db``: the device's latencies already in the latency database (measured, or imported tables);
* ``predictor``: a predictor file from ``hwnas predictor train|adapt``;
* ``flops`` / ``params`` / ``lut``: a FLOPs-linear, params-linear or per-operator lookup-table
  model fitted now on the device's measurements in ``--db`` (so budgets stay in milliseconds).

Every source is an ``arch -> ms`` callable with a label for the result file, memoised, and marked
*cheap* when it costs no measurement (cheap sources also serve the strategies' feasibility
prefilter, so a hard budget rejects candidates before they are proposed).

The learned sources (``predictor``, ``flops``, ``params``, ``lut``) return the
``--latency-confidence`` quantile of their predictive distribution (default 0.9: the latency the
model says the candidate stays under with probability 0.9; 0.5 is the point prediction), bounded
and flagged as
:func:`hwnas.predictors.support.predict_interval` bounds and flags it; :meth:`LatencySource.detail`
holds the point prediction, the 90% interval and the extrapolation flag of each candidate.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from hwnas.errors import CLIError
from hwnas.space.base import Arch, SearchSpace

SOURCES = ("measured", "db", "predictor", "flops", "params", "lut")


@dataclass
class LatencySource:
    """``source(arch)`` is the latency of ``arch`` in ms (memoised); ``label`` says where from.

    ``time_s`` accumulates the seconds spent computing latencies (memo hits cost nothing);
    ``resolver`` is the :class:`~hwnas.graph.resolve.GraphResolver` of a source that reads model
    graphs (its ``encode_s`` is the part of ``time_s`` spent making graphs), else ``None``.
    ``table`` is the ``db`` source's latency table (arch spec -> ms), ``loop`` the
    :class:`~hwnas.closed_loop.ClosedLoop` of a learned source that measures, else ``None``.
    """

    label: str
    fn: Callable[[Arch], float]
    cheap: bool
    meter: Any = None
    resolver: Any = None
    time_s: float = 0.0
    loop: Any = None
    table: dict[str, float] | None = None
    predictor: Any = None
    predictor_device: str | None = None
    _memo: dict[str, float] = field(default_factory=dict)
    details: dict[str, dict[str, Any]] = field(default_factory=dict)
    _generation: int = 0

    def detail(self, arch: Arch) -> dict[str, Any]:
        """What a learned source knows of ``arch`` beyond the latency it returned (``{}`` for the
        others): ``latency_mean_ms``, ``latency_low_ms``, ``latency_high_ms`` (90% interval) and
        ``extrapolated``."""
        self(arch)
        return dict(self.details.get(arch.spec, {}))

    def __call__(self, arch: Arch) -> float:
        if self.loop is not None and self.loop.generation != self._generation:
            self._memo.clear()  # the closed loop adapted its predictor: predictions changed
            self._generation = self.loop.generation
        if arch.spec not in self._memo:
            t0 = time.perf_counter()
            try:
                self._memo[arch.spec] = float(self.fn(arch))
            finally:
                self.time_s += time.perf_counter() - t0
        return self._memo[arch.spec]

    def timing(self) -> dict[str, float | int | None]:
        """For result files: ``latency_computed`` (distinct architectures whose latency was
        computed), ``latency_s`` (time in this source) and ``graph_encode_s`` (of it, making
        graphs; ``None`` for sources without graphs), in seconds rounded to milliseconds."""
        enc = None if self.resolver is None else round(float(self.resolver.encode_s), 3)
        return {"latency_computed": len(self._memo), "latency_s": round(self.time_s, 3), "graph_encode_s": enc}


def make_source(args: argparse.Namespace, space: SearchSpace, out: Path, budget_ms: float | None = None) -> LatencySource:
    """The source chosen by ``args.latency_source`` (see the module docstring); a learned source
    with a hard ``budget_ms`` runs in a :class:`~hwnas.closed_loop.ClosedLoop` when
    ``--measure-uncertain`` is on (by default when ``--device`` is this machine).

    Raises:
        CLIError: a missing ``--db``/``--device``/``--predictor``, a database without
            measurements of the device, or ``--measure-uncertain`` for a device that is not this
            machine.
    """
    kind = args.latency_source
    if kind == "measured":
        from hwnas.local_meter import LocalMeter

        meter = LocalMeter(args.db, out / "models", space, device_name=args.device)
        return LatencySource(f"measured:{args.device or 'this machine'}", meter.latency_ms, cheap=False, meter=meter)
    if kind == "db":
        return _from_db(args, space, out)
    loop = _closed_loop_wanted(args, budget_ms)
    src = _from_predictor(args, space) if kind == "predictor" else _fitted(args, space, kind)
    if loop:
        src = _with_closed_loop(args, space, out, src, float(budget_ms))  # type: ignore[arg-type]
    return src


def _closed_loop_wanted(args: argparse.Namespace, budget_ms: float | None) -> bool:
    """Whether to measure uncertain candidates: ``--measure-uncertain`` on, or left unset (auto)
    with a hard budget and ``--device`` naming this machine in ``--db``."""
    wanted = getattr(args, "measure_uncertain", None)
    if wanted is False:
        return False
    hard = budget_ms is not None and getattr(args, "constraint", "hard") == "hard"
    if not hard:
        if wanted:
            raise CLIError("--measure-uncertain needs a hard --latency-budget-ms (it measures candidates whose interval straddles it)")
        return False
    if not args.device:
        if wanted:
            raise CLIError("--measure-uncertain needs --device D: this machine's name in --db")
        return False
    here = _is_this_machine(args.db, args.device)
    if wanted and not here:
        raise CLIError(f"--measure-uncertain: device {args.device!r} in {args.db} is not this machine (another "
                       "fingerprint), and measuring it here would mix devices; run the search on that device, or "
                       "drop --measure-uncertain")  # fmt: skip
    return here


def _is_this_machine(db_path: str, device: str) -> bool:
    """Whether ``device`` (name or id) in the database has this machine's fingerprint."""
    from device_agent.fingerprint import device_fingerprint, device_id

    from latency_db import LatencyDB

    if not Path(db_path).exists():
        return False
    with LatencyDB(db_path, read_only=True) as db:
        rec = db.device(device)
    return rec is not None and rec.device_id == device_id(device_fingerprint(name=rec.name))


def _with_closed_loop(args: argparse.Namespace, space: SearchSpace, out: Path, src: LatencySource,
                      budget_ms: float) -> LatencySource:  # fmt: skip
    """``src``'s predictor in a closed loop that measures on this machine (see :mod:`hwnas.closed_loop`)."""
    from hwnas.closed_loop import MAX_MEASUREMENTS, ClosedLoop
    from hwnas.local_meter import LocalMeter

    meter = LocalMeter(args.db, out / "models", space, device_name=args.device)
    resolver = src.resolver

    def records() -> list[Any]:
        return [r for r in _device_records(args, True) if r.space in (None, space.name)]

    loop = ClosedLoop(
        predictor=src.predictor, device=src.predictor_device, budget_ms=budget_ms, confidence=_confidence(args),
        graph_of=lambda arch: resolver.graph_for(None, space.name, arch.spec), parse=space.parse,
        measure=lambda arch: _median_and_repeat_high(meter.measure(arch)), records=records, log_path=out / "measured.json",
        max_measurements=getattr(args, "measure_max", None) or MAX_MEASUREMENTS,
    )  # fmt: skip
    details = src.details

    def latency(arch: Arch) -> float:
        d = loop.latency(arch)
        details[arch.spec] = {k: v for k, v in d.items() if k != "latency_ms"}
        return float(d["latency_ms"])

    label = f"{src.label}, measured where uncertain on {args.device}"
    return LatencySource(label, latency, cheap=True, meter=meter, resolver=resolver, details=details, loop=loop,
                         predictor=src.predictor, predictor_device=src.predictor_device)  # fmt: skip


def _median_and_repeat_high(row: dict[str, Any]) -> tuple[float, float]:
    """An agent result row's median and the upper end of its repeat interval (the median if none)."""
    median = float(row["median_ms"])
    return median, float(row.get("ci_high_ms") or median)


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


class NoLatency(ValueError):
    """The ``db`` source has no latency of an architecture (a partial table)."""


def _from_db(args: argparse.Namespace, space: SearchSpace, out: Path) -> LatencySource:
    """The device's table in the DB; with ``--measure-missing`` (this machine only) architectures
    missing from it are measured here and stored, else they raise :class:`NoLatency`."""
    table = {r.arch: r.latency_ms for r in _device_records(args, False) if r.space == space.name and r.arch}
    if not table:
        raise CLIError(f"--db {args.db} has no {space.name} latencies of device {args.device!r}")
    meter = None
    if getattr(args, "measure_missing", False):
        if not _is_this_machine(args.db, args.device):
            raise CLIError(f"--measure-missing: device {args.device!r} in {args.db} is not this machine (another "
                           "fingerprint); measuring it here would mix devices")  # fmt: skip
        from hwnas.local_meter import LocalMeter

        meter = LocalMeter(args.db, out / "models", space, device_name=args.device)

    def from_db(arch: Arch) -> float:
        if arch.spec not in table:
            if meter is None:
                raise NoLatency(f"no latency of this architecture on {args.device} in {args.db}")
            table[arch.spec] = meter.latency_ms(arch)
        return table[arch.spec]

    return LatencySource(f"db:{args.device}", from_db, cheap=True, meter=meter, table=table)


def _from_predictor(args: argparse.Namespace, space: SearchSpace) -> LatencySource:
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


def _learned(args: argparse.Namespace, space: SearchSpace, pred: Any, device: str | None, label: str) -> LatencySource:
    """A source over a fitted predictor: bounded predictions, the ``--latency-confidence`` quantile."""
    from hwnas.predictors.support import predict_interval

    from hwnas.cli.predictor import graph_resolver

    q = _confidence(args)
    resolver = graph_resolver(args)
    details: dict[str, dict[str, Any]] = {}

    def latency(arch: Arch) -> float:
        p = predict_interval(pred, [resolver.graph_for(None, space.name, arch.spec)], device=device, level=0.9)
        details[arch.spec] = {"latency_mean_ms": float(p.mean_ms[0]), "latency_low_ms": float(p.low_ms[0]),
                              "latency_high_ms": float(p.high_ms[0]), "extrapolated": bool(p.extrapolated[0]),
                              "latency_confidence": q}  # fmt: skip
        return float(p.mean_ms[0] if q == 0.5 else p.quantile_ms(q)[0])

    suffix = "" if q == 0.5 else f", q{q:g}"
    return LatencySource(f"{label}{suffix}", latency, cheap=True, resolver=resolver, details=details,
                         predictor=pred, predictor_device=device)  # fmt: skip


def _fitted(args: argparse.Namespace, space: SearchSpace, kind: str) -> LatencySource:
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
