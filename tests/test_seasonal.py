"""The mutual-commitment study's inputs: the built-in ``seasonal`` scenario (a V-ADK seasonal peak with
capacity that binds before it), the named revision speeds (``demand.revision.profile``) its sweep
varies, and the sweep specs (experiments/specs/commitment*.yaml)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from experiments.cli import main
from forecasts.demand import VADK_SEASONAL, mean_demand
from forecasts.evolution import REVISION_PROFILES, revision_shares
from forecasts.inputs import draw_inputs
from sim.model.scenario import Revision, load_scenario
from conftest import assert_run_refuses

SEASONAL = load_scenario("seasonal")


# -- the scenario ------------------------------------------------------------------------------------
def test_the_peak_falls_inside_the_run_and_capacity_binds_before_it():
    s = SEASONAL
    mults = list(s.demand.multipliers)
    # the V-ADK seasonal profile, whole, inside the measured weeks
    start = next(i for i in range(len(mults)) if tuple(mults[i:i + len(VADK_SEASONAL)]) == VADK_SEASONAL)
    peak = start + int(np.argmax(VADK_SEASONAL))
    assert peak < s.weeks - 1, "the peak and a week after it are measured"
    assert peak >= s.horizon - 3, "the peak is not visible at the first planning round: stock must be built on purpose"
    total = mean_demand(s, s.weeks).sum(axis=(1, 2))  # [weeks]
    capacity = sum(o.capacity for o in s.origins)
    assert total[peak] > 1.5 * capacity, "the peak week cannot be made in the peak week"
    # ... but it can be made ahead: the slack of the weeks before it (minus the lead time) covers the excess
    slack = sum(capacity - total[w] for w in range(start, peak))
    assert total[peak] - capacity < slack
    assert np.all(total[:start] < capacity), "capacity does not bind in the calm weeks"


def test_jit_loses_the_peak_and_the_first_best_builds_ahead(tmp_path, capsys):
    """With known demand (`deterministic`), the first best produces ahead and serves the peak week in
    full; JIT's vendor, which sees one week's PO, ships its capacity and the peak's excess is lost."""
    data = yaml.safe_load(open(_builtin_path("seasonal")))
    data["demand"]["deterministic"] = True
    path = tmp_path / "seasonal-known.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    out = tmp_path / "run"
    assert main(["run", "--scenario", str(path), "--policy", "jit", "--policy", "first-best", "--json", "--out", str(out)]) == 0
    capsys.readouterr()
    flows = pd.read_parquet(out / "flows.parquet").set_index(["policy", "week"])
    peak = 7
    capacity = sum(o["capacity"] for o in data["origins"])
    jit, fb = flows.loc["jit"], flows.loc["first-best"]
    assert jit.loc[peak - 1, "shortfall"] > 1000  # the PO for the peak exceeds what one week makes
    assert jit.loc[peak, "unmet"] > 1000
    assert fb.loc[peak, "unmet"] < 1.0
    # built ahead: produced at (near) capacity before the peak, and the FCs hold more than a week's demand
    assert fb.loc[peak - 2, "produced"] > 0.95 * capacity
    assert fb.loc[peak - 1, "fc_stock_end"] > 0.4 * jit.loc[peak, "demand"]
    summary = pd.read_parquet(out / "flows.parquet").groupby("policy").unmet.sum()
    assert summary["first-best"] < summary["jit"] - 1000


def _builtin_path(name: str):
    from importlib import resources

    return resources.files("sim") / "scenarios" / f"{name}.yaml"


# -- revision speed --------------------------------------------------------------------------------
def test_the_scenario_schema_names_every_profile():
    assert set(Revision.model_fields["profile"].annotation.__args__[0].__args__) == set(REVISION_PROFILES)


@pytest.mark.parametrize("profile, shares", [("equal", [1] * 6), ("fast", [1, 2, 4, 8, 16, 32]), ("slow", [32, 16, 8, 4, 2, 1])])
def test_a_profile_draws_what_its_shares_would(profile, shares):
    s = SEASONAL
    named = draw_inputs(s.with_overrides({"demand.revision.profile": profile}), weeks=4)
    listed = draw_inputs(s.with_overrides({"demand.revision.shares": shares}), weeks=4)
    for name in ("demand", "forecasts", "forecast_sd"):
        np.testing.assert_array_equal(named[name], listed[name])


def test_equal_profile_is_the_default_exactly():
    a = draw_inputs(SEASONAL, weeks=4)
    b = draw_inputs(SEASONAL.with_overrides({"demand.revision.profile": "equal"}), weeks=4)
    for name in ("demand", "forecasts", "forecast_sd"):
        np.testing.assert_array_equal(a[name], b[name])


