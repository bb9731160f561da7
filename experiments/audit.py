"""Incentive audit: does any party gain by misreporting its costs? (docs/model.md, "Metrics"; docs/mechanisms.md)

For each mechanism, party and lie, the party's agent answers the mechanism's queries with a
misreported cost model while its *true* outcome is measured; every other party answers truthfully.
With several vendors each vendor lies in turn (the others truthful). ``gain = truthful net cost -
lying net cost``: positive means lying pays. Rows carry ``party``, the liar's party name
(``retailer`` or a vendor's name). Two modes:

* ``round`` (default): the theory's test. At each audited planning week (states reached under JIT),
  the mechanism decides once with truthful and once with lying answers. A party's true net cost of a
  round is what it pays this week plus its continuation under the mechanism (dynamic pivot). Let
  ``S(x_t)`` be the least true social cost over the horizon with the PO fixed to ``x_t``, and
  ``S_-v(x_t)`` the same without vendor ``v``'s costs (the retailer and the other vendors; ``v``'s
  later weeks ordered as the retailer likes at the wholesale price): vendor ``v`` bears
  ``S(x_t) - S_-v(x_t) + T_v`` (``T_v`` what it pays this week), the retailer the rest of
  ``S(x_t)`` plus what it pays. With one vendor ``S_-v`` is the retailer's own least cost
  ``R(x_t)``, so the vendor bears ``S - R + T`` and the retailer ``R - T``. All are exact LPs. A
  mechanism whose price covers a whole plan (the menu with plan pricing, ``diagnostics["contract"] ==
  "plan"``) is valued as that contract instead: each party's true cost of the plan plus what it pays.
  Under CPP-VCG with a two-way transfer, ``gamma = 0`` and demand known, a vendor's net cost is
  ``S(x_t)`` minus terms it cannot influence, so truth is optimal. Each round's committed PO is
  executed with that week's realised capacity by the true vendors (:func:`sim.execution.settle`):
  a PO they cannot ship in full (capacity shocks, or a vendor that over-promised) is valued as
  delivered, with the transfers after the mechanism's remedy and any damages.
* ``run``: the world is simulated over the whole run with the lie told every week, and realised
  ledger net costs (by party name) are compared on the same random numbers. Useful but not a test of
  the theory: costs stop at the last simulated week while stock carries on, and the rolling plan on
  point forecasts is not optimal in a noisy world, so a lie can lower realised social cost.

Transfer rules (:mod:`policies.transfer_rules`): rows carry ``rule``, the audited mechanism's rule;
:func:`mechanism_overrides` sets it (and any other parameter) for ``cpp-vcg`` and the menu. Under
``vcg-both`` the retailer pays its own pivot every week, so its continuation is valued as ``S(x_t)``
less each vendor's own least cost with its PO fixed (the vendor's side is unchanged); with that, its
net cost too is the social cost up to terms it cannot influence.

Lies (:mod:`experiments.lies`), after a control row ``truthful`` per party (its true data reported
through the same path as a lie: its gain is zero, or the audit's own noise). By default each party's
hand-written set:

* each vendor: scale all its costs by alpha on a grid; inflate one of its lanes (the one with spare
  truck volume); hide its spare truck volume; understate its production capacity; overstate it
  (over-promising: everywhere, and at its largest origin);
* retailer: inflate its holding cost; inflate its lost-sales penalty.

``lies="all"`` adds the families generated from the party's private data (every cost and quantity
scaled as a whole and at one FC, region, product, origin or lane at a time; the retailer's forecast
per region and stock per FC; a vendor's stock and capacity per origin, spare volume per lane);
``lies=n`` samples ``n`` of those reproducibly from the seed. Rows carry ``parameter``.

Theory: under ``cpp-vcg`` a vendor's cost plus its pivot payment equals the social cost up to terms
it cannot influence, so no vendor lie should pay beyond solver and rolling-horizon error (with one
vendor; with several, the other vendors' terms price weeks that do not bind, and lies that pay are
measured on ``two-vendors``: docs/vendors.md); under
``split-savings`` the transfer depends on the vendors' reported savings, so some lies pay. The
one-directional CBT makes no such promise for the retailer, whose reported costs set the transfer it
receives: the audit reports what happens.

What a user may do: :func:`run_audit` (the table), :func:`audit_parties` (who can lie in a scenario),
:func:`vendor_lies` / :func:`retailer_lies` (the lies), or ``flosim audit``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from forecasts.inputs import draw_inputs, policy_rng
from policies.registry import make_policy
from sim.parties.retailer import RetailerAgent
from sim.parties.oracle import joint_plan
from experiments.lies import ALPHAS, TRUTHFUL, Lie, liar_agent, lie_rng, pick_lies, retailer_lies, vendor_lies  # noqa: F401
from sim.model.data import RetailerData, VendorData, split_scenario
from sim.model.decision import MECHANISM, RETAILER
from sim.model.errors import FlosimError
from sim.model.commitment import PlanBounds, agreed_box
from sim.model.lp import LPBuilder, solve_lp
from sim.model.scenario import Scenario
from sim.execution import settle, short
from sim.world import World, planning_context

#: a gain within ``truthful_slack`` plus this much of the social cost (LP tolerance) is ``within_slack``
SLACK_TOL = 1e-7


def audit_parties(scenario: Scenario) -> list[str]:
    """The parties that can lie in ``scenario``, in ledger order: the retailer, then each vendor."""
    return [RETAILER, *(spec.name for spec in scenario.vendor_specs())]


def _lies(scenario: Scenario, parties: Sequence[str] | None, which: str | int | None = None,
          seed: int | None = None) -> tuple[list[Lie], RetailerData, dict[str, VendorData]]:
    """Every lie of the audited ``parties`` (default: all), each vendor's in vendor order, then the
    retailer's; an unknown party name is an error naming the scenario's parties. ``which``: the
    hand-written set (None), ``"all"`` or a sampled count (:func:`experiments.lies.pick_lies`, drawn
    from ``seed``, default the scenario's)."""
    public, retailer_data, vendor_data = split_scenario(scenario)
    known = audit_parties(scenario)
    chosen = known if parties is None else list(parties)
    unknown = [p for p in chosen if p not in known]
    if unknown:
        raise FlosimError(f"audit: unknown part{'y' if len(unknown) == 1 else 'ies'} {', '.join(map(repr, unknown))} "
                          f"in scenario {scenario.name!r} (parties: {', '.join(known)})")
    seed = scenario.seed if seed is None else seed
    datas = [*vendor_data.values(), retailer_data]
    names = [*vendor_data, RETAILER]
    lies = []
    for name, data in zip(names, datas):
        if name in chosen:
            rng = lie_rng(seed, known.index(name)) if isinstance(which, int) else None
            lies += pick_lies(public, data, which, rng)
    return lies, retailer_data, vendor_data


def policy_rule(policy: Any) -> str:
    """The transfer rule a built policy applies (:mod:`policies.transfer_rules`), or ``""`` for a policy
    without one (JIT, first best, a user's policy)."""
    settings = getattr(policy, "transfer", None)
    return str(getattr(settings, "rule", "") or "")


#: The mechanisms whose transfer rule ``--rule`` sets (the others have a fixed rule or none).
RULE_MECHANISMS = ("cpp-vcg", "menu")


def _merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) else value
    return out


