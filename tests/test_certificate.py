"""The a-posteriori certificate: weak duality from two numbers per agent bounds a plan's gap."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.optimize import linprog

from experiments.cli import main
from policies.cpp import negotiate_efficient_plan
from sim.parties.oracle import joint_plan
from sim.negotiation.best_response import negotiator_for
from sim.negotiation.certificate import certify
from sim.model.lp import LPBuilder
from sim.world import planning_context

REL = 1e-9  # LP solver tolerance, relative to the social cost


@pytest.fixture(scope="module")
def ctx(default_scenario):
    return planning_context(default_scenario, week=0)


@pytest.fixture(scope="module")
def first_best(ctx):
    return joint_plan(ctx.retailer, ctx.vendor).social_cost


@pytest.fixture(scope="module")
def negotiated(ctx):
    """The week's negotiation, certified (one negotiation for the tests that need its plan or prices)."""
    return negotiate_efficient_plan(ctx, certify=True)


def test_negotiated_plan_is_certified_and_the_bound_holds(ctx, first_best, negotiated) -> None:
    plan, result = negotiated
    c = result.certificate
    assert result.converged and c is not None
    social = ctx.retailer.evaluate(plan).total + ctx.vendor.evaluate(plan).total
    assert c.upper == pytest.approx(social, rel=REL)  # the agents' stated costs are the plan's
    assert c.lower <= first_best * (1 + REL) <= c.upper * (1 + 2 * REL)
    true_gap = (social - first_best) / first_best
    assert c.gap >= true_gap - REL
    # at convergence the prices are near-optimal, so the bound is informative, not just valid
    # (2.3e-3 measured against a true gap of 4.5e-4)
    assert 0 < c.lower and c.gap <= 1e-2
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


def _optimal_prices(ctx) -> np.ndarray:
    """The first-best LP's prices on the plan: the joint LP with the plan split into a retailer and
    a vendor copy tied by ``x_R - x_V = 0``; the duals of those rows (HiGHS, through scipy)."""
    b = LPBuilder()
    shape = ctx.public.shape
    x_r, x_v = b.add_var(shape), b.add_var(shape)
    ctx.retailer.add_block(b, x_r)
    ctx.vendor.add_block(b, x_v)
    tie = b.new_rows("eq", shape)
    b.add_terms("eq", tie, x_r, 1.0)
    b.add_terms("eq", tie, x_v, -1.0)
    lp = b.build()
    res = linprog(lp.c, A_ub=lp.A_ub, b_ub=lp.b_ub, A_eq=lp.A_eq, b_eq=lp.b_eq, bounds=np.column_stack([lp.lb, lp.ub]),
                  method="highs")
    assert res.status == 0
    return -res.eqlin.marginals[tie.ravel()].reshape(shape)  # L = c·v - marginals·(x_R - x_V)


def test_bound_is_tight_at_the_first_best_prices(ctx, first_best, negotiated) -> None:
    """Strong LP duality: at the first best's own prices the agents' dual values sum to first best;
    weak duality and concavity along the way to the negotiated prices."""
    negs = [negotiator_for(ctx.retailer), negotiator_for(ctx.vendor)]
    y = _optimal_prices(ctx)
    plan = ctx.retailer.preferred_plan().plan
    assert certify(negs, [y, -y], plan).lower == pytest.approx(first_best, rel=1e-7)
    # between them and the negotiated prices the bound is a concave function of the prices, below
    # first best: at a mixture at least the mixture of the two bounds, and never above first best
    _, result = negotiated
    y_cpp = result.prices[0]
    lower_cpp = certify(negs, [y_cpp, -y_cpp], plan).lower
    assert 0 < lower_cpp < first_best * (1 - 1e-6)
    for t in (0.25, 0.5, 0.75):
        mix = t * y + (1 - t) * y_cpp
        lower = certify(negs, [mix, -mix], plan).lower
        assert t * first_best + (1 - t) * lower_cpp - 1e-7 * first_best <= lower <= first_best * (1 + REL)


def test_bound_holds_near_the_final_prices(ctx, first_best, negotiated) -> None:
    """Where the bound is informative, near the negotiated prices, it still never exceeds first best."""
    negs = [negotiator_for(ctx.retailer), negotiator_for(ctx.vendor)]
    plan, result = negotiated
    rng = np.random.default_rng(3)
    y = result.prices[0]
    for scale in (1e-3, 1e-2, 1e-1):
        noise = rng.normal(0.0, scale * float(np.sqrt(np.mean(y**2))), size=y.shape)
        c = certify(negs, [y + noise, result.prices[1] - noise], plan)
        assert 0 < c.lower <= first_best * (1 + REL)
        assert np.isfinite(c.gap) and c.gap > 0


def test_no_relative_bound_without_a_positive_lower_bound(ctx, first_best) -> None:
    """At zero prices the vendor's dual value (its best plan's cost net of revenue) is negative, so the
    lower bound is below zero: valid, but (UB - LB)/LB would not bound the relative gap."""
    negs = [negotiator_for(ctx.retailer), negotiator_for(ctx.vendor)]
    zero = np.zeros(ctx.public.shape)
    c = certify(negs, [zero, zero], zero)
    assert c.lower < 0 and c.lower <= first_best
    assert c.gap == np.inf and "lower bound" in c.message
    assert c.upper - c.lower >= c.upper - first_best  # the absolute gap is still bounded


def test_a_fallback_week_certifies_the_plan_it_executes(ctx, first_best) -> None:
    """A negotiation cut off early falls back to JIT; the certificate then compares the JIT plan,
    the one executed, with the same lower bound."""
    from policies.cpp import CPPPolicy

    d = CPPPolicy(max_iter=20, certify=True).decide(ctx)
    assert d.diagnostics["fallback"] == "jit"
    social = d.planned["retailer"] + d.planned["vendor"]
    assert d.diagnostics["certified_upper"] == pytest.approx(social, rel=REL)
    true_gap = (social - first_best) / first_best
    assert true_gap > 1e-2  # JIT is far from first best here, so a stale certificate would show
    assert d.diagnostics["certified_gap"] >= true_gap - REL


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
