"""The guarded worker process: start it, talk to it over JSON lines, kill it when it hangs.

:class:`Worker` is the parent's handle on one ``device_agent.worker`` process (started with this
interpreter). A request that gets no answer within its timeout raises :class:`WorkerTimeout` (the
worker is left running: the caller kills it); a worker that exits raises :class:`WorkerDied` with
a one-line description (signal, exit code, last stderr line). Both runners
(:mod:`device_agent.runner`, :mod:`device_agent.interleave`) pin these to the model in flight.
"""

from __future__ import annotations

import collections
import json
import os
import queue
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import IO, Any, Callable

from device_agent.protocol import one_line

_EOF = object()


class WorkerStartError(RuntimeError):
    """The worker process could not be started (not a property of any model)."""


class WorkerDied(Exception):
    """The worker process exited; ``description`` says how."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class WorkerTimeout(Exception):
    """No answer within the request's timeout (the worker may still be running)."""


# The worker imports the same device_agent as the parent: the folder holding this package goes
# first on sys.path unless it is already there (an installed package: leave the order alone).
_BOOTSTRAP = (
    "import sys; root = sys.argv.pop(1); "
    "root in sys.path or sys.path.insert(0, root); "
    "from device_agent.worker import main; sys.exit(main(sys.argv[1:]))"
)


def _package_root() -> str:
    return str(Path(__file__).resolve().parent.parent)


def _pump(stream: IO[str], sink: Callable[[Any], None], end: Any) -> None:
    try:
        for line in stream:
            sink(line)
    except (OSError, ValueError):
        pass
    finally:
        sink(end)


class Worker:
    """One worker process and the threads that drain its pipes."""

    def __init__(self, runtime: str, python: str, startup_timeout_s: float) -> None:
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        try:
            self.proc = subprocess.Popen(
                [python, "-c", _BOOTSTRAP, _package_root(), "--runtime", runtime],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True, encoding="utf-8", errors="replace", bufsize=1, env=env,
            )
        except OSError as exc:
            raise WorkerStartError(f"cannot start worker {python!r}: {exc}") from None
        self._lines: queue.Queue[Any] = queue.Queue()
        self._stderr: collections.deque[str] = collections.deque(maxlen=20)
        self._threads = [
            threading.Thread(target=_pump, args=(self.proc.stdout, self._lines.put, _EOF),
                             daemon=True),
            threading.Thread(target=_pump, args=(self.proc.stderr, self._on_stderr, None),
                             daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        try:
            ready = self._receive(startup_timeout_s)
        except WorkerTimeout:
            self.kill()
            raise WorkerStartError(f"worker did not start within {startup_timeout_s:g} s") from None
        except WorkerDied as died:
            raise WorkerStartError(f"worker failed to start: {died.description}") from None
        self.busy = False  # a request is in flight
        self.pid: int = int(ready.get("pid", self.proc.pid))
        self.runtime_info: dict[str, Any] = ready.get("runtime", {})

    def _on_stderr(self, line: str | None) -> None:
        if line is not None and line.strip():
            self._stderr.append(line.rstrip())

    def _describe_exit(self) -> str:
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.proc.returncode
        if code is not None and code < 0:
            try:
                name = signal.Signals(-code).name
                what = f"signal {-code} {name}"
            except ValueError:
                what = f"signal {-code}"
        else:
            what = f"exit code {code}"
        self._threads[1].join(timeout=1)
        tail = self._stderr[-1] if self._stderr else ""
        return what + (f"; stderr: {one_line(tail, 300)}" if tail else "")

    def _receive(self, timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WorkerTimeout()
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                raise WorkerTimeout() from None
            if line is _EOF:
                raise WorkerDied(self._describe_exit())
            try:
                message = json.loads(line)
            except ValueError:
                continue  # not protocol output
            if isinstance(message, dict):
                return message

    def request(self, message: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """Sends one request and waits for its answer.

        Raises:
            WorkerTimeout: no answer within ``timeout_s`` (the worker is left running).
            WorkerDied: the worker exited.
        """
        self.busy = True
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps(message) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            raise WorkerDied(self._describe_exit()) from None
        answer = self._receive(timeout_s)
        self.busy = False
        return answer

    def kill(self) -> None:
        """Kills the worker (SIGKILL on POSIX) and reaps it."""
        if self.proc.poll() is None:
            try:
                self.proc.kill()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - unkillable process
            pass
        self._close_pipes()

    def close(self, timeout_s: float = 5.0) -> None:
        """Asks the worker to exit; kills it if it does not within ``timeout_s``, or at once when
        a request is still in flight (e.g. interrupted by Ctrl-C)."""
        if self.proc.poll() is None and not self.busy:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps({"op": "exit"}) + "\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=timeout_s)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                pass
        self.kill()

    def _close_pipes(self) -> None:
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
