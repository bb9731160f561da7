"""A vendor's agent: its private cost model ``C_v`` and the planning queries it answers.

:class:`VendorAgent` models ``C_v`` for one vendor: production within weekly capacity, origin stock,
lane costs (a scheduled truck's spare volume at a low marginal rate, then full-truckload rates), minus
its wholesale revenue. Its plan is its own block ``x[v]`` of shape ``(H, F, K)`` (it ships only the
products it supplies); it never sees another vendor's block or data. ``fulfil(po)`` is its response
to a purchase order.

What a user may do: ask it the queries of :class:`sim.model.decision.VendorPlanner`. ``add_block``
writes its cost model into an LP; only the agent's own negotiator (:meth:`VendorAgent.negotiator`)
and the first-best oracle (:mod:`sim.parties.oracle`) use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp

from sim.model.commitment import PlanBounds
from sim.model.data import PublicData, VendorData
import sim.model.lp as lp_module
from sim.model.lp import LinearProgram, LPBuilder, LPModel, LPSolution, solve_lp
from sim.model.plan_cost import PlanCost
from sim.negotiation.best_response import BestResponseOptions, negotiator_for, process_negotiator

#: Units of a committed PO below which it counts as shipped in full (LP rounding): no tie-break is solved.
FULL_UNITS = 1e-6
#: Pieces of the tie-break's convex penalty on each line's short share (:func:`rationing_tie_break`).
TIE_PIECES = 10
#: The tie-break keeps the rule's optimum to this relative tolerance (the first stage's objective).
TIE_TOL = 1e-9


def rationing_tie_break(lp: LinearProgram, objective: float, shipped: np.ndarray, po: np.ndarray) -> LinearProgram:
    """The second stage of a committed vendor's rationing: among the shipments optimal under the rule
    (``lp``'s objective at most ``objective``, the first stage's optimum, to :data:`TIE_TOL`), the one
    that spreads this week's shortfall most evenly over the ordered lines.

    Under ``cheapest`` rationing many shipments are often equally cheap to the vendor (products with
    the same cost at one FC, lanes at the same rate), and the first stage's answer is whichever vertex
    the solver stops at: which lines go short then moves with any change of the PO, of the LP's
    layout or of the solver. The second stage replaces that arbitrary choice with a fixed one: it
    minimises ``sum_l po_l * phi(short_l / po_l)`` over the ordered lines ``l`` (FC, product), with
    ``phi`` the piecewise-linear interpolation of ``s**2`` on :data:`TIE_PIECES` equal pieces (a
    least-squares pro-rata: equal short shares among tied lines, to a piece), and, to make the answer
    unique, each line's slopes raised by ``rank / (pieces * lines)`` (rank: the line's position in the
    FC-major, product-minor order; less than the gap between two pieces, so the spread comes first and
    ties within a piece short the earlier lines first). ``shipped``: the variables of this week's
    shipment ``[F, K]``; ``po``: the PO ``[F, K]``. The returned LP has the same labelled cost terms,
    so its solution's ``cost_breakdown`` is the vendor's cost of the chosen shipment."""
    po = np.asarray(po, dtype=float)
    lines = np.argwhere(po > 0)
    n, m = len(lines), TIE_PIECES
    n0 = lp.n
    cols = shipped[lines[:, 0], lines[:, 1]]  # the shipment's variable of each ordered line
    z = n0 + np.arange(n * m).reshape(n, m)  # line l's shortfall in piece j, at most po_l / m
    width = po[lines[:, 0], lines[:, 1]] / m
    slopes = (2 * np.arange(1, m + 1) - 1)[None, :] / m + np.arange(n)[:, None] / (m * n)
    # shipped + sum of pieces = ordered, line by line
    rows = np.repeat(np.arange(n), m + 1)
    cells = np.column_stack([cols, z]).ravel()
    eq = sp.csr_matrix((np.ones(n * (m + 1)), (rows, cells)), shape=(n, n0 + n * m))
    A_eq = sp.vstack([sp.hstack([lp.A_eq, sp.csr_matrix((lp.A_eq.shape[0], n * m))]), eq], format="csr")
    b_eq = np.concatenate([lp.b_eq, po[lines[:, 0], lines[:, 1]]])
    # the rule's objective stays at its optimum
    keep = sp.csr_matrix(np.concatenate([lp.c, np.zeros(n * m)])[None, :])
    A_ub = sp.vstack([sp.hstack([lp.A_ub, sp.csr_matrix((lp.A_ub.shape[0], n * m))]), keep], format="csr")
    const = sum(value for _, value in lp.const_terms)
    b_ub = np.concatenate([lp.b_ub, [objective - const + TIE_TOL * (1.0 + abs(objective))]])
    c = np.concatenate([np.zeros(n0), slopes.ravel()])
    lb = np.concatenate([lp.lb, np.zeros(n * m)])
    ub = np.concatenate([lp.ub, np.repeat(width, m)])
    return LinearProgram(c, A_eq, b_eq, A_ub, b_ub, lb, ub, lp.terms, lp.const_terms)


@dataclass(frozen=True)
class VendorState:
    stock: np.ndarray  # [O, K] at the origins
    #: ``[O]`` the share of each origin's capacity available this week, when the vendor learns it before
    #: planning (disclosed capacity shocks); None: it plans with its nominal capacity
    capacity_share: np.ndarray | None = None
    #: the public commitment box on its block ``[H, F, K]`` this week (None: none); its plans stay inside
    bounds: PlanBounds | None = None


@dataclass(frozen=True)
class Fulfilment:
    """A vendor's execution of one week's PO."""

    shipped: np.ndarray  # [F, K]
    lane_units: np.ndarray  # [L, K]
    produced: np.ndarray  # [O, K]
    end_stock: np.ndarray  # [O, K]
    costs: dict[str, float]  # production, inbound_transport, vendor_holding (no wholesale)


class VendorAgent:
    """One vendor's agent: private production, lane and stock data, and its origin stock."""

    def __init__(self, public: PublicData, data: VendorData) -> None:
        self.public = public
        self._data = data
        self._state: VendorState | None = None
        self._kept: _EvaluationModel | None = None
        self.party = data.name
        self.index = public.vendor_index(data.name)
        #: this vendor's wholesale price of each product ``[K]`` (public)
        self.wholesale = public.wholesale[self.index]

    @property
    def nominal_capacity(self) -> np.ndarray:
        """Each origin's weekly production capacity ``P[o]`` as planned with ``[O]`` (shocks aside)."""
        return self._data.capacity

    @property
    def plan_shape(self) -> tuple[int, ...]:
        """The shape of the plan this agent answers for: its own block ``(H, F, K)``."""
        return self.public.block_shape

    def observe(self, state: VendorState) -> None:
        self._state = state
        self._kept = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_kept"] = None  # a solver's memory does not travel (the agent is pickled to its own process)
        return state

    def _evaluation_model(self) -> "_EvaluationModel":
        """This week's LP of :meth:`evaluate` (its block's bounds set per query), kept in HiGHS until the
        next :meth:`observe`."""
        if self._kept is None:
            b = LPBuilder()
            x = b.add_var(self.plan_shape)
            self.add_block(b, x)
            self._kept = _EvaluationModel(LPModel(b.build(), warm=False), x)
        return self._kept

    @property
    def state(self) -> VendorState:
        assert self._state is not None, "observe() first"
        return self._state

    def negotiator(self, options: BestResponseOptions | None = None, *, process: bool = False,
                   first_week: np.ndarray | None = None) -> Any:
        """This agent's CPP negotiator over its own block, built on its own side from its private LP
        (in its own process with ``process=True``; close it after the negotiation)."""
        # first_week [F, K]: this week's PO given; the negotiation is about the later weeks
        return process_negotiator(self, options, first_week) if process else negotiator_for(self, options, first_week)

    def add_block(self, b: LPBuilder, x: np.ndarray, state: VendorState | None = None,
                  capacity: np.ndarray | None = None, *, commitments: bool = True) -> dict[str, np.ndarray]:
        """Write ``C_v`` over its block's plan variables ``x[H,F,K]`` into ``b``; returns the private variable blocks.
        The block stays inside the state's commitment box (``commitments=False``: ignore it, as at
        execution, where what it ships is limited by the week's realised capacity).

        ``capacity`` ``[O]``: the first week's production capacity if it is not the nominal one (at
        execution, after a capacity shock); later weeks keep the nominal capacity. Without it, a state
        holding this week's ``capacity_share`` (disclosed shocks) sets the first week's capacity to that
        share of its own (reported) capacity."""
        pub, d = self.public, self._data
        state = state or self.state
        if capacity is None and state.capacity_share is not None:
            capacity = np.asarray(state.capacity_share, dtype=float) * d.capacity
        party = self.party
        H, F, K = x.shape
        O, L = d.O, d.L
        if commitments and state.bounds is not None:
            box = state.bounds.weeks(H)
            b.tighten(x, box.lower, box.upper)
        q = b.add_var((H, L, K))
        made = np.where(d.supplies, np.inf, 0.0)[None, None, :]  # it makes only the products it supplies
        p = b.add_var((H, O, K), ub=np.broadcast_to(made, (H, O, K)))
        s = b.add_var((H, O, K))
        v1 = b.add_var((H, L), ub=np.broadcast_to(d.spare_volume, (H, L)))
        v2 = b.add_var((H, L))
        for tau in range(H):
            b.add_cost(x[tau], -self.wholesale[None, :], (party, "wholesale", tau))
            b.add_cost(p[tau], d.production, (party, "production", tau))
            b.add_cost(s[tau], d.holding[:, None], (party, "vendor_holding", tau))
            b.add_cost(v1[tau], d.spare_cost, (party, "inbound_transport", tau))
            b.add_cost(v2[tau], d.truckload_cost, (party, "inbound_transport", tau))
        link = b.new_rows("eq", (H, F, K))
        b.add_terms("eq", link[:, d.lane_fc, :], q, 1.0)
        b.add_terms("eq", link, x, -1.0)
        rhs = np.zeros((H, O, K))
        rhs[0] = state.stock
        bal = b.new_rows("eq", (H, O, K), rhs)
        b.add_terms("eq", bal, s, 1.0)
        if H > 1:
            b.add_terms("eq", bal[1:], s[:-1], -1.0)
        b.add_terms("eq", bal, p, -1.0)
        b.add_terms("eq", bal[:, d.lane_origin, :], q, 1.0)
        vol = b.new_rows("ub", (H, L))
        b.add_terms("ub", vol[:, :, None], q, pub.volume[None, None, :])
        b.add_terms("ub", vol, v1, -1.0)
        b.add_terms("ub", vol, v2, -1.0)
        limit = np.broadcast_to(d.capacity, (H, O))
        if capacity is not None:
            limit = limit.copy()
            limit[0] = np.asarray(capacity, dtype=float)
        cap = b.new_rows("ub", (H, O), limit)
        b.add_terms("ub", cap[:, :, None], p, 1.0)
        return {"lane_units": q, "produced": p, "stock": s, "spare": v1, "truckload": v2}

    def preferred_plan(self, first_week: np.ndarray | None = None) -> PlanCost:
        """The vendor's own preferred block ``argmin C_v`` (the retailer's wishes ignored: what it would
        ship at the wholesale prices if it chose), or with ``first_week`` ``[F, K]`` this week's block given
        and its own best later weeks. The counterfactual of the retailer's pivot (``vcg-both``)."""
        b = LPBuilder()
        x = b.add_var(self.plan_shape)
        self.add_block(b, x)
        lp = b.build()
        if first_week is not None:
            lp = lp.with_bounds(x[0], first_week, first_week)
        sol = solve_lp(lp, raise_on_fail=False)
        if not sol.ok:
            return PlanCost.infeasible(np.zeros(self.plan_shape) if first_week is None else
                                       np.broadcast_to(first_week, self.plan_shape).copy(), self.public.horizon)
        return PlanCost.from_breakdown(sol.values(x), sol.cost_breakdown(), self.party, self.public.horizon)

    def committed_floor(self, lower: np.ndarray) -> np.ndarray:
        """The most of the commitments' lower bounds ``lower`` ``[H, F, K]`` it can still ship, by its
        (reported) model this week: the plan ``x <= lower`` with the most units in total that its stock and
        capacity allow. Equal to ``lower`` unless a capacity shock, or a week it did not build the stock a
        commitment needed, leaves it short; the world then eases this week's box to it (a commitment
        binds subject to capacity, :mod:`sim.model.commitment`)."""
        lower = np.maximum(np.asarray(lower, dtype=float), 0.0)
        b = LPBuilder()
        x = b.add_var(self.plan_shape, ub=lower)
        self.add_block(b, x, commitments=False)
        lp = b.build()
        sol = solve_lp(replace(lp, c=np.where(np.isin(np.arange(lp.n), x.ravel()), -1.0, 0.0), terms=(), const_terms=()),
                       raise_on_fail=False)
        return np.minimum(sol.values(x), lower) if sol.ok else np.zeros_like(lower)

    #: :meth:`evaluate` takes ``near`` (a policy passes it only to agents that say so: an outside agent
    #: exposing only the protocol need not)
    evaluates_near = True

    def evaluate(self, plan: np.ndarray, state: VendorState | None = None, *, allow_short: bool = False,
                 near: np.ndarray | None = None) -> PlanCost:
        """The vendor's cost of shipping its block ``plan`` ``[H, F, K]`` (net of wholesale revenue);
        infinite if it cannot.

        ``allow_short=True``: the vendor may ship less than planned, as under JIT, and ships what is
        worth shipping to it; always feasible. ``PlanCost.plan`` is then what it would ship.

        ``near`` ``[H, F, K]``: a plan close to the ones being evaluated (a menu's JIT item): the solve
        starts from the basis of ``near``'s evaluation (solved once a week, from scratch) instead of
        from scratch, several times cheaper on the pilot (1.4 ms instead of 6). The answer depends on
        ``plan`` and ``near`` alone, not on the queries before it; its total equals the one from
        scratch within solver tolerance, its split by week may differ where the vendor's LP has several
        optimal plans. Ignored with ``allow_short`` or another ``state``, or where ``near`` cannot be
        shipped."""
        kept = self._evaluation_model() if state is None or state is self._state else None
        if kept is None:
            b = LPBuilder()
            x = b.add_var(self.plan_shape)
            self.add_block(b, x, state)
            sol = solve_lp(b.build().with_bounds(x, 0.0 if allow_short else plan, plan), raise_on_fail=False)
        else:
            x = kept.x
            start = None if allow_short or near is None or not lp_module.reference_starts() else kept.reference(near)
            sol = kept.solve(kept.model.lp.with_bounds(x, 0.0 if allow_short else plan, plan), start)
        if not sol.ok:
            return PlanCost.infeasible(np.asarray(plan, dtype=float), self.public.horizon)
        shipped = sol.values(x) if allow_short else np.asarray(plan, dtype=float)
        return PlanCost.from_breakdown(shipped, sol.cost_breakdown(), self.party, self.public.horizon)

    def coarse_preference(self) -> list[str]:
        """A coarse disclosure the vendor may make: the FCs it would rather ship to (names only, no
        costs). Those reached by a lane with spare truck volume, cheapest first; else the FC with the
        cheapest lane."""
        d = self._data
        spare = np.flatnonzero(d.spare_volume > 0)
        if spare.size:
            order = spare[np.argsort(d.spare_cost[spare], kind="stable")]
        else:
            order = np.argsort(d.truckload_cost, kind="stable")[:1]
        return list(dict.fromkeys(self.public.fcs[int(d.lane_fc[lane])] for lane in order))

    def coarse_volumes(self, step: float = 100.0) -> dict[str, float]:
        """A richer coarse disclosure: for each FC of :meth:`coarse_preference` that a lane with spare
        truck volume reaches, that weekly volume (summed over such lanes), rounded to the nearest
        ``step`` (at least one step). No costs; "room for about 700 a week to DAL". FCs without spare
        volume are left out."""
        if step <= 0:
            raise ValueError(f"coarse_volumes: step must be > 0, got {step}")
        d = self._data
        out: dict[str, float] = {}
        for name in self.coarse_preference():
            f = self.public.fcs.index(name)
            room = float(d.spare_volume[d.lane_fc == f].sum())
            if room > 0:
                out[name] = max(step, step * round(room / step))
        return out

    def fulfil(self, po: np.ndarray, *, committed: bool, later: np.ndarray | None = None,
               capacity: np.ndarray | None = None, rationing: str = "cheapest",
               ranking: Sequence[int] | None = None, floor: np.ndarray | None = None) -> Fulfilment:
        """Ship this week's PO ``[F, K]`` (its block's first week) from the origins at least cost.

        Uncommitted (JIT): the vendor knows only this PO; it ships the units whose wholesale price covers
        their marginal cost and capacity allows, and shorts the rest. Committed (an agreed plan): it ships
        all it can, and with the plan's ``later`` weeks ``[H-1, F, K]`` it plans production over the
        horizon, so stock is built ahead of a capacity-bound peak the plan foresees. Only this week's
        production and shipments are executed. ``capacity`` ``[O]``: this week's realised production
        capacity (default the nominal one; :mod:`sim.execution` passes it after a capacity shock).

        ``rationing`` (committed only: which of this week's units it shorts when it cannot ship them
        all): ``cheapest`` (as many as it can, the ones cheapest to it), ``pro-rata`` (the largest
        share of every ordered FC and product first, then as many more as it can), ``priority`` (FCs in
        ``ranking`` order, FC indices most important first; unranked FCs last). When a committed PO is
        short, the shipments the rule finds equally good are tied, and a second stage chooses among
        them by a fixed criterion, the shortfall spread evenly over the ordered lines
        (:func:`rationing_tie_break`), so which lines go short does not depend on the solver's vertex.
        A PO shipped in full is the first stage's answer as it stands.

        ``floor`` ``[F, K]`` (uncommitted only): units of the PO an earlier agreement committed it to ship
        (``(1 - b) c``, :mod:`sim.model.commitment`); it ships them as far as its capacity allows, and
        of the rest what is worth shipping to it.
        """
        pub, d = self.public, self._data
        po = np.maximum(np.asarray(po, dtype=float), 0.0)
        plan = po[None] if later is None or not committed else np.concatenate([po[None], np.maximum(later, 0.0)])
        b = LPBuilder()
        x = b.add_var(plan.shape, ub=plan)
        blocks = self.add_block(b, x, capacity=capacity, commitments=False)
        big = 1e3 * (1.0 + float(np.max(d.production, initial=0)) + float(np.max(d.truckload_cost, initial=0))
                      * float(np.max(pub.volume)) + float(np.max(self.wholesale, initial=0)))
        if not committed and floor is not None and np.any(np.asarray(floor) > 0):
            # the committed floor first (a reward that dominates every real cost; not a cash flow)
            owed = b.add_var(po.shape, ub=np.minimum(np.maximum(np.asarray(floor, dtype=float), 0.0), po))
            rows = b.new_rows("ub", po.shape)
            b.add_terms("ub", rows, owed, 1.0)
            b.add_terms("ub", rows, x[0], -1.0)
            b.add_cost(owed, -2 * big, (self.party, "_contract", 0))
        if committed:
            # this week's PO first, then the later weeks of the agreed plan
            contract = (self.party, "_contract", 0)  # a reward that dominates every real cost; not a cash flow
            reward = np.full(po.shape, 2 * big)
            if rationing == "priority":  # a higher-ranked FC's unit is worth more than any cost difference
                order = list(ranking or [])
                for rank, f in enumerate(order):
                    reward[f] += 2 * big * (len(order) - rank) / (len(order) + 1)
            elif rationing == "pro-rata":  # theta: the share of every ordered line shipped, largest first
                lines = np.argwhere(po > 0)
                if len(lines):
                    theta = b.add_var((1,), ub=1.0)
                    rows = b.new_rows("ub", (len(lines),))
                    b.add_terms("ub", rows, theta[np.zeros(len(lines), dtype=int)], po[lines[:, 0], lines[:, 1]])
                    b.add_terms("ub", rows, x[0][lines[:, 0], lines[:, 1]], -1.0)
                    b.add_cost(theta, -3 * big * float(po.sum()), contract)
            elif rationing != "cheapest":
                raise ValueError(f"unknown rationing rule {rationing!r} (known: cheapest, pro-rata, priority)")
            b.add_cost(x[0], -reward, contract)
            if plan.shape[0] > 1:
                b.add_cost(x[1:], -big, contract)
        lp = b.build()
        sol = solve_lp(lp)
        if committed and float(np.maximum(po - sol.values(x)[0], 0.0).sum()) > FULL_UNITS:
            sol = solve_lp(rationing_tie_break(lp, sol.objective, x[0], po))
        costs = {
            comp: v
            for (party, comp, week), v in sol.cost_breakdown().items()
            if party == self.party and week == 0 and comp in ("production", "inbound_transport", "vendor_holding")
        }
        return Fulfilment(
            shipped=sol.values(x)[0],
            lane_units=sol.values(blocks["lane_units"])[0],
            produced=sol.values(blocks["produced"])[0],
            end_stock=sol.values(blocks["stock"])[0],
            costs=costs,
        )


