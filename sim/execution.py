"""Execution: given the week's purchase orders and the capacity the world realised, what each vendor ships.

Planning happens before the week's capacity shocks are known (the vendors plan with their nominal
capacity ``P[o]``). At execution each vendor learns the share ``kappa[t, o]`` of each origin's
capacity that is available this week (the ``capacity`` stream, 1 without shocks) and fulfils its
block of the PO with production limited to ``kappa[t, o] * P[o]``; its stock at the origins is used
as before. What it cannot (or, under JIT, will not) ship of the PO is its **shortfall**:

    shortfall[v, f, k] = po[v, f, k] - shipped[v, f, k]   (never negative)

so ``shipped + shortfall = ordered`` for every vendor, FC and product.

**Rationing.** How a vendor chooses which units to short when it cannot ship a committed PO in full
is the scenario's ``execution.rationing`` rule (:meth:`sim.parties.vendor.VendorAgent.fulfil`):
``cheapest`` (default: as many units as it can, the ones cheapest to it), ``pro-rata`` (the same,
largest share of every ordered FC and product first) or ``priority`` (the retailer's FCs in the
scenario's ``execution.ranking`` order). A JIT vendor has not committed: it ships what is worth
shipping to it within its capacity, whatever the rule.

**Shortfall cost.** The cost of a vendor's missing units to the retailer, by the retailer's own cost
model at execution: its cost with this week's PO as delivered (that vendor's block as shipped, the
others as ordered) less its cost with the PO as ordered, each with the retailer's own best
continuation on its forecast (it re-orders later what it still wants; what it cannot replace in time
is lost sales; it pays no wholesale for what it did not get). :func:`shortfall_costs` computes it;
it is a figure about the week, not a cash flow: the ledger's lost sales, holding and receiving rows
already hold what the shortfall did, so the ledger charges it to nobody (it would count those costs
twice), except as damages (below).

**Remedies** (:func:`remedied_transfers`), for a committed decision that was not delivered in full:
``none`` the agreed transfers stand; ``refund`` the policy's :attr:`~sim.model.decision.Decision.reprice`
recomputes them on the delivered PO; ``damages`` the refund, and each short vendor also pays the
retailer its shortfall cost (when positive), a ``damages`` ledger row of each.

What a user may do: :func:`execute` with the vendors' agents, a :class:`~sim.model.decision.Decision`
and a week's capacity shares over all origins (the scenario's origin order) returns one
:class:`Execution` per vendor; :func:`vendor_shares` cuts a vendor's origins out of that row;
:func:`shortfall_costs` and :func:`remedied_transfers` price what was not delivered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from sim.model.decision import Decision
from sim.parties.retailer import RetailerAgent
from sim.parties.vendor import Fulfilment, VendorAgent

#: Units below which a PO counts as delivered in full (LP rounding).
SHORT_UNITS = 1e-6


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


def execute(vendors: Mapping[str, VendorAgent], decision: Decision, shares: np.ndarray, *,
            rationing: str = "cheapest", ranking: Sequence[int] | None = None,
            floor: np.ndarray | None = None) -> dict[str, Execution]:
    """What each vendor ships this week: its block of ``decision.po`` fulfilled with this week's
    capacity ``shares[o] * P[o]`` (``shares`` over all origins; ones reproduce planning's capacity).
    ``rationing``/``ranking`` (FC indices, most important first): how a committed vendor shorts.
    ``floor`` ``[V, F, K]``: what earlier agreements committed the vendors to ship this week
    (``(1 - b) c``, :mod:`sim.model.commitment`); an uncommitted vendor ships it as far as its capacity
    allows (a committed one ships all it can of the PO anyway)."""
    split = vendor_shares(shares, {name: len(agent.nominal_capacity) for name, agent in vendors.items()})
    out: dict[str, Execution] = {}
    for name, agent in vendors.items():
        v = agent.index
        capacity = split[name] * agent.nominal_capacity
        later = decision.plan[v, 1:] if decision.committed else None
        owed = {} if floor is None or decision.committed else {"floor": np.asarray(floor, dtype=float)[v]}
        ful = agent.fulfil(decision.po[v], committed=decision.committed, later=later, capacity=capacity,
                           rationing=rationing, ranking=ranking, **owed)
        out[name] = Execution(ordered=np.maximum(np.asarray(decision.po[v], dtype=float), 0.0), fulfilment=ful, capacity=capacity)
    return out


def short(executed: Mapping[str, Execution]) -> bool:
    """Whether some vendor left more than :data:`SHORT_UNITS` of its PO unshipped."""
    return any(float(ex.shortfall.sum()) > SHORT_UNITS for ex in executed.values())


def delivered_po(po: np.ndarray, executed: Mapping[str, Execution], vendors: Mapping[str, VendorAgent],
                 only: str | None = None) -> np.ndarray:
    """The PO ``[V, F, K]`` as delivered: each vendor's block as it shipped it (``only``: that vendor's
    block alone, the others as ordered)."""
    out = np.array(po, dtype=float, copy=True)
    for name, ex in executed.items():
        if only is None or name == only:
            out[vendors[name].index] = np.minimum(ex.shipped, ex.ordered)
    return out


def shortfall_costs(retailer: RetailerAgent, po: np.ndarray, executed: Mapping[str, Execution],
                    vendors: Mapping[str, VendorAgent]) -> dict[str, float]:
    """Each vendor's shortfall cost to the retailer (module docstring): the retailer's cost, with its
    own best continuation on its forecast, of the PO with that vendor's block as delivered less its
    cost of the PO as ordered. Zero for a vendor that delivered in full (no LP is solved then).
    ``retailer``: its agent, observing this week's state (as at planning)."""
    out = {name: 0.0 for name in executed}
    missing = [name for name, ex in executed.items() if float(ex.shortfall.sum()) > SHORT_UNITS]
    if not missing:
        return out
    po = np.maximum(np.asarray(po, dtype=float), 0.0)
    ordered = float(retailer.cost_with_first_week(po).total)
    for name in missing:
        out[name] = float(retailer.cost_with_first_week(delivered_po(po, executed, vendors, only=name)).total) - ordered
    return out


