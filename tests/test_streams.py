"""Random inputs as declared streams: the same seed draws the same numbers as before streams were
declared, and a new stream is one declaration (drawn reproducibly, written to a trace, read back)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).parent / "data"
sys.path.insert(0, str(DATA))
from make_inputs_golden import RUNS, draw_all  # noqa: E402

GOLDEN = DATA / "inputs_golden.npz"
OLD_TRACE = DATA / "trace_default_2w"  # written by main at 9f80133


def _stored_scenario(key: str):
    """The resolved scenario a stored run was drawn from."""
    import yaml

    from sim.model.scenario import scenario_from_dict

    return scenario_from_dict(yaml.safe_load(str(np.load(GOLDEN)[f"{key}/scenario"])))


def _old_trace_scenario():
    from sim.model.scenario import load_scenario

    return load_scenario(OLD_TRACE / "scenario.yaml")


def test_draws_equal_those_made_before_streams_were_declared():
    """Every array of tests/data/inputs_golden.npz (drawn by main at 9f80133, before this change),
    bit for bit: same child seeds, same order, same dtype, for a v1 and a v2 scenario, the pilot, a
    deterministic run, a cool-down and the policies' generators."""
    stored = np.load(GOLDEN)
    arrays = [k for k in stored.files if not k.endswith("/scenario")]
    drawn = draw_all({key: str(stored[f"{key}/scenario"]) for key, *_ in RUNS})
    assert sorted(drawn) == sorted(arrays) and len(arrays) == 4 * len(RUNS) + 3
    for key in arrays:
        assert drawn[key].dtype == stored[key].dtype and drawn[key].shape == stored[key].shape, key
        assert drawn[key].tobytes() == stored[key].tobytes(), key


# -- traces recorded before streams were declared ------------------------------------------------------------
def _golden_digests() -> dict[str, str]:
    import json

    return json.loads((DATA / "trace_digests_golden.json").read_text())


def test_traces_recorded_before_read_and_digest_as_before():
    """The shipped pilot trace and a small trace written by main before this change: the same digest
    (sweeps key their runs by it), and the small one reads back to exactly what main drew."""
    from forecasts.inputs import draw_inputs
    from forecasts.traces import read_trace, resolve_trace_dir, trace_digest

    digests = _golden_digests()
    assert trace_digest(OLD_TRACE) == digests["trace_default_2w"]
    assert trace_digest(resolve_trace_dir("traces/pilot")) == digests["pilot"]
    s = _old_trace_scenario()
    back = read_trace(OLD_TRACE).inputs_for(s)
    drawn = draw_inputs(s)
    assert back.names == drawn.names == ["demand", "forecasts", "forecast_sd", "delays", "capacity"]
    assert np.all(back.capacity == 1.0)  # declared after it was recorded: full capacity throughout
    for name in back.names:
        assert back[name].dtype == drawn[name].dtype and back[name].tobytes() == drawn[name].tobytes(), name


def test_a_trace_written_now_has_the_same_files_as_before(tmp_path):
    """``write_trace`` writes the same bytes as main did (tests/data/trace_default_2w) for the same
    inputs, read from that trace; trace.json differs only in when and by what it was made."""
    import json

    from forecasts.traces import read_trace, write_trace

    s = _old_trace_scenario()
    old = OLD_TRACE
    new = write_trace(tmp_path / "t", s, read_trace(old).inputs_for(s), seed=s.seed)
    assert sorted(p.name for p in new.iterdir()) == sorted(p.name for p in old.iterdir())
    for name in ("demand.csv", "forecasts.csv", "delays.csv"):
        assert (new / name).read_bytes() == (old / name).read_bytes(), name
    a, b = (json.loads((f / "trace.json").read_text()) for f in (new, old))
    assert list(a) == list(b)
    assert {k: v for k, v in a.items() if k not in ("created", "source")} == {k: v for k, v in b.items() if k not in ("created", "source")}


