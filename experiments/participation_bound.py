"""Can every party end at least as well off as under JIT? The static budget of vendor pivots.

A planning week seen as a one-shot mechanism: the whole plan is committed on the forecast (known
demand). An efficient mechanism in which truthful reports are a dominant strategy for every vendor is
a Groves mechanism: vendor ``v``'s net cost is ``SW(x*) - h_v``, where ``SW`` is the social cost and
``h_v`` does not depend on ``v``'s reports. To leave every vendor that would fill its JIT order no
worse off than under JIT, *whatever its costs*, ``h_v`` must be at least ``B_v``, the least cost of the
retailer and the other vendors with ``v``'s block held at the retailer's JIT orders ``x^J_v`` (take a
vendor for which any deviation from its JIT order is very costly: ``x^J_v`` is then its efficient
block, and its JIT cost is its cost of ``x^J_v``). So vendor ``v`` pays at most

    T_v = S_-v(x*) - B_v        (S_-v: the cost of everyone but v),

and with budget balance the retailer, which receives the payments, ends with a margin over its own
plan ``x^J`` of at most ``sum_v T_v - (C_R(x*) - C_R(x^J))``. With one vendor that is exactly zero
(the CBT is this pivot). Where it is negative, no efficient, dominant-strategy truthful,
budget-balanced mechanism leaves every party at least as well off as JIT: the Myerson-Satterthwaite
impossibility, in the form of Krishna and Perry (the revenue-maximal pivot among those that keep every
vendor in still runs a deficit); someone outside must fund the difference. The *coordinated* pivot
(``B_v`` with ``v``'s block the retailer's free choice, the default counterfactual of ``cpp-vcg``)
collects more, but guarantees a vendor only its cost of the block the others would order from it.

What a user may do: :func:`static_budget` for a planning context (it reads every party's cost model,
like the first-best oracle: an analysis, not a mechanism); ``python -m experiments.participation_bound
--scenario two-vendors --week 0`` prints it as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from policies.jit import jit_outcome
from sim.model.decision import PlanningContext
from sim.model.lp import LPBuilder, solve_lp


@dataclass(frozen=True)
class StaticBudget:
    """The static pivots of a planning week and what they leave the retailer (see the module docstring)."""

    week: int
    first_best: float  # SW(x*) on the forecast
    retailer_extra: float  # C_R(x*) - C_R(x^J): the efficient plan's extra cost to the retailer
    jit_orders: dict[str, float]  # T_v with v held at its JIT orders: the most v can pay and be kept in
    coordinated: dict[str, float]  # T_v against the coordinated counterfactual (v's block free)
    fills_jit_order: dict[str, bool]  # whether v can ship its JIT order (the guarantee is for such vendors)

    @property
    def retailer_margin(self) -> float:
        """The retailer's margin over its own plan when it receives the ``jit_orders`` pivots."""
        return sum(self.jit_orders.values()) - self.retailer_extra

    @property
    def coordinated_retailer_margin(self) -> float:
        return sum(self.coordinated.values()) - self.retailer_extra


def _least_cost(ctx: PlanningContext, vendors: list[str], held: tuple[int, np.ndarray] | None = None) -> float:
    b = LPBuilder()
    x = b.add_var(ctx.public.shape)
    ctx.retailer.add_block(b, x)
    for name in vendors:
        agent = ctx.vendors[name]
        agent.add_block(b, x[ctx.public.vendor_index(name)])
    lp = b.build()
    if held is not None:
        lp = lp.with_bounds(x[held[0]], held[1], held[1])
    return solve_lp(lp).objective


def static_budget(ctx: PlanningContext) -> StaticBudget:
    """The week's static pivots against both counterfactuals (one LP per vendor and counterfactual)."""
    names = list(ctx.vendors)
    jit = jit_outcome(ctx)
    first_best = _least_cost(ctx, names)
    b = LPBuilder()
    x = b.add_var(ctx.public.shape)
    ctx.retailer.add_block(b, x)
    for name in names:
        ctx.vendors[name].add_block(b, x[ctx.public.vendor_index(name)])
    star = solve_lp(b.build()).values(x)
    retailer_extra = ctx.retailer.evaluate(star).total - jit.retailer.total
    held, free, fills = {}, {}, {}
    for name in names:
        i = ctx.public.vendor_index(name)
        others = [u for u in names if u != name]
        others_at_star = first_best - ctx.vendors[name].evaluate(star[i]).total
        held[name] = others_at_star - _least_cost(ctx, others, (i, jit.plan[i]))
        free[name] = others_at_star - _least_cost(ctx, others)
        fills[name] = bool(np.isfinite(ctx.vendors[name].evaluate(jit.plan[i]).total))
    return StaticBudget(ctx.week, first_best, retailer_extra, held, free, fills)


def main(argv: list[str] | None = None) -> int:
    from sim.model.errors import FlosimError
    from sim.model.scenario import load_scenario
    from sim.world import planning_context

    p = argparse.ArgumentParser(prog="python -m experiments.participation_bound", description=__doc__.splitlines()[0])
    p.add_argument("--scenario", default="default", help="built-in name or YAML file")
    p.add_argument("--week", type=int, action="append", help="planning week (reached under JIT); repeatable; default 0")
    args = p.parse_args(argv)
    try:
        scenario = load_scenario(args.scenario)
        rows: list[dict[str, Any]] = []
        for week in args.week or [0]:
            if week < 0:
                raise FlosimError(f"--week must be >= 0, got {week}")
            budget = static_budget(planning_context(scenario, week))
            rows.append({**asdict(budget), "retailer_margin": budget.retailer_margin,
                         "coordinated_retailer_margin": budget.coordinated_retailer_margin})
    except FlosimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
