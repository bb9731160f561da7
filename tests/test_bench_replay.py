"""``flosim bench --replay``: each policy's time on a trace replay, its ratio to first best, where it goes."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

from experiments.cli import main
from experiments.step_timing import STEPS, StepTimer
from forecasts.traces import find_trace, trace_scenario
from sim.runner import run_policies


@pytest.fixture(scope="module")
def one_week() -> dict:
    """``flosim bench --replay --weeks 1 --policy jit --policy first-best --json``, parsed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert main(["bench", "--replay", "--weeks", "1", "--policy", "jit", "--policy", "first-best", "--json"]) == 0
    return json.loads(out.getvalue())


def test_a_row_per_policy_and_first_best_is_the_unit(one_week: dict) -> None:
    rows = {row["policy"]: row for row in one_week["policies"]}
    assert list(rows) == ["jit", "first-best"]
    assert rows["first-best"]["ratio_to_first_best"] == 1.0 and rows["first-best"]["cpu_ratio_to_first_best"] == 1.0
    assert rows["jit"]["cpu_ratio_to_first_best"] == pytest.approx(rows["jit"]["cpu_s"] / rows["first-best"]["cpu_s"])
    assert rows["jit"]["ratio_to_first_best"] == pytest.approx(rows["jit"]["seconds"] / rows["first-best"]["seconds"])
    for row in rows.values():
        assert row["seconds"] > 0 and 0 < row["decide_s"] < row["seconds"]  # the cool-down weeks are in seconds


def test_json_keys_as_documented(one_week: dict) -> None:
    assert set(one_week) == {"trace", "scenario", "weeks", "settle_weeks", "read_trace_s", "cpus", "load_average", "warm_lp", "policies"}
    assert one_week["weeks"] == 1 and one_week["scenario"] == "pilot" and one_week["settle_weeks"] >= 1
    for row in one_week["policies"]:
        assert set(row) == {"policy", "seconds", "decide_s", "ratio_to_first_best", "cpu_s", "cpu_ratio_to_first_best", "steps", "work"}
        assert row["cpu_s"] > 0
        for table in (row["steps"], row["work"]):
            for entry in table.values():
                assert set(entry) == {"seconds", "calls", "share"}
        steps = row["steps"]
        assert "other" in steps
        # exclusive times: the steps and the rest add up to the policy's time
        assert sum(e["seconds"] for e in steps.values()) == pytest.approx(row["seconds"], rel=1e-6)
        assert all(0 <= e["share"] <= 1 for e in steps.values())
        assert row["work"]["HiGHS solves"]["calls"] > 0
    fb = next(r for r in one_week["policies"] if r["policy"] == "first-best")
    assert fb["steps"]["first-best solve"]["calls"] == 1  # one central LP in the one replayed week
    assert "first-best solve" not in next(r for r in one_week["policies"] if r["policy"] == "jit")["steps"]


def test_table_has_a_row_per_policy(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--replay", "pilot", "--weeks", "1", "--policy", "first-best", "--policy", "jit"]) == 0
    out = capsys.readouterr().out.split("work underneath")[0]  # the policy rows come first
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.split() and line.split()[0] in ("jit", "first-best")}
    assert set(rows) == {"jit", "first-best"}
    assert rows["first-best"][2] == "1.00"


def test_timers_change_no_result_and_are_removed() -> None:
    import importlib

    scenario = trace_scenario(find_trace("pilot")).model_copy(update={"weeks": 1})
    before = {(m, a): _lookup(importlib.import_module(m), a) for _, _, m, a in STEPS}
    plain = run_policies(scenario, ["first-best"], progress=False)
    with StepTimer() as timer:
        timed = run_policies(scenario, ["first-best"], progress=False)
        assert _lookup(importlib.import_module("sim.model.lp"), "solve_lp") is not before[("sim.model.lp", "solve_lp")]
    assert timer.calls["work"]["HiGHS solves"] > 0
    assert np.array_equal(plain.ledger["value"].to_numpy(), timed.ledger["value"].to_numpy())
    assert all(_lookup(importlib.import_module(m), a) is f for (m, a), f in before.items())
    import policies.cpp
    import sim.negotiation.certificate

    assert policies.cpp.certify_plan is sim.negotiation.certificate.certify  # imported under another name: restored too


def _lookup(module: object, attribute: str) -> object:
    owner, _, name = attribute.rpartition(".")
    return (getattr(module, owner).__dict__ if owner else module.__dict__)[name]


@pytest.mark.parametrize("argv, named", [
    (["--replay", "/no/such/trace-dir"], "/no/such/trace-dir"),
    (["--replay", "--weeks", "0"], "--weeks"),
    (["--replay", "--weeks", "two"], "'two'"),
    (["--replay", "--weeks", "99"], "99"),
    (["--replay", "--policy", "no-such-policy"], "no-such-policy"),
    (["--replay", "--sizes", "small"], "--sizes"),
    (["--weeks", "1"], "--weeks"),
    (["--warm-lp"], "--warm-lp"),
])
def test_bad_input_is_one_line_and_exit_2(argv: list[str], named: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("flosim: error:") and named in captured.err
    assert len(captured.err.strip().splitlines()) == 1
