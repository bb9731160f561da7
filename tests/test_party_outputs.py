"""Outputs keyed by party name with several vendors: the JSON contract of ``flosim run``
(``policies.<p>.parties.<name>``, ``participation.<p>.<name>``), replicated intervals per party, plots
and reports with a series per party, sweep tables with a column per party, and the weekly identities
(units and money add up across the retailer and every vendor)."""

from __future__ import annotations

import contextlib
import io
import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from experiments.cli import main
from experiments.plots.data import load_plot_data
from experiments.plots.figures import make_plots
from experiments.plots.parties import plot_net_cost_by_party
from experiments.sweep import load_spec, run_sweep
from policies.jit import JITPolicy
from sim.metrics import participation, summarize
from sim.model.decision import Decision, PlanningContext
from sim.model.scenario import load_scenario
from sim.runner import run_policies

POLICIES = ["jit", "first-best", "cpp", "cpp-vcg"]
VENDORS = ("acme", "sonora")
PARTIES = ("retailer", *VENDORS)
#: Each party's participation checks, as for the retailer and the vendor of a one-vendor run.
CHECKS = {"ex_ante_weeks_violated", "ex_ante_worst_margin", "ex_post_weeks_violated", "worst_margin",
          "cumulative_margin", "cumulative_violated", "settled_ex_post_margin"}
#: Real resource costs: what the social cost is made of (wholesale payments and transfers only move money).
RESOURCE = {"holding", "lost_sales", "outbound", "receiving", "production", "inbound_transport", "vendor_holding"}


def _cli_json(argv: list[str]) -> dict:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(argv) == 0
    return json.loads(buf.getvalue())


