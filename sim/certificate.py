"""An a-posteriori optimality certificate for a negotiated plan, from two scalars per agent.

Consensus residuals say that the agents' answers agree and that the prices have settled; they
certify optimality only if every answer was an exact best response. This certificate does not
need that. For any prices ``y_i`` that sum to zero (the coordinator's always do),

    min_x sum_i C_i(x)  >=  sum_i min_x [C_i(x) + y_i·x]  =:  LB        (weak Lagrangian duality)

because ``sum_i y_i·x = 0`` for a common plan ``x``. Each agent computes its own term, the *dual
value* ``d_i(y_i) = min_x C_i(x) + y_i·x`` (one LP over its own model), and states its cost of the
executed plan, ``C_i(plan)``. Then ``UB = sum_i C_i(plan)`` is the plan's social cost and

    certified gap = (UB - LB) / |LB|   >=   (UB - first best) / |first best|   (for LB > 0)

bounds the plan's distance from first best with no central solver and no cost model revealed: two
numbers per agent. At an exact consensus optimum with optimal prices the bound is tight (strong LP
duality); away from it, it is loose in proportion to how far the prices are from optimal. An agent
whose dual value is unbounded below (prices that pay it to take unlimited units) yields no bound
(``lower = -inf``).

What a user may do: call :func:`certify` with negotiators offering ``dual_value(prices)`` and
``own_cost(x)`` (:class:`~sim.best_response.LPBestResponse` and
:class:`~sim.best_response.ProcessNegotiator` do), the final prices of a
:class:`~sim.coordinator.NegotiationResult`, and the plan to be executed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Certificate:
    """``upper``: the plan's social cost (sum of the agents' stated costs); ``lower``: the Lagrangian
    bound on first best; ``gap``: ``(upper - lower) / |lower|`` (inf without a finite bound)."""

    upper: float
    lower: float
    gap: float
    wall_s: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {"certified_upper": self.upper, "certified_lower": self.lower, "certified_gap": self.gap,
                "certify_s": self.wall_s}


def certify(negotiators: Sequence[Any], prices: Sequence[np.ndarray], plan: np.ndarray) -> Certificate:
    """The certificate of ``plan`` at the agents' final ``prices`` (see the module docstring).

    The prices are re-centred to sum exactly to zero (the coordinator's sum to zero up to rounding),
    which keeps the bound valid."""
    if len(negotiators) != len(prices):
        raise ValueError(f"certify: {len(negotiators)} negotiators but {len(prices)} price arrays")
    t0 = time.perf_counter()
    Y = np.asarray([np.asarray(p, dtype=float) for p in prices])
    Y = Y - Y.mean(axis=0, keepdims=True)
    lower = float(sum(neg.dual_value(y) for neg, y in zip(negotiators, Y, strict=True)))
    upper = float(sum(neg.own_cost(plan) for neg in negotiators))
    if not np.isfinite(lower) or not np.isfinite(upper):
        gap = float("inf")
    else:
        gap = (upper - lower) / max(abs(lower), 1e-9)
    return Certificate(upper=upper, lower=lower, gap=gap, wall_s=time.perf_counter() - t0)
