"""CPP-VCG's pivot negotiations on ``two-vendors``: they end certified where the main one does, so a
vendor's lie cannot buy a week of JIT (no transfer) by making a pivot's negotiation fail."""

from __future__ import annotations

from dataclasses import replace

import pytest

import policies.cpp as cpp
from experiments.audit import _lies
from experiments.lies import liar_agent
from forecasts.inputs import policy_rng
from policies.registry import make_policy
from sim.model.data import split_scenario
from sim.model.scenario import load_scenario
from sim.world import planning_context


def _decide_logging(monkeypatch, ctx, scenario):
    """The cpp-vcg decision of ``ctx`` and every negotiation it ran: (vendors taking part, result)."""
    results = []
    original = cpp.negotiate_efficient_plan

    def logged(c, options=None, *args, **kwargs):
        plan, result = original(c, options, *args, **kwargs)
        results.append((tuple(kwargs.get("vendors") or c.vendors), kwargs.get("first_week") is not None, result))
        return plan, result

    monkeypatch.setattr(cpp, "negotiate_efficient_plan", logged)
    decision = make_policy("cpp-vcg", scenario).decide(replace(ctx, rng=policy_rng(scenario.seed, ctx.week)))
    return decision, results


@pytest.fixture(scope="module")
def sonora_lie_week0():
    scenario = load_scenario("two-vendors")
    public = split_scenario(scenario)[0]
    lies, _, vendor_data = _lies(scenario, ["sonora"])
    lie = next(lie for lie in lies if lie.name == "scale_costs_x0.8")
    ctx = planning_context(scenario, week=0)
    liar = liar_agent(public, lie, vendor_data["sonora"])
    liar.observe(ctx.vendors["sonora"].state)
    return scenario, replace(ctx, vendors={**ctx.vendors, "sonora": liar})


def test_a_stalled_pivot_negotiation_is_certified_not_a_jit_week(monkeypatch, sonora_lie_week0) -> None:
    """Week 0, sonora scaling its costs by 0.8: acme's joint re-plan (the retailer and sonora, the PO
    fixed) stalls with its residuals above tolerance until the cap, on a plan certified within 2e-4.
    It used to end there uncertified and the whole week fell back to JIT, which paid sonora +370
    over its truthful week (the audit's +333 over three weeks). Now the cap round is checked."""
    scenario, ctx = sonora_lie_week0
    decision, results = _decide_logging(monkeypatch, ctx, scenario)
    assert "fallback" not in decision.diagnostics
    assert len(results) == 5  # the main negotiation, then x^{-v} and the joint re-plan of each vendor
    assert all(r.status == "converged" and r.gap_bound <= 1e-3 for _, _, r in results)
    assert decision.transfers["sonora"] > 0  # sonora pays its pivot


def test_each_pivot_errs_at_most_what_the_main_plan_may(monkeypatch, sonora_lie_week0) -> None:
    """The pivots' objectives ``S_-v`` include the retailer's wholesale payments to ``v`` (1.3 to 1.8
    times the social cost here), so a relative ``gap_tol`` let them err more than the main plan: on
    this week acme's counterfactual stopped at an absolute gap of 21.7 where the main plan was held to
    16.2. Each pivot's certified absolute gap is now within ``gap_tol`` times the main plan's lower
    bound, for the truthful week and the lie."""
    scenario, lie_ctx = sonora_lie_week0
    for ctx in (planning_context(scenario, week=0), lie_ctx):
        decision, results = _decide_logging(monkeypatch, ctx, scenario)
        (_, _, main), *pivots = results
        allowed = main.certificate.lower * 1e-3  # the scenario's gap_tol is the default
        assert main.certificate.upper - main.certificate.lower <= allowed
        assert len(pivots) == 4
        for vendors, fixed, result in pivots:
            assert result.converged, (vendors, fixed, result.status)
            assert result.certificate.upper - result.certificate.lower <= allowed, (vendors, fixed)


def test_a_vendors_counterfactual_does_not_depend_on_its_reports(monkeypatch, sonora_lie_week0) -> None:
    """``x^{-v}`` is negotiated among the retailer and the other vendors only, from a cold start: it
    used to start from the main negotiation's state, which carries ``v``'s reports, so a lie moved
    which of many nearly equally cheap counterfactual POs was chosen (on this week sonora's
    counterfactual ended at 21701.1 truthful and 21697.8 lying, and the transfer's valuation of such
    POs differs by up to 80 a week)."""
    scenario, lie_ctx = sonora_lie_week0
    found = []
    for ctx in (planning_context(scenario, week=0), lie_ctx):
        _, results = _decide_logging(monkeypatch, ctx, scenario)
        (result,) = [r for vendors, fixed, r in results if vendors == ("acme",) and not fixed]
        found.append(result)
    truthful, lying = found
    assert truthful.iterations == lying.iterations
    assert truthful.z == pytest.approx(lying.z, abs=0, rel=0)
    assert truthful.certificate.upper == lying.certificate.upper
