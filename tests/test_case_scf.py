"""Supply-chain formation: solver vs brute force, DSIC truthfulness, paper arithmetic, dAGVA, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from experiments.cases import scf
from sim.model.errors import FlosimError


def _random_chain(rng: np.random.Generator, n: int) -> scf.SupplyChain:
    coefs = np.column_stack([
        rng.uniform(10, 60, n),       # a0
        rng.uniform(-15, 15, n),      # a1
        rng.uniform(-60, 10, n),      # a2
        rng.uniform(-25, 25, n),      # a3: the bilinear term, either sign
        rng.uniform(0, 40, n),        # a4 >= 0
    ])
    mu_lo = rng.uniform(0.5, 1.5, n)
    mu_hi = mu_lo + rng.uniform(0.5, 2.0, n)
    sig = np.column_stack([np.full(n, 0.01), rng.uniform(0.5, 1.5, n)])
    # Scale the mean bounds so that the midpoint of the total mean is the target tau = 6.
    scale = 6.0 / ((mu_lo + mu_hi).sum() / 2)
    return scf.SupplyChain(coefs, np.column_stack([mu_lo, mu_hi]) * scale, sig)


@pytest.mark.parametrize("seed", range(6))
def test_solver_never_worse_than_brute_force_and_feasible(seed: int) -> None:
    rng = np.random.default_rng(seed)
    chain = _random_chain(rng, 2 + seed % 2)
    alloc = scf.solve(chain, grid_points=201)
    assert scf.is_feasible(chain, alloc.mu, alloc.sigma)
    assert alloc.costs == pytest.approx(chain.costs(alloc.mu, alloc.sigma))
    brute = scf.brute_force(chain, mu_points=9 if chain.n == 3 else 25, sigma_points=15 if chain.n == 3 else 41)
    assert alloc.total <= brute.total + 1e-9
    # ... and close to it: the brute-force grid is coarse but not far off.
    assert brute.total - alloc.total <= 0.05 * abs(brute.total) + 1.0


def test_solver_on_a_hand_solved_instance() -> None:
    # One echelon, cost -mu - 10 sigma: push sigma to the C_p cap T/(3p) = 2/5.4 and mu to the C_pk edge
    # U - 3 q sigma = 8 - 3.24 * 0.37037 = 6.8. Total = -6.8 - 3.7037 = -10.5037.
    chain = scf.SupplyChain(np.array([[0.0, -1.0, -10.0, 0.0, 0.0]]), [[0.0, 10.0]], [[0.0, 5.0]])
    alloc = scf.solve(chain)
    assert alloc.sigma[0] == pytest.approx(2 / 5.4, abs=1e-9)
    assert alloc.mu[0] == pytest.approx(8 - 1.08 * 2 / 1.8, abs=1e-9)
    assert alloc.total == pytest.approx(-(8 - 1.2) - 10 * 2 / 5.4, abs=1e-8)
    assert alloc.cp == pytest.approx(1.8) and alloc.cpk == pytest.approx(1.08)


def test_paper_case_solver_matches_brute_force_fine_grid() -> None:
    chain = scf.paper_chain()
    alloc = scf.solve(chain)
    brute = scf.brute_force(chain, mu_points=11, sigma_points=21)
    assert alloc.total <= brute.total + 1e-9
    assert brute.total - alloc.total < 0.01 * alloc.total
    assert scf.is_feasible(chain, alloc.mu, alloc.sigma)


def test_solver_rejects_concave_reports_and_infeasible_chains() -> None:
    with pytest.raises(FlosimError, match="a4"):
        scf.solve(scf.SupplyChain(np.array([[0, 0, 0, 0, -1.0]]), [[5, 7]], [[0.01, 1]]))
    with pytest.raises(FlosimError, match="no \\(mu, sigma\\)"):
        scf.solve(scf.SupplyChain(np.array([[0, 0, 0, 0, 1.0]]), [[9, 10]], [[0.01, 1]]))


def test_table5_dsic_column_follows_from_table4() -> None:
    rep = scf.paper_reproduction()
    assert rep["table5_dsic_from_table4"] == pytest.approx([253.4, 164.4, 115.8], abs=0.05)
    assert rep["dsic_matches"]
    # The BIC columns do not follow from eq. (20) and Table 4 ...
    assert not any(rep["bic_matches"].values())
    # ... although they are proportional to q, as eq. (20) implies.
    implied = np.array(list(rep["bic_published_over_q"].values()))
    assert np.ptp(implied, axis=0).max() < 0.5


def test_payment_formulas() -> None:
    w = np.array([10.0, 20.0, 30.0])
    assert scf.dsic_payments(w, 100.0) == pytest.approx([50.0, 60.0, 70.0])
    assert scf.eq20_payments(w, 0.5) == pytest.approx([25.0, 20.0, 15.0])


def test_shape_constrained_fit_respects_assumptions_where_lstsq_does_not() -> None:
    chain = scf.paper_chain()
    for i in range(chain.n):
        bad = scf.assumption4_violations(chain.coefs[i], tuple(chain.mu_bounds[i]), tuple(chain.sigma_bounds[i]))
        assert not [b for b in bad if "mu" not in b]  # only monotonicity in mu may fail (echelon 1's data)
    raw = scf.fit_lstsq(scf.PAPER_PROVIDERS[0])
    assert scf.assumption4_violations(raw, tuple(chain.mu_bounds[0]), tuple(chain.sigma_bounds[0]))


def test_dsic_is_truthful_on_sampled_misreports_and_eq20_is_not() -> None:
    chain = scf.paper_chain()
    dsic = scf.misreport_audit(chain, "dsic", np.random.default_rng(1), samples=6, grid_points=101)
    assert max(dsic["max_gain"]) <= 1e-6
    eq20 = scf.misreport_audit(chain, "eq20", np.random.default_rng(1), samples=6, grid_points=101, q=1.0)
    assert max(eq20["max_gain"]) > 1.0


def test_dagva_on_the_chain_is_budget_balanced_and_bic() -> None:
    chain = scf.paper_chain()
    dg = scf.dagva_scf(chain, scales=(1.0, 1.3), prior=(0.6, 0.4), grid_points=101)
    mech = dg.mechanism
    assert np.abs(mech.transfers.sum(axis=-1)).max() <= 1e-9
    assert mech.bic_violation() <= 1e-9
    pay = dg.expected_payments()
    # With participation imposed the Bayesian rule is not cheaper than the dominant-strategy one.
    assert pay["dagva_interim_ir"] == pytest.approx(pay["dsic_interim_ir"], rel=1e-9)
    assert pay["dsic_ex_post_ir"] >= pay["dsic_interim_ir"] - 1e-9
    assert pay["dagva_interim_ir"] >= pay["expected_optimal_cost"] - 1e-9


def test_cli_scf_json_and_bad_input(tmp_path, capsys) -> None:
    from experiments.cli import main

    assert main(["case", "scf", "--fit", "nonsense"]) == 2
    assert "--fit" in capsys.readouterr().err
    assert main(["case", "scf", "--samples", "1", "--type-scales", "1.0,1.2", "--type-prior", "0.5,0.5",
                 "--json", "--out", str(tmp_path)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["table5_dsic_from_table4"] == pytest.approx([253.4, 164.4, 115.8], abs=0.05)
    assert doc["statements"]["reproduces"] and doc["statements"]["does_not_reproduce"]
    assert (tmp_path / "scf_payments.png").stat().st_size > 0
