"""``hwnas codesign``: joint search of a network and an accelerator under area, power and latency
budgets, through the analytical cost model of :mod:`hw_space`; resumable, with a JSON result and
Pareto plots.

Two modes. ``--mode joint`` (default): the strategy searches (network, accelerator) pairs of a
:class:`~hwnas.codesign.JointSpace`. ``--mode nested``: the strategy searches networks, and each
network gets the accelerator that minimises ``--size-for`` (EDP by default) within the budgets,
found by :func:`hwnas.codesign.sizing.size_accelerator` through the cost model alone (a design costs
well under a millisecond; an accuracy evaluation is what costs), as NAAS nests its searches.

Fixed budget (issue 19, after NAAS): ``--fixed-budget eyeriss|edge-tpu`` replaces the accelerator
space by a :class:`~hw_space.budget.FixedBudgetSpace`: the PEs, on-chip storage and NoC bandwidth of
a baseline chip, organised by the search (array shape, RF/global-buffer split, dataflow), each layer
mapped by :class:`~hw_space.mapper.BufferMapper` (``--mapper search``, the default there).

Scoring: hard budgets reject a pair before its accuracy is evaluated (area first, from the design
alone). NSGA-II optimises the ``--objective`` metrics (accuracy max, the rest min); the scalar
strategies (random, evolution, rl) maximise accuracy (``--constraint hard``) or a weighted sum
(``--constraint soft --weights accuracy=1,energy_uj=-0.01``); budgets stay hard in both modes.
"""

from __future__ import annotations

import argparse
import io
import json
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hwnas.errors import CLIError

STRATEGIES = ("random", "evolution", "rl", "nsga2")
#: --objective names -> (metric, direction).
OBJECTIVES = {"accuracy": ("accuracy", "max"), "latency": ("latency_ms", "min"), "energy": ("energy_uj", "min"),
              "area": ("area_mm2", "min"), "power": ("power_mw", "min"), "edp": ("edp_uj_ms", "min")}
#: The front reported in result.json: (metric, maximise?).
FRONT = (("accuracy", True), ("latency_ms", False), ("energy_uj", False), ("area_mm2", False))
WEIGHTABLE = ("accuracy", "latency_ms", "energy_uj", "energy_mj", "area_mm2", "power_mw", "edp_uj_ms")


def parse_objectives(text: str) -> tuple[tuple[str, str], ...]:
    """``"accuracy,latency,energy"`` -> ``(("accuracy", "max"), ("latency_ms", "min"), ...)``."""
    names = [n.strip() for n in str(text).split(",") if n.strip()]
    bad = [n for n in names if n not in OBJECTIVES]
    if bad or not names:
        raise CLIError(f"--objective: unknown {', '.join(bad) or 'empty list'}; use a comma list of {', '.join(OBJECTIVES)}")
    if len(set(names)) != len(names):
        raise CLIError(f"--objective names a metric twice: {text}")
    return tuple(OBJECTIVES[n] for n in names)


def parse_weights(text: str) -> dict[str, float]:
    """``"accuracy=1,energy_uj=-0.01"`` -> weights over :data:`WEIGHTABLE`; one-line ``CLIError``
    (:func:`hwnas.constraints.parse_weights` with codesign's metrics)."""
    from hwnas.constraints import parse_weights as parse

    try:
        return parse(text, WEIGHTABLE, "accuracy=1,energy_uj=-0.01")
    except ValueError as exc:
        raise CLIError(str(exc)) from None


def front_rows(trials: Sequence[Any]) -> list[dict[str, Any]]:
    """Complete trials on the Pareto front of :data:`FRONT`, one per joint arch, by latency."""
    from hwnas.strategy.pareto import pareto_front
    from hwnas.study import TrialState

    done = {t.arch: t for t in trials if t.state == TrialState.COMPLETE
            and all(isinstance(t.metrics.get(m), (int, float)) for m, _ in FRONT)}  # fmt: skip
    pts = list(done.values())
    if not pts:
        return []
    idx = pareto_front(np.array([[t.metrics[m] for m, _ in FRONT] for t in pts], dtype=float),
                       maximize=[mx for _, mx in FRONT])  # fmt: skip
    keep = ("accuracy", "latency_ms", "energy_uj", "area_mm2", "power_mw", "edp_uj_ms")
    rows = [{"arch": pts[i].arch if "@" in pts[i].arch else f"{pts[i].arch}@{pts[i].metrics.get('hw_key')}",
             **{k: pts[i].metrics.get(k) for k in keep}} for i in idx]
    return sorted(rows, key=lambda r: r["latency_ms"])


