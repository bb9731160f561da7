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

Valuation of the retailer's continuation (``continuation``, the ``transfer.continuation`` setting):

* ``paths`` (the rule above; the default of :class:`TransferPricer` and :func:`cost_benefit_transfer`,
  and the menu's; ``cpp-vcg`` defaults to ``forecast``, :func:`policies.cpp_vcg.default_continuation`):
  ``c^R_t`` from the LP on the forecast, ``V^R_{t+1}`` from one LP per sampled demand path. Two things
  make the vendor's payoff differ from the planning objective (the least social cost on the forecast
  with the PO fixed, ``S(x_t)``, which CPP minimises): the continuation is a certainty equivalent over
  paths with per-path recourse while the plan is chosen on the forecast, so the vendor's payoff is
  ``S(x_t)`` minus ``V_F(x_t) - CE(V_w(x_t))``, a term that depends on the PO and that a lie can move;
  and the week-``t`` cost is taken from one LP and the continuation from others, so where the retailer's
  LP has several optimal plans that differ only in which week a cost falls in (it has many), the
  transfer depends on the vertex the solver returns.
* ``forecast``: the retailer's least cost over the horizon with the PO fixed, ``R(x_t)``, from one LP
  on the forecast, immediate and continuation together: ``CBT_t = c^R_t(x*_t) + delta V^R_{t+1}(x*_t)
  - (same at x^J_t)`` with both terms from the same solve, so with ``delta = 1`` it is
  ``R(x*_t) - R(x^J_t)``, the optimal value of two LPs, whatever optimal plan the solver returns. It
  is valued as the plan is chosen (on the forecast), so the vendor's payoff is the planning
  objective ``S(x_t)`` less ``R(x^J_t)``, which it cannot influence: truthful up to the planning
  tolerance. And since ``x^J_t`` minimises ``R``, the CBT is never negative (up to solver tolerance):
  one-way's clamp never binds. What it gives up: the retailer is paid its extra cost on the forecast,
  not its expected extra cost over demand paths (the ex-ante margin, measured on the paths, can be
  negative), and ``risk_aversion`` has nothing to act on (one path; a policy refuses ``gamma > 0``).
* ``paths-whole``: each path priced as a whole, ``CE_gamma(R_w(x*_t) - R_w(x^J_t))`` with ``R_w`` the
  retailer's least cost with the PO fixed on path ``w`` (its week ``t`` and continuation from one
  solve): free of the split (vertex-independent) and the retailer made whole in expectation over the
  paths, but still valued on paths while the plan is chosen on the forecast, so the vendor's payoff
  keeps the term ``R(x_t) - E_w R_w(x_t)`` a lie can move.

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
from sim.model.errors import FlosimError
from policies.transfers import clarke_pivot_payment

#: How the retailer's continuation is valued (module docstring): over sampled demand paths,
#: on the forecast the plan is chosen on with the week's cost from the same solve, or each path as a whole.
CONTINUATIONS = ("paths", "forecast", "paths-whole")


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


