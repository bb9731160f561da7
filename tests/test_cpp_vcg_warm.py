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


def test_workers_report_their_start_up_cpu_which_the_bench_leaves_out() -> None:
    try:
        prestart_count = br.prestart_workers(1)
        assert prestart_count == 1
        assert br.idle_startup_cpu() > 0  # importing numpy, scipy, OSQP and flosim takes CPU
    finally:
        br.stop_idle_workers()
    assert br.idle_startup_cpu() == 0.0


def test_the_bench_reports_cpu_times_and_their_ratio() -> None:
    from experiments.benchmarks import run_benchmark

    row = run_benchmark("small")
    assert row.central_cpu_s > 0 and row.cpp_cpu_s > 0
    assert row.cpu_ratio == pytest.approx(row.cpp_cpu_s / row.central_cpu_s)
    assert {"central_cpu_s", "cpp_cpu_s", "cpu_ratio"} <= set(row.as_dict())
