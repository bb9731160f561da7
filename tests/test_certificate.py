"""The a-posteriori certificate: weak duality from two numbers per agent bounds a plan's gap."""

from __future__ import annotations

import json

import numpy as np
import pytest

from experiments.cli import main
from policies.cpp import negotiate_efficient_plan
from sim.agents import joint_plan
from sim.best_response import negotiator_for
from sim.certificate import certify
from sim.world import planning_context

REL = 1e-9  # LP solver tolerance, relative to the social cost


@pytest.fixture(scope="module")
def ctx(default_scenario):
    return planning_context(default_scenario, week=0)


@pytest.fixture(scope="module")
def first_best(ctx):
    return joint_plan(ctx.retailer, ctx.vendor).social_cost


def test_negotiated_plan_is_certified_and_the_bound_holds(ctx, first_best) -> None:
    plan, result = negotiate_efficient_plan(ctx, certify=True)
    c = result.certificate
    assert result.converged and c is not None
    social = ctx.retailer.evaluate(plan).total + ctx.vendor.evaluate(plan).total
    assert c.upper == pytest.approx(social, rel=REL)  # the agents' stated costs are the plan's
    assert c.lower <= first_best * (1 + REL) <= c.upper * (1 + 2 * REL)
    true_gap = (social - first_best) / first_best
    assert c.gap >= true_gap - REL
    # at convergence the prices are near-optimal, so the bound is informative, not just valid
    # (3.5e-3 measured against a true gap of 2.9e-4)
    assert c.gap <= 1e-2
    assert result.diagnostics()["certified_gap"] == c.gap


def test_lower_bound_holds_at_any_prices_that_sum_to_zero(ctx, first_best) -> None:
    negs = [negotiator_for(ctx.retailer), negotiator_for(ctx.vendor)]
    plan = ctx.retailer.preferred_plan().plan  # any plan the vendor can ship or not: upper may be inf
    rng = np.random.default_rng(7)
    finite = 0
    for scale in (0.1, 0.5, 2.0, 10.0):
        y = rng.normal(0.0, scale, size=ctx.public.shape)
        c = certify(negs, [y, -y + 1e-3], plan)  # re-centred inside: the bound is valid for the pair
        assert c.lower <= first_best * (1 + REL)
        finite += np.isfinite(c.lower)
    assert finite >= 2  # moderate prices keep both agents' LPs bounded


def test_prices_and_negotiators_must_match(ctx) -> None:
    with pytest.raises(ValueError, match="2 negotiators but 1"):
        certify([negotiator_for(ctx.retailer), negotiator_for(ctx.vendor)], [np.zeros(ctx.public.shape)],
                np.zeros(ctx.public.shape))


def test_flosim_plan_reports_a_certified_gap_that_bounds_the_gap(capsys) -> None:
    assert main(["plan", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["certified_gap"] is not None and out["certified_gap"] >= out["gap"] - REL
    assert main(["plan", "--policy", "jit", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["certified_gap"] is None
