"""A party's cost of a plan, as its agent reports it: total, by week of the horizon, by component.

Agents answer planning queries (``preferred_plan``, ``evaluate``, ``cost_with_first_week``) with a
:class:`PlanCost`; policies read only these numbers, never the cost model behind them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PlanCost:
    """A party's cost of a plan: total, by week of the horizon, and by (component, week)."""

    plan: np.ndarray
    total: float
    by_week: np.ndarray
    breakdown: dict[tuple[str, int], float]
    feasible: bool = True

    @staticmethod
    def infeasible(plan: np.ndarray, horizon: int) -> "PlanCost":
        return PlanCost(plan, np.inf, np.full(horizon, np.inf), {}, feasible=False)

    @staticmethod
    def from_breakdown(plan: np.ndarray, breakdown: dict[tuple[str, str, int], float], party: str, horizon: int) -> "PlanCost":
        """The cost of ``party`` from an LP's labelled cost breakdown ``(party, component, week) -> value``
        (components starting with ``_`` are modelling devices, not costs, and are left out)."""
        mine = {(comp, week): v for (p, comp, week), v in breakdown.items() if p == party and not comp.startswith("_")}
        by_week = np.zeros(horizon)
        for (_, week), v in mine.items():
            by_week[week] += v
        return PlanCost(plan, float(by_week.sum()), by_week, mine)
