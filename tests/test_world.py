"""The simulated world: units conserved, money adding up, determinism, phase order, and the story of
the default scenario (first-best fills the spare Cincinnati->Dallas truck and serves South-West
customers from Dallas; JIT buys Phoenix stock directly)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasts.inputs import draw_inputs
from sim.model.decision import Decision
from policies.jit import JITPolicy
from sim.parties.oracle import joint_plan
from sim.model.lp import LPBuilder, solve_lp
from sim.metrics import measured, policy_totals, summarize
from sim.runner import run_policies
from sim.world import ACCOUNTING, ARRIVALS, DEMAND, EXECUTION, FORECAST, PLANNING, World, planning_context

WEEKS = 4


@pytest.fixture(scope="module")
def default4(default_scenario):
    return default_scenario.with_overrides({"weeks": WEEKS})


@pytest.fixture(scope="module")
def traces(default4, tracer):
    inputs = draw_inputs(default4)
    return {p: tracer(default4, p, inputs) for p in ("jit", "first-best")}


# -- units and money ------------------------------------------------------------------------------
@pytest.mark.parametrize("policy", ["jit", "first-best"])
def test_units_are_conserved_week_by_week(traces, default4, checks, policy):
    trace = traces[policy]
    assert len(trace.weeks) == WEEKS
    # the check is not vacuous: something arrives, is produced, is sold
    assert sum(w.arrivals.sum() for w in trace.weeks) > 0
    assert sum(w.produced.sum() for w in trace.weeks) > 0
    assert sum(w.outbound.sum() for w in trace.weeks) > 0
    checks.conservation(trace, default4)


@pytest.mark.parametrize("policy", ["jit", "first-best"])
def test_money_adds_up_week_by_week(traces, default4, checks, policy):
    checks.money(traces[policy], default4)


def test_flows_table_balances(default4, checks):
    res = run_policies(default4, ["jit", "first-best"])
    checks.flows(res.flows)  # measured and cool-down weeks alike
    # summary totals are the ledger's sums, and the parties' net costs add up to the social cost
    # (raw figures: the measured weeks; settled figures: with the cool-down rows too)
    totals = policy_totals(res.ledger, res.flows)
    assert set(res.ledger.phase) == {"measured", "settle"}
    for policy, t in totals.items():
        every = res.ledger[res.ledger.policy == policy]
        rows = measured(every)
        assert t["social_cost"] == pytest.approx(t["retailer_net_cost"] + t["vendor_net_cost"], rel=1e-12)
        real = rows[~rows.component.isin(["wholesale", "transfer"])]["value"].sum()
        assert t["social_cost"] == pytest.approx(real, rel=1e-9)
        assert t["settled_social_cost"] == pytest.approx(t["settled_retailer_net_cost"] + t["settled_vendor_net_cost"], rel=1e-12)
        real = every[~every.component.isin(["wholesale", "transfer"])]["value"].sum()
        assert t["settled_social_cost"] == pytest.approx(real, rel=1e-9)
        assert t["transfers"] == 0.0
        # the stock left at the end, by the units identity over the whole run: what was there at the
        # start, plus what was made, less what customers got
        f = measured(res.flows[res.flows.policy == policy]).sort_values("week")
        start = f.iloc[0][["fc_stock_start", "in_transit_start", "vendor_stock_start"]].sum()
        left = t["end_fc_stock"] + t["end_in_transit"] + t["end_vendor_stock"]
        assert left == pytest.approx(start + f.produced.sum() - f.served.sum(), rel=1e-9, abs=1e-6), policy
    # common random numbers: both worlds face the same customers
    d = res.flows.pivot(index="week", columns="policy", values="demand")
    assert (d["jit"] == d["first-best"]).all()


def test_ledger_has_every_component_every_week(default4):
    res = run_policies(default4, ["jit"])
    assert list(res.ledger.columns) == ["run", "policy", "week", "party", "component", "value", "phase"]
    required = {
        "retailer": {"wholesale", "receiving", "holding", "outbound", "lost_sales", "transfer"},
        "vendor": {"wholesale", "production", "inbound_transport", "vendor_holding", "transfer"},
    }
    for week, rows in res.ledger.groupby("week"):
        for party, comps in required.items():
            assert comps <= set(rows[rows.party == party].component), (week, party)
    assert sorted(measured(res.ledger).week.unique()) == list(range(WEEKS))
    cool = res.ledger[res.ledger.phase == "settle"]
    assert sorted(cool.week.unique()) == list(range(WEEKS, WEEKS + res.settle)) and res.settle == default4.horizon
    assert np.isfinite(res.ledger.value).all()


class PayingJIT:
    """JIT, but the vendor pays the retailer a fixed sum each week (tests the transfer's signs)."""

    name = "paying-jit"

    def __init__(self, amount: float = 12.5) -> None:
        self.amount = amount
        self._jit = JITPolicy()

    def decide(self, ctx):
        d = self._jit.decide(ctx)
        return Decision(plan=d.plan, transfers={"vendor": self.amount, "retailer": -self.amount}, committed=False)


def test_transfers_net_to_zero_and_leave_social_cost_unchanged(default4):
    res = run_policies(default4, ["jit", PayingJIT(12.5)])
    led = res.ledger
    assert (led.loc[(led.component == "transfer") & (led.phase == "settle"), "value"] == 0).all()  # the cool-down is JIT
    led = measured(led)
    tr = led[led.component == "transfer"].pivot(index=["policy", "week"], columns="party", values="value")
    assert (tr["retailer"] + tr["vendor"] == 0).all()
    paying = tr.loc["paying-jit"]
    assert (paying["vendor"] == 12.5).all() and (paying["retailer"] == -12.5).all()  # vendor pays, retailer receives
    totals = policy_totals(led, res.flows)
    jit, pay = totals["jit"], totals["paying-jit"]
    assert pay["transfers"] == pytest.approx(12.5 * WEEKS)
    assert pay["social_cost"] == pytest.approx(jit["social_cost"], abs=1e-6)
    assert pay["retailer_net_cost"] == pytest.approx(jit["retailer_net_cost"] - 12.5 * WEEKS, abs=1e-6)
    assert pay["vendor_net_cost"] == pytest.approx(jit["vendor_net_cost"] + 12.5 * WEEKS, abs=1e-6)


# -- determinism ----------------------------------------------------------------------------------
def test_same_seed_same_ledger_bit_for_bit(default4):
    a = run_policies(default4, ["jit", "first-best"])
    b = run_policies(default4, ["jit", "first-best"])
    pd.testing.assert_frame_equal(a.ledger, b.ledger, check_exact=True)
    pd.testing.assert_frame_equal(a.flows, b.flows, check_exact=True)
    assert a.inputs.same_as(b.inputs)


def test_different_seeds_differ(default4):
    a = run_policies(default4, ["jit"], seed=1)
    b = run_policies(default4, ["jit"], seed=2)
    assert not a.inputs.same_as(b.inputs)
    assert not np.array_equal(a.ledger.value.values, b.ledger.value.values)
    assert not np.array_equal(a.flows.demand.values, b.flows.demand.values)
    # and the seed argument is the scenario's seed: seed=S is the same run as a scenario with seed S
    c = run_policies(default4.with_overrides({"seed": 1}), ["jit"])
    pd.testing.assert_frame_equal(a.ledger, c.ledger, check_exact=True)


def test_policy_order_does_not_change_results(default4):
    a = run_policies(default4, ["jit", "first-best"])
    b = run_policies(default4, ["first-best", "jit"])
    key = ["policy", "week", "party", "component"]
    pd.testing.assert_frame_equal(
        a.ledger.sort_values(key).reset_index(drop=True), b.ledger.sort_values(key).reset_index(drop=True), check_exact=True
    )


# -- phase order ----------------------------------------------------------------------------------
def test_weekly_phases_run_in_design_order(traces, default4):
    order = ["forecast", "planning", "execution", "demand", "accounting"]
    offsets = dict(zip(order, [FORECAST, PLANNING, EXECUTION, DEMAND, ACCOUNTING]))
    for trace in traces.values():
        log = trace.phase_log
        arrivals_seen = 0
        for t in range(WEEKS):
            # positions of this week's steps in the order SimPy processed them
            pos = {ph: i for i, (_, ph, wk) in enumerate(log) if wk == t and ph != "arrival"}
            assert [pos[ph] for ph in order] == sorted(pos[ph] for ph in order), f"week {t}: steps out of order"
            for ph in order:
                assert log[pos[ph]][0] == pytest.approx(t + offsets[ph])
            # every truck due this week is unloaded after last week's accounting and before this week's forecast
            for i, (time, ph, wk) in enumerate(log):
                if ph == "arrival" and wk == t:
                    arrivals_seen += 1
                    assert time == pytest.approx(t + ARRIVALS)
                    assert i < pos["forecast"]
                    if t > 0:
                        prev_acc = next(j for j, (_, p2, w2) in enumerate(log) if p2 == "accounting" and w2 == t - 1)
                        assert i > prev_acc
        assert arrivals_seen > 0  # the check saw trucks arrive
        # planning sees the stock after this week's arrivals
        for w in trace.weeks:
            assert np.allclose(w.stock_at_planning, w.stock_before_arrivals + w.arrivals)


def test_policy_sees_this_weeks_forecast_and_stock_after_arrivals(default4):
    inputs = draw_inputs(default4)
    seen = []

    class Spy(JITPolicy):
        def decide(self, ctx):
            seen.append((ctx.week, ctx.retailer.forecast.copy(), ctx.retailer.state.stock.copy()))
            return super().decide(ctx)

    res = World(default4, Spy(), inputs).run()
    flows = pd.DataFrame(res.flows)
    assert [w for w, _, _ in seen] == list(range(WEEKS))
    for week, forecast, stock in seen:
        np.testing.assert_array_equal(forecast, inputs.forecasts[week])
        row = flows[flows.week == week].iloc[0]
        assert stock.sum() == pytest.approx(row.fc_stock_start + row.arrivals)


def test_planning_context_matches_the_world_after_earlier_weeks(default4):
    s = default4.with_overrides({"demand.deterministic": True})
    seen = {}

    class Spy(JITPolicy):
        def decide(self, ctx):
            seen[ctx.week] = ctx.retailer.state
            return super().decide(ctx)

    World(s, Spy(), draw_inputs(s)).run(3)
    ctx = planning_context(s, 2)
    np.testing.assert_allclose(ctx.retailer.state.stock, seen[2].stock)
    np.testing.assert_allclose(ctx.retailer.state.pipeline, seen[2].pipeline)


# -- the story ------------------------------------------------------------------------------------
def _blocks(ctx, plan):
    """Both parties' best private responses to a fixed plan: outbound routing and lane use."""
    b = LPBuilder()
    x = b.add_var(ctx.public.shape)
    r = ctx.retailer.add_block(b, x)
    v = ctx.vendor.add_block(b, x[0])
    sol = solve_lp(b.build().with_bounds(x, plan, plan))
    return {k: sol.values(idx) for k, idx in {**r, **v}.items()}


@pytest.fixture(scope="module")
def story(default_scenario):
    s = default_scenario.with_overrides({"demand.deterministic": True, "weeks": WEEKS})
    lanes = [f"{lane.origin}->{lane.fc}" for lane in s.lanes]
    fcs = [f.name for f in s.fcs]
    return {
        "scenario": s,
        "cin_dal": lanes.index("CIN->DAL"),
        "spare": next(lane.spare_volume for lane in s.lanes if (lane.origin, lane.fc) == ("CIN", "DAL")),
        "phx_lanes": [i for i, name in enumerate(lanes) if name.endswith("->PHX")],
        "DAL": fcs.index("DAL"),
        "PHX": fcs.index("PHX"),
        "SW": s.regions.index("SouthWest"),
    }


def test_story_in_one_planning_round(story):
    s = story["scenario"]
    ctx = planning_context(s, 0)
    own = ctx.retailer.preferred_plan()
    jp = joint_plan(ctx.retailer, ctx.vendor)
    jit, fb = _blocks(ctx, own.plan), _blocks(ctx, jp.plan)
    cd, DAL, PHX, SW = story["cin_dal"], story["DAL"], story["PHX"], story["SW"]
    # first-best puts extra volume on the scheduled Cincinnati->Dallas truck, inside its spare volume
    assert fb["spare"][:, cd].sum() > jit["spare"][:, cd].sum() + 1.0
    assert np.all(fb["spare"][:, cd] <= story["spare"] + 1e-6)
    assert fb["truckload"][:, cd].sum() == pytest.approx(0.0, abs=1e-6)
    assert jp.plan[:, :, DAL].sum() > own.plan[:, :, DAL].sum()
    # ... and serves part of South-West demand from Dallas, which JIT never does
    assert fb["outbound"][:, DAL, SW].sum() > 1.0
    assert jit["outbound"][:, DAL, SW].sum() == pytest.approx(0.0, abs=1e-6)
    # JIT buys Phoenix stock directly, serving South-West from Phoenix; first-best buys less of it
    assert own.plan[0, 0, PHX].sum() > 0
    assert jit["outbound"][:, PHX, SW].sum() > 0
    assert jit["lane_units"][:, story["phx_lanes"]].sum() > fb["lane_units"][:, story["phx_lanes"]].sum()
    # and the joint plan is cheaper for the two together
    vendor_jit = ctx.vendor.evaluate(own.plan[0])
    assert vendor_jit.feasible
    assert jp.social_cost < own.total + vendor_jit.total - 1.0


def test_story_in_the_simulated_world(story, tracer, checks):
    s = story["scenario"]
    inputs = draw_inputs(s)
    np.testing.assert_array_equal(inputs.demand, inputs.forecasts[:, 0])  # deterministic: forecasts are exact
    tr = {p: tracer(s, p, inputs) for p in ("jit", "first-best")}
    cd, DAL, PHX, SW = story["cin_dal"], story["DAL"], story["PHX"], story["SW"]
    dal_to_sw = {p: sum(w.outbound[DAL, SW].sum() for w in t.weeks) for p, t in tr.items()}
    assert dal_to_sw["first-best"] > 1.0
    assert dal_to_sw["first-best"] > 2 * dal_to_sw["jit"]
    # JIT's plans never route South-West through Dallas; in the world it does so only as a fallback,
    # when Phoenix has run out of that product (shorted by the vendor or a late truck)
    for w in tr["jit"].weeks:
        for k in np.flatnonzero(w.outbound[DAL, SW] > 1e-6):
            assert w.stock_end[PHX, k] == pytest.approx(0.0, abs=1e-6), f"week {w.week}: Dallas served South-West with Phoenix stocked"
    cin_dal = {p: sum(w.lane_units[cd].sum() for w in t.weeks) for p, t in tr.items()}
    assert cin_dal["first-best"] > cin_dal["jit"] + 1.0
    assert all(w.po[:, PHX].sum() > 0 for w in tr["jit"].weeks)  # JIT orders Phoenix stock every week
    phx = {p: sum(w.shipped[PHX].sum() for w in t.weeks) for p, t in tr.items()}
    assert phx["first-best"] < phx["jit"]
    for p, t in tr.items():
        checks.conservation(t, s)
        checks.money(t, s)
    social = {p: sum(r["value"] for w in t.weeks for r in w.ledger) for p, t in tr.items()}
    assert social["first-best"] < social["jit"]
    res = run_policies(s, ["jit", "first-best"])
    summary = summarize(res.ledger, res.flows, res.decisions)
    assert summary["first-best"]["saving_vs_jit"] > 0


def test_the_invariant_checks_catch_a_lost_unit_and_a_wrong_price(traces, default4, checks):
    """The checks above are not vacuous: one unit vanishing in transit, or one mispriced ledger row, fails them."""
    import copy
    import dataclasses

    def copy_of(trace):
        return dataclasses.replace(trace, weeks=copy.deepcopy(trace.weeks))

    trace = copy_of(traces["jit"])
    w = next(w for w in trace.weeks[1:] if w.arrivals.sum() > 0)
    f, k = np.unravel_index(np.argmax(w.arrivals), w.arrivals.shape)
    w.stock_at_planning[f, k] -= 1.0  # a unit unloaded but never stocked
    with pytest.raises(AssertionError):
        checks.conservation(trace, default4)
    trace = copy_of(traces["jit"])
    row = next(r for r in trace.weeks[1].ledger if r["component"] == "inbound_transport")
    row["value"] += 1.0
    with pytest.raises(AssertionError):
        checks.money(trace, default4)


def test_first_best_builds_stock_ahead_of_a_capacity_bound_peak():
    """Deterministic demand peaking above the vendor's weekly capacity, trucks on time: the first-best
    plan produces ahead and stores at the origin (cheap) to serve the peak, and the world should
    execute that plan, losing no sales."""
    from sim.model.scenario import scenario_from_dict

    s = scenario_from_dict(
        {
            "name": "peak",
            "weeks": 4,
            "horizon": 4,
            "regions": ["R"],
            "fcs": [{"name": "F", "lead_time": 1}],
            "outbound_cost": {"F": {"R": 0.0}},
            "products": [{"name": "a", "wholesale_price": 5.0, "holding_cost": 1.0, "lost_sales_penalty": 20.0, "base_demand": 100}],
            "origins": [{"name": "O", "capacity": 100, "production_cost": 1.0, "holding_cost": 0.01}],
            "lanes": [{"origin": "O", "fc": "F", "truckload_cost": 0.5}],
            "demand": {"model": "seasonal", "multipliers": [0.0, 0.5, 0.5, 2.0], "deterministic": True},
            "terminal_value": 0.0,
        }
    )
    ctx = planning_context(s, 0)
    jp = joint_plan(ctx.retailer, ctx.vendor)
    # the premise: the plan serves every unit and builds origin stock to do so
    assert sum(v for (comp, _), v in jp.retailer.breakdown.items() if comp == "lost_sales") == pytest.approx(0.0, abs=1e-9)
    assert sum(v for (comp, _), v in jp.vendor.breakdown.items() if comp == "vendor_holding") > 0
    res = run_policies(s, ["first-best"])
    assert res.flows.unmet.sum() == pytest.approx(0.0, abs=1e-6)
