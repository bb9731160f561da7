"""Optimal mechanisms with deferred inspection and reward (Alaei, Belloni, Makhdoumi, Malekian).

The mechanism, as the paper's abstract and the interview describe it: a bidder reports (bids) ``b``;
the auctioneer takes the bid as a **deposit**, allocates the item with probability ``q(b)``, later
**inspects** the value and gives back a **reward** (part of the deposit) only if the report was
truthful. A truthful bidder therefore pays ``p(b) = deposit - reward``, never more than its bid; a
bidder caught lying forfeits the whole deposit.

Model on a discrete value grid ``v_1 < ... < v_N`` with probabilities ``f_k`` (the message space is
the grid). Variables: allocation ``q_k`` and the truthful type's expected payment ``p_k``. With
inspection probability ``theta`` (a detected lie forfeits the deposit ``kappa b``; an undetected one
is treated as truthful) the LP is::

    max  sum_k f_k p_k  (- theta * inspection_cost)
    s.t. v_k q_k - p_k >= v_k q_j - p_j - theta (kappa v_j - p_j)    for all j != k   (IC vs every misreport)
         v_k q_k - p_k >= 0                                           (participation)
         0 <= p_k <= min(1, kappa) v_k,  0 <= q_k <= 1                (payment never above the bid,
                                                                        reward never above the deposit)

``theta = 1, kappa = 1`` is the paper's mechanism; ``theta = 0`` switches inspection off and the LP is
the classic screening problem, whose optimum is Myerson's posted price. Parameters that the paper's
claims depend on are explicit: ``inspection_prob`` (``theta``), ``deposit_factor`` (``kappa``: the
limited-liability cap on what a liar can lose; the paper has ``kappa = 1``) and ``inspection_cost``
(per bidder inspected, deducted from revenue).

What a user may do: :func:`value_grid` to discretise a named distribution, :func:`optimal_mechanism`
for one bidder, :func:`myerson_posted_price` for the benchmark, :func:`constraint_violations` to audit
any mechanism independently of the LP, :func:`allocation_spread` to check the optimal allocation is
unique, and for two i.i.d. bidders :func:`optimal_two_bidders` (the general ex-post LP, or restricted
to "allocate to the highest bid, reward the truthful") and :func:`second_price_with_reserve`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy import stats
from scipy.optimize import linprog

from sim.errors import FlosimError

# --------------------------------------------------------------------------------------------------
# Value distributions
# --------------------------------------------------------------------------------------------------

#: name -> (cdf, support, description). Continuous distributions, discretised by :func:`value_grid`.
DISTRIBUTIONS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], tuple[float, float], str]] = {
    "uniform": (stats.uniform(0, 1).cdf, (0.0, 1.0), "uniform on [0, 1]"),
    "triangular": (stats.triang(0.5, 0, 1).cdf, (0.0, 1.0), "symmetric triangular on [0, 1], mode 0.5"),
    "beta25": (stats.beta(2, 5).cdf, (0.0, 1.0), "Beta(2, 5) on [0, 1] (right-skewed)"),
    "exponential": (stats.expon().cdf, (0.0, 5.0), "Exp(1) truncated to [0, 5]"),
    "uniform12": (stats.uniform(1, 1).cdf, (1.0, 2.0), "uniform on [1, 2] (no low values)"),
}


@dataclass(frozen=True)
class ValueGrid:
    """Grid values (cell midpoints) and their probabilities."""

    values: np.ndarray
    probs: np.ndarray
    name: str = "custom"

    def __post_init__(self) -> None:
        v = np.asarray(self.values, dtype=float)
        f = np.asarray(self.probs, dtype=float)
        if v.ndim != 1 or v.shape != f.shape or len(v) < 2:
            raise FlosimError("grid: values and probs must be 1-D of the same length >= 2")
        if np.any(np.diff(v) <= 0) or v[0] < 0:
            raise FlosimError("grid: values must be non-negative and strictly increasing")
        if np.any(f < 0) or not np.isclose(f.sum(), 1.0):
            raise FlosimError("grid: probs must be non-negative and sum to 1")
        object.__setattr__(self, "values", v)
        object.__setattr__(self, "probs", f)

    @property
    def n(self) -> int:
        return len(self.values)

    def mean(self) -> float:
        return float(self.values @ self.probs)


def value_grid(dist: str, n: int = 200) -> ValueGrid:
    """Discretise a named distribution into ``n`` equal cells of its support (mass of each cell at its midpoint)."""
    if dist not in DISTRIBUTIONS:
        raise FlosimError(f"--dist: unknown distribution {dist!r} (choose from {', '.join(DISTRIBUTIONS)})")
    if not isinstance(n, (int, np.integer)) or n < 2 or n > 2000:
        raise FlosimError(f"--grid: need an integer between 2 and 2000, got {n}")
    cdf, (lo, hi), _ = DISTRIBUTIONS[dist]
    edges = np.linspace(lo, hi, n + 1)
    mass = np.diff(cdf(edges))
    return ValueGrid(0.5 * (edges[:-1] + edges[1:]), mass / mass.sum(), dist)


# --------------------------------------------------------------------------------------------------
# Model parameters and the single-bidder LP
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InspectionModel:
    """What inspection can do (see the module docstring)."""

    inspection_prob: float = 1.0
    deposit_factor: float = 1.0
    inspection_cost: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.inspection_prob <= 1.0:
            raise FlosimError(f"--inspection-prob: must be in [0, 1], got {self.inspection_prob}")
        if not 0.0 <= self.deposit_factor <= 100.0:
            raise FlosimError(f"--deposit-factor: must be in [0, 100], got {self.deposit_factor}")
        if not self.inspection_cost >= 0.0:
            raise FlosimError(f"--inspection-cost: must be >= 0, got {self.inspection_cost}")

    @property
    def off(self) -> bool:
        return self.inspection_prob == 0.0


@dataclass(frozen=True)
class Mechanism:
    """A direct mechanism for one bidder on a grid: allocation, payment, reward, utility."""

    grid: ValueGrid
    model: InspectionModel
    allocation: np.ndarray
    payment: np.ndarray
    """Expected amount a truthful bidder of each type leaves with the seller (deposit - reward)."""

    @property
    def reward(self) -> np.ndarray:
        """Expected part of the deposit returned to a truthful bidder (``kappa v - p``)."""
        return self.model.deposit_factor * self.grid.values - self.payment

    @property
    def utility(self) -> np.ndarray:
        return self.grid.values * self.allocation - self.payment

    @property
    def revenue(self) -> float:
        return float(self.grid.probs @ self.payment)

    @property
    def net_revenue(self) -> float:
        return self.revenue - self.model.inspection_prob * self.model.inspection_cost


def _ic_rows(v: np.ndarray, theta: float, kappa: float, q_map: sp.csr_matrix) -> tuple[sp.csr_matrix, np.ndarray]:
    """Rows ``A [x; p] <= b`` of every IC constraint (type k vs report j), allocation ``Q = q_map x``."""
    n = len(v)
    k, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    off = k != j
    k, j = k[off], j[off]
    m = len(k)
    rows = np.arange(m)
    pick_j = sp.csr_matrix((np.ones(m), (rows, j)), shape=(m, n))
    pick_k = sp.csr_matrix((np.ones(m), (rows, k)), shape=(m, n))
    a_x = sp.diags(v[k]) @ (pick_j - pick_k) @ q_map
    a_p = pick_k - (1.0 - theta) * pick_j
    return sp.hstack([a_x, a_p]).tocsr(), theta * kappa * v[j]


def _solve_lp(c: np.ndarray, a_ub: sp.csr_matrix, b_ub: np.ndarray, bounds: list[tuple[float, float]]) -> np.ndarray:
    res = linprog(c, A_ub=a_ub, b_ub=b_ub, bounds=bounds, method="highs")
    if res.status != 0:
        raise RuntimeError(f"inspection LP failed: {res.message}")
    return res.x


def _single_lp(grid: ValueGrid, model: InspectionModel) -> tuple[np.ndarray, sp.csr_matrix, np.ndarray, list]:
    v, f, n = grid.values, grid.probs, grid.n
    a_ic, b_ic = _ic_rows(v, model.inspection_prob, model.deposit_factor, sp.identity(n, format="csr"))
    a_ir = sp.hstack([-sp.diags(v), sp.identity(n)])
    a_ub = sp.vstack([a_ic, a_ir]).tocsr()
    b_ub = np.r_[b_ic, np.zeros(n)]
    cap = min(1.0, model.deposit_factor)
    bounds = [(0.0, 1.0)] * n + [(0.0, cap * float(x)) for x in v]
    c = np.r_[np.zeros(n), -f]
    return c, a_ub, b_ub, bounds


def optimal_mechanism(grid: ValueGrid, model: InspectionModel | None = None) -> Mechanism:
    """Revenue-optimal single-bidder mechanism with deferred inspection and reward (the LP above)."""
    model = model or InspectionModel()
    c, a_ub, b_ub, bounds = _single_lp(grid, model)
    x = _solve_lp(c, a_ub, b_ub, bounds)
    return Mechanism(grid, model, np.clip(x[: grid.n], 0.0, 1.0), x[grid.n :])


def allocation_spread(grid: ValueGrid, model: InspectionModel, revenue: float, rel_tol: float = 1e-9,
                      min_mass: float = 1e-6) -> float:
    """Largest difference between two optimal allocations: those minimising and maximising ``sum_k k q_k``
    on the optimal face (revenue within ``rel_tol``), over types with probability ``>= min_mass``.

    A small value means the LP optimum's allocation is (numerically) unique, so its shape is not an
    artefact of which vertex the solver returns. Types of negligible mass are skipped: their
    allocation moves revenue by less than the solver's tolerance.
    """
    c, a_ub, b_ub, bounds = _single_lp(grid, model)
    a2 = sp.vstack([a_ub, sp.csr_matrix(c[None, :])]).tocsr()
    b2 = np.r_[b_ub, -revenue + rel_tol * max(1.0, abs(revenue))]
    w = np.r_[np.arange(grid.n, dtype=float), np.zeros(grid.n)]
    lo = _solve_lp(w, a2, b2, bounds)[: grid.n]
    hi = _solve_lp(-w, a2, b2, bounds)[: grid.n]
    keep = grid.probs >= min_mass
    return float(np.max(np.abs(hi - lo)[keep])) if keep.any() else 0.0


def myerson_posted_price(grid: ValueGrid) -> tuple[float, float]:
    """Optimal posted price without inspection (Myerson / Riley-Zeckhauser): ``max_k v_k P(V >= v_k)``."""
    survival = np.cumsum(grid.probs[::-1])[::-1]
    rev = grid.values * survival
    k = int(np.argmax(rev))
    return float(grid.values[k]), float(rev[k])


def constraint_violations(mech: Mechanism) -> dict[str, float]:
    """Largest violation of each constraint, computed directly (not from the LP); all <= 0 when feasible."""
    v, q, p = mech.grid.values, mech.allocation, mech.payment
    theta, kappa = mech.model.inspection_prob, mech.model.deposit_factor
    u = v * q - p
    dev = v[:, None] * q[None, :] - p[None, :] - theta * (kappa * v[None, :] - p[None, :])
    np.fill_diagonal(dev, -np.inf)
    return {
        "ic": float(np.max(dev.max(axis=1) - u)),
        "ir": float(np.max(-u)),
        "payment_above_bid": float(np.max(p - min(1.0, kappa) * v)),
        "negative_payment": float(np.max(-p)),
        "allocation_range": float(max(np.max(q - 1.0), np.max(-q))),
    }


def shape_diagnostics(grid: ValueGrid, q: np.ndarray) -> dict[str, float | bool]:
    """Is ``q`` increasing, and how large is its biggest step between neighbouring grid points?"""
    d = np.diff(q)
    return {
        "increasing": bool(d.min() >= -1e-7),
        "min_step": float(d.min()),
        "max_jump": float(d.max()),
        "max_slope": float(np.max(d / np.diff(grid.values))),
        "first_full_allocation": (float(grid.values[np.argmax(q >= 1 - 1e-7)]) if np.any(q >= 1 - 1e-7) else None),
    }


# --------------------------------------------------------------------------------------------------
# Two i.i.d. bidders
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TwoBidderMechanism:
    """A symmetric two-bidder mechanism in reduced form (interim allocation and payment per type)."""

    grid: ValueGrid
    model: InspectionModel
    implementation: str
    interim_allocation: np.ndarray
    payment: np.ndarray
    win_probability: np.ndarray | None = None
    """For ``highest_bid``: probability ``a(b)`` that the highest bidder gets the item."""

    @property
    def revenue(self) -> float:
        return 2.0 * float(self.grid.probs @ self.payment)

    @property
    def net_revenue(self) -> float:
        return self.revenue - 2.0 * self.model.inspection_prob * self.model.inspection_cost


def _tie_split_share(f: np.ndarray) -> np.ndarray:
    """P(a bidder of type k beats or ties-and-wins against one opponent), ties split evenly."""
    below = np.r_[0.0, np.cumsum(f)[:-1]]
    return below + 0.5 * f


def optimal_two_bidders(grid: ValueGrid, model: InspectionModel | None = None,
                        implementation: str = "ex_post") -> TwoBidderMechanism:
    """Revenue-optimal symmetric mechanism for two i.i.d. bidders with inspection.

    ``implementation``:

    * ``"ex_post"`` -- any symmetric ex-post allocation ``x[k, l]`` (prob. a type-``k`` bidder wins against
      type ``l``; ``x[k,l] + x[l,k] <= 1``); no Border constraints needed;
    * ``"highest_bid"`` -- the paper's implementation: the highest bid wins with probability ``a(b)``
      (ties split), nobody otherwise; the truthful winner is rewarded.

    IC (against every misreport), participation and payment bounds are those of the single-bidder LP,
    in interim form.
    """
    model = model or InspectionModel()
    v, f, n = grid.values, grid.probs, grid.n
    if implementation == "ex_post":
        nx = n * n
        q_map = sp.kron(sp.identity(n), sp.csr_matrix(f[None, :])).tocsr()
        k, l_ = np.triu_indices(n, 1)
        r = np.arange(len(k))
        a_feas = sp.csr_matrix((np.ones(2 * len(k)), (np.r_[r, r], np.r_[k * n + l_, l_ * n + k])), shape=(len(k), nx))
        x_bounds = [(0.0, 1.0)] * nx
        for i in range(n):
            x_bounds[i * n + i] = (0.0, 0.5)
    elif implementation == "highest_bid":
        nx = n
        q_map = sp.diags(_tie_split_share(f)).tocsr()
        a_feas = None
        x_bounds = [(0.0, 1.0)] * n
    else:
        raise FlosimError(f"implementation: unknown {implementation!r} (use 'ex_post' or 'highest_bid')")
    a_ic, b_ic = _ic_rows(v, model.inspection_prob, model.deposit_factor, q_map)
    a_ir = sp.hstack([-sp.diags(v) @ q_map, sp.identity(n)])
    blocks, rhs = [a_ic, a_ir], [b_ic, np.zeros(n)]
    if a_feas is not None:
        blocks.append(sp.hstack([a_feas, sp.csr_matrix((a_feas.shape[0], n))]))
        rhs.append(np.ones(a_feas.shape[0]))
    cap = min(1.0, model.deposit_factor)
    bounds = x_bounds + [(0.0, cap * float(x)) for x in v]
    c = np.r_[np.zeros(nx), -2.0 * f]
    x = _solve_lp(c, sp.vstack(blocks).tocsr(), np.concatenate(rhs), bounds)
    q = q_map @ x[:nx]
    return TwoBidderMechanism(grid, model, implementation, q, x[nx:],
                              x[:nx].copy() if implementation == "highest_bid" else None)


def two_bidder_violations(mech: TwoBidderMechanism) -> dict[str, float]:
    """Interim IC / IR / payment-bound violations of a two-bidder mechanism (all <= 0 when feasible)."""
    single = Mechanism(mech.grid, mech.model, mech.interim_allocation, mech.payment)
    return constraint_violations(single)


def second_price_with_reserve(grid: ValueGrid) -> tuple[float, float, np.ndarray]:
    """Second-price auction for two i.i.d. bidders with the best reserve on the grid.

    Returns ``(reserve, expected revenue, interim allocation per type)``; ties at the top are split
    and the winner pays ``max(second bid, reserve)``.
    """
    v, f = grid.values, grid.probs
    n = grid.n
    k, l_ = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    joint = f[:, None] * f[None, :]
    best_rev, best_r = -np.inf, 0
    for r in range(n):
        sold = np.maximum(k, l_) >= r
        price = np.maximum(v[np.minimum(k, l_)], v[r])
        rev = float((joint * sold * price).sum())
        if rev > best_rev + 1e-15:
            best_rev, best_r = rev, r
    q = np.where(np.arange(n) >= best_r, _tie_split_share(f), 0.0)
    return float(v[best_r]), best_rev, q


def expected_max_value(grid: ValueGrid) -> float:
    """``E[max(V1, V2)]``: the full surplus with two bidders, an upper bound on any revenue."""
    v, f = grid.values, grid.probs
    cdf = np.cumsum(f)
    below = np.r_[0.0, cdf[:-1]]
    return float(v @ (cdf**2 - below**2))