def mechanism_overrides(scenario: Scenario, mechanisms: Sequence[str], rule: str | None = None,
                        options: Sequence[tuple[str, Any]] = ()) -> dict[str, dict[str, Any]]:
    """Each mechanism's parameters for an audit: the scenario's, with ``options`` (``(dotted.name, value)``
    pairs such as ``("solver", "central")``, ``("cpp.gap_tol", 1e-3)``, ``("transfer.prior.spread", 0.2)``)
    and, for the mechanisms that take a transfer rule (:data:`RULE_MECHANISMS`), ``transfer.rule = rule``,
    merged into them (nested settings are merged, not replaced). The policies validate the result when
    they are built."""
    import inspect

    takes = {m: set(inspect.signature(type(make_policy(m, scenario)).__init__).parameters) for m in mechanisms}
    for name, _ in options:
        if not any(name.split(".")[0] in t for t in takes.values()):
            raise FlosimError(f"--set {name}: not a parameter of {', '.join(mechanisms)}")
    out: dict[str, dict[str, Any]] = {}
    for mech in mechanisms:
        extra: dict[str, Any] = {}
        for name, value in options:
            if name.split(".")[0] not in takes[mech]:
                continue
            node = extra
            *path, leaf = name.split(".")
            for part in path:
                node = node.setdefault(part, {})
            node[leaf] = value
        if rule is not None and mech in RULE_MECHANISMS:
            extra = _merge(extra, {"transfer": {"rule": rule}})
        if extra:
            out[mech] = _merge(dict(scenario.policies.get(mech, {})), extra)
    return out


