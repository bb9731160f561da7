"""The simulated world: a SimPy environment that runs the weekly cycle of docs/model.md, "The world".

Week ``t`` occupies simulated time ``[t, t+1)``. Its steps happen at fixed offsets, so their order is
explicit rather than an accident of event creation order:

======== ========================================================================================
t + 0.0  arrivals: shipments due this week are received at their FC (one SimPy process a shipment)
t + 0.1  forecast update: the retailer sees this week's forecast for weeks t .. t+H-1
t + 0.2  planning: the policy returns a :class:`~sim.model.decision.Decision`
t + 0.3  execution: the vendor fulfils the PO; each lane's shipment leaves with its random delay
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
from sim.model.decision import Decision, PlanningContext, Policy
from sim.model.agents import RetailerAgent, RetailerState, VendorAgent, VendorState
from sim.model.data import split_scenario
from sim.metrics import MEASURED, SETTLE
from sim.model.scenario import Scenario

ARRIVALS, FORECAST, PLANNING, EXECUTION, DEMAND, ACCOUNTING = 0.0, 0.1, 0.2, 0.3, 0.4, 0.5


@dataclass
class Shipment:
    week: int  # week shipped
    lane: int
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
        self.vendor = VendorAgent(self.public, vendor_data)
        # What each party's agent answers with when the policy queries it. By default the truth; the
        # incentive audit passes misreported cost data here. Execution and the ledger always use the
        # true models above.
        reports = reports or {}
        self.retailer_report = RetailerAgent(self.public, reports["retailer"]) if "retailer" in reports else self.retailer
        self.vendor_report = VendorAgent(self.public, reports["vendor"]) if "vendor" in reports else self.vendor
        self._lane_fc = vendor_data.lane_fc
        self.env = simpy.Environment()
        # physical state
        self.fc_stock = retailer_data.initial_stock.copy()
        self.vendor_stock = vendor_data.initial_stock.copy()
        self.backlog = np.zeros((self.public.R, self.public.K))
        self.in_transit: list[Shipment] = []
        self.record = WorldRecord()
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
            self._week["vendor_stock_start"] = self.vendor_stock.copy()
            ctx = self.context(t)
            yield self.env.timeout(t + PLANNING - self.env.now)
            started = time.perf_counter()
            decision = active.decide(ctx)
            wall = time.perf_counter() - started
            _check_decision(decision, self.public.shape, getattr(active, "name", type(active).__name__))
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
        pipeline = np.zeros(self.public.shape)
        for s in self.in_transit:
            expected = max(s.nominal_arrival, t + 1)  # overdue trucks are expected next week
            if expected - t < H:
                pipeline[expected - t, s.fc] += s.units
        for agent in {id(a): a for a in (self.retailer, self.retailer_report)}.values():
            agent.observe(RetailerState(self.fc_stock.copy(), pipeline, self.backlog.copy()), self.inputs.forecasts[t])
        for agent in {id(a): a for a in (self.vendor, self.vendor_report)}.values():
            agent.observe(VendorState(self.vendor_stock.copy()))
        return PlanningContext(
            week=t,
            public=self.public,
            retailer=self.retailer_report,
            vendor=self.vendor_report,
            rng=policy_rng(self.scenario.seed, t),
            forecast_sd=self.inputs.forecast_sd[t],
        )

    def _execute(self, t: int, decision: Decision) -> None:
        later = decision.plan[1:] if decision.committed else None
        ful = self.vendor.fulfil(decision.po, committed=decision.committed, later=later)
        self.vendor_stock = ful.end_stock.copy()
        for lane in range(ful.lane_units.shape[0]):
            units = ful.lane_units[lane]
            if units.sum() <= 1e-9:
                continue
            fc = int(self._lane_fc[lane])
            nominal = t + int(self.public.lead_time[fc])
            ship = Shipment(t, lane, fc, units.copy(), nominal, nominal + int(self.inputs.delays[t, lane]))
            self.in_transit.append(ship)
            self.env.process(self._deliver(ship))
        self._week.update(fulfilment=ful, po=decision.po.copy())

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
        ful = self._week["fulfilment"]
        y = self._week["outbound"]
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
                "shipped": float(ful.shipped.sum()),
                "produced": float(ful.produced.sum()),
                "arrivals": float(self._week["arrivals"].sum()),
                "fc_stock_start": float(self._week["fc_stock_start"].sum()),
                "fc_stock_end": float(self.fc_stock.sum()),
                "in_transit_start": float(self._week["in_transit_start"].sum()),
                "in_transit_end": float(sum(s.units.sum() for s in self.in_transit)),
                "vendor_stock_start": float(self._week["vendor_stock_start"].sum()),
                "vendor_stock_end": float(self.vendor_stock.sum()),
                "backlog_end": float(self.backlog.sum()),
            }
        )
        if self.phase == SETTLE:  # the cool-down's JIT decisions are not the policy's: no decision rows
            return
        row = {
            "run": self.run_id,
            "policy": self.name,
            "week": t,
            "phase": self.phase,
            "transfer": float(decision.transfer),
            "committed": bool(decision.committed),
            "wall_s": wall,
        }
        row.update({f"planned_{k}": float(v) for k, v in decision.planned.items()})
        row.update({k: v for k, v in decision.diagnostics.items() if isinstance(v, (int, float, str, bool, np.number))})
        self.record.decisions.append(row)

    def week_rows(self, t: int, decision: Decision) -> list[dict[str, Any]]:
        """The ledger rows of week ``t``: every cost, revenue and transfer, by party and component."""
        ful = self._week["fulfilment"]
        wholesale = float(np.sum(self.public.wholesale[None, :] * ful.shipped))
        r_costs = self.retailer.realised_costs(
            self._week["arrivals"], self.fc_stock, self._week["outbound"],
            self._week["unmet"],
        )
        rows = [("retailer", "wholesale", wholesale)]
        rows += [("retailer", comp, v) for comp, v in r_costs.items()]
        rows += [("retailer", "transfer", -float(decision.transfer))]
        rows += [("vendor", "wholesale", -wholesale)]
        rows += [("vendor", comp, float(ful.costs.get(comp, 0.0))) for comp in ("production", "inbound_transport", "vendor_holding")]
        rows += [("vendor", "transfer", float(decision.transfer))]
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


def _check_decision(d: Decision, shape: tuple[int, int, int], name: str) -> None:
    plan = np.asarray(d.plan)
    if plan.shape != shape:
        raise ValueError(f"policy {name!r} returned a plan of shape {plan.shape}, expected {shape} (H, FCs, products)")
    if not np.all(np.isfinite(plan)) or np.any(plan < -1e-6):
        raise ValueError(f"policy {name!r} returned a plan with negative or non-finite entries")
    d.plan = np.maximum(plan, 0.0)


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
