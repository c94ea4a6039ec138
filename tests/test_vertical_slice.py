"""The whole first slice, as a user runs it: hwnas export -> device_agent run -> hwnas db."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

from hwnas.cli import main as hwnas_main
from device_agent.reference import PANEL_FILES
from latency_db import LatencyDB, Status


def test_export_profile_query(tmp_path, capsys) -> None:
    cands = tmp_path / "cands"
    assert hwnas_main(["export", "--space", "nb201", "--sample", "3", "--seed", "1", "--out", str(cands)]) == 0
    assert hwnas_main(["export", "--space", "macro", "--sample", "1", "--seed", "1", "--out", str(cands)]) == 0
    capsys.readouterr()
    manifest = [json.loads(line) for line in (cands / "manifest.jsonl").read_text().splitlines()]
    assert len(manifest) == 4

    db = tmp_path / "lat.db"
    cmd = [sys.executable, "-m", "device_agent", "run", "--models", str(cands), "--db", str(db),
           "--warmup", "1", "--min-rounds", "3", "--max-rounds", "3", "--min-repeat-ms", "1", "--device-name", "ci box", "--json"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["measured"] == 4 and summary["failed"] == 0

    with LatencyDB(db) as ldb:
        models = {m.sha256: m for m in ldb.models()}
        for entry in manifest:  # the manifest's metadata reached the database
            m = models[entry["sha256"]]
            assert (m.space, m.arch, m.key, m.flops, m.params) == (
                entry["space"], entry["arch"], entry["key"], entry["flops"], entry["params"])  # fmt: skip
            assert m.input_shape == tuple(entry["input_shape"])
        rows = ldb.measurements(device="ci box", status=Status.OK)
        assert len(rows) == 4 and all(len(r.samples_ms) == 3 and r.median_ms > 0 for r in rows)

    assert hwnas_main(["db", "table", "--db", str(db), "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert len(table) == 4 and {r["space"] for r in table} == {"nb201", "macro"}
    out_csv = tmp_path / "out.csv"
    assert hwnas_main(["db", "export", "--db", str(db), "--csv", str(out_csv)]) == 0
    with open(out_csv) as f:
        exported = list(csv.DictReader(f))
    need = {"space", "arch", "model_sha256", "device", "runtime", "status", "median_ms", "p90_ms", "repeats"}
    assert need <= set(exported[0]) and len(exported) == 4 + len(PANEL_FILES)
    assert {r["repeats"] for r in exported} == {"3"}
    assert [r["space"] for r in exported].count("reference") == len(PANEL_FILES)  # the run's drift panel travels with it