def _net_costs(ledger: list[dict[str, Any]]) -> tuple[dict[str, float], float]:
    df = pd.DataFrame(ledger)
    by_party = df.groupby("party")["value"].sum()
    return {str(p): float(v) for p, v in by_party.items()}, float(df["value"].sum())


def _run_audit(
    scenario: Scenario,
    mechanisms: Sequence[str] = ("cpp-vcg", "split-savings"),
    *,
    weeks: int | None = None,
    seed: int | None = None,
    parties: Sequence[str] | None = None,
    policy_overrides: dict[str, dict[str, Any]] | None = None,
    on_run: Callable[[], None] | None = None,
    lies: str | int | None = None,
) -> pd.DataFrame:
    """Whole-run audit (mode ``run``)."""
    weeks = scenario.weeks if weeks is None else weeks
    seed = scenario.seed if seed is None else seed
    scenario = scenario.model_copy(update={"seed": seed, "weeks": weeks})
    inputs = draw_inputs(scenario, weeks=weeks, seed=seed)
    public = split_scenario(scenario)[0]
    lies, retailer_data, vendor_data = _lies(scenario, parties, lies, seed)
    rows = []
    for mech in mechanisms:
        overrides = (policy_overrides or {}).get(mech, {})
        policy = make_policy(mech, scenario, **overrides)
        truth_party, truth_social = _net_costs(World(scenario, policy, inputs).run(weeks).ledger)
        truth_balance = truth_party.get(MECHANISM, 0.0)  # the mechanism's ledger row: its balance B
        if on_run:
            on_run()
        for lie in lies:
            true_data = retailer_data if lie.party == RETAILER else vendor_data[lie.party]
            world = World(scenario, make_policy(mech, scenario, **overrides), inputs,
                          reports={lie.party: liar_agent(public, lie, true_data)})
            lie_party, lie_social = _net_costs(world.run(weeks).ledger)
            if on_run:
                on_run()
            truth_cost, lie_cost = truth_party.get(lie.party, 0.0), lie_party.get(lie.party, 0.0)
            gain = truth_cost - lie_cost
            rows.append(
                {
                    "mechanism": mech,
                    "rule": policy_rule(policy),
                    "party": lie.party,
                    "lie": lie.name,
                    "parameter": lie.parameter,
                    "gain": gain,
                    "relative_gain": gain / abs(truth_social) if truth_social else float("nan"),
                    "truthful_net_cost": truth_cost,
                    "lying_net_cost": lie_cost,
                    "truthful_social_cost": truth_social,
                    "lying_social_cost": lie_social,
                    "truthful_balance": truth_balance,
                }
            )
    return pd.DataFrame(rows)


