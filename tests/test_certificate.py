"""The a-posteriori certificate: weak duality from two numbers per agent bounds a plan's gap."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.optimize import linprog

from conftest import holders_weighted_mean
from experiments.cli import main
from policies.cpp import negotiate_efficient_plan
from sim.parties.oracle import joint_plan
from sim.negotiation.best_response import negotiator_for
from sim.negotiation.blocks import BlockLayout
from sim.negotiation.certificate import Certifier, answer_prices_of, certify, lower_bound
from sim.negotiation.coordinator import ADMMOptions, ConsensusADMM
from sim.model.lp import LPBuilder
from sim.world import planning_context
from conftest import ONE_VENDOR_BLOCKS

REL = 1e-9  # LP solver tolerance, relative to the social cost


#: a source bug on this branch (see /work/notes/issue-15-ctest.md): the test is right, the command is not


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
    social = ctx.retailer.evaluate(plan).total + ctx.vendor.evaluate(plan[0]).total
    assert c.upper == pytest.approx(social, rel=REL)  # the agents' stated costs are the plan's
    assert c.lower <= first_best * (1 + REL) <= c.upper * (1 + 2 * REL)
    true_gap = (social - first_best) / first_best
    assert c.gap >= true_gap - REL
    # the stop certifies the default gap_tol: informative, not just valid (8.0e-4 measured against a
    # true gap of 3.1e-4, at round 48; at the coordinator's prices it was 2.3e-3 against 4.5e-4)
    assert 0 < c.lower and c.gap <= 1e-3
    assert result.diagnostics()["certified_gap"] == c.gap


def test_lower_bound_holds_at_any_prices_that_sum_to_zero(ctx, first_best) -> None:
    negs = [negotiator_for(ctx.retailer), negotiator_for(ctx.vendor)]
    plan = ctx.retailer.preferred_plan().plan  # any plan the vendor can ship or not: upper may be inf
    rng = np.random.default_rng(7)
    finite = 0
    for scale in (0.1, 0.5, 2.0, 10.0):
        y = rng.normal(0.0, scale, size=ctx.public.shape)
        c = certify(negs, [y, -y[0] + 1e-3], plan, blocks=ONE_VENDOR_BLOCKS)  # re-centred inside: the bound is valid for the pair
        assert c.lower <= first_best * (1 + REL)
        finite += np.isfinite(c.lower)
    assert finite >= 2  # moderate prices keep both agents' LPs bounded


def _optimal_prices(ctx) -> np.ndarray:
    """The first-best LP's prices on the plan: the joint LP with the plan split into a retailer copy
    (the whole plan) and a vendor copy (its block ``x[0]``) tied by ``x_R[0] - x_V = 0``; the duals of
    those rows (HiGHS, through scipy), in the retailer's (whole plan's) shape: the vendor's are minus
    its block of them."""
    b = LPBuilder()
    shape = ctx.public.shape
    x_r, x_v = b.add_var(shape), b.add_var(ctx.public.block_shape)
    ctx.retailer.add_block(b, x_r)
    ctx.vendor.add_block(b, x_v)
    tie = b.new_rows("eq", shape)
    b.add_terms("eq", tie[0], x_r[0], 1.0)
    b.add_terms("eq", tie[0], x_v, -1.0)
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
    assert certify(negs, [y, -y[0]], plan, blocks=ONE_VENDOR_BLOCKS).lower == pytest.approx(first_best, rel=1e-7)
    # between them and the negotiated prices the bound is a concave function of the prices, below
    # first best: at a mixture at least the mixture of the two bounds, and never above first best
    _, result = negotiated
    y_cpp = result.prices[0]
    lower_cpp = certify(negs, [y_cpp, -y_cpp[0]], plan, blocks=ONE_VENDOR_BLOCKS).lower
    assert 0 < lower_cpp < first_best * (1 - 1e-6)
    for t in (0.25, 0.5, 0.75):
        mix = t * y + (1 - t) * y_cpp
        lower = certify(negs, [mix, -mix[0]], plan, blocks=ONE_VENDOR_BLOCKS).lower
        assert t * first_best + (1 - t) * lower_cpp - 1e-7 * first_best <= lower <= first_best * (1 + REL)


def test_bound_holds_near_the_final_prices(ctx, first_best, negotiated) -> None:
    """Where the bound is informative, near the negotiated prices, it still never exceeds first best."""
    negs = [negotiator_for(ctx.retailer), negotiator_for(ctx.vendor)]
    plan, result = negotiated
    rng = np.random.default_rng(3)
    y = result.prices[0]
    for scale in (1e-3, 1e-2, 1e-1):
        noise = rng.normal(0.0, scale * float(np.sqrt(np.mean(y**2))), size=y.shape)
        c = certify(negs, [y + noise, result.prices[1] - noise[0]], plan, blocks=ONE_VENDOR_BLOCKS)
        assert 0 < c.lower <= first_best * (1 + REL)
        assert np.isfinite(c.gap) and c.gap > 0


def test_no_relative_bound_without_a_positive_lower_bound(ctx, first_best) -> None:
    """At zero prices the vendor's dual value (its best plan's cost net of revenue) is negative, so the
    lower bound is below zero: valid, but (UB - LB)/LB would not bound the relative gap."""
    negs = [negotiator_for(ctx.retailer), negotiator_for(ctx.vendor)]
    zero = np.zeros(ctx.public.shape)
    c = certify(negs, [zero, zero[0]], zero, blocks=ONE_VENDOR_BLOCKS)
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


# --- agents that hold part of the plan ------------------------------------------------------------

SHAPE = (2, 3)
BLOCKS = [(slice(None), slice(0, 2)), 0, (slice(None), slice(1, 3))]  # x[0, 1] has three holders, x[1, 0] one


class _Quadratic:
    """``C(x) = (a/2)||x - b||²`` over its block; records the shape of everything it is asked."""

    def __init__(self, a: float, b: np.ndarray) -> None:
        self.a, self.b, self.asked = a, b, []

    def best_response(self, z, prices, rho):
        return (self.a * self.b - prices + rho * z) / (self.a + rho)

    def own_cost(self, x) -> float:
        self.asked.append(np.shape(x))
        return 0.5 * self.a * float(np.sum((np.asarray(x) - self.b) ** 2))

    def dual_value(self, prices) -> float:
        self.asked.append(np.shape(prices))
        y = np.asarray(prices, dtype=float)
        return float(np.sum(y * self.b) - np.sum(y**2) / (2 * self.a))


@pytest.fixture()
def block_agents():
    rng = np.random.default_rng(4)
    grid = np.zeros(SHAPE)
    agents = [_Quadratic(a, rng.normal(size=grid[b].shape)) for a, b in zip((1.0, 2.5, 0.7), BLOCKS, strict=True)]
    x_star = holders_weighted_mean(agents, BLOCKS, SHAPE)  # each component: the weighted mean of its holders' targets
    optimum = sum(0.5 * g.a * float(np.sum((x_star[b] - g.b) ** 2)) for g, b in zip(agents, BLOCKS, strict=True))
    return agents, x_star, optimum


def test_with_blocks_the_bound_is_tight_at_the_optimal_prices(block_agents) -> None:
    """The optimum's prices, y_i = -grad C_i(x*[B_i]), sum to zero over each component's holders, and
    there the agents' dual values over their own blocks add up to the optimum (strong duality)."""
    agents, x_star, optimum = block_agents
    prices = [-g.a * (x_star[b] - g.b) for g, b in zip(agents, BLOCKS, strict=True)]
    c = certify(agents, prices, x_star, blocks=BLOCKS)
    assert c.lower == pytest.approx(optimum, rel=1e-12) and c.upper == pytest.approx(optimum, rel=1e-12)
    for g, b in zip(agents, BLOCKS, strict=True):  # each agent was asked about its own block only
        assert g.asked == [np.zeros(SHAPE)[b].shape] * 2


