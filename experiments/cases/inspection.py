"""Optimal mechanisms with deferred inspection and reward (Alaei, Belloni, Makhdoumi, Malekian).

The mechanism, as the paper's abstract and the interview describe it: a bidder reports (bids) ``b``;
the auctioneer takes the bid as a **deposit**, allocates the item with probability ``q(b)``, later
**inspects** the value and gives back a **reward** (part of the deposit) only if the report was
truthful. A truthful bidder therefore pays ``p(b) = deposit - reward``, never more than its bid; a
bidder caught lying forfeits the whole deposit.

Model on a discrete value grid ``v_1 < ... < v_N`` with probabilities ``f_k`` (the message space is
the grid). Variables: allocation ``q_k`` and what a truthful type leaves with the seller, split into
``w_k`` (expected payment when it gets the item) and ``l_k`` (when it does not). A detected lie
forfeits the whole deposit ``kappa b``. A bidder's value is inspected with probability ``theta`` (a
perfect inspection: it detects any lie); an uninspected report is treated as truthful. The LP::

    max  sum_k f_k (w_k + l_k)  -  inspection_cost * expected inspections per bidder
    s.t. v_k q_k - w_k - l_k >= liar(k -> j)        for all j != k   (IC against every misreport)
         v_k q_k - w_k - l_k >= 0                                    (participation)
         0 <= w_k <= c v_k q_k,  0 <= l_k <= c v_k (1 - q_k),  c = min(1, kappa),  0 <= q_k <= 1
                                 (a payment never exceeds the bid, nor the deposit it is taken from)

    liar(k -> j) = v_k q_j - (1 - theta)(w_j + l_j) - theta kappa v_j            every bidder inspected
    liar(k -> j) = v_k q_j - (1 - theta) w_j - theta kappa v_j q_j - l_j         only the winner inspected

The first line is the paper's setting (its abstract: the auctioneer "inspects the values of agents";
the interview: the value is observed "whether it is the winner ... or not"); the second is a variant
for when only the winner's value can be observed (``inspect_losers=False``). ``theta = 1, kappa = 1``
is the paper's mechanism; ``theta = 0`` switches inspection off and the LP becomes the classic
screening problem, whose optimum is Myerson's posted price. Parameters that the paper's claims
depend on are explicit: ``inspection_prob`` (``theta``), ``deposit_factor`` (``kappa``: the
limited-liability cap on what a liar can lose; the paper has ``kappa = 1``), ``inspect_losers`` and
``inspection_cost`` (per inspection, deducted from revenue).

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

from sim.model.errors import FlosimError

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
    inspect_losers: bool = True

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

    @property
    def cap(self) -> float:
        """Largest payment as a fraction of the bid: never above the bid, nor above the deposit."""
        return min(1.0, self.deposit_factor)

    def inspected_per_bidder(self, allocation: np.ndarray, probs: np.ndarray) -> float:
        """Expected number of inspections per bidder (all bidders, or only winners)."""
        share = 1.0 if self.inspect_losers else float(probs @ allocation)
        return self.inspection_prob * share


@dataclass(frozen=True)
class Mechanism:
    """A direct mechanism for one bidder on a grid: allocation and what a truthful bidder pays."""

    grid: ValueGrid
    model: InspectionModel
    allocation: np.ndarray
    payment_win: np.ndarray
    """Expected amount a truthful type leaves with the seller when it gets the item (``q`` times the price)."""
    payment_lose: np.ndarray
    """Expected amount a truthful type leaves with the seller when it does not get the item."""

    @classmethod
    def from_total(cls, grid: ValueGrid, model: InspectionModel, allocation: np.ndarray,
                   payment: np.ndarray) -> Mechanism:
        """Build from a total expected payment, charged when winning first (up to the bid)."""
        q = np.asarray(allocation, dtype=float)
        p = np.asarray(payment, dtype=float)
        win = np.minimum(p, model.cap * grid.values * q)
        return cls(grid, model, q, win, p - win)

    @property
    def payment(self) -> np.ndarray:
        """Expected amount a truthful bidder of each type leaves with the seller (deposit - reward)."""
        return self.payment_win + self.payment_lose

    @property
    def reward(self) -> np.ndarray:
        """Expected part of the deposit returned to a truthful bidder (``kappa v - payment``)."""
        return self.model.deposit_factor * self.grid.values - self.payment

    @property
    def utility(self) -> np.ndarray:
        return self.grid.values * self.allocation - self.payment

    @property
    def revenue(self) -> float:
        return float(self.grid.probs @ self.payment)

    @property
    def net_revenue(self) -> float:
        return self.revenue - self.model.inspection_cost * self.model.inspected_per_bidder(
            self.allocation, self.grid.probs)


def _constraint_rows(v: np.ndarray, model: InspectionModel, q_map: sp.csr_matrix) -> tuple[sp.csr_matrix, np.ndarray]:
    """Rows ``A [x; payments] <= b``: IC vs every misreport, participation, payment caps; ``Q = q_map x``.

    When every bidder is inspected only the total payment ``w + l`` matters (the caps on ``w`` and
    ``l`` together say ``w + l <= c v``), so the payments are one block ``P`` with bounds
    ``0 <= P <= c v``; with winners-only inspection they are two blocks ``[w; l]``.
    """
    n = len(v)
    theta, kappa, cap = model.inspection_prob, model.deposit_factor, model.cap
    k, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    off = k != j
    k, j = k[off], j[off]
    m = len(k)
    rows = np.arange(m)
    pick_j = sp.csr_matrix((np.ones(m), (rows, j)), shape=(m, n))
    pick_k = sp.csr_matrix((np.ones(m), (rows, k)), shape=(m, n))
    eye = sp.identity(n, format="csr")
    vq = sp.diags(v) @ q_map
    # liar(k -> j) - truthful(k) <= 0
    if model.inspect_losers:
        a_x = sp.diags(v[k]) @ (pick_j - pick_k) @ q_map
        ic = sp.hstack([a_x, pick_k - (1.0 - theta) * pick_j])
        ir = sp.hstack([-vq, eye])
        return sp.vstack([ic, ir]).tocsr(), np.r_[theta * kappa * v[j], np.zeros(n)]
    a_x = (sp.diags(v[k] - theta * kappa * v[j]) @ pick_j - sp.diags(v[k]) @ pick_k) @ q_map
    ic = sp.hstack([a_x, pick_k - (1.0 - theta) * pick_j, pick_k - pick_j])
    ir = sp.hstack([-vq, eye, eye])                 # w + l <= v Q
    win_cap = sp.hstack([-cap * vq, eye, 0 * eye])  # w <= c v Q
    lose_cap = sp.hstack([cap * vq, 0 * eye, eye])  # l <= c v (1 - Q)
    a_ub = sp.vstack([ic, ir, win_cap, lose_cap]).tocsr()
    return a_ub, np.r_[np.zeros(m), np.zeros(2 * n), cap * v]


def _payment_bounds(v: np.ndarray, model: InspectionModel) -> list[tuple[float, float | None]]:
    if model.inspect_losers:
        return [(0.0, model.cap * float(x)) for x in v]
    return [(0.0, None)] * (2 * len(v))


def _split_payments(x_pay: np.ndarray, v: np.ndarray, q: np.ndarray, model: InspectionModel
                    ) -> tuple[np.ndarray, np.ndarray]:
    """``(w, l)`` from the LP's payment block(s); a single total is charged when winning first."""
    n = len(v)
    if not model.inspect_losers:
        return x_pay[:n], x_pay[n:]
    win = np.minimum(x_pay, model.cap * v * q)
    return win, x_pay - win