def audit_steps(scenario: Scenario, mechanisms: Sequence[str], parties: Sequence[str] | None, mode: str, weeks: int,
                lies: str | int | None = None, seed: int | None = None) -> int:
    """Number of progress steps :func:`run_audit` reports through ``on_run``."""
    n = len(_lies(scenario, parties, lies, seed)[0])
    return len(mechanisms) * (1 + n) * (weeks if mode == "round" else 1)


def fixed_first_week_cost(retailer: RetailerAgent, vendor: Any, po: np.ndarray, box: PlanBounds | None = None) -> float:
    """Least true cost over the horizon with week 0 of the plan fixed to ``po`` ``[V, F, K]``: the
    retailer's alone (``vendor`` None) or the social cost with ``vendor`` (one vendor's agent, or the
    vendors' agents by name: each adds its own block). The later weeks stay inside the commitments
    the agents' states hold and, if given, inside ``box`` (what this round's agreement commits:
    :func:`sim.model.commitment.agreed_box`)."""
    agents = [] if vendor is None else list(vendor.values()) if isinstance(vendor, Mapping) else [vendor]
    b = LPBuilder()
    x = b.add_var(retailer.public.shape)
    if box is not None:
        b.tighten(x, box.lower, box.upper)
    retailer.add_block(b, x)
    for agent in agents:
        agent.add_block(b, x[agent.index])
    lp = b.build().with_bounds(x[:, 0], po, po)
    sol = solve_lp(lp, raise_on_fail=False)
    if not sol.ok:
        return float("inf")
    return sol.objective


def committed_contexts(scenario: Scenario, mechanism: str, overrides: Mapping[str, Any], weeks: Sequence[int],
                       seed: int) -> dict[int, Any]:
    """The planning contexts of ``weeks`` reached under the truthful ``mechanism`` itself (not under JIT):
    a mechanism with a mutual commitment plans inside the commitments its earlier agreements made, and
    a round of the audit must face them. Each context is a copy taken before the week's decision."""
    import copy

    inputs = draw_inputs(scenario, weeks=max(weeks) + 1, seed=seed)
    policy = make_policy(mechanism, scenario, **overrides)
    kept: dict[int, Any] = {}

    class _Keep:
        name = policy.name

        def decide(self, ctx: Any) -> Any:
            if ctx.week in weeks:
                kept[ctx.week] = copy.deepcopy(ctx)
            return policy.decide(ctx)

    World(scenario, _Keep(), inputs).run(max(weeks) + 1)
    return kept


def _commits(policy: Any) -> Any:
    """The mutual commitment a built policy makes beyond its PO (None: the weekly commitment)."""
    commit = getattr(policy, "commit", None)
    return commit if commit is not None and getattr(commit, "weeks", 1) > 1 else None


