"""The records a predictor learns from, and the error every predictor raises (a leaf module: the
predictor base, the support and the calibration all import it)."""

from __future__ import annotations

from dataclasses import dataclass

from hwnas.graph.data import GraphData


@dataclass(frozen=True)
class LatencyRecord:
    """One training example: a model's graph, the device it ran on and its latency.

    Attributes:
        key: the model's identity (ONNX sha256, or ``"space:arch"`` for imported rows).
        graph: the model's graph.
        device: device name.
        latency_ms: measured (median) latency in milliseconds, > 0.
        space: search space of the model, if any.
        node_profile: per-node kernel times (ms) by ONNX node name, from ``device_agent run
            --profile-nodes``; None when not profiled.
    """

    key: str
    graph: GraphData
    device: str
    latency_ms: float
    space: str | None = None
    node_profile: dict[str, float] | None = None


class PredictorError(ValueError):
    """A predictor cannot do what was asked (unknown device, too few samples, bad file)."""


__all__ = ["LatencyRecord", "PredictorError"]
