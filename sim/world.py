"""The simulated world: a SimPy environment that runs the weekly cycle of docs/model.md, "The world".

Week ``t`` occupies simulated time ``[t, t+1)``. Its steps happen at fixed offsets, so their order is
explicit rather than an accident of event creation order:

======== ========================================================================================
t + 0.0  arrivals: shipments due this week are received at their FC (one SimPy process a shipment)
t + 0.1  forecast update: the retailer sees this week's forecast for weeks t .. t+H-1
t + 0.2  planning: the policy returns a :class:`~sim.model.decision.Decision`, inside the commitment
         box earlier agreements left on this week's plan (:mod:`sim.model.commitment`; refused
         otherwise); a decision that commits beyond its PO adds its frozen weeks to the record
t + 0.3  execution (:mod:`sim.execution`): each vendor fulfils its block of the PO with the week's
         realised capacity (rationing a committed PO it cannot ship in full by the scenario's rule);
         what it does not ship is its shortfall, priced at its cost to the retailer (an uncommitted
         vendor ships the week's committed floor first, as far as its capacity allows); a committed
         decision's remedy settles the transfers; each lane's shipment leaves with its random delay
t + 0.4  demand: regional demand is served from FC stock at least cost; the rest is lost or backlogged
t + 0.5  accounting: the week's costs, revenues and transfers go into the ledger
======== ========================================================================================

What a user may do: ``World(scenario, policy, inputs).run()`` simulates one policy on given random
inputs and returns a :class:`WorldRecord` (ledger rows, unit flows, decisions); ``run(weeks, settle=N)``
then continues N cool-down weeks under JIT (rows tagged ``phase: settle``) so the stock the policy
left behind is used or held at its true cost (settled figures, :mod:`sim.metrics`). To compare policies on
common random numbers use :func:`sim.runner.run_policies`. ``planning_context(scenario, week)`` gives
the situation a policy faces at week ``week`` (after earlier weeks under JIT), for one-off planning.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import simpy

from forecasts.inputs import WorldInputs, draw_inputs, policy_rng, settle_inputs
from sim.execution import settle, vendor_shares
from sim.model.commitment import CommitmentRecord, PlanBounds
from sim.model.decision import MECHANISM, RETAILER, Decision, PlanningContext, Policy
from sim.model.data import PublicData, split_scenario
from sim.parties.retailer import RetailerAgent, RetailerState
from sim.parties.vendor import Fulfilment, VendorAgent, VendorState
from sim.metrics import MEASURED, SETTLE
from sim.model.scenario import Scenario

ARRIVALS, FORECAST, PLANNING, EXECUTION, DEMAND, ACCOUNTING = 0.0, 0.1, 0.2, 0.3, 0.4, 0.5
#: a committed floor a vendor says it can no longer ship by less than this share is kept (LP rounding)
RELEASE_TOLERANCE = 1e-6


@dataclass
class Shipment:
    week: int  # week shipped
    vendor: str
    lane: int  # in the scenario's lane order (all vendors' lanes)
    fc: int
    units: np.ndarray  # [K]
    nominal_arrival: int
    arrival: int


@dataclass
class WorldRecord:
    """What one run of one policy produced: tidy rows, ready for pandas."""

    ledger: list[dict[str, Any]] = field(default_factory=list)
    flows: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    #: per week, vendor, FC and product the PO ordered: ``ordered``, ``shipped`` and ``shortfall`` units
    shortfalls: list[dict[str, Any]] = field(default_factory=list)


def _report_agent(reports: dict[str, Any], party: str, public: PublicData, kind: type, truthful: Any) -> Any:
    """The agent answering for ``party``: ``truthful`` without a report, else the report if it is
    already an agent of the party's kind, else an agent on the reported data."""
    if party not in reports:
        return truthful
    report = reports[party]
    return report if isinstance(report, kind) else kind(public, report)


