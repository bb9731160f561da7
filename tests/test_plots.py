"""flosim plot: every figure family is drawn from saved results (run and sweep), in PNG/SVG/PDF."""

from __future__ import annotations

import json
import struct
import textwrap
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

from experiments.cli import main as cli
from experiments.intervals import mean_ci
from experiments.plots.data import load_plot_data, weekly_margins
from experiments.plots.figures import make_plots
from experiments.sweep import load_spec, run_sweep
from policies.registry import available_policies
from sim.model.errors import FlosimError

POLICIES = ["jit", "first-best", "cpp-vcg"] + (["cpp"] if "cpp" in available_policies() else [])


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "out"
    args = ["run", "--weeks", "3", "--out", str(out)]
    for p in POLICIES:
        args += ["--policy", p]
    assert cli(args) == 0
    return out


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("sweep")
    spec = tmp / "spec.yaml"
    spec.write_text(textwrap.dedent("""\
        name: plots
        weeks: 2
        policies: [first-best, cpp-vcg]
        replications: 2
        grid: {lanes.0.spare_volume: [0, 700]}
    """))
    run_sweep(load_spec(spec), tmp / "out")
    return tmp / "out"


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def _non_trivial_png(path: Path) -> None:
    width, height = _png_size(path)
    assert width > 600 and height > 400 and path.stat().st_size > 20_000
    pixels = mpimg.imread(path)
    assert pixels.std() > 0.05  # not a blank canvas
    assert (pixels[..., :3].max(axis=-1) - pixels[..., :3].min(axis=-1)).max() > 0.3  # has colour (policy series)


def test_run_figures_are_written_and_non_trivial(run_dir, capsys):
    assert cli(["plot", str(run_dir), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    names = {Path(p).stem for p in report["files"]}
    assert {"social_cost", "savings_vs_jit", "cbt_by_week", "participation"} <= names
    assert "savings_vs_parameters" in report["skipped"]
    if "cpp" in POLICIES:
        assert "cpp_convergence" in names
    for f in report["files"]:
        assert Path(f).parent == run_dir / "plots"
        _non_trivial_png(Path(f))


def test_other_formats_and_out_folder(run_dir, tmp_path):
    result = make_plots(run_dir, tmp_path / "figs", formats=["svg", "pdf"])
    svg = (tmp_path / "figs" / "social_cost.svg").read_text()
    assert "<svg" in svg and "settled social cost (currency units)" in svg and "first-best" in svg
    pdf = (tmp_path / "figs" / "participation.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and len(pdf) > 10_000
    assert all(p.parent == tmp_path / "figs" for p in result.paths)
    assert not (run_dir / "plots" / "social_cost.svg").exists()


def test_sweep_figures_include_savings_against_parameters(sweep_dir):
    result = make_plots(sweep_dir)
    made = {spec.stem for spec, _ in result.made}
    assert {"social_cost", "savings_vs_jit", "participation", "savings_vs_parameters"} <= made
    for p in result.paths:
        _non_trivial_png(p)


def test_sweep_and_participation_figures_say_settled_or_raw(sweep_dir, tmp_path):
    from experiments.plots.data import settled_or_raw

    data = load_plot_data(sweep_dir)
    assert settled_or_raw(data.summary, "saving_vs_jit") == ("settled_saving_vs_jit", "settled")
    # the figure plots that column: each point's mean against the panel's parameter
    make_plots(sweep_dir, tmp_path / "figs", formats=["svg"])
    svg = (tmp_path / "figs" / "savings_vs_parameters.svg").read_text()
    assert "settled saving vs JIT (currency units)" in svg
    # weekly margins are the measured weeks only, and the axis says so
    assert "raw margin, measured weeks (currency units)" in (tmp_path / "figs" / "participation.svg").read_text()
    # a sweep without settled figures (written before they existed) is drawn raw and labelled so
    assert settled_or_raw(data.summary.drop(columns=[c for c in data.summary if c.startswith("settled_")]),
                          "saving_vs_jit") == ("saving_vs_jit", "raw")


def test_statistics_behind_the_figures(sweep_dir, run_dir):
    m, h, n = mean_ci([1.0, 2.0, 3.0])
    assert (m, n) == (2.0, 3) and h == pytest.approx(4.302652729911275 * 1 / np.sqrt(3))
    assert np.isnan(mean_ci([5.0])[1])
    data = load_plot_data(sweep_dir)
    assert data.kind == "sweep" and data.replications == 2 and data.points == 2
    stats = data.across(data.summary, "social_cost", ["policy"]).set_index("policy")
    per_rep = data.summary[data.summary.policy == "jit"].groupby("replication")["social_cost"].mean()
    assert stats.loc["jit", "mean"] == pytest.approx(per_rep.mean()) and stats.loc["jit", "n"] == 2
    # ex post margins from the ledger add up to the run summary's cumulative margins
    run = load_plot_data(run_dir)
    margins = weekly_margins(run).groupby(["policy", "party"])["margin"].sum()
    for policy, party in margins.index:
        expected = run.summary.set_index("policy").loc[policy, f"{party}_cumulative_margin"]
        assert margins[(policy, party)] == pytest.approx(expected, rel=1e-9, abs=1e-6)


def test_bad_folders_exit_2(tmp_path, capsys):
    assert cli(["plot", str(tmp_path / "missing")]) == 2
    assert "no such results folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert cli(["plot", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert "not a results folder (no ledger.parquet)" in err and "Traceback" not in err
    with pytest.raises(FlosimError, match="--format 'gif'"):
        make_plots(tmp_path / "empty", formats=["gif"])


def test_cpp_convergence_reads_saved_transcripts(tmp_path):
    """A results folder holding CPP transcripts gets their residual histories plotted."""
    import shutil

    import numpy as np
    from sim.negotiation.transcript import Transcript

    folder = tmp_path / "run"
    assert cli(["run", "--weeks", "1", "--policy", "jit", "--policy", "first-best", "--out", str(folder)]) == 0
    t = Transcript(shape=(2,), n_agents=2)
    for k in range(1, 30):
        t.record(k, np.ones(2), np.zeros((2, 2)), 1.0, np.ones((2, 2)), primal=10.0 * 0.7**k, dual=5.0 * 0.8**k)
    (folder / "transcripts").mkdir()
    t.save(folder / "transcripts" / "week0.parquet")
    result = make_plots(folder)
    made = {spec.stem: paths for spec, paths in result.made}
    assert "cpp_convergence" in made
    _non_trivial_png(made["cpp_convergence"][0])
    shutil.rmtree(folder / "transcripts")
    assert "cpp_convergence" in {spec.stem for spec, _ in make_plots(folder).skipped}