def test_fast_revision_resolves_early_and_slow_late():
    H = 6
    left = {p: np.sqrt(np.cumsum(revision_shares(H, profile=p))) for p in REVISION_PROFILES}  # sd left j weeks out
    assert left["fast"][2] < left["equal"][2] < left["slow"][2]
    assert left["fast"][2] == pytest.approx(np.sqrt(7 / 63)) and left["slow"][2] == pytest.approx(np.sqrt(56 / 63))
    # as the forecasts say: the unresolved sd two weeks out of the peak, fast against slow
    sd = {p: draw_inputs(SEASONAL.with_overrides({"demand.revision.profile": p}), weeks=6).forecast_sd[5, 2] for p in ("fast", "slow")}
    np.testing.assert_allclose(sd["fast"] / sd["slow"], np.sqrt(7 / 56), rtol=1e-12)


BAD_REVISION = [
    ({"profile": "medium"}, ["demand.revision.profile", "medium"]),
    ({"profile": 3}, ["demand.revision.profile", "3"]),
    ({"profile": "fast", "shares": [1, 1, 1, 1, 1, 1]}, ["demand.revision.profile", "not both"]),
    ({"speed": "fast"}, ["demand.revision.speed"]),
]


@pytest.mark.parametrize("revision, needles", BAD_REVISION, ids=[str(i) for i in range(len(BAD_REVISION))])
def test_bad_revision_settings_exit_2_naming_the_field(revision, needles, tmp_path, capsys):
    data = copy.deepcopy(yaml.safe_load(open(_builtin_path("seasonal"))))
    data["demand"]["revision"] = revision
    assert_run_refuses(data, "jit", needles, tmp_path, capsys)


# -- the study's table and figure (experiments/plots/commitment.py) ------------------------------------
def _fake_summary() -> pd.DataFrame:
    """Two uncertainty cells x k in {1, 2} x b in {0, 0.25} x 3 replications, with known changes."""
    from experiments.plots.commitment import BAND, CV, SPEED, WEEKS

    rng = np.random.default_rng(5)
    rows = []
    for cv in (0.15, 0.6):
        base = {r: 1000.0 * (1 + cv) + 10 * r for r in range(3)}  # replication effects, common to every cell
        for k in (1, 2):
            for b in (0.0, 0.25):
                for r in range(3):
                    shift = 0.0 if k == 1 else (50.0 if b == 0 else -20.0) * (1 + cv) + r  # known paired changes
                    for policy in ("jit", "cpp-vcg"):
                        rows.append({"run_id": f"{cv}-{k}-{b}-r{r}", "replication": r, "seed": 100 + r, "policy": policy,
                                     CV: cv, SPEED: "fast", WEEKS: k, BAND: b,
                                     "settled_social_cost": base[r] + (shift if policy == "cpp-vcg" else 0) + rng.normal(0, 1e-9),
                                     "settled_net_cost_retailer": base[r] / 2 + (2 * shift if policy == "cpp-vcg" else 0),
                                     "settled_net_cost_vendor": base[r] / 2 - (shift if policy == "cpp-vcg" else 0),
                                     "lost_units": 5.0 * k})
    return pd.DataFrame(rows)


def test_the_commitment_table_pairs_each_cell_with_the_weekly_commitment():
    from experiments.intervals import mean_ci
    from experiments.plots.commitment import commitment_changes, markdown

    table = commitment_changes(_fake_summary())
    assert len(table) == 8 and set(table.n) == {3}
    weekly = table[(table.k == 1)]
    assert np.allclose(weekly[["social", "retailer", "vendor", "lost units"]].to_numpy(), 0.0, atol=1e-6)
    row = table[(table["demand.cv"] == 0.6) & (table.k == 2) & (table.b == 0.0)].iloc[0]
    diffs = [50.0 * 1.6 + r for r in range(3)]
    m, h, _ = mean_ci(diffs)
    assert row.social == pytest.approx(m) and row.social_lo == pytest.approx(m - h) and row.social_hi == pytest.approx(m + h)
    assert row.retailer == pytest.approx(2 * m) and row.vendor == pytest.approx(-m)
    assert row["lost units"] == pytest.approx(5.0)
    assert row.reference == pytest.approx(np.mean([1600.0 + 10 * r for r in range(3)]))
    text = markdown(table)
    assert text.count("\n") == 1 + len(table) and "+81 [" in text


