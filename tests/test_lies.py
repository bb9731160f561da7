"""The audit's lie families: generated from every private parameter of every party, sampled reproducibly,
and under CPP-VCG (central solver, known demand) no generated vendor lie pays."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from experiments.audit import run_audit
from experiments.cli import main
from experiments.lies import (OBSERVED, STRUCTURE, TRUTHFUL, all_lies, default_lies, generated_lies, liar_agent, lie_rng,
                              pick_lies)
from policies.registry import make_policy
from sim.model.data import RetailerData, VendorData, split_scenario
from sim.model.decision import RETAILER
from sim.model.scenario import load_scenario
from sim.world import World, planning_context


def _reported(public, lie, true_data, ctx):
    """What the liar's agent reports: its data, and what it observes this week."""
    agent = liar_agent(public, lie, true_data)
    if lie.party == RETAILER:
        agent.observe(ctx.retailer.state, ctx.retailer.forecast)
        return agent._data, agent.state, agent.forecast
    agent.observe(ctx.vendors[lie.party].state)
    return agent._data, agent.state, None


def _differs(a, b) -> bool:
    if dataclasses.is_dataclass(a):
        return any(_differs(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    if isinstance(a, (str, tuple)):
        return a != b
    return not np.array_equal(np.asarray(a, dtype=float), np.asarray(b, dtype=float), equal_nan=True)


@pytest.mark.parametrize("scenario", ["default", "two-vendors", "pilot-three-vendors"])
def test_every_private_parameter_of_every_party_is_lied_about(scenario):
    s = load_scenario(scenario)
    public, retailer, vendors = split_scenario(s)
    ctx = planning_context(s, week=0)
    parties = [(retailer, RetailerData, ["forecast"]), *((v, VendorData, []) for v in vendors.values())]
    for data, cls, observed in parties:
        party = RETAILER if cls is RetailerData else data.name
        fields = [f.name for f in dataclasses.fields(cls)]
        private = [f for f in fields if f not in STRUCTURE] + observed
        assert private, cls
        lies = generated_lies(public, data, ctx.retailer.forecast if party == RETAILER else None)
        assert all(lie.party == party for lie in lies)
        truth = _reported(public, default_lies(data)[0], data, ctx)
        for param in private:
            mine = [lie for lie in lies if lie.parameter == param]
            if param not in OBSERVED and not np.any(np.nan_to_num(np.asarray(getattr(data, param), dtype=float),
                                                                  posinf=0.0)):
                # zero everywhere: scaling cannot misstate it (phantom spare volume is not among the lies)
                assert not mine, (party, param)
                continue
            assert mine, f"{scenario}: {party}'s {param} is never lied about"
            # and the lies really change what the party reports (its data or what it observes)
            changed = [lie for lie in mine if any(_differs(a, b) for a, b in zip(_reported(public, lie, data, ctx), truth)
                                                  if a is not None)]
            if param in OBSERVED:  # scales what the party observes this week: a change where there is something
                seen = ctx.retailer.forecast if param == "forecast" else (
                    ctx.retailer.state.stock if party == RETAILER else ctx.vendors[party].state.stock)
                assert bool(changed) == bool(np.any(seen)), (party, param)
            else:
                assert len(changed) == len(mine), (party, param, [lie.name for lie in mine if lie not in changed])
        names = {lie.name for lie in lies}
        assert len(names) == len(lies)  # names identify lies
        if party == RETAILER:
            for r in public.regions:  # the forecast, per region
                assert any(n.startswith(f"forecast[region={r}] ") for n in names), r
            for f in public.fcs:  # stock and receiving per FC, outbound per FC and per region
                assert any(n.startswith(f"initial_stock[fc={f}] ") for n in names), f
                assert any(n.startswith(f"receiving[fc={f}] ") for n in names), f
                assert any(n.startswith(f"outbound[fc={f}] ") for n in names), f
            for r in public.regions:
                assert any(n.startswith(f"outbound[region={r}] ") for n in names), r
        else:
            for o in data.origins:  # capacity and stock per origin
                assert any(n.startswith(f"capacity[origin={o}] ") for n in names), o
                assert any(n.startswith(f"initial_stock[origin={o}] ") for n in names), o
            for lane, spare in zip(data.lane_names, data.spare_volume):  # spare volume per lane that has some
                assert (spare > 0) == any(n.startswith(f"spare_volume[lane={lane}] ") for n in names), lane
                assert any(n.startswith(f"truckload_cost[lane={lane}] ") for n in names), lane


def test_structure_fields_exist_and_every_other_field_is_a_parameter():
    # the exclusions are documented names of real fields, and nothing else is left out
    from experiments.lies import RETAILER_PARAMETERS, VENDOR_PARAMETERS

    retailer_fields = {f.name for f in dataclasses.fields(RetailerData)}
    vendor_fields = {f.name for f in dataclasses.fields(VendorData)}
    assert set(STRUCTURE) <= retailer_fields | vendor_fields
    assert retailer_fields - set(STRUCTURE) == set(RETAILER_PARAMETERS) - {"forecast"}
    assert vendor_fields - set(STRUCTURE) == set(VENDOR_PARAMETERS)


def test_lie_names_read_parameter_index_and_factor():
    public, retailer, vendors = split_scenario(load_scenario("default"))
    names = {lie.name for lie in all_lies(public, retailer)}
    assert {"holding[product=razors] x2", "holding x0.5", "forecast[region=Midwest] x0", "terminal_value x1.25",
            "inflate_holding_x3", TRUTHFUL} <= names
    vnames = [lie.name for lie in all_lies(public, vendors["vendor"])]
    hand = [lie.name for lie in default_lies(vendors["vendor"])]
    assert vnames[:len(hand)] == hand  # the hand-written set first
    assert "spare_volume[lane=CIN->DAL] x0" in vnames and "capacity[origin=RNO] x0.5" in vnames
    # scaling a zero changes nothing: no such lie (only CIN->DAL has spare volume); stock lies scale
    # the stock of the week, whatever it is
    assert not any(n.startswith("spare_volume[lane=ATL->DAL]") for n in vnames)
    assert "initial_stock[origin=ATL] x2" in vnames


def test_a_sample_is_reproducible_from_the_seed():
    public, _, vendors = split_scenario(load_scenario("default"))
    data = vendors["vendor"]
    first = [lie.name for lie in pick_lies(public, data, 10, lie_rng(11, 1))]
    assert first == [lie.name for lie in pick_lies(public, data, 10, lie_rng(11, 1))]
    assert first[0] == TRUTHFUL and len(first) == 11 and len(set(first)) == 11
    assert first != [lie.name for lie in pick_lies(public, data, 10, lie_rng(12, 1))]
    assert [lie.name for lie in pick_lies(public, data, None, None)] == [lie.name for lie in default_lies(data)]
    assert len(pick_lies(public, data, 10_000, lie_rng(11, 1))) == len(all_lies(public, data))


def test_a_sampled_audit_is_reproducible_for_a_seed(tmp_path, capsys):
    def rows(seed, out):
        assert main(["audit", "--mechanism", "jit", "--weeks", "1", "--lies", "4", "--seed", str(seed),
                     "--out", str(tmp_path / out), "--json"]) == 0
        return json.loads(capsys.readouterr().out)

    a, b, c = rows(5, "a"), rows(5, "b"), rows(6, "c")
    assert a == b
    assert {r["party"] for r in a} == {"vendor", "retailer"} and len(a) == 2 * 5
    assert all("parameter" in r for r in a)
    assert [r["lie"] for r in a] != [r["lie"] for r in c]
    assert json.loads((tmp_path / "a" / "audit.json").read_text())["lies"] == 4


@pytest.mark.parametrize("bad", ["0", "-3", "some", "2.5"])
def test_bad_lies_option_exits_2_naming_it(tmp_path, capsys, bad):
    assert main(["audit", "--mechanism", "jit", "--weeks", "1", "--lies", bad, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "--lies" in err and bad in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_a_misreported_forecast_reaches_the_plan_and_the_truth_does_not_move():
    # the World's reports may be agents: a retailer that reports twice its forecast orders more under JIT,
    # while the world's true stock and demand are those of the truthful run
    s = load_scenario("default").with_overrides({"demand.deterministic": True})
    public, retailer, _ = split_scenario(s)
    lie = next(lie for lie in generated_lies(public, retailer) if lie.name == "forecast x2")
    truthful = World(s, make_policy("jit", s)).run(2).ledger
    lying_world = World(s, make_policy("jit", s), reports={RETAILER: liar_agent(public, lie, retailer)})
    lying = lying_world.run(2).ledger
    assert sum(r["value"] for r in lying) != pytest.approx(sum(r["value"] for r in truthful))
    assert lying_world.retailer is not lying_world.retailer_report
    np.testing.assert_allclose(lying_world.retailer_report.forecast, 2 * lying_world.retailer.forecast)


# -- theory: under CPP-VCG a vendor's net cost is the social cost plus terms it cannot move ---------------

@pytest.fixture(scope="module")
def generated_audit():
    s = load_scenario("default").with_overrides({"demand.deterministic": True})
    overrides = {"cpp-vcg": {"solver": "central", "discount": 1.0, "scenarios": 1}}
    return run_audit(s, ["cpp-vcg"], weeks=1, lies="all", policy_overrides=overrides)


def test_no_generated_vendor_lie_pays_under_cpp_vcg(generated_audit):
    t = generated_audit[generated_audit.party == "vendor"]
    _, _, vendors = split_scenario(load_scenario("default"))
    public = split_scenario(load_scenario("default"))[0]
    assert len(t) == len(all_lies(public, vendors["vendor"]))
    assert (t["relative_gain"] <= 1e-3).all(), t.sort_values("relative_gain").tail()[["lie", "relative_gain"]]
    # exactly: the liar loses the social cost its lie causes (Clarke pivot)
    social_increase = t["lying_social_cost"] - t["truthful_social_cost"]
    assert (abs(t["gain"] + social_increase) <= 1e-6 * t["truthful_social_cost"]).all()
    moved = t[social_increase.abs() > 1e-6 * t["truthful_social_cost"]]
    # the family bites: lies of capacity, stock, spare volume and costs move the plan (and cost the liar)
    assert {"capacity", "initial_stock", "spare_volume", "production", "truckload_cost"} <= set(moved["parameter"])


def test_retailer_stock_and_forecast_lies_move_the_plan(generated_audit):
    t = generated_audit[generated_audit.party == RETAILER]
    moved = t[(t["lying_social_cost"] - t["truthful_social_cost"]).abs() > 1e-6 * t["truthful_social_cost"]]
    assert {"forecast", "initial_stock"} <= set(moved["parameter"])
    assert set(t["parameter"]) >= {"forecast", "initial_stock", "receiving", "holding", "penalty", "outbound",
                                   "terminal_value"}
