"""The retailer keeps its week's LP in HiGHS between queries (sim.parties.retailer): same answers as
building and solving the LP afresh for each query, a new model each week, nothing of it pickled."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import sim.model.lp as lp_module
import sim.parties.retailer as retailer_module
from conftest import one_vendor_round
from sim.model.lp import solve_lp
from sim.model.plan_cost import PlanCost


def _fresh_cost_with_first_week(retailer, po, demand):
    lp, x = retailer._lp(None, demand)
    sol = solve_lp(lp.with_bounds(x[:, 0], po, po))
    return PlanCost.from_breakdown(sol.values(x), sol.cost_breakdown(), "retailer", x.shape[1])


def test_queries_on_the_kept_model_equal_fresh_solves(default_scenario, monkeypatch) -> None:
    """With ``LP_STARTS = "scratch"`` every query is solved from scratch: bit for bit a fresh LP's answer."""
    monkeypatch.setattr(lp_module, "LP_STARTS", "scratch")
    retailer, _ = one_vendor_round(default_scenario)
    rng = np.random.default_rng(7)
    plan = retailer.preferred_plan().plan
    for _ in range(4):
        po = plan[:, 0] * rng.uniform(0.5, 1.5, size=plan[:, 0].shape)
        demand = retailer.forecast * rng.uniform(0.7, 1.3, size=retailer.forecast.shape)
        for d in (None, demand):
            got = retailer.cost_with_first_week(po, d)
            want = _fresh_cost_with_first_week(retailer, po, retailer.forecast if d is None else d)
            assert np.array_equal(got.by_week, want.by_week) and np.array_equal(got.plan, want.plan)
        lp, x = retailer._lp(None, demand)
        fresh = solve_lp(lp.with_bounds(x, plan, plan)).cost_breakdown()
        assert retailer.evaluate(plan, demand=demand).by_week.sum() == PlanCost.from_breakdown(
            plan, fresh, "retailer", x.shape[1]).by_week.sum()
    (model,) = retailer._models.values()
    assert model.model.solves == 4 * 3  # one model for the week: every query re-solved it


def _queries(retailer, rng, count):
    plan = retailer.preferred_plan().plan
    demands = [None] + [retailer.forecast * rng.uniform(0.7, 1.3, size=retailer.forecast.shape) for _ in range(2)]
    return [(plan[:, 0] * rng.uniform(0.5, 1.5, size=plan[:, 0].shape), demands[i % 3]) for i in range(count)], plan


def test_reference_starts_answer_the_same_whatever_the_order(default_scenario, monkeypatch) -> None:
    """The default (``LP_STARTS = "reference"``): every query starts from the week's reference basis for
    its demand, so the same queries asked in another order (after other queries, on a fresh week model)
    give bit-identical answers, plans included; and the same optimal values as solves from scratch."""
    assert lp_module.LP_STARTS == "reference"
    retailer, _ = one_vendor_round(default_scenario)
    queries, plan = _queries(retailer, np.random.default_rng(11), 9)
    forward = [retailer.cost_with_first_week(po, d) for po, d in queries]
    forward_eval = [retailer.evaluate(plan, demand=d) for _, d in queries[:3]]
    for got, (po, d) in zip(forward, queries, strict=True):
        want = _fresh_cost_with_first_week(retailer, po, retailer.forecast if d is None else d)
        assert np.isclose(got.total, want.total, rtol=1e-9, atol=1e-7)
    (model,) = retailer._models.values()
    assert len(model._refs) == 3  # one reference per demand: the forecast and two paths
    retailer.observe(retailer.state, retailer.forecast)  # a new week model, asked in another order
    assert retailer._models == {}
    order = [4, 7, 0, 8, 2, 5, 1, 6, 3]
    retailer.cost_with_first_week(queries[0][0] * 0.9, queries[1][1])  # an unrelated query first
    backward_eval = [retailer.evaluate(plan, demand=d) for _, d in reversed(queries[:3])][::-1]
    backward = {i: retailer.cost_with_first_week(*queries[i]) for i in order}
    for i, a in enumerate(forward):
        b = backward[i]
        assert np.array_equal(a.by_week, b.by_week) and np.array_equal(a.plan, b.plan)
    for a, b in zip(forward_eval, backward_eval, strict=True):
        assert np.array_equal(a.by_week, b.by_week)
    # with room for one kept model only, the other demands share the week's model: the same answers
    monkeypatch.setattr(retailer_module, "KEPT_COLUMNS", retailer._models[retailer.public.horizon].model.lp.n)
    retailer.observe(retailer.state, retailer.forecast)
    shared = {i: retailer.cost_with_first_week(*queries[i]) for i in reversed(order)}
    assert len(retailer._models[retailer.public.horizon]._on) == 1
    for i, a in enumerate(forward):
        assert np.array_equal(a.by_week, shared[i].by_week) and np.array_equal(a.plan, shared[i].plan)


