"""Traces: the CSV format round-trips every bit, the loader matches names and reports bad files."""

from __future__ import annotations

import csv
import dataclasses
import json
import random
from pathlib import Path

import numpy as np
import pytest
import yaml

from experiments.cli import main as cli
from forecasts.inputs import WorldInputs, draw_inputs
from forecasts.traces import (
    format_float,
    parse_float,
    read_trace,
    resolve_trace_dir,
    trace_scenario,
    write_trace,
)
from sim.model.errors import FlosimError
from sim.model.scenario import load_scenario

WEEKS = 3


@pytest.fixture(scope="module")
def scenario():
    return load_scenario("default").model_copy(update={"weeks": WEEKS})


@pytest.fixture(scope="module")
def inputs(scenario):
    return draw_inputs(scenario, weeks=WEEKS)


@pytest.fixture()
def trace(tmp_path, scenario, inputs) -> Path:
    return write_trace(tmp_path / "trace", scenario, inputs)


def _bitwise_equal(a: WorldInputs, b: WorldInputs) -> bool:
    return all(
        getattr(a, n).shape == getattr(b, n).shape and getattr(a, n).tobytes() == getattr(b, n).astype(getattr(a, n).dtype).tobytes()
        for n in ("demand", "forecasts", "forecast_sd", "delays")
    )


@pytest.mark.parametrize("x", [0.1, 1 / 3, 2 / 3 * 1e-300, 5e-324, 1.7976931348623157e308, 123456.789012345678, 0.0])
def test_float_text_round_trips_exactly(x):
    assert parse_float(format_float(x)) == x
    assert parse_float(x.hex()) == x


def test_written_trace_reads_back_bit_for_bit(trace, scenario, inputs):
    assert sorted(p.name for p in trace.iterdir()) == ["delays.csv", "demand.csv", "forecasts.csv", "scenario.yaml", "trace.json"]
    meta = json.loads((trace / "trace.json").read_text())
    assert meta["weeks"] == WEEKS and meta["horizon"] == scenario.horizon and meta["lanes"][0] == "CIN->DAL"
    back = read_trace(trace).inputs_for(scenario)
    assert _bitwise_equal(inputs, back)
    assert not np.shares_memory(back.demand, inputs.demand)


def test_row_order_does_not_matter(trace, scenario, inputs):
    path = trace / "forecasts.csv"
    rows = list(csv.reader(path.open()))
    body = rows[1:]
    random.Random(0).shuffle(body)
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows([rows[0], *body])
    assert _bitwise_equal(inputs, read_trace(trace).inputs_for(scenario))


def test_trace_scenario_drives_draw_inputs(trace, scenario, inputs, monkeypatch):
    s = trace_scenario(trace)
    assert s.demand.model == "trace" and Path(s.demand.trace_dir).is_absolute() and s.seed == scenario.seed
    assert _bitwise_equal(inputs, draw_inputs(s))
    # a shortened replay reads the first weeks
    assert _bitwise_equal(WorldInputs(inputs.demand[:2], inputs.forecasts[:2], inputs.forecast_sd[:2], inputs.delays[:2]),
                          draw_inputs(s, weeks=2))
    # a relative trace_dir is resolved against the working directory
    monkeypatch.chdir(trace.parent)
    rel = scenario.with_overrides({"demand.model": "trace", "demand.trace_dir": trace.name})
    assert resolve_trace_dir(trace.name) == trace.resolve()
    assert _bitwise_equal(inputs, draw_inputs(rel))


def test_relative_trace_dir_in_a_scenario_file_is_read_beside_the_file(trace, scenario, inputs, tmp_path, monkeypatch):
    """A scenario file next to its trace reads that trace from any working directory."""
    data = scenario.model_dump(mode="json")
    data["demand"].update(model="trace", trace_dir=trace.name)
    path = trace.parent / "uses_trace.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    s = load_scenario(path)
    assert Path(s.demand.trace_dir) == trace.resolve()
    assert _bitwise_equal(inputs, draw_inputs(s))
    # a name that is not beside the file is left as written (working directory, then built-in traces)
    data["demand"]["trace_dir"] = "traces/pilot"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert load_scenario(path).demand.trace_dir == "traces/pilot"


