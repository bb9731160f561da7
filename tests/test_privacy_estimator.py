"""The privacy observer's estimator on a case with a known answer, and the observer's blindness.

Known answer: a vendor with one lane per FC (spare truck volume at a low rate, then truckload),
ample capacity and no stock, so its cost is separate by FC and week, exactly the form the observer
assumes. Its exact answers to queries that sweep every lane's volume across its kink must give back
each lane's two rates, its spare volume and the production cost, to the solver's tolerance.
"""

from __future__ import annotations


import numpy as np
import pytest

from experiments.observer import observations, transcript_observations
from experiments.privacy import parameter_rows, true_segments
from policies.privacy import RoundsShown
from sim.parties.vendor import VendorAgent, VendorState
from sim.negotiation.best_response import BestResponseOptions, negotiator_for
from sim.negotiation.cost_curves import fit_curves
from sim.model.data import split_scenario
from sim.model.scenario import scenario_from_dict
from sim.negotiation.blocks import block_to_json
from sim.negotiation.transcript import Transcript

EXACT = BestResponseOptions(abs_tol=1e-10, rel_tol=1e-10, polish=True, adaptive=0.0, max_iter=200000)


def separable_dict() -> dict:
    return {
        "name": "separable", "weeks": 2, "horizon": 2, "seed": 3,
        "regions": ["East", "West"],
        "fcs": [{"name": "E1", "receiving_cost": 0.1, "lead_time": 1}, {"name": "W1", "receiving_cost": 0.1, "lead_time": 1}],
        "outbound_cost": {"E1": {"East": 0.2}, "W1": {"West": 0.2}},
        "products": [
            {"name": "a", "wholesale_price": 6.0, "holding_cost": 0.05, "lost_sales_penalty": 9.0, "volume": 1.0, "base_demand": 80},
            {"name": "b", "wholesale_price": 7.0, "holding_cost": 0.05, "lost_sales_penalty": 9.0, "volume": 1.5, "base_demand": 50},
        ],
        "origins": [
            {"name": "O1", "capacity": 1e6, "production_cost": 1.5, "holding_cost": 0.02},
            {"name": "O2", "capacity": 1e6, "production_cost": 2.0, "holding_cost": 0.02},
        ],
        "lanes": [
            {"origin": "O1", "fc": "E1", "spare_volume": 120, "spare_cost": 0.05, "truckload_cost": 0.8},
            {"origin": "O2", "fc": "W1", "spare_volume": 60, "spare_cost": 0.2, "truckload_cost": 1.4},
        ],
        "demand": {"cv": 0.3},
    }


def exploring_transcript(scenario, steps: int = 60, rhos: tuple[float, ...] = (20.0, 0.2)) -> tuple[Transcript, object, object]:
    """The vendor's exact answers to queries whose consensus plans sweep each FC's weekly volume from
    zero to twice its lane's spare volume (product mix changing along the way), at a large ``rho``
    (answers close to the plan) and a small one (answers that stay on a kink over a range of plans),
    with prices equal to the wholesale prices; recorded as a coordinator records a negotiation (the
    vendor is agent 1; agent 0's answers are the plans)."""
    public, _, vendors = split_scenario(scenario)
    vendor_data = vendors["vendor"]
    vendor = VendorAgent(public, vendor_data)
    vendor.observe(VendorState(np.zeros((vendor_data.O, public.K))))
    neg = negotiator_for(vendor, EXACT)
    H, F, K = public.block_shape
    # as the policies record it: the retailer holds the whole plan (1, H, F, K), the vendor its block x[0]
    t = Transcript(shape=public.shape, n_agents=2, blocks=[block_to_json(None), block_to_json(0)])
    spare = np.array([vendor_data.spare_volume[vendor_data.lane_fc == f].sum() for f in range(F)])
    w = public.wholesale[0]
    for i, s in enumerate(np.linspace(0.02, 2.0, steps)):
        mix = np.array([0.3 + 0.4 * ((i * 7) % steps) / steps, 0.0])
        mix[1] = (1.0 - mix[0]) / public.volume[1]  # volume shares: mix[0] of product a, the rest b
        z = np.empty(public.block_shape)
        for h in range(H):
            z[h] = (s * (1.0 + 0.1 * h) * spare)[:, None] * mix[None, :]
        y = np.broadcast_to(w, z.shape).copy()
        for j, rho in enumerate(rhos):
            x = neg.best_response(z, y, rho)
            t.record(len(rhos) * i + j + 1, z[None], [-y[None], y], rho, [z[None], x], 0.0, 0.0)
    return t, public, vendor_data


@pytest.fixture(scope="module")
def known():
    s = scenario_from_dict(separable_dict(), "<separable>")
    return exploring_transcript(s)