def test_an_unknown_start_mode_is_refused(default_scenario, monkeypatch) -> None:
    monkeypatch.setattr(lp_module, "LP_STARTS", "warmish")
    retailer, _ = one_vendor_round(default_scenario)
    with pytest.raises(ValueError, match="LP_STARTS"):
        retailer.cost_with_first_week(retailer.preferred_plan().plan[:, 0])


def test_a_new_week_builds_a_new_model_and_pickles_carry_none(default_scenario) -> None:
    retailer, _ = one_vendor_round(default_scenario)
    po = retailer.preferred_plan().plan[:, 0]
    first = retailer.cost_with_first_week(po)
    assert len(retailer._models) == 1
    copy = pickle.loads(pickle.dumps(retailer))
    assert copy._models == {}
    assert np.array_equal(copy.cost_with_first_week(po).by_week, first.by_week)
    retailer.observe(retailer.state, retailer.forecast * 1.1)
    assert retailer._models == {}
    assert not np.array_equal(retailer.cost_with_first_week(po).by_week, first.by_week)


def test_warm_start_switch_gives_the_same_totals_and_an_order_free_split(default_scenario, monkeypatch) -> None:
    """With warm starts a query on a demand path reaches the same optimum (total cost) as a fresh solve,
    and its split by week (least first-week cost among the optimal plans) does not depend on the
    queries asked before it (the basis it starts from)."""
    monkeypatch.setattr(retailer_module, "WARM_START_LPS", True)
    retailer, _ = one_vendor_round(default_scenario)
    rng = np.random.default_rng(8)
    plan = retailer.preferred_plan().plan
    queries = [(plan[:, 0] * rng.uniform(0.5, 1.5, size=plan[:, 0].shape),
                retailer.forecast * rng.uniform(0.7, 1.3, size=retailer.forecast.shape)) for _ in range(5)]
    forward = [retailer.cost_with_first_week(po, demand) for po, demand in queries]
    for got, (po, demand) in zip(forward, queries, strict=True):
        assert np.isclose(got.total, _fresh_cost_with_first_week(retailer, po, demand).total, rtol=1e-9)
    (model,) = retailer._models.values()
    assert model._warm is not None and model._warm.warm and model._warm.solves == 5
    retailer.observe(retailer.state, retailer.forecast)  # a new model: the queries in the other order
    backward = [retailer.cost_with_first_week(po, demand) for po, demand in reversed(queries)][::-1]
    for a, b in zip(forward, backward, strict=True):  # what the CBT uses: week 0, and the later weeks' sum
        assert np.isclose(a.by_week[0], b.by_week[0], rtol=1e-9, atol=1e-6)
        assert np.isclose(a.by_week[1:].sum(), b.by_week[1:].sum(), rtol=1e-9, atol=1e-6)
    # on the forecast the plan matters (the menu completes items with it): answered as without the
    # switch (from the week's reference basis, LP_STARTS), not by the second LP
    po = queries[0][0]
    with_switch = retailer.cost_with_first_week(po)
    monkeypatch.setattr(retailer_module, "WARM_START_LPS", False)
    retailer.observe(retailer.state, retailer.forecast)
    assert np.array_equal(with_switch.plan, retailer.cost_with_first_week(po).plan)


