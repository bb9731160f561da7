"""The incentive audit: truthfulness under CPP-VCG, profitable lies under split-savings."""

from __future__ import annotations

import json

import pytest

from experiments.audit import run_audit
from experiments.cli import main
from sim.model.scenario import load_scenario

TOL = 1e-7  # relative to the truthful social cost: LP solver tolerance


@pytest.fixture(scope="module")
def deterministic_audit():
    s = load_scenario("default").with_overrides({"demand.deterministic": True})
    overrides = {"cpp-vcg": {"solver": "central", "discount": 1.0, "scenarios": 1},
                 "split-savings": {"solver": "central"}}
    return run_audit(s, ["cpp-vcg", "split-savings"], weeks=2, parties=["vendor"], policy_overrides=overrides)


def test_no_vendor_lie_pays_under_cpp_vcg(deterministic_audit):
    t = deterministic_audit[deterministic_audit.mechanism == "cpp-vcg"]
    assert len(t) >= 7
    assert (t["relative_gain"] <= TOL).all(), t[["lie", "gain"]]


def test_vendor_loses_exactly_what_its_lie_costs_society(deterministic_audit):
    # Clarke pivot: the vendor's net cost is the social cost minus terms it cannot influence
    t = deterministic_audit[deterministic_audit.mechanism == "cpp-vcg"]
    social_increase = t["lying_social_cost"] - t["truthful_social_cost"]
    assert (abs(t["gain"] + social_increase) <= 1e-6 * t["truthful_social_cost"]).all()


def test_some_lie_pays_under_split_savings(deterministic_audit):
    t = deterministic_audit[deterministic_audit.mechanism == "split-savings"]
    assert (t["relative_gain"] > 1e-4).any()
    # and it pays more than the truthful plan's distance from first best: no pivot bounds it
    assert not t["within_slack"].all()


def test_truthful_slack_is_the_truthful_plans_distance_from_first_best(deterministic_audit):
    # the central solver plans first best: no slack, so the pivot leaves no lie anything to gain
    for mech, t in deterministic_audit.groupby("mechanism"):
        social = t["truthful_social_cost"].iloc[0]
        assert (t["truthful_slack"] >= -TOL * abs(social)).all(), mech  # first best is a lower bound
    t = deterministic_audit[deterministic_audit.mechanism == "cpp-vcg"]
    assert (t["truthful_slack"].abs() <= TOL * t["truthful_social_cost"].abs()).all()
    assert t["within_slack"].all()


def test_audit_command_json_and_files(tmp_path, capsys):
    out = tmp_path / "audit"
    code = main(["audit", "--mechanism", "split-savings", "--weeks", "1", "--party", "vendor", "--out", str(out), "--json"])
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    assert {"mechanism", "party", "lie", "gain", "relative_gain", "truthful_slack", "within_slack"} <= set(rows[0])
    assert (out / "audit.parquet").exists() and (out / "audit.png").stat().st_size > 10_000
