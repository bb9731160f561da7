"""Several vendors: the party-neutral world, the per-vendor pivot of cpp-vcg, and what each party sees.

The built-in ``two-vendors`` scenario (vendors ``acme`` and ``sonora`` competing for the South-West)
and a small known-demand two-vendor instance. Checks: units and money add up every week across all
parties; the per-vendor pivot equals an independent computation; with one vendor the pivot is the CBT
exactly; policies complete with agents that expose only the planning protocol, and a vendor's agent
is only ever shown arrays of its own block.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from conftest import small_scenario_dict
from policies.cbt import cost_benefit_transfer
from policies.cpp_vcg import CPPVCGPolicy
from policies.jit import jit_outcome
from sim.model.decision import RetailerPlanner, VendorPlanner
from sim.model.scenario import load_scenario, scenario_from_dict
from sim.parties.oracle import joint_plan
from sim.runner import run_policies
from sim.world import planning_context


@pytest.fixture(scope="module")
def two_vendors():
    return load_scenario("two-vendors").with_overrides({"weeks": 3})


def known_demand_two_vendors() -> dict[str, Any]:
    """The small test network with deterministic demand and a second vendor (``west``) near W1 that
    supplies product ``a`` only, competing with the first vendor (``east``)."""
    d = small_scenario_dict()
    products = d.pop("products")
    origins, lanes = d.pop("origins"), d.pop("lanes")
    d.update(schema_version=2, name="two-small", weeks=2, demand={"deterministic": True})
    d["products"] = [{k: v for k, v in p.items() if k != "wholesale_price"} for p in products]
    d["vendors"] = [
        {"name": "east", "origins": origins, "lanes": lanes, "products": {p["name"]: p["wholesale_price"] for p in products}},
        {"name": "west", "products": {"a": 4.8},
         "origins": [{"name": "WO", "capacity": 80, "production_cost": {"a": 1.0}, "holding_cost": 0.01}],
         "lanes": [{"origin": "WO", "fc": "W1", "spare_volume": 40, "spare_cost": 0.02, "truckload_cost": 0.9},
                   {"origin": "WO", "fc": "E1", "truckload_cost": 1.4}]},
    ]
    return d


@pytest.mark.parametrize("policy", ["jit", "first-best", "cpp", "cpp-vcg"])
def test_units_and_money_add_up_every_week_for_every_party(two_vendors, tracer, checks, policy):
    s = two_vendors if policy != "cpp-vcg" else two_vendors.with_overrides({"policies.cpp-vcg": {"solver": "central"}})
    trace = tracer(s, policy)
    assert set(trace.weeks[0].vendors) == {"acme", "sonora"}
    checks.conservation(trace, s)
    checks.money(trace, s)
    if policy in ("first-best", "cpp", "cpp-vcg"):  # both vendors ship: a sourcing question, not one vendor's plan
        shipped = {name: sum(w.vendors[name].shipped.sum() for w in trace.weeks) for name in ("acme", "sonora")}
        assert min(shipped.values()) > 0, shipped


def test_nothing_is_ordered_from_a_vendor_that_does_not_supply_it(two_vendors):
    ctx = planning_context(two_vendors, 0)
    pub = ctx.public
    for plan in (ctx.retailer.preferred_plan().plan, joint_plan(ctx.retailer, ctx.vendors).plan):
        assert plan.shape == pub.shape == (2, pub.horizon, pub.F, pub.K)
        unsupplied = plan[~pub.supplies[:, None, None, :].repeat(pub.horizon, 1).repeat(pub.F, 2)]
        assert np.all(np.abs(unsupplied) <= 1e-9)
    razors, sunscreen = pub.products.index("razors"), pub.products.index("sunscreen")
    assert pub.supplies[pub.vendor_index("acme"), razors] and not pub.supplies[pub.vendor_index("sonora"), razors]
    assert pub.supplies[pub.vendor_index("sonora"), sunscreen] and not pub.supplies[pub.vendor_index("acme"), sunscreen]


def test_each_vendors_pivot_equals_an_independent_computation():
    """Known demand, central solves: ``T_v = S_-v(x*_t) - S_-v(x^{-v}_t)``, where ``S_-v(po)`` is the
    least cost of the retailer and the other vendor when this week's PO is ``po`` and the later weeks
    are planned without ``v``'s preferences (a joint LP here, independent of the policy's code); the
    retailer receives both pivots."""
    s = scenario_from_dict(known_demand_two_vendors(), "<two-small>")
    ctx = planning_context(s, 0)
    policy = CPPVCGPolicy(solver="central", two_way=True)
    decision = policy.decide(ctx)
    star = joint_plan(ctx.retailer, ctx.vendors).plan
    np.testing.assert_allclose(decision.plan, star, atol=1e-7)
    for v, other in (("east", "west"), ("west", "east")):
        others = {other: ctx.vendors[other]}  # v's block: the retailer's choice alone
        expected = _least_cost(ctx, others, star[:, 0]) - _least_cost(ctx, others, None)
        assert decision.diagnostics[f"pivot_raw_{v}"] == pytest.approx(expected, rel=1e-7, abs=1e-6)
        assert decision.transfers[v] == pytest.approx(expected, rel=1e-7, abs=1e-6)
    assert decision.transfers["retailer"] == pytest.approx(-(decision.transfers["east"] + decision.transfers["west"]))
    assert decision.balance == pytest.approx(0.0, abs=1e-9)


def _least_cost(ctx, vendors, first_week) -> float:
    """The retailer's and ``vendors``' least joint cost, this week's PO fixed at ``first_week`` (None:
    free), written as one LP from the agents' cost models."""
    from sim.model.lp import LPBuilder, solve_lp

    b = LPBuilder()
    x = b.add_var(ctx.public.shape)
    ctx.retailer.add_block(b, x)
    for agent in vendors.values():
        agent.add_block(b, x[agent.index])
    lp = b.build() if first_week is None else b.build().with_bounds(x[:, 0], first_week, first_week)
    return solve_lp(lp).objective


