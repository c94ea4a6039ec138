"""Score surrogates with uncertainty, for predictor-guided search.

Both surrogates learn a rank-warped score (a Gaussian copula: ranks mapped to standard normal
quantiles), so a few failed architectures at 10 % accuracy do not dominate a fit whose job is to
tell 93.3 % from 93.4 %, and scores on any scale work. ``fit(x, y, seed)`` returns ``self``;
``predict(xc)`` returns the mean and standard deviation of the warped score — an order-preserving
scale, which is all an acquisition function that ranks candidates needs.

* :class:`GPSurrogate`: Gaussian process, squared-exponential kernel on the feature vectors,
  lengthscale and noise picked by marginal likelihood from a grid scaled to the median distance.
  numpy/scipy only; fitting on 150 points and predicting 15,625 takes tens of milliseconds.
* :class:`TreeEnsembleSurrogate`: ``members`` gradient-boosted tree regressors (scikit-learn,
  imported lazily), each on a bootstrap resample; the spread of their predictions is the
  uncertainty (BANANAS-style ensemble). About 10x slower per round than the GP, and weaker on the
  NB201 search bench (best feasible found within 150 evaluations in 54 % of runs against 85 % for
  the GP, batch 5, 3 seeds x 13 devices).
"""

from __future__ import annotations

import contextlib
from typing import Any, ContextManager

import numpy as np


def one_blas_thread() -> ContextManager[Any]:
    """A context that runs BLAS/LAPACK on one thread (threadpoolctl, installed with scikit-learn).

    The matrices here are small (150 x 150): a multi-threaded BLAS spends more time spinning
    between threads than computing — about 3x slower on two cores.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - comes with scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def copula(y: np.ndarray) -> np.ndarray:
    """Standard normal quantiles of the (average, tie-aware) ranks of ``y``."""
    from scipy.special import ndtri
    from scipy.stats import rankdata

    y = np.asarray(y, dtype=np.float64)
    return ndtri((rankdata(y, method="average") - 0.5) / len(y))


def _sq_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T, 0.0)


class GPSurrogate:
    """Exact GP regression on copula-warped scores (see the module docstring).

    Args:
        scales: lengthscale² candidates, as multiples of the median squared distance between
            training points.
        noises: noise-variance candidates (the warped target has unit variance).

    Attributes (after fit): ``lengthscale2_``, ``noise_``, ``x_``, ``chol_``, ``alpha_``.
    """

    def __init__(
        self, scales: tuple[float, ...] = (0.125, 0.25, 0.5, 1.0, 2.0), noises: tuple[float, ...] = (1e-3, 1e-2, 1e-1)
    ) -> None:
        self.scales = scales
        self.noises = noises

    def fit(self, x: np.ndarray, y: np.ndarray, seed: int = 0) -> GPSurrogate:
        """Fit to features ``x`` ``[n, d]`` and scores ``y`` ``[n]`` (``seed`` unused: exact)."""
        from scipy.linalg import cho_factor, cho_solve

        z = copula(y)
        z = (z - z.mean()) / (z.std() or 1.0)
        d2 = _sq_dist(x, x)
        med = float(np.median(d2[np.triu_indices(len(z), 1)])) if len(z) > 1 else 1.0
        best: tuple[float, float, float] | None = None
        for scale in self.scales:
            ls2 = max(med, 1e-6) * scale
            eig, vec = np.linalg.eigh(np.exp(-d2 / (2.0 * ls2)))
            eig = np.maximum(eig, 0.0)
            proj = (vec.T @ z) ** 2
            for noise in self.noises:
                loglik = -0.5 * float((proj / (eig + noise)).sum()) - 0.5 * float(np.log(eig + noise).sum())
                if best is None or loglik > best[0]:
                    best = (loglik, ls2, noise)
        assert best is not None
        _, self.lengthscale2_, self.noise_ = best
        self.x_ = np.asarray(x, dtype=np.float64)
        self.chol_ = cho_factor(np.exp(-d2 / (2.0 * self.lengthscale2_)) + self.noise_ * np.eye(len(z)), lower=True)
        self.alpha_ = cho_solve(self.chol_, z)
        return self

    def predict(self, xc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation of the warped score at ``xc`` ``[m, d]``."""
        from scipy.linalg import solve_triangular

        ks = np.exp(-_sq_dist(xc, self.x_) / (2.0 * self.lengthscale2_))
        v = solve_triangular(self.chol_[0], ks.T, lower=True)
        return ks @ self.alpha_, np.sqrt(np.maximum(1.0 - (v * v).sum(0), 1e-12))


class TreeEnsembleSurrogate:
    """Bootstrapped gradient-boosted trees (scikit-learn) on copula-warped scores.

    Args:
        members: ensemble size (>= 2).
        n_estimators, max_depth, learning_rate: of each member's
            :class:`sklearn.ensemble.GradientBoostingRegressor`.
    """

    def __init__(self, members: int = 5, n_estimators: int = 100, max_depth: int = 3, learning_rate: float = 0.1) -> None:
        if members < 2:
            raise ValueError(f"tree ensemble: members must be >= 2, got {members}")
        self.members = members
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate

    def fit(self, x: np.ndarray, y: np.ndarray, seed: int = 0) -> TreeEnsembleSurrogate:
        """Fit every member on a bootstrap resample (drawn from ``seed``) of ``(x, y)``."""
        from sklearn.ensemble import GradientBoostingRegressor

        z = copula(y)
        rng = np.random.default_rng(seed)
        self.models_: list[Any] = []
        for _ in range(self.members):
            idx = rng.integers(0, len(z), size=len(z))
            reg = GradientBoostingRegressor(
                n_estimators=self.n_estimators, max_depth=self.max_depth, learning_rate=self.learning_rate,
                random_state=int(rng.integers(2**31 - 1)),
            )  # fmt: skip
            self.models_.append(reg.fit(x[idx], z[idx]))
        return self

    def predict(self, xc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation over the members' predictions at ``xc``."""
        preds = np.stack([m.predict(xc) for m in self.models_])
        return preds.mean(0), preds.std(0)