def test_with_blocks_the_lower_bound_holds_at_any_prices(block_agents) -> None:
    """Prices that do not sum to zero over a component's holders are re-centred over those holders
    (not over all agents), so the bound is valid for whatever prices are handed in."""
    agents, x_star, optimum = block_agents
    # the optimal prices plus the same offset for every holder of a component (so they no longer sum
    # to zero): un-centred, the offset would lift the bound above the optimum; centred over each
    # component's holders it cancels, and the bound is the tight one again
    y_star = [-g.a * (x_star[b] - g.b) for g, b in zip(agents, BLOCKS, strict=True)]
    for t in (1e-3, 1e-2, 1e-1):
        offset = t * np.sign(x_star)
        c = certify(agents, [y + offset[b] for y, b in zip(y_star, BLOCKS, strict=True)], x_star, blocks=BLOCKS)
        assert c.lower == pytest.approx(optimum, rel=1e-12)
    rng = np.random.default_rng(9)
    grid = np.zeros(SHAPE)
    for scale in (0.3, 1.0, 3.0, 10.0):
        for _ in range(5):
            prices = [rng.normal(0.5 * scale, scale, size=grid[b].shape) for b in BLOCKS]
            c = certify(agents, prices, x_star, blocks=BLOCKS)
            assert c.lower <= optimum * (1 + 1e-12)
            assert c.upper == pytest.approx(optimum, rel=1e-12)


