"""Scenario files: built-ins validate, resolved scenarios round-trip, overrides, the product generator."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from conftest import with_product_generator
from sim.model.data import split_scenario
from sim.model.errors import FlosimError, ScenarioError
from sim.model.scenario import (
    Scenario,
    builtin_scenarios,
    dump_scenario,
    load_scenario,
    scenario_from_dict,
)


@pytest.mark.parametrize("name", builtin_scenarios())
def test_builtin_scenarios_validate_and_round_trip(name, tmp_path):
    s = load_scenario(name)
    assert isinstance(s, Scenario) and s.products and s.all_lanes
    # every FC can be supplied by some lane and can serve some region
    assert {lane.fc for lane in s.all_lanes} == {f.name for f in s.fcs}
    assert all(any(c is not None for c in s.outbound_cost[f.name].values()) for f in s.fcs)
    pub, ret, vendors = split_scenario(s)
    specs = s.vendor_specs()
    assert list(vendors) == [v.name for v in specs] and pub.vendors == tuple(vendors)
    if s.schema_version == 1:
        assert list(vendors) == ["vendor"]
    assert pub.shape == (len(specs), s.horizon, len(s.fcs), len(s.products))
    assert pub.block_shape == (s.horizon, len(s.fcs), len(s.products))
    # every FC is reached by some vendor's lane (together they cover the FCs)
    assert set().union(*(ven.lane_fc.tolist() for ven in vendors.values())) == set(range(pub.F))
    assert np.all(np.isfinite(ret.outbound).any(axis=1))
    path = tmp_path / f"{name}.yaml"
    dump_scenario(s, path)
    assert load_scenario(path) == s


def test_default_is_among_the_builtins():
    assert "default" in builtin_scenarios()
    s = load_scenario("default")
    assert {"CIN", "ATL", "RNO"} == {o.name for o in s.origins}
    assert {"DAL", "PHX", "IND"} == {f.name for f in s.fcs}
    cin_dal = next(lane for lane in s.lanes if (lane.origin, lane.fc) == ("CIN", "DAL"))
    assert cin_dal.spare_volume > 0 and cin_dal.spare_cost < cin_dal.truckload_cost
    assert all(lane.spare_volume == 0 for lane in s.lanes if lane.fc == "PHX")


def test_overrides_derive_validated_variants(default_scenario):
    s = default_scenario.with_overrides(
        {"demand.cv": 0.4, "weeks": 3, "fcs.PHX.lead_time": 3, "lanes.0.spare_volume": 10, "origins.ATL.capacity": 5}
    )
    assert s.demand.cv == 0.4 and s.weeks == 3
    assert next(f for f in s.fcs if f.name == "PHX").lead_time == 3
    assert s.lanes[0].spare_volume == 10
    assert next(o for o in s.origins if o.name == "ATL").capacity == 5
    assert default_scenario.weeks == 8  # the original is untouched
    with pytest.raises(ScenarioError, match=r"fcs\.SEA"):
        default_scenario.with_overrides({"fcs.SEA.lead_time": 2})
    with pytest.raises(ScenarioError, match=r"horizon.*-1"):
        default_scenario.with_overrides({"horizon": -1})
    with pytest.raises(ScenarioError, match=r"colour.*unknown field"):
        default_scenario.with_overrides({"colour": "red"})


def test_scenario_errors_are_user_errors(small_dict):
    small_dict["lanes"][0]["fc"] = "nowhere"
    with pytest.raises(FlosimError) as info:
        scenario_from_dict(small_dict, "mine.yaml")
    msg = str(info.value)
    assert "mine.yaml" in msg and "lanes.0.fc" in msg and "nowhere" in msg


def test_every_problem_is_reported_at_once(small_dict):
    small_dict["horizon"] = 0
    small_dict["products"][0]["holding_cost"] = -1
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict(small_dict, "two.yaml")
    lines = str(info.value).splitlines()
    assert len(lines) == 2
    assert any("horizon" in line for line in lines) and any("products.0.holding_cost" in line for line in lines)


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda d: d["lanes"].append(dict(d["lanes"][0])), "lanes"),  # duplicate lane
        (lambda d: d["fcs"].append(dict(d["fcs"][0])), "fcs"),  # duplicate FC name
        (lambda d: d["outbound_cost"].pop("W1"), "outbound_cost"),  # FC with no outbound costs
        (lambda d: d["outbound_cost"]["E1"].update(North=1.0), "outbound_cost.E1.North"),
        (lambda d: d["fcs"][0]["initial_stock"].update(zzz=1), "fcs.E1.initial_stock.zzz"),
        (lambda d: d["origins"][1]["production_cost"].pop("b"), "origins.O2.production_cost"),
        (lambda d: d["lanes"][0].update(spare_cost=2.0), "lanes.0"),  # non-convex lane
        (lambda d: d["demand"].update(model="stationary", trend=0.1), "demand"),
        (lambda d: d["demand"].update(revision={"shares": [0.5, 0.5]}), "demand.revision.shares"),
        (lambda d: d["lanes"][2]["delay"].update(values=[0]), "lanes.2.delay"),
        (lambda d: d["fcs"][1].update(lead_time=0), "fcs.1.lead_time"),
    ],
)
def test_invalid_scenarios_name_the_field(small_dict, change, field):
    change(small_dict)
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict(small_dict, "bad.yaml")
    msg = str(info.value)
    assert msg.startswith("bad.yaml: ")
    assert f"field '{field}" in msg, msg


def test_product_generator_materialises_products(small_dict, tmp_path):
    d = with_product_generator(small_dict, count=12, mix=[0.7, 0.1, 0.2], holding_cost_range=[0.01, 0.02])
    s = scenario_from_dict(d)
    assert s.product_generator is None and len(s.products) == 12
    assert len({p.name for p in s.products}) == 12
    assert all(p.base_demand >= 1 and 0.01 <= p.holding_cost <= 0.02 for p in s.products)
    assert scenario_from_dict(d) == s  # deterministic in the seed
    d2 = dict(d, seed=d["seed"] + 1)
    assert scenario_from_dict(d2).products != s.products
    # the resolved scenario (generated products written out) reloads identically
    dump_scenario(s, tmp_path / "s.yaml")
    assert load_scenario(tmp_path / "s.yaml") == s
    assert yaml.safe_load((tmp_path / "s.yaml").read_text())["product_generator"] is None


def test_product_generator_defaults_validate(small_dict):
    d = small_dict
    d.pop("products")
    d["product_generator"] = {"count": 5}
    for f in d["fcs"]:
        f["initial_stock"] = {}
    for o in d["origins"]:
        o["initial_stock"] = {}
        o["production_cost"] = 1.0
    assert len(scenario_from_dict(d).products) == 5


def test_dumped_scenario_reloads_equal_after_overrides(default_scenario, tmp_path):
    s = default_scenario.with_overrides({"weeks": 2, "seed": 99, "demand.cv": 0.123456789})
    dump_scenario(s, tmp_path / "x.yaml")
    again = load_scenario(tmp_path / "x.yaml")
    assert again == s
    assert again.model_dump() == s.model_dump()
