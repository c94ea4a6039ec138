"""``hwnas search``: a budgeted architecture search, resumable, with a JSON result, the best model
exported, a Pareto plot, and optionally the top candidates re-measured on this machine.

The pieces come from :mod:`hwnas.cli.setup` (strategy, evaluator), :mod:`hwnas.cli.latency_sources`
(latency source) and :mod:`hwnas.search_report` (progress, best.onnx, plot, ``--verify-top``).
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from hwnas.errors import CLIError
from hwnas.cli.latency_sources import SOURCES
from hwnas.cli.setup import EVALUATORS, STRATEGIES, ZERO_COST


def _prefilter(source: Any, bound: float | None, missing: set[str]) -> Any:
    """Feasibility test for strategies, from a cheap source. A ``db`` table refuses architectures
    it has no latency of (adding them to ``missing``) unless the source measures them; other
    sources let unknown latencies pass (the trial itself will say)."""
    from hwnas.latency import NoLatency

    table = source.table
    if table is not None:
        def known(arch: Any) -> bool:
            if arch.spec in table:
                return bound is None or table[arch.spec] <= bound
            if source.meter is not None:  # --measure-missing: the trial measures it
                return True
            missing.add(arch.spec)
            return False

        return known

    def feasible(arch: Any) -> bool:
        try:
            return bound is None or source(arch) <= bound
        except NoLatency:
            return True

    return feasible


def _latency_text(best: dict[str, Any], label: str) -> str:
    """The answer's latency: measured, or predicted with its interval."""
    if best.get("latency_measured"):
        return f"latency {best['latency_ms']:.3f} ms (measured on this machine; predicted {best.get('latency_mean_ms', 0):.3f} ms)"
    text = f"latency {best['latency_ms']:.3f} ms ({label})"
    if best.get("latency_low_ms") is not None:
        text += f", 90% interval {best['latency_low_ms']:.3f}-{best['latency_high_ms']:.3f} ms"
        text += " (extrapolated)" if best.get("extrapolated") else ""
    return text


