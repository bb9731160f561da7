"""Best responses built from an agent's LP: they solve the CPP query's QP, and report own costs."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from conftest import ONE_VENDOR_BLOCKS, one_vendor_round
from sim.negotiation.best_response import BestResponseOptions, negotiator_for


def _qp_reference(br, z, y, rho):
    """The same QP solved by an interior-point method (Clarabel), independently of OSQP."""
    import clarabel

    lp, xi = br._lp, br._x
    n = lp.n
    pd = np.zeros(n)
    pd[xi] = np.broadcast_to(rho, z.shape).ravel()
    fub = np.flatnonzero(np.isfinite(lp.ub))
    A = sp.vstack([lp.A_eq, lp.A_ub, -sp.eye(n, format="csr"), sp.eye(n, format="csr")[fub]]).tocsc()
    b = np.concatenate([lp.b_eq, lp.b_ub, -lp.lb, lp.ub[fub]])
    cones = [clarabel.ZeroConeT(lp.A_eq.shape[0]), clarabel.NonnegativeConeT(A.shape[0] - lp.A_eq.shape[0])]
    q = lp.c.copy()
    q[xi] += y.ravel() - (np.broadcast_to(rho, z.shape) * z).ravel()
    settings = clarabel.DefaultSettings()
    settings.verbose = False
    sol = clarabel.DefaultSolver(sp.diags(pd).tocsc(), q, A, b, cones, settings).solve()
    return np.asarray(sol.x)[xi].reshape(z.shape), float(sol.obj_val)


def _objective(br, x, z, y, rho):
    return br.own_cost(x) + float(np.sum(y * x)) + float(np.sum(np.asarray(rho) / 2 * (x - z) ** 2))


@pytest.mark.parametrize("party", ["retailer", "vendor"])
def test_best_response_solves_the_query(small_scenario, party) -> None:
    retailer, vendor = one_vendor_round(small_scenario)
    agent = retailer if party == "retailer" else vendor
    br = negotiator_for(agent, BestResponseOptions(early_max_iter=20000))  # solved to OSQP's tolerance
    rng = np.random.default_rng(1)
    shape = agent.plan_shape
    for rho in (0.05, 1.0):  # the second query re-solves warm with a new rho
        z = rng.uniform(0, 60, size=shape)
        y = rng.normal(0, 1.0, size=shape)
        x = br.best_response(z, y, rho)
        assert x.shape == shape and np.all(x >= 0)
        ref, _ = _qp_reference(br, z, y, rho)
        # the QP is rho-strongly convex in x: the answer is unique
        np.testing.assert_allclose(x, ref, atol=1e-2 * max(1.0, float(np.abs(ref).max())))
        # the confirmed answer is executable and as good as the reference (up to the tolerance)
        ok = br.confirm(x)
        assert np.all(ok <= np.maximum(x, 0) + 1e-12)
        assert _objective(br, ok, z, y, rho) == pytest.approx(_objective(br, ref, z, y, rho), rel=1e-4, abs=1e-2)


@pytest.mark.parametrize("party", ["retailer", "vendor"])
def test_capped_answers_are_flagged_and_the_work_continues_on_the_next_query(small_scenario, party) -> None:
    """With a small cap on OSQP iterations per query a cold answer is inexact (counted in
    ``stats['inexact']``); asking the same query again warm-starts from it, so answers converge."""
    retailer, vendor = one_vendor_round(small_scenario)
    agent = retailer if party == "retailer" else vendor
    br = negotiator_for(agent, BestResponseOptions(max_iter=10, adaptive=0.0))
    rng = np.random.default_rng(2)
    shape = agent.plan_shape
    z, y, rho = rng.uniform(0, 60, size=shape), rng.normal(0, 1.0, size=shape), 0.05
    ref, _ = _qp_reference(br, z, y, rho)
    tol = 1e-2 * max(1.0, float(np.abs(ref).max()))
    first = br.best_response(z, y, rho)
    assert br.stats["inexact"] == 1 and np.abs(first - ref).max() > tol
    for _ in range(200):
        x = br.best_response(z, y, rho)
        if br.stats["inexact"] < br.stats["queries"]:
            break
    assert br.stats["inexact"] < br.stats["queries"], "a repeated query never converged"
    np.testing.assert_allclose(x, ref, atol=tol)


def test_own_cost_matches_the_agent(small_scenario) -> None:
    retailer, vendor = one_vendor_round(small_scenario)
    plan = retailer.preferred_plan().plan
    assert negotiator_for(retailer).own_cost(plan) == pytest.approx(retailer.evaluate(plan).total, rel=1e-9)
    assert negotiator_for(vendor).own_cost(plan[0]) == pytest.approx(vendor.evaluate(plan[0]).total, rel=1e-9)


def test_rho_must_be_positive(small_scenario) -> None:
    retailer, _ = one_vendor_round(small_scenario)
    br = negotiator_for(retailer)
    z = np.zeros(retailer.public.shape)
    with pytest.raises(ValueError):
        br.best_response(z, z, 0.0)


def test_per_component_penalties(small_scenario) -> None:
    """FloPro-style agents get a penalty per variable; flosim's best responses accept that too."""
    retailer, _ = one_vendor_round(small_scenario)
    br = negotiator_for(retailer, BestResponseOptions(early_max_iter=20000))  # solved to OSQP's tolerance
    rng = np.random.default_rng(2)
    shape = retailer.public.shape
    z, y = rng.uniform(0, 60, size=shape), rng.normal(0, 1.0, size=shape)
    rho = rng.uniform(0.05, 2.0, size=shape)
    x = br.best_response(z, y, rho)
    ref, _ = _qp_reference(br, z, y, rho)
    np.testing.assert_allclose(x, ref, atol=1e-2 * max(1.0, float(np.abs(ref).max())))
    # a constant array is the scalar case
    np.testing.assert_allclose(br.best_response(z, y, np.full(shape, 0.5)), br.best_response(z, y, 0.5), atol=1e-2)


