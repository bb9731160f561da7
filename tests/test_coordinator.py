"""The CPP coordinator: reaches the first best on random instances, uses only the protocol, reports
non-convergence and agent failures instead of hiding them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from experiments.benchmarks import planning_round
from sim.parties.oracle import joint_plan
from sim.negotiation.best_response import negotiator_for
from sim.negotiation.coordinator import ADMMOptions, ConsensusADMM
from sim.negotiation.protocol import PROTOCOL_METHODS
from sim.model.scenario import scenario_from_dict


def random_scenario(seed: int):
    """A small random network: 2 FCs, 2 regions, 2 products, 2 origins, 3 weeks."""
    rng = np.random.default_rng(seed)
    u = lambda lo, hi: round(float(rng.uniform(lo, hi)), 3)  # noqa: E731
    data: dict[str, Any] = {
        "name": f"random-{seed}",
        "horizon": 3,
        "seed": seed,
        "regions": ["East", "West"],
        "fcs": [
            {"name": "E1", "receiving_cost": u(0, 0.3), "lead_time": 1, "initial_stock": {"a": u(0, 80), "b": u(0, 40)}},
            {"name": "W1", "receiving_cost": u(0, 0.3), "lead_time": int(rng.integers(1, 3)), "initial_stock": {"a": u(0, 80)}},
        ],
        "outbound_cost": {"E1": {"East": u(0.1, 0.5), "West": u(0.5, 2.0)}, "W1": {"West": u(0.1, 0.5), "East": u(0.5, 2.0)}},
        "products": [
            {"name": "a", "wholesale_price": u(3, 6), "holding_cost": u(0.01, 0.1), "lost_sales_penalty": u(7, 12), "base_demand": u(40, 120)},
            {"name": "b", "wholesale_price": u(3, 6), "holding_cost": u(0.01, 0.1), "lost_sales_penalty": u(7, 12), "volume": u(0.5, 2), "base_demand": u(20, 80)},
        ],
        "origins": [
            {"name": "O1", "capacity": u(60, 200), "production_cost": u(1, 2.5), "holding_cost": 0.01, "initial_stock": {"a": u(0, 30)}},
            {"name": "O2", "capacity": u(30, 120), "production_cost": {"a": u(1, 2.5), "b": u(1, 2.5)}},
        ],
        "lanes": [
            {"origin": "O1", "fc": "E1", "spare_volume": u(0, 80), "spare_cost": 0.05, "truckload_cost": u(0.3, 1.5)},
            {"origin": "O1", "fc": "W1", "truckload_cost": u(0.5, 2.0)},
            {"origin": "O2", "fc": "W1", "truckload_cost": u(0.3, 1.5)},
            {"origin": "O2", "fc": "E1", "truckload_cost": u(0.5, 2.0)},
        ],
        "demand": {"cv": 0.3},
    }
    return scenario_from_dict(data, "<random>")


def _gap(retailer, vendor, plan) -> float:
    social = retailer.evaluate(plan).total + vendor.evaluate(plan).total
    best = joint_plan(retailer, vendor).social_cost
    return (social - best) / abs(best)


TIGHT = dict(eps_rel=1e-4, eps_abs=1e-4, max_iter=1500)


@pytest.mark.parametrize("anderson,relaxation", [(False, 1.6), (True, 1.6), (False, 1.0), (True, 1.0)])
@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_cpp_reaches_first_best_on_random_instances(anderson: bool, relaxation: float, seed: int) -> None:
    retailer, vendor = planning_round(random_scenario(seed))
    result = ConsensusADMM(ADMMOptions(anderson=anderson, relaxation=relaxation, **TIGHT)).negotiate(
        [negotiator_for(retailer), negotiator_for(vendor)], retailer.public.shape
    )
    assert result.converged, result.message
    plan = negotiator_for(vendor).confirm(result.answers[1])
    assert vendor.evaluate(plan).feasible
    assert _gap(retailer, vendor, plan) <= 1e-3
    assert result.primal_residual <= result.history[-1]["eps_pri"]


class _Quadratic:
    """C(x) = (a/2)||x - b||²: best response in closed form, optimum known exactly."""

    def __init__(self, a: float, b: np.ndarray) -> None:
        self.a, self.b = a, b

    def best_response(self, z: np.ndarray, prices: np.ndarray, rho: float) -> np.ndarray:
        return (self.a * self.b - prices + rho * z) / (self.a + rho)


@pytest.mark.parametrize("anderson", [False, True])
def test_quadratic_agents_reach_the_weighted_mean(anderson: bool) -> None:
    rng = np.random.default_rng(3)
    agents = [_Quadratic(a, rng.normal(size=(2, 3, 4))) for a in (1.0, 4.0, 0.5)]
    expected = sum(g.a * g.b for g in agents) / sum(g.a for g in agents)
    result = ConsensusADMM(ADMMOptions(rho=1.0, anderson=anderson, eps_abs=1e-9, eps_rel=1e-9, max_iter=2000)).negotiate(agents, (2, 3, 4))
    assert result.status == "stopped_on_residuals" and result.agreed and not result.certified  # closed-form agents cannot certify
    np.testing.assert_allclose(result.z, expected, atol=1e-6)
    np.testing.assert_allclose(sum(result.prices), 0.0, atol=1e-8)


class ProtocolOnly:
    """Wraps a negotiator so that any attribute other than the protocol's raises."""

    def __init__(self, inner: Any) -> None:
        object.__setattr__(self, "_inner", inner)

    def __getattribute__(self, name: str) -> Any:
        if name in PROTOCOL_METHODS:
            return getattr(object.__getattribute__(self, "_inner"), name)
        raise AttributeError(f"coordinator touched {name!r}, which is not part of the protocol")


