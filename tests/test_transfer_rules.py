"""Transfer rules (policies/transfer_rules.py): each rule against a hand computation on a known-demand
instance with the central solver, vcg-both's alignment of every party with the social cost, budget
identities, and bad settings (exit 2 naming the field)."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest

from experiments.audit import fixed_first_week_cost
from experiments.cli import main
from policies.cpp_vcg import CPPVCGPolicy
from policies.registry import make_policy
from policies.transfer_rules import (RETAILER_COST_FIELDS, RULES, VENDOR_COST_FIELDS, PivotTerms, TransferSettings,
                                     WeekInputs, settle, transfer_settings)
from sim.model.data import split_scenario
from sim.model.errors import FlosimError
from sim.model.scenario import load_scenario
from sim.parties.oracle import joint_plan
from sim.parties.retailer import RetailerAgent
from sim.parties.vendor import VendorAgent
from sim.world import planning_context


@pytest.fixture(scope="module")
def known():
    """``default`` with known demand; week 1 with discount 0.5 makes the raw pivot negative (-55)."""
    return load_scenario("default").with_overrides({"demand.deterministic": True})


def _cbt(ctx, plan, discount):
    """The CBT by hand: the retailer's cost with this week's PO fixed (its own continuation) against its
    own plan's, the binding week plus ``discount`` times the later weeks (known demand: one path)."""
    r = ctx.retailer
    eff, own = r.cost_with_first_week(plan[:, 0]), r.cost_with_first_week(r.preferred_plan().plan[:, 0])
    return float(eff.by_week[0] - own.by_week[0]) + discount * float(eff.by_week[1:].sum() - own.by_week[1:].sum())


def _decide(scenario, week, **params):
    ctx = planning_context(scenario, week=week)
    policy = make_policy("cpp-vcg", scenario, solver="central", scenarios=1, **params)
    return ctx, policy.decide(ctx)


def test_one_way_is_the_clamped_cbt(known):
    ctx, d = _decide(known, 1, discount=0.5, transfer={"rule": "one-way"})
    raw = _cbt(ctx, d.plan, 0.5)
    assert raw < -1.0  # the clamp binds here
    assert d.transfers == {} and d.balance == 0.0
    assert d.diagnostics["pivot_raw_vendor"] == pytest.approx(raw, abs=1e-6)
    assert d.diagnostics["transfer_clamped"] == 1
    ctx, d = _decide(known, 0, transfer={"rule": "one-way"})
    raw = _cbt(ctx, d.plan, 1.0)
    assert raw > 1.0
    assert d.transfers["vendor"] == pytest.approx(raw, abs=1e-6) and d.transfers["retailer"] == pytest.approx(-raw, abs=1e-6)


def test_two_way_is_the_unclamped_cbt(known):
    ctx, d = _decide(known, 1, discount=0.5, transfer={"rule": "two-way"})
    raw = _cbt(ctx, d.plan, 0.5)
    assert raw < -1.0
    assert d.transfers["vendor"] == pytest.approx(raw, abs=1e-6)  # the retailer pays the vendor
    assert d.transfers["retailer"] == pytest.approx(-raw, abs=1e-6)
    assert d.balance == 0.0 and d.diagnostics["transfer_clamped"] == 0
    # the alias: two_way: true is the same rule
    _, alias = _decide(known, 1, discount=0.5, two_way=True)
    assert alias.transfers == d.transfers


def test_vcg_both_each_party_pays_its_own_pivot(known):
    ctx, d = _decide(known, 0, transfer={"rule": "vcg-both"})
    v = ctx.vendor
    own, fixed = v.preferred_plan(), v.preferred_plan(first_week=d.plan[0, 0])
    retailer_pivot = fixed.total - own.total  # the vendors' extra cost at x*_t over their own preferred plan
    assert retailer_pivot > 1.0
    assert d.transfers["vendor"] == pytest.approx(_cbt(ctx, d.plan, 1.0), abs=1e-6)
    assert d.transfers["retailer"] == pytest.approx(retailer_pivot, abs=1e-6)
    # not budget balanced: the mechanism keeps both payments (B < 0, a surplus)
    assert d.balance == pytest.approx(-(d.transfers["vendor"] + d.transfers["retailer"]), abs=1e-9)
    assert d.diagnostics["transfer_balance"] == pytest.approx(d.balance, abs=1e-9)


