"""Mutual commitment (``commitment: {weeks: k, band: b}``): ``k = 1, b = 0`` is today's weekly commitment
to the bit; a re-plan never moves a committed quantity outside its band (the reference is the first
commitment: no drift), through the mechanism's weeks and the JIT cool-down alike; the retailer orders
and pays for, and the vendor ships, at least ``(1 - b)`` of committed units (absent shortage; subject to
capacity with it); units and money are conserved; bad settings exit 2 naming the field."""

from __future__ import annotations

import copy
from importlib import resources

import numpy as np
import pandas as pd
import pytest
import yaml

from experiments.cli import main
from forecasts.inputs import draw_inputs
from policies.cpp_vcg import CPPVCGPolicy
from policies.jit import JITPolicy
from policies.registry import make_policy
from sim.model.commitment import CommitmentRecord, CommitmentSettings, PlanBounds, commitment_settings
from sim.model.decision import Decision
from sim.model.errors import FlosimError
from sim.model.scenario import scenario_from_dict
from sim.runner import run_policies
from sim.world import World

DEFAULT = yaml.safe_load((resources.files("sim") / "scenarios" / "default.yaml").read_text())
TOL = 1e-6


def _default(weeks: int = 3, **changes) -> object:
    data = copy.deepcopy(DEFAULT)
    data.update(weeks=weeks, **changes)
    return scenario_from_dict(data, "<test>")


def _with_commitment(scenario, k: int, b: float, **more):
    return scenario.with_overrides({"policies.cpp-vcg.commitment": {"weeks": k, "band": b}, **more})


# -- k = 1, b = 0 is today's behaviour ---------------------------------------------------------------------
@pytest.mark.parametrize("band", [0.0, 0.3])
def test_weekly_commitment_gives_todays_results_bit_for_bit(band):
    """With ``k = 1`` nothing binds a later plan (the band of the PO itself never matters: the mechanism
    ships all it can of a committed PO), so ledgers, flows and shortfalls equal a run without the option,
    to the bit; the decisions table only gains the commitment columns (all zero)."""
    s = _default(3)
    plain = run_policies(s, ["cpp-vcg"], progress=False)
    weekly = run_policies(_with_commitment(s, 1, band), ["cpp-vcg"], progress=False)
    for table in ("ledger", "flows", "shortfalls"):
        pd.testing.assert_frame_equal(getattr(plain, table), getattr(weekly, table), check_exact=True)
    extra = [c for c in weekly.decisions.columns if c not in plain.decisions.columns]
    assert sorted(extra) == ["commitment_bound", "commitment_cost_retailer", "commitment_cost_vendor",
                             "commitment_released", "committed_units"]
    keep = [c for c in plain.decisions.columns if c != "wall_s"]
    pd.testing.assert_frame_equal(plain.decisions[keep], weekly.decisions[keep], check_exact=True)
    assert (weekly.decisions[extra].astype(float) == 0).all().all()


# -- the band holds, anchored on the first commitment ---------------------------------------------------
class _Recording:
    """A policy that records every plan it returns (and whether it committed it)."""

    def __init__(self, inner):
        self.inner, self.name, self.plans = inner, inner.name, {}

    def decide(self, ctx):
        d = self.inner.decide(ctx)
        self.plans[ctx.week] = (np.array(d.plan, dtype=float), d.committed and d.commit is not None)
        return d


def _references(plans: dict, k: int, H: int) -> dict[int, np.ndarray]:
    """Each committed week's reference, recomputed from the recorded plans: the quantity of the first
    committed plan whose first ``k`` weeks hold it."""
    ref: dict[int, np.ndarray] = {}
    for t in sorted(plans):
        plan, committed = plans[t]
        if committed:
            for j in range(min(k, H)):
                ref.setdefault(t + j, plan[:, j].copy())
    return ref


