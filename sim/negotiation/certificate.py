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

**Agents that hold part of the plan.** With blocks (:mod:`sim.negotiation.blocks`; agent ``i`` holds
``x[B_i]`` and its cost is ``C_i(x[B_i])``) the same argument runs component by component: if each
component's prices sum to zero over the agents holding it, then ``sum_i y_i·x[B_i] = sum_j x_j
sum_{i holds j} y_ij = 0`` for every global plan ``x``, so

    min_x sum_i C_i(x[B_i])  >=  sum_i min_{x_i} [C_i(x_i) + y_i·x_i]  =  sum_i d_i(y_i)  =:  LB

with each agent's dual value over its own block, and ``UB = sum_i C_i(plan[B_i])``. The
coordinator's prices have that property after its first round (each component's consensus value is
the mean over its holders of ``x_i + y_i/rho``, so the updated prices of its holders sum to zero); as
without blocks, :func:`certify` re-centres them (it subtracts each component's mean price over its
holders), so the bound is valid for any prices handed to it.

Any prices that sum to zero give a valid ``lower``, so a negotiation that checks its plan more than
once keeps the largest lower bound it has seen (:class:`Certifier`): the bound on first best only
improves, and each check compares the current plan with it.

**Which prices.** The coordinator's prices ``y_i`` are not the best ones to ask at. Agent ``i``'s
answer ``x_i = argmin C_i(x) + y_i·x + (rho/2)||x - z||²`` is an *exact* best response to its
*answer prices* ``y_i + rho (x_i - z)`` (its optimality condition), so there its dual value is its
cost of its answer plus those prices times it: no slack at all in its term. The answer prices do not
sum to zero (they differ by ``rho`` times the disagreement), so :func:`answer_prices_of` lets the
first holder of each component (the retailer, in flosim's negotiations) take minus the sum of the
others'. The :class:`Certifier` bounds at those prices when the coordinator passes them (default
``at="answers"``; ``at="prices"``: the coordinator's prices, as earlier versions did). It matters when
an agent's LP is degenerate: flosim's vendor is nearly indifferent among many ways to make and ship,
so at the coordinator's prices its LP answer is a vertex far from the plan and its dual value falls
2.2e-3 of first best short on the ``pilot`` benchmark (round 76, true gap 7.9e-4; the bound stayed
above 2e-3 for 270 rounds); at the answer prices the whole lower bound is 4e-5 short, and the first
check certifies 8.3e-4. On ``small`` (round 52): 7.9e-4 short instead of 3.2e-3. Which holder
should absorb depends on the agents (on ``pilot``, with the vendor absorbing, the bound is 4.4e-3
short; on a FloPro-style stand-in pair the vendor absorbing is the better one), so a check whose
bound at the first choice is not within the stopping rule's ``gap_tol`` also asks for the dual
values with the last holder absorbing (one more LP per agent, only at checks that would fail).

Not every agent can certify: one written for another SDK may answer best responses and nothing else
(:mod:`sim.negotiation.flopro_adapter`). :func:`can_certify` says whether an agent offers both numbers; certifying
with one that does not returns a certificate without a bound (``gap`` inf, ``message`` naming the
agent), never an exception.

What a user may do: call :func:`certify` with negotiators offering ``dual_value(prices)`` and
``own_cost(x)`` (:class:`~sim.negotiation.best_response.LPBestResponse` and
:class:`~sim.negotiation.best_response.ProcessNegotiator` do), the final prices of a
:class:`~sim.negotiation.coordinator.NegotiationResult`, and the plan to be executed; or hand a :class:`Certifier`
to :meth:`sim.negotiation.coordinator.ConsensusADMM.negotiate`, which then stops only on a certified gap
(``ADMMOptions.gap_tol``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.negotiation.best_response import BestResponseError
from sim.negotiation.blocks import Block, BlockLayout
from sim.negotiation.protocol import can_certify  # noqa: F401  (re-exported: sim.negotiation.certificate.can_certify)


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

    @property
    def bounded(self) -> bool:
        """Whether the certificate bounds the relative gap at all (``gap`` finite)."""
        return bool(np.isfinite(self.gap))

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


def _not_certifiable(negotiators: Sequence[Any]) -> str:
    idle = [i for i, neg in enumerate(negotiators) if not can_certify(neg)]
    if not idle:
        return ""
    names = ", ".join(f"{i} ({type(negotiators[i]).__name__})" for i in idle)
    return f"not certified: agent {names} cannot bound its cost (no dual_value/own_cost)"


def _centred(layout: BlockLayout, prices: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Each agent's prices, re-centred so that each component's prices sum to zero over its holders."""
    if layout.full and all(bs == layout.shape for bs in layout.block_shapes):  # (the sums of earlier versions)
        Y = np.asarray([np.asarray(p, dtype=float) for p in prices])
        Y = Y - Y.mean(axis=0, keepdims=True)
        return [Y[i] for i in range(layout.n_agents)]
    Ys = layout.center(layout.stack(prices, "prices"))  # each component's prices re-centred over its holders
    return [layout.part(Ys, i) for i in range(layout.n_agents)]


def lower_bound(negotiators: Sequence[Any], prices: Sequence[np.ndarray], shape: Sequence[int],
                parallel: bool = False, blocks: Sequence[Block] | None = None) -> float:
    """The Lagrangian lower bound on first best at ``prices`` alone (re-centred as in :func:`certify`;
    the plan has shape ``shape``): the sum of the agents' dual values, ``-inf`` if an agent cannot
    compute its own. One LP per agent; for a second set of prices for the same plan."""
    layout = BlockLayout.of(shape, len(negotiators), blocks)
    own = _centred(layout, prices)

    def dual(i: int) -> float:
        return float(negotiators[i].dual_value(own[i]))

    try:
        if parallel and len(negotiators) > 1:
            with ThreadPoolExecutor(max_workers=len(negotiators)) as pool:
                return float(sum(pool.map(dual, range(len(negotiators)))))
        return float(sum(dual(i) for i in range(len(negotiators))))
    except BestResponseError:
        return float("-inf")


def certify(negotiators: Sequence[Any], prices: Sequence[np.ndarray], plan: np.ndarray,
            parallel: bool = False, blocks: Sequence[Block] | None = None) -> Certificate:
    """The certificate of ``plan`` at the agents' final ``prices`` (see the module docstring).

    The prices are re-centred to sum exactly to zero (the coordinator's sum to zero up to rounding),
    which keeps the bound valid. An agent that cannot certify (:func:`can_certify`), or cannot compute
    its dual value (its LP solver fails), leaves no bound: ``gap`` is inf and ``message`` says why;
    nothing is raised, so a negotiation's plan is never lost to its certificate. ``parallel``: ask the
    agents at once (threads; pays off when they run in their own processes).

    ``plan`` may also be a callable without arguments returning it (agent 0 holding the whole plan):
    it is then called while the agents compute their dual values, which do not depend on the plan
    (the stopping rule's check: the vendors confirm the plan while the retailer solves its dual LP),
    and the agents are asked at once whatever ``parallel`` says.

    ``blocks[i]``: the part of the global ``plan`` agent ``i`` holds (None, the default: every agent
    holds the whole plan); ``prices[i]`` is then in its block's shape, agent ``i`` is asked its dual
    value at its re-centred prices and its cost of ``plan[blocks[i]]``, and no agent is shown
    another's block. Blocks that do not fit the plan are a ``ValueError``."""
    if len(negotiators) != len(prices):
        raise ValueError(f"certify: {len(negotiators)} negotiators but {len(prices)} price arrays")
    t0 = time.perf_counter()
    plan_of = plan if callable(plan) else None
    shape = np.shape(prices[0]) if plan_of is not None and (blocks is None or blocks[0] is None) else np.shape(plan)
    if plan_of is not None and blocks is not None and blocks[0] is not None:
        raise ValueError("certify: a plan given as a callable needs agent 0 to hold the whole plan")
    layout = BlockLayout.of(shape, len(negotiators), blocks)
    missing = _not_certifiable(negotiators)
    if missing:
        return Certificate.of(float("nan"), float("-inf"), time.perf_counter() - t0, missing)
    own = _centred(layout, prices)
    N = len(negotiators)

    def dual(i: int) -> float:
        return float(negotiators[i].dual_value(own[i]))

    def cost(i: int, plan: np.ndarray) -> float:
        return float(negotiators[i].own_cost(layout.take(plan, i)))

    plan_error: BaseException | None = None
    try:
        if plan_of is not None:  # the dual values do not need the plan: they are computed while it is made
            with ThreadPoolExecutor(max_workers=2 * N) as pool:
                duals = [pool.submit(dual, i) for i in range(N)]
                try:  # (a failure to make the plan is the caller's, as if it had made it first)
                    plan = np.asarray(plan_of(), dtype=float)
                    if plan.shape != tuple(shape):
                        raise ValueError(f"certify: the plan has shape {plan.shape}; the prices say {tuple(shape)}")
                except Exception as exc:
                    plan_error = exc
                    for d in duals:
                        d.cancel()
                    terms = []
                else:
                    costs = [pool.submit(cost, i, plan) for i in range(N)]
                    terms = [(d.result(), c.result()) for d, c in zip(duals, costs)]
        elif parallel and N > 1:
            plan = np.asarray(plan, dtype=float)
            with ThreadPoolExecutor(max_workers=N) as pool:
                terms = list(pool.map(lambda i: (dual(i), cost(i, plan)), range(N)))
        else:
            plan = np.asarray(plan, dtype=float)
            terms = [(dual(i), cost(i, plan)) for i in range(N)]
    except BestResponseError as exc:  # an agent could not compute its term: no bound, said so
        return Certificate.of(float("nan"), float("-inf"), time.perf_counter() - t0, f"no lower bound: {exc}")
    if plan_error is not None:
        raise plan_error
    lower = float(sum(d for d, _ in terms))
    upper = float(sum(c for _, c in terms))
    return Certificate.of(upper, lower, time.perf_counter() - t0)


def answer_prices_of(layout: BlockLayout, stacked: np.ndarray, absorber: str = "first") -> np.ndarray:
    """Zero-sum prices from the prices at which each agent's answer is its exact best response.

    ``stacked``: agent ``i``'s *answer prices* ``y_i + rho (x_i - z)`` (stacked as in ``layout``):
    its answer ``x_i`` minimises ``C_i(x) + (y_i + rho (x_i - z))·x`` exactly (the optimality
    condition of its proximal answer), so its dual value there is its stated cost of its answer plus
    the prices times it. Those prices do not sum to zero (they differ by ``rho`` times the agents'
    disagreement), so for each component the first agent holding it (the retailer in flosim's
    negotiations, which holds the whole plan) takes minus the sum of the others' answer prices and the
    others keep theirs: every agent but the first is priced where its own answer is optimal
    (``absorber="last"``: the last holder takes the sum instead). Valid
    like any zero-sum prices; near agreement it is much tighter than the coordinator's prices when an
    agent's LP is degenerate (a vendor indifferent among many ways to ship: at the coordinator's
    prices its LP answer jumps far from the plan, at its answer prices it stays at its answer)."""
    if absorber not in ("first", "last"):
        raise ValueError(f"answer_prices_of: absorber must be 'first' or 'last', got {absorber!r}")
    Y = np.array(stacked, dtype=float)
    if layout.full:
        Y[0 if absorber == "first" else -1] -= Y.sum(axis=0)
        return Y
    total = np.bincount(layout.index, weights=Y, minlength=layout.n)
    if absorber == "first":  # stacked order is agent order: the first occurrence is the first holder
        _, at = np.unique(layout.index, return_index=True)
    else:
        _, back = np.unique(layout.index[::-1], return_index=True)
        at = layout.m - 1 - back
    Y[at] -= total[layout.index[at]]
    return Y


PlanRule = Callable[[np.ndarray, Sequence[np.ndarray]], np.ndarray]


def _write_block(plan: np.ndarray, layout: BlockLayout, i: int, values: np.ndarray) -> np.ndarray:
    """``plan`` with agent ``i``'s block set to ``values`` (a copy)."""
    if layout.full:
        return np.array(values, dtype=float).reshape(np.shape(plan))
    out = np.array(plan, dtype=float)
    out.reshape(-1)[layout.flat[i]] = np.asarray(values, dtype=float).ravel()
    return out


class Certifier:
    """Certifies a negotiation's plan at its checks, keeping the best lower bound seen.

    ``plan(z, answers)`` says which (global) plan would be executed if the negotiation stopped now,
    from the global consensus plan ``z`` and the agents' answers (each in its block's shape); default:
    the cheapest, by the agents' stated costs, of ``z`` and, for each agent, ``z`` with its block
    replaced by its answer (without blocks: the answer itself), and where no agent can carry out all
    of those (answers within a solver's tolerance can cross a capacity by a hair), ``z`` cut to what
    each agent offering ``confirm`` confirms. The certificate bounds that plan.
    ``blocks``: the agents' blocks of the plan, as given to the negotiation (None: the whole plan).
    The lower bound on first best holds for any prices that sum to zero, so each check keeps the
    largest one seen so far: the bound the stopping rule uses only improves. ``at``: which prices the
    lower bound is computed at when the coordinator passes the answers' own prices (``answer_prices``,
    see the module docstring): ``"answers"`` (default, :func:`answer_prices_of` of them) or
    ``"prices"`` (the coordinator's prices; the only choice when no answer prices are passed).

    What a user may do: ``Certifier(negotiators, plan=...)`` and pass it to
    :meth:`sim.negotiation.coordinator.ConsensusADMM.negotiate` (``certifier=``, with the same ``blocks``
    as the negotiation: other blocks are a ``ValueError``); ``Certifier.for_agents(negotiators,
    blocks=...)`` returns None when some agent cannot certify."""

    #: the coordinator passes ``answer_prices`` to certifiers that say they take them
    takes_answer_prices = True

    def __init__(self, negotiators: Sequence[Any], plan: PlanRule | None = None, parallel: bool = True,
                 blocks: Sequence[Block] | None = None, at: str = "answers") -> None:
        if at not in ("answers", "prices"):
            raise ValueError(f"Certifier: at must be 'answers' or 'prices', got {at!r}")
        self.at = at
        self.negotiators = list(negotiators)
        self.plan_rule = plan
        self.parallel = parallel
        self.blocks = None if blocks is None else list(blocks)
        self.best_lower = float("-inf")
        self.last_plan: np.ndarray | None = None

    @classmethod
    def for_agents(cls, negotiators: Sequence[Any], plan: PlanRule | None = None,
                   blocks: Sequence[Block] | None = None, at: str = "answers") -> "Certifier | None":
        """A certifier if every agent can certify (:func:`can_certify`), otherwise None."""
        return cls(negotiators, plan, blocks=blocks, at=at) if all(can_certify(n) for n in negotiators) else None

    def __call__(self, z: np.ndarray, answers: Sequence[np.ndarray], prices: Sequence[np.ndarray],
                 answer_prices: Sequence[np.ndarray] | None = None, target: float | None = None,
                 target_abs: float | None = None) -> Certificate:
        """Certify the plan of this round. ``answer_prices``: each agent's ``y_i + rho (x_i - z)``
        (the coordinator passes them); ``target``: the gap at which the check would stop (the
        coordinator's ``gap_tol``), ``target_abs``: the absolute gap ``upper - lower`` at which it
        would (its ``gap_abs``): a second set of answer prices is tried only when the first does not
        reach either (both None: always)."""
        t0 = time.perf_counter()
        blocks = self.blocks
        second: list[np.ndarray] | None = None
        if answer_prices is not None and self.at == "answers":  # the lower bound at the answers' own prices
            layout = BlockLayout.of(np.shape(z), len(self.negotiators), blocks)
            stacked = layout.stack(answer_prices, "answer_prices")
            first = answer_prices_of(layout, stacked, "first")
            prices = [layout.part(first, i) for i in range(len(self.negotiators))]
            last = answer_prices_of(layout, stacked, "last")
            second = [layout.part(last, i) for i in range(len(self.negotiators))]
        if self.plan_rule is not None:
            made: list[np.ndarray] = []

            def plan_now() -> np.ndarray:
                made.append(np.asarray(self.plan_rule(z, answers), dtype=float))
                return made[0]

            whole = blocks is None or blocks[0] is None
            if whole and self.parallel and len(self.negotiators) > 1:  # the plan is made during the dual LPs
                c = certify(self.negotiators, prices, plan_now, blocks=blocks)
                plan = made[0] if made else plan_now()  # (certify returns before making it if an agent cannot certify)
            else:
                plan = plan_now()
                c = certify(self.negotiators, prices, plan, parallel=self.parallel, blocks=blocks)
        else:  # the cheapest of the consensus plan and the answers (an answer can be the only feasible one)
            z = np.asarray(z, dtype=float)
            layout = BlockLayout.of(z.shape, len(self.negotiators), blocks)
            c, plan = certify(self.negotiators, prices, z, parallel=self.parallel, blocks=blocks), z

            def stated(a: np.ndarray) -> float:  # the social cost of plan a, as the agents state it
                return float(sum(neg.own_cost(layout.take(a, j)) for j, neg in enumerate(self.negotiators)))

            for i, a in enumerate(answers):
                if not np.isfinite(c.lower):
                    break
                a = _write_block(z, layout, i, a)  # z with agent i's block replaced by its answer
                upper = stated(a)
                if upper < c.upper or not np.isfinite(c.upper):
                    c, plan = Certificate.of(upper, c.lower), a
            if np.isfinite(c.lower) and not np.isfinite(c.upper):  # no candidate every agent can carry out
                a = self._confirmed(z, layout)
                if a is not None and np.isfinite(upper := stated(a)):
                    c, plan = Certificate.of(upper, c.lower), a
        self.last_plan = plan
        if np.isfinite(c.lower) and c.lower > self.best_lower:
            self.best_lower = c.lower
        if second is not None and np.isfinite(c.lower):  # (also when this plan has no bound: later checks keep it)
            gap = Certificate.of(c.upper, self.best_lower).gap
            reached = ((target is not None and gap <= target)
                       or (target_abs is not None and c.upper - self.best_lower <= target_abs))
            if not reached:
                other = lower_bound(self.negotiators, second, np.shape(z), parallel=self.parallel, blocks=blocks)
                if np.isfinite(other) and other > self.best_lower:
                    self.best_lower = other
        lower = self.best_lower if np.isfinite(self.best_lower) else c.lower  # includes c.lower when finite
        message = c.message if not np.isfinite(c.lower) and not np.isfinite(self.best_lower) else ""
        if np.isnan(c.upper):
            message = c.message
        return Certificate.of(c.upper, lower, time.perf_counter() - t0, message)

    def _confirmed(self, z: np.ndarray, layout: BlockLayout) -> np.ndarray | None:
        """The consensus plan reduced, agent by agent, to what each agent that offers ``confirm`` says it
        can carry out exactly (:meth:`~sim.negotiation.best_response.LPBestResponse.confirm`: the most of
        its block at or below the plan; not part of the protocol): a candidate for a check at which the
        consensus plan and every answer exceed some agent's constraints, if only by the answers'
        tolerance (a capacity crossed by 1e-4 makes a plan's stated cost infinite, and without this no
        check certifies). None when no agent offers it."""
        plan, any_confirmed = np.array(z, dtype=float), False
        for i, neg in enumerate(self.negotiators):
            confirm = getattr(neg, "confirm", None)
            if not callable(confirm):
                continue
            mine = layout.take(plan, i)
            plan = _write_block(plan, layout, i, np.minimum(mine, np.asarray(confirm(mine), dtype=float).reshape(np.shape(mine))))
            any_confirmed = True
        return plan if any_confirmed else None
