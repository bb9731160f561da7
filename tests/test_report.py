"""flosim report: one self-contained HTML page (or Markdown) with the tables and figures."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from experiments.cli import main as cli
from experiments.report import write_report
from experiments.sweep import load_spec, run_sweep


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "out"
    assert cli(["run", "--weeks", "2", "--policy", "jit", "--policy", "first-best", "--policy", "cpp-vcg", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("sweep")
    spec = tmp / "spec.yaml"
    spec.write_text(textwrap.dedent("""\
        name: report
        weeks: 2
        policies: [first-best]
        replications: 2
        grid: {demand.cv: [0.2, -1.0]}
    """))
    run_sweep(load_spec(spec), tmp / "out")
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
    assert "Design points" in text and "demand.cv" in text and "± " in text
    assert "Failed runs" in text and "-1.0" in text and "ScenarioError" in text
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
