"""``hwnas tvm tune``: one shared TVM tuning database for a search space, tuned once per device.

Exports a sample of the space (or takes ``--models``), then runs ``device_agent tvm-tune`` on it in
a child process (the device-side code, which never imports torch: the same command runs on a
board), streaming its progress. Any candidate of the space then compiles against the database at
tuned speed with ``device_agent run --runtime tvm --tvm-db DIR`` (or ``hwnas profile --tvm-db``).

    hwnas tvm tune --space nb201 --sample 30 --trials-per-task 32 --threads 1 --out tvm-db/
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from hwnas.errors import CLIError


def _agent_argv(args: argparse.Namespace, models: Path) -> list[str]:
    argv = [sys.executable, "-m", "device_agent", "tvm-tune", "--models", str(models), "--db", str(args.out),
            "--trials-per-task", str(args.trials_per_task), "--threads", str(args.threads), "--jobs", str(args.jobs),
            "--cost-model", args.cost_model, "--strategy", args.strategy, "--seed", str(args.seed),
            "--space", args.space or "", "--json"]  # fmt: skip
    return argv + (["--tvm-target", args.tvm_target] if args.tvm_target else [])


def cmd_tvm_tune(args: argparse.Namespace) -> int:
    """Export the sample (unless ``--models``) and run ``device_agent tvm-tune`` on it."""
    from hwnas.cli.output import emit

    if bool(args.models) == bool(args.space and args.sample):
        raise CLIError("give either --space S --sample N (candidates exported here) or --models DIR")
    if args.trials_per_task < 1:
        raise CLIError(f"--trials-per-task must be a positive integer, got {args.trials_per_task}")
    with tempfile.TemporaryDirectory(prefix="hwnas-tvm-tune-") as tmp:
        models = Path(args.models) if args.models else Path(tmp) / "candidates"
        if not args.models:
            from hwnas.cli.export import sample_distinct
            from hwnas.export import export_archs
            from hwnas.space import get_space

            space = get_space(args.space)
            export_archs(space, sample_distinct(space, args.sample, args.seed), models, form=args.form)
        proc = subprocess.Popen(_agent_argv(args, models), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        last = error = ""
        assert proc.stderr is not None and proc.stdout is not None
        for line in proc.stderr:
            last = line.strip() or last
            if line.startswith("device_agent: error: "):  # ours to report, once
                error = line.strip().removeprefix("device_agent: error: ")
            elif not args.json:
                print(line.rstrip(), file=sys.stderr, flush=True)
        out, code = proc.stdout.read(), proc.wait()
    if code != 0:
        raise CLIError(f"device_agent tvm-tune failed (exit {code}): {error or last}")
    manifest = json.loads(out)
    r = manifest["runs"][-1]
    text = (f"{args.out}: {r['unique_tasks']} unique task(s) in {r['models']} model(s), {r['tuned_tasks']} tuned x "
            f"{r['trials_per_task']} trials in {r['tuning_s']} s ({r['cpu_s']} CPU s); target "
            f"{json.dumps(manifest['target'], sort_keys=True)}; content {manifest['content_sha256'][:16]}\n"
            f"use it: device_agent run --runtime tvm --tvm-db {args.out} ...")  # fmt: skip
    emit(manifest, args.json, text)
    return 0


def add_parsers(sub: Any) -> None:
    """Register ``hwnas tvm tune``."""
    from hwnas.space import SPACES

    p = sub.add_parser("tvm", help="TVM: tune a search space once into a shared database")
    tsub = p.add_subparsers(dest="tvm_command", metavar="SUBCOMMAND", required=True)
    q = tsub.add_parser(
        "tune", help="tune the TVM tasks of a sample of a space into one database shared by all its candidates",
        description="Export --sample N candidates of --space (or take --models DIR), extract their TVM tasks after the "
        "passes the compile uses, dedupe identical workloads across models (anchor-block equality: a conv with another "
        "fused epilogue is the same task), skip those the database in --out already holds, tune the rest with "
        "--trials-per-task MetaSchedule trials each and store a MetaSchedule JSON database with a manifest in --out. "
        "Runs `device_agent tvm-tune` (no torch) in a child process.",
    )  # fmt: skip
    q.add_argument("--space", choices=SPACES, help="search space to sample")
    q.add_argument("--sample", type=int, metavar="N", help="candidates to export and extract tasks from")
    q.add_argument("--seed", type=int, default=0, help="seed of --sample and of the search (default 0)")
    q.add_argument("--form", choices=("reference", "pruned"), default="reference", help="export form (as hwnas export)")
    q.add_argument("--models", metavar="DIR", help="tune these .onnx files instead of a fresh sample")
    q.add_argument("--out", required=True, metavar="DIR", help="database folder (created, or extended)")
    q.add_argument("--trials-per-task", type=int, default=32, metavar="T", help="MetaSchedule trials per unique task")
    q.add_argument("--threads", type=int, default=0, metavar="N",
                   help="num-cores of the target: the threads the models will run with (0: all cores)")
    q.add_argument("--tvm-target", metavar="JSON", help="target as a JSON object (default: this CPU with its mcpu)")
    q.add_argument("--jobs", type=int, default=0, metavar="N", help="parallel builds while tuning (0: all cores)")
    q.add_argument("--cost-model", choices=("random", "xgb", "mlp"), default="random",
                   help="random (default) needs nothing; xgb needs xgboost, mlp torch")
    q.add_argument("--strategy", choices=("evolutionary", "replay-trace"), default="evolutionary",
                   help="MetaSchedule search strategy (replay-trace: independent random samples)")
    q.add_argument("--json", action="store_true", help="print the database's manifest as JSON")
    q.set_defaults(func=cmd_tvm_tune)
