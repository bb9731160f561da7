"""First-best: the centralized plan ``argmin C_R + sum_v C_v`` with all information in one place.

Not implementable (it reads every party's private cost model through the oracle
:func:`sim.parties.oracle.joint_plan`); it is the bound no mechanism can beat. The vendors are
committed to the plan, so each ships its block of the PO in full as far as it can."""

from __future__ import annotations

from sim.model.decision import Decision, PlanningContext
from sim.parties.oracle import joint_plan


class FirstBestPolicy:
    name = "first-best"

    def decide(self, ctx: PlanningContext) -> Decision:
        jp = joint_plan(ctx.retailer, ctx.vendors)  # the oracle: reads the agents' private models
        return Decision(
            plan=jp.plan,
            committed=True,
            planned={"retailer": jp.retailer.total, **{name: c.total for name, c in jp.vendors.items()}},
            diagnostics={"planned_social": jp.social_cost},
        )