class World:
    """One policy simulated on one set of random inputs."""

    def __init__(
        self,
        scenario: Scenario,
        policy: Policy,
        inputs: WorldInputs | None = None,
        *,
        run_id: str = "run",
        on_week: Callable[[int], None] | None = None,
        reports: dict[str, Any] | None = None,
    ) -> None:
        self.scenario = scenario
        self.policy = policy
        self.inputs = inputs if inputs is not None else draw_inputs(scenario)
        self.run_id = run_id
        self.on_week = on_week
        self.public, retailer_data, vendor_data = split_scenario(scenario)
        self.retailer = RetailerAgent(self.public, retailer_data)
        self.vendors = {name: VendorAgent(self.public, data) for name, data in vendor_data.items()}
        # What each party's agent answers with when the policy queries it (by party name). By default
        # the truth; the incentive audit passes misreported cost data here. Execution and the ledger
        # always use the true models above.
        reports = dict(reports or {})
        unknown = set(reports) - {RETAILER, *self.vendors}
        if unknown:
            raise ValueError(f"reports for unknown parties {sorted(unknown)} (parties: {[RETAILER, *self.vendors]})")
        # A report is private data (an agent is built on it) or an agent already built, e.g. one that
        # also misreports what it observes each week (its stock, the retailer's forecast).
        self.retailer_report = _report_agent(reports, RETAILER, self.public, RetailerAgent, self.retailer)
        self.vendor_reports = {name: _report_agent(reports, name, self.public, VendorAgent, agent)
                               for name, agent in self.vendors.items()}
        self._vendor_data = vendor_data
        rules = scenario.execution
        self.rationing = "cheapest" if rules is None else rules.rationing
        self.ranking = [self.public.fcs.index(f) for f in (rules.ranking or [])] if rules is not None else []
        self.env = simpy.Environment()
        # physical state
        self.fc_stock = retailer_data.initial_stock.copy()
        self.vendor_stock = {name: data.initial_stock.copy() for name, data in vendor_data.items()}
        self.backlog = np.zeros((self.public.R, self.public.K))
        self.in_transit: list[Shipment] = []
        self.record = WorldRecord()
        #: the commitments agreed so far (public: both parties see them; :mod:`sim.model.commitment`)
        self.commitments = CommitmentRecord(self.public.shape)
        self._week: dict[str, Any] = {}
        self.phase = MEASURED

    # -- processes ------------------------------------------------------------------------------
    def _deliver(self, shipment: Shipment):
        yield self.env.timeout(shipment.arrival + ARRIVALS - self.env.now)
        self.in_transit.remove(shipment)
        self.fc_stock[shipment.fc] += shipment.units
        self._week["arrivals"][shipment.fc] += shipment.units

    def _weeks(self, weeks: int, settle: int = 0):
        # The week's accumulator is (re)set after accounting (t + 0.5), so it is ready before the next
        # week's arrivals at t + 1.0 and no two steps share a time stamp.
        self._week = {"arrivals": np.zeros((self.public.F, self.public.K))}
        active = self.policy
        for t in range(weeks + settle):
            if t == weeks:  # the cool-down: every policy's world continues under JIT
                from policies.jit import JITPolicy

                active, self.phase = JITPolicy(), SETTLE
            yield self.env.timeout(t + FORECAST - self.env.now)
            # arrivals (t + 0.0) have happened; forecast update
            self._week["fc_stock_start"] = self.fc_stock - self._week["arrivals"]
            self._week["in_transit_start"] = sum((s.units for s in self.in_transit), np.zeros(self.public.K)) + self._week[
                "arrivals"
            ].sum(axis=0)
            self._week["vendor_stock_start"] = self._vendor_stock_total()
            ctx = self.context(t)
            yield self.env.timeout(t + PLANNING - self.env.now)
            started = time.perf_counter()
            decision = active.decide(ctx)
            wall = time.perf_counter() - started
            _check_decision(decision, self.public, getattr(active, "name", type(active).__name__), ctx.bounds)
            self._commit(t, ctx, decision)
            yield self.env.timeout(t + EXECUTION - self.env.now)
            self._execute(t, decision)
            yield self.env.timeout(t + DEMAND - self.env.now)
            self._serve(t)
            yield self.env.timeout(t + ACCOUNTING - self.env.now)
            self._account(t, decision, wall)
            self._week = {"arrivals": np.zeros((self.public.F, self.public.K))}
            if self.on_week is not None:
                self.on_week(t)

    # -- steps ----------------------------------------------------------------------------------
    def context(self, t: int) -> PlanningContext:
        """Give each agent its view of week ``t`` and return the policy's context."""
        H = self.public.horizon
        pipeline = np.zeros(self.public.block_shape)
        for s in self.in_transit:
            expected = max(s.nominal_arrival, t + 1)  # overdue trucks are expected next week
            if expected - t < H:
                pipeline[expected - t, s.fc] += s.units
        disclosed = self._disclosed(t)
        # the public commitment box on this week's plan (None: free), eased where a vendor says it can no
        # longer ship a commitment's floor (its stock and capacity short of it: commitments bind subject
        # to capacity); the record's reference quantities stay as agreed
        bounds = self.commitments.bounds(t)
        for name, agent in self.vendors.items():
            state = VendorState(self.vendor_stock[name].copy(), capacity_share=disclosed.get(name))
            for a in {id(a): a for a in (agent, self.vendor_reports[name])}.values():
                a.observe(state)
            if bounds is not None:
                lower = bounds.lower[agent.index]
                can = self.vendor_reports[name].committed_floor(lower)
                eased = lower - can > RELEASE_TOLERANCE * (1.0 + lower)  # beyond LP rounding
                if np.any(eased):
                    self._week["released"] = self._week.get("released", 0.0) + float(np.sum((lower - can)[eased]))
                    bounds.lower[agent.index] = np.where(eased, can, lower)
        for name, agent in self.vendors.items():
            own = None if bounds is None else bounds.block(agent.index)
            for a in {id(a): a for a in (agent, self.vendor_reports[name])}.values():
                a.observe(VendorState(self.vendor_stock[name].copy(), capacity_share=disclosed.get(name), bounds=own))
        for agent in {id(a): a for a in (self.retailer, self.retailer_report)}.values():
            agent.observe(RetailerState(self.fc_stock.copy(), pipeline, self.backlog.copy(), bounds=bounds),
                          self.inputs.forecasts[t])
        return PlanningContext(
            week=t,
            public=self.public,
            retailer=self.retailer_report,
            vendors=dict(self.vendor_reports),
            rng=policy_rng(self.scenario.seed, t),
            forecast_sd=self.inputs.forecast_sd[t],
            bounds=bounds,
        )

    def _disclosed(self, t: int) -> dict[str, np.ndarray]:
        """Each vendor's capacity shares of week ``t`` when shocks are disclosed before planning
        (``shocks.disclosure: disclosed``); empty otherwise (vendors plan with nominal capacity)."""
        shocks = self.scenario.shocks
        shares = self.inputs.get("capacity")
        if shocks is None or shocks.disclosure != "disclosed" or shares is None:
            return {}
        return vendor_shares(shares[t], {name: len(a.nominal_capacity) for name, a in self.vendors.items()})

    def _execute(self, t: int, decision: Decision) -> None:
        # the week's realised capacity shares (the `capacity` stream; 1 in inputs that do not hold it)
        shares = self.inputs.get("capacity")
        shares = np.ones(len(self.scenario.all_origins)) if shares is None else shares[t]
        # what each vendor ships; what the missing units cost the retailer, by its own cost model (its
        # state is still this week's); the transfers after the decision's remedy
        outcome = settle(self.retailer, self.vendors, decision, shares, rationing=self.rationing, ranking=self.ranking,
                         floor=self.commitments.floor(t))
        executed, costs, transfers, damages = outcome.executed, outcome.costs, outcome.transfers, outcome.damages
        fulfilments: dict[str, Fulfilment] = {}
        for name, ex in executed.items():
            ful = ex.fulfilment
            fulfilments[name] = ful
            self.vendor_stock[name] = ful.end_stock.copy()
            data = self._vendor_data[name]
            for lane in range(ful.lane_units.shape[0]):
                units = ful.lane_units[lane]
                if units.sum() <= 1e-9:
                    continue
                fc = int(data.lane_fc[lane])
                nominal = t + int(self.public.lead_time[fc])
                index = data.lane_offset + lane
                ship = Shipment(t, name, index, fc, units.copy(), nominal, nominal + int(self.inputs.delays[t, index]))
                self.in_transit.append(ship)
                self.env.process(self._deliver(ship))
        self._week.update(fulfilments=fulfilments, executed=executed, po=decision.po.copy(), shortfall_costs=costs,
                          transfers=transfers, damages=damages)

    def _commit(self, t: int, ctx: PlanningContext, decision: Decision) -> None:
        """Record what a committed decision commits (:mod:`sim.model.commitment`) and, for the decisions
        table, the units committed beyond the binding week and what this week's commitment box costs
        each party (:func:`commitment_costs`)."""
        info: dict[str, float] = {}
        if decision.commit is not None and decision.committed and self.phase != SETTLE:
            info["committed_units"] = self.commitments.commit(t, decision.plan, decision.commit)
        if self.phase != SETTLE and (decision.commit is not None or ctx.bounds is not None):
            info.setdefault("committed_units", 0.0)
            info["commitment_bound"] = ctx.bounds is not None
            info["commitment_released"] = float(self._week.get("released", 0.0))
            costs = commitment_costs(self.retailer, self.vendors, ctx.bounds)
            info.update({f"commitment_cost_{p}": v for p, v in costs.items()})
        self._week["commitment"] = info

    def _vendor_stock_total(self) -> float:
        return float(sum(stock.sum() for stock in self.vendor_stock.values()))

    def _serve(self, t: int) -> None:
        demand = self.inputs.demand[t]
        owed = demand + self.backlog
        y, unmet = self.retailer.serve_demand(self.fc_stock, owed)
        served = y.sum(axis=1)  # [F, K] leaving each FC
        self.fc_stock = np.maximum(self.fc_stock - served, 0.0)
        if self.public.backlog:
            self.backlog = unmet
        self._week.update(outbound=y, unmet=unmet, demand=demand, owed=owed)

    def _account(self, t: int, decision: Decision, wall: float) -> None:
        w = self.week_rows(t, decision)
        self.record.ledger.extend(w)
        fuls = self._week["fulfilments"].values()
        y = self._week["outbound"]
        self._record_shortfalls(t)
        self.record.flows.append(
            {
                "run": self.run_id,
                "policy": self.name,
                "week": t,
                "phase": self.phase,
                "demand": float(self._week["demand"].sum()),
                "owed": float(self._week["owed"].sum()),
                "served": float(y.sum()),
                "unmet": float(self._week["unmet"].sum()),
                "po": float(self._week["po"].sum()),
                "shipped": float(sum(f.shipped.sum() for f in fuls)),
                "produced": float(sum(f.produced.sum() for f in fuls)),
                "shortfall": float(sum(ex.shortfall.sum() for ex in self._week["executed"].values())),
                "shortfall_cost": float(sum(self._week["shortfall_costs"].values())),
                "arrivals": float(self._week["arrivals"].sum()),
                "fc_stock_start": float(self._week["fc_stock_start"].sum()),
                "fc_stock_end": float(self.fc_stock.sum()),
                "in_transit_start": float(self._week["in_transit_start"].sum()),
                "in_transit_end": float(sum(s.units.sum() for s in self.in_transit)),
                "vendor_stock_start": self._week["vendor_stock_start"],
                "vendor_stock_end": self._vendor_stock_total(),
                "backlog_end": float(self.backlog.sum()),
            }
        )
        if self.phase == SETTLE:  # the cool-down's JIT decisions are not the policy's: no decision rows
            return
        paid = self._week["transfers"]
        row = {
            "run": self.run_id,
            "policy": self.name,
            "week": t,
            "phase": self.phase,
            "transfer": _vendors_paid(paid, self.vendors),
            "committed": bool(decision.committed),
            "wall_s": wall,
        }
        if paid != decision.transfers or self._week["damages"]:  # a remedy changed what was agreed
            row["transfer_agreed"] = _vendors_paid(decision.transfers, self.vendors)
            row["damages"] = float(sum(self._week["damages"].values()))
        row.update({f"planned_{k}": float(v) for k, v in decision.planned.items()})
        row.update({k: v for k, v in decision.diagnostics.items() if isinstance(v, (int, float, str, bool, np.number))})
        row.update(self._week.get("commitment", {}))
        self.record.decisions.append(row)

    def _record_shortfalls(self, t: int) -> None:
        """One ``shortfalls`` row per vendor, FC and product the week's PO ordered: ordered, shipped, short."""
        fcs, products = self.public.fcs, self.public.products
        for name, ex in self._week["executed"].items():
            ordered, shipped, short = ex.ordered, ex.shipped, ex.shortfall
            # the vendor's shortfall cost, shared over its rows in proportion to their missing units
            total, cost = float(short.sum()), self._week["shortfall_costs"].get(name, 0.0)
            for f, k in zip(*np.nonzero(ordered > 0)):
                self.record.shortfalls.append({
                    "run": self.run_id, "policy": self.name, "week": t, "phase": self.phase, "vendor": name,
                    "fc": fcs[f], "product": products[k], "ordered": float(ordered[f, k]),
                    "shipped": float(shipped[f, k]), "shortfall": float(short[f, k]),
                    "cost": cost * float(short[f, k]) / total if total > 0 and cost != 0.0 else 0.0,
                })

    def week_rows(self, t: int, decision: Decision) -> list[dict[str, Any]]:
        """The ledger rows of week ``t``: every cost, revenue and transfer, by party and component
        (the retailer, then each vendor; a ``mechanism`` row when the transfers leave a balance)."""
        fuls = self._week["fulfilments"]
        sales = {name: float(np.sum(self.vendors[name].wholesale[None, :] * ful.shipped)) for name, ful in fuls.items()}
        r_costs = self.retailer.realised_costs(
            self._week["arrivals"], self.fc_stock, self._week["outbound"],
            self._week["unmet"],
        )
        # the transfers after the decision's remedy (the agreed ones unless a committed PO was short)
        transfers = self._week.get("transfers", decision.transfers)
        damages = self._week.get("damages", {})
        rows = [(RETAILER, "wholesale", sum(sales.values()))]
        rows += [(RETAILER, comp, v) for comp, v in r_costs.items()]
        rows += [(RETAILER, "transfer", float(transfers.get(RETAILER, 0.0)))]
        if damages:  # the short vendors pay the retailer their shortfall cost
            rows += [(RETAILER, "damages", -float(sum(damages.values())))]
        for name, ful in fuls.items():
            rows += [(name, "wholesale", -sales[name])]
            rows += [(name, comp, float(ful.costs.get(comp, 0.0))) for comp in ("production", "inbound_transport", "vendor_holding")]
            rows += [(name, "transfer", float(transfers.get(name, 0.0)))]
            if name in damages:
                rows += [(name, "damages", float(damages[name]))]
        # the mechanism's row: what it pays by name (if a policy names it) plus its balance, i.e. minus
        # what the retailer and the vendors pay, so the week's transfer rows always sum to zero
        balance = decision.balance if transfers is decision.transfers or transfers == decision.transfers else \
            Decision(decision.plan, transfers).balance
        mechanism = float(transfers.get(MECHANISM, 0.0)) + balance
        if mechanism != 0.0:
            rows += [(MECHANISM, "transfer", mechanism)]
        return [
            {"run": self.run_id, "policy": self.name, "week": t, "party": p, "component": c, "value": v, "phase": self.phase}
            for p, c, v in rows
        ]

    @property
    def name(self) -> str:
        """The measured policy's name: cool-down rows are filed under it, tagged ``phase: settle``."""
        return self.policy.name

    def run(self, weeks: int | None = None, settle: int = 0) -> WorldRecord:
        """Simulate ``weeks`` weeks (default: the scenario's) and return the record.

        ``settle``: cool-down weeks simulated after them under JIT on
        :func:`~forecasts.inputs.settle_inputs` (rows tagged ``phase: settle``; the measured weeks'
        rows are ``phase: measured`` and do not depend on ``settle``).
        """
        weeks = self.scenario.weeks if weeks is None else weeks
        if weeks > self.inputs.weeks:
            raise ValueError(f"inputs cover {self.inputs.weeks} weeks, asked to simulate {weeks}")
        if settle < 0:
            raise ValueError(f"settle must be >= 0 weeks, got {settle}")
        if settle:
            self.inputs = settle_inputs(self.inputs, weeks, settle)
        self.env.process(self._weeks(weeks, settle))
        self.env.run(until=weeks + settle)
        return self.record


