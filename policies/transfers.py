"""Transfer rules shared by the CPP-VCG policy and the mechanism case studies.

Convention (cost minimisation): every agent reports a *cost*; the planner picks the outcome with
the least total reported cost; a **positive transfer is paid BY the agent** (to the planner or to
the other agents), a negative one is received. An agent's quasi-linear disutility is
``own cost + transfer``.

What a user may do:

* :func:`clarke_pivot_payment` -- the one-line Clarke pivot the weekly CPP-VCG policy needs: the
  externality agent ``i`` imposes on the others, ``others' cost at the efficient outcome - others'
  cost had ``i`` not been there``.
* :func:`groves_payment` -- the general Groves form ``others' cost at the efficient outcome - h_i``
  with any ``h_i`` that does not depend on ``i``'s report (Clarke's pivot is one choice of ``h_i``;
  the supply-chain case uses a constant ``alpha``).
* :func:`clarke_pivot` -- Groves-Clarke on a finite set of outcomes: pass each agent's reported cost
  of every outcome (and optionally which outcomes stay feasible without that agent); get the
  efficient outcome and every agent's transfer.
* :func:`dagva` -- the expected-externality (d'Aspremont, Gérard-Varet, Arrow) mechanism on finite,
  independent type spaces with priors, with the budget-balancing redistribution that makes the
  transfers sum to zero in *every* type profile; :meth:`DagvaResult.interim_cost` audits Bayesian
  incentive compatibility by evaluating any report against any true type.

Why one module: the dominant-strategy and Bayesian rules differ only in *which* externality an
agent pays (realised vs expected); keeping both here lets audits compare them on equal terms.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "clarke_pivot_payment",
    "groves_payment",
    "GrovesResult",
    "clarke_pivot",
    "DagvaResult",
    "dagva",
]


def clarke_pivot_payment(others_cost_at_efficient: float, others_cost_without_agent: float) -> float:
    """What agent ``i`` pays under the Clarke pivot: the externality it imposes on the others.

    ``others_cost_at_efficient`` is the others' total (reported) cost at the outcome chosen with ``i``
    present; ``others_cost_without_agent`` the others' least total cost when ``i`` is absent. The
    result is ``>= 0`` whenever the outcome chosen with ``i`` present was also available without it.
    """
    return float(others_cost_at_efficient) - float(others_cost_without_agent)


def groves_payment(others_cost_at_efficient: float, h: float) -> float:
    """What agent ``i`` pays under a Groves rule with pivot term ``h`` (independent of ``i``'s report).

    ``i``'s disutility becomes ``own cost + others' cost - h`` = total cost minus a term it cannot
    influence, so truthful reporting is a dominant strategy whenever the outcome minimises the total
    reported cost. ``h = others' best cost without i`` gives the Clarke pivot; a constant ``alpha``
    gives the paper's SCF-DSIC payment ``I_i = alpha - sum_{j != i} w_j`` (received = minus paid).
    """
    return float(others_cost_at_efficient) - float(h)


@dataclass(frozen=True)
class GrovesResult:
    """Outcome and transfers of a Groves-Clarke mechanism on a finite set of outcomes."""

    outcome: int
    """Index of the efficient outcome (least total reported cost; ties go to the lowest index)."""
    total_cost: float
    """Total reported cost at ``outcome``."""
    transfers: dict[str, float]
    """Per agent, the amount it pays (positive) or receives (negative)."""
    others_cost_without: dict[str, float]
    """Per agent, the others' least total cost among the outcomes feasible without it (the pivot)."""


def _cost_table(costs: Mapping[str, Sequence[float]]) -> tuple[list[str], np.ndarray]:
    names = list(costs)
    if not names:
        raise ValueError("costs: need at least one agent")
    rows = [np.asarray(costs[n], dtype=float) for n in names]
    k = rows[0].shape
    if len(k) != 1 or k[0] == 0 or any(r.shape != k for r in rows):
        raise ValueError("costs: every agent must report one cost per outcome (same, non-zero length)")
    table = np.vstack(rows)
    if not np.all(np.isfinite(table)):
        raise ValueError("costs: reported costs must be finite")
    return names, table


def clarke_pivot(
    costs: Mapping[str, Sequence[float]],
    feasible_without: Mapping[str, Sequence[bool]] | None = None,
) -> GrovesResult:
    """Groves mechanism with Clarke's pivot over a finite set of outcomes.

    ``costs[name][k]`` is agent ``name``'s reported cost of outcome ``k``. The efficient outcome
    ``k*`` minimises the sum. Agent ``i`` pays ``sum_{j != i} c_j(k*) - min_{k in K_-i} sum_{j != i} c_j(k)``
    where ``K_-i`` are the outcomes feasible without ``i`` (all outcomes unless ``feasible_without``
    says otherwise). Benefits are negative costs, so a public project or a single-item auction can be
    written in this form (a Vickrey auction is the special case where the winner pays the second
    highest value).
    """
    names, table = _cost_table(costs)
    total = table.sum(axis=0)
    k_star = int(np.argmin(total))
    transfers: dict[str, float] = {}
    pivots: dict[str, float] = {}
    for idx, name in enumerate(names):
        others = total - table[idx]
        if feasible_without is not None and name in feasible_without:
            mask = np.asarray(feasible_without[name], dtype=bool)
            if mask.shape != total.shape or not mask.any():
                raise ValueError(f"feasible_without[{name!r}]: need one flag per outcome, at least one True")
            pivot = float(others[mask].min())
        else:
            pivot = float(others.min())
        pivots[name] = pivot
        transfers[name] = clarke_pivot_payment(float(others[k_star]), pivot)
    return GrovesResult(k_star, float(total[k_star]), transfers, pivots)


@dataclass(frozen=True)
class DagvaResult:
    """The dAGVA (expected-externality) mechanism on a finite, independent type space.

    Profiles are indexed by tuples ``(t_1, ..., t_n)`` of type indices. Arrays have one axis per agent.
    """

    costs: tuple[np.ndarray, ...]
    """``costs[i][t, k]``: agent ``i``'s cost of outcome ``k`` when its type is ``t``."""
    priors: tuple[np.ndarray, ...]
    """``priors[i][t]``: probability that agent ``i`` has type ``t`` (independent across agents)."""
    outcome: np.ndarray
    """``outcome[profile]``: the efficient outcome (least total cost, lowest index on ties)."""
    expected_externality: tuple[np.ndarray, ...]
    """``xi[i][r] = E_{theta_-i} [ sum_{j != i} c_j(k*(r, theta_-i), theta_j) ]``."""
    transfers: np.ndarray
    """``transfers[profile + (i,)]``: what agent ``i`` pays; sums to zero over ``i`` in every profile."""

    @property
    def n_agents(self) -> int:
        return len(self.costs)

    def transfer(self, profile: Sequence[int]) -> np.ndarray:
        """Every agent's payment (positive = pays) in type profile ``profile``."""
        return self.transfers[tuple(int(t) for t in profile)].copy()

    def interim_cost(self, agent: int, true_type: int, report: int) -> float:
        """Expected cost plus transfer of ``agent`` with type ``true_type`` reporting ``report``.

        The others report truthfully and their types are drawn from their priors. Bayesian incentive
        compatibility means this is minimised at ``report == true_type``.
        """
        n = self.n_agents
        others = [j for j in range(n) if j != agent]
        total = 0.0
        for others_types in itertools.product(*(range(len(self.priors[j])) for j in others)):
            played = [0] * n
            played[agent] = report
            prob = 1.0
            for j, t in zip(others, others_types):
                played[j] = t
                prob *= float(self.priors[j][t])
            prof = tuple(played)
            k = int(self.outcome[prof])
            total += prob * (self.costs[agent][true_type, k] + self.transfers[prof + (agent,)])
        return float(total)

    def bic_violation(self) -> float:
        """Largest gain any type of any agent gets from its best report over truth-telling.

        Zero (up to rounding) exactly when the mechanism is Bayesian incentive compatible: the truthful
        report is among the candidates, so the value is never negative.
        """
        worst = -np.inf
        for i in range(self.n_agents):
            m = len(self.priors[i])
            for t in range(m):
                truth = self.interim_cost(i, t, t)
                for r in range(m):
                    worst = max(worst, truth - self.interim_cost(i, t, r))
        return float(worst)


def dagva(costs: Sequence[np.ndarray], priors: Sequence[Sequence[float]]) -> DagvaResult:
    """Budget-balanced expected-externality mechanism (dAGVA) over finite outcomes and types.

    ``costs[i]`` has shape ``(m_i, K)``: the cost of each of ``K`` outcomes to agent ``i`` of each of
    its ``m_i`` types; ``priors[i]`` the (independent) prior over those types. The efficient rule
    picks ``k*(theta) = argmin_k sum_i costs[i][theta_i, k]``. Agent ``i`` pays its expected
    externality ``xi_i(theta_i)`` and receives an equal share of the others' expected externalities::

        t_i(theta) = xi_i(theta_i) - 1/(n-1) * sum_{j != i} xi_j(theta_j)

    Truth-telling is a Bayes-Nash equilibrium (``i``'s interim disutility is the expected total cost
    plus a term it cannot influence) and ``sum_i t_i(theta) = 0`` for every profile. Interim
    participation is *not* guaranteed: add a constant per agent (it keeps BIC) if you need it.
    """
    n = len(costs)
    if n < 2:
        raise ValueError("dagva: needs at least two agents (the redistribution divides by n - 1)")
    if len(priors) != n:
        raise ValueError(f"dagva: {n} cost tables but {len(priors)} priors")
    cost_arrays = tuple(np.asarray(c, dtype=float) for c in costs)
    prior_arrays = tuple(np.asarray(p, dtype=float) for p in priors)
    n_out = cost_arrays[0].shape[1] if cost_arrays[0].ndim == 2 else -1
    for i, (c, p) in enumerate(zip(cost_arrays, prior_arrays)):
        if c.ndim != 2 or c.shape[1] != n_out or c.shape[0] == 0:
            raise ValueError(f"dagva: costs[{i}] must have shape (types, {n_out}), got {c.shape}")
        if p.shape != (c.shape[0],) or np.any(p < 0) or not np.isclose(p.sum(), 1.0):
            raise ValueError(f"dagva: priors[{i}] must be a probability vector over {c.shape[0]} types")
    shape = tuple(c.shape[0] for c in cost_arrays)

    # Total cost of every outcome in every profile: broadcast sum over agents -> shape (*shape, K).
    total = np.zeros(shape + (n_out,))
    for i, c in enumerate(cost_arrays):
        idx = [None] * n + [slice(None)]
        idx[i] = slice(None)
        total = total + c[tuple(idx)]
    outcome = np.argmin(total, axis=-1)

    # Others' realised cost at the efficient outcome, per profile and agent.
    own_at_k = np.empty(shape + (n,))
    for i, c in enumerate(cost_arrays):
        grids = np.indices(shape)
        own_at_k[..., i] = c[grids[i], outcome]
    total_at_k = own_at_k.sum(axis=-1)

    xi = []
    for i in range(n):
        others_cost = total_at_k - own_at_k[..., i]
        weights = np.ones(shape)
        for j, p in enumerate(prior_arrays):
            if j == i:
                continue
            idx = [None] * n
            idx[j] = slice(None)
            weights = weights * p[tuple(idx)]
        axes = tuple(j for j in range(n) if j != i)
        xi.append((others_cost * weights).sum(axis=axes))

    transfers = np.empty(shape + (n,))
    xi_b = []
    for i in range(n):
        idx = [None] * n
        idx[i] = slice(None)
        xi_b.append(np.broadcast_to(xi[i][tuple(idx)], shape))
    xi_sum = sum(xi_b)
    for i in range(n):
        transfers[..., i] = xi_b[i] - (xi_sum - xi_b[i]) / (n - 1)
    return DagvaResult(cost_arrays, prior_arrays, outcome, tuple(xi), transfers)
