"""The Consensus Planning Protocol (CPP) as seen by the coordinator: what an agent must answer.

An agent in a CPP negotiation keeps its cost model to itself. The coordinator sends it three things,
a consensus plan ``z``, the agent's own prices ``y`` (both shaped like the part of the plan the agent
holds: the whole plan, or only its block of it, ``negotiate(..., blocks=...)``) and a penalty
``rho > 0``, and the agent answers, in the same shape, with its *best response*

    x = argmin_x  C(x) + y·x + (rho/2) ||x - z||²

where ``C`` is its private cost of plan ``x``. Nothing else crosses the boundary: the coordinator
holds only objects that implement :class:`Negotiator` and exchanges only arrays with them.

What a user may do: write any class with a ``best_response`` method of this signature (for example
an agent built on another solver, or a human-in-the-loop stub) and hand instances to
:meth:`sim.negotiation.coordinator.ConsensusADMM.negotiate`. Agents written for the amzn/FloPro SDK contract plug
in through :mod:`sim.negotiation.flopro_adapter`. :mod:`sim.negotiation.best_response` builds fast negotiators from flosim's
own agents.

A negotiator may also offer ``own_cost(x) -> float`` (its private cost of a plan,
:class:`CostReporter`) and ``dual_value(prices) -> float`` (``min_x C(x) + prices·x``). With both,
it can *certify*: at a check the coordinator asks each agent these two numbers
(:mod:`sim.negotiation.certificate`), and a negotiation reports ``converged`` only with a certified bound on its
plan's gap to first best. Agents without them still negotiate; the stop is then on residuals
(``stopped_on_residuals``). ``best_response`` is the only method called every round.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Negotiator(Protocol):
    """Anything that answers a CPP query with its best response (an array shaped like ``z``)."""

    def best_response(self, z: np.ndarray, prices: np.ndarray, rho: float) -> np.ndarray:
        """``argmin_x C(x) + prices·x + (rho/2)||x - z||²`` for this agent's private cost ``C``."""
        ...


@runtime_checkable
class CostReporter(Protocol):
    """Optional, for diagnostics only: an agent willing to state its own cost of a plan."""

    def own_cost(self, x: np.ndarray) -> float: ...


#: The only attribute the coordinator may use on a negotiator.
PROTOCOL_METHODS: tuple[str, ...] = ("best_response",)


def can_certify(negotiator: Any) -> bool:
    """Whether an agent offers the two numbers of the certificate: ``dual_value(prices)`` and
    ``own_cost(x)`` for any plan ``x``. An agent may also say it cannot (``can_certify`` False:
    a FloPro agent reports only the utility of its own last answer)."""
    flag = getattr(negotiator, "can_certify", None)
    if flag is not None:
        return bool(flag)
    return callable(getattr(negotiator, "dual_value", None)) and callable(getattr(negotiator, "own_cost", None))