def test_exact_answers_recover_lane_rates_and_spare_volumes(known):
    transcript, public, vendor = known
    curves = fit_curves(transcript_observations(transcript, public), public.F)
    assert all(c is not None and c.split_identified for c in curves)
    assert max(c.misfit for c in curves) < 1e-6  # exact answers: a convex curve fits every one
    rows = {r["parameter"]: r for r in parameter_rows("cpp", public, vendor, curves)}
    for name, truth in (("O1->E1 spare_cost", 0.05), ("O1->E1 truckload_cost", 0.8), ("O2->W1 spare_cost", 0.2),
                        ("O2->W1 truckload_cost", 1.4), ("O1 production_cost", 1.5), ("O2 production_cost", 2.0)):
        assert rows[name]["truth"] == pytest.approx(truth)
        assert rows[name]["estimate"] == pytest.approx(truth, abs=1e-5), name
    for name, truth in (("O1->E1 spare_volume", 120.0), ("O2->W1 spare_volume", 60.0)):
        assert rows[name]["truth"] == pytest.approx(truth)
        assert rows[name]["estimate"] == pytest.approx(truth, abs=1e-4), name


def test_the_fit_reads_only_what_it_is_given(known):
    """Spy test: the observer's input is the record of what the retailer was shown and the public
    data (``observations`` and ``fit_curves`` take no vendor data); of the record it reads only the
    plan's shape, the number of agents and the rows, and the rows hold no cost model (only plans,
    prices, rho and residuals)."""
    transcript, public, vendor = known
    accessed: set[str] = set()

    class Spy(Transcript):
        def __getattribute__(self, name):
            accessed.add(name)
            return object.__getattribute__(self, name)

    spy = Spy(shape=transcript.shape, n_agents=transcript.n_agents, rows=list(transcript.rows), blocks=transcript.blocks)
    obs = observations([RoundsShown(0, spy)], public)
    assert obs.size > 0
    # the record's layout (which part of the plan the vendor held) and its rows; nothing else
    assert accessed <= {"shape", "n_agents", "rows", "blocks", "block_shape", "held", "_layout"}
    assert "rows" in accessed
    assert {name for _, _, name, _ in transcript.rows} <= {"z", "prices", "answer", "rho", "primal", "dual"}


def test_true_segments_follow_the_data(known):
    _, public, vendor = known
    segs = true_segments(public, vendor)
    assert [(s.kind, s.start, s.end) for s in segs[0]] == [("spare", 0.0, 120.0), ("truckload", 120.0, pytest.approx(1.25e6))]


def test_observer_modules_cannot_reach_private_data():
    """The observer and the fit import no agent, private data class or world: the record and the
    public data are all they are handed."""
    import experiments.observer as observer_module
    import sim.negotiation.cost_curves as curves_module

    private = {"VendorAgent", "RetailerAgent", "VendorData", "RetailerData", "World", "split_scenario", "joint_plan"}
    for module in (observer_module, curves_module):
        assert not private & set(vars(module)), module.__name__


def test_a_tailored_menu_gives_away_the_room_the_vendor_discloses(known):
    """The menu's fit takes nothing from the picks (rankings of whole plans), but the vendor's coarse
    disclosure (room per FC, rounded) is read as the spare volume at that FC."""
    from experiments.observer import disclosed_room, menu_rankings
    from policies.privacy import MenuShown

    _, public, vendor = known
    plan = np.zeros(public.shape)
    shown = [MenuShown(w, (plan, plan + 1.0, plan + 2.0), (0.0, 1.0, 2.0), 1, {"E1": 100.0, "W1": None}) for w in range(3)]
    assert observations(shown, public).size == 0 and menu_rankings(shown) == 6
    room = disclosed_room(shown, public)
    assert room == {0: 100.0}
    rows = {r["parameter"]: r for r in parameter_rows("menu", public, vendor, fit_curves(observations(shown, public), public.F), room)}
    assert rows["O1->E1 spare_volume"]["estimate"] == 100.0 and rows["O1->E1 spare_volume"]["relative_error"] == pytest.approx(20 / 120)
    assert rows["O2->W1 spare_volume"]["estimate"] is None
    assert all(r["estimate"] is None for name, r in rows.items() if not name.endswith("spare_volume"))


def test_a_noisy_vendors_record_holds_the_coordinators_prices_not_its_noise(default_scenario):
    """What the retailer's coordinator records of a noisy vendor is the query it sent (prices that
    sum to zero with the retailer's) and the answer, never the perturbed prices the vendor answered
    for: the observer cannot subtract the noise."""
    from policies.cpp_vcg import CPPVCGPolicy
    from sim.runner import run_policies

    p = CPPVCGPolicy(privacy={"eps": 1.0, "record": True})
    run_policies(default_scenario, [p], weeks=1, progress=False)
    t = p.shown[0].transcript
    rounds = sorted({it for it, _, _, _ in t.rows})
    assert len(rounds) > 5
    for k in rounds:
        np.testing.assert_allclose(t.array(k, 0, "prices") + t.array(k, 1, "prices"), 0.0, atol=1e-8)
    assert {name for _, agent, name, _ in t.rows if agent == 1} == {"prices", "answer"}
