"""``hwnas profile``: measure candidates on a remote device over SSH into the host's latency DB."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from hwnas.errors import CLIError


def cmd_profile(args: argparse.Namespace) -> int:
    """Run :func:`hwnas.remote.profile.profile_remote` for ``--host``; one-line errors."""
    from hwnas.cli import emit
    from hwnas.remote.profile import AgentFlags, profile_remote
    from hwnas.remote.ssh import HostKeyError, SSHTarget

    try:
        target = SSHTarget.parse(args.host)
        if args.identity:
            target = SSHTarget(target.host, target.user, target.port, args.identity)
        target = target.with_ssh_config(args.ssh_config)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    if args.retries < 0:
        raise CLIError(f"--retries must be >= 0, got {args.retries}")
    flags = AgentFlags(args.runtime, args.threads, args.warmup, args.repeats, args.min_repeat_ms, args.timeout_s,
                       args.device_name)  # fmt: skip
    show = (lambda line: None) if args.json else (lambda line: print(f"[{target.host}] {line}", file=sys.stderr))
    try:
        summary = profile_remote(target, Path(args.models), args.db, python=args.python, known_hosts=args.known_hosts,
                                 accept_new=args.accept_new_host_key, remote_dir=args.remote_dir, flags=flags,
                                 retries=args.retries, connect_timeout_s=args.connect_timeout_s,
                                 install=not args.no_install, on_line=show)  # fmt: skip
    except (HostKeyError, ConnectionError, RuntimeError, ValueError) as exc:
        raise CLIError(" ".join(str(exc).split())) from None
    m = summary["merged"]
    emit(summary, args.json, f"{target.host}: uploaded {summary['uploaded']} model(s) ({summary['already_there']} already "
         f"there), agent exit {summary['agent_exit']}; merged {m.get('measurements', 0)} new measurement(s) "
         f"({m.get('measurements_skipped', 0)} already in {args.db})")  # fmt: skip
    return 0 if summary["agent_exit"] == 0 else 1


def add_parser(sub: Any, default_db: str) -> None:
    """Register ``hwnas profile``."""
    q = sub.add_parser(
        "profile", help="measure candidates on a remote device over SSH into the host latency DB",
        description="Uploads the .onnx files of --models to the device by SFTP (skipping those already there with "
        "the same sha256), runs `device_agent run` there with its progress streamed back, then merges the device's "
        "measurements into --db. Host keys are verified against known_hosts; an unknown key is refused unless "
        "--accept-new-host-key. Re-running resumes: nothing measured is lost or duplicated.",
    )  # fmt: skip
    q.add_argument("--host", required=True, help="[user@]host[:port], or a Host alias of ~/.ssh/config")
    q.add_argument("--models", required=True, help="folder of .onnx files (e.g. from hwnas export)")
    q.add_argument("--db", default=default_db, help=f"host latency database (default {default_db})")
    q.add_argument("--identity", help="private key file (default: ssh-agent, ~/.ssh keys, IdentityFile)")
    q.add_argument("--known-hosts", help="known_hosts file (default ~/.ssh/known_hosts)")
    q.add_argument("--accept-new-host-key", action="store_true", help="accept and record an unknown host key")
    q.add_argument("--ssh-config", help="ssh config file for Host aliases (default ~/.ssh/config)")
    q.add_argument("--python", default="python3", help="python on the device: the base of the agent's venv, or with "
                   "--no-install the one that runs device_agent (default python3)")
    q.add_argument("--no-install", action="store_true", help="use the agent already installed on the device instead "
                   "of deploying a wheel of this checkout into REMOTE_DIR/venv (numpy and onnxruntime from the device's "
                   "package index)")
    q.add_argument("--remote-dir", default=".hwnas-agent", help="working folder on the device (default ~/.hwnas-agent)")
    q.add_argument("--retries", type=int, default=2, help="reconnects after a dropped connection (default 2)")
    q.add_argument("--connect-timeout-s", type=float, default=15.0, help="seconds to wait for the device (default 15)")
    a = q.add_argument_group("agent flags (passed to device_agent run)")
    a.add_argument("--runtime")
    a.add_argument("--threads", type=int)
    a.add_argument("--warmup", type=int)
    a.add_argument("--repeats", type=int)
    a.add_argument("--min-repeat-ms", type=float)
    a.add_argument("--timeout-s", type=float)
    a.add_argument("--device-name")
    q.add_argument("--json", action="store_true", help="print the summary as JSON")
    q.set_defaults(func=cmd_profile)
