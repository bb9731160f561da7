"""The CPP coordinator: reaches the first best on random instances, uses only the protocol, reports
non-convergence and agent failures instead of hiding them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ONE_VENDOR_BLOCKS, holders_weighted_mean, one_vendor_round
from sim.parties.oracle import joint_plan
from sim.model.lp import LPBuilder, solve_lp
from sim.negotiation.best_response import LPBestResponse, negotiator_for
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
    """Relative gap to first best of a one-vendor plan given as the vendor's block."""
    social = retailer.evaluate(plan[None]).total + vendor.evaluate(plan).total
    best = joint_plan(retailer, vendor).social_cost
    return (social - best) / abs(best)


TIGHT = dict(eps_rel=1e-4, eps_abs=1e-4, max_iter=1500)


@pytest.mark.parametrize("anderson,relaxation", [(False, 1.6), (True, 1.6), (False, 1.0), (True, 1.0)])
@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_cpp_reaches_first_best_on_random_instances(anderson: bool, relaxation: float, seed: int) -> None:
    retailer, vendor = one_vendor_round(random_scenario(seed))
    result = ConsensusADMM(ADMMOptions(anderson=anderson, relaxation=relaxation, **TIGHT)).negotiate(
        [negotiator_for(retailer), negotiator_for(vendor)], retailer.public.shape, blocks=ONE_VENDOR_BLOCKS)
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
    retailer, vendor = one_vendor_round(default_scenario)
    wrapped = [ProtocolOnly(negotiator_for(retailer)), ProtocolOnly(negotiator_for(vendor))]
    with pytest.raises(AttributeError):
        wrapped[0].own_cost  # noqa: B018 - the wrapper really blocks everything else
    result = ConsensusADMM(ADMMOptions(record_transcript=True)).negotiate(wrapped, retailer.public.shape, blocks=ONE_VENDOR_BLOCKS)
    assert result.status == "stopped_on_residuals" and result.agreed  # wrapped agents offer nothing to certify with
    assert _gap(retailer, vendor, negotiator_for(vendor).confirm(result.answers[1])) <= 1e-3


def test_non_convergence_is_reported(default_scenario) -> None:
    retailer, vendor = one_vendor_round(default_scenario)
    result = ConsensusADMM(ADMMOptions(rho=1e3, max_iter=3, adaptive_rho=False)).negotiate(
        [negotiator_for(retailer), negotiator_for(vendor)], retailer.public.shape, blocks=ONE_VENDOR_BLOCKS)
    assert result.status == "iteration_cap"
    assert not result.converged
    assert result.iterations == 3
    assert "not converged" in result.message
    assert result.diagnostics()["converged"] is False


def test_a_time_limit_stops_the_negotiation_and_says_so(default_scenario) -> None:
    retailer, vendor = one_vendor_round(default_scenario)
    negotiators = [negotiator_for(retailer), negotiator_for(vendor)]
    result = ConsensusADMM(ADMMOptions(time_limit=1e-9)).negotiate(negotiators, retailer.public.shape, blocks=ONE_VENDOR_BLOCKS)
    assert (result.status, result.iterations, result.converged) == ("time_limit", 1, False)
    assert "time limit" in result.message and np.all(np.isfinite(result.z))
    # a limit the negotiation does not reach changes nothing
    free = ConsensusADMM(ADMMOptions()).negotiate([negotiator_for(retailer), negotiator_for(vendor)], retailer.public.shape, blocks=ONE_VENDOR_BLOCKS)
    timed = ConsensusADMM(ADMMOptions(time_limit=3600)).negotiate([negotiator_for(retailer), negotiator_for(vendor)], retailer.public.shape, blocks=ONE_VENDOR_BLOCKS)
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
    retailer, vendor = one_vendor_round(default_scenario)
    negotiators = [negotiator_for(retailer), negotiator_for(vendor)]
    result = ConsensusADMM().negotiate(negotiators, retailer.public.shape, blocks=ONE_VENDOR_BLOCKS)
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


# --- agents that hold part of the plan (general-form consensus) -----------------------------------


