"""``hwnas space info`` and ``hwnas export``: a space's size and decisions; candidates to ONNX."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.cli.output import emit, progress_printer
from hwnas.errors import CLIError
from hwnas.space import SPACES, Arch, SearchSpace, get_space


def cmd_space_info(args: argparse.Namespace) -> int:
    space = get_space(args.space)
    info = {
        "space": space.name,
        "size": space.size,
        "vector_length": len(space.cardinalities),
        "cardinalities": list(space.cardinalities),
        "enumerable": space.is_finite_enumerable,
        "example": space.sample(np.random.default_rng(0)).spec,
    }
    text = (
        f"space {space.name}: {space.size:,} architectures ({space.size:.3g})\n"
        f"vector of {len(space.cardinalities)} decisions, choices per decision: {list(space.cardinalities)}\n"
        f"example: {info['example']}"
    )
    emit(info, args.json, text)
    return 0


# -- export --------------------------------------------------------------------------------------
def read_arch_file(space: SearchSpace, path: str) -> list[Arch]:
    p = Path(path)
    if not p.is_file():
        raise CLIError(f"--archs {path}: no such file")
    archs = []
    for n, line in enumerate(p.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            archs.append(space.parse(line))
        except ValueError as exc:
            raise CLIError(f"{path}:{n}: {exc}") from None
    if not archs:
        raise CLIError(f"--archs {path}: no architectures in the file (one arch string per line)")
    return list(dict.fromkeys(archs))


def sample_distinct(space: SearchSpace, n: int, seed: int) -> list[Arch]:
    """``n`` distinct architectures drawn with ``np.random.default_rng(seed)``."""
    if n < 1:
        raise CLIError(f"--sample must be a positive integer, got {n}")
    if n > space.size:
        raise CLIError(f"--sample {n} exceeds the {space.size} architectures of space {space.name!r}")
    rng = np.random.default_rng(seed)
    if space.is_finite_enumerable and hasattr(space, "from_index"):
        idx = rng.choice(space.size, size=n, replace=False)
        return [space.from_index(int(i)) for i in idx]  # type: ignore[attr-defined]
    seen: dict[Arch, None] = {}
    while len(seen) < n:
        seen.setdefault(space.sample(rng))
    return list(seen)


def cmd_export(args: argparse.Namespace) -> int:
    from hwnas.export import export_archs

    space = get_space(args.space)
    chosen = sum(x is not None and x is not False for x in (args.sample, args.archs, args.all))
    if chosen != 1:
        raise CLIError("choose exactly one of --sample N, --archs FILE, --all")
    if args.all:
        if not space.is_finite_enumerable:
            raise CLIError(f"--all: space {space.name!r} has {space.size:.3g} architectures; use --sample N")
        archs = list(space.enumerate())
    elif args.archs:
        archs = read_arch_file(space, args.archs)
    else:
        archs = sample_distinct(space, args.sample, args.seed)
    show = None if args.json else progress_printer()
    total = len(archs)
    counts = {"exported": 0, "skipped": 0}

    def on_progress(i: int, key: str, skipped: bool) -> None:
        counts["skipped" if skipped else "exported"] += 1
        if show:
            show(i, total, f"{key}{' (already there)' if skipped else ''}")

    entries = export_archs(space, archs, args.out, opset=args.opset, form=args.form, on_progress=on_progress)
    out = {"space": space.name, "form": args.form, "out": str(args.out), "models": len(entries), **counts}
    text = (
        f"{len(entries)} {space.name} candidates ({args.form} form) in {args.out} "
        f"({counts['exported']} exported, {counts['skipped']} already there); manifest: {Path(args.out) / 'manifest.jsonl'}"
    )
    emit(out, args.json, text)
    return 0


def add_parsers(sub: Any) -> None:
    """Register ``hwnas space info`` and ``hwnas export``."""
    p_space = sub.add_parser("space", help="inspect search spaces")
    space_sub = p_space.add_subparsers(dest="space_command", metavar="SUBCOMMAND", required=True)
    p_info = space_sub.add_parser("info", help="size and decisions of a search space")
    p_info.add_argument("--space", choices=SPACES, required=True, help="which space")
    p_info.add_argument("--json", action="store_true", help="print JSON")
    p_info.set_defaults(func=cmd_space_info)

    p_exp = sub.add_parser(
        "export",
        help="export candidates of a space to ONNX (+ manifest.jsonl) for device_agent",
        description=(
            "Write DIR/<key>.onnx and DIR/manifest.jsonl (arch, key, space, FLOPs, params, input shape, "
            "sha256). Deterministic: the same architecture gives the same bytes. Files already there with "
            "the recorded sha256 are kept, so an interrupted export resumes."
        ),
    )
    p_exp.add_argument("--space", choices=SPACES, required=True, help="search space of the architectures")
    p_exp.add_argument("--sample", type=int, metavar="N", help="export N distinct random architectures")
    p_exp.add_argument("--seed", type=int, default=0, help="seed of --sample (default 0)")
    p_exp.add_argument("--archs", metavar="FILE", help="export the architectures listed in FILE, one string per line")
    p_exp.add_argument("--all", action="store_true", help="export every architecture (nb201 only: 15,625)")
    p_exp.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    p_exp.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p_exp.add_argument(
        "--form",
        choices=("reference", "pruned"),
        default="reference",
        help="reference: every NB201 edge computed, as the published latency tables (default); "
        "pruned: the deployable cell without none edges and dead operations (same outputs)",
    )
    p_exp.add_argument("--json", action="store_true", help="print a JSON summary")
    p_exp.set_defaults(func=cmd_export)
