"""Execution: given the week's purchase orders and the capacity the world realised, what each vendor ships.

Planning happens before the week's capacity shocks are known (the vendors plan with their nominal
capacity ``P[o]``). At execution each vendor learns the share ``kappa[t, o]`` of each origin's
capacity that is available this week (the ``capacity`` stream, 1 without shocks) and fulfils its
block of the PO with production limited to ``kappa[t, o] * P[o]``; its stock at the origins is used
as before. What it cannot (or, under JIT, will not) ship of the PO is its **shortfall**:

    shortfall[v, f, k] = po[v, f, k] - shipped[v, f, k]   (never negative)

so ``shipped + shortfall = ordered`` for every vendor, FC and product. The shortfall is a record, not
a cost of its own: the retailer's lost sales (or backlog) already price the missing units.

How a vendor chooses which units to ship when it cannot ship all is its fulfilment LP
(:meth:`sim.parties.vendor.VendorAgent.fulfil`): least cost, and under a committed plan as much of
this week's PO as it can. No other rationing rule is applied here.

What a user may do: :func:`execute` with the vendors' agents, a :class:`~sim.model.decision.Decision`
and a week's capacity shares over all origins (the scenario's origin order) returns one
:class:`Execution` per vendor; :func:`vendor_shares` cuts a vendor's origins out of that row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from sim.model.decision import Decision
from sim.parties.vendor import Fulfilment, VendorAgent


@dataclass(frozen=True)
class Execution:
    """One vendor's execution of one week's PO: its fulfilment and what it left unshipped."""

    ordered: np.ndarray  # [F, K] this week's PO block
    fulfilment: Fulfilment
    capacity: np.ndarray  # [O] the production capacity it had this week, kappa * P

    @property
    def shipped(self) -> np.ndarray:
        return self.fulfilment.shipped

    @property
    def shortfall(self) -> np.ndarray:
        """Units ordered but not shipped ``[F, K]`` (never negative)."""
        return np.maximum(self.ordered - self.fulfilment.shipped, 0.0)


def vendor_shares(shares: np.ndarray, origin_counts: Mapping[str, int]) -> dict[str, np.ndarray]:
    """Split one week's capacity shares over all origins ``[O_all]`` into each vendor's ``[O_v]``
    (vendors in the scenario's order, each vendor's origins in order, as the ``origin`` axis is)."""
    shares = np.asarray(shares, dtype=float)
    total = sum(origin_counts.values())
    if shares.shape != (total,):
        raise ValueError(f"capacity shares of shape {shares.shape}, expected ({total},) (one per origin)")
    out, start = {}, 0
    for name, n in origin_counts.items():
        out[name] = shares[start : start + n]
        start += n
    return out


def execute(vendors: Mapping[str, VendorAgent], decision: Decision, shares: np.ndarray) -> dict[str, Execution]:
    """What each vendor ships this week: its block of ``decision.po`` fulfilled with this week's
    capacity ``shares[o] * P[o]`` (``shares`` over all origins; ones reproduce planning's capacity)."""
    split = vendor_shares(shares, {name: len(agent.nominal_capacity) for name, agent in vendors.items()})
    out: dict[str, Execution] = {}
    for name, agent in vendors.items():
        v = agent.index
        capacity = split[name] * agent.nominal_capacity
        later = decision.plan[v, 1:] if decision.committed else None
        ful = agent.fulfil(decision.po[v], committed=decision.committed, later=later, capacity=capacity)
        out[name] = Execution(ordered=np.maximum(np.asarray(decision.po[v], dtype=float), 0.0), fulfilment=ful, capacity=capacity)
    return out
