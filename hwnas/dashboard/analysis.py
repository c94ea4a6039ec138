"""The computed parts of the views: a predictor against a device's measurements, and the per-layer
cost of a codesign's chosen (network, accelerator) pair. Both are slow-ish (graphs, an ONNX export),
so the server caches them; both return plain dicts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from latency_db import LatencyDB

#: Most measured models a predictor is compared on (a random subset beyond that).
PREDICTOR_ROWS = 300


def predictor_vs_measured(db: LatencyDB, path: Path, device: str, *, limit: int = PREDICTOR_ROWS,
                          level: float = 0.9) -> dict[str, Any]:
    """Predicted (with its ``level`` interval) vs measured latency of ``device``'s measured models.

    Uses the newest ok latency per model under the device's one configuration
    (:func:`hwnas.predictors.dataset.device_rows`) and :func:`hwnas.predictors.support.predict_interval`.

    Returns:
        ``{"kind", "device", "n", "labels", "measured", "mean", "low", "high", "extrapolated",
        "trained" (per row: the predictor was fitted on it), "metrics"}`` where ``metrics`` holds
        ``spearman, mape, within_10pct, coverage, extrapolated, calibrated, n``.

    Raises:
        hwnas.predictors.records.PredictorError: unknown device, several configurations, no rows,
            or a device the predictor does not know (the message says which).
    """
    from hwnas.graph.cache import GraphCache, default_cache_dir
    from hwnas.graph.resolve import GraphResolver
    from hwnas.predictors import predictor_kinds
    from hwnas.predictors.base import load_predictor
    from hwnas.predictors.calibration import coverage
    from hwnas.predictors.dataset import attach_graphs, device_rows, subsample
    from hwnas.predictors.metrics import evaluate
    from hwnas.predictors.records import PredictorError
    from hwnas.predictors.support import predict_interval

    pf = load_predictor(str(path), predictor_kinds())
    pred = pf.predictor
    rows = device_rows(db, device)
    if len(rows) > limit:
        rows = subsample(rows, limit, 0)
    records = attach_graphs(rows, GraphResolver(GraphCache(default_cache_dir())))
    if device in pred.devices:
        target: str | None = device
    elif len(pred.devices) == 1:
        target = None
    else:
        raise PredictorError(f"this predictor knows {', '.join(pred.devices)}, not {device!r} (adapt it first)")
    y = np.array([r.latency_ms for r in records], dtype=float)
    p = predict_interval(pred, [r.graph for r in records], device=target, level=level)
    trained = set(pf.fingerprint.get("trained_on", {}).get(target or pred.devices[0], []))
    metrics: dict[str, Any] = {"n": len(records)}
    if len(records) >= 2:
        m = evaluate(y, p.mean_ms)
        metrics.update(spearman=m.get("spearman"), mape=m.get("mape"), within_10pct=m.get("within_10pct"))
    metrics.update(coverage=coverage(y, p.low_ms, p.high_ms), extrapolated=int(np.sum(p.extrapolated)),
                   calibrated=bool(getattr(pred, "calibration_", None)), level=level)
    return {
        "kind": pred.kind, "device": device, "n": len(records),
        "labels": [r.space and f"{r.space}:{r.key}" or r.key for r in records],
        "archs": [getattr(r.graph, "arch", None) or r.key for r in records],
        "measured": y.tolist(), "mean": p.mean_ms.tolist(), "low": p.low_ms.tolist(), "high": p.high_ms.tolist(),
        "extrapolated": [bool(v) for v in p.extrapolated], "trained": [r.key in trained for r in records],
        "metrics": metrics,
    }


def codesign_layers(best: dict[str, Any], space_name: str) -> dict[str, Any]:
    """Per-layer cost of the chosen network on the chosen accelerator (``best`` of a codesign's
    result.json: ``arch`` and ``hw``), through :class:`hwnas.codesign.hw_eval.HardwareCost` and
    :meth:`hw_space.CostModel.layers`.

    Returns:
        ``{"spec", "names", "cycles": {compute, dram, noc, total}, "energy": {part: [uJ]},
        "utilization", "intensity" (MAC per DRAM byte), "perf" (MAC per cycle), "peak" (MACs per
        cycle = PEs), "bandwidth" (DRAM bytes per cycle), "totals"}``.
    """
    from hw_space import CostModel
    from hw_space.spec import AcceleratorSpec
    from hwnas.codesign.hw_eval import HardwareCost
    from hwnas.space import get_space

    space = get_space(space_name.removeprefix("joint-"))
    arch = space.parse(str(best["arch"]).split("@")[0])
    spec = AcceleratorSpec.from_dict(best["hw"])
    layers = HardwareCost(space).layers(arch)
    model = CostModel(spec)
    d = model.layers(layers, 1)
    parts = [k[len("energy_"):-len("_uj")] for k in d if k.startswith("energy_") and k.endswith("_uj") and k != "energy_uj"]
    macs = np.asarray(d["macs"], dtype=float)
    total = np.asarray(d["total_cycles"], dtype=float)
    dram = np.asarray(d["dram_bytes"], dtype=float)
    return {
        "spec": spec.to_dict(), "names": [f"{i} {n}" for i, n in enumerate(d["name"])],
        "cycles": {k: np.asarray(d[f"{k}_cycles"]).tolist() for k in ("compute", "dram", "noc", "total")},
        "energy": {p: np.asarray(d[f"energy_{p}_uj"]).tolist() for p in parts},
        "utilization": np.asarray(d["utilization"]).tolist(),
        "intensity": np.where(dram > 0, macs / np.maximum(dram, 1), 0.0).tolist(),
        "perf": np.where(total > 0, macs / np.maximum(total, 1), 0.0).tolist(),
        "peak": float(spec.num_pes), "bandwidth": float(spec.dram_bw),
        "totals": model.network(layers, 1, per_layer=d),
    }
