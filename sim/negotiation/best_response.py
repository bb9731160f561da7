"""Fast, exact-to-tolerance best responses for agents whose private cost is a linear program.

A flosim agent's cost ``C(x)`` is the optimal value of an LP in which the plan ``x`` is a block of
variables (``agent.add_block(builder, x)``). Its CPP best response is the QP

    min_v  c·v + y·x + (rho/2)||x - z||²     over the agent's polytope,   x = v[idx]

solved every negotiation round with new ``(z, y, rho)``. :class:`LPBestResponse` builds that QP
**once** and keeps one OSQP solver alive for the whole negotiation: ``P = rho S'S`` (``S`` selects
the plan variables), ``q = c + S'(y - rho z)``, constraints ``[A_eq; A_ub; I]`` with the LP's bounds.
A query only updates ``q``, and OSQP warm-starts from the previous primal-dual answer, which late in
a negotiation is close. Sparse LDL factorisation exploits the structure for free: the retailer's LP
separates by product, so its KKT matrix is block diagonal.

Accuracy is OSQP's (``BestResponseOptions``: ``abs_tol``, ``rel_tol``, optional polishing), not
exact: an answer may violate the agent's constraints by about the tolerance. :meth:`LPBestResponse.confirm`
returns the most of a plan the agent can carry out *exactly*; the ``cpp`` policy has the vendor
confirm the plan before it becomes a PO.

Measured alternatives (kept out): HiGHS's QP solver (active set) stalled on warm re-solves; an
interior-point QP (Clarabel) is exact but cannot warm-start (about 1 s per pilot-size query); a
HiGHS LP with the quadratic modelled by tangent cuts refined on demand converged like bisection and
grew the LP by tens of thousands of rows per query.

``rho`` may also be an array shaped like the plan (one penalty per component, as FloPro-style
coordinators send); a change of ``rho`` updates ``P``'s values and refactorises once.
:class:`ProcessNegotiator` runs a negotiator in its own process (agents answer a round in parallel).

What a user may do: ``negotiator_for(agent)`` for a :class:`~sim.parties.retailer.RetailerAgent` or
:class:`~sim.parties.vendor.VendorAgent` (or anything with ``plan_shape`` or ``public.shape``, and ``add_block``;
a :class:`~sim.negotiation.parts.PartsNegotiator` of several :class:`LPBestResponse` when the agent's LP
falls apart, answer option ``parts``), ``process_negotiator(agent)`` for the same in worker processes, or
``LPBestResponse(lp, x_idx)`` for any :class:`~sim.model.lp.LinearProgram`. Conceptually this object lives
on the agent's side: it holds the agent's private LP, and hands the coordinator only answers.
"""

from __future__ import annotations

import atexit
import gc
import os
import pickle
import select
import struct
import subprocess
import sys
import threading
import time
from dataclasses import replace
from typing import Any

import osqp
import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from sim.model import switches
from sim.model.lp import LinearProgram, LPBuilder, solve_lp, unbounded_status
from sim.model.separable import SeparableLP, Split
from sim.negotiation.parts import PartsNegotiator
from sim.negotiation.protocol import can_certify
from sim.model.validation import number_from_text

_OSQP_RAISE = "raise_error" in osqp.OSQP.solve.__code__.co_varnames


def _osqp_status(name: str, legacy: int) -> int:
    """OSQP's numeric status code by name (OSQP 1.x renumbered them; ``legacy`` is the 0.6 code)."""
    members = getattr(getattr(osqp, "SolverStatus", None), "__members__", {})
    if name in members:  # OSQP >= 1.0
        return int(members[name])
    try:
        return int(osqp.constant(name))
    except (AttributeError, KeyError, TypeError, ValueError):
        return legacy


_SOLVED = _osqp_status("OSQP_SOLVED", 1)
#: statuses whose iterate is still the best estimate of the answer: solved, solved inaccurate,
#: iteration or time limit
_USABLE = frozenset({_SOLVED, _osqp_status("OSQP_SOLVED_INACCURATE", 2), _osqp_status("OSQP_MAX_ITER_REACHED", -2),
                     _osqp_status("OSQP_TIME_LIMIT_REACHED", -6)})



