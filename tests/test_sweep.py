"""Sweeps: deterministic design and seeds, failures recorded, resume equals an uninterrupted sweep,
and local (serial or process pool) and Dask executors give identical tables."""

from __future__ import annotations

import dataclasses
import json
import shutil
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import yaml

from experiments.cli import main as cli
from sim.model.scenario import load_scenario
from experiments.executors import DaskExecutor, LocalExecutor
from experiments.sweep import design_points, load_spec, plan_runs, replication_seeds, run_sweep
from sim.model.errors import FlosimError, SpecError
from conftest import write_flaky_policy

SPEC = """\
name: tiny
scenario: default
weeks: 2
policies: [first-best]
replications: 2
root_seed: 7
grid:
  lanes.0.spare_volume: [0, 700]
lhs:
  samples: 2
  parameters:
    demand.cv: {low: 0.1, high: 0.4}
"""


def _spec(tmp_path: Path, text: str = SPEC, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def _tables(folder: Path) -> dict[str, pd.DataFrame]:
    out = {}
    for name in ("summary", "runs", "ledger", "flows", "decisions"):
        df = pd.read_parquet(folder / f"{name}.parquet")
        out[name] = df.drop(columns=[c for c in ("wall_s",) if c in df.columns])
    return out


def _assert_same(a: Path, b: Path) -> None:
    ta, tb = _tables(a), _tables(b)
    for name in ta:
        pd.testing.assert_frame_equal(ta[name], tb[name], check_exact=True, obj=name)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The tiny sweep run uninterrupted in a local pool of two worker processes."""
    tmp = tmp_path_factory.mktemp("reference")
    loaded = load_spec(_spec(tmp))
    report = run_sweep(loaded, tmp / "out", executor=LocalExecutor(workers=2))
    assert (report.runs_total, report.runs_done, report.runs_failed) == (8, 8, 0)
    return tmp / "out"


def test_design_seeds_and_run_ids_are_deterministic(tmp_path, reference):
    loaded = load_spec(_spec(tmp_path))
    points = design_points(loaded.spec)
    assert len(points) == 4 and [p["lanes.0.spare_volume"] for p in points] == [0, 0, 700, 700]
    cvs = sorted(p["demand.cv"] for p in points[:2])
    assert 0.1 <= cvs[0] < 0.25 <= cvs[1] <= 0.4  # one Latin-hypercube sample per stratum
    assert [p["demand.cv"] for p in points[:2]] == [p["demand.cv"] for p in points[2:]]
    assert replication_seeds(7, 3)[:2] == replication_seeds(7, 2)  # adding replications keeps the earlier ones
    tasks = plan_runs(loaded, tmp_path / "runs")
    assert [t.run_id for t in tasks] == [t.run_id for t in plan_runs(load_spec(_spec(tmp_path)), tmp_path / "x")]
    assert len({t.run_id for t in tasks}) == 8
    assert {t.seed for t in tasks if t.replication == 0} == {replication_seeds(7, 2)[0]}  # common random numbers across points
    summary = pd.read_parquet(reference / "summary.parquet")
    assert len(summary) == 8 * 2 and set(summary.policy) == {"jit", "first-best"}
    assert {"lanes.0.spare_volume", "demand.cv", "saving_vs_jit", "vendor_cumulative_margin"} <= set(summary.columns)
    assert (summary[summary.policy == "jit"].saving_vs_jit == 0).all() and summary.social_cost.gt(0).all()
    # settled figures too: the run plus its cool-down costs more than the run alone
    assert {"settled_social_cost", "settled_saving_vs_jit", "settled_share_of_first_best_saving",
            "vendor_settled_ex_post_margin"} <= set(summary.columns)
    assert (summary.settled_social_cost > summary.social_cost).all()
    assert (reference / "runs" / tasks[0].run_id / "ledger.parquet").exists()
    meta = json.loads((reference / "sweep.json").read_text())
    assert meta["state"] == "finished" and meta["runs_done"] == 8 and meta["parameters"] == ["lanes.0.spare_volume", "demand.cv"]


def test_run_ids_of_a_trace_sweep_follow_the_trace_not_its_folder(tmp_path):
    """A spec, its scenario and the trace beside it, copied elsewhere: the same run ids (so a moved
    project resumes); a trace with other numbers: other ids."""
    from forecasts.inputs import draw_inputs
    from forecasts.traces import write_trace
    from sim.model.scenario import dump_scenario, load_scenario

    base = load_scenario("default")
    inputs = draw_inputs(base, weeks=2)
    a = tmp_path / "a"
    write_trace(a / "mytrace", base, inputs)
    dump_scenario(base.with_overrides({"demand.model": "trace", "demand.trace_dir": "mytrace", "weeks": 2}), a / "scen.yaml")
    _spec(a, "name: moved\nscenario: scen.yaml\npolicies: [first-best]\nreplications: 2\ngrid:\n  demand.cv: [0.2, 0.3]\n")
    shutil.copytree(a, tmp_path / "b")
    ids = {k: [t.run_id for t in plan_runs(load_spec(tmp_path / k / "spec.yaml"), tmp_path / k / "runs")] for k in ("a", "b")}
    assert ids["a"] == ids["b"] and len(set(ids["a"])) == 4
    # a swept trace_dir is named the same way; one the client cannot read keeps its path
    from experiments.sweep import _trace_name
    assert _trace_name(str(a / "mytrace")) == _trace_name(str(tmp_path / "b" / "mytrace")) != str(a / "mytrace")
    assert _trace_name("no/such/trace") == "no/such/trace"
    write_trace(tmp_path / "b" / "mytrace", base, dataclasses.replace(inputs, demand=inputs.demand + 1.0), overwrite=True)
    assert set(ids["a"]).isdisjoint(t.run_id for t in plan_runs(load_spec(tmp_path / "b" / "spec.yaml"), tmp_path / "b" / "runs"))


def test_interrupted_then_resumed_equals_uninterrupted(tmp_path, reference):
    loaded = load_spec(_spec(tmp_path))
    finished = []

    def stop_after_three(task, outcome):
        finished.append(task.run_id)
        if len(finished) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(loaded, tmp_path / "out", executor=LocalExecutor(workers=1), on_run_done=stop_after_three)
    (tmp_path / "out" / "runs" / ".tmp-crashed-run").mkdir()  # what a killed worker leaves behind
    with pytest.raises(FlosimError, match="already holds sweep results; pass --resume"):
        run_sweep(loaded, tmp_path / "out")
    report = run_sweep(loaded, tmp_path / "out", resume=True)
    assert (report.runs_total, report.runs_skipped, report.runs_done, report.runs_failed) == (8, 3, 5, 0)
    assert not list((tmp_path / "out" / "runs").glob(".tmp-*"))
    _assert_same(reference, tmp_path / "out")
    again = run_sweep(loaded, tmp_path / "out", resume=True)
    assert (again.runs_skipped, again.runs_done) == (8, 0)


def test_dask_executor_gives_identical_tables(tmp_path, reference):
    loaded = load_spec(_spec(tmp_path))
    report = run_sweep(loaded, tmp_path / "out", executor=DaskExecutor(workers=2, processes=False))
    assert report.runs_done == 8
    _assert_same(reference, tmp_path / "out")


def test_a_failing_run_is_recorded_and_the_others_go_on(tmp_path, monkeypatch):
    """A run that fails while simulating (here a user's policy told by the swept parameter to fail) is
    recorded with its error; the other runs finish. (A grid value the scenario refuses is a spec error
    before any run: see test_bad_specs_name_file_field_and_value.)"""
    monkeypatch.chdir(tmp_path)
    write_flaky_policy(tmp_path)
    spec = _spec(tmp_path, """\
        name: failing
        scenario: flaky.yaml
        weeks: 2
        policies: [jit, "flaky:Flaky"]
        replications: 2
        grid:
          policies.flaky.fail: [false, true]
    """)
    report = run_sweep(load_spec(spec), tmp_path / "out")
    assert (report.runs_done, report.runs_failed) == (2, 2)
    runs = pd.read_parquet(tmp_path / "out" / "runs.parquet")
    failed = runs[runs.status == "failed"]
    assert list(failed["policies.flaky.fail"]) == [True, True]
    assert failed.error.str.contains("asked to fail").all()
    err = json.loads((tmp_path / "out" / "runs" / failed.run_id.iloc[0] / "error.json").read_text())
    assert err["parameters"] == {"policies.flaky.fail": True} and "RuntimeError" in err["error"]
    assert set(pd.read_parquet(tmp_path / "out" / "summary.parquet")["policies.flaky.fail"]) == {False}


def test_a_policy_that_raises_fails_its_run_on_the_command_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "boom.py").write_text(textwrap.dedent("""\
        class Boom:
            name = "boom"
            def decide(self, ctx):
                raise RuntimeError("boom in week %d" % ctx.week)
    """))
    spec = _spec(tmp_path, """\
        name: boom
        weeks: 2
        policies: ["boom:Boom"]
        replications: 2
    """)
    assert cli(["sweep", str(spec), "--out", "out", "--workers", "1", "--json"]) == 1
    captured = capsys.readouterr()
    counts = json.loads(captured.out)
    assert {k: counts[k] for k in ("runs_total", "runs_done", "runs_skipped", "runs_failed")} == {
        "runs_total": 2, "runs_done": 0, "runs_skipped": 0, "runs_failed": 2}
    assert counts["results_dir"] == "out"
    assert "RuntimeError: boom in week 0" in captured.err and "error.json" in captured.err


@pytest.mark.parametrize(
    "text, message",
    [
        ("name: x\npolicies: [jit]\ngrdi: {demand.cv: [0.1]}\n", "spec.yaml: field 'grdi' = {'demand.cv': [0.1]}: unknown field"),
        ("name: x\npolicies: [jit]\ngrid: {demand.cvv: [0.1]}\n", "spec.yaml: field 'grid.demand.cvv': 'demand.cvv' is not a scenario parameter: demand has no field 'cvv'"),
        ("name: x\npolicies: [jit, magic]\n", "spec.yaml: field 'policies.1' = 'magic': unknown or unavailable policy"),
        ("name: x\npolicies: [jit]\nreplications: 0\n", "spec.yaml: field 'replications' = 0: Input should be greater than or equal to 1"),
        ("name: x\npolicies: [jit]\nscenario: nowhere.yaml\n", "spec.yaml: field 'scenario' = 'nowhere.yaml'"),
        ("name: x\npolicies: [jit]\nlhs: {samples: 2, parameters: {demand.cv: {low: 0.5, high: 0.1}}}\n", "field 'lhs.parameters.demand.cv'"),
        ("name: x\npolicies: [jit]\ngrid: {lanes.9.spare_volume: [1]}\n", "no item '9' in lanes"),
        ("name: x\npolicies: [jit]\ngrid: {demand.cv: [0.2, -1.0]}\n", "spec.yaml: field 'grid.demand.cv.1' = -1.0: field 'demand.cv'"),
    ],
)
def test_bad_specs_name_file_field_and_value(tmp_path, capsys, text, message):
    spec = _spec(tmp_path, text)
    with pytest.raises(SpecError) as info:
        load_spec(spec)
    assert message in str(info.value)
    assert cli(["sweep", str(spec), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_shipped_specs_are_valid():
    specs = Path(__file__).resolve().parents[1] / "experiments" / "specs"
    for path in sorted(specs.glob("*.yaml")):
        loaded = load_spec(path)
        assert plan_runs(loaded, "/tmp/unused"), path
