"""The ``pilot-full`` built-in scenario: the pilot at V-ADK's 330 products, generated from the pilot."""

from __future__ import annotations

import yaml

from experiments.pilot_full import SCENARIOS, pilot_full
from sim.model.scenario import load_scenario


def test_shipped_yaml_is_the_generators_output() -> None:
    pilot = yaml.safe_load((SCENARIOS / "pilot.yaml").read_text())
    assert yaml.safe_load((SCENARIOS / "pilot-full.yaml").read_text()) == pilot_full(pilot)


def test_pilot_full_is_the_pilot_at_330_products() -> None:
    small, full = load_scenario("pilot"), load_scenario("pilot-full")
    assert len(small.products) == 20 and len(full.products) == 330
    assert [f.name for f in full.fcs] == [f.name for f in small.fcs] and full.weeks == small.weeks == 9
    assert full.horizon == small.horizon and full.policies == small.policies
    scale = sum(p.base_demand for p in full.products) / sum(p.base_demand for p in small.products)
    assert 10 < scale < 30  # more products, and big ones among them
    for a, b in zip(small.origins, full.origins, strict=True):
        assert abs(b.capacity - a.capacity * scale) <= 0.5
    # each FC holds (lead time + 0.5) weeks of its own region's mean demand, as in the pilot
    weights = full.demand.region_weights
    for f, fc in enumerate(full.fcs):
        w = weights[full.regions[f]]
        for p in full.products[:25]:
            assert abs(fc.initial_stock[p.name] - w * p.base_demand * (fc.lead_time + 0.5)) <= 0.5
