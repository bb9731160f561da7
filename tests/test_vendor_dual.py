"""The vendor's best response through the prices of its coupling rows (sim.vendor_dual) solves the
same QP as the generic LP-based negotiator, checked against an interior-point solve of that QP."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from experiments.benchmarks import planning_round
from policies.cpp import answer_options
from sim.agents import VendorAgent
from sim.best_response import BestResponseOptions, ProcessNegotiator, negotiator_for
from sim.coordinator import ADMMOptions, ConsensusADMM
from sim.errors import FlosimError
from sim.scenario import load_scenario
from sim.vendor_dual import VendorDualResponse
from tests.test_best_response import _objective, _qp_reference

EXACT = BestResponseOptions(vendor_solver="dual", adaptive=0, abs_tol=1e-4)


def _vendor(scenario, capacity=1.0, spare=1.0, stock=1.0) -> VendorAgent:
    """The scenario's vendor with its capacities, spare truck volumes and origin stock scaled."""
    _, vendor = planning_round(scenario)
    data, state = vendor.cost_model()
    data = replace(data, capacity=data.capacity * capacity, spare_volume=data.spare_volume * spare)
    agent = VendorAgent(vendor.public, data)
    agent.observe(replace(state, stock=state.stock * stock))
    return agent


def _query(vendor: VendorAgent, rng: np.random.Generator, scale: float = 1.5):
    H, F, K = vendor.public.shape
    z = rng.uniform(0, 1, size=(H, F, K)) * scale * np.asarray(vendor.public.volume).max() * 200
    y = rng.normal(0, 0.5, size=(H, F, K))
    return z, y


def _check(vendor: VendorAgent, z, y, rho) -> VendorDualResponse:
    dual = negotiator_for(vendor, EXACT)
    assert isinstance(dual, VendorDualResponse)
    x = dual.best_response(z, y, rho)
    ref, _ = _qp_reference(negotiator_for(vendor), z, y, rho)
    assert x.shape == ref.shape and np.all(x >= 0)
    # the QP is strongly convex in the plan: its answer is unique, and the dual method finds it
    np.testing.assert_allclose(x, ref, atol=2e-3 * max(1.0, float(np.abs(ref).max())))
    lp = negotiator_for(vendor)
    assert _objective(lp, dual.confirm(x), z, y, rho) == pytest.approx(_objective(lp, ref, z, y, rho), rel=1e-5, abs=1e-3)
    return dual


def test_dual_answer_is_the_qp_answer_on_the_default_vendor() -> None:
    """Default scenario: origin stock at CIN, a lane with spare truck volume, a small RNO capacity."""
    vendor = _vendor(load_scenario("default"))
    rng = np.random.default_rng(3)
    for rho in (0.05, 1.0):
        z, y = _query(vendor, rng)
        dual = _check(vendor, z, y, rho)
        assert dual.stats["last_exact"]


def test_binding_capacity_and_spare_volume_are_priced() -> None:
    """With tight capacities and little spare volume the coupling rows bind: the prices are
    interior and the answer still matches the QP's."""
    vendor = _vendor(load_scenario("default"), capacity=0.3, spare=0.2, stock=2.0)
    z, y = _query(vendor, np.random.default_rng(4), scale=3.0)
    dual = _check(vendor, z, y, 0.2)
    theta = dual._theta
    i, j = dual._split
    assert np.any(theta[i:j] > 1e-3), "a capacity row should bind"
    assert np.any((theta[:i] > dual._lo[:i] + 1e-3) & (theta[:i] < dual._hi[:i] - 1e-3)), "a spare lane should be full"


@given(capacity=st.floats(0.2, 2.0), spare=st.floats(0.0, 2.0), stock=st.floats(0.0, 3.0),
       rho=st.floats(0.02, 2.0), seed=st.integers(0, 2**31 - 1))
def test_dual_answer_matches_the_qp_on_random_instances(capacity, spare, stock, rho, seed) -> None:
    vendor = _vendor(load_scenario("default"), capacity=capacity, spare=spare, stock=stock)
    z, y = _query(vendor, np.random.default_rng(seed), scale=2.0)
    _check(vendor, z, y, rho)


def test_per_component_penalties_and_warm_queries() -> None:
    vendor = _vendor(load_scenario("default"))
    rng = np.random.default_rng(5)
    dual = negotiator_for(vendor, EXACT)
    shape = vendor.public.shape
    for _ in range(3):  # later queries start from the previous prices
        z, y = _query(vendor, rng)
        rho = rng.uniform(0.1, 2.0, size=shape)
        x = dual.best_response(z, y, rho)
        ref, _ = _qp_reference(negotiator_for(vendor), z, y, rho)
        np.testing.assert_allclose(x, ref, atol=2e-3 * max(1.0, float(np.abs(ref).max())))
    assert dual.stats["queries"] == 3
    with pytest.raises(ValueError, match="rho must be positive"):
        dual.best_response(z, y, 0.0)


def test_negotiation_with_the_dual_vendor_reaches_first_best() -> None:
    from sim.agents import joint_plan

    retailer, vendor = planning_round(load_scenario("default"))
    options = BestResponseOptions(vendor_solver="dual")
    result = ConsensusADMM(ADMMOptions()).negotiate([negotiator_for(retailer, options), negotiator_for(vendor, options)],
                                                   retailer.public.shape)
    assert result.status == "converged"
    first_best = joint_plan(retailer, vendor).social_cost
    plan = np.maximum(result.answers[0], 0)
    plan = negotiator_for(vendor, options).confirm(plan)
    social = retailer.evaluate(plan).total + vendor.evaluate(plan).total
    assert social == pytest.approx(first_best, rel=2e-3)
    assert social >= first_best - 1e-6 * abs(first_best)


def test_process_negotiator_runs_the_dual_vendor() -> None:
    _, vendor = planning_round(load_scenario("default"))
    z, y = _query(vendor, np.random.default_rng(6))
    local = negotiator_for(vendor, EXACT)
    with ProcessNegotiator(vendor, EXACT) as remote:
        np.testing.assert_allclose(remote.best_response(z, y, 0.5), local.best_response(z, y, 0.5), atol=1e-9)
        prices = np.full(vendor.public.shape, 0.1)
        assert remote.dual_value(prices) == pytest.approx(local.dual_value(prices))


def test_vendor_solver_is_validated() -> None:
    with pytest.raises(ValueError, match="vendor_solver must be one of osqp, dual"):
        BestResponseOptions(vendor_solver="simplex")
    with pytest.raises(FlosimError, match="answer setting vendor_solver must be one of osqp, dual, got 'simplex'"):
        answer_options({"vendor_solver": "simplex"})
    assert answer_options({"vendor_solver": "dual"}).vendor_solver == "dual"
    retailer, _ = planning_round(load_scenario("default"))  # the retailer keeps its LP-based answer
    assert not isinstance(negotiator_for(retailer, EXACT), VendorDualResponse)