class BestResponseOptions(BaseModel):
    """Accuracy and effort of :class:`LPBestResponse`: OSQP's absolute and relative tolerances, its
    iteration caps per query (an answer at a cap is returned and counted in ``stats['inexact']``),
    solution polishing, and further OSQP settings as ``(name, value)`` pairs. Every field has a
    default; unknown fields, non-finite numbers and out-of-range values are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    abs_tol: float = Field(1e-3, gt=0, description="OSQP's absolute tolerance on solved answers (the adaptive tolerance's floor)")
    rel_tol: float = Field(1e-5, ge=0, description="OSQP's relative tolerance")
    adaptive: float = Field(0.03, ge=0, description=(
        "inexact early answers: OSQP's tolerances are loosened to adaptive * rms change of the query "
        "(between abs_tol and max_tol) while the negotiation still moves a lot; 0 turns this off"))
    max_tol: float = Field(0.1, gt=0, description="the loosest adaptive tolerance")
    early_max_iter: int = Field(100, ge=1, description=(
        "OSQP iterations per query while the negotiation moves far (the adaptive tolerance is at max_tol, "
        "and on the first query): such answers are discarded by the next round anyway, and a capped answer "
        "warm-starts the next query, so the work continues there (inexact ADMM)"))
    exact_below: float = Field(0.1, ge=0, description=(
        "answers are capped at early_max_iter while the adaptive tolerance is at least this (at most "
        "max_tol); below it they are solved"))
    max_iter: int = Field(20000, ge=1, description="OSQP iterations per query otherwise: late answers, which decide convergence, are solved")
    polish: StrictBool = Field(False, description="OSQP's solution polishing")
    substitute: StrictBool = Field(True, description="eliminate plan variables that an equality row of their own defines (see LPBestResponse)")
    slacks: StrictBool = Field(True, description=(
        "eliminate private variables that are the slack of one equality row (the retailer's lost sales): "
        "the row becomes a range, a smaller KKT system (see LPBestResponse)"))
    parts: int = Field(2, ge=1, description=(
        "an LP that falls apart (the retailer's, by product) is answered in this many parts, each its own "
        "OSQP problem over a group of the pieces, each in its own worker when agents run in processes "
        "(sim.negotiation.parts); answers depend on it, not on where the parts run; 1: one problem"))
    osqp: tuple[tuple[str, Any], ...] = Field((), description="further OSQP settings (adaptive_rho_interval, sigma, scaling ...), passed as given")

    @field_validator("abs_tol", "rel_tol", "adaptive", "max_tol", "early_max_iter", "exact_below", "max_iter", "parts", mode="before")
    @classmethod
    def _numbers(cls, value: Any) -> Any:
        return number_from_text(value)


def _defining_rows(A_eq: sp.csc_matrix, A_ub: sp.csc_matrix, b_eq: np.ndarray, lb: np.ndarray, ub: np.ndarray,
                   xr: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """If every plan variable ``x_j`` (columns ``xr``) appears in exactly one constraint, an equality
    row ``r_j`` of its own whose other variables are private, with bounds the row implies
    (``x_j >= 0`` from non-negative private variables entering with the right sign, no upper bound):
    those rows and their coefficients on ``x``. Otherwise None (no substitution)."""
    if xr.size == 0 or np.any(xr < 0):
        return None
    eq_counts = np.diff(A_eq.indptr)[xr]
    ub_counts = np.diff(A_ub.indptr)[xr] if A_ub.shape[0] else np.zeros(xr.size, dtype=np.int64)
    if np.any(eq_counts != 1) or np.any(ub_counts != 0) or np.any(np.isfinite(ub[xr])):
        return None
    rows = A_eq.indices[A_eq.indptr[xr]]
    coef = A_eq.data[A_eq.indptr[xr]]
    if np.unique(rows).size != rows.size or np.any(coef == 0):
        return None
    A_rows = A_eq.tocsr()[rows]
    is_plan = np.zeros(A_eq.shape[1], dtype=bool)
    is_plan[xr] = True
    A_rows = A_rows.tocoo()
    other = A_rows.col != xr[A_rows.row]
    if np.any(is_plan[A_rows.col[other]]):
        return None
    # x_j = (b_r - sum_i A_ri v_i) / a_j >= 0 must follow from v >= 0 (private lower bounds 0; their
    # upper bounds do not matter for this)
    if np.all(lb[xr] == -np.inf):
        return rows, coef
    if np.any(lb[xr] != 0) or np.any(b_eq[rows] / coef < 0):
        return None
    oc = A_rows.col[other]
    if np.any(lb[oc] != 0) or np.any(-A_rows.data[other] / coef[A_rows.row[other]] < 0):
        return None
    return rows, coef


def _slack_columns(A_eq: sp.csc_matrix, A_ub: sp.csc_matrix, protected: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Private columns that are the slack of an equality row: a column ``j`` (not ``protected``) with
    one nonzero ``a_rj``, in an equality row ``r`` that has other variables and no other such column.
    Returns ``(columns, rows, coefficients)``; empty arrays if there are none."""
    n = A_eq.shape[1]
    eq_counts = np.diff(A_eq.indptr)
    ub_counts = np.diff(A_ub.indptr) if A_ub.shape[0] else np.zeros(n, dtype=np.int64)
    free = np.ones(n, dtype=bool)
    free[protected] = False
    cols = np.flatnonzero(free & (eq_counts == 1) & (ub_counts == 0))
    rows = A_eq.indices[A_eq.indptr[cols]]
    coef = A_eq.data[A_eq.indptr[cols]]
    ok = (coef != 0) & (np.diff(A_eq.tocsr().indptr)[rows] >= 2)
    cols, rows, coef = cols[ok], rows[ok], coef[ok]
    _, first = np.unique(rows, return_index=True)  # one slack per row
    return cols[first], rows[first], coef[first]


def _eliminate_slacks(A_eq: sp.csc_matrix, b_eq: np.ndarray, c: np.ndarray, lb: np.ndarray, ub: np.ndarray,
                      cols: np.ndarray, rows: np.ndarray, coef: np.ndarray
                      ) -> tuple[sp.csc_matrix, np.ndarray, np.ndarray, np.ndarray]:
    """Remove slack columns ``cols`` (``a_rj v_j + sum_i a_ri v_i = b_r``, ``lb_j <= v_j <= ub_j``):
    row ``r`` becomes the range ``b_r - a_rj [ub_j, lb_j] `` on the other variables, and the slack's
    cost ``c_j v_j = (c_j / a_rj)(b_r - sum_i a_ri v_i)`` moves onto them (up to a constant, which no
    answer depends on). Returns the new ``A_eq`` (as range rows), its lower and upper row bounds and
    the costs, over the kept columns."""
    w = np.zeros(A_eq.shape[0])
    w[rows] = c[cols] / coef
    c = c - A_eq.T @ w
    lo, hi = b_eq.astype(float).copy(), b_eq.astype(float).copy()
    ends = np.stack([b_eq[rows] - coef * ub[cols], b_eq[rows] - coef * lb[cols]])  # inf-safe: coef != 0
    with np.errstate(invalid="ignore"):
        lo[rows], hi[rows] = ends.min(axis=0), ends.max(axis=0)
    keep = np.ones(A_eq.shape[1], dtype=bool)
    keep[cols] = False
    return A_eq[:, keep], lo, hi, c[keep]


class BestResponseError(RuntimeError):
    """The agent's LP could not be solved (infeasible or a solver failure): a modelling bug."""


