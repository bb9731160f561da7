"""Linear programs that fall apart into independent pieces, solved piece by piece.

The retailer's cost separates by product: no constraint of its LP links two products, so its LP is
many small LPs side by side (2,640 connected pieces on the ``pilot`` benchmark). HiGHS's simplex on
the whole LP costs more than the sum of its pieces solved one by one (the retailer's dual LP of a
``pilot`` benchmark check, measured: 0.77 s whole, 0.38 s as 16 LPs), because the work of a simplex iteration
grows with the size of the basis. :class:`SeparableLP` finds the pieces once (the connected
components of the constraint matrix's rows and columns), deals them into a few groups of about equal
size, and holds one :class:`sim.model.lp.LPModel` per group: a solve is one solve per group, the same
optimum (the sum of the groups' optima; each group's optimum is the whole LP's restricted to it), and
a later solve of the same LP with other costs or bounds starts each group from its own last basis.

Below :data:`SPLIT_MIN_VARIABLES` variables, or with one piece, it holds one model of the whole LP, and
its answers are exactly those of :class:`~sim.model.lp.LPModel` (the pilot replay's agents are below it).

What a user may do: ``SeparableLP(lp).solve(replace(lp, c=...))`` for an LP solved a few times over
the same matrices; ``pieces(lp)`` to see how an LP falls apart.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from sim.model.lp import InfeasibleError, LinearProgram, LPModel, LPSolution, unbounded_status

#: LPs with fewer variables are solved whole: below this the per-solve overhead of several models
#: outweighs the gain (the pilot replay's retailer LP, about 5,000 variables, stays whole)
SPLIT_MIN_VARIABLES = 20_000
#: the most groups a separable LP is dealt into (16 measured best on the ``pilot`` benchmark's retailer:
#: 2 groups 0.54 s, 4 0.44 s, 16 0.38 s, 64 0.38 s, whole 0.77 s)
MAX_GROUPS = 16


def pieces(lp: LinearProgram) -> np.ndarray:
    """Each variable's piece: variables share a piece when a row links them, directly or through
    other variables (the connected components of the row-column graph)."""
    A = sp.vstack([lp.A_eq, lp.A_ub]).tocoo()
    m = A.shape[0]
    # the bipartite graph of rows (nodes 0..m-1) and variables (m..m+n-1): O(nonzeros), where A'A would
    # be dense for a row that links many variables (a vendor's capacity row)
    graph = sp.coo_matrix((np.ones(A.nnz), (A.row, m + A.col)), shape=(m + lp.n, m + lp.n)).tocsr()
    labels = connected_components(graph, directed=False)[1][m:]
    return np.unique(labels, return_inverse=True)[1].ravel()


def _groups(piece: np.ndarray, n_groups: int) -> np.ndarray:
    """Each variable's group: pieces dealt, largest first, to the group with the fewest variables so
    far (ties to the lowest group; a deterministic function of the LP)."""
    sizes = np.bincount(piece)
    order = np.argsort(-sizes, kind="stable")
    load = np.zeros(n_groups, dtype=np.int64)
    group_of_piece = np.empty(sizes.size, dtype=np.int64)
    for p in order:
        g = int(np.argmin(load))
        group_of_piece[p] = g
        load[g] += sizes[p]
    return group_of_piece[piece]


def _row_groups(A: sp.csr_matrix, group: np.ndarray) -> np.ndarray:
    """Each row's group (the group of its first variable; every variable of a row is in one piece);
    rows without variables go to group 0."""
    A = A.tocsr()
    first = A.indptr[:-1]
    out = np.zeros(A.shape[0], dtype=np.int64)
    has = np.diff(A.indptr) > 0
    out[has] = group[A.indices[first[has]]]
    return out


@dataclass(frozen=True)
class Split:
    """How an LP falls into groups: each group's variables, equality and inequality rows, and its LP
    (the matrices restricted to them). A function of the LP's matrices and sizes alone, so one split
    serves every solve of the same matrices (:meth:`of` it once, hand it to each :class:`SeparableLP`)."""

    parts: tuple[tuple[np.ndarray, np.ndarray, np.ndarray, LinearProgram], ...]

    @staticmethod
    def of(lp: LinearProgram, max_groups: int | None = None) -> "Split":
        """The groups of ``lp`` (none, for an LP solved whole: small, or in one piece); at most
        ``max_groups`` (default :data:`MAX_GROUPS`, read at the call, so that setting it takes effect)."""
        max_groups = MAX_GROUPS if max_groups is None else max_groups
        piece = pieces(lp) if lp.n >= SPLIT_MIN_VARIABLES else np.zeros(lp.n, dtype=np.int64)
        n_groups = int(min(max_groups, piece.max(initial=0) + 1))
        if n_groups <= 1:
            return Split(())
        group = _groups(piece, n_groups)
        A_eq, A_ub = lp.A_eq.tocsr(), lp.A_ub.tocsr()
        eq_group, ub_group = _row_groups(A_eq, group), _row_groups(A_ub, group)
        parts = []
        for g in range(n_groups):
            cols = np.flatnonzero(group == g)
            eq, ub = np.flatnonzero(eq_group == g), np.flatnonzero(ub_group == g)
            part = LinearProgram(c=lp.c[cols], A_eq=A_eq[eq][:, cols], b_eq=lp.b_eq[eq], A_ub=A_ub[ub][:, cols],
                                 b_ub=lp.b_ub[ub], lb=lp.lb[cols], ub=lp.ub[cols])
            parts.append((cols, eq, ub, part))
        return Split(tuple(parts))


class SeparableLP:
    """One LP held as independent groups of pieces (see the module docstring); solve it with other
    costs, bounds or right-hand sides, the matrices unchanged (``dataclasses.replace`` or
    ``with_bounds`` of :attr:`lp`). ``split``: :meth:`Split.of` of ``lp``, made once for many models
    of the same LP (default: made here). Not for use from two threads at once."""

    def __init__(self, lp: LinearProgram, *, warm: bool = True, max_groups: int | None = None,
                 split: Split | None = None) -> None:
        self.lp = lp
        split = Split.of(lp, max_groups) if split is None else split
        self.solves = 0  # solves asked of this model (each is one solve per group)
        self._parts = [(cols, eq, ub, LPModel(part, warm=warm)) for cols, eq, ub, part in split.parts]
        self._warm = warm
        self._whole: LPModel | None = None  # made at the first solve of an LP solved whole

    @property
    def groups(self) -> int:
        """How many LPs a solve is (1: the LP is solved whole)."""
        return max(len(self._parts), 1)

    def solve(self, lp: LinearProgram | None = None, *, raise_on_fail: bool = True) -> LPSolution:
        """Solve ``lp`` (default :attr:`lp`), made from :attr:`lp` with other costs, bounds or
        right-hand sides. The status is ``"optimal"`` when every group is; else the first group's
        that is not optimal, where an infeasible group decides over an unbounded one (the whole LP is
        unbounded only if every group is feasible); the objective the whole LP's at the combined
        solution (constant terms included)."""
        lp = self.lp if lp is None else lp
        if lp.A_eq is not self.lp.A_eq or lp.A_ub is not self.lp.A_ub:
            raise ValueError("SeparableLP.solve: the LP's matrices are not the model's (make it with "
                             "with_bounds or dataclasses.replace from SeparableLP.lp)")
        self.solves += 1
        if not self._parts:
            if self._whole is None:
                self._whole = LPModel(self.lp, warm=self._warm)
            return self._whole.solve(lp, raise_on_fail=raise_on_fail)
        x = np.empty(lp.n)
        failed: list[str] = []
        for cols, eq, ub, model in self._parts:
            part = replace(model.lp, c=lp.c[cols], lb=lp.lb[cols], ub=lp.ub[cols], b_eq=lp.b_eq[eq], b_ub=lp.b_ub[ub])
            sol = model.solve(part, raise_on_fail=False)
            if not sol.ok:
                failed.append(sol.status)
                if not unbounded_status(sol.status):  # infeasible (or undecided) in one group: so is the whole LP
                    break
                continue  # unbounded in one group: the whole LP too, unless a later group is infeasible
            x[cols] = sol.x
        if failed:
            status = next((s for s in failed if not unbounded_status(s)), failed[0])
            if raise_on_fail:
                raise InfeasibleError(f"HiGHS: {status}")
            return LPSolution(status, np.full(lp.n, np.nan), np.nan, lp)
        return LPSolution("optimal", x, lp.objective(x), lp)
