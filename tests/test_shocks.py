"""Capacity shocks and execution as its own step: no shocks changes nothing, an outage removes an
origin's production, units are conserved with shortfalls, traces carry the capacity stream, and bad
shock declarations are refused naming the field."""

from __future__ import annotations

import copy
import json
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import yaml

from experiments.cli import main
from forecasts.inputs import draw_inputs
from sim.model.scenario import load_scenario, scenario_from_dict
from sim.runner import run_policies

DATA = Path(__file__).parent / "data"
DEFAULT = yaml.safe_load((resources.files("sim") / "scenarios" / "default.yaml").read_text())


def _default(weeks: int = 3, shocks: dict | None = None, **changes):
    data = copy.deepcopy(DEFAULT)
    data.update(weeks=weeks, **changes)
    if shocks is not None:
        data["shocks"] = shocks
    return scenario_from_dict(data, "<test>")


def _ledger_rows(result) -> list[list]:
    return [[str(x.policy), int(x.week), str(x.phase), str(x.party), str(x.component), repr(float(x.value))]
            for x in result.ledger.itertuples()]


# -- no shocks: today's numbers ------------------------------------------------------------------------------
@pytest.mark.parametrize("shocks", [None, {}, {"outages": [{"probability": 0.0, "depth": 1.0}]}],
                         ids=["absent", "empty", "never"])
def test_without_shocks_the_ledger_equals_mains_bit_for_bit(shocks):
    """tests/data/default_ledger_main.json: the default scenario's ledger (3 weeks and the cool-down)
    computed by main at 319d002, before capacity shocks and the execution step existed (its cpp-vcg
    rows recomputed when CPP's default gap_tol became 1e-3; jit and first-best rows are 319d002's)."""
    stored = json.loads((DATA / "default_ledger_main.json").read_text())
    s = _default(stored["weeks"], shocks)
    result = run_policies(s, stored["policies"], progress=False)
    assert np.all(result.inputs.capacity == 1.0)
    assert _ledger_rows(result) == stored["ledger"]


def test_shocks_are_drawn_from_their_own_child_and_leave_the_other_streams_alone():
    plain = draw_inputs(_default(6))
    shocked = draw_inputs(_default(6, {"outages": [{"probability": 0.5, "depth": 0.4}],
                                       "disruptions": [{"origin": "ATL", "p_fail": 0.3, "p_recover": 0.5, "depth": 1.0}]}))
    for name in ("demand", "forecasts", "forecast_sd", "delays"):
        assert plain[name].tobytes() == shocked[name].tobytes(), name
    assert np.all(plain.capacity == 1.0)
    kappa = shocked.capacity
    assert kappa.shape == (6, 3) and np.all((0 <= kappa) & (kappa <= 1)) and np.any(kappa < 1)
    # the values an outage of depth 0.4 and a full disruption can make, and nothing else
    assert set(np.round(kappa[:, [0, 2]], 12).ravel()) <= {1.0, 0.6}
    assert set(np.round(kappa[:, 1], 12)) <= {1.0, 0.6, 0.0}
    assert shocked.capacity.tobytes() == draw_inputs(_default(6, {"outages": [{"probability": 0.5, "depth": 0.4}],
        "disruptions": [{"origin": "ATL", "p_fail": 0.3, "p_recover": 0.5, "depth": 1.0}]})).capacity.tobytes()


def test_a_markov_disruption_persists_and_recovers_as_declared():
    always = draw_inputs(_default(5, {"disruptions": [{"p_fail": 1.0, "p_recover": 0.0, "depth": 0.75}]})).capacity
    assert np.all(always == 0.25)  # fails in the first week and never recovers
    never = draw_inputs(_default(5, {"disruptions": [{"p_fail": 0.0, "p_recover": 0.0, "depth": 1.0}]})).capacity
    assert np.all(never == 1.0)
    flip = draw_inputs(_default(5, {"disruptions": [{"origin": "CIN", "p_fail": 1.0, "p_recover": 1.0, "depth": 1.0}]})).capacity
    assert flip[:, 0].tolist() == [0.0, 1.0, 0.0, 1.0, 0.0] and np.all(flip[:, 1:] == 1.0)


# -- execution -------------------------------------------------------------------------------------------
@pytest.fixture()
def executions(monkeypatch):
    """Every week's execution (sim.execution.execute's answer) of the runs made while it is active."""
    import sim.execution

    seen: list[tuple[str, int, dict]] = []
    real = sim.execution.execute

    def recording(vendors, decision, shares, **rules):
        out = real(vendors, decision, shares, **rules)
        seen.append((len(seen), np.asarray(shares).copy(), out))
        return out

    monkeypatch.setattr(sim.execution, "execute", recording)
    return seen