@pytest.fixture(scope="module")
def two_vendors(tmp_path_factory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("tv") / "out"
    argv = ["run", "--scenario", "two-vendors", "--weeks", "2", "--json", "--out", str(out)]
    for p in POLICIES:
        argv += ["--policy", p]
    return _cli_json(argv), out


def test_json_has_every_party_by_name_and_their_costs_sum_to_the_social_cost(two_vendors):
    s, out = two_vendors
    ledger = pd.read_parquet(out / "ledger.parquet")
    measured = ledger[ledger.phase == "measured"]
    assert set(s["policies"]) == set(POLICIES)
    for p, totals in s["policies"].items():
        parties = totals["parties"]
        assert list(parties) == list(PARTIES), p  # retailer first, then the vendors in the scenario's order
        assert sum(e["net_cost"] for e in parties.values()) == pytest.approx(totals["social_cost"], rel=1e-9)
        assert sum(e["settled_net_cost"] for e in parties.values()) == pytest.approx(totals["settled_social_cost"], rel=1e-9)
        # each party's figure is its own rows of the saved ledger
        for name, e in parties.items():
            assert e["net_cost"] == pytest.approx(measured[(measured.policy == p) & (measured.party == name)].value.sum(), rel=1e-12)
            assert e["settled_net_cost"] == pytest.approx(ledger[(ledger.policy == p) & (ledger.party == name)].value.sum(),
                                                          rel=1e-12)
        # the one-vendor keys are not invented for several vendors
        assert "vendor_net_cost" not in totals and "settled_vendor_net_cost" not in totals
        assert totals["retailer_net_cost"] == parties["retailer"]["net_cost"]
    # JIT: each vendor earns on what it sells; CPP-VCG's vendors pay transfers, which the retailer receives
    assert all(s["policies"]["jit"]["parties"][v]["net_cost"] < 0 for v in VENDORS)
    vcg = s["policies"]["cpp-vcg"]["parties"]
    assert sum(vcg[v]["transfers"] for v in VENDORS) == pytest.approx(-vcg["retailer"]["transfers"], rel=1e-9)
    assert s["policies"]["cpp-vcg"]["transfers"] == pytest.approx(sum(vcg[v]["transfers"] for v in VENDORS), rel=1e-12)


def test_participation_has_every_party_with_todays_checks(two_vendors):
    s, _ = two_vendors
    assert set(s["participation"]) == set(POLICIES) - {"jit"}
    for p, by_party in s["participation"].items():
        assert list(by_party) == list(PARTIES), p
        for name, checks in by_party.items():
            assert set(checks) == CHECKS, (p, name)
            jit, mine = (s["policies"][q]["parties"][name]["settled_net_cost"] for q in ("jit", p))
            assert checks["settled_ex_post_margin"] == pytest.approx(jit - mine, rel=1e-9, abs=1e-6)


def test_units_and_money_add_up_every_week_across_all_parties(two_vendors):
    _, out = two_vendors
    ledger = pd.read_parquet(out / "ledger.parquet")
    flows = pd.read_parquet(out / "flows.parquet")
    for (policy, week), rows in ledger.groupby(["policy", "week"]):
        assert set(rows.party) >= set(PARTIES), (policy, week)
        social = rows[rows.component.isin(RESOURCE)].value.sum()
        assert rows.value.sum() == pytest.approx(social, rel=1e-9, abs=1e-6), (policy, week)  # ledger sum = social cost
        assert set(rows.component) - RESOURCE <= {"wholesale", "transfer"}
        paid = rows[rows.component == "transfer"]  # every party's transfer and the mechanism's row
        assert paid.value.sum() == pytest.approx(0.0, abs=1e-6), (policy, week)
        wholesale = rows[rows.component == "wholesale"].groupby("party").value.sum()
        assert wholesale["retailer"] == pytest.approx(-sum(wholesale.get(v, 0.0) for v in VENDORS), rel=1e-9, abs=1e-6)
    for (policy, week), f in flows.groupby(["policy", "week"]):
        f = f.iloc[0]
        assert f.vendor_stock_end == pytest.approx(f.vendor_stock_start + f.produced - f.shipped, abs=1e-6), (policy, week)
        assert f.in_transit_end == pytest.approx(f.in_transit_start + f.shipped - f.arrivals, abs=1e-6), (policy, week)
        assert f.fc_stock_end == pytest.approx(f.fc_stock_start + f.arrivals - f.served, abs=1e-6), (policy, week)
        assert f.shipped <= f.po + 1e-6
    # and the week's closing stock is the next week's opening stock
    for policy, f in flows.sort_values("week").groupby("policy"):
        for col in ("fc_stock", "in_transit", "vendor_stock"):
            assert np.allclose(f[f"{col}_end"].to_numpy()[:-1], f[f"{col}_start"].to_numpy()[1:], atol=1e-6), (policy, col)


class JITWithTransfers:
    """JIT, with fixed weekly ``transfers`` (party -> what it pays): only the split between the parties
    moves, never the social cost."""

    def __init__(self, name: str, transfers: dict[str, float]) -> None:
        self.name, self.transfers, self.jit = name, transfers, JITPolicy()

    def decide(self, ctx: PlanningContext) -> Decision:
        d = self.jit.decide(ctx)
        return Decision(plan=d.plan, transfers=dict(self.transfers), committed=d.committed, planned=d.planned)


def LeavesABalance() -> JITWithTransfers:
    """Each vendor pays 100 and 40 a week and the retailer receives 120: the mechanism keeps 20 a week
    (not budget balanced), which the ledger must show as a ``mechanism`` party."""
    return JITWithTransfers("leaves-a-balance", {"acme": 100.0, "sonora": 40.0, "retailer": -120.0})


def test_a_mechanism_balance_is_a_party_of_its_own_and_the_sums_still_hold():
    scenario = load_scenario("two-vendors").model_copy(update={"weeks": 2, "settle_weeks": 1})
    r = run_policies(scenario, [JITPolicy(), LeavesABalance()])
    totals = summarize(r.ledger, r.flows, r.decisions)
    mine = totals["leaves-a-balance"]
    assert list(mine["parties"]) == [*PARTIES, "mechanism"]
    assert mine["parties"]["mechanism"]["net_cost"] == pytest.approx(-2 * 20.0)  # the mechanism's own net: it received 20 a week
    assert sum(e["net_cost"] for e in mine["parties"].values()) == pytest.approx(mine["social_cost"], rel=1e-12)
    # the plan is JIT's: the social cost is JIT's, only the split between the parties moved
    assert mine["social_cost"] == pytest.approx(totals["jit"]["social_cost"], rel=1e-12)
    assert mine["parties"]["acme"]["net_cost"] == pytest.approx(totals["jit"]["parties"]["acme"]["net_cost"] + 200.0)
    part = participation(r.ledger, r.decisions)["leaves-a-balance"]
    assert list(part) == list(PARTIES)  # the mechanism does not participate
    assert part["sonora"]["cumulative_margin"] == pytest.approx(-80.0)
    assert part["retailer"]["cumulative_margin"] == pytest.approx(240.0)
    for week, rows in r.ledger[r.ledger.policy == "leaves-a-balance"].groupby("week"):
        assert rows[rows.component == "transfer"].value.sum() == pytest.approx(0.0, abs=1e-9), week


def test_a_transfer_to_the_mechanism_by_name_is_booked_and_moves_no_social_cost():
    scenario = load_scenario("two-vendors").model_copy(update={"weeks": 1, "settle_weeks": 0})
    # acme pays 50 a week to the mechanism named in the transfers: budget balanced, the row must be booked
    r = run_policies(scenario, [JITPolicy(), JITWithTransfers("pays-the-mechanism", {"acme": 50.0, "mechanism": -50.0})])
    totals = summarize(r.ledger, r.flows, r.decisions)
    mine = totals["pays-the-mechanism"]
    assert mine["social_cost"] == pytest.approx(totals["jit"]["social_cost"], rel=1e-12)
    assert mine["parties"]["mechanism"]["net_cost"] == pytest.approx(-50.0)
    assert mine["parties"]["acme"]["net_cost"] == pytest.approx(totals["jit"]["parties"]["acme"]["net_cost"] + 50.0)
    rows = r.ledger[r.ledger.policy == "pays-the-mechanism"]
    assert rows[rows.component == "transfer"].value.sum() == pytest.approx(0.0, abs=1e-9)


def test_budget_balanced_transfers_leave_no_mechanism_row_from_rounding():
    """Two vendors pay 0.1 and 0.2 and the retailer receives their float sum (what ``pivot_transfers``
    and the menu compute): the three do not cancel exactly in floating point (2.8e-17), which must not
    add a ``mechanism`` party to the run."""
    from policies.cpp_vcg import Pivot, pivot_transfers

    transfers = pivot_transfers([Pivot("acme", {"retailer": 0.1}, 0.1, 0.1, None),
                                 Pivot("sonora", {"retailer": 0.2}, 0.2, 0.2, None)], "retailer")
    assert sum(transfers.values()) != 0.0  # the rounding this test is about
    assert Decision(np.zeros(1), transfers).balance == 0.0
    scenario = load_scenario("two-vendors").model_copy(update={"weeks": 1, "settle_weeks": 0})
    r = run_policies(scenario, [JITWithTransfers("rounding", transfers)])
    assert set(r.ledger.party) == set(PARTIES)
    assert Decision(np.zeros(1), {"acme": 100.0, "retailer": -100.0 + 1e-6}).balance == pytest.approx(-1e-6)  # a real balance stays


def test_plots_draw_a_series_per_party(two_vendors, tmp_path):
    _, out = two_vendors
    data = load_plot_data(out)
    assert data.parties == list(PARTIES)
    for name in PARTIES:
        assert {f"net_cost_{name}", f"settled_net_cost_{name}", f"{name}_cumulative_margin"} <= set(data.summary.columns)
    result = make_plots(out, tmp_path / "figs", formats=["svg", "png"])
    made = {spec.stem for spec, _ in result.made}
    assert {"social_cost", "net_cost_by_party", "participation", "cbt_by_week"} <= made
    participation_svg = (tmp_path / "figs" / "participation.svg").read_text()
    for name in PARTIES:
        assert f"{name}: margin over JIT" in participation_svg
    transfers_svg = (tmp_path / "figs" / "cbt_by_week.svg").read_text()
    assert all(f"cpp-vcg: {v}" in transfers_svg for v in VENDORS)
    # the party figure's bars are the summary's settled net costs: one bar per party and policy
    fig = plot_net_cost_by_party(data)
    ax = fig.axes[0]
    bars = {}
    for container, name in zip(ax.containers, PARTIES):
        assert container.get_label() == name
        for policy, patch in zip(data.policies, container.patches):
            bars[(policy, name)] = patch.get_height()
    settled = data.summary.set_index("policy")
    assert len(bars) == len(PARTIES) * len(POLICIES)
    for (policy, name), height in bars.items():
        assert height == pytest.approx(settled.loc[policy, f"settled_net_cost_{name}"], rel=1e-12)


def test_report_has_a_column_and_participation_rows_per_party(two_vendors, tmp_path):
    _, out = two_vendors
    assert main(["report", str(out), "--format", "md", "--out", str(tmp_path / "r.md")]) == 0
    text = (tmp_path / "r.md").read_text()
    for name in PARTIES:
        assert f"settled {name} net cost" in text and f"raw {name} net cost" in text
        for policy in ("cpp", "cpp-vcg", "first-best"):
            assert f"| {policy} | {name} |" in text  # its participation row
    assert "vendor net cost" not in text  # no party named 'vendor' in this scenario


def test_replicated_party_figures_are_intervals(tmp_path):
    s = _cli_json(["run", "--scenario", "two-vendors", "--weeks", "1", "--policy", "jit", "--policy", "first-best",
                   "--replications", "2", "--json", "--out", str(tmp_path / "rep")])
    reps = s["per_replication"]
    for p in ("jit", "first-best"):
        parties = s["policies"][p]["parties"]
        assert list(parties) == list(PARTIES)
        for name, figures in parties.items():
            for key in ("net_cost", "settled_net_cost", "transfers"):
                assert set(figures[key]) == {"mean", "lo", "hi"}
            per = [r["policies"][p]["parties"][name]["net_cost"] for r in reps]
            assert figures["net_cost"]["mean"] == pytest.approx(np.mean(per), rel=1e-12)
            assert figures["net_cost"]["lo"] <= figures["net_cost"]["mean"] <= figures["net_cost"]["hi"]
    assert list(s["participation"]["first-best"]) == list(PARTIES)
    assert set(s["participation"]["first-best"]["sonora"]["settled_ex_post_margin"]) == {"mean", "lo", "hi"}
    # plots and the report read the replicated folder
    assert main(["plot", str(tmp_path / "rep")]) == 0
    assert (tmp_path / "rep" / "plots" / "net_cost_by_party.png").exists()


def test_sweep_summary_has_a_column_per_party(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(textwrap.dedent("""\
        name: two-vendors-parties
        scenario: two-vendors
        weeks: 1
        policies: [first-best]
        grid: {demand.cv: [0.1, 0.3]}
    """))
    run_sweep(load_spec(spec), tmp_path / "out")
    summary = pd.read_parquet(tmp_path / "out" / "summary.parquet")
    assert len(summary) == 4 and "parties" not in summary.columns
    for name in PARTIES:
        assert {f"net_cost_{name}", f"settled_net_cost_{name}", f"transfers_{name}", f"{name}_settled_ex_post_margin"} \
            <= set(summary.columns)
    total = summary[[f"net_cost_{name}" for name in PARTIES]].sum(axis=1)
    assert np.allclose(total, summary["social_cost"], rtol=1e-9)
    assert main(["report", str(tmp_path / "out")]) == 0
    assert "settled sonora net cost" in (tmp_path / "out" / "report.html").read_text()


def test_one_vendor_keeps_its_keys_beside_the_party_entries(tmp_path):
    s = _cli_json(["run", "--weeks", "1", "--policy", "jit", "--policy", "first-best", "--json", "--out", str(tmp_path / "one")])
    for p, totals in s["policies"].items():
        assert list(totals["parties"]) == ["retailer", "vendor"]
        assert totals["vendor_net_cost"] == totals["parties"]["vendor"]["net_cost"]
        assert totals["settled_vendor_net_cost"] == totals["parties"]["vendor"]["settled_net_cost"]
        assert totals["retailer_net_cost"] == totals["parties"]["retailer"]["net_cost"]
    assert set(s["participation"]["first-best"]) == {"retailer", "vendor"}
    # a folder written before parties had names (no 'parties' entries) still gets its party figure
    summary_file = tmp_path / "one" / "summary.json"
    old = json.loads(summary_file.read_text())
    for totals in old["policies"].values():
        del totals["parties"]
    summary_file.write_text(json.dumps(old))
    data = load_plot_data(tmp_path / "one")
    ax = plot_net_cost_by_party(data).axes[0]
    heights = {(c.get_label(), policy): patch.get_height() for c in ax.containers for policy, patch in zip(data.policies, c.patches)}
    assert heights == {(party, p): pytest.approx(old["policies"][p][f"settled_{party}_net_cost"], rel=1e-12)
                       for party in ("retailer", "vendor") for p in data.policies}


def test_scenario_check_and_list_count_every_vendor(capsys):
    import yaml
    from importlib import resources

    raw = yaml.safe_load((resources.files("sim") / "scenarios" / "two-vendors.yaml").read_text())
    assert main(["scenario", "check", "two-vendors", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["vendors"] == [v["name"] for v in raw["vendors"]] == list(VENDORS)
    assert info["origins"] == sum(len(v["origins"]) for v in raw["vendors"]) > 0
    assert info["lanes"] == sum(len(v["lanes"]) for v in raw["vendors"]) > 0
    assert main(["scenario", "list"]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("two-vendors "))
    assert "vendors: acme, sonora" in line
