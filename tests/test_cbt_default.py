"""Each mechanism's default valuation of the retailer's continuation (``transfer.continuation`` left out).

``cpp-vcg`` defaults to ``forecast`` (its promise is truthfulness: the vendor's payoff is then the
planning objective), to ``paths`` when ``risk_aversion > 0`` (a certainty equivalent needs the paths);
the ``menu`` keeps ``paths``. The valuation in effect is recorded (``parameters()``, the
``transfer_continuation`` diagnostic of every decision), and ``continuation: paths`` given explicitly
reproduces what ``cpp-vcg`` computed while ``paths`` was its default, row for row
(tests/data/default_ledger_paths.json, the rows default_ledger_main.json held then;
tests/data/make_default_ledger.py regenerates both)."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from policies.cpp_vcg import CPPVCGPolicy, default_continuation
from policies.menu import DEFAULT_CONTINUATION
from policies.registry import make_policy
from policies.transfer_rules import TransferSettings, transfer_settings
from sim.model.errors import FlosimError
from sim.model.scenario import load_scenario
from sim.world import planning_context

DATA = Path(__file__).parent / "data"
sys.path.insert(0, str(DATA))
from make_default_ledger import compute  # noqa: E402


@pytest.fixture(scope="module")
def default():
    return load_scenario("default")


def test_each_mechanism_resolves_its_own_default(default):
    assert default_continuation(0.0) == "forecast" and default_continuation(0.2) == "paths"
    assert DEFAULT_CONTINUATION == "paths"
    cases = [
        ("cpp-vcg", {}, "forecast"),
        ("cpp-vcg", {"transfer": {"rule": "two-way"}}, "forecast"),
        ("cpp-vcg", {"two_way": True}, "forecast"),
        ("cpp-vcg", {"risk_aversion": 0.05}, "paths"),
        ("cpp-vcg", {"transfer": {"continuation": None}}, "forecast"),  # explicitly left to the mechanism
        ("cpp-vcg", {"transfer": {"continuation": "paths"}}, "paths"),
        ("cpp-vcg", {"transfer": {"continuation": "paths-whole"}, "risk_aversion": 0.05}, "paths-whole"),
        ("menu", {}, "paths"),
        ("menu", {"transfer": {"rule": "two-way"}}, "paths"),
        ("menu", {"transfer": {"continuation": "forecast"}}, "forecast"),
    ]
    for name, settings, expected in cases:
        policy = make_policy(name, default, **settings)
        assert policy.transfer.continuation == expected, (name, settings)
        assert policy.parameters()["transfer"]["continuation"] == expected, (name, settings)
    # the shared settings block leaves the choice to the mechanism; resolving keeps an explicit choice
    assert transfer_settings({}).continuation is None
    assert TransferSettings().resolved("forecast").continuation == "forecast"
    assert TransferSettings(continuation="paths").resolved("forecast").continuation == "paths"
    # a resolved block handed to another mechanism stays what it was resolved to
    resolved = make_policy("cpp-vcg", default).transfer
    assert make_policy("menu", default, transfer=resolved).continuation == "forecast"


def test_forecast_with_risk_aversion_is_still_refused_when_asked_for(default):
    with pytest.raises(FlosimError, match="transfer.continuation"):
        make_policy("cpp-vcg", default, risk_aversion=0.1, transfer={"continuation": "forecast"})
    assert make_policy("cpp-vcg", default, risk_aversion=0.1).continuation == "paths"  # the default steps aside


def test_cpp_vcg_parameters_rebuild_the_same_policy(default):
    policy = make_policy("cpp-vcg", default, scenarios=4, transfer={"rule": "two-way"})
    params = policy.parameters()
    assert params["transfer"] == {"rule": "two-way", "payee": "retailer", "share": 0.5, "continuation": "forecast"}
    rebuilt = CPPVCGPolicy(**params)
    assert rebuilt.parameters() == params


def test_a_decision_records_the_valuation_it_used(default):
    ctx = planning_context(default, week=1)
    for name, settings, expected in [("cpp-vcg", {"solver": "central"}, "forecast"),
                                     ("cpp-vcg", {"solver": "central", "risk_aversion": 0.01}, "paths"),
                                     ("menu", {"size": 2}, "paths")]:
        d = make_policy(name, default, scenarios=2, **settings).decide(replace(ctx, rng=np.random.default_rng(4)))
        assert d.diagnostics["transfer_continuation"] == expected, (name, settings)


def test_the_default_prices_the_exact_forecast_pivot(default):
    """At the default the one-vendor transfer is ``R(x*_t) - R(x^J_t)`` on the forecast (the retailer's least
    cost with the PO fixed, against its own least cost), never negative; with ``paths`` it is not."""
    ctx = planning_context(default, week=1)
    got = {}
    for settings in ({}, {"transfer": {"continuation": "paths"}}):
        policy = make_policy("cpp-vcg", default, solver="central", scenarios=4, **settings)
        got[policy.continuation] = policy.decide(replace(ctx, rng=np.random.default_rng(7)))
    d = got["forecast"]
    r = ctx.retailer
    hand = r.cost_with_first_week(d.po).total - r.preferred_plan().total
    assert hand > 0
    assert d.transfers["vendor"] == pytest.approx(hand, rel=1e-6)
    assert d.diagnostics["pivot_raw_vendor"] == pytest.approx(hand, rel=1e-6)
    assert np.array_equal(got["paths"].po, d.po)  # the same plan: only the transfer moves
    assert abs(got["paths"].diagnostics["pivot_raw_vendor"] - hand) > 1.0


def test_explicit_paths_reproduces_the_old_default_ledger_row_for_row():
    """``cpp-vcg`` with ``transfer: {continuation: paths}``: its ledger on ``default`` (3 weeks and the
    cool-down) equals, bit for bit, the rows stored while ``paths`` was the default."""
    stored = json.loads((DATA / "default_ledger_paths.json").read_text())
    assert stored["options"] == {"cpp-vcg": {"transfer": {"continuation": "paths"}}}
    assert compute(stored["weeks"], stored["policies"], stored["options"]) == stored["ledger"]
    main = json.loads((DATA / "default_ledger_main.json").read_text())
    old = stored["ledger"]
    new = [row for row in main["ledger"] if row[0] == "cpp-vcg"]
    # the default moves cpp-vcg's transfers only: every other row (the plan, costs, flows) is the same
    differ = [(a, b) for a, b in zip(old, new) if a != b]
    assert differ and all(a[:5] == b[:5] and a[4] == "transfer" for a, b in differ)