def _round_audit(
    scenario: Scenario,
    mechanisms: Sequence[str],
    *,
    weeks: int,
    seed: int,
    parties: Sequence[str] | None,
    policy_overrides: dict[str, dict[str, Any]] | None,
    on_run: Callable[[], None] | None,
    lies: str | int | None = None,
    first_week: int = 0,
) -> pd.DataFrame:
    scenario = scenario.model_copy(update={"seed": seed, "weeks": max(first_week + weeks, 1)})
    public = split_scenario(scenario)[0]
    lies, retailer_data, vendor_data = _lies(scenario, parties, lies, seed)
    parameter = {(lie.party, lie.name): lie.parameter for lie in lies}
    audited = list(range(first_week, first_week + weeks))
    contexts = [planning_context(scenario, week=w) for w in audited]
    # each round's PO is executed with that week's realised capacity and the scenario's rationing, by
    # the true vendors (an over-promise is shipped short and settled under the mechanism's remedy)
    shares = draw_inputs(scenario, weeks=max(first_week + weeks, 1), seed=seed).get("capacity")
    execution = scenario.execution
    ranking = [public.fcs.index(f) for f in (execution.ranking or [])] if execution is not None else []
    # the least true social cost of each round, nothing fixed: the truthful plan's distance from it
    # bounds what any lie can gain where the mechanism is a Clarke pivot (a vendor's net cost = S + const)
    jit_contexts = contexts
    first_best = [joint_plan(ctx.retailer, ctx.vendors).social_cost for ctx in contexts]
    jit_first_best = first_best
    acc: dict[tuple[str, str, str], list[float]] = {}
    rules: dict[str, str] = {}
    balance: dict[str, float] = {}  # the mechanism's balance B of the truthful decisions (+ deficit, - surplus)
    social: dict[str, float] = {}
    slack: dict[str, float] = {}
    for mech in mechanisms:
        overrides = (policy_overrides or {}).get(mech, {})
        commit = _commits(make_policy(mech, scenario, **overrides))
        contexts, first_best = jit_contexts, jit_first_best
        if commit is not None:  # rounds in the states the mechanism itself reaches, inside its commitments
            kept = committed_contexts(scenario, mech, overrides, audited, seed)
            contexts = [kept[w] for w in audited]
            first_best = [joint_plan(ctx.retailer, ctx.vendors).social_cost for ctx in contexts]
        for w, ctx in enumerate(contexts):
            # every decision of a round sees the same demand scenarios: a fresh generator per call
            fresh = lambda c: replace(c, rng=policy_rng(seed, c.week))  # noqa: E731
            policy = make_policy(mech, scenario, **overrides)
            rules[mech] = policy_rule(policy)
            truth_decision = policy.decide(fresh(ctx))

            def true_costs(decision) -> dict[str, float]:
                done = settle(ctx.retailer, ctx.vendors, decision,
                              np.ones(len(scenario.all_origins)) if shares is None else shares[ctx.week],
                              rationing="cheapest" if execution is None else execution.rationing, ranking=ranking)
                paid = {p: float(done.transfers.get(p, 0.0)) + float(done.damages.get(p, 0.0)) for p in (RETAILER, *ctx.vendors)}
                paid[RETAILER] -= float(sum(done.damages.values()))
                if decision.diagnostics.get("contract") == "plan":
                    # the price covers the whole plan (menu with plan pricing): value the plan as the contract
                    own = {RETAILER: ctx.retailer.evaluate(decision.plan).total}
                    own.update({name: agent.evaluate(decision.plan[agent.index]).total for name, agent in ctx.vendors.items()})
                    return {**{p: own[p] + paid[p] for p in own}, "social": float(sum(own.values()))}
                # the PO as shipped: a committed one short of capacity, or JIT orders a vendor shorts (the
                # fixed-PO valuation cannot short: an order beyond a vendor's capacity would be valued infeasible)
                po = done.delivered if short(done.executed) else decision.po
                # the continuation stays inside what the agreement commits (a lie may shape it)
                box = agreed_box(ctx.bounds, decision.plan, decision.commit) if decision.committed else ctx.bounds
                box = None if box is ctx.bounds else box  # the states already hold the earlier commitments
                s_ = fixed_first_week_cost(ctx.retailer, ctx.vendors, po, box)
                share = {name: s_ - fixed_first_week_cost(ctx.retailer, {u: a for u, a in ctx.vendors.items() if u != name}, po, box)
                         for name in ctx.vendors}  # vendor v's continuation under the pivot: S - S_-v
                out = {name: share[name] + paid[name] for name in ctx.vendors}
                out[RETAILER] = s_ - sum(share.values()) + paid[RETAILER]
                if decision.diagnostics.get("transfer_rule") == "vcg-both":
                    # the retailer pays its own pivot every week: its continuation is the social cost less
                    # the vendors' own best continuations (each vendor's least cost with its PO fixed)
                    out[RETAILER] = s_ - sum(agent.preferred_plan(first_week=po[agent.index]).total
                                             for agent in ctx.vendors.values()) + paid[RETAILER]
                out["social"] = s_
                return out

            truth = true_costs(truth_decision)
            balance[mech] = balance.get(mech, 0.0) + truth_decision.balance
            social[mech] = social.get(mech, 0.0) + truth["social"]
            slack[mech] = slack.get(mech, 0.0) + truth["social"] - first_best[w]
            if on_run:
                on_run()
            for lie in lies:
                if lie.party == RETAILER:
                    liar = liar_agent(public, lie, retailer_data)
                    liar.observe(ctx.retailer.state, ctx.retailer.forecast)
                    lie_ctx = replace(ctx, retailer=liar)
                else:
                    liar = liar_agent(public, lie, vendor_data[lie.party])
                    liar.observe(ctx.vendors[lie.party].state)
                    lie_ctx = replace(ctx, vendors={**ctx.vendors, lie.party: liar})  # the others truthful
                lied = true_costs(make_policy(mech, scenario, **overrides).decide(fresh(lie_ctx)))
                key = (mech, lie.party, lie.name)
                a = acc.setdefault(key, [0.0, 0.0, 0.0])
                a[0] += truth[lie.party]
                a[1] += lied[lie.party]
                a[2] += lied["social"]
                if on_run:
                    on_run()
    rows = []
    for (mech, party, name), (truth_cost, lie_cost, lie_social) in acc.items():
        gain = truth_cost - lie_cost
        rows.append(
            {
                "mechanism": mech,
                "rule": rules[mech],
                "party": party,
                "lie": name,
                "parameter": parameter[(party, name)],
                "gain": gain,
                "relative_gain": gain / abs(social[mech]) if social[mech] else float("nan"),
                "truthful_net_cost": truth_cost,
                "lying_net_cost": lie_cost,
                "truthful_social_cost": social[mech],
                "lying_social_cost": lie_social,
                "truthful_slack": slack[mech],
                "truthful_balance": balance[mech],
                "within_slack": bool(gain <= slack[mech] + SLACK_TOL * abs(social[mech])),
            }
        )
    return pd.DataFrame(rows)


