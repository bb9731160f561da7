"""Shared fixtures: small valid scenarios and a tracer that records a world's week in full detail.

The world's own ``flows`` table only holds totals; to check that units are conserved per FC and
product, and that every ledger entry is the price of a physical flow, :func:`trace_world` wraps the
world's weekly steps (without changing them) and records the state before and after each one.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from hypothesis import settings

from forecasts.inputs import WorldInputs, draw_inputs
from policies.registry import make_policy
from sim.model.scenario import Scenario, load_scenario, scenario_from_dict
from sim.world import World

settings.register_profile("flosim", deadline=None, max_examples=int(os.environ.get("FLOSIM_PROPERTY_EXAMPLES", "8")))
settings.load_profile("flosim")


# -- scenarios ------------------------------------------------------------------------------------
def small_scenario_dict() -> dict[str, Any]:
    """Two products, two FCs, two regions, two origins: every LP solves in milliseconds."""
    return {
        "name": "small",
        "weeks": 3,
        "horizon": 3,
        "seed": 11,
        "regions": ["East", "West"],
        "fcs": [
            {"name": "E1", "receiving_cost": 0.1, "lead_time": 1, "initial_stock": {"a": 40, "b": 20}},
            {"name": "W1", "receiving_cost": 0.2, "lead_time": 2, "initial_stock": {"a": 60}},
        ],
        "outbound_cost": {"E1": {"East": 0.2, "West": 1.0}, "W1": {"West": 0.3}},
        "products": [
            {"name": "a", "wholesale_price": 5.0, "holding_cost": 0.05, "lost_sales_penalty": 9.0, "base_demand": 80},
            {"name": "b", "wholesale_price": 4.0, "holding_cost": 0.04, "lost_sales_penalty": 7.0, "volume": 1.5, "base_demand": 50},
        ],
        "origins": [
            {"name": "O1", "capacity": 150, "production_cost": 1.5, "holding_cost": 0.01, "initial_stock": {"a": 10}},
            {"name": "O2", "capacity": 60, "production_cost": {"a": 1.2, "b": 2.0}},
        ],
        "lanes": [
            {"origin": "O1", "fc": "E1", "spare_volume": 50, "spare_cost": 0.05, "truckload_cost": 0.8,
             "delay": {"values": [0, 1], "probs": [0.7, 0.3]}},
            {"origin": "O1", "fc": "W1", "truckload_cost": 1.5},
            {"origin": "O2", "fc": "W1", "truckload_cost": 0.6, "delay": {"values": [0, 2], "probs": [0.5, 0.5]}},
        ],
        "demand": {"cv": 0.3},
    }


@pytest.fixture(scope="session")
def default_scenario() -> Scenario:
    return load_scenario("default")


@pytest.fixture(scope="session")
def small_scenario() -> Scenario:
    return scenario_from_dict(small_scenario_dict(), "<small>")


@pytest.fixture
def small_dict() -> dict[str, Any]:
    return copy.deepcopy(small_scenario_dict())


# -- tracing a world --------------------------------------------------------------------------------
@dataclass
class WeekTrace:
    week: int
    times: dict[str, float] = field(default_factory=dict)
    stock_before_arrivals: np.ndarray | None = None  # [F, K]
    arrivals: np.ndarray | None = None  # [F, K]
    stock_at_planning: np.ndarray | None = None  # [F, K]
    transit_at_planning: np.ndarray | None = None  # [F, K], after this week's arrivals
    vendor_start: np.ndarray | None = None  # [O, K]
    backlog_start: np.ndarray | None = None  # [R, K]
    po: np.ndarray | None = None
    shipped: np.ndarray | None = None
    lane_units: np.ndarray | None = None  # [L, K]
    produced: np.ndarray | None = None
    vendor_end: np.ndarray | None = None
    vendor_costs: dict[str, float] | None = None
    transit_after_execution: np.ndarray | None = None
    demand: np.ndarray | None = None
    owed: np.ndarray | None = None
    outbound: np.ndarray | None = None  # [F, R, K]
    unmet: np.ndarray | None = None
    stock_end: np.ndarray | None = None
    backlog_end: np.ndarray | None = None
    transfer: float | None = None
    ledger: list[dict[str, Any]] = field(default_factory=list)
    delivered: list[tuple[float, Any]] = field(default_factory=list)  # (time, shipment)


@dataclass
class Trace:
    world: World
    weeks: list[WeekTrace]
    initial_fc: np.ndarray
    initial_vendor: np.ndarray
    phase_log: list[tuple[float, str, int]]


def _transit(world: World) -> np.ndarray:
    out = np.zeros((world.public.F, world.public.K))
    for s in world.in_transit:
        out[s.fc] += s.units
    return out


def trace_world(scenario: Scenario, policy: Any, inputs: WorldInputs | None = None, weeks: int | None = None) -> Trace:
    """Run ``policy`` (a name or an object) in a World and record every step of every week."""
    pol = make_policy(policy, scenario) if isinstance(policy, str) else policy
    inputs = inputs if inputs is not None else draw_inputs(scenario)
    world = World(scenario, pol, inputs)
    log: list[WeekTrace] = []
    phases: list[tuple[float, str, int]] = []
    initial_fc, initial_vendor = world.fc_stock.copy(), world.vendor_stock.copy()

    orig_context, orig_execute, orig_serve, orig_account, orig_deliver = (
        world.context, world._execute, world._serve, world._account, world._deliver,
    )

    def context(t: int):
        w = WeekTrace(t)
        w.times["forecast"] = world.env.now
        w.arrivals = world._week["arrivals"].copy()
        w.stock_at_planning = world.fc_stock.copy()
        w.stock_before_arrivals = w.stock_at_planning - w.arrivals
        w.transit_at_planning = _transit(world)
        w.vendor_start = world.vendor_stock.copy()
        w.backlog_start = world.backlog.copy()
        log.append(w)
        phases.append((world.env.now, "forecast", t))
        return orig_context(t)

    def execute(t: int, decision):
        w = log[-1]
        w.times["execution"] = world.env.now
        phases.append((world.env.now, "execution", t))
        orig_execute(t, decision)
        ful = world._week["fulfilment"]
        w.po = np.array(decision.po, dtype=float)
        w.shipped, w.lane_units, w.produced = ful.shipped.copy(), ful.lane_units.copy(), ful.produced.copy()
        w.vendor_end, w.vendor_costs = ful.end_stock.copy(), dict(ful.costs)
        w.transit_after_execution = _transit(world)
        w.transfer = float(decision.transfer)

    def serve(t: int):
        w = log[-1]
        w.times["demand"] = world.env.now
        phases.append((world.env.now, "demand", t))
        orig_serve(t)
        w.demand, w.owed = world._week["demand"].copy(), world._week["owed"].copy()
        w.outbound, w.unmet = world._week["outbound"].copy(), world._week["unmet"].copy()
        w.stock_end, w.backlog_end = world.fc_stock.copy(), world.backlog.copy()

    def account(t: int, decision, wall: float):
        w = log[-1]
        w.times["accounting"] = world.env.now
        phases.append((world.env.now, "accounting", t))
        before = len(world.record.ledger)
        orig_account(t, decision, wall)
        w.ledger = world.record.ledger[before:]

    def deliver(shipment):
        yield from orig_deliver(shipment)
        phases.append((world.env.now, "arrival", shipment.arrival))
        # the week whose arrivals these are is the one being assembled next
        pending.append((world.env.now, shipment))

    pending: list[tuple[float, Any]] = []

    world.context, world._execute, world._serve, world._account, world._deliver = context, execute, serve, account, deliver
    orig_policy_decide = pol.decide

    class _Timed:
        name = pol.name

        def decide(self, ctx):
            phases.append((world.env.now, "planning", ctx.week))
            log[-1].times["planning"] = world.env.now
            # arrivals delivered since the last week's planning belong to this week
            log[-1].delivered = [p for p in pending if p[1].arrival == ctx.week]
            return orig_policy_decide(ctx)

    world.policy = _Timed()
    world.run(weeks)
    return Trace(world, log, initial_fc, initial_vendor, phases)


@pytest.fixture(scope="session")
def tracer():
    return trace_world


# -- independent prices, read from the scenario (not from the agents) -------------------------------
@dataclass(frozen=True)
class Prices:
    wholesale: np.ndarray  # [K]
    receiving: np.ndarray  # [F]
    holding: np.ndarray  # [K]
    penalty: np.ndarray  # [K]
    outbound: np.ndarray  # [F, R], nan where no arc
    production: np.ndarray  # [O, K]
    vendor_holding: np.ndarray  # [O]
    capacity: np.ndarray  # [O]
    volume: np.ndarray  # [K]
    lane_origin: np.ndarray
    lane_fc: np.ndarray
    spare_volume: np.ndarray
    spare_cost: np.ndarray
    truckload_cost: np.ndarray


def prices_of(s: Scenario) -> Prices:
    K = [p.name for p in s.products]
    F = [f.name for f in s.fcs]
    O = [o.name for o in s.origins]
    out = np.full((len(F), len(s.regions)), np.nan)
    for f, row in s.outbound_cost.items():
        for r, c in row.items():
            out[F.index(f), s.regions.index(r)] = c
    prod = np.array(
        [[o.production_cost[k] if isinstance(o.production_cost, dict) else o.production_cost for k in K] for o in s.origins]
    )
    return Prices(
        wholesale=np.array([p.wholesale_price for p in s.products]),
        receiving=np.array([f.receiving_cost for f in s.fcs]),
        holding=np.array([p.holding_cost for p in s.products]),
        penalty=np.array([p.lost_sales_penalty for p in s.products]),
        outbound=out,
        production=prod,
        vendor_holding=np.array([o.holding_cost for o in s.origins]),
        capacity=np.array([o.capacity for o in s.origins]),
        volume=np.array([p.volume for p in s.products]),
        lane_origin=np.array([O.index(l.origin) for l in s.lanes]),
        lane_fc=np.array([F.index(l.fc) for l in s.lanes]),
        spare_volume=np.array([l.spare_volume for l in s.lanes]),
        spare_cost=np.array([l.spare_cost for l in s.lanes]),
        truckload_cost=np.array([l.truckload_cost for l in s.lanes]),
    )


def lane_cost(p: Prices, lane_units: np.ndarray) -> float:
    """The piecewise linear lane cost of docs/model.md ("Private cost models"), from the scenario's lane parameters."""
    vol = lane_units @ p.volume  # [L]
    spare = np.minimum(vol, p.spare_volume)
    return float(np.sum(p.spare_cost * spare + p.truckload_cost * (vol - spare)))