def codesign_plot(trials: Sequence[Any], path: Path, title: str) -> Path | None:
    """Two panels, accuracy vs latency and accuracy vs energy, each with its 2-D Pareto front;
    written atomically as PNG. None when no trial has an accuracy."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from hwnas.fileio import atomic_write_bytes
    from hwnas.strategy.pareto import pareto_front
    from hwnas.study import TrialState

    done = [t for t in trials if t.state == TrialState.COMPLETE and isinstance(t.metrics.get("accuracy"), (int, float))]
    if not done:
        return None
    fig = Figure(figsize=(10, 4.2), dpi=110)
    for ax, (x, label) in zip(fig.subplots(1, 2), (("latency_ms", "latency (ms)"), ("energy_uj", "energy (uJ)"))):
        arr = np.array([(t.metrics[x], t.metrics["accuracy"]) for t in done], dtype=float)
        ax.scatter(arr[:, 0], arr[:, 1], s=12, alpha=0.6, c="tab:blue", label="feasible designs")
        front = arr[pareto_front(arr, maximize=[False, True])]
        front = front[np.argsort(front[:, 0])]
        ax.step(front[:, 0], front[:, 1], where="post", c="tab:red", lw=1.5, label="Pareto front")
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(path, buf.getvalue())
    return path


def _strategy(args: argparse.Namespace, space: Any, objectives: tuple[tuple[str, str], ...]) -> Any:
    from hwnas import strategy as st

    n = args.budget_evals
    if args.strategy == "random":
        return st.RandomSearch(space, args.seed)
    if args.strategy == "evolution":
        return st.RegularizedEvolution(space, population=min(50, max(4, n // 3)), sample=min(10, max(2, n // 15)),
                                       seed=args.seed)  # fmt: skip
    if args.strategy == "rl":
        return st.REINFORCE(space, seed=args.seed)
    return st.NSGA2(space, objectives=objectives, population=min(20, max(4, n // 4)), seed=args.seed)


def cmd_codesign(args: argparse.Namespace) -> int:
    """Run (or resume) a codesign study in ``args.out``; see the module docstring."""
    from hwnas.codesign import (HardwareBudget, HardwareCost, JointSpace, hw_key, load_design_space, parse_hw_budget,
                                split_metrics)
    from hwnas.fileio import atomic_write_bytes
    from hwnas.search_report import progress, trial_summary
    from hwnas.cli.setup import dataset_of, make_evaluator
    from hwnas.space import get_space
    from hwnas.study import Study, TrialState

    if args.budget_evals < 1:
        raise CLIError(f"--budget-evals must be a positive integer, got {args.budget_evals}")
    try:
        budget = HardwareBudget(parse_hw_budget("--area-budget-mm2", args.area_budget_mm2),
                                parse_hw_budget("--power-budget-mw", args.power_budget_mw),
                                parse_hw_budget("--latency-budget-ms", args.latency_budget_ms))  # fmt: skip
        if args.fixed_budget and args.hw_space:
            raise ValueError("--fixed-budget and --hw-space both define the accelerator space; give one")
        hw = load_design_space(args.hw_space) if args.hw_space else None
        if args.physical and not args.fixed_budget:
            raise ValueError("--physical prices clock and DRAM of a --fixed-budget space; give --fixed-budget eyeriss")
        if args.fixed_budget:  # issue 19: a baseline chip's resources, organised by the search (NAAS)
            from hw_space.budget import FixedBudgetSpace, budget_by_name, physical_space

            chip = budget_by_name(args.fixed_budget)
            hw = physical_space(chip) if args.physical else FixedBudgetSpace(chip)
        net = get_space(args.space)
    except ValueError as exc:
        raise CLIError(str(exc).splitlines()[0]) from None
    mapper_name = args.mapper or ("search" if args.fixed_budget else "fixed")
    from hw_space.mapper import BufferMapper

    mapper = BufferMapper() if mapper_name == "search" else None
    hw_name = f"budget:{args.fixed_budget}" if args.fixed_budget else (args.hw_space or "default")
    hw_name += "+physical" if args.physical else ""
    objectives = parse_objectives(args.objective)
    weights = parse_weights(args.weights) if args.weights else {}
    if args.constraint == "soft" and not weights:
        raise CLIError("--constraint soft needs --weights, e.g. accuracy=1,energy_uj=-0.01")
    if args.sizing_evals < 1:
        raise CLIError(f"--sizing-evals must be a positive integer, got {args.sizing_evals}")
    space = JointSpace(net, hw)
    nested = args.mode == "nested"
    evaluator = make_evaluator(args, net)
    cost = HardwareCost(net, mapper=mapper)
    out = Path(args.out)
    accuracy: dict[str, dict[str, Any]] = {}  # per network spec: evaluated once per study

    def hardware(arch: Any) -> tuple[Any, dict[str, Any], str | None]:
        """(network arch, metrics with the accelerator, why rejected or None) of a trial's arch."""
        if nested:
            from hwnas.codesign.sizing import size_accelerator

            sized = size_accelerator(cost.layers(arch), space.hw, budget, objective=args.size_for, batch=cost.batch,
                                     max_evals=args.sizing_evals, seed=args.seed, mapper=mapper)  # fmt: skip
            metrics = {"hw": sized.spec.to_dict(), "hw_key": hw_key(sized.spec), **sized.metrics,
                       "sizing_evaluations": sized.evaluations}  # fmt: skip
            why = None if sized.feasible else "; ".join(sized.violations) + " (the closest design the sizing found)"
            return arch, metrics, why
        net_arch, spec = space.split(arch)
        metrics = {"hw": spec.to_dict()}
        why = budget.area_violation(spec)
        if why is None:
            metrics.update(cost.metrics(net_arch, spec))
            why = "; ".join(budget.violations(metrics)) or None
        return net_arch, metrics, why

    def remember(spec: str, m: dict[str, Any]) -> None:
        accuracy[spec] = {"accuracy": m["accuracy"], "accuracy_source": m["source"], "train_time_s": round(m["cost_s"], 4)}

    def scored(metrics: dict[str, Any], acc: dict[str, Any]) -> tuple[dict[str, Any], float | None]:
        metrics = {**metrics, **acc}
        score = sum(w * float(metrics[k]) for k, w in weights.items()) if args.constraint == "soft" else metrics["accuracy"]
        return metrics, float(score)

    def submit(arch: Any) -> Future:
        """Hardware cost and budgets here, the accuracy in the executor (this process by default),
        once per network."""
        net_arch, metrics, why = hardware(arch)
        if why is not None:
            return done_future(({**metrics, "rejected_by": why}, None))  # before the accuracy evaluation
        if net_arch.spec in accuracy:
            return done_future(scored(metrics, accuracy[net_arch.spec]))

        def learned(m: dict[str, Any]) -> tuple[dict[str, Any], float | None]:
            remember(net_arch.spec, m)
            return scored(metrics, accuracy[net_arch.spec])

        return then(executor.submit(net_arch.spec), learned)

    from hwnas.cli.setup import make_executor
    from hwnas.executors import done_future, run_trials, then

    executor = make_executor(args, net, evaluator)
    t0 = time.perf_counter()
    settings = {"mode": args.mode, "space": space.name, "hw_space": hw_name, "evaluator": args.evaluator,
                "dataset": dataset_of(args), "objectives": [list(o) for o in objectives], "budgets": budget.as_dict(),
                "constraint": args.constraint, "weights": weights, "seed": args.seed,
                **({"size_for": args.size_for, "sizing_evals": args.sizing_evals} if nested else {}),
                **({"mapper": mapper_name} if mapper_name != "fixed" else {})}  # fmt: skip
    with Study(out / "study.db", _strategy(args, net if nested else space, objectives), settings) as study:
        trials = study.trials()
        for t in trials:  # a resumed study does not re-evaluate accuracies it already has
            if t.state == TrialState.COMPLETE and "accuracy" in t.metrics:
                accuracy.setdefault(t.arch.partition("@")[0],
                                    {k: t.metrics[k] for k in ("accuracy", "accuracy_source", "train_time_s") if k in t.metrics})
        done = sum(t.state != TrialState.PENDING for t in trials)
        show = None if args.json else progress(args.budget_evals, done)
        best = run_trials(study, args.budget_evals, submit, executor, show)
        trials = study.trials()
    wall = time.perf_counter() - t0
    result: dict[str, Any] = {
        "space": space.name, "mode": args.mode, "strategy": args.strategy, "evaluator": args.evaluator, "constraint": args.constraint,
        "objectives": [list(o) for o in objectives], "weights": weights, "budgets": budget.as_dict(), "seed": args.seed,
        "hw_space": hw_name, "mapper": mapper_name, "units": {"latency_ms": "ms", "energy_uj": "uJ", "energy_mj": "mJ",
                                                          "area_mm2": "mm2", "power_mw": "mW", "edp_uj_ms": "uJ*ms"},
        "best": None if best is None else split_metrics(
            space, f"{best.arch}@{best.metrics['hw_key']}" if nested else best.arch, best.score, best.metrics),
        **({"size_for": args.size_for, "sizing_evals": args.sizing_evals} if nested else {}),
        **trial_summary(trials),
        "pareto_front": front_rows(trials),
        "wall_s": round(wall, 3),
    }
    plot = codesign_plot(trials, out / "pareto.png", f"codesign {space.name} / {args.strategy} / {args.evaluator}")
    result["plot"] = str(plot) if plot else None
    atomic_write_bytes(out / "result.json", json.dumps(result, indent=2, sort_keys=True, default=str).encode())
    from hwnas.cli.output import write_run_report

    report = write_run_report(out)
    if best is None:
        reasons = sorted({t.metrics.get("rejected_by", "").split(" ")[0] for t in trials if t.metrics.get("rejected_by")})
        raise CLIError(f"no feasible design: none of {len(trials)} trials met the budgets {budget.as_dict()} "
                       f"(violated: {', '.join(reasons) or 'none; all failed'}); relax a budget or widen --hw-space")
    from hwnas.cli.output import emit

    b = result["best"]
    text = (f"best of {result['evaluations']} evaluations ({result['rejected']} rejected, {result['failed']} failed, "
            f"{wall:.1f} s): {b['arch']} on {b['hw_key']}\n  accuracy {b['accuracy']:.4g}, latency {b['latency_ms']:.4g} ms, "
            f"energy {b['energy_uj']:.4g} uJ, area {b['area_mm2']:.4g} mm2, power {b['power_mw']:.4g} mW, "
            f"EDP {b['edp_uj_ms']:.4g} uJ*ms\n  Pareto front: {len(result['pareto_front'])} designs; "
            f"{out / 'result.json'}" + (f", {plot}" if plot else "") + (f", {report}" if report else ""))  # fmt: skip
    emit(result if args.json else None, args.json, text)
    return 0


