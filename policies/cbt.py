"""The cost-benefit transfer (CBT) of CPP-VCG, with a certainty-equivalent future term (DESIGN section 3).

Each week the vendor pays the retailer

    CBT_t = [c^R_t(x*_t) - c^R_t(x^J_t)] + CE_gamma(dV),
    dV(w) = delta * (V^R_{t+1}(s*_{t+1}, w) - V^R_{t+1}(s^J_{t+1}, w)),

the retailer's immediate cost of deviating from its own (JIT) PO ``x^J_t`` to the efficient PO ``x*_t``
plus the certainty equivalent of what that deviation does to the retailer's later weeks, evaluated on
demand scenarios ``w`` drawn from the forecast distribution. ``c^R_t`` and ``V^R_{t+1}`` come from one
LP per demand path: the retailer's cost by week with this week's PO fixed and its own optimal (JIT)
plan afterwards, so week ``t``'s outbound decisions are made with the later weeks in view. With known
demand, ``delta = 1`` and ``gamma = 0`` the CBT is exactly ``R(x*_t) - R(x^J_t)``, the Clarke pivot of
the dynamic pivot mechanism: the vendor pays the externality its presence imposes on the retailer.

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
    # immediate term on the forecast: week t's cost with each PO, the retailer re-planning optimally after
    eff = retailer.cost_with_first_week(efficient_plan[0])
    jit = retailer.cost_with_first_week(jit_plan[0])
    c_eff, c_jit = float(eff.by_week[0]), float(jit.by_week[0])
    # future term on demand scenarios: V^R_{t+1} is the retailer's JIT cost of weeks t+1.. from the
    # state each PO leads to, i.e. the later weeks of the same fixed-PO problem on that scenario
    paths = sample_demand_paths(retailer.forecast, ctx.forecast_sd, scenarios, ctx.rng)
    dv = np.empty(paths.shape[0])
    for i, path in enumerate(paths):
        v_eff = retailer.cost_with_first_week(efficient_plan[0], path).by_week[1:].sum()
        v_jit = retailer.cost_with_first_week(jit_plan[0], path).by_week[1:].sum()
        dv[i] = discount * (v_eff - v_jit)
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
