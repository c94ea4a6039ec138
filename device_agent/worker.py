"""Child side of the guarded worker process: ``python -m device_agent.worker --runtime NAME``.

The parent (:class:`device_agent.runner.Runner`) talks to this process over JSON lines:

* child -> parent, once started: ``{"op": "ready", "pid": int, "runtime": {...}}``
* parent -> child: ``{"op": "measure", "path": str, "config": {...MeasureConfig...}}``;
  child -> parent: ``{"op": "result", "result": {...MeasureResult.to_dict()...}}``
* parent -> child: ``{"op": "exit"}`` (or EOF on stdin): the child exits with code 0.

The protocol channel is a private duplicate of the original stdout; file descriptor 1 is pointed
at stderr so that anything a native library prints cannot corrupt the channel. SIGINT is ignored:
the parent decides when the worker stops (Ctrl-C in a terminal reaches the whole process group).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from typing import IO, Any

from latency_db.records import Status

from device_agent.protocol import MeasureConfig, MeasureResult


def _send(channel: IO[str], message: dict[str, Any]) -> None:
    channel.write(json.dumps(message) + "\n")
    channel.flush()


def serve(runtime: str, requests: IO[str], channel: IO[str]) -> int:
    """Answers measure requests from ``requests`` on ``channel`` until exit or EOF.

    Returns:
        The process exit code (0).
    """
    from device_agent.runtimes import measure_file, preload

    info = preload(runtime)
    _send(channel, {"op": "ready", "pid": os.getpid(), "runtime": info})
    for line in requests:
        if not line.strip():
            continue
        request = json.loads(line)
        op = request.get("op")
        if op == "exit":
            break
        if op != "measure":
            _send(channel, {"op": "error", "error": f"unknown op {op!r}"})
            continue
        try:
            result = measure_file(request["path"], MeasureConfig.from_dict(request["config"]))
        except Exception as exc:  # noqa: BLE001 - failures are data
            result = MeasureResult.failure(Status.ERROR, f"{type(exc).__name__}: {exc}")
        _send(channel, {"op": "result", "result": result.to_dict()})
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the worker process (not meant to be run by hand)."""
    parser = argparse.ArgumentParser(prog="python -m device_agent.worker")
    parser.add_argument("--runtime", default="onnxruntime")
    args = parser.parse_args(argv)
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not main thread / platform
        pass
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    try:
        return serve(args.runtime, sys.stdin, channel)
    finally:
        channel.close()


if __name__ == "__main__":
    sys.exit(main())
