"""Hard and soft latency constraints, MnasNet reward, and the parsing of budgets and weights."""

from __future__ import annotations

import math

import pytest

from hwnas.constraints import Constraint, Objective, parse_budget, parse_weights


def test_constraint_value_and_feasibility() -> None:
    c = Constraint("latency_ms", 5.0)
    assert c.value({"latency_ms": 3.0}) == -2.0 and c.feasible({"latency_ms": 5.0})
    assert not c.feasible({"latency_ms": 5.01})
    with pytest.raises(ValueError, match="no such metric"):
        c.value({"accuracy": 1.0})
    for bad in (0, -1, math.nan, math.inf):
        with pytest.raises(ValueError, match="positive number"):
            Constraint("latency_ms", bad)


def test_hard_rejects_soft_penalises() -> None:
    c = Constraint("latency_ms", 5.0)
    hard, soft = Objective(c, "hard"), Objective(c, "soft")
    fast, slow = {"accuracy": 90.0, "latency_ms": 4.0}, {"accuracy": 91.0, "latency_ms": 20.0}
    assert hard.score(fast) == 90.0 and hard.score(slow) is None
    # MnasNet: ACC * (LAT/T)^-0.07
    assert soft.score(slow) == pytest.approx(91.0 * 4.0**-0.07)
    assert soft.score(fast) == pytest.approx(90.0 * 0.8**-0.07)
    assert soft.score(fast) > soft.score(slow)
    weighted = Objective(c, "soft", weights={"accuracy": 1.0, "latency_ms": -0.5})
    assert weighted.score(slow) == pytest.approx(91.0 - 10.0)
    with pytest.raises(ValueError, match="does not measure"):
        Objective(c, "soft", weights={"energy_mj": -1.0}).score(fast)


def test_objective_validation() -> None:
    with pytest.raises(ValueError, match="--constraint must be one of"):
        Objective(None, "medium")
    with pytest.raises(ValueError, match="exponent"):
        Objective(Constraint("latency_ms", 1.0), "soft", w=0.5)
    with pytest.raises(ValueError, match="needs --latency-budget-ms or --weights"):
        Objective(None, "soft")


@pytest.mark.parametrize("text,ms", [("5", 5.0), ("5ms", 5.0), (" 0.8 ms ", 0.8), ("1e1", 10.0), (2.5, 2.5)])
def test_parse_budget_ok(text, ms) -> None:
    assert parse_budget(text) == ms


@pytest.mark.parametrize("text", ["", "-5", "0", "five", "5s", "nan", "5 ms extra", -1.0, float("nan")])
def test_parse_budget_refuses(text) -> None:
    with pytest.raises(ValueError, match="--latency-budget-ms") as exc:
        parse_budget(text)
    assert "\n" not in str(exc.value)


def test_parse_weights() -> None:
    assert parse_weights("accuracy=1, latency_ms=-0.5") == {"accuracy": 1.0, "latency_ms": -0.5}
    for bad, msg in [
        ("accuracy", "metric=number"),
        ("speed=1", "unknown metric"),
        ("accuracy=1,accuracy=2", "given twice"),
        ("accuracy=x", "not a number"),
        ("accuracy=inf", "finite"),
        ("accuracy=0", "non-zero"),
        ("", "non-zero"),
    ]:
        with pytest.raises(ValueError, match=msg):
            parse_weights(bad)
