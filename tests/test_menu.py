"""Menu of contracts: the vendor's pick, efficiency against the first-best, participation, audit."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.audit import run_audit
from experiments.menu_efficiency import menu_efficiency
from policies.menu import MenuPolicy, build_menu
from sim.agents import joint_plan
from sim.errors import FlosimError
from sim.scenario import load_scenario
from sim.world import planning_context


@pytest.fixture(scope="module")
def known_demand():
    return load_scenario("default").with_overrides({"demand.deterministic": True})


def test_vendor_pick_is_optimal_among_items(known_demand):
    ctx = planning_context(known_demand, week=1)
    policy = MenuPolicy(size=8, preference="auto", scenarios=1)
    items, quotes, _ = policy.offer(ctx)
    d = policy.decide(ctx)
    totals = [ctx.vendor.evaluate(it.plan).total + q.paid for it, q in zip(items, quotes)]
    chosen = [i for i, it in enumerate(items) if np.allclose(it.plan, d.plan)]
    assert chosen and min(totals[i] for i in chosen) <= min(totals) + 1e-9
    assert items[0].kind == "jit" and np.allclose(items[0].plan, ctx.retailer.preferred_plan().plan)


def test_menus_are_nested(known_demand):
    ctx = planning_context(known_demand, week=1)
    own = ctx.retailer.preferred_plan().plan
    small = build_menu(ctx, own, 5, preferred=["DAL"])
    large = build_menu(ctx, own, 12, preferred=["DAL"])
    assert len(small) == 5 and len(large) == 12
    for a, b in zip(small, large):
        np.testing.assert_allclose(a.plan, b.plan)


@pytest.mark.xfail(
    strict=True,
    reason="open (issue 5): on `default` with known demand, the binding decision of a tailored 12-item menu "
    "lands 0.6-1.25% above first-best (weeks 0, 1, 3); 4-item menus land within 1% (0.18-0.88%), larger ones "
    "not always, because the vendor picks by the completed plan, not by the binding week's social cost",
)
@pytest.mark.parametrize("week", [1, 3])
def test_tailored_menu_of_moderate_size_lands_within_one_percent(known_demand, week):
    from experiments.audit import fixed_first_week_cost

    ctx = planning_context(known_demand, week=week)
    fb = joint_plan(ctx.retailer, ctx.vendor).social_cost
    d = MenuPolicy(size=12, preference="auto", scenarios=1).decide(ctx)
    assert fixed_first_week_cost(ctx.retailer, ctx.vendor, d.po) <= 1.01 * fb


def test_captured_share_does_not_fall_as_the_menu_grows(known_demand):
    table = menu_efficiency([known_demand], sizes=[1, 2, 4, 8, 16], weeks=[1], scenarios_for_prices=1)
    for _, t in table.groupby("tailored"):
        t = t.sort_values("size")
        assert t["share"].iloc[0] == pytest.approx(0.0, abs=1e-9)  # a menu of one is JIT
        shares = t["share_plan"].to_numpy()  # the vendor's own criterion
        assert np.all(np.diff(shares) >= -1e-9), shares
    tailored = table[table.tailored].set_index("size")
    untailored = table[~table.tailored].set_index("size")
    assert tailored.loc[16, "share_plan"] >= untailored.loc[16, "share_plan"] - 1e-9
    assert tailored.loc[4, "share"] > untailored.loc[4, "share"]  # tailoring helps the binding decision


def test_participation_ex_ante_for_both_parties():
    s = load_scenario("default")
    for week in (0, 2):
        d = MenuPolicy(size=8, preference="auto", scenarios=4).decide(planning_context(s, week=week))
        assert d.diagnostics["ex_ante_margin_retailer"] >= -1e-6
        assert d.diagnostics["ex_ante_margin_vendor"] >= -1e-6
        assert d.transfer >= 0


def test_no_vendor_lie_pays_under_the_menu(known_demand):
    table = run_audit(known_demand, ["menu"], weeks=1, parties=["vendor"],
                      policy_overrides={"menu": {"size": 8, "preference": None, "scenarios": 1}})
    assert len(table) >= 7
    assert (table["relative_gain"] <= 1e-7).all(), table[["lie", "gain"]]


def test_first_week_pricing_can_mislead_the_vendor(known_demand):
    # whole plans priced at their first week's CBT mislead the vendor: some menu sizes do worse than JIT
    ctx = planning_context(known_demand, week=1)
    own = ctx.retailer.preferred_plan()
    jit = own.total + ctx.vendor.evaluate(own.plan).total
    socials = [MenuPolicy(size=n, commitment="plan", pricing="first-week", scenarios=1).decide(ctx).diagnostics["planned_social"] for n in (16, 24)]
    assert max(socials) > jit


@pytest.mark.parametrize("kwargs", [{"size": 0}, {"method": "magic"}, {"pricing": "free"}, {"levels": [0.0]}, {"levels": [1.5]}])
def test_bad_parameters_are_user_errors(kwargs):
    with pytest.raises(FlosimError):
        MenuPolicy(**kwargs)
