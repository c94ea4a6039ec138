"""Command line of the device agent: ``device_agent run``, ``device_agent info`` and
``device_agent tvm-tune`` (a shared TVM tuning database: :mod:`device_agent.tvm_tune`).

Exit codes: 0 success (every model measured OK or skipped), 1 some model failed (error/timeout)
or the worker could not start, 2 bad usage (reported on one line before anything runs),
130 interrupted (Ctrl-C; what was measured is kept).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import IO, Any, Sequence

from device_agent import PROTOCOL_VERSION, __version__
from device_agent.report import fmt_ms, print_table, reference_row

PROG = "device_agent"
DEFAULT_DB = os.path.join(".hwnas", "latency.db")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

_RUN_DESCRIPTION = """\
Measure the latency of every .onnx file in a folder on this device and store the results in a
latency database.

Protocol --protocol interleaved (the default): even batches of at most --batch-size models stay
loaded in one guarded worker process with the agent's three fixed drift references (--threads
intra-op threads, 1 inter-op thread, all graph optimisations, deterministic inputs; --warmup calls
discarded; `number` calibrated so that `number` back-to-back calls last >= --min-repeat-ms). The
batch is timed in rounds, each visiting every model and reference once in a fresh shuffled
order (one untimed call, then `number` timed ones; sample = visit time / number). Each sample is
divided by the machine's level at that moment, from the batch's other models' visits next to it in
time (the timed samples are kept as raw_samples_ms). A model stops after --min-rounds once its
interval's half-width is at most --target-ci of its median, when the batch has used --time-cap-s
per model, or at --max-rounds. The stored interval (repeat-pi95) is a 95% interval for the median
a repeat run would report; each row also stores ref_ratio (its median over the batch's panel level,
the geometric mean of the references' medians), which divides drift between runs out of rankings. Batches are stored whole.

Protocol --protocol sequential (before hwnas 0.2): one model after another, --repeats visits
back to back; the interval (median-ci95) is the median's 95% CI over those repeats.

A model that fails to load or run is recorded as `error`, one that crashes the worker as `error`
(worker crashed), one whose load or visit runs past --timeout-s as `timeout` (its worker is killed
and replaced); the other models are still measured. Re-running skips models already measured OK
on this device with the same runtime and protocol settings; failures are retried; --force
re-measures everything.

Exit codes: 0 all OK or skipped, 1 some model failed, 2 bad usage, 130 interrupted."""


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors as one line (no usage dump) via :class:`_UsageError`."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        raise _UsageError(message)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's line breaks; appends ``(default: X)`` where a default is set."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default not in (None, False, argparse.SUPPRESS) and "default" not in text:
            text += " (default: %(default)s)"
        return text


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = _Parser(
        prog=PROG,
        description="Device-side latency measurement agent of hwnas (onnxruntime; no torch).",
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version",
                        version=f"{PROG} {__version__} (protocol {PROTOCOL_VERSION})")
    sub = parser.add_subparsers(dest="command", metavar="{run,info,tvm-tune}")

    run = sub.add_parser("run", help="measure a folder of ONNX models into a latency database",
                         description=_RUN_DESCRIPTION, formatter_class=_Formatter)
    run.add_argument("--models", required=True, metavar="DIR",
                     help="folder of .onnx files (with optional manifest.jsonl from "
                          "`hwnas export`), or a single .onnx file")
    run.add_argument("--db", default=DEFAULT_DB, metavar="PATH",
                     help="latency database file (SQLite; created with its parent folders)")
    run.add_argument("--runtime", default="onnxruntime",
                     help="inference runtime; supported: onnxruntime")
    run.add_argument("--provider", default="cpu",
                     help="execution provider: cpu, cuda, tensorrt, ... or a full onnxruntime name "
                          "such as CUDAExecutionProvider (must be available in this build)")
    run.add_argument("--threads", type=int, default=0, metavar="N",
                     help="intra-op threads; 0 lets the runtime choose (one per physical core)")
    run.add_argument("--warmup", type=int, default=10, metavar="N",
                     help="inference calls run and discarded before timing (>= 0)")
    run.add_argument("--protocol", choices=("interleaved", "sequential"), default="interleaved",
                     help="interleaved: batches timed in shuffled rounds with drift references; sequential: one "
                          "model after another, --repeats back-to-back visits each (see above)")
    run.add_argument("--min-rounds", type=int, default=20, metavar="N",
                     help="interleaved: rounds every model gets at least")
    run.add_argument("--max-rounds", type=int, default=100, metavar="N",
                     help="interleaved: rounds no model goes beyond")
    run.add_argument("--target-ci", type=float, default=0.01, metavar="F",
                     help="interleaved: a model stops once its interval's half-width is at most this fraction "
                          "of its median (0.01 = +-1%%)")
    run.add_argument("--time-cap-s", type=float, default=1.0, metavar="S",
                     help="interleaved: seconds of rounds per model in a batch before models still short of "
                          "--target-ci stop anyway (never below --min-rounds)")
    run.add_argument("--batch-size", type=int, default=16, metavar="N",
                     help="interleaved: models loaded and interleaved at once; each finished batch is stored")
    run.add_argument("--repeats", type=int, default=20, metavar="N",
                     help="sequential: timed samples per model (>= 1); statistics are over these")
    run.add_argument("--min-repeat-ms", type=float, default=20.0, metavar="MS",
                     help="minimum duration of one visit; short models are called `number` times "
                          "back to back per visit to reach it (> 0)")
    run.add_argument("--timeout-s", type=float, default=120.0, metavar="S",
                     help="per-model limit on load + warm-up + calibration, and on each visit; past it the "
                          "model is recorded as timeout and the worker restarted (> 0)")
    run.add_argument("--profile-nodes", type=int, default=0, metavar="N",
                     help="after timing, also run N calls in a separate session with onnxruntime's "
                          "profiler and store each node's median kernel time (for lookup-table "
                          "predictors); 0 = off. Does not touch the timed samples")
    run.add_argument("--device-name", default=None, metavar="NAME",
                     help="label of this device (part of its device id); default: the hostname")
    run.add_argument("--force", action="store_true",
                     help="re-measure models already measured OK with the same settings")
    run.add_argument("--tvm-target", default="", metavar="JSON",
                     help='--runtime tvm: target as a JSON object, e.g. {"kind": "llvm", "mtriple": '
                          '"aarch64-linux-gnu", "num-cores": 4} (default: llvm for this CPU, --threads cores)')
    run.add_argument("--tvm-tune-trials", type=int, default=0, metavar="N",
                     help="--runtime tvm: MetaSchedule tuning trials per model (0: untuned; untuned TVM code is "
                          "many times slower than onnxruntime; raise --timeout-s when tuning)")
    run.add_argument("--tvm-rpc", default="", metavar="ADDR",
                     help="--runtime tvm on a board behind a TVM RPC server (HOST:PORT of python -m "
                          "tvm.exec.rpc_server) or tracker (tracker:HOST:PORT:KEY): compile here for --tvm-target, "
                          "upload, time there; needs --device-name")
    run.add_argument("--tvm-db", default="", metavar="DIR",
                     help="--runtime tvm: compile every model against this shared tuning database (from device_agent "
                          "tvm-tune / hwnas tvm tune; tuned for this target and TVM version); its content hash is "
                          "recorded in the config")
    run.add_argument("--progress", choices=("auto", "lines", "none"), default="auto",
                     help="progress on stderr: auto (an updating line on a terminal, else none), lines (one "
                          "line per model, for a host reading it over SSH), none")
    run.add_argument("--json", action="store_true",
                     help="print one JSON object with every result on stdout instead of the table")

    info = sub.add_parser("info", help="print this device's fingerprint, id and environment",
                          description="Print the device fingerprint, device id, environment, "
                                      "runtime versions and the agent protocol version.",
                          formatter_class=_Formatter)
    info.add_argument("--device-name", default=None, metavar="NAME",
                      help="label of this device (part of its device id); default: the hostname")
    info.add_argument("--json", action="store_true", help="print one JSON object")

    tt = sub.add_parser("tvm-tune", formatter_class=_Formatter, help="tune the TVM tasks of a folder of models into one "
                        "shared database", description="Extract the TVM tasks of every model, dedupe them across models, "
                        "skip those the database holds, tune the rest (see device_agent/tvm_tune.py).")
    tt.add_argument("--models", required=True, metavar="DIR", help="folder of .onnx files (a sample of the space)")
    tt.add_argument("--db", required=True, metavar="DIR", help="database folder: created, or extended (its tasks skipped)")
    tt.add_argument("--trials-per-task", type=int, default=32, metavar="T", help="MetaSchedule trials per unique task")
    tt.add_argument("--tvm-target", default="", metavar="JSON", help="as for run (default: this CPU with its mcpu)")
    tt.add_argument("--threads", type=int, default=0, metavar="N", help="num-cores of the default target (0: all)")
    tt.add_argument("--jobs", type=int, default=0, metavar="N", help="parallel builds (0: all cores)")
    tt.add_argument("--cost-model", default="random", choices=("random", "xgb", "mlp"), help="xgb needs xgboost, mlp torch")
    tt.add_argument("--strategy", default="evolutionary", choices=("evolutionary", "replay-trace"), help="search strategy")
    tt.add_argument("--space", default="", help="name of the search space, recorded in the manifest")
    tt.add_argument("--seed", type=int, default=0)
    tt.add_argument("--json", action="store_true", help="print the manifest as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line and returns the exit code (0, 1, 2 or 130).

    Example:
        >>> main(["run", "--models", "candidates/", "--repeats", "5"])  # doctest: +SKIP
        0
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            raise _UsageError("choose a command: run, info or tvm-tune (see device_agent --help)")
        if args.command == "info":
            return _cmd_info(args, sys.stdout)
        if args.command == "tvm-tune":
            return _cmd_tvm_tune(args, sys.stdout, sys.stderr)
        return _cmd_run(args, sys.stdout, sys.stderr)
    except _UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # before measuring started (e.g. while hashing models)
        print(f"{PROG}: interrupted; nothing measured", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SystemExit as exc:  # --help / --version
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_USAGE)


# -- info ------------------------------------------------------------------------------------------


def _cmd_info(args: argparse.Namespace, out: IO[str]) -> int:
    from device_agent.fingerprint import (
        device_fingerprint, device_id, environment, read_temperatures,
    )
    from device_agent.protocol import MeasureConfig
    from device_agent.runtimes import SUPPORTED_RUNTIMES, runtime_info

    fp = device_fingerprint(args.device_name)
    data = {
        "agent_version": __version__,
        "protocol_version": PROTOCOL_VERSION,
        "device_id": device_id(fp),
        "device_name": fp["name"],
        "fingerprint": fp,
        "environment": environment(MeasureConfig()),
        "temperatures_c": read_temperatures(),
        "runtimes": {name: runtime_info(name) for name in SUPPORTED_RUNTIMES},
    }
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=True), file=out)
        return EXIT_OK
    print(f"{PROG} {__version__} (protocol {PROTOCOL_VERSION})", file=out)
    print(f"device_id: {data['device_id']}  name: {data['device_name']}", file=out)
    for section in ("fingerprint", "environment", "temperatures_c", "runtimes"):
        print(f"{section}:", file=out)
        for key, value in data[section].items():
            plain = isinstance(value, (str, int, float)) or value is None
            shown = value if plain else json.dumps(value)
            print(f"  {key}: {shown}", file=out)
    return EXIT_OK


def _cmd_tvm_tune(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    from device_agent import tvm_tune

    try:
        manifest = tvm_tune.tune(tvm_tune.find_models(args.models), args.db, tvm_tune.target_of(args.tvm_target, args.threads),
                                 args.trials_per_task, space=args.space, cost_model=args.cost_model, strategy=args.strategy,
                                 jobs=args.jobs, seed=args.seed, on_line=lambda line: print(f"{PROG}: {line}", file=err, flush=True))
    except (ValueError, ImportError) as exc:
        raise _UsageError(" ".join(str(exc).split())) from None
    print(json.dumps(manifest, indent=2) if args.json else tvm_tune.summary(manifest, args.db), file=out)
    return EXIT_OK


# -- run -------------------------------------------------------------------------------------------


def _prepare(args: argparse.Namespace, err: IO[str]) -> tuple[Any, list[Any]]:
    """Validates flags and models; raises _UsageError before anything runs."""
    from device_agent.models import discover_models
    from device_agent.protocol import MeasureConfig
    from device_agent.runtimes import resolve_config

    try:
        config = resolve_config(MeasureConfig(
            runtime=args.runtime, provider=args.provider, threads=args.threads, warmup=args.warmup,
            repeats=args.repeats, min_repeat_ms=args.min_repeat_ms, timeout_s=args.timeout_s,
            profile_nodes=args.profile_nodes, tvm_target=args.tvm_target, tvm_tune_trials=args.tvm_tune_trials,
            tvm_rpc=args.tvm_rpc, protocol=args.protocol, min_rounds=args.min_rounds, max_rounds=args.max_rounds,
            target_rel_ci=args.target_ci, time_cap_s=args.time_cap_s, batch_size=args.batch_size,
        ))
        if config.tvm_rpc and not args.device_name:
            raise ValueError("--tvm-rpc needs --device-name: the measurements are the remote board's, not this machine's")
        if args.tvm_db:
            if config.runtime != "tvm" or config.tvm_tune_trials:
                raise ValueError("--tvm-db needs --runtime tvm and no --tvm-tune-trials")
            from device_agent import tvm_tune

            config = dataclasses.replace(config, tvm_db=tvm_tune.use_db(args.tvm_db, config.tvm_target))
        models = discover_models(
            args.models, warn=lambda message: print(f"{PROG}: warning: {message}", file=err)
        )
    except (ValueError, ImportError) as exc:
        raise _UsageError(str(exc)) from None
    if Path(args.db).is_dir():
        raise _UsageError(f"--db {args.db}: is a folder; give a database file path")
    return config, models


class _Progress:
    """Progress on stderr: ``auto`` is one updating line on a terminal and nothing otherwise;
    ``lines`` is one line per finished model (for a host reading it over SSH); ``none``."""

    def __init__(self, stream: IO[str], total: int, mode: str = "auto") -> None:
        self.stream, self.total, self.done = stream, total, 0
        self.lines = mode == "lines"
        self.enabled = mode == "auto" and bool(getattr(stream, "isatty", lambda: False)())

    def show(self, text: str, finished: bool = True) -> None:
        """Show ``text``; in ``lines`` mode only for a finished model (``finished``)."""
        if self.lines:
            if finished:
                self.stream.write(f"[{self.done}/{self.total}] {text}\n")
                self.stream.flush()
        elif self.enabled:
            self.stream.write(f"\r\x1b[K[{self.done}/{self.total}] {text}")
            self.stream.flush()

    def finish(self) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def _result_row(model: Any, record: Any | None) -> dict[str, Any]:
    row = {"file": str(model.path), "key": model.key, "arch": model.arch, "sha256": model.sha256,
           "status": "skipped", "median_ms": None, "p90_ms": None, "error": None,
           "ci_low_ms": None, "ci_high_ms": None, "interval": None, "repeats": None, "number": None,
           "uid": None, "stop": None, "ref_ratio": None, "ref_ratio_interval": None}
    if record is not None:
        env = record.environment
        row.update(status=record.status.value, median_ms=record.median_ms, p90_ms=record.p90_ms,
                   error=record.error, ci_low_ms=record.ci_low_ms, ci_high_ms=record.ci_high_ms,
                   interval=env.get("interval"), repeats=len(record.samples_ms), number=record.number,
                   uid=record.uid, stop=env.get("stop"), ref_ratio=env.get("ref_ratio"),
                   ref_ratio_interval=env.get("ref_ratio_interval"))
    return row


def _cmd_run(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    config, models = _prepare(args, err)

    from latency_db import DeviceRecord, LatencyDB

    from device_agent.fingerprint import device_fingerprint, device_id
    from device_agent.guard import WorkerStartError

    fp = device_fingerprint(args.device_name)
    dev_id = device_id(fp)
    try:
        db = LatencyDB(args.db)
    except Exception as exc:  # noqa: BLE001 - SchemaError, sqlite3/OS errors: all one line
        raise _UsageError(f"--db {args.db}: {' '.join(str(exc).split())}") from None

    rows: dict[int, dict[str, Any]] = {}
    references: list[Any] = []
    index = {id(m): i for i, m in enumerate(models)}
    progress = _Progress(err, len(models), args.progress)
    config_hash = config.config_hash()
    stored = [0]

    def skip(model: Any) -> bool:
        if args.force:
            return False
        done = db.has_measurement(model_sha256=model.sha256, device_id=dev_id,
                                  runtime=config.runtime, config_hash=config_hash)
        if done:
            rows[index[id(model)]] = _result_row(model, None)
            progress.done += 1
            progress.show(f"{model.key} skipped")
        return done

    def finished(model: Any, record: Any) -> None:
        rows[index[id(model)]] = _result_row(model, record)
        progress.done += 1
        progress.show(f"{model.key} {record.status.value} {fmt_ms(record.median_ms)}")

    try:
        with db:
            db.add_device(DeviceRecord(device_id=dev_id, name=fp["name"], fingerprint=fp))
            for model in models:
                db.add_model(model.record)
            if config.interleaved:
                _run_interleaved(config, dev_id, models, db, skip, finished, references, stored, progress)
            else:
                _run_sequential(config, dev_id, models, db, skip, finished, stored, progress)
    except KeyboardInterrupt:
        progress.finish()
        print(f"{PROG}: interrupted; {stored[0]} measurement(s) stored in {args.db}", file=err)
        return EXIT_INTERRUPTED
    except WorkerStartError as exc:
        progress.finish()
        print(f"{PROG}: error: {' '.join(str(exc).split())}", file=err)
        return EXIT_FAILED
    except FileNotFoundError as exc:  # the reference model is missing from the installation
        progress.finish()
        print(f"{PROG}: error: {exc}", file=err)
        return EXIT_FAILED
    progress.finish()

    results = [rows[i] for i in sorted(rows)]
    n_ok = sum(r["status"] == "ok" for r in results)
    n_skipped = sum(r["status"] == "skipped" for r in results)
    n_failed = len(results) - n_ok - n_skipped
    if args.json:
        print(json.dumps({
            "protocol_version": PROTOCOL_VERSION, "agent_version": __version__,
            "device_id": dev_id, "device_name": fp["name"], "db": str(args.db),
            "config": config.to_dict(), "config_hash": config_hash,
            "measured": n_ok, "skipped": n_skipped, "failed": n_failed, "results": results,
            "references": [reference_row(r) for r in references],
        }, indent=2), file=out)
    else:
        print_table(results, references, out)
        print(f"measured {n_ok}, skipped {n_skipped}, failed {n_failed}; db: {args.db}", file=out)
    return EXIT_FAILED if n_failed else EXIT_OK


def _run_sequential(config: Any, dev_id: str, models: list[Any], db: Any, skip: Any, finished: Any,
                    stored: list[int], progress: _Progress) -> None:
    """One model after another; each record is stored as soon as it is taken."""
    from device_agent.runner import Runner

    def on_start(model: Any) -> None:
        progress.show(f"{model.key} measuring", finished=False)

    with Runner(config, device_id=dev_id) as runner:
        for model, record in runner.measure(models, skip=skip, on_start=on_start):
            db.add_measurement(record)
            stored[0] += 1
            finished(model, record)


def _run_interleaved(config: Any, dev_id: str, models: list[Any], db: Any, skip: Any, finished: Any,
                     references: list[Any], stored: list[int], progress: _Progress) -> None:
    """Batches in rounds; each batch's records (and its reference's) are stored in one transaction."""
    from device_agent.interleave import BatchEvent, InterleavedRunner
    from device_agent.reference import reference_panel

    panel = reference_panel()
    for reference in panel:
        db.add_model(reference.record)
    runs = db.reference_runs(device=dev_id, config_hash=config.config_hash())
    history = [run["median_ms"] for run in runs]
    members = [m for run in runs for m in run.get("members", [])]

    def on_progress(event: BatchEvent) -> None:
        what = "loaded" if event.round == 0 else f"round {event.round}"
        progress.show(f"batch {event.batch + 1}/{event.batches} {what}: {event.active} of {event.size} measuring",
                      finished=False)

    with InterleavedRunner(config, device_id=dev_id, reference=panel, history=history, members=members) as runner:
        for batch in runner.measure(models, skip=skip, on_progress=on_progress):
            records = [record for _, record in batch.records] + [record for _, record in batch.references]
            references.extend(record for _, record in batch.references)
            db.add_measurements(records)
            stored[0] += len(batch.records)
            for model, record in batch.records:
                finished(model, record)