def _tol(*arrays: np.ndarray) -> float:
    scale = max([1.0] + [float(np.max(np.abs(a))) for a in arrays if a is not None and np.size(a)])
    return 1e-6 * scale


def check_conservation(trace: Trace, scenario: Scenario) -> None:
    """Units: nothing created or lost, at each FC and origin, in transit and at the customer."""
    p = prices_of(scenario)
    weeks = trace.weeks
    backlog_mode = scenario.unmet_demand == "backlog"
    prev_fc, prev_vendor = trace.initial_fc, trace.initial_vendor
    prev_transit = np.zeros_like(prev_fc)
    prev_backlog = np.zeros((len(scenario.regions), len(scenario.products)))
    for w in weeks:
        tol = _tol(w.stock_at_planning, w.shipped, w.owed, w.vendor_start, w.produced, w.transit_at_planning)
        t = w.week
        # FC stock carries over; arrivals come out of transit and into the FC
        np.testing.assert_allclose(w.stock_before_arrivals, prev_fc, atol=tol, err_msg=f"week {t}: FC stock carried over")
        np.testing.assert_allclose(w.transit_at_planning, prev_transit - w.arrivals, atol=tol, err_msg=f"week {t}: arrivals leave transit")
        delivered = np.zeros_like(w.arrivals)
        for _, s in w.delivered:
            delivered[s.fc] += s.units
        np.testing.assert_allclose(delivered, w.arrivals, atol=tol, err_msg=f"week {t}: arrivals are this week's trucks")
        for _, s in w.delivered:
            assert s.arrival == t and s.arrival >= s.nominal_arrival >= s.week + 1
        # vendor: stock + production = stock + shipped, production within capacity
        assert np.all(w.produced >= -tol) and np.all(w.lane_units >= -tol) and np.all(w.vendor_end >= -tol)
        np.testing.assert_allclose(w.vendor_start, prev_vendor, atol=tol, err_msg=f"week {t}: origin stock carried over")
        out_of_origin = np.zeros_like(w.vendor_start)
        np.add.at(out_of_origin, p.lane_origin, w.lane_units)
        np.testing.assert_allclose(
            w.vendor_end, w.vendor_start + w.produced - out_of_origin, atol=tol, err_msg=f"week {t}: origin balance"
        )
        assert np.all(w.produced.sum(axis=1) <= p.capacity + tol), f"week {t}: production above capacity"
        into_fc = np.zeros_like(w.shipped)
        np.add.at(into_fc, p.lane_fc, w.lane_units)
        np.testing.assert_allclose(w.shipped, into_fc, atol=tol, err_msg=f"week {t}: shipped = sum of lanes to the FC")
        assert np.all(w.shipped <= np.maximum(w.po, 0.0) + tol), f"week {t}: shipped more than ordered"
        np.testing.assert_allclose(
            w.transit_after_execution, w.transit_at_planning + w.shipped, atol=tol, err_msg=f"week {t}: shipments enter transit"
        )
        # customers: served + unmet = owed = demand + carried backlog
        assert np.all(w.outbound >= -tol)
        no_arc = np.isnan(p.outbound)
        assert np.all(w.outbound[no_arc] <= tol), f"week {t}: shipped along an FC->region arc that does not exist"
        np.testing.assert_allclose(w.owed, w.demand + prev_backlog, atol=tol, err_msg=f"week {t}: owed")
        np.testing.assert_allclose(w.outbound.sum(axis=0) + w.unmet, w.owed, atol=tol, err_msg=f"week {t}: demand balance")
        served = w.outbound.sum(axis=1)
        assert np.all(served <= w.stock_at_planning + tol), f"week {t}: served more than on hand"
        np.testing.assert_allclose(w.stock_end, w.stock_at_planning - served, atol=tol, err_msg=f"week {t}: FC balance")
        np.testing.assert_allclose(w.backlog_end, w.unmet if backlog_mode else 0.0, atol=tol)
        prev_fc, prev_vendor, prev_transit, prev_backlog = w.stock_end, w.vendor_end, w.transit_after_execution, w.backlog_end
    # the whole run, per product: what existed plus what was made = what exists plus what was sold
    produced = sum(w.produced.sum(axis=0) for w in weeks)
    sold = sum(w.outbound.sum(axis=(0, 1)) for w in weeks)
    last = weeks[-1]
    start = trace.initial_fc.sum(axis=0) + trace.initial_vendor.sum(axis=0)
    end = last.stock_end.sum(axis=0) + last.vendor_end.sum(axis=0) + _transit(trace.world).sum(axis=0)
    np.testing.assert_allclose(start + produced, end + sold, atol=_tol(start, produced, sold), err_msg="run: units conserved")


