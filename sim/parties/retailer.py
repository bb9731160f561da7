"""The retailer's agent: its private cost model ``C_R`` and the planning queries it answers.

:class:`RetailerAgent` models ``C_R``: wholesale (each vendor's price for what that vendor ships) and
receiving cost of what is shipped, FC holding, outbound shipping to regions at least cost, lost sales
(or backlog) penalties, and a terminal credit for stock left at the end of the horizon. Its plan is the
whole plan ``x[V, H, F, K]``: arrivals from every vendor add up at its FCs. ``preferred_plan()`` is its
JIT plan ``argmin C_R`` over all vendors at their wholesale prices; ``fcs_serving(region)`` names the FCs
with an outbound route to a region (retailer-side information for building a menu; no costs).

What a user may do: ask it the queries of :class:`sim.model.decision.RetailerPlanner`. ``add_block``
writes its cost model into an LP; only the agent's own negotiator (:meth:`RetailerAgent.negotiator`)
and the first-best oracle (:mod:`sim.parties.oracle`) use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from sim.model.commitment import PlanBounds
import sim.model.lp as lp_module
from sim.model.data import PublicData, RetailerData
from sim.model.lp import LinearProgram, LPBuilder, LPModel, LPSolution, solve_lp
from sim.model.plan_cost import PlanCost
from sim.negotiation.best_response import BestResponseOptions, negotiator_for, process_negotiator

RETAILER = "retailer"

#: Re-solve the week's LP on a demand path from the previous query's basis (fast) instead of from
#: scratch. Off by default. The retailer's LP has many optimal plans that differ only in which week a
#: cost falls in, and a warm start stops at another of them than a solve from scratch would; the CBT
#: uses that split. So with the switch on, a query on a demand path is answered in two warm-started
#: solves: the optimum, then, among the optimal plans, one with the least first-week cost (a defined
#: split, the same whichever way the solver gets there, but not the one today's goldens record).
#: Queries on the forecast (whose plans the menu uses) are answered as :data:`sim.model.lp.LP_STARTS` says. See
#: docs/performance.md.
WARM_START_LPS = False


@dataclass(frozen=True)
class RetailerState:
    """What the retailer knows at planning time in week t (all public to the retailer only)."""

    stock: np.ndarray  # [F, K] on hand after this week's arrivals
    pipeline: np.ndarray  # [H, F, K] in-transit units expected to arrive in week t+tau (tau=0 is zero)
    backlog: np.ndarray  # [R, K] unmet demand carried over (zeros under lost sales)
    #: the public commitment box on this week's plan ``[V, H, F, K]`` (None: no committed week in the
    #: horizon); every plan the agent computes stays inside it (:mod:`sim.model.commitment`)
    bounds: PlanBounds | None = None


class RetailerAgent:
    """The retailer's agent: private costs, this week's stock, pipeline and forecast."""

    party = RETAILER
    #: its negotiator's certificate checks solve its cost of the plan from the basis of its dual LP
    #: (:class:`sim.negotiation.best_response.LPBestResponse`): on the pilot benchmark 0.26 s instead of
    #: 0.7 s, the same value. (A vendor's LP, whose plan is fixed far from its dual LP's vertex, is
    #: slower that way: 1.1 s instead of 0.15 s, so the vendor's agent does not.)
    warm_checks = True
    #: its cost falls apart by product: with agents in processes, its negotiator's parts
    #: (:mod:`sim.negotiation.parts`, answer option ``parts``) each run in a worker of their own
    separable = True

    def __init__(self, public: PublicData, data: RetailerData) -> None:
        self.public = public
        self._data = data
        self._state: RetailerState | None = None
        self._forecast: np.ndarray | None = None
        # this week's LP by horizon (and "discount": the LP of plans under a virtual discount), kept in
        # HiGHS between queries
        self._models: dict[Any, Any] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_models"] = {}  # a solver's memory does not travel (the agent is pickled to its own process)
        return state

    @property
    def plan_shape(self) -> tuple[int, ...]:
        """The shape of the plan this agent answers for: the whole plan ``(V, H, F, K)``."""
        return self.public.shape

    def observe(self, state: RetailerState, forecast: np.ndarray) -> None:
        """Set this week's situation; ``forecast`` is ``[H, R, K]`` expected demand."""
        self._state = state
        self._forecast = np.asarray(forecast, dtype=float)
        self._models = {}

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

    def negotiator(self, options: BestResponseOptions | None = None, *, process: bool = False,
                   first_week: np.ndarray | None = None) -> Any:
        """This agent's CPP negotiator, built on its own side from its private LP (in its own process
        with ``process=True``; close it after the negotiation)."""
        # first_week [V, F, K]: this week's PO given; the negotiation is about the later weeks
        return process_negotiator(self, options, first_week) if process else negotiator_for(self, options, first_week)

    # -- the cost model as an LP block ----------------------------------------------------------
    def add_block(
        self,
        b: LPBuilder,
        x: np.ndarray,
        state: RetailerState | None = None,
        demand: np.ndarray | None = None,
        *,
        terminal: bool = True,
        demand_rows: dict[str, np.ndarray] | None = None,
        commitments: bool = True,
    ) -> dict[str, np.ndarray]:
        """Write ``C_R`` over plan variables ``x[V,H,F,K]`` into ``b``; returns the private variable blocks.
        The plan stays inside the state's commitment box (``commitments=False``: ignore it).
        ``demand_rows``: if given, filled with the rows whose right-hand sides are demand (``"eq"``, the
        demand balances) and its last week (``"ub"``, the cap on the terminal credit), for
        :func:`demand_rhs`."""
        pub, d = self.public, self._data
        state = state or self.state
        demand = self.forecast if demand is None else demand
        V, H, F, K = x.shape
        R = pub.R
        beta = 1.0 if pub.backlog else 0.0
        if commitments and state.bounds is not None:
            box = state.bounds.weeks(H)
            b.tighten(x, box.lower, box.upper)
        arc = np.isfinite(d.outbound)  # [F, R]
        inv = b.add_var((H, F, K))
        y = b.add_var((H, F, R, K), ub=np.where(arc, np.inf, 0.0)[None, :, :, None] * np.ones((H, 1, 1, K)))
        u = b.add_var((H, R, K))
        weeks = np.arange(H)
        for tau in weeks:  # cost terms are labelled by the week they fall in
            b.add_cost(x[:, tau], pub.wholesale[:, None, :], (RETAILER, "wholesale", int(tau)))
            for f in range(F):  # receiving is paid on arrival, as in the ledger (after the horizon: its last week)
                arrival = min(int(tau + pub.lead_time[f]), H - 1)
                b.add_cost(x[:, tau, f], d.receiving[f], (RETAILER, "receiving", arrival))
            b.add_cost(inv[tau], d.holding[None, :], (RETAILER, "holding", int(tau)))
            b.add_cost(y[tau], np.where(arc, d.outbound, 0.0)[:, :, None], (RETAILER, "outbound", int(tau)))
            b.add_cost(u[tau], d.penalty[None, :], (RETAILER, "lost_sales", int(tau)))
        if terminal and d.terminal_value > 0:
            # End-of-horizon stock saves buying it again, but only as far as it will be sold: up to one
            # more week of forecast demand per product is credited at terminal_value * w_k (the lowest
            # price any vendor asks for it). An uncapped credit would make stock-piling look socially
            # profitable whenever it exceeds the vendor's cost to make and ship a unit.
            credit = b.add_var((F, K))
            b.add_cost(credit, -d.terminal_value * replacement_price(pub)[None, :], (RETAILER, "terminal", H - 1))
            own = b.new_rows("ub", (F, K))
            b.add_terms("ub", own, credit, 1.0)
            b.add_terms("ub", own, inv[H - 1], -1.0)
            tot = b.new_rows("ub", (K,), demand_rhs(demand[:H], state.backlog, beta)[1])
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
                for v in range(V):  # every vendor's shipments arrive at the same FC
                    b.add_terms("eq", bal[lead:, f, :], x[v, : H - lead, f, :], -1.0)
        # demand: sum_f y + u[tau] - beta u[tau-1] = d (+ beta backlog at tau=0)
        dem = b.new_rows("eq", (H, R, K), demand_rhs(demand[:H], state.backlog, beta)[0])
        b.add_terms("eq", dem[:, None, :, :], y, 1.0)
        b.add_terms("eq", dem, u, 1.0)
        if demand_rows is not None:
            demand_rows["eq"] = dem
            if terminal and d.terminal_value > 0:
                demand_rows["ub"] = tot
        if beta and H > 1:
            b.add_terms("eq", dem[1:], u[:-1], -beta)
        capped = np.flatnonzero(np.isfinite(pub.receiving_capacity))
        if capped.size:
            cap = b.new_rows("ub", (H, capped.size), pub.receiving_capacity[capped][None, :])
            b.add_terms("ub", cap[None, :, :, None], x[:, :, capped, :], 1.0)
        unsupplied = np.argwhere(~pub.supplies)  # (v, k) pairs: nothing to order from that vendor
        if unsupplied.size:
            none = x[unsupplied[:, 0], :, :, unsupplied[:, 1]]  # [pairs, H, F]
            rows = b.new_rows("ub", none.shape)
            b.add_terms("ub", rows, none, 1.0)
        return {"stock": inv, "outbound": y, "unmet": u}

    def _lp(self, state: RetailerState | None = None, demand: np.ndarray | None = None) -> tuple[LinearProgram, np.ndarray]:
        horizon = self.public.horizon if demand is None else int(np.shape(demand)[0])
        b = LPBuilder()
        x = b.add_var((self.public.V, horizon, self.public.F, self.public.K))
        self.add_block(b, x, state, demand)
        return b.build(), x

    def _week_model(self, state: RetailerState | None, demand: np.ndarray | None) -> "_WeekModel | None":
        """This week's LP on ``demand``'s horizon, kept in HiGHS (:class:`sim.model.lp.LPModel`): built at
        the first query of the week and re-solved for every other PO, plan and demand path, changing only
        bounds and demand right-hand sides. None for a query about another state than this week's."""
        if state is not None and state is not self._state:
            return None
        horizon = self.public.horizon if demand is None else int(np.shape(demand)[0])
        model = self._models.get(horizon)
        if model is None:
            b = LPBuilder()
            x = b.add_var((self.public.V, horizon, self.public.F, self.public.K))
            rows: dict[str, np.ndarray] = {}
            self.add_block(b, x, None, self.forecast[:horizon] if demand is None else demand, demand_rows=rows)
            model = self._models[horizon] = _WeekModel(LPModel(b.build(), warm=False), x, rows, 1.0 if self.public.backlog else 0.0)
        return model

    def _solve_on(self, demand: np.ndarray | None, state: RetailerState | None, idx_of: Any, values: np.ndarray,
                  bounds: PlanBounds | None = None) -> tuple[Any, np.ndarray]:
        """Solve this week's LP on ``demand`` with variables ``idx_of(x)`` fixed to ``values`` (and the plan
        inside ``bounds`` as well as its state's commitments)."""
        week = self._week_model(state, demand)
        if week is None:
            lp, x = self._lp(state, demand)
            return solve_lp(_within(lp, x, bounds).with_bounds(idx_of(x), values, values)), x
        on = week.on(self.forecast if demand is None else demand, self.state.backlog)
        lp = _within(on, week.x, bounds).with_bounds(idx_of(week.x), values, values)
        if demand is not None and WARM_START_LPS:
            return week.least_first_week(lp), week.x
        if not lp_module.reference_starts():
            return week.model.solve(lp), week.x
        return week.from_reference(lp, on, week.on(self.forecast, self.state.backlog)), week.x

    def cost_with_first_week(self, po: np.ndarray, demand: np.ndarray | None = None, state: RetailerState | None = None,
                             bounds: PlanBounds | None = None) -> PlanCost:
        """The retailer's cost by week when this week's PO is ``po`` ``[V, F, K]`` and it follows its own
        (JIT) plan afterwards, on ``demand`` ``[H, R, K]`` (default: its forecast). Week 0 of the result
        is ``c^R_t``; the later weeks sum to ``V^R_{t+1}`` from the state that ``po`` leads to. The later
        weeks stay inside the commitments its state holds and, if given, inside ``bounds`` ``[V, H, F, K]``
        (what an agreement would commit them to: :func:`sim.model.commitment.agreed_box`).
        The CBT asks this once per PO and demand path: each query re-solves this week's LP, kept in HiGHS,
        with only the first week's bounds and the demand changed, from the week's reference basis for
        that demand (:data:`sim.model.lp.LP_STARTS`), so the answer does not depend on the queries asked before it."""
        sol, x = self._solve_on(demand, state, lambda x: x[:, 0], po, bounds)
        return PlanCost.from_breakdown(sol.values(x), sol.cost_breakdown(), RETAILER, x.shape[1])

    # -- queries ----------------------------------------------------------------------------------
    def preferred_plan(
        self,
        state: RetailerState | None = None,
        demand: np.ndarray | None = None,
        *,
        inbound_discount: np.ndarray | None = None,
        discount_cap: np.ndarray | None = None,
        only: np.ndarray | None = None,
    ) -> PlanCost:
        """The retailer's own optimal plan ``x^J = argmin C_R`` (JIT) over all vendors, and its cost.

        ``inbound_discount`` ``[F]``: a virtual discount on units shipped to each FC, as a fraction of each
        product's wholesale price in (-1, 1), used to generate alternative plans (menu candidates). A
        positive entry applies, with ``discount_cap`` ``[F]``, only to the first ``cap`` units of truck
        volume per week; a negative entry is a surcharge on every unit. ``only`` ``[V]`` bool: the
        vendors the discount applies to (default all). The returned cost is the true ``C_R`` of the plan."""
        if inbound_discount is None:
            week = self._week_model(state, demand) if demand is None else None
            if week is None:
                lp, x = self._lp(state, demand)
                sol = solve_lp(lp)
            else:  # this week's own plan on the forecast: the week model's first solve (from scratch)
                sol, x = week.own(week.on(self.forecast, self.state.backlog)), week.x
            return PlanCost.from_breakdown(sol.values(x), sol.cost_breakdown(), RETAILER, x.shape[1])
        disc = np.asarray(inbound_discount, dtype=float)
        if np.any(np.abs(disc) >= 1):
            raise ValueError(f"inbound_discount fractions must be in (-1, 1), got {disc}")
        pub = self.public
        which = np.ones(pub.V, dtype=bool) if only is None else np.asarray(only, dtype=bool)
        w = np.where(which[:, None], pub.wholesale, 0.0)[:, None, None, :]
        cap = np.full(pub.F, np.inf) if discount_cap is None else np.asarray(discount_cap, dtype=float)
        kept = self._discount_model() if (state is None or state is self._state) and demand is None else None
        base = kept if kept is not None else _DiscountModel.build(self, state, demand)
        lp, x, e = base.lp, base.x, base.e
        # the surcharge (negative entries) on every unit x; the discount (positive) on the units e, whose
        # volume is capped per week at each FC with a finite cap (the other FCs' cap rows are free)
        c = lp.c.copy()
        c[x.ravel()] += (np.minimum(disc, 0.0)[None, None, :, None] * -w * np.ones(x.shape)).ravel()
        c[e.ravel()] = (-np.maximum(disc, 0.0)[None, None, :, None] * w * np.ones(e.shape)).ravel()
        b_ub = lp.b_ub.copy()
        b_ub[base.cap_rows.ravel()] = np.broadcast_to(cap[None, :], base.cap_rows.shape).ravel()
        lp = replace(lp, c=c, b_ub=b_ub)  # its labelled terms are the true C_R's (the incentive is a device)
        sol = base.solve(lp)
        return PlanCost.from_breakdown(sol.values(x), sol.cost_breakdown(), RETAILER, x.shape[1])

    def _discount_model(self) -> "_DiscountModel":
        """This week's LP of the plans under a virtual discount (:meth:`preferred_plan`), kept in HiGHS
        with its reference basis (the plan without discount) like :meth:`_week_model`'s."""
        model = self._models.get("discount")
        if model is None:
            model = self._models["discount"] = _DiscountModel.build(self, None, None, keep=True)
        return model

    def evaluate(self, plan: np.ndarray, state: RetailerState | None = None, demand: np.ndarray | None = None) -> PlanCost:
        """The retailer's cost if the vendors ship ``plan`` ``[V, H, F, K]`` (it still routes outbound optimally)."""
        sol, x = self._solve_on(demand, state, lambda x: x, plan)
        return PlanCost.from_breakdown(np.asarray(plan, dtype=float), sol.cost_breakdown(), RETAILER, x.shape[1])

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


