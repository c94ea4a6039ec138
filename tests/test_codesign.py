"""Codesign: the joint space contract, the hardware metrics, and ``hwnas codesign`` end to end."""

from __future__ import annotations

import argparse
import dataclasses
import json

import numpy as np
import pytest

from hw_space import AcceleratorSpec, DesignSpace
from hwnas.codesign import HardwareBudget, HardwareCost, JointSpace, hw_key, parse_hw_key
from hwnas.errors import CLIError
from hwnas.space import NB201Space

NET = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
SMALL_HW = {"pe_shapes": [[8, 8], [16, 16], [32, 32]], "rf_bytes": [64], "gbuf_bytes": [65536, 262144],
            "dataflows": ["ws", "os"], "dram_bw": [16], "clock_mhz": [400, 800], "precision_bits": [8]}


@pytest.fixture(scope="module")
def space() -> JointSpace:
    return JointSpace(NB201Space(), DesignSpace())


@pytest.fixture(scope="module")
def cost() -> HardwareCost:
    return HardwareCost(NB201Space())


def test_hw_key_round_trip() -> None:
    rng = np.random.default_rng(0)
    ds = DesignSpace()
    for _ in range(50):
        spec = ds.sample(rng)
        assert parse_hw_key(hw_key(spec)) == spec
    odd = dataclasses.replace(ds.sample(rng), gbuf_bytes=1000, dram_bw=12.5)
    assert parse_hw_key(hw_key(odd)) == odd


def test_joint_space_contract(space: JointSpace) -> None:
    rng = np.random.default_rng(1)
    assert space.name == "joint-nb201" and space.size == NB201Space().size * DesignSpace().size
    assert space.cardinalities == NB201Space().cardinalities + DesignSpace().cardinalities
    for _ in range(100):
        a = space.sample(rng)
        assert space.parse(a.spec) == a and space.decode(space.encode(a)) == a and space.contains(a)
        b = space.mutate(a, rng)
        assert b != a and space.contains(b)
        net, spec = space.split(a)
        assert space.make(net, spec) == a and isinstance(spec, AcceleratorSpec)
    draw = lambda seed: [space.mutate(space.sample(r), r) for r in [np.random.default_rng(seed)] for _ in range(5)]  # noqa: E731
    assert draw(3) == draw(3)
    a = space.sample(rng)
    assert space.input_shape(a) == (1, 3, 32, 32)


@pytest.mark.parametrize("bad", [
    "no-at-sign", f"{NET}@", f"{NET}@ws-16x16", "|bogus~0|+|none~0|none~1|+|none~0|none~1|none~2|@ws-16x16-rf64-gb256k-dram16-noc64-800mhz-8b",
    f"{NET}@ws-3x3-rf64-gb256k-dram16-noc64-800mhz-8b", f"{NET}@xx-16x16-rf64-gb256k-dram16-noc64-800mhz-8b",
    f"{NET}@ws-16x16-rf64-gb256k-dram16-noc64-800mhz-4b",
])  # fmt: skip
def test_joint_space_refuses(space: JointSpace, bad: str) -> None:
    with pytest.raises(ValueError) as exc:
        space.parse(bad)
    assert "\n" not in str(exc.value)


def test_hardware_cost_and_budget(cost: HardwareCost) -> None:
    net = NB201Space().parse(NET)
    base = AcceleratorSpec(rows=8, cols=8, rf_bytes=64, gbuf_bytes=256 * 1024, dataflow="ws", dram_bw=16.0,
                           noc_bw=64.0, clock_mhz=800.0, precision_bits=8)  # fmt: skip
    small = cost.metrics(net, base)
    big = cost.metrics(net, dataclasses.replace(base, rows=32, cols=32))
    for m in (small, big):
        assert m["latency_ms"] > 0 and m["energy_uj"] > 0 and m["area_mm2"] > 0
        assert m["power_mw"] == pytest.approx(m["energy_uj"] / m["latency_ms"])
        assert m["edp_uj_ms"] == pytest.approx(m["energy_uj"] * m["latency_ms"])
    assert big["latency_ms"] < small["latency_ms"] and big["area_mm2"] > small["area_mm2"]
    assert cost.cached == 1  # one export for both designs
    budget = HardwareBudget(area_mm2=small["area_mm2"] * 1.01)
    assert budget.area_violation(base) is None and "area" in budget.area_violation(dataclasses.replace(base, rows=32, cols=32))
    assert HardwareBudget(power_mw=1e-3).violations(small)[0].startswith("power")
    with pytest.raises(ValueError, match="--area-budget-mm2"):
        HardwareBudget(area_mm2=-1.0)


# -- the command ----------------------------------------------------------------------------------
def _run(*argv: str) -> tuple[int, str]:
    from hwnas.cli import codesign as codesign_command

    parser = argparse.ArgumentParser()
    codesign_command.add_parser(parser.add_subparsers(), "unused.db")
    args = parser.parse_args(["codesign", *argv])
    try:
        return args.func(args), ""
    except CLIError as exc:  # the CLI prints it as one line and exits 2
        return 2, str(exc)


