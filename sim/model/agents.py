"""The parties' planning agents and their private cost models (docs/model.md, "Private cost models").

Each agent holds its own private data and this week's situation, and answers queries about plans;
nothing else about it is visible to policies. A plan ``x`` has shape ``(H, F, K)``: units the vendor
ships to FC ``f`` in week ``t + tau``.

* :class:`RetailerAgent` models ``C_R``: wholesale and receiving cost of what is shipped, FC holding,
  outbound shipping to regions at least cost, lost sales (or backlog) penalties, and a terminal credit
  for stock left at the end of the horizon. ``preferred_plan()`` is its JIT plan ``argmin C_R``;
  ``fcs_serving(region)`` names the FCs with an outbound route to a region (retailer-side
  information the retailer may use when it builds a menu; no costs).
* :class:`VendorAgent` models ``C_V``: production within weekly capacity, origin stock, lane costs
  (a scheduled truck's spare volume at a low marginal rate, then full-truckload rates), minus the
  wholesale revenue. ``fulfil(po)`` is its response to a purchase order.
* :func:`joint_plan` is the first-best oracle: it reads both private models at once, which no
  implementable mechanism may do; it is a benchmark only.

Both agents also expose ``add_block(builder, x)``, which writes their cost model into an LP over a
given block of plan variables; the CPP coordinator's best-response solvers are built from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.model.data import PublicData, RetailerData, VendorData
from sim.model.lp import LinearProgram, LPBuilder, solve_lp

RETAILER = "retailer"
VENDOR = "vendor"
#: Per-unit reward for shipping an agreed PO in the vendor's fulfilment LP: dominates every real cost,
#: so a committed vendor ships all it can. Not a cash flow; never reaches the ledger.
_CONTRACT_LABEL = (VENDOR, "_contract", 0)


@dataclass(frozen=True)
class RetailerState:
    """What the retailer knows at planning time in week t (all public to the retailer only)."""

    stock: np.ndarray  # [F, K] on hand after this week's arrivals
    pipeline: np.ndarray  # [H, F, K] in-transit units expected to arrive in week t+tau (tau=0 is zero)
    backlog: np.ndarray  # [R, K] unmet demand carried over (zeros under lost sales)


@dataclass(frozen=True)
class VendorState:
    stock: np.ndarray  # [O, K] at the origins


@dataclass(frozen=True)
class PlanCost:
    """A party's cost of a plan: total, by week of the horizon, and by (component, week)."""

    plan: np.ndarray
    total: float
    by_week: np.ndarray
    breakdown: dict[tuple[str, int], float]
    feasible: bool = True

    @staticmethod
    def infeasible(plan: np.ndarray, horizon: int) -> "PlanCost":
        return PlanCost(plan, np.inf, np.full(horizon, np.inf), {}, feasible=False)


def _plan_cost(plan: np.ndarray, breakdown: dict[tuple[str, str, int], float], party: str, horizon: int) -> PlanCost:
    mine = {(comp, week): v for (p, comp, week), v in breakdown.items() if p == party and not comp.startswith("_")}
    by_week = np.zeros(horizon)
    for (_, week), v in mine.items():
        by_week[week] += v
    return PlanCost(plan, float(by_week.sum()), by_week, mine)