def _solve_lp(c: np.ndarray, a_ub: sp.csr_matrix, b_ub: np.ndarray, bounds: list[tuple[float, float]]) -> np.ndarray:
    res = linprog(c, A_ub=a_ub, b_ub=b_ub, bounds=bounds, method="highs")
    if res.status != 0:
        raise RuntimeError(f"inspection LP failed: {res.message}")
    return res.x


def _objective(n_x: int, f: np.ndarray, model: InspectionModel, q_map: sp.csr_matrix, bidders: int) -> np.ndarray:
    """Minimise minus (revenue - inspection cost); inspections of winners only scale with Q."""
    if model.inspect_losers:
        return np.r_[np.zeros(n_x), -bidders * f]
    c_x = np.zeros(n_x)
    if model.inspection_cost > 0:
        c_x = bidders * model.inspection_prob * model.inspection_cost * (q_map.T @ f)
    return np.r_[c_x, -bidders * f, -bidders * f]


def _single_lp(grid: ValueGrid, model: InspectionModel) -> tuple[np.ndarray, sp.csr_matrix, np.ndarray, list]:
    n = grid.n
    eye = sp.identity(n, format="csr")
    a_ub, b_ub = _constraint_rows(grid.values, model, eye)
    bounds = [(0.0, 1.0)] * n + _payment_bounds(grid.values, model)
    return _objective(n, grid.probs, model, eye, 1), a_ub, b_ub, bounds