def add_parser(sub: Any, default_db: str) -> None:
    """Register ``hwnas codesign`` (``default_db`` is accepted for symmetry with ``search``; unused)."""
    from hwnas.codesign.sizing import SIZING_METRICS
    from hwnas.cli.setup import ZERO_COST

    q = sub.add_parser(
        "codesign", help="joint network x accelerator search under area/power/latency budgets (resumable)",
        description="Searches (network, accelerator) pairs through hw_space's analytical cost model. Trials are "
        "stored in OUT/study.db: run the same command again to continue. Writes OUT/result.json and OUT/pareto.png.",
    )  # fmt: skip
    q.add_argument("--space", choices=("nb201", "macro"), default="nb201", help="network search space (default nb201)")
    q.add_argument("--hw-space", metavar="JSON", help="accelerator design space: a JSON/YAML mapping of field -> list of "
                   "choices (pe_shapes [[r, c], ...], rf_bytes, gbuf_bytes, dataflows, dram_bw, noc_bw, clock_mhz, "
                   "precision_bits); fields left out keep DesignSpace's defaults (default: all defaults)")  # fmt: skip
    q.add_argument("--fixed-budget", choices=("eyeriss", "edge-tpu"), default=None,
                   help="search how to organise a baseline chip's resources (NAAS): PEs, on-chip storage and NoC "
                   "bandwidth capped at Eyeriss's or an Edge-TPU-like chip's; the search picks array shape, RF/global "
                   "buffer split and dataflow (hw_space.budget); implies --mapper search")  # fmt: skip
    q.add_argument("--physical", action="store_true",
                   help="with --fixed-budget eyeriss: also search the supply voltage (0.82-1.17 V; the clock is the "
                   "fastest it allows, dynamic energy ~ V^2) and 1, 2 or 4 LPDDR4 channels (energy per bit, PHY area "
                   "and standby power), instead of the baseline's fixed clock and DRAM bandwidth")
    q.add_argument("--mapper", choices=("fixed", "search"), default=None,
                   help="buffer-level loop order and tiling per layer: fixed (the cost model's four schedules) or "
                   "search (hw_space.mapper; never more DRAM traffic). Default: search with --fixed-budget, else fixed")
    q.add_argument("--evaluator", choices=("tabular", "proxy", "train", "zero-cost"), default="tabular",
                   help="accuracy source (tabular: NB201's published accuracies); evaluated once per network")
    q.add_argument("--dataset", default=None, help="as for hwnas search")
    q.add_argument("--objective", default="accuracy,latency,energy",
                   help=f"metrics NSGA-II optimises, comma list of {', '.join(OBJECTIVES)} (default accuracy,latency,energy)")
    q.add_argument("--area-budget-mm2", help="hard budget on accelerator area (mm^2)")
    q.add_argument("--power-budget-mw", help="hard budget on average power (mW)")
    q.add_argument("--latency-budget-ms", help="hard budget on latency per image (ms)")
    q.add_argument("--constraint", choices=("hard", "soft"), default="hard",
                   help="scalar strategies: hard scores accuracy; soft scores --weights (budgets stay hard)")
    q.add_argument("--weights", help=f"soft score as a weighted sum over {', '.join(WEIGHTABLE)}")
    q.add_argument("--strategy", choices=STRATEGIES, default="nsga2", help="search strategy (default nsga2)")
    q.add_argument("--mode", choices=("joint", "nested"), default="joint",
                   help="joint: the strategy searches (network, accelerator) pairs; nested: it searches networks and "
                   "each network gets the accelerator sized for it by the cost model alone (default joint)")
    q.add_argument("--size-for", choices=SIZING_METRICS, default="edp_uj_ms",
                   help="nested mode: the metric the accelerator is sized to minimise (default edp_uj_ms)")
    q.add_argument("--sizing-evals", type=int, default=300,
                   help="nested mode: designs costed per network by the sizing search (default 300)")
    q.add_argument("--budget-evals", type=int, default=200, help="number of trials, rejected ones included (default 200)")
    q.add_argument("--seed", type=int, default=0)
    t = q.add_argument_group("training (proxy, train, zero-cost)")
    for flag, kind in (("--epochs", int), ("--subsample", float), ("--resolution", int), ("--channels", int), ("--cells", int)):
        t.add_argument(flag, type=kind)
    t.add_argument("--proxy", choices=ZERO_COST, default="synflow", help="zero-cost score (default synflow)")
    t.add_argument("--train-device", default="cpu", help="torch device for training: cpu (default) or cuda")
    q.add_argument("--out", required=True, help="folder for study.db, result.json and pareto.png (same --out resumes)")
    from hwnas.cli.setup import add_executor_flags

    add_executor_flags(q)
    q.add_argument("--json", action="store_true", help="print the result as JSON")
    q.set_defaults(func=cmd_codesign)
