"""NSGA-II (Deb et al., 2002): multi-objective evolution over measured metrics.

The objectives are metrics of the ``metrics`` dict given to :meth:`NSGA2.tell`, e.g.
``(("accuracy", "max"), ("latency_ms", "min"))``; the scalar score is used only to tell a feasible
candidate (a number) from a hard-rejected one (None).

* Generational, with trials in flight allowed: the first ``population`` asks are random; once
  ``population`` candidates are told they form the first parent population. Each generation asks
  ``population`` offspring (a new batch is bred if asks outrun tells); once as many offspring are
  told, environmental selection keeps the best ``population`` of parents + offspring and the next
  generation is bred from them.
* Offspring: two parents by binary tournament on (rank, crowding distance); uniform crossover of
  their integer vectors (``space.encode``/``decode``; a vector ``decode`` refuses is replaced by a
  mutation of the first parent) with probability ``crossover``; then ``space.mutate`` with probability
  ``mutation``, and always when the child was asked before (up to a few tries), so asks rarely
  repeat.
* Constraint domination: a hard-rejected candidate (score None, metrics present) ranks after every
  feasible one; rejected candidates are ordered among themselves by their own fronts. Tells whose
  metrics lack an objective (failures) are ignored, as are repeated tells of a candidate already
  in the population or the offspring.
* Environmental selection: fronts by :func:`hwnas.strategy.pareto.non_dominated_sort` (feasible
  first), the last front that does not fit cut by crowding distance.

State (JSON): population, told offspring, queue, asked set, RNG; resumes exactly.

Example:
    >>> from hwnas.space import NB201Space
    >>> from hwnas.strategy import NSGA2
    >>> strategy = NSGA2(NB201Space(), objectives=(("accuracy", "max"), ("latency_ms", "min")), seed=0)
    >>> strategy.space.contains(strategy.ask())
    True
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from hwnas.space.base import Arch, SearchSpace
from hwnas.strategy.base import Strategy
from hwnas.strategy.pareto import crowding_distance, non_dominated_sort

DIRECTIONS = ("max", "min")
_TRIES = 10

#: A member: [spec, objective values (as told, not negated), feasible].
Member = tuple[str, tuple[float, ...], bool]


class NSGA2(Strategy):
    """NSGA-II with constraint domination (see the module docstring).

    Args:
        space: the search space.
        objectives: ``(metric, "max" | "min")`` pairs, at least one.
        population: parent population size (>= 4).
        crossover: probability of uniform crossover (else the child copies its first parent).
        mutation: probability of one ``space.mutate`` step after crossover.
        seed: RNG seed.
    """

    name = "nsga2"

    def __init__(
        self,
        space: SearchSpace,
        objectives: Sequence[tuple[str, str]] = (("accuracy", "max"), ("latency_ms", "min")),
        population: int = 20,
        crossover: float = 0.9,
        mutation: float = 0.5,
        seed: int = 0,
    ) -> None:
        objectives = tuple((str(m), str(d)) for m, d in objectives)
        if not objectives or any(d not in DIRECTIONS for _, d in objectives):
            raise ValueError(f"nsga2: objectives must be (metric, 'max' | 'min') pairs, got {objectives!r}")
        if population < 4:
            raise ValueError(f"nsga2: population must be >= 4, got {population}")
        if not (0.0 <= crossover <= 1.0 and 0.0 <= mutation <= 1.0):
            raise ValueError(f"nsga2: crossover and mutation are probabilities in [0, 1], got {crossover}, {mutation}")
        super().__init__(space, seed)
        self.objectives = objectives
        self.population = population
        self.crossover = float(crossover)
        self.mutation = float(mutation)
        self.maximize = [d == "max" for _, d in objectives]
        self.parents: list[Member] = []
        self.offspring: list[Member] = []
        self.queue: list[str] = []
        self.asked: set[str] = set()
        self.generation = 0

    # -- ask / tell --------------------------------------------------------------------------
    def ask(self) -> Arch:
        if not self.queue:
            self.queue = self._breed() if self.parents else []
        arch = self.space.parse(self.queue.pop(0)) if self.queue else self._random()
        self.asked.add(arch.spec)
        return arch

    def tell(self, arch: Arch, score: float | None, metrics: Mapping[str, Any] | None = None) -> None:
        """Rank ``arch`` by its objectives in ``metrics``.

        Raises:
            ValueError: a completed trial (``score`` not None) whose ``metrics`` lack an objective or
                hold a non-number for one: an evaluator that does not report what the search ranks
                by is an error, not a trial to drop. A failed trial (``score`` None) without them is
                ignored: there is nothing to rank.
        """
        metrics = metrics or {}
        try:
            values = tuple(float(metrics[m]) for m, _ in self.objectives)
        except (KeyError, TypeError, ValueError):
            if score is None:
                return  # a failure: nothing to rank
            bad = [m for m, _ in self.objectives if not isinstance(metrics.get(m), (int, float))]
            raise ValueError(f"nsga2: trial {arch.spec} was told without objective(s) {', '.join(bad)} as numbers "
                             f"(metrics: {', '.join(sorted(metrics)) or 'none'}); the evaluator must report every "
                             "objective") from None
        if any(arch.spec == m[0] for m in (*self.parents, *self.offspring)):
            return
        self.offspring.append((arch.spec, values, score is not None))
        if len(self.offspring) >= self.population:
            pool = self.parents + self.offspring
            self.parents = [pool[i] for i in self._select(pool, self.population)]
            self.offspring, self.queue = [], []
            self.generation += 1

    def state_dict(self) -> dict[str, Any]:
        def enc(ms: list[Member]) -> list[list[Any]]:
            return [[s, list(v), f] for s, v, f in ms]

        return {**super().state_dict(), "parents": enc(self.parents), "offspring": enc(self.offspring),
                "queue": list(self.queue), "asked": sorted(self.asked), "generation": self.generation}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)

        def dec(ms: list[list[Any]]) -> list[Member]:
            return [(str(s), tuple(float(x) for x in v), bool(f)) for s, v, f in ms]

        self.parents, self.offspring = dec(state["parents"]), dec(state["offspring"])
        self.queue = [str(s) for s in state["queue"]]
        self.asked = {str(s) for s in state["asked"]}
        self.generation = int(state["generation"])

    def front(self) -> list[tuple[Arch, tuple[float, ...]]]:
        """Feasible non-dominated members of the current parent population, with their values."""
        feas = [m for m in self.parents if m[2]]
        if not feas:
            return []
        ranks = self._ranks(feas)
        return [(self.space.parse(m[0]), m[1]) for m, r in zip(feas, ranks) if r == 0]

    # -- selection ---------------------------------------------------------------------------
    def _ranks(self, members: list[Member]) -> np.ndarray:
        """Constraint-dominated front rank of each member (feasible fronts first)."""
        ranks = np.zeros(len(members), dtype=np.int64)
        offset = 0
        for feasible in (True, False):
            idx = np.array([i for i, m in enumerate(members) if m[2] == feasible], dtype=np.int64)
            if len(idx) == 0:
                continue
            fronts = non_dominated_sort(np.array([members[i][1] for i in idx]), self.maximize)
            for k, f in enumerate(fronts):
                ranks[idx[f]] = offset + k
            offset += len(fronts)
        return ranks

    def _rank_crowding(self, members: list[Member]) -> tuple[np.ndarray, np.ndarray]:
        ranks = self._ranks(members)
        crowd = np.zeros(len(members))
        values = np.array([m[1] for m in members], dtype=np.float64)
        for r in np.unique(ranks):
            idx = np.flatnonzero(ranks == r)
            crowd[idx] = crowding_distance(values[idx])
        return ranks, crowd

    def _select(self, members: list[Member], k: int) -> list[int]:
        """Indices of the ``k`` members kept: whole fronts in rank order, the last by crowding."""
        ranks, crowd = self._rank_crowding(members)
        order = sorted(range(len(members)), key=lambda i: (ranks[i], -crowd[i], i))
        return sorted(order[:k])

    # -- variation ---------------------------------------------------------------------------
    def _random(self) -> Arch:
        arch = self.space.sample(self.rng)
        for _ in range(_TRIES):
            if arch.spec not in self.asked:
                break
            arch = self.space.sample(self.rng)
        return arch

    def _tournament(self, ranks: np.ndarray, crowd: np.ndarray) -> int:
        a, b = (int(i) for i in self.rng.integers(0, len(ranks), size=2))
        if (ranks[a], -crowd[a]) <= (ranks[b], -crowd[b]):
            return a
        return b

    def _child(self, p1: Arch, p2: Arch) -> Arch:
        child = p1
        if self.rng.random() < self.crossover:
            v1, v2 = self.space.encode(p1), self.space.encode(p2)
            vec = np.where(self.rng.random(len(v1)) < 0.5, v1, v2)
            try:
                child = self.space.decode(vec)
            except ValueError:  # a space with invalid combinations: mutate instead
                child = self.space.mutate(p1, self.rng)
        if self.rng.random() < self.mutation:
            child = self.space.mutate(child, self.rng)
        for _ in range(_TRIES):
            if child.spec not in self.asked:
                break
            child = self.space.mutate(child, self.rng)
        return child

    def _breed(self) -> list[str]:
        """``population`` offspring of the current parents."""
        ranks, crowd = self._rank_crowding(self.parents)
        out: list[str] = []
        for _ in range(self.population):
            p1 = self.parents[self._tournament(ranks, crowd)]
            p2 = self.parents[self._tournament(ranks, crowd)]
            child = self._child(self.space.parse(p1[0]), self.space.parse(p2[0]))
            out.append(child.spec)
            self.asked.add(child.spec)  # siblings differ too
        return out
