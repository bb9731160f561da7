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

# derandomize: the same examples on every run and machine, so a property test cannot pass on one CI run
# and fail on the next (set FLOSIM_PROPERTY_EXAMPLES higher, or drop derandomize locally, to explore)
settings.register_profile("flosim", deadline=None, derandomize=True,
                          max_examples=int(os.environ.get("FLOSIM_PROPERTY_EXAMPLES", "8")))
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
class VendorWeek:
    """One vendor's execution of one week, as the world did it."""

    start: np.ndarray  # [O, K] origin stock at planning
    po: np.ndarray | None = None  # [F, K] its block of the PO
    shipped: np.ndarray | None = None  # [F, K]
    lane_units: np.ndarray | None = None  # [L, K] its own lanes
    produced: np.ndarray | None = None  # [O, K]
    end: np.ndarray | None = None  # [O, K]
    costs: dict[str, float] | None = None


@dataclass
class WeekTrace:
    week: int
    times: dict[str, float] = field(default_factory=dict)
    stock_before_arrivals: np.ndarray | None = None  # [F, K]
    arrivals: np.ndarray | None = None  # [F, K]
    stock_at_planning: np.ndarray | None = None  # [F, K]
    transit_at_planning: np.ndarray | None = None  # [F, K], after this week's arrivals
    backlog_start: np.ndarray | None = None  # [R, K]
    vendors: dict[str, VendorWeek] = field(default_factory=dict)  # by vendor name
    po: np.ndarray | None = None  # [V, F, K]
    transit_after_execution: np.ndarray | None = None
    demand: np.ndarray | None = None
    owed: np.ndarray | None = None
    outbound: np.ndarray | None = None  # [F, R, K]
    unmet: np.ndarray | None = None
    stock_end: np.ndarray | None = None
    backlog_end: np.ndarray | None = None
    transfers: dict[str, float] = field(default_factory=dict)
    ledger: list[dict[str, Any]] = field(default_factory=list)
    delivered: list[tuple[float, Any]] = field(default_factory=list)  # (time, shipment)

    @property
    def shipped(self) -> np.ndarray:
        """Units shipped into each FC this week by all vendors, ``[F, K]``."""
        return sum(v.shipped for v in self.vendors.values())

    @property
    def produced(self) -> np.ndarray:
        """Units produced this week by all vendors, ``[K]`` summed over origins."""
        return sum(v.produced.sum(axis=0) for v in self.vendors.values())

    def _only(self) -> VendorWeek:
        assert len(self.vendors) == 1, "one-vendor accessor on a several-vendor trace"
        return next(iter(self.vendors.values()))

    # one-vendor conveniences (the only vendor's figures)
    @property
    def lane_units(self) -> np.ndarray:
        return self._only().lane_units

    @property
    def vendor_start(self) -> np.ndarray:
        return self._only().start

    @property
    def vendor_end(self) -> np.ndarray:
        return self._only().end

    @property
    def transfer(self) -> float:
        """What the vendors paid this week in total."""
        return float(sum(self.transfers.get(name, 0.0) for name in self.vendors))


@dataclass
class Trace:
    world: World
    weeks: list[WeekTrace]
    initial_fc: np.ndarray
    initial_vendor: dict[str, np.ndarray]
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
    initial_fc = world.fc_stock.copy()
    initial_vendor = {name: stock.copy() for name, stock in world.vendor_stock.items()}

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
        w.vendors = {name: VendorWeek(start=stock.copy()) for name, stock in world.vendor_stock.items()}
        w.backlog_start = world.backlog.copy()
        log.append(w)
        phases.append((world.env.now, "forecast", t))
        return orig_context(t)

    def execute(t: int, decision):
        w = log[-1]
        w.times["execution"] = world.env.now
        phases.append((world.env.now, "execution", t))
        orig_execute(t, decision)
        w.po = np.array(decision.po, dtype=float)
        for name, ful in world._week["fulfilments"].items():
            vw = w.vendors[name]
            vw.po = w.po[world.public.vendor_index(name)].copy()
            vw.shipped, vw.lane_units, vw.produced = ful.shipped.copy(), ful.lane_units.copy(), ful.produced.copy()
            vw.end, vw.costs = ful.end_stock.copy(), dict(ful.costs)
        w.transit_after_execution = _transit(world)
        w.transfers = {k: float(v) for k, v in decision.transfers.items()}

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
class VendorPrices:
    """One vendor's prices and network, read from the scenario's vendor list."""

    wholesale: np.ndarray  # [K], 0 where it does not supply
    supplies: np.ndarray  # [K] bool
    production: np.ndarray  # [O, K]
    vendor_holding: np.ndarray  # [O]
    capacity: np.ndarray  # [O]
    lane_origin: np.ndarray
    lane_fc: np.ndarray
    spare_volume: np.ndarray
    spare_cost: np.ndarray
    truckload_cost: np.ndarray
    volume: np.ndarray  # [K]


