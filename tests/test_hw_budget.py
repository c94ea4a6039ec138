"""Fixed-budget design spaces (hw_space.budget) and ``hwnas codesign --fixed-budget`` end to end."""

from __future__ import annotations

import argparse
import dataclasses
import json

import numpy as np
import pytest

from hw_space import AcceleratorSpec, CostModel, resnet18
from hw_space.budget import (BUDGETS, EDGE_TPU_BUDGET, EYERISS_BUDGET, EYERISS_VOLTAGES, FixedBudgetSpace,
                             budget_by_name, budget_pe_shapes, physical_space)
from hw_space.physical import EYERISS_VF
from hwnas.codesign import JointSpace
from hwnas.codesign.joint_space import hw_key, parse_hw_key
from hwnas.errors import CLIError
from hwnas.space import NB201Space


@pytest.mark.parametrize("name", sorted(BUDGETS))
def test_budget_space_never_exceeds_caps_and_round_trips(name: str) -> None:
    budget = budget_by_name(name)
    space = FixedBudgetSpace(budget)
    assert space.contains(budget.baseline) and space.decode(space.encode(budget.baseline)) == budget.baseline
    assert len(space.cardinalities) == 5 and space.size == int(np.prod(space.cardinalities))
    rng = np.random.default_rng(0)
    seen_shapes = set()
    for _ in range(300):
        spec = space.sample(rng)
        assert spec.num_pes <= budget.pes
        assert spec.gbuf_bytes + spec.num_pes * spec.rf_bytes <= budget.sram_bytes
        assert spec.gbuf_bytes >= space.min_gbuf_bytes and spec.noc_bw <= budget.noc_bw
        assert spec.precision_bits == budget.baseline.precision_bits
        vec = space.encode(spec)
        assert space.decode(vec) == spec and np.array_equal(space.encode(space.decode(vec)), vec)
        other = space.mutate(spec, rng)
        assert other != spec and space.contains(other)
        assert int(np.sum(space.encode(other) != vec)) == 1
        seen_shapes.add((spec.rows, spec.cols))
    # every vector decodes within the caps (exhaustively over shapes x RF)
    for i in range(space.cardinalities[0]):
        for j in range(space.cardinalities[1]):
            spec = space.decode([i, j, 0, 0, 0])
            assert spec.num_pes <= budget.pes and spec.gbuf_bytes + spec.num_pes * spec.rf_bytes == budget.sram_bytes
    assert any(r != c for r, c in seen_shapes)  # non-square arrays
    assert any(r * c < budget.pes for r, c in space.pe_shapes)  # not-full arrays


def test_eyeriss_budget_numbers() -> None:
    b = EYERISS_BUDGET
    assert (b.pes, b.sram_bytes, b.noc_bw) == (168, 108 * 1024 + 168 * 520, 24.0)
    assert b.baseline.dataflow == "rs" and b.baseline.clock_mhz == 200.0 and b.baseline.precision_bits == 16
    assert EDGE_TPU_BUDGET.pes == 4096 and EDGE_TPU_BUDGET.baseline.gbuf_bytes == 8 * 1024 * 1024
    shapes = budget_pe_shapes(168)
    assert (12, 14) in shapes and (14, 12) in shapes and (12, 12) in shapes and all(r * c <= 168 for r, c in shapes)
    assert all(r * c >= 84 for r, c in shapes)


def test_budget_space_refuses() -> None:
    space = FixedBudgetSpace(EYERISS_BUDGET)
    base = EYERISS_BUDGET.baseline
    for bad, needle in ((dataclasses.replace(base, gbuf_bytes=2 * 1024 * 1024), "gbuf_bytes"),
                        (dataclasses.replace(base, noc_bw=64.0), "noc_bw"),
                        (dataclasses.replace(base, precision_bits=8), "precision_bits"),
                        (dataclasses.replace(base, rows=13, cols=13, gbuf_bytes=space.gbuf_bytes(13, 13, 520)), "pe_shapes"),
                        (dataclasses.replace(base, clock_mhz=800.0), "clock_mhz")):
        assert not space.contains(bad)
        with pytest.raises(ValueError, match=needle):
            space.encode(bad)
    with pytest.raises(ValueError, match="168 PEs"):
        FixedBudgetSpace(EYERISS_BUDGET, pe_shapes=((16, 16),))
    with pytest.raises(ValueError, match="rf_bytes"):
        FixedBudgetSpace(EYERISS_BUDGET, rf_bytes=(2048,))
    with pytest.raises(ValueError, match="duplicate"):
        FixedBudgetSpace(EYERISS_BUDGET, dataflows=("ws", "ws"))
    with pytest.raises(ValueError, match="vector"):
        space.decode([0, 0, 0])
    with pytest.raises(ValueError, match="unknown resource budget"):
        budget_by_name("tpu-v4")
    one = FixedBudgetSpace(EYERISS_BUDGET, pe_shapes=((12, 14),), rf_bytes=(520,), dataflows=("rs",))
    with pytest.raises(ValueError, match="single design"):
        one.mutate(EYERISS_BUDGET.baseline, np.random.default_rng(0))


