"""The parties' private cost models (docs/model.md, "Private cost models"), their queries, and the first-best oracle."""

from __future__ import annotations

import numpy as np
import pytest

from forecasts.inputs import draw_inputs
from policies.jit import JITPolicy
from sim.parties.retailer import RetailerState
from sim.parties.oracle import joint_plan
from sim.model.data import split_scenario
from sim.model.lp import LPBuilder, solve_lp
from sim.world import World, planning_context


@pytest.fixture(scope="module")
def contexts(default_scenario):
    """Planning rounds of the default scenario in weeks 0 and 2 (stochastic demand, forecasts)."""
    s = default_scenario.with_overrides({"weeks": 3})
    return [planning_context(s, w) for w in (0, 2)]


def test_first_best_is_never_above_jit_in_a_planning_round(contexts):
    for ctx in contexts:
        own = ctx.retailer.preferred_plan()
        vendor = ctx.vendor.evaluate(own.plan[0])
        jp = joint_plan(ctx.retailer, ctx.vendor)
        assert vendor.feasible
        assert jp.social_cost <= own.total + vendor.total + 1e-6 * (1 + abs(own.total))
        # ... nor above any other plan the vendor can ship, e.g. scaled versions of JIT's
        for scale in (0.5, 0.9):
            plan = scale * own.plan
            v = ctx.vendor.evaluate(plan[0])
            if v.feasible:
                assert jp.social_cost <= ctx.retailer.evaluate(plan).total + v.total + 1e-6 * (1 + abs(own.total))


def test_oracle_split_is_each_partys_own_cost_of_the_plan(contexts):
    for ctx in contexts:
        jp = joint_plan(ctx.retailer, ctx.vendor)
        r, v = ctx.retailer.evaluate(jp.plan), ctx.vendor.evaluate(jp.plan[0])
        assert r.feasible and v.feasible
        tol = 1e-6 * (1 + abs(r.total) + abs(v.total))
        assert jp.retailer.total == pytest.approx(r.total, abs=tol)
        assert jp.vendor.total == pytest.approx(v.total, abs=tol)
        assert jp.social_cost == pytest.approx(jp.retailer.total + jp.vendor.total, abs=tol)
        # wholesale payments cancel in the social cost
        w = sum(val for (comp, _), val in jp.retailer.breakdown.items() if comp == "wholesale")
        wv = sum(val for (comp, _), val in jp.vendor.breakdown.items() if comp == "wholesale")
        assert w > 0 and w + wv == pytest.approx(0.0, abs=tol)
        # JIT is the retailer's own optimum: no plan is cheaper for the retailer
        assert ctx.retailer.preferred_plan().total <= r.total + tol


def test_plan_costs_add_up(contexts):
    ctx = contexts[0]
    for pc in (ctx.retailer.preferred_plan(), joint_plan(ctx.retailer, ctx.vendor).vendor):
        assert pc.by_week.shape == (ctx.public.horizon,)
        assert pc.by_week.sum() == pytest.approx(pc.total)
        assert sum(pc.breakdown.values()) == pytest.approx(pc.total)
        assert not any(comp.startswith("_") for comp, _ in pc.breakdown)


def test_jit_plan_the_vendor_cannot_ship(small_scenario):
    """When JIT's plan exceeds what the vendor can make, ``evaluate`` says so (infinite cost); the fair
    comparison is the plan it ships short, and first-best still beats it."""
    s = small_scenario.with_overrides({"origins.O1.capacity": 5, "origins.O2.capacity": 5, "origins.O1.initial_stock": {}})
    ctx = planning_context(s, 0)
    own = ctx.retailer.preferred_plan()
    v = ctx.vendor.evaluate(own.plan[0])
    assert not v.feasible and v.total == np.inf
    short = ctx.vendor.evaluate(own.plan[0], allow_short=True)
    assert short.feasible
    assert np.all(short.plan <= own.plan[0] + 1e-9) and short.plan.sum() < own.plan.sum()
    assert np.all(short.plan.sum(axis=(1, 2)) <= 10 + 1e-6)  # capacity 5 + 5 a week
    jp = joint_plan(ctx.retailer, ctx.vendor)
    assert ctx.vendor.evaluate(jp.plan[0]).feasible
    assert jp.social_cost <= ctx.retailer.evaluate(short.plan[None]).total + ctx.vendor.evaluate(short.plan).total + 1e-6


