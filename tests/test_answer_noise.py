"""Noisy vendor answers (objective perturbation as a negotiator wrapper): eps = inf is today's run
bit for bit, noisy answers stay feasible, the noise follows its scope, bad settings are errors."""

from __future__ import annotations

import math

import numpy as np
import yaml
import pytest

from sim.model.decision import PlanningContext
from policies.cpp_vcg import CPPVCGPolicy
from policies.privacy import AgreementShown, RoundsShown
from sim.negotiation.answer_noise import AnswerNoise, NoiseOptions, NoisyNegotiator
from sim.negotiation.best_response import negotiator_for
from sim.model.errors import FlosimError
from sim.runner import run_policies
from sim.world import planning_context


@pytest.fixture(scope="module")
def contexts(default_scenario):
    return [planning_context(default_scenario.with_overrides({"weeks": 1}), 0)]


def _ledger(scenario, policy):
    res = run_policies(scenario, [policy], weeks=2, progress=False)
    return res.ledger.sort_values(["week", "party", "component"]).reset_index(drop=True), res.decisions


def test_infinite_budget_is_todays_run_bit_for_bit(default_scenario):
    today, d0 = _ledger(default_scenario, CPPVCGPolicy())
    for privacy in ({"eps": math.inf}, {"eps": yaml.safe_load(".inf"), "scope": "answer"}, {"eps": "inf", "record": True}):
        noisy, d1 = _ledger(default_scenario, CPPVCGPolicy(privacy=privacy))
        assert noisy["value"].tolist() == today["value"].tolist(), privacy
        assert d1["iterations"].tolist() == d0["iterations"].tolist()


def test_infinite_budget_leaves_the_cpp_policy_as_it_was(default_scenario):
    from policies.cpp import CPPPolicy

    today, _ = _ledger(default_scenario, CPPPolicy())
    noisy, _ = _ledger(default_scenario, CPPPolicy(privacy={"eps": math.inf, "record": True}))
    assert noisy["value"].tolist() == today["value"].tolist()


def test_large_budget_approaches_exact_answers(contexts):
    ctx: PlanningContext = contexts[0]
    exact = negotiator_for(ctx.vendor)
    shape = ctx.public.block_shape  # the vendor answers for its block (H, F, K)
    z = np.full(shape, 50.0)
    y = np.zeros(shape)
    want = exact.best_response(z, y, 0.05)
    for eps in (1e6, 1e9):
        noise = AnswerNoise(NoiseOptions(eps=eps, scope="answer"), shape, np.random.default_rng(1))
        got = NoisyNegotiator(negotiator_for(ctx.vendor), noise.for_negotiation()).best_response(z, y, 0.05)
        # noise of scale 1/eps moves the answer by about that over rho, far below the answers' own tolerance
        assert np.max(np.abs(got - want)) < 0.05


def test_noisy_answers_differ_and_stay_feasible(contexts):
    ctx: PlanningContext = contexts[0]
    shape = ctx.public.block_shape  # the vendor answers for its block (H, F, K)
    inner = negotiator_for(ctx.vendor)
    noise = AnswerNoise(NoiseOptions(eps=0.5, scope="answer"), shape, np.random.default_rng(7))
    neg = NoisyNegotiator(inner, noise.for_negotiation())
    z = np.full(shape, 80.0)
    y = np.zeros(shape)
    a, b = neg.best_response(z, y, 0.05), neg.best_response(z, y, 0.05)
    exact = inner.best_response(z, y, 0.05)
    assert np.max(np.abs(a - b)) > 1.0 and np.max(np.abs(a - exact)) > 1.0
    # objective perturbation: still an answer the vendor can carry out (confirmed, up to the QP's tolerance)
    for x in (a, b):
        assert np.all(x >= -1e-6)
        np.testing.assert_allclose(neg.confirm(x), np.maximum(x, 0), atol=0.05 * max(1.0, float(np.max(x))))


def test_scope_run_draws_once_per_fc_and_product_week_draws_per_negotiation():
    shape = (3, 2, 4)
    run = AnswerNoise(NoiseOptions(eps=1.0, scope="run"), shape, np.random.default_rng(3))
    d1, d2 = run.for_negotiation(), run.for_negotiation()
    assert np.array_equal(d1(), d2()) and np.array_equal(d1()[0], d1()[2])
    week = AnswerNoise(NoiseOptions(eps=1.0, scope="week"), shape, np.random.default_rng(3))
    w1, w2 = week.for_negotiation(), week.for_negotiation()
    assert np.array_equal(w1(), w1()) and not np.array_equal(w1(), w2())
    assert NoiseOptions().scale == 0.0 and AnswerNoise(NoiseOptions(), shape, None).for_negotiation() is None
    # Laplace scale sensitivity / eps
    big = AnswerNoise(NoiseOptions(eps=2.0, sensitivity=3.0, scope="answer"), (200, 50, 10), np.random.default_rng(0))
    draws = big.for_negotiation()()
    assert np.mean(np.abs(draws)) == pytest.approx(1.5, rel=0.02)