def test_split_savings_rule_splits_the_reported_saving(known):
    ctx, d = _decide(known, 0, transfer={"rule": "split-savings", "share": 0.3})
    jit_r = ctx.retailer.preferred_plan()
    jit_v = ctx.vendor.evaluate(jit_r.plan[0], allow_short=True)
    eff_r, eff_v = ctx.retailer.evaluate(d.plan), ctx.vendor.evaluate(d.plan[0])
    extra = eff_r.by_week[0] - jit_r.by_week[0]
    saving = (jit_v.by_week[0] - eff_v.by_week[0]) - extra
    pay = extra + 0.3 * saving
    assert d.transfers["vendor"] == pytest.approx(pay, abs=1e-6)
    assert d.transfers["retailer"] == pytest.approx(-pay, abs=1e-6)
    # ex ante, the retailer's margin over JIT is what it receives less its extra cost over the horizon (the CBT)
    assert d.diagnostics["ex_ante_margin_retailer"] == pytest.approx(pay - _cbt(ctx, d.plan, 1.0), abs=1e-6)


def _scaled(data, fields, factors):
    return replace(data, **{f: np.asarray(getattr(data, f), dtype=float) * a for f, a in zip(fields, factors)})


def test_expected_externality_by_hand(known):
    """xi_i: the others' mean cost over the prior's draws of the plan chosen on i's report, less their cost
    at the plan of the drawn profile (i's prior mean); T_i = xi_i - xi_j; the sum is zero."""
    prior = {"draws": 2, "spread": 0.3}
    public, r_data, v_data = split_scenario(known)
    ctx = planning_context(known, week=0)
    ctx = replace(ctx, rng=np.random.default_rng(7))
    lying = VendorAgent(public, _scaled(v_data["vendor"], ["production"], [0.6]))
    lying.observe(ctx.vendor.state)
    ctx = replace(ctx, vendors={"vendor": lying})
    d = make_policy("cpp-vcg", known, solver="central", scenarios=1,
                    transfer={"rule": "expected-externality", "prior": prior}).decide(ctx)
    # the same draws by hand: the policy's generator spawns one child for the prior
    rng = np.random.default_rng(7).spawn(1)[0]
    draws = []
    for _ in range(2):
        r = RetailerAgent(public, _scaled(r_data, RETAILER_COST_FIELDS, rng.uniform(0.7, 1.3, 4)))
        r.observe(ctx.retailer.state, ctx.retailer.forecast)
        v = VendorAgent(public, _scaled(v_data["vendor"], VENDOR_COST_FIELDS, rng.uniform(0.7, 1.3, 4)))
        v.observe(ctx.vendor.state)
        draws.append((r, v))
    # each party: the others' cost at the plan on its report, less at the plan of the whole drawn profile
    xi_v = np.mean([joint_plan(r, lying).retailer.total - joint_plan(r, v).retailer.total for r, v in draws])
    xi_r = np.mean([joint_plan(ctx.retailer, v).vendor.total - joint_plan(r, v).vendor.total for r, v in draws])
    assert abs(xi_v) > 1.0 and abs(xi_r) > 1.0
    assert d.diagnostics["expected_externality_vendor"] == pytest.approx(xi_v, rel=1e-9, abs=1e-6)
    assert d.diagnostics["expected_externality_retailer"] == pytest.approx(xi_r, rel=1e-9, abs=1e-6)
    assert d.transfers["vendor"] == pytest.approx(xi_v - xi_r, rel=1e-9, abs=1e-6)
    assert d.transfers["retailer"] == pytest.approx(xi_r - xi_v, rel=1e-9, abs=1e-6)
    assert abs(math.fsum(d.transfers.values())) <= 1e-9 and d.balance == 0.0