def check_continuation(name: str, continuation: str, risk_aversion: float) -> None:
    """``transfer.continuation: forecast`` values the continuation on one path, the forecast: a risk
    aversion would have nothing to act on, so asking for both is an error rather than a silent no-op."""
    if continuation == "forecast" and risk_aversion > 0:
        raise FlosimError(f"policy '{name}': transfer.continuation 'forecast' values the retailer's continuation on "
                          f"the forecast alone, so risk_aversion {risk_aversion} would have no effect; use continuation "
                          "'paths' for a certainty equivalent, or risk_aversion 0")


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
    forecast that also completes the plan (:meth:`completed`). With ``continuation="forecast"`` no
    paths are drawn or used: a plan costs the one LP on the forecast. Queries only the retailer's agent.

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
        continuation: str = "paths",
    ) -> None:
        if continuation not in CONTINUATIONS:
            raise ValueError(f"continuation must be one of {', '.join(CONTINUATIONS)}, got {continuation!r}")
        self.retailer = ctx.retailer
        self.commit, self.bounds = commit, ctx.bounds
        self.discount, self.risk_aversion, self.two_way = discount, risk_aversion, two_way
        self.continuation = continuation
        self.jit_plan = np.asarray(jit_plan, dtype=float)
        self.jit_po = self.jit_plan[:, 0]  # [V, F, K]
        self._on_forecast: dict[bytes, Any] = {}
        # immediate term on the forecast; future term on demand scenarios drawn from the forecast
        # (``paths``) or on the forecast itself, from the same solve as the immediate term (``forecast``)
        self.c_jit = float(self.completed(self.jit_po).by_week[0])
        if continuation == "forecast":
            self.paths = np.asarray(self.retailer.forecast, dtype=float)[None]
        else:
            self.paths = demand_scenarios(ctx, scenarios) if paths is None else np.asarray(paths, dtype=float)
        self._later: dict[tuple[bytes, int], float] = {}
        self._by_path: dict[tuple[bytes, int], tuple[float, float]] = {}
        if continuation == "paths":
            self.v_jit = np.array([self._future(self.jit_po, i) for i in range(len(self.paths))])
        else:
            self._jit_weeks = self._weeks_of_po(self.jit_po)
            self.v_jit = self._jit_weeks[1]

    def agreed(self, plan: np.ndarray | None) -> PlanBounds | None:
        """What agreeing ``plan`` would leave its continuation bound to, beyond the commitments already
        held (None: nothing new: no plan, a weekly commitment, or nothing left to bind)."""
        if plan is None or self.commit is None or self.commit.weeks <= 1:
            return None
        return agreed_box(self.bounds, plan, self.commit)

    def _cost(self, po: np.ndarray, demand: np.ndarray | None, box: PlanBounds | None) -> Any:
        extra = {} if box is None else {"bounds": box}  # outside retailer agents may not take bounds
        return self.retailer.cost_with_first_week(po, demand, **extra)

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

    def _weeks_of_po(self, po: np.ndarray, plan: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Whole valuations: the retailer's first-week and later-week costs with the PO ``po`` fixed, both
        from one solve, on each path (``paths-whole``) or on the forecast (``forecast``: one entry).
        ``plan``: the plan whose agreement the continuation follows (its new commitments, :meth:`agreed`)."""
        if self.continuation == "forecast":
            cost = self.completed(po, plan)
            return np.array([cost.by_week[0]]), np.array([cost.by_week[1:].sum()])
        box = self.agreed(plan)
        key = self._key(po, box)
        for i, path in enumerate(self.paths):
            if (key, i) not in self._by_path:
                cost = self._cost(po, path, box)
                self._by_path[(key, i)] = (float(cost.by_week[0]), float(cost.by_week[1:].sum()))
        first, later = zip(*(self._by_path[(key, i)] for i in range(len(self.paths))))
        return np.array(first), np.array(later)

    def _weeks_of_plan(self, plan: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Whole valuations: the same with the whole ``plan`` fixed."""
        costs = [self.retailer.evaluate(plan)] if self.continuation == "forecast" else \
            [self.retailer.evaluate(plan, demand=p) for p in self.paths]
        return np.array([c.by_week[0] for c in costs]), np.array([c.by_week[1:].sum() for c in costs])

    def price(self, plan: np.ndarray) -> CBTBreakdown:
        """The CBT of ``plan``'s first week (the CPP-VCG rule)."""
        plan = np.asarray(plan)
        po, box = plan[:, 0], self.agreed(plan)
        if self.continuation != "paths":
            first, later = self._weeks_of_po(po, plan)
            return self._whole(first, later, *self._jit_weeks)
        c_eff = float(self.completed(po, plan).by_week[0])
        dv = self.discount * (np.array([self._future(po, i, box) for i in range(len(self.paths))]) - self.v_jit)
        return self._breakdown(c_eff, dv)

    def price_plan(self, plan: np.ndarray) -> CBTBreakdown:
        """The transfer for committing to the whole ``plan``: the retailer's cost of the plan's first week
        on the forecast plus the certainty equivalent of its later weeks on the scenarios, against JIT's
        (under a whole valuation: the plan's cost by path, or on the forecast, against JIT's).
        This is the static Clarke pivot over the plan; a menu of whole plans needs it, because with
        first-week prices a vendor prefers items whose unpriced later weeks suit it."""
        plan = np.asarray(plan)
        if self.continuation != "paths":
            first, later = self._weeks_of_plan(plan)
            return self._whole(first, later, *self._jit_plan_weeks)
        c_jit, v_jit = self._jit_plan_costs
        c_eff = float(self.retailer.evaluate(plan).by_week[0])
        return self._breakdown(c_eff, self.discount * (np.array(
            [self.retailer.evaluate(plan, demand=p).by_week[1:].sum() for p in self.paths]) - v_jit), c_jit)

    @cached_property
    def _jit_plan_costs(self) -> tuple[float, np.ndarray]:
        """JIT plan's first-week cost on the forecast and later-week costs on each path (plan fixed)."""
        first = float(self.retailer.evaluate(self.jit_plan).by_week[0])
        later = np.array([self.retailer.evaluate(self.jit_plan, demand=p).by_week[1:].sum() for p in self.paths])
        return first, later

    @cached_property
    def _jit_plan_weeks(self) -> tuple[np.ndarray, np.ndarray]:
        return self._weeks_of_plan(self.jit_plan)

    def _whole(self, first: np.ndarray, later: np.ndarray, first_jit: np.ndarray, later_jit: np.ndarray) -> CBTBreakdown:
        """A whole valuation's CBT: the certainty equivalent over the paths (one path, the forecast, under
        ``forecast``) of ``first + discount * later`` against JIT's, each path's two terms from one solve.
        Reported as its mean first-week part (``immediate``) and the rest (``future_*``)."""
        d_first, d_later = first - first_jit, self.discount * (later - later_jit)
        raw = certainty_equivalent(d_first + d_later, self.risk_aversion)
        immediate = float(d_first.mean())
        return CBTBreakdown(
            immediate=immediate,
            future_ce=raw - immediate,
            future_mean=float(d_later.mean()),
            raw=raw,
            paid=raw if self.two_way else max(raw, 0.0),
            retailer_cost_efficient=float(first.mean()),
            retailer_cost_jit=float(first_jit.mean()),
        )

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
    continuation: str = "paths",
) -> CBTBreakdown:
    """The week's CBT for moving from ``jit_plan`` to ``efficient_plan``; see the module docstring.
    ``paths``: the demand scenarios to use (:func:`demand_scenarios`; default: drawn now), so that
    several transfers of one week can be priced on the same scenarios. ``commit``: the mechanism's
    mutual commitment (:class:`TransferPricer`). ``continuation``: one of :data:`CONTINUATIONS`
    (``forecast`` uses no paths)."""
    pricer = TransferPricer(ctx, jit_plan, discount=discount, risk_aversion=risk_aversion, scenarios=scenarios,
                            two_way=two_way, paths=paths, commit=commit, continuation=continuation)
    return pricer.price(efficient_plan)
