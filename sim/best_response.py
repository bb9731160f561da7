"""Fast, exact-to-tolerance best responses for agents whose private cost is a linear program.

A flosim agent's cost ``C(x)`` is the optimal value of an LP in which the plan ``x`` is a block of
variables (``agent.add_block(builder, x)``). Its CPP best response is the QP

    min_v  c·v + y·x + (rho/2)||x - z||²     over the agent's polytope,   x = v[idx]

solved every negotiation round with new ``(z, y, rho)``. General QP solvers are either slow to
re-solve (interior point: no warm start) or inaccurate on LP-like problems (first-order methods).
:class:`LPBestResponse` instead keeps **one HiGHS LP alive for the whole negotiation** and models the
separable quadratic by tangent cuts, refined on demand:

* each plan variable ``x_j`` gets an epigraph variable ``t_j >= x_j²/(2 s_j)`` (``s_j`` a fixed scale),
  represented by cuts ``t_j >= (a/s_j) x_j - a²/(2 s_j)`` at tangent points ``a``;
* a query only changes objective coefficients (``c_x + y - rho z`` on ``x``, ``rho s_j`` on ``t``), so
  HiGHS re-solves from the previous optimal basis (a few hundred simplex pivots);
* after each solve, every ``j`` whose ``x_j²/(2 s_j) - t_j`` exceeds the tolerance gets a cut at the
  current ``x_j`` and the LP is re-solved (dual simplex, warm). Cuts persist, so late rounds of a
  negotiation, where answers move little, need no new cuts at all.

The answer is the QP's solution up to ``delta_j = max(abs_tol, rel_tol |x_j|)`` per component (the
cut model is exact to ``rho delta_j²/2`` at the answer, and the QP is ``rho``-strongly convex in
``x``). Structure is exploited for free: the retailer's LP separates by product, and the simplex
basis update only touches the products whose prices moved.

What a user may do: ``negotiator_for(agent)`` for a :class:`~sim.agents.RetailerAgent` or
:class:`~sim.agents.VendorAgent` (or anything with ``public.shape`` and ``add_block``), or
``LPBestResponse(lp, x_idx)`` for any :class:`~sim.lp.LinearProgram`. Conceptually this object lives
on the agent's side: it holds the agent's private LP, and hands the coordinator only answers.
"""

from __future__ import annotations

import multiprocessing as mp
from dataclasses import dataclass
from typing import Any

import osqp
import numpy as np
import scipy.sparse as sp

from sim.lp import LinearProgram, LPBuilder, solve_lp

_OSQP_RAISE = "raise_error" in osqp.OSQP.solve.__code__.co_varnames



@dataclass(frozen=True)
class BestResponseOptions:
    """Accuracy and effort of :class:`LPBestResponse`.

    ``abs_tol``/``rel_tol``: an answer component is accepted when it is within
    ``max(abs_tol, rel_tol |x_j|)`` of a tangent point of the cut model. ``max_rounds``: cut
    rounds per query before the answer is returned as it stands (``stats['inexact']`` counts those).
    """

    abs_tol: float = 1e-4
    rel_tol: float = 1e-6
    max_iter: int = 20000
    polish: bool = True


class BestResponseError(RuntimeError):
    """The agent's LP could not be solved (infeasible or a solver failure): a modelling bug."""