def test_plans_under_a_virtual_discount_are_kept_order_free_and_optimal(default_scenario, monkeypatch) -> None:
    """``preferred_plan(inbound_discount=...)`` (the menu's discount and steer items) re-solves one kept
    LP per week from its reference basis: the same plans whatever the order of the queries, the same
    optimal values as from scratch (``LP_STARTS = "scratch"``)."""
    retailer, _ = one_vendor_round(default_scenario)
    F = retailer.public.F
    queries = []
    for level, f in [(0.05, 0), (0.2, 1), (0.5, 2), (0.35, 0)]:
        d = np.zeros(F)
        d[f] = level
        queries.append((d, None))
    d = np.full(F, -0.2)
    d[1] = 0.1
    cap = np.full(F, np.inf)
    cap[1] = 300.0
    queries.append((d, cap))
    forward = [retailer.preferred_plan(inbound_discount=d, discount_cap=c) for d, c in queries]
    assert set(retailer._models) == {"discount"}
    retailer.observe(retailer.state, retailer.forecast)
    backward = [retailer.preferred_plan(inbound_discount=d, discount_cap=c) for d, c in reversed(queries)][::-1]
    monkeypatch.setattr(lp_module, "LP_STARTS", "scratch")
    retailer.observe(retailer.state, retailer.forecast)
    scratch = [retailer.preferred_plan(inbound_discount=d, discount_cap=c) for d, c in queries]
    for a, b, s, (disc, c) in zip(forward, backward, scratch, queries, strict=True):
        assert np.array_equal(a.plan, b.plan) and np.array_equal(a.by_week, b.by_week)
        # the objective the plans minimise: the true cost less the discount on the discounted units
        assert np.isclose(_discounted(retailer, a, disc, c), _discounted(retailer, s, disc, c), rtol=1e-9)
    assert any(not np.array_equal(a.plan, forward[0].plan) for a in forward)  # the discounts move the plans


def _discounted(retailer, cost, disc, cap):
    """``cost``'s plan valued as ``preferred_plan`` optimises it: true cost, the surcharge on every unit, less
    the discount on the units it may discount (the least cost of that choice: an LP of its own)."""
    from sim.model.lp import LPBuilder, solve_lp
    pub = retailer.public
    w = pub.wholesale[:, None, None, :]
    x = cost.plan
    surcharge = float((np.minimum(disc, 0.0)[None, None, :, None] * -w * x).sum())
    b = LPBuilder()
    e = b.add_var(x.shape, ub=x)
    b.add_cost(e, -np.maximum(disc, 0.0)[None, None, :, None] * w, ("r", "d", 0))
    if cap is not None:
        capped = np.flatnonzero(np.isfinite(cap))
        rows = b.new_rows("ub", (x.shape[1], capped.size), cap[capped][None, :])
        b.add_terms("ub", rows[None, :, :, None], e[:, :, capped, :], pub.volume[None, None, None, :])
    return cost.total + surcharge + solve_lp(b.build()).objective


def test_a_vendors_evaluations_are_kept_and_equal_fresh_solves(default_scenario) -> None:
    """``VendorAgent.evaluate`` re-solves one kept LP per week (from scratch): bit for bit a fresh LP's
    answer, infeasible plans still infinite, what it would ship (``allow_short``) included."""
    from sim.model.lp import LPBuilder

    retailer, vendor = one_vendor_round(default_scenario)
    rng = np.random.default_rng(12)
    block = retailer.preferred_plan().plan[vendor.index]
    plans = [block * rng.uniform(0.5, 1.5, size=block.shape) for _ in range(4)] + [block * 1e4]
    for short in (False, True):
        for p in plans:
            got = vendor.evaluate(p, allow_short=short)
            b = LPBuilder()
            x = b.add_var(vendor.plan_shape)
            vendor.add_block(b, x)
            sol = solve_lp(b.build().with_bounds(x, 0.0 if short else p, p), raise_on_fail=False)
            if not sol.ok:
                assert not short and not np.isfinite(got.total)
                continue
            want = PlanCost.from_breakdown(sol.values(x) if short else p, sol.cost_breakdown(), vendor.party, x.shape[0])
            assert np.array_equal(got.by_week, want.by_week) and np.array_equal(got.plan, want.plan)
    assert not np.isfinite(vendor.evaluate(plans[-1]).total)
    assert vendor._kept is not None and vendor._kept.model.solves == 11
    assert pickle.loads(pickle.dumps(vendor))._kept is None
    vendor.observe(vendor.state)
    assert vendor._kept is None