class RetailerAgent:
    """The retailer's agent: private costs, this week's stock, pipeline and forecast."""

    party = RETAILER

    def __init__(self, public: PublicData, data: RetailerData) -> None:
        self.public = public
        self._data = data
        self._state: RetailerState | None = None
        self._forecast: np.ndarray | None = None

    def observe(self, state: RetailerState, forecast: np.ndarray) -> None:
        """Set this week's situation; ``forecast`` is ``[H, R, K]`` expected demand."""
        self._state = state
        self._forecast = np.asarray(forecast, dtype=float)

    @property
    def state(self) -> RetailerState:
        assert self._state is not None, "observe() first"
        return self._state

    @property
    def forecast(self) -> np.ndarray:
        assert self._forecast is not None, "observe() first"
        return self._forecast

    def fcs_serving(self, region: str) -> list[str]:
        """The FCs that serve ``region``: those with an outbound route to it, cheapest outbound cost
        per unit first (ties in FC order). Empty if no FC reaches it.

        This is retailer-side information: its outbound network and costs are the retailer's own data,
        so a policy acting for the retailer may use it, for example when it builds its menu of
        contracts (:func:`policies.menu.region_fcs`). The costs themselves are not returned."""
        regions = list(self.public.regions)
        if region not in regions:
            raise ValueError(f"fcs_serving: unknown region {region!r} (regions: {regions})")
        outbound = self._data.outbound[:, regions.index(region)]
        reach = np.flatnonzero(np.isfinite(outbound))
        return [self.public.fcs[int(f)] for f in reach[np.argsort(outbound[reach], kind="stable")]]

    # -- the cost model as an LP block ----------------------------------------------------------
    def add_block(
        self,
        b: LPBuilder,
        x: np.ndarray,
        state: RetailerState | None = None,
        demand: np.ndarray | None = None,
        *,
        terminal: bool = True,
    ) -> dict[str, np.ndarray]:
        """Write ``C_R`` over plan variables ``x[H,F,K]`` into ``b``; returns the private variable blocks."""
        pub, d = self.public, self._data
        state = state or self.state
        demand = self.forecast if demand is None else demand
        H, F, K = x.shape
        R = pub.R
        beta = 1.0 if pub.backlog else 0.0
        arc = np.isfinite(d.outbound)  # [F, R]
        inv = b.add_var((H, F, K))
        y = b.add_var((H, F, R, K), ub=np.where(arc, np.inf, 0.0)[None, :, :, None] * np.ones((H, 1, 1, K)))
        u = b.add_var((H, R, K))
        weeks = np.arange(H)
        for tau in weeks:  # cost terms are labelled by the week they fall in
            b.add_cost(x[tau], pub.wholesale[None, :], (RETAILER, "wholesale", int(tau)))
            for f in range(F):  # receiving is paid on arrival, as in the ledger (after the horizon: its last week)
                arrival = min(int(tau + pub.lead_time[f]), H - 1)
                b.add_cost(x[tau, f], d.receiving[f], (RETAILER, "receiving", arrival))
            b.add_cost(inv[tau], d.holding[None, :], (RETAILER, "holding", int(tau)))
            b.add_cost(y[tau], np.where(arc, d.outbound, 0.0)[:, :, None], (RETAILER, "outbound", int(tau)))
            b.add_cost(u[tau], d.penalty[None, :], (RETAILER, "lost_sales", int(tau)))
        if terminal and d.terminal_value > 0:
            # End-of-horizon stock saves buying it again, but only as far as it will be sold: up to one
            # more week of forecast demand per product is credited at terminal_value * w_k. An uncapped
            # credit would make stock-piling look socially profitable whenever it exceeds the vendor's
            # cost to make and ship a unit.
            credit = b.add_var((F, K))
            b.add_cost(credit, -d.terminal_value * pub.wholesale[None, :], (RETAILER, "terminal", H - 1))
            own = b.new_rows("ub", (F, K))
            b.add_terms("ub", own, credit, 1.0)
            b.add_terms("ub", own, inv[H - 1], -1.0)
            last_week = np.asarray(demand[H - 1], dtype=float).sum(axis=0)  # [K]
            tot = b.new_rows("ub", (K,), last_week)
            b.add_terms("ub", tot[None, :], credit, 1.0)
        # stock balance: I[tau] - I[tau-1] + sum_r y[tau] - arrivals(x) = pipeline (+ stock at tau=0)
        rhs = state.pipeline[:H].copy()
        rhs[0] += state.stock
        bal = b.new_rows("eq", (H, F, K), rhs)
        b.add_terms("eq", bal, inv, 1.0)
        if H > 1:
            b.add_terms("eq", bal[1:], inv[:-1], -1.0)
        b.add_terms("eq", bal[:, :, None, :], y, 1.0)
        for f in range(F):
            lead = int(pub.lead_time[f])
            if lead < H:
                b.add_terms("eq", bal[lead:, f, :], x[: H - lead, f, :], -1.0)
        # demand: sum_f y + u[tau] - beta u[tau-1] = d (+ beta backlog at tau=0)
        drhs = np.array(demand[:H], dtype=float)
        drhs[0] += beta * state.backlog
        dem = b.new_rows("eq", (H, R, K), drhs)
        b.add_terms("eq", dem[:, None, :, :], y, 1.0)
        b.add_terms("eq", dem, u, 1.0)
        if beta and H > 1:
            b.add_terms("eq", dem[1:], u[:-1], -beta)
        capped = np.flatnonzero(np.isfinite(pub.receiving_capacity))
        if capped.size:
            cap = b.new_rows("ub", (H, capped.size), pub.receiving_capacity[capped][None, :])
            b.add_terms("ub", cap[:, :, None], x[:, capped, :], 1.0)
        return {"stock": inv, "outbound": y, "unmet": u}

    def _lp(self, state: RetailerState | None = None, demand: np.ndarray | None = None) -> tuple[LinearProgram, np.ndarray]:
        horizon = self.public.horizon if demand is None else int(np.shape(demand)[0])
        b = LPBuilder()
        x = b.add_var((horizon, self.public.F, self.public.K))
        self.add_block(b, x, state, demand)
        return b.build(), x

    def cost_with_first_week(self, po: np.ndarray, demand: np.ndarray | None = None, state: RetailerState | None = None) -> PlanCost:
        """The retailer's cost by week when this week's PO is ``po`` ``[F, K]`` and it follows its own
        (JIT) plan afterwards, on ``demand`` ``[H, R, K]`` (default: its forecast). Week 0 of the result
        is ``c^R_t``; the later weeks sum to ``V^R_{t+1}`` from the state that ``po`` leads to."""
        lp, x = self._lp(state, demand)
        sol = solve_lp(lp.with_bounds(x[0], po, po))
        return _plan_cost(sol.values(x), sol.cost_breakdown(), RETAILER, x.shape[0])

    # -- queries ----------------------------------------------------------------------------------
    def preferred_plan(
        self,
        state: RetailerState | None = None,
        demand: np.ndarray | None = None,
        *,
        inbound_discount: np.ndarray | None = None,
        discount_cap: np.ndarray | None = None,
    ) -> PlanCost:
        """The retailer's own optimal plan ``x^J = argmin C_R`` (JIT), and its cost.

        ``inbound_discount`` ``[F]``: a virtual discount on units shipped to each FC, as a fraction of each
        product's wholesale price in (-1, 1), used to generate alternative plans (menu candidates). A
        positive entry applies, with ``discount_cap`` ``[F]``, only to the first ``cap`` units of truck
        volume per week; a negative entry is a surcharge on every unit. The returned cost is the true
        ``C_R`` of the plan."""
        if inbound_discount is None:
            lp, x = self._lp(state, demand)
        else:
            disc = np.asarray(inbound_discount, dtype=float)
            if np.any(np.abs(disc) >= 1):
                raise ValueError(f"inbound_discount fractions must be in (-1, 1), got {disc}")
            b = LPBuilder()
            horizon = self.public.horizon if demand is None else int(np.shape(demand)[0])
            shape = (horizon, self.public.F, self.public.K)
            w = self.public.wholesale[None, None, :]
            x = b.add_var(shape)
            self.add_block(b, x, state, demand)
            b.add_cost(x, np.minimum(disc, 0.0)[None, :, None] * -w, (RETAILER, "_incentive", 0))
            # e: discounted units, at most the units shipped; their volume at most the cap per week
            e = b.add_var(shape)
            b.add_cost(e, -np.maximum(disc, 0.0)[None, :, None] * w, (RETAILER, "_incentive", 0))
            own = b.new_rows("ub", shape)
            b.add_terms("ub", own, e, 1.0)
            b.add_terms("ub", own, x, -1.0)
            if discount_cap is not None:
                cap = np.asarray(discount_cap, dtype=float)
                capped = np.flatnonzero(np.isfinite(cap))
                rows = b.new_rows("ub", (horizon, capped.size), cap[capped][None, :])
                b.add_terms("ub", rows[:, :, None], e[:, capped, :], self.public.volume[None, None, :])
            lp = b.build()
        sol = solve_lp(lp)
        return _plan_cost(sol.values(x), sol.cost_breakdown(), RETAILER, x.shape[0])

    def evaluate(self, plan: np.ndarray, state: RetailerState | None = None, demand: np.ndarray | None = None) -> PlanCost:
        """The retailer's cost if the vendor ships ``plan`` (it still routes outbound optimally)."""
        lp, x = self._lp(state, demand)
        sol = solve_lp(lp.with_bounds(x, plan, plan))
        return _plan_cost(np.asarray(plan, dtype=float), sol.cost_breakdown(), RETAILER, x.shape[0])

    def serve_demand(self, stock: np.ndarray, demand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Execution: serve this week's regional demand ``[R, K]`` from FC ``stock`` ``[F, K]`` at least
        outbound plus penalty cost. Returns shipments ``y[F, R, K]`` and unmet demand ``[R, K]``."""
        d = self._data
        F, K = stock.shape
        R = self.public.R
        arc = np.isfinite(d.outbound)
        b = LPBuilder()
        y = b.add_var((F, R, K), ub=np.where(arc, np.inf, 0.0)[:, :, None] * np.ones((1, 1, K)))
        u = b.add_var((R, K))
        b.add_cost(y, np.where(arc, d.outbound, 0.0)[:, :, None], (RETAILER, "outbound", 0))
        b.add_cost(u, d.penalty[None, :], (RETAILER, "lost_sales", 0))
        cap = b.new_rows("ub", (F, K), stock)
        b.add_terms("ub", cap[:, None, :], y, 1.0)
        dem = b.new_rows("eq", (R, K), demand)
        b.add_terms("eq", dem[None, :, :], y, 1.0)
        b.add_terms("eq", dem, u, 1.0)
        sol = solve_lp(b.build())
        return sol.values(y), sol.values(u)

    # execution-time costs the world charges with the retailer's private prices
    def realised_costs(self, arrivals: np.ndarray, end_stock: np.ndarray, outbound: np.ndarray, unmet: np.ndarray) -> dict[str, float]:
        d = self._data
        return {
            "receiving": float(np.sum(d.receiving[:, None] * arrivals)),
            "holding": float(np.sum(d.holding[None, :] * end_stock)),
            "outbound": float(np.sum(np.where(np.isfinite(d.outbound), d.outbound, 0.0)[:, :, None] * outbound)),
            "lost_sales": float(np.sum(d.penalty[None, :] * unmet)),
        }


@dataclass(frozen=True)
class Fulfilment:
    """The vendor's execution of one week's PO."""

    shipped: np.ndarray  # [F, K]
    lane_units: np.ndarray  # [L, K]
    produced: np.ndarray  # [O, K]
    end_stock: np.ndarray  # [O, K]
    costs: dict[str, float]  # production, inbound_transport, vendor_holding (no wholesale)


class VendorAgent:
    """The vendor's agent: private production, lane and stock data, and its origin stock."""

    party = VENDOR

    def __init__(self, public: PublicData, data: VendorData) -> None:
        self.public = public
        self._data = data
        self._state: VendorState | None = None

    def observe(self, state: VendorState) -> None:
        self._state = state

    @property
    def state(self) -> VendorState:
        assert self._state is not None, "observe() first"
        return self._state

    def add_block(self, b: LPBuilder, x: np.ndarray, state: VendorState | None = None) -> dict[str, np.ndarray]:
        """Write ``C_V`` over plan variables ``x[H,F,K]`` into ``b``; returns the private variable blocks."""
        pub, d = self.public, self._data
        state = state or self.state
        H, F, K = x.shape
        O, L = d.O, d.L
        q = b.add_var((H, L, K))
        p = b.add_var((H, O, K))
        s = b.add_var((H, O, K))
        v1 = b.add_var((H, L), ub=np.broadcast_to(d.spare_volume, (H, L)))
        v2 = b.add_var((H, L))
        for tau in range(H):
            b.add_cost(x[tau], -pub.wholesale[None, :], (VENDOR, "wholesale", tau))
            b.add_cost(p[tau], d.production, (VENDOR, "production", tau))
            b.add_cost(s[tau], d.holding[:, None], (VENDOR, "vendor_holding", tau))
            b.add_cost(v1[tau], d.spare_cost, (VENDOR, "inbound_transport", tau))
            b.add_cost(v2[tau], d.truckload_cost, (VENDOR, "inbound_transport", tau))
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
        cap = b.new_rows("ub", (H, O), np.broadcast_to(d.capacity, (H, O)))
        b.add_terms("ub", cap[:, :, None], p, 1.0)
        return {"lane_units": q, "produced": p, "stock": s, "spare": v1, "truckload": v2}

    def evaluate(self, plan: np.ndarray, state: VendorState | None = None, *, allow_short: bool = False) -> PlanCost:
        """The vendor's cost of shipping ``plan`` (net of wholesale revenue); infinite if it cannot.

        ``allow_short=True``: the vendor may ship less than planned, as under JIT, and ships what is
        worth shipping to it; always feasible. ``PlanCost.plan`` is then what it would ship."""
        b = LPBuilder()
        x = b.add_var(self.public.shape)
        self.add_block(b, x, state)
        lp = b.build().with_bounds(x, 0.0 if allow_short else plan, plan)
        sol = solve_lp(lp, raise_on_fail=False)
        if not sol.ok:
            return PlanCost.infeasible(np.asarray(plan, dtype=float), self.public.horizon)
        shipped = sol.values(x) if allow_short else np.asarray(plan, dtype=float)
        return _plan_cost(shipped, sol.cost_breakdown(), VENDOR, self.public.horizon)

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

    def fulfil(self, po: np.ndarray, *, committed: bool, later: np.ndarray | None = None) -> Fulfilment:
        """Ship this week's PO ``[F, K]`` from the origins at least cost.

        Uncommitted (JIT): the vendor knows only this PO; it ships the units whose wholesale price covers
        their marginal cost and capacity allows, and shorts the rest. Committed (an agreed plan): it ships
        all it can, and with the plan's ``later`` weeks ``[H-1, F, K]`` it plans production over the
        horizon, so stock is built ahead of a capacity-bound peak the plan foresees. Only this week's
        production and shipments are executed.
        """
        pub, d = self.public, self._data
        po = np.maximum(np.asarray(po, dtype=float), 0.0)
        plan = po[None] if later is None or not committed else np.concatenate([po[None], np.maximum(later, 0.0)])
        b = LPBuilder()
        x = b.add_var(plan.shape, ub=plan)
        blocks = self.add_block(b, x)
        if committed:
            big = 1e3 * (1.0 + float(np.max(d.production, initial=0)) + float(np.max(d.truckload_cost, initial=0))
                          * float(np.max(pub.volume)) + float(np.max(pub.wholesale, initial=0)))
            # this week's PO first, then the later weeks of the agreed plan
            b.add_cost(x[0], -2 * big, _CONTRACT_LABEL)
            if plan.shape[0] > 1:
                b.add_cost(x[1:], -big, _CONTRACT_LABEL)
        sol = solve_lp(b.build())
        costs = {
            comp: v
            for (party, comp, week), v in sol.cost_breakdown().items()
            if party == VENDOR and week == 0 and comp in ("production", "inbound_transport", "vendor_holding")
        }
        return Fulfilment(
            shipped=sol.values(x)[0],
            lane_units=sol.values(blocks["lane_units"])[0],
            produced=sol.values(blocks["produced"])[0],
            end_stock=sol.values(blocks["stock"])[0],
            costs=costs,
        )


@dataclass(frozen=True)
class JointPlan:
    plan: np.ndarray
    social_cost: float
    retailer: PlanCost
    vendor: PlanCost


def joint_plan(retailer: RetailerAgent, vendor: VendorAgent) -> JointPlan:
    """First-best oracle: ``argmin C_R + C_V`` with both private models in one LP (HiGHS)."""
    b = LPBuilder()
    x = b.add_var(retailer.public.shape)
    retailer.add_block(b, x)
    vendor.add_block(b, x)
    sol = solve_lp(b.build())
    plan = sol.values(x)
    br = sol.cost_breakdown()
    H = retailer.public.horizon
    r, v = _plan_cost(plan, br, RETAILER, H), _plan_cost(plan, br, VENDOR, H)
    return JointPlan(plan, r.total + v.total, r, v)
