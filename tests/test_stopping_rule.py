"""'Converged' means a certified near-optimal plan, at any cost scale; a stop on residuals says so."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from experiments.flopro_standins import GROUP, adapted, GroupMetadata, first_best, flopro_metadata, pair, social_cost
from sim.negotiation.best_response import LPBestResponse
from sim.negotiation.certificate import certify
from sim.negotiation.coordinator import ADMMOptions, ConsensusADMM
from sim.negotiation.flopro_adapter import FloProNegotiator, build_flopro_agent, layout_from_metadata, plan_axes

DIMS = (3, 2, 3)


def _lp_negotiators(agents):
    return [LPBestResponse(*a.lp_and_x()) for a in agents]


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])
def test_certified_stop_holds_at_any_cost_scale(scale) -> None:
    """The same instance, every cost multiplied by ``scale``: the stop is certified within gap_tol
    and the plan's true gap is within the bound (backlog penalty 200 times holding)."""
    agents = pair(*DIMS, backlog_ratio=200, seed=3, cost_scale=scale)
    fb = first_best(agents)
    negs = _lp_negotiators(agents)
    opt = ADMMOptions()
    result = ConsensusADMM(opt).negotiate(negs, (int(np.prod(DIMS)),))
    assert result.converged and result.certified and result.status == "converged"
    assert result.gap_bound <= opt.gap_tol
    plan = result.certified_plan
    true_gap = (social_cost(agents, plan) - fb) / fb
    assert true_gap <= result.gap_bound + 1e-9
    assert result.diagnostics()["certified"] is True


class _Quadratic:
    """C(x) = (c a / 2)||x - b||²: cost scale ``c``, best response in closed form."""

    def __init__(self, a: float, b: np.ndarray, c: float) -> None:
        self.a, self.b, self.c = a, b, c

    def best_response(self, z, prices, rho):
        return (self.c * self.a * self.b - prices + rho * z) / (self.c * self.a + rho)


def test_the_residual_test_is_free_of_the_cost_scale() -> None:
    """Agents that cannot certify stop on residuals; scaling every cost (and rho with it) by c leaves
    the stopping round, the answers and the primal residual unchanged and scales the dual by c."""
    rng = np.random.default_rng(5)
    a, b = rng.uniform(0.5, 3, 3), rng.normal(size=(3, 4, 5))
    runs = {}
    for c in (1e-3, 1.0, 1e3):
        agents = [_Quadratic(a[i], b[i], c) for i in range(3)]
        runs[c] = ConsensusADMM(ADMMOptions(rho=0.7 * c)).negotiate(agents, (4, 5))
    ref = runs[1.0]
    assert ref.status == "stopped_on_residuals" and not ref.certified and not ref.converged and ref.agreed
    for c, r in runs.items():
        assert r.status == ref.status and r.iterations == ref.iterations
        np.testing.assert_allclose(r.z, ref.z, rtol=1e-9, atol=1e-12)
        assert r.primal_residual == pytest.approx(ref.primal_residual, rel=1e-6)
        assert r.dual_residual == pytest.approx(c * ref.dual_residual, rel=1e-6)


def test_a_residual_stop_never_claims_certified() -> None:
    """FloPro-style agents state no dual value and no cost of other plans: the stop is on residuals,
    said so, and certify() answers 'not certified' instead of raising."""
    agents = pair(*DIMS, backlog_ratio=200, seed=3)
    shape, labels = plan_axes([a.register() for a in agents])
    negs = [FloProNegotiator(a, labels=labels) for a in agents]
    result = ConsensusADMM(ADMMOptions(max_iter=3000)).negotiate(negs, shape)
    assert result.status == "stopped_on_residuals"
    assert result.certified is False and result.converged is False and result.agreed
    assert result.diagnostics()["certified"] is False and "not certified" in result.message
    c = certify(negs, result.prices, result.z)
    assert not c.bounded and "not certified" in c.message and "FloProNegotiator" in c.message


