"""Predictor-guided search (BANANAS / NPENAS style).

The first ``n_init`` asks are random samples. Afterwards, each round fits a score surrogate to
the (architecture, score) pairs told so far — features from
:func:`hwnas.strategy.features.arch_features` (one-hot decisions; for NB201 also BANANAS' path
encoding), model from :mod:`hwnas.strategy.surrogate` (a Gaussian process by default, or an
ensemble of gradient-boosted trees) — ranks a candidate pool by an acquisition function of the
surrogate's mean and uncertainty, and queues the ``batch`` best candidates as the next asks; the
next round starts when the queue is empty.

* The pool: for a space that can be enumerated (NB201: 15,625 cells) every architecture not yet
  asked; otherwise ``pool`` candidates, half mutations (one or two steps) of the ten best
  architectures told so far and half random samples. When ``prefilter`` is set, candidates it
  refuses are skipped, so no trial is spent on them: it is asked in rank order until ``batch``
  candidates pass (so a costly prefilter such as a latency predictor runs on a handful per round,
  not on the whole space), and by the random phase; with ``order_checks`` a logistic model of its
  answers so far moves the candidates it finds unlikely to pass to the end of that walk. It must be
  a pure function: its answers are cached per architecture.
* Acquisition: ``"its"`` (independent Thompson sampling: one draw from N(mean, std) per
  candidate) or ``"ucb"`` (mean + ``kappa`` · std).
* Rejected or failed candidates (score None) are never asked again but carry no score to learn
  from (a prefilter, when the constraint is cheap to check, avoids them altogether).
* An architecture is never asked twice, unless every architecture of a finite space the
  prefilter accepts has been asked (then asks repeat; the study does not re-evaluate them).

State (JSON): the asked architectures in order, the told (arch, score) pairs, the queue and the
RNG. The surrogate is not saved: it is refitted when the queue runs empty, from the told data and
the saved RNG state, so a resumed search makes the same asks.

Example:
    >>> from hwnas.space import NB201Space
    >>> from hwnas.strategy import PredictorSearch
    >>> strategy = PredictorSearch(NB201Space(), n_init=10, batch=2, seed=0)
    >>> strategy.space.contains(strategy.ask())
    True
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np

from hwnas.space.base import Arch, SearchSpace
from hwnas.strategy.base import Strategy
from hwnas.strategy.features import arch_features

ACQUISITIONS = ("its", "ucb")
MODELS = ("gp", "gbdt")
_RANDOM_TRIES = 1000
#: Candidates the feasibility model gives less than this chance are checked last.
_UNLIKELY = 0.05
_PARENTS = 10


class PredictorSearch(Strategy):
    """Surrogate-guided search over a candidate pool (see the module docstring).

    Args:
        space: the search space.
        n_init: random asks before the first surrogate round (>= 2).
        batch: candidates asked per round (>= 1); smaller adapts faster, costs more fits.
        pool: candidate pool size for spaces that cannot be enumerated (>= batch).
        ensemble: members of the ``gbdt`` ensemble (>= 2; unused by ``gp``).
        acquisition: ``"its"`` (default) or ``"ucb"``.
        kappa: UCB exploration weight (>= 0).
        model: ``"gp"`` (Gaussian process, default: fast) or ``"gbdt"`` (bootstrapped
            gradient-boosted trees, scikit-learn).
        seed: RNG seed.
    """

    name = "predictor"

    def __init__(
        self,
        space: SearchSpace,
        n_init: int = 10,
        batch: int = 2,
        pool: int = 2000,
        ensemble: int = 5,
        acquisition: str = "its",
        kappa: float = 0.5,
        model: str = "gp",
        seed: int = 0,
    ) -> None:
        if n_init < 2 or batch < 1 or pool < batch or ensemble < 2:
            raise ValueError(
                f"predictor: need n_init >= 2, batch >= 1, pool >= batch, ensemble >= 2, got {n_init}, {batch}, {pool}, {ensemble}"
            )
        if acquisition not in ACQUISITIONS:
            raise ValueError(f"predictor: acquisition must be one of {', '.join(ACQUISITIONS)}, got {acquisition!r}")
        if model not in MODELS:
            raise ValueError(f"predictor: model must be one of {', '.join(MODELS)}, got {model!r}")
        if not kappa >= 0:
            raise ValueError(f"predictor: kappa must be >= 0, got {kappa!r}")
        super().__init__(space, seed)
        self.n_init = n_init
        self.batch = batch
        self.pool = pool
        self.ensemble = ensemble
        self.acquisition = acquisition
        self.kappa = float(kappa)
        self.model = model
        self.asked: list[str] = []
        self.told: list[tuple[str, float | None]] = []
        self.queue: list[str] = []
        self._asked_set: set[str] = set()
        self._cache: dict[str, bool] = {}
        self._cache_for: object = None
        self._mask: tuple[object, np.ndarray] | None = None
        #: Set by the search when the prefilter is costly (a latency predictor): check candidates
        #: the feasibility model finds unlikely last. Off, the walk follows the ranking exactly
        #: (the model can be confidently wrong near the budget, where the best often sits).
        self.order_checks = False
        self._all: tuple[list[str], dict[str, int], np.ndarray] | None = None

    # -- ask / tell --------------------------------------------------------------------------
    def ask(self) -> Arch:
        if not self.queue and len(self.asked) >= self.n_init and sum(s is not None for _, s in self.told) >= 2:
            self.queue = self._round()
        if self.queue:
            return self._mark(self.space.parse(self.queue.pop(0)))
        return self._mark(self._random())

    def tell(self, arch: Arch, score: float | None, metrics: Mapping[str, Any] | None = None) -> None:
        self.told.append((arch.spec, None if score is None else float(score)))

    def state_dict(self) -> dict[str, Any]:
        told = [[a, s] for a, s in self.told]
        return {**super().state_dict(), "asked": list(self.asked), "told": told, "queue": list(self.queue)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.asked = [str(s) for s in state["asked"]]
        self._asked_set = set(self.asked)
        self.told = [(str(a), None if s is None else float(s)) for a, s in state["told"]]
        self.queue = [str(s) for s in state["queue"]]

    # -- candidates --------------------------------------------------------------------------
    def _mark(self, arch: Arch) -> Arch:
        self.asked.append(arch.spec)
        self._asked_set.add(arch.spec)
        return arch

    def use_feasibility(self, test: Callable[[Arch], bool], costly: bool = False) -> None:
        """:meth:`Strategy.use_feasibility`; a ``costly`` test is asked in order of the
        feasibility this strategy learns from its answers (:attr:`order_checks`)."""
        self.prefilter = test
        self.order_checks = costly

    def _ok(self, arch: Arch) -> bool:
        """Whether the prefilter (if any) accepts ``arch``; answers cached per prefilter."""
        if self.prefilter is None:
            return True
        if self._cache_for is not self.prefilter:
            self._cache, self._cache_for = {}, self.prefilter
        ok = self._cache.get(arch.spec)
        if ok is None:
            ok = self._cache[arch.spec] = bool(self.prefilter(arch))
        return ok

    def _enumerated(self) -> tuple[list[str], dict[str, int], np.ndarray]:
        """Specs, row of each spec, and features of every architecture of a finite space."""
        if self._all is None:
            archs = list(self.space.enumerate())
            specs = [a.spec for a in archs]
            feats = arch_features(self.space, np.stack([self.space.encode(a) for a in archs]))
            self._all = (specs, {s: i for i, s in enumerate(specs)}, feats)
        return self._all

    def _allowed_rows(self) -> np.ndarray:
        """Mask of the enumerated architectures the prefilter accepts (cached per prefilter)."""
        specs, _, _ = self._enumerated()
        if self._mask is None or self._mask[0] is not self.prefilter:
            self._mask = (self.prefilter, np.array([self._ok(Arch(self.space.name, s)) for s in specs], dtype=bool))
        return self._mask[1]

    def _random(self) -> Arch:
        """A random architecture not asked yet and accepted by the prefilter (bounded tries)."""
        fallback = None
        for _ in range(_RANDOM_TRIES):
            arch = self.space.sample(self.rng)
            if not self._ok(arch):
                continue
            if arch.spec not in self._asked_set:
                return arch
            fallback = fallback or arch
        if self.space.is_finite_enumerable:
            specs, row, _ = self._enumerated()
            keep = self._allowed_rows().copy()
            keep[[row[s] for s in self._asked_set]] = False
            left = np.flatnonzero(keep)
            if len(left):
                return self.space.parse(specs[int(left[int(self.rng.integers(len(left)))])])
        return fallback or self.space.sample(self.rng)

    def _pool(self) -> tuple[list[str], np.ndarray]:
        """Candidate specs (never asked) and their features; the prefilter is applied later, in
        rank order, so an expensive one (a latency predictor) runs on a few candidates only."""
        if self.space.is_finite_enumerable:
            specs, row, feats = self._enumerated()
            keep = np.ones(len(specs), dtype=bool)
            keep[[row[s] for s in self._asked_set]] = False
            idx = np.flatnonzero(keep)
            return [specs[i] for i in idx], feats[idx]
        scored = sorted(((s, a) for a, s in self.told if s is not None), reverse=True)
        parents = [self.space.parse(a) for _, a in scored[:_PARENTS]]
        cands: dict[str, Arch] = {}
        n_mut = self.pool // 2
        for m in range(n_mut):
            child = self.space.mutate(parents[m % len(parents)], self.rng)
            if self.rng.random() < 0.5:
                child = self.space.mutate(child, self.rng)
            cands.setdefault(child.spec, child)
        for _ in range(self.pool - n_mut):
            arch = self.space.sample(self.rng)
            cands.setdefault(arch.spec, arch)
        keep = [a for s, a in cands.items() if s not in self._asked_set]
        if not keep:
            return [], np.zeros((0, 0), dtype=np.float32)
        return [a.spec for a in keep], arch_features(self.space, np.stack([self.space.encode(a) for a in keep]))

    def _feasibility(self, specs: list[str], feats: np.ndarray) -> np.ndarray | None:
        """Probability that the prefilter accepts each candidate, from a logistic regression on
        its answers so far (None without a prefilter or before it has said both yes and no)."""
        if self.prefilter is None or self._cache_for is not self.prefilter:
            return None
        seen = list(self._cache.items())
        labels = np.array([ok for _, ok in seen], dtype=bool)
        if labels.all() or not labels.any():
            return None
        from sklearn.linear_model import LogisticRegression

        from hwnas.strategy.surrogate import one_blas_thread

        x = arch_features(self.space, np.stack([self.space.encode(self.space.parse(a)) for a, _ in seen]))
        with one_blas_thread():
            clf = LogisticRegression(C=10.0, max_iter=1000).fit(x, labels)
            return clf.predict_proba(feats)[:, list(clf.classes_).index(True)]

    # -- surrogate round ---------------------------------------------------------------------
    def _round(self) -> list[str]:
        """Fit the surrogate, rank the pool, return the next ``batch`` specs (empty: no pool)."""
        specs, feats = self._pool()
        if not specs:
            return []
        data = [(a, s) for a, s in self.told if s is not None]
        x = arch_features(self.space, np.stack([self.space.encode(self.space.parse(a)) for a, _ in data]))
        y = np.array([s for _, s in data], dtype=np.float64)
        from hwnas.strategy.surrogate import GPSurrogate, TreeEnsembleSurrogate, one_blas_thread

        model = GPSurrogate() if self.model == "gp" else TreeEnsembleSurrogate(members=self.ensemble)
        with one_blas_thread():
            mean, std = model.fit(x, y, int(self.rng.integers(2**31 - 1))).predict(feats)
        if self.acquisition == "ucb":
            acq = mean + self.kappa * std
        else:
            acq = mean + std * self.rng.standard_normal(len(mean))
        order = np.argsort(-acq, kind="stable")
        p_ok = self._feasibility(specs, feats) if self.order_checks else None
        if p_ok is not None:  # check the likely-feasible first: a costly prefilter then runs a few times
            order = np.concatenate([order[p_ok[order] >= _UNLIKELY], order[p_ok[order] < _UNLIKELY]])
        picked: list[str] = []
        for i in order:
            if self._ok(self.space.parse(specs[int(i)])):
                picked.append(specs[int(i)])
                if len(picked) == self.batch:
                    break
        return picked