# -- the record ----------------------------------------------------------------------------------------------
def test_world_inputs_hold_streams_by_name_and_keep_the_old_ways_in():
    import dataclasses

    from forecasts.streams import WorldInputs

    d, f, sd, l = np.ones((2, 1, 1)), np.zeros((2, 3, 1, 1)), np.zeros((2, 3, 1, 1)), np.zeros((2, 4), dtype=np.int64)
    a = WorldInputs(d, f, sd, l)
    b = WorldInputs(demand=d, forecasts=f, forecast_sd=sd, delays=l)
    c = WorldInputs(streams={"demand": d, "forecasts": f, "forecast_sd": sd, "delays": l})
    assert a.same_as(b) and b.same_as(c) and a.weeks == 2 and a.demand is d and a["delays"] is l
    e = dataclasses.replace(a, demand=d + 1)
    assert e.names == a.names and np.array_equal(e.demand, d + 1) and e.delays is l and not e.same_as(a)
    assert not a.same_as(WorldInputs(d, f, sd))
    with pytest.raises(AttributeError, match="holds no stream 'capacity'"):
        a.capacity
    with pytest.raises(ValueError, match="first axis is the week"):
        WorldInputs(d, f[:1], sd, l)


def test_declarations_flosim_could_not_store_unambiguously_are_refused():
    from forecasts import catalogue
    from forecasts.streams import Source, Stream, check_catalogue

    def draw(s, weeks, rng):
        return {}

    with pytest.raises(ValueError, match="first axis must be 'week'"):
        Stream("x", ("origin", "week"), "x.csv", "v", neutral=0)
    with pytest.raises(ValueError, match="must declare its neutral value"):
        Stream("x", ("week",), "x.csv", "v")
    with pytest.raises(ValueError, match="neutral value 2 outside"):
        Stream("x", ("week",), "x.csv", "v", high=1.0, neutral=2)
    with pytest.raises(ValueError, match="not one of"):
        Stream("weeks", ("week",), "x.csv", "v", neutral=0)
    twice = Source("again", (Stream("delays", ("week", "lane"), "d2.csv", "v", neutral=0),), draw=draw)
    with pytest.raises(ValueError, match="stream 'delays' declared twice"):
        check_catalogue((*catalogue.SOURCES, twice), catalogue.AXES)
    shared = Source("shared", (Stream("x", ("week", "origin"), "demand.csv", "x", neutral=0),), draw=draw)
    with pytest.raises(ValueError, match="share demand.csv but not their axes"):
        check_catalogue((*catalogue.SOURCES, shared), catalogue.AXES)
    unknown = Source("u", (Stream("x", ("week", "planet"), "x.csv", "v", neutral=0),), draw=draw)
    with pytest.raises(ValueError, match=r"unknown axes \['planet'\]"):
        check_catalogue((*catalogue.SOURCES, unknown), catalogue.AXES)
    with pytest.raises(ValueError, match="source 'policy' declared twice"):
        check_catalogue((*catalogue.SOURCES, Source("policy")), catalogue.AXES)


# -- a new stream is one declaration -------------------------------------------------------------------------
def _draw_noise(s, weeks, rng):
    return {"noise": rng.uniform(size=(weeks, len(s.all_origins)))}


@pytest.fixture()
def noise(monkeypatch):
    """One declaration, appended to the catalogue as a new stream would be: uniform draws per week and
    origin, stored in noise.csv. Nothing else is changed."""
    from forecasts import catalogue
    from forecasts.streams import Source, Stream

    source = Source("noise", (Stream("noise", ("week", "origin"), "noise.csv", "u", high=1.0, neutral=0.5),), draw=_draw_noise)
    monkeypatch.setattr(catalogue, "SOURCES", (*catalogue.SOURCES, source))
    return source


def test_a_new_stream_is_drawn_reproducibly_from_its_own_child(noise):
    from forecasts.inputs import draw_inputs, settle_inputs

    s = _stored_scenario("default")
    a, b = draw_inputs(s, weeks=4), draw_inputs(s, weeks=4)
    assert a.names == ["demand", "forecasts", "forecast_sd", "delays", "capacity", "noise"]
    assert a.noise.shape == (4, 3) and a.same_as(b)
    assert not np.array_equal(a.noise, draw_inputs(s, weeks=4, seed=s.seed + 1).noise)
    # its own child of the seed: the fifth (after demand, delays, the policies' generators and capacity)
    child = np.random.SeedSequence(s.seed).spawn(5)[4]
    assert a.noise.tobytes() == np.random.default_rng(child).uniform(size=(4, 3)).tobytes()
    # and the streams declared before it draw exactly what main drew
    stored = np.load(GOLDEN)
    for name in ("demand", "forecasts", "forecast_sd", "delays"):
        assert a[name].tobytes() == stored[f"default/{name}"].tobytes(), name
    # the cool-down holds its neutral value
    settled = settle_inputs(a, 3, 2)
    assert settled.noise.shape == (5, 3) and np.array_equal(settled.noise[:3], a.noise[:3]) and np.all(settled.noise[3:] == 0.5)