@dataclass(frozen=True)
class Prices:
    receiving: np.ndarray  # [F]
    holding: np.ndarray  # [K]
    penalty: np.ndarray  # [K]
    outbound: np.ndarray  # [F, R], nan where no arc
    volume: np.ndarray  # [K]
    vendors: dict[str, VendorPrices]

    def _only(self) -> VendorPrices:
        assert len(self.vendors) == 1, "one-vendor accessor on a several-vendor scenario"
        return next(iter(self.vendors.values()))

    def __getattr__(self, name: str) -> Any:  # one-vendor conveniences: prices.production, prices.lane_fc ...
        if name in VendorPrices.__dataclass_fields__:
            return getattr(self._only(), name)
        raise AttributeError(name)


def prices_of(s: Scenario) -> Prices:
    K = [p.name for p in s.products]
    F = [f.name for f in s.fcs]
    out = np.full((len(F), len(s.regions)), np.nan)
    for f, row in s.outbound_cost.items():
        for r, c in row.items():
            out[F.index(f), s.regions.index(r)] = c
    volume = np.array([p.volume for p in s.products])
    vendors = {}
    for spec in s.vendor_specs():
        O = [o.name for o in spec.origins]
        prod = np.array([[o.production_cost.get(k, 0.0) if isinstance(o.production_cost, dict) else o.production_cost
                          for k in K] for o in spec.origins])
        vendors[spec.name] = VendorPrices(
            wholesale=np.array([spec.wholesale.get(k, 0.0) for k in K]),
            supplies=np.array([k in spec.wholesale for k in K]),
            production=prod,
            vendor_holding=np.array([o.holding_cost for o in spec.origins]),
            capacity=np.array([o.capacity for o in spec.origins]),
            lane_origin=np.array([O.index(l.origin) for l in spec.lanes]),
            lane_fc=np.array([F.index(l.fc) for l in spec.lanes]),
            spare_volume=np.array([l.spare_volume for l in spec.lanes]),
            spare_cost=np.array([l.spare_cost for l in spec.lanes]),
            truckload_cost=np.array([l.truckload_cost for l in spec.lanes]),
            volume=volume,
        )
    return Prices(
        receiving=np.array([f.receiving_cost for f in s.fcs]),
        holding=np.array([p.holding_cost for p in s.products]),
        penalty=np.array([p.lost_sales_penalty for p in s.products]),
        outbound=out,
        volume=volume,
        vendors=vendors,
    )


def lane_cost(p: Prices | VendorPrices, lane_units: np.ndarray) -> float:
    """The piecewise linear lane cost of docs/model.md ("Private cost models"), from the scenario's lane parameters."""
    v = p if isinstance(p, VendorPrices) else p._only()
    vol = lane_units @ v.volume  # [L]
    spare = np.minimum(vol, v.spare_volume)
    return float(np.sum(v.spare_cost * spare + v.truckload_cost * (vol - spare)))


def _tol(*arrays: np.ndarray) -> float:
    scale = max([1.0] + [float(np.max(np.abs(a))) for a in arrays if a is not None and np.size(a)])
    return 1e-6 * scale