def optimal_mechanism(grid: ValueGrid, model: InspectionModel | None = None) -> Mechanism:
    """Revenue-optimal single-bidder mechanism with deferred inspection and reward (the LP above)."""
    model = model or InspectionModel()
    c, a_ub, b_ub, bounds = _single_lp(grid, model)
    x = _solve_lp(c, a_ub, b_ub, bounds)
    n = grid.n
    q = np.clip(x[:n], 0.0, 1.0)
    return Mechanism(grid, model, q, *_split_payments(x[n:], grid.values, q, model))


def allocation_spread(mech: Mechanism, rel_tol: float = 1e-7, min_mass: float = 1e-6) -> float:
    """Largest difference between two optimal allocations: those minimising and maximising ``sum_k k q_k``
    on the optimal face of ``mech``'s LP (objective within ``rel_tol``), over types with probability
    ``>= min_mass``.

    A small value means the LP optimum's allocation is (numerically) unique, so its shape is not an
    artefact of which vertex the solver returns. Types of negligible mass are skipped: their
    allocation moves revenue by less than the solver's tolerance.
    """
    grid = mech.grid
    c, a_ub, b_ub, bounds = _single_lp(grid, mech.model)
    pay = mech.payment if mech.model.inspect_losers else np.r_[mech.payment_win, mech.payment_lose]
    best = float(c @ np.r_[mech.allocation, pay])
    a2 = sp.vstack([a_ub, sp.csr_matrix(c[None, :])]).tocsr()
    b2 = np.r_[b_ub, best + rel_tol * max(1.0, abs(best))]
    w = np.r_[np.arange(grid.n, dtype=float), np.zeros(len(c) - grid.n)]
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


def _liar_payoff(mech_v: np.ndarray, q: np.ndarray, w: np.ndarray, l_: np.ndarray,
                 model: InspectionModel) -> np.ndarray:
    """``dev[k, j]``: expected payoff of type ``k`` reporting ``j`` (the module docstring's ``liar``)."""
    theta, kappa = model.inspection_prob, model.deposit_factor
    v = mech_v
    if model.inspect_losers:
        return v[:, None] * q[None, :] - (1 - theta) * (w + l_)[None, :] - theta * kappa * v[None, :]
    return (v[:, None] * q[None, :] - (1 - theta) * w[None, :] - theta * kappa * (v * q)[None, :]
            - l_[None, :])


def constraint_violations(mech: Mechanism) -> dict[str, float]:
    """Largest violation of each constraint, computed directly (not from the LP); all <= 0 when feasible."""
    v, q = mech.grid.values, mech.allocation
    w, l_ = mech.payment_win, mech.payment_lose
    cap = mech.model.cap
    u = v * q - w - l_
    dev = _liar_payoff(v, q, w, l_, mech.model)
    np.fill_diagonal(dev, -np.inf)
    return {
        "ic": float(np.max(dev.max(axis=1) - u)),
        "ir": float(np.max(-u)),
        "payment_above_bid": float(max(np.max(w - cap * v * q), np.max(l_ - cap * v * (1 - q)))),
        "negative_payment": float(max(np.max(-w), np.max(-l_))),
        "allocation_range": float(max(np.max(q - 1.0), np.max(-q))),
    }