def remedied_transfers(decision: Decision, executed: Mapping[str, Execution], vendors: Mapping[str, VendorAgent],
                       costs: Mapping[str, float]) -> tuple[dict[str, float], dict[str, float]]:
    """The week's transfers after the decision's remedy, and the damages each vendor pays the retailer
    (``{vendor: amount}``, empty unless ``damages``). A decision that is not committed, was delivered
    in full, or whose remedy is ``none`` keeps its transfers exactly."""
    transfers = dict(decision.transfers)
    if not decision.committed or decision.remedy == "none" or not short(executed):
        return transfers, {}
    if decision.reprice is None:
        raise ValueError(f"remedy {decision.remedy!r} needs the decision's reprice (the policy did not set it)")
    transfers = {p: float(v) for p, v in decision.reprice(delivered_po(decision.po, executed, vendors)).items()}
    damages: dict[str, float] = {}
    if decision.remedy == "damages":
        damages = {name: max(float(costs.get(name, 0.0)), 0.0) for name in executed
                   if float(executed[name].shortfall.sum()) > SHORT_UNITS and costs.get(name, 0.0) > 0}
    return transfers, damages


@dataclass(frozen=True)
class Outcome:
    """One week's execution of a decision and what the mechanism then settles."""

    executed: dict[str, Execution]
    delivered: np.ndarray  # [V, F, K] the PO as shipped
    costs: dict[str, float]  # each vendor's shortfall cost to the retailer
    transfers: dict[str, float]  # after the remedy
    damages: dict[str, float]  # what each short vendor pays the retailer on top (remedy ``damages``)


def settle(retailer: RetailerAgent, vendors: Mapping[str, VendorAgent], decision: Decision, shares: np.ndarray, *,
           rationing: str = "cheapest", ranking: Sequence[int] | None = None, floor: np.ndarray | None = None) -> Outcome:
    """Execute ``decision`` with this week's capacity ``shares`` (:func:`execute`), price the
    shortfalls (:func:`shortfall_costs`) and apply the decision's remedy (:func:`remedied_transfers`).
    ``retailer`` and ``vendors``: the parties' true agents, observing this week's state. ``floor``:
    the vendors' committed floor of this week (:func:`execute`)."""
    executed = execute(vendors, decision, shares, rationing=rationing, ranking=ranking, floor=floor)
    costs = shortfall_costs(retailer, decision.po, executed, vendors)
    transfers, damages = remedied_transfers(decision, executed, vendors, costs)
    return Outcome(executed, delivered_po(decision.po, executed, vendors), costs, transfers, damages)
