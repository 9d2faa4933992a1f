"""The arithmetic behind `wanlab.ranking.fit`: Davidson's (1970) Bradley–Terry model with ties, fitted by
maximum a posteriori with a weak Gaussian prior, and its Laplace (inverse Hessian) covariance.

For a pair (i, j) with log-strengths θ and tie parameter ν = exp(η) the three outcomes have

    P(i wins) = e^θi / D,   P(j wins) = e^θj / D,   P(tie) = e^(η + (θi + θj)/2) / D,   D = the sum of the three,

so the log-likelihood is an exponential family in (θ, η) with the canonical features e_i, e_j and
(e_i + e_j)/2 + e_η: its Hessian is n × the covariance of those features, the same whatever was observed
(observed information = expected information), and the negative log-posterior is convex. Arrays only; no
pandas here."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# A judge who always prefers one item gives it an infinite maximum-likelihood score; a N(0, 3²) prior on each
# log-strength keeps it finite (e^3 ≈ 20:1 odds against an average item is "very likely", not "certain")
# while moving well-judged items by far less than their standard error. Because the likelihood does not
# change when every score shifts by the same amount, the prior also centres the mode: Σθ = 0 there.
PRIOR_SD = 3.0
# log ν ~ N(0, 3²): with no tie ever recorded ν would run off to 0 (η → −∞); the prior stops it near e^-6.
TIE_PRIOR_SD = 3.0


@dataclass(frozen=True)
class Counts:
    """Outcomes aggregated per unordered pair i < j (indices into the item list)."""

    i: np.ndarray
    j: np.ndarray
    wi: np.ndarray  # times i beat j
    wj: np.ndarray  # times j beat i
    t: np.ndarray  # ties
    k: int  # number of items

    @property
    def n(self) -> np.ndarray:
        return self.wi + self.wj + self.t


def counts(ia: np.ndarray, ib: np.ndarray, outcome: np.ndarray, k: int) -> Counts:
    """Aggregate judgments (item index of a, of b, outcome 0 = a won, 1 = b won, 2 = tie) per pair."""
    ia, ib, outcome = np.asarray(ia, int), np.asarray(ib, int), np.asarray(outcome, int)
    lo, hi = np.minimum(ia, ib), np.maximum(ia, ib)
    a_first = ia < ib
    lo_won = np.where(a_first, outcome == 0, outcome == 1) & (outcome != 2)
    hi_won = np.where(a_first, outcome == 1, outcome == 0) & (outcome != 2)
    keys, inv = np.unique(lo * k + hi, return_inverse=True)
    m = len(keys)
    return Counts(
        i=(keys // k).astype(int),
        j=(keys % k).astype(int),
        wi=np.bincount(inv, weights=lo_won, minlength=m),
        wj=np.bincount(inv, weights=hi_won, minlength=m),
        t=np.bincount(inv, weights=outcome == 2, minlength=m),
        k=k,
    )


def outcome_probs(theta_i: np.ndarray, theta_j: np.ndarray, eta: float) -> tuple[np.ndarray, ...]:
    """(P(i wins), P(j wins), P(tie), log D), computed stably (log-sum-exp)."""
    x_t = eta + (theta_i + theta_j) / 2
    top = np.maximum(np.maximum(theta_i, theta_j), x_t)
    e_i, e_j, e_t = np.exp(theta_i - top), np.exp(theta_j - top), np.exp(x_t - top)
    s = e_i + e_j + e_t
    return e_i / s, e_j / s, e_t / s, top + np.log(s)


def objective(phi: np.ndarray, c: Counts) -> tuple[float, np.ndarray]:
    """Negative log-posterior and its gradient; phi = (θ_1 … θ_k, η)."""
    theta, eta = phi[:-1], phi[-1]
    th_i, th_j = theta[c.i], theta[c.j]
    p_i, p_j, p_t, log_d = outcome_probs(th_i, th_j, eta)
    n = c.n
    ll = np.sum(c.wi * th_i + c.wj * th_j + c.t * (eta + (th_i + th_j) / 2) - n * log_d)
    g_i = c.wi + c.t / 2 - n * (p_i + p_t / 2)
    g_j = c.wj + c.t / 2 - n * (p_j + p_t / 2)
    grad = np.empty_like(phi)
    grad[:-1] = np.bincount(c.i, weights=g_i, minlength=c.k) + np.bincount(c.j, weights=g_j, minlength=c.k)
    grad[-1] = np.sum(c.t - n * p_t)
    grad[:-1] -= theta / PRIOR_SD**2
    grad[-1] -= eta / TIE_PRIOR_SD**2
    lp = ll - np.sum(theta**2) / (2 * PRIOR_SD**2) - eta**2 / (2 * TIE_PRIOR_SD**2)
    return float(-lp), -grad


def hessian(phi: np.ndarray, c: Counts) -> np.ndarray:
    """Hessian of the negative log-posterior: per pair n × Cov(features) on the coordinates (i, j, η)."""
    theta, eta = phi[:-1], phi[-1]
    p_i, p_j, p_t, _ = outcome_probs(theta[c.i], theta[c.j], eta)
    g = np.array([0.5, 0.5, 1.0])
    second = p_t[:, None, None] * np.outer(g, g)
    second[:, 0, 0] += p_i
    second[:, 1, 1] += p_j
    mean = np.stack([p_i + p_t / 2, p_j + p_t / 2, p_t], axis=1)
    local = c.n[:, None, None] * (second - mean[:, :, None] * mean[:, None, :])
    idx = np.stack([c.i, c.j, np.full_like(c.i, c.k)], axis=1)
    h = np.zeros((c.k + 1, c.k + 1))
    np.add.at(h, (idx[:, :, None], idx[:, None, :]), local)
    h[np.arange(c.k), np.arange(c.k)] += 1 / PRIOR_SD**2
    h[c.k, c.k] += 1 / TIE_PRIOR_SD**2
    return h


def mode(c: Counts) -> tuple[np.ndarray, np.ndarray]:
    """(φ, Σ) at the posterior mode: φ = (θ_1 … θ_k, η), Σ the inverse Hessian there (Laplace covariance).
    The problem is strictly convex, so Newton-type trust-region steps reach the mode in a handful of
    iterations to a gradient of 1e-9 (L-BFGS stops around 1e-5 and is hardly quicker at this size)."""
    from scipy.optimize import minimize

    res = minimize(
        objective, np.zeros(c.k + 1), args=(c,), jac=True, hess=hessian, method="trust-exact", options={"gtol": 1e-9}
    )
    return res.x, np.linalg.inv(hessian(res.x, c))


def fit(c: Counts) -> tuple[np.ndarray, float, np.ndarray]:
    """(θ, η, covariance of θ) at the posterior mode. The covariance is that of the scores centred over the
    judged items (the sum-to-zero constraint): P Σ P with Σ the inverse Hessian, which equals the inverse of
    the Hessian restricted to the constraint's subspace because the likelihood is flat along (1, …, 1).
    Items never judged keep θ = 0 (the prior's mode) and NaN covariance."""
    phi, sigma = mode(c)
    judged = np.zeros(c.k, bool)
    judged[c.i] = judged[c.j] = True
    theta = phi[:-1].copy()
    cov = np.full((c.k, c.k), np.nan)
    if judged.any():
        theta[judged] -= theta[judged].mean()  # already ≈ 0 at the mode; make it exact
        jj = np.flatnonzero(judged)
        p = np.eye(len(jj)) - 1 / len(jj)
        cov[np.ix_(jj, jj)] = p @ sigma[np.ix_(jj, jj)] @ p
    return theta, float(phi[-1]), cov