class _CertQuadratic(_Quadratic):
    """``C(x) = (a/2)||x - b||²`` over the agent's own block, able to certify in closed form:
    ``own_cost`` and ``dual_value(y) = min_x C(x) + y·x = y·b - ||y||²/(2a)``."""

    def own_cost(self, x: np.ndarray) -> float:
        x = np.asarray(x, dtype=float)
        assert x.shape == self.b.shape, f"own_cost asked with shape {x.shape}, block {self.b.shape}"
        return 0.5 * self.a * float(np.sum((x - self.b) ** 2))

    def dual_value(self, prices: np.ndarray) -> float:
        y = np.asarray(prices, dtype=float)
        assert y.shape == self.b.shape, f"dual_value asked with shape {y.shape}, block {self.b.shape}"
        return float(np.sum(y * self.b) - np.sum(y**2) / (2 * self.a))


def _golden_agents() -> list[_CertQuadratic]:
    return [_CertQuadratic(1.0 + 2 * i, np.arange(6.0).reshape(2, 3) * (i + 1) / 3 + i) for i in range(2)]


# recorded with the coordinator before blocks existed (flosim 0.2.0): iterations, status, rho, z
GOLDEN = [
    ({}, 14, "converged", 0.4624951454955792,
     [[0.7494870768102754, 1.3326387699750364, 1.9157904631397982], [2.49894215630456, 3.082093849469322, 3.6652455426340853]]),
    ({"anderson": True}, 5, "converged", 0.4624951454955792,
     [[0.7499999999324358, 1.3333333332420105, 1.9166666665515857], [2.4999999998611617, 3.083333333170737, 3.666666666480314]]),
    ({"certify": False, "relaxation": 1.0, "rho": 0.5}, 12, "stopped_on_residuals", 1.2610886473871443,
     [[0.7489289089823463, 1.3319565658550458, 1.9149842227277456], [2.4980118796004454, 3.0810395364731447, 3.6640671933458453]]),
]


@pytest.mark.parametrize("blocks", [None, [None, None], [slice(None), ()], [(slice(None), slice(None)), Ellipsis]])
@pytest.mark.parametrize("opts,iterations,status,rho,z", GOLDEN)
def test_whole_plan_blocks_reproduce_the_negotiation_before_blocks(blocks, opts, iterations, status, rho, z) -> None:
    result = ConsensusADMM(ADMMOptions(**opts)).negotiate(_golden_agents(), (2, 3), blocks=blocks)
    assert (result.iterations, result.status) == (iterations, status)
    assert result.rho == pytest.approx(rho, rel=1e-12)
    np.testing.assert_allclose(result.z, z, rtol=0, atol=1e-12)
    assert all(a.shape == (2, 3) for a in result.answers + result.prices)


@pytest.mark.parametrize("opts", [{}, {"anderson": True}, {"certify": False, "rho": 0.5}])
def test_one_vendor_holding_its_block_of_a_one_vendor_plan_is_the_plain_negotiation(opts) -> None:
    """A plan with a vendor axis of size one, the vendor holding block 0 (shape (2, 3)) and the
    retailer the whole plan: the same numbers, bit for bit, as both agents holding the whole plan."""
    targets = [np.arange(6.0).reshape(1, 2, 3) * (i + 1) / 3 + i for i in range(2)]
    whole = ConsensusADMM(ADMMOptions(**opts)).negotiate([_CertQuadratic(1.0, targets[0]), _CertQuadratic(3.0, targets[1])], (1, 2, 3))
    block = ConsensusADMM(ADMMOptions(**opts)).negotiate([_CertQuadratic(1.0, targets[0]), _CertQuadratic(3.0, targets[1][0])],
                                                        (1, 2, 3), blocks=[None, 0])
    assert block.status == whole.status and block.status in ("converged", "stopped_on_residuals")
    assert block.iterations == whole.iterations and block.history == whole.history
    assert np.array_equal(block.z, whole.z) and block.answers[1].shape == (2, 3)
    assert np.array_equal(block.answers[1], whole.answers[1][0]) and np.array_equal(block.prices[1], whole.prices[1][0])
    if whole.certificate is not None:
        assert (block.certificate.upper, block.certificate.lower) == (whole.certificate.upper, whole.certificate.lower)