def test_process_negotiator_answers_like_the_in_process_one(small_scenario) -> None:
    from sim.negotiation.best_response import ProcessNegotiator

    _, vendor = one_vendor_round(small_scenario)
    shape = vendor.plan_shape
    z, y = np.full(shape, 20.0), np.zeros(shape)
    with ProcessNegotiator(vendor) as remote:
        far = remote.best_response(z, y, 0.3)
        np.testing.assert_allclose(far, negotiator_for(vendor).best_response(z, y, 0.3), atol=1e-9)
        assert remote.own_cost(remote.confirm(far)) < np.inf
        assert remote.dual_value(y) == pytest.approx(negotiator_for(vendor).dual_value(y), rel=1e-12)
    assert not remote.alive


def test_vendor_plan_is_substituted_out_and_answers_are_unchanged(small_scenario) -> None:
    """The vendor's plan is defined by one equality row per component (x = shipments on its lanes),
    so it leaves the QP (a smaller KKT system); the retailer's plan enters stock balances and stays.
    Either way the answer is the query's unique solution, with scalar and per-component penalties."""
    retailer, vendor = one_vendor_round(small_scenario)
    assert negotiator_for(retailer)._M is None
    exact = BestResponseOptions(early_max_iter=20000)
    sub = negotiator_for(vendor, exact)
    plain = negotiator_for(vendor, BestResponseOptions(early_max_iter=20000, substitute=False))
    assert sub._M is not None and sub._n < plain._n and sub._A.shape[0] < plain._A.shape[0]
    rng = np.random.default_rng(3)
    shape = vendor.plan_shape
    for rho in (0.05, 1.0, rng.uniform(0.1, 2.0, size=shape), rng.uniform(0.1, 2.0, size=shape)):
        z, y = rng.uniform(0, 60, size=shape), rng.normal(0, 1.0, size=shape)
        ref, _ = _qp_reference(plain, z, y, rho)
        tol = 1e-2 * max(1.0, float(np.abs(ref).max()))
        np.testing.assert_allclose(sub.best_response(z, y, rho), ref, atol=tol)
        np.testing.assert_allclose(plain.best_response(z, y, rho), ref, atol=tol)


def test_a_plan_defined_by_fixed_variables_alone_keeps_the_plain_qp() -> None:
    """Substitution would leave OSQP without variables; the plain QP answers instead."""
    from sim.negotiation.best_response import LPBestResponse
    from sim.model.lp import LPBuilder

    b = LPBuilder()
    x = b.add_var((2,))
    w = b.add_var((2,), lb=3.0, ub=3.0)  # fixed, presolved out
    rows = b.new_rows("eq", (2,), 1.0)  # x - w = 1
    b.add_terms("eq", rows, x, 1.0)
    b.add_terms("eq", rows, w, -1.0)
    br = LPBestResponse(b.build(), x, BestResponseOptions(early_max_iter=20000))
    assert br._M is None
    np.testing.assert_allclose(br.best_response(np.zeros(2), np.zeros(2), 1.0), [4.0, 4.0], atol=1e-3)


