"""``flosim privacy``: the JSON contract, saved transcripts read back, and bad input (exit 2 naming it)."""

from __future__ import annotations

import json

import pytest

from experiments.cli import main


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["privacy", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    """One small audit: jit and cpp-vcg on the default scenario, two weeks."""
    out = tmp_path_factory.mktemp("privacy")
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()):
        code = main(["privacy", "--weeks", "2", "--policy", "jit", "--policy", "cpp-vcg", "--json", "--out", str(out)])
    assert code == 0
    return json.loads(buf.getvalue()), out


def test_json_rows_follow_the_contract(audited):
    rows, out = audited
    params = [r for r in rows if r["parameter"] != "summary"]
    summaries = {r["policy"]: r for r in rows if r["parameter"] == "summary"}
    assert set(summaries) == {"jit", "cpp-vcg"}
    for r in params:
        assert {"policy", "party", "parameter", "truth", "estimate", "relative_error"} <= set(r)
        assert r["party"] == "vendor"
        if r["estimate"] is not None:
            assert r["relative_error"] == pytest.approx(abs(r["estimate"] - r["truth"]) / abs(r["truth"]))
    for s in summaries.values():
        mine = [r for r in params if r["policy"] == s["policy"]]
        share = sum(1 for r in mine if r["relative_error"] is not None and r["relative_error"] <= 0.05) / len(mine)
        assert s["within_5pct"] == pytest.approx(share)
        assert 0 <= s["within_5pct"] <= s["within_25pct"] <= 1
    # efficiency on settled figures beside the raw and planned ones: JIT saves nothing against itself
    assert summaries["jit"]["settled_share_of_first_best_saving"] == pytest.approx(0.0, abs=1e-12)
    assert summaries["cpp-vcg"]["settled_share_of_first_best_saving"] is not None
    assert summaries["cpp-vcg"]["settled_share_of_first_best_saving"] != summaries["cpp-vcg"]["share_of_first_best_saving"]
    # JIT shows only what was shipped: bounds, no marginal cost is pinned
    assert summaries["jit"]["point_observations"] == 0
    assert all(r["estimate"] is None for r in params if r["policy"] == "jit")
    # the negotiation pins some: the Cincinnati -> Indianapolis lane is the cheap supply of IND
    cpp = {r["parameter"]: r for r in params if r["policy"] == "cpp-vcg"}
    assert cpp["CIN->IND truckload_delivered"]["relative_error"] < 0.05
    assert (out / "privacy.json").exists() and (out / "marginal_cost.png").exists() and (out / "tradeoff.png").exists()


def test_saved_transcripts_read_back_give_the_same_estimates(audited, capsys):
    rows, out = audited
    files = sorted(str(p) for p in (out / "transcripts").glob("cpp-vcg-week*.parquet"))
    assert len(files) == 2
    args = [a for f in files for a in ("--transcript", f)]
    code, stdout, err = _run(capsys, "--weeks", "2", *args, "--json", "--out", str(out / "again"))
    assert code == 0, err
    again = {r["parameter"]: r["estimate"] for r in json.loads(stdout) if r["policy"] == "transcripts" and r["parameter"] != "summary"}
    first = {r["parameter"]: r["estimate"] for r in rows if r["policy"] == "cpp-vcg" and r["parameter"] != "summary"}
    assert again == first


@pytest.mark.parametrize("argv, needles", [
    (["--eps", "0"], ["--eps 0", "> 0"]),
    (["--eps", "-1"], ["--eps -1", "> 0"]),
    (["--eps", "abc"], ["--eps 'abc'", "not a number"]),
    (["--policy", "auction"], ["--policy 'auction'", "unknown mechanism"]),
    (["--round-cap", "0"], ["--round-cap 0"]),
    (["--eps", "1e-320"], ["--eps 1e-320", "not a finite number"]),
    (["--scope", "week"], ["--scope week", "give --eps"]),
])
def test_bad_options_exit_2_naming_them(tmp_path, capsys, argv, needles):
    code, stdout, err = _run(capsys, *argv, "--out", str(tmp_path / "out"))
    assert code == 2
    assert "Traceback" not in err and err.startswith("flosim: error: ")
    for needle in needles:
        assert needle in err
    assert not (tmp_path / "out").exists()


