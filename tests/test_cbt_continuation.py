"""How the CBT values the retailer's continuation (policies/cbt.py, ``transfer.continuation``).

``forecast`` prices a PO at the retailer's least cost over the horizon with the PO fixed, from one LP on
the forecast (as the plan is chosen): the vendor's round cost is then the social cost minus a term it
cannot influence, on random instances with uncertain demand (where ``paths`` is not), the clamp never
binds, several vendors' pivots equal their hand computation, and the price does not depend on which of the
retailer's optimal plans the solver returns (``paths`` does; ``paths-whole``, each path priced as a whole,
does not either). Bad settings exit 2 naming the field."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import sim.model.lp as lp_module
from experiments.audit import fixed_first_week_cost
from experiments.cli import main
from policies.cbt import TransferPricer
from policies.cpp_vcg import CPPVCGPolicy
from policies.registry import make_policy
from policies.transfer_rules import RETAILER_COST_FIELDS, VENDOR_COST_FIELDS
from sim.model.data import split_scenario
from sim.model.errors import FlosimError
from sim.model.scenario import load_scenario
from sim.parties.oracle import joint_plan
from sim.parties.retailer import RetailerAgent
from sim.parties.vendor import VendorAgent
from sim.world import planning_context


@pytest.fixture(scope="module")
def uncertain():
    """``default`` as shipped: demand uncertain, so the CBT's demand paths differ from the forecast."""
    return load_scenario("default")


def _scaled(data, fields, factors):
    return replace(data, **{f: np.asarray(getattr(data, f), dtype=float) * a for f, a in zip(fields, factors)})


def _random_instance(rng, scenario):
    """``scenario`` at a random early week with the parties' true costs drawn (each cost field scaled x0.5-2)."""
    public, r_data, v_data = split_scenario(scenario)
    ctx = planning_context(scenario, week=int(rng.integers(0, 3)))
    r = RetailerAgent(public, _scaled(r_data, RETAILER_COST_FIELDS, rng.uniform(0.5, 2.0, 4)))
    r.observe(ctx.retailer.state, ctx.retailer.forecast)
    v = VendorAgent(public, _scaled(v_data["vendor"], VENDOR_COST_FIELDS, rng.uniform(0.5, 2.0, 4)))
    v.observe(ctx.vendor.state)
    return replace(ctx, retailer=r, vendors={"vendor": v}), public


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_forecast_continuation_makes_the_vendor_bear_the_social_cost(seed, uncertain):
    """Whatever the vendor reports, its true cost of the round (the audit's: ``S(x_t) - R(x_t)`` plus what it
    pays, ``S`` the least social cost and ``R`` the retailer's with the PO fixed) is ``S(x_t) - R(x^J_t)``, and
    ``R(x^J_t)`` is the retailer's own least cost, which no vendor report moves: so no lie pays. The raw
    pivot is never negative (one-way's clamp never binds: one-way and two-way transfer the same). With the
    continuation priced on sampled paths the same quantity moves with the report."""
    rng = np.random.default_rng(seed)
    ctx, public = _random_instance(rng, uncertain)
    r_true, v_true = ctx.retailer, ctx.vendor
    r_min = r_true.preferred_plan().total

    def lie(fields, factors):
        a = VendorAgent(public, _scaled(v_true._data, fields, factors))
        a.observe(v_true.state)
        return a

    reports = [v_true, lie(["production"], [0.5]), lie(["truckload_cost", "spare_cost"], [2.0, 3.0]),
               lie(["capacity"], [0.6]), lie(["spare_volume"], [0.0])]

    def rounds(rule, continuation):
        policy = CPPVCGPolicy(solver="central", scenarios=4, transfer={"rule": rule, "continuation": continuation})
        out = []
        for report in reports:
            d = policy.decide(replace(ctx, vendors={"vendor": report}, rng=np.random.default_rng(7)))
            s = fixed_first_week_cost(r_true, v_true, d.po)
            cost = s - fixed_first_week_cost(r_true, None, d.po) + d.transfers.get("vendor", 0.0)
            out.append((cost, s, d.diagnostics["pivot_raw_vendor"], d.transfers))
        return out

    two, one = rounds("two-way", "forecast"), rounds("one-way", "forecast")
    truth_cost, truth_s = two[0][0], two[0][1]
    tol = 1e-6 * abs(truth_s)
    for cost, s, raw, _ in two:
        assert cost - s == pytest.approx(-r_min, abs=tol)  # the social cost less what the vendor cannot move
        assert cost >= truth_cost - tol  # so no lie pays
        assert raw >= -tol  # x^J_t minimises R: the pivot is never negative
    assert sum(s > truth_s + tol for _, s, _, _ in two) >= 1  # the lies move the plan
    for (_, _, _, t2), (_, _, _, t1) in zip(two, one):
        assert t1 == pytest.approx(t2, abs=tol)  # the clamp never binds
    paths = rounds("two-way", "paths")
    residual = [cost - s + r_min for cost, s, _, _ in paths]
    assert max(residual) - min(residual) > 1.0  # on paths the report moves the vendor's payoff off S


