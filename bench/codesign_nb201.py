"""Joint network x accelerator search vs the sequential baseline on NB201 (tabular CIFAR-10 accuracy,
hw_space's analytical cost model), at the same evaluation budget.

* joint: NSGA-II over :class:`hwnas.codesign.JointSpace` on (accuracy max, EDP min), ``N`` trials;
* sequential: (1) NSGA-II over the network alone on (accuracy max, latency on a fixed mid-size
  reference accelerator min), ``N/2`` trials; the network kept is the fastest on the reference with
  accuracy >= the target (else the most accurate); (2) aging evolution over the accelerator alone for
  that network, minimising EDP, ``N/2`` trials.

Reported per seed: the sequential design's accuracy and EDP, the joint search's lowest EDP among
designs with accuracy >= the target and among designs at least as accurate as the sequential one,
and the ratio (sequential / joint; > 1 means the joint search wins). Optional ``--area-budget-mm2``
applies to both. NB201 layer lists are assembled from two real ONNX exports (all-conv3x3,
all-conv1x1) and checked against full exports of random cells at start-up (so the bench runs in
seconds instead of one export per network).

Run: ``.venv/bin/python bench/codesign_nb201.py [--budget 200] [--seeds 0 1 2] [--target 93.0]``
"""

from __future__ import annotations

import argparse
import time
from typing import Any, Sequence

import numpy as np

from hw_space import AcceleratorSpec, DesignSpace, Layer
from hwnas.codesign import HardwareCost, JointSpace, hw_key, parse_hw_key
from hwnas.evaluate.tabular import NB201Tabular
from hwnas.space import NB201Space
from hwnas.space.base import Arch, SearchSpace
from hwnas.space.nb201 import OPS as _OPS
from hwnas.strategy import NSGA2, RegularizedEvolution

REFERENCE = AcceleratorSpec(rows=16, cols=16, rf_bytes=64, gbuf_bytes=256 * 1024, dataflow="ws", dram_bw=16.0,
                            noc_bw=64.0, clock_mhz=800.0, precision_bits=8)  # fmt: skip
CONV = {"nor_conv_3x3": 3, "nor_conv_1x1": 1}


class NB201Layers:
    """Layers of any NB201 net from two exports: per (cell, edge) conv layers plus the fixed ones."""

    def __init__(self, space: NB201Space, cost: HardwareCost) -> None:
        self.space, self.cost = space, cost
        self.edge: dict[str, dict[tuple[str, str], Layer]] = {}
        fixed: list[Layer] = []
        for op in CONV:
            arch = space.decode([_OPS.index(op)] * len(space.cardinalities))
            fixed = []
            for layer in cost.layers(arch):
                parts = layer.name.split("/")
                edge = [p for p in parts if p.startswith("edge_ops.") and p.count(".") == 1]
                cell = [p for p in parts if p.startswith("cells.")]
                if edge and cell:
                    self.edge.setdefault(op, {})[(cell[0], edge[0])] = layer
                else:
                    fixed.append(layer)
        self.fixed = fixed

    def layers(self, arch: Arch) -> list[Layer]:
        ops = [_OPS[i] for i in self.space.encode(arch)]
        out = list(self.fixed)
        for (cell, edge), _ in self.edge["nor_conv_3x3"].items():
            op = ops[int(edge.split(".")[1])]
            if op in CONV:
                out.append(self.edge[op][(cell, edge)])
        return out

    def seed(self, arch: Arch) -> None:
        self.cost.set_layers(arch, self.layers(arch))


def _key(layers: Sequence[Layer]) -> list[tuple[Any, ...]]:
    return sorted((l.ifmap_h, l.ifmap_w, l.filter_h, l.channels, l.num_filter, l.stride, l.kind) for l in layers)


class HwOnly(SearchSpace):
    """The accelerator design space as a SearchSpace (for stage 2 of the baseline)."""

    name = "hw"

    def __init__(self, hw: DesignSpace) -> None:
        self.hw = hw

    @property
    def size(self) -> int:
        return self.hw.size

    @property
    def cardinalities(self) -> tuple[int, ...]:
        return self.hw.cardinalities

    def parse(self, text: str) -> Arch:
        return Arch(self.name, hw_key(parse_hw_key(text)))

    def sample(self, rng: np.random.Generator) -> Arch:
        return Arch(self.name, hw_key(self.hw.sample(rng)))

    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch:
        return Arch(self.name, hw_key(self.hw.mutate(parse_hw_key(arch.spec), rng)))

    def encode(self, arch: Arch) -> np.ndarray:
        return self.hw.encode(parse_hw_key(arch.spec))

    def decode(self, vector: Any) -> Arch:
        return Arch(self.name, hw_key(self.hw.decode(vector)))

    def input_shape(self, arch: Arch) -> tuple[int, int, int, int]:
        raise ValueError("an accelerator design has no network input")

    def to_torch(self, arch: Arch, num_classes: int | None = None) -> Any:
        raise ValueError("an accelerator design has no network to build")