def _within(lp: LinearProgram, x: np.ndarray, bounds: PlanBounds | None) -> LinearProgram:
    """``lp`` with the plan variables ``x`` ``[V, h, F, K]`` also inside ``bounds`` (None: ``lp`` itself)."""
    if bounds is None:
        return lp
    box = bounds.weeks(x.shape[1])
    return lp.with_bounds(x, np.maximum(lp.lb[x], box.lower), np.minimum(lp.ub[x], box.upper))


def demand_rhs(demand: np.ndarray, backlog: np.ndarray, beta: float) -> tuple[np.ndarray, np.ndarray]:
    """The right-hand sides demand sets in the retailer's LP: the demand balances ``[H, R, K]`` (this
    week's plus ``beta`` times the backlog carried in) and the cap on the terminal credit ``[K]`` (the
    last week's demand over all regions)."""
    d = np.array(demand, dtype=float)
    d[0] += beta * backlog
    return d, np.asarray(demand[-1], dtype=float).sum(axis=0)


#: How many LP columns the retailer keeps in HiGHS models per demand (one model per demand it is asked
#: about, up to this many columns in all; the queries on other demands share one model). Memory: about
#: 2.3 MB a model on the pilot (4,900 columns), 35 MB on pilot-full (81,000: nine models, the forecast
#: and eight demand paths, about 320 MB until the next week's ``observe``).
KEPT_COLUMNS = 750_000