def _check_band(plans: dict, ref: dict, k: int, b: float, H: int) -> int:
    """Every plan made after a week's first commitment keeps that week inside its band; returns the
    number of (plan, committed week) pairs checked."""
    checked = 0
    for t, (plan, _) in plans.items():
        for tau, c in ref.items():
            first = min(u for u in plans if plans[u][1] and u <= tau < u + k)
            if first < t <= tau < t + H:
                x = plan[:, tau - t]
                assert np.all(x >= (1 - b) * c - TOL * (1 + c)) and np.all(x <= (1 + b) * c + TOL * (1 + c)), (t, tau)
                checked += 1
    return checked


def _run(seed: int, k: int, b: float, weeks: int = 5, settle: int = 4, solver: str = "cpp", **extra):
    s = _with_commitment(_default(weeks, seed=seed), k, b, **extra)
    policy = _Recording(make_policy("cpp-vcg", s) if solver == "cpp" else CPPVCGPolicy(
        solver=solver, commitment={"weeks": k, "band": b}))
    world = World(s, policy, draw_inputs(s))
    record = world.run(weeks, settle=settle)
    return s, world, policy.plans, record


def _po_and_shipped(world, record) -> tuple[dict, dict]:
    pub = world.public
    po, shipped = {}, {}
    for row in record.shortfalls:
        v, f, k = pub.vendor_index(row["vendor"]), pub.fcs.index(row["fc"]), pub.products.index(row["product"])
        po.setdefault(row["week"], np.zeros((pub.V, pub.F, pub.K)))[v, f, k] = row["ordered"]
        shipped.setdefault(row["week"], np.zeros((pub.V, pub.F, pub.K)))[v, f, k] = row["shipped"]
    return po, shipped


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("k,b", [(2, 0.1), (3, 0.25), (3, 0.0)])
def test_replans_stay_in_the_band_and_the_committed_floor_is_ordered_paid_and_shipped(seed, k, b):
    weeks, settle = 5, 4
    s, world, plans, record = _run(seed, k, b, weeks, settle)
    H = world.public.horizon
    ref = _references(plans, k, H)
    assert any(t > 0 for t in ref), "nothing was committed beyond the binding week"
    assert len(ref) == weeks + k - 1  # every measured week agreed a plan
    checked = _check_band(plans, ref, k, b, H)
    assert checked >= weeks - 1
    # every PO, the JIT cool-down's included: within the band of its week's reference; the vendor
    # shipped, and so the retailer paid for, at least (1 - b) of it (no shocks: nothing short)
    po, shipped = _po_and_shipped(world, record)
    prices = world.public.wholesale  # [V, K]
    ledger = pd.DataFrame(record.ledger)
    for tau, c in ref.items():
        floor = (1 - b) * c
        got_po, got = po.get(tau, np.zeros_like(c)), shipped.get(tau, np.zeros_like(c))
        assert np.all(got_po >= floor - TOL * (1 + c)) and np.all(got_po <= (1 + b) * c + TOL * (1 + c)), tau
        assert np.all(got >= floor - TOL * (1 + c)), tau
        paid = ledger[(ledger.week == tau) & (ledger.party == "retailer") & (ledger.component == "wholesale")]["value"].sum()
        assert paid >= float(np.sum(prices[:, None, :] * floor)) - TOL * (1 + paid)
    assert max(ref) >= weeks  # commitments reached into the cool-down and were honoured there
    d = pd.DataFrame(record.decisions)
    assert (d["commitment_released"] == 0).all()
    assert d["committed_units"].sum() == pytest.approx(sum(float(c.sum()) for tau, c in ref.items()
                                                           if tau > min(u for u in plans if plans[u][1] and u <= tau)))


def test_commitments_bind_the_central_solve_too():
    s, world, plans, record = _run(0, 3, 0.1, weeks=4, settle=0, solver="central")
    ref = _references(plans, 3, world.public.horizon)
    assert _check_band(plans, ref, 3, 0.1, world.public.horizon) >= 3


