"""The first-best oracle: ``argmin C_R + sum_v C_v`` with every party's private model in one LP.

No implementable mechanism may do this (it reads every cost model at once); it is the benchmark the
first-best policy and the tests measure efficiency against.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from sim.model.lp import LPBuilder, solve_lp
from sim.negotiation.best_response import fix_first_week
from sim.model.plan_cost import PlanCost
from sim.parties.retailer import RETAILER, RetailerAgent
from sim.parties.vendor import VendorAgent


@dataclass(frozen=True)
class JointPlan:
    plan: np.ndarray  # [V, H, F, K]
    social_cost: float
    retailer: PlanCost
    vendors: dict[str, PlanCost]

    @property
    def vendor(self) -> PlanCost:
        """The only vendor's cost (one-vendor scenarios)."""
        if len(self.vendors) != 1:
            raise ValueError(f"{len(self.vendors)} vendors ({', '.join(self.vendors)}): name one in .vendors")
        return next(iter(self.vendors.values()))


def joint_plan(retailer: RetailerAgent, vendors: Mapping[str, VendorAgent] | VendorAgent,
               first_week: np.ndarray | None = None, *, commitments: bool = True) -> JointPlan:
    """First-best oracle: ``argmin C_R + sum_v C_v`` with all private models in one LP (HiGHS).
    ``vendors``: the vendors' agents by name (or one vendor's agent); a vendor left out has no say in
    its block (the retailer decides it). ``first_week`` ``[V, F, K]``: this week's PO given (NaN
    entries free: part of the week given). The plan stays inside the commitment box the agents' states
    hold (:mod:`sim.model.commitment`); ``commitments=False`` ignores it (what the box costs)."""
    if isinstance(vendors, VendorAgent):
        vendors = {vendors.party: vendors}
    b = LPBuilder()
    x = b.add_var(retailer.public.shape)
    retailer.add_block(b, x, commitments=commitments)
    for agent in vendors.values():
        agent.add_block(b, x[agent.index], commitments=commitments)
    lp = b.build()
    if first_week is not None:
        lp = fix_first_week(lp, x, first_week)
    sol = solve_lp(lp)
    plan = sol.values(x)
    br = sol.cost_breakdown()
    H = retailer.public.horizon
    r = PlanCost.from_breakdown(plan, br, RETAILER, H)
    costs = {name: PlanCost.from_breakdown(plan[agent.index], br, name, H) for name, agent in vendors.items()}
    return JointPlan(plan, r.total + sum(c.total for c in costs.values()), r, costs)