def ledger_by(rows: list[dict[str, Any]]) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    for r in rows:
        key = (r["party"], r["component"])
        out[key] = out.get(key, 0.0) + r["value"]
    return out


def check_money(trace: Trace, scenario: Scenario) -> None:
    """Every ledger entry is the price of a physical flow; wholesale and transfers net to zero."""
    p = prices_of(scenario)
    for w in trace.weeks:
        led = ledger_by(w.ledger)
        assert {r["week"] for r in w.ledger} == {w.week}
        wholesale = float(np.sum(p.wholesale[None, :] * w.shipped))
        expected = {
            ("retailer", "wholesale"): wholesale,
            ("retailer", "receiving"): float(np.sum(p.receiving[:, None] * w.arrivals)),
            ("retailer", "holding"): float(np.sum(p.holding[None, :] * w.stock_end)),
            ("retailer", "outbound"): float(np.nansum(p.outbound[:, :, None] * w.outbound)),
            ("retailer", "lost_sales"): float(np.sum(p.penalty[None, :] * w.unmet)),
            ("retailer", "transfer"): -w.transfer,
            ("vendor", "wholesale"): -wholesale,
            ("vendor", "production"): float(np.sum(p.production * w.produced)),
            ("vendor", "vendor_holding"): float(np.sum(p.vendor_holding[:, None] * w.vendor_end)),
            ("vendor", "inbound_transport"): lane_cost(p, w.lane_units),
            ("vendor", "transfer"): w.transfer,
        }
        scale = 1.0 + sum(abs(v) for v in expected.values())
        for key, value in expected.items():
            assert key in led, f"week {w.week}: ledger has no {key}"
            assert led[key] == pytest.approx(value, abs=1e-6 * scale), f"week {w.week}: {key}"
        assert set(led) >= set(expected)
        extra = {k: v for k, v in led.items() if k not in expected}
        assert all(abs(v) <= 1e-9 for v in extra.values()), f"week {w.week}: unexplained ledger entries {extra}"
        # parties' net costs add up to the social cost; wholesale and transfers cancel
        retailer = sum(v for (party, _), v in led.items() if party == "retailer")
        vendor = sum(v for (party, _), v in led.items() if party == "vendor")
        social = sum(v for (_, comp), v in expected.items() if comp not in ("wholesale", "transfer"))
        assert retailer + vendor == pytest.approx(social, abs=1e-6 * scale)
        assert led[("retailer", "wholesale")] + led[("vendor", "wholesale")] == pytest.approx(0.0, abs=1e-9 * scale)
        assert led[("retailer", "transfer")] + led[("vendor", "transfer")] == 0.0
        assert all(r["party"] in ("retailer", "vendor") for r in w.ledger)


