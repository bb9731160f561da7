"""``flosim run``: the JSON summary, the results folder, and re-running a run from its folder."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from experiments.cli import main
from sim.results import load_results
from sim.model.scenario import load_scenario

SUMMARY_KEYS = {"social_cost", "retailer_net_cost", "vendor_net_cost", "transfers", "fill_rate"}


@pytest.fixture(scope="module")
def json_run(tmp_path_factory):
    """One real ``flosim run --json`` in a separate process (stdout must hold only the JSON)."""
    out = tmp_path_factory.mktemp("cli") / "run1"
    r = subprocess.run(
        [sys.executable, "-m", "experiments.cli", "run", "--policy", "first-best", "--weeks", "3", "--seed", "5",
         "--json", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout), out


def test_json_summary_shape(json_run):
    summary, out = json_run
    assert {"scenario", "weeks", "seed", "results_dir", "policies"} <= set(summary)
    assert summary["scenario"] == "default" and summary["weeks"] == 3 and summary["seed"] == 5
    assert summary["results_dir"] == str(out)
    assert set(summary["policies"]) == {"jit", "first-best"}  # jit always runs as the reference
    for name, totals in summary["policies"].items():
        assert SUMMARY_KEYS <= set(totals), name
        assert all(isinstance(totals[k], float) for k in SUMMARY_KEYS), name
        assert totals["social_cost"] == pytest.approx(totals["retailer_net_cost"] + totals["vendor_net_cost"])
        assert 0.0 <= totals["fill_rate"] <= 1.0
        assert totals["transfers"] == 0.0  # neither policy pays a transfer


def test_results_folder_contents(json_run):
    summary, out = json_run
    for name in ("ledger.parquet", "summary.json", "scenario.yaml", "metadata.json"):
        assert (out / name).is_file(), name
    assert json.loads((out / "summary.json").read_text()) == summary
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["seed"] == 5 and meta["scenario"] == "default"
    assert {"numpy", "scipy", "simpy", "python"} <= set(meta["versions"])
    assert "timings" in meta and "command" in meta
    ledger = pd.read_parquet(out / "ledger.parquet")
    assert list(ledger.columns) == ["run", "policy", "week", "party", "component", "value", "phase"]
    assert set(ledger[ledger.phase == "measured"].week) == {0, 1, 2}
    assert set(ledger[ledger.phase == "settle"].week) == set(range(3, 3 + summary["settle_weeks"]))
    # the summary is recomputable from the saved ledger
    for name, totals in summary["policies"].items():
        rows = ledger[ledger.policy == name]
        assert totals["settled_social_cost"] == pytest.approx(rows.value.sum(), rel=1e-12)
        rows = rows[rows.phase == "measured"]
        assert totals["social_cost"] == pytest.approx(rows.value.sum(), rel=1e-12)
        assert totals["retailer_net_cost"] == pytest.approx(rows[rows.party == "retailer"].value.sum(), rel=1e-12)


def test_saved_scenario_reloads_equal_and_reruns_bit_for_bit(json_run, tmp_path, capsys):
    summary, out = json_run
    saved = load_scenario(out / "scenario.yaml")
    expected = load_scenario("default").with_overrides({"weeks": 3, "seed": 5})
    assert saved == expected  # the resolved scenario, with the command line's weeks and seed
    assert load_results(out).scenario == saved
    again = tmp_path / "again"
    code = main(["run", "--scenario", str(out / "scenario.yaml"), "--policy", "first-best", "--json", "--out", str(again)])
    assert code == 0
    rerun = json.loads(capsys.readouterr().out)
    pd.testing.assert_frame_equal(
        pd.read_parquet(out / "ledger.parquet"), pd.read_parquet(again / "ledger.parquet"), check_exact=True
    )
    assert rerun["policies"] == summary["policies"]


def test_table_output_without_json(tmp_path, capsys):
    out = tmp_path / "table"
    assert main(["run", "--policy", "jit", "--weeks", "1", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "jit" in text and str(out) in text and "settled social" in text and "raw social" in text
    assert (out / "ledger.parquet").exists()


def test_out_folder_that_cannot_be_created(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code = main(["run", "--policy", "jit", "--weeks", "1", "--out", str(blocker / "sub")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and str(blocker / "sub") in err


def test_a_closed_pipe_ends_the_command_quietly() -> None:
    """``flosim plan | head -0``: the reader is gone before the command writes (closed right after the
    start; the command needs far longer to import and plan); no traceback, the SIGPIPE exit status."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "import sys; from experiments.cli import main; sys.exit(main(['plan']))"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


