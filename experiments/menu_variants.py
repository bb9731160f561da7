"""Menu variants that locate where the menu of contracts loses the first-best saving (experiments).

Run them beside ``menu`` on the same worlds, e.g.::

    flosim run --replications 10 --policy first-best --policy menu \\
        --policy experiments.menu_variants:MenuWithFirstBestItem \\
        --policy experiments.menu_variants:MenuWholePlan --json

* :class:`MenuWithFirstBestItem` (``menu-fb-item``) is the menu plus one item whose first week is the
  first-best plan's, completed and priced like every other item. It reads both parties' private cost
  models, so it is **not implementable**: it bounds what better item generation could give. If the
  vendor does not pick that item, the loss is in what the vendor's criterion sees, not in the items.
* :class:`MenuWholePlan` (``menu-plan``) is the menu with whole plans as items, priced as whole plans
  (``items: plan``, ``pricing: plan``): the vendor's criterion is then the social cost of the whole
  plan, but the vendor pays for the plan's later weeks again every week on the rolling horizon.

Diagnostics: ``menu_item`` in the decisions table names each week's pick (``first-best item`` for the
added item). Measurements are in ``docs/settled.md``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sim.model.decision import PlanningContext
from sim.model.plan_cost import PlanCost
from policies.cbt import CBTBreakdown, TransferPricer
from policies.menu import MenuItem, MenuPolicy, build_menu
from sim.parties.oracle import joint_plan


class MenuWithFirstBestItem(MenuPolicy):
    """The menu plus the first-best plan's first week as an item (an oracle; see the module docstring)."""

    name = "menu-fb-item"

    def offer(
        self, ctx: PlanningContext, vendor: str | None = None, *, own: PlanCost | None = None,
        pricer: TransferPricer | None = None,
    ) -> tuple[list[MenuItem], list[CBTBreakdown], Any]:
        if self.items != "week":
            raise ValueError("menu-fb-item compares weekly-commitment menus; use items: week")
        name = vendor if vendor is not None else ctx.public.vendors[0]
        v = ctx.public.vendor_index(name)
        own = ctx.retailer.preferred_plan() if own is None else own
        items = build_menu(ctx, own.plan, self.size, method=self.method, preferred=self.preferred(ctx, vendor),
                           levels=self.levels, first_week=True, vendor=v, pulls=self.pulls)
        # the first-best plan's first week in this vendor's block, the other vendors' as in x^J
        fb = np.array(own.plan, dtype=float, copy=True)
        fb[v] = joint_plan(ctx.retailer, ctx.vendors).plan[v]
        items.append(MenuItem(fb, "first-best item"))
        pricer = self.pricer(ctx, own.plan) if pricer is None else pricer
        completed = [MenuItem(own.plan, "jit")]
        completed += [MenuItem(pricer.completed(i.plan[:, 0]).plan, i.kind) for i in items[1:]]
        return completed, [pricer.price(i.plan) for i in completed], own


class MenuWholePlan(MenuPolicy):
    """The menu with whole plans as items, priced as whole plans (see the module docstring)."""

    name = "menu-plan"

    def __init__(self, **params: Any) -> None:
        if isinstance(params.get("commitment"), str):  # the item contract's earlier name: set here
            params = {k: v for k, v in params.items() if k != "commitment"}
        super().__init__(**{**params, "items": "plan", "pricing": "plan"})