class LPBestResponse:
    """A :class:`~sim.protocol.Negotiator` for an agent whose cost is ``lp`` over plan variables ``x_idx``."""

    def __init__(self, lp: LinearProgram, x_idx: np.ndarray, options: BestResponseOptions | None = None) -> None:
        self.options = options or BestResponseOptions()
        self._lp = lp
        self.shape = tuple(np.shape(x_idx))
        self._x = np.asarray(x_idx, dtype=np.int64).ravel()
        n = lp.n
        self._rho: float | None = None
        self.stats: dict[str, Any] = {"queries": 0, "osqp_iterations": 0, "inexact": 0, "polished": 0}
        self._A = sp.vstack([lp.A_eq, lp.A_ub, sp.eye(n, format="csr")]).tocsc()
        self._l = np.concatenate([lp.b_eq, np.full(lp.A_ub.shape[0], -np.inf), lp.lb])
        self._u = np.concatenate([lp.b_eq, lp.b_ub, lp.ub])
        self._solver: osqp.OSQP | None = None

    def best_response(self, z: np.ndarray, prices: np.ndarray, rho: float) -> np.ndarray:
        """``argmin C(x) + prices·x + (rho/2)||x - z||²`` (see the module docstring for the accuracy)."""
        if not rho > 0:
            raise ValueError(f"rho must be positive, got {rho!r}")
        z = np.asarray(z, dtype=float).ravel()
        y = np.asarray(prices, dtype=float).ravel()
        opt = self.options
        q = self._lp.c.copy()
        q[self._x] += y - rho * z
        n = self._lp.n
        if self._solver is None:
            pd = np.zeros(n)
            pd[self._x] = rho
            P = sp.diags(pd).tocsc()
            P.eliminate_zeros()
            self._solver = osqp.OSQP()
            self._solver.setup(P, q, self._A, self._l, self._u, verbose=False, eps_abs=opt.abs_tol, eps_rel=opt.rel_tol,
                               polishing=opt.polish, max_iter=opt.max_iter, scaling=10, check_termination=10)
            self._rho = rho
        else:
            if rho != self._rho:
                self._solver.update(Px=np.full(self._x.size, rho))
                self._rho = rho
            self._solver.update(q=q)
        res = self._solver.solve(raise_error=False) if _OSQP_RAISE else self._solver.solve()
        self.stats["queries"] += 1
        self.stats["osqp_iterations"] += int(res.info.iter)
        if res.info.status_polish == 1:
            self.stats["polished"] += 1
        # solved; solved inaccurate; iteration or time limit (the iterate is still the best estimate)
        if res.info.status_val not in (1, 2, -2, -6) or res.x is None or not np.all(np.isfinite(res.x)):
            raise BestResponseError(f"OSQP: {res.info.status}")
        if res.info.status_val != 1:
            self.stats["inexact"] += 1
        x = np.clip(res.x[self._x], self._lp.lb[self._x], self._lp.ub[self._x])
        return x.reshape(self.shape)

    def confirm(self, x: np.ndarray) -> np.ndarray:
        """The largest plan ``x' <= x`` (componentwise, most units in total) the agent can carry out
        exactly. Iterative solvers answer within a tolerance; an agent confirms a plan before it is
        executed. Not part of the protocol: the coordinator never calls it."""
        from dataclasses import replace

        cap = np.maximum(np.asarray(x, dtype=float).ravel(), 0.0)
        c = np.zeros(self._lp.n)
        c[self._x] = -1.0
        lp = replace(self._lp, c=c, terms=(), const_terms=()).with_bounds(self._x, 0.0, cap)
        sol = solve_lp(lp, raise_on_fail=False)
        if not sol.ok:
            raise BestResponseError(f"cannot confirm any plan below the answer: {sol.status}")
        return np.minimum(sol.x[self._x], cap).reshape(self.shape)

    def own_cost(self, x: np.ndarray) -> float:
        """The agent's private cost ``C(x)`` of plan ``x`` (``inf`` if it cannot carry it out).
        Diagnostics only: the coordinator never calls this."""
        flat = np.asarray(x, dtype=float).ravel()
        sol = solve_lp(self._lp.with_bounds(self._x, flat, flat), raise_on_fail=False)
        return sol.objective if sol.ok else float("inf")


def negotiator_for(agent: Any, options: BestResponseOptions | None = None) -> LPBestResponse:
    """A best-response negotiator for a flosim agent, built from its ``add_block`` cost model.

    This runs on the agent's side: the returned object holds the agent's private LP and answers
    CPP queries; the coordinator receives only the object and talks to it only through
    ``best_response``. Build a new one whenever the agent's situation changes (each planning week).
    """
    b = LPBuilder()
    x = b.add_var(agent.public.shape)
    agent.add_block(b, x)
    return LPBestResponse(b.build(), x, options)


def _serve(conn: Any, agent: Any, options: BestResponseOptions | None) -> None:
    """Worker loop of :class:`ProcessNegotiator`: build the negotiator here, answer calls until told to stop."""
    try:
        negotiator = negotiator_for(agent, options)
        conn.send((True, None))
    except Exception as exc:  # report set-up failures to the parent
        conn.send((False, f"{type(exc).__name__}: {exc}"))
        return
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg is None:
            return
        method, args = msg
        try:
            conn.send((True, getattr(negotiator, method)(*args)))
        except Exception as exc:
            conn.send((False, f"{type(exc).__name__}: {exc}"))


class ProcessNegotiator:
    """An agent's negotiator running in its own process: the agent's data moves there and stays.

    This is how separate parties run in practice (each on its own machine), and it lets the agents
    answer a round in parallel: the coordinator's query threads wait on pipes, not on the GIL. The
    object offers ``best_response`` (the protocol) plus ``confirm`` and ``own_cost`` (agent side).
    Use it as a context manager or call :meth:`close`.
    """

    def __init__(self, agent: Any, options: BestResponseOptions | None = None, start_method: str = "spawn") -> None:
        ctx = mp.get_context(start_method)
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, agent, options), daemon=True)
        self._proc.start()
        child.close()
        self._ready = False
        self.shape = tuple(agent.public.shape)

    def _call(self, method: str, *args: Any) -> Any:
        if not self._ready:
            ok, err = self._conn.recv()
            if not ok:
                raise BestResponseError(f"agent process failed to start: {err}")
            self._ready = True
        self._conn.send((method, args))
        ok, value = self._conn.recv()
        if not ok:
            raise BestResponseError(value)
        return value

    def best_response(self, z: np.ndarray, prices: np.ndarray, rho: float) -> np.ndarray:
        return self._call("best_response", np.asarray(z, dtype=float), np.asarray(prices, dtype=float), float(rho))

    def confirm(self, x: np.ndarray) -> np.ndarray:
        return self._call("confirm", np.asarray(x, dtype=float))

    def own_cost(self, x: np.ndarray) -> float:
        return self._call("own_cost", np.asarray(x, dtype=float))

    def close(self) -> None:
        """Stop the worker process (idempotent)."""
        if self._proc.is_alive():
            try:
                self._conn.send(None)
            except (BrokenPipeError, OSError):
                pass
            self._proc.join(timeout=5)
            if self._proc.is_alive():
                self._proc.terminate()
                self._proc.join()
        self._conn.close()

    def __enter__(self) -> "ProcessNegotiator":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