def test_missing_or_damaged_transcript_exits_2_naming_the_file(tmp_path, capsys):
    missing = tmp_path / "nope.parquet"
    code, _, err = _run(capsys, "--transcript", str(missing), "--out", str(tmp_path / "o1"))
    assert code == 2 and str(missing) in err and "no such file" in err
    damaged = tmp_path / "damaged.parquet"
    damaged.write_bytes(b"PAR1 this is not parquet")
    code, _, err = _run(capsys, "--transcript", str(damaged), "--out", str(tmp_path / "o2"))
    assert code == 2 and str(damaged) in err and "cannot read" in err and "Traceback" not in err
    import pyarrow as pa
    import pyarrow.parquet as pq

    foreign = tmp_path / "foreign.parquet"
    pq.write_table(pa.table({"a": [1, 2]}), foreign)
    code, _, err = _run(capsys, "--transcript", str(foreign), "--out", str(tmp_path / "o3"))
    assert code == 2 and str(foreign) in err and "not a flosim transcript" in err
    assert not any((tmp_path / d).exists() for d in ("o1", "o2", "o3"))


def test_a_bad_privacy_setting_in_the_scenario_exits_2(tmp_path, capsys):
    import yaml
    from importlib import resources

    data = yaml.safe_load((resources.files("sim") / "scenarios" / "default.yaml").read_text())
    data["policies"]["cpp-vcg"]["privacy"] = {"eps": 0}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    code, _, err = _run(capsys, "--scenario", str(path), "--policy", "cpp-vcg", "--weeks", "1", "--out", str(tmp_path / "o"))
    assert code == 2 and "privacy.eps" in err and "greater than 0" in err


def test_seeds_add_a_mean_summary_row_per_policy(tmp_path, capsys):
    code, stdout, err = _run(capsys, "--weeks", "1", "--policy", "cpp-vcg", "--eps", "10", "--seeds", "1,2", "--json",
                             "--out", str(tmp_path / "o"))
    assert code == 0, err
    rows = json.loads(stdout)
    summaries = [r for r in rows if r["parameter"] == "summary"]
    assert {(r["policy"], r["seed"]) for r in summaries} == {(p, s) for p in ("cpp-vcg", "cpp-vcg eps=10") for s in (1, 2, "mean")}
    for name in ("cpp-vcg", "cpp-vcg eps=10"):
        mean = next(r for r in summaries if r["policy"] == name and r["seed"] == "mean")
        each = [r for r in summaries if r["policy"] == name and r["seed"] != "mean"]
        assert mean["within_5pct"] == pytest.approx(sum(r["within_5pct"] for r in each) / 2)
        assert mean["planned_share_vs_cpp-vcg"] == pytest.approx(sum(r["planned_share_vs_cpp-vcg"] for r in each) / 2)
    assert all(r["planned_share_vs_cpp-vcg"] == 1.0 for r in summaries if r["policy"] == "cpp-vcg" and r["seed"] != "mean")
    assert (tmp_path / "o" / "transcripts" / "seed1").is_dir()
    code, _, err = _run(capsys, "--seeds", "1,x", "--out", str(tmp_path / "bad"))
    assert code == 2 and "--seeds '1,x'" in err and not (tmp_path / "bad").exists()


def test_an_out_path_that_cannot_be_a_folder_exits_2_before_the_audit_runs(tmp_path, capsys):
    """A file where the results folder (or a folder above it) should be is refused up front, naming
    it, before minutes of simulation are spent (it used to end in a traceback after the audit)."""
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder")
    for out in (blocker, blocker / "sub"):
        code, _, err = _run(capsys, "--policy", "jit", "--weeks", "1", "--out", str(out))
        assert code == 2 and "Traceback" not in err, err
        assert f"--out {out}" in err and "is a file, not a folder" in err
        assert "running" not in err  # refused before the scenario was run