def test_exact_below_keeps_answers_capped_until_the_tolerance_falls_below_it(small_scenario) -> None:
    """Answers are cut off at ``early_max_iter`` while the adaptive tolerance is at least
    ``exact_below`` (default: ``max_tol``, so only at the loosest tolerance) and solved below it."""
    _, vendor = one_vendor_round(small_scenario)
    default = negotiator_for(vendor, BestResponseOptions())
    lower = negotiator_for(vendor, BestResponseOptions(exact_below=0.01))
    assert default._iteration_cap(0.1) == lower._iteration_cap(0.1) == 100
    assert default._iteration_cap(0.05) == 20000 and lower._iteration_cap(0.05) == 100
    assert lower._iteration_cap(0.005) == 20000


def test_osqp_settings_may_override_flosims_own(small_scenario) -> None:
    """``BestResponseOptions.osqp`` reaches OSQP even for settings flosim sets itself (scaling,
    check_termination); the answer is the same query's solution."""
    _, vendor = one_vendor_round(small_scenario)
    shape = vendor.plan_shape
    z, y = np.full(shape, 20.0), np.zeros(shape)
    exact = dict(early_max_iter=20000, abs_tol=1e-6, rel_tol=1e-8, adaptive=0.0)
    ref = negotiator_for(vendor, BestResponseOptions(**exact)).best_response(z, y, 0.3)
    own = negotiator_for(vendor, BestResponseOptions(**exact, osqp=(("scaling", 0), ("check_termination", 5))))
    np.testing.assert_allclose(own.best_response(z, y, 0.3), ref, atol=1e-3)
    assert (own._solver.settings.scaling, own._solver.settings.check_termination) == (0, 5)


def test_slacks_leave_the_qp_and_the_answer_stays(small_scenario) -> None:
    """The retailer's lost sales are the slack of its demand rows: eliminated, the QP has that many
    fewer variables, and the answer is the full QP's (the Clarabel reference)."""
    retailer, _ = one_vendor_round(small_scenario)
    solved = BestResponseOptions(early_max_iter=20000, abs_tol=1e-6, rel_tol=1e-8, adaptive=0.0)
    kept = negotiator_for(retailer, solved.model_copy(update={"slacks": False}))
    cut = negotiator_for(retailer, solved)
    H, R, K = retailer.public.horizon, retailer.public.R, retailer.public.K
    assert kept._n - cut._n == H * R * K
    rng = np.random.default_rng(3)
    z, y = rng.uniform(0, 60, retailer.plan_shape), rng.normal(0, 1.0, retailer.plan_shape)
    ref, _ = _qp_reference(cut, z, y, 0.05)
    np.testing.assert_allclose(cut.best_response(z, y, 0.05), ref, atol=1e-3 * max(1.0, float(np.abs(ref).max())))


def test_a_bounded_slack_becomes_a_range_row() -> None:
    """A slack with bounds ``[1, 3]`` on a row ``x + s - v = 5``: the row becomes ``2 <= x - v <= 4``, and
    its cost moves onto ``x`` and ``v``; the answer is the reference's."""
    from sim.model.lp import LPBuilder
    from sim.negotiation.best_response import LPBestResponse

    b = LPBuilder()
    x = b.add_var((2,))
    s = b.add_var((2,), lb=np.array([1.0, 0.0]), ub=np.array([3.0, np.inf]))
    v = b.add_var((2,), ub=np.array([4.0, 4.0]))
    b.add_cost(s, np.array([2.0, -1.0]), ("t", "s", 0))
    b.add_cost(v, np.array([1.0, 3.0]), ("t", "v", 0))
    b.add_cost(x, np.array([-4.0, -2.0]), ("t", "x", 0))
    row = b.new_rows("eq", (2,), np.array([5.0, 1.0]))
    b.add_terms("eq", row, x, 1.0)
    b.add_terms("eq", row, s, np.array([1.0, -1.0]))
    b.add_terms("eq", row, v, -1.0)
    lp = b.build()
    solved = BestResponseOptions(early_max_iter=20000, abs_tol=1e-8, rel_tol=1e-10, adaptive=0.0)
    cut, kept = LPBestResponse(lp, x, solved), LPBestResponse(lp, x, solved.model_copy(update={"slacks": False}))
    assert kept._n - cut._n == 2
    for z, y in ((np.array([0.0, 0.0]), np.zeros(2)), (np.array([9.0, 3.0]), np.array([1.0, -2.0]))):
        ref, _ = _qp_reference(kept, z, y, 0.5)
        np.testing.assert_allclose(cut.best_response(z, y, 0.5), ref, atol=1e-5)
        np.testing.assert_allclose(kept.best_response(z, y, 0.5), ref, atol=1e-5)