def test_set_overrides_the_scenario_as_a_file_would(tmp_path, capsys):
    """``--set PATH=VALUE`` runs the scenario with that field changed: the same figures as a file with
    the field written in, the folder's scenario.yaml is the scenario as run, the summary lists it."""
    import yaml

    data = load_scenario("default").model_dump(mode="json")
    data["demand"]["cv"] = 0.45
    path = tmp_path / "cv.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    args = ["run", "--policy", "first-best", "--weeks", "2", "--json"]
    assert main([*args, "--set", "demand.cv=0.45", "--out", str(tmp_path / "set")]) == 0
    by_flag = json.loads(capsys.readouterr().out)
    assert main([*args, "--scenario", str(path), "--out", str(tmp_path / "file")]) == 0
    by_file = json.loads(capsys.readouterr().out)
    assert main([*args, "--out", str(tmp_path / "plain")]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert by_flag["overrides"] == {"demand.cv": 0.45} and "overrides" not in by_file
    for p in ("jit", "first-best"):
        assert by_flag["policies"][p]["social_cost"] == by_file["policies"][p]["social_cost"]
    assert by_flag["policies"]["jit"]["social_cost"] != plain["policies"]["jit"]["social_cost"]
    assert load_scenario(str(tmp_path / "set" / "scenario.yaml")).demand.cv == 0.45


@pytest.mark.parametrize("option, needle", [
    ("policies.menu.size=0", "size must be a whole number >= 1, got 0"),
    ("demand.bogus=1", "demand.bogus"),
    ("weeks=-3", "weeks"),
])
def test_set_bad_value_exits_2_naming_the_field(option, needle, tmp_path, capsys):
    out = tmp_path / "results"
    code = main(["run", "--policy", "first-best", "--weeks", "1", "--set", option, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and err.startswith("flosim: error: --set")
    assert needle in err, err
    assert not out.exists()


def test_set_without_equals_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "--set", "demand.cv"])
    assert exc.value.code == 2
    assert "expected PATH=VALUE" in capsys.readouterr().err


def test_set_on_an_unknown_policy_exits_2_naming_it(tmp_path, capsys):
    """``--set policies.cpp_vcg.warm_start=false`` (a typo for ``cpp-vcg``) would change nothing: refused."""
    out = tmp_path / "results"
    code = main(["run", "--policy", "first-best", "--weeks", "1", "--set", "policies.cpp_vcg.warm_start=false",
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and "no policy named 'cpp_vcg'" in err and "cpp-vcg" in err, err
    assert not out.exists()


def test_set_on_a_misspelt_policy_parameter_lists_the_policys_parameters(tmp_path, capsys):
    """A parameter a built-in policy does not take is refused with that policy's parameters listed (not
    only the few the scenario file happens to set, which read as if they were all there is)."""
    out = tmp_path / "results"
    code = main(["run", "--policy", "first-best", "--weeks", "1", "--set", "policies.cpp-vcg.gap_tol=1e-4",
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    assert "policy 'cpp-vcg' has no parameter 'gap_tol'" in err and "warm_tail" in err and "counterfactual" in err, err
    assert not out.exists()


@pytest.mark.parametrize("path", ["policies.cpp.answers.early_max_iter=60", "policies.cpp.gap_tol=1e-4"])
def test_set_reaches_a_policy_that_takes_keywords(tmp_path, capsys, path):
    """``cpp`` takes its ADMM options as keywords (``**admm``) and ``answers`` by name; neither needs
    to be written in the scenario to be set (both were refused as "no field" before)."""
    out = tmp_path / "results"
    code = main(["run", "--policy", "cpp", "--weeks", "1", "--set", path, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    key, value = path.split("=")
    assert f"{key.split('.')[-1]}: {value}" in (out / "scenario.yaml").read_text()  # the run's scenario carries it


def test_set_with_a_keyword_a_policy_does_not_know_is_refused_by_the_policy(tmp_path, capsys):
    out = tmp_path / "results"
    code = main(["run", "--policy", "cpp", "--weeks", "1", "--set", "policies.cpp.gap_toll=1e-4", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and "gap_toll" in err, err
    assert not out.exists()


def test_parameters_of_a_policy_that_also_takes_keywords_are_still_accepted(default_scenario):
    """``cpp`` takes named parameters and ``**admm``: its named ones (``certify``, ``answers``) may be set
    when the scenario file leaves them unwritten, as before; a deeper misspelt path under a policy
    with a closed parameter list names that policy's parameters too."""
    from experiments.overrides import override_problem

    base = default_scenario.model_dump(mode="json")
    assert "certify" not in base["policies"]["cpp"]
    assert override_problem(base, "policies.cpp.certify") is None
    assert override_problem(base, "policies.cpp.answers.early_max_iter") is None
    assert override_problem(base, "policies.cpp.self") is not None
    scenario = default_scenario.with_overrides({"policies.cpp.certify": True}, source="--set")
    assert scenario.policies["cpp"]["certify"] is True
    why = override_problem(base, "policies.cpp-vcg.comitment.weeks")
    assert why and "policy 'cpp-vcg' has no parameter 'comitment'" in why and "commitment" in why, why
    # a policy that takes any keyword (jit) gets the scenario's own message, as before
    assert "policies has no field 'jit'" in override_problem(base, "policies.jit.foo")