def test_expected_externality_is_bayesian_truthful_on_its_own_draws(known):
    """Averaged over the prior's draws the mechanism uses (the others' types), a vendor's true cost of the
    plan chosen on its report plus its transfer is least when it reports its true costs: its transfer is
    the others' expected cost plus terms its report does not move (the AGV argument, for the one-shot
    reading of the week the rule uses). Ex post, against the others' actual types, a lie may pay."""
    prior = {"draws": 3, "spread": 0.3}
    public, r_data, v_data = split_scenario(known)
    base = planning_context(known, week=0)
    policy = make_policy("cpp-vcg", known, solver="central", scenarios=1, transfer={"rule": "expected-externality", "prior": prior})
    rng = np.random.default_rng(11).spawn(1)[0]
    retailers = []
    for _ in range(3):
        r = RetailerAgent(public, _scaled(r_data, RETAILER_COST_FIELDS, rng.uniform(0.7, 1.3, 4)))
        r.observe(base.retailer.state, base.retailer.forecast)
        retailers.append(r)
        rng.uniform(0.7, 1.3, 4)  # the vendor's drawn factors (not needed here)
    truth = base.vendor

    def interim(report):
        d = policy.decide(replace(base, vendors={"vendor": report}, rng=np.random.default_rng(11)))
        own = np.mean([truth.evaluate(joint_plan(r, report).plan[0]).total for r in retailers])
        return own + d.transfers["vendor"]

    def lie(fields, factors):
        a = VendorAgent(public, _scaled(v_data["vendor"], fields, factors))
        a.observe(truth.state)
        return a

    honest = interim(truth)
    for report in (lie(["production"], [0.6]), lie(["truckload_cost"], [2.0]), lie(["production", "holding"], [1.5, 2.0])):
        assert interim(report) >= honest - 1e-6 * abs(honest)


def test_expected_externality_balances_every_week_with_two_vendors():
    """Budget balance in every week of a run (three parties: the redistribution divides by n - 1 = 2)."""
    from sim.runner import run_policies

    scenario = load_scenario("two-vendors")
    policy = make_policy("cpp-vcg", scenario, solver="central", scenarios=2,
                         transfer={"rule": "expected-externality", "prior": {"draws": 2, "spread": 0.2}})
    result = run_policies(scenario, [policy], weeks=3, progress=False)
    ledger = result.ledger[result.ledger.component == "transfer"]
    sums = ledger.groupby("week")["value"].sum()
    assert len(sums) >= 3 and (sums.abs() <= 1e-9).all()
    moved = ledger[ledger.party != "mechanism"].groupby("week")["value"].apply(lambda v: v.abs().sum())
    assert (moved > 1.0).any()  # something is paid: the identity is not vacuous
    d = result.decisions
    assert (d["transfer_rule"] == "expected-externality").all()


def _random_instance(rng, known, week):
    """``default`` at ``week`` with the parties' true costs drawn at random (each cost field scaled)."""
    public, r_data, v_data = split_scenario(known)
    ctx = planning_context(known, week=week)
    r = RetailerAgent(public, _scaled(r_data, RETAILER_COST_FIELDS, rng.uniform(0.5, 2.0, 4)))
    r.observe(ctx.retailer.state, ctx.retailer.forecast)
    v = VendorAgent(public, _scaled(v_data["vendor"], VENDOR_COST_FIELDS, rng.uniform(0.5, 2.0, 4)))
    v.observe(ctx.vendor.state)
    return replace(ctx, retailer=r, vendors={"vendor": v}), public


