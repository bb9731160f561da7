"""Replay is exact: the same trace gives the same ledger bit for bit, a recorded run replays to its
own ledger, and the shipped pilot replays to its stored summary."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import pandas as pd
import pytest

from experiments.cli import main as cli
from forecasts.traces import trace_scenario, write_trace
from sim.runner import run_policies
from sim.model.scenario import load_scenario

DATA = Path(__file__).parent / "data"
sys.path.insert(0, str(DATA))
from make_pilot_golden import SHORT_WEEKS, golden_path, replay_summary  # noqa: E402

POLICIES = ["jit", "first-best", "cpp-vcg"]
WEEKS = 3


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_exact=True)


def test_two_replays_and_a_recorded_run_give_identical_ledgers(tmp_path):
    scenario = load_scenario("default").model_copy(update={"weeks": WEEKS})
    original = run_policies(scenario, POLICIES)
    trace = write_trace(tmp_path / "trace", original.scenario, original.inputs)
    replay_scenario = trace_scenario(trace)
    first = run_policies(replay_scenario, POLICIES)
    second = run_policies(trace_scenario(trace), POLICIES)
    for table in ("ledger", "flows"):
        _same(getattr(first, table), getattr(second, table))
        _same(getattr(original, table), getattr(first, table))
    cols = [c for c in original.decisions.columns if c != "wall_s"]
    _same(original.decisions[cols], first.decisions[cols])
    assert original.ledger["value"].abs().sum() > 0


def _close(a, b, path="") -> None:
    if isinstance(a, dict):
        assert set(a) == set(b), f"{path}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            _close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, float) or isinstance(b, float):
        assert a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-7), f"{path}: {a} != {b}"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def test_command_line_replay_of_a_recorded_run(tmp_path, capsys):
    run_dir, trace, replay_dir = tmp_path / "run", tmp_path / "trace", tmp_path / "replay"
    assert cli(["run", "--weeks", "2", "--policy", "jit", "--policy", "first-best", "--out", str(run_dir), "--json"]) == 0
    ran = json.loads(capsys.readouterr().out)
    assert cli(["record", "--scenario", str(run_dir), "--out", str(trace), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["weeks"] == 2
    assert cli(["replay", str(trace), "--policy", "first-best", "--out", str(replay_dir), "--json"]) == 0
    replayed = json.loads(capsys.readouterr().out)
    assert set(replayed) == set(ran) and replayed["weeks"] == 2
    ran.pop("results_dir"), replayed.pop("results_dir")
    assert replayed == ran  # identical numbers, not just close
    _same(pd.read_parquet(run_dir / "ledger.parquet"), pd.read_parquet(replay_dir / "ledger.parquet"))


def test_pilot_replay_matches_stored_summary():
    """``flosim replay pilot --weeks 2`` (regenerate with ``python tests/data/make_pilot_golden.py``)."""
    expected = json.loads(golden_path(SHORT_WEEKS).read_text())
    got = replay_summary(SHORT_WEEKS)
    assert got["weeks"] == SHORT_WEEKS and set(got["policies"]) == {"jit", "cpp-vcg", "menu", "first-best"}
    _close(expected, json.loads(json.dumps(got, sort_keys=True)))


@pytest.mark.skipif(os.environ.get("FLOSIM_SLOW") != "1", reason="full nine-week pilot is a benchmark; set FLOSIM_SLOW=1")
def test_full_pilot_replay_matches_stored_summary():
    expected = json.loads(golden_path(None).read_text())
    _close(expected, json.loads(json.dumps(replay_summary(None), sort_keys=True)))