@pytest.fixture(scope="module")
def hw_json(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("hw") / "hw.json"
    path.write_text(json.dumps(SMALL_HW))
    return str(path)


def test_codesign_nsga2_and_resume(tmp_path, hw_json: str, capsys, monkeypatch) -> None:
    out = tmp_path / "nsga2"
    argv = ["--strategy", "nsga2", "--hw-space", hw_json, "--budget-evals", "8", "--seed", "0", "--out", str(out), "--json"]
    code, err = _run(*argv)
    assert code == 0, err
    result = json.loads((out / "result.json").read_text())
    assert json.loads(capsys.readouterr().out)["best"] == result["best"]
    assert len(result["trials"]) == 8 and result["pareto_front"] and (out / "pareto.png").stat().st_size > 0
    best = result["best"]
    assert {"arch", "hw", "accuracy", "latency_ms", "energy_uj", "area_mm2", "power_mw", "edp_uj_ms"} <= set(best)
    assert AcceleratorSpec.from_dict(best["hw"])
    # the same command again continues the same study: nothing is evaluated again
    from hwnas.evaluate.tabular import NB201Tabular

    def boom(self, arch):  # a fake evaluator that must not be called
        raise AssertionError("re-evaluated")

    monkeypatch.setattr(NB201Tabular, "evaluate", boom)
    code, err = _run(*argv)
    assert code == 0, err
    assert json.loads((out / "result.json").read_text())["trials"] == result["trials"]


def test_codesign_evolution_under_budgets(tmp_path, hw_json: str) -> None:
    out = tmp_path / "evo"
    code, err = _run("--strategy", "evolution", "--hw-space", hw_json, "--area-budget-mm2", "8",
                     "--power-budget-mw", "3000", "--budget-evals", "8", "--seed", "2", "--out", str(out))  # fmt: skip
    assert code == 0, err
    result = json.loads((out / "result.json").read_text())
    assert result["pareto_front"] and (out / "pareto.png").exists()
    for t in result["trials"]:
        if t["state"] == "complete":
            assert t["area_mm2"] <= 8 and t["power_mw"] <= 3000
        elif t["state"] == "rejected":
            assert "accuracy" not in t and t["rejected_by"]


def test_codesign_infeasible_and_bad_flags(tmp_path, hw_json: str) -> None:
    out = tmp_path / "none"
    code, err = _run("--strategy", "random", "--area-budget-mm2", "1e-6", "--budget-evals", "5", "--out", str(out))
    assert code == 2 and err.startswith("no feasible design") and "\n" not in err
    assert json.loads((out / "result.json").read_text())["best"] is None
    for flags in (["--area-budget-mm2", "-3"], ["--power-budget-mw", "lots"], ["--latency-budget-ms", "0"],
                  ["--objective", "accuracy,speed"], ["--constraint", "soft"], ["--budget-evals", "0"]):
        code, err = _run(*flags, "--out", str(tmp_path / "bad"))
        assert code == 2 and err and "\n" not in err, flags
    bad_hw = tmp_path / "bad.json"
    bad_hw.write_text(json.dumps({"pe_shapes": [[0, 8]]}))
    code, err = _run("--hw-space", str(bad_hw), "--out", str(tmp_path / "bad"))
    assert code == 2 and "rows" in err


def test_codesign_nested_sizes_each_network(tmp_path, hw_json: str) -> None:
    from hwnas.codesign import load_design_space
    from hwnas.codesign.sizing import size_accelerator

    out = tmp_path / "nested"
    argv = ["--mode", "nested", "--strategy", "evolution", "--hw-space", hw_json, "--area-budget-mm2", "8",
            "--budget-evals", "5", "--seed", "1", "--out", str(out)]  # fmt: skip
    code, err = _run(*argv)
    assert code == 0, err
    result = json.loads((out / "result.json").read_text())
    assert result["mode"] == "nested" and result["size_for"] == "edp_uj_ms"
    hw = load_design_space(hw_json)
    space, cost = JointSpace(NB201Space(), hw), HardwareCost(NB201Space())
    done = [t for t in result["trials"] if t["state"] == "complete"]
    assert done and all("@" not in t["arch"] and t["area_mm2"] <= 8 for t in done)
    for t in done[:2]:  # each network carries the design the sizing search picks for it
        arch = NB201Space().parse(t["arch"])
        sized = size_accelerator(cost.layers(arch), hw, HardwareBudget(area_mm2=8), max_evals=300, seed=1)
        assert t["hw_key"] == hw_key(sized.spec) and t["edp_uj_ms"] == pytest.approx(sized.metrics["edp_uj_ms"])
    best = result["best"]
    assert space.parse(best["joint"]) and best["arch"] == best["joint"].split("@")[0]
    assert all("@" in row["arch"] for row in result["pareto_front"])
    # resuming with the other mode is refused, naming what changed
    with pytest.raises((CLIError, ValueError), match="study"):
        code, err = _run(*[a if a != "nested" else "joint" for a in argv])
        if code:
            raise CLIError(err)
    code, err = _run("--mode", "nested", "--hw-space", hw_json, "--area-budget-mm2", "1e-6", "--budget-evals", "3",
                     "--strategy", "random", "--out", str(tmp_path / "none"))  # fmt: skip
    assert code == 2 and err.startswith("no feasible design") and "violated: area" in err


def test_codesign_rl_soft_and_macro_space(tmp_path, torch_one_thread) -> None:
    out = tmp_path / "rl"
    code, err = _run("--strategy", "rl", "--constraint", "soft", "--weights", "accuracy=1,edp_uj_ms=-0.001",
                     "--budget-evals", "4", "--out", str(out))  # fmt: skip
    assert code == 0, err
    result = json.loads((out / "result.json").read_text())
    for t in result["trials"]:
        if t["state"] == "complete":
            assert t["score"] == pytest.approx(t["accuracy"] - 0.001 * t["edp_uj_ms"])
    out = tmp_path / "macro"
    code, err = _run("--space", "macro", "--evaluator", "zero-cost", "--strategy", "random", "--budget-evals", "2",
                     "--area-budget-mm2", "20", "--out", str(out))  # fmt: skip
    assert code == 0, err
    result = json.loads((out / "result.json").read_text())
    assert result["space"] == "joint-macro" and result["best"]["accuracy_source"].startswith("zero-cost")
