"""``hwnas profile``: measure candidates on a remote device over SSH into the host's latency DB."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from hwnas.errors import CLIError


class FleetDisplay:
    """One status line per device: redrawn in place on a terminal, else printed as ``[name] text``."""

    def __init__(self, names: list[str], stream: Any = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.names = names
        self.status = {n: "waiting" for n in names}
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.drawn = False

    def update(self, name: str, text: str) -> None:
        self.status[name] = text
        if not self.tty:
            print(f"[{name}] {text}", file=self.stream, flush=True)
            return
        if self.drawn:
            self.stream.write(f"\x1b[{len(self.names)}A")
        width = max(len(n) for n in self.names)
        for n in self.names:
            self.stream.write(f"\r\x1b[K{n:<{width}}  {self.status[n][:100]}\n")
        self.stream.flush()
        self.drawn = True


def _flags(args: argparse.Namespace) -> Any:
    from hwnas.remote.profile import AgentFlags

    names = ("runtime", "threads", "warmup", "repeats", "min_repeat_ms", "timeout_s", "device_name", "tvm_target",
             "tvm_tune_trials", "tvm_db", "protocol", "min_rounds", "max_rounds", "target_ci", "time_cap_s", "batch_size")
    return AgentFlags(**{name: getattr(args, name, None) for name in names})


def cmd_fleet(args: argparse.Namespace) -> int:
    """``--inventory``: profile every device of the file concurrently into ``--db``."""
    from hwnas.cli.output import emit
    from hwnas.remote.inventory import load_inventory, profile_fleet

    if args.device_name:
        raise CLIError("--device-name is per device in an inventory (its name field); drop it")
    try:
        devices = load_inventory(args.inventory)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    display = FleetDisplay([d.name for d in devices])
    results = profile_fleet(devices, Path(args.models), args.db, flags=_flags(args), known_hosts=args.known_hosts,
                            accept_new=args.accept_new_host_key, install=not args.no_install, ssh_config=args.ssh_config,
                            retries=args.retries, connect_timeout_s=args.connect_timeout_s,
                            on_status=(lambda n, t: None) if args.json else display.update)  # fmt: skip
    from hwnas.remote.profile import merged_text

    text = "\n".join(f"{r['name']}: " + (f"ok, {merged_text(r['merged'])}" if r["ok"]
                                         else f"FAILED: {r.get('error') or 'agent exit ' + str(r.get('agent_exit'))}")
                     for r in results)  # fmt: skip
    emit({"devices": results, "db": args.db}, args.json, text)
    return 0 if all(r["ok"] for r in results) else 1


def cmd_profile(args: argparse.Namespace) -> int:
    """Run :func:`hwnas.remote.profile.profile_remote` for ``--host`` (or :func:`cmd_fleet` for
    ``--inventory``); one-line errors."""
    from hwnas.cli.output import emit
    from hwnas.remote.profile import profile_remote
    from hwnas.remote.ssh import HostKeyError, SSHTarget

    if args.retries < 0:
        raise CLIError(f"--retries must be >= 0, got {args.retries}")
    if args.inventory:
        return cmd_fleet(args)
    try:
        target = SSHTarget.parse(args.host)
        if args.identity:
            target = SSHTarget(target.host, target.user, target.port, args.identity)
        target = target.with_ssh_config(args.ssh_config)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    flags = _flags(args)
    show = (lambda line: None) if args.json else (lambda line: print(f"[{target.host}] {line}", file=sys.stderr))
    try:
        summary = profile_remote(target, Path(args.models), args.db, python=args.python, known_hosts=args.known_hosts,
                                 accept_new=args.accept_new_host_key, remote_dir=args.remote_dir, flags=flags,
                                 retries=args.retries, connect_timeout_s=args.connect_timeout_s,
                                 install=not args.no_install, on_line=show)  # fmt: skip
    except (HostKeyError, ConnectionError, RuntimeError, ValueError) as exc:
        raise CLIError(" ".join(str(exc).split())) from None
    from hwnas.remote.profile import merged_text

    m = summary["merged"]
    emit(summary, args.json, f"{target.host}: uploaded {summary['uploaded']} model(s) ({summary['already_there']} already "
         f"there), agent exit {summary['agent_exit']}; merged {merged_text(m)} "
         f"({m.get('measurements_skipped', 0)} already in {args.db})")  # fmt: skip
    return 0 if summary["agent_exit"] == 0 else 1


def add_ssh_flags(group: Any, scope: str = "") -> None:
    """The SSH flags of ``hwnas profile`` (and of ``hwnas search --host``: ``scope`` prefixes
    their help): ``--identity``, ``--known-hosts``, ``--accept-new-host-key``, ``--ssh-config``."""
    group.add_argument("--identity", help=f"{scope}private key file (default: ssh-agent, ~/.ssh keys, IdentityFile)")
    group.add_argument("--known-hosts", help=f"{scope}known_hosts file (default ~/.ssh/known_hosts)")
    group.add_argument("--accept-new-host-key", action="store_true", help=f"{scope}accept and record an unknown host key")
    group.add_argument("--ssh-config", help=f"{scope}ssh config file for Host aliases (default ~/.ssh/config)")


def add_parser(sub: Any, default_db: str) -> None:
    """Register ``hwnas profile``."""
    q = sub.add_parser(
        "profile", help="measure candidates on a remote device over SSH into the host latency DB",
        description="Uploads the .onnx files of --models to the device by SFTP (skipping those already there with "
        "the same sha256), runs `device_agent run` there with its progress streamed back, then merges the device's "
        "measurements into --db. Host keys are verified against known_hosts; an unknown key is refused unless "
        "--accept-new-host-key. Re-running resumes: nothing measured is lost or duplicated.",
    )  # fmt: skip
    where = q.add_mutually_exclusive_group(required=True)
    where.add_argument("--host", help="[user@]host[:port], or a Host alias of ~/.ssh/config")
    where.add_argument("--inventory", metavar="TOML", help="profile every [[device]] of this file concurrently "
                       "(fields: name, host, user, port, key, python, runtime, threads, remote_dir)")
    q.add_argument("--models", required=True, help="folder of .onnx files (e.g. from hwnas export)")
    q.add_argument("--db", default=default_db, help=f"host latency database (default {default_db})")
    add_ssh_flags(q)
    q.add_argument("--python", default="python3", help="python on the device: the base of the agent's venv, or with "
                   "--no-install the one that runs device_agent (default python3)")
    q.add_argument("--no-install", action="store_true", help="use the agent already installed on the device instead "
                   "of deploying a wheel of this checkout into REMOTE_DIR/venv (numpy and onnxruntime from the device's "
                   "package index)")
    q.add_argument("--remote-dir", default=".hwnas-agent", help="working folder on the device (default ~/.hwnas-agent)")
    q.add_argument("--retries", type=int, default=2, help="reconnects after a dropped connection (default 2)")
    q.add_argument("--connect-timeout-s", type=float, default=15.0, help="seconds to wait for the device (default 15)")
    a = q.add_argument_group("agent flags (passed to device_agent run)")
    a.add_argument("--runtime", help="onnxruntime (default) or tvm (deploys hwnas[tvm] on the device)")
    a.add_argument("--tvm-target", metavar="JSON", help="--runtime tvm: TVM target as a JSON object")
    a.add_argument("--tvm-tune-trials", type=int, help="--runtime tvm: MetaSchedule trials per model (0: untuned)")
    a.add_argument("--tvm-db", metavar="DIR", help="--runtime tvm: a shared tuning database (hwnas tvm tune, run on the "
                   "device or for its target): shipped to the device, every model compiled against it")
    a.add_argument("--threads", type=int)
    a.add_argument("--warmup", type=int)
    a.add_argument("--protocol", choices=("interleaved", "sequential"), help="measurement protocol (default "
                   "interleaved: batches in shuffled rounds with a drift reference; see device_agent run --help)")
    a.add_argument("--min-rounds", type=int, help="interleaved: rounds every model gets at least")
    a.add_argument("--max-rounds", type=int, help="interleaved: rounds no model goes beyond")
    a.add_argument("--target-ci", type=float, help="interleaved: stop a model at this relative interval half-width")
    a.add_argument("--time-cap-s", type=float, help="interleaved: seconds of rounds per model in a batch")
    a.add_argument("--batch-size", type=int, help="interleaved: models interleaved at once")
    a.add_argument("--repeats", type=int, help="sequential: timed repeats per model")
    a.add_argument("--min-repeat-ms", type=float)
    a.add_argument("--timeout-s", type=float)
    a.add_argument("--device-name")
    q.add_argument("--json", action="store_true", help="print the summary as JSON")
    q.set_defaults(func=cmd_profile)
