"""The cost-benefit transfer (CBT) of CPP-VCG, with a certainty-equivalent future term (DESIGN section 3).

Each week the vendor pays the retailer

    CBT_t = [c^R_t(x*_t) - c^R_t(x^J_t)] + CE_gamma(dV),
    dV(w) = delta * (V^R_{t+1}(s*_{t+1}, w) - V^R_{t+1}(s^J_{t+1}, w)),

the retailer's immediate cost of deviating from its own (JIT) PO ``x^J_t`` to the efficient PO ``x*_t``
plus the certainty equivalent of what that deviation does to the retailer's later weeks, evaluated on
demand scenarios ``w`` drawn from the forecast distribution. It is the Clarke pivot of the dynamic
pivot mechanism: the vendor pays the externality its presence imposes on the retailer.

What a user may do: :func:`certainty_equivalent` on any sample of costs; :func:`cost_benefit_transfer`
given the context and the two plans; :class:`CBTBreakdown` records every term for the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from forecasts.sampling import sample_demand_paths
from policies.base import PlanningContext
from policies.transfers import clarke_pivot_payment


def certainty_equivalent(costs: np.ndarray, gamma: float) -> float:
    """``CE_gamma(X) = (1/gamma) ln E[exp(gamma X)]`` of a random cost ``X`` (equal-weight sample);
    ``E[X]`` for ``gamma = 0``. For ``gamma > 0`` it exceeds the mean (risk aversion) and grows with gamma."""
    x = np.asarray(costs, dtype=float).ravel()
    if x.size == 0:
        raise ValueError("certainty equivalent of an empty sample")
    if gamma < 0:
        raise ValueError(f"risk aversion gamma must be >= 0, got {gamma}")
    if gamma == 0:
        return float(x.mean())
    return float((logsumexp(gamma * x) - np.log(x.size)) / gamma)


@dataclass(frozen=True)
class CBTBreakdown:
    immediate: float  # c^R_t(x*_t) - c^R_t(x^J_t)
    future_ce: float  # CE_gamma(dV)
    future_mean: float  # E[dV]
    raw: float  # immediate + future_ce
    paid: float  # what the vendor pays: max(raw, 0) one-way, raw two-way
    retailer_cost_efficient: float  # c^R_t(x*_t)
    retailer_cost_jit: float  # c^R_t(x^J_t)


def cost_benefit_transfer(
    ctx: PlanningContext,
    efficient_plan: np.ndarray,
    jit_plan: np.ndarray,
    *,
    discount: float = 1.0,
    risk_aversion: float = 0.0,
    scenarios: int = 16,
    two_way: bool = False,
) -> CBTBreakdown:
    """The week's CBT; see the module docstring. Queries only the retailer's agent."""
    retailer = ctx.retailer
    c_eff = float(retailer.evaluate(efficient_plan).by_week[0])
    c_jit = float(retailer.evaluate(jit_plan).by_week[0])
    paths = sample_demand_paths(retailer.forecast, ctx.forecast_sd, scenarios, ctx.rng)
    dv = np.empty(paths.shape[0])
    for i, path in enumerate(paths):
        if path.shape[0] < 2:  # a one-week horizon has no later weeks
            dv[i] = 0.0
            continue
        s_eff = retailer.state_after(efficient_plan[0], path[0])
        s_jit = retailer.state_after(jit_plan[0], path[0])
        dv[i] = discount * (retailer.cost_to_go(s_eff, path[1:]) - retailer.cost_to_go(s_jit, path[1:]))
    future_ce = certainty_equivalent(dv, risk_aversion)
    raw = clarke_pivot_payment(others_cost_at_efficient=c_eff + future_ce, others_cost_without_agent=c_jit)
    return CBTBreakdown(
        immediate=c_eff - c_jit,
        future_ce=future_ce,
        future_mean=float(dv.mean()),
        raw=raw,
        paid=raw if two_way else max(raw, 0.0),
        retailer_cost_efficient=c_eff,
        retailer_cost_jit=c_jit,
    )