# -- units and money ----------------------------------------------------------------------------------------
def test_units_and_money_are_conserved_under_commitment(tracer, checks):
    s = _with_commitment(_default(4), 3, 0.1)
    trace = tracer(s, make_policy("cpp-vcg", s), draw_inputs(s))
    checks.conservation(trace, s)
    checks.money(trace, s)
    result = run_policies(s, ["jit", "cpp-vcg"], progress=False)
    checks.flows(result.flows)  # measured and cool-down weeks
    led = result.ledger
    for (policy, week), rows in led.groupby(["policy", "week"]):
        assert rows[rows.component == "wholesale"]["value"].sum() == pytest.approx(0.0, abs=1e-9 * (1 + rows.value.abs().sum()))
        assert rows[rows.component == "transfer"]["value"].sum() == pytest.approx(0.0, abs=1e-9 * (1 + rows.value.abs().sum()))


# -- execution: the floor is shipped as far as capacity allows ---------------------------------------------
def test_an_uncommitted_vendor_ships_its_committed_floor_up_to_its_capacity():
    s = _default(1)
    world = World(s, JITPolicy(), draw_inputs(s))
    world.context(0)
    vendor = world.vendors["vendor"]
    po = np.zeros((world.public.F, world.public.K))
    po[:, :] = 150.0  # within capacity; JIT alone would short one line (not worth shipping to it)
    free = vendor.fulfil(po, committed=False)
    floor = po * 0.9
    held = vendor.fulfil(po, committed=False, floor=floor)
    assert np.all(held.shipped >= floor - 1e-6)
    assert held.shipped.sum() >= free.shipped.sum() - 1e-6 and np.any(free.shipped < floor - 1)
    # capacity short of the floor: it ships what it can, all of it towards the floor
    tight = vendor.nominal_capacity * 0.05
    short = vendor.fulfil(po, committed=False, floor=floor, capacity=tight)
    stock = world.vendor_stock["vendor"].sum()
    assert short.shipped.sum() == pytest.approx(min(floor.sum(), tight.sum() + stock), rel=1e-6)


def test_a_vendor_short_of_a_commitment_eases_the_week_and_the_run_goes_on():
    """Capacity shocks the vendor learns before planning can leave it unable to meet a commitment's floor;
    the week's box is eased to what it can ship (the record keeps the agreed reference), and the week
    reports the units released."""
    s = _with_commitment(_default(6), 3, 0.0, shocks={"outages": [{"probability": 0.5, "depth": 0.7}], "disclosure": "disclosed"})
    result = run_policies(s, ["cpp-vcg"], progress=False)
    d = result.decisions
    assert d["commitment_released"].sum() > 0
    assert d["converged"].all()


# -- a policy that breaks a band is a bug ------------------------------------------------------------------
def test_a_plan_outside_the_band_is_refused():
    class Breaker:
        name = "breaker"

        def decide(self, ctx):
            plan = ctx.retailer.preferred_plan().plan
            if ctx.bounds is not None:
                plan = plan.copy()
                plan[:, 0] = ctx.bounds.upper[:, 0] * 1.5 + 10.0
            return Decision(plan, committed=True, commit=CommitmentSettings(weeks=2, band=0.0))

    s = _default(3)
    with pytest.raises(ValueError, match="outside the commitment bands"):
        World(s, Breaker(), draw_inputs(s)).run(3)


# -- the record -------------------------------------------------------------------------------------------
def test_the_reference_is_the_first_commitment_and_does_not_drift():
    rec = CommitmentRecord((1, 4, 1, 1))
    k3 = CommitmentSettings(weeks=3, band=0.2)
    plan = np.arange(1.0, 5.0).reshape(1, 4, 1, 1) * 100  # weeks t..t+3: 100, 200, 300, 400
    assert rec.commit(0, plan, k3) == pytest.approx(500.0)  # weeks 1 and 2 beyond the binding week
    assert rec.bounds(0) is not None and rec.bounds(5) is None
    moved = plan * 1.1
    assert rec.commit(1, moved, k3) == pytest.approx(330.0)  # only week 3 is new
    box = rec.bounds(1)
    assert box.lower[0, :3, 0, 0].tolist() == pytest.approx([160.0, 240.0, 264.0])
    assert box.upper[0, :3, 0, 0].tolist() == pytest.approx([240.0, 360.0, 396.0])
    assert np.isinf(box.upper[0, 3]).all() and (box.lower[0, 3] == 0).all()
    assert rec.floor(2) == pytest.approx(np.array([[[240.0]]]))
    assert PlanBounds.free((1, 4, 1, 1)).active is False


