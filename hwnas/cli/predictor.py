"""``hwnas predictor ...``: train, adapt, evaluate, apply latency predictors, suggest what to profile."""

from __future__ import annotations

import argparse
import csv
import io
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hwnas.cli.dbopen import CONFIG_HELP, open_db
from hwnas.errors import CLIError

#: ``--config`` of the commands that read a device's measurements (predictor, db quantile, search).
KINDS = ("gnn", "gbdt", "lut", "flops", "params")


def _cache_dir(args: argparse.Namespace) -> Path:
    from hwnas.graph.cache import default_cache_dir

    return Path(args.cache) if getattr(args, "cache", None) else default_cache_dir()


def graph_resolver(args: argparse.Namespace) -> Any:
    from hwnas.graph.cache import GraphCache
    from hwnas.graph.resolve import GraphResolver

    return GraphResolver(GraphCache(_cache_dir(args)), model_dirs=[Path(d) for d in (getattr(args, "models", None) or [])])


def _embeddings(args: argparse.Namespace, pred: Any, space: Any, archs: Sequence[Any]) -> np.ndarray:
    """GNN embeddings of ``archs``, from the embedding cache where present; only the missing
    ones are encoded and embedded (and then cached)."""
    from hwnas.predictors.embed_cache import EmbeddingCache

    cache = EmbeddingCache(_cache_dir(args) / "embeddings")
    digest = pred.embedding_digest()
    table = cache.load(digest)
    keys = [f"{space.name}:{a.spec}" for a in archs]
    missing = [i for i, k in enumerate(keys) if k not in table]
    if missing:
        emb = pred.embed(_graphs(args, space, [archs[i] for i in missing]))
        cache.store(digest, [keys[i] for i in missing], emb)
        table.update(zip((keys[i] for i in missing), emb))
    return np.stack([table[k] for k in keys])


def _graph_progress(args: argparse.Namespace, what: str) -> Any:
    from hwnas.cli.output import progress_printer as make

    show = None if getattr(args, "json", False) else make()
    if show is None:
        return None
    return lambda i, n: show(i, n, what)


def load_predictor_file(path: str) -> Any:
    """The predictor file at ``path``, or the shipped predictor of that name (``nb201-public``:
    :mod:`hwnas.predictors.shipped`)."""
    from hwnas.predictors import predictor_kinds
    from hwnas.predictors.base import load_predictor
    from hwnas.predictors.shipped import missing_hint, resolve_predictor_path

    resolved = resolve_predictor_path(path)
    if not resolved.is_file():
        raise CLIError(f"{path}: no such predictor file ({missing_hint()})")
    return load_predictor(resolved, predictor_kinds())


