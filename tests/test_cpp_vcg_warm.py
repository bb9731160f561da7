"""CPP-VCG's warm start (``warm_start``, default on): each week's main negotiation starts from last
week's agreement shifted a week, each vendor's counterfactual from last week's counterfactual (never
from the main negotiation, which carries the vendor's reports); the plans stay within the
negotiation's tolerance of first best. Also the benchmark's CPU figures."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import policies.cpp as cpp
from forecasts.inputs import policy_rng
from policies.cpp_vcg import CPPVCGPolicy
from policies.registry import make_policy
from sim.model.errors import FlosimError
from sim.model.scenario import load_scenario
from sim.negotiation import best_response as br
from sim.parties.oracle import joint_plan
from sim.world import planning_context


def _logging(monkeypatch):
    """Every negotiation run, as (vendors taking part, first week given, warm, start, result)."""
    calls = []
    original = cpp.negotiate_efficient_plan

    def logged(c, options=None, *args, **kwargs):
        plan, result = original(c, options, *args, **kwargs)
        calls.append((tuple(kwargs.get("vendors") or c.vendors), kwargs.get("first_week") is not None,
                      kwargs.get("warm"), kwargs.get("start"), result))
        return plan, result

    monkeypatch.setattr(cpp, "negotiate_efficient_plan", logged)
    return calls


def _tails(monkeypatch):
    """Whether each negotiation has its first week given (a joint re-plan, which starts from this week's
    agreement, not warm) and its ``warm_tail`` (wraps whatever ``negotiate_efficient_plan`` is now)."""
    tails = []
    original = cpp.negotiate_efficient_plan

    def logged(c, options=None, *args, **kwargs):
        tails.append((kwargs.get("first_week") is not None, kwargs.get("warm_tail", 1)))
        return original(c, options, *args, **kwargs)

    monkeypatch.setattr(cpp, "negotiate_efficient_plan", logged)
    return tails


def _decide(policy, scenario, week):
    ctx = planning_context(scenario, week=week)
    return ctx, policy.decide(replace(ctx, rng=policy_rng(scenario.seed, week)))


def test_next_weeks_negotiation_starts_from_last_weeks_agreement(monkeypatch, default_scenario) -> None:
    calls = _logging(monkeypatch)
    policy = make_policy("cpp-vcg", default_scenario)
    assert policy.warm_start is True
    _, first = _decide(policy, default_scenario, 0)
    (_, _, warm0, _, main0), = calls
    ctx1, warm = _decide(policy, default_scenario, 1)
    (_, _, warm1, _, main1) = calls[1]
    assert warm0 is None and warm1 is main0  # last week's converged result, shifted inside the negotiation
    assert first.diagnostics["warm_start"] is False and warm.diagnostics["warm_start"] is True
    _, cold = _decide(make_policy("cpp-vcg", default_scenario, warm_start=False), default_scenario, 1)
    assert calls[2][2] is None and cold.diagnostics["warm_start"] is False
    best = joint_plan(ctx1.retailer, ctx1.vendors).social_cost
    for d in (warm, cold):  # both within the negotiation's tolerance of first best
        assert d.committed and "fallback" not in d.diagnostics
        assert (d.diagnostics["planned_social"] - best) / abs(best) <= 1e-3
    # the two plans differ (another start) but only within that tolerance of each other
    assert abs(warm.diagnostics["planned_social"] - cold.diagnostics["planned_social"]) <= 2e-3 * abs(best)


def test_a_week_that_does_not_follow_starts_cold(monkeypatch, default_scenario) -> None:
    calls = _logging(monkeypatch)
    policy = make_policy("cpp-vcg", default_scenario)
    _decide(policy, default_scenario, 0)
    _, later = _decide(policy, default_scenario, 2)  # (a policy reused on another run, or a skipped week)
    assert calls[1][2] is None and later.diagnostics["warm_start"] is False


def test_warm_start_is_a_boolean(default_scenario) -> None:
    with pytest.raises(FlosimError, match="warm_start must be true or false"):
        CPPVCGPolicy(warm_start="yes")
    with pytest.raises(FlosimError, match="warm_start"):
        make_policy("cpp-vcg", default_scenario, warm_start=1)
    central = make_policy("cpp-vcg", default_scenario, solver="central")
    assert central.warm(planning_context(default_scenario, week=0)) is None


def test_counterfactuals_start_from_their_own_last_week_never_from_the_main_agreement(monkeypatch) -> None:
    scenario = load_scenario("two-vendors")
    calls = _logging(monkeypatch)
    tails = _tails(monkeypatch)
    policy = make_policy("cpp-vcg", scenario)
    _decide(policy, scenario, 0)
    week0 = list(calls)
    calls.clear()
    _, decision = _decide(policy, scenario, 1)
    assert "fallback" not in decision.diagnostics
    main0 = week0[0][4]
    (vendors, fixed, warm, start, main1), *pivots = calls
    assert len(vendors) == 2 and warm is main0
    counterfactuals = [c for c in pivots if len(c[0]) == 1 and not c[1]]
    joints = [c for c in pivots if len(c[0]) == 1 and c[1]]
    assert len(counterfactuals) == 2 and len(joints) == 2
    for others, _, warm, start, result in counterfactuals:
        (before,) = [c[4] for c in week0 if c[0] == others and not c[1]]
        assert warm is before and start is None  # its own last week, negotiated without the vendor
        assert result.converged
    for _, _, warm, start, result in joints:  # the joint re-plan at x*_t starts from this week's agreement
        assert warm is None and start is not None and np.array_equal(start.z, main1.z)
        assert result.converged
    # the main negotiation and the counterfactuals keep the horizon's second half in place (horizon 6)
    assert scenario.horizon == 6 and {tail for joint, tail in tails if not joint} == {3}


def test_shift_week_moves_the_calendar_weeks_and_keeps_the_tail_in_place() -> None:
    weeks = np.arange(6.0)[None, :, None] * np.ones((2, 6, 3))  # [V, H, K], each entry its week
    shifted = lambda tail: cpp.shift_week(weeks, axis=1, tail=tail)[0, :, 0].tolist()
    assert shifted(1) == [1, 2, 3, 4, 5, 5]  # the last week repeats (the shift before warm_tail)
    assert cpp.shift_week(weeks, axis=1)[0, :, 0].tolist() == [1, 2, 3, 4, 5, 5]
    assert shifted(3) == [1, 2, 3, 3, 4, 5]  # weeks 3-5 keep their place
    assert shifted(6) == shifted(60) == [0, 1, 2, 3, 4, 5]  # nothing moves
    assert shifted(0) == shifted(1)  # at least the last week stays
    assert cpp.shift_week(weeks[:, :1], axis=1, tail=3).shape == (2, 1, 3)
    assert np.array_equal(cpp.shift_week(weeks, axis=1, tail=2)[1], cpp.shift_week(weeks, axis=1, tail=2)[0])


def test_a_warm_start_shifts_plan_and_prices_with_the_tail(monkeypatch, default_scenario) -> None:
    ctx0 = planning_context(default_scenario, week=0)
    _, last = cpp.negotiate_efficient_plan(ctx0)
    seen = []

    def negotiate(self, negotiators, shape, z0=None, prices0=None, **kwargs):
        seen.append((z0, prices0))
        raise RuntimeError("stop")

    monkeypatch.setattr(cpp.ConsensusADMM, "negotiate", negotiate)
    ctx1 = planning_context(default_scenario, week=1)
    for tail in (1, 3):
        with pytest.raises(RuntimeError, match="stop"):
            cpp.negotiate_efficient_plan(ctx1, warm=last, warm_tail=tail)
        z0, prices0 = seen[-1]
        assert np.array_equal(z0, cpp.shift_week(last.z, axis=1, tail=tail))
        assert np.array_equal(prices0[0], cpp.shift_week(last.prices[0], axis=1, tail=tail))
        assert np.array_equal(prices0[1], cpp.shift_week(last.prices[1], axis=0, tail=tail))  # a vendor's block [H, F, K]
    assert not np.array_equal(seen[0][0], seen[1][0])


def test_warm_tail_defaults_to_half_the_horizon_and_is_checked(default_scenario) -> None:
    ctx = planning_context(default_scenario, week=0)
    H = ctx.public.shape[1]
    assert make_policy("cpp-vcg", default_scenario).tail(ctx) == max(1, H // 2)
    assert make_policy("cpp-vcg", default_scenario, warm_tail=1).tail(ctx) == 1
    for bad in (0, -1, 2.5, True, "3"):
        with pytest.raises(FlosimError, match="warm_tail must be a whole number"):
            make_policy("cpp-vcg", default_scenario, warm_tail=bad)


def test_the_bench_reports_cpu_times_and_their_ratio() -> None:
    from experiments.benchmarks import run_benchmark

    row = run_benchmark("small")
    assert row.central_cpu_s > 0 and row.cpp_cpu_s > 0
    assert row.cpu_ratio == pytest.approx(row.cpp_cpu_s / row.central_cpu_s)
    assert {"central_cpu_s", "cpp_cpu_s", "cpu_ratio"} <= set(row.as_dict())
