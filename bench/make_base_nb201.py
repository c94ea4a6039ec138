#!/usr/bin/env python
"""Regenerate the shipped base predictor ``hwnas/predictors/data/nb201-public.json``.

A GNN with one head per device, pre-trained on the public NAS-Bench-201 latency tables of all 13
devices (``../shared/datasets/nb201/latency_ms.csv``: HELP's collection, MIT licence, with
HW-NAS-Bench's Pixel 3; see that folder's README). It goes through the product's own path: the
chosen architectures' rows become a long CSV imported with ``hwnas db import-csv``, then
``hwnas predictor train --devices all --kind gnn``; the provenance is then written into the file's
fingerprint and ``hwnas/predictors/data/README.md`` describes it.

Deterministic: ``--archs`` architectures (with a path from input to output, as the table's README
advises) drawn with ``--seed``, the GNN seeded with it too; the same torch build and thread count
give the same file.

    python bench/make_base_nb201.py [--archs 2000] [--epochs 80] [--out hwnas/predictors/data/nb201-public.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from predictor_nb201 import DEFAULT_TABLE, has_path, import_long_csv, load_table

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "hwnas" / "predictors" / "data" / "nb201-public.json"

PROVENANCE = {
    "source": "NAS-Bench-201 latency tables as published with HELP (Lee et al., NeurIPS 2021, MIT licence); "
              "pixel3 from HW-NAS-Bench (Li et al., ICLR 2021, MIT licence)",
    "devices": "GTX 1080 Ti and Titan X at batch 1/32/256, Xeon Silver 4114 / 4210R and Gold 6240, "
               "Samsung A50, Samsung S7, Essential PH-1, Pixel 3",
    "form": "reference NB201 cells (every edge computed), CIFAR-10 input 32x32, as `hwnas export` writes by default",
    "made_by": "bench/make_base_nb201.py",
}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--table", type=Path, default=DEFAULT_TABLE)
    ap.add_argument("--archs", type=int, default=2000, help="architectures per device (default 2000)")
    ap.add_argument("--epochs", type=int, default=80)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--calibration-folds", type=int, default=0,
                    help="calibrate the 13 devices' intervals on K refits (default 0: the base is for adapt/suggest)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()

    from hwnas.cli import main as hwnas_main

    archs, devices, lat = load_table(args.table)
    ok = np.flatnonzero([has_path(a) for a in archs])
    pick = np.sort(np.random.default_rng(args.seed).choice(ok, size=min(args.archs, len(ok)), replace=False))
    work = Path(tempfile.mkdtemp(prefix="hwnas-make-base-"))
    db = work / "nb201.db"
    import_long_csv(args.table, [archs[i] for i in pick], devices, lat[pick], db)
    t0 = time.perf_counter()
    rc = hwnas_main(["predictor", "train", "--db", str(db), "--devices", "all", "--kind", "gnn", "--epochs", str(args.epochs),
                     "--seed", str(args.seed), "--calibration-folds", str(args.calibration_folds),
                     "--cache", str(work / "graphs"), "--out", str(args.out)])  # fmt: skip
    if rc != 0:
        sys.exit("training failed")
    doc = json.loads(args.out.read_text())
    doc["fingerprint"]["provenance"] = {**PROVENANCE, "table": args.table.name, "archs_per_device": len(pick),
                                        "epochs": args.epochs, "seed": args.seed}  # fmt: skip
    args.out.write_text(json.dumps(doc, sort_keys=True))
    size = args.out.stat().st_size
    print(f"{args.out}: {len(devices)} devices x {len(pick)} archs, {args.epochs} epochs, "
          f"trained in {time.perf_counter() - t0:.0f} s, {size / 1e6:.2f} MB")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
