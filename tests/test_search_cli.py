"""``hwnas search`` on NB201 with tabular accuracy and latencies from the database."""

from __future__ import annotations

import json

import pytest

from hwnas.cli import main


@pytest.fixture
def db(toy_db):
    return toy_db


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("strategy", ["random", "evolution"])
@pytest.mark.parametrize("constraint", ["hard", "soft"])
def test_search_under_budget(db, tmp_path, capsys, strategy, constraint) -> None:
    out = tmp_path / "run"
    argv = ["search", "--space", "nb201", "--strategy", strategy, "--evaluator", "tabular", "--latency-source", "db",
            "--db", str(db), "--device", "toy", "--latency-budget-ms", "5ms", "--constraint", constraint,
            "--budget-evals", "40", "--seed", "1", "--out", str(out), "--json"]  # fmt: skip
    code, stdout, err = run(capsys, *argv)
    assert code == 0, err
    result = json.loads((out / "result.json").read_text())
    assert json.loads(stdout)["best"] == result["best"]
    assert len(result["trials"]) == 40 and result["best"]["accuracy"] > 0
    if constraint == "hard":
        assert result["best"]["latency_ms"] <= 5.0
    # the same command again continues the same study: nothing is re-evaluated
    code, _, _ = run(capsys, *argv)
    assert code == 0 and json.loads((out / "result.json").read_text())["trials"] == result["trials"]


def test_no_feasible_architecture(db, tmp_path, capsys) -> None:
    code, _, err = run(capsys, "search", "--db", str(db), "--device", "toy", "--latency-budget-ms", "0.5",
                       "--budget-evals", "10", "--out", str(tmp_path / "r"))  # fmt: skip
    assert code == 2 and "no feasible architecture" in err and err.count("\n") == 1
    assert json.loads((tmp_path / "r" / "result.json").read_text())["best"] is None


@pytest.mark.parametrize(
    "extra,msg",
    [
        (["--latency-budget-ms", "-3"], "--latency-budget-ms"),
        (["--latency-budget-ms", "fast"], "--latency-budget-ms"),
        (["--constraint", "soft", "--weights", "accuracy=1,speed=2"], "unknown metric"),
        (["--budget-evals", "0"], "--budget-evals"),
        (["--device", "nosuch"], "unknown device"),
    ],
)
def test_malformed_input_refused(db, tmp_path, capsys, extra, msg) -> None:
    argv = ["search", "--db", str(db), "--device", "toy", "--out", str(tmp_path / "x"), *extra]
    code, _, err = run(capsys, *argv)
    assert code == 2 and msg in err and err.count("\n") == 1
    assert not (tmp_path / "x" / "result.json").exists()


def test_resume_with_other_settings_is_refused(db, tmp_path, capsys) -> None:
    base = ["search", "--db", str(db), "--device", "toy", "--budget-evals", "5", "--out", str(tmp_path / "r")]
    code, _, err = run(capsys, *base, "--latency-budget-ms", "5")
    assert code == 0, err
    code, _, err = run(capsys, *base, "--latency-budget-ms", "7")
    assert code == 2 and "other settings (budget_ms)" in err and err.count("\n") == 1


@pytest.mark.parametrize("strategy", ["random", "evolution", "predictor"])
def test_partial_table_skips_architectures_without_a_latency(tmp_path, capsys, toy_db_of, strategy) -> None:
    """A device table with 400 of NB201's 15,625 cells: candidates it lacks are never evaluated (no
    trial spent on them), counted as ``no_latency``, and the search finishes."""
    import numpy as np

    from hwnas.space import NB201Space

    space = NB201Space()
    picks = np.random.default_rng(3).choice(space.size, 400, replace=False)
    db = toy_db_of(tmp_path, [space.from_index(int(i)).spec for i in picks])
    out = tmp_path / "run"
    code, _, err = run(capsys, "search", "--strategy", strategy, "--latency-source", "db", "--db", str(db), "--device",
                       "toy", "--latency-budget-ms", "5", "--budget-evals", "12", "--seed", "0", "--out", str(out))  # fmt: skip
    assert code == 0, err
    result = json.loads((out / "result.json").read_text())
    assert len(result["trials"]) == 12 and result["failed"] == 0 and result["no_latency"] > 0
    assert all(t["latency_ms"] > 0 for t in result["trials"])  # every trial had a latency from the table
    assert result["best"]["latency_ms"] <= 5
    # --measure-missing measures on this machine only: the toy device is not this machine
    code, _, err = run(capsys, "search", "--latency-source", "db", "--db", str(db), "--device", "toy", "--measure-missing",
                       "--budget-evals", "2", "--out", str(tmp_path / "m"))  # fmt: skip
    assert code == 2 and "not this machine" in err and err.count("\n") == 1
