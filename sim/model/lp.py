"""Linear programs in matrix form, built with vectorised index arithmetic and solved by HiGHS.

The agents' cost models (:mod:`sim.parties`) add blocks of variables and constraints to an
:class:`LPBuilder`. Variables are numbered; a block of variables is a numpy integer array of any shape,
so constraints over whole index sets are written with broadcasting instead of Python loops. This keeps
model building fast at pilot and large sizes, where a modelling layer such as cvxpy spends most of
its time in Python.

Every cost term carries a label ``(party, component, week)``: :meth:`LinearProgram.cost_breakdown`
turns a solution into the costs the ledger and the transfers need, without re-deriving them.

What a user may do: build an LP with :class:`LPBuilder`, solve it with :func:`solve_lp` (HiGHS through
``scipy.optimize.linprog``; ``method="ipm"`` runs HiGHS's interior-point solver without crossover
through ``highspy``, which is what finishes on millions of variables), fix or bound some variables
with :meth:`LinearProgram.with_bounds`; keep one LP in HiGHS with :class:`LPModel` and re-solve it with
other bounds, costs or right-hand sides, from scratch or from a fixed reference basis (an order-free
warm start: :data:`LP_STARTS`).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

CostLabel = tuple[str, str, int]  # (party, component, week)
#: A simplex basis of an :class:`LPModel` (HiGHS's ``HighsBasis``: each column's and row's status)
Basis = Any


@dataclass(frozen=True)
class CostTerm:
    """``coef * v[idx]`` summed, labelled for the ledger."""

    idx: np.ndarray
    coef: np.ndarray
    label: CostLabel


@dataclass(frozen=True)
class LinearProgram:
    """``min c·v + const  s.t.  A_eq v = b_eq,  A_ub v <= b_ub,  lb <= v <= ub``."""

    c: np.ndarray
    A_eq: sp.csr_matrix
    b_eq: np.ndarray
    A_ub: sp.csr_matrix
    b_ub: np.ndarray
    lb: np.ndarray
    ub: np.ndarray
    terms: tuple[CostTerm, ...] = ()
    const_terms: tuple[tuple[CostLabel, float], ...] = ()

    @property
    def n(self) -> int:
        return self.c.size

    def with_bounds(self, idx: np.ndarray, lb: np.ndarray | float | None = None, ub: np.ndarray | float | None = None) -> "LinearProgram":
        """A copy with the bounds of variables ``idx`` replaced (``lb == ub`` fixes them)."""
        new_lb, new_ub = self.lb.copy(), self.ub.copy()
        flat = np.asarray(idx).ravel()
        if lb is not None:
            new_lb[flat] = np.broadcast_to(lb, np.shape(idx)).ravel()
        if ub is not None:
            new_ub[flat] = np.broadcast_to(ub, np.shape(idx)).ravel()
        return replace(self, lb=new_lb, ub=new_ub)

    def cost_breakdown(self, v: np.ndarray) -> dict[CostLabel, float]:
        """Costs of solution ``v`` by label; they sum to the objective ``c·v + const``."""
        out: dict[CostLabel, float] = {}
        for t in self.terms:
            out[t.label] = out.get(t.label, 0.0) + float(np.dot(t.coef, v[t.idx]))
        for label, value in self.const_terms:
            out[label] = out.get(label, 0.0) + value
        return out

    def objective(self, v: np.ndarray) -> float:
        return float(self.c @ v) + sum(value for _, value in self.const_terms)


@dataclass
class LPSolution:
    status: str  # "optimal" or a failure description
    x: np.ndarray
    objective: float
    lp: LinearProgram
    method: str = "highs"  # the HiGHS path that ran: "highs" (simplex / HiGHS's choice) or "ipm"
    basis: Any = None  # the basis the solve ended at, when asked for (``LPModel.solve(keep_basis=True)``)

    @property
    def ok(self) -> bool:
        return self.status == "optimal"

    def values(self, idx: np.ndarray) -> np.ndarray:
        """Solution values of a block of variables, in the block's shape."""
        return self.x[idx]

    def cost_breakdown(self) -> dict[CostLabel, float]:
        return self.lp.cost_breakdown(self.x)


