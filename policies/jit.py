"""JIT: today's practice. The retailer plans alone over all vendors at their wholesale prices
(``x^J = argmin C_R``) and sends the first week as its PO; the vendors are not committed and each ships
only what is worth shipping to it of its own block (docs/model.md, "Policies").

Commitments outstanding from an earlier agreement (a mechanism run with ``commitment: {weeks, band}``:
a JIT fallback week, or the cool-down after a run) still bind a JIT week: the retailer's plan stays
inside the week's commitment box (its agent's state holds it), and each vendor ships the committed
floor of this week as far as its capacity allows (:mod:`sim.execution`). JIT itself commits nothing.

:func:`jit_outcome` is the JIT counterfactual every mechanism compares itself with (ex-ante
participation, split savings, menus): the retailer's plan and cost, and what each vendor would do
with its block of that PO and what it would cost it (shorting what is not worth shipping). It lives
here, once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.model.decision import Decision, PlanningContext
from sim.model.plan_cost import PlanCost


@dataclass(frozen=True)
class JITOutcome:
    """The JIT counterfactual of a week: the retailer's own plan and cost, and each vendor's cost of
    its block when it may short it (``vendors[name].plan`` is what it would ship)."""

    plan: np.ndarray  # [V, H, F, K]
    retailer: PlanCost
    vendors: dict[str, PlanCost]

    def planned(self) -> dict[str, float]:
        """Planned cost per party."""
        return {"retailer": self.retailer.total, **{name: c.total for name, c in self.vendors.items()}}


def jit_outcome(ctx: PlanningContext) -> JITOutcome:
    """The week's JIT counterfactual (see the module docstring)."""
    own = ctx.retailer.preferred_plan()
    vendors = {name: agent.evaluate(own.plan[ctx.public.vendor_index(name)], allow_short=True)
               for name, agent in ctx.vendors.items()}
    return JITOutcome(own.plan, own, vendors)


class JITPolicy:
    name = "jit"

    def decide(self, ctx: PlanningContext) -> Decision:
        jit = jit_outcome(ctx)
        shorts = {name: bool(np.any(c.plan < jit.plan[ctx.public.vendor_index(name)] - 1e-6)) for name, c in jit.vendors.items()}
        return Decision(
            plan=jit.plan,
            committed=False,
            planned=jit.planned(),
            diagnostics={"vendor_ships_plan": not any(shorts.values())},
        )