@pytest.mark.parametrize("anderson", [False, True])
def test_whole_plan_blocks_are_bit_for_bit_the_plain_negotiation(anderson: bool) -> None:
    """LP agents (OSQP answers, certificate checks): every block the whole plan, spelled any way,
    gives exactly the numbers of a negotiation without blocks."""
    from experiments.flopro_standins import pair

    agents = pair(3, 2, 3, backlog_ratio=200, seed=3, cost_scale=1.0)
    runs = []
    for blocks in (None, [slice(None), ()]):
        negs = [LPBestResponse(*a.lp_and_x()) for a in agents]
        runs.append(ConsensusADMM(ADMMOptions(anderson=anderson, record_transcript=True)).negotiate(negs, (18,), blocks=blocks))
    plain, blocked = runs
    assert plain.converged and blocked.iterations == plain.iterations and blocked.history == plain.history
    assert np.array_equal(blocked.z, plain.z)
    for a, b in zip(plain.answers + plain.prices, blocked.answers + blocked.prices, strict=True):
        assert np.array_equal(a, b)
    assert (blocked.certificate.upper, blocked.certificate.lower) == (plain.certificate.upper, plain.certificate.lower)
    assert [r[:3] for r in blocked.transcript.rows] == [r[:3] for r in plain.transcript.rows]
    assert all(np.array_equal(r[3], s[3]) for r, s in zip(blocked.transcript.rows, plain.transcript.rows, strict=True))


# three agents, overlapping partial blocks of a (2, 3) plan: x[0, 1] has three holders, x[1, 0] one
BLOCK_SHAPE = (2, 3)
BLOCKS = [(slice(None), slice(0, 2)), 0, (slice(None), slice(1, 3))]
HOLDERS = np.array([[2, 3, 2], [1, 2, 1]])


def _lp_model(b: LPBuilder, x: np.ndarray, p: dict[str, Any], name: str) -> None:
    """An agent's private LP over its plan components ``x``: a unit cost per unit of plan, a penalty
    per unit below its own target, and a capacity on its components' total."""
    short = b.add_var(x.shape)
    b.add_cost(x, p["unit"], (name, "unit", 0))
    b.add_cost(short, p["short"], (name, "short", 0))
    rows = b.new_rows("ub", x.shape, -p["target"])  # x + short >= target
    b.add_terms("ub", rows, x, -1.0)
    b.add_terms("ub", rows, short, -1.0)
    cap = b.new_rows("ub", (), p["cap"])
    b.add_terms("ub", cap, x, 1.0)


def _lp_instance(seed: int):
    """The three LP agents' negotiators and the central optimum (one LP over the global plan)."""
    rng = np.random.default_rng(seed)
    grid = np.zeros(BLOCK_SHAPE)
    shapes = [grid[b].shape for b in BLOCKS]
    params = [dict(unit=rng.uniform(0.5, 2.0, s), short=rng.uniform(3.0, 6.0, s), target=rng.uniform(5, 20, s),
                   cap=float(rng.uniform(0.4, 0.8) * 20 * np.prod(s))) for s in shapes]
    negs = []
    for i, (s, p) in enumerate(zip(shapes, params, strict=True)):
        b = LPBuilder()
        x = b.add_var(s, 0.0, 40.0)
        _lp_model(b, x, p, f"agent{i}")
        negs.append(LPBestResponse(b.build(), x))
    central = LPBuilder()
    X = central.add_var(BLOCK_SHAPE, 0.0, 40.0)
    for i, p in enumerate(params):
        _lp_model(central, X[BLOCKS[i]], p, f"agent{i}")
    sol = solve_lp(central.build())
    return negs, sol.objective, sol.x[X]