def run_audit(
    scenario: Scenario,
    mechanisms: Sequence[str] = ("cpp-vcg", "split-savings"),
    *,
    mode: str = "round",
    weeks: int | None = None,
    seed: int | None = None,
    parties: Sequence[str] | None = None,
    policy_overrides: dict[str, dict[str, Any]] | None = None,
    on_run: Callable[[], None] | None = None,
    lies: str | int | None = None,
    first_week: int = 0,
) -> pd.DataFrame:
    """The audit table: one row per mechanism, party and lie, gains summed over the audited weeks
    (``round``) or the simulated run (``run``); see the module docstring. ``parties``: the liars to
    audit by party name (default: the retailer and every vendor, each lying in turn). ``lies``: each
    party's hand-written set (None, the default), ``"all"`` (that set and the lie families generated
    from its private data) or a count ``n`` (the truthful control and ``n`` lies of ``"all"`` drawn
    from ``seed``; :mod:`experiments.lies`). Rows carry ``parameter``, the parameter lied about, and
    ``rule``, the mechanism's transfer rule. ``first_week`` (round mode): the first audited planning week
    (default 0; the audit covers ``first_week .. first_week + weeks - 1``)."""
    seed = scenario.seed if seed is None else seed
    if mode == "run":
        return _run_audit(scenario, mechanisms, weeks=weeks, seed=seed, parties=parties,
                          policy_overrides=policy_overrides, on_run=on_run, lies=lies)
    if mode != "round":
        raise ValueError(f"audit mode must be 'round' or 'run', got {mode!r}")
    if first_week < 0:
        raise FlosimError(f"audit: first week must be >= 0, got {first_week}")
    return _round_audit(scenario, mechanisms, weeks=3 if weeks is None else weeks, seed=seed, parties=parties,
                        policy_overrides=policy_overrides, on_run=on_run, lies=lies, first_week=first_week)
