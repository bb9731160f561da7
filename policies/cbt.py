"""The cost-benefit transfer (CBT) of CPP-VCG, with a certainty-equivalent future term (docs/model.md, "Transfers").

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
from functools import cached_property
from typing import Any

import numpy as np
from scipy.special import logsumexp

from forecasts.sampling import sample_demand_paths
from sim.model.commitment import CommitmentSettings, PlanBounds, agreed_box
from sim.model.decision import PlanningContext
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


class TransferPricer:
    """Prices plans at the CBT their first week would carry, against one JIT counterfactual.

    The JIT side (its immediate cost and its cost on every demand scenario) is computed once, so
    pricing many candidate plans (a menu) costs one LP per scenario and plan, plus one on the
    forecast that also completes the plan (:meth:`completed`). Queries only the retailer's agent.

    Mutual commitment (``commit``, :mod:`sim.model.commitment`): every continuation stays inside the
    commitments already agreed (the retailer's state holds them: the JIT counterfactual inherits them),
    and a priced plan's continuation also inside what agreeing that plan would commit (its weeks
    ``1 .. k - 1`` within the band): the price then includes what the new obligations cost the retailer,
    so the pivot stays the cost of the vendor's influence. With ``k = 1`` (or None) nothing changes.
    """

    def __init__(
        self,
        ctx: PlanningContext,
        jit_plan: np.ndarray,
        *,
        discount: float = 1.0,
        risk_aversion: float = 0.0,
        scenarios: int = 16,
        two_way: bool = False,
        paths: np.ndarray | None = None,
        commit: CommitmentSettings | None = None,
    ) -> None:
        self.retailer = ctx.retailer
        self.commit, self.bounds = commit, ctx.bounds
        self.discount, self.risk_aversion, self.two_way = discount, risk_aversion, two_way
        self.jit_plan = np.asarray(jit_plan, dtype=float)
        self.jit_po = self.jit_plan[:, 0]  # [V, F, K]
        self._on_forecast: dict[bytes, Any] = {}
        # immediate term on the forecast; future term on demand scenarios drawn from the forecast
        self.c_jit = float(self.completed(self.jit_po).by_week[0])
        self.paths = demand_scenarios(ctx, scenarios) if paths is None else np.asarray(paths, dtype=float)
        self._later: dict[tuple[bytes, int], float] = {}
        self.v_jit = np.array([self._future(self.jit_po, i) for i in range(len(self.paths))])

    def agreed(self, plan: np.ndarray | None) -> PlanBounds | None:
        """What agreeing ``plan`` would leave its continuation bound to, beyond the commitments already
        held (None: nothing new: no plan, a weekly commitment, or nothing left to bind)."""
        if plan is None or self.commit is None or self.commit.weeks <= 1:
            return None
        return agreed_box(self.bounds, plan, self.commit)

    def _cost(self, po: np.ndarray, demand: np.ndarray | None, box: PlanBounds | None) -> Any:
        extra = {} if box is None else {"bounds": box}
        return self.retailer.cost_with_first_week(po, demand, **extra) if demand is not None else \
            self.retailer.cost_with_first_week(po, **extra)

    @staticmethod
    def _key(po: np.ndarray, box: PlanBounds | None) -> bytes:
        key = np.ascontiguousarray(po, dtype=float).tobytes()
        return key if box is None else key + box.lower.tobytes() + box.upper.tobytes()

    def completed(self, po: np.ndarray, plan: np.ndarray | None = None) -> Any:
        """The retailer's cost by week (a ``PlanCost``, plan included) with this week's PO ``po`` and
        its own optimal continuation, on the forecast; computed once per PO (the menu completes an item
        and prices it from the same solve). ``plan``: the plan whose agreement the continuation follows
        (under a mutual commitment its committed weeks bind the continuation; see the class docstring)."""
        po = np.ascontiguousarray(po, dtype=float)
        box = self.agreed(plan)
        key = self._key(po, box)
        if key not in self._on_forecast:
            self._on_forecast[key] = self._cost(po, None, box)
        return self._on_forecast[key]

    def _future(self, po: np.ndarray, i: int, box: PlanBounds | None = None) -> float:
        # V^R_{t+1}: the retailer's JIT cost of weeks t+1.. from the state `po` leads to, on path i:
        # the later weeks of the fixed-PO problem, so week t's outbound is planned with them in view
        # (once per PO and path: the JIT item of a menu is priced from the JIT side's own solves)
        key = (self._key(po, box), i)
        if key not in self._later:
            self._later[key] = float(self._cost(po, self.paths[i], box).by_week[1:].sum())
        return self._later[key]

    def price(self, plan: np.ndarray) -> CBTBreakdown:
        """The CBT of ``plan``'s first week (the CPP-VCG rule)."""
        plan = np.asarray(plan)
        po, box = plan[:, 0], self.agreed(plan)
        c_eff = float(self.completed(po, plan).by_week[0])
        dv = self.discount * (np.array([self._future(po, i, box) for i in range(len(self.paths))]) - self.v_jit)
        return self._breakdown(c_eff, dv)

    def price_plan(self, plan: np.ndarray) -> CBTBreakdown:
        """The transfer for committing to the whole ``plan``: the retailer's cost of the plan's first week
        on the forecast plus the certainty equivalent of its later weeks on the scenarios, against JIT's.
        This is the static Clarke pivot over the plan; a menu of whole plans needs it, because with
        first-week prices a vendor prefers items whose unpriced later weeks suit it."""
        plan = np.asarray(plan)
        c_jit, v_jit = self._jit_plan_costs
        c_eff = float(self.retailer.evaluate(plan).by_week[0])
        v_eff = np.array([self.retailer.evaluate(plan, demand=p).by_week[1:].sum() for p in self.paths])
        return self._breakdown(c_eff, self.discount * (v_eff - v_jit), c_jit)

    @cached_property
    def _jit_plan_costs(self) -> tuple[float, np.ndarray]:
        """JIT plan's first-week cost on the forecast and later-week costs on each path (plan fixed)."""
        first = float(self.retailer.evaluate(self.jit_plan).by_week[0])
        later = np.array([self.retailer.evaluate(self.jit_plan, demand=p).by_week[1:].sum() for p in self.paths])
        return first, later

    def _breakdown(self, c_eff: float, dv: np.ndarray, c_jit: float | None = None) -> CBTBreakdown:
        c_jit = self.c_jit if c_jit is None else c_jit
        future_ce = certainty_equivalent(dv, self.risk_aversion)
        raw = clarke_pivot_payment(others_cost_at_efficient=c_eff + future_ce, others_cost_without_agent=c_jit)
        return CBTBreakdown(
            immediate=c_eff - c_jit,
            future_ce=future_ce,
            future_mean=float(dv.mean()),
            raw=raw,
            paid=raw if self.two_way else max(raw, 0.0),
            retailer_cost_efficient=c_eff,
            retailer_cost_jit=c_jit,
        )