def unbounded_status(status: str) -> bool:
    """Whether a failed solve's status says feasible and unbounded (not "infeasible or unbounded")."""
    return "nbounded" in status and "nfeasible" not in status


class InfeasibleError(RuntimeError):
    """An LP that should always be feasible was not; a modelling bug, not a user error."""


@dataclass
class LPBuilder:
    """Accumulates variables, constraints and labelled costs; :meth:`build` returns the matrices."""

    n: int = 0
    _lb: list[np.ndarray] = field(default_factory=list)
    _ub: list[np.ndarray] = field(default_factory=list)
    _terms: list[CostTerm] = field(default_factory=list)
    _const: list[tuple[CostLabel, float]] = field(default_factory=list)
    _rows: dict[str, int] = field(default_factory=lambda: {"eq": 0, "ub": 0})
    _coo: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = field(
        default_factory=lambda: {"eq": [], "ub": []}
    )
    _rhs: dict[str, list[tuple[np.ndarray, np.ndarray]]] = field(default_factory=lambda: {"eq": [], "ub": []})
    _tight: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)

    def add_var(self, shape: tuple[int, ...], lb: float | np.ndarray = 0.0, ub: float | np.ndarray = np.inf) -> np.ndarray:
        """A new block of variables; returns their indices, shaped ``shape``."""
        size = int(np.prod(shape, dtype=np.int64))
        idx = np.arange(self.n, self.n + size, dtype=np.int64).reshape(shape)
        self.n += size
        self._lb.append(np.broadcast_to(np.asarray(lb, dtype=float), shape).ravel())
        self._ub.append(np.broadcast_to(np.asarray(ub, dtype=float), shape).ravel())
        return idx

    def tighten(self, idx: np.ndarray, lb: float | np.ndarray = 0.0, ub: float | np.ndarray = np.inf) -> None:
        """Intersect the bounds of variables ``idx`` with ``[lb, ub]`` (broadcast), applied at :meth:`build`
        (a plan's commitment box, :mod:`sim.model.commitment`)."""
        i, lo, hi = np.broadcast_arrays(np.asarray(idx), np.asarray(lb, dtype=float), np.asarray(ub, dtype=float))
        self._tight.append((i.ravel().copy(), lo.ravel().copy(), hi.ravel().copy()))

    def add_cost(self, idx: np.ndarray, coef: float | np.ndarray, label: CostLabel) -> None:
        """Add ``coef * v[idx]`` (broadcast) to the objective under ``label``."""
        idx_b, coef_b = np.broadcast_arrays(np.asarray(idx), np.asarray(coef, dtype=float))
        keep = coef_b.ravel() != 0
        if keep.any():
            self._terms.append(CostTerm(idx_b.ravel()[keep].copy(), coef_b.ravel()[keep].copy(), label))

    def add_constant(self, value: float, label: CostLabel) -> None:
        """A cost that does not depend on the decision (reported in breakdowns, not optimised)."""
        if value:
            self._const.append((label, float(value)))

    def new_rows(self, kind: str, shape: tuple[int, ...], rhs: float | np.ndarray = 0.0) -> np.ndarray:
        """A block of constraint rows of ``kind`` ('eq' or 'ub'), with right-hand side ``rhs``."""
        size = int(np.prod(shape, dtype=np.int64))
        rows = np.arange(self._rows[kind], self._rows[kind] + size, dtype=np.int64).reshape(shape)
        self._rows[kind] += size
        self._rhs[kind].append((rows.ravel(), np.broadcast_to(np.asarray(rhs, dtype=float), shape).ravel().copy()))
        return rows

    def add_terms(self, kind: str, rows: np.ndarray, cols: np.ndarray, coef: float | np.ndarray = 1.0) -> None:
        """Add ``coef * v[cols]`` to constraint ``rows`` (all three broadcast together)."""
        r, c, a = np.broadcast_arrays(np.asarray(rows), np.asarray(cols), np.asarray(coef, dtype=float))
        self._coo[kind].append((r.ravel().copy(), c.ravel().copy(), a.ravel().copy()))

    def _matrix(self, kind: str) -> tuple[sp.csr_matrix, np.ndarray]:
        m = self._rows[kind]
        if self._coo[kind]:
            r = np.concatenate([t[0] for t in self._coo[kind]])
            c = np.concatenate([t[1] for t in self._coo[kind]])
            a = np.concatenate([t[2] for t in self._coo[kind]])
        else:
            r = c = np.zeros(0, dtype=np.int64)
            a = np.zeros(0)
        A = sp.csr_matrix((a, (r, c)), shape=(m, self.n))
        b = np.zeros(m)
        for rows, rhs in self._rhs[kind]:
            b[rows] = rhs
        return A, b

    def build(self) -> LinearProgram:
        c = np.zeros(self.n)
        for t in self._terms:
            np.add.at(c, t.idx, t.coef)
        A_eq, b_eq = self._matrix("eq")
        A_ub, b_ub = self._matrix("ub")
        lb = np.concatenate(self._lb) if self._lb else np.zeros(0)
        ub = np.concatenate(self._ub) if self._ub else np.zeros(0)
        for idx, lo, hi in self._tight:
            np.maximum.at(lb, idx, lo)
            np.minimum.at(ub, idx, hi)
        return LinearProgram(c, A_eq, b_eq, A_ub, b_ub, lb, ub, tuple(self._terms), tuple(self._const))


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Send whatever C code writes to file descriptor 1 to descriptor 2 for a while."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


