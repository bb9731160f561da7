"""Replicated comparisons: seeds spawned from the run's seed, common random numbers within a replication,
paired differences per replication, the same intervals for the same seed, and the JSON contract."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from experiments.cli import main
from experiments.replications import interval, ratio_interval, replication_seeds

ARGS = ["run", "--weeks", "2", "--policy", "jit", "--policy", "first-best", "--policy", "cpp-vcg", "--json"]


@pytest.fixture(scope="module")
def replicated(tmp_path_factory):
    out = tmp_path_factory.mktemp("rep") / "out"
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main([*ARGS, "--replications", "3", "--seed", "11", "--out", str(out)]) == 0
    return json.loads(buf.getvalue()), out


def test_json_contract(replicated):
    s, _ = replicated
    assert s["replications"] == 3 and s["seeds"] == replication_seeds(11, 3)
    for p in ("jit", "first-best", "cpp-vcg"):
        for key in ("share_of_first_best", "settled_social_cost"):
            v = s["policies"][p][key]
            assert set(v) == {"mean", "lo", "hi"} and v["lo"] <= v["mean"] <= v["hi"]
    for p in ("first-best", "cpp-vcg"):
        for party in ("retailer", "vendor"):
            assert set(s["participation"][p][party]["settled_ex_post_margin"]) == {"mean", "lo", "hi"}
    assert s["policies"]["first-best"]["share_of_first_best"]["mean"] == pytest.approx(1.0)


def test_intervals_are_taken_on_paired_differences_per_replication(replicated):
    s, _ = replicated
    reps = s["per_replication"]
    assert [r["seed"] for r in reps] == s["seeds"]
    jit = np.array([r["policies"]["jit"]["settled_social_cost"] for r in reps])
    vcg = np.array([r["policies"]["cpp-vcg"]["settled_social_cost"] for r in reps])
    fb = np.array([r["policies"]["first-best"]["settled_social_cost"] for r in reps])
    diff = jit - vcg  # paired: each replication's own JIT world
    half = stats.t.ppf(0.975, 2) * diff.std(ddof=1) / np.sqrt(3)
    got = s["policies"]["cpp-vcg"]["settled_saving_vs_jit"]
    assert got["mean"] == pytest.approx(diff.mean()) and got["hi"] - got["lo"] == pytest.approx(2 * half)
    # an unpaired interval (the two costs' own spreads) would differ: the pairing is what is reported
    unpaired = stats.t.ppf(0.975, 2) * np.sqrt(jit.var(ddof=1) / 3 + vcg.var(ddof=1) / 3)
    assert not np.isclose(half, unpaired)
    share = s["policies"]["cpp-vcg"]["share_of_first_best"]
    assert share["mean"] == pytest.approx(diff.mean() / (jit - fb).mean())
    # each replication's policies share one world: the same demand in every policy's flows
    import pandas as pd

    flows = pd.read_parquet(replicated[1] / "flows.parquet")
    flows = flows[flows.phase == "measured"]
    per = flows.pivot_table(index=["replication", "week"], columns="policy", values="demand")
    assert (per.nunique(axis=1) == 1).all()
    assert per.groupby("replication")["jit"].sum().nunique() == 3  # and different worlds across replications


def test_same_seed_same_intervals(replicated, tmp_path, capsys):
    s, _ = replicated
    assert main([*ARGS, "--replications", "3", "--seed", "11", "--out", str(tmp_path / "again")]) == 0
    again = json.loads(capsys.readouterr().out)
    s2 = {k: v for k, v in s.items() if k != "results_dir"}
    again.pop("results_dir")
    assert again == s2


def test_plot_and_report_draw_the_intervals(replicated):
    from experiments.plots.data import load_plot_data
    from experiments.report import policy_table

    _, out = replicated
    data = load_plot_data(out)
    assert data.replications == 3
    stats_ = data.across(data.summary, "settled_social_cost", ["policy"]).set_index("policy")
    assert stats_["n"].eq(3).all() and stats_["ci"].gt(0).all()
    table = policy_table(data)
    assert table["settled social cost"].str.contains("±").all()


def test_interval_helpers():
    assert interval([1.0, 2.0, 3.0])["mean"] == 2.0
    assert interval([5.0]) == {"mean": 5.0, "lo": None, "hi": None}
    r = ratio_interval([2.0, 4.0, 6.0], [1.0, 2.0, 3.0])
    assert r["mean"] == pytest.approx(2.0) and r["lo"] == pytest.approx(2.0) and r["hi"] == pytest.approx(2.0)
    assert replication_seeds(5, 4)[:2] == replication_seeds(5, 2)


@pytest.mark.parametrize("value", ["0", "-2", "2.5", "many"])
def test_bad_replications_exit_2_naming_the_flag(tmp_path, capsys, value):
    with pytest.raises(SystemExit) as e:
        main(["run", "--replications", value, "--out", str(tmp_path / "o")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--replications" in err and value in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()