@pytest.mark.parametrize("seed", [1, 2])
def test_vcg_both_every_party_pays_the_social_cost_up_to_a_constant(seed, known):
    """On random instances, whatever a party reports (the other truthful), its true cost of the round
    (its cost of the binding week, its continuation under the rule, what it pays) is the true social
    cost of the round minus a term its report does not move; so the truthful report is best."""
    rng = np.random.default_rng(seed)
    ctx, public = _random_instance(rng, known, week=int(rng.integers(0, 3)))
    policy = CPPVCGPolicy(solver="central", scenarios=1, transfer={"rule": "vcg-both"})
    r_true, v_true = ctx.retailer, ctx.vendor

    def social(po):
        return fixed_first_week_cost(r_true, v_true, po)

    def vendor_round(report):
        d = policy.decide(replace(ctx, vendors={"vendor": report}))
        po = d.po
        return social(po) - fixed_first_week_cost(r_true, None, po) + d.transfers.get("vendor", 0.0), social(po)

    def retailer_round(report):
        d = policy.decide(replace(ctx, retailer=report))
        po = d.po
        cont = social(po) - v_true.preferred_plan(first_week=po[0]).total
        return cont + d.transfers.get("retailer", 0.0), social(po)

    def vendor_lie(fields, factors):
        a = VendorAgent(public, _scaled(v_true._data, fields, factors))
        a.observe(v_true.state)
        return a

    def retailer_lie(fields, factors):
        a = RetailerAgent(public, _scaled(r_true._data, fields, factors))
        a.observe(r_true.state, r_true.forecast)
        return a

    for truthful, lies, round_cost in (
        (v_true, [vendor_lie(["production"], [0.5]), vendor_lie(["truckload_cost", "spare_cost"], [2.0, 3.0]),
                  vendor_lie(["capacity"], [0.6])], vendor_round),
        (r_true, [retailer_lie(["holding"], [3.0]), retailer_lie(["penalty"], [0.5]),
                  retailer_lie(["outbound"], [1.8])], retailer_round),
    ):
        cost, s = round_cost(truthful)
        constant = cost - s
        moved = 0
        for lie in lies:
            lie_cost, lie_s = round_cost(lie)
            assert lie_cost - lie_s == pytest.approx(constant, abs=1e-6 * abs(s))  # social cost + a constant
            assert lie_cost >= cost - 1e-6 * abs(s)  # so no lie pays
            moved += lie_s > s + 1e-6 * abs(s)
        assert moved >= 1  # the lies move the plan: the identity is tested off the truthful plan


def test_rules_settle_with_several_vendors():
    pivots = [PivotTerms("a", {"retailer": 30.0, "b": -10.0}, 20.0), PivotTerms("b", {"retailer": -5.0, "a": 1.0}, -4.0)]
    one = settle(TransferSettings(rule="one-way"), WeekInputs(pivots=pivots))
    assert one.transfers == {"a": 20.0, "retailer": -20.0} and one.clamped == ("b",)
    two = settle(TransferSettings(rule="two-way", payee="each"), WeekInputs(pivots=pivots))
    # each pays its raw pivot and receives its own term of the other's: a 20 - 1, b -4 + 10, retailer -30 + 5
    assert two.transfers == pytest.approx({"a": 19.0, "b": 6.0, "retailer": -25.0})
    both = settle(TransferSettings(rule="vcg-both"), WeekInputs(pivots=pivots, retailer_pivot=7.0))
    assert both.transfers == {"a": 20.0, "b": -4.0, "retailer": 7.0} and both.balance == -23.0
    agv = settle(TransferSettings(rule="expected-externality", prior={"draws": 1, "spread": 0.1}),
                 WeekInputs(externalities={"retailer": 3.0, "a": 5.0, "b": -2.0}))
    assert agv.transfers == pytest.approx({"retailer": 3.0 - 1.5, "a": 5.0 - 0.5, "b": -2.0 - 4.0})
    split = settle(TransferSettings(rule="split-savings", share=0.5),
                   WeekInputs(savings={"a": 10.0, "b": 0.0}, retailer_extra=4.0))
    assert split.transfers == pytest.approx({"a": 7.0, "b": 0.0, "retailer": -7.0})
    for s in (one, two, both, agv, split):
        assert abs(s.residual) <= 1e-12


def test_every_rule_runs_on_two_vendors():
    scenario = load_scenario("two-vendors")
    ctx = planning_context(scenario, week=0)
    for rule in RULES:
        extra = {"prior": {"draws": 1, "spread": 0.2}} if rule == "expected-externality" else {}
        d = make_policy("cpp-vcg", scenario, solver="central", scenarios=2, transfer={"rule": rule, **extra}).decide(ctx)
        assert d.diagnostics["transfer_rule"] == rule
        assert math.fsum(d.transfers.values()) + d.diagnostics["transfer_balance"] == pytest.approx(0.0, abs=1e-9)
        assert set(d.transfers) <= {"retailer", "acme", "sonora"}


# -- bad settings ------------------------------------------------------------------------------------

