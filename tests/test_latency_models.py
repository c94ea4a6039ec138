"""Conformance of every :class:`~hwnas.latency.model.LatencyModel`: the DB table, a learned
predictor, a measurement on this machine, the accelerator cost model and the closed loop answer
the same question in the same shape, so search and codesign can hold any of them.

Latencies of the table, the predictor's training set and the closed loop's "device" are
NAS-Bench-201's published pixel3 table (``../shared/datasets/nb201``); the meter measures here.
"""

from __future__ import annotations


import numpy as np
import pytest

from hwnas.graph.arch_encode import ArchEncoder
from hwnas.latency import AcceleratorLatency, Estimate, LatencyModel, MeterLatency, NoLatency, PredictorLatency, TableLatency
from hwnas.latency.closed_loop import ClosedLoop
from hwnas.predictors import FlopsLinear
from hwnas.predictors.base import LatencyRecord
from hwnas.space import NB201Space

SPACE = NB201Space()
ENC = ArchEncoder()


def graph(arch):
    return ENC.encode(SPACE, arch)


def predictor_model(pixel3) -> PredictorLatency:
    cells = list(pixel3)[:40]
    fitted = FlopsLinear().fit([LatencyRecord(a, graph(SPACE.parse(a)), "pixel3", pixel3[a], "nb201") for a in cells])
    return PredictorLatency(fitted, None, graph, 0.9, "flops:pixel3")


def make(kind: str, pixel3, tmp_path) -> LatencyModel:
    if kind == "table":
        return TableLatency(dict(pixel3), "db:pixel3")
    if kind == "predictor":
        return predictor_model(pixel3)
    if kind == "meter":
        from hwnas.local_meter import LocalMeter

        from device_agent.protocol import MeasureConfig

        quick = MeasureConfig(protocol="sequential", repeats=5, warmup=1)
        return MeterLatency(LocalMeter(tmp_path / "lat.db", tmp_path / "models", SPACE, config=quick), "measured:here")
    if kind == "accelerator":
        from hw_space import AcceleratorSpec

        from hwnas.codesign.hw_eval import HardwareCost

        spec = AcceleratorSpec(rows=8, cols=8, rf_bytes=64, gbuf_bytes=256 * 1024, dataflow="ws", dram_bw=16.0,
                               noc_bw=64.0, clock_mhz=800.0, precision_bits=8)  # fmt: skip
        return AcceleratorLatency(HardwareCost(SPACE), spec)
    budget = float(np.quantile(list(pixel3.values()), 0.3))
    return ClosedLoop(predictor=predictor_model(pixel3).predictor, device=None, graph_of=graph, parse=SPACE.parse,
                      budget_ms=budget, confidence=0.9, measure=lambda a: (pixel3[a.spec], pixel3[a.spec]),
                      records=lambda: [], log_path=tmp_path / "measured.json", label="closed loop")  # fmt: skip


KINDS = ["table", "predictor", "meter", "accelerator", "closed_loop"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_latency_model_answers_a_batch_in_order(kind, pixel3, tmp_path) -> None:
    model = make(kind, pixel3, tmp_path)
    assert isinstance(model, LatencyModel) and isinstance(model.label, str) and model.label
    assert isinstance(model.cheap, bool) and model.cheap == (kind != "meter")
    archs = [SPACE.parse(a) for a in list(pixel3)[200:201 if kind == "meter" else 230]]
    out = model.estimate(archs)
    assert len(out) == len(archs) and all(isinstance(e, Estimate) for e in out)
    for e in out:
        assert np.isfinite(e.ms) and e.ms > 0
        if e.mean_ms is not None:
            assert 0 < e.low_ms <= e.mean_ms <= e.high_ms
        d = e.details()
        assert "latency_ms" not in d and all(isinstance(k, str) for k in d)
    assert model.estimate(archs[:1])[0].ms == pytest.approx(out[0].ms, rel=0 if model.cheap else 10.0)
    if kind == "table":
        assert [e.ms for e in out] == [pixel3[a.spec] for a in archs]
    if kind == "meter":
        assert all(e.measured for e in out)


def test_a_partial_table_raises_no_latency_or_asks_its_fallback(pixel3) -> None:
    known, unknown = (SPACE.parse(a) for a in list(pixel3)[:2])
    table = TableLatency({known.spec: 1.0}, "db:partial")
    with pytest.raises(NoLatency):
        table.estimate([known, unknown])
    with_fallback = TableLatency({known.spec: 1.0}, "db:partial", fallback=TableLatency(dict(pixel3), "db:full"))
    assert [e.ms for e in with_fallback.estimate([known, unknown])] == [1.0, pixel3[unknown.spec]]
    assert unknown.spec in with_fallback.table and not with_fallback.cheap


def test_a_meter_measures_the_way_the_device_was_profiled(nb201_candidates, tmp_path) -> None:
    """A search re-measures with the profile's configuration (here one thread, sequential), not the
    agent's defaults; another device, or no database, gets the defaults."""
    import subprocess
    import sys

    from device_agent.protocol import MeasureConfig
    from hwnas.local_meter import LocalMeter

    db = tmp_path / "lat.db"
    proc = subprocess.run([sys.executable, "-m", "device_agent", "run", "--models", str(nb201_candidates), "--db", str(db),
                           "--device-name", "profiled box", "--threads", "1", "--protocol", "sequential", "--repeats", "3",
                           "--warmup", "1", "--min-repeat-ms", "1"], capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    meter = LocalMeter(db, tmp_path / "models", SPACE, device_name="profiled box")
    assert (meter.config.threads, meter.config.protocol, meter.config.repeats) == (1, "sequential", 3)
    cmd = meter._command(tmp_path / "m.onnx")
    assert cmd[cmd.index("--threads") + 1] == "1" and cmd[cmd.index("--protocol") + 1] == "sequential"
    assert LocalMeter(db, tmp_path / "models", SPACE, device_name="another box").config == MeasureConfig()
    assert LocalMeter(tmp_path / "none.db", tmp_path / "models", SPACE).config == MeasureConfig()
    assert not (tmp_path / "none.db").exists()