class WithoutConfirm:
    """An LP negotiator that offers everything but ``confirm``."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        if name == "confirm":
            raise AttributeError(name)
        return getattr(self._inner, name)


def test_a_plan_over_a_capacity_by_the_answers_tolerance_is_certified_as_confirmed() -> None:
    """The consensus plan and every answer a hair over an agent's capacity (as OSQP's answers can be):
    each has an infinite stated cost, so without ``confirm`` no check can certify; with it, the plan
    cut to what every agent can carry out is certified, within a hair of the optimum."""
    from sim.negotiation.blocks import BlockLayout
    from sim.negotiation.certificate import Certifier

    negs, optimum, best = _lp_instance(5)
    layout = BlockLayout.of(BLOCK_SHAPE, len(negs), BLOCKS)
    over = best * (1 + 1e-4) + 1e-4  # the optimum uses a capacity fully: a hair more exceeds it
    assert not all(np.isfinite(n.own_cost(layout.take(over, i))) for i, n in enumerate(negs))
    answers = [layout.take(over, i) for i in range(len(negs))]
    prices = [np.zeros_like(a) for a in answers]
    bare = Certifier([WithoutConfirm(n) for n in negs], blocks=BLOCKS)(over, answers, prices)
    assert not np.isfinite(bare.upper) and not bare.bounded
    cert = Certifier(negs, blocks=BLOCKS)(over, answers, prices)
    assert np.isfinite(cert.upper) and cert.upper == pytest.approx(optimum, rel=1e-3)
    assert cert.upper >= optimum * (1 - 1e-9)  # the confirmed plan's cost cannot beat the optimum


@pytest.mark.parametrize("seed", [0, 3, 5])
def test_agents_with_overlapping_blocks_reach_the_central_optimum(seed: int) -> None:
    negs, optimum, _ = _lp_instance(seed)
    result = ConsensusADMM(ADMMOptions(gap_tol=1e-3)).negotiate(negs, BLOCK_SHAPE, blocks=BLOCKS)
    assert result.converged and result.certified, result.message
    assert result.z.shape == BLOCK_SHAPE
    assert [a.shape for a in result.answers] == [(2, 2), (3,), (2, 2)]
    assert [p.shape for p in result.prices] == [(2, 2), (3,), (2, 2)]
    c = result.certificate
    assert c.lower <= optimum * (1 + 1e-9)  # the bound holds with blocks
    plan = result.certified_plan
    social = sum(neg.own_cost(plan[b]) for neg, b in zip(negs, BLOCKS, strict=True))
    assert social == pytest.approx(c.upper, rel=1e-9)
    true_gap = (social - optimum) / optimum
    assert -1e-9 <= true_gap <= c.gap + 1e-9 and c.gap <= 1e-3
    # each component's prices sum to zero over the agents holding it
    total = np.zeros(BLOCK_SHAPE)
    for p, b in zip(result.prices, BLOCKS, strict=True):
        total[b] += p
    np.testing.assert_allclose(total, 0.0, atol=1e-8 * max(1.0, max(float(np.abs(p).max()) for p in result.prices)))


@pytest.mark.parametrize("anderson", [False, True])
def test_quadratic_agents_with_blocks_reach_the_holders_weighted_mean(anderson: bool) -> None:
    """Closed form: each component's optimum is the weighted mean of the targets of its holders only."""
    rng = np.random.default_rng(8)
    grid = np.zeros(BLOCK_SHAPE)
    agents = [_CertQuadratic(a, rng.normal(size=grid[b].shape)) for a, b in zip((1.0, 4.0, 0.5), BLOCKS, strict=True)]
    expected = holders_weighted_mean(agents, BLOCKS, BLOCK_SHAPE)
    opts = ADMMOptions(rho=1.0, anderson=anderson, eps_abs=1e-10, eps_rel=1e-10, max_iter=3000, certify=False)
    result = ConsensusADMM(opts).negotiate(agents, BLOCK_SHAPE, blocks=BLOCKS)
    assert result.status == "stopped_on_residuals", result.message
    np.testing.assert_allclose(result.z, expected, atol=1e-7)
    for g, x, b in zip(agents, result.answers, BLOCKS, strict=True):
        np.testing.assert_allclose(x, expected[b], atol=1e-6)
    # the same agents certify: the bound brackets the optimum
    certified = ConsensusADMM(ADMMOptions(anderson=anderson, gap_tol=1e-6, max_iter=3000)).negotiate(agents, BLOCK_SHAPE, blocks=BLOCKS)
    optimum = sum(g.own_cost(expected[b]) for g, b in zip(agents, BLOCKS, strict=True))
    assert certified.converged and certified.certificate.lower <= optimum * (1 + 1e-12) <= certified.certificate.upper * (1 + 1e-12)