_banner_lock = threading.Lock()
_banner_shown: set[str] = set()  # the HiGHS builds (module names) that made an instance already


def _linprog_highs() -> Any:
    """The HiGHS build that ``scipy.optimize.linprog(method="highs")`` runs (scipy ships its own, through
    the same pybind11 bindings as ``highspy``). The simplex paths use it, not the ``highspy`` package,
    so that their answers are exactly linprog's: another HiGHS version can stop at another optimal
    vertex of a degenerate LP, which moves costs between weeks (and so the transfers) by far more than
    solver tolerance. ``highspy`` is used when this scipy does not ship the bindings."""
    try:
        from scipy.optimize._highspy import _core
    except ImportError:  # pragma: no cover - scipy < 1.15
        import highspy as _core
    return _core


def _new_highs(core: Any = None) -> Any:
    """A silent HiGHS instance, of ``core``'s build (default: the ``highspy`` package). ``highspy``
    prints its banner on stdout (C level) when its first instance is made, which would corrupt
    ``--json``: that first one is made with stdout sent to stderr."""
    if core is None:
        import highspy as core
    make = getattr(core, "Highs", None) or core._Highs
    if core.__name__ not in _banner_shown:
        with _banner_lock:
            if core.__name__ not in _banner_shown:
                with _stdout_to_stderr():
                    h = make()
                    h.setOptionValue("output_flag", False)
                _banner_shown.add(core.__name__)
                return h
    h = make()
    h.setOptionValue("output_flag", False)
    return h


def _highs_lp(lp: LinearProgram, core: Any, *, ub_first: bool = True) -> Any:
    """``lp`` as ``core.HighsLp``, column-wise: rows ``A_ub`` then ``A_eq`` (the order
    ``scipy.optimize.linprog`` passes them in, so that HiGHS sees the same model either way), or
    ``A_eq`` first (``ub_first=False``, the interior-point path's order)."""
    free = np.full(lp.A_ub.shape[0], -np.inf)
    if ub_first:
        A = sp.vstack([lp.A_ub, lp.A_eq], format="csc")
        lower, upper = np.concatenate([free, lp.b_eq]), np.concatenate([lp.b_ub, lp.b_eq])
    else:
        A = sp.vstack([lp.A_eq, lp.A_ub], format="csc")
        lower, upper = np.concatenate([lp.b_eq, free]), np.concatenate([lp.b_eq, lp.b_ub])
    model = core.HighsLp()
    model.num_col_, model.num_row_ = lp.n, A.shape[0]
    model.col_cost_ = lp.c
    model.col_lower_ = lp.lb  # kHighsInf is IEEE infinity: infinite bounds pass as they are
    model.col_upper_ = lp.ub
    model.row_lower_ = lower
    model.row_upper_ = upper
    model.a_matrix_.format_ = core.MatrixFormat.kColwise
    model.a_matrix_.num_col_, model.a_matrix_.num_row_ = lp.n, A.shape[0]
    model.a_matrix_.start_ = A.indptr
    model.a_matrix_.index_ = A.indices
    model.a_matrix_.value_ = A.data
    return model


