"""``run_policies(..., workers=N)`` / ``flosim run --workers N``: policies simulated at once, in processes,
give the same numbers as one after the other (common random numbers do not depend on the order)."""

from __future__ import annotations

import pandas as pd
import pytest

from experiments.cli import main
from policies.jit import JITPolicy
from sim.model.scenario import load_scenario
from sim.runner import run_policies


class FailsInWeekOne(JITPolicy):
    """JIT that raises when planning the second week (a policy bug, reported by the runner)."""

    name = "fails"

    def decide(self, ctx):
        if ctx.week == 1:
            raise RuntimeError("planted failure in week 1")
        return super().decide(ctx)


def _no_wall(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=[c for c in df.columns if "wall" in c])


def test_processes_give_the_same_tables_as_one_after_the_other():
    scenario = load_scenario("default")
    names = ["jit", "first-best", "cpp-vcg"]
    serial = run_policies(scenario, names, weeks=2)
    parallel = run_policies(scenario, names, weeks=2, workers=2)
    assert parallel.policies == serial.policies == names
    pd.testing.assert_frame_equal(parallel.ledger, serial.ledger)
    pd.testing.assert_frame_equal(parallel.flows, serial.flows)
    pd.testing.assert_frame_equal(_no_wall(parallel.decisions), _no_wall(serial.decisions))
    pd.testing.assert_frame_equal(parallel.shortfalls, serial.shortfalls)
    assert parallel.ledger["value"].abs().sum() > 0


def test_a_policy_failing_in_a_process_is_reported_and_earlier_results_kept():
    reported = []
    result = run_policies(load_scenario("default"), ["jit", FailsInWeekOne(), "first-best"], weeks=2, workers=2,
                          on_error=lambda name, exc: reported.append((name, str(exc))))
    assert reported == [("fails", "planted failure in week 1")]
    assert result.policies == ["jit"] and "planted failure" in result.error
    assert set(result.ledger["policy"]) == {"jit"}


def test_without_on_error_the_failure_is_raised():
    with pytest.raises(RuntimeError, match="planted failure"):
        run_policies(load_scenario("default"), ["jit", FailsInWeekOne()], weeks=2, workers=2)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_bad_workers_refused(bad):
    with pytest.raises(ValueError, match="workers"):
        run_policies(load_scenario("default"), ["jit"], weeks=1, workers=bad)


def test_cli_workers_zero_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "--workers", "0", "--out", str(tmp_path / "r")])
    assert exc.value.code == 2 and "--workers must be >= 1" in capsys.readouterr().err


class ChecksSwitches(JITPolicy):
    """JIT that fails unless the module switches that change answers are what the test set them to."""

    name = "checks-switches"

    def decide(self, ctx):
        import policies.cpp as cpp_module
        import sim.model.lp as lp_module
        import sim.parties.retailer as retailer_module

        from sim.model import separable

        seen = (lp_module.LP_STARTS, retailer_module.WARM_START_LPS, retailer_module.KEPT_COLUMNS,
                lp_module.IPM_THRESHOLD, cpp_module.PROCESS_THRESHOLD, separable.SPLIT_MIN_VARIABLES,
                separable.MAX_GROUPS)
        if seen != ("scratch", True, 1234, 5678, 91011, 4321, 3):
            raise RuntimeError(f"switches not carried to the process: {seen}")
        return super().decide(ctx)


def test_the_answer_switches_set_in_this_process_hold_in_the_workers(monkeypatch):
    """``sim.model.lp.LP_STARTS`` and the other module switches a user sets before a run change the
    answers: a run in processes must use them too (a forkserver child imports the modules afresh)."""
    import policies.cpp as cpp_module
    import sim.model.lp as lp_module
    import sim.parties.retailer as retailer_module

    monkeypatch.setattr(lp_module, "LP_STARTS", "scratch")
    monkeypatch.setattr(retailer_module, "WARM_START_LPS", True)
    monkeypatch.setattr(retailer_module, "KEPT_COLUMNS", 1234)
    monkeypatch.setattr(lp_module, "IPM_THRESHOLD", 5678)
    monkeypatch.setattr(cpp_module, "PROCESS_THRESHOLD", 91011)
    from sim.model import separable

    monkeypatch.setattr(separable, "SPLIT_MIN_VARIABLES", 4321)
    monkeypatch.setattr(separable, "MAX_GROUPS", 3)
    reported = []
    result = run_policies(load_scenario("default"), ["jit", ChecksSwitches()], weeks=1, workers=2,
                          on_error=lambda name, exc: reported.append(str(exc)))
    assert reported == [] and result.error is None
    assert result.policies == ["jit", "checks-switches"]
