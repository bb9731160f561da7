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
            assert set(v) == {"mean", "lo", "hi"}
            if key == "settled_social_cost":
                assert v["lo"] < v["mean"] < v["hi"]
    # shares: exact for JIT (0) and first best (1); for cpp-vcg the ratio's interval is unbounded here,
    # since first best's saving over 2 weeks and 3 replications is not distinguishable from 0 (Student-t
    # with 2 degrees of freedom): lo and hi are null and the summary says why
    assert s["policies"]["jit"]["share_of_first_best"] == {"mean": 0.0, "lo": 0.0, "hi": 0.0}
    assert s["policies"]["first-best"]["share_of_first_best"] == {"mean": 1.0, "lo": 1.0, "hi": 1.0}
    vcg = s["policies"]["cpp-vcg"]["share_of_first_best"]
    assert vcg["mean"] is not None and vcg["lo"] is None and vcg["hi"] is None
    assert any(w.startswith("share_of_first_best:") for w in s["warnings"])
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
    # the report's share is the JSON's (ratio of mean savings), and it says when the JSON has no interval
    s, _ = replicated
    shares = table.set_index("policy")["settled share of first-best saving"]
    from experiments.plots.costs import plot_savings

    fig = plot_savings(data)
    labels = {a.get_text() for a in fig.axes[0].texts}
    assert f"{100 * s['policies']['cpp-vcg']['share_of_first_best']['mean']:.0f}% of first-best" in labels
    assert shares["first-best"] == "100.0% ± 0.0%"
    vcg = s["policies"]["cpp-vcg"]["share_of_first_best"]
    assert shares["cpp-vcg"] == f"{100 * vcg['mean']:.1f}% (no bounded CI: first best's saving is not distinguishable from 0)"


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


def test_ratio_interval_is_the_delta_method_interval_recomputed_by_hand():
    a = np.array([310.0, 150.0, 420.0, 95.0, 260.0])  # a policy's saving per replication
    b = np.array([200.0, 160.0, 260.0, 120.0, 180.0])  # first best's, same replications
    r = a.mean() / b.mean()
    # Var(abar/bbar) ~ Var(a_i - r b_i) / (n bbar^2)
    se = np.sqrt(np.var(a - r * b, ddof=1) / (5 * b.mean() ** 2))
    half = stats.t.ppf(0.975, 4) * se
    got = ratio_interval(a, b)
    assert got["mean"] == pytest.approx(r)
    assert got["lo"] == pytest.approx(r - half) and got["hi"] == pytest.approx(r + half)
    # N = 2 uses t with one degree of freedom (12.7), not the normal 1.96
    a2, b2 = np.array([310.0, 150.0]), np.array([200.0, 195.0])
    two = ratio_interval(a2, b2)
    r2 = a2.mean() / b2.mean()
    assert two["hi"] - two["mean"] == pytest.approx(stats.t.ppf(0.975, 1) * np.std(a2 - r2 * b2, ddof=1) / (np.sqrt(2) * b2.mean()))


def test_share_of_a_first_best_saving_indistinguishable_from_zero_has_no_interval_and_says_so():
    from experiments.replications import ratio_unbounded, replicated_summary

    fb_saving = np.array([120.0, -110.0, 90.0, -95.0, 20.0])  # mean 5, standard error ~ 47
    vcg_saving = np.array([200.0, 150.0, 180.0, 160.0, 170.0])
    assert ratio_unbounded(fb_saving) and not ratio_unbounded(vcg_saving)
    # the linearised interval would be about [-856, 925] around a ratio of 34: not a number to print
    assert ratio_interval(vcg_saving, fb_saving) == {"mean": pytest.approx(34.4), "lo": None, "hi": None}
    jit = np.full(5, 1000.0)
    per_run = [{"policies": {"jit": {"settled_social_cost": jit[i], "social_cost": jit[i]},
                             "first-best": {"settled_social_cost": jit[i] - fb_saving[i], "social_cost": jit[i] - 300.0 - i},
                             "cpp-vcg": {"settled_social_cost": jit[i] - vcg_saving[i], "social_cost": jit[i] - 250.0}},
                "participation": {}} for i in range(5)]
    out = replicated_summary(per_run, ["jit", "first-best", "cpp-vcg"])
    share = out["policies"]["cpp-vcg"]["share_of_first_best"]
    assert share["mean"] == pytest.approx(34.4) and share["lo"] is None and share["hi"] is None
    assert out["policies"]["first-best"]["share_of_first_best"] == {"mean": 1.0, "lo": 1.0, "hi": 1.0}
    # the raw basis has a clear first-best saving: its interval stays bounded, and only the settled one is warned about
    raw = out["policies"]["cpp-vcg"]["share_of_first_best_saving"]
    assert raw["lo"] is not None and raw["lo"] <= raw["mean"] <= raw["hi"]
    assert len(out["warnings"]) == 1 and "share_of_first_best:" in out["warnings"][0] and "settled" in out["warnings"][0]
