"""Menu of contracts: the vendor's pick, efficiency against the first-best, participation, audit."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from experiments.audit import run_audit
from experiments.menu_efficiency import menu_efficiency
from policies.menu import MenuPolicy, build_menu, resolve_preference
from policies.registry import make_policy
from sim.parties.oracle import joint_plan
from sim.model.errors import FlosimError
from sim.model.scenario import load_scenario
from sim.world import planning_context


@pytest.fixture(scope="module")
def known_demand():
    return load_scenario("default").with_overrides({"demand.deterministic": True})


@pytest.fixture(scope="module")
def offered(known_demand):
    """Week 1 of the known-demand default: a menu of 8, the vendor's pick, and each item's cost to the
    vendor plus its price (the vendor's criterion)."""
    ctx = planning_context(known_demand, week=1)
    policy = MenuPolicy(size=8, preference="auto", scenarios=1)
    items, quotes, _ = policy.offer(ctx)
    d = policy.decide(ctx)
    totals = [ctx.vendor.evaluate(it.plan[0]).total + q.paid for it, q in zip(items, quotes)]
    return ctx, items, quotes, d, totals


def test_vendor_pick_is_optimal_among_items(offered):
    ctx, items, quotes, d, totals = offered
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


@pytest.mark.parametrize("week", [0, 1, 3, 4, 5])
def test_tailored_menu_of_moderate_size_lands_within_one_percent(known_demand, week):
    # scored by the binding week: S(PO) = least social cost with the PO fixed, later weeks re-planned
    from experiments.audit import fixed_first_week_cost

    ctx = planning_context(known_demand, week=week)
    fb = joint_plan(ctx.retailer, ctx.vendor).social_cost
    d = MenuPolicy(size=12, preference="auto", scenarios=1).decide(ctx)
    assert d.diagnostics["menu_size"] <= 12
    assert fixed_first_week_cost(ctx.retailer, ctx.vendor, d.po) <= 1.01 * fb


def test_names_only_disclosure_is_not_enough_for_one_percent(known_demand):
    # without the disclosed volume the capped items miss the truck's size: the 12-item menu's binding
    # week lands more than 1% above first-best at week 1 (the old open issue); kept to show why
    from experiments.audit import fixed_first_week_cost

    ctx = planning_context(known_demand, week=1)
    fb = joint_plan(ctx.retailer, ctx.vendor).social_cost
    d = MenuPolicy(size=12, preference="auto", disclosure="names", scenarios=1).decide(ctx)
    assert fixed_first_week_cost(ctx.retailer, ctx.vendor, d.po) > 1.01 * fb


def test_auto_preference_discloses_names_and_rounded_volumes(known_demand):
    ctx = planning_context(known_demand, week=1)
    assert MenuPolicy(preference="auto").preferred(ctx) == {"DAL": 700.0}  # the CIN->DAL truck's spare volume
    assert MenuPolicy(preference="auto", volume_step=300).preferred(ctx) == {"DAL": 600.0}
    assert MenuPolicy(preference="auto", disclosure="names").preferred(ctx) == ["DAL"]
    items = build_menu(ctx, ctx.retailer.preferred_plan().plan, 3, preferred={"DAL": 700.0}, first_week=True)
    assert [it.kind.split(" up to")[0] for it in items] == ["jit", "steer PHX->DAL surcharge 0.3", "steer IND->DAL surcharge 0.3"]
    with pytest.raises(FlosimError):
        build_menu(ctx, items[0].plan, 3, preferred={"DAL": -1.0})


def test_captured_share_does_not_fall_as_the_menu_grows(known_demand):
    table = menu_efficiency([known_demand], sizes=[1, 2, 4, 8, 16], weeks=[1, 3], scenarios_for_prices=1)
    for (week, tailored), t in table.groupby(["week", "tailored"]):
        t = t.sort_values("size")
        assert t["share"].iloc[0] == pytest.approx(0.0, abs=1e-9)  # a menu of one is JIT
        shares = t["share_plan"].to_numpy()  # the vendor's own criterion: monotone for any nested menu
        np.testing.assert_allclose(t["share_vendor"].to_numpy(), shares, atol=1e-9)  # equal with known demand
        assert np.all(np.diff(shares) >= -1e-9), (week, tailored, shares)
        if tailored:
            # the binding week's share: not monotone in general (see the module docstring of
            # policies.menu), but on `default` at these weeks it is, and close to all of the saving
            binding = t["share"].to_numpy()
            assert np.all(np.diff(binding) >= -1e-9), (week, binding)
            assert binding[-1] >= 0.85, (week, binding)
    tailored = table[table.tailored].set_index(["week", "size"])
    untailored = table[~table.tailored].set_index(["week", "size"])
    for week in (1, 3):
        assert tailored.loc[(week, 16), "share_plan"] >= untailored.loc[(week, 16), "share_plan"] - 1e-9
        assert tailored.loc[(week, 4), "share"] > untailored.loc[(week, 4), "share"]  # tailoring helps the binding decision


def test_binding_share_can_fall_as_the_menu_grows(known_demand):
    # why monotonicity of the binding share is not a theorem: at week 0 a same-week shift towards DAL
    # beats the steer item on the vendor's criterion (completed plan + price) but not on S
    # (the menu of 12: the early versions of the steer items come before the shift since ``pulls``)
    table = menu_efficiency([known_demand], sizes=[2, 12], weeks=[0], scenarios_for_prices=1)
    t = table[table.tailored].set_index("size")
    assert t.loc[12, "share_plan"] >= t.loc[2, "share_plan"] - 1e-9
    assert t.loc[12, "share"] < t.loc[2, "share"] - 0.1


@pytest.fixture(scope="module")
def uncertain_table():
    # the stochastic default at week 6, where the binding share and the completed plan's share both
    # fall with 8 items (tailored); prices on four sampled demand paths
    return menu_efficiency([load_scenario("default")], sizes=[1, 2, 4, 8, 16], weeks=[6], scenarios_for_prices=4)


def test_efficiency_table_does_not_depend_on_which_sizes_are_requested(uncertain_table):
    # every decision prices on the demand paths the policy gets that week, not on a shared generator's
    # next draws: a size evaluated alone gives the row it gives among others (repeats are dropped)
    alone = menu_efficiency([load_scenario("default")], sizes=[8, 8], weeks=[6, 6], scenarios_for_prices=4)
    assert sorted(alone["size"].unique()) == [8] and len(alone) == 2
    among = uncertain_table[uncertain_table["size"] == 8].reset_index(drop=True)
    pd.testing.assert_frame_equal(alone.reset_index(drop=True), among)


def test_vendor_criterion_never_worsens_as_a_nested_menu_grows_with_uncertain_demand(uncertain_table):
    assert (uncertain_table["demand"] == "uncertain").all()
    for tailored, t in uncertain_table.groupby("tailored"):
        t = t.sort_values("size")
        saving = t["vendor_saving"].to_numpy()  # JIT item's cost + price less the pick's, same paths
        assert saving[0] == pytest.approx(0.0, abs=1e-9) and np.all(np.diff(saving) >= -1e-9), (tailored, saving)
        assert np.all(np.diff(t["share_vendor"].to_numpy()) >= -1e-9)
        assert saving[-1] > 0  # and the menu does find something the vendor prefers to JIT
    tailored = uncertain_table[uncertain_table.tailored].set_index("size")
    assert tailored.loc[16, "share_vendor"] > 0.1 and tailored.loc[2, "share"] > 0.5


def test_the_menu_is_truthful_for_the_vendor_only(known_demand):
    # the CBT is priced from the retailer's own reports: no vendor lie pays, but the retailer gains by
    # inflating its holding cost (weeks 0 and 1 with known demand; docs/mechanisms.md)
    table = run_audit(known_demand, ["menu"], weeks=2, parties=["vendor", "retailer"],
                      policy_overrides={"menu": {"size": 4, "preference": "auto", "scenarios": 1}})
    vendor, retailer = table[table.party == "vendor"], table[table.party == "retailer"].set_index("lie")
    assert len(vendor) >= 7 and (vendor["relative_gain"] <= 1e-7).all(), vendor[["lie", "gain"]]
    assert retailer.loc["inflate_holding_x3", "gain"] > 10.0, retailer[["gain"]]


def test_audit_output_says_the_cbt_mechanisms_are_truthful_for_the_vendor_only():
    from experiments.commands.audit import audit_notes

    (note,) = audit_notes(["menu", "split-savings"], ["vendor", "retailer"])
    assert note.startswith("menu:") and "vendor only" in note and "retailer lie can pay" in note
    assert audit_notes(["split-savings"], ["vendor", "retailer"]) == [] and audit_notes(["menu"], ["vendor"]) == []


def test_participation_ex_ante_for_both_parties():
    s = load_scenario("default")
    for week in (0, 2):
        d = MenuPolicy(size=8, preference="auto", scenarios=4).decide(planning_context(s, week=week))
        assert d.diagnostics["ex_ante_margin_retailer"] >= -1e-6
        assert d.diagnostics["ex_ante_margin_vendor"] >= -1e-6
        assert d.transfers["vendor"] >= 0 and d.transfers["retailer"] == -d.transfers["vendor"]


@pytest.mark.parametrize("preference", [None, "auto"])
def test_no_vendor_lie_pays_under_the_menu(known_demand, preference):
    # with `auto` a lie also changes what the vendor discloses (hiding spare volume hides the room)
    table = run_audit(known_demand, ["menu"], weeks=1, parties=["vendor"],
                      policy_overrides={"menu": {"size": 8, "preference": preference, "scenarios": 1}})
    assert len(table) >= 7
    assert (table["relative_gain"] <= 1e-7).all(), table[["lie", "gain"]]


def test_first_week_pricing_can_mislead_the_vendor(known_demand):
    # whole plans priced at their first week's CBT mislead the vendor: some menu sizes do worse than JIT
    ctx = planning_context(known_demand, week=1)
    own = ctx.retailer.preferred_plan()
    jit = own.total + ctx.vendor.evaluate(own.plan[0]).total
    socials = [MenuPolicy(size=n, commitment="plan", pricing="first-week", scenarios=1).decide(ctx).diagnostics["planned_social"] for n in (16, 24)]
    assert max(socials) > jit


@pytest.mark.parametrize(
    "kwargs, needle",
    [({"size": 0}, "size"), ({"method": "magic"}, "magic"), ({"pricing": "free"}, "free"), ({"levels": [0.0]}, "levels"),
     ({"levels": [1.5]}, "1.5"), ({"disclosure": "costs"}, "costs"), ({"volume_step": 0}, "volume_step"),
     ({"preference": {"DAL": 0}}, "'DAL': 0"), ({"size": 2.5}, "2.5"), ({"size": "big"}, "'big'"), ({"size": True}, "True"),
     ({"scenarios": 0}, "scenarios"), ({"scenarios": "8"}, "'8'"), ({"levels": "x"}, "'x'"), ({"levels": ["a"]}, "'a'"),
     ({"discount": "x"}, "discount"), ({"risk_aversion": -1}, "risk_aversion"), ({"two_way": "yes"}, "two_way"),
     ({"preference": 3}, "preference"), ({"preference": {"DAL": "lots"}}, "'lots'"),
     ({"transfer": {"payee": "each"}}, "transfer.payee 'each'"), ({"transfer": {"rule": "vcg-both"}}, "vcg-both")],
)
def test_bad_parameters_are_user_errors(kwargs, needle):
    field = next(iter(kwargs))
    with pytest.raises(FlosimError) as exc:
        MenuPolicy(**kwargs)
    message = str(exc.value)
    assert "\n" not in message and field in message and needle in message, message


def test_good_parameters_are_accepted():
    assert MenuPolicy(size=4.0).size == 4 and isinstance(MenuPolicy(size=4.0).size, int)
    assert MenuPolicy(preference={"DAL": None}).preference == {"DAL": None}  # a name without a volume
    assert MenuPolicy(preference="SouthWest").preference == ["SouthWest"]


def test_a_region_preference_stands_for_the_fcs_serving_it(known_demand):
    ctx = planning_context(known_demand, week=1)
    fcs = ctx.public.fcs
    # SouthWest is served by PHX (outbound 0.30) and DAL (1.50), cheapest first; IND cannot reach it
    assert [fcs[f] for f in resolve_preference(ctx, ["SouthWest"])] == ["PHX", "DAL"]
    # a region's volume applies to each of its FCs; an FC named itself keeps its own
    assert resolve_preference(ctx, {"SouthWest": 700, "DAL": None}) == {fcs.index("PHX"): 700.0, fcs.index("DAL"): None}
    assert resolve_preference(ctx, {"DAL": 300, "SouthWest": 700}) == {fcs.index("DAL"): 300.0, fcs.index("PHX"): 700.0}
    own = ctx.retailer.preferred_plan().plan
    by_region = build_menu(ctx, own, 8, preferred=["SouthWest"], first_week=True)
    by_fcs = build_menu(ctx, own, 8, preferred=["PHX", "DAL"], first_week=True)
    assert [it.kind for it in by_region] == [it.kind for it in by_fcs]
    assert any("->DAL" in it.kind for it in by_region) and any("->PHX" in it.kind for it in by_region)
    # through the scenario file's parameters, as `policies: menu: {preference: [SouthWest]}`
    scenario = known_demand.with_overrides({"policies.menu": {"size": 8, "preference": ["SouthWest"], "scenarios": 1}})
    d = make_policy("menu", scenario).decide(ctx)
    assert d.diagnostics["menu_size"] == 8


def test_an_unknown_preference_name_is_an_error_listing_fcs_and_regions(known_demand):
    ctx = planning_context(known_demand, week=1)
    with pytest.raises(FlosimError) as exc:
        MenuPolicy(preference=["SouthWest", "Atlantis"], scenarios=1).decide(ctx)
    message = str(exc.value)
    assert "'Atlantis'" in message and "SouthWest'" in message and "'DAL'" in message and "'Midwest'" in message, message
    assert "SouthWest" not in message.split("(")[0]  # only the unknown name is blamed


def test_vendor_saving_is_measured_against_the_jit_item(offered):
    _, _, quotes, d, totals = offered
    # the vendor's own criterion: the JIT item's cost plus price less the pick's
    assert d.diagnostics["vendor_saving"] == pytest.approx(totals[0] - min(totals), abs=1e-9)
    assert d.diagnostics["vendor_saving"] > 1.0
    # the margin is against JIT without a menu (policies.jit.jit_outcome), where the vendor may short
    # its PO: the saving less what shorting x^J is worth to it (the JIT item is priced at zero, and
    # here the vendor would short some of it: the two differ)
    ctx = offered[0]
    assert quotes[0].paid == pytest.approx(0.0, abs=1e-9)
    own = ctx.retailer.preferred_plan().plan[0]
    shorting = ctx.vendor.evaluate(own).total - ctx.vendor.evaluate(own, allow_short=True).total
    assert shorting > 1.0
    assert d.diagnostics["ex_ante_margin_vendor"] == pytest.approx(d.diagnostics["vendor_saving"] - shorting, abs=1e-6)


class _PublicOnly:
    """A retailer agent that offers only public methods (private attributes raise), optionally
    without ``fcs_serving``: stands for a user's own agent."""

    def __init__(self, agent, *, regions: bool = True) -> None:
        self._agent, self._regions = agent, regions

    def __getattr__(self, name):
        if name.startswith("_") or (name == "fcs_serving" and not self._regions):
            raise AttributeError(name)
        return getattr(self._agent, name)


def test_fcs_serving_is_public_retailer_information(known_demand):
    ctx = planning_context(known_demand, week=1)
    assert ctx.retailer.fcs_serving("SouthWest") == ["PHX", "DAL"]  # outbound 0.30, then 1.50; IND has no route
    assert ctx.retailer.fcs_serving("SouthCentral") == ["DAL", "PHX", "IND"]
    with pytest.raises(ValueError, match="Atlantis"):
        ctx.retailer.fcs_serving("Atlantis")
    # the menu resolves regions through the public method only, never the agent's private data
    from dataclasses import replace

    public = replace(ctx, retailer=_PublicOnly(ctx.retailer))
    assert [ctx.public.fcs[f] for f in resolve_preference(public, ["SouthWest"])] == ["PHX", "DAL"]


def test_a_region_preference_needs_a_retailer_agent_that_names_the_fcs_serving_it(known_demand):
    from dataclasses import replace

    ctx = planning_context(known_demand, week=1)
    custom = replace(ctx, retailer=_PublicOnly(ctx.retailer, regions=False))
    with pytest.raises(FlosimError) as exc:
        MenuPolicy(size=4, preference=["SouthWest"], scenarios=1).decide(custom)
    message = str(exc.value)
    assert "\n" not in message and "'SouthWest'" in message and "fcs_serving" in message and "_PublicOnly" in message, message
    # FC names need no region lookup
    assert MenuPolicy(size=4, preference=["DAL"], scenarios=1).decide(custom).diagnostics["menu_size"] == 4


def test_regions_sharing_an_fc_give_it_the_larger_volume_whatever_the_order(known_demand):
    ctx = planning_context(known_demand, week=1)
    dal, phx, ind = (ctx.public.fcs.index(n) for n in ("DAL", "PHX", "IND"))
    # SouthWest is PHX then DAL, Midwest is IND then DAL: DAL is in both
    expected = {phx: 300.0, dal: 700.0, ind: 700.0}
    assert resolve_preference(ctx, {"SouthWest": 300, "Midwest": 700}) == expected
    assert resolve_preference(ctx, {"Midwest": 700, "SouthWest": 300}) == expected
    assert resolve_preference(ctx, {"SouthWest": None, "Midwest": 700})[dal] == 700.0  # a number over none
    assert resolve_preference(ctx, {"Midwest": 700, "SouthWest": None})[dal] == 700.0
    # an FC named itself keeps its own volume, even a smaller one
    assert resolve_preference(ctx, {"Midwest": 700, "DAL": 100})[dal] == 100.0


def test_a_name_that_is_both_an_fc_and_a_region_means_the_fc():
    import yaml
    from importlib import resources

    from sim.model.scenario import scenario_from_dict

    data = yaml.safe_load((resources.files("sim") / "scenarios" / "default.yaml").read_text())
    data["regions"] = ["SouthCentral", "SouthWest", "IND"]  # the Midwest region renamed after the IND FC
    for costs in data["outbound_cost"].values():
        if "Midwest" in costs:
            costs["IND"] = costs.pop("Midwest")
    data["demand"]["region_weights"]["IND"] = data["demand"]["region_weights"].pop("Midwest")
    ctx = planning_context(scenario_from_dict(data).with_overrides({"demand.deterministic": True}), week=0)
    assert ctx.retailer.fcs_serving("IND") == ["IND", "DAL"]  # the region IND is served by two FCs
    assert resolve_preference(ctx, ["IND"]) == {ctx.public.fcs.index("IND"): None}  # the FC alone


def test_duplicated_checks_share_one_message(known_demand):
    ctx = planning_context(known_demand, week=1)
    own = ctx.retailer.preferred_plan().plan
    messages = []
    for call in (lambda: MenuPolicy(preference={"DAL": -1}), lambda: build_menu(ctx, own, 3, preferred={"DAL": -1})):
        with pytest.raises(FlosimError) as exc:
            call()
        messages.append(str(exc.value))
    assert messages[0] == messages[1] == "policy 'menu': preference volumes must be positive numbers (or null), got {'DAL': -1}"
    with pytest.raises(FlosimError) as exc:
        build_menu(ctx, own, 3, method="magic")
    assert str(exc.value) == "policy 'menu': method must be 'discount', 'shift' or 'mixed', got 'magic'"


def test_efficiency_table_runs_the_scenarios_own_menu(known_demand):
    # the scenario's policies.menu parameters reach the policy; only size and preference are set on top
    from dataclasses import replace

    from experiments.menu_efficiency import menu_policy
    from forecasts.inputs import policy_rng

    scenario = known_demand.with_overrides({"policies.menu": {
        "size": 12, "preference": "auto", "commitment": "plan", "pricing": "plan", "method": "discount",
        "levels": [0.5], "scenarios": 3}})
    assert menu_policy(scenario, 4, False).levels == (0.5,)
    table = menu_efficiency([scenario], sizes=[4], weeks=[1])
    assert set(table["contract"]) == {"plan"} and set(table["method"]) == {"discount"}
    assert set(table["price_paths"]) == {3}
    assert dict(zip(table["tailored"], table["preference"])) == {False: "none", True: "auto"}
    tailored = table[table.tailored].iloc[0]
    assert tailored["item"].startswith("steer") and not tailored["item"].endswith("first week"), tailored["item"]
    # the row is the decision `flosim run` would make with that scenario's menu at size 4
    ctx = planning_context(scenario, week=1)
    d = make_policy("menu", scenario, size=4).decide(replace(ctx, rng=policy_rng(scenario.seed, 1)))
    assert tailored["item"] == d.diagnostics["menu_item"] and tailored["offered"] == d.diagnostics["menu_size"]
    assert tailored["vendor_saving"] == pytest.approx(d.diagnostics["vendor_saving"], abs=1e-9)
    # with weekly commitment (the scenario's default) the same pick is only a first week
    weekly = menu_efficiency([known_demand], sizes=[4], weeks=[1], scenarios_for_prices=1)
    assert set(weekly["contract"]) == {"first-week"} and set(weekly["method"]) == {"mixed"}
    assert weekly[weekly.tailored]["item"].iloc[0].endswith("first week")


def test_efficiency_table_tailors_to_a_named_preference_and_options_win(known_demand):
    scenario = known_demand.with_overrides({"policies.menu": {"preference": ["SouthWest"], "method": "discount"}})
    table = menu_efficiency([scenario], sizes=[6], weeks=[1], method="shift", scenarios_for_prices=1)
    assert dict(zip(table["tailored"], table["preference"])) == {False: "none", True: '["SouthWest"]'}
    assert set(table["method"]) == {"shift"}  # the option over the scenario's method
    picked = table[table.tailored]["item"].iloc[0]
    assert picked.startswith("shift"), picked


def test_bad_menu_parameters_in_the_scenario_fail_before_anything_is_solved(known_demand, monkeypatch):
    import experiments.menu_efficiency as me

    def no_context(*a, **k):
        raise AssertionError("a planning context was built")

    monkeypatch.setattr(me, "planning_context", no_context)
    with pytest.raises(FlosimError) as exc:
        menu_efficiency([known_demand.with_overrides({"policies.menu.commitment": "never"})], sizes=[2], weeks=[1])
    assert "commitment" in str(exc.value) and "'never'" in str(exc.value)


def test_each_item_is_completed_and_priced_from_one_solve(monkeypatch):
    """Under weekly commitment an item's completion and its price's first-week cost are the same LP
    (the retailer's cost with the item's PO fixed, on the forecast): it is solved once per item."""
    from sim.parties.retailer import RetailerAgent

    s = load_scenario("default")
    ctx = planning_context(s, week=1)
    calls: list[bool] = []
    original = RetailerAgent.cost_with_first_week

    def counting(self, po, demand=None, state=None):
        calls.append(demand is None)
        return original(self, po, demand, state)

    monkeypatch.setattr(RetailerAgent, "cost_with_first_week", counting)
    policy = MenuPolicy(size=6, scenarios=3)
    items, quotes, _ = policy.offer(ctx)
    paths = 3 if np.any(ctx.forecast_sd > 0) else 1
    # one forecast solve and one per demand path for every item (the JIT item's are the JIT side's own)
    assert sum(calls) == len(items) and len(calls) == len(items) * (1 + paths)
    assert len(items) == 6 and len({q.paid for q in quotes}) > 1


def test_menu_variants_offer_the_first_best_week_and_whole_plans():
    from experiments.menu_variants import MenuWithFirstBestItem, MenuWholePlan

    s = load_scenario("default")
    ctx = planning_context(s, week=1)
    items, quotes, _ = MenuWithFirstBestItem(size=4, scenarios=2).offer(ctx)
    fb = joint_plan(ctx.retailer, ctx.vendor).plan
    assert items[-1].kind == "first-best item" and np.allclose(items[-1].plan[:, 0], fb[:, 0], atol=1e-6)
    assert len(quotes) == len(items)
    whole = MenuWholePlan(size=4)
    assert whole.name == "menu-plan" and whole.commitment == "plan" and whole.pricing == "plan"


# -- several vendors ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_vendor_run():
    from sim.runner import run_policies

    return run_policies(load_scenario("two-vendors"), ["jit", "menu"], weeks=2, progress=False)


def test_menu_with_two_vendors_conserves_units_and_money(two_vendor_run, checks):
    from sim.metrics import measured, policy_totals

    res = two_vendor_run
    assert set(res.ledger.party) == {"retailer", "acme", "sonora"}  # budget balanced: no mechanism row
    checks.flows(res.flows)
    menu = res.ledger[res.ledger.policy == "menu"]
    paid = menu[menu.component == "transfer"].groupby(["week", "phase"])["value"].sum()
    assert np.allclose(paid.to_numpy(), 0.0, atol=1e-6)  # transfers sum to zero across parties every week
    assert np.allclose(menu[menu.component == "wholesale"].groupby(["week", "phase"])["value"].sum(), 0.0, atol=1e-6)
    rows = measured(menu)
    vendors_paid = rows[(rows.component == "transfer") & (rows.party != "retailer")]["value"]
    assert vendors_paid.abs().sum() > 1.0  # some vendor did pay: the check is not vacuous
    totals = policy_totals(res.ledger, res.flows)
    for policy, t in totals.items():
        rows = measured(res.ledger[res.ledger.policy == policy])
        real = rows[~rows.component.isin(["wholesale", "transfer"])]["value"].sum()
        assert t["social_cost"] == pytest.approx(real, rel=1e-9)
        assert t["social_cost"] == pytest.approx(sum(p["net_cost"] for p in t["parties"].values()), rel=1e-9)
    # the decisions table: what the vendors pay is what the retailer receives
    d = res.decisions[res.decisions.policy == "menu"]
    assert {"menu_pick_acme", "menu_pick_sonora", "ex_ante_margin_acme", "ex_ante_margin_sonora"} <= set(d.columns)


def _two_vendor_offers(scenario, week: int, policy: MenuPolicy):
    """The decision and, recomputed apart from it on the same demand paths, each vendor's menu, prices
    and its cost plus price of every item."""
    from dataclasses import replace

    from forecasts.inputs import policy_rng
    from policies.jit import jit_outcome

    ctx = planning_context(scenario, week=week)
    fresh = lambda: replace(ctx, rng=policy_rng(scenario.seed, week))  # noqa: E731
    d = policy.decide(fresh())
    again = fresh()
    jit = jit_outcome(again)
    pricer = policy.pricer(again, jit.plan)
    menus = {}
    for name, agent in ctx.vendors.items():
        v = ctx.public.vendor_index(name)
        items, quotes, _ = policy.offer(again, name, own=jit.retailer, pricer=pricer)
        totals = [agent.evaluate(it.plan[v]).total + q.paid for it, q in zip(items, quotes)]
        menus[name] = (v, items, quotes, totals)
    return ctx, jit, d, menus


@pytest.mark.parametrize("week", [0, 1])
def test_each_vendor_picks_its_best_item_from_its_own_menu(week):
    from policies.jit import jit_outcome

    scenario = load_scenario("two-vendors")
    ctx, jit, d, menus = _two_vendor_offers(scenario, week, MenuPolicy(size=6, preference="auto", scenarios=2))
    assert set(d.transfers) == {"retailer", "acme", "sonora"}
    assert d.transfers["retailer"] == pytest.approx(-(d.transfers["acme"] + d.transfers["sonora"]), abs=1e-9)
    assert not d.diagnostics["receiving_scaled"]  # two-vendors has no receiving capacity: the blocks as picked
    took_an_item = False
    for name, (v, items, quotes, totals) in menus.items():
        for it in items:  # every item of v's menu is x^J in the other vendors' blocks
            others = [u for u in range(ctx.public.V) if u != v]
            np.testing.assert_array_equal(it.plan[others, 0], jit.plan[others, 0])
        pick, item = d.diagnostics[f"menu_pick_{name}"], d.diagnostics[f"menu_item_{name}"]
        if item == "declined: JIT terms":
            # it can ship no item: every total is infinite, and it ships what it ships under JIT, at no price
            assert not np.isfinite(min(totals))
            np.testing.assert_allclose(d.po[v], jit_outcome(ctx).vendors[name].plan[0], atol=1e-9)
            assert d.transfers[name] == 0.0 and d.diagnostics[f"ex_ante_margin_{name}"] == pytest.approx(0.0, abs=1e-6)
            continue
        assert totals[pick] == pytest.approx(min(totals), abs=1e-9)  # its own cost plus price, minimised
        assert items[pick].kind == item
        np.testing.assert_allclose(d.po[v], items[pick].plan[v, 0], atol=1e-9)
        assert d.transfers[name] == pytest.approx(quotes[pick].paid, abs=1e-9)
        took_an_item |= pick > 0
    assert took_an_item  # somebody left x^J: the test is not vacuous


def test_each_vendors_items_are_priced_at_the_retailers_cbt_against_jit():
    # known demand: the price paths are the forecast, so an independent CBT gives the same numbers
    from policies.cbt import cost_benefit_transfer

    scenario = load_scenario("two-vendors").with_overrides({"demand.deterministic": True})
    ctx, jit, d, menus = _two_vendor_offers(scenario, 1, MenuPolicy(size=4, preference="auto", scenarios=1))
    priced = 0
    for name, (v, items, quotes, totals) in menus.items():
        for it, q in zip(items, quotes):
            alone = cost_benefit_transfer(ctx, it.plan, jit.plan, scenarios=1)
            assert q.paid == pytest.approx(alone.paid, abs=1e-6), (name, it.kind)
            priced += q.paid > 0
    assert priced > 0


def test_decline_any_keeps_every_vendor_at_least_as_well_off_as_under_jit(two_vendor_run):
    from sim.runner import run_policies

    # by default the JIT item commits a vendor to ship x^J in full: in week 1 of the menu's own run the
    # Tucson vendor takes an item that leaves it worse off than JIT terms (where it would short). Shown
    # without the early items (``pulls: []``): with them, it finds an early item at least as good as JIT
    # terms in these two weeks, which does not make the default's margin non-negative in general
    no_early = load_scenario("two-vendors").with_overrides({"policies.menu.pulls": []})
    default = run_policies(no_early, ["menu"], weeks=2, progress=False).decisions
    assert default["ex_ante_margin_sonora"].min() < -1.0
    scenario = load_scenario("two-vendors").with_overrides({"policies.menu.decline": "any"})
    d = run_policies(scenario, ["menu"], weeks=2, progress=False).decisions
    for name in ("acme", "sonora"):  # by construction for the vendors (the retailer's is measured, not designed)
        assert d[f"ex_ante_margin_{name}"].min() >= -1e-6, (name, d[f"ex_ante_margin_{name}"].tolist())
    with pytest.raises(FlosimError, match="decline"):
        MenuPolicy(decline="sometimes")


def _default_as_one_named_vendor(name: str):
    """The default scenario written in schema version 2 with its one vendor called ``name``."""
    import yaml
    from importlib import resources

    from sim.model.scenario import scenario_from_dict

    data = yaml.safe_load((resources.files("sim") / "scenarios" / "default.yaml").read_text())
    prices = {p["name"]: p.pop("wholesale_price") for p in data["products"]}
    data["vendors"] = [{"name": name, "origins": data.pop("origins"), "lanes": data.pop("lanes"), "products": prices}]
    data["schema_version"] = 2
    return scenario_from_dict(data)


@pytest.mark.parametrize("week", [1, 3])
def test_one_vendor_gives_the_same_decision_whatever_its_name_and_schema(week):
    v1, v2 = load_scenario("default"), _default_as_one_named_vendor("solo")
    a = MenuPolicy(size=8, preference="auto", scenarios=3).decide(planning_context(v1, week=week))
    b = MenuPolicy(size=8, preference="auto", scenarios=3).decide(planning_context(v2, week=week))
    np.testing.assert_array_equal(a.plan, b.plan)
    assert a.transfers == {"retailer": b.transfers["retailer"], "vendor": b.transfers["solo"]}
    assert a.planned == {"retailer": b.planned["retailer"], "vendor": b.planned["solo"]}
    renamed = {k.replace("_solo", "_vendor"): v for k, v in b.diagnostics.items()}
    assert a.diagnostics == renamed and "ex_ante_margin_vendor" in a.diagnostics
    assert a.diagnostics["menu_pick"] > 0  # a real pick, not the JIT item


def test_efficiency_table_on_two_vendors_names_each_pick_and_a_menu_of_one_is_jit():
    scenario = load_scenario("two-vendors").with_overrides({"demand.deterministic": True})
    table = menu_efficiency([scenario], sizes=[1, 4], weeks=[1], scenarios_for_prices=1)
    assert np.isfinite(table["jit"]).all() and (table["jit"] > table["first_best"]).all()
    for _, row in table.iterrows():
        assert row["item"].startswith("acme: ") and "; sonora: " in row["item"], row["item"]
    one = table[table["size"] == 1]
    assert (one["share"].abs() < 1e-9).all() and (one["vendor_saving"].abs() < 1e-9).all()
    assert table[(table["size"] == 4) & table.tailored]["share"].iloc[0] > 0.5


def test_reprice_keeps_the_agreed_price_of_a_vendor_that_shipped_its_scaled_po_in_full(monkeypatch):
    # the PO the retailer sends may be the picked items scaled down to the FCs' receiving capacity; a
    # vendor that ships that PO in full has nothing to answer for under a remedy: its agreed price stands
    # (re-pricing its item at the scaled block charged it for the retailer's own scaling)
    from sim.model.data import PublicData

    scenario = load_scenario("two-vendors")
    ctx = planning_context(scenario, week=0)
    fit = PublicData.within_receiving_capacity
    monkeypatch.setattr(PublicData, "within_receiving_capacity",
                        lambda self, plan: 0.8 * np.asarray(fit(self, plan), dtype=float))
    d = MenuPolicy(size=6, preference="auto", scenarios=2, remedy="refund").decide(ctx)
    assert d.diagnostics["receiving_scaled"]
    taken = [n for n in ctx.vendors if not d.diagnostics[f"menu_item_{n}"].startswith("declined")
             and d.diagnostics[f"menu_pick_{n}"] > 0]
    assert taken and any(d.transfers[n] != 0.0 for n in taken)  # not vacuous: an item was picked and priced
    assert d.reprice(d.po.copy()) == d.transfers
    # a vendor short of its scaled PO is re-priced on its item less what it left unshipped: more for it
    name = taken[0]
    v = ctx.public.vendor_index(name)
    delivered = d.po.copy()
    delivered[v] *= 0.5
    again = d.reprice(delivered)
    assert again[name] >= d.transfers[name] and again["retailer"] == -sum(again[n] for n in ctx.vendors)


# -- items shipped a week early (pulls) and the pilot's tailored menu ---------------------------------
def test_early_items_ship_part_of_next_week_where_the_item_leaves_the_first_week_alone(known_demand):
    ctx = planning_context(known_demand, week=1)
    own = ctx.retailer.preferred_plan().plan
    items = build_menu(ctx, own, 9, preferred={"DAL": 700.0}, first_week=True, pulls=(0.25, 0.5))
    by_kind = {it.kind: it for it in items}
    early = [it for it in items if it.kind.endswith("of next week earlier")]
    assert len(early) >= 4
    for it in early:
        base_kind, frac = it.kind.rsplit(", ", 1)
        frac = float(frac.split(" ")[0])
        base = by_kind[base_kind].plan[0]
        plan = it.plan[0]
        alone = np.all(np.isclose(base[0], own[0, 0], atol=1e-9), axis=-1)  # FCs the base item leaves alone
        assert alone.any() and not alone.all()
        np.testing.assert_allclose(plan[0, alone], base[0, alone] + frac * base[1, alone])
        np.testing.assert_allclose(plan[1, alone], (1 - frac) * base[1, alone])
        np.testing.assert_allclose(plan[:, ~alone], base[:, ~alone])  # the item's own moves untouched
        np.testing.assert_allclose(plan[2:], base[2:])
        np.testing.assert_allclose(plan.sum(axis=0), base.sum(axis=0))  # the same units, some a week earlier
    # nested: a smaller menu is a prefix of a larger one
    small = build_menu(ctx, own, 5, preferred={"DAL": 700.0}, first_week=True, pulls=(0.25, 0.5))
    for a, b in zip(small, items):
        np.testing.assert_allclose(a.plan, b.plan)
        assert a.kind == b.kind


def test_early_items_change_nothing_with_known_demand(known_demand):
    # with demand known the early units save the retailer nothing, so they cost the vendor a price and
    # it picks what it picked without them
    for week in (0, 1):
        ctx = planning_context(known_demand, week=week)
        with_early = MenuPolicy(size=12, preference="auto", scenarios=1).decide(ctx)
        without = MenuPolicy(size=12, preference="auto", scenarios=1, pulls=[]).decide(ctx)
        assert with_early.diagnostics["menu_item"] == without.diagnostics["menu_item"]
        np.testing.assert_allclose(with_early.po, without.po)


@pytest.mark.parametrize("kwargs, needle", [({"pulls": [0]}, "pulls"), ({"pulls": [1.5]}, "1.5"), ({"pulls": "x"}, "'x'")])
def test_bad_pulls_are_user_errors(kwargs, needle):
    with pytest.raises(FlosimError) as exc:
        MenuPolicy(**kwargs)
    assert "pulls" in str(exc.value) and needle in str(exc.value)


def test_the_pilots_menu_is_tailored_and_its_early_items_are_cheaper_on_demand_paths():
    # pilot week 0: the vendor discloses its room on the CIN->DAL truck; the early version of the
    # leading steer item costs the retailer less over the demand paths (its stock saves lost sales), so
    # its price is lower, and the vendor picks an early item; the binding week stays within 1% of first best
    from experiments.audit import fixed_first_week_cost
    from forecasts.traces import builtin_trace_dir, trace_scenario

    pilot = load_scenario("pilot")
    policy = make_policy("menu", pilot)
    assert policy.preference == "auto" and policy.pulls == (0.25, 0.5)
    assert make_policy("menu", trace_scenario(builtin_trace_dir("pilot"))).preference == "auto"  # the replay's too
    ctx = planning_context(pilot, week=0)
    assert policy.preferred(ctx) == {"DAL": 900.0}
    items, quotes, _ = policy.offer(ctx)
    price = {it.kind: q.raw for it, q in zip(items, quotes)}
    base = "steer PHX->DAL surcharge 0.3 up to 900, first week"
    early = "steer PHX->DAL surcharge 0.3 up to 900, 0.25 of next week earlier, first week"
    assert price[early] < price[base] - 100
    d = policy.decide(ctx)
    assert d.diagnostics["menu_item"].endswith("of next week earlier, first week")
    fb = joint_plan(ctx.retailer, ctx.vendor).social_cost
    assert fixed_first_week_cost(ctx.retailer, ctx.vendor, d.po) <= 1.01 * fb


@pytest.mark.skipif(os.environ.get("FLOSIM_SLOW") != "1", reason="a nine-week pilot run; set FLOSIM_SLOW=1")
def test_the_menu_saves_on_the_pilot_and_the_vendor_gains(tmp_path, capsys):
    # one world (the scenario's seed), settled figures: untailored and without early items the menu saved
    # less than nothing here (share -0.20, vendor's settled margin -240)
    import json

    from experiments.cli import main

    assert main(["run", "--scenario", "pilot", "--policy", "jit", "--policy", "first-best", "--policy", "menu",
                 "--out", str(tmp_path / "out"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["policies"]["menu"]["settled_share_of_first_best_saving"] >= 0.9
    assert summary["participation"]["menu"]["vendor"]["settled_ex_post_margin"] > 0