def shape_diagnostics(grid: ValueGrid, q: np.ndarray) -> dict[str, float | bool]:
    """Is ``q`` increasing, and how large is its biggest step between neighbouring grid points?"""
    d = np.diff(q)
    return {
        "increasing": bool(d.min() >= -1e-5),  # LP tolerance
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
    """A symmetric two-bidder mechanism in reduced form (interim allocation and payments per type)."""

    grid: ValueGrid
    model: InspectionModel
    implementation: str
    interim_allocation: np.ndarray
    payment_win: np.ndarray
    payment_lose: np.ndarray
    win_probability: np.ndarray | None = None
    """For ``highest_bid``: probability ``a(b)`` that the highest bidder gets the item."""

    @property
    def payment(self) -> np.ndarray:
        return self.payment_win + self.payment_lose

    @property
    def revenue(self) -> float:
        return 2.0 * float(self.grid.probs @ self.payment)

    @property
    def net_revenue(self) -> float:
        return self.revenue - 2.0 * self.model.inspection_cost * self.model.inspected_per_bidder(
            self.interim_allocation, self.grid.probs)

    def as_single(self) -> Mechanism:
        """The reduced form seen by one bidder, for :func:`constraint_violations`."""
        return Mechanism(self.grid, self.model, self.interim_allocation, self.payment_win, self.payment_lose)


def _tie_split_share(f: np.ndarray) -> np.ndarray:
    """P(a bidder of type k beats or ties-and-wins against one opponent), ties split evenly."""
    below = np.r_[0.0, np.cumsum(f)[:-1]]
    return below + 0.5 * f


def optimal_two_bidders(grid: ValueGrid, model: InspectionModel | None = None,
                        implementation: str = "ex_post") -> TwoBidderMechanism:
    """Revenue-optimal symmetric mechanism for two i.i.d. bidders with inspection.

    ``implementation``:

    * ``"ex_post"`` -- any symmetric ex-post allocation ``x[k, l]`` (prob. a type-``k`` bidder wins against
      type ``l``; ``x[k,l] + x[l,k] <= 1``); implementable by construction, no Border constraints needed;
    * ``"highest_bid"`` -- the paper's implementation: the highest bid wins with probability ``a(b)``
      (ties split), nobody otherwise; the truthful winner is rewarded. (Letting ``a`` depend on both
      bids gives the same optimum on the grids we tried.)

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
        a_feas = sp.csr_matrix((np.ones(2 * len(k)), (np.r_[r, r], np.r_[k * n + l_, l_ * n + k])),
                               shape=(len(k), nx))
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
    a_ub, b_ub = _constraint_rows(v, model, q_map)
    pay_bounds = _payment_bounds(v, model)
    if a_feas is not None:
        a_ub = sp.vstack([a_ub, sp.hstack([a_feas, sp.csr_matrix((a_feas.shape[0], len(pay_bounds)))])]).tocsr()
        b_ub = np.r_[b_ub, np.ones(a_feas.shape[0])]
    x = _solve_lp(_objective(nx, f, model, q_map, 2), a_ub, b_ub, x_bounds + pay_bounds)
    q = np.clip(q_map @ x[:nx], 0.0, 1.0)
    return TwoBidderMechanism(grid, model, implementation, q, *_split_payments(x[nx:], v, q, model),
                              win_probability=x[:nx].copy() if implementation == "highest_bid" else None)


def two_bidder_violations(mech: TwoBidderMechanism) -> dict[str, float]:
    """Interim IC / IR / payment-bound violations of a two-bidder mechanism (all <= 0 when feasible)."""
    return constraint_violations(mech.as_single())


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
