"""Compare hw_space's cost model with the Eyeriss chip's measured AlexNet CONV1-5 (batch 4).

Reference: Y.-H. Chen, T. Krishna, J. Emer, V. Sze, "Eyeriss: An Energy-Efficient Reconfigurable
Accelerator for Deep Convolutional Neural Networks", IEEE JSSC 52(1), 2017: 65 nm, 12 x 14 PEs,
108 KB global buffer, 16-bit fixed point, 200 MHz core clock, row stationary, per-PE scratch pads of
224 + 12 + 24 16-bit words (520 B); AlexNet CONV1-5 at batch 4: processing latency
16.5 / 39.2 / 21.8 / 16.0 / 10.0 ms and power 332 / 288 / 266 / 235 / 236 mW.

AlexNet shapes: the original two-group AlexNet (C = 48 per filter for CONV2, 192 for CONV4/5),
which is the one Eyeriss ran: its ISSCC 2016 paper counts 666 M MACs per 227 x 227 image, and these
five layers give 665.8 M (an ungrouped CONV2/4/5 would give 1.08 G). Inputs are padded (27+4, 13+2)
so the no-padding ofmap sizes are 55/27/13/13/13.

Bandwidths: DRAM 3.6 B/cycle = Eyeriss's 64-bit off-chip data bus at its 90 MHz link clock, seen from
the 200 MHz core (64/8 * 90/200); a second run at 8 B/cycle (bus at core clock) shows the sensitivity.
Global buffer -> array 24 B/cycle (three 64-bit buses: filter, ifmap, psum) is an assumption.
Nothing is tuned to the measurements: the energy table is :class:`hw_space.EnergyTable`'s defaults.

Run: ``.venv/bin/python bench/hw_cost_eyeriss.py [--json]``
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hw_space import AcceleratorSpec, CostModel, Layer  # noqa: E402

ALEXNET = [
    Layer("CONV1", 227, 227, 11, 11, 3, 96, stride=4),
    Layer("CONV2", 31, 31, 5, 5, 96, 256, groups=2),
    Layer("CONV3", 15, 15, 3, 3, 256, 384),
    Layer("CONV4", 15, 15, 3, 3, 384, 384, groups=2),
    Layer("CONV5", 15, 15, 3, 3, 384, 256, groups=2),
]
MEASURED_MS = (16.5, 39.2, 21.8, 16.0, 10.0)
MEASURED_MW = (332.0, 288.0, 266.0, 235.0, 236.0)
EYERISS = AcceleratorSpec(rows=12, cols=14, rf_bytes=520, gbuf_bytes=108 * 1024, dataflow="rs",
                          dram_bw=3.6, noc_bw=24.0, clock_mhz=200.0, precision_bits=16)
BATCH = 4


def compare(spec: AcceleratorSpec) -> list[dict]:
    """Per-layer model vs chip, with the bound (compute / dram / noc) that set the latency."""
    d = CostModel(spec).layers(ALEXNET, batch=BATCH)
    rows = []
    for i, name in enumerate(d["name"]):
        bounds = {"compute": d["compute_cycles"][i], "dram": d["dram_cycles"][i], "noc": d["noc_cycles"][i]}
        lat, pw = float(d["latency_ms"][i]), float(d["power_mw"][i])
        rows.append({"layer": name, "latency_ms": lat, "measured_ms": MEASURED_MS[i],
                     "latency_ratio": lat / MEASURED_MS[i], "power_mw": pw, "measured_mw": MEASURED_MW[i],
                     "power_ratio": pw / MEASURED_MW[i], "bound": max(bounds, key=bounds.get),
                     "utilization": float(d["utilization"][i]),
                     "energy_mj": float(d["energy_uj"][i]) / 1e3,
                     "breakdown_pct": {p: 100 * float(d[f"energy_{p}_uj"][i] / d["energy_uj"][i])
                                       for p in ("dram", "gbuf", "noc", "rf", "mac", "leak")}})
    return rows


def main(argv: list[str]) -> int:
    runs = {"dram_3.6B": compare(EYERISS), "dram_8B": compare(dataclasses.replace(EYERISS, dram_bw=8.0))}
    if "--json" in argv:
        print(json.dumps({"spec": EYERISS.to_dict(), "batch": BATCH, "runs": runs}, indent=2))
        return 0
    print(f"Eyeriss (JSSC 2017) AlexNet CONV1-5, batch {BATCH}; model area "
          f"{CostModel(EYERISS).area_mm2()['total']:.2f} mm^2 (chip core 12.25 mm^2)")
    for label, rows in runs.items():
        print(f"\n[{label}: DRAM {label[5:-1]} B/cycle, NoC {EYERISS.noc_bw:.0f} B/cycle]")
        print(f"{'layer':<6} {'ours ms':>8} {'chip ms':>8} {'lat x':>6} {'ours mW':>8} {'chip mW':>8} "
              f"{'pow x':>6} {'bound':>8} {'util':>5}  energy % dram/gbuf/noc/rf/mac/leak")
        for r in rows:
            b = r["breakdown_pct"]
            print(f"{r['layer']:<6} {r['latency_ms']:8.2f} {r['measured_ms']:8.1f} {r['latency_ratio']:6.2f} "
                  f"{r['power_mw']:8.1f} {r['measured_mw']:8.0f} {r['power_ratio']:6.2f} {r['bound']:>8} "
                  f"{r['utilization']:5.2f}  " + "/".join(f"{b[p]:.0f}" for p in b))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