def test_certifier_with_blocks_bounds_a_negotiated_plan(block_agents) -> None:
    agents, x_star, optimum = block_agents
    certifier = Certifier.for_agents(agents, blocks=BLOCKS)
    assert certifier is not None and certifier.blocks == BLOCKS
    result = ConsensusADMM(ADMMOptions(gap_tol=1e-5)).negotiate(agents, SHAPE, certifier=certifier, blocks=BLOCKS)
    assert result.converged
    c = result.certificate
    assert c.lower <= optimum * (1 + 1e-12) <= c.upper * (1 + 1e-12) and c.gap <= 1e-5
    assert result.certified_plan.shape == SHAPE
    # a certifier built for other blocks than the negotiation's is refused, not silently used
    with pytest.raises(ValueError, match="certifier's blocks"):
        ConsensusADMM().negotiate(agents, SHAPE, certifier=Certifier(agents, blocks=[None, 0, 1]), blocks=BLOCKS)


def test_answer_prices_sum_to_zero_and_price_every_later_holder_at_its_answer() -> None:
    """The candidate prices from the answers' own prices: for each component the first holder takes
    minus the others' sum, every other holder keeps its answer price (with and without blocks)."""
    rng = np.random.default_rng(2)
    full = BlockLayout.of((2, 3), 3)
    A = rng.normal(size=full.stacked_shape)
    Y = answer_prices_of(full, A)
    assert np.allclose(Y.sum(axis=0), 0.0, atol=1e-12) and np.array_equal(Y[1:], A[1:])
    layout = BlockLayout.of(SHAPE, 3, BLOCKS)
    A = rng.normal(size=layout.stacked_shape)
    Y = answer_prices_of(layout, A)
    assert np.allclose(np.bincount(layout.index, weights=Y, minlength=layout.n), 0.0, atol=1e-12)
    _, first = np.unique(layout.index, return_index=True)
    later = np.setdiff1d(np.arange(layout.m), first)
    assert np.array_equal(Y[later], A[later])
    # x[1, 0] has one holder (agent 1, the third of its entries): its only price is zero
    only = np.flatnonzero(layout.index == np.ravel_multi_index((1, 0), SHAPE))
    assert only.size == 1 and Y[only[0]] == 0.0
    # the last holder absorbing instead: every other holder keeps its answer price
    Y = answer_prices_of(layout, A, "last")
    assert np.allclose(np.bincount(layout.index, weights=Y, minlength=layout.n), 0.0, atol=1e-12)
    _, back = np.unique(layout.index[::-1], return_index=True)
    earlier = np.setdiff1d(np.arange(layout.m), layout.m - 1 - back)
    assert np.array_equal(Y[earlier], A[earlier])
    Y = answer_prices_of(full, A := rng.normal(size=full.stacked_shape), "last")
    assert np.allclose(Y.sum(axis=0), 0.0, atol=1e-12) and np.array_equal(Y[:-1], A[:-1])
    with pytest.raises(ValueError, match="absorber"):
        answer_prices_of(full, A, "middle")


