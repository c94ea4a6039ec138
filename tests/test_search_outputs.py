"""``hwnas search`` outputs and latency sources: measured on this machine, fitted flops/params/lut,
--verify-top, best.onnx, pareto.png, progress, and Ctrl-C then resume through the CLI."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import onnx
import pytest

from hwnas.cli import main
from hwnas.evaluate import NB201Tabular
from hwnas.space import NB201Space

SPACE = NB201Space()


@pytest.fixture(scope="module")
def small_db(tmp_path_factory, toy_db_of):
    """16 measured-looking NB201 latencies of device "toy" (enough to fit flops/params/lut)."""
    work = tmp_path_factory.mktemp("small")
    picks = np.random.default_rng(0).choice(SPACE.size, 16, replace=False)
    return toy_db_of(work, [SPACE.from_index(int(i)).spec for i in picks]), work / "cache"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_measured_source_verify_top_best_onnx_and_plot(tmp_path, capsys) -> None:
    out, db = tmp_path / "run", tmp_path / "lat.db"
    code, stdout, err = run(capsys, "search", "--strategy", "random", "--latency-source", "measured", "--db", str(db),
                            "--latency-budget-ms", "1000", "--budget-evals", "3", "--seed", "2", "--verify-top", "2",
                            "--out", str(out), "--json")  # fmt: skip
    assert code == 0, err
    result = json.loads((out / "result.json").read_text())
    assert result["latency_source"].startswith("measured")
    assert result["graph_encode_s"] is None and result["latency_computed"] == 3 and result["latency_s"] > 0
    assert all(t["latency_ms"] > 0 for t in result["trials"])
    # every candidate's measurement is in the database, stored by device_agent
    from latency_db import LatencyDB

    with LatencyDB(db, read_only=True) as ldb:
        assert len(ldb.measurements()) >= 3 + 2  # 3 during the search, 2 fresh ones to verify
    v = result["verify"]
    assert v["k"] == 2 and all(m["measured_ms"] > 0 for m in v["models"])
    # in the units of the machine's earlier runs (ratio to the reference panel x their level), the
    # median as timed beside it; the level is the search's runs', kept for a resumed run
    assert v["level_ms"] > 0 and json.loads((out / "reference_level.json").read_text())["level_ms"] == v["level_ms"]
    assert all(m["measured_raw_ms"] > 0 and 0.2 < m["measured_ms"] / m["measured_raw_ms"] < 5.0 for m in v["models"])
    # re-measured on the machine that measured it during the search: the same order of magnitude
    # (a shared, busy machine; agreement itself is a benchmark matter, not a unit test's)
    assert all(0.2 < m["ratio"] < 5.0 for m in v["models"]), v
    best = onnx.load(result["best_onnx"])
    onnx.checker.check_model(best)
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("source", ["flops", "params", "lut"])
def test_fitted_latency_sources(small_db, tmp_path, capsys, source, toy_lat) -> None:
    db, cache = small_db
    out = tmp_path / source
    code, _, err = run(capsys, "search", "--strategy", "random", "--latency-source", source, "--db", str(db),
                       "--device", "toy", "--cache", str(cache), "--latency-budget-ms", "6", "--budget-evals", "6",
                       "--out", str(out), "--json")  # fmt: skip
    assert code == 0, err
    result = json.loads((out / "result.json").read_text())
    assert result["latency_source"].startswith(f"{source}:toy")
    # where the time went: the graphs of the candidates (built directly) are part of the latency
    # source's time, which is part of the search's
    assert 0 < result["graph_encode_s"] <= result["latency_s"] <= result["wall_s"]
    assert 1 <= result["latency_computed"] <= 6 + 1000  # the budget prefilter asks for more than the trials
    done = [t for t in result["trials"] if t["state"] == "complete"]
    assert done and all(t["latency_ms"] <= 6 for t in done)
    # the fitted model tracks the device: conv-heavy cells are predicted slower than empty ones
    lats = {t["arch"]: t["latency_ms"] for t in result["trials"]}
    truth = {a: toy_lat(a) for a in lats}
    if len(set(truth.values())) > 2:
        from scipy.stats import spearmanr

        assert spearmanr(list(lats.values()), list(truth.values())).statistic > 0.5


def test_fitted_source_needs_device_measurements(small_db, tmp_path, capsys) -> None:
    db, cache = small_db
    code, _, err = run(capsys, "search", "--latency-source", "lut", "--db", str(db), "--out", str(tmp_path / "x"))
    assert code == 2 and "--device" in err and err.count("\n") == 1


def test_progress_bar_shows_best_so_far() -> None:
    from hwnas.search_report import progress
    from hwnas.study import Trial, TrialState

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Tty()
    show = progress(3, stream=stream)
    show(Trial(1, "a", TrialState.REJECTED, None, {"latency_ms": 9.0}))
    assert "none feasible yet" in stream.getvalue()
    show(Trial(2, "b", TrialState.COMPLETE, 91.5, {"latency_ms": 2.0}))
    show(Trial(3, "c", TrialState.COMPLETE, 90.0, {"latency_ms": 1.0}))
    last = stream.getvalue().split("\r")[-1]
    assert "3/3" in last and "best score 91.5 @ 2 ms" in last
    assert progress(3, stream=io.StringIO()) is None  # not a terminal: silent


def test_ctrl_c_mid_search_then_rerun_loses_nothing(small_db, tmp_path, capsys, monkeypatch) -> None:
    db, cache = small_db
    argv = ["search", "--strategy", "evolution", "--latency-source", "lut", "--db", str(db), "--device", "toy",
            "--cache", str(cache), "--budget-evals", "12", "--seed", "3", "--out", str(tmp_path / "s"), "--json"]
    real = NB201Tabular.evaluate
    calls = []

    def interrupted(self, arch):
        calls.append(arch.spec)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(self, arch)

    monkeypatch.setattr(NB201Tabular, "evaluate", interrupted)
    code, _, err = run(capsys, *argv)
    assert code == 130 and "interrupted" in err
    monkeypatch.setattr(NB201Tabular, "evaluate", real)
    seen = []
    monkeypatch.setattr(NB201Tabular, "evaluate", lambda self, arch: seen.append(arch.spec) or real(self, arch))
    code, _, err = run(capsys, *argv)
    assert code == 0, err
    result = json.loads((tmp_path / "s" / "result.json").read_text())
    assert len(result["trials"]) == 12
    # the 4 finished evaluations were kept; the interrupted one was evaluated again, first
    assert seen[0] == calls[4] and not set(calls[:4]) & set(seen)
    assert [t["arch"] for t in result["trials"][:5]] == calls[:5]


def test_db_quantile_gives_a_budget(small_db, capsys) -> None:
    db, _ = small_db
    code, out, _ = run(capsys, "db", "quantile", "--db", str(db), "--device", "toy", "--q", "30", "--json")
    assert code == 0
    got = json.loads(out)
    lats = []
    with open(db.parent / "lat.csv") as f:
        lats = [float(r["latency_ms"]) for r in csv.DictReader(f)]
    assert got["models"] == 16 and got["latency_ms"] == pytest.approx(float(np.percentile(lats, 30)))
    code, _, err = run(capsys, "db", "quantile", "--db", str(db), "--device", "toy", "--q", "101")
    assert code == 2 and "--q" in err
