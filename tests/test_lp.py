"""The LP layer: both HiGHS paths of :func:`sim.model.lp.solve_lp` give the same optimum."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from conftest import one_vendor_round, retailer_lp
from dataclasses import replace

from sim.model.lp import InfeasibleError, LPBuilder, LPModel, solve_lp


def _joint_lp(scenario):
    retailer, vendor = one_vendor_round(scenario)
    b = LPBuilder()
    x = b.add_var(retailer.public.shape)
    retailer.add_block(b, x)
    vendor.add_block(b, x[vendor.index])  # the vendor's block of the whole plan
    return b.build()


def test_interior_point_matches_simplex(default_scenario) -> None:
    lp = _joint_lp(default_scenario)
    simplex = solve_lp(lp, method="highs")
    ipm = solve_lp(lp, method="ipm")
    assert ipm.ok and simplex.ok and ipm.method == "ipm"
    assert ipm.objective == pytest.approx(simplex.objective, rel=1e-8)
    # an interior solution is feasible to the solver's tolerance
    v = ipm.x
    assert np.abs(lp.A_eq @ v - lp.b_eq).max() <= 1e-5 * max(1.0, np.abs(lp.b_eq).max())
    assert (lp.A_ub @ v - lp.b_ub).max() <= 1e-5 * max(1.0, np.abs(lp.b_ub).max())


def test_interior_point_prints_nothing_on_stdout() -> None:
    """highspy prints a banner from C on its first solver of a process; it must not reach stdout,
    where it would corrupt ``--json`` output. A fresh process, so no earlier test printed it."""
    code = (
        "from experiments.benchmarks import benchmark_scenario, planning_round\n"
        "from sim.model.lp import LPBuilder, solve_lp\n"
        "r, vendors = planning_round(benchmark_scenario('small'))\n"
        "(v,) = vendors.values()\n"
        "b = LPBuilder(); x = b.add_var(r.public.shape); r.add_block(b, x); v.add_block(b, x[v.index])\n"
        "assert solve_lp(b.build(), method='highs').ok\n"  # scipy's HiGHS build first: highspy's banner still hidden
        "assert solve_lp(b.build(), method='ipm').ok\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == ""


def test_auto_uses_simplex_on_small_problems(default_scenario) -> None:
    lp = _joint_lp(default_scenario)
    auto = solve_lp(lp)
    assert auto.method == "highs" and np.array_equal(auto.x, solve_lp(lp, method="highs").x)


def test_unknown_method_is_rejected(default_scenario) -> None:
    with pytest.raises(ValueError, match="unknown LP method"):
        solve_lp(_joint_lp(default_scenario), method="simplexx")


def test_direct_highs_gives_linprogs_answer(default_scenario) -> None:
    """The direct path runs the HiGHS build and options linprog runs: the same vertex, not just the
    same optimum (another vertex would move costs between weeks)."""
    lp = _joint_lp(default_scenario)
    direct, through_scipy = solve_lp(lp, method="highs"), solve_lp(lp, method="linprog")
    assert direct.ok and through_scipy.ok and through_scipy.method == "highs"
    assert np.array_equal(direct.x, through_scipy.x)
    assert direct.cost_breakdown() == through_scipy.cost_breakdown()


def test_failures_are_reported_the_same_way_on_both_paths() -> None:
    b = LPBuilder()
    v = b.add_var((2,))
    rows = b.new_rows("ub", (1,), -1.0)  # v0 + v1 <= -1 with v >= 0: infeasible
    b.add_terms("ub", rows, v, 1.0)
    lp = b.build()
    for method in ("highs", "linprog"):
        sol = solve_lp(lp, method=method, raise_on_fail=False)
        assert not sol.ok and "nfeasible" in sol.status and np.isnan(sol.objective)
    with pytest.raises(InfeasibleError, match="nfeasible"):
        solve_lp(lp)
    b = LPBuilder()
    v = b.add_var((1,), lb=-np.inf)
    b.add_cost(v, 1.0, ("p", "c", 0))
    unbounded = solve_lp(b.build(), raise_on_fail=False)
    assert not unbounded.ok and "nbounded" in unbounded.status


def _variants(lp, x, rng, count=6):
    """``lp`` with other bounds on the first week, other right-hand sides and other costs."""
    out = []
    for _ in range(count):
        po = rng.uniform(0.0, 50.0, size=x[:, 0].shape)
        v = lp.with_bounds(x[:, 0], po, po)
        out.append(replace(v, b_eq=lp.b_eq * rng.uniform(0.8, 1.2, size=lp.b_eq.size),
                           c=lp.c * rng.uniform(0.9, 1.1, size=lp.c.size)))
    return out


def test_a_kept_model_solved_from_scratch_gives_solve_lps_answers(default_scenario) -> None:
    lp, x = retailer_lp(default_scenario)
    model = LPModel(lp, warm=False)
    for v in _variants(lp, x, np.random.default_rng(3)):
        kept, fresh = model.solve(v), solve_lp(v)
        assert np.array_equal(kept.x, fresh.x) and kept.objective == fresh.objective
    assert model.solves == 6


def test_a_warm_started_model_finds_the_same_optimum(default_scenario) -> None:
    lp, x = retailer_lp(default_scenario)
    model = LPModel(lp)
    for v in _variants(lp, x, np.random.default_rng(4)):
        kept, fresh = model.solve(v), solve_lp(v)
        assert kept.objective == pytest.approx(fresh.objective, rel=1e-9)
        assert np.abs(v.A_eq @ kept.x - v.b_eq).max() <= 1e-6 * max(1.0, np.abs(v.b_eq).max())
        assert np.allclose(kept.x[x[:, 0].ravel()], v.lb[x[:, 0].ravel()])
    with pytest.raises(ValueError, match="matrices"):
        model.solve(_joint_lp(default_scenario))


def test_solves_from_a_reference_basis_do_not_depend_on_their_order(default_scenario) -> None:
    """``solve(start=reference)``: each answer is a function of the LP and the reference alone (bit for
    bit, in any order, on a model with any history), and the same optimum as a solve from scratch."""
    lp, x = retailer_lp(default_scenario)
    variants = _variants(lp, x, np.random.default_rng(5), count=6)
    model = LPModel(lp, warm=False)
    reference = model.solve(keep_basis=True).basis
    assert reference is not None and reference.valid
    assert model.basis().valid
    forward = [model.solve(v, start=reference) for v in variants]
    other = LPModel(lp)  # a warm model with another history: the reversed queries after unrelated ones
    other.solve(variants[3])
    backward = [other.solve(v, start=reference) for v in reversed(variants)][::-1]
    for v, a, b in zip(variants, forward, backward, strict=True):
        assert np.array_equal(a.x, b.x) and a.objective == b.objective
        fresh = solve_lp(v)
        assert a.objective == pytest.approx(fresh.objective, rel=1e-9, abs=1e-7)
        assert np.abs(v.A_eq @ a.x - v.b_eq).max() <= 1e-6 * max(1.0, np.abs(v.b_eq).max())
        assert np.all(v.A_ub @ a.x <= v.b_ub + 1e-6 * max(1.0, np.abs(v.b_ub[np.isfinite(v.b_ub)]).max(initial=1.0)))
    # the reference itself is not changed by the solves started from it
    again = model.solve(variants[0], start=reference)
    assert np.array_equal(again.x, forward[0].x)


def test_a_basis_is_refused_before_any_solve(default_scenario) -> None:
    lp, _ = retailer_lp(default_scenario)
    with pytest.raises(ValueError, match="no valid basis"):
        LPModel(lp).basis()