def _run(strategy: Any, n: int, evaluate: Any) -> list[tuple[Arch, dict[str, Any]]]:
    """Plain ask/tell loop (no study file); repeated asks are answered from memory but still count."""
    seen: dict[str, tuple[dict[str, Any], float | None]] = {}
    out = []
    for _ in range(n):
        arch = strategy.ask()
        if arch.spec not in seen:
            seen[arch.spec] = evaluate(arch)
        metrics, score = seen[arch.spec]
        strategy.tell(arch, score, metrics)
        out.append((arch, metrics))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", type=int, default=200, help="trials per method (default 200)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--target", type=float, default=93.0, help="accuracy target in %% (default 93.0)")
    p.add_argument("--area-budget-mm2", type=float, default=None)
    p.add_argument("--joint", choices=("nsga2", "evolution"), default="nsga2",
                   help="joint method: NSGA-II over (accuracy, EDP), or aging evolution on -log EDP above the "
                   "accuracy target (below it, on accuracy)")  # fmt: skip
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    net, hw = NB201Space(), DesignSpace()
    joint, tab, cost = JointSpace(net, hw), NB201Tabular(), HardwareCost(net)
    table = NB201Layers(net, cost)
    rng = np.random.default_rng(123)
    for _ in range(2):  # the assembled layer lists equal full exports
        a = net.sample(rng)
        assert _key(table.layers(a)) == _key(HardwareCost(net).layers(a)), f"layer assembly differs for {a.spec}"
    acc = lambda a: float(tab.evaluate(a).accuracy)  # noqa: E731
    area_ok = lambda s: args.area_budget_mm2 is None or HardwareCost.area_mm2(s) <= args.area_budget_mm2  # noqa: E731

    def hw_metrics(a: Arch, spec: AcceleratorSpec) -> dict[str, Any]:
        if a.spec not in seeded:
            table.seed(a)
            seeded.add(a.spec)
        return cost.metrics(a, spec)

    seeded: set[str] = set()
    rows = []
    for seed in args.seeds:
        def ev_joint(j: Arch) -> tuple[dict[str, Any], float | None]:
            a, spec = joint.split(j)
            if not area_ok(spec):
                return {"area_mm2": HardwareCost.area_mm2(spec)}, None
            m = {**hw_metrics(a, spec), "accuracy": acc(a)}
            return m, m["accuracy"]

        def ev_joint_floor(j: Arch) -> tuple[dict[str, Any], float | None]:
            m, score = ev_joint(j)
            if score is None:
                return m, None
            # the accuracy target as a floor: below it, climb accuracy; above it, lower EDP
            return m, (-float(np.log(m["edp_uj_ms"])) if m["accuracy"] >= args.target else m["accuracy"] - 1e3)

        if args.joint == "nsga2":
            joint_strategy: Any = NSGA2(joint, objectives=(("accuracy", "max"), ("edp_uj_ms", "min")), population=20, seed=seed)
            jt = _run(joint_strategy, args.budget, ev_joint)
        else:
            jt = _run(RegularizedEvolution(joint, population=20, sample=5, seed=seed), args.budget, ev_joint_floor)

        def ev_net(a: Arch) -> tuple[dict[str, Any], float | None]:
            m = {"accuracy": acc(a), "latency_ms": hw_metrics(a, REFERENCE)["latency_ms"]}
            return m, m["accuracy"]

        half = args.budget // 2
        st1 = _run(NSGA2(net, objectives=(("accuracy", "max"), ("latency_ms", "min")), population=20, seed=seed), half, ev_net)
        ok = [(m["latency_ms"], a) for a, m in st1 if m["accuracy"] >= args.target]
        chosen = min(ok, key=lambda t: t[0])[1] if ok else max(st1, key=lambda t: t[1]["accuracy"])[0]

        def ev_hw(h: Arch) -> tuple[dict[str, Any], float | None]:
            spec = parse_hw_key(h.spec)
            if not area_ok(spec):
                return {}, None
            m = hw_metrics(chosen, spec)
            return m, -m["edp_uj_ms"]

        st2 = _run(RegularizedEvolution(HwOnly(hw), population=20, sample=5, seed=seed), args.budget - half, ev_hw)
        seq_edp = min((m["edp_uj_ms"] for _, m in st2 if "edp_uj_ms" in m), default=float("nan"))
        seq_acc = acc(chosen)
        done = [m for _, m in jt if "accuracy" in m]
        j_t = min((m["edp_uj_ms"] for m in done if m["accuracy"] >= args.target), default=float("nan"))
        j_eq = min((m["edp_uj_ms"] for m in done if m["accuracy"] >= seq_acc), default=float("nan"))
        rows.append((seed, seq_acc, seq_edp, j_t, j_eq, seq_edp / j_eq))
    print(f"NB201 codesign, {args.budget} trials per method, accuracy target {args.target}%, "
          f"area budget {args.area_budget_mm2} mm2; EDP in uJ*ms per image (batch 1)")
    print(f"{'seed':>4} {'seq acc':>8} {'seq EDP':>10} {'joint EDP@target':>17} {'joint EDP@>=seq acc':>20} {'seq/joint':>10}")
    for seed, sa, se, jt_, je, r in rows:
        print(f"{seed:>4} {sa:>8.2f} {se:>10.4g} {jt_:>17.4g} {je:>20.4g} {r:>10.3g}")
    ratios = np.array([r[-1] for r in rows], dtype=float)
    print(f"geomean seq/joint EDP ratio at >= equal accuracy: {np.exp(np.nanmean(np.log(ratios))):.3g}  "
          f"({len(seeded)} networks costed, {time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