class _BothPrices:
    """Certifies at the answers' prices, and records the lower bound at the coordinator's prices too."""

    takes_answer_prices = True

    def __init__(self, negotiators, plan) -> None:
        self.answers = Certifier(negotiators, plan=plan, parallel=False, blocks=ONE_VENDOR_BLOCKS)
        self.prices = Certifier(negotiators, plan=plan, parallel=False, blocks=ONE_VENDOR_BLOCKS, at="prices")
        self.lowers: list[tuple[float, float]] = []

    def __call__(self, z, answers, prices, answer_prices=None, target=None):
        c = self.answers(z, answers, prices, answer_prices=answer_prices, target=target)
        p = self.prices(z, answers, prices, answer_prices=answer_prices)
        self.lowers.append((c.lower, p.lower))
        self.last_plan = self.answers.last_plan
        return c


def test_the_bound_at_the_answers_prices_is_valid_and_tighter_on_the_small_benchmark() -> None:
    """On the small benchmark the vendor's LP is degenerate: at the coordinator's prices its LP answer
    jumps far from the plan and the lower bound is 3.2e-3 below first best at the first check (round
    52); at the prices where each answer is exact it is 7.9e-4 below. Both stay below first best."""
    from experiments.benchmarks import benchmark_scenario, planning_round
    from sim.model.decision import PlanningContext
    from policies.cpp import plan_from_answer

    retailer, vendors = planning_round(benchmark_scenario("small"))
    b = LPBuilder()
    x = b.add_var(retailer.public.shape)
    retailer.add_block(b, x)
    for v, vendor in enumerate(vendors.values()):
        vendor.add_block(b, x[v])
    from sim.model.lp import solve_lp
    fb = solve_lp(b.build()).objective
    ctx = PlanningContext(week=0, public=retailer.public, retailer=retailer, vendors=vendors, rng=np.random.default_rng(0))
    negs = [negotiator_for(retailer)] + [negotiator_for(v) for v in vendors.values()]
    both = _BothPrices(negs, lambda z, a: plan_from_answer(a[0], ctx, negs[1:]))
    result = ConsensusADMM(ADMMOptions(gap_tol=1e-3)).negotiate(negs, retailer.public.shape, certifier=both,
                                                               blocks=ONE_VENDOR_BLOCKS)
    assert result.converged and both.lowers
    for at_answers, at_prices in both.lowers:
        assert at_answers <= fb * (1 + REL) and at_prices <= fb * (1 + REL)
    first_answers, first_prices = both.lowers[0]
    assert fb - first_answers < 0.5 * (fb - first_prices)
    assert result.certificate.lower <= fb * (1 + REL)


def test_a_failing_check_also_tries_the_last_holder_absorbing(block_agents) -> None:
    """The second set of answer prices costs one more LP per agent, so it is asked only when the first
    does not reach the target gap; the kept lower bound is the better of the two, and valid."""
    agents, x_star, optimum = block_agents
    layout = BlockLayout.of(SHAPE, 3, BLOCKS)
    rng = np.random.default_rng(5)
    grid = np.zeros(SHAPE)
    answers = [x_star[b] + 0.1 * rng.normal(size=grid[b].shape) for b in BLOCKS]
    A = [-g.a * (a - g.b) + 0.2 * rng.normal(size=a.shape) for g, a in zip(agents, answers, strict=True)]
    stacked = layout.stack(A, "A")
    first = [layout.part(answer_prices_of(layout, stacked, "first"), i) for i in range(3)]
    last = [layout.part(answer_prices_of(layout, stacked, "last"), i) for i in range(3)]
    lb_first, lb_last = (lower_bound(agents, p, SHAPE, blocks=BLOCKS) for p in (first, last))
    assert lb_last > lb_first and lb_last <= optimum * (1 + 1e-12)  # (this draw: the last absorbing is better)
    prices = [np.zeros(grid[b].shape) for b in BLOCKS]
    both = Certifier(agents, blocks=BLOCKS)
    both(x_star, answers, prices, answer_prices=A, target=None)
    assert both.best_lower == pytest.approx(max(lb_first, lb_last), rel=1e-12)
    reached = Certifier(agents, blocks=BLOCKS)
    reached(x_star, answers, prices, answer_prices=A, target=1e9)  # the first already within target
    assert reached.best_lower == pytest.approx(lb_first, rel=1e-12)