def test_a_new_stream_is_written_to_a_trace_and_read_back_identically(noise, tmp_path):
    import csv
    import json

    from forecasts.inputs import draw_inputs
    from forecasts.traces import read_trace, trace_digest, trace_scenario, write_trace
    from sim.model.scenario import load_scenario

    s = load_scenario("two-vendors").model_copy(update={"weeks": 3})
    inputs = draw_inputs(s)
    trace = write_trace(tmp_path / "t", s, inputs)
    assert (trace / "noise.csv").exists()
    rows = list(csv.reader((trace / "noise.csv").open()))
    origins = [o.name for o in s.all_origins]
    assert rows[0] == ["week", "origin", "u"] and len(rows) == 1 + 3 * len(origins)
    assert json.loads((trace / "trace.json").read_text())["origins"] == origins
    back = read_trace(trace).inputs_for(s)
    assert back.names == inputs.names
    for name in inputs.names:
        assert back[name].dtype == inputs[name].dtype and back[name].tobytes() == inputs[name].tobytes(), name
    assert draw_inputs(trace_scenario(trace)).same_as(inputs)
    # a scenario listing the origins in another order gets the trace's values by name
    flipped = s.model_copy(update={"vendors": list(reversed(s.vendors))})
    order = [origins.index(o.name) for o in flipped.all_origins]
    assert np.array_equal(read_trace(trace).inputs_for(flipped).noise, inputs.noise[:, order])
    # the digest covers it; a value outside its declared range is refused, naming file, row and field
    before = trace_digest(trace)
    text = (trace / "noise.csv").read_text().splitlines()
    text[1] = ",".join([*text[1].split(",")[:2], "0.25"])
    (trace / "noise.csv").write_text("\n".join(text) + "\n")
    assert trace_digest(trace) != before
    text[1] = ",".join([*text[1].split(",")[:2], "1.5"])
    (trace / "noise.csv").write_text("\n".join(text) + "\n")
    from sim.model.errors import FlosimError

    with pytest.raises(FlosimError, match=r"noise\.csv: row 2: field 'u' = '1\.5': must be finite and in \[0, 1\]"):
        read_trace(trace)


def test_old_traces_replay_unchanged_with_a_new_stream_declared(noise):
    """Traces recorded before the stream existed: same digest, same inputs, the new stream neutral."""
    from forecasts.inputs import draw_inputs
    from forecasts.traces import read_trace, resolve_trace_dir, trace_digest, trace_scenario

    digests = _golden_digests()
    assert trace_digest(OLD_TRACE) == digests["trace_default_2w"]
    assert trace_digest(resolve_trace_dir("traces/pilot")) == digests["pilot"]
    s = _old_trace_scenario()
    back = read_trace(OLD_TRACE).inputs_for(s)
    assert back.names == ["demand", "forecasts", "forecast_sd", "delays", "capacity", "noise"]
    assert back.noise.shape == (2, 3) and np.all(back.noise == 0.5)
    drawn = draw_inputs(s)  # the streams declared before it are drawn as main drew them
    for name in ("demand", "forecasts", "forecast_sd", "delays"):
        assert back[name].tobytes() == drawn[name].tobytes(), name
    pilot = draw_inputs(trace_scenario(resolve_trace_dir("traces/pilot")))
    assert pilot.noise.shape == (9, 3) and np.all(pilot.noise == 0.5)


def test_the_world_runs_on_inputs_with_a_new_stream(noise):
    """The world reads the streams it uses by name; one it does not use changes nothing."""
    import pandas as pd

    from forecasts.inputs import draw_inputs
    from forecasts.streams import WorldInputs
    from sim.runner import run_policies
    from sim.model.scenario import load_scenario

    s = load_scenario("default").model_copy(update={"weeks": 2})
    inputs = draw_inputs(s)
    assert "noise" in inputs
    without = WorldInputs(streams={n: inputs[n] for n in inputs.names if n != "noise"})
    a = run_policies(s, ["jit"], inputs=inputs)
    b = run_policies(s, ["jit"], inputs=without)
    pd.testing.assert_frame_equal(a.ledger, b.ledger, check_exact=True)
