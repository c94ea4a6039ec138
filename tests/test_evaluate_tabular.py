"""The tabular NB201 evaluator agrees with the reference table for every architecture."""

from __future__ import annotations

import csv

import pytest

from hwnas.evaluate import NB201Tabular
from hwnas.space import MacroSpace, NB201Space


def test_every_arch_matches_reference(nb201_accuracy_csv) -> None:
    space = NB201Space()
    evals = {d: NB201Tabular(d) for d in ("cifar10", "cifar100", "imagenet16_120")}
    with open(nb201_accuracy_csv) as f:
        for row in csv.DictReader(f):
            arch = space.parse(row["arch_str"])
            for d, ev in evals.items():
                assert ev.evaluate(arch).accuracy == pytest.approx(float(row[d]), abs=1e-3)
    best = max(range(space.size), key=lambda i: evals["cifar10"].table[i, 0])
    assert evals["cifar10"].evaluate(space.from_index(best)).accuracy == pytest.approx(94.3733, abs=1e-3)


def test_metrics_and_errors() -> None:
    m = NB201Tabular().evaluate(NB201Space().from_index(1))
    assert m.source == "tabular:nb201/cifar10" and m.extra["arch_idx"] == 1 and m.cost_s == 0.0
    with pytest.raises(ValueError, match="nb201 space only"):
        NB201Tabular().evaluate(MacroSpace().parse("224|24:k3e6|32:k3e1|64:k3e1|96:k3e1|160:k3e1|320:k3e1"))
    with pytest.raises(ValueError, match="dataset must be one of"):
        NB201Tabular("mnist")
