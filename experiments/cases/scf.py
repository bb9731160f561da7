"""Supply-chain formation case study (Narahari & Srivastava): mean-variance allocation, SCF-DSIC, SCF-BIC.

An ``n``-echelon linear chain; echelon ``i`` delivers in a normal time ``X_i ~ N(mu_i, sigma_i^2)`` at a
private cost ``nu_i(mu, sigma) = a0 + a1 mu + a2 sigma + a3 mu sigma + a4 sigma^2``. The planner (CDA)
minimises the total cost subject to the process-capability constraints of the end-to-end time
``Y = sum X_i`` (``mu = sum mu_i``, ``sigma^2 = sum sigma_i^2``, window ``tau +- T``)::

    C_p  = T / (3 sigma)                       >= p
    C_pk = min(tau + T - mu, mu - tau + T) / (3 sigma) >= q
    tau - T <= mu <= tau + T,  mu_i, sigma_i within their bounds (>= 0)

What a user may do: build a :class:`SupplyChain` (coefficients, bounds, :class:`DeliveryTarget`),
:func:`solve` it, audit payments (:func:`dsic_payments`, :func:`eq20_payments`, :func:`dagva_scf`,
:func:`misreport_audit`), fit cost functions from provider tables (:func:`fit_cost`), or run the whole
case (:func:`run_case`, used by ``flosim case scf``).

**Solver** (:func:`solve`). The bilinear ``a3 mu sigma`` term makes the problem non-convex. Two facts make
it tractable and the method exact up to a one-dimensional search:

1. For fixed ``sigma`` the problem in ``mu`` is a linear programme over a box cut by the slab
   ``tau - T + 3 q |sigma| <= sum mu <= tau + T - 3 q |sigma|``; it has an optimal vertex, and every
   vertex of a box cut by a slab has at least ``n - 1`` coordinates at a bound. So some global optimum has
   all ``mu_j`` but one (``mu_k``) at a bound.
2. For fixed ``mu`` the problem in ``sigma`` is convex when every ``a4 >= 0``: separable quadratics
   under one ball constraint ``|sigma| <= R(mu)`` and box bounds. It is solved exactly from its KKT
   conditions (``sigma_i(lambda) = clip(-(a2 + a3 mu_i) / (2 (a4 + lambda)))``, bisection on the single
   multiplier ``lambda``).

So the solver enumerates the ``n 2^(n-1)`` bound patterns, searches ``mu_k`` globally on a fine grid
(default 401 points) with the exact convex solve inside, and polishes the best grid minima by
repeated zooming (a 21-point grid on the neighbouring interval, nine rounds). :func:`brute_force`
evaluates every point of a grid over all ``2n`` variables; the tests check the solver is never worse
than it. Reports with ``a4 < 0`` (concave in ``sigma``) are
rejected by :func:`solve` (use :func:`brute_force` for those).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from policies.transfers import DagvaResult, dagva, groves_payment
from sim.model.errors import FlosimError

# --------------------------------------------------------------------------------------------------
# The paper's data (Narahari & Srivastava, Section 5)
# --------------------------------------------------------------------------------------------------

#: Tables 1-3: service providers per echelon as (mean days, sd days, cost).
PAPER_PROVIDERS: tuple[tuple[tuple[float, float, float], ...], ...] = (
    ((3, 1.0, 105), (3, 1.5, 70), (2, 0.5, 55), (2, 1.0, 40)),
    ((3, 0.75, 35), (2, 1.00, 40), (2, 1.25, 35), (2, 0.75, 50), (1, 1.00, 70)),
    ((1, 0.25, 20), (1, 0.5, 15), (2, 0.75, 12), (2, 1.00, 10), (2, 1.25, 9), (2, 1.50, 8)),
)
PAPER_ECHELONS = ("casting", "machining", "transportation")
#: Table 4: (mu*, sigma*, nu_i(mu*, sigma*)) per echelon, as published.
PAPER_TABLE4: tuple[tuple[float, float, float], ...] = ((2, 0.2613, 161.56), (1, 0.0149, 72.63), (2, 0.01, 24.0))
PAPER_ALPHA = 350.0
#: Cases 1-4: the common belief probability q_ij.
PAPER_CASES: dict[str, float] = {"case1": 0.1, "case2": 0.5, "case3": 0.9, "case4": 1.0}
#: Tables 5-8, DSIC column (identical in all four tables) and the BIC column per case.
PAPER_DSIC = (253.4, 164.4, 115.8)
PAPER_BIC: dict[str, tuple[float, float, float]] = {
    "case1": (21.0, 16.53, 14.11),
    "case2": (105.0, 82.65, 70.56),
    "case3": (188.9, 148.9, 127.0),
    "case4": (209.9, 165.41, 141.1),
}


# --------------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------------


def cost(coef: np.ndarray, mu: np.ndarray | float, sigma: np.ndarray | float) -> np.ndarray:
    """``nu(mu, sigma) = a0 + a1 mu + a2 sigma + a3 mu sigma + a4 sigma^2`` (broadcasts)."""
    a0, a1, a2, a3, a4 = np.asarray(coef, dtype=float)
    mu = np.asarray(mu, dtype=float)
    sigma = np.asarray(sigma, dtype=float)
    return a0 + a1 * mu + a2 * sigma + a3 * mu * sigma + a4 * sigma**2


@dataclass(frozen=True)
class DeliveryTarget:
    """The CDA's delivery window ``tau +- tol`` (days) and capability thresholds ``C_p >= cp_min``, ``C_pk >= cpk_min``."""

    tau: float = 6.0
    tol: float = 2.0
    cp_min: float = 1.8
    cpk_min: float = 1.08

    def radius(self, total_mu: np.ndarray | float) -> np.ndarray:
        """Largest end-to-end sd ``sigma`` allowed at total mean ``total_mu`` (negative = infeasible)."""
        m = np.asarray(total_mu, dtype=float)
        slack = np.minimum(self.tau + self.tol - m, m - (self.tau - self.tol))
        r_cp = self.tol / (3.0 * self.cp_min) if self.cp_min > 0 else np.inf
        r_cpk = slack / (3.0 * self.cpk_min) if self.cpk_min > 0 else np.where(slack >= 0, np.inf, -1.0)
        return np.minimum(r_cp, r_cpk)


