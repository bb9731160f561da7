"""The policy interface: every coordination mechanism is a :class:`Policy`.

Each simulated week the world hands the policy a :class:`PlanningContext` (the week, public data,
the two parties' agents and a random generator) and receives a :class:`Decision`: a six-week plan
whose first week is the binding purchase order, the transfer the vendor pays the retailer this week,
whether the vendor has committed to the PO, and diagnostics for the ledger.

What a user may do: write a class with a ``name`` attribute and a ``decide(ctx) -> Decision`` method,
in their own module, and run it with ``flosim run --policy mypkg.mymodule:MyPolicy`` or
``run_policies(scenario, ["mypkg.mymodule:MyPolicy"])``. A policy may only use the agents' query
methods (``preferred_plan``, ``evaluate``, ``best_response`` ...); it never reads the world's state.
Constructors receive the scenario's parameters for the policy (``scenario.policies[name]``) as
keyword arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from sim.model.agents import RetailerAgent, VendorAgent
from sim.model.data import PublicData


@dataclass(frozen=True)
class PlanningContext:
    """What a policy sees when it plans week ``week``."""

    week: int
    public: PublicData
    retailer: RetailerAgent
    vendor: VendorAgent
    rng: np.random.Generator
    #: Standard deviation of each forecast week's remaining demand uncertainty, ``[H, R, K]``:
    #: public knowledge of the forecast model, used to sample demand scenarios.
    forecast_sd: np.ndarray | None = None


@dataclass
class Decision:
    """A policy's answer for one week."""

    plan: np.ndarray  # [H, F, K]
    transfer: float = 0.0  # paid by the vendor to the retailer this week (negative: retailer pays)
    committed: bool = False  # True: the vendor agreed to ship the PO in full; False: JIT, it may short
    planned: dict[str, float] = field(default_factory=dict)  # planned cost per party, e.g. {"retailer": ..}
    diagnostics: dict[str, Any] = field(default_factory=dict)  # scalars for the ledger (iterations, gap ...)

    @property
    def po(self) -> np.ndarray:
        """The binding purchase order: the plan's first week, ``[F, K]``."""
        return self.plan[0]


@runtime_checkable
class Policy(Protocol):
    name: str

    def decide(self, ctx: PlanningContext) -> Decision: ...