def test_shipped_pilot_trace_belongs_to_the_pilot_scenario():
    """The shipped trace is a fixed record of a period: it must fit the pilot's network and costs (so
    edits to pilot.yaml need a new recording). It was recorded from the pilot's seed; a later change to
    how inputs are drawn does not change the recorded period, so only its level is compared here."""
    pilot = load_scenario("pilot")
    assert pilot.weeks == 9 and pilot.horizon == 6 and len(pilot.regions) == 5 and len(pilot.origins) == 3
    assert "CIN" in [o.name for o in pilot.origins] and {"DAL", "PHX"} <= {f.name for f in pilot.fcs}
    folder = resolve_trace_dir("traces/pilot")
    recorded = load_scenario(folder / "scenario.yaml")
    assert recorded.model_dump() == pilot.model_dump()
    replay = trace_scenario(folder)
    assert replay.seed == pilot.seed and replay.weeks == 9
    replayed = draw_inputs(replay)
    assert replayed.forecasts.shape == (9, 6, 5, len(pilot.products)) and replayed.delays.shape == (9, len(pilot.lanes))
    drawn = draw_inputs(pilot)
    assert abs(replayed.demand.sum() / drawn.demand.sum() - 1) < 0.05


def _edit(path: Path, line: int, field: str, value: str) -> None:
    rows = list(csv.reader(path.open()))
    rows[line - 1][rows[0].index(field)] = value
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)


@pytest.mark.parametrize(
    "file, line, field, value, expect",
    [
        ("demand.csv", 3, "units", "lots", "demand.csv: row 3: field 'units' = 'lots': not a number"),
        ("demand.csv", 2, "units", "-1", "must be finite and >= 0"),
        ("forecasts.csv", 5, "sd", "nan", "forecasts.csv: row 5: field 'sd' = 'nan'"),
        ("forecasts.csv", 4, "product", "soap", "field 'product' = 'soap': not in trace.json's products"),
        ("delays.csv", 2, "lane", "CIN->PHOENIX", "delays.csv: row 2: field 'lane' = 'CIN->PHOENIX'"),
        ("delays.csv", 3, "delay_weeks", "0.5", "must be a whole number of weeks"),
        ("demand.csv", 2, "week", "7", "field 'week' = 7: outside 0..2"),
    ],
)
def test_bad_rows_are_named(trace, file, line, field, value, expect):
    _edit(trace / file, line, field, value)
    with pytest.raises(FlosimError, match=expect.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        read_trace(trace)


def test_missing_and_duplicate_entries(trace):
    rows = (trace / "demand.csv").read_text().splitlines()
    (trace / "demand.csv").write_text("\n".join(rows[:-1]) + "\n")
    with pytest.raises(FlosimError, match=r"demand\.csv: 1 entries missing, e\.g\. \(week, region, product\) = \(2, 2, 2\)"):
        read_trace(trace)
    (trace / "demand.csv").write_text("\n".join([*rows, rows[1]]) + "\n")
    with pytest.raises(FlosimError, match=r"demand\.csv: row \d+: duplicate entry"):
        read_trace(trace)


def test_trace_must_fit_the_scenario(trace, scenario):
    t = read_trace(trace)
    with pytest.raises(FlosimError, match=r"trace\.json: field 'horizon' = 6: scenario 'default' plans 4 weeks ahead"):
        t.inputs_for(scenario.model_copy(update={"horizon": 4}))
    with pytest.raises(FlosimError, match="shorter than the 5 weeks"):
        t.inputs_for(scenario, weeks=5)
    renamed = dataclasses.replace(t, meta={**t.meta, "products": ["detergent", "paper_towels", "blades"]})
    with pytest.raises(FlosimError, match=r"field 'products': the scenario's \['razors'\] are not in the trace"):
        renamed.inputs_for(scenario)


def test_write_refuses_to_clobber(tmp_path, scenario, inputs):
    other = tmp_path / "notes"
    other.mkdir()
    (other / "x.txt").write_text("mine")
    with pytest.raises(FlosimError, match="already exists"):
        write_trace(other, scenario, inputs)
    with pytest.raises(FlosimError, match="not a trace folder"):
        write_trace(other, scenario, inputs, overwrite=True)
    assert (other / "x.txt").read_text() == "mine"


def test_command_line_errors_exit_2_without_traceback(trace, capsys, tmp_path):
    (trace / "delays.csv").unlink()
    assert cli(["replay", str(trace), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "delays.csv: missing" in err and "Traceback" not in err
    assert cli(["replay", str(tmp_path / "nowhere")]) == 2
    assert "no such trace folder and not a shipped trace (shipped: pilot)" in capsys.readouterr().err
    assert cli(["record", "--scenario", "default", "--weeks", "2", "--out", str(trace)]) == 2
    assert "already exists" in capsys.readouterr().err
