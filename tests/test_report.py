"""flosim report: one self-contained HTML page (or Markdown) with the tables and figures."""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from experiments.cli import main as cli
from experiments.report import write_report
from experiments.sweep import load_spec, run_sweep
from sim.model.scenario import load_scenario
from conftest import write_flaky_policy


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "out"
    assert cli(["run", "--weeks", "2", "--policy", "jit", "--policy", "first-best", "--policy", "cpp-vcg", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory) -> Path:
    """Two design points; at the second, a user's policy raises in every run (failed runs)."""
    tmp = tmp_path_factory.mktemp("sweep")
    write_flaky_policy(tmp, module="flaky_report")
    spec = tmp / "spec.yaml"
    spec.write_text(textwrap.dedent("""\
        name: report
        scenario: flaky.yaml
        weeks: 2
        policies: [first-best, "flaky_report:Flaky"]
        replications: 2
        grid: {policies.flaky.fail: [false, true]}
    """))
    sys.path.insert(0, str(tmp))
    try:
        run_sweep(load_spec(spec), tmp / "out")
    finally:
        sys.path.remove(str(tmp))
    return tmp / "out"


def test_html_report_is_self_contained(run_dir, capsys):
    assert cli(["report", str(run_dir)]) == 0
    path = run_dir / "report.html"
    assert f"report: {path}" in capsys.readouterr().out
    text = path.read_text()
    assert len(text) > 50_000 and text.startswith("<!DOCTYPE html>")
    images = re.findall(r"<img [^>]*src='([^']*)'", text)
    assert len(images) >= 4 and all(src.startswith("data:image/png;base64,") and len(src) > 10_000 for src in images)
    assert not re.search(r"(src|href)=['\"](?!data:)", text)  # nothing external
    for needle in ("Policy comparison", "Cost components", "Participation", "cpp-vcg", "first-best", "social cost",
                   "share of first-best saving", "lost_sales", "seed"):
        assert needle in text
    assert (run_dir / "plots" / "social_cost.png").exists()


def test_sweep_report_lists_design_points_and_failed_runs(sweep_dir, tmp_path):
    path = write_report(sweep_dir, tmp_path / "r" / "sweep.html")
    text = path.read_text()
    assert "Design points" in text and "policies.flaky.fail" in text and "± " in text
    # the design points' savings are the settled ones, and say so
    from experiments.plots.data import load_plot_data
    from experiments.report import _fmt, design_table

    data = load_plot_data(sweep_dir)
    table = design_table(data)
    cols = [c for c in table.columns if "saving vs JIT" in c]
    assert cols and all(c.startswith("settled saving vs JIT: ") for c in cols)
    rows = data.summary[data.summary.policy != "jit"]
    p = cols[0].split(": ", 1)[1]
    expect = rows[(rows.policy == p) & (rows.point == table["point"].iloc[0])]["settled_saving_vs_jit"].mean()
    assert table[cols[0]].iloc[0] == _fmt(expect)
    assert "Failed runs" in text and "flaky policy asked to fail" in text and "RuntimeError" in text
    assert text.count("data:image/png;base64,") >= 3


def test_markdown_report_links_existing_images(run_dir, tmp_path):
    path = write_report(run_dir, tmp_path / "report.md", fmt="md")
    text = path.read_text()
    assert text.startswith("# flosim report") and "| policy | settled social cost |" in text
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(links) >= 4 and all((path.parent / link).exists() for link in links)


def test_report_of_a_missing_folder_exits_2(tmp_path, capsys):
    assert cli(["report", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "no such results folder" in err and "Traceback" not in err
