"""Efficiency of the menu of contracts against its size, tailored and untailored.

For each planning context (weeks of a scenario, reached under JIT, optionally several scenarios) and
each menu size, the vendor picks from the menu. Three shares of the first-best saving, all against
the same first-best social cost (``first_best``, known to the oracle only):

* ``share`` / ``gap`` (the *binding* week): on a rolling horizon only the week's PO binds, so a
  decision is scored by ``S(x_t)``, the least social cost over the horizon with that PO fixed (later
  weeks re-planned efficiently): ``share = (S(x^J_t) - S(x_t)) / (S(x^J_t) - first-best)``,
  ``gap = S(x_t) / first-best - 1``. Need not grow with the menu (see :mod:`policies.menu`).
With several vendors each is offered its own menu of ``size`` items; ``vendor_saving`` and
``offered`` are summed over the vendors and ``item`` names each vendor's pick; a vendor that cannot
ship its block of ``x^J`` counts in the JIT reference with what it would ship under JIT.

* ``share_vendor`` (the *vendor's criterion*): what the vendor minimises when it picks, its own cost
  of the item plus the price, as a saving against the JIT item (``vendor_saving``), over the
  first-best saving of the completed plans ``jit_plan - first_best``. Each decision prices its items
  on the same demand scenarios (a fresh generator from the scenario's seed, the one the policy gets
  in that week, :func:`forecasts.inputs.policy_rng`), so for nested menus it never falls as the menu
  grows, with known or uncertain demand.
* ``share_plan`` / ``gap_plan`` (the *completed plan*): the picked item's six-week plan (its first
  week, then the retailer's continuation) scored by its social cost on the forecast, against JIT's
  plan. With known demand it equals ``share_vendor``; with uncertain demand the price averages the
  retailer's costs over sampled demand instead, so it may differ and need not be monotone.

The menu is the scenario's own: every policy starts from the scenario's ``policies.menu``
parameters (``levels``, ``volume_step``, ``commitment``, ``pricing``, ``discount``,
``risk_aversion``, ``scenarios``, ``two_way``, ``method``, ``disclosure``, as
:func:`policies.registry.make_policy` builds it for ``flosim run``), and only ``size`` and the
preference are set on top, with ``method``, ``disclosure`` and the number of price paths where
given (``None``: the scenario's setting, else the policy's default). Untailored menus have no
preference; ``tailored`` menus use the scenario's preference where it names FCs or regions, else the
vendor's coarse disclosure (``preference: auto``), whose ``disclosure`` says what it discloses:
``volume`` (FC names and the weekly volume it has room for,
:meth:`sim.parties.vendor.VendorAgent.coarse_volumes`) or ``names`` only
(:meth:`sim.parties.vendor.VendorAgent.coarse_preference`). Each row records the effective ``method``,
``disclosure``, ``preference``, ``contract`` (``first-week`` or ``plan``) and ``price_paths`` (demand
paths each price averages over; identical with known demand). Rows are labelled by ``labels``
(default: the scenarios' names, which should then be unique).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from experiments.audit import fixed_first_week_cost
from forecasts.inputs import policy_rng
from policies.jit import jit_outcome
from policies.menu import MenuPolicy
from policies.registry import make_policy
from sim.parties.oracle import joint_plan
from sim.model.errors import FlosimError
from sim.model.scenario import Scenario
from sim.world import planning_context

DEFAULT_SIZES = (1, 2, 4, 8, 12, 16, 24)


def unique_sizes(values: Sequence[int]) -> list[int]:
    """Sorted, without repeats."""
    return sorted(dict.fromkeys(int(v) for v in values))


def menu_parameters(
    scenario: Scenario,
    size: int,
    tailored: bool,
    *,
    method: str | None = None,
    disclosure: str | None = None,
    scenarios_for_prices: int | None = None,
) -> dict[str, Any]:
    """The menu policy's parameters for one row: the scenario's ``policies.menu``, with ``size``, the
    preference (none, or for ``tailored`` the scenario's named preference, else ``auto``) and, where
    not ``None``, ``method``, ``disclosure`` and ``scenarios`` (price paths) set on top."""
    params = dict(scenario.policies.get("menu", {}))
    own = params.get("preference")
    params["size"] = size
    params["preference"] = (own if own not in (None, "auto") else "auto") if tailored else None
    for key, value in (("method", method), ("disclosure", disclosure), ("scenarios", scenarios_for_prices)):
        if value is not None:
            params[key] = value
    return params


def menu_policy(scenario: Scenario, size: int, tailored: bool, **options: Any) -> MenuPolicy:
    """The menu policy of one row (:func:`menu_parameters`), built as ``flosim run`` builds it, with its
    parameters checked (one-line user errors naming the field and value)."""
    return make_policy("menu", scenario, **menu_parameters(scenario, size, tailored, **options))  # type: ignore[return-value]


def _shown(preference: Any) -> str:
    if preference is None:
        return "none"
    return preference if isinstance(preference, str) else json.dumps(preference)


def menu_efficiency(
    scenarios: Sequence[Scenario],
    sizes: Sequence[int] = DEFAULT_SIZES,
    weeks: Sequence[int] = (1, 3),
    *,
    labels: Sequence[str] | None = None,
    method: str | None = None,
    scenarios_for_prices: int | None = None,
    disclosure: str | None = None,
    on_step: Callable[[], None] | None = None,
) -> pd.DataFrame:
    """Rows ``(scenario, week, tailored, size, offered, item, share, gap, share_vendor, vendor_saving,
    share_plan, gap_plan, social, social_plan, first_best, jit, jit_plan, demand, disclosure, method,
    preference, contract, price_paths)``, by scenario, week, tailored and size (sizes and weeks
    sorted, repeats dropped). The policy is the scenario's menu with the given settings on top
    (:func:`menu_parameters`); its parameters are checked before anything is solved. The table does
    not depend on which other sizes, weeks or scenarios are requested."""
    labels = [s.name for s in scenarios] if labels is None else list(labels)
    if len(labels) != len(scenarios):
        raise ValueError(f"{len(labels)} labels for {len(scenarios)} scenarios")
    if len(set(labels)) != len(labels):
        raise FlosimError(f"menu efficiency: scenario labels must be unique, got {labels}")
    sizes, weeks = unique_sizes(sizes), unique_sizes(weeks)
    options = {"method": method, "disclosure": disclosure, "scenarios_for_prices": scenarios_for_prices}
    # every scenario's policies first: a bad parameter fails before any planning context is built
    policies: list[dict[tuple[bool, int], MenuPolicy]] = [
        {(tailored, size): menu_policy(scenario, size, tailored, **options) for tailored in (False, True) for size in sizes}
        for scenario in scenarios
    ]
    rows = []
    for label, scenario, menus in zip(labels, scenarios, policies):
        for week in weeks:
            ctx = planning_context(scenario, week=week)
            fb = joint_plan(ctx.retailer, ctx.vendors).social_cost
            jit, jit_plan = _jit_reference(ctx)
            for (tailored, size), policy in menus.items():
                # every decision sees the demand scenarios the policy gets this week: common random
                # numbers across sizes and tailoring, whatever else is evaluated
                d = policy.decide(replace(ctx, rng=policy_rng(scenario.seed, week)))
                social = fixed_first_week_cost(ctx.retailer, ctx.vendors, d.po)
                social_plan = d.diagnostics["planned_social"]
                picked = _picked(d.diagnostics, ctx.public.vendors)
                vendor_saving = picked["vendor_saving"]  # JIT item's cost + price less the pick's (all vendors)
                rows.append(
                    {
                        "scenario": label,
                        "week": week,
                        "tailored": tailored,
                        "size": size,
                        "offered": picked["menu_size"],
                        "item": picked["menu_item"],
                        "share": _share(jit - social, jit - fb),
                        "gap": (social - fb) / abs(fb),
                        "share_vendor": _share(vendor_saving, jit_plan - fb),
                        "vendor_saving": vendor_saving,
                        "share_plan": _share(jit_plan - social_plan, jit_plan - fb),
                        "gap_plan": (social_plan - fb) / abs(fb),
                        "social": social,
                        "social_plan": social_plan,
                        "first_best": fb,
                        "jit": jit,
                        "jit_plan": jit_plan,
                        "demand": "known" if scenario.demand.deterministic else "uncertain",
                        "disclosure": policy.disclosure,
                        "method": policy.method,
                        "preference": _shown(policy.preference),
                        "contract": d.diagnostics["contract"],
                        "price_paths": int(policy.cbt["scenarios"]),
                    }
                )
                if on_step:
                    on_step()
    return pd.DataFrame(rows)


def _jit_reference(ctx: Any) -> tuple[float, float]:
    """``S(x^J_t)`` and the social cost of ``x^J`` on the forecast, every vendor shipping its block in
    full; where a vendor cannot (``x^J`` asks more of it than it can make), it ships what it would under
    JIT (:func:`policies.jit.jit_outcome`), as it does when it declines the menu."""
    out = jit_outcome(ctx)
    plan = np.array(out.plan, dtype=float, copy=True)
    vendors = 0.0
    for name, agent in ctx.vendors.items():
        v = ctx.public.vendor_index(name)
        cost = agent.evaluate(plan[v]).total
        if not np.isfinite(cost):
            plan[v], cost = out.vendors[name].plan, out.vendors[name].total
        vendors += cost
    retailer = out.retailer.total if np.array_equal(plan, out.plan) else ctx.retailer.evaluate(plan).total
    return fixed_first_week_cost(ctx.retailer, ctx.vendors, plan[:, 0]), retailer + vendors


def _picked(diagnostics: dict[str, Any], vendors: Sequence[str]) -> dict[str, Any]:
    """A decision's menu figures: one vendor's as they are; with several vendors the savings summed,
    the sizes summed and the picks named ``"acme: <item>; sonora: <item>"``."""
    if len(vendors) == 1:
        return {key: diagnostics[key] for key in ("vendor_saving", "menu_size", "menu_item")}
    return {
        "vendor_saving": sum(diagnostics[f"vendor_saving_{v}"] for v in vendors),
        "menu_size": sum(diagnostics[f"menu_size_{v}"] for v in vendors),
        "menu_item": "; ".join(f"{v}: {diagnostics[f'menu_item_{v}']}" for v in vendors),
    }


def _share(saving: float, possible: float) -> float:
    return saving / possible if possible > 1e-9 else float("nan")