def test_payee_each_pays_every_party_its_own_term():
    s = scenario_from_dict(known_demand_two_vendors(), "<two-small>")
    ctx = planning_context(s, 0)
    to_retailer = CPPVCGPolicy(solver="central", two_way=True).decide(ctx)
    each = CPPVCGPolicy(solver="central", two_way=True, payee="each").decide(ctx)
    # vendors pay the same pivots; who receives them differs; budget balanced either way
    for v in ("east", "west"):
        assert each.diagnostics[f"pivot_raw_{v}"] == pytest.approx(to_retailer.diagnostics[f"pivot_raw_{v}"])
    assert sum(each.transfers.values()) == pytest.approx(0.0, abs=1e-9)
    assert each.transfers["retailer"] != pytest.approx(to_retailer.transfers["retailer"])


@pytest.mark.parametrize("transfer", [None, {"continuation": "paths"}], ids=["default", "paths"])
def test_with_one_vendor_the_pivot_is_the_cbt_exactly(default_scenario, transfer):
    policy = CPPVCGPolicy(solver="central", transfer=transfer)
    decision = policy.decide(planning_context(default_scenario, 1))
    ctx = planning_context(default_scenario, 1)  # a fresh context: the same demand scenarios are drawn
    jit = jit_outcome(ctx)
    cbt = cost_benefit_transfer(ctx, decision.plan, jit.plan, continuation=policy.continuation)
    assert decision.transfers["vendor"] == cbt.paid
    assert decision.transfers["retailer"] == -cbt.paid
    assert decision.diagnostics["cbt_raw"] == cbt.raw


class _ProtocolOnly:
    """An agent that exposes only the planning protocol (no cost model, no ``add_block``), and records
    every array it is shown, through its queries and through its negotiator."""

    def __init__(self, agent: Any, methods: tuple[str, ...], seen: list) -> None:
        self._agent, self._methods, self._seen = agent, methods, seen
        self.party, self.public = agent.party, agent.public

    def __getattr__(self, name: str) -> Any:
        if name not in self._methods:
            raise AttributeError(f"policy asked {self.party!r} for {name!r}, which is not part of the protocol")
        target = getattr(self._agent, name)
        if name == "forecast":
            return target
        if name == "negotiator":
            def negotiator(*args: Any, **kwargs: Any) -> Any:
                return _Seen(target(*args, **kwargs), self._seen)
            return negotiator

        def call(*args: Any, **kwargs: Any) -> Any:
            self._seen.extend(np.shape(a) for a in args if isinstance(a, np.ndarray))
            return target(*args, **kwargs)
        return call


class _Seen:
    def __init__(self, inner: Any, seen: list) -> None:
        self._inner, self._seen = inner, seen

    def best_response(self, z, prices, rho):
        self._seen.extend([np.shape(z), np.shape(prices)])
        return self._inner.best_response(z, prices, rho)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


RETAILER_METHODS = ("forecast", "preferred_plan", "evaluate", "cost_with_first_week", "fcs_serving", "negotiator")
VENDOR_METHODS = ("evaluate", "coarse_preference", "coarse_volumes", "negotiator")