def test_coordinator_uses_nothing_but_the_protocol(default_scenario) -> None:
    retailer, vendor = planning_round(default_scenario)
    wrapped = [ProtocolOnly(negotiator_for(retailer)), ProtocolOnly(negotiator_for(vendor))]
    with pytest.raises(AttributeError):
        wrapped[0].own_cost  # noqa: B018 - the wrapper really blocks everything else
    result = ConsensusADMM(ADMMOptions(record_transcript=True)).negotiate(wrapped, retailer.public.shape)
    assert result.status == "stopped_on_residuals" and result.agreed  # wrapped agents offer nothing to certify with
    assert _gap(retailer, vendor, negotiator_for(vendor).confirm(result.answers[1])) <= 1e-3


def test_non_convergence_is_reported(default_scenario) -> None:
    retailer, vendor = planning_round(default_scenario)
    result = ConsensusADMM(ADMMOptions(rho=1e3, max_iter=3, adaptive_rho=False)).negotiate(
        [negotiator_for(retailer), negotiator_for(vendor)], retailer.public.shape
    )
    assert result.status == "iteration_cap"
    assert not result.converged
    assert result.iterations == 3
    assert "not converged" in result.message
    assert result.diagnostics()["converged"] is False


def test_a_time_limit_stops_the_negotiation_and_says_so(default_scenario) -> None:
    retailer, vendor = planning_round(default_scenario)
    negotiators = [negotiator_for(retailer), negotiator_for(vendor)]
    result = ConsensusADMM(ADMMOptions(time_limit=1e-9)).negotiate(negotiators, retailer.public.shape)
    assert (result.status, result.iterations, result.converged) == ("time_limit", 1, False)
    assert "time limit" in result.message and np.all(np.isfinite(result.z))
    # a limit the negotiation does not reach changes nothing
    free = ConsensusADMM(ADMMOptions()).negotiate([negotiator_for(retailer), negotiator_for(vendor)], retailer.public.shape)
    timed = ConsensusADMM(ADMMOptions(time_limit=3600)).negotiate([negotiator_for(retailer), negotiator_for(vendor)], retailer.public.shape)
    assert timed.converged and timed.iterations == free.iterations and np.array_equal(timed.z, free.z)


class _Broken:
    def __init__(self, after: int, nan: bool = False) -> None:
        self.calls, self.after, self.nan = 0, after, nan

    def best_response(self, z, prices, rho):
        self.calls += 1
        if self.calls > self.after:
            if self.nan:
                return np.full_like(z, np.nan)
            raise RuntimeError("solver crashed")
        return np.zeros_like(z)


@pytest.mark.parametrize("nan", [False, True])
def test_agent_failure_is_reported(nan: bool) -> None:
    agents = [_Quadratic(1.0, np.ones((1, 2, 2))), _Broken(after=2, nan=nan)]
    result = ConsensusADMM(ADMMOptions(rho=1.0)).negotiate(agents, (1, 2, 2))
    assert result.status == "failed"
    assert "agent 1" in result.message


def test_options_reject_unknown_fields() -> None:
    with pytest.raises(Exception):
        ADMMOptions(max_iters=10)


def test_default_negotiation_ends_on_solved_answers(default_scenario) -> None:
    """Early answers may be cut off at OSQP's early iteration cap (inexact ADMM); the answers of the
    round that declares convergence must be solved, or the residuals would not certify anything."""
    retailer, vendor = planning_round(default_scenario)
    negotiators = [negotiator_for(retailer), negotiator_for(vendor)]
    result = ConsensusADMM().negotiate(negotiators, retailer.public.shape)
    assert result.converged
    assert all(neg.stats["last_exact"] is True for neg in negotiators), [neg.stats for neg in negotiators]
    assert _gap(retailer, vendor, negotiators[1].confirm(result.answers[1])) <= 1e-3


def test_dual_residual_is_the_agents_optimality_residual_under_relaxation() -> None:
    """With over-relaxation the dual residual is ||rho (x_i - z) - (y_i_new - y_i)||, which for exact
    answers is the agents' stationarity residual at the new prices, not rho sqrt(N) ||z_new - z||."""
    rng = np.random.default_rng(5)
    agents = [_Quadratic(a, rng.normal(size=(3, 4))) for a in (1.0, 3.0)]
    for relaxation in (1.0, 1.6):
        opts = ADMMOptions(rho=0.3, relaxation=relaxation, adaptive_rho=False, anderson=False, max_iter=7)
        result = ConsensusADMM(opts).negotiate(agents, (3, 4))
        assert not result.converged  # stopped mid-way, where the residual is far from zero
        stationarity = np.sqrt(sum(np.sum((g.a * (x - g.b) + y) ** 2) for g, x, y in zip(agents, result.answers, result.prices)))
        assert result.history[-1]["dual"] == pytest.approx(stationarity, rel=1e-9)
        assert stationarity > 1e-3