def test_an_outage_stops_its_origin_for_that_week_only(executions):
    outage = {"outages": [{"origin": "CIN", "probability": 1.0, "depth": 1.0, "weeks": [1]}]}
    base = run_policies(_default(3), ["jit"], progress=False)
    base_ex = [ex for _, _, ex in executions]
    executions.clear()
    hit = run_policies(_default(3, outage), ["jit"], progress=False)
    hit_ex = [ex for _, _, ex in executions]
    assert hit.inputs.capacity[:, 0].tolist() == [1.0, 0.0, 1.0] and np.all(hit.inputs.capacity[:, 1:] == 1.0)
    # without the outage Cincinnati produces in week 1; with it, nothing, and the others at most capacity
    assert base_ex[1]["vendor"].fulfilment.produced[0].sum() > 1.0
    assert hit_ex[1]["vendor"].fulfilment.produced[0].sum() <= 1e-9
    assert hit_ex[1]["vendor"].capacity.tolist() == [0.0, 700.0, 120.0]
    # week 0 is the same in both worlds, so week 1's PO is the same order
    np.testing.assert_array_equal(base_ex[0]["vendor"].shipped, hit_ex[0]["vendor"].shipped)
    np.testing.assert_array_equal(base_ex[1]["vendor"].ordered, hit_ex[1]["vendor"].ordered)
    # the week's shortfall is in the flows table and the summary
    flows = hit.flows[hit.flows.phase == "measured"].set_index("week")
    base_flows = base.flows[base.flows.phase == "measured"].set_index("week")
    assert flows.loc[1, "shortfall"] > base_flows.loc[1, "shortfall"] + 1.0
    from sim.metrics import summarize

    assert summarize(hit.ledger, hit.flows)["jit"]["shortfall_units"] == pytest.approx(float(flows["shortfall"].sum()))


def test_with_every_origin_out_the_shortfall_is_the_whole_order_less_the_stock(executions):
    """All origins down in week 1: the vendor ships only from stock it holds at the origins, and the
    shortfall is exactly what it could not ship from that stock."""
    outage = {"outages": [{"probability": 1.0, "depth": 1.0, "weeks": [1]}]}
    run_policies(_default(3, outage), ["jit"], progress=False)
    week1 = executions[1][2]["vendor"]
    assert np.all(week1.capacity == 0.0) and week1.fulfilment.produced.sum() == 0.0
    ordered, shipped = week1.ordered, week1.shipped
    assert ordered.sum() > 100.0
    stock = executions[0][2]["vendor"].fulfilment.end_stock  # [O, K] the origins held after week 0
    # nothing produced: what is shipped of each product is at most the stock of it
    assert np.all(shipped.sum(axis=0) <= stock.sum(axis=0) + 1e-6)
    np.testing.assert_allclose(week1.shortfall, np.maximum(ordered - shipped, 0.0))
    assert week1.shortfall.sum() >= ordered.sum() - stock.sum() - 1e-6


@pytest.mark.parametrize("policy", ["jit", "cpp-vcg", "first-best"])
def test_units_are_conserved_with_shortfalls(policy):
    shocks = {"outages": [{"probability": 0.4, "depth": 0.7}],
              "disruptions": [{"origin": "CIN", "p_fail": 0.4, "p_recover": 0.3, "depth": 0.9}]}
    result = run_policies(_default(4, shocks), [policy], progress=False)
    sf = result.shortfalls
    assert len(sf) and set(sf.vendor) == {"vendor"}
    # per vendor, FC, product and week: shipped + short = ordered, nothing shipped beyond the order
    np.testing.assert_allclose(sf.shipped + sf.shortfall, sf.ordered, rtol=0, atol=1e-6)
    assert (sf.shortfall >= 0).all() and (sf.shipped <= sf.ordered + 1e-6).all()
    assert not sf.duplicated(["policy", "week", "phase", "vendor", "fc", "product"]).any()
    # the flows table's weekly totals agree with the detail and with the PO and what was shipped
    by_week = sf.groupby(["week", "phase"])["shortfall"].sum()
    flows = result.flows.set_index(["week", "phase"])
    np.testing.assert_allclose(flows["shortfall"], by_week.reindex(flows.index, fill_value=0.0), atol=1e-6)
    np.testing.assert_allclose(flows["shipped"] + flows["shortfall"], flows["po"], rtol=1e-9, atol=1e-6)
    if policy != "jit":  # under an agreed plan the vendor ships all it can: shocks make the only shortfalls
        assert result.inputs.capacity.min() < 1.0 and flows["shortfall"].sum() > 0