def test_retailer_lp_matches_design_on_a_hand_example(small_dict):
    """One FC, one region, one product, lead time 1, deterministic demand 10 a week, no stock: the
    retailer's plan orders exactly next week's demand each week and pays w + a per unit."""
    d = small_dict
    d.update(
        horizon=3,
        regions=["East"],
        fcs=[{"name": "E1", "receiving_cost": 0.5, "lead_time": 1}],
        outbound_cost={"E1": {"East": 0.25}},
        products=[{"name": "a", "wholesale_price": 4.0, "holding_cost": 0.1, "lost_sales_penalty": 9.0, "base_demand": 10}],
        origins=[{"name": "O1", "capacity": 100, "production_cost": 1.0}],
        lanes=[{"origin": "O1", "fc": "E1", "truckload_cost": 0.5}],
        demand={"deterministic": True},
        terminal_value=0.0,
    )
    from sim.model.scenario import scenario_from_dict

    ctx = planning_context(scenario_from_dict(d), 0)
    own = ctx.retailer.preferred_plan()
    # week 0 demand is lost (nothing on hand, nothing can arrive); weeks 1, 2 are served from x[0], x[1]
    np.testing.assert_allclose(own.plan[0, :, 0, 0], [10, 10, 0], atol=1e-9)
    expected = 9.0 * 10 + 2 * 10 * (4.0 + 0.5 + 0.25)
    assert own.total == pytest.approx(expected)
    assert own.breakdown[("lost_sales", 0)] == pytest.approx(90.0)
    # vendor: makes and ships 10 a week, earns w - production - lane = 4 - 1 - 0.5 per unit
    v = ctx.vendor.evaluate(own.plan[0])
    assert v.total == pytest.approx(-20 * (4.0 - 1.0 - 0.5))
    jp = joint_plan(ctx.retailer, ctx.vendor)
    assert jp.social_cost == pytest.approx(own.total + v.total)


def test_lane_cost_is_spare_volume_then_truckload(small_dict, checks):
    """Ship more than the spare volume on a lane: the first spare_volume units of volume cost spare_cost,
    the rest truckload_cost (the convex piecewise cost of docs/model.md, "Private cost models")."""
    from sim.model.scenario import scenario_from_dict

    s = scenario_from_dict(small_dict)
    ctx = planning_context(s, 0)
    lane = 0  # O1 -> E1, spare 50 at 0.05, then 0.8
    po = np.zeros((ctx.public.F, ctx.public.K))
    po[0, 0] = 70.0  # product a, volume 1: 50 on the spare truck, 20 at truckload rates
    ful = ctx.vendor.fulfil(po, committed=True)
    assert ful.shipped[0, 0] == pytest.approx(70.0)
    assert ful.lane_units[lane, 0] == pytest.approx(70.0)
    assert ful.costs["inbound_transport"] == pytest.approx(50 * 0.05 + 20 * 0.8)
    assert ful.costs["inbound_transport"] == pytest.approx(checks.lane_cost(checks.prices(s), ful.lane_units))
    # 10 units from O1's stock, 60 produced at 1.5
    assert ful.produced.sum() == pytest.approx(60.0)
    assert ful.costs["production"] == pytest.approx(60 * 1.5)


def test_uncommitted_vendor_shorts_units_not_worth_shipping(small_dict):
    """Under JIT the vendor ships a unit only if the wholesale price covers its marginal cost;
    committed to a plan, it ships everything it can."""
    from sim.model.scenario import scenario_from_dict

    d = small_dict
    d["products"][0]["wholesale_price"] = 2.0  # a: production 1.5 at O1 (+0.8 truckload beyond spare) or 1.2 at O2
    d["origins"][0]["initial_stock"] = {}
    s = scenario_from_dict(d)
    ctx = planning_context(s, 0)
    po = np.zeros((ctx.public.F, ctx.public.K))
    po[0, 0] = 80.0  # to E1, only from O1: 50 ride the spare truck (1.55/unit), 30 at truckload (2.3/unit)
    jit = ctx.vendor.fulfil(po, committed=False)
    assert jit.shipped[0, 0] == pytest.approx(50.0)
    committed = ctx.vendor.fulfil(po, committed=True)
    assert committed.shipped[0, 0] == pytest.approx(80.0)
    # capacity binds: O1 makes at most 150 a week
    po[0, 0] = 400.0
    assert ctx.vendor.fulfil(po, committed=True).shipped[0, 0] == pytest.approx(150.0)


