"""JIT: today's practice. The retailer plans alone (``x^J = argmin C_R``) and sends the first week as
its PO; the vendor is not committed and ships only what is worth shipping to it (docs/model.md, "Policies")."""

from __future__ import annotations

from sim.model.decision import Decision, PlanningContext


class JITPolicy:
    name = "jit"

    def decide(self, ctx: PlanningContext) -> Decision:
        own = ctx.retailer.preferred_plan()
        vendor = ctx.vendor.evaluate(own.plan)
        return Decision(
            plan=own.plan,
            transfer=0.0,
            committed=False,
            planned={"retailer": own.total, "vendor": vendor.total},
            diagnostics={"vendor_plan_feasible": vendor.feasible},
        )