# -- traces ----------------------------------------------------------------------------------------------
def test_a_trace_with_capacity_replays_bit_for_bit(tmp_path):
    from forecasts.traces import read_trace, trace_scenario, write_trace

    s = _default(3, {"outages": [{"probability": 0.5, "depth": 0.5}]})
    drawn = run_policies(s, ["jit", "cpp-vcg"], progress=False)
    assert drawn.inputs.capacity.min() < 1.0
    trace = write_trace(tmp_path / "t", s, drawn.inputs, seed=s.seed)
    assert (trace / "capacity.csv").exists()
    assert json.loads((trace / "trace.json").read_text())["origins"] == ["CIN", "ATL", "RNO"]
    back = read_trace(trace).inputs_for(s)
    assert back.capacity.tobytes() == drawn.inputs.capacity.tobytes()
    replayed = run_policies(trace_scenario(trace), ["jit", "cpp-vcg"], progress=False)
    assert _ledger_rows(replayed) == _ledger_rows(drawn)
    assert replayed.shortfalls.equals(drawn.shortfalls)


def test_a_run_without_shocks_records_no_capacity_file_and_old_traces_replay_at_full_capacity(tmp_path):
    from forecasts.streams import WorldInputs
    from forecasts.traces import read_trace, trace_scenario, write_trace

    s = _default(2)
    inputs = draw_inputs(s)
    trace = write_trace(tmp_path / "t", s, inputs, seed=s.seed)
    assert not (trace / "capacity.csv").exists()
    old = DATA / "trace_default_2w"  # recorded by main before the capacity stream existed
    replayed = run_policies(trace_scenario(old), ["jit"], progress=False)
    assert np.all(replayed.inputs.capacity == 1.0)
    # the same inputs without any capacity stream at all give the same ledger
    held = read_trace(old).inputs_for(trace_scenario(old))
    bare = WorldInputs(streams={n: held[n] for n in held.names if n != "capacity"})
    direct = run_policies(trace_scenario(old), ["jit"], inputs=bare, progress=False)
    assert _ledger_rows(direct) == _ledger_rows(replayed)


# -- bad input -------------------------------------------------------------------------------------------
BAD = [
    ({"outages": [{"probability": 1.5, "depth": 0.5}]}, ["shocks.outages.0.probability", "1.5"]),
    ({"outages": [{"probability": 0.5, "depth": -0.1}]}, ["shocks.outages.0.depth", "-0.1"]),
    ({"disruptions": [{"p_fail": 0.1, "p_recover": 1.2, "depth": 1.0}]}, ["shocks.disruptions.0.p_recover", "1.2"]),
    ({"disruptions": [{"p_fail": 0.1, "p_recover": 0.5, "depth": 3}]}, ["shocks.disruptions.0.depth", "3"]),
    ({"outages": [{"origin": "MARS", "probability": 0.5, "depth": 0.5}]}, ["shocks.outages.0.origin", "MARS", "unknown origin"]),
    ({"disruptions": [{"origin": "LAX", "p_fail": 0.1, "p_recover": 0.5, "depth": 1}]}, ["shocks.disruptions.0.origin", "LAX"]),
    ({"outages": [{"probability": 0.5}]}, ["shocks.outages.0.depth"]),
    ({"outages": [{"probability": 0.5, "depth": 0.5, "chance": 1}]}, ["shocks.outages.0.chance"]),
]


@pytest.mark.parametrize("shocks,needles", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_shocks_exit_2_naming_the_field(shocks, needles, capsys, tmp_path):
    data = copy.deepcopy(DEFAULT)
    data["shocks"] = shocks
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    out = tmp_path / "results"
    code = main(["run", "--scenario", str(path), "--policy", "jit", "--weeks", "1", "--json", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 2 and "Traceback" not in captured.err
    assert captured.err.startswith("flosim: error: ")
    for needle in needles:
        assert needle in captured.err, (needle, captured.err)
    assert not out.exists()


def test_the_scenario_dumps_without_shocks_as_before_and_with_them_round_trips():
    assert "shocks" not in load_scenario("default").model_dump(mode="json")
    s = _default(2, {"outages": [{"origin": "ATL", "probability": 0.2, "depth": 0.5, "weeks": [0]}]})
    assert scenario_from_dict(s.model_dump(mode="json")) == s


def test_replications_report_shortfall_units_as_an_interval(capsys, tmp_path):
    data = copy.deepcopy(DEFAULT)
    data["shocks"] = {"outages": [{"probability": 1.0, "depth": 1.0, "weeks": [1]}]}
    path = tmp_path / "shock.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    code = main(["run", "--scenario", str(path), "--policy", "jit", "--weeks", "2", "--replications", "2", "--json",
                 "--out", str(tmp_path / "out")])
    assert code == 0
    figure = json.loads(capsys.readouterr().out)["policies"]["jit"]["shortfall_units"]
    assert set(figure) == {"mean", "lo", "hi"} and figure["mean"] > 100.0  # week 1: nothing made anywhere