def test_flopro_metadata_places_the_plan_without_a_layout() -> None:
    """FloPro's real metadata: one group, columns asin, vendor_code, inbound_node, week, string ids,
    asin first. Placed as (week, node, asin) in natural order (ASIN_2 before ASIN_10)."""
    meta = flopro_metadata(12, 3, 4)
    table = meta[GROUP].var_metadata
    assert list(table.columns) == ["asin", "vendor_code", "inbound_node", "week"]
    shape, labels = plan_axes([meta])
    assert shape == (4, 3, 12) and labels[2][:3] == [("ASIN_0", "V0"), ("ASIN_1", "V0"), ("ASIN_2", "V0")] and labels[2][10] == ("ASIN_10", "V0")
    layout = layout_from_metadata(meta)[GROUP]
    rows = table.to_dict("records")
    for row, flat in zip(rows, layout, strict=True):
        t, j, a = np.unravel_index(flat, shape)
        assert (f"ASIN_{a}", f"NODE_{j}", t) == (row["asin"], row["inbound_node"], row["week"])
    # rows in another order land on the same plan components
    shuffled = table.sample(frac=1.0, random_state=0)
    again = layout_from_metadata({GROUP: GroupMetadata(GROUP, shuffled)}, labels=labels)[GROUP]
    np.testing.assert_array_equal(again, layout[shuffled.index.to_numpy()])
    # several vendor codes: one product per (asin, vendor) pair
    two = pd.concat([flopro_metadata(2, 1, 2, "V0")[GROUP].var_metadata, flopro_metadata(2, 1, 2, "V1")[GROUP].var_metadata])
    shape2, labels2 = plan_axes([{GROUP: GroupMetadata(GROUP, two)}])
    assert shape2 == (2, 1, 4) and ("ASIN_1", "V0") in labels2[2]


def test_flopro_style_agent_plugs_in_and_negotiates_with_a_flosim_agent() -> None:
    """No layout given: the stand-in retailer's own metadata places it; against the vendor's LP
    negotiator (which can certify, the retailer cannot) the stop is on residuals."""
    retailer, vendor = pair(*DIMS, backlog_ratio=100, seed=4)
    adapted = FloProNegotiator(retailer)
    assert adapted.shape == (DIMS[2], DIMS[1], DIMS[0])
    idx = adapted.layout[GROUP]
    lp, x = vendor.lp_and_x()
    flat = np.empty(idx.size, dtype=np.int64)
    flat[idx] = x  # the vendor's LP in the adapter's plan order
    result = ConsensusADMM(ADMMOptions(eps_abs=1e-5, eps_rel=1e-5, max_iter=5000)).negotiate(
        [adapted, LPBestResponse(lp, flat.reshape(adapted.shape))], adapted.shape)
    assert result.status == "stopped_on_residuals"
    fb = first_best([retailer, vendor])
    plan = np.asarray(result.answers[1]).ravel()[idx]
    assert (social_cost([retailer, vendor], plan) - fb) / fb <= 1e-3


def test_build_flopro_agent_registers_metadata_first() -> None:
    """FloPro's ADK agents read their metadata from a registry in __init__ (else RegistrationError)."""
    registry: dict = {}

    class ADKStyleAgent:
        def __init__(self, agent_params, data_loader=None, solver=None):
            if type(self) not in registry:
                raise RuntimeError("No variable metadata registered")
            self.metadata, self.data = registry[type(self)], data_loader.load()

    meta = flopro_metadata(2, 2, 3)
    agent = build_flopro_agent(ADKStyleAgent, meta, {"demand": 1}, registry=registry)
    assert agent.data == {"demand": 1} and agent.metadata[GROUP] is meta[GROUP]