def _share(text: str) -> float:
    """argparse type: a share in [0, 0.5]."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; give a share such as 0.1") from None
    if not 0.0 <= v <= 0.5:
        raise argparse.ArgumentTypeError(f"{v} is out of range; give a share from 0 to 0.5 (0 = off)")
    return v


def _make(kind: str, args: argparse.Namespace) -> Any:
    from hwnas.predictors import predictor_kinds
    from hwnas.predictors.kinds import check_available

    kinds = predictor_kinds()
    if kind not in kinds:
        raise CLIError(f"--kind {kind}: unknown; choose one of {', '.join(kinds)}")
    check_available(kind)
    if kind == "gnn":
        return kinds[kind](epochs=args.epochs, rank_weight=args.rank_weight, seed=args.seed,
                           validation=args.validation)
    return kinds[kind]()


def _records(
    args: argparse.Namespace,
    db: Any,
    devices: Sequence[str],
    n: int | None,
    seed: int,
    exclude: dict[str, set[str]] | None = None,
    limit: int | None = None,
) -> list[Any]:
    """Rows of ``devices`` (``n`` random per device, or all; at most ``limit``) with their graphs."""
    from hwnas.predictors.dataset import attach_graphs, device_rows, subsample

    only = _arch_filter(args)
    rows = []
    for dev in devices:
        all_rows = device_rows(db, dev, args.runtime, args.config)
        if only is not None:
            all_rows = [r for r in all_rows if r.arch in only]
        dev_rows = subsample(all_rows, n, seed, (exclude or {}).get(dev, ()))
        if limit is not None and len(dev_rows) > limit:
            dev_rows = subsample(dev_rows, limit, seed + 1)
        rows += dev_rows
    return attach_graphs(rows, graph_resolver(args), workers=args.workers, on_progress=_graph_progress(args, "graphs"))


def _arch_filter(args: argparse.Namespace) -> set[str] | None:
    """The architecture strings of ``--archs FILE`` (blank lines and ``#`` comments skipped), or
    None when the flag is absent: then every measured model of the device is a candidate."""
    path = getattr(args, "only_archs", None)
    if not path:
        return None
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise CLIError(f"--archs {path}: {exc.strerror or exc}") from None
    only = {ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")}
    if not only:
        raise CLIError(f"--archs {path}: no architectures in the file")
    return only


def _spaces(records: Sequence[Any]) -> list[str]:
    return sorted({r.space for r in records if r.space})


def cmd_train(args: argparse.Namespace) -> int:
    from hwnas.cli.output import emit
    from hwnas.predictors.base import save_predictor

    if bool(args.device) == bool(args.devices):
        raise CLIError("give exactly one of --device D or --devices D1,D2,...")
    pred = _make(args.kind, args)
    with open_db(args.db) as db:
        if args.devices == "all":
            devices = sorted({d.name for d in db.devices()})
        else:
            devices = [args.device] if args.device else [d.strip() for d in args.devices.split(",") if d.strip()]
        records = _records(args, db, devices, args.samples, args.seed)
    from hwnas.predictors.calibration import calibrate

    t0 = time.perf_counter()
    pred.fit(records)
    took = time.perf_counter() - t0
    if args.calibration_folds:
        t1 = time.perf_counter()
        calibrate(pred, records, folds=args.calibration_folds, seed=args.seed)
        calibrate_s = time.perf_counter() - t1
    trained_on: dict[str, list[str]] = {}
    for r in records:
        trained_on.setdefault(r.device, []).append(r.key)
    save_predictor(pred, args.out, {"spaces": _spaces(records), "devices": pred.devices, "trained_on": trained_on})
    out = {"out": args.out, "kind": args.kind, "devices": pred.devices, "records": len(records), "fit_s": round(took, 2)}
    stop = ""
    if getattr(pred, "n_validation_", 0):
        out["best_epoch"], out["n_validation"] = pred.best_epoch_, pred.n_validation_
        stop = f", kept epoch {pred.best_epoch_} of {args.epochs} (lowest error on {pred.n_validation_} held-out models)"
    how = "uncalibrated intervals (--calibration-folds 0)"
    if args.calibration_folds:
        out["calibrate_s"] = round(calibrate_s, 2)
        how = f"intervals calibrated by {args.calibration_folds}-fold refits in {calibrate_s:.1f} s"
    emit(out, args.json, f"trained {args.kind} on {len(records)} measurements of {len(pred.devices)} device(s) in {took:.1f} s"
         f"{stop}, {how} -> {args.out}")
    return 0


def _require_gnn(pf: Any, path: str) -> Any:
    if pf.predictor.kind != "gnn" or len(pf.predictor.devices) < 1:
        raise CLIError(f"{path}: adapting and suggesting need a GNN predictor (this one is {pf.predictor.kind!r})")
    return pf.predictor


def cmd_adapt(args: argparse.Namespace) -> int:
    from hwnas.cli.output import emit
    from hwnas.predictors.adapt import MIN_SAMPLES, HeadPrior, adapt_head
    from hwnas.predictors.base import save_predictor

    pf = load_predictor_file(args.base)
    base = _require_gnn(pf, args.base)
    with open_db(args.db) as db:
        records = _records(args, db, [args.device], args.samples, args.seed)
    emb = base.embed([r.graph for r in records])
    prior = HeadPrior.from_heads(*base.heads())
    log_y = np.log([r.latency_ms for r in records])
    res = adapt_head(prior, emb, log_y)
    name = args.name or args.device
    adapted = base.with_heads([name], res.w[None, :], np.array([res.b]))
    if getattr(base, "support_", None) is not None:
        adapted.support_ = base.support_.with_device(name, [r.latency_ms for r in records], [r.graph for r in records])
    if len(records) > MIN_SAMPLES:  # leave-one-out residuals calibrate the adapted device's interval
        loo = []
        for i in range(len(records)):
            keep = np.arange(len(records)) != i
            r_i = adapt_head(prior, emb[keep], log_y[keep])
            loo.append(float(log_y[i] - (emb[i] @ r_i.w + r_i.b)))
        adapted.calibration_ = {name: np.asarray(loo)}
    fp = dict(pf.fingerprint)
    fp.update(
        devices=[name],
        base_devices=base.devices,
        trained_on={name: [r.key for r in records]},
        adaptation={"samples": len(records), "prior_scale": res.prior_scale, "noise_var": res.noise_var},
    )
    fp.pop("hwnas", None)
    fp.pop("encoder_version", None)
    save_predictor(adapted, args.out, fp)
    out = {"out": args.out, "device": name, "samples": len(records), "prior_scale": res.prior_scale, "noise_var": res.noise_var}
    emit(out, args.json, f"adapted to {name} from {len(records)} measured models (prior scale {res.prior_scale}, noise var {res.noise_var:g}) -> {args.out}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from hwnas.cli.output import emit
    from hwnas.predictors.metrics import evaluate

    pf = load_predictor_file(args.model)
    pred = pf.predictor
    device = args.device
    used = set(pf.fingerprint.get("trained_on", {}).get(device, []))
    with open_db(args.db) as db:
        records = _records(args, db, [device], None, 0, {device: used}, limit=args.limit)
    if len(records) < 2:
        raise CLIError(f"device {device!r}: fewer than 2 measured models that the predictor was not trained on")
    target = device if device in pred.devices else None
    if target is None and len(pred.devices) != 1:
        raise CLIError(f"unknown device {device!r} for this predictor; it knows: {', '.join(pred.devices)} (adapt it first)")
    from hwnas.predictors.calibration import coverage
    from hwnas.predictors.support import predict_interval

    y = np.array([r.latency_ms for r in records])
    p = predict_interval(pred, [r.graph for r in records], device=target, level=args.level)
    yhat = p.mean_ms
    metrics = evaluate(y, yhat)
    metrics.update(level=args.level, coverage=coverage(y, p.low_ms, p.high_ms), extrapolated=int(p.extrapolated.sum()),
                   calibrated=bool(getattr(pred, "calibration_", None)))
    flops = np.array([r.graph.flops for r in records], dtype=float)
    from scipy.stats import spearmanr

    metrics["flops_spearman"] = float(spearmanr(flops, y).statistic)
    metrics.update(device=device, model=args.model, kind=pred.kind, excluded_training_rows=len(used))
    text = (
        f"{pred.kind} on {device}: {metrics['n']} held-out models  Spearman {metrics['spearman']:.4f}  "
        f"Kendall tau-b {metrics['kendall_tau_b']:.4f}  MAPE {metrics['mape']:.1%}  "
        f"within ±5% {metrics['within_5pct']:.1%}  ±10% {metrics['within_10pct']:.1%}  "
        f"(FLOPs Spearman {metrics['flops_spearman']:.4f}); {args.level:.0%} interval covers {metrics['coverage']:.1%}"
        f"{'' if metrics['calibrated'] else ' (uncalibrated)'}, {metrics['extrapolated']} extrapolated"
    )
    emit(metrics, args.json, text)
    return 0


def _space_archs(args: argparse.Namespace, pf: Any) -> tuple[Any, list[Any]]:
    from hwnas.cli.export import read_arch_file, sample_distinct
    from hwnas.space import get_space

    space = get_space(args.space)
    spaces = pf.fingerprint.get("spaces") or []
    if spaces and space.name not in spaces:
        raise CLIError(f"the predictor was trained on {', '.join(spaces)} models, not {space.name}: train one on {space.name}")
    if getattr(args, "all", False):
        if not space.is_finite_enumerable:
            raise CLIError(f"--all: space {space.name} is too large; use --archs FILE or --pool N")
        return space, list(space.enumerate())
    if getattr(args, "archs", None):
        return space, read_arch_file(space, args.archs)
    n = getattr(args, "pool", None)
    if n:
        return space, sample_distinct(space, min(n, space.size), args.seed)
    raise CLIError("choose --all or --archs FILE")


def _graphs(args: argparse.Namespace, space: Any, archs: Sequence[Any]) -> list[Any]:
    return graph_resolver(args).graphs_for([(None, space.name, a.spec) for a in archs], workers=args.workers, on_progress=_graph_progress(args, "graphs"))


def cmd_predict(args: argparse.Namespace) -> int:
    from hwnas.cli.output import emit
    from hwnas.fileio import atomic_write_bytes

    from hwnas.predictors.support import RANGE_FACTOR, predict_interval

    pf = load_predictor_file(args.model)
    pred = pf.predictor
    space, archs = _space_archs(args, pf)
    if pred.kind == "gnn":
        pred._device_index(args.device)  # an unknown device fails before any work
        t0 = time.perf_counter()
        raw = np.exp(pred.predict_log_from_embedding(_embeddings(args, pred, space, archs), args.device))
        graphs = _graphs(args, space, archs)
    else:
        graphs = _graphs(args, space, archs)
        t0 = time.perf_counter()
        raw = pred.predict(graphs, device=args.device)
    p = predict_interval(pred, graphs, device=args.device, level=args.level, raw_ms=raw)
    took = time.perf_counter() - t0
    buf = io.StringIO()
    w = csv.writer(buf)
    pct = f"{args.level:.0%}"
    w.writerow(["arch", "latency_ms", f"low_ms_{pct}", f"high_ms_{pct}", "extrapolated"])
    for a, v, lo, hi, ex in zip(archs, p.mean_ms, p.low_ms, p.high_ms, p.extrapolated):
        w.writerow([a.spec, f"{v:.6g}", f"{lo:.6g}", f"{hi:.6g}", int(ex)])
    atomic_write_bytes(Path(args.out), buf.getvalue().encode())
    n_ex = int(p.extrapolated.sum())
    calibrated = bool(getattr(pred, "calibration_", None))
    emit({"out": args.out, "models": len(archs), "predict_s": round(took, 3), "extrapolated": n_ex,
          "level": args.level, "calibrated": calibrated}, args.json,
         f"predicted {len(archs)} {space.name} models in {took:.2f} s -> {args.out}; {pct} intervals "
         f"({'calibrated' if calibrated else 'UNCALIBRATED: a default width'}); {n_ex} extrapolated (outside the "
         f"training support: kept within {RANGE_FACTOR:g}x of the training range and the baseline's band)")  # fmt: skip
    return 0


def cmd_suggest(args: argparse.Namespace) -> int:
    from hwnas.cli.output import emit
    from hwnas.fileio import atomic_write_bytes
    from hwnas.predictors.adapt import HeadPrior, select_informative

    pf = load_predictor_file(args.base)
    base = _require_gnn(pf, args.base)
    space, archs = _space_archs(args, pf)
    if not 1 <= args.k <= len(archs):
        raise CLIError(f"-k must be between 1 and the {len(archs)} candidates, got {args.k}")
    emb = _embeddings(args, base, space, archs)
    w, b = base.heads()
    picks = select_informative(HeadPrior.from_heads(w, b), emb, args.k)
    chosen = [archs[i].spec for i in picks]
    atomic_write_bytes(Path(args.out), ("\n".join(chosen) + "\n").encode())
    emit({"out": args.out, "archs": chosen}, args.json,
         f"{len(chosen)} {space.name} models to profile -> {args.out}\n"
         f"next: hwnas export --space {space.name} --archs {args.out} --out DIR; device_agent run --models DIR")  # fmt: skip
    return 0


def add_parsers(sub: Any, default_db: str) -> None:
    """Register ``hwnas predictor ...``."""
    p = sub.add_parser("predictor", help="latency predictors: train, adapt to a new device, eval, predict, suggest")
    ps = p.add_subparsers(dest="predictor_command", metavar="SUBCOMMAND", required=True)

    def common(q: argparse.ArgumentParser, db: bool = True) -> None:
        if db:
            q.add_argument("--db", default=default_db, help=f"latency database (default {default_db})")
            q.add_argument("--runtime", help="only measurements of this runtime (needed when a device has several)")
            q.add_argument("--config", metavar="HASH", help=CONFIG_HELP)
            q.add_argument("--archs", dest="only_archs", metavar="FILE",
                           help="only the measured models whose architecture string is listed in FILE, one per line "
                                "(e.g. the file `predictor suggest` wrote)")
        q.add_argument("--models", action="append", metavar="DIR", help="candidate folder(s) holding the ONNX files of measured models (repeatable)")
        q.add_argument("--cache", metavar="DIR", help="graph encoding cache (default $HWNAS_CACHE/graphs or .hwnas/cache/graphs)")
        q.add_argument("--workers", type=int, default=1, help="processes encoding graphs not yet cached (default 1)")
        q.add_argument("--seed", type=int, default=0, help="seed of sampling and training (default 0)")
        q.add_argument("--json", action="store_true", help="print JSON")

    q = ps.add_parser("train", help="fit a predictor on measured models of one or several devices")
    q.add_argument("--device", help="a single device (name or id)")
    q.add_argument("--devices", help="several devices, comma-separated, or 'all' (GNN: one head per device)")
    q.add_argument("--kind", choices=KINDS, default="gnn", help="predictor kind (default gnn)")
    q.add_argument("--samples", type=int, help="train on N random measured models per device (default: all)")
    q.add_argument("--epochs", type=int, default=80, help="GNN training epochs (default 80)")
    q.add_argument("--rank-weight", type=float, default=0.0, help="GNN: weight of a pairwise ranking loss (default 0)")
    q.add_argument("--validation", type=_share, default=0.1, metavar="SHARE",
                   help="GNN: share of the models held out to stop early (the epoch with the lowest held-out "
                        "error is kept; used from ~200 models up; 0 = train every epoch on all) (default 0.1)")
    q.add_argument("--calibration-folds", type=int, default=5, metavar="K",
                   help="calibrate the predictive intervals on K out-of-fold refits (K extra fits; 0 = off, "
                        "intervals then have a default width) (default 5)")
    q.add_argument("--out", required=True, help="predictor file to write (JSON)")
    common(q)
    q.set_defaults(func=cmd_train)

    q = ps.add_parser("adapt", help="adapt a multi-device GNN to a new device from K of its measured models")
    q.add_argument("--base", required=True, help="pre-trained GNN predictor file, or the name of a shipped one (nb201-public)")
    q.add_argument("--device", required=True, help="the new device (as named in --db)")
    q.add_argument("--samples", type=int, help="use K random measured models of the device (default: all of them)")
    q.add_argument("--name", help="device name in the adapted file (default --device)")
    q.add_argument("--out", required=True, help="adapted predictor file to write")
    common(q)
    q.set_defaults(func=cmd_adapt)

    q = ps.add_parser("eval", help="Spearman, Kendall tau-b, MAPE, ±5%%/±10%% on measured models not used for training")
    q.add_argument("--model", required=True, help="predictor file")
    q.add_argument("--device", required=True, help="device to evaluate on")
    q.add_argument("--limit", type=int, help="score at most N random held-out models (ONNX files of unseen models cost ~0.1 s each to encode)")
    q.add_argument("--level", type=float, default=0.9, help="nominal coverage of the predictive interval (default 0.9)")
    common(q)
    q.set_defaults(func=cmd_eval)

    q = ps.add_parser("predict", help="predict the latency of architectures of a space into a CSV (arch, latency_ms)")
    q.add_argument("--model", required=True, help="predictor file")
    q.add_argument("--space", required=True, choices=("nb201", "macro"), help="search space")
    q.add_argument("--all", action="store_true", help="every architecture of the space (nb201)")
    q.add_argument("--archs", metavar="FILE", help="architectures, one string per line")
    q.add_argument("--device", help="device of a multi-device predictor")
    q.add_argument("--out", required=True, help="CSV file to write: arch, latency_ms, the interval's ends, extrapolated")
    q.add_argument("--level", type=float, default=0.9, help="nominal coverage of the predictive interval (default 0.9)")
    common(q, db=False)
    q.set_defaults(func=cmd_predict)

    q = ps.add_parser("suggest", help="pick K informative models to profile on a new device (for hwnas export --archs)")
    q.add_argument("--base", required=True, help="pre-trained multi-device GNN predictor file, or the name of a shipped one (nb201-public)")
    q.add_argument("--space", required=True, choices=("nb201", "macro"), help="search space")
    q.add_argument("-k", type=int, default=20, help="how many models (default 20)")
    q.add_argument("--pool", type=int, default=2000, help="candidates to choose from, sampled from the space (default 2000)")
    q.add_argument("--all", action="store_true", help="choose among every architecture of the space (nb201)")
    q.add_argument("--archs", metavar="FILE", help="choose among the architectures in FILE")
    q.add_argument("--out", required=True, help="file to write, one arch string per line")
    common(q, db=False)
    q.set_defaults(func=cmd_suggest)
