#!/usr/bin/env python
"""How fast are the dashboard's database pages on a large latency DB?

Builds (or reuses, with ``--db``) a latency database of ``--measurements`` rows (default 200,000)
over ``--devices`` devices (default 20) and 2,000 NB201 models, written through ``LatencyDB``
(95% ok with an interval, 3% error, 2% timeout), then serves it with the real dashboard server on
127.0.0.1 and times each page ``--repeats`` times (default 5) over HTTP, printing the median and
the worst: the Devices page, page 1 of the Measurements table (with its distribution chart), a
filtered page deep in the table, and two devices side by side. Goal (issue 18): Devices and one
page of the table each <= 1 s (median of 5).

    python bench/dashboard_scale.py [--measurements 200000] [--devices 20] [--repeats 5] [--db PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

GOAL_S = 1.0


def build(path: Path, n_meas: int, n_dev: int, n_models: int = 2000, seed: int = 0) -> None:
    from hwnas.space import NB201Space
    from latency_db import DeviceRecord, LatencyDB, MeasurementRecord, ModelRecord, Status

    rng = np.random.default_rng(seed)
    space = NB201Space()
    idx = rng.choice(space.size, n_models, replace=False)
    shas = [hashlib.sha256(str(i).encode()).hexdigest() for i in idx]
    base = rng.lognormal(1.0, 0.5, n_models)
    with LatencyDB(path) as db:
        for sha, i in zip(shas, idx):
            db.add_model(ModelRecord(sha, space="nb201", arch=space.from_index(int(i)).spec, key=f"nb201-{i}"))
        for d in range(n_dev):
            db.add_device(DeviceRecord(f"dev{d:02d}", f"device-{d:02d}", {"cpu_model": f"cpu {d}", "logical_cores": 4,
                                                                          "physical_cores": 4}))
        speed = rng.uniform(0.3, 3.0, n_dev)
        batch: list[MeasurementRecord] = []
        for k in range(n_meas):
            d, m = k % n_dev, int(rng.integers(n_models))
            u = rng.random()
            status = Status.OK if u < 0.95 else (Status.ERROR if u < 0.98 else Status.TIMEOUT)
            med = float(base[m] * speed[d] * rng.lognormal(0, 0.03))
            ok = status == Status.OK
            batch.append(MeasurementRecord(
                uid=f"u{k}", model_sha256=shas[m], device_id=f"dev{d:02d}", runtime="onnxruntime", provider="cpu",
                config={"repeat": 10}, config_hash="c1", status=status, error=None if ok else "failed",
                samples_ms=(med,) if ok else (), median_ms=med if ok else None,
                ci_low_ms=med * 0.98 if ok else None, ci_high_ms=med * 1.02 if ok else None,
                environment={"cpu_governor": "performance", "ort_version": "1.32.0"}))
            if len(batch) == 20000:
                db.add_measurements(batch)
                batch = []
        if batch:
            db.add_measurements(batch)


def timed(url: str, repeats: int) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        with urllib.request.urlopen(url) as r:
            r.read()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), max(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--measurements", type=int, default=200_000)
    ap.add_argument("--devices", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--db", help="reuse (or build into) this file instead of a temporary one")
    args = ap.parse_args()

    from hwnas.dashboard.server import DashboardApp, make_server

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.db) if args.db else Path(tmp) / "scale.db"
        if not path.exists():
            t0 = time.perf_counter()
            build(path, args.measurements, args.devices)
            print(f"built {path}: {args.measurements} measurements, {args.devices} devices in {time.perf_counter() - t0:.1f} s")
        server = make_server(DashboardApp(db=str(path)), "127.0.0.1", 0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_port}"
        pages = [("devices page", "/devices", True), ("measurements, page 1", "/measurements", True),
                 ("measurements, device-07 ok, page 50", "/measurements?device=device-07&status=ok&page=49", False),
                 ("two devices side by side", "/measurements?a=device-01&b=device-02", False)]
        ok = True
        for name, url, goal in pages:
            med, worst = timed(base + url, args.repeats)
            verdict = ("PASS" if med <= GOAL_S else "FAIL") if goal else "info"
            ok &= med <= GOAL_S or not goal
            print(f"{name:40s} median {med:.3f} s  max {worst:.3f} s  (of {args.repeats})  {verdict}")
        server.shutdown()
        server.server_close()
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