def test_adapted_agents_run_in_their_own_processes() -> None:
    """A FloProNegotiator, or a factory of one, answers from its own process; it says it cannot
    certify, and certify() with it answers 'not certified'."""
    import functools

    from sim.negotiation.best_response import ProcessNegotiator

    retailer, vendor = pair(*DIMS, backlog_ratio=100, seed=4)
    local = [FloProNegotiator(retailer), FloProNegotiator(vendor)]
    with ProcessNegotiator(FloProNegotiator(retailer)) as r_proc, \
            ProcessNegotiator(functools.partial(adapted, 1, n_asins=3, n_nodes=2, n_weeks=3, backlog_ratio=100, seed=4)) as v_proc:
        assert v_proc.shape == local[1].shape and r_proc.can_certify is False and v_proc.can_certify is False
        opts = ADMMOptions(max_iter=15)
        here = ConsensusADMM(opts).negotiate(local, local[0].shape)
        there = ConsensusADMM(opts).negotiate([r_proc, v_proc], local[0].shape)
        np.testing.assert_allclose(there.z, here.z, atol=1e-9)
        c = certify([r_proc, v_proc], there.prices, there.z)
        assert not c.bounded and "not certified" in c.message



class _CertifiesButBreaks(_Quadratic):
    """States the certificate's numbers, but its solver breaks when asked for the dual value."""

    def own_cost(self, x):
        return float(self.c * self.a / 2 * np.sum((np.asarray(x) - self.b) ** 2))

    def dual_value(self, prices):
        raise RuntimeError("solver licence expired")


def test_an_agent_failing_at_a_check_fails_the_negotiation_instead_of_raising() -> None:
    """A check is a question to the agents like a round: an agent that raises there gives status
    'failed' with the reason (and the negotiation's state), not an exception that loses the result
    (it escaped ConsensusADMM.negotiate)."""
    rng = np.random.default_rng(2)
    agents = [_CertifiesButBreaks(1.0 + i, rng.normal(size=(2, 3)), 1.0) for i in range(2)]
    result = ConsensusADMM(ADMMOptions(rho=1.0)).negotiate(agents, (2, 3))
    assert result.status == "failed" and not result.agreed and not result.certified
    assert "certificate check" in result.message and "solver licence expired" in result.message
    assert result.iterations >= 1 and np.all(np.isfinite(result.z))


def test_the_last_round_is_checked_whatever_the_residuals() -> None:
    """With a residual test that never passes (zero tolerances), no check is triggered before the cap;
    the last round is still certified: ``converged`` when its bound is within ``gap_tol`` (and the
    plan's true gap within the bound), the cap otherwise, with the bound reported either way."""
    agents = pair(*DIMS, backlog_ratio=200, seed=3)
    fb = first_best(agents)
    loose = ConsensusADMM(ADMMOptions(eps_abs=0, eps_rel=0, max_iter=50, gap_tol=0.03)).negotiate(
        _lp_negotiators(agents), (int(np.prod(DIMS)),))
    assert loose.status == "converged" and loose.iterations == 50 and loose.checks == 1
    assert loose.primal_residual > 0  # the answers still disagree: the residual test did not stop it
    assert loose.gap_bound <= 0.03
    assert (social_cost(agents, loose.certified_plan) - fb) / fb <= loose.gap_bound + 1e-9
    tight = ConsensusADMM(ADMMOptions(eps_abs=0, eps_rel=0, max_iter=50, gap_tol=1e-3)).negotiate(
        _lp_negotiators(agents), (int(np.prod(DIMS)),))
    assert tight.status == "iteration_cap" and not tight.converged and tight.checks == 1
    assert tight.gap_bound == pytest.approx(loose.gap_bound)


def test_an_absolute_gap_stops_within_it() -> None:
    """``gap_abs``: the stop is on ``upper - lower`` (money), not the relative gap: half the
    absolute gap the relative stop allows takes at least as many rounds and ends within it."""
    agents = pair(*DIMS, backlog_ratio=200, seed=3)
    fb = first_best(agents)
    relative = ConsensusADMM(ADMMOptions()).negotiate(_lp_negotiators(agents), (int(np.prod(DIMS)),))
    allowed = 0.5 * 1e-3 * fb
    absolute = ConsensusADMM(ADMMOptions(gap_abs=allowed)).negotiate(_lp_negotiators(agents), (int(np.prod(DIMS)),))
    assert absolute.converged
    c = absolute.certificate
    assert c.upper - c.lower <= allowed
    assert social_cost(agents, absolute.certified_plan) - fb <= allowed + 1e-9 * fb
    assert absolute.iterations >= relative.iterations
    with pytest.raises(ValueError):
        ADMMOptions(gap_abs=0)
