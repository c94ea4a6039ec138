"""REINFORCE with a factorised categorical controller (Zoph & Le, 2017; Williams, 1992).

The policy is one independent softmax over the choices of every position of the space's integer
vector (``space.cardinalities``), logits starting at zero (uniform). ``ask`` samples a vector and
decodes it; ``tell`` applies one policy-gradient step for that sample:

    logits += lr · (A · ∇ log p(a) + entropy · ∇ H(p))

with the advantage ``A`` the reward minus an exponential-moving-average baseline, divided by an
EMA of the squared deviation (a running standard deviation), so rewards on any scale (accuracy in
percent, a MnasNet score) give steps of the same size; ``|A| <= 1 / sqrt(1 - decay)``.

* Reward = the score. A score of None (rejected by a hard constraint, or failed) counts as an
  advantage of ``-penalty`` (in standard deviations, below the baseline), so the policy moves away
  from what was rejected; the baseline and spread are not updated by it.
* Each tell uses the vector sampled when the architecture was asked (positions that do not
  matter, like ops past a stage's depth in the macro space, are kept as sampled); an architecture
  that was never asked (a resumed study telling an old trial) uses ``space.encode``.
* A sample already asked, or refused by ``prefilter``, is redrawn (up to a bounded number of
  tries; then a repeat is accepted, which the study does not re-evaluate). A vector ``decode``
  refuses is redrawn too.

State (JSON): logits, baseline, running variance, reward count, sampled vectors of asks not yet
told, the asked set and the RNG; resumes exactly.

Example:
    >>> from hwnas.space import NB201Space
    >>> from hwnas.strategy import REINFORCE
    >>> strategy = REINFORCE(NB201Space(), lr=0.1, seed=0)
    >>> arch = strategy.ask(); strategy.tell(arch, 90.0)
    >>> strategy.space.contains(arch)
    True
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from hwnas.space.base import Arch, SearchSpace
from hwnas.strategy.base import Strategy

_TRIES = 100


class REINFORCE(Strategy):
    """Policy-gradient search (see the module docstring).

    Args:
        space: the search space.
        lr: learning rate of the logits (> 0).
        decay: EMA decay of the baseline and of the running variance, in [0, 1).
        entropy: entropy bonus coefficient (>= 0); keeps the policy from collapsing too early.
        penalty: advantage magnitude given to a rejected candidate (>= 0).
        seed: RNG seed.
    """

    name = "rl"

    def __init__(
        self,
        space: SearchSpace,
        lr: float = 0.1,
        decay: float = 0.9,
        entropy: float = 0.01,
        penalty: float = 1.0,
        seed: int = 0,
    ) -> None:
        if not (lr > 0 and 0 <= decay < 1 and entropy >= 0 and penalty >= 0):
            raise ValueError(
                f"rl: need lr > 0, 0 <= decay < 1, entropy >= 0, penalty >= 0, got {lr}, {decay}, {entropy}, {penalty}"
            )
        super().__init__(space, seed)
        self.lr = float(lr)
        self.decay = float(decay)
        self.entropy = float(entropy)
        self.penalty = float(penalty)
        self.logits: list[np.ndarray] = [np.zeros(int(c)) for c in space.cardinalities]
        self.baseline = 0.0
        self.variance = 0.0
        self.count = 0
        self.pending: dict[str, list[int]] = {}
        self.asked: set[str] = set()

    def probabilities(self) -> list[np.ndarray]:
        """The policy: a probability vector per position."""
        return [_softmax(lg) for lg in self.logits]

    # -- ask / tell --------------------------------------------------------------------------
    def ask(self) -> Arch:
        probs = self.probabilities()
        fallback: tuple[Arch, list[int]] | None = None
        for _ in range(_TRIES):
            vec = [int(self.rng.choice(len(p), p=p)) for p in probs]
            try:
                arch = self.space.decode(vec)
            except ValueError:
                continue
            if self.prefilter is not None and not self.prefilter(arch):
                continue
            if arch.spec not in self.asked:
                fallback = (arch, vec)
                break
            fallback = fallback or (arch, vec)
        if fallback is None:  # nothing decodable and accepted: a uniform sample
            arch = self.space.sample(self.rng)
            fallback = (arch, [int(v) for v in self.space.encode(arch)])
        arch, vec = fallback
        self.asked.add(arch.spec)
        self.pending.setdefault(arch.spec, vec)
        return arch

    def tell(self, arch: Arch, score: float | None, metrics: Mapping[str, Any] | None = None) -> None:
        vec = self.pending.pop(arch.spec, None)
        if vec is None:
            vec = [int(v) for v in self.space.encode(arch)]
        if score is None:
            advantage = -self.penalty
        else:
            advantage = self._advantage(float(score))
        for lg, choice in zip(self.logits, vec):
            p = _softmax(lg)
            grad = -p
            grad[choice] += 1.0
            h = -float(np.sum(p * np.log(p + 1e-300)))
            lg += self.lr * (advantage * grad - self.entropy * p * (np.log(p + 1e-300) + h))

    def _advantage(self, reward: float) -> float:
        """Standardised advantage of ``reward``; updates the baseline and running variance."""
        if self.count == 0:
            self.baseline, self.count = reward, 1
            return 0.0
        dev = reward - self.baseline
        self.variance = self.decay * self.variance + (1.0 - self.decay) * dev * dev
        self.baseline = self.decay * self.baseline + (1.0 - self.decay) * reward
        self.count += 1
        return dev / np.sqrt(self.variance) if self.variance > 0 else 0.0

    # -- state -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "logits": [lg.tolist() for lg in self.logits],
            "baseline": self.baseline,
            "variance": self.variance,
            "count": self.count,
            "pending": {k: list(v) for k, v in self.pending.items()},
            "asked": sorted(self.asked),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.logits = [np.array(lg, dtype=np.float64) for lg in state["logits"]]
        self.baseline = float(state["baseline"])
        self.variance = float(state["variance"])
        self.count = int(state["count"])
        self.pending = {str(k): [int(x) for x in v] for k, v in state["pending"].items()}
        self.asked = {str(s) for s in state["asked"]}


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max())
    return e / e.sum()
