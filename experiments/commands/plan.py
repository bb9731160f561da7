"""``flosim plan``: one planning round of a policy, compared with the first best.

    flosim plan [--scenario default] [--week 0] [--policy cpp] [--json] [--seed S]

Builds the context at the start of week ``W`` (earlier weeks simulated under JIT, via
:func:`sim.world.planning_context`), lets the policy decide, and reports its plan's social cost
(every party's evaluated cost), the first-best social cost, the relative gap, the negotiation's
iterations and convergence (for CPP policies), the transfers, the wall time, each party's planned
cost and the plan itself. With several vendors it also shows, for each vendor by name, its own cost
of its block, what it pays and the units of its PO, and prints each vendor's PO.

Two gaps to first best. ``gap`` scores the policy's whole six-week plan as it stands (for the menu:
the picked item's first week completed with the retailer's own continuation). On a rolling horizon
only the first week binds and the later weeks are planned again next week, so ``binding_gap`` scores
the binding part alone: ``binding_social_cost`` is the least social cost over the horizon with this
week's PO fixed and the later weeks re-planned efficiently (what ``flosim menu`` and the menu's 1%
test use). ``certified_gap`` (policy ``cpp``): an upper bound on ``gap`` that the agents can
compute without any central solver, from their costs of the plan and their dual values at the
final prices (:mod:`sim.negotiation.certificate`); null for other policies. For a policy whose contract covers the whole plan (the menu with ``commitment: plan``,
``pricing: plan``) both are null: the plan is what binds, and ``gap`` is the figure.

``--json`` prints all of it as one JSON object with keys ``policy, social_cost,
first_best_social_cost, gap, binding_social_cost, binding_gap, certified_gap, iterations, converged, transfer,
wall_s, planned, plan`` (plus ``scenario``, ``week``, ``committed``, ``diagnostics``, ``shape``,
``fcs``, ``products``). ``plan`` is the whole plan ``[vendor, week, FC, product]`` (``vendor_names``
in order); ``transfer`` is what the vendors pay in all, ``transfers`` what each party pays (negative:
receives) and ``balance`` the mechanism's own net; ``vendors`` maps each vendor's name to its
``cost`` (of its block of the plan), ``planned``, ``transfer`` and ``po_units``; ``retailer_cost`` is the
retailer's. Under an uncommitted decision (JIT) a vendor that cannot ship its block is valued at what
it would ship (its block replaced by that; named in ``shorted``); an infinite figure is ``null``.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

from experiments.commands._args import check_week, week_index
from experiments.commands.run import _positive_int
from sim.model.errors import FlosimError
from sim.results import jsonable


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("plan", help="one planning round of a policy, against the first best",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenario", default="default", help="built-in scenario name or YAML path (default: default)")
    p.add_argument("--week", type=week_index("--week"), default=0,
                   help="week to plan, 0 to the scenario's weeks - 1 (earlier weeks run under JIT; default 0)")
    p.add_argument("--policy", default="cpp", help="policy name or module:Class (default cpp)")
    p.add_argument("--seed", type=_positive_int("--seed"), default=None, help="override the scenario's seed")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def plan_round(scenario_name: str, week: int = 0, policy: str = "cpp", seed: int | None = None) -> dict[str, Any]:
    """The report of ``flosim plan`` as a dictionary."""
    from experiments.audit import fixed_first_week_cost
    from policies.registry import make_policy
    from sim.parties.oracle import joint_plan
    from sim.model.scenario import load_scenario
    from sim.world import planning_context

    if week < 0:
        raise FlosimError(f"--week must be >= 0, got {week}")
    scenario = load_scenario(scenario_name)
    check_week(week, scenario)
    ctx = planning_context(scenario, week=week, seed=seed)
    # cpp certifies its plan here (two numbers per agent bound the gap without a central solver),
    # unless the scenario says otherwise
    certify = {"certify": True} if policy == "cpp" and "certify" not in scenario.policies.get("cpp", {}) else {}
    pol = make_policy(policy, scenario, **certify)
    t0 = time.perf_counter()
    decision = pol.decide(ctx)
    wall = time.perf_counter() - t0
    plan = np.array(decision.plan, dtype=float, copy=True)
    public = ctx.public
    vendor_cost, shorted = {}, []
    for name, agent in ctx.vendors.items():
        v = public.vendor_index(name)
        vendor_cost[name] = agent.evaluate(plan[v]).total
        if not np.isfinite(vendor_cost[name]) and not decision.committed:
            # it cannot ship its block, and nothing binds it to: valued at what it would ship (as under JIT)
            short = agent.evaluate(plan[v], allow_short=True)
            plan[v], vendor_cost[name] = short.plan, short.total
            shorted.append(name)
    retailer_cost = ctx.retailer.evaluate(plan).total
    social = retailer_cost + sum(vendor_cost.values())
    first_best = joint_plan(ctx.retailer, ctx.vendors).social_cost
    diag = dict(decision.diagnostics)
    binding = None if diag.get("contract") == "plan" else fixed_first_week_cost(ctx.retailer, ctx.vendors, plan[:, 0])
    transfers = {party: float(decision.transfers.get(party, 0.0)) for party in ("retailer", *public.vendors)}
    vendors = {name: {"cost": vendor_cost[name], "planned": decision.planned.get(name), "transfer": transfers[name],
                      "po_units": float(plan[public.vendor_index(name), 0].sum())} for name in public.vendors}
    return jsonable({
        "policy": getattr(pol, "name", policy),
        "scenario": scenario.name,
        "week": week,
        "social_cost": social,
        "first_best_social_cost": first_best,
        "gap": (social - first_best) / max(abs(first_best), 1e-9),
        "binding_social_cost": binding,
        "binding_gap": None if binding is None else (binding - first_best) / max(abs(first_best), 1e-9),
        "certified_gap": diag.get("certified_gap"),
        "iterations": diag.get("iterations"),
        "converged": diag.get("converged"),
        # what the vendors pay in all (one vendor: what it pays); by party in `transfers`
        "transfer": sum(transfers[name] for name in public.vendors),
        "transfers": transfers,
        "balance": decision.balance,
        "committed": decision.committed,
        "wall_s": wall,
        "planned": decision.planned,
        "retailer_cost": retailer_cost,
        "vendors": vendors,
        "diagnostics": diag,
        "shape": list(plan.shape),
        "vendor_names": list(public.vendors),
        "shorted": shorted,
        "fcs": list(public.fcs),
        "products": list(public.products),
        "plan": plan,
    })


def run(args: argparse.Namespace) -> int:
    report = plan_round(args.scenario, args.week, args.policy, args.seed)
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"policy {report['policy']} on scenario {report['scenario']}, week {report['week']}")
    if report["shorted"]:
        print(f"  NOTE: {', '.join(report['shorted'])} cannot ship its block of the plan; valued at what it would ship (as under JIT)")
    print(f"  social cost      {_figure(report['social_cost'])}")
    print(f"  first best       {report['first_best_social_cost']:.2f}")
    print(f"  gap              {_figure(report['gap'], '.3e')}   (the whole six-week plan as it stands)")
    if report["binding_social_cost"] is not None:
        print(f"  binding social   {_figure(report['binding_social_cost'])}   (this week's PO fixed, later weeks re-planned efficiently)")
        print(f"  binding gap      {_figure(report['binding_gap'], '.3e')}   (only the first week binds on a rolling horizon)")
    if report["certified_gap"] is not None:
        print(f"  certified gap    {report['certified_gap']:.3e}   (bound from the agents' dual values; no central solve)")
    if report["iterations"] is not None:
        print(f"  iterations       {report['iterations']} (converged: {report['converged']})")
    print(f"  transfer         {report['transfer']:.2f}   committed: {report['committed']}"
          + ("   (paid by the vendor)" if len(report["vendors"]) == 1 else "   (paid by the vendors in all)"))
    if report["balance"]:
        print(f"  mechanism's net  {report['balance']:.2f}")
    print(f"  wall time        {report['wall_s']:.3f} s")
    for party, cost in report["planned"].items():
        print(f"  planned {party:<9}{_figure(cost)}")
    if len(report["vendors"]) > 1:
        print("  by vendor        own cost of its block, what it pays, PO units:")
        for name, fig in report["vendors"].items():
            print(f"    {name:<14}{_figure(fig['cost']):>12}{fig['transfer']:>12.2f}{fig['po_units']:>12.1f}")
    if "fallback" in report["diagnostics"]:
        print(f"  NOTE: negotiation did not converge ({report['diagnostics'].get('status')}); fell back to {report['diagnostics']['fallback']}")
    plan = np.asarray(report["plan"])
    shown = report["products"][:8]
    width = max([12, *(len(p) + 2 for p in shown)])
    fc_width = max([12, *(len(f) + 2 for f in report["fcs"])])
    several = len(report["vendor_names"]) > 1
    for v, name in enumerate(report["vendor_names"]):
        print(f"  PO (week 0) from {name}, units by FC x product:" if several else "  PO (week 0), units by FC x product:")
        print("    " + " " * fc_width + "".join(f"{p:>{width}}" for p in shown))
        for f, fc in enumerate(report["fcs"]):
            print(f"    {fc:<{fc_width}}" + "".join(f"{plan[v, 0, f, k]:>{width}.1f}" for k in range(len(shown))))
    if len(report["products"]) > len(shown):
        print(f"    ... and {len(report['products']) - len(shown)} more products (--json prints the whole plan)")
    return 0


def _figure(value: float | None, spec: str = ".2f") -> str:
    """A figure as text; ``None`` (an infinite cost in the JSON: a plan some party cannot carry out) as ``inf``."""
    return "inf" if value is None else format(value, spec)