class _Spy(_CertQuadratic):
    """Records every array it is handed: best-response queries and certificate questions."""

    def __init__(self, a: float, b: np.ndarray) -> None:
        super().__init__(a, b)
        self.queries: list[tuple[np.ndarray, np.ndarray, float]] = []
        self.asked: list[np.ndarray] = []

    def best_response(self, z, prices, rho):
        self.queries.append((np.array(z, copy=True), np.array(prices, copy=True), rho))
        return super().best_response(z, prices, rho)

    def own_cost(self, x):
        self.asked.append(np.array(x, copy=True))
        return super().own_cost(x)

    def dual_value(self, prices):
        self.asked.append(np.array(prices, copy=True))
        return super().dual_value(prices)


@pytest.mark.parametrize("anderson", [False, True])
def test_an_agent_is_shown_its_own_block_and_nothing_else(anderson: bool) -> None:
    """Every array an agent receives has its block's shape; the plan it is shown is the round's
    global z restricted to its block (recomputed here from the recorded z and the block itself)."""
    rng = np.random.default_rng(2)
    grid = np.zeros(BLOCK_SHAPE)
    spies = [_Spy(a, rng.normal(size=grid[b].shape)) for a, b in zip((1.0, 2.0, 3.0), BLOCKS, strict=True)]
    result = ConsensusADMM(ADMMOptions(anderson=anderson, record_transcript=True, parallel=False)).negotiate(
        spies, BLOCK_SHAPE, blocks=BLOCKS)
    assert result.converged and result.checks >= 1
    t = result.transcript
    for i, (spy, b) in enumerate(zip(spies, BLOCKS, strict=True)):
        own = grid[b].shape
        assert len(spy.queries) == result.iterations
        for k, (z, y, rho) in enumerate(spy.queries, start=1):
            assert z.shape == own and y.shape == own and np.ndim(rho) == 0
            global_z = t.array(k, -1, "z")
            assert np.array_equal(z, global_z[b])
            assert np.array_equal(y, t.array(k, i, "prices"))
        assert spy.asked and all(a.shape == own for a in spy.asked)


def test_bad_blocks_are_named() -> None:
    agents = [_CertQuadratic(1.0, np.zeros((2, 3))), _CertQuadratic(1.0, np.zeros(3))]
    admm = ConsensusADMM(ADMMOptions(rho=1.0))
    with pytest.raises(ValueError, match=r"blocks\[1\] = 5 does not fit the plan's shape \(2, 3\)"):
        admm.negotiate(agents, (2, 3), blocks=[None, 5])
    with pytest.raises(ValueError, match=r"held by no agent: \(1, 0\), \(1, 1\), \(1, 2\)"):
        admm.negotiate(agents[1:] * 2, (2, 3), blocks=[0, 0])
    with pytest.raises(ValueError, match=r"blocks\[1\] = \[0, 1\]: not a basic index"):
        admm.negotiate(agents, (2, 3), blocks=[None, [0, 1]])
    with pytest.raises(ValueError, match=r"blocks\[1\] = slice\(2, 2, None\) selects no component"):
        admm.negotiate(agents, (2, 3), blocks=[None, slice(2, 2)])
    with pytest.raises(ValueError, match="3 blocks for 2 agents"):
        admm.negotiate(agents, (2, 3), blocks=[None, 0, 1])
    with pytest.raises(ValueError, match=r"prices0\[1\] has shape \(2, 3\); agent 1's block has shape \(3,\)"):
        admm.negotiate(agents, (2, 3), blocks=[None, 0], prices0=[np.zeros((2, 3)), np.zeros((2, 3))])
    # an agent answering in another shape than its block's: a failure naming it and the shape expected
    wrong = [_CertQuadratic(1.0, np.zeros((2, 3))), _Quadratic(1.0, np.zeros((2, 3)))]
    result = admm.negotiate(wrong, (2, 3), blocks=[None, 1])
    assert result.status == "failed"
    assert "agent 1 answered with shape (2, 3); expected its block's shape (3,)" in result.message
