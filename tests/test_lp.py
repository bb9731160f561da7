"""The LP layer: both HiGHS paths of :func:`sim.model.lp.solve_lp` give the same optimum."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from conftest import one_vendor_round
from sim.model.lp import LPBuilder, solve_lp


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
