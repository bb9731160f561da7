"""``cpp``: the Consensus Planning Protocol alone: the negotiated efficient plan as the PO, no transfers.

Each week the retailer's agent and every vendor's agent negotiate ``x* = argmin C_R + sum_v C_v``
through the ADMM coordinator (:mod:`sim.negotiation.coordinator`), each answering only best-response
queries with the negotiator it builds on its own side (``agent.negotiator()``). The retailer answers
for the whole plan ``x[V, H, F, K]``, vendor ``v`` for its own block ``x[v]`` only, and is never shown
another vendor's block.
This is the efficiency half of CPP-VCG: it shows what coordination gains before any transfer.

The plan sent as the PO must be one every party can execute: it is the **retailer's last answer**
(what the retailer asks for at the agreed prices), with any week-FC total above the FC's public
receiving capacity scaled down, then **confirmed by each vendor's side** for its block: the most of it
the vendor can ship exactly (never more than asked; best responses are solved to a tolerance, so the answers
differ by the primal residual). At convergence the answers agree; of the candidates (either
answer or ``z``, confirmed), this one measured the smallest gap to first best. Its social cost is the agents'
evaluated costs; diagnostics carry the negotiation's iterations, status, residuals and wall time.

A week whose negotiation does **not converge** (``converged`` is a stop on a certified gap: a stop on
residuals alone, ``stopped_on_residuals``, does not count) is never presented as an agreement: by default
(``fallback: jit``) the policy sends the retailer's JIT plan, uncommitted, and records
``fallback: "jit"`` and the status; ``fallback: none`` sends the unconverged vendor answer
uncommitted, flagged the same way.

Parameters (scenario ``policies: {cpp: {...}}``): any field of :class:`sim.negotiation.coordinator.ADMMOptions`
(``max_iter``, ``eps_rel``, ``rho``, ``anderson`` ...), ``fallback`` (``jit`` or ``none``) and
``warm_start`` (default true: each week's negotiation starts from last week's converged consensus
plan and prices, shifted one week, and its ``rho``; a rolling horizon changes little from week to week)
and ``certify`` (default false; a converged week is certified by the stopping rule and its diagnostics
carry ``certified_gap``, a bound on the plan's gap to first best from two numbers per agent,
:mod:`sim.negotiation.certificate`; when true, a week that did not converge carries one too, compared with the plan
it executes; two LPs per agent)
and ``answers`` (the agents' best-response settings, :class:`sim.negotiation.best_response.BestResponseOptions`:
``abs_tol``, ``early_max_iter``, ``exact_below`` ...; for example ``{exact_below: 0}`` caps every answer)
and ``privacy`` (noisy vendor answers, a neutral coordinator, and a record of what the retailer was
shown: :mod:`policies.privacy`).
:func:`negotiate_efficient_plan` is the shared "negotiate a plan" step, also used by ``cpp-vcg``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import ValidationError

from sim.model.decision import Decision, PlanningContext
from policies.privacy import ViewRecorder, privacy_options
from sim.negotiation.best_response import BestResponseOptions
from sim.negotiation.certificate import Certifier, certify as certify_plan
from sim.negotiation.coordinator import ADMMOptions, ConsensusADMM, NegotiationResult
from sim.model.errors import FlosimError


def admm_options(options: ADMMOptions | dict[str, Any] | None, where: str = "policy 'cpp'") -> ADMMOptions:
    """Validate ADMM options given as a mapping (scenario parameters) into :class:`ADMMOptions`."""
    if isinstance(options, ADMMOptions):
        return options
    try:
        return ADMMOptions(**dict(options or {}))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise FlosimError(f"{where}: bad ADMM options: {problems}") from None


def answer_options(options: BestResponseOptions | dict[str, Any] | None, where: str = "policy 'cpp'") -> BestResponseOptions | None:
    """Validate the agents' answer settings (:class:`sim.negotiation.best_response.BestResponseOptions`: OSQP
    tolerances, iteration caps, ``exact_below`` ...) given as a mapping; None keeps the defaults.
    ``osqp`` (OSQP's own settings) is for Python callers only: a scenario file cannot set it."""
    if options is None or isinstance(options, BestResponseOptions):
        return options
    if not isinstance(options, dict):
        raise FlosimError(f"{where}: answers must be a mapping of best-response settings, got {options!r}")
    known = ", ".join(sorted(set(BestResponseOptions.model_fields) - {"osqp"}))
    odd = [name for name in options if not isinstance(name, str)]  # pydantic would raise TypeError
    if odd:
        raise FlosimError(f"{where}: unknown answer setting {odd[0]!r} (choose from {known})")
    if "osqp" in options:
        raise FlosimError(f"{where}: answer setting 'osqp' (OSQP's own settings) can only be set from Python "
                          "(BestResponseOptions(osqp=...))")
    try:
        return BestResponseOptions(**options)
    except ValidationError as exc:
        problems = "; ".join(
            f"unknown answer setting {e['loc'][0]!r} (choose from {known})" if e["type"] == "extra_forbidden"
            else f"answer setting {'.'.join(map(str, e['loc']))} = {e['input']!r}: {e['msg']}"
            for e in exc.errors())
        raise FlosimError(f"{where}: {problems}") from None


def executable_plan(result: NegotiationResult, ctx: PlanningContext, vendors: Sequence[Any] | None = None,
                    retailer_index: int = 0) -> np.ndarray:
    """The retailer's last answer, scaled down to the FCs' public receiving capacities and confirmed
    by each vendor's negotiator for its block (``confirm``: the most of it the vendor can ship
    exactly, never more than asked). ``vendors``: the vendors' negotiators in plan order."""
    return plan_from_answer(result.answers[retailer_index], ctx, vendors)


def plan_from_answer(answer: np.ndarray, ctx: PlanningContext, vendors: Sequence[Any] | None = None) -> np.ndarray:
    """:func:`executable_plan` of one retailer answer ``[V, H, F, K]`` (the certifier's plan rule
    during a negotiation)."""
    plan = np.maximum(np.asarray(answer, dtype=float), 0.0)
    plan = plan * ctx.public.supplies[:, None, None, :]  # nothing from a vendor that does not supply it (public)
    plan = ctx.public.within_receiving_capacity(plan)
    if ctx.bounds is not None:  # the answers are in the agents' commitment box to a tolerance: exactly in it
        plan = ctx.bounds.clip(plan)
    for v, vendor in enumerate(vendors or ()):
        confirm = getattr(vendor, "confirm", None)  # an outside agent may not offer it
        if confirm is not None:
            plan[v] = confirm(plan[v])
    return plan


def shift_week(a: np.ndarray, axis: int = 0, tail: int = 1) -> np.ndarray:
    """A plan-shaped array one week on along its week ``axis``: week ``tau + 1`` becomes week ``tau``,
    except in the horizon's last ``tail`` weeks, which keep their place (``tail = 1``: the last week
    repeats; ``tail`` at least 1, at most the horizon: then nothing moves).

    Why a tail: a rolling plan's early weeks follow the calendar (this week's orders for next week are
    last week's for the week after), but its last weeks are shaped by the horizon's end (no orders
    that would arrive after it, the terminal value of stock), which moves with the horizon. On the
    ``pilot`` and ``two-vendors`` replays (horizon 6) a week's agreed plan and prices are closest to
    last week's shifted in the first half of the horizon and to last week's in place in the second
    half (docs/performance.md)."""
    a = np.asarray(a, dtype=float)
    H = a.shape[axis]
    if H <= 1:
        return a.copy()
    t = int(min(max(tail, 1), H))
    return np.take(a, list(range(1, H - t + 1)) + list(range(H - t, H)), axis=axis)


#: Plans with at least this many components are negotiated with each agent in its own process.
PROCESS_THRESHOLD = 5000


def negotiate_efficient_plan(
    ctx: PlanningContext,
    options: ADMMOptions | dict[str, Any] | None = None,
    processes: bool | None = None,
    warm: NegotiationResult | None = None,
    on_round: Any = None,
    certify: bool = False,
    answers: BestResponseOptions | dict[str, Any] | None = None,
    wrap_vendor: Callable[[str, Any], Any] | None = None,
    vendors: Sequence[str] | None = None,
    start: "NegotiationState | None" = None,
    first_week: np.ndarray | None = None,
    warm_tail: int = 1,
) -> tuple[np.ndarray, NegotiationResult]:
    """Negotiate ``argmin C_R + sum_v C_v`` between the context's agents; returns the executable plan
    and the negotiation result (check ``result.converged`` before treating the plan as agreed).

    ``processes``: run each agent's negotiator in its own process, so the agents answer each round in
    parallel (``None``: when a vendor's block has at least :data:`PROCESS_THRESHOLD` components).
    ``warm``: last week's result; its consensus plan and prices, shifted one week (the last week
    repeated; ``warm_tail``: the horizon's last weeks that keep their place instead), and its ``rho``
    start this negotiation (see :func:`shift_week`). ``on_round``: called
    with each round's history entry (see :meth:`sim.negotiation.coordinator.ConsensusADMM.negotiate`).
    ``certify``: after the negotiation, each agent states its cost of the executable plan and its
    dual value at its final prices, which bound the plan's gap to first best
    (:mod:`sim.negotiation.certificate`); the result's ``certificate`` (and its diagnostics) then carry it.
    ``answers``: the agents' best-response settings (:func:`answer_options`), for every agent.
    ``wrap_vendor(name, negotiator)``: wraps a vendor's negotiator on that vendor's side before the
    negotiation (for example :class:`sim.negotiation.answer_noise.NoisyNegotiator`, noisy answers); the
    coordinator is unchanged. ``vendors``: the vendors taking part (default all); a vendor left out is
    ordered from as JIT would (the retailer alone decides its block: the pivot's counterfactual).
    ``start``: the state of another negotiation of the same week (:class:`NegotiationState`) to start
    from: its plan, its prices for the parties taking part (the retailer's prices on a left-out vendor's
    block set to zero, so each component's prices still sum to zero over its holders) and its ``rho``;
    a pivot's negotiation starts from the full one's agreement, which is usually close.
    ``first_week`` ``[V, F, K]``: this week's PO given; each agent negotiates the later weeks with it
    fixed on its own side (the value of a PO with the later weeks re-planned jointly). NaN entries are
    free: ``first_week`` NaN except a left-out vendor's block gives that vendor's part of this week's PO
    (a pivot's counterfactual that orders from it as JIT would)."""
    opts = admm_options(options)
    answer_opts = answer_options(answers)
    pub = ctx.public
    names = list(ctx.vendors) if vendors is None else list(vendors)
    blocks: list[Any] = [None] + [pub.vendor_index(name) for name in names]
    z0 = prices0 = None
    if warm is not None and warm.converged and warm.z.shape == tuple(pub.shape) and len(warm.prices) == len(blocks):
        z0 = shift_week(warm.z, axis=1, tail=warm_tail)
        prices0 = [shift_week(p, axis=1 if i == 0 else 0, tail=warm_tail) for i, p in enumerate(warm.prices)]
        if opts.rho is None:
            opts = opts.model_copy(update={"rho": warm.rho})
    if start is not None and z0 is None:
        z0 = np.asarray(start.z, dtype=float).copy()
        retailer_prices = np.asarray(start.prices["retailer"], dtype=float).copy()
        for name in ctx.vendors:
            if name not in names:
                retailer_prices[pub.vendor_index(name)] = 0.0  # the retailer alone holds that block now
        prices0 = [retailer_prices] + [np.asarray(start.prices[name], dtype=float) for name in names]
        if opts.rho is None:
            opts = opts.model_copy(update={"rho": start.rho})
    if processes is None:
        processes = int(np.prod(pub.block_shape)) >= PROCESS_THRESHOLD
    fixed = {} if first_week is None else {"first_week": np.asarray(first_week, dtype=float)}
    negotiators: list[Any] = [ctx.retailer.negotiator(answer_opts, process=processes, **fixed)]
    try:
        for name in names:
            mine = None if first_week is None else fixed["first_week"][pub.vendor_index(name)]
            own = {} if mine is None or np.isnan(mine).all() else {"first_week": mine}
            negotiators.append(ctx.vendors[name].negotiator(answer_opts, process=processes, **own))
        if wrap_vendor is not None:
            negotiators[1:] = [wrap_vendor(name, neg) for name, neg in zip(names, negotiators[1:])]
        vendor_negs = _in_plan_order(negotiators[1:], blocks[1:], pub.V)
        # the stopping rule certifies the plan that would be executed: the retailer's answer, confirmed
        certifier = Certifier.for_agents(negotiators, plan=lambda z, answers: plan_from_answer(answers[0], ctx, vendor_negs),
                                         blocks=blocks)
        result = ConsensusADMM(opts).negotiate(negotiators, pub.shape, z0=z0, prices0=prices0, on_round=on_round,
                                               certifier=certifier, blocks=blocks)
        if result.certified and result.certified_plan is not None:
            plan = result.certified_plan  # the plan the stop certified (this round's)
        else:
            plan = executable_plan(result, ctx, vendor_negs)
            if certify:
                result.certificate = certify_plan(negotiators, result.prices, plan, blocks=blocks)
        return plan, result
    finally:
        for neg in negotiators:
            if hasattr(neg, "close"):
                neg.close()


@dataclass(frozen=True)
class NegotiationState:
    """Where a negotiation ended, by party: the consensus plan, each party's prices (the retailer's
    over the whole plan, each vendor's over its block) and ``rho``. Another negotiation of the same
    week may start from it (``negotiate_efficient_plan(start=...)``)."""

    z: np.ndarray
    prices: dict[str, np.ndarray]
    rho: float

    @staticmethod
    def of(result: NegotiationResult, vendors: Sequence[str]) -> "NegotiationState":
        """The state of ``result``, a negotiation among the retailer and ``vendors`` (in that order)."""
        return NegotiationState(result.z, {"retailer": result.prices[0], **dict(zip(vendors, result.prices[1:]))}, result.rho)


def _in_plan_order(negotiators: Sequence[Any], indices: Sequence[int], V: int) -> list[Any]:
    """Vendors' negotiators by plan position (None for a vendor not in the negotiation)."""
    out: list[Any] = [None] * V
    for neg, v in zip(negotiators, indices):
        out[v] = neg
    return out


class CPPPolicy:
    """The negotiated plan as a committed PO; no transfer. See the module docstring."""

    name = "cpp"

    def __init__(self, fallback: str = "jit", warm_start: bool = True, certify: bool = False,
                 answers: dict[str, Any] | None = None, privacy: dict[str, Any] | None = None, **admm: Any) -> None:
        if fallback not in ("jit", "none"):
            raise FlosimError(f"policy 'cpp': fallback must be 'jit' or 'none', got {fallback!r}")
        if not isinstance(certify, bool):
            raise FlosimError(f"policy 'cpp': certify must be true or false, got {certify!r}")
        self.fallback = fallback
        self.warm_start = bool(warm_start)
        self.certify = certify
        self.answers = answer_options(answers)
        self.privacy = ViewRecorder(privacy_options(privacy, "policy 'cpp'"))
        self.options = admm_options({**admm, **self.privacy.admm_update()})
        self._last: NegotiationResult | None = None

    @property
    def shown(self) -> list[Any]:
        """What the policy showed the retailer, week by week (with ``privacy: {record: true}``)."""
        return self.privacy.shown

    def decide(self, ctx: PlanningContext) -> Decision:
        warm = self._last if self.warm_start else None
        plan, result = negotiate_efficient_plan(ctx, self.options, warm=warm, certify=self.certify, answers=self.answers,
                                                wrap_vendor=self.privacy.vendor_wrapper(ctx))
        self._last = result
        diagnostics: dict[str, Any] = result.diagnostics()
        diagnostics["warm_start"] = warm is not None and warm.converged
        if result.converged:
            committed = True
        elif self.fallback == "jit":
            plan = ctx.retailer.preferred_plan().plan
            committed = False
            diagnostics["fallback"] = "jit"
        else:
            committed = False
            diagnostics["fallback"] = "none"
        retailer = ctx.retailer.evaluate(plan)
        vendors = evaluate_blocks(ctx, plan)
        self.privacy.keep(ctx.week, result, plan, 0.0)
        diagnostics["vendor_plan_feasible"] = all(c.feasible for c in vendors.values())
        if result.certificate is not None and not result.converged and not self.privacy.options.noise.active:
            # the lower bound on first best stands; the plan it is compared with is the executed one
            # (not with noisy answers: the bound is then on the vendor's perturbed cost, the costs here true)
            upper = retailer.total + sum(c.total for c in vendors.values())
            diagnostics.update(result.certificate.with_upper(upper).as_dict())
        return Decision(
            plan=plan,
            committed=committed,
            planned={"retailer": retailer.total, **{name: c.total for name, c in vendors.items()}},
            diagnostics=diagnostics,
        )


def evaluate_blocks(ctx: PlanningContext, plan: np.ndarray, **options: Any) -> dict[str, Any]:
    """Each vendor's cost of its block of ``plan`` (``options``: e.g. ``allow_short=True``), by name."""
    return {name: agent.evaluate(plan[ctx.public.vendor_index(name)], **options) for name, agent in ctx.vendors.items()}