def test_capped_answers_check_convergence_twice(small_scenario) -> None:
    """An answer capped early checks OSQP's convergence every ``early_max_iter // 2`` iterations, a
    solved one every 10 (a check costs about an iteration and a half of the retailer's QP)."""
    retailer, _ = one_vendor_round(small_scenario)
    neg = negotiator_for(retailer, BestResponseOptions(early_max_iter=60))
    z, y = np.full(retailer.plan_shape, 20.0), np.zeros(retailer.plan_shape)
    neg.best_response(z, y, 0.1)  # the first query is capped
    assert neg._solver.settings.check_termination == 30 and neg._solver.settings.max_iter == 60
    for _ in range(3):  # the same query again: no move, so the tolerance is tight and answers are solved
        neg.best_response(z, y, 0.1)
    assert neg._solver.settings.max_iter == 20000 and neg._solver.settings.check_termination == 10


def test_a_users_check_termination_outlasts_the_adaptive_tolerance(small_scenario) -> None:
    """``osqp=(("check_termination", n),)`` is the user's for every answer: a change of the adaptive
    tolerance (capped early, then solved) resets flosim's own spacing of the checks, not the user's."""
    retailer, _ = one_vendor_round(small_scenario)
    neg = negotiator_for(retailer, BestResponseOptions(early_max_iter=60, osqp=(("check_termination", 7),)))
    z, y = np.full(retailer.plan_shape, 20.0), np.zeros(retailer.plan_shape)
    neg.best_response(z, y, 0.1)
    assert neg._solver.settings.check_termination == 7 and neg._solver.settings.max_iter == 60
    for _ in range(3):  # no move: the tolerance tightens, and the answers are solved
        neg.best_response(z, y, 0.1)
    assert neg._solver.settings.max_iter == 20000 and neg._solver.settings.check_termination == 7


def test_slacks_beside_a_substituted_plan_and_two_slacks_in_a_row() -> None:
    """The plan substituted out (``x = w1 + w2``) and slacks in rows with the plan's defining
    variables: a slack free below with coefficient -2, one bounded on both sides, and a row with two
    candidate slacks (one leaves, the other stays a variable). The answers are the full QP's."""
    from sim.model.lp import LPBuilder
    from sim.negotiation.best_response import LPBestResponse

    b = LPBuilder()
    x = b.add_var((3,))
    w = b.add_var((6,), ub=np.array([np.inf, 8.0, np.inf, np.inf, 8.0, np.inf]))
    s = b.add_var((3,), lb=np.array([-np.inf, 1.0, 0.0]), ub=np.array([np.inf, 12.0, np.inf]))
    o = b.add_var((3,), ub=10.0)
    b.add_cost(w, np.array([1.0, -0.5, 2.0, 0.3, 1.5, -1.0]), ("t", "w", 0))
    b.add_cost(s, np.array([0.7, -1.2, 2.5]), ("t", "s", 0))
    b.add_cost(o, np.array([-0.4, 0.9, 1.1]), ("t", "o", 0))
    b.add_cost(x, np.array([0.2, -0.3, 0.1]), ("t", "x", 0))
    d = b.new_rows("eq", (3,), 0.0)  # x = w[:3] + w[3:]
    b.add_terms("eq", d, x, 1.0)
    b.add_terms("eq", d, w[:3], -1.0)
    b.add_terms("eq", d, w[3:], -1.0)
    r = b.new_rows("eq", (3,), np.array([4.0, 2.5, 5.0]))  # w[:3] + a s - o = r: o is a candidate too
    b.add_terms("eq", r, w[:3], 1.0)
    b.add_terms("eq", r, s, np.array([-2.0, 1.0, -1.0]))
    b.add_terms("eq", r, o, -1.0)
    lp = b.build()
    solved = BestResponseOptions(early_max_iter=200000, max_iter=200000, abs_tol=1e-9, rel_tol=1e-11, adaptive=0.0)
    cut, kept = LPBestResponse(lp, x, solved), LPBestResponse(lp, x, solved.model_copy(update={"slacks": False}))
    assert cut._M is not None and kept._M is not None and kept._n - cut._n == 3  # one slack per row
    rng = np.random.default_rng(5)
    for rho in (0.7, rng.uniform(0.2, 2.0, 3)):
        z, y = rng.uniform(0, 8, 3), rng.normal(0, 1, 3)
        ref, _ = _qp_reference(kept, z, y, rho)
        np.testing.assert_allclose(cut.best_response(z, y, rho), ref, atol=1e-5)
        np.testing.assert_allclose(kept.best_response(z, y, rho), ref, atol=1e-5)
