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
with :meth:`LinearProgram.with_bounds`.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

CostLabel = tuple[str, str, int]  # (party, component, week)


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

    @property
    def ok(self) -> bool:
        return self.status == "optimal"

    def values(self, idx: np.ndarray) -> np.ndarray:
        """Solution values of a block of variables, in the block's shape."""
        return self.x[idx]

    def cost_breakdown(self) -> dict[CostLabel, float]:
        return self.lp.cost_breakdown(self.x)


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

    def add_var(self, shape: tuple[int, ...], lb: float | np.ndarray = 0.0, ub: float | np.ndarray = np.inf) -> np.ndarray:
        """A new block of variables; returns their indices, shaped ``shape``."""
        size = int(np.prod(shape, dtype=np.int64))
        idx = np.arange(self.n, self.n + size, dtype=np.int64).reshape(shape)
        self.n += size
        self._lb.append(np.broadcast_to(np.asarray(lb, dtype=float), shape).ravel())
        self._ub.append(np.broadcast_to(np.asarray(ub, dtype=float), shape).ravel())
        return idx

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


def _solve_ipm(lp: LinearProgram, threads: int | None) -> tuple[str, np.ndarray]:
    """HiGHS interior point (IPX) without crossover: an interior solution optimal to HiGHS's IPM
    tolerance (relative objective gap about 1e-8), not a vertex."""
    import highspy

    with _stdout_to_stderr():  # highspy prints a banner on stdout (C level), which would corrupt --json
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
    h.setOptionValue("solver", "ipm")
    h.setOptionValue("run_crossover", "off")
    if threads is not None:
        h.setOptionValue("threads", int(threads))
    A = sp.vstack([lp.A_eq, lp.A_ub]).tocsc()
    inf = highspy.kHighsInf
    model = highspy.HighsLp()
    model.num_col_, model.num_row_ = lp.n, A.shape[0]
    model.col_cost_ = lp.c
    model.col_lower_ = lp.lb  # kHighsInf is IEEE infinity: infinite bounds pass as they are
    model.col_upper_ = lp.ub
    model.row_lower_ = np.concatenate([lp.b_eq, np.full(lp.A_ub.shape[0], -inf)])
    model.row_upper_ = np.concatenate([lp.b_eq, lp.b_ub])
    model.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    model.a_matrix_.start_ = A.indptr
    model.a_matrix_.index_ = A.indices
    model.a_matrix_.value_ = A.data
    h.passModel(model)
    h.run()
    status = h.modelStatusToString(h.getModelStatus())
    if status != "Optimal":
        return status, np.full(lp.n, np.nan)
    return "optimal", np.asarray(h.getSolution().col_value, dtype=float)


#: ``solve_lp(method="auto")`` uses the interior-point path from this many variables on
IPM_THRESHOLD = 1_000_000


def solve_lp(lp: LinearProgram, *, raise_on_fail: bool = True, method: str = "auto", threads: int | None = None) -> LPSolution:
    """Solve with HiGHS. ``method="highs"``: dual simplex / IPM chosen by HiGHS, a vertex solution.
    ``method="ipm"``: interior point without crossover (``threads`` for HiGHS), for LPs with millions
    of variables, where simplex takes far longer (the ``large`` benchmark's joint LP, 3.6 million
    variables: simplex unfinished after 14 minutes, IPM 500 s). ``"auto"`` (default): ``ipm`` from
    :data:`IPM_THRESHOLD` variables on, else ``highs``. Deterministic for the same input."""
    if method == "auto":
        method = "ipm" if lp.n >= IPM_THRESHOLD else "highs"
    if method == "ipm":
        status, x = _solve_ipm(lp, threads)
        if status != "optimal":
            if raise_on_fail:
                raise InfeasibleError(f"HiGHS IPM: {status}")
            return LPSolution(status, x, np.nan, lp, method)
        x = np.clip(x, lp.lb, lp.ub)
        return LPSolution("optimal", x, lp.objective(x), lp, method)
    if method != "highs":
        raise ValueError(f"unknown LP method {method!r} (choose 'auto', 'highs' or 'ipm')")
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
        if raise_on_fail:
            raise InfeasibleError(f"HiGHS: {res.message}")
        return LPSolution(res.message, np.full(lp.n, np.nan), np.nan, lp)
    x = np.asarray(res.x)
    # clip solver noise below zero on non-negative variables
    x = np.clip(x, lp.lb, lp.ub)
    return LPSolution("optimal", x, lp.objective(x), lp)
