"""Scenario schema version 2: a ``vendors`` list, its normalised form (``Scenario.vendor_specs``), the
global lane order, round trips, overrides and the version-1 view of a one-vendor scenario."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from conftest import small_scenario_dict
from sim.model.errors import ScenarioError
from sim.model.memory import RunSize
from sim.model.scenario import (
    VendorSpec,
    builtin_scenarios,
    dump_scenario,
    load_scenario,
    run_size,
    scenario_from_dict,
)


def v2_dict() -> dict[str, Any]:
    """The small test scenario split between two vendors: ``acme`` (O1, both products at its own
    prices) and ``bolt`` (O2, product ``b`` only)."""
    d = small_scenario_dict()
    origins = {o["name"]: o for o in d.pop("origins")}
    lanes = d.pop("lanes")
    for p in d["products"]:
        p.pop("wholesale_price")
    d["schema_version"] = 2
    d["vendors"] = [
        {"name": "acme", "origins": [origins["O1"]], "lanes": [ln for ln in lanes if ln["origin"] == "O1"],
         "products": {"a": 5.0, "b": 4.0}},
        {"name": "bolt", "origins": [dict(origins["O2"], production_cost={"b": 2.0})],
         "lanes": [ln for ln in lanes if ln["origin"] == "O2"], "products": {"b": 3.8}},
    ]
    return d


@pytest.fixture
def v2() -> dict[str, Any]:
    return copy.deepcopy(v2_dict())


def test_a_version_1_scenario_is_one_vendor_named_vendor(small_scenario):
    (spec,) = small_scenario.vendor_specs()
    assert isinstance(spec, VendorSpec)
    assert spec.name == "vendor" and small_scenario.vendor_names == ["vendor"]
    assert spec.origins == small_scenario.origins and spec.lanes == small_scenario.lanes
    assert spec.wholesale == {"a": 5.0, "b": 4.0}
    assert small_scenario.all_lanes == small_scenario.lanes and small_scenario.all_origins == small_scenario.origins
    assert small_scenario.vendors is None


@pytest.mark.parametrize("name", builtin_scenarios())
def test_every_builtin_names_its_vendors_with_prices_for_every_product(name):
    s = load_scenario(name)
    specs = s.vendor_specs()
    assert [v.name for v in specs] == s.vendor_names and len(set(s.vendor_names)) == len(specs)
    supplied = {k for v in specs for k in v.wholesale}
    assert supplied == set(s.product_names)
    for v in specs:
        assert list(v.wholesale) == [k for k in s.product_names if k in v.wholesale]  # product order
        assert v.lanes and {lane.origin for lane in v.lanes} <= {o.name for o in v.origins}
    assert [ln for v in specs for ln in v.lanes] == s.all_lanes


def test_a_version_1_dump_has_no_vendor_fields(small_scenario, tmp_path):
    dump_scenario(small_scenario, tmp_path / "s.yaml")
    data = yaml.safe_load((tmp_path / "s.yaml").read_text())
    assert "vendors" not in data and data["schema_version"] == 1
    assert list(data) == [k for k in small_scenario.model_dump() if k != "vendors"]


def test_version_2_normalises_to_vendor_specs_in_file_order(v2):
    s = scenario_from_dict(v2, "v2.yaml")
    acme, bolt = s.vendor_specs()
    assert (acme.name, bolt.name) == ("acme", "bolt")
    assert acme.wholesale == {"a": 5.0, "b": 4.0} and bolt.wholesale == {"b": 3.8}
    assert [o.name for o in acme.origins] == ["O1"] and [o.name for o in bolt.origins] == ["O2"]
    # the global lane order: vendors in order, each vendor's lanes in order
    assert [(ln.origin, ln.fc) for ln in s.all_lanes] == [("O1", "E1"), ("O1", "W1"), ("O2", "W1")]
    assert s.origins == [] and s.lanes == [] and all(p.wholesale_price is None for p in s.products)


def test_version_2_round_trips_through_a_file(v2, tmp_path):
    s = scenario_from_dict(v2, "v2.yaml")
    dump_scenario(s, tmp_path / "s.yaml")
    data = yaml.safe_load((tmp_path / "s.yaml").read_text())
    assert "origins" not in data and "lanes" not in data
    assert all("wholesale_price" not in p for p in data["products"])
    assert load_scenario(tmp_path / "s.yaml") == s


def test_run_sizes_count_every_vendors_origins_and_lanes(v2, small_scenario):
    s = scenario_from_dict(v2)
    size = run_size(s, 4)
    assert (size.origins, size.lanes, size.vendors) == (2, 3, 2)
    one = run_size(small_scenario, 4)
    assert (one.origins, one.lanes, one.vendors) == (2, 3, 1)
    # a second vendor's block adds to the plan's size; with one vendor the estimate is as before
    assert size.lp_variables > one.lp_variables
    assert RunSize(4, 3, 2, 2, 2, 2, 3).lp_variables == one.lp_variables


def test_overrides_reach_a_vendors_fields_by_name_or_position(v2):
    s = scenario_from_dict(v2, "v2.yaml")
    t = s.with_overrides({"vendors.acme.lanes.0.spare_volume": 10, "vendors.0.products.b": 4.4,
                          "vendors.bolt.origins.O2.capacity": 99})
    acme, bolt = t.vendor_specs()
    assert acme.lanes[0].spare_volume == 10 and acme.wholesale == {"a": 5.0, "b": 4.4}
    assert bolt.origins[0].capacity == 99
    assert t.all_lanes[0].spare_volume == 10  # the global order sees the same lane
    assert s.vendor_specs()[0].lanes[0].spare_volume == 50  # the original is untouched
    # a vendor starts supplying a product through an override
    u = s.with_overrides({"vendors.bolt.products.a": 4.9, "vendors.bolt.origins.O2.production_cost.a": 1.2})
    assert u.vendor_specs()[1].wholesale == {"a": 4.9, "b": 3.8}  # in product order
    with pytest.raises(ScenarioError, match=r"vendors\.zeta"):
        s.with_overrides({"vendors.zeta.lanes.0.spare_volume": 1})
    with pytest.raises(ScenarioError, match=r"vendors\.bolt\.products\.zz.*unknown product"):
        s.with_overrides({"vendors.bolt.products.zz": 1.0})
    with pytest.raises(ScenarioError, match=r"vendors\.bolt\.lanes\.0\.origin.*vendor 'acme'"):
        s.with_overrides({"vendors.bolt.lanes.0.origin": "O1"})


def test_a_generator_with_vendors_naming_all_products(v2, tmp_path):
    v2.pop("products")
    v2["product_generator"] = {"count": 6}
    for f in v2["fcs"]:
        f["initial_stock"] = {}
    for v, price in zip(v2["vendors"], [5.0, 4.5]):
        v.update(products="all", wholesale_price=price)
        for o in v["origins"]:
            o.update(production_cost=1.5, initial_stock={})
    s = scenario_from_dict(v2, "gen.yaml")
    assert len(s.products) == 6 and all(p.wholesale_price is None for p in s.products)
    acme, bolt = s.vendor_specs()
    assert acme.wholesale == {p: 5.0 for p in s.product_names} and bolt.wholesale == {p: 4.5 for p in s.product_names}
    dump_scenario(s, tmp_path / "s.yaml")
    assert load_scenario(tmp_path / "s.yaml") == s
    # the same generator draws the same products as in a version-1 file (only the prices move)
    v1 = small_scenario_dict()
    v1.pop("products")
    v1["product_generator"] = {"count": 6}
    for f in v1["fcs"]:
        f["initial_stock"] = {}
    for o in v1["origins"]:
        o.update(production_cost=1.5, initial_stock={})
    one = scenario_from_dict(v1)
    assert [p.model_copy(update={"wholesale_price": None}) for p in one.products] == s.products
    # generated names may also be priced one by one: they are checked once generated
    v2["vendors"][1].update(products={"P1": 4.0}, wholesale_price=None)
    del v2["vendors"][1]["wholesale_price"]
    assert scenario_from_dict(v2).vendor_specs()[1].wholesale == {"P1": 4.0}
    v2["vendors"][1]["products"] = {"P9": 4.0}
    with pytest.raises(ScenarioError, match=r"vendors\.bolt\.products\.P9.*unknown product"):
        scenario_from_dict(v2, "gen.yaml")


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda d: d["vendors"][1].update(name="acme"), "vendors' = 'acme'"),
        (lambda d: d["vendors"][1].update(name="retailer"), "vendors.retailer.name"),
        (lambda d: d["vendors"][0].update(name="mechanism"), "vendors.mechanism.name"),
        (lambda d: d["vendors"][1].update(lanes=[]), "vendors.bolt.lanes"),
        (lambda d: d["vendors"][1]["lanes"].append({"origin": "O1", "fc": "E1", "truckload_cost": 1}), "vendors.bolt.lanes.1.origin"),
        (lambda d: d["vendors"][1]["lanes"].append({"origin": "ZZ", "fc": "E1", "truckload_cost": 1}), "vendors.bolt.lanes.1.origin"),
        (lambda d: d["vendors"][1]["origins"].append(dict(d["vendors"][0]["origins"][0])), "vendors.bolt.origins.O1"),
        (lambda d: (d["vendors"][0]["products"].pop("a"), d["vendors"][0]["origins"][0].update(initial_stock={})), "products.a"),
        (lambda d: d["vendors"][1]["products"].update(zz=1.0), "vendors.bolt.products.zz"),
        (lambda d: d["vendors"][1].update(products={}), "vendors.bolt.products"),
        (lambda d: d.update(origins=d["vendors"][0]["origins"]), "origins"),
        (lambda d: d.update(lanes=d["vendors"][0]["lanes"]), "lanes"),
        (lambda d: d["products"][1].update(wholesale_price=3.0), "products.b.wholesale_price"),
        (lambda d: d["vendors"][1]["origins"][0].update(initial_stock={"a": 3}), "vendors.bolt.origins.O2.initial_stock.a"),
        (lambda d: d["vendors"][0]["origins"][0].update(production_cost={"a": 1}), "vendors.acme.origins.O1.production_cost"),
        (lambda d: d["vendors"][1].update(products="all"), "vendors.1.wholesale_price"),
        (lambda d: d["vendors"][1].update(wholesale_price=2.0), "vendors.1.wholesale_price"),
        (lambda d: d.pop("vendors"), "vendors"),
        (lambda d: d.update(schema_version=1), "vendors"),  # a version-1 file has no vendors list
    ],
)
def test_invalid_vendors_name_the_field(v2, change, field):
    change(v2)
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict(v2, "bad.yaml")
    msg = str(info.value)
    assert msg.startswith("bad.yaml: ") and len(msg.splitlines()) == 1, msg
    assert f"field '{field}" in msg, msg


def test_a_version_1_file_with_vendors_is_refused(small_dict):
    small_dict["vendors"] = v2_dict()["vendors"]
    with pytest.raises(ScenarioError, match=r"field 'vendors'.*schema_version 2"):
        scenario_from_dict(small_dict, "bad.yaml")
    assert scenario_from_dict({**small_dict, "vendors": None}) == scenario_from_dict({k: v for k, v in small_dict.items() if k != "vendors"})


def test_a_version_1_product_still_needs_its_price(small_dict):
    small_dict["products"][0].pop("wholesale_price")
    with pytest.raises(ScenarioError, match=r"field 'products\.0\.wholesale_price'.*required field is missing"):
        scenario_from_dict(small_dict, "bad.yaml")


def test_the_two_vendor_scenario_competes_for_the_south_west():
    s = load_scenario("two-vendors")
    default = load_scenario("default")
    acme, sonora = s.vendor_specs()
    (vendor,) = default.vendor_specs()
    # the first vendor is the default network's vendor unchanged
    assert acme.origins == vendor.origins and acme.lanes == vendor.lanes and acme.wholesale == vendor.wholesale
    assert (s.regions, s.fcs[0].name, s.outbound_cost) == (default.regions, default.fcs[0].name, default.outbound_cost)
    # the second has a scheduled truck with spare volume into Phoenix only, full truckload elsewhere
    spare = {lane.fc for lane in sonora.lanes if lane.spare_volume > 0}
    assert spare == {"PHX"} and {lane.fc for lane in sonora.lanes} == {f.name for f in s.fcs}
    both = set(acme.wholesale) & set(sonora.wholesale)
    assert both and all(acme.wholesale[k] != sonora.wholesale[k] for k in both)
    assert set(acme.wholesale) ^ set(sonora.wholesale)  # some products have one vendor only
    size = run_size(s, s.weeks)
    assert size.bytes < 2 * run_size(default, default.weeks).bytes  # about the default's size


def test_the_three_vendor_pilot_is_the_pilot_network_split_by_origin():
    s = load_scenario("pilot-three-vendors")
    pilot = load_scenario("pilot")
    assert len(s.vendor_specs()) == 3
    assert s.all_origins == pilot.origins and s.all_lanes == pilot.lanes  # same network, same lane order
    assert [p.name for p in s.products] == pilot.product_names
    assert all(set(v.wholesale) == set(pilot.product_names) for v in s.vendor_specs())


def test_the_three_vendor_sweep_spec_loads_against_its_scenario():
    from experiments.sweep import design_points, load_spec

    loaded = load_spec("experiments/specs/pilot_three_vendors.yaml")
    assert loaded.scenario.name == "pilot-three-vendors"
    points = design_points(loaded.spec)
    assert points and all(
        loaded.scenario.with_overrides(p, source="point").vendor_names == ["cincinnati", "memphis", "reno"] for p in points[:3]
    )


def test_a_runs_inputs_and_trace_lanes_cover_every_vendors_lanes_in_the_global_order():
    from forecasts.inputs import draw_inputs
    from forecasts.traces import lane_names

    s = load_scenario("two-vendors")
    names = [f"{lane.origin}->{lane.fc}" for v in s.vendor_specs() for lane in v.lanes]
    assert lane_names(s) == names and len(names) == 9
    inputs = draw_inputs(s, weeks=3)
    assert inputs.delays.shape[1] == len(names)
    # a lane's delays are its own stream: the first vendor's lanes draw what the one-vendor default draws
    default = load_scenario("default").model_copy(update={"seed": s.seed})
    assert (draw_inputs(default, weeks=3).delays == inputs.delays[:, :6]).all()
    # the Tucson lanes draw from their own distributions (TUS->IND is late with probability 0.2)
    assert set(inputs.delays[:, 6:].ravel().tolist()) <= {0, 1}