@dataclass
class _WeekModel:
    """The retailer's LP of one week and horizon, held in HiGHS, with the rows demand sets."""

    model: LPModel
    x: np.ndarray
    rows: dict[str, np.ndarray]
    beta: float

    _warm: LPModel | None = None
    _second: LPModel | None = None
    #: reference bases by demand (the right-hand sides' bytes): where the queries on that demand start
    _refs: dict[bytes, Any] = field(default_factory=dict)
    #: one HiGHS model per demand (its right-hand sides set once): a query changes only bounds
    _on: dict[bytes, LPModel] = field(default_factory=dict)
    _own: LPSolution | None = None
    #: the LP on each demand asked about (:meth:`on`), by the demand's and backlog's bytes
    _ons: dict[bytes, LinearProgram] = field(default_factory=dict)

    def _model_on(self, on: LinearProgram) -> LPModel:
        """The HiGHS model kept for ``on``'s demand; past :data:`KEPT_COLUMNS`, the week's shared model
        (its right-hand sides then changed per query: slower, the same answers)."""
        key = _rhs_key(on)
        if key not in self._on:
            if (len(self._on) + 1) * on.n > KEPT_COLUMNS:
                return self.model
            self._on[key] = LPModel(on, warm=False)
        return self._on[key]

    def reference(self, on: LinearProgram, forecast: LinearProgram) -> Any:
        """The reference basis of the LP ``on`` (the model's LP on one demand, nothing fixed), solved once
        per week and demand: on the forecast (``forecast``), the basis of the retailer's own optimal plan
        (from scratch: :meth:`own`); on another demand, the basis of the optimum on it with this week's
        PO fixed at the own plan's (the JIT PO; warm-started from the forecast's reference), near the
        POs the CBT prices (on the pilot 22 simplex iterations a query on average instead of 122 from
        the free optimum on the path). A function of the week and the demand only, whichever query
        asks for it first."""
        key = _rhs_key(on)
        if key not in self._refs:
            fkey = _rhs_key(forecast)
            if fkey not in self._refs:
                self.own(forecast)
            if key != fkey:
                # the own plan's PO on this demand: the optimum on it (from the forecast's reference),
                # then with the first week fixed at the own plan's (the PO every query is near)
                model = self._model_on(on)
                free = model.solve(on, start=self._refs[fkey], keep_basis=True).basis
                po = self.own(forecast).x[self.x[:, 0].ravel()].reshape(self.x[:, 0].shape)
                near = model.solve(on.with_bounds(self.x[:, 0], po, po), start=free, keep_basis=True, raise_on_fail=False)
                self._refs[key] = near.basis if near.ok else free
        return self._refs[key]

    def own(self, forecast: LinearProgram) -> LPSolution:
        """The retailer's own optimal plan on the forecast (``forecast``: the model's LP on it, nothing
        fixed), solved once a week from scratch, bit for bit as a fresh LP; its basis is the forecast's
        reference."""
        if self._own is None:
            self._own = self._model_on(forecast).solve(forecast, keep_basis=True)
            self._refs[_rhs_key(forecast)] = self._own.basis
        return self._own

    def from_reference(self, lp: LinearProgram, on: LinearProgram, forecast: LinearProgram) -> LPSolution:
        """``lp`` (the LP ``on`` of one demand with the query's bounds on the plan) solved warm-started
        from that demand's reference basis (:meth:`reference`), in a HiGHS model kept for that demand
        (so a query changes only bounds): a function of the query and the week alone. (Starting a
        path's query from the basis the same query on the forecast ends at was tried: as many simplex
        iterations on the pilot, 132 against 122, and an extra solve where the forecast is not asked.)"""
        return self._model_on(on).solve(lp, start=self.reference(on, forecast))

    def least_first_week(self, lp: LinearProgram) -> LPSolution:
        """``lp`` (the model's LP with other bounds and right-hand sides) solved warm-started, then among
        its optimal solutions one with the least first-week cost (a second warm-started LP with the total
        cost bounded by the optimum plus 1e-10 relative): a split by week that does not depend on the
        vertex the solver stops at."""
        base = self.model.lp
        if self._warm is None:
            week0 = np.zeros(base.n)
            for t in base.terms:
                if t.label[0] == RETAILER and t.label[2] == 0 and not t.label[1].startswith("_"):
                    np.add.at(week0, t.idx, t.coef)
            total = sp.csr_matrix(base.c[None, :])
            self._warm = LPModel(base, warm=True)
            self._second = LPModel(replace(base, c=week0, A_ub=sp.vstack([base.A_ub, total], format="csr"),
                                           b_ub=np.append(base.b_ub, np.inf)), warm=True)
        assert self._second is not None
        first = self._warm.solve(lp)
        z = float(base.c @ first.x)
        second = self._second.lp
        sol = self._second.solve(replace(second, b_eq=lp.b_eq, b_ub=np.append(lp.b_ub, z + 1e-10 * abs(z) + 1e-7),
                                         lb=lp.lb, ub=lp.ub))
        x = np.clip(sol.x, lp.lb, lp.ub)
        return LPSolution("optimal", x, lp.objective(x), lp)

    def on(self, demand: np.ndarray, backlog: np.ndarray) -> LinearProgram:
        """The LP with ``demand``'s right-hand sides (same matrices as the model's); made once per
        demand and week (the CBT asks about the same few demands for every PO it prices)."""
        demand = np.ascontiguousarray(np.asarray(demand, dtype=float)[: self.x.shape[1]])
        key = demand.tobytes() + np.ascontiguousarray(backlog, dtype=float).tobytes()
        if key not in self._ons:
            lp = self.model.lp
            eq, ub = demand_rhs(demand, backlog, self.beta)
            b_eq = lp.b_eq.copy()
            b_eq[self.rows["eq"].ravel()] = eq.ravel()
            b_ub = lp.b_ub
            if "ub" in self.rows:
                b_ub = b_ub.copy()
                b_ub[self.rows["ub"].ravel()] = ub.ravel()
            self._ons[key] = replace(lp, b_eq=b_eq, b_ub=b_ub)
        return self._ons[key]


