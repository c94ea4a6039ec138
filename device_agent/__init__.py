"""Device-side measurement agent for hwnas.

Runs ON the device (Raspberry Pi, Jetson, a CPU box): measures the latency of exported ONNX
candidates under a typed, documented protocol (:class:`device_agent.protocol.MeasureConfig`) in a
guarded worker process, fingerprints the device, and writes the results to a ``latency_db``
database. Depends on numpy and onnxruntime only (``onnx`` is used when present, for graph
summaries); it never imports torch or ``hwnas``.

Entry point: ``device_agent run --models DIR`` (see ``device_agent run --help``).
"""

from __future__ import annotations

__version__ = "0.1.0"

#: Version of the agent <-> host wire protocol (the JSON that ``device_agent run --json`` and
#: ``device_agent info --json`` print, read by ``hwnas profile --host``). Bump on breaking changes.
PROTOCOL_VERSION = 1

__all__ = ["PROTOCOL_VERSION", "__version__"]