def _least_first_week(orig):
    """The retailer's queries answered with another optimal plan than a solve from scratch returns: among
    the optimal plans, one with the least first-week cost (``_WeekModel.least_first_week``), forecast too."""
    def solve_on(self, demand, state, idx_of, values, bounds=None):
        week = self._week_model(state, demand)
        if week is None or bounds is not None:
            return orig(self, demand, state, idx_of, values, bounds)
        lp = week.on(self.forecast if demand is None else demand, self.state.backlog).with_bounds(idx_of(week.x), values, values)
        return week.least_first_week(lp), week.x
    return solve_on


def test_forecast_continuation_does_not_depend_on_the_optimal_vertex(uncertain, monkeypatch):
    """The retailer's LP has optimal plans that differ only in which week a cost falls in. Priced as a whole
    (``forecast``), the CBT is a difference of two optimal values, the same whichever plan the solver
    returns (``paths-whole``: on each path too); the split pricing (``paths``: the first week from one solve,
    the later weeks from others) changes with it."""
    ctx = planning_context(uncertain, week=0)
    plan, jit = joint_plan(ctx.retailer, ctx.vendors).plan, ctx.retailer.preferred_plan().plan

    def prices():
        ctx.retailer._models = {}  # the week's LPs solved afresh
        out = {}
        for continuation in ("paths", "forecast", "paths-whole"):
            pricer = TransferPricer(replace(ctx, rng=np.random.default_rng(5)), jit, scenarios=4, two_way=True,
                                    continuation=continuation)
            out[continuation] = pricer.price(plan)
        return out

    monkeypatch.setattr(lp_module, "LP_STARTS", "scratch")  # "cold": every query from scratch
    cold = prices()
    monkeypatch.setattr(RetailerAgent, "_solve_on", _least_first_week(RetailerAgent._solve_on))
    least = prices()
    assert abs(cold["forecast"].immediate - least["forecast"].immediate) > 1.0  # another optimal vertex
    assert least["forecast"].raw == pytest.approx(cold["forecast"].raw, abs=1e-7 * abs(cold["forecast"].raw) + 1e-6)
    assert abs(least["paths"].raw - cold["paths"].raw) > 1.0  # the split pricing moves with it
    # each path priced as a whole: a certainty equivalent of optimal values, vertex-free too
    assert least["paths-whole"].raw == pytest.approx(cold["paths-whole"].raw, abs=1e-7 * abs(cold["paths-whole"].raw) + 1e-6)


