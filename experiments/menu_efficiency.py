"""Efficiency of the menu of contracts against its size, tailored and untailored.

For each planning context (weeks of a scenario, reached under JIT, optionally several scenarios) and
each menu size, the vendor picks from the menu. On a rolling horizon only the week's PO binds, so a
decision is scored by ``S(x_t)``, the least social cost over the horizon with that PO fixed (later
weeks re-planned efficiently): ``share = (S(x^J_t) - S(x_t)) / (S(x^J_t) - first-best)``, the share of
the first-best saving the menu's binding decision captures; ``gap = S(x_t) / first-best - 1``.
``share_plan`` and ``gap_plan`` score the picked item as the menu models it (its plan's social cost,
against JIT's plan): that is the vendor's own criterion under the menu's pricing, so with known
demand it never falls as a nested menu grows; ``share`` may, because the vendor's criterion is not
``S`` (see :mod:`policies.menu`). ``tailored`` menus use the vendor's coarse preference
(``preference: auto``); ``disclosure`` says what it discloses: ``volume`` (default: FC names and the
weekly volume it has room for, :meth:`sim.agents.VendorAgent.coarse_volumes`) or ``names`` only
(:meth:`sim.agents.VendorAgent.coarse_preference`).
"""

from __future__ import annotations

from typing import Callable, Sequence

import pandas as pd

from policies.menu import MenuPolicy
from experiments.audit import fixed_first_week_cost
from sim.agents import joint_plan
from sim.scenario import Scenario
from sim.world import planning_context

DEFAULT_SIZES = (1, 2, 4, 8, 12, 16, 24)


def menu_efficiency(
    scenarios: Sequence[Scenario],
    sizes: Sequence[int] = DEFAULT_SIZES,
    weeks: Sequence[int] = (1, 3),
    *,
    scenarios_for_prices: int = 4,
    disclosure: str = "volume",
    on_step: Callable[[], None] | None = None,
) -> pd.DataFrame:
    """Rows ``(scenario, week, tailored, size, offered, item, share, gap, share_plan, gap_plan, social,
    first_best, jit)``; ``disclosure`` applies to the tailored menus."""
    rows = []
    for scenario in scenarios:
        for week in weeks:
            ctx = planning_context(scenario, week=week)
            fb = joint_plan(ctx.retailer, ctx.vendor).social_cost
            own = ctx.retailer.preferred_plan()
            jit = fixed_first_week_cost(ctx.retailer, ctx.vendor, own.plan[0])
            jit_plan = own.total + ctx.vendor.evaluate(own.plan).total
            for tailored in (False, True):
                for size in sizes:
                    policy = MenuPolicy(size=size, preference="auto" if tailored else None, disclosure=disclosure,
                                        scenarios=scenarios_for_prices)
                    d = policy.decide(ctx)
                    social = fixed_first_week_cost(ctx.retailer, ctx.vendor, d.po)
                    social_plan = d.diagnostics["planned_social"]
                    rows.append(
                        {
                            "scenario": scenario.name,
                            "week": week,
                            "tailored": tailored,
                            "size": size,
                            "offered": d.diagnostics["menu_size"],
                            "item": d.diagnostics["menu_item"],
                            "share": (jit - social) / (jit - fb) if jit - fb > 1e-9 else float("nan"),
                            "gap": (social - fb) / abs(fb),
                            "share_plan": (jit_plan - social_plan) / (jit_plan - fb) if jit_plan - fb > 1e-9 else float("nan"),
                            "gap_plan": (social_plan - fb) / abs(fb),
                            "social": social,
                            "first_best": fb,
                            "jit": jit,
                        }
                    )
                    if on_step:
                        on_step()
    return pd.DataFrame(rows)
