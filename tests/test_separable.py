"""An LP that falls apart into pieces, solved group by group (:mod:`sim.model.separable`), has the
optimum of the whole LP; an LP that does not is solved whole, exactly as before."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp

from conftest import one_vendor_round, retailer_lp
from sim.model import separable
from sim.model.lp import InfeasibleError, LinearProgram, LPBuilder, LPModel, solve_lp
from sim.model.separable import SeparableLP, pieces
from sim.negotiation.best_response import BestResponseError, LPBestResponse


def _vendor_lp(scenario):
    retailer, vendor = one_vendor_round(scenario)
    b = LPBuilder()
    x = b.add_var(retailer.public.shape)
    vendor.add_block(b, x[vendor.index])
    return b.build(), x[vendor.index]


def test_pieces_are_the_connected_parts_of_the_rows_and_columns(default_scenario) -> None:
    lp, x = retailer_lp(default_scenario)
    piece = pieces(lp)
    assert piece.shape == (lp.n,) and piece.min() == 0
    # no row links two pieces
    for A in (lp.A_eq.tocsr(), lp.A_ub.tocsr()):
        for r in range(A.shape[0]):
            cols = A.indices[A.indptr[r]:A.indptr[r + 1]]
            assert np.unique(piece[cols]).size <= 1
    # the retailer's LP falls apart (by product at least); the vendor's is held together by its capacity rows
    assert np.unique(piece).size > 1
    vlp, _ = _vendor_lp(default_scenario)
    vp = pieces(vlp)
    touched = np.unique(np.concatenate([vlp.A_eq.tocoo().col, vlp.A_ub.tocoo().col]))
    assert np.unique(vp[touched]).size == 1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_split_solve_has_the_whole_lps_optimum(default_scenario, monkeypatch, seed) -> None:
    """Forced to split (threshold 0), random prices on the plan: the same optimal value as one solve
    of the whole LP, a solution feasible for the whole LP, and a second solve (other prices, warm
    from each group's basis) that agrees too."""
    monkeypatch.setattr(separable, "SPLIT_MIN_VARIABLES", 0)
    lp, x = retailer_lp(default_scenario)
    model = SeparableLP(lp, max_groups=4)
    assert model.groups == 4
    rng = np.random.default_rng(seed)
    for _ in range(2):
        c = lp.c.copy()
        c[x.ravel()] += rng.normal(0.0, 2.0, x.size)
        priced = replace(lp, c=c)
        whole = solve_lp(priced)
        split = model.solve(priced)
        assert split.ok and whole.ok
        assert split.objective == pytest.approx(whole.objective, rel=1e-9, abs=1e-6)
        v = split.x
        assert np.allclose(lp.A_eq @ v, lp.b_eq, atol=1e-6)
        assert np.all(lp.A_ub @ v <= lp.b_ub + 1e-6)
        assert np.all(v >= lp.lb - 1e-9) and np.all(v <= lp.ub + 1e-9)
        assert priced.objective(v) == pytest.approx(split.objective)


def test_split_solve_reports_an_infeasible_group(default_scenario, monkeypatch) -> None:
    monkeypatch.setattr(separable, "SPLIT_MIN_VARIABLES", 0)
    lp, x = retailer_lp(default_scenario)
    model = SeparableLP(lp, max_groups=3)
    bad = lp.with_bounds(np.arange(lp.n), lp.lb, np.where(np.isfinite(lp.lb), lp.lb - 1.0, lp.ub))
    sol = model.solve(bad, raise_on_fail=False)
    assert not sol.ok and np.isnan(sol.objective)


def test_small_or_connected_lps_are_solved_whole_as_before(default_scenario) -> None:
    """Below the size threshold (the default scenario's LPs are small), answers are LPModel's bit for bit."""
    lp, x = retailer_lp(default_scenario)
    model = SeparableLP(lp)
    assert model.groups == 1
    c = lp.c.copy()
    c[x.ravel()] += 0.5
    a, b = model.solve(replace(lp, c=c)), LPModel(lp).solve(replace(lp, c=c))
    assert np.array_equal(a.x, b.x) and a.objective == b.objective


def test_other_matrices_are_refused(default_scenario) -> None:
    lp, _ = retailer_lp(default_scenario)
    other, _ = retailer_lp(default_scenario)
    with pytest.raises(ValueError, match="matrices are not the model's"):
        SeparableLP(lp).solve(other)


def test_an_infeasible_group_decides_over_an_unbounded_one(monkeypatch) -> None:
    """An LP with one piece unbounded and another infeasible is infeasible, as a solve of the whole LP
    says, whichever group is solved first (here the unbounded piece, the larger, is group 0); the
    certificate's dual value then raises instead of returning -inf."""
    monkeypatch.setattr(separable, "SPLIT_MIN_VARIABLES", 0)
    # piece 0 (x0, x1): min -x0 - x1 s.t. x0 - x1 <= 1, unbounded; piece 1 (x2): x2 <= -1, x2 >= 0, infeasible
    lp = LinearProgram(c=np.array([-1.0, -1.0, 0.0]), A_eq=sp.csr_matrix((0, 3)), b_eq=np.zeros(0),
                       A_ub=sp.csr_matrix(np.array([[1.0, -1.0, 0.0], [0.0, 0.0, 1.0]])), b_ub=np.array([1.0, -1.0]),
                       lb=np.zeros(3), ub=np.full(3, np.inf))
    assert solve_lp(lp, raise_on_fail=False).status == "Infeasible"
    model = SeparableLP(lp)
    assert model.groups == 2
    assert model.solve(raise_on_fail=False).status == "Infeasible"
    with pytest.raises(InfeasibleError, match="Infeasible"):
        SeparableLP(lp).solve()
    for warm in (False, True):
        with pytest.raises(BestResponseError, match="Infeasible"):
            LPBestResponse(lp, np.array([0, 1]), None, warm_checks=warm).dual_value(np.zeros(2))
    # an unbounded piece beside feasible ones: the whole LP is unbounded, the dual value -inf
    bounded = replace(lp, b_ub=np.array([1.0, 1.0]))
    assert model.solve(bounded, raise_on_fail=False).status == "Unbounded"
    assert LPBestResponse(bounded, np.array([0, 1]), None).dual_value(np.zeros(2)) == -np.inf


def test_a_split_made_once_serves_every_model_of_the_lp(default_scenario, monkeypatch) -> None:
    """A :class:`Split` handed in gives the answers of one made inside; a negotiator makes its split at
    its first check and keeps it (the pieces of its LP do not change between checks)."""
    from sim.model.separable import Split
    from sim.negotiation.best_response import BestResponseOptions, negotiator_for

    monkeypatch.setattr(separable, "SPLIT_MIN_VARIABLES", 0)
    lp, x = retailer_lp(default_scenario)
    split = Split.of(lp, max_groups=4)
    assert len(split.parts) == 4
    c = lp.c.copy()
    c[x.ravel()] += 1.5
    given, made = SeparableLP(lp, split=split).solve(replace(lp, c=c)), SeparableLP(lp, max_groups=4).solve(replace(lp, c=c))
    assert np.array_equal(given.x, made.x) and given.objective == made.objective
    retailer, _ = one_vendor_round(default_scenario)
    neg = negotiator_for(retailer, BestResponseOptions(parts=1))  # one OSQP problem, whose checks split
    prices = np.full(neg.shape, 0.3)
    first = neg.dual_value(prices)
    kept = neg._split
    assert kept is not None and len(kept.parts) > 1
    assert neg.dual_value(prices) == first and neg._split is kept
