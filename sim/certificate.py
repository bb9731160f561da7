"""An a-posteriori optimality certificate for a negotiated plan, from two scalars per agent.

Consensus residuals say that the agents' answers agree and that the prices have settled; they
certify optimality only if every answer was an exact best response. This certificate does not
need that. For any prices ``y_i`` that sum to zero (the coordinator's always do),

    min_x sum_i C_i(x)  >=  sum_i min_x [C_i(x) + y_i·x]  =:  LB        (weak Lagrangian duality)

because ``sum_i y_i·x = 0`` for a common plan ``x``. Each agent computes its own term, the *dual
value* ``d_i(y_i) = min_x C_i(x) + y_i·x`` (one LP over its own model), and states its cost of the
executed plan, ``C_i(plan)``. Then ``UB = sum_i C_i(plan)`` is the plan's social cost and

    certified gap = (UB - LB) / LB   >=   (UB - first best) / first best     (when LB > 0)

bounds the plan's distance from first best with no central solver and no cost model revealed: two
numbers per agent. At an exact consensus optimum with optimal prices the bound is tight (strong LP
duality); away from it, it is loose in proportion to how far the prices are from optimal. An agent
whose dual value is unbounded below (prices that pay it to take unlimited units) yields no bound
(``lower = -inf``). ``lower`` is a valid bound at any prices that sum to zero; the relative gap is a
bound only when ``lower > 0`` (then first best >= lower > 0), so otherwise it is reported as ``inf``
(no certificate; ``upper - lower`` still bounds the absolute gap). The bound holds to the LP
solver's tolerance (about 1e-9 relative with simplex, 1e-8 with the interior-point solver).

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

from sim.best_response import BestResponseError


@dataclass(frozen=True)
class Certificate:
    """``upper``: the plan's social cost (sum of the agents' stated costs); ``lower``: the Lagrangian
    bound on first best; ``gap``: ``(upper - lower) / lower`` (inf unless ``lower > 0`` and ``upper``
    is finite); ``message``: why there is no bound, if there is none."""

    upper: float
    lower: float
    gap: float
    wall_s: float = 0.0
    message: str = ""

    @staticmethod
    def of(upper: float, lower: float, wall_s: float = 0.0, message: str = "") -> "Certificate":
        """The certificate for these bounds, with the relative gap only where it is one."""
        if np.isfinite(upper) and np.isfinite(lower) and lower > 0:
            gap = (upper - lower) / lower
        else:
            gap = float("inf")
            message = message or ("no finite lower bound" if not np.isfinite(lower) else
                                  "infinite upper bound" if not np.isfinite(upper) else
                                  "lower bound <= 0: the relative gap is not bounded")
        return Certificate(upper=float(upper), lower=float(lower), gap=float(gap), wall_s=wall_s, message=message)

    def with_upper(self, upper: float) -> "Certificate":
        """The same lower bound for another plan whose social cost is ``upper`` (for example the JIT
        plan a policy falls back to): the bound on first best does not depend on the plan."""
        return Certificate.of(upper, self.lower, self.wall_s)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"certified_upper": self.upper, "certified_lower": self.lower, "certified_gap": self.gap,
                               "certify_s": self.wall_s}
        if self.message:
            out["certificate_message"] = self.message
        return out


def certify(negotiators: Sequence[Any], prices: Sequence[np.ndarray], plan: np.ndarray) -> Certificate:
    """The certificate of ``plan`` at the agents' final ``prices`` (see the module docstring).

    The prices are re-centred to sum exactly to zero (the coordinator's sum to zero up to rounding),
    which keeps the bound valid. An agent that cannot compute its dual value (its LP solver fails)
    leaves no bound: ``gap`` is inf and ``message`` says why; nothing is raised, so a negotiation's
    plan is never lost to its certificate."""
    if len(negotiators) != len(prices):
        raise ValueError(f"certify: {len(negotiators)} negotiators but {len(prices)} price arrays")
    t0 = time.perf_counter()
    Y = np.asarray([np.asarray(p, dtype=float) for p in prices])
    Y = Y - Y.mean(axis=0, keepdims=True)
    try:
        lower = float(sum(neg.dual_value(y) for neg, y in zip(negotiators, Y, strict=True)))
    except BestResponseError as exc:  # an agent could not compute its term: no bound, said so
        return Certificate.of(float("nan"), float("-inf"), time.perf_counter() - t0, f"no lower bound: {exc}")
    upper = float(sum(neg.own_cost(plan) for neg in negotiators))
    return Certificate.of(upper, lower, time.perf_counter() - t0)