@dataclass
class _DiscountModel:
    """The retailer's LP with discounted units ``e`` (at most the units shipped ``x``) and a weekly cap
    row on their volume at every FC, all at no discount and no cap: :meth:`RetailerAgent.preferred_plan`
    sets the costs and caps of a query. Kept (``model``): re-solved from the reference basis, the
    optimum without discount (from scratch, once a week), as :data:`sim.model.lp.LP_STARTS` says."""

    lp: LinearProgram
    x: np.ndarray
    e: np.ndarray
    cap_rows: np.ndarray  # [H, F]
    model: LPModel | None = None
    _ref: Any = None

    @classmethod
    def build(cls, agent: "RetailerAgent", state: RetailerState | None, demand: np.ndarray | None,
              keep: bool = False) -> "_DiscountModel":
        pub = agent.public
        horizon = pub.horizon if demand is None else int(np.shape(demand)[0])
        shape = (pub.V, horizon, pub.F, pub.K)
        b = LPBuilder()
        x = b.add_var(shape)
        agent.add_block(b, x, state, demand)
        e = b.add_var(shape)
        own = b.new_rows("ub", shape)
        b.add_terms("ub", own, e, 1.0)
        b.add_terms("ub", own, x, -1.0)
        rows = b.new_rows("ub", (horizon, pub.F), np.inf)
        b.add_terms("ub", rows[None, :, :, None], e, pub.volume[None, None, None, :])
        lp = b.build()
        return cls(lp, x, e, rows, LPModel(lp, warm=False) if keep else None)

    def solve(self, lp: LinearProgram) -> LPSolution:
        if self.model is None or not lp_module.reference_starts():
            return solve_lp(lp) if self.model is None else self.model.solve(lp)
        if self._ref is None:
            self._ref = self.model.solve(keep_basis=True).basis
        return self.model.solve(lp, start=self._ref)


def _rhs_key(lp: LinearProgram) -> bytes:
    return lp.b_eq.tobytes() + lp.b_ub.tobytes()


def replacement_price(public: PublicData) -> np.ndarray:
    """``[K]``: the lowest wholesale price any vendor asks for each product (what a unit of stock
    saves the retailer buying again)."""
    return np.where(public.supplies, public.wholesale, np.inf).min(axis=0, initial=np.inf)