def test_noise_is_seeded_and_leaves_the_policy_stream_alone(default_scenario, contexts):
    a, _ = _ledger(default_scenario, CPPVCGPolicy(privacy={"eps": 3.0}))
    b, _ = _ledger(default_scenario, CPPVCGPolicy(privacy={"eps": 3.0}))
    assert a["value"].tolist() == b["value"].tolist()
    # the noise's generator is spawned from the week's, whose draws (the CBT's demand paths) stay as they were
    from policies.privacy import PrivacyOptions, ViewRecorder

    ctx: PlanningContext = contexts[0]
    for scope in ("run", "week", "answer"):
        before = ctx.rng.bit_generator.state
        wrap = ViewRecorder(PrivacyOptions(eps=3.0, scope=scope)).vendor_wrapper(ctx)
        wrap("vendor", negotiator_for(ctx.vendor))._draw()
        assert ctx.rng.bit_generator.state == before, scope


def test_records_follow_the_coordinator_setting(default_scenario):
    p = CPPVCGPolicy(privacy={"record": True})
    run_policies(default_scenario, [p], weeks=1, progress=False)
    assert len(p.shown) == 1 and isinstance(p.shown[0], RoundsShown) and p.shown[0].transcript.iterations > 5
    q = CPPVCGPolicy(privacy={"record": True, "coordinator": "neutral"})
    run_policies(default_scenario, [q], weeks=1, progress=False)
    assert len(q.shown) == 1 and isinstance(q.shown[0], AgreementShown)
    assert q.admm.record_transcript is False  # nothing of the rounds is kept for the retailer
    assert CPPVCGPolicy().shown == []


@pytest.mark.parametrize("privacy, needle", [
    ({"eps": 0}, "privacy.eps = 0"), ({"eps": -2.0}, "privacy.eps = -2.0"), ({"eps": float("nan")}, "privacy.eps"),
    ({"scope": "forever"}, "privacy.scope"), ({"coordinator": "bank"}, "privacy.coordinator"),
    ({"budget": 1}, "privacy.budget"), ({"sensitivity": math.inf}, "sensitivity"), ("loud", "privacy must be a mapping"),
    # a budget whose noise scale sensitivity / eps overflows (infinite prices: every week would fail silently)
    ({"eps": 1e-320}, "not a finite number"), ({"eps": 1e-300, "sensitivity": 1e10}, "not a finite number"),
])
def test_bad_privacy_settings_are_errors_naming_them(privacy, needle):
    with pytest.raises(FlosimError, match="policy 'cpp-vcg'") as err:
        CPPVCGPolicy(privacy=privacy)
    assert needle in str(err.value)


def test_a_noisy_vendor_certifies_the_cost_it_answers_for(contexts):
    """One draw per negotiation: the vendor answers for C_V + b·x and states that cost's two numbers,
    so the negotiation can stop certified (with its true cost's numbers it ran to the round cap and
    fell back to JIT at every eps tried); fresh noise per answer cannot certify and says so."""
    from policies.cpp import negotiate_efficient_plan
    from sim.negotiation.certificate import certify

    ctx: PlanningContext = contexts[0]
    shape = ctx.public.block_shape  # the vendor answers for its block (H, F, K)
    inner = negotiator_for(ctx.vendor)
    draw = AnswerNoise(NoiseOptions(eps=30.0, scope="run"), shape, np.random.default_rng(4)).for_negotiation()
    _, result = negotiate_efficient_plan(ctx, {"max_iter": 300}, wrap_vendor=lambda name, neg: NoisyNegotiator(neg, draw))
    assert result.status == "converged" and result.certified and result.gap_bound <= 1e-2 and result.iterations < 300
    from sim.negotiation.answer_noise import FixedDraw

    assert isinstance(draw, FixedDraw)
    noisy = NoisyNegotiator(inner, draw)
    b = draw()
    y = np.random.default_rng(5).normal(size=shape)
    x = np.abs(np.random.default_rng(6).normal(20.0, 5.0, size=shape))
    assert noisy.dual_value(y) == pytest.approx(inner.dual_value(y + b), rel=1e-9)
    assert noisy.own_cost(x) == pytest.approx(inner.own_cost(x) + float(np.sum(b * x)), rel=1e-12)
    assert noisy.can_certify

    per_answer = NoisyNegotiator(inner, AnswerNoise(NoiseOptions(eps=30.0, scope="answer"), shape,
                                                    np.random.default_rng(4)).for_negotiation())
    assert per_answer.can_certify is False
    cert = certify([negotiator_for(ctx.retailer), per_answer], [-y[None], y], x[None], blocks=[None, 0])
    assert not cert.bounded and "not certified" in cert.message