@dataclass(frozen=True)
class SupplyChain:
    """Reported (or true) cost coefficients ``(n, 5)`` with per-echelon bounds on ``mu`` and ``sigma``."""

    coefs: np.ndarray
    mu_bounds: np.ndarray
    sigma_bounds: np.ndarray
    target: DeliveryTarget = field(default_factory=DeliveryTarget)
    names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        coefs = np.atleast_2d(np.asarray(self.coefs, dtype=float))
        n = coefs.shape[0]
        object.__setattr__(self, "coefs", coefs)
        object.__setattr__(self, "mu_bounds", np.asarray(self.mu_bounds, dtype=float).reshape(n, 2))
        object.__setattr__(self, "sigma_bounds", np.asarray(self.sigma_bounds, dtype=float).reshape(n, 2))
        if coefs.shape[1] != 5:
            raise FlosimError(f"coefs: need 5 coefficients per echelon, got shape {coefs.shape}")
        if np.any(self.mu_bounds[:, 0] < 0) or np.any(self.mu_bounds[:, 0] > self.mu_bounds[:, 1]):
            raise FlosimError(f"mu_bounds: need 0 <= low <= high, got {self.mu_bounds.tolist()}")
        if np.any(self.sigma_bounds[:, 0] < 0) or np.any(self.sigma_bounds[:, 0] > self.sigma_bounds[:, 1]):
            raise FlosimError(f"sigma_bounds: need 0 <= low <= high, got {self.sigma_bounds.tolist()}")
        if not self.names:
            object.__setattr__(self, "names", tuple(f"echelon{i + 1}" for i in range(n)))

    @property
    def n(self) -> int:
        return self.coefs.shape[0]

    def with_coefs(self, coefs: np.ndarray) -> SupplyChain:
        """The same chain with other (e.g. misreported) coefficients."""
        return replace(self, coefs=np.asarray(coefs, dtype=float))

    def costs(self, mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        """Each echelon's cost at ``(mu_i, sigma_i)``."""
        return np.array([float(cost(self.coefs[i], mu[i], sigma[i])) for i in range(self.n)])


@dataclass(frozen=True)
class Allocation:
    """A (mean, sd) per echelon with its costs and capability indices."""

    mu: np.ndarray
    sigma: np.ndarray
    costs: np.ndarray
    cp: float
    cpk: float

    @property
    def total(self) -> float:
        return float(self.costs.sum())


def capability(target: DeliveryTarget, mu: np.ndarray, sigma: np.ndarray) -> tuple[float, float]:
    """``(C_p, C_pk)`` of the end-to-end time, from their definitions (eqs. 1-2)."""
    m = float(np.sum(mu))
    s = float(np.sqrt(np.sum(np.square(sigma))))
    if s == 0:
        return np.inf, np.inf
    upper, lower = target.tau + target.tol, target.tau - target.tol
    return (upper - lower) / (6 * s), min(upper - m, m - lower) / (3 * s)


def is_feasible(chain: SupplyChain, mu: np.ndarray, sigma: np.ndarray, tol: float = 1e-7) -> bool:
    """Check every constraint (9)-(13) and the bounds directly."""
    cp, cpk = capability(chain.target, mu, sigma)
    m = float(np.sum(mu))
    t = chain.target
    return bool(
        cp >= t.cp_min - tol
        and cpk >= t.cpk_min - tol
        and t.tau - t.tol - tol <= m <= t.tau + t.tol + tol
        and np.all(mu >= chain.mu_bounds[:, 0] - tol)
        and np.all(mu <= chain.mu_bounds[:, 1] + tol)
        and np.all(sigma >= chain.sigma_bounds[:, 0] - tol)
        and np.all(sigma <= chain.sigma_bounds[:, 1] + tol)
    )


def _allocation(chain: SupplyChain, mu: np.ndarray, sigma: np.ndarray) -> Allocation:
    cp, cpk = capability(chain.target, mu, sigma)
    return Allocation(np.array(mu, dtype=float), np.array(sigma, dtype=float), chain.costs(mu, sigma), cp, cpk)


# --------------------------------------------------------------------------------------------------
# Solver
# --------------------------------------------------------------------------------------------------


def _sigma_of_lambda(c: np.ndarray, d: np.ndarray, lo: np.ndarray, hi: np.ndarray, lam: np.ndarray) -> np.ndarray:
    denom = d[None, :] + lam[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = np.where(denom > 0, -c / (2 * denom), np.where(c < 0, np.inf, -np.inf))
    return np.clip(stat, lo[None, :], hi[None, :])


def _sigma_given_mu(chain: SupplyChain, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact convex solve of the ``sigma`` problem for a batch of ``mu`` rows; returns (sigma, value)."""
    a = chain.coefs
    lo, hi = chain.sigma_bounds[:, 0], chain.sigma_bounds[:, 1]
    d = a[:, 4]
    c = a[None, :, 2] + a[None, :, 3] * mu  # linear-in-sigma coefficient per row and echelon
    r = chain.target.radius(mu.sum(axis=1))
    r2 = np.where(r >= 0, np.square(np.where(r >= 0, r, 0.0)), -1.0)
    feasible = (r >= 0) & (np.sum(lo**2) <= r2 * (1 + 1e-12) + 1e-15)
    sig = _sigma_of_lambda(c, d, lo, hi, np.zeros(len(mu)))
    need = feasible & (np.sum(sig**2, axis=1) > r2)
    if need.any():
        cn, rn = c[need], r2[need]
        lam_lo = np.zeros(len(cn))
        lam_hi = np.ones(len(cn))
        for _ in range(200):  # grow the upper bracket until the ball constraint holds
            bad = np.sum(_sigma_of_lambda(cn, d, lo, hi, lam_hi) ** 2, axis=1) > rn
            if not bad.any():
                break
            lam_lo = np.where(bad, lam_hi, lam_lo)
            lam_hi = np.where(bad, lam_hi * 4, lam_hi)
        for _ in range(48):
            mid = 0.5 * (lam_lo + lam_hi)
            over = np.sum(_sigma_of_lambda(cn, d, lo, hi, mid) ** 2, axis=1) > rn
            lam_lo = np.where(over, mid, lam_lo)
            lam_hi = np.where(over, lam_hi, mid)
        s_hi = _sigma_of_lambda(cn, d, lo, hi, lam_hi)
        # Numerical safety: scale onto the ball if the bracket end is a hair outside it.
        norm = np.sqrt(np.sum(s_hi**2, axis=1))
        scale = np.minimum(1.0, np.sqrt(rn) / np.maximum(norm, 1e-300))
        sig[need] = np.maximum(s_hi * scale[:, None], lo[None, :])
    value = np.sum(a[None, :, 0] + a[None, :, 1] * mu + c * sig + d[None, :] * sig**2, axis=1)
    value = np.where(feasible, value, np.inf)
    return sig, value


def solve(chain: SupplyChain, grid_points: int = 401, polish: int = 8) -> Allocation:
    """Global minimiser of the total reported cost (see the module docstring for the method).

    Raises :class:`FlosimError` if some ``a4 < 0`` (the inner problem would be non-convex) or if no
    point satisfies the constraints.
    """
    if np.any(chain.coefs[:, 4] < 0):
        bad = [chain.names[i] for i in np.flatnonzero(chain.coefs[:, 4] < 0)]
        raise FlosimError(f"a4: must be >= 0 for the exact solver (concave in sigma for {', '.join(bad)})")
    n = chain.n
    lo_mu, hi_mu = chain.mu_bounds[:, 0], chain.mu_bounds[:, 1]
    patterns: list[tuple[int, tuple[int, ...]]] = []
    rows = []
    for k in range(n):
        t = np.linspace(lo_mu[k], hi_mu[k], grid_points)
        for bits in itertools.product((0, 1), repeat=n - 1):
            base = np.empty(n)
            others = [j for j in range(n) if j != k]
            for j, b in zip(others, bits):
                base[j] = chain.mu_bounds[j, b]
            block = np.repeat(base[None, :], grid_points, axis=0)
            block[:, k] = t
            rows.append(block)
            patterns.append((k, bits))
    mu_all = np.vstack(rows)
    _, values = _sigma_given_mu(chain, mu_all)
    if not np.isfinite(values).any():
        raise FlosimError(
            "supply chain: no (mu, sigma) satisfies C_p, C_pk, the delivery window and the bounds"
        )
    values = values.reshape(len(patterns), grid_points)

    # Candidates: grid-local minima of every pattern, best first.
    candidates: list[tuple[float, int, int]] = []
    for p in range(len(patterns)):
        v = values[p]
        left = np.r_[np.inf, v[:-1]]
        right = np.r_[v[1:], np.inf]
        for g in np.flatnonzero(np.isfinite(v) & (v <= left) & (v <= right)):
            candidates.append((float(v[g]), p, int(g)))
    candidates.sort()
    candidates = candidates[:polish]
    # Polish all candidates together: zoom into [t_(g-1), t_(g+1)] with a finer grid, repeatedly.
    base = np.array([mu_all[p * grid_points + g] for _, p, g in candidates])
    ks = np.array([patterns[p][0] for _, p, _ in candidates])
    centre = base[np.arange(len(base)), ks].copy()
    lo_k, hi_k = lo_mu[ks], hi_mu[ks]
    half = (hi_k - lo_k) / max(grid_points - 1, 1)
    best_val = np.array([c[0] for c in candidates])
    zoom = np.linspace(-1.0, 1.0, 21)
    for _ in range(9):
        xs = np.clip(centre[:, None] + half[:, None] * zoom[None, :], lo_k[:, None], hi_k[:, None])
        trial = np.repeat(base, len(zoom), axis=0)
        trial[np.arange(len(trial)), np.repeat(ks, len(zoom))] = xs.ravel()
        vals = _sigma_given_mu(chain, trial)[1].reshape(len(base), len(zoom))
        j = np.argmin(vals, axis=1)
        improved = vals[np.arange(len(base)), j] <= best_val
        centre = np.where(improved, xs[np.arange(len(base)), j], centre)
        best_val = np.where(improved, vals[np.arange(len(base)), j], best_val)
        half = half / 10.0  # the new bracket spans the neighbouring zoom points
    i_best = int(np.argmin(best_val))
    best_mu = base[i_best].copy()
    best_mu[ks[i_best]] = centre[i_best]
    sigma = _sigma_given_mu(chain, best_mu[None, :])[0][0]
    return _allocation(chain, best_mu, sigma)


def brute_force(chain: SupplyChain, mu_points: int = 11, sigma_points: int = 21) -> Allocation:
    """Best feasible point of a grid over all ``2n`` variables (for checking :func:`solve`).

    ``sigma_i`` is gridded on ``[low_i, min(high_i, T / (3 p))]`` -- larger values violate ``C_p``
    whatever the others do. Works for any sign of ``a4``. Cost ``mu_points^n * sigma_points^n``.
    """
    n = chain.n
    mu_grids = [np.linspace(*chain.mu_bounds[i], mu_points) for i in range(n)]
    cap = chain.target.radius(chain.target.tau)  # the C_p cap (slack is largest at tau)
    sig_grids = [
        np.linspace(chain.sigma_bounds[i, 0], max(chain.sigma_bounds[i, 0], min(chain.sigma_bounds[i, 1], cap)),
                    sigma_points)
        for i in range(n)
    ]
    sig_mesh = np.meshgrid(*sig_grids, indexing="ij")
    sig_sq = sum(s**2 for s in sig_mesh)
    best = (np.inf, None, None)
    for mu in itertools.product(*mu_grids):
        mu_arr = np.array(mu)
        r = float(chain.target.radius(mu_arr.sum()))
        if r < 0:
            continue
        total = sum(cost(chain.coefs[i], mu_arr[i], sig_mesh[i]) for i in range(n))
        total = np.where(sig_sq <= r * r * (1 + 1e-12), total, np.inf)
        idx = np.unravel_index(np.argmin(total), total.shape)
        if total[idx] < best[0]:
            best = (float(total[idx]), mu_arr, np.array([sig_mesh[i][idx] for i in range(n)]))
    if best[1] is None:
        raise FlosimError("supply chain: no grid point satisfies the constraints")
    return _allocation(chain, best[1], best[2])


# --------------------------------------------------------------------------------------------------
# Cost fits
# --------------------------------------------------------------------------------------------------


def design_matrix(mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    mu, sigma = np.asarray(mu, float), np.asarray(sigma, float)
    return np.column_stack([np.ones_like(mu), mu, sigma, mu * sigma, sigma**2])


def fit_lstsq(providers: Sequence[tuple[float, float, float]]) -> np.ndarray:
    """Unconstrained least squares, minimum norm when under-determined (4 providers, 5 coefficients)."""
    d = np.asarray(providers, dtype=float)
    return np.linalg.lstsq(design_matrix(d[:, 0], d[:, 1]), d[:, 2], rcond=None)[0]


def _small_qp(hess: np.ndarray, lin: np.ndarray, g_mat: np.ndarray, h_vec: np.ndarray) -> np.ndarray:
    """Exact minimiser of ``1/2 x'Hx - lin'x`` s.t. ``G x <= h`` (``H`` positive definite) by active sets.

    Enumerates every set of at most ``dim`` active constraints, solves its KKT system and keeps the
    point that is primal feasible with non-negative multipliers (unique for a strictly convex QP).
    Meant for a handful of variables and constraints, where it is exact to linear-algebra precision.
    """
    dim = hess.shape[0]
    m = g_mat.shape[0]
    scale = max(1.0, float(np.max(np.abs(h_vec))) if m else 1.0)
    best, best_val = None, np.inf
    for size in range(min(dim, m) + 1):
        for active in itertools.combinations(range(m), size):
            ga = g_mat[list(active)]
            kkt = np.block([[hess, ga.T], [ga, np.zeros((size, size))]])
            rhs = np.r_[lin, h_vec[list(active)]]
            try:
                sol = np.linalg.solve(kkt, rhs)
            except np.linalg.LinAlgError:
                continue
            x, lam = sol[:dim], sol[dim:]
            if np.any(lam < -1e-9 * scale) or np.any(g_mat @ x > h_vec + 1e-9 * scale):
                continue
            val = 0.5 * x @ hess @ x - lin @ x
            if val < best_val:
                best, best_val = x, val
    if best is None:
        raise FlosimError("fit: the shape constraints admit no cost function")
    return best


def fit_cost(
    providers: Sequence[tuple[float, float, float]],
    mu_bounds: tuple[float, float],
    sigma_bounds: tuple[float, float],
    monotone_mu: bool = False,
    ridge: float = 1e-6,
) -> np.ndarray:
    """Shape-constrained least-squares fit of the five coefficients to a provider table.

    Constraints on the box ``mu_bounds x sigma_bounds`` (the paper's assumption 4, where the data allow):
    non-increasing in ``sigma`` (checked at the four corners, exact because ``d nu / d sigma`` is
    affine), convex in ``sigma`` (``a4 >= 0``, which the exact solver needs), non-negative (checked at
    ``sigma = high``, where a non-increasing cost is lowest, at both ``mu`` ends). With
    ``monotone_mu`` also non-increasing in ``mu``. A small ridge term (``ridge`` times the squared
    norm of the coefficients) picks one fit when there are fewer providers than coefficients. The
    quadratic programme is solved exactly by enumerating active sets.
    """
    d = np.asarray(providers, dtype=float)
    a_mat = design_matrix(d[:, 0], d[:, 1])
    rows, rhs = [[0, 0, 0, 0, -1.0]], [0.0]  # a4 >= 0
    for m in mu_bounds:
        for s in sigma_bounds:
            rows.append([0, 0, 1.0, m, 2 * s])  # d nu / d sigma <= 0
            rhs.append(0.0)
        rows.append(list(-design_matrix(np.array([m]), np.array([sigma_bounds[1]]))[0]))  # nu >= 0
        rhs.append(0.0)
    if monotone_mu:
        for s in sigma_bounds:
            rows.append([0, 1.0, 0, s, 0])  # d nu / d mu <= 0
            rhs.append(0.0)
    hess = 2 * (a_mat.T @ a_mat + ridge * np.eye(5))
    coef = _small_qp(hess, 2 * a_mat.T @ d[:, 2], np.array(rows), np.array(rhs))
    coef[np.abs(coef) < 1e-12] = 0.0
    return coef


def assumption4_violations(coef: np.ndarray, mu_bounds: tuple[float, float], sigma_bounds: tuple[float, float],
                           points: int = 41) -> list[str]:
    """Which of 'non-negative', 'non-increasing in sigma', 'non-increasing in mu', 'convex in sigma' fail on the box."""
    mu, sg = np.meshgrid(np.linspace(*mu_bounds, points), np.linspace(*sigma_bounds, points), indexing="ij")
    a0, a1, a2, a3, a4 = coef
    tol = 1e-6 * max(1.0, float(np.max(np.abs(coef))))  # the fit's solver tolerance
    out = []
    if np.min(cost(coef, mu, sg)) < -tol:
        out.append(f"negative cost (min {np.min(cost(coef, mu, sg)):.2f})")
    if np.max(a2 + a3 * mu + 2 * a4 * sg) > tol:
        out.append("increasing in sigma somewhere")
    if np.max(a1 + a3 * sg) > tol:
        out.append("increasing in mu somewhere")
    if a4 < -tol:
        out.append(f"concave in sigma (a4 = {a4:.2f})")
    return out


def paper_chain(fit: str = "shape", sigma_floor: float = 0.01, target: DeliveryTarget | None = None) -> SupplyChain:
    """The three-echelon case from Tables 1-3 with the project's documented fit.

    Bounds: ``mu_i`` within the range of its providers' means (no extrapolation in ``mu``);
    ``sigma_i`` in ``[sigma_floor, largest provider sd]`` (the paper's Table 4 has ``sigma_3 = 0.01``).
    ``fit``: ``"shape"`` (non-increasing and convex in sigma, non-negative) or ``"shape-mu"`` (also
    non-increasing in mu, as assumption 4 may be read; it fits echelon 1 badly).
    """
    if fit not in ("shape", "shape-mu"):
        raise FlosimError(f"--fit: unknown fit {fit!r} (use 'shape' or 'shape-mu')")
    if not 0 <= sigma_floor < 0.25:
        raise FlosimError(f"--sigma-floor: must be in [0, 0.25), got {sigma_floor}")
    coefs, mub, sgb = [], [], []
    for providers in PAPER_PROVIDERS:
        d = np.asarray(providers, dtype=float)
        mb = (float(d[:, 0].min()), float(d[:, 0].max()))
        sb = (sigma_floor, float(d[:, 1].max()))
        coefs.append(fit_cost(providers, mb, sb, monotone_mu=(fit == "shape-mu")))
        mub.append(mb)
        sgb.append(sb)
    return SupplyChain(np.array(coefs), np.array(mub), np.array(sgb), target or DeliveryTarget(), PAPER_ECHELONS)


# --------------------------------------------------------------------------------------------------
# Payments (the paper's sign: I_i is RECEIVED by echelon i; utility I_i - nu_i)
# --------------------------------------------------------------------------------------------------


def dsic_payments(reported_costs_at_optimum: np.ndarray, alpha: float | np.ndarray) -> np.ndarray:
    """SCF-DSIC, eq. (19): ``I_i = alpha_i - sum_{j != i} w_j(mu_j*, sigma_j*)`` (a Groves rule)."""
    w = np.asarray(reported_costs_at_optimum, dtype=float)
    alpha = np.broadcast_to(np.asarray(alpha, dtype=float), w.shape)
    return np.array([-groves_payment(w.sum() - w[i], alpha[i]) for i in range(len(w))])


def eq20_payments(reported_costs_at_optimum: np.ndarray, q: float | np.ndarray) -> np.ndarray:
    """SCF-BIC as printed, eq. (20): ``I_i = sum_{j != i} q_ij w_j(mu_j*, sigma_j*)``.

    ``q`` is a scalar (all ``q_ij`` equal, as in Cases 1-4) or an ``(n, n)`` matrix (diagonal ignored).
    """
    w = np.asarray(reported_costs_at_optimum, dtype=float)
    n = len(w)
    qm = np.full((n, n), float(q)) if np.ndim(q) == 0 else np.asarray(q, dtype=float)
    np.fill_diagonal(qm, 0.0)
    return qm @ w


def utility(rule: str, chain_true: SupplyChain, reported: np.ndarray, agent: int, *, alpha: float = PAPER_ALPHA,
            q: float = 1.0, grid_points: int = 401) -> float:
    """Echelon ``agent``'s true utility ``I_i - nu_i`` when it reports ``reported`` (the others are truthful).

    ``rule`` is ``"dsic"`` (eq. 19) or ``"eq20"`` (eq. 20).
    """
    coefs = chain_true.coefs.copy()
    coefs[agent] = reported
    alloc = solve(chain_true.with_coefs(coefs), grid_points)
    w = alloc.costs  # the others' reports are their true costs; agent's own entry is its report
    pay = dsic_payments(w, alpha) if rule == "dsic" else eq20_payments(w, q)
    true_own = float(cost(chain_true.coefs[agent], alloc.mu[agent], alloc.sigma[agent]))
    return float(pay[agent] - true_own)


def sample_misreport(coef: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random lie: multiplicative noise on every coefficient plus additive noise on the slopes (``a4 >= 0`` kept)."""
    lie = coef * np.exp(rng.normal(0.0, 0.3, 5))
    lie[1:4] += rng.normal(0.0, 0.2 * np.abs(coef[1:4]) + 1.0)
    lie[4] = max(0.0, lie[4] + rng.normal(0.0, 0.2 * abs(coef[4]) + 1.0))
    return lie


def misreport_audit(chain: SupplyChain, rule: str, rng: np.random.Generator, samples: int = 30, *,
                    alpha: float = PAPER_ALPHA, q: float = 1.0, grid_points: int = 201) -> dict[str, object]:
    """Largest true gain over ``samples`` sampled misreports per echelon (others truthful)."""
    gains, best_lies = [], []
    for i in range(chain.n):
        truth = utility(rule, chain, chain.coefs[i], i, alpha=alpha, q=q, grid_points=grid_points)
        best, best_lie = -np.inf, None
        for _ in range(samples):
            lie = sample_misreport(chain.coefs[i], rng)
            try:
                g = utility(rule, chain, lie, i, alpha=alpha, q=q, grid_points=grid_points) - truth
            except FlosimError:
                continue  # a lie that makes the problem infeasible is not an option for the liar
            if g > best:
                best, best_lie = g, lie
        gains.append(float(best))
        best_lies.append(None if best_lie is None else [float(x) for x in best_lie])
    return {"rule": rule, "samples": samples, "max_gain": gains, "best_lie": best_lies}


# --------------------------------------------------------------------------------------------------
# dAGVA on a finite type model of the chain
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScfDagva:
    """dAGVA on a type model where echelon ``i``'s cost is ``scale_t * nu_i`` with prior ``prior[t]``."""

    scales: tuple[float, ...]
    prior: tuple[float, ...]
    mechanism: DagvaResult
    optimal_total: np.ndarray
    """Least total cost per type profile (shape ``(m,)*n``)."""

    def truthful_profile(self) -> tuple[int, ...]:
        return (self.scales.index(1.0),) * self.mechanism.n_agents

    def expected_payments(self) -> dict[str, float]:
        """Expected total payment to the echelons under normalisations that make them participate.

        * ``dagva_budget_balanced``: zero by construction (and some type loses money);
        * ``dagva_interim_ir``: plus the smallest lump sum per echelon giving every type a non-negative
          interim expected utility;
        * ``dsic_interim_ir``: Groves with a constant ``alpha_i`` chosen the same way;
        * ``dsic_ex_post_ir``: Groves with ``h_i(theta_-i) = max_{theta_i} C*(theta)`` -- non-negative
          utility in every profile (the cheapest such Groves rule).
        """
        mech = self.mechanism
        n = mech.n_agents
        m = len(self.prior)
        p = np.asarray(self.prior)
        weights = np.ones((m,) * n)
        for i in range(n):
            idx = [None] * n
            idx[i] = slice(None)
            weights = weights * p[tuple(idx)]
        expected_c = float((weights * self.optimal_total).sum())
        lumps = [max(mech.interim_cost(i, t, t) for t in range(m)) for i in range(n)]
        alphas = []
        for i in range(n):
            axes = tuple(j for j in range(n) if j != i)
            cond = (weights * self.optimal_total).sum(axis=axes) / weights.sum(axis=axes)
            alphas.append(float(cond.max()))
        ex_post = 0.0
        for i in range(n):
            h = self.optimal_total.max(axis=i, keepdims=True)
            ex_post += float((weights * (h - self.optimal_total)).sum())
        return {
            "expected_optimal_cost": expected_c,
            "dagva_budget_balanced": 0.0,
            "dagva_interim_ir": float(sum(lumps)),
            "dsic_interim_ir": float(sum(alphas) - (n - 1) * expected_c),
            "dsic_ex_post_ir": float(ex_post + expected_c),
        }


def dagva_scf(chain: SupplyChain, scales: Sequence[float] = (0.8, 1.0, 1.2),
              prior: Sequence[float] = (0.25, 0.5, 0.25), grid_points: int = 201) -> ScfDagva:
    """Build the dAGVA mechanism for the chain on the finite type model ``scale * nu_i``.

    The outcome set is the planner's optimum for every type profile; the efficient choice among them
    is the global optimum of each profile (each profile's own optimum is in the set).
    """
    scales = tuple(float(s) for s in scales)
    if 1.0 not in scales:
        raise FlosimError(f"--type-scales: must include 1.0 (the fitted cost), got {scales}")
    if len(prior) != len(scales) or any(x < 0 for x in prior) or not np.isclose(sum(prior), 1.0):
        raise FlosimError(f"--type-prior: need {len(scales)} non-negative numbers summing to 1, got {list(prior)}")
    n, m = chain.n, len(scales)
    profiles = list(itertools.product(range(m), repeat=n))
    allocs = []
    totals = np.empty((m,) * n)
    for prof in profiles:
        coefs = chain.coefs * np.array([scales[t] for t in prof])[:, None]
        a = solve(chain.with_coefs(coefs), grid_points)
        allocs.append(a)
        totals[prof] = a.total
    costs = []
    for i in range(n):
        base = np.array([float(cost(chain.coefs[i], a.mu[i], a.sigma[i])) for a in allocs])
        costs.append(np.array([s * base for s in scales]))
    mech = dagva(costs, [np.asarray(prior, float)] * n)
    return ScfDagva(scales, tuple(float(x) for x in prior), mech, totals)


# --------------------------------------------------------------------------------------------------
# The paper's numbers: what follows from its text
# --------------------------------------------------------------------------------------------------


def paper_reproduction(alpha: float = PAPER_ALPHA) -> dict[str, object]:
    """Recompute Tables 5-8 from the paper's own Table 4 and say which numbers follow from the text."""
    t4 = np.asarray(PAPER_TABLE4, dtype=float)
    w = t4[:, 2]
    dsic = dsic_payments(w, alpha)
    target = DeliveryTarget()
    cp, cpk = capability(target, t4[:, 0], t4[:, 1])
    eq20 = {case: eq20_payments(w, q).round(2).tolist() for case, q in PAPER_CASES.items()}
    implied = {case: [round(b / PAPER_CASES[case], 2) for b in PAPER_BIC[case]] for case in PAPER_CASES}
    others = [float(w.sum() - w[i]) for i in range(3)]
    return {
        "table4": [{"echelon": PAPER_ECHELONS[i], "mu": float(t4[i, 0]), "sigma": float(t4[i, 1]),
                    "cost": float(t4[i, 2])} for i in range(3)],
        "table5_dsic_from_table4": [round(float(x), 1) for x in dsic],
        "table5_dsic_from_table4_exact": [round(float(x), 2) for x in dsic],
        "table5_dsic_published": list(PAPER_DSIC),
        "dsic_matches": bool(np.allclose(np.round(dsic, 1), PAPER_DSIC)),
        "table4_capability": {"cp": round(float(cp), 4), "cpk": round(float(cpk), 4),
                              "cp_binding": bool(abs(cp - target.cp_min) < 1e-3),
                              "cpk_binding": bool(abs(cpk - target.cpk_min) < 1e-3)},
        "bic_eq20_from_table4": eq20,
        "bic_published": {k: list(v) for k, v in PAPER_BIC.items()},
        "bic_published_over_q": implied,
        "others_cost_from_table4": [round(x, 2) for x in others],
        "bic_matches": {case: bool(np.allclose(eq20[case], PAPER_BIC[case], atol=0.05)) for case in PAPER_CASES},
    }
