"""First-best: the centralized plan ``argmin C_R + C_V`` with all information in one place.

Not implementable (it reads both parties' private cost models through the oracle
:func:`sim.model.agents.joint_plan`); it is the bound no mechanism can beat. The vendor is committed to
the plan, so it ships the PO in full as far as it can."""

from __future__ import annotations

from sim.model.decision import Decision, PlanningContext
from sim.model.agents import joint_plan


class FirstBestPolicy:
    name = "first-best"

    def decide(self, ctx: PlanningContext) -> Decision:
        jp = joint_plan(ctx.retailer, ctx.vendor)
        return Decision(
            plan=jp.plan,
            transfer=0.0,
            committed=True,
            planned={"retailer": jp.retailer.total, "vendor": jp.vendor.total},
            diagnostics={"planned_social": jp.social_cost},
        )
