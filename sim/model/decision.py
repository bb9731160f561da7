"""The policy interface: every coordination mechanism is a :class:`Policy`.

Each simulated week the world hands the policy a :class:`PlanningContext` (the week, public data,
the retailer's agent, each vendor's agent by name, and a random generator) and receives a
:class:`Decision`: a plan ``x[V, H, F, K]`` whose first week is the binding purchase order (one block
per vendor), the transfer each party pays this week, whether the vendors have committed to the PO,
and diagnostics for the ledger.

Policies see agents only through the protocols below (:class:`RetailerPlanner`,
:class:`VendorPlanner`): the planning queries a mechanism needs and ``negotiator()``, the agent's own
CPP negotiator, built on its side. No policy reaches a party's cost model.

What a user may do: write a class with a ``name`` attribute and a ``decide(ctx) -> Decision`` method,
in their own module, and run it with ``flosim run --policy mypkg.mymodule:MyPolicy`` or
``run_policies(scenario, ["mypkg.mymodule:MyPolicy"])``. Constructors receive the scenario's
parameters for the policy (``scenario.policies[name]``) as keyword arguments.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from sim.model.commitment import CommitmentSettings, PlanBounds
from sim.model.data import PublicData
from sim.model.errors import FlosimError
from sim.model.plan_cost import PlanCost

#: The retailer's party name; vendors have their own names (a version-1 scenario's one vendor: "vendor").
RETAILER = "retailer"
#: The party a mechanism's own balance is booked to when transfers do not sum to zero.
MECHANISM = "mechanism"
#: Transfers summing to less than this share of the amounts they move are budget balanced (rounding).
BALANCE_ROUNDING = 1e-12
#: What a committed mechanism does when a vendor does not deliver its PO in full (docs/model.md,
#: "Shortfalls and remedies"): ``none`` the agreed transfers stand; ``refund`` they are recomputed on the
#: delivered PO (:attr:`Decision.reprice`); ``damages`` refund, and each vendor also pays the retailer
#: the cost its missing units put on the retailer (the world's shortfall cost).
REMEDIES = ("none", "refund", "damages")


def check_remedy(owner: str, remedy: Any) -> str:
    """``remedy`` if it is one of :data:`REMEDIES`, else a :class:`FlosimError` naming ``owner`` (a policy)."""
    if remedy not in REMEDIES:
        raise FlosimError(f"{owner}: remedy must be one of {', '.join(REMEDIES)}, got {remedy!r}")
    return str(remedy)


@runtime_checkable
class RetailerPlanner(Protocol):
    """What a policy may ask the retailer's agent."""

    party: str
    public: PublicData

    @property
    def forecast(self) -> np.ndarray: ...  # [H, R, K] expected demand

    def preferred_plan(self, state: Any = None, demand: np.ndarray | None = None, **options: Any) -> PlanCost: ...

    def evaluate(self, plan: np.ndarray, state: Any = None, demand: np.ndarray | None = None) -> PlanCost: ...

    def cost_with_first_week(self, po: np.ndarray, demand: np.ndarray | None = None, state: Any = None,
                             bounds: PlanBounds | None = None) -> PlanCost: ...

    def fcs_serving(self, region: str) -> list[str]: ...

    def negotiator(self, options: Any = None, *, process: bool = False, first_week: np.ndarray | None = None) -> Any: ...


@runtime_checkable
class VendorPlanner(Protocol):
    """What a policy may ask a vendor's agent (about its own block ``x[v]``, shape ``(H, F, K)``)."""

    party: str
    public: PublicData

    def evaluate(self, plan: np.ndarray, state: Any = None, *, allow_short: bool = False) -> PlanCost: ...

    def coarse_preference(self) -> list[str]: ...

    def coarse_volumes(self, step: float = 100.0) -> dict[str, float]: ...

    def negotiator(self, options: Any = None, *, process: bool = False, first_week: np.ndarray | None = None) -> Any: ...


@dataclass(frozen=True)
class PlanningContext:
    """What a policy sees when it plans week ``week``."""

    week: int
    public: PublicData
    retailer: RetailerPlanner
    vendors: Mapping[str, VendorPlanner]
    rng: np.random.Generator
    #: Standard deviation of each forecast week's remaining demand uncertainty, ``[H, R, K]``:
    #: public knowledge of the forecast model, used to sample demand scenarios.
    forecast_sd: np.ndarray | None = None
    #: The week's commitment box on the plan ``[V, H, F, K]`` (:mod:`sim.model.commitment`): earlier
    #: agreements' frozen weeks with their bands; None when no committed week lies in the horizon. The
    #: agents see the same box in their states, so their plans stay inside it; a decision outside it is
    #: refused by the world.
    bounds: PlanBounds | None = None

    @property
    def vendor(self) -> VendorPlanner:
        """The only vendor's agent (one-vendor scenarios); with several, use :attr:`vendors`."""
        if len(self.vendors) != 1:
            raise ValueError(f"this scenario has {len(self.vendors)} vendors ({', '.join(self.vendors)}); "
                             "ctx.vendor is for one-vendor scenarios: use ctx.vendors[name]")
        return next(iter(self.vendors.values()))


@dataclass
class Decision:
    """A policy's answer for one week.

    ``transfers[p]``: what party ``p`` pays this week (a cost; negative: it receives); parties left out
    pay nothing. ``balance`` is the mechanism's own net, ``-sum(transfers)``: zero when the transfers
    are budget balanced, negative when the mechanism keeps a surplus. Transfers plus balance sum to
    zero, so they never change the social cost. A policy may name the ``mechanism`` party in
    ``transfers``; the ledger's ``mechanism`` row is then what it pays plus the balance (minus what the
    retailer and the vendors pay)."""

    plan: np.ndarray  # [V, H, F, K]
    transfers: dict[str, float] = field(default_factory=dict)
    committed: bool = False  # True: the vendors agreed to ship the PO in full; False: JIT, they may short
    planned: dict[str, float] = field(default_factory=dict)  # planned cost per party, e.g. {"retailer": ..}
    diagnostics: dict[str, Any] = field(default_factory=dict)  # scalars for the ledger (iterations, gap ...)
    #: what the mechanism does if a committed PO is not delivered in full (one of :data:`REMEDIES`)
    remedy: str = "none"
    #: the transfers recomputed for a delivered PO ``[V, F, K]`` (``refund`` and ``damages`` need it; a
    #: policy sets it with the week's counterfactual captured, so the world can call it after execution)
    reprice: Callable[[np.ndarray], dict[str, float]] | None = None
    #: what the decision commits beyond its PO (:mod:`sim.model.commitment`): its plan's first ``weeks``
    #: weeks become commitments with ``band``; None: nothing beyond the PO (a JIT or uncommitted week)
    commit: CommitmentSettings | None = None

    @property
    def po(self) -> np.ndarray:
        """The binding purchase order: the plan's first week, ``[V, F, K]``."""
        return self.plan[:, 0]

    @property
    def balance(self) -> float:
        """The mechanism's own net this week: ``-sum(transfers)``; exactly zero when the sum is only
        floating-point rounding (below ``BALANCE_ROUNDING`` of the amounts moved), as when the retailer
        receives the float sum of several vendors' payments."""
        amounts = [float(v) for v in self.transfers.values()]
        total = math.fsum(amounts)
        if abs(total) <= BALANCE_ROUNDING * math.fsum(abs(v) for v in amounts):
            return 0.0
        return -total


@runtime_checkable
class Policy(Protocol):
    name: str

    def decide(self, ctx: PlanningContext) -> Decision: ...