def _status(h: Any) -> str:
    """HiGHS's model status in words ("Optimal", "Infeasible", "Unbounded", ...)."""
    return str(h.modelStatusToString(h.getModelStatus()))


def _simplex(h: Any) -> Any:
    """The options ``scipy.optimize.linprog(method="highs")`` runs HiGHS with: presolve on, dual simplex
    (HiGHS chooses simplex for an LP)."""
    h.setOptionValue("presolve", "on")
    h.setOptionValue("simplex_strategy", 1)  # dual
    return h


def _solve_ipm(lp: LinearProgram, threads: int | None) -> tuple[str, np.ndarray]:
    """HiGHS interior point (IPX) without crossover: an interior solution optimal to HiGHS's IPM
    tolerance (relative objective gap about 1e-8), not a vertex."""
    import highspy

    h = _new_highs(highspy)
    h.setOptionValue("solver", "ipm")
    h.setOptionValue("run_crossover", "off")
    if threads is not None:
        h.setOptionValue("threads", int(threads))
    h.passModel(_highs_lp(lp, highspy, ub_first=False))
    h.run()
    status = _status(h)
    if status != "Optimal":
        return status, np.full(lp.n, np.nan)
    return "optimal", np.asarray(h.getSolution().col_value, dtype=float)


def _solve_simplex(lp: LinearProgram) -> tuple[str, np.ndarray]:
    """HiGHS on ``lp`` from scratch, as ``linprog(method="highs")`` runs it, without scipy's checks and
    conversions around the solve (about a third of the time on the pilot's small LPs)."""
    core = _linprog_highs()
    h = _simplex(_new_highs(core))
    h.passModel(_highs_lp(lp, core))
    h.run()
    status = _status(h)
    if status != "Optimal":
        return status, np.full(lp.n, np.nan)
    return "optimal", np.asarray(h.getSolution().col_value, dtype=float)


