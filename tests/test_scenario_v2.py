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
