"""Child side of the guarded worker process: ``python -m device_agent.worker --runtime NAME``.

The parent (:class:`device_agent.runner.Runner`) talks to this process over JSON lines:

* child -> parent, once started: ``{"op": "ready", "pid": int, "runtime": {...}}``
* parent -> child: ``{"op": "measure", "path": str, "config": {...MeasureConfig...}}``;
  child -> parent: ``{"op": "result", "result": {...MeasureResult.to_dict()...}}``
* parent -> child: ``{"op": "exit"}`` (or EOF on stdin): the child exits with code 0.

The ``interleaved`` protocol keeps several models loaded and drives every visit from the parent,
so that a crash or a hang is always pinned to the model in flight:

* ``{"op": "load", "id": str, "path": str, "config": {...}, "number": int | null}`` ->
  ``{"op": "loaded", "id", "number", "environment"}`` or ``{"op": "failed", "id", "result": {...}}``
* ``{"op": "visit", "id": str}`` -> ``{"op": "visited", "id", "ms": float}`` or ``{"op": "failed", ...}``
  (a run failure unloads the model)
* ``{"op": "profile", "id": str}`` -> ``{"op": "profiled", "id", "node_profile_ms": {...}}``
  (``--profile-nodes``; onnxruntime only) or ``{"op": "profiled", "id", "error": str}``
* ``{"op": "unload", "id": str}`` -> ``{"op": "unloaded", "id"}``

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
    loaded: dict[str, tuple[Any, str, MeasureConfig]] = {}
    sessions: dict[str, Any] = {}  # TVM RPC address -> the one session every loaded model shares
    for line in requests:
        if not line.strip():
            continue
        request = json.loads(line)
        op = request.get("op")
        if op == "exit":
            break
        if op == "measure":
            try:
                result = measure_file(request["path"], MeasureConfig.from_dict(request["config"]))
            except Exception as exc:  # noqa: BLE001 - failures are data
                result = MeasureResult.failure(Status.ERROR, f"{type(exc).__name__}: {exc}")
            _send(channel, {"op": "result", "result": result.to_dict()})
        elif op in ("load", "visit", "profile", "unload"):
            _send(channel, _interleaved_op(op, request, loaded, sessions))
        else:
            _send(channel, {"op": "error", "error": f"unknown op {op!r}"})
    return 0


def _interleaved_op(op: str, request: dict[str, Any], loaded: dict[str, tuple[Any, str, MeasureConfig]],
                    sessions: dict[str, Any]) -> dict[str, Any]:
    """Answers one ``load``/``visit``/``profile``/``unload`` request (see the module docstring);
    ``sessions`` holds the worker's TVM RPC sessions, one per address, shared by its loaded models."""
    from device_agent.runtimes import open_timer

    ident = str(request.get("id"))
    if op == "load":
        config = MeasureConfig.from_dict(request["config"])
        timer, failure, env = open_timer(request["path"], config, request.get("number"), sessions)
        if timer is None:
            assert failure is not None
            return {"op": "failed", "id": ident, "result": failure.to_dict()}
        loaded[ident] = (timer, request["path"], config)
        return {"op": "loaded", "id": ident, "number": timer.number, "environment": env}
    if op == "unload":
        loaded.pop(ident, None)
        return {"op": "unloaded", "id": ident}
    if ident not in loaded:
        return {"op": "error", "error": f"model {ident!r} is not loaded"}
    timer, path, config = loaded[ident]
    if op == "profile":
        try:
            from device_agent.runtimes import ort

            return {"op": "profiled", "id": ident, "node_profile_ms": ort.profile_nodes(path, config, timer.feeds)}
        except Exception as exc:  # noqa: BLE001 - the timing stands; the profile is extra
            return {"op": "profiled", "id": ident, "error": f"{type(exc).__name__}: {exc}"}
    try:
        return {"op": "visited", "id": ident, "ms": timer.visit()}
    except Exception as exc:  # noqa: BLE001 - failures are data
        loaded.pop(ident, None)
        failure = MeasureResult.failure(Status.ERROR, f"run failed: {type(exc).__name__}: {exc}")
        return {"op": "failed", "id": ident, "result": failure.to_dict()}


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
