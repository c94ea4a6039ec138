"""Every strategy family and every training technique through ``hwnas search``, hard and soft, on
NB201; random and evolution on the macro space (measured on this machine)."""

from __future__ import annotations

import json

import pytest

from hwnas.cli import main

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def search(capsys, out, *argv):
    code = main(["search", *argv, "--out", str(out), "--json"])
    _, err = capsys.readouterr()
    assert code == 0, err
    return json.loads((out / "result.json").read_text())


TINY = ["--epochs", "1", "--channels", "4", "--cells", "1", "--resolution", "8"]


@pytest.mark.parametrize("strategy", ["rl", "predictor", "nsga2", "darts"])
@pytest.mark.parametrize("constraint", ["hard", "soft"])
def test_strategies_under_hard_and_soft_budgets(toy_db, tmp_path, capsys, strategy, constraint) -> None:
    n = 4 if strategy == "darts" else 25
    result = search(capsys, tmp_path / "r", "--strategy", strategy, "--evaluator", "tabular", "--latency-source", "db",
                    "--db", str(toy_db), "--device", "toy", "--latency-budget-ms", "5", "--constraint", constraint,
                    "--budget-evals", str(n), "--seed", "0", *(TINY if strategy == "darts" else []))  # fmt: skip
    assert result["strategy"] == strategy and len(result["trials"]) == n
    best = result["best"]
    assert best["accuracy"] > 0 and best["accuracy_source"] == "tabular:nb201/cifar10"
    if constraint == "hard":
        assert best["latency_ms"] <= 5 and all(t["latency_ms"] <= 5 for t in result["trials"] if t["state"] == "complete")
    assert (tmp_path / "r" / "pareto.png").exists() and (tmp_path / "r" / "best.onnx").exists()
    front = result["pareto_front"]
    assert front and all(a["latency_ms"] < b["latency_ms"] and a["accuracy"] < b["accuracy"] for a, b in zip(front, front[1:]))


@pytest.mark.parametrize("evaluator", ["train", "proxy", "supernet", "zero-cost"])
@pytest.mark.parametrize("constraint", ["hard", "soft"])
def test_training_techniques_under_hard_and_soft_budgets(toy_db, tmp_path, capsys, evaluator, constraint) -> None:
    result = search(capsys, tmp_path / "r", "--strategy", "random", "--evaluator", evaluator, *TINY,
                    "--subsample", "0.3", "--latency-source", "db", "--db", str(toy_db), "--device", "toy",
                    "--latency-budget-ms", "5", "--constraint", constraint, "--budget-evals", "3", "--seed", "1")  # fmt: skip
    src = result["best"]["accuracy_source"]
    assert src.split(":")[0] == evaluator and src.endswith(("digits", "synflow"))
    done = [t for t in result["trials"] if t["state"] == "complete"]
    assert done and all(t["train_time_s"] >= 0 for t in done)
    if evaluator != "zero-cost":
        assert all(0 <= t["accuracy"] <= 100 for t in done)


@pytest.mark.parametrize("strategy,constraint", [("random", "hard"), ("evolution", "soft")])
def test_macro_space_measured_on_this_machine(tmp_path, capsys, strategy, constraint) -> None:
    result = search(capsys, tmp_path / "m", "--space", "macro", "--strategy", strategy, "--evaluator", "proxy", *TINY,
                    "--subsample", "0.2", "--latency-source", "measured", "--db", str(tmp_path / "lat.db"),
                    "--latency-budget-ms", "10000", "--constraint", constraint, "--budget-evals", "2", "--seed", "0")  # fmt: skip
    assert result["space"] == "macro" and result["evaluations"] == 2
    assert all(t["latency_ms"] > 0 and t["arch"].count("|") == 6 for t in result["trials"])


def test_soft_weighted_sum_of_accuracy_training_time_and_latency(toy_db, tmp_path, capsys) -> None:
    result = search(capsys, tmp_path / "w", "--strategy", "random", "--evaluator", "proxy", *TINY, "--subsample", "0.3",
                    "--latency-source", "db", "--db", str(toy_db), "--device", "toy", "--constraint", "soft",
                    "--weights", "accuracy=1,train_time_s=-2,latency_ms=-0.5", "--budget-evals", "3")  # fmt: skip
    for t in result["trials"]:
        assert t["score"] == pytest.approx(t["accuracy"] - 2 * t["train_time_s"] - 0.5 * t["latency_ms"])
    assert result["best"]["score"] == max(t["score"] for t in result["trials"])
