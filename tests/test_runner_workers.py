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