@pytest.mark.parametrize("policy", ["jit", "cpp", "cpp-vcg", "split-savings", "menu"])
def test_policies_need_only_the_protocol_and_show_a_vendor_only_its_block(two_vendors, policy):
    from policies.registry import make_policy

    ctx = planning_context(two_vendors, 0)
    seen: dict[str, list] = {"retailer": [], "acme": [], "sonora": []}
    retailer = _ProtocolOnly(ctx.retailer, RETAILER_METHODS, seen["retailer"])
    vendors = {name: _ProtocolOnly(agent, VENDOR_METHODS, seen[name]) for name, agent in ctx.vendors.items()}
    assert isinstance(retailer, RetailerPlanner) and all(isinstance(v, VendorPlanner) for v in vendors.values())
    with pytest.raises(AttributeError):
        vendors["acme"].add_block  # noqa: B018 - the cost model is out of reach
    limited = type(ctx)(ctx.week, ctx.public, retailer, vendors, ctx.rng, ctx.forecast_sd)
    decision = make_policy(policy, two_vendors).decide(limited)
    assert decision.plan.shape == ctx.public.shape
    block = ctx.public.block_shape
    for name in ("acme", "sonora"):
        assert seen[name], f"{name} was never asked anything"
        assert all(shape == block for shape in seen[name]), (name, set(seen[name]))
    if policy != "jit":  # in a negotiation the retailer answers for the whole plan
        assert any(shape == ctx.public.shape for shape in seen["retailer"])


def test_rounding_in_budget_balanced_transfers_leaves_no_mechanism_balance():
    """A budget-balanced rule pays the retailer minus the vendors' payments; the float sum of such
    transfers can be 1e-13 off zero, which must not put a ``mechanism`` row in the ledger."""
    from sim.model.decision import Decision

    a, b = 2922.1234567891, 1703.987654321
    rounded = Decision(np.zeros((2, 1, 1, 1)), {"acme": a, "retailer": -(a + b), "sonora": b})
    assert sum(rounded.transfers.values()) != 0.0  # the premise: the plain float sum is not zero
    assert rounded.balance == 0.0
    kept = Decision(np.zeros((2, 1, 1, 1)), {"acme": a, "retailer": -a})
    assert kept.balance == 0.0
    surplus = Decision(np.zeros((2, 1, 1, 1)), {"acme": a, "sonora": b, "retailer": -a})
    assert surplus.balance == pytest.approx(-b)


def test_a_negotiation_with_the_first_week_fixed_reaches_the_joint_optimum_of_the_later_weeks(two_vendors):
    """``S_-v(po)`` of the pivot: the retailer and one vendor negotiate the later weeks with this week's
    PO given (each agent fixes it on its own side); the plan keeps the PO and costs what the joint LP
    with the same PO fixed costs, to the negotiation's tolerance."""
    from policies.cpp import negotiate_efficient_plan

    ctx = planning_context(two_vendors, 0)
    po = 0.8 * joint_plan(ctx.retailer, ctx.vendors).plan[:, 0]  # not the optimum's own first week
    plan, result = negotiate_efficient_plan(ctx, vendors=["sonora"], first_week=po)
    assert result.converged, result.message
    np.testing.assert_allclose(plan[:, 0], po, atol=1e-6 * (1 + po.max()))
    s = ctx.public.vendor_index("sonora")
    negotiated = ctx.retailer.evaluate(plan).total + ctx.vendors["sonora"].evaluate(plan[s]).total
    best = _least_cost(ctx, {"sonora": ctx.vendors["sonora"]}, po)
    assert best <= negotiated <= best + 1e-2 * abs(best)
    free = _least_cost(ctx, {"sonora": ctx.vendors["sonora"]}, None)
    assert free < best  # fixing the first week away from the optimum costs something: the test can fail


def test_every_vendors_pivot_is_priced_on_the_same_demand_scenarios(two_vendors, monkeypatch):
    """Common random numbers within a week: the pivots of all vendors (and the comparison with JIT)
    use one draw of demand scenarios, not one draw per vendor (the pivots value the continuation on the
    paths: ``continuation: paths``; at the default, ``forecast``, they use none)."""
    import policies.cbt as cbt

    seen = []
    real = cbt.TransferPricer.__init__

    def spy(self, *args, **kwargs):
        real(self, *args, **kwargs)
        seen.append(self.paths)

    monkeypatch.setattr(cbt.TransferPricer, "__init__", spy)
    CPPVCGPolicy(solver="central", scenarios=4, transfer={"continuation": "paths"}).decide(planning_context(two_vendors, 0))
    assert len(seen) >= 3 and seen[0].shape[0] == 4  # two pivots and the JIT comparison
    assert all(np.array_equal(p, seen[0]) for p in seen)