@pytest.mark.parametrize("transfer, field", [
    ({"rule": "bogus"}, "transfer.rule"),
    ({"rule": "expected-externality"}, "transfer.prior"),
    ({"rule": "expected-externality", "prior": {"draws": "many"}}, "transfer.prior.draws"),
    ({"rule": "expected-externality", "prior": {"draws": 2, "spread": 1.5}}, "transfer.prior.spread"),
    ({"rule": "split-savings", "share": True}, "transfer.share"),
    ({"rule": "two-way", "payee": 3}, "transfer.payee"),
    ({"rule": "two-way", "colour": "red"}, "transfer.colour"),
    ("two-way", "transfer"),
])
def test_bad_transfer_settings_name_the_field(transfer, field, tmp_path, capsys):
    import yaml

    base = yaml.safe_load(open("sim/scenarios/default.yaml"))
    base["policies"]["cpp-vcg"]["transfer"] = transfer
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(base))
    assert main(["run", "--scenario", str(path), "--policy", "cpp-vcg", "--weeks", "1", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert field in err and "Traceback" not in err


def test_alias_conflicts_and_menu_rules():
    with pytest.raises(FlosimError, match="two_way"):
        transfer_settings({"rule": "vcg-both"}, two_way=True)
    with pytest.raises(FlosimError, match="transfer.rule 'vcg-both'"):
        make_policy("menu", load_scenario("default"), transfer={"rule": "vcg-both"})
    assert make_policy("menu", load_scenario("default"), transfer={"rule": "two-way"}).cbt["two_way"] is True


def test_audit_rule_cli(tmp_path, capsys):
    assert main(["audit", "--rule", "bogus", "--out", str(tmp_path / "a")]) == 2
    assert "--rule 'bogus'" in capsys.readouterr().err
    assert main(["audit", "--rule", "expected-externality", "--out", str(tmp_path / "a")]) == 2
    assert "transfer.prior" in capsys.readouterr().err
    assert main(["audit", "--rule", "expected-externality", "--set", "transfer.prior.draws=x", "--out", str(tmp_path / "a")]) == 2
    assert "transfer.prior.draws" in capsys.readouterr().err
    assert main(["audit", "--mechanism", "menu", "--rule", "vcg-both", "--out", str(tmp_path / "a")]) == 2
    assert "transfer.rule" in capsys.readouterr().err
    assert main(["audit", "--rule", "vcg-both", "--set", "solver=central", "--weeks", "1", "--party", "retailer",
                 "--json", "--out", str(tmp_path / "b")]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and {r["rule"] for r in rows} == {"vcg-both"} and {r["party"] for r in rows} == {"retailer"}
    assert rows[0]["truthful_balance"] < 0.0  # vcg-both's balance is reported: here a surplus


def test_mechanisms_cli(tmp_path, capsys):
    out = tmp_path / "m"
    assert main(["mechanisms", "--rules", "one-way", "vcg-both", "--set", "solver=central", "--weeks", "2",
                 "--audit-weeks", "1", "--lies", "1", "--json", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    rows = json.loads(captured.out)
    assert [r["rule"] for r in rows] == ["one-way", "vcg-both"]
    for r in rows:
        assert list(r)[:8] == ["rule", "planning_gap", "max_vendor_lie_gain", "max_retailer_lie_gain",
                               "ex_ante_violations", "ex_post_violations", "balance_total", "clamp_weeks"]
        assert r["max_vendor_lie_gain"] >= 0.0 and r["max_retailer_lie_gain"] >= 0.0
    assert rows[0]["balance_total"] == 0.0 and rows[1]["balance_total"] < 0.0  # vcg-both keeps a surplus
    assert "mechanisms:" in captured.err  # progress on stderr
    assert (out / "mechanisms.png").stat().st_size > 0 and (out / "mechanisms.json").exists()
    for bad, name in ((["--rules", "nope"], "--rules"), (["--lies", "-1"], "--lies"),
                      (["--set", "transfer.prior.draws=0", "--rules", "expected-externality"], "transfer.prior.draws")):
        assert main(["mechanisms", *bad, "--out", str(tmp_path / "x")]) == 2
        assert name in capsys.readouterr().err
