"""The base predictor shipped in the package (``nb201-public``): found by name, small, with its
provenance, and usable by ``predictor adapt``/``suggest`` with no pre-training step; ``--archs``
limits the measured models a command reads."""

from __future__ import annotations

import csv
import json

import pytest

from hwnas.cli import main
from hwnas.predictors.shipped import DEFAULT_BASE, data_dir, resolve_predictor_path, shipped_names
from hwnas.space import NB201Space

SHIPPED = data_dir() / f"{DEFAULT_BASE}.json"


def test_shipped_base_is_small_json_with_provenance() -> None:
    assert DEFAULT_BASE in shipped_names()
    assert SHIPPED.stat().st_size < 5_000_000
    doc = json.loads(SHIPPED.read_text())  # JSON with base64 arrays, never pickle
    assert doc["kind"] == "gnn" and len(doc["meta"]["devices"]) == 13
    prov = doc["fingerprint"]["provenance"]
    assert "HELP" in prov["source"] and prov["made_by"] == "bench/make_base_nb201.py"
    assert (data_dir() / "README.md").is_file()


def test_resolve_name_path_and_missing(tmp_path, monkeypatch) -> None:
    assert resolve_predictor_path(DEFAULT_BASE) == SHIPPED
    monkeypatch.chdir(tmp_path)
    (tmp_path / DEFAULT_BASE).write_text("{}")  # an existing file wins over the shipped name
    assert resolve_predictor_path(DEFAULT_BASE).resolve() == tmp_path / DEFAULT_BASE
    assert str(resolve_predictor_path("sub/x.json")) == "sub/x.json"  # paths stay paths
    assert main(["predictor", "eval", "--model", "no-such-base", "--db", "x.db", "--device", "d"]) == 2


@pytest.fixture(scope="module")
def new_device_db(tmp_path_factory):
    work = tmp_path_factory.mktemp("shipped")
    space = NB201Space()
    archs = [space.from_index(i).spec for i in range(11, 15625, 1300)]  # 13 archs
    table = work / "lat.csv"
    with open(table, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["space", "arch", "device", "latency_ms"])
        for a in archs:  # a made-up device: 3x3 convolutions dominate
            w.writerow(["nb201", a, "pi9", 2.0 + 1.5 * a.count("nor_conv_3x3") + 0.4 * a.count("nor_conv_1x1")])
    db = work / "db.sqlite"
    assert main(["db", "import-csv", str(table), "--db", str(db)]) == 0
    return work, db, archs


def test_adapt_and_suggest_from_the_shipped_base(new_device_db, capsys) -> None:
    work, db, archs = new_device_db
    cache = str(work / "cache")
    picked = work / "picked.txt"
    picked.write_text("# the cells measured for adapting\n" + "\n".join(archs[:6]) + "\n")
    assert main(["predictor", "adapt", "--base", DEFAULT_BASE, "--db", str(db), "--device", "pi9", "--archs", str(picked),
                 "--cache", cache, "--out", str(work / "pi9.json"), "--json"]) == 0  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert out["samples"] == 6
    assert main(["predictor", "eval", "--model", str(work / "pi9.json"), "--db", str(db), "--device", "pi9",
                 "--cache", cache, "--json"]) == 0  # fmt: skip
    m = json.loads(capsys.readouterr().out)
    assert m["n"] == len(archs) - 6 and m["spearman"] > 0.6
    assert main(["predictor", "suggest", "--base", DEFAULT_BASE, "--space", "nb201", "-k", "3", "--pool", "40",
                 "--cache", cache, "--out", str(work / "todo.txt"), "--json"]) == 0  # fmt: skip
    assert len(json.loads(capsys.readouterr().out)["archs"]) == 3
    (work / "empty.txt").write_text("\n")
    assert main(["predictor", "adapt", "--base", DEFAULT_BASE, "--db", str(db), "--device", "pi9", "--archs",
                 str(work / "empty.txt"), "--out", str(work / "x.json")]) == 2  # fmt: skip
