"""The ``cpp`` policy, ``flosim plan`` and ``flosim bench``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from experiments.cli import main
from policies.cpp import CPPPolicy, negotiate_efficient_plan
from sim.parties.oracle import joint_plan
from sim.model.errors import FlosimError
from sim.world import planning_context


#: a source bug on this branch (see /work/notes/issue-15-ctest.md): the test is right, the command is not


@pytest.fixture(scope="module")
def ctx(default_scenario):
    return planning_context(default_scenario, week=0)


def test_cpp_policy_commits_to_a_near_first_best_plan(ctx) -> None:
    d = CPPPolicy().decide(ctx)
    assert d.committed and all(v == 0.0 for v in d.transfers.values()) and d.balance == 0.0  # no transfer
    assert d.diagnostics["converged"] and d.diagnostics["status"] == "converged"
    for key in ("iterations", "primal_residual", "wall_s"):
        assert key in d.diagnostics
    social = d.planned["retailer"] + d.planned["vendor"]
    best = joint_plan(ctx.retailer, ctx.vendor).social_cost
    assert (social - best) / abs(best) <= 1e-3
    assert d.plan.shape == ctx.public.shape and np.all(d.plan >= 0)


def test_unconverged_week_falls_back_to_jit(ctx) -> None:
    d = CPPPolicy(max_iter=2, rho=1e6, adaptive_rho=False).decide(ctx)
    assert not d.committed
    assert d.diagnostics["fallback"] == "jit" and d.diagnostics["converged"] is False
    np.testing.assert_allclose(d.plan, ctx.retailer.preferred_plan().plan)


def test_shared_negotiation_step(ctx) -> None:
    """A tolerance ten times tighter than the default: ADMM's slow tail on LPs takes about 500
    rounds here (38 at the default), so the round cap is raised with it; the plan gets closer to
    first best (gap 1.2e-4 measured, 4.5e-4 at the default tolerance)."""
    plan, result = negotiate_efficient_plan(ctx, {"eps_rel": 1e-4, "max_iter": 3000})
    assert result.converged and plan.shape == ctx.public.shape
    best = joint_plan(ctx.retailer, ctx.vendor).social_cost
    social = ctx.retailer.evaluate(plan).total + ctx.vendor.evaluate(plan[0]).total
    assert (social - best) / best <= 3e-4


def test_bad_options_are_user_errors() -> None:
    with pytest.raises(FlosimError):
        CPPPolicy(max_iterations=5)
    with pytest.raises(FlosimError):
        CPPPolicy(fallback="maybe")
    with pytest.raises(FlosimError, match="certify"):
        CPPPolicy(certify="yes")


def test_flosim_plan_json(capsys) -> None:
    assert main(["plan", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("policy", "social_cost", "first_best_social_cost", "gap", "iterations", "converged", "transfer", "wall_s", "planned", "plan"):
        assert key in out
    assert out["policy"] == "cpp" and out["converged"] is True and out["gap"] <= 1e-3
    assert np.asarray(out["plan"]).shape == tuple(out["shape"])


def test_flosim_bench_small_json(capsys) -> None:
    assert main(["bench", "--sizes", "small", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["size"] for r in rows] == ["small"]
    for key in ("size", "n_public", "central_s", "cpp_s", "ratio", "iterations", "gap"):
        assert key in rows[0]
    assert rows[0]["n_public"] == 54 and rows[0]["gap"] <= 1e-3
    assert rows[0]["gap"] - 1e-9 <= rows[0]["certified_gap"] <= 1e-2 and rows[0]["certify_s"] >= 0


def test_flosim_bench_rejects_unknown_size(capsys) -> None:
    assert main(["bench", "--sizes", "huge"]) == 2
    assert "huge" in capsys.readouterr().err
    assert main(["bench", "--sizes", "0x5x5x2"]) == 2
    assert "0x5x5x2" in capsys.readouterr().err


def test_flosim_bench_builds_the_network_at_any_size(capsys) -> None:
    """``PxFxRxO``: the benchmark network with P products, F FCs, R regions and O origins."""
    assert main(["bench", "--sizes", "12x3x2x2", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["size"] == "12x3x2x2" and row["n_public"] == 6 * 3 * 12
    assert row["status"] == "converged" and row["gap"] <= 1e-3
    assert row["gap"] - 1e-9 <= row["certified_gap"] <= 1e-2


def test_next_week_starts_from_last_weeks_prices(default_scenario) -> None:
    policy = CPPPolicy()
    first = policy.decide(planning_context(default_scenario, week=0))
    ctx1 = planning_context(default_scenario, week=1)
    warm = policy.decide(ctx1)
    cold = CPPPolicy(warm_start=False).decide(ctx1)
    assert first.diagnostics["warm_start"] is False and warm.diagnostics["warm_start"] is True
    assert warm.committed and cold.committed
    best = joint_plan(ctx1.retailer, ctx1.vendor).social_cost
    for d in (warm, cold):
        assert (d.planned["retailer"] + d.planned["vendor"] - best) / abs(best) <= 1e-3


def test_answer_settings_are_validated() -> None:
    from policies.cpp import answer_options

    assert answer_options({"exact_below": 0, "early_max_iter": 50}).exact_below == 0.0
    assert answer_options({"abs_tol": "1e-4"}).abs_tol == 1e-4  # YAML 1.1 reads 1e-4 as a string
    assert answer_options(None) is None
    for bad, match in (({"exact_blow": 0}, "unknown answer setting 'exact_blow'"),
                       ({"early_max_iter": 2.5}, "early_max_iter = 2.5: .*valid integer"),
                       ({"abs_tol": float("nan")}, "abs_tol = nan: .*finite number"),
                       ({"abs_tol": 0}, "abs_tol = 0: .*greater than 0"),
                       ({"max_iter": 0}, "max_iter = 0: .*greater than or equal to 1"),
                       ({"exact_below": -1e-3}, "exact_below = -0.001: .*greater than or equal to 0"),
                       ({"polish": 1}, "polish = 1: .*valid boolean"),
                       ({"abs_tol": "tight"}, "abs_tol = 'tight': .*valid number"),
                       ({"abs_tol": True}, "abs_tol = True: .*not true/false"),
                       ({"early_max_iter": False}, "early_max_iter = False: .*not true/false"),
                       ({True: 1}, "unknown answer setting True"),
                       ({"osqp": []}, "only be set from Python")):
        with pytest.raises(FlosimError, match=match):
            answer_options(bad)
    with pytest.raises(FlosimError, match="answers must be a mapping"):
        CPPPolicy(answers=[1])


def test_admm_options_are_validated() -> None:
    from policies.cpp import admm_options

    assert admm_options({"eps_rel": "3e-3", "time_limit": 600}).eps_rel == 3e-3  # text from YAML 1.1 or --set
    assert admm_options({"anderson": True}).anderson is True
    for bad, match in (({"time_limit": True}, "time_limit: .*not true/false"),  # YAML reads yes/on as true
                       ({"max_iter": True}, "max_iter: .*not true/false"),
                       ({"time_limit": 0}, "time_limit: .*greater than 0"),
                       ({"eps_rell": 1}, "eps_rell")):
        with pytest.raises(FlosimError, match=match):
            admm_options(bad)


@pytest.mark.parametrize("processes", [False, True])
def test_answer_settings_reach_the_agents(ctx, processes) -> None:
    """One OSQP iteration per answer cannot reach agreement in 150 rounds; the defaults do (certified
    within the default gap_tol of 1e-3 after 48 rounds, bound 8.0e-4, measured)."""
    starved = {"early_max_iter": 1, "max_iter": 1}
    _, result = negotiate_efficient_plan(ctx, {"max_iter": 150}, processes=processes, answers=starved)
    assert result.status == "iteration_cap"
    _, result = negotiate_efficient_plan(ctx, {"max_iter": 150}, processes=processes)
    assert result.converged


def test_flosim_bench_options_are_checked_before_anything_runs(capsys, monkeypatch) -> None:
    import experiments.benchmarks as benchmarks

    def no_scenario(size):
        raise AssertionError("a scenario was built before the options were checked")

    with monkeypatch.context() as m:
        m.setattr(benchmarks, "benchmark_scenario", no_scenario)
        for argv, needle in ((["--answer", "exact_blow=0"], "exact_blow"), (["--set", "eps_rell=1"], "eps_rell"),
                             (["--answer", "abs_tol=nan"], "abs_tol"), (["--answer", "abs_tol=0"], "abs_tol"),
                             (["--set", "rho=inf"], "rho"), (["--answer", "osqp=1"], "only be set from Python")):
            assert main(["bench", "--sizes", "small", *argv]) == 2
            assert needle in capsys.readouterr().err


def test_flosim_bench_options_reach_the_negotiation(capsys) -> None:
    """Starved answers under a round cap of 60 stop at the cap; the row records what was set."""
    argv = ["bench", "--sizes", "small", "--json", "--answer", "early_max_iter=1", "--answer", "max_iter=1",
            "--answer", "abs_tol=1e-3", "--set", "max_iter=60"]
    assert main(argv) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["status"] == "iteration_cap" and row["iterations"] == 60
    assert row["admm_options"] == {"max_iter": 60}
    # as validated: YAML 1.1 reads 1e-3 as text, the row says the number it was read as
    assert row["answer_options"] == {"early_max_iter": 1, "max_iter": 1, "abs_tol": 1e-3}


def test_cpp_vcg_takes_answer_settings(ctx) -> None:
    from policies.cpp_vcg import CPPVCGPolicy

    with pytest.raises(FlosimError, match="exact_blow"):
        CPPVCGPolicy(cpp={"answers": {"exact_blow": 0}})
    with pytest.raises(FlosimError, match="eps_rell"):
        CPPVCGPolicy(cpp={"eps_rell": 1})
    starved = CPPVCGPolicy(cpp={"max_iter": 60, "answers": {"early_max_iter": 1, "max_iter": 1}}).decide(ctx)
    assert starved.diagnostics["status"] == "iteration_cap" and starved.diagnostics["fallback"] == "jit"
    late = CPPVCGPolicy(cpp={"time_limit": 1e-9}).decide(ctx)
    assert late.diagnostics["status"] == "time_limit" and late.diagnostics["fallback"] == "jit" and not late.committed
