"""Efficiency of the menu of contracts against its size, tailored and untailored.

For each planning context (weeks of a scenario, reached under JIT, optionally several scenarios) and
each menu size, the vendor picks from the menu and the plan's social cost is compared with JIT's and
the first-best's: ``share = (social(JIT) - social(pick)) / (social(JIT) - social(first-best))``,
the share of the first-best saving the menu captures. ``tailored`` menus use the vendor's coarse
preference (:meth:`sim.agents.VendorAgent.coarse_preference`).
"""

from __future__ import annotations

from typing import Callable, Sequence

import pandas as pd

from policies.menu import MenuPolicy
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
    on_step: Callable[[], None] | None = None,
) -> pd.DataFrame:
    """Rows ``(scenario, week, tailored, size, share, gap, social, first_best, jit)``."""
    rows = []
    for scenario in scenarios:
        for week in weeks:
            ctx = planning_context(scenario, week=week)
            fb = joint_plan(ctx.retailer, ctx.vendor).social_cost
            own = ctx.retailer.preferred_plan()
            jit = own.total + ctx.vendor.evaluate(own.plan).total
            for tailored in (False, True):
                for size in sizes:
                    policy = MenuPolicy(size=size, preference="auto" if tailored else None, scenarios=scenarios_for_prices)
                    d = policy.decide(ctx)
                    social = d.diagnostics["planned_social"]
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
                            "social": social,
                            "first_best": fb,
                            "jit": jit,
                        }
                    )
                    if on_step:
                        on_step()
    return pd.DataFrame(rows)