class LPBestResponse:
    """A :class:`~sim.negotiation.protocol.Negotiator` for an agent whose cost is ``lp`` over plan variables ``x_idx``.

    The QP it keeps is smaller than the LP, with the same answers: private variables fixed by their
    bounds leave it; with ``substitute``, a plan defined by equality rows of its own in private
    variables (the vendor's) leaves it as ``x = M v + m0``; with ``slacks``, a private variable in one
    equality row and nowhere else (not a plan variable, not in ``M``) leaves it, its row becoming a
    range on the row's other variables and its cost moving onto them. ``confirm``, ``own_cost`` and
    ``dual_value`` use the LP as given."""

    def __init__(self, lp: LinearProgram, x_idx: np.ndarray, options: BestResponseOptions | None = None,
                 warm_checks: bool = False) -> None:
        self.options = options or BestResponseOptions()
        self._lp = lp
        #: own_cost re-solves the LP of the last dual_value from its basis (HiGHS warm start) instead of
        #: from scratch; the optimal value is the same to HiGHS's tolerance, so only the time differs
        self.warm_checks = bool(warm_checks)
        self._check: SeparableLP | None = None
        self._split: Split | None = None  # how the LP falls apart, for the checks' dual LPs
        self.shape = tuple(np.shape(x_idx))
        self._x = np.asarray(x_idx, dtype=np.int64).ravel()
        self._rho: np.ndarray | None = None
        self.stats: dict[str, Any] = {"queries": 0, "osqp_iterations": 0, "inexact": 0, "polished": 0, "last_exact": None}
        # presolve: private variables fixed by their bounds (for example outbound arcs that do not
        # exist) leave the QP; their values move to the right-hand sides
        fixed_mask = lp.lb == lp.ub
        fixed_mask[self._x] = False
        cols = np.flatnonzero(~fixed_mask)
        fixed = np.flatnonzero(fixed_mask)
        pos = np.full(lp.n, -1, dtype=np.int64)
        pos[cols] = np.arange(cols.size)
        self._xr = pos[self._x]  # plan variables in the reduced QP
        A_eq, A_ub = lp.A_eq.tocsc(), lp.A_ub.tocsc()
        b_eq = lp.b_eq - A_eq[:, fixed] @ lp.lb[fixed]
        b_ub = lp.b_ub - A_ub[:, fixed] @ lp.lb[fixed]
        A_eq, A_ub = A_eq[:, cols], A_ub[:, cols]
        keep_ub = np.diff(A_ub.tocsr().indptr) > 0  # rows left without variables are slack (b_ub >= 0)
        A_ub, b_ub = A_ub.tocsr()[keep_ub], b_ub[keep_ub]
        c, lb, ub = lp.c[cols], lp.lb[cols], lp.ub[cols]
        # substitution: when every plan variable is defined by an equality row of its own in private
        # variables only (the vendor's x = sum of its lanes' shipments), x = M v + m0 leaves the QP
        # with those rows; P becomes M' diag(rho) M. A smaller KKT system: OSQP's work per iteration
        # on the vendor's side of the large benchmark drops by about a quarter (docs/cpp.md).
        self._M: sp.csc_matrix | None = None
        sub = _defining_rows(A_eq.tocsc(), A_ub.tocsc(), b_eq, lb, ub, self._xr) if self.options.substitute else None
        keep = np.ones(cols.size, dtype=bool)
        keep[self._xr] = False
        if sub is not None and keep.any():  # (a plan defined by fixed variables alone keeps the plain QP)
            rows, coef = sub
            A_def = A_eq.tocsr()[rows]
            self._m0 = b_eq[rows] / coef
            self._M = -(sp.diags(1.0 / coef) @ A_def).tocsc()[:, keep]
            self._c_x = c[self._xr]
            other = np.ones(A_eq.shape[0], dtype=bool)
            other[rows] = False
            A_eq, b_eq = A_eq.tocsr()[other][:, keep], b_eq[other]
            A_ub = A_ub.tocsc()[:, keep].tocsr()
            c, lb, ub = c[keep], lb[keep], ub[keep]
        # slacks: a private variable in one equality row and nowhere else (the retailer's lost sales,
        # u = demand - sum of outbound) leaves the QP and its row becomes a range; a fifth fewer
        # rows and columns in the retailer's KKT system, about 16% less work per OSQP iteration
        eq_lo, eq_hi = b_eq, b_eq
        A_eq = A_eq.tocsc()
        protected = self._xr if self._M is None else np.flatnonzero(np.diff(self._M.indptr) > 0)
        slack = _slack_columns(A_eq, A_ub.tocsc(), protected) if self.options.slacks else None
        if slack is not None and slack[0].size:
            kept = np.ones(c.size, dtype=bool)
            kept[slack[0]] = False
            A_eq, eq_lo, eq_hi, c = _eliminate_slacks(A_eq, b_eq, c, lb, ub, *slack)
            A_ub, lb, ub = A_ub.tocsc()[:, kept].tocsr(), lb[kept], ub[kept]
            if self._M is None:
                self._xr = (np.cumsum(kept) - 1)[self._xr]
            else:
                self._M = self._M[:, kept]
        if self._M is not None:
            self._pairs(self._M)
        self._c = c
        self._n = c.size
        self._A = sp.vstack([A_eq.tocsr(), A_ub, sp.eye(self._n, format="csr")]).tocsc()
        self._l = np.concatenate([eq_lo, np.full(A_ub.shape[0], -np.inf), lb])
        self._u = np.concatenate([eq_hi, b_ub, ub])
        self._solver: osqp.OSQP | None = None
        self._last_query: tuple[np.ndarray, np.ndarray] | None = None
        self._tol = self.options.max_tol if self.options.adaptive > 0 else self.options.abs_tol
        self._cap = self._iteration_cap(self._tol)

    def _every(self, cap: int) -> int:
        """OSQP's convergence checks: every 10 iterations for a solved answer, twice for one capped
        early (``cap // 2``: a capped answer rarely converges, and a check costs about one and a half
        iterations of the retailer's QP; on the ``pilot`` benchmark checking every 10 took a seventh
        of the capped answers' time). A ``check_termination`` among the user's ``osqp`` settings is
        kept for every answer."""
        own = dict(self.options.osqp).get("check_termination")
        if own is not None:
            return own
        return max(1, cap // 2) if cap < self.options.max_iter else 10

    def _iteration_cap(self, tol: float) -> int:
        opt = self.options
        early = opt.adaptive > 0 and tol >= min(opt.exact_below, opt.max_tol)
        return min(opt.early_max_iter, opt.max_iter) if early else opt.max_iter

    def best_response(self, z: np.ndarray, prices: np.ndarray, rho: float) -> np.ndarray:
        """``argmin C(x) + prices·x + (rho/2)||x - z||²`` (see the module docstring for the accuracy)."""
        rho_x = np.broadcast_to(np.asarray(rho, dtype=float), self.shape).ravel() if np.ndim(rho) else None
        if rho_x is not None:
            if not np.all(rho_x > 0):
                raise ValueError("rho must be positive")
        elif not rho > 0:
            raise ValueError(f"rho must be positive, got {rho!r}")
        z = np.asarray(z, dtype=float).ravel()
        y = np.asarray(prices, dtype=float).ravel()
        opt = self.options
        r_vec = rho_x if rho_x is not None else np.full(self._x.size, float(rho))
        q = self._c.copy()
        if self._M is None:
            q[self._xr] += y - r_vec * z
        else:  # x = M v + m0: c_x·x + y·x + (rho/2)||x - z||² in v
            q += self._M.T @ (self._c_x + y + r_vec * (self._m0 - z))
        if self._solver is None:
            P = self._quadratic(r_vec)
            self._solver = osqp.OSQP()
            # flosim's defaults, then the user's own OSQP settings, which may override them
            settings = {"verbose": False, "eps_abs": opt.abs_tol, "eps_rel": opt.rel_tol, "polishing": opt.polish,
                        "max_iter": self._cap, "scaling": 10, "check_termination": self._every(self._cap), **dict(opt.osqp)}
            self._solver.setup(P, q, self._A, self._l, self._u, **settings)
            self._rho = r_vec
        else:
            if not np.array_equal(r_vec, self._rho):
                if self._M is None:
                    order = np.argsort(self._xr)  # P's nonzeros are stored in column order
                    self._solver.update(Px=r_vec[order])
                else:
                    self._solver.update(Px=self._quadratic(r_vec).data)
                self._rho = r_vec
            self._solver.update(q=q)
            if opt.adaptive > 0 and self._last_query is not None:
                z0, y0 = self._last_query
                move = float(np.sqrt(np.mean((z - z0) ** 2)) + np.sqrt(np.mean(((y - y0) / r_vec) ** 2)))
                tol = float(np.clip(opt.adaptive * move, opt.abs_tol, opt.max_tol))
                if tol != self._tol:
                    cap = self._iteration_cap(tol)
                    self._solver.update_settings(eps_abs=tol, eps_rel=opt.rel_tol * tol / opt.abs_tol, max_iter=cap,
                                                 check_termination=self._every(cap))
                    self._tol, self._cap = tol, cap
        self._last_query = (z, y)
        res = self._solver.solve(raise_error=False) if _OSQP_RAISE else self._solver.solve()
        self.stats["queries"] += 1
        self.stats["osqp_iterations"] += int(res.info.iter)
        if res.info.status_polish == 1:
            self.stats["polished"] += 1
        if res.info.status_val not in _USABLE or res.x is None or not np.all(np.isfinite(res.x)):
            raise BestResponseError(f"OSQP: {res.info.status}")
        self.stats["last_exact"] = res.info.status_val == _SOLVED
        if res.info.status_val != _SOLVED:
            self.stats["inexact"] += 1
        x = res.x[self._xr] if self._M is None else self._M @ res.x + self._m0
        x = np.clip(x, self._lp.lb[self._x], self._lp.ub[self._x])
        return x.reshape(self.shape)

    def _pairs(self, M: sp.csc_matrix) -> None:
        """Precompute ``P = triu(M' diag(rho) M)`` as a fixed CSC pattern: every pair ``(i <= j)`` of
        columns sharing a row ``r`` of ``M`` adds ``rho_r M_ri M_rj`` to ``P_ij``."""
        n = M.shape[1]
        R = M.tocsr()
        R.sort_indices()
        lengths = np.diff(R.indptr)
        rows_, i_, j_, w_ = [], [], [], []
        for L in np.unique(lengths[lengths > 0]):
            rs = np.flatnonzero(lengths == L)
            idx = R.indptr[rs][:, None] + np.arange(L)[None, :]  # [rows, L] positions in R.data
            a, b = np.triu_indices(L)
            rows_.append(np.repeat(rs, a.size))
            i_.append(R.indices[idx[:, a]].ravel())
            j_.append(R.indices[idx[:, b]].ravel())
            w_.append((R.data[idx[:, a]] * R.data[idx[:, b]]).ravel())
        pr, pi, pj, pw = (np.concatenate(v) if v else np.zeros(0, dtype=t) for v, t in ((rows_, np.int64), (i_, np.int64), (j_, np.int64), (w_, float)))
        lo, hi = np.minimum(pi, pj).astype(np.int64), np.maximum(pi, pj).astype(np.int64)
        keys, slot = np.unique(hi * n + lo, return_inverse=True)  # column-major order: CSC, sorted rows
        self._pair_row, self._pair_w, self._pair_slot = pr, pw, slot.ravel()
        self._P_indices = (keys % n).astype(np.int64)
        self._P_indptr = np.concatenate([[0], np.cumsum(np.bincount(keys // n, minlength=n))]).astype(np.int64)

    def _quadratic(self, r_vec: np.ndarray) -> sp.csc_matrix:
        """OSQP's ``P`` (upper triangle, CSC) for penalties ``r_vec`` on the plan components. With
        substitution the pattern is that of ``M'M`` whatever the (positive) penalties, so a change of
        ``rho`` is a values-only update."""
        if self._M is None:
            pd = np.zeros(self._n)
            pd[self._xr] = r_vec
            P = sp.diags(pd).tocsc()
            P.eliminate_zeros()
            return P
        data = np.bincount(self._pair_slot, weights=r_vec[self._pair_row] * self._pair_w, minlength=self._P_indices.size)
        return sp.csc_matrix((data, self._P_indices, self._P_indptr), shape=(self._n, self._n))

    def confirm(self, x: np.ndarray) -> np.ndarray:
        """The largest plan ``x' <= x`` (componentwise, most units in total) the agent can carry out
        exactly. Iterative solvers answer within a tolerance; an agent confirms a plan before it is
        executed. Not part of the protocol: the coordinator never calls it. A plan entry keeps its
        lower bound (a commitment band's) as far as ``x`` reaches it."""
        cap = np.maximum(np.asarray(x, dtype=float).ravel(), 0.0)
        c = np.zeros(self._lp.n)
        c[self._x] = -1.0
        lp = replace(self._lp, c=c, terms=(), const_terms=()).with_bounds(self._x, np.minimum(self._lp.lb[self._x], cap), cap)
        sol = solve_lp(lp, raise_on_fail=False)
        if not sol.ok:
            raise BestResponseError(f"cannot confirm any plan below the answer: {sol.status}")
        return np.minimum(sol.x[self._x], cap).reshape(self.shape)

    def own_cost(self, x: np.ndarray) -> float:
        """The agent's private cost ``C(x)`` of plan ``x`` (``inf`` if it cannot carry it out).
        Diagnostics only: the coordinator never calls this."""
        flat = np.asarray(x, dtype=float).ravel()
        fixed = self._lp.with_bounds(self._x, flat, flat)
        if self._check is not None:  # from the last dual LP's basis; anything but optimal is decided from scratch
            sol = self._check.solve(fixed, raise_on_fail=False)
            if sol.ok:
                return sol.objective
        sol = solve_lp(fixed, raise_on_fail=False)
        return sol.objective if sol.ok else float("inf")

    def dual_value(self, prices: np.ndarray) -> float:
        """``min_x C(x) + prices·x``: the agent's term of the Lagrangian lower bound on first best
        (:mod:`sim.negotiation.certificate`); ``-inf`` if the prices make it unbounded below. One LP over the
        agent's own model; not part of the protocol."""
        y = np.asarray(prices, dtype=float).ravel()
        c = self._lp.c.copy()
        np.add.at(c, self._x, y)
        # an LP that falls apart (the retailer's, by product) is solved per group of pieces
        # (sim.model.separable); kept for own_cost, which then starts from its bases, where the agent
        # asks for that (warm_checks). An LP in one piece is solved as before: solve_lp's solve (its
        # interior-point path from a million variables on), or a kept model's first solve, the same
        if self._split is None:  # (the LP's groups do not change: made at the first check)
            self._split = Split.of(self._lp)
        model = SeparableLP(self._lp, warm=True, split=self._split)
        if model.groups > 1 or self.warm_checks:
            sol = model.solve(replace(self._lp, c=c), raise_on_fail=False)
            self._check = model if sol.ok and self.warm_checks else None
        else:
            sol = solve_lp(replace(self._lp, c=c), raise_on_fail=False)
        if sol.ok:
            return sol.objective
        if unbounded_status(sol.status):
            return float("-inf")
        raise BestResponseError(f"dual value: {sol.status}")


def negotiator_for(agent: Any, options: BestResponseOptions | None = None,
                   first_week: np.ndarray | None = None) -> Any:
    """A best-response negotiator for a flosim agent, built from its ``add_block`` cost model.

    This runs on the agent's side: the returned object holds the agent's private LP and answers
    CPP queries; the coordinator receives only the object and talks to it only through
    ``best_response``. Build a new one whenever the agent's situation changes (each planning week).
    ``first_week``: the plan's first week (the week axis is the third from last, ``(..., H, F, K)``)
    fixed to these units: a negotiation of the later weeks with this week's PO given. A NaN entry
    leaves that component free (part of the week given: one vendor's block of the PO).
    An :class:`LPBestResponse`, or a :class:`~sim.negotiation.parts.PartsNegotiator` of them when the
    LP falls apart (options ``parts``).
    """
    lp, x, split, warm = _agent_lp(agent, options, first_week)
    if not split.parts:
        return LPBestResponse(lp, x, options, warm_checks=warm)
    made = [_part(lp, x, options, warm, split, i) for i in range(len(split.parts))]
    return PartsNegotiator([neg for neg, _ in made], [idx for _, idx in made], x.shape)


def negotiator_part(agent: Any, options: BestResponseOptions | None, first_week: np.ndarray | None,
                    part: int) -> tuple[Any, np.ndarray]:
    """Part ``part`` of :func:`negotiator_for`'s negotiator and the flat plan components it answers
    for: the whole negotiator (all components) for part 0 of an LP that does not fall apart, ``None``
    (no components) for a part beyond the LP's groups. What one worker of
    :func:`process_negotiator` holds."""
    lp, x, split, warm = _agent_lp(agent, options, first_week)
    if not split.parts:
        if part == 0:
            return LPBestResponse(lp, x, options, warm_checks=warm), np.arange(x.size)
        return None, np.zeros(0, dtype=np.int64)
    if part >= len(split.parts):
        return None, np.zeros(0, dtype=np.int64)
    return _part(lp, x, options, warm, split, part)


def _agent_lp(agent: Any, options: BestResponseOptions | None, first_week: np.ndarray | None
              ) -> tuple[LinearProgram, np.ndarray, Split, bool]:
    """The agent's LP, its plan variables, how it falls into ``parts`` (none: answered whole) and
    whether its checks start from the dual LP's bases."""
    b = LPBuilder()
    x = b.add_var(_plan_shape(agent))
    agent.add_block(b, x)
    lp = b.build()
    if first_week is not None:
        lp = fix_first_week(lp, x, first_week)
    parts = (options or BestResponseOptions()).parts
    split = Split.of(lp, parts) if parts > 1 else Split(())
    return lp, x, split, bool(getattr(agent, "warm_checks", False))


def _part(lp: LinearProgram, x: np.ndarray, options: BestResponseOptions | None, warm: bool, split: Split,
          i: int) -> tuple[LPBestResponse, np.ndarray]:
    """The negotiator of group ``i`` of ``split`` (its LP, the whole LP's constant costs on group 0)
    and the flat plan components it answers for."""
    cols, _, _, part_lp = split.parts[i]
    if i == 0:
        part_lp = replace(part_lp, const_terms=lp.const_terms)
    flat = x.ravel()
    pos = np.full(lp.n, -1, dtype=np.int64)
    pos[cols] = np.arange(cols.size)
    mine = np.flatnonzero(pos[flat] >= 0)
    return LPBestResponse(part_lp, pos[flat[mine]], options, warm_checks=warm), mine


def workers_for(agent: Any, options: BestResponseOptions | None = None) -> int:
    """How many worker processes :func:`process_negotiator` starts for ``agent`` (to start them
    ahead, :func:`prestart_workers`)."""
    k = (options or BestResponseOptions()).parts
    return k if k > 1 and getattr(agent, "separable", False) else 1


def process_negotiator(agent: Any, options: BestResponseOptions | None = None,
                       first_week: np.ndarray | None = None) -> Any:
    """:func:`negotiator_for`'s negotiator with each part in its own worker process
    (:class:`ProcessNegotiator`), the parts asked at once: the same answers, computed in parallel.
    For an agent that says its cost may fall apart (``separable``, the retailer), starts ``parts``
    workers (options); those whose part the LP does not have are stopped once they say so, and an
    LP that does not fall apart is one :class:`ProcessNegotiator`. Any other agent is one
    :class:`ProcessNegotiator` (whose worker holds :func:`negotiator_for`'s negotiator, parts and all)."""
    k = workers_for(agent, options)
    if k == 1:
        return ProcessNegotiator(agent, options, first_week)
    workers: list[ProcessNegotiator] = []
    try:
        for i in range(k):
            workers.append(ProcessNegotiator(agent, options, first_week, part=i))
        index = [w.plan_index for w in workers]
    except BaseException:  # a worker that could not start or set up its part: stop them all
        for w in workers:
            w.close()
        raise
    used = [i for i in range(k) if index[i].size]
    for i in set(range(k)) - set(used):
        workers[i].close()
    if len(used) == 1:
        return workers[used[0]]
    return PartsNegotiator([workers[i] for i in used], [index[i] for i in used], _plan_shape(agent), parallel=True)


def fix_first_week(lp: Any, x: np.ndarray, first_week: np.ndarray) -> Any:
    """``lp`` with the first week of the plan variables ``x`` ``(..., H, F, K)`` fixed to ``first_week``;
    NaN entries keep the bounds they have (``[0, inf)``, or the week's commitment band when the
    agent's state holds one: :mod:`sim.model.commitment`). Later weeks keep theirs too: a fixed first
    week is one more bound on the plan, on top of any commitments."""
    first = x[..., 0, :, :]
    given = np.broadcast_to(np.asarray(first_week, dtype=float), first.shape)
    free = np.isnan(given)
    return lp.with_bounds(first, np.where(free, lp.lb[first], given), np.where(free, lp.ub[first], given))


def _plan_shape(agent: Any) -> tuple[int, ...]:
    """The shape of the plan an agent answers for: its ``plan_shape`` (a vendor's own block), else
    its public data's plan shape."""
    shape = getattr(agent, "plan_shape", None)
    return tuple(shape) if shape is not None else tuple(agent.public.shape)


def _send(stream: Any, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack("<Q", len(data)))
    stream.write(data)
    stream.flush()


def _recv(stream: Any) -> Any:
    head = stream.read(8)
    if len(head) < 8:
        raise EOFError("agent process closed its pipe")
    (size,) = struct.unpack("<Q", head)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("agent process closed its pipe")
    return pickle.loads(data)


def _negotiator_in_worker(agent: Any, options: BestResponseOptions | None, first_week: np.ndarray | None = None,
                          part: int | None = None) -> Any:
    """What a worker answers with: a negotiator as given (anything with ``best_response``, such as
    :class:`sim.negotiation.flopro_adapter.FloProNegotiator`), one a factory builds there (a picklable callable
    without arguments, for agents that cannot be pickled themselves), or flosim's LP negotiator of an
    agent with ``add_block`` (with ``part``: that part of it and its plan components,
    :func:`negotiator_part`)."""
    if part is not None:
        if not callable(getattr(agent, "add_block", None)):
            raise TypeError(f"{type(agent).__name__} has no add_block: only flosim's LP negotiators come in parts")
        return negotiator_part(agent, options, first_week, part)
    if callable(getattr(agent, "best_response", None)):
        return agent
    if callable(getattr(agent, "add_block", None)):
        return negotiator_for(agent, options, first_week)
    if callable(agent):
        made = agent()
        if not callable(getattr(made, "best_response", None)):
            raise TypeError(f"the factory returned {type(made).__name__}, which has no best_response")
        return made
    raise TypeError(f"{type(agent).__name__} is neither a negotiator, an agent with add_block, nor a factory")


def _worker_main(preload: tuple[str, ...] | None = None) -> None:
    """Entry point of a :class:`ProcessNegotiator` worker: read an agent, build its negotiator, answer
    calls until told the negotiation is over, then wait for the next agent (a worker serves one
    negotiation after another, :data:`MAX_IDLE_WORKERS`), until its input closes. The protocol runs on
    the original stdin/stdout; anything a library prints goes to stderr. ``preload`` (a worker started
    ahead, :func:`prestart_workers`): import these modules, then say so (one message) before waiting
    for an agent."""
    inp = os.fdopen(os.dup(0), "rb")
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    if preload is not None:
        import importlib

        try:
            for name in preload:
                importlib.import_module(name)
            _send(out, (True, time.process_time()))  # ready; the CPU its start-up took (benchmarks leave it out)
        except Exception as exc:
            _send(out, (False, f"{type(exc).__name__}: {exc}"))
            return
    while _serve_one(inp, out):
        pass
    # leave at once (the interpreter's tear-down of numpy, scipy and OSQP takes a tenth of a second
    # that the parent's close() would wait for); nothing is pending
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _serve_one(inp: Any, out: Any) -> bool:
    """One negotiation in a worker: the agent, its negotiator, the calls. True when it ended as asked
    (the worker may serve another), False when the input closed or the set-up failed."""
    try:
        agent, options, first_week, part, values = _recv(inp)
    except EOFError:  # stopped before it was given an agent (an idle worker)
        return False
    except Exception as exc:  # an agent that cannot be unpickled here
        _send(out, (False, f"{type(exc).__name__}: {exc}"))
        return False
    try:
        switches.apply(values)  # the parent's module switches, which change answers (sim.model.switches)
        negotiator = _negotiator_in_worker(agent, options, first_week, part)
        index = None
        if part is not None:
            negotiator, index = negotiator
        shape = getattr(negotiator, "shape", None)
        _send(out, (True, {"shape": None if shape is None else tuple(int(v) for v in shape),
                           "can_certify": negotiator is not None and can_certify(negotiator), "index": index}))
    except Exception as exc:  # report set-up failures to the parent
        _send(out, (False, f"{type(exc).__name__}: {exc}"))
        return False
    del agent
    while True:
        try:
            msg = _recv(inp)
        except EOFError:
            return False
        if msg is None:  # the negotiation is over: drop the agent's model, say so with the CPU used so far
            del negotiator
            gc.collect()
            _send(out, (True, time.process_time()))
            return True
        method, args = msg
        try:
            _send(out, (True, getattr(negotiator, method)(*args)))
        except Exception as exc:
            _send(out, (False, f"{type(exc).__name__}: {exc}"))


_WORKER_CODE = "from sim.negotiation.best_response import _worker_main; _worker_main({})"
#: workers waiting for an agent: started ahead by :func:`prestart_workers`, or given back by a
#: :class:`ProcessNegotiator` whose negotiation is over
_IDLE: list[subprocess.Popen] = []
_IDLE_LOCK = threading.Lock()
#: how many workers a negotiation's end gives back to wait for the next one (the rest stop): enough
#: for a one-vendor negotiation's three (the retailer's two parts and the vendor), few enough that a
#: sweep's processes do not hold many idle interpreters (about 150 MB each)
MAX_IDLE_WORKERS = 4
#: CPU seconds agent workers have reported for the negotiations that ended so far (:func:`workers_cpu`)
_WORKER_CPU = [0.0]


def _spawn_worker(preload: tuple[str, ...] | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _WORKER_CODE.format("" if preload is None else repr(tuple(preload)))],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)


def _take_worker() -> subprocess.Popen | None:
    """An idle worker started ahead (the oldest still alive), or None."""
    with _IDLE_LOCK:
        while _IDLE:
            proc = _IDLE.pop(0)
            if proc.poll() is None:
                return proc
    return None


def prestart_workers(n: int, preload: tuple[str, ...] = ()) -> int:
    """Start ``n`` agent worker processes ahead of the negotiation, wait until each has imported
    flosim's negotiation code, the ``preload`` modules (for example the agents' modules, which
    unpickling them would import) and those of the module switches (set from the agent's payload),
    and keep them idle: the next ``n`` :class:`ProcessNegotiator` objects take them instead of
    starting a ``python`` each. Returns how many are idle now.

    This is what an agent service that is already running saves: the interpreter's start and its
    imports, nothing of the negotiation (the agent's data still travels, and its model is still built,
    when a :class:`ProcessNegotiator` takes a worker). ``flosim bench`` starts the agents' workers this
    way before its timers, as the central solve's timer also excludes its solver's import. Idle workers
    left over are stopped by :func:`stop_idle_workers` (and at exit)."""
    # the switches' modules too: the first agent brings their values (sim.model.switches)
    modules = tuple(dict.fromkeys([*preload, *(module for module, _ in switches.SWITCHES)]))
    procs = [_spawn_worker(modules) for _ in range(max(0, int(n)))]
    ready = []
    for proc in procs:
        try:
            ok, info = _recv(proc.stdout)
        except (EOFError, OSError):
            ok, info = False, "closed its pipe"
        if ok:
            proc.startup_cpu_s = float(info) if isinstance(info, (int, float)) else 0.0  # type: ignore[attr-defined]
            proc.cpu_s = proc.startup_cpu_s  # type: ignore[attr-defined]  # (workers_cpu leaves it out)
            ready.append(proc)
        else:
            proc.kill()
            proc.wait()
            raise BestResponseError(f"agent worker failed to start: {info}")
    with _IDLE_LOCK:
        _IDLE.extend(ready)
        return len(_IDLE)


def workers_cpu() -> float:
    """CPU seconds agent workers spent on the negotiations that ended so far (each worker reports
    its CPU when a negotiation ends; a worker started ahead leaves out what starting took, as a
    benchmark's wall clock leaves out ``startup_s``). What a benchmark adds to its own CPU time."""
    with _IDLE_LOCK:
        return _WORKER_CPU[0]


def _give_back(proc: subprocess.Popen, cpu_s: float) -> None:
    """A worker whose negotiation ended (its CPU so far ``cpu_s``): counted, then idle, or stopped
    when :data:`MAX_IDLE_WORKERS` already wait."""
    with _IDLE_LOCK:
        _WORKER_CPU[0] += max(cpu_s - getattr(proc, "cpu_s", 0.0), 0.0)
        proc.cpu_s = cpu_s  # type: ignore[attr-defined]
        if len(_IDLE) < MAX_IDLE_WORKERS:
            _IDLE.append(proc)
            return
    _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    """Close a worker's input (it returns at end of file) and wait for it; kill it if it hangs."""
    for stream in (proc.stdin, proc.stdout):
        try:
            stream.close()
        except (OSError, ValueError):
            pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def stop_idle_workers() -> None:
    """Stop every idle worker (started ahead and not taken, or given back after a negotiation)."""
    with _IDLE_LOCK:
        idle = list(_IDLE)
        _IDLE.clear()
    for proc in idle:
        _stop(proc)


def _forget_idle_workers() -> None:
    """In a child forked from this process (multiprocessing's 'fork' start method): the idle
    workers it inherited answer its parent. The child drops them without a word to them, closing its
    copies of their pipes (else they would not read end of file when the parent lets them go), and
    starts with a lock of its own (the parent's may have been held at the fork)."""
    global _IDLE_LOCK
    _IDLE_LOCK = threading.Lock()
    inherited = list(_IDLE)
    _IDLE.clear()
    for proc in inherited:
        for stream in (proc.stdin, proc.stdout):
            try:
                stream.close()  # (an idle worker's buffers are empty: nothing reaches it)
            except (OSError, ValueError):
                pass
        proc.returncode = 0  # not this process's child: never waited for here


atexit.register(stop_idle_workers)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_idle_workers)


class ProcessNegotiator:
    """An agent's negotiator running in its own process: the agent's data moves there and stays.

    This is how separate parties run in practice (each on its own machine), and it lets the agents
    answer a round in parallel: the coordinator's query threads wait on pipes, not on the GIL. The
    worker is a fresh ``python`` started with :mod:`subprocess` (no fork of a multi-threaded parent,
    no re-import of the user's main script); the agent is sent to it pickled. ``agent`` may be a flosim
    agent (its LP negotiator is built there), any negotiator (for example a
    :class:`sim.negotiation.flopro_adapter.FloProNegotiator`), or a picklable factory without arguments that builds
    one there (for agents that cannot be pickled). The module switches set in this process
    (:mod:`sim.model.switches`) travel with the agent, so the worker answers as this process would.
    The object offers ``best_response`` (the protocol) plus ``confirm``, ``own_cost`` and
    ``dual_value`` (agent side) and ``can_certify`` (whether the negotiator in the worker offers the
    last two). Use it as a context manager or call :meth:`close`:
    the worker then drops the agent's model and waits, idle, for the next negotiation's agent (at most
    :data:`MAX_IDLE_WORKERS` wait; a sweep's or a run's later weeks do not start a ``python`` each).
    """

    def __init__(self, agent: Any, options: BestResponseOptions | None = None, first_week: np.ndarray | None = None,
                 part: int | None = None) -> None:
        self._proc = _take_worker() or _spawn_worker()
        self._closed = False
        self._in_flight = False
        self._lock = threading.Lock()
        # the agent is sent from a thread: a pickle larger than the pipe's buffer blocks until the
        # worker reads it (after its imports), and the next agent's worker should start meanwhile
        self._sent: BaseException | None = None
        self._sender = threading.Thread(target=self._send_agent, args=((agent, options, first_week, part, switches.current()),),
                                        daemon=True)
        self._sender.start()
        self._ready = False
        self._info: dict[str, Any] = {}
        known = getattr(agent, "plan_shape", None) if part is None else None  # a part's shape: the worker says
        if known is None and part is None:
            public = getattr(agent, "public", None)
            known = public.shape if public is not None else getattr(agent, "shape", None)
        self._shape = tuple(int(v) for v in known) if known is not None else None

    @property
    def shape(self) -> tuple[int, ...]:
        """The plan's shape (from the agent, or as the worker's negotiator reports it)."""
        if self._shape is None:
            with self._lock:
                self._start()
            self._shape = tuple(self._info.get("shape") or ())
        return self._shape

    @property
    def plan_index(self) -> np.ndarray:
        """The flat plan components this worker's part answers for (``part`` given; waits for the
        worker's set-up): empty if the agent's LP has no such part."""
        with self._lock:
            try:
                self._start()
            except (EOFError, BrokenPipeError, OSError) as exc:
                raise BestResponseError(f"agent process died: {exc}") from exc
        index = self._info.get("index")
        return np.zeros(0, dtype=np.int64) if index is None else np.asarray(index, dtype=np.int64)

    @property
    def can_certify(self) -> bool:
        """Whether the negotiator in the worker can certify (:func:`sim.negotiation.certificate.can_certify`)."""
        with self._lock:
            try:
                self._start()
            except (EOFError, BrokenPipeError, OSError, BestResponseError):
                return False
        return bool(self._info.get("can_certify"))

    def _send_agent(self, payload: Any) -> None:
        try:
            _send(self._proc.stdin, payload)
        except BaseException as exc:  # reported by _start (the worker died before reading it)
            self._sent = exc

    def _start(self) -> None:
        """Wait for the worker's set-up report (under the lock)."""
        if not self._ready:
            self._sender.join()
            if self._sent is not None:
                raise BrokenPipeError(f"could not send the agent: {self._sent}")
            ok, info = _recv(self._proc.stdout)
            if not ok:
                raise BestResponseError(f"agent process failed to start: {info}")
            self._info = dict(info or {})
            self._ready = True

    def _call(self, method: str, *args: Any) -> Any:
        with self._lock:
            if self._closed:
                raise BestResponseError(f"{method}: this negotiator is closed")
            try:
                self._start()
                self._in_flight = True  # (until the answer is read: a worker with an unread answer is not given back)
                _send(self._proc.stdin, (method, args))
                ok, value = _recv(self._proc.stdout)
                self._in_flight = False
            except (EOFError, BrokenPipeError, OSError, ValueError) as exc:
                if self._closed:  # close() from another thread stopped the worker (its pipes closed)
                    raise BestResponseError(f"{method}: this negotiator was closed during the call") from exc
                if isinstance(exc, ValueError):
                    raise
                raise BestResponseError(f"agent process died: {exc}") from exc
        if not ok:
            raise BestResponseError(value)
        return value

    def best_response(self, z: np.ndarray, prices: np.ndarray, rho: Any) -> np.ndarray:
        return self._call("best_response", np.asarray(z, dtype=float), np.asarray(prices, dtype=float),
                          rho if np.ndim(rho) else float(rho))

    def confirm(self, x: np.ndarray) -> np.ndarray:
        return self._call("confirm", np.asarray(x, dtype=float))

    def own_cost(self, x: np.ndarray) -> float:
        return self._call("own_cost", np.asarray(x, dtype=float))

    def dual_value(self, prices: np.ndarray) -> float:
        return self._call("dual_value", np.asarray(prices, dtype=float))

    @property
    def alive(self) -> bool:
        """Whether this negotiator's worker still serves it (False once closed)."""
        return not self._closed and self._proc.poll() is None

    def close(self) -> None:
        """End this negotiator (idempotent): its worker drops the agent's model and waits for the next
        negotiation (:data:`MAX_IDLE_WORKERS`), or stops. A worker that failed, whose last call was not
        answered, or that a call from another thread holds at this moment (that call then fails with
        :class:`BestResponseError`), stops."""
        self._end(give_back=True)

    def _end(self, give_back: bool) -> None:
        if getattr(self, "_closed", True):
            return
        self._closed = True
        # a call in progress in another thread holds the lock: its worker is not given back (the
        # call's question or answer would reach the next user); waiting for it could wait for ever
        lock = getattr(self, "_lock", None)
        held = lock is not None and lock.acquire(blocking=False)
        try:
            sender = getattr(self, "_sender", None)
            if sender is not None and sender.is_alive():
                sender.join(timeout=10)
            proc = self._proc
            if give_back and held and getattr(self, "_ready", False) and not self._in_flight and proc.poll() is None:
                try:
                    _send(proc.stdin, None)
                    if select.select([proc.stdout], [], [], 10.0)[0]:
                        ok, cpu_s = _recv(proc.stdout)
                        if ok:
                            _give_back(proc, float(cpu_s))
                            return
                except (EOFError, BrokenPipeError, OSError, ValueError):
                    pass
            _stop(proc)
        finally:
            if held:
                lock.release()

    def __enter__(self) -> "ProcessNegotiator":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort
        # a negotiator never closed: its worker stops. The garbage collector may run here while this
        # thread holds _IDLE_LOCK (giving the worker back would wait for it for ever), and is no
        # place for a round trip to the worker
        try:
            self._end(give_back=False)
        except Exception:
            pass