# -- bad settings exit 2 naming the field ----------------------------------------------------------------
@pytest.mark.parametrize("value,needles", [
    ({"weeks": 0, "band": 0.1}, ["policies.cpp-vcg.commitment.weeks", "0"]),
    ({"weeks": 7, "band": 0.1}, ["policies.cpp-vcg.commitment.weeks", "7", "horizon"]),
    ({"weeks": 2, "band": 1.5}, ["policies.cpp-vcg.commitment.band", "1.5"]),
    ({"weeks": 2, "band": -0.1}, ["policies.cpp-vcg.commitment.band", "-0.1"]),
    ({"weeks": "two"}, ["policies.cpp-vcg.commitment.weeks", "two"]),
    ({"weeks": True}, ["policies.cpp-vcg.commitment.weeks", "True"]),
    ({"weeks": 2.5}, ["policies.cpp-vcg.commitment.weeks", "2.5"]),
    ({"band": "wide"}, ["policies.cpp-vcg.commitment.band", "wide"]),
    ({"frozen": 2}, ["policies.cpp-vcg.commitment.frozen"]),
    (3, ["policies.cpp-vcg.commitment", "3"]),
])
def test_bad_commitment_settings_exit_2_naming_the_field(value, needles, capsys, tmp_path):
    data = copy.deepcopy(DEFAULT)
    data["policies"]["cpp-vcg"] = {"commitment": value}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    code = main(["run", "--scenario", str(path), "--policy", "cpp-vcg", "--weeks", "1", "--json", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, (needle, err)


def test_a_commitment_beyond_the_horizon_is_refused_when_the_scenario_is_checked(capsys, tmp_path):
    """``flosim scenario check`` (loading the file) refuses ``weeks`` above the horizon, naming the file and
    field, as ``flosim run`` does: the check builds the policy for that scenario."""
    for policy in ("cpp-vcg", "menu"):
        data = copy.deepcopy(DEFAULT)
        data["policies"][policy] = {"commitment": {"weeks": 9, "band": 0.1}}
        path = tmp_path / f"{policy}.yaml"
        path.write_text(yaml.safe_dump(data))
        code = main(["scenario", "check", str(path)])
        err = capsys.readouterr().err
        assert code == 2 and "Traceback" not in err, err
        for needle in (str(path), f"policies.{policy}.commitment.weeks = 9", "horizon"):
            assert needle in err, (needle, err)


def test_commitment_settings_accept_good_input():
    assert commitment_settings(None, "x") is None
    got = commitment_settings({"weeks": 3, "band": 0.25}, "x", horizon=6)
    assert got == CommitmentSettings(weeks=3, band=0.25) and not got.weekly
    assert commitment_settings({"weeks": 6}, "x", horizon=6).band == 0.0
    with pytest.raises(FlosimError, match="x.weeks = 7"):
        commitment_settings({"weeks": 7}, "x", horizon=6)


# -- the menu ---------------------------------------------------------------------------------------------
def test_menu_item_contract_is_items_and_commitment_strings_stay_its_alias():
    from policies.menu import MenuPolicy

    assert MenuPolicy().items == "week" and MenuPolicy().commit is None
    old = MenuPolicy(commitment="plan")
    assert old.items == "plan" and old.commitment == "plan" and old.commit is None
    new = MenuPolicy(items="plan", commitment={"weeks": 2, "band": 0.1})
    assert new.items == "plan" and new.commit == CommitmentSettings(weeks=2, band=0.1)
    assert new.parameters()["commitment"] == {"weeks": 2, "band": 0.1} and new.parameters()["items"] == "plan"
    again = MenuPolicy(**new.parameters())
    assert again.items == "plan" and again.commit == new.commit
    assert MenuPolicy(**old.parameters()).items == "plan"
    with pytest.raises(FlosimError, match="contradicts items"):
        MenuPolicy(items="plan", commitment="week")
    with pytest.raises(FlosimError, match="policies.menu.commitment.band = 2"):
        MenuPolicy(commitment={"weeks": 2, "band": 2})


def test_menu_weekly_commitment_is_todays_menu_and_a_longer_one_keeps_its_bands():
    s = _default(2)
    plain = run_policies(s, ["menu"], progress=False)
    weekly = run_policies(s.with_overrides({"policies.menu.commitment": {"weeks": 1, "band": 0.0}}), ["menu"], progress=False)
    for table in ("ledger", "flows", "shortfalls"):
        pd.testing.assert_frame_equal(getattr(plain, table), getattr(weekly, table), check_exact=True)
    s = _default(4).with_overrides({"policies.menu.commitment": {"weeks": 3, "band": 0.1}})
    policy = _Recording(make_policy("menu", s))
    world = World(s, policy, draw_inputs(s))
    record = world.run(4, settle=3)
    ref = _references(policy.plans, 3, world.public.horizon)
    assert _check_band(policy.plans, ref, 3, 0.1, world.public.horizon) >= 3
    po, shipped = _po_and_shipped(world, record)
    for tau, c in ref.items():
        assert np.all(shipped.get(tau, np.zeros_like(c)) >= 0.9 * c - TOL * (1 + c)), tau


# -- the figures --------------------------------------------------------------------------------------------
def test_run_json_reports_committed_units_and_commitment_cost_by_party(capsys, tmp_path):
    data = copy.deepcopy(DEFAULT)
    data["policies"]["cpp-vcg"] = {"commitment": {"weeks": 3, "band": 0.1}}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    assert main(["run", "--scenario", str(path), "--policy", "cpp-vcg", "--weeks", "3", "--json", "--out", str(out)]) == 0
    summary = yaml.safe_load(capsys.readouterr().out)
    mine, jit = summary["policies"]["cpp-vcg"], summary["policies"]["jit"]
    assert "committed_units" not in jit and "commitment_cost" not in jit  # no commitment, no figures
    decisions = pd.read_parquet(out / "decisions.parquet")
    d = decisions[decisions.policy == "cpp-vcg"]
    assert mine["committed_units"] == pytest.approx(d["committed_units"].sum()) and mine["committed_units"] > 0
    assert set(mine["commitment_cost"]) == {"retailer", "vendor"}
    for party, value in mine["commitment_cost"].items():
        assert value == pytest.approx(d[f"commitment_cost_{party}"].sum())
    # a box is active from the second week on; the bands cost the supply chain something, never less
    # than nothing (the box only removes plans from the first-best problem)
    assert d["commitment_bound"].tolist() == [False, True, True]
    weekly = d["commitment_cost_retailer"] + d["commitment_cost_vendor"]
    assert (weekly >= -1e-6 * (1 + d["planned_social"].abs())).all() and weekly.iloc[1:].gt(0).any()
    from sim.results import load_results

    assert load_results(out).summary["policies"]["cpp-vcg"]["commitment_cost"] == mine["commitment_cost"]


# -- the audit under commitment ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def committed_audit():
    from experiments.audit import run_audit
    from sim.model.scenario import load_scenario

    s = load_scenario("default").with_overrides({"demand.deterministic": True})
    overrides = {"cpp-vcg": {"solver": "central", "scenarios": 1, "transfer": {"rule": "two-way"},
                             "commitment": {"weeks": 2, "band": 0.1}}}
    return s, overrides, run_audit(s, ["cpp-vcg"], weeks=3, parties=["vendor"], policy_overrides=overrides)


def test_no_vendor_lie_pays_under_cpp_vcg_with_a_commitment(committed_audit):
    """A lie can shape what the vendor will be held to (the agreed plan's next week); the CBT prices the
    retailer's continuation inside what the agreement commits, so the vendor's net cost stays the
    social cost up to terms it cannot influence, and with exact solves and known demand no lie pays."""
    _, _, t = committed_audit
    assert len(t) >= 9 and (t["lie"] != "truthful").sum() >= 8
    assert (t["relative_gain"] <= 1e-7).all(), t[["lie", "gain"]]
    assert (t["relative_gain"] < -1e-4).any()  # the lies are not all harmless: the audit measures something


def test_the_audit_finds_the_lie_a_commitment_blind_price_would_pay_for(committed_audit, monkeypatch):
    """Without the new commitments in the price (the counterfactual and the priced continuation then
    differ only in the binding week), a vendor gains by shaping its next week's commitment: the audit,
    run in the committed mechanism's own states, finds it."""
    from experiments.audit import run_audit
    from policies.cbt import TransferPricer

    s, overrides, _ = committed_audit
    monkeypatch.setattr(TransferPricer, "agreed", lambda self, plan: None)
    blind = run_audit(s, ["cpp-vcg"], weeks=3, parties=["vendor"], policy_overrides=overrides)
    assert (blind["relative_gain"] > 1e-4).any(), blind[["lie", "gain"]]


def test_the_audit_command_runs_under_commitment(capsys, tmp_path):
    code = main(["audit", "--policy", "cpp-vcg", "--weeks", "2", "--party", "vendor", "--set", "commitment.weeks=2",
                 "--set", "commitment.band=0.1", "--set", "solver=central", "--out", str(tmp_path / "a"), "--json"])
    assert code == 0
    rows = yaml.safe_load(capsys.readouterr().out)
    assert {r["lie"] for r in rows} >= {"truthful", "scale_costs_x2"}
    code = main(["audit", "--policy", "cpp-vcg", "--weeks", "1", "--set", "commitment.weeks=0", "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert code == 2 and "commitment.weeks" in err and "Traceback" not in err


# -- sweeps -------------------------------------------------------------------------------------------------
def test_a_sweep_may_vary_a_commitment_the_scenario_does_not_write(tmp_path):
    from experiments.sweep import design_points, load_spec
    from sim.model.errors import SpecError

    spec = {"spec_version": 1, "name": "c", "scenario": "default", "policies": ["cpp-vcg"], "replications": 1,
            "weeks": 1, "grid": {"policies.cpp-vcg.commitment.weeks": [1, 3], "policies.cpp-vcg.commitment.band": [0, 0.25]}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(spec))
    loaded = load_spec(path)
    points = design_points(loaded.spec)
    assert len(points) == 4
    built = [make_policy("cpp-vcg", loaded.scenario.with_overrides(p)).commit for p in points]
    assert {(c.weeks, c.band) for c in built} == {(1, 0), (1, 0.25), (3, 0), (3, 0.25)}
    for bad, needle in (({"policies.cpp-vcg.commitment.weeks": [0]}, "commitment.weeks = 0"),
                        ({"policies.cpp-vcg.commitmnt.weeks": [2]}, "commitmnt")):
        path.write_text(yaml.safe_dump({**spec, "grid": bad}))
        with pytest.raises(SpecError, match=needle):
            load_spec(path)


# -- the transfer's two worlds (second read) ------------------------------------------------------------------
def test_an_agreement_leaves_held_weeks_in_their_first_band_and_binds_only_new_weeks_to_its_plan():
    """``agreed_box`` (what pricing and the audit bind a priced plan's continuation to): a week already
    committed keeps the band of its first commitment (the world's record never re-anchors it: a band around
    the new plan would let the continuation leave the band the world enforces); the weeks ``1 .. k - 1``
    not yet committed get the plan's band; later weeks stay free; the held box is not modified."""
    from sim.model.commitment import agreed_box

    held = PlanBounds.free((1, 5, 1, 1))
    held.lower[0, 1], held.upper[0, 1] = 90.0, 110.0  # week 1: committed at 100 with b = 0.1
    plan = np.array([50.0, 105.0, 200.0, 300.0, 400.0]).reshape(1, 5, 1, 1)
    box = agreed_box(held, plan, CommitmentSettings(weeks=3, band=0.2))
    assert box.lower[0, 1, 0, 0] == pytest.approx(90.0) and box.upper[0, 1, 0, 0] == pytest.approx(110.0)
    assert box.lower[0, 2, 0, 0] == pytest.approx(160.0) and box.upper[0, 2, 0, 0] == pytest.approx(240.0)
    assert (box.lower[0, 3:] == 0).all() and np.isinf(box.upper[0, 3:]).all()
    assert box.lower[0, 0, 0, 0] == 0 and np.isinf(box.upper[0, 0, 0, 0])  # the PO is fixed elsewhere
    assert held.lower[0, 2, 0, 0] == 0 and np.isinf(held.upper[0, 2, 0, 0])  # a copy
    assert agreed_box(held, plan, CommitmentSettings(weeks=1, band=0.2)) is held  # weekly: nothing new


@pytest.fixture(scope="module")
def committed_week():
    """A planning context of week 2 of a run of cpp-vcg with ``k = 3, b = 0.1`` (central solves): earlier
    agreements' commitments are held in it."""
    from experiments.audit import committed_contexts

    s = _default(3)
    overrides = {"solver": "central", "commitment": {"weeks": 3, "band": 0.1}}
    ctx = committed_contexts(s, "cpp-vcg", overrides, [2], s.seed)[2]
    assert ctx.bounds is not None and ctx.bounds.active
    return ctx


def test_the_transfers_jit_world_inherits_only_the_commitments_already_held(committed_week):
    """The CBT's counterfactual is the JIT world, which commits nothing: its continuation on each demand
    path plans inside the commitments already held (the retailer's state) and no others. The plan it is
    compared with commits its next ``k - 1`` weeks, and its continuation is priced inside them, so even
    the retailer's own plan ``x^J`` carries a positive price once agreed: what the new obligations cost the
    retailer when demand moves (zero without the option)."""
    from policies.cbt import TransferPricer
    from policies.jit import jit_outcome
    from sim.model.commitment import agreed_box

    ctx = committed_week
    commit = CommitmentSettings(weeks=3, band=0.1)
    jit = jit_outcome(ctx)
    assert ctx.bounds.contains(jit.plan)  # the JIT plan itself respects what is held
    pricer = TransferPricer(ctx, jit.plan, scenarios=6, commit=commit, two_way=True)
    po = jit.plan[:, 0]
    held_only = [float(ctx.retailer.cost_with_first_week(po, path).by_week[1:].sum()) for path in pricer.paths]
    assert pricer.v_jit == pytest.approx(held_only, rel=1e-9, abs=1e-6)
    bound = agreed_box(ctx.bounds, jit.plan, commit)
    tied = [float(ctx.retailer.cost_with_first_week(po, path, bounds=bound).by_week[1:].sum()) for path in pricer.paths]
    assert all(t >= h - 1e-6 * (1 + abs(h)) for t, h in zip(tied, held_only))
    assert any(t > h + 1e-3 for t, h in zip(tied, held_only)), "the new commitments never bind: the test tells nothing"
    price = pricer.price(jit.plan)
    assert price.future_mean == pytest.approx(np.mean(tied) - np.mean(held_only), rel=1e-6, abs=1e-6)
    assert price.raw == pytest.approx(price.immediate + price.future_ce) and price.raw > 1e-3
    free = TransferPricer(ctx, jit.plan, scenarios=6, two_way=True, paths=pricer.paths).price(jit.plan)
    assert free.raw == pytest.approx(0.0, abs=1e-6)


def test_a_week_whose_commitment_cost_is_unknown_leaves_the_total_unknown():
    """A week where the parties cannot plan inside the box together has no commitment cost (NaN); the run's
    total is then unknown too (null in JSON), not the sum of the other weeks."""
    from sim.metrics import commitment_totals

    d = pd.DataFrame({"week": [0, 1, 2], "phase": ["measured"] * 3, "committed_units": [5.0, 3.0, 0.0],
                      "commitment_bound": [False, True, True], "commitment_released": [0.0, 0.0, 1.5],
                      "commitment_cost_retailer": [0.0, 2.0, float("nan")], "commitment_cost_vendor": [0.0, 1.0, 4.0]})
    got = commitment_totals(d)
    assert got["committed_units"] == 8.0 and got["commitment_released_units"] == 1.5
    assert np.isnan(got["commitment_cost"]["retailer"]) and got["commitment_cost"]["vendor"] == 5.0


# -- a vendor on JIT terms commits nothing (second read) ---------------------------------------------------------
def test_the_record_binds_only_the_committing_vendors_blocks():
    rec = CommitmentRecord((2, 3, 1, 1))
    k2 = CommitmentSettings(weeks=2, band=0.0)
    plan = np.array([[10.0, 20.0, 30.0], [1.0, 2.0, 3.0]]).reshape(2, 3, 1, 1)
    assert rec.commit(0, plan, k2, vendors=[0]) == pytest.approx(20.0)  # vendor 1 stayed on JIT terms
    box = rec.bounds(1)
    assert box.lower[0, 0, 0, 0] == box.upper[0, 0, 0, 0] == pytest.approx(20.0)
    assert box.lower[1, 0, 0, 0] == 0 and np.isinf(box.upper[1, 0, 0, 0])  # vendor 1's week 1 is free
    assert rec.floor(1)[:, 0, 0].tolist() == pytest.approx([20.0, 0.0])
    # a later agreement of both: vendor 1's week 1 is committed now, vendor 0's keeps its first reference
    assert rec.commit(1, plan * 2, k2) == pytest.approx(40.0 + 4.0)  # week 2 of both blocks (its week 1)
    assert rec.bounds(1).lower[:, 0, 0, 0].tolist() == pytest.approx([20.0, 2.0])


def test_a_menu_a_vendor_declines_commits_nothing_of_its_block():
    """``decline: any`` on ``two-vendors``: a vendor that declines its menu stays on JIT terms, so no week
    of its block is committed (and the retailer is free to re-plan it); the vendor that picks an item is
    held to its commitments."""
    from sim.model.scenario import load_scenario

    s = load_scenario("two-vendors").with_overrides({"policies.menu.commitment": {"weeks": 3, "band": 0.1},
                                                     "policies.menu.decline": "any", "weeks": 1})
    policy = _Recording(make_policy("menu", s))
    world = World(s, policy, draw_inputs(s))
    record = world.run(1)
    d = pd.DataFrame(record.decisions)
    pub = world.public
    declined = {name for name in pub.vendors if (d[f"menu_item_{name}"] == "declined: JIT terms").all()}
    accepted = {name for name in pub.vendors if not (d[f"menu_item_{name}"] == "declined: JIT terms").any()}
    assert declined and accepted, d[[f"menu_item_{n}" for n in pub.vendors]]  # the test needs one of each
    for tau, ref in world.commitments.reference.items():
        for name in declined:
            assert np.isnan(ref[pub.vendor_index(name)]).all(), (tau, name)
        for name in accepted:
            assert np.isfinite(ref[pub.vendor_index(name)]).all(), (tau, name)
    assert sorted(world.commitments.reference) == [0, 1, 2]


def test_no_vendor_lie_pays_under_a_commitment_with_several_vendors():
    """``two-vendors``, ``k = 3, b = 0.1``, known demand, exact solves, two-way: each vendor's pivot re-plans
    the others' later weeks inside what agreeing ``x*`` commits (as the retailer's own continuation is
    priced), so a vendor pays for the obligations its influence adds and no lie pays. (Re-planned without
    them, understating costs by half gained a vendor 5% of the social cost.)"""
    from experiments.audit import run_audit
    from sim.model.scenario import load_scenario

    s = load_scenario("two-vendors").with_overrides({"demand.deterministic": True})
    overrides = {"cpp-vcg": {"solver": "central", "scenarios": 1, "transfer": {"rule": "two-way"},
                             "commitment": {"weeks": 3, "band": 0.1}}}
    t = run_audit(s, ["cpp-vcg"], weeks=2, parties=["acme", "sonora"], policy_overrides=overrides)
    assert (t["lie"] != "truthful").sum() >= 10
    assert (t["relative_gain"] <= 1e-7).all(), t[["party", "lie", "gain"]]
    assert (t["relative_gain"] < -1e-4).any()  # the lies are not all harmless: the audit measures something