def test_several_vendors_forecast_pivot_is_the_joint_least_cost_difference():
    """With several vendors and ``forecast``, vendor ``v`` pays ``S_-v(x*_t) - min S_-v`` (the retailer's and
    the other vendors' least cost with the PO fixed, against their own best plan), every term on the forecast."""
    scenario = load_scenario("two-vendors")
    ctx = planning_context(scenario, week=0)
    d = make_policy("cpp-vcg", scenario, solver="central", scenarios=2,
                    transfer={"rule": "two-way", "continuation": "forecast"}).decide(ctx)
    for name in ctx.vendors:
        others = {u: a for u, a in ctx.vendors.items() if u != name}
        hand = fixed_first_week_cost(ctx.retailer, others, d.po) - joint_plan(ctx.retailer, others).social_cost
        assert d.diagnostics[f"pivot_raw_{name}"] == pytest.approx(hand, abs=1e-6 * d.diagnostics["planned_social"])


def test_menu_prices_items_at_the_forecast_deviation_cost(uncertain):
    """The menu's prices under ``forecast``: an item's price is the retailer's least cost with its first week
    fixed less its own least cost (weekly commitment), both on the forecast; its ex-ante margin is still
    measured over the demand paths (as under ``paths``): what it receives less its expected extra cost."""
    ctx = replace(planning_context(uncertain, week=1), rng=np.random.default_rng(3))
    menu = make_policy("menu", uncertain, transfer={"rule": "two-way", "continuation": "forecast"})
    assert menu.parameters()["transfer"]["continuation"] == "forecast"
    assert type(menu)(**menu.parameters()).continuation == "forecast"
    d = menu.decide(ctx)
    r = ctx.retailer
    scale = abs(r.preferred_plan().total)
    hand = r.cost_with_first_week(d.po).total - r.preferred_plan().total
    assert d.transfers["vendor"] == pytest.approx(hand, abs=1e-6 * scale)
    on_paths = TransferPricer(replace(ctx, rng=np.random.default_rng(3)), r.preferred_plan().plan,
                              scenarios=menu.cbt["scenarios"], two_way=True, continuation="paths-whole").price(d.plan)
    expected = d.transfers["vendor"] - (on_paths.immediate + on_paths.future_mean)
    assert d.diagnostics["ex_ante_margin_retailer"] == pytest.approx(expected, abs=1e-6 * scale)
    assert abs(d.diagnostics["ex_ante_margin_retailer"]) > 1e-3  # not the forecast's identity 0


@pytest.mark.parametrize("policy, settings, field", [
    ("cpp-vcg", {"transfer": {"continuation": "sampled"}}, "transfer.continuation"),
    ("cpp-vcg", {"transfer": {"continuation": 1}}, "transfer.continuation"),
    ("cpp-vcg", {"transfer": {"continuation": "forecast"}, "risk_aversion": 0.5}, "transfer.continuation"),
    ("menu", {"transfer": {"continuation": "forecast"}, "risk_aversion": 0.5}, "transfer.continuation"),
])
def test_bad_continuation_names_the_field(policy, settings, field, tmp_path, capsys):
    import yaml

    base = yaml.safe_load(open("sim/scenarios/default.yaml"))
    base["policies"].setdefault(policy, {}).update(settings)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(base))
    assert main(["run", "--scenario", str(path), "--policy", policy, "--weeks", "1", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert field in err and "Traceback" not in err
    with pytest.raises(FlosimError, match="transfer.continuation"):
        make_policy(policy, load_scenario("default"), **settings)


def test_paths_whole_makes_the_retailer_whole_in_expectation(uncertain):
    """``paths-whole`` with two-way and ``gamma = 0``: the transfer is the retailer's expected extra cost
    over the paths (each path's cost from one solve), so its ex-ante margin is zero; ``gamma > 0`` asks more."""
    ctx = planning_context(uncertain, week=1)
    margins = []
    for gamma in (0.0, 0.01):
        d = make_policy("cpp-vcg", uncertain, solver="central", scenarios=4, risk_aversion=gamma,
                        transfer={"rule": "two-way", "continuation": "paths-whole"}).decide(
            replace(ctx, rng=np.random.default_rng(2)))
        margins.append(d.diagnostics["ex_ante_margin_retailer"])
    assert margins[0] == pytest.approx(0.0, abs=1e-9 * d.diagnostics["planned_social"])
    assert margins[1] > 1e-6