def test_a_cell_is_paired_only_on_the_same_random_numbers():
    from experiments.plots.commitment import commitment_changes

    s = _fake_summary()
    s.loc[(s["policies.cpp-vcg.commitment.weeks"] == 2) & (s.replication == 0), "seed"] = 999  # not the same world
    table = commitment_changes(s)
    assert set(table[table.k == 2].n) == {2} and set(table[table.k == 1].n) == {3}


def test_the_commitment_figure_is_written(tmp_path):
    from experiments.plots.commitment import commitment_changes, plot_commitment

    path = plot_commitment(commitment_changes(_fake_summary()), tmp_path / "fig.pdf")
    assert path.exists() and path.stat().st_size > 1000


def test_the_commitment_tables_refuse_what_is_not_a_commitment_sweep(tmp_path, capsys):
    from experiments.plots.commitment import commitment_changes, main
    from sim.model.errors import FlosimError

    with pytest.raises(FlosimError, match="does not vary 'policies.cpp-vcg.commitment.weeks'"):
        commitment_changes(_fake_summary().drop(columns=["policies.cpp-vcg.commitment.weeks"]))
    s = _fake_summary()
    with pytest.raises(FlosimError, match="no weekly-commitment cell"):
        commitment_changes(s[s["policies.cpp-vcg.commitment.weeks"] == 2])
    assert main([str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "nowhere" in err and "not a finished sweep folder" in err and "Traceback" not in err


def test_the_one_line_per_uncertainty_table_has_every_committed_cell():
    from experiments.plots.commitment import commitment_changes, pivot_markdown

    text = pivot_markdown(commitment_changes(_fake_summary()), "vendor")
    lines = text.splitlines()
    assert lines[0] == "| CV | revision | k=2, b=0 | k=2, b=0.25 |" and len(lines) == 4  # k = 1 binds nothing: left out
    assert lines[3].startswith("| 0.6 | fast | -81 [")  # the vendor's paired change at CV 0.6, k = 2, b = 0


# -- the sweep specs (experiments/specs/commitment*.yaml) ---------------------------------------------
SPECS = Path(__file__).resolve().parents[1] / "experiments" / "specs"


def test_seasonal_commits_weekly_unless_told():
    assert SEASONAL.policies["cpp-vcg"]["commitment"] == {"weeks": 1, "band": 0.0}


@pytest.mark.parametrize("name, points, replications", [("commitment", 81, 10), ("commitment-smoke", 36, 5)])
def test_the_commitment_specs_load_with_every_design_point(name, points, replications):
    from experiments.sweep import design_points, load_spec

    loaded = load_spec(SPECS / f"{name}.yaml")
    pts = design_points(loaded.spec)
    assert len(pts) == points and loaded.spec.replications == replications
    assert {p["policies.cpp-vcg.commitment.weeks"] for p in pts} == {1, 2, 3}
    assert {p["policies.cpp-vcg.commitment.band"] for p in pts} == {0.0, 0.1, 0.25}
    assert {p["demand.revision.profile"] for p in pts} <= set(REVISION_PROFILES)
    assert loaded.scenario.name == "seasonal" and loaded.scenario.policies["cpp-vcg"]["solver"] == "central"


def test_the_smoke_sweeps_runs_are_runs_of_the_full_sweep(tmp_path):
    from experiments.sweep import load_spec, plan_runs

    full = {t.run_id for t in plan_runs(load_spec(SPECS / "commitment.yaml"), tmp_path)}
    smoke = {t.run_id for t in plan_runs(load_spec(SPECS / "commitment-smoke.yaml"), tmp_path)}
    assert len(full) == 810 and len(smoke) == 180 and smoke < full


BAD_SPEC = [
    ("policies.cpp-vcg.commitment.weeks: [0]", ["grid.policies.cpp-vcg.commitment.weeks.0", "weeks"]),
    ("policies.cpp-vcg.commitment.band: [0.1, 1.5]", ["grid.policies.cpp-vcg.commitment.band.1", "1.5"]),
    ("demand.revision.profile: [fast, sudden]", ["grid.demand.revision.profile.1", "sudden"]),
]


@pytest.mark.parametrize("grid, needles", BAD_SPEC, ids=[str(i) for i in range(len(BAD_SPEC))])
def test_bad_commitment_sweep_values_exit_2_naming_the_field(grid, needles, tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"name: bad\nscenario: seasonal\npolicies: [jit, cpp-vcg]\nreplications: 1\ngrid:\n  {grid}\n")
    out = tmp_path / "out"
    code = main(["sweep", str(spec), "--out", str(out), "--workers", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, (needle, err)
    assert not (out / "runs").exists()