def demand_scenarios(ctx: PlanningContext, scenarios: int) -> np.ndarray:
    """The week's demand paths for the certainty equivalent, ``[S, H, R, K]``, drawn from the forecast
    distribution with the context's generator; with known demand one path, the forecast (no draws)."""
    paths = sample_demand_paths(ctx.retailer.forecast, ctx.forecast_sd, scenarios, ctx.rng)
    if ctx.forecast_sd is None or not np.any(ctx.forecast_sd > 0):
        paths = paths[:1]  # known demand: every path is the forecast, so one gives the same prices
    return paths


def cost_benefit_transfer(
    ctx: PlanningContext,
    efficient_plan: np.ndarray,
    jit_plan: np.ndarray,
    *,
    discount: float = 1.0,
    risk_aversion: float = 0.0,
    scenarios: int = 16,
    two_way: bool = False,
    paths: np.ndarray | None = None,
    commit: CommitmentSettings | None = None,
) -> CBTBreakdown:
    """The week's CBT for moving from ``jit_plan`` to ``efficient_plan``; see the module docstring.
    ``paths``: the demand scenarios to use (:func:`demand_scenarios`; default: drawn now), so that
    several transfers of one week can be priced on the same scenarios. ``commit``: the mechanism's
    mutual commitment (:class:`TransferPricer`)."""
    pricer = TransferPricer(ctx, jit_plan, discount=discount, risk_aversion=risk_aversion, scenarios=scenarios,
                            two_way=two_way, paths=paths, commit=commit)
    return pricer.price(efficient_plan)