def test_the_own_plan_is_the_week_models_first_solve_bit_for_bit(default_scenario) -> None:
    """``preferred_plan()`` (JIT) is the week model's solve on the forecast with nothing fixed, from scratch:
    bit for bit a fresh LP's answer, and its basis is the forecast queries' reference."""
    retailer, _ = one_vendor_round(default_scenario)
    lp, x = retailer._lp()
    fresh = solve_lp(lp)
    want = PlanCost.from_breakdown(fresh.values(x), fresh.cost_breakdown(), "retailer", x.shape[1])
    for _ in range(2):  # asked again: the same solve, not another
        got = retailer.preferred_plan()
        assert np.array_equal(got.plan, want.plan) and np.array_equal(got.by_week, want.by_week)
    (week,) = retailer._models.values()
    assert len(week._refs) == 1 and sum(m.solves for m in week._on.values()) == 1
    other = retailer.preferred_plan(demand=retailer.forecast * 1.1)  # another demand: a fresh LP, as before
    lp2, x2 = retailer._lp(None, retailer.forecast * 1.1)
    assert np.array_equal(other.plan, solve_lp(lp2).values(x2))


def test_a_vendors_evaluation_near_a_plan_is_order_free_with_the_same_totals(default_scenario, monkeypatch) -> None:
    """``evaluate(plan, near=reference)`` starts from the basis of the reference plan's evaluation: the
    same answers in any order, the totals of solves from scratch, infeasible plans still infinite."""
    retailer, vendor = one_vendor_round(default_scenario)
    rng = np.random.default_rng(13)
    near = retailer.preferred_plan().plan[vendor.index]
    plans = [near * rng.uniform(0.8, 1.2, size=near.shape) for _ in range(5)] + [near * 1e4]
    forward = [vendor.evaluate(p, near=near) for p in plans]
    vendor.observe(vendor.state)
    vendor.evaluate(plans[2])  # another query first
    backward = [vendor.evaluate(p, near=near) for p in reversed(plans)][::-1]
    scratch = [vendor.evaluate(p) for p in plans]
    for a, b, s in zip(forward, backward, scratch, strict=True):
        assert np.array_equal(a.by_week, b.by_week) and a.total == b.total
        assert a.total == s.total or np.isclose(a.total, s.total, rtol=1e-9, atol=1e-7)
    assert not np.isfinite(forward[-1].total)
    assert len(vendor._kept._refs) == 1  # one reference evaluation for the week
    monkeypatch.setattr(lp_module, "LP_STARTS", "scratch")  # then ``near`` changes nothing
    assert vendor.evaluate(plans[0], near=near).total == scratch[0].total


def test_cbt_prices_do_not_depend_on_the_order_items_are_priced(default_scenario) -> None:
    """What the menu relies on for nested menus: the CBT of each candidate plan (``paths`` continuation, whose
    split by week depends on the optimal plan the solver returns) is the same, bit for bit, whether the
    plans are priced in one order or another, or after other plans."""
    from dataclasses import replace

    from policies.cbt import TransferPricer
    from sim.world import planning_context

    ctx = planning_context(default_scenario, week=1)
    jit = ctx.retailer.preferred_plan().plan
    rng = np.random.default_rng(14)
    plans = []
    for _ in range(5):
        plan = np.array(jit, copy=True)
        plan[:, 0] *= rng.uniform(0.6, 1.4, size=plan[:, 0].shape)
        plans.append(plan)

    def prices(order, before=()):
        ctx.retailer.observe(ctx.retailer.state, ctx.retailer.forecast)  # a fresh week model
        pricer = TransferPricer(replace(ctx, rng=np.random.default_rng(5)), jit, scenarios=4, two_way=True)
        for p in before:
            pricer.price(p)
        return {i: pricer.price(plans[i]) for i in order}

    forward = prices(range(5))
    backward = prices(reversed(range(5)), before=[jit * 1.1])
    for i in range(5):
        assert forward[i] == backward[i]  # every field of the breakdown, exactly
    assert len({round(forward[i].raw, 6) for i in range(5)}) > 1
