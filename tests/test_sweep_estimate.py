"""``flosim sweep SPEC --estimate N``: a sweep's cost from a measured sample of its own runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.cli import main
from experiments.sweep import load_spec, plan_runs
from experiments.sweep_estimate import estimate_sweep, sample_tasks

SMOKE = "experiments/specs/smoke.yaml"


def test_sample_spreads_over_the_design(tmp_path):
    tasks = plan_runs(load_spec(SMOKE), tmp_path)
    picked = sample_tasks(tasks, 3)
    assert picked[0] == tasks[0] and picked[-1] == tasks[-1]  # first and last of the design included
    assert len({t.run_id for t in picked}) == 3 and 0 < tasks.index(picked[1]) < len(tasks) - 1
    assert sample_tasks(tasks, len(tasks) + 5) == tasks  # more than there are: all of them, once


def test_estimate_is_the_mean_run_times_the_runs_and_writes_no_sweep(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a sweep would write results/sweep-smoke here
    loaded = load_spec(str(Path(__file__).parents[1] / SMOKE))
    seen = []
    est = estimate_sweep(loaded, 2, on_run=seen.append).as_json()
    assert est["runs_sampled"] == 2 and est["runs_failed"] == 0 and len(seen) == 2
    cpu = [r["cpu_s"] for r in est["sampled"]]
    assert all(c > 0 for c in cpu)
    assert est["cpu_s"]["mean"] == pytest.approx(sum(cpu) / 2)
    assert est["estimated_cpu_hours"] == pytest.approx(est["cpu_s"]["mean"] * est["runs_total"] / 3600)
    assert est["runs_total"] == len(plan_runs(loaded, tmp_path / "x"))
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("extra", [["--out", "somewhere"], ["--resume"], ["--workers", "2"], ["--executor", "dask"]])
def test_estimate_refuses_sweep_options(extra, capsys):
    assert main(["sweep", SMOKE, "--estimate", "1", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("flosim: error: --estimate") and "Traceback" not in err
    assert f"(given: {extra[0]})" in err  # names the option that was given


def test_estimate_json_from_the_command_line(capsys):
    assert main(["sweep", SMOKE, "--estimate", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["spec"] == "smoke" and out["runs_sampled"] == 1 and out["estimated_cpu_hours"] > 0
