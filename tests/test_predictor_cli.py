"""``hwnas predictor ...`` end to end on a small imported table, and its bad-input errors."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from hwnas.cli import main
from hwnas.space import NB201Space

COST = {"none": 0.05, "skip_connect": 0.02, "nor_conv_1x1": 0.3, "nor_conv_3x3": 1.0, "avg_pool_3x3": 0.2}
SPEED = {"d1": {}, "d2": {"nor_conv_3x3": 2.0}, "d3": {"avg_pool_3x3": 4.0}, "new": {"nor_conv_1x1": 3.0}}


def lat(arch: str, dev: str) -> float:
    ops = [t.split("~")[0] for t in arch.split("|") if t and t != "+"]
    return 1.0 + sum(COST[o] * SPEED[dev].get(o, 1.0) for o in ops)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    work = tmp_path_factory.mktemp("pcli")
    space = NB201Space()
    archs = [space.from_index(i).spec for i in range(3, 15625, 700)]  # 23 archs
    table = work / "lat.csv"
    with open(table, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["space", "arch", "device", "latency_ms"])
        for d in SPEED:
            for a in archs:
                w.writerow(["nb201", a, d, lat(a, d)])
    db = work / "db.sqlite"
    assert main(["db", "import-csv", str(table), "--db", str(db)]) == 0
    cache = work / "cache"
    base = work / "base.json"
    argv = ["predictor", "train", "--db", str(db), "--devices", "d1,d2,d3", "--kind", "gnn", "--epochs", "40",
            "--cache", str(cache), "--out", str(base), "--samples", "18"]  # fmt: skip
    assert main(argv) == 0
    return work, db, cache, base, archs


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_train_adapt_eval_predict_suggest(setup, capsys) -> None:
    work, db, cache, base, archs = setup
    adapted = work / "new.json"
    code, out, _ = run(capsys, "predictor", "adapt", "--base", str(base), "--db", str(db), "--device", "new",
                       "--samples", "8", "--cache", str(cache), "--out", str(adapted), "--json")  # fmt: skip
    assert code == 0 and json.loads(out)["samples"] == 8
    code, out, _ = run(capsys, "predictor", "eval", "--model", str(adapted), "--db", str(db), "--device", "new",
                       "--cache", str(cache), "--json")  # fmt: skip
    m = json.loads(out)
    assert code == 0 and m["n"] == len(archs) - 8 and m["excluded_training_rows"] == 8
    assert m["spearman"] > 0.5 and 0 <= m["within_10pct"] <= 1
    code, out, _ = run(capsys, "predictor", "eval", "--model", str(base), "--db", str(db), "--device", "d2",
                       "--cache", str(cache), "--json")  # fmt: skip
    assert code == 0 and json.loads(out)["n"] == len(archs) - 18

    arch_file = work / "archs.txt"
    arch_file.write_text("\n".join(archs[:5]) + "\n")
    pred_csv = work / "pred.csv"
    code, _, _ = run(capsys, "predictor", "predict", "--model", str(adapted), "--space", "nb201", "--archs", str(arch_file),
                     "--cache", str(cache), "--out", str(pred_csv))  # fmt: skip
    assert code == 0
    rows = list(csv.DictReader(open(pred_csv)))
    assert [r["arch"] for r in rows] == archs[:5] and all(float(r["latency_ms"]) > 0 for r in rows)

    sugg = work / "suggest.txt"
    code, _, _ = run(capsys, "predictor", "suggest", "--base", str(base), "--space", "nb201", "-k", "4",
                     "--archs", str(arch_file), "--cache", str(cache), "--out", str(sugg))  # fmt: skip
    assert code == 0
    picked = sugg.read_text().split()
    assert len(picked) == 4 and set(picked) <= set(archs[:5])
    # the suggestion file is valid input to hwnas export --archs
    code, out, _ = run(capsys, "export", "--space", "nb201", "--archs", str(sugg), "--out", str(work / "sugg"), "--json")
    assert code == 0 and json.loads(out)["models"] == 4


@pytest.mark.parametrize(
    "argv,message",
    [
        (["adapt", "--device", "nosuch", "--samples", "5"], "unknown device 'nosuch'"),
        (["adapt", "--device", "new", "--samples", "2"], "too few samples"),
        (["adapt", "--device", "new", "--samples", "500"], "only 23 measured models"),
        (["eval", "--device", "nosuch"], "unknown device 'nosuch'"),
    ],
)
def test_bad_input_one_line(setup, capsys, argv, message) -> None:
    work, db, cache, base, _ = setup
    out_file = work / "never.json"
    flag = "--base" if argv[0] == "adapt" else "--model"
    extra = ["--out", str(out_file)] if argv[0] == "adapt" else []
    code, _, err = run(capsys, "predictor", argv[0], flag, str(base), "--db", str(db), "--cache", str(cache), *argv[1:], *extra)
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not out_file.exists()


def test_predictor_file_from_another_version_or_space(setup, capsys) -> None:
    work, db, cache, base, _ = setup
    doc = json.loads(base.read_text())
    old = work / "old.json"
    old.write_text(json.dumps({**doc, "format_version": 0}))
    code, _, err = run(capsys, "predictor", "eval", "--model", str(old), "--db", str(db), "--device", "d1")
    assert code == 2 and "retrain" in err
    enc = work / "enc.json"
    enc.write_text(json.dumps({**doc, "fingerprint": {**doc["fingerprint"], "encoder_version": 999}}))
    code, _, err = run(capsys, "predictor", "eval", "--model", str(enc), "--db", str(db), "--device", "d1")
    assert code == 2 and "encoder v999" in err
    junk = work / "junk.json"
    junk.write_bytes(np.arange(10, dtype=np.uint8).tobytes())
    code, _, err = run(capsys, "predictor", "eval", "--model", str(junk), "--db", str(db), "--device", "d1")
    assert code == 2 and "not a predictor file" in err
    code, _, err = run(capsys, "predictor", "predict", "--model", str(base), "--space", "macro", "--all", "--out", str(work / "x.csv"))
    assert code == 2 and "trained on nb201" in err and not (work / "x.csv").exists()


def test_train_needs_known_device_and_enough_rows(setup, capsys) -> None:
    work, db, cache, _, _ = setup
    out = work / "t.json"
    code, _, err = run(capsys, "predictor", "train", "--db", str(db), "--device", "zzz", "--kind", "flops", "--out", str(out))
    assert code == 2 and "unknown device 'zzz'" in err and "d1" in err
    code, _, err = run(capsys, "predictor", "train", "--db", str(db), "--device", "d1", "--kind", "gbdt", "--samples", "3",
                       "--cache", str(cache), "--out", str(out))  # fmt: skip
    assert code == 2 and "at least" in err and not out.exists()
    for share, why in (("0.7", "out of range"), ("tenth", "not a number")):
        with pytest.raises(SystemExit) as exit_info:
            run(capsys, "predictor", "train", "--db", str(db), "--device", "d1", "--validation", share, "--out", str(out))
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and "argument --validation" in err and why in err and not out.exists()


def test_train_and_adapt_on_the_same_samples_are_scored_on_the_same_rest(setup, capsys) -> None:
    """The README's way to choose between training on a new device alone and adapting a base:
    the same --samples/--seed draw the same models in both, and eval scores each on the others."""
    from hwnas.predictors import predictor_kinds
    from hwnas.predictors.base import load_predictor

    work, db, cache, base, archs = setup
    files = {"alone": work / "alone.json", "adapted": work / "adapted12.json"}
    common = ["--db", str(db), "--device", "new", "--samples", "12", "--seed", "4", "--cache", str(cache)]
    assert main(["predictor", "train", "--kind", "gnn", "--epochs", "5", "--calibration-folds", "0", *common,
                 "--out", str(files["alone"])]) == 0  # fmt: skip
    assert main(["predictor", "adapt", "--base", str(base), *common, "--out", str(files["adapted"])]) == 0
    capsys.readouterr()
    used = {k: set(load_predictor(f, predictor_kinds()).fingerprint["trained_on"]["new"]) for k, f in files.items()}
    assert len(used["alone"]) == 12 and used["alone"] == used["adapted"]
    for f in files.values():
        code, out, _ = run(capsys, "predictor", "eval", "--model", str(f), "--db", str(db), "--device", "new",
                           "--cache", str(cache), "--json")  # fmt: skip
        assert code == 0 and json.loads(out)["n"] == len(archs) - 12


def test_embeddings_cached_across_adapted_predictors(setup, capsys) -> None:
    from hwnas.predictors import predictor_kinds
    from hwnas.predictors.base import load_predictor
    from hwnas.predictors.embed_cache import EmbeddingCache

    work, db, cache, base, archs = setup
    adapted = work / "new2.json"
    assert main(["predictor", "adapt", "--base", str(base), "--db", str(db), "--device", "new", "--samples", "6",
                 "--cache", str(cache), "--out", str(adapted)]) == 0  # fmt: skip
    b = load_predictor(base, predictor_kinds()).predictor
    a = load_predictor(adapted, predictor_kinds()).predictor
    assert a.embedding_digest() == b.embedding_digest()  # adaptation changes only the head
    arch_file = work / "archs3.txt"
    arch_file.write_text("\n".join(archs[:6]) + "\n")
    out1, out2 = work / "p1.csv", work / "p2.csv"
    assert main(["predictor", "predict", "--model", str(adapted), "--space", "nb201", "--archs", str(arch_file),
                 "--cache", str(cache), "--out", str(out1)]) == 0  # fmt: skip
    table = EmbeddingCache(cache / "embeddings").load(a.embedding_digest())
    assert {f"nb201:{x}" for x in archs[:6]} <= set(table)
    assert main(["predictor", "predict", "--model", str(adapted), "--space", "nb201", "--archs", str(arch_file),
                 "--cache", str(cache), "--out", str(out2)]) == 0  # fmt: skip
    assert out1.read_text() == out2.read_text()
    # cached embeddings give the same numbers as embedding the graphs again
    rows = list(csv.DictReader(open(out1)))
    from hwnas.graph.cache import GraphCache
    from hwnas.graph.resolve import GraphResolver

    graphs = GraphResolver(GraphCache(cache)).graphs_for([(None, "nb201", x) for x in archs[:6]])
    direct = a.predict(graphs)
    np.testing.assert_allclose([float(r["latency_ms"]) for r in rows], direct, rtol=1e-4)
    capsys.readouterr()


@pytest.mark.parametrize("kind, missing", [("gbdt", "sklearn"), ("gnn", "torch and torch_geometric")])
def test_a_kind_whose_packages_are_missing_says_how_to_install_them(kind, missing, tmp_path, capsys, monkeypatch) -> None:
    from hwnas.predictors import kinds, predictor_kinds

    monkeypatch.setattr(kinds, "_installed", lambda name: name not in ("sklearn", "torch", "torch_geometric"))
    assert kind in predictor_kinds()  # listed, not left out to look unknown
    code, _, err = run(capsys, "predictor", "train", "--db", str(tmp_path / "none.db"), "--device", "d",
                       "--kind", kind, "--out", str(tmp_path / "p.json"))  # fmt: skip
    assert code == 2 and "unknown" not in err
    assert err.strip() == f"hwnas: error: predictor kind {kind!r} needs {missing}, not installed here: pip install 'hwnas[host]'"