@dataclass
class _EvaluationModel:
    """A vendor's LP of one week with its block ``x`` free, kept in HiGHS for :meth:`VendorAgent.evaluate`:
    a query fixes (or bounds) the block and is solved from scratch, bit for bit as a fresh LP (what the
    kept model saves is building the LP), or from the basis of a reference plan's evaluation (``near``).
    Not from the vendor's own preferred block: with the whole block fixed, HiGHS's presolve leaves a
    small LP, and on the pilot a solve from scratch took fewer iterations (435 on average, 6 ms) than
    one started from the preferred block's basis (1,147, 19 ms); from the JIT block's evaluation, 8."""

    model: LPModel
    x: np.ndarray
    _refs: dict[bytes, Any] = field(default_factory=dict)

    def reference(self, near: np.ndarray) -> Any:
        """The basis of ``near``'s evaluation (None if it cannot be shipped), solved once a week from scratch."""
        near = np.ascontiguousarray(near, dtype=float)
        key = near.tobytes()
        if key not in self._refs:
            sol = self.model.solve(self.model.lp.with_bounds(self.x, near, near), raise_on_fail=False, keep_basis=True)
            self._refs[key] = sol.basis if sol.ok else None
        return self._refs[key]

    def solve(self, lp: LinearProgram, start: Any = None) -> LPSolution:
        return self.model.solve(lp, raise_on_fail=False, start=start)