def check_conservation(trace: Trace, scenario: Scenario) -> None:
    """Units: nothing created or lost, at each FC and every vendor's origins, in transit and at the customer."""
    p = prices_of(scenario)
    weeks = trace.weeks
    backlog_mode = scenario.unmet_demand == "backlog"
    prev_fc, prev_vendor = trace.initial_fc, dict(trace.initial_vendor)
    prev_transit = np.zeros_like(prev_fc)
    prev_backlog = np.zeros((len(scenario.regions), len(scenario.products)))
    for w in weeks:
        tol = _tol(w.stock_at_planning, w.shipped, w.owed, w.transit_at_planning,
                   *[a for v in w.vendors.values() for a in (v.start, v.produced)])
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
        # each vendor: stock + production = stock + shipped, production within capacity, only its own lanes
        assert set(w.vendors) == set(p.vendors)
        for name, vw in w.vendors.items():
            vp = p.vendors[name]
            assert np.all(vw.produced >= -tol) and np.all(vw.lane_units >= -tol) and np.all(vw.end >= -tol)
            np.testing.assert_allclose(vw.start, prev_vendor[name], atol=tol, err_msg=f"week {t}: {name}'s origin stock carried over")
            out_of_origin = np.zeros_like(vw.start)
            np.add.at(out_of_origin, vp.lane_origin, vw.lane_units)
            np.testing.assert_allclose(vw.end, vw.start + vw.produced - out_of_origin, atol=tol, err_msg=f"week {t}: {name}'s origin balance")
            assert np.all(vw.produced.sum(axis=1) <= vp.capacity + tol), f"week {t}: {name}'s production above capacity"
            into_fc = np.zeros_like(vw.shipped)
            np.add.at(into_fc, vp.lane_fc, vw.lane_units)
            np.testing.assert_allclose(vw.shipped, into_fc, atol=tol, err_msg=f"week {t}: {name} shipped = sum of its lanes to the FC")
            assert np.all(vw.shipped <= np.maximum(vw.po, 0.0) + tol), f"week {t}: {name} shipped more than ordered"
            assert np.all(vw.shipped[:, ~vp.supplies] <= tol), f"week {t}: {name} shipped a product it does not supply"
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
        prev_fc, prev_transit, prev_backlog = w.stock_end, w.transit_after_execution, w.backlog_end
        prev_vendor = {name: vw.end for name, vw in w.vendors.items()}
    # the whole run, per product: what existed plus what was made = what exists plus what was sold
    produced = sum(w.produced for w in weeks)
    sold = sum(w.outbound.sum(axis=(0, 1)) for w in weeks)
    last = weeks[-1]
    start = trace.initial_fc.sum(axis=0) + sum(v.sum(axis=0) for v in trace.initial_vendor.values())
    end = last.stock_end.sum(axis=0) + sum(v.end.sum(axis=0) for v in last.vendors.values()) + _transit(trace.world).sum(axis=0)
    np.testing.assert_allclose(start + produced, end + sold, atol=_tol(start, produced, sold), err_msg="run: units conserved")


def ledger_by(rows: list[dict[str, Any]]) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    for r in rows:
        key = (r["party"], r["component"])
        out[key] = out.get(key, 0.0) + r["value"]
    return out


def check_money(trace: Trace, scenario: Scenario) -> None:
    """Every ledger entry is the price of a physical flow; wholesale and transfers net to zero across
    all parties (the retailer, every vendor, and the mechanism's balance if any)."""
    p = prices_of(scenario)
    for w in trace.weeks:
        led = ledger_by(w.ledger)
        assert {r["week"] for r in w.ledger} == {w.week}
        sales = {name: float(np.sum(p.vendors[name].wholesale[None, :] * vw.shipped)) for name, vw in w.vendors.items()}
        expected = {
            ("retailer", "wholesale"): sum(sales.values()),
            ("retailer", "receiving"): float(np.sum(p.receiving[:, None] * w.arrivals)),
            ("retailer", "holding"): float(np.sum(p.holding[None, :] * w.stock_end)),
            ("retailer", "outbound"): float(np.nansum(p.outbound[:, :, None] * w.outbound)),
            ("retailer", "lost_sales"): float(np.sum(p.penalty[None, :] * w.unmet)),
            ("retailer", "transfer"): w.transfers.get("retailer", 0.0),
        }
        for name, vw in w.vendors.items():
            vp = p.vendors[name]
            expected.update({
                (name, "wholesale"): -sales[name],
                (name, "production"): float(np.sum(vp.production * vw.produced)),
                (name, "vendor_holding"): float(np.sum(vp.vendor_holding[:, None] * vw.end)),
                (name, "inbound_transport"): lane_cost(vp, vw.lane_units),
                (name, "transfer"): w.transfers.get(name, 0.0),
            })
        # the mechanism's row: minus what the retailer and the vendors pay (a policy may name it too)
        balance = -sum(v for p, v in w.transfers.items() if p != "mechanism")
        if balance != 0.0:
            expected[("mechanism", "transfer")] = balance
        scale = 1.0 + sum(abs(v) for v in expected.values())
        for key, value in expected.items():
            assert key in led, f"week {w.week}: ledger has no {key}"
            assert led[key] == pytest.approx(value, abs=1e-6 * scale), f"week {w.week}: {key}"
        assert set(led) >= set(expected)
        extra = {k: v for k, v in led.items() if k not in expected}
        assert all(abs(v) <= 1e-9 for v in extra.values()), f"week {w.week}: unexplained ledger entries {extra}"
        # parties' net costs add up to the social cost; wholesale and transfers cancel
        total = sum(led.values())
        social = sum(v for (_, comp), v in expected.items() if comp not in ("wholesale", "transfer"))
        assert total == pytest.approx(social, abs=1e-6 * scale)
        assert sum(v for (_, comp), v in led.items() if comp == "wholesale") == pytest.approx(0.0, abs=1e-9 * scale)
        assert sum(v for (_, comp), v in led.items() if comp == "transfer") == pytest.approx(0.0, abs=1e-9 * scale)
        assert {r["party"] for r in w.ledger} <= {"retailer", "mechanism", *w.vendors}