def test_the_tradeoff_figure_plots_leakage_against_the_planned_share(audited):
    """tradeoff.png is the docs' trade-off curve: the planned share of the first-best saving (the
    yardstick of the target verdict), not the raw realised share, which one run's demand moves by
    tens of points (on pilot, cpp-vcg eps=10 realises 1.25 of the saving while planning 0.46)."""
    from experiments.plots.privacy import tradeoff_points

    rows, _ = audited
    summaries = [r for r in rows if r["parameter"] == "summary"]
    points = {name: (leak, eff) for name, leak, eff in tradeoff_points(summaries)}
    assert set(points) == {s["policy"] for s in summaries}
    for s in summaries:
        assert points[s["policy"]] == (s["within_5pct"], s["planned_share_of_first_best_saving"])
    assert tradeoff_points([{"policy": "x", "within_5pct": 0.1, "share_of_first_best_saving": 0.9,
                             "planned_share_of_first_best_saving": None}]) == []


def test_a_transcript_damaged_inside_exits_2_naming_the_file_and_the_round(audited, tmp_path, capsys):
    """A readable transcript with a round missing the vendor's answer, or with numbers that are not
    finite, is named as damaged (it used to end in a traceback from the fit)."""
    import numpy as np

    from sim.negotiation.transcript import Transcript

    _, out = audited
    t = Transcript.load(sorted((out / "transcripts").glob("cpp-vcg-week*.parquet"))[0])
    incomplete = tmp_path / "incomplete.parquet"
    Transcript(shape=t.shape, n_agents=t.n_agents, blocks=t.blocks,
               rows=[r for r in t.rows if not (r[0] == 3 and r[1] == 1 and r[2] == "answer")]).save(incomplete)
    not_finite = tmp_path / "nan.parquet"
    Transcript(shape=t.shape, n_agents=t.n_agents, blocks=t.blocks, rows=[(i, a, n, np.full_like(v, np.nan) if (i, a, n) == (2, 1, "prices") else v)
                                                         for i, a, n, v in t.rows]).save(not_finite)
    for path, needle in ((incomplete, "round 3 is incomplete"), (not_finite, "round 2, agent 1: prices is not finite")):
        code, _, err = _run(capsys, "--weeks", "2", "--transcript", str(path), "--out", str(tmp_path / path.stem))
        assert code == 2 and "Traceback" not in err, err
        assert str(path) in err and "damaged" in err and needle in err
        assert not (tmp_path / path.stem).exists()


def test_rows_name_the_audited_vendor_by_its_own_name(tmp_path, capsys):
    """A one-vendor scenario of schema version 2 whose vendor is not called ``vendor``: every row,
    the summary rows and the seeds' mean row included, carries that vendor's name as ``party``."""
    import yaml

    from sim.model.scenario import load_scenario

    d = yaml.safe_load(load_scenario("two-vendors").model_dump_json())
    acme = next(v for v in d["vendors"] if v["name"] == "acme")
    d.update(name="acme-alone", vendors=[acme], products=[p for p in d["products"] if p["name"] in acme["products"]])
    for f in d["fcs"]:
        f["initial_stock"] = {k: u for k, u in f["initial_stock"].items() if k in acme["products"]}
    path = tmp_path / "acme_alone.yaml"
    path.write_text(yaml.safe_dump(d))
    code, stdout, err = _run(capsys, "--scenario", str(path), "--weeks", "1", "--policy", "jit", "--seeds", "1,2",
                             "--json", "--out", str(tmp_path / "o"))
    assert code == 0, err
    rows = json.loads(stdout)
    assert rows and {r["party"] for r in rows} == {"acme"}
    assert any(r["parameter"] == "summary" and r["seed"] == "mean" for r in rows)
