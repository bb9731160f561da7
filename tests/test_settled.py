"""Settled costs: after the measured weeks every policy's world cools down under JIT on the same
inputs, so the stock a run leaves behind is used or held at its true cost. Raw figures stay what they
were; settled figures add the cool-down rows, and nothing is counted twice."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml

from experiments.cli import main
from forecasts.inputs import draw_inputs, settle_inputs
from sim.model.decision import Decision, PlanningContext
from policies.jit import JITPolicy
from sim.metrics import measured, participation, summarize
from sim.runner import run_policies
from sim.model.scenario import load_scenario

WEEKS = 3
EXTRA = 1000.0


class ExtraInLastWeek:
    """JIT, but the last measured week's PO carries ``EXTRA`` more units of product 0 to FC 0, committed
    (the vendor ships all it can)."""

    name = "jit-extra"

    def __init__(self, last_week: int):
        self.last_week = last_week
        self.jit = JITPolicy()

    def decide(self, ctx: PlanningContext) -> Decision:
        d = self.jit.decide(ctx)
        if ctx.week == self.last_week:
            plan = d.plan.copy()
            plan[0, 0, 0, 0] += EXTRA  # the (only) vendor, week 0, FC 0, product 0
            return Decision(plan=plan, committed=True)
        return d


@pytest.fixture(scope="module")
def extra_run():
    scenario = load_scenario("default").model_copy(update={"weeks": WEEKS})
    return run_policies(scenario, [JITPolicy(), ExtraInLastWeek(WEEKS - 1)])


def test_extra_units_in_the_last_week_raise_settled_cost_by_what_the_cool_down_rows_show(extra_run):
    r = extra_run
    led = r.ledger
    assert set(led["phase"]) == {"measured", "settle"}
    assert r.settle == r.scenario.horizon  # default cool-down: the horizon
    flows = r.flows.set_index(["policy", "week"])
    assert flows.loc[("jit-extra", WEEKS - 1), "shipped"] >= flows.loc[("jit", WEEKS - 1), "shipped"] + EXTRA - 1e-6
    totals = summarize(led, r.flows, r.decisions)
    base, extra = totals["jit"], totals["jit-extra"]
    cool = led[led.phase == "settle"].groupby("policy")["value"].sum()
    raw = measured(led).groupby("policy")["value"].sum()
    # settled = raw + cool-down rows, for each policy, and the difference is exactly theirs
    for p in ("jit", "jit-extra"):
        assert totals[p]["social_cost"] == pytest.approx(raw[p], rel=1e-12)
        assert totals[p]["settled_social_cost"] == pytest.approx(raw[p] + cool[p], rel=1e-12)
    diff = extra["settled_social_cost"] - base["settled_social_cost"]
    assert diff == pytest.approx((raw["jit-extra"] - raw["jit"]) + (cool["jit-extra"] - cool["jit"]), rel=1e-9)
    assert diff > 0  # shipping ahead of need costs something even once the stock is used
    # the extra units are used in the cool-down: it costs less there than the JIT world's does,
    # so the settled difference is below the raw one (the raw ledger overstates the cost of shipping ahead)
    assert cool["jit-extra"] < cool["jit"]
    assert diff < extra["social_cost"] - base["social_cost"]


def test_the_default_cool_down_uses_up_what_the_measured_weeks_left_behind(extra_run):
    # units identity over measured weeks and cool-down: start + produced - served = stock left at the end
    # (FCs, in transit, vendor); and after the cool-down both worlds hold the same stock, so the settled
    # figures charge no policy for leftover units they never credit (a shorter cool-down would: with
    # settle_weeks 2 about half of the 1,000 extra units are still there)
    left = {}
    for policy, f in extra_run.flows.groupby("policy"):
        f = f.sort_values("week")
        first, last = f.iloc[0], f.iloc[-1]
        start = first.fc_stock_start + first.in_transit_start + first.vendor_stock_start
        left[policy] = last.fc_stock_end + last.in_transit_end + last.vendor_stock_end
        assert left[policy] == pytest.approx(start + f.produced.sum() - f.served.sum(), rel=1e-9)
        measured_end = measured(f).iloc[-1]
        assert last.week == WEEKS + extra_run.settle - 1 and measured_end.week == WEEKS - 1
    end = measured(extra_run.flows).sort_values("week").groupby("policy").tail(1).set_index("policy")
    at_end = end.fc_stock_end + end.in_transit_end + end.vendor_stock_end
    assert at_end["jit-extra"] > at_end["jit"] + 0.5 * EXTRA  # the measured weeks end with the extra units
    assert left["jit-extra"] == pytest.approx(left["jit"], abs=1e-6)  # the cool-down has used them


def test_settle_weeks_zero_reproduces_raw_figures_and_raw_figures_do_not_depend_on_settle(extra_run):
    off = run_policies(extra_run.scenario.model_copy(update={"settle_weeks": 0}), [JITPolicy(), ExtraInLastWeek(WEEKS - 1)])
    assert set(off.ledger["phase"]) == {"measured"} and off.settle == 0
    on_t = summarize(extra_run.ledger, extra_run.flows, extra_run.decisions)
    off_t = summarize(off.ledger, off.flows, off.decisions)
    for p in off_t:
        assert off_t[p]["settled_social_cost"] == off_t[p]["social_cost"]
        assert off_t[p]["settled_vendor_net_cost"] == off_t[p]["vendor_net_cost"]
        raw_keys = [k for k in off_t[p] if not k.startswith("settled_") and k != "parties"]
        assert {k: on_t[p][k] for k in raw_keys} == {k: off_t[p][k] for k in raw_keys}
        for party, figures in off_t[p]["parties"].items():  # each party's raw figures alike, settled = raw without cool-down
            assert figures["settled_net_cost"] == figures["net_cost"]
            assert {k: v for k, v in on_t[p]["parties"][party].items() if k != "settled_net_cost"} == \
                {k: v for k, v in figures.items() if k != "settled_net_cost"}
    # the measured rows themselves are identical, bit for bit
    a = measured(extra_run.ledger).reset_index(drop=True)
    b = off.ledger.reset_index(drop=True)
    assert a["value"].tolist() == b["value"].tolist()


def test_participation_on_the_settled_basis(extra_run):
    part = participation(extra_run.ledger, extra_run.decisions)
    led = extra_run.ledger
    for party in ("retailer", "vendor"):
        tot = led[led.party == party].groupby("policy")["value"].sum()
        assert part["jit-extra"][party]["settled_ex_post_margin"] == pytest.approx(tot["jit"] - tot["jit-extra"], rel=1e-12)


def test_cool_down_inputs_keep_the_measured_weeks_and_continue_on_the_last_forecast():
    s = load_scenario("default")
    inputs = draw_inputs(s, weeks=5)
    out = settle_inputs(inputs, 4, 7)
    H = s.horizon
    assert out.weeks == 11
    for name in ("demand", "forecasts", "forecast_sd", "delays"):
        assert np.array_equal(getattr(out, name)[:4], getattr(inputs, name)[:4])
    last = inputs.forecasts[3]
    for i in range(1, 8):  # cool-down week 3 + i
        assert np.array_equal(out.demand[3 + i], last[min(i, H - 1)])
    # forecasts made in the cool-down are its own (deterministic) demand, with no uncertainty left
    for t in range(4, 11):
        for j in range(H):
            if t + j < 11:
                assert np.array_equal(out.forecasts[t, j], out.demand[t + j])
    assert not out.forecast_sd[4:].any() and not out.delays[4:].any()


def _scenario_file(tmp_path: Path, **fields) -> Path:
    from importlib import resources

    data = copy.deepcopy(yaml.safe_load((resources.files("sim") / "scenarios" / "default.yaml").read_text()))
    data.update(fields)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.parametrize("value, needle", [(-1, "-1"), (100000, "100000"), (2.5, "2.5"), ("six", "six"), (True, "True")])
def test_bad_settle_weeks_exits_2_naming_the_field(tmp_path, capsys, value, needle):
    path = _scenario_file(tmp_path, settle_weeks=value)
    out = tmp_path / "results"
    code = main(["run", "--scenario", str(path), "--policy", "jit", "--weeks", "1", "--json", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 2 and "Traceback" not in captured.err
    assert "settle_weeks" in captured.err and needle in captured.err, captured.err
    assert not out.exists()
