"""The cost-benefit transfer and its certainty equivalent (docs/model.md, "Transfers")."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.cbt import certainty_equivalent, cost_benefit_transfer
from sim.parties.oracle import joint_plan
from sim.model.scenario import load_scenario
from sim.world import planning_context

costs = st.lists(st.floats(-50, 50, allow_nan=False), min_size=2, max_size=30)


@given(costs)
def test_ce_is_mean_at_zero_risk_aversion(xs):
    assert certainty_equivalent(np.array(xs), 0.0) == pytest.approx(np.mean(xs))


@given(costs, st.floats(0.01, 2.0))
def test_ce_exceeds_mean_for_risk_averse(xs, gamma):
    x = np.array(xs)
    if np.ptp(x) < 1e-6:
        return
    assert certainty_equivalent(x, gamma) > x.mean()


@given(costs, st.floats(0.01, 1.0), st.floats(0.01, 1.0))
def test_ce_grows_with_risk_aversion(xs, g1, g2):
    lo, hi = sorted((g1, g2))
    x = np.array(xs)
    assert certainty_equivalent(x, hi) >= certainty_equivalent(x, lo) - 1e-9


def test_ce_rejects_negative_gamma_and_empty_sample():
    with pytest.raises(ValueError):
        certainty_equivalent(np.array([1.0]), -0.1)
    with pytest.raises(ValueError):
        certainty_equivalent(np.array([]), 0.0)


def test_ce_is_numerically_stable_for_large_costs():
    x = np.array([1e5, 1e5 + 10.0])
    ce = certainty_equivalent(x, 5.0)
    assert np.isfinite(ce) and 1e5 + 5 < ce <= 1e5 + 10


@pytest.fixture(scope="module")
def deterministic_ctx():
    s = load_scenario("default").with_overrides({"demand.deterministic": True})
    return planning_context(s, week=1)


def test_deterministic_cbt_is_immediate_plus_future_exactly(deterministic_ctx):
    ctx = deterministic_ctx
    x_star = joint_plan(ctx.retailer, ctx.vendor).plan
    x_jit = ctx.retailer.preferred_plan().plan
    cbt = cost_benefit_transfer(ctx, x_star, x_jit, discount=1.0, risk_aversion=0.7, scenarios=5, two_way=True)
    # with known demand every scenario is the forecast, so the CE equals the single future difference
    assert cbt.future_ce == pytest.approx(cbt.future_mean, abs=1e-9)
    assert cbt.raw == pytest.approx(cbt.immediate + cbt.future_ce, abs=1e-9)
    # and the whole transfer is the pivot R(x*_t) - R(x^J_t): the retailer's least cost with each PO fixed
    r_star = ctx.retailer.cost_with_first_week(x_star[:, 0]).total  # the POs, [V, F, K]
    r_jit = ctx.retailer.cost_with_first_week(x_jit[:, 0]).total
    assert cbt.raw == pytest.approx(r_star - r_jit, rel=1e-9, abs=1e-6)
    # the retailer's own plan is its optimum, so the pivot is never negative here
    assert cbt.raw >= -1e-6


def test_discount_scales_only_the_future_term(deterministic_ctx):
    ctx = deterministic_ctx
    x_star = joint_plan(ctx.retailer, ctx.vendor).plan
    x_jit = ctx.retailer.preferred_plan().plan
    a = cost_benefit_transfer(ctx, x_star, x_jit, discount=1.0, scenarios=1, two_way=True)
    b = cost_benefit_transfer(ctx, x_star, x_jit, discount=0.5, scenarios=1, two_way=True)
    assert b.immediate == pytest.approx(a.immediate)
    assert b.future_ce == pytest.approx(0.5 * a.future_ce)


def test_one_way_transfer_is_never_negative():
    s = load_scenario("default")
    ctx = planning_context(s, week=0)
    x_jit = ctx.retailer.preferred_plan().plan
    # deviating towards a plan that is cheaper for the retailer in week t gives a negative raw CBT
    cheaper = x_jit.copy()
    cheaper[:, 0] *= 0.5  # half of week t's PO
    one = cost_benefit_transfer(ctx, cheaper, x_jit, scenarios=4)
    two = cost_benefit_transfer(ctx, cheaper, x_jit, scenarios=4, two_way=True)
    assert one.paid == max(one.raw, 0.0)
    assert two.paid == two.raw