@pytest.fixture(scope="session")
def checks():
    """The invariant checks, as a namespace, for tests and property tests."""

    class _Checks:
        conservation = staticmethod(check_conservation)
        money = staticmethod(check_money)
        prices = staticmethod(prices_of)
        lane_cost = staticmethod(lane_cost)
        ledger_by = staticmethod(ledger_by)

    return _Checks


def with_product_generator(d: dict, **generator) -> dict:
    """``d`` (a scenario dict) with its products replaced by a V-ADK product generator: stocks and
    production costs no longer name products, so they are cleared or made uniform."""
    d.pop("products")
    d["product_generator"] = generator
    for f in d["fcs"]:
        f["initial_stock"] = {}
    for o in d["origins"]:
        o["initial_stock"] = {}
        o["production_cost"] = 1.0
    return d


FLAKY_POLICY = """\
from policies.jit import JITPolicy
class Flaky(JITPolicy):
    name = "flaky"
    def __init__(self, fail=False):
        self.fail = fail
    def decide(self, ctx):
        if self.fail:
            raise RuntimeError("flaky policy asked to fail")
        return super().decide(ctx)
"""


def write_flaky_policy(folder, module: str = "flaky") -> None:
    """A user's policy that raises when its parameter ``fail`` is true (``folder/<module>.py``) and
    the default scenario with ``policies: {flaky: {fail: false}}`` (``folder/flaky.yaml``), so a
    sweep can make some runs fail by sweeping ``policies.flaky.fail``."""
    import pathlib

    import yaml

    folder = pathlib.Path(folder)
    (folder / f"{module}.py").write_text(FLAKY_POLICY)
    scenario = load_scenario("default").model_dump(mode="json")
    scenario["policies"]["flaky"] = {"fail": False}
    (folder / "flaky.yaml").write_text(yaml.safe_dump(scenario))