def check_flows(flows: Any) -> None:
    """The flows table's unit balances, per policy and week (measured and cool-down weeks alike): FC
    stock, goods in transit and the vendors' origin stock carry over, demand is served or unmet, nobody
    ships more than ordered, and one week's end is the next week's start."""
    for policy, f in flows.groupby("policy"):
        f = f.sort_values("week")
        tol = 1e-6 * (1 + f[["fc_stock_start", "in_transit_start", "owed"]].abs().max().max())
        assert np.allclose(f.fc_stock_end, f.fc_stock_start + f.arrivals - f.served, atol=tol), policy
        assert np.allclose(f.in_transit_end, f.in_transit_start - f.arrivals + f.shipped, atol=tol), policy
        assert np.allclose(f.vendor_stock_end, f.vendor_stock_start + f.produced - f.shipped, atol=tol), policy
        assert np.allclose(f.served + f.unmet, f.owed, atol=tol), policy
        assert np.all(f.shipped <= f.po + tol), policy
        assert np.allclose(f.fc_stock_end.values[:-1], f.fc_stock_start.values[1:], atol=tol), policy
        assert np.allclose(f.in_transit_end.values[:-1], f.in_transit_start.values[1:], atol=tol), policy
        assert np.allclose(f.vendor_stock_end.values[:-1], f.vendor_stock_start.values[1:], atol=tol), policy


@pytest.fixture(scope="session")
def checks():
    """The invariant checks, as a namespace, for tests and property tests."""

    class _Checks:
        conservation = staticmethod(check_conservation)
        money = staticmethod(check_money)
        flows = staticmethod(check_flows)
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


def one_vendor_round(scenario: Scenario) -> tuple[Any, Any]:
    """The retailer's and the only vendor's agents of a one-vendor scenario's first planning round
    (:func:`experiments.benchmarks.planning_round`)."""
    from experiments.benchmarks import planning_round

    retailer, vendors = planning_round(scenario)
    (vendor,) = vendors.values()
    return retailer, vendor


def retailer_lp(scenario: Scenario) -> tuple[Any, np.ndarray]:
    """The retailer's LP of a one-vendor scenario's first planning round and its plan variables."""
    from sim.model.lp import LPBuilder

    retailer, _ = one_vendor_round(scenario)
    b = LPBuilder()
    x = b.add_var(retailer.public.shape)
    retailer.add_block(b, x)
    return b.build(), x


#: Which part of the plan each of (retailer, vendor) answers for in a one-vendor negotiation.
ONE_VENDOR_BLOCKS = [None, 0]


def holders_weighted_mean(agents: Any, blocks: Any, shape: tuple[int, ...]) -> np.ndarray:
    """The optimum of quadratic agents ``C_i(x) = (a_i/2)||x - b_i||²`` that each hold a block of a plan of
    ``shape``: every component is the ``a``-weighted mean of the targets of the agents holding it."""
    num, den = np.zeros(shape), np.zeros(shape)
    for g, b in zip(agents, blocks, strict=True):
        num[b] += g.a * g.b
        den[b] += g.a
    return num / den


def assert_run_refuses(data: dict, policy: str, needles: Any, tmp_path: Any, capsys: Any) -> None:
    """``flosim run`` on the scenario ``data`` (written to a file) exits 2 with a one-line error (no
    traceback) holding every needle, and writes no results folder."""
    import yaml

    from experiments.cli import main

    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    out = tmp_path / "results"
    code = main(["run", "--scenario", str(path), "--policy", policy, "--weeks", "1", "--json", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 2 and "Traceback" not in captured.err, captured.err
    assert captured.err.startswith("flosim: error: ")
    for needle in needles:
        assert needle in captured.err, (needle, captured.err)
    assert not out.exists()
