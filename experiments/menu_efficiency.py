"""Efficiency of the menu of contracts against its size, tailored and untailored.

For each planning context (weeks of a scenario, reached under JIT, optionally several scenarios) and
each menu size, the vendor picks from the menu. Three shares of the first-best saving, all against
the same first-best social cost (``first_best``, known to the oracle only):

* ``share`` / ``gap`` (the *binding* week): on a rolling horizon only the week's PO binds, so a
  decision is scored by ``S(x_t)``, the least social cost over the horizon with that PO fixed (later
  weeks re-planned efficiently): ``share = (S(x^J_t) - S(x_t)) / (S(x^J_t) - first-best)``,
  ``gap = S(x_t) / first-best - 1``. Need not grow with the menu (see :mod:`policies.menu`).
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

``tailored`` menus use the vendor's coarse preference (``preference: auto``); ``disclosure`` says
what it discloses: ``volume`` (default: FC names and the weekly volume it has room for,
:meth:`sim.agents.VendorAgent.coarse_volumes`) or ``names`` only
(:meth:`sim.agents.VendorAgent.coarse_preference`). ``method`` is the menu's generation method.
Rows are labelled by ``labels`` (default: the scenarios' names, which should then be unique).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Sequence

import pandas as pd

from experiments.audit import fixed_first_week_cost
from forecasts.inputs import policy_rng
from policies.menu import MenuPolicy
from sim.agents import joint_plan
from sim.errors import FlosimError
from sim.scenario import Scenario
from sim.world import planning_context

DEFAULT_SIZES = (1, 2, 4, 8, 12, 16, 24)


def unique_sizes(values: Sequence[int]) -> list[int]:
    """Sorted, without repeats."""
    return sorted(dict.fromkeys(int(v) for v in values))


def menu_efficiency(
    scenarios: Sequence[Scenario],
    sizes: Sequence[int] = DEFAULT_SIZES,
    weeks: Sequence[int] = (1, 3),
    *,
    labels: Sequence[str] | None = None,
    method: str = "mixed",
    scenarios_for_prices: int = 4,
    disclosure: str = "volume",
    on_step: Callable[[], None] | None = None,
) -> pd.DataFrame:
    """Rows ``(scenario, week, tailored, size, offered, item, share, gap, share_vendor, vendor_saving,
    share_plan, gap_plan, social, social_plan, first_best, jit, jit_plan, demand, disclosure, method)``,
    by scenario, week, tailored and size (sizes and weeks sorted, repeats dropped); ``disclosure``
    applies to the tailored menus. The table does not depend on which other sizes, weeks or
    scenarios are requested."""
    labels = [s.name for s in scenarios] if labels is None else list(labels)
    if len(labels) != len(scenarios):
        raise ValueError(f"{len(labels)} labels for {len(scenarios)} scenarios")
    if len(set(labels)) != len(labels):
        raise FlosimError(f"menu efficiency: scenario labels must be unique, got {labels}")
    sizes, weeks = unique_sizes(sizes), unique_sizes(weeks)
    rows = []
    for label, scenario in zip(labels, scenarios):
        for week in weeks:
            ctx = planning_context(scenario, week=week)
            fb = joint_plan(ctx.retailer, ctx.vendor).social_cost
            own = ctx.retailer.preferred_plan()
            jit = fixed_first_week_cost(ctx.retailer, ctx.vendor, own.plan[0])
            jit_plan = own.total + ctx.vendor.evaluate(own.plan).total
            for tailored in (False, True):
                for size in sizes:
                    policy = MenuPolicy(size=size, method=method, preference="auto" if tailored else None,
                                        disclosure=disclosure, scenarios=scenarios_for_prices)
                    # every decision sees the demand scenarios the policy gets this week: common random
                    # numbers across sizes and tailoring, whatever else is evaluated
                    d = policy.decide(replace(ctx, rng=policy_rng(scenario.seed, week)))
                    social = fixed_first_week_cost(ctx.retailer, ctx.vendor, d.po)
                    social_plan = d.diagnostics["planned_social"]
                    vendor_saving = d.diagnostics["ex_ante_margin_vendor"]  # JIT item's cost + price less the pick's
                    rows.append(
                        {
                            "scenario": label,
                            "week": week,
                            "tailored": tailored,
                            "size": size,
                            "offered": d.diagnostics["menu_size"],
                            "item": d.diagnostics["menu_item"],
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
                            "disclosure": disclosure,
                            "method": method,
                        }
                    )
                    if on_step:
                        on_step()
    return pd.DataFrame(rows)


def _share(saving: float, possible: float) -> float:
    return saving / possible if possible > 1e-9 else float("nan")
