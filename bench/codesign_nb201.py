"""Joint network x accelerator search vs the sequential baseline on NB201 (tabular CIFAR-10 accuracy,
hw_space's analytical cost model, memory-bound steps included), at equal numbers of accuracy
evaluations (the costly part of codesign; the cost model is not counted).

Every method searches for the lowest-EDP design whose accuracy reaches ``--target``, within the area
(and optional power) budget, with the same strategy: aging evolution (population 20, sample 5)
scoring ``-log cost`` above the target and ``accuracy - 1000`` below it.

* ``seq-<proxy>`` (the sequential baseline): search the network alone, ``N`` networks, minimising a
  latency proxy: ``flops`` (MACs), ``ref`` (the cost model's latency on a fixed mid-size reference
  accelerator, 16x16 WS, 256 KB, 800 MHz), ``pixel3`` (the phone's published latency from the shared
  NB201 tables, when present); then size the accelerator for the network kept (the lowest proxy at
  accuracy >= target) with :func:`hwnas.codesign.sizing.size_accelerator`.
* ``nested`` (joint): the same search over networks, each scored by the EDP of the accelerator
  sized for it by the same sizing search (``hwnas codesign --mode nested``).
* ``flat-evolution`` / ``flat-nsga2`` (joint): the strategy over (network, accelerator) pairs of
  :class:`~hwnas.codesign.JointSpace`, ``N`` trials (``hwnas codesign --mode joint``); NSGA-II on
  (accuracy max, EDP min).

Printed per method: the median over seeds of the lowest EDP at accuracy >= target, the geometric
mean over seeds of (method EDP / nested EDP) (> 1: the nested joint search is better), and per-seed
win/tie/loss counts against nested. NB201 layer lists come from real ONNX exports, cached in
``.hwnas/bench-cache/`` (an export takes ~0.2 s; the first run exports a few hundred networks).

Fixed budget (issue 19, ``--fixed-budget eyeriss|edge-tpu``): every design has the baseline chip's
PEs, on-chip storage and NoC bandwidth (:class:`hw_space.budget.FixedBudgetSpace`; no area budget),
and each layer's buffer-level loop order and tiling is searched (:class:`hw_space.mapper.BufferMapper`).
The ``ref`` proxy is then the baseline chip itself (network first on the chip you have, then
organise the hardware for it). Two more rows: ``nested-fixed-tiling`` (the nested search with the
cost model's fixed tiling: what the mapper adds) and the layer-by-layer account of one seed: for
the strongest sequential baseline's network and the nested one, each distinct layer's count,
mapping, latency and energy, so a small gain can be traced to the layers that make it.

Run: ``.venv/bin/python bench/codesign_nb201.py [--budget 100] [--seeds 0 1 2 3 4 5 6 7 8 9]
[--target 93.0] [--area-budget-mm2 10] [--power-budget-mw P] [--fixed-budget eyeriss]``
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hw_space import AcceleratorSpec, DesignSpace, Layer
from hwnas.codesign import HardwareCost, JointSpace
from hwnas.codesign.joint_space import hw_key
from hwnas.evaluate.tabular import NB201Tabular
from hwnas.space import NB201Space
from hwnas.space.base import Arch
from hwnas.strategy import NSGA2, RegularizedEvolution

REFERENCE = AcceleratorSpec(rows=16, cols=16, rf_bytes=64, gbuf_bytes=256 * 1024, dataflow="ws", dram_bw=16.0,
                            noc_bw=64.0, clock_mhz=800.0, precision_bits=8)  # fmt: skip
CACHE = Path(".hwnas/bench-cache/nb201-layers.json")


class DiskCache:
    """JSON-able values per network spec, computed once and kept on disk across runs (written
    atomically every ``every`` new values and on :meth:`save`)."""

    def __init__(self, path: Path, compute: Any, every: int = 50) -> None:
        self.path, self.compute, self.every = path, compute, every
        self.data: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
        self.dirty = 0

    def get(self, arch: Arch) -> Any:
        if arch.spec not in self.data:
            self.data[arch.spec] = self.compute(arch)
            self.dirty += 1
            if self.dirty >= self.every:
                self.save()
        return self.data[arch.spec]

    def save(self) -> None:
        if self.dirty:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.data))
            os.replace(tmp, self.path)
            self.dirty = 0


class NB201Layers:
    """Layers of a space's networks from real exports (``HardwareCost.layers``), cached on disk
    across runs (an NB201 export takes ~0.2 s, a 224 px macro one ~1 s)."""

    def __init__(self, space: Any, cost: HardwareCost, path: Path = CACHE) -> None:
        self.space, self.cost = space, cost
        self.cache = DiskCache(path, lambda a: [dataclasses.asdict(layer) for layer in cost.layers(a)])

    def layers(self, arch: Arch) -> list[Layer]:
        return [Layer(**d) for d in self.cache.get(arch)]

    def seed(self, arch: Arch) -> None:
        self.cost.set_layers(arch, self.layers(arch))

    def save(self) -> None:
        self.cache.save()


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


TABLE = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "nb201" / "latency_ms.csv"


def _floor(target: float) -> Any:
    """Score: ``-log cost`` at accuracy >= target, else ``accuracy - 1000`` (climb to the target first)."""
    return lambda acc, cost: float(-np.log(cost)) if acc >= target else acc - 1e3


def _kind(layer: Layer) -> str:
    if layer.kind != "conv":
        return layer.kind
    dw = "dw" if layer.groups > 1 and layer.groups == layer.channels else "conv"
    return f"{dw}{layer.filter_h}x{layer.filter_w}"


def explain(named: dict[str, Arch], get: Any, mapper: Any, acc: Any, acc_label: str = "accuracy {:.2f}%") -> None:
    """Print, per network, each distinct layer's count, shape, mapping (buffer-level loop order and
    tiles), bound (compute / DRAM / NoC) and its share of latency and energy on the design sized
    for it; then latency and energy per layer kind side by side."""
    from hw_space import CostModel
    from hw_space.systolic import layer_arrays
    from hwnas.codesign.hw_eval import unique_layers

    kinds: dict[str, dict[str, tuple[float, float]]] = {}
    for label, arch in named.items():
        layers, spec = get(arch)
        uniq, counts = unique_layers(layers)
        d = CostModel(spec, mapper=mapper).layers(uniq)
        plan = mapper.plan(layer_arrays(uniq), 1, spec.gbuf_bytes // (spec.precision_bits // 8))
        lat, en = counts * d["latency_ms"], counts * d["energy_uj"]
        print(f"\n{label}: {arch.spec}  {acc_label.format(acc(arch))}  on {hw_key(spec)}\n"
              f"  latency {lat.sum():.4g} ms, energy {en.sum():.4g} uJ, EDP {lat.sum() * en.sum():.4g} uJ*ms")
        print(f"  {'layer':<28} {'n':>3} {'lat %':>6} {'energy %':>8} {'bound':>7} {'util':>5}  mapping")
        bound = np.where(d["total_cycles"] == d["compute_cycles"], "compute",
                         np.where(d["total_cycles"] == d["dram_cycles"], "dram", "noc"))
        for i in np.argsort(-(lat / lat.sum() + en / en.sum())):
            u = uniq[i]
            shape = f"{_kind(u)} {u.channels}->{u.num_filter} {u.ifmap_h}x{u.ifmap_w}/{u.stride}"
            mapping = "streamed (memory-bound step)" if u.memory_bound else plan["mapping"][i]
            print(f"  {shape:<28} {int(counts[i]):>3} {100 * lat[i] / lat.sum():>6.1f} {100 * en[i] / en.sum():>8.1f} "
                  f"{bound[i]:>7} {float(d['utilization'][i]):>5.2f}  {mapping}")
        for i, u in enumerate(uniq):
            k = kinds.setdefault(_kind(u), {})
            old = k.get(label, (0.0, 0.0))
            k[label] = (old[0] + lat[i], old[1] + en[i])
    labels = list(named)
    print("\n  per layer kind, latency ms / energy uJ: " + " | ".join(labels))
    for kind, by in sorted(kinds.items()):
        print(f"  {kind:<10} " + " | ".join(f"{by.get(lb, (0, 0))[0]:8.4g} ms {by.get(lb, (0, 0))[1]:9.4g} uJ" for lb in labels))


def parser(description: str, target: float | None) -> argparse.ArgumentParser:
    """The flags every codesign bench shares (this one and ``codesign_macro.py``)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--budget", type=int, default=100, help="networks (trials for flat methods) per method (default 100)")
    p.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    p.add_argument("--target", type=float, default=target, help=f"accuracy target (default {target})")
    p.add_argument("--area-budget-mm2", type=float, default=10.0, help="area budget (default 10 mm2)")
    p.add_argument("--power-budget-mw", type=float, default=None)
    p.add_argument("--sizing-evals", type=int, default=300, help="designs costed per network when sizing (default 300)")
    p.add_argument("--fixed-budget", choices=("eyeriss", "edge-tpu"), default=None,
                   help="NAAS-style fixed budget: the baseline chip's resources, mapper search (no area budget)")
    p.add_argument("--physical", action="store_true", help="with --fixed-budget eyeriss: search supply voltage "
                   "and LPDDR4 channels too (hw_space.budget.physical_space)")
    p.add_argument("--no-flat", action="store_true", help="skip the flat joint encodings (flat-evolution, flat-nsga2): "
                   "they cost the most networks and were never the strongest joint method")
    p.add_argument("--explain-seed", type=int, default=None, help="seed whose networks are explained layer by layer "
                   "(default: the first; fixed-budget mode)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser(__doc__.splitlines()[0], 93.0).parse_args(argv)
    import csv

    net = NB201Space()
    tab = NB201Tabular()
    table = NB201Layers(net, HardwareCost(net))
    extra: dict[str, Any] = {}
    if TABLE.is_file():
        with TABLE.open() as f:
            pixel = {r["arch_str"]: float(r["pixel3"]) for r in csv.DictReader(f)}
        extra["pixel3"] = lambda a: pixel[a.spec]
    return compare(args, net, table, lambda a: float(tab.evaluate(a).accuracy), extra, "NB201")


def compare(args: argparse.Namespace, net: Any, table: Any, acc: Any, extra_proxies: dict[str, Any], title: str,
            acc_label: str = "accuracy {:.2f}%") -> int:
    """Runs every method over ``args.seeds`` on networks of ``net`` (layers from ``table.layers``,
    accuracy from ``acc``, the target ``args.target``) and prints the comparison; with a fixed
    budget also the strongest sequential baseline and one seed's networks layer by layer."""
    from hwnas.codesign import HardwareBudget
    from hwnas.codesign.sizing import network_metrics, size_accelerator, unique_layers

    t0 = time.perf_counter()
    hw, mapper, reference = DesignSpace(), None, REFERENCE
    if args.fixed_budget:
        from hw_space.budget import FixedBudgetSpace, budget_by_name, physical_space
        from hw_space.mapper import BufferMapper

        fixed = budget_by_name(args.fixed_budget)
        hw = physical_space(fixed) if args.physical else FixedBudgetSpace(fixed)
        mapper, reference = BufferMapper(), fixed.baseline
    joint = JointSpace(net, hw)
    budget = HardwareBudget(area_mm2=None if args.fixed_budget else args.area_budget_mm2, power_mw=args.power_budget_mw)
    score = _floor(args.target)
    sized: dict[str, Any] = {}

    sized_fixed: dict[str, Any] = {}

    def size(a: Arch, tiling: str = "mapper") -> Any:
        cache, mp = (sized, mapper) if tiling == "mapper" else (sized_fixed, None)
        if a.spec not in cache:
            cache[a.spec] = size_accelerator(table.layers(a), hw, budget, max_evals=args.sizing_evals, seed=0, mapper=mp)
        return cache[a.spec]

    proxies: dict[str, Any] = {
        "flops": lambda a: float(sum(layer.macs for layer in table.layers(a))),
        "ref": lambda a: network_metrics(reference, *unique_layers(table.layers(a)), mapper=mapper)["latency_ms"],
    }
    proxies.update(extra_proxies)

    def ev_nested(a: Arch, tiling: str = "mapper") -> tuple[dict[str, Any], float | None]:
        r = size(a, tiling)
        if not r.feasible:
            return {}, None
        m = {"accuracy": acc(a), "edp_uj_ms": r.metrics["edp_uj_ms"]}
        return m, score(m["accuracy"], m["edp_uj_ms"])

    def ev_flat(j: Arch) -> tuple[dict[str, Any], float | None]:
        a, spec = joint.split(j)
        if budget.area_violation(spec):
            return {}, None
        m = network_metrics(spec, *unique_layers(table.layers(a)), mapper=mapper)
        if budget.violations(m):
            return {}, None
        m = {**m, "accuracy": acc(a), "net": a.spec}
        return m, score(m["accuracy"], m["edp_uj_ms"])

    def at_target(trials: list[tuple[Arch, dict[str, Any]]]) -> tuple[float, int]:
        ok = [m["edp_uj_ms"] for _, m in trials if m.get("accuracy", -1) >= args.target]
        nets = {m.get("net", a.spec) for a, m in trials if "accuracy" in m}
        return (min(ok) if ok else float("nan")), len(nets)

    flat = ["flat-evolution", "flat-nsga2"] if not args.no_flat else []
    methods = [f"seq-{k}" for k in proxies] + ["nested", *flat]
    methods += ["nested-fixed-tiling"] if args.fixed_budget else []
    edp: dict[str, list[float]] = {m: [] for m in methods}
    nets_seen: dict[str, list[int]] = {m: [] for m in methods}
    picked: dict[tuple[int, str], Arch] = {}  # (seed, method) -> network kept (fixed-budget explanation)
    for seed in args.seeds:
        evo = lambda space: RegularizedEvolution(space, population=20, sample=5, seed=seed)  # noqa: E731
        for name, proxy in proxies.items():
            def ev_seq(a: Arch, proxy: Any = proxy) -> tuple[dict[str, Any], float | None]:
                m = {"accuracy": acc(a), "proxy": proxy(a)}
                return m, score(m["accuracy"], m["proxy"])

            st = _run(evo(net), args.budget, ev_seq)
            ok = [(m["proxy"], a) for a, m in st if m["accuracy"] >= args.target]
            r = size(min(ok, key=lambda t: t[0])[1]) if ok else None
            if ok:
                picked[seed, f"seq-{name}"] = min(ok, key=lambda t: t[0])[1]
            edp[f"seq-{name}"].append(r.metrics["edp_uj_ms"] if r is not None and r.feasible else float("nan"))
            nets_seen[f"seq-{name}"].append(len({a.spec for a, _ in st}))
        runs = [
            ("nested", evo(net), ev_nested), ("flat-evolution", evo(joint), ev_flat),
            ("flat-nsga2", NSGA2(joint, objectives=(("accuracy", "max"), ("edp_uj_ms", "min")), population=20, seed=seed), ev_flat),
        ][: 3 if flat else 1]  # fmt: skip
        if args.fixed_budget:
            runs.append(("nested-fixed-tiling", evo(net), lambda a: ev_nested(a, "fixed")))
        for name, strategy, fn in runs:
            trials = _run(strategy, args.budget, fn)
            value, n = at_target(trials)
            edp[name].append(value)
            nets_seen[name].append(n)
            ok = [(m["edp_uj_ms"], a) for a, m in trials if m.get("accuracy", -1) >= args.target]
            if name == "nested" and ok:
                picked[seed, name] = min(ok, key=lambda t: t[0])[1]
        print(f"seed {seed}: " + "  ".join(f"{m} {edp[m][-1]:.4g}" for m in methods), flush=True)
    table.save()
    base = np.array(edp["nested"], dtype=float)
    print(f"\n{title} codesign: {args.budget} networks per method ({args.budget} trials for flat methods), "
          f"{len(args.seeds)} seeds, {acc_label.format(args.target).replace(' ', ' >= ', 1)}, "
          + (f"fixed budget {args.fixed_budget} (mapper search)" if args.fixed_budget else f"area <= {args.area_budget_mm2} mm2")
          + (f", power <= {args.power_budget_mw} mW" if args.power_budget_mw else "")
          + "; EDP in uJ*ms per image (batch 1), the lowest at or above the target")
    print(f"{'method':>16} {'median EDP':>11} {'geomean EDP / nested':>21} {'nested wins/ties/losses':>24} {'median nets':>12}")
    for m in methods:
        v = np.array(edp[m], dtype=float)
        if np.all(np.isnan(v)):
            print(f"{m:>16}  no design reached the target ({int(np.median(nets_seen[m]))} networks seen)")
            continue
        ratio = float(np.exp(np.nanmean(np.log(v / base))))
        wins = int(np.sum(v > base * 1.001)), int(np.sum(np.isclose(v, base, rtol=1e-3))), int(np.sum(v < base * 0.999))
        print(f"{m:>16} {np.nanmedian(v):>11.4g} {ratio:>21.3f} {'%d/%d/%d' % wins:>24} {int(np.median(nets_seen[m])):>12}")
    if args.fixed_budget:
        seq = [m for m in methods if m.startswith("seq-") and not np.all(np.isnan(edp[m]))]
        best_seq = min(seq, key=lambda m: float(np.nanmean(np.log(np.array(edp[m]) / base))))
        v = np.array(edp[best_seq], dtype=float)
        print(f"\nstrongest sequential baseline: {best_seq}; nested EDP gain over it "
              f"{float(np.exp(np.nanmean(np.log(v / base)))):.3f}x geometric mean "
              f"(issue 19's goal: >= 1.3x); mapper gain (nested-fixed-tiling / nested): "
              f"{float(np.exp(np.nanmean(np.log(np.array(edp['nested-fixed-tiling']) / base)))):.3f}x")
        seed = args.explain_seed if args.explain_seed is not None else args.seeds[0]
        if (seed, best_seq) in picked and (seed, "nested") in picked:
            explain({f"{best_seq} (seed {seed})": picked[seed, best_seq], f"nested (seed {seed})": picked[seed, "nested"]},
                    lambda a: (table.layers(a), size(a).spec), mapper, acc, acc_label)
    designs = [hw_key(r.spec) for r in sized.values() if r.feasible]
    if designs:  # coupling at a glance: if every network's best design is the same, the network can be chosen first
        from collections import Counter

        top, count = Counter(designs).most_common(1)[0]
        print(f"best design per network: {len(set(designs))} distinct among {len(designs)} networks sized; "
              f"the most common, {top}, is best for {count} ({count / len(designs):.0%})")
    print(f"({len(sized)} networks sized, {time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