def test_serve_demand_uses_the_cheapest_stocked_fc(small_scenario):
    ctx = planning_context(small_scenario, 0)
    stock = np.array([[100.0, 0.0], [5.0, 0.0]])  # E1, W1 x products a, b
    demand = np.array([[10.0, 4.0], [20.0, 0.0]])  # East, West x a, b
    y, unmet = ctx.retailer.serve_demand(stock, demand)
    # West's a: 5 from W1 (0.3), 15 from E1 (1.0); East's a from E1; no b anywhere
    assert y[1, 1, 0] == pytest.approx(5.0)
    assert y[0, 1, 0] == pytest.approx(15.0)
    assert y[0, 0, 0] == pytest.approx(10.0)
    assert y[1, 0, 0] == pytest.approx(0.0)  # W1 cannot serve East
    np.testing.assert_allclose(unmet, [[0, 4], [0, 0]], atol=1e-9)


def test_retailer_state_is_the_worlds_pipeline_shifted_by_a_week(small_dict, tracer):
    """What the retailer's agent is told each week (stock, pipeline, backlog) follows from last week's:
    with trucks on time, this week's shipments join the pipeline at their lead time, next week's
    arrivals move into stock, and unmet demand is carried as backlog."""
    from sim.model.scenario import scenario_from_dict

    d = small_dict
    for lane in d["lanes"]:
        lane["delay"] = {"values": [0], "probs": [1.0]}
    d["unmet_demand"] = "backlog"
    d["weeks"] = 4
    d["horizon"] = 4
    s = scenario_from_dict(d)
    seen = {}

    class Spy(JITPolicy):
        def decide(self, ctx):
            seen[ctx.week] = ctx.retailer.state
            return super().decide(ctx)

    trace = tracer(s, Spy(), draw_inputs(s))
    lead = np.array([f.lead_time for f in s.fcs])
    for t in range(s.weeks - 1):
        now, nxt, w = seen[t], seen[t + 1], trace.weeks[t]
        assert np.all(now.pipeline[0] == 0)
        expected = np.zeros_like(now.pipeline)
        expected[:-1] = now.pipeline[1:]
        for f, l in enumerate(lead):
            expected[l - 1, f] += w.shipped[f]
        np.testing.assert_allclose(nxt.stock, w.stock_end + expected[0], atol=1e-6)
        expected[0] = 0.0
        np.testing.assert_allclose(nxt.pipeline, expected, atol=1e-6)
        np.testing.assert_allclose(nxt.backlog, w.unmet, atol=1e-6)
    assert any(seen[t].pipeline.sum() > 0 for t in seen)  # W1's lead time 2 keeps trucks in the pipeline


def test_cost_breakdown_sums_to_the_objective(contexts):
    ctx = contexts[0]
    b = LPBuilder()
    x = b.add_var(ctx.public.shape)
    ctx.retailer.add_block(b, x)
    ctx.vendor.add_block(b, x[0])
    sol = solve_lp(b.build())
    assert sum(sol.cost_breakdown().values()) == pytest.approx(sol.objective, rel=1e-9)
    assert sol.objective == pytest.approx(joint_plan(ctx.retailer, ctx.vendor).social_cost, rel=1e-7)


def test_split_scenario_keeps_private_data_apart(default_scenario):
    pub, ret, vendors = split_scenario(default_scenario)
    assert pub.shape == (1, default_scenario.horizon, 3, 3) and pub.vendors == ("vendor",)
    ven = vendors["vendor"]
    # what may be public is; costs are only in the private views
    assert not any(hasattr(pub, name) for name in ("receiving", "holding", "outbound", "production", "truckload_cost"))
    fcs, regions = list(pub.fcs), list(pub.regions)
    assert np.isinf(ret.outbound[fcs.index("PHX"), regions.index("Midwest")])  # no PHX -> Midwest arc
    assert ret.outbound[fcs.index("DAL"), regions.index("SouthWest")] == 1.5
    assert ven.lane_names[0] == "CIN->DAL" and ven.spare_volume[0] == 700
    assert isinstance(RetailerState(ret.initial_stock, np.zeros(pub.shape), np.zeros((3, 3))), RetailerState)