class LPModel:
    """One linear program held by HiGHS between solves, for solving it many times with other costs,
    variable bounds or right-hand sides (the matrices stay as they are).

    :meth:`solve` takes a :class:`LinearProgram` with this model's matrices (``A_eq``, ``A_ub``, the
    same objects: ``with_bounds`` and ``dataclasses.replace`` keep them) and changes in HiGHS only the
    costs, bounds and right-hand sides that differ from the last solve; HiGHS then starts from the
    last solve's basis (dual simplex, no presolve) instead of from scratch. The first solve is exactly
    :func:`solve_lp`'s. A later one finds an optimum of the same LP, but where the LP has several
    optimal vertices (a cost moved between weeks at no total cost) it may stop at another one than a
    solve from scratch would, and which one depends on the solves before it. ``solve(start=basis)``
    removes that dependence: every such solve starts from the given basis (:meth:`basis`, kept from
    an earlier solve: a *reference*), with the solver's memory cleared, so its answer depends only on
    the LP and the reference, not on the order of the queries. What a user may do: hold one per LP
    that is re-solved often (a week's retailer model over demand scenarios and fixed POs); solve from
    one thread at a time."""

    def __init__(self, lp: LinearProgram, *, warm: bool = True) -> None:
        self.warm = warm
        self._core = _linprog_highs()
        self._h = _simplex(_new_highs(self._core))
        self._base = lp
        self._h.passModel(_highs_lp(lp, self._core))
        self._c, self._lb, self._ub = lp.c.copy(), lp.lb.copy(), lp.ub.copy()
        self._b_ub, self._b_eq = lp.b_ub.copy(), lp.b_eq.copy()
        self._lock = threading.Lock()
        self.solves = 0

    @property
    def lp(self) -> LinearProgram:
        """The LP the model was made from."""
        return self._base

    def solve(self, lp: LinearProgram | None = None, *, raise_on_fail: bool = True, start: Basis | None = None,
              keep_basis: bool = False) -> LPSolution:
        """Solve ``lp`` (default: the LP the model was made from); see the class docstring.

        ``start``: a basis of this model (:meth:`basis`, taken after an earlier solve) to start from
        instead of the last solve's (or from scratch). The solver's memory of earlier solves is
        cleared first, so the answer is a function of ``lp`` and ``start`` alone, bit for bit,
        whatever was solved before (an order-free warm start); an optimum of ``lp`` like a solve
        from scratch, possibly at another optimal vertex. If the warm-started run does not end
        optimal, ``lp`` is solved again from scratch. ``keep_basis``: the solution carries the basis
        it ended at (``LPSolution.basis``), to start other solves from."""
        lp = self._base if lp is None else lp
        if lp.A_eq is not self._base.A_eq or lp.A_ub is not self._base.A_ub:
            raise ValueError("LPModel.solve: the LP's matrices are not the model's (make it with "
                             "with_bounds or dataclasses.replace from LPModel.lp)")
        with self._lock:
            self._update(lp)
            if start is not None or not self.warm:
                self._h.clearSolver()
            if start is not None:
                self._h.setBasis(start)
            self._h.run()
            self.solves += 1
            status = _status(self._h)
            if start is not None and status != "Optimal":  # a start that did not work out: from scratch
                self._h.clearSolver()
                self._h.run()
                status = _status(self._h)
            x = np.asarray(self._h.getSolution().col_value, dtype=float) if status == "Optimal" else None
            basis = self._h.getBasis() if keep_basis and x is not None else None
        if x is None:
            if raise_on_fail:
                raise InfeasibleError(f"HiGHS: {status}")
            return LPSolution(status, np.full(lp.n, np.nan), np.nan, lp)
        x = np.clip(x, lp.lb, lp.ub)
        return LPSolution("optimal", x, lp.objective(x), lp, basis=basis)

    def basis(self) -> Basis:
        """The basis the last solve ended at (a copy; HiGHS's ``HighsBasis``), to start later solves
        of this model from (``solve(start=...)``)."""
        with self._lock:
            basis = self._h.getBasis()
        if not basis.valid:
            raise ValueError("LPModel.basis: no valid basis (solve the model first)")
        return basis

    def _update(self, lp: LinearProgram) -> None:
        h, m_ub = self._h, self._b_ub.size
        changed = np.flatnonzero(lp.c != self._c)
        if changed.size:
            h.changeColsCost(changed.size, changed.astype(np.int32), lp.c[changed])
            self._c = lp.c.copy()
        changed = np.flatnonzero((lp.lb != self._lb) | (lp.ub != self._ub))
        if changed.size:
            h.changeColsBounds(changed.size, changed.astype(np.int32), lp.lb[changed], lp.ub[changed])
            self._lb, self._ub = lp.lb.copy(), lp.ub.copy()
        changed = np.flatnonzero(lp.b_ub != self._b_ub)
        if changed.size:
            self._change_rows(changed, np.full(changed.size, -np.inf), lp.b_ub[changed])
            self._b_ub = lp.b_ub.copy()
        changed = np.flatnonzero(lp.b_eq != self._b_eq)
        if changed.size:
            self._change_rows(changed + m_ub, lp.b_eq[changed], lp.b_eq[changed])
            self._b_eq = lp.b_eq.copy()

    def _change_rows(self, rows: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> None:
        # scipy's bindings have no changeRowsBounds (highspy's do): one row at a time
        many = getattr(self._h, "changeRowsBounds", None)
        if many is not None:
            many(rows.size, rows.astype(np.int32), lower, upper)
            return
        one = self._h.changeRowBounds
        for r, lo, up in zip(rows.tolist(), lower.tolist(), upper.tolist()):
            one(r, lo, up)


#: How the agents' kept LPs (the retailer's week model, a vendor's evaluations) are re-solved for a query:
#: ``"reference"`` (default): warm-started (``LPModel.solve(start=...)``) from a *reference* basis fixed
#: per week (and demand), the basis of a solve near the queries (the retailer's: its own optimal plan on
#: the forecast; on a demand path, that path with this week's PO fixed at its own plan's). Each answer is then a function
#: of the query and the week alone, whatever was asked before it and in whichever order (a menu's items
#: priced in any order, or a larger menu, get the same prices), and several times cheaper than from
#: scratch on the pilot. Where an LP has several optimal solutions the one returned is the one the
#: simplex reaches from the reference, not the one a solve from scratch stops at (both arbitrary among
#: equally cheap plans; optimal values agree to solver tolerance). ``"scratch"``: every query from
#: scratch (the answers of earlier versions; slower). docs/performance.md has the figures.
LP_STARTS = "reference"
LP_START_MODES = ("reference", "scratch")


def reference_starts() -> bool:
    """Whether kept LPs are re-solved from their reference basis (:data:`LP_STARTS`)."""
    if LP_STARTS not in LP_START_MODES:
        raise ValueError(f"sim.model.lp.LP_STARTS must be one of {', '.join(LP_START_MODES)}, got {LP_STARTS!r}")
    return LP_STARTS == "reference"


#: ``solve_lp(method="auto")`` uses the interior-point path from this many variables on
IPM_THRESHOLD = 1_000_000


def solve_lp(lp: LinearProgram, *, raise_on_fail: bool = True, method: str = "auto", threads: int | None = None) -> LPSolution:
    """Solve with HiGHS. ``method="highs"``: dual simplex / IPM chosen by HiGHS, a vertex solution,
    through ``highspy`` with the options ``scipy.optimize.linprog(method="highs")`` uses;
    ``method="linprog"``: the same through ``linprog`` itself (slower: it checks and converts the model
    on every call; kept to compare against). ``method="ipm"``: interior point without crossover
    (``threads`` for HiGHS), for LPs with millions of variables, where simplex takes far longer (the
    ``large`` benchmark's joint LP, 3.6 million variables: simplex unfinished after 14 minutes, IPM
    500 s). ``"auto"`` (default): ``ipm`` from :data:`IPM_THRESHOLD` variables on, else ``highs``.
    Deterministic for the same input. To solve one LP many times with other bounds, costs or
    right-hand sides, use :class:`LPModel`."""
    if method == "auto":
        method = "ipm" if lp.n >= IPM_THRESHOLD else "highs"
    if method == "ipm":
        status, x = _solve_ipm(lp, threads)
    elif method == "highs":
        status, x = _solve_simplex(lp)
    elif method == "linprog":
        status, x = _solve_linprog(lp)
    else:
        raise ValueError(f"unknown LP method {method!r} (choose 'auto', 'highs', 'linprog' or 'ipm')")
    label = "highs" if method == "linprog" else method
    if status != "optimal":
        if raise_on_fail:
            raise InfeasibleError(f"HiGHS{' IPM' if method == 'ipm' else ''}: {status}")
        return LPSolution(status, x, np.nan, lp, label)
    # clip solver noise below zero on non-negative variables
    x = np.clip(x, lp.lb, lp.ub)
    return LPSolution("optimal", x, lp.objective(x), lp, label)


def _solve_linprog(lp: LinearProgram) -> tuple[str, np.ndarray]:
    res = linprog(
        lp.c,
        A_ub=lp.A_ub if lp.A_ub.shape[0] else None,
        b_ub=lp.b_ub if lp.A_ub.shape[0] else None,
        A_eq=lp.A_eq if lp.A_eq.shape[0] else None,
        b_eq=lp.b_eq if lp.A_eq.shape[0] else None,
        bounds=np.column_stack([lp.lb, lp.ub]),
        method="highs",
    )
    if res.status != 0:
        return str(res.message), np.full(lp.n, np.nan)
    return "optimal", np.asarray(res.x, dtype=float)