def test_physical_space_prices_voltage_and_dram_channels() -> None:
    space = physical_space(EYERISS_BUDGET)
    assert space.positions[3:] == ("voltages", "dram_channels") and space.cardinalities[3:] == (5, 3)
    rng = np.random.default_rng(1)
    seen = set()
    for _ in range(200):
        spec = space.sample(rng)
        assert spec.voltage in EYERISS_VOLTAGES and spec.clock_mhz == EYERISS_VF.f_max_mhz(spec.voltage)
        assert spec.dram_tech == "lpddr4" and spec.dram_channels in (1, 2, 4)
        assert space.decode(space.encode(spec)) == spec and spec.num_pes <= 168
        assert parse_hw_key(hw_key(spec)) == spec  # the joint space's text form keeps V and channels
        seen.add((spec.voltage, spec.dram_channels))
    assert len(seen) == 15
    lo, hi = (space.decode([0, 0, 0, i, 0]) for i in (0, 4))
    assert (lo.clock_mhz, hi.clock_mhz) == pytest.approx((100.0, 250.0), rel=1e-6)  # Eyeriss's published range
    # the same design at a lower voltage: slower, and less MAC energy per operation (V^2)
    layers = resnet18()[:4]
    slow, fast = (CostModel(s).network(layers) for s in (lo, hi))
    assert slow["latency_ms"] > fast["latency_ms"]
    assert slow["energy_breakdown_uj"]["mac"] / fast["energy_breakdown_uj"]["mac"] == pytest.approx((0.82 / 1.17) ** 2)
    one, four = (space.decode([0, 0, 0, 2, i]) for i in (0, 2))
    assert CostModel(four).network(layers)["area_mm2"] > CostModel(one).network(layers)["area_mm2"]  # PHYs
    assert not space.contains(EYERISS_BUDGET.baseline)  # no voltage, no channels: not a design of it
    with pytest.raises(ValueError, match="outside the Eyeriss 65 nm V-f curve"):
        physical_space(EDGE_TPU_BUDGET)
    with pytest.raises(ValueError, match="give voltages or clock_mhz, not both"):
        FixedBudgetSpace(EYERISS_BUDGET, voltages=(1.0,), clock_mhz=(200.0,))
    with pytest.raises(ValueError, match="dram_channels must be positive integers"):
        FixedBudgetSpace(EYERISS_BUDGET, dram_channels=(0,))
    with pytest.raises(ValueError, match="voltage must be a number in"):
        FixedBudgetSpace(EYERISS_BUDGET, voltages=(0.5,))


def test_budget_designs_cost_and_joint_space() -> None:
    space = FixedBudgetSpace(EYERISS_BUDGET)
    rng = np.random.default_rng(3)
    for _ in range(20):  # every design runs ResNet-18 (its global buffer holds a tile of every layer)
        net = CostModel(space.sample(rng)).network(resnet18())
        assert net["latency_ms"] > 0 and net["energy_uj"] > 0
    joint = JointSpace(NB201Space(), space)
    for _ in range(30):
        a = joint.sample(rng)
        assert joint.parse(a.spec) == a and joint.decode(joint.encode(a)) == a
        _, spec = joint.split(a)
        assert space.contains(spec) and isinstance(spec, AcceleratorSpec)
    with pytest.raises(ValueError):
        joint.parse(a.spec.split("@")[0] + "@ws-16x16-rf64-gb256k-dram16-noc64-800mhz-8b")


def _run(*argv: str) -> tuple[int, str]:
    from hwnas.cli import codesign as codesign_command

    parser = argparse.ArgumentParser()
    codesign_command.add_parser(parser.add_subparsers(), "unused.db")
    args = parser.parse_args(["codesign", *argv])
    try:
        return args.func(args), ""
    except CLIError as exc:
        return 2, str(exc)


@pytest.mark.parametrize("mode", ["nested", "joint"])
def test_codesign_fixed_budget_end_to_end(tmp_path, mode: str) -> None:
    out = tmp_path / mode
    code, err = _run("--fixed-budget", "eyeriss", "--mode", mode, "--strategy", "random", "--budget-evals", "3",
                     "--sizing-evals", "40", "--seed", "0", "--out", str(out))  # fmt: skip
    assert code == 0, err
    result = json.loads((out / "result.json").read_text())
    assert result["hw_space"] == "budget:eyeriss" and result["mapper"] == "search"
    space = FixedBudgetSpace(EYERISS_BUDGET)
    for t in result["trials"]:
        if t["state"] == "complete":
            spec = AcceleratorSpec.from_dict(t["hw"])
            assert space.contains(spec) and spec.num_pes <= 168
    assert space.contains(AcceleratorSpec.from_dict(result["best"]["hw"]))
    code, err = _run("--fixed-budget", "eyeriss", "--hw-space", "x.json", "--out", str(tmp_path / "bad"))
    assert code == 2 and "--fixed-budget" in err and "\n" not in err
    code, err = _run("--physical", "--out", str(tmp_path / "bad2"))
    assert code == 2 and "--fixed-budget eyeriss" in err and "\n" not in err


def test_codesign_mapper_flag_changes_nothing_but_traffic(tmp_path) -> None:
    """--mapper search on the default space: same trials, never more energy than --mapper fixed."""
    runs = {}
    for mapper in ("fixed", "search"):
        out = tmp_path / mapper
        code, err = _run("--mapper", mapper, "--strategy", "random", "--budget-evals", "4", "--seed", "5",
                         "--out", str(out))  # fmt: skip
        assert code == 0, err
        runs[mapper] = {t["arch"]: t for t in json.loads((out / "result.json").read_text())["trials"]
                        if t["state"] == "complete"}
    assert runs["fixed"].keys() == runs["search"].keys() and runs["fixed"]
    for arch, t in runs["fixed"].items():
        assert runs["search"][arch]["energy_uj"] <= t["energy_uj"] * (1 + 1e-12)
        assert runs["search"][arch]["latency_ms"] <= t["latency_ms"] * (1 + 1e-12)