def cmd_search(args: argparse.Namespace) -> int:
    from hwnas.cli.output import emit
    from hwnas.constraints import Constraint, Objective, parse_budget, parse_weights
    from hwnas.cli.setup import make_executor
    from hwnas.executors import MeasureGate, done_future, run_trials, then
    from hwnas.cli.latency_sources import make_source
    from hwnas.search_report import (closed_loop_text, export_best, front_of, pareto_plot, progress, ranked, trial_summary,
                                     verify_text, verify_top)
    from hwnas.cli.setup import dataset_of, make_evaluator, make_strategy
    from hwnas.space import get_space
    from hwnas.study import Study, TrialState

    space = get_space(args.space)
    if args.threads is not None:
        if args.threads < 1:
            raise CLIError(f"--threads must be a positive integer, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)  # the command owns its process: set once, here
    if args.budget_evals < 1:
        raise CLIError(f"--budget-evals must be a positive integer, got {args.budget_evals}")
    if args.verify_top is not None and args.verify_top < 0:
        raise CLIError(f"--verify-top must be >= 0, got {args.verify_top}")
    try:
        budget = parse_budget(args.latency_budget_ms) if args.latency_budget_ms is not None else None
        weights = parse_weights(args.weights) if args.weights else {}
        objective = Objective(Constraint("latency_ms", budget) if budget else None, args.constraint, weights=weights)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    out = Path(args.out)
    evaluator = make_evaluator(args, space)
    latency_of = make_source(args, space, out, budget if args.constraint == "hard" else None)
    strategy = make_strategy(args, space, latency_of, budget)
    no_latency: set[str] = set()  # architectures a partial db table has no latency of: never proposed
    hard = budget if args.constraint == "hard" else None
    if latency_of.table is not None or (hard is not None and latency_of.cheap):
        # each unseen latency of a learned source costs a graph and a prediction: check few
        strategy.use_feasibility(_prefilter(latency_of, hard, no_latency), costly=latency_of.table is None)
    if latency_of.table is not None and latency_of.meter is None:
        from hwnas.strategy.filtered import Filtered

        table = latency_of.table

        def has_latency(arch: Any) -> bool:
            if arch.spec in table:
                return True
            no_latency.add(arch.spec)
            return False

        strategy = Filtered(strategy, has_latency, f"no latency on {args.device} in the table")

    def latency_step(arch: Any) -> tuple[dict[str, Any], bool]:
        """Driver side: the latency and whether the budget rejects the arch before any training."""
        lat = latency_of(arch)
        metrics: dict[str, Any] = {"latency_ms": lat, "latency_source": latency_of.label, **latency_of.detail(arch)}
        return metrics, bool(objective.mode == "hard" and objective.constraint and lat > objective.constraint.bound)

    def scored(metrics: dict[str, Any], m: dict[str, Any]) -> tuple[dict[str, Any], float | None]:
        metrics = {**metrics, "accuracy": m["accuracy"], "accuracy_source": m["source"],
                   "train_time_s": round(m["cost_s"], 4), **m["extra"]}  # fmt: skip
        return metrics, objective.score(metrics)

    def submit(arch: Any) -> Future:
        """The latency check here, the evaluation in the executor (this process by default)."""
        from hwnas.latency import NoLatency

        try:
            metrics, rejected = latency_step(arch)
        except NoLatency as exc:  # a strategy that ignores the prefilter: the trial fails, the search goes on
            no_latency.add(arch.spec)
            return done_future(({"latency_source": latency_of.label, "error": str(exc)}, None))
        if rejected:
            return done_future((metrics, None))  # rejected before any training
        return gate.track(then(executor.submit(arch.spec), lambda m: scored(metrics, m)))

    executor = make_executor(args, space, evaluator)
    gate = MeasureGate()  # a measurement on this machine waits for the evaluations running on it
    if latency_of.meter is not None:
        latency_of.meter.before_measure = gate.quiesce
    t0 = time.perf_counter()
    settings = {"evaluator": args.evaluator, "dataset": dataset_of(args),
                "latency_source": latency_of.label, "budget_ms": budget, "constraint": args.constraint,
                "weights": weights, "seed": args.seed, "measure_uncertain": latency_of.loop is not None}  # fmt: skip
    from hwnas.local_meter import MeasureError

    try:
        with Study(out / "study.db", strategy, settings) as study:
            done = sum(t.state != TrialState.PENDING for t in study.trials())
            show = None if args.json else progress(args.budget_evals, done)
            best = run_trials(study, args.budget_evals, submit, executor, show)
            trials = study.trials()
        confirmed = None
        if latency_of.loop is not None and best is not None:  # the answer is measured before it is reported
            order = ranked(trials)
            best, checked = latency_of.loop.confirm(order)
            archs = [t.arch for t in order]
            above = archs[: archs.index(best.arch)] if best is not None else []
            seen = {c["arch"] for c in checked}
            confirmed = {"checked": checked, "confirmed": best is not None,
                         "marginal": any(c["marginal"] for c in checked),
                         "unmeasured_above": sum(a not in seen for a in above)}  # the loop's cap left them unmeasured
    except MeasureError as exc:  # the closed loop's measurement: the trials and measurements so far are kept
        raise CLIError(f"{exc}; fix it and run again with the same --out to go on") from None
    wall = time.perf_counter() - t0
    result: dict[str, Any] = {
        "space": space.name, "strategy": args.strategy, "evaluator": args.evaluator, "constraint": args.constraint,
        "latency_source": latency_of.label, "latency_budget_ms": budget, "weights": weights, "seed": args.seed,
        "best": None if best is None else {"arch": best.arch, "score": best.score, **best.metrics},
        **trial_summary(trials),
        "pareto_front": front_of(trials),
        "wall_s": round(wall, 3),
        **latency_of.timing(),
        "no_latency": len(no_latency),
        "measurement_pauses": gate.pauses,
    }
    if latency_of.loop is not None:
        result["closed_loop"] = {**latency_of.loop.summary(), **(confirmed or {})}
        if best is not None:
            result["best"]["latency_ms"] = result["best"]["latency_measured_ms"] = latency_of.loop.measured[best.arch].measured_ms
            result["best"]["latency_measured"] = True
    if any(isinstance(t.metrics.get("accuracy"), (int, float)) for t in trials):
        title = f"{args.strategy} / {args.evaluator} / {latency_of.label}"
        plot = pareto_plot(trials, out / "pareto.png", budget_ms=budget, title=title)
        result["plot"] = str(plot) if plot else None
    text = []
    if best is not None:
        result["best_onnx"] = str(export_best(space, best.arch, out))
        if args.verify_top:
            from hwnas.cli.output import progress_printer

            # the answer first: candidates ranked above it that its confirmation measured over the
            # budget (or too close to it) are not answers, so they are not re-measured as such; those
            # it left unmeasured (the loop's cap) follow, in ranking order
            passed = {c["arch"] for c in (confirmed or {}).get("checked", [])} - {best.arch}
            result["verify"] = verify_top(space, [t for t in ranked(trials) if t.arch not in passed], args.verify_top,
                                          args.db, out, None if args.json else progress_printer(),
                                          answer=best.arch if confirmed is not None else None)  # fmt: skip
            text.append(verify_text(result["verify"]))
    from hwnas.fileio import atomic_write_bytes

    atomic_write_bytes(out / "result.json", json.dumps(result, indent=2, sort_keys=True, default=str).encode())
    from hwnas.cli.output import write_run_report

    report = write_run_report(out)
    if best is None:
        n = len(trials)
        if confirmed is not None:
            missed = ", ".join(f"{c['measured_ms']:.3f} ms" for c in confirmed["checked"])
            raise CLIError(f"no answer confirmed by measurement: the best {len(confirmed['checked'])} candidates measured "
                           f"{missed} against --latency-budget-ms {budget}; raise --measure-max or the budget, and run "
                           "again with the same --out to go on")  # fmt: skip
        raise CLIError(f"no feasible architecture: none of {n} trials met --latency-budget-ms {budget}; raise the budget")
    acc = best.metrics.get("accuracy")
    head = (f"best of {result['evaluations']} evaluations ({result['rejected']} rejected, {result['failed']} failed, "
            f"{wall:.1f} s): {best.arch}\n  accuracy {acc:.4g} ({best.metrics.get('accuracy_source')}), "
            f"{_latency_text(result['best'], latency_of.label)}"
            + (f"; {args.constraint} budget {budget:.4g} ms" if budget else "") + f"\n  {out / 'result.json'}, "
            f"{result['best_onnx']}" + (f", {result['plot']}" if result.get("plot") else "")
            + (f", {report}" if report else ""))  # fmt: skip
    if latency_of.loop is not None:
        text.insert(0, closed_loop_text(result["closed_loop"]))
    emit(result if args.json else None, args.json, "\n".join([head, *text]))
    return 0


def add_parser(sub: Any, default_db: str) -> None:
    """Register ``hwnas search``."""
    from hwnas.cli.profile import add_ssh_flags

    q = sub.add_parser(
        "search",
        help="find the most accurate architecture under a latency budget (resumable with the same --out)",
        description="Budgeted architecture search. Trials are stored in OUT/study.db as they finish: "
        "interrupt it and run the same command again to continue. Writes OUT/result.json.",
    )
    q.add_argument("--space", choices=("nb201", "macro"), default="nb201", help="search space (default nb201)")
    q.add_argument("--strategy", choices=STRATEGIES, default="evolution",
                   help="random; evolution (aging); rl (REINFORCE controller); predictor (GP surrogate ranks the "
                   "space, evaluates the most promising); darts (NB201 supernet, expected-latency term); nsga2 "
                   "(Pareto front of accuracy and latency). Default evolution")  # fmt: skip
    q.add_argument("--evaluator", choices=EVALUATORS, default="tabular",
                   help="tabular: NB201's published accuracies; train: full training; proxy: cheap training "
                   "(fewer epochs, subsample, lower resolution, fewer channels/cells); supernet: one-shot weight "
                   "sharing; zero-cost: a training-free score (--proxy)")  # fmt: skip
    q.add_argument("--dataset", default=None,
                   help="tabular: cifar10 (default), cifar100 or imagenet16_120; trained evaluators: digits (default, "
                   "bundled with scikit-learn), cifar10 (binary version in $HWNAS_CIFAR10), a cifar-10-batches-bin "
                   "folder or an .npz with x and y")  # fmt: skip
    t = q.add_argument_group("training (train, proxy, supernet, zero-cost, darts)")
    t.add_argument("--epochs", type=int, help="training epochs per candidate")
    t.add_argument("--subsample", type=float, help="fraction of the training split used, in (0, 1]")
    t.add_argument("--resolution", type=int, help="input resolution (images are resized)")
    t.add_argument("--channels", type=int, help="network width (NB201: stem channels, 16 at full size)")
    t.add_argument("--cells", type=int, help="cells per stage (NB201: 5 at full size)")
    t.add_argument("--proxy", choices=ZERO_COST, default="synflow", help="zero-cost score (default synflow)")
    t.add_argument("--train-device", default="cpu", help="torch device for training: cpu (default) or cuda")
    t.add_argument("--threads", type=int, help="torch CPU threads (default: torch's; 1 is often fastest on a busy machine)")
    q.add_argument("--latency-source", choices=SOURCES, default="db",
                   help="measured: export and measure each candidate now on this machine (stored in --db); "
                   "db: the device's latencies in --db; predictor: --predictor FILE; flops/params/lut: a model "
                   "fitted on the device's measurements in --db")  # fmt: skip
    q.add_argument("--db", default=default_db, help=f"latency database (default {default_db})")
    q.add_argument("--device", help="device whose latency counts (db/flops/params/lut sources; a device of a "
                   "multi-device predictor; the name this machine is stored under for the measured source)")
    q.add_argument("--predictor", help="predictor file (predictor source)")
    q.add_argument("--config", metavar="HASH", help="db/flops/params/lut sources: only the device's measurements under this protocol config (a prefix of its hash)")
    q.add_argument("--latency-confidence", type=float, default=0.9, metavar="Q",
                   help="learned sources (predictor, flops, params, lut): judge latency by the Q quantile of the "
                   "prediction's interval, so a hard budget holds with probability Q where the predictor is calibrated; "
                   "0.5 = the point prediction (default 0.9)")
    q.add_argument("--measure-uncertain", action=argparse.BooleanOptionalAction, default=None,
                   help="learned sources with a hard budget: measure on this machine each candidate whose 90%% interval "
                   "straddles the budget (stored in --db), adapt the predictor every few measurements, and measure the "
                   "answer before reporting it feasible. Default: on when --device is this machine in --db")
    q.add_argument("--measure-missing", action="store_true",
                   help="db source: measure on this machine (and store) the architectures the device's table lacks, "
                   "instead of skipping them (the device must be this machine)")
    q.add_argument("--measure-max", type=int, metavar="N",
                   help="--measure-uncertain: measure at most N candidates per search, the answer's confirmation "
                   "included (default 30; the last few are kept for the confirmation)")
    r = q.add_argument_group("closed loop on an SSH device (--measure-uncertain measures there, as hwnas profile does)")
    r.add_argument("--host", help="[user@]host[:port] or a ~/.ssh/config alias of the device --device names in --db: "
                   "uncertain candidates and the answer are measured there (on by default with --host)")
    r.add_argument("--inventory", metavar="TOML", help="instead of --host: the [[device]] of this hwnas profile "
                   "inventory named --device (its host, user, port, key, python and remote_dir)")
    add_ssh_flags(r, "--host: ")
    r.add_argument("--remote-python", default="python3", help="--host: python on the device, the base of the agent's "
                   "venv (default python3)")
    r.add_argument("--remote-dir", default=".hwnas-agent", help="--host: working folder on the device (default ~/.hwnas-agent)")
    r.add_argument("--no-install", action="store_true", help="--host: use the agent already installed with "
                   "--remote-python instead of deploying this checkout's")
    q.add_argument("--latency-budget-ms", help="latency budget in ms, e.g. 5 or 5ms")
    q.add_argument("--constraint", choices=("hard", "soft"), default="hard",
                   help="hard: reject candidates over budget before training; soft: MnasNet reward or --weights")  # fmt: skip
    q.add_argument("--weights", help="soft objective as a weighted sum, e.g. accuracy=1,latency_ms=-0.5")
    q.add_argument("--budget-evals", type=int, default=100,
                   help="number of trials, rejected ones included (default 100)")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--out", required=True, help="folder for study.db, result.json, best.onnx and pareto.png; run again with the same --out to resume")
    q.add_argument("--models", action="append", metavar="DIR", help=argparse.SUPPRESS)
    q.add_argument("--cache", metavar="DIR", help="graph cache (predictor source)")
    q.add_argument("--verify-top", type=int, metavar="K",
                   help="at the end, export the K best and measure them on this machine (into --db): predicted vs measured")
    from hwnas.cli.setup import add_executor_flags

    add_executor_flags(q)
    q.add_argument("--json", action="store_true", help="print the result as JSON")
    q.set_defaults(func=cmd_search)