def commitment_costs(retailer: RetailerAgent, vendors: dict[str, VendorAgent], bounds: PlanBounds | None) -> dict[str, float]:
    """What a week's commitment box costs each party: its planned cost (over the horizon, no transfers)
    at the week's first-best plan inside the box less at the first-best plan without it, both solved
    centrally on the parties' true models (a measurement, as first best is; docs/model.md, "Mutual
    commitment"). Zero for every party when no bound is active (nothing is solved); NaN if the parties
    together cannot plan inside the box (a figure, so the run goes on)."""
    parties = [retailer.party, *vendors]
    if bounds is None or not bounds.active:
        return {p: 0.0 for p in parties}
    from sim.model.lp import InfeasibleError
    from sim.parties.oracle import joint_plan

    try:
        held, free = joint_plan(retailer, vendors), joint_plan(retailer, vendors, commitments=False)
    except InfeasibleError:
        return {p: float("nan") for p in parties}
    out = {retailer.party: held.retailer.total - free.retailer.total}
    out.update({name: held.vendors[name].total - free.vendors[name].total for name in vendors})
    return out


def _check_decision(d: Decision, public: Any, name: str, bounds: PlanBounds | None = None) -> None:
    plan = np.asarray(d.plan)
    shape = public.shape
    if plan.shape != shape:
        raise ValueError(f"policy {name!r} returned a plan of shape {plan.shape}, expected {shape} (vendors, H, FCs, products)")
    if not np.all(np.isfinite(plan)) or np.any(plan < -1e-6):
        raise ValueError(f"policy {name!r} returned a plan with negative or non-finite entries")
    if bounds is not None and not bounds.contains(plan):
        raise ValueError(f"policy {name!r} returned a plan outside the commitment bands agreed earlier (by up to "
                         f"{bounds.violation(plan):.6g} units): a committed week may move only within its band")
    if not isinstance(d.transfers, dict) or not all(np.isfinite(float(v)) for v in d.transfers.values()):
        raise ValueError(f"policy {name!r} returned transfers that are not a mapping of party -> finite amount")
    unknown = set(d.transfers) - {RETAILER, MECHANISM, *public.vendors}
    if unknown:
        raise ValueError(f"policy {name!r} returned transfers for unknown parties {sorted(unknown)}")
    d.plan = np.maximum(plan, 0.0)


def _vendors_paid(transfers: dict[str, float], vendors: Any) -> float:
    """What the vendors paid this week in total (the ``transfer`` column of a decisions row)."""
    return float(sum(transfers.get(name, 0.0) for name in vendors))


def planning_context(scenario: Scenario, week: int = 0, seed: int | None = None) -> PlanningContext:
    """The context a policy faces at the start of week ``week``, earlier weeks simulated under JIT."""
    from policies.jit import JITPolicy

    if seed is not None:
        scenario = scenario.model_copy(update={"seed": seed})
    inputs = draw_inputs(scenario, weeks=max(scenario.weeks, week + 1))
    world = World(scenario, JITPolicy(), inputs)
    world.env.process(world._weeks(week))
    world.env.run(until=week + FORECAST)  # earlier weeks, then this week's arrivals (t + 0.0)
    return world.context(week)
