"""CPP-VCG (Flo Pro) and the split-savings comparator (docs/model.md, "Policies" and "Transfers").

``cpp-vcg``: each week the agents negotiate the efficient plan ``x*`` (CPP, or a central solve when
``solver: central``); the PO is ``x*``'s first week, and each vendor ``v`` pays its pivot ``T_v``: the
cost its influence puts on the others. Its counterfactual is ``x^{-v}``, the plan chosen with ``v``'s
preferences ignored (a negotiation among the retailer and the other vendors, in which the retailer
orders from ``v`` as JIT would; with one vendor, the retailer's own plan ``x^J``), and

    T_v = S_-v(x*_t) - S_-v(x^{-v}_t)

with ``S_-v(po)`` the least cost of the retailer and the other vendors when this week's PO is ``po`` and
the later weeks are re-planned together without ``v`` (a negotiation with the first week fixed on each
agent's side; at ``x^{-v}_t`` that is the counterfactual's own value). The retailer's own part is
priced as the cost-benefit transfer of :mod:`policies.cbt` (the binding week plus the certainty
equivalent of its continuation over demand scenarios); the joint re-planning adds, on the forecast,
what the other vendors' coordination changes. With one vendor ``S_-v`` is the retailer alone and
``T_v`` is exactly the CBT. Only the binding week enters: an earlier version charged the other
vendors' whole planned blocks, and a vendor could then shift the later, non-binding weeks to its
competitor by inflating its costs and pay less (the audit found gains of up to 0.15 of a week's
social cost). Truthful answers are a dominant strategy for each vendor: its cost plus ``T_v`` equals
the social cost up to terms it cannot influence (measured: with exact solves no vendor lie pays on
``two-vendors``; with CPP none gains more than 2.7e-4 of social cost; docs/vendors.md). ``payee``:
who receives ``T_v``: ``retailer`` (default, all of it) or ``each`` (every other party its own term).
``two_way: false`` (default) clamps each ``T_v`` at zero: a vendor never receives money for its
own pivot (under ``payee: each`` it may receive its term of another vendor's).

``split-savings``: the same efficient plan, but the binding week's planned saving over JIT (the
vendors' reported savings less the retailer's extra cost) is split through the transfers: the
retailer keeps ``share`` of it, the vendors the rest, each in proportion to how much the plan changes
its costs (:func:`split_payment`). Its
transfer depends on the vendors' reported costs, so it is *not* incentive compatible: the incentive
audit shows lies that pay.

Parameters (scenario ``policies: {cpp-vcg: {...}}`` or keyword arguments): ``discount`` (delta),
``risk_aversion`` (gamma, 0 = expectation), ``scenarios`` (demand paths for the certainty equivalent),
``transfer`` (the transfer rule and its options, :mod:`policies.transfer_rules`: ``{rule: one-way}``
by default; ``two-way``, ``vcg-both``, ``expected-externality`` with a ``prior``, ``split-savings``; and
``continuation``, how a pivot values the retailer's continuation, :mod:`policies.cbt`: ``forecast`` by
default (:func:`default_continuation`), ``paths`` or ``paths-whole``),
``two_way`` (an alias of ``transfer: {rule: two-way}``), ``payee`` (``retailer`` or ``each``; an alias
of ``transfer.payee``), ``counterfactual`` (``coordinated`` or ``jit-orders``: each vendor's pivot
counterfactual, :data:`COUNTERFACTUALS`), ``remedy`` (``none``, ``refund`` or ``damages``: what a PO
delivered short does to the transfer, :mod:`sim.execution`), ``solver`` (``cpp`` or
``central``), ``warm_start`` (default true: each week's negotiation of ``x*`` starts from last week's
agreement shifted a week, as ``cpp``'s does, and each vendor's counterfactual from last week's
counterfactual; false: every negotiation starts cold), ``warm_tail`` (the horizon's last weeks whose
plan and prices keep their place in a warm start instead of shifting; default half the horizon,
:func:`policies.cpp.shift_week`), ``commitment`` (``{weeks: k, band: b}``: the first ``k`` weeks of every agreed plan
bind both parties within ``±b``, :mod:`sim.model.commitment`; default none, the weekly commitment of
``k = 1``; the negotiation, the JIT counterfactual and the transfer's continuations all plan inside
the commitments already agreed), ``cpp`` (ADMM options, and ``answers``, the agents' best-response settings; validated
when the policy is built), ``privacy`` (``cpp-vcg`` only: noisy vendor answers, a neutral
coordinator, a record of what the retailer was shown; :mod:`policies.privacy`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from sim.model.commitment import CommitmentSettings, PlanBounds, agreed_box, commitment_settings
from sim.model.decision import Decision, PlanningContext, check_remedy
from policies.cbt import CBTBreakdown, TransferPricer, check_continuation, cost_benefit_transfer, demand_scenarios
from policies.cpp import NegotiationState, evaluate_blocks
from policies.jit import jit_outcome
from policies.privacy import ViewRecorder, privacy_options
from policies.transfer_rules import (PAYEES, PivotTerms, TransferSettings, WeekInputs,  # noqa: F401 (PAYEES, split_payment: re-exported)
                                     distribute, expected_externalities, retailer_pivot, settle, split_payment,
                                     transfer_settings)
from sim.parties.oracle import joint_plan
from sim.negotiation.best_response import BestResponseOptions
from sim.negotiation.coordinator import ADMMOptions
from sim.model.errors import FlosimError


def default_continuation(risk_aversion: float) -> str:
    """The valuation of the retailer's continuation ``cpp-vcg`` uses when ``transfer.continuation`` is
    left out: ``forecast``, under which each vendor's payoff is the planning objective (the social cost
    of the plan chosen on the forecast) up to a term it cannot move, so truthfulness, the mechanism's
    promise, holds exactly (up to the negotiation's tolerance) and one-way's clamp never binds; the
    retailer is then made whole on the forecast rather than in expectation over the demand paths, and
    the vendor pays more (docs/model.md, "Valuing the continuation"). With ``risk_aversion > 0``:
    ``paths``, since a certainty equivalent needs the paths (``forecast`` given explicitly with a risk
    aversion is an error naming ``transfer.continuation``)."""
    return "paths" if risk_aversion > 0 else "forecast"


def efficient_plan(ctx: PlanningContext, solver: str, admm: ADMMOptions,
                   answers: BestResponseOptions | None = None, *, wrap_vendor: Callable[[str, Any], Any] | None = None,
                   on_result: Callable[[Any], None] | None = None,
                   vendors: Sequence[str] | None = None, start: Any = None,
                   first_week: np.ndarray | None = None, warm: Any = None,
                   warm_tail: int = 1) -> tuple[np.ndarray | None, dict[str, Any]]:
    """``x*`` by CPP negotiation (default) or the central oracle; ``None`` if CPP did not converge.
    ``admm``, ``answers``: the negotiation's and the agents' settings (see :func:`cpp_settings`);
    ``wrap_vendor(name, negotiator)``: wraps a vendor's negotiator (noisy answers); ``on_result``:
    called with the negotiation's result (its transcript, prices). ``vendors``: the vendors whose
    preferences count (default all; the others' blocks are the retailer's alone to decide: a pivot's
    counterfactual). ``start``: a :class:`policies.cpp.NegotiationState` of the same week to start from.
    ``first_week`` ``[V, F, K]``: this week's PO given, the later weeks planned. ``warm``: last week's
    result of the same negotiation (its plan and prices shifted a week, and its ``rho``, start this one:
    :func:`policies.cpp.negotiate_efficient_plan`; ``warm_tail``: the horizon's last weeks that keep
    their place, :func:`policies.cpp.shift_week`); ignored by a central solve."""
    names = list(ctx.vendors) if vendors is None else list(vendors)
    if not names:  # the retailer alone: its own plan, no negotiation needed
        if first_week is not None:
            return ctx.retailer.cost_with_first_week(first_week).plan, {"solver": "retailer-alone"}
        return ctx.retailer.preferred_plan().plan, {"solver": "retailer-alone"}
    if solver == "central":
        return joint_plan(ctx.retailer, {n: ctx.vendors[n] for n in names}, first_week).plan, {"solver": "central"}
    from policies.cpp import negotiate_efficient_plan

    plan, result = negotiate_efficient_plan(ctx, admm, answers=answers, wrap_vendor=wrap_vendor, vendors=names, start=start,
                                            first_week=first_week, warm=warm, warm_tail=warm_tail)
    if on_result is not None:
        on_result(result)
    diag = {"solver": "cpp", "iterations": result.iterations, "converged": result.status == "converged", "status": result.status}
    return (plan if result.status == "converged" else None), diag


def _check_params(name: str, discount: float, risk_aversion: float, scenarios: int, solver: str, payee: str = "retailer") -> None:
    if not 0 < discount <= 1:
        raise FlosimError(f"policy '{name}': discount must be in (0, 1], got {discount}")
    if risk_aversion < 0:
        raise FlosimError(f"policy '{name}': risk_aversion must be >= 0, got {risk_aversion}")
    if scenarios < 1:
        raise FlosimError(f"policy '{name}': scenarios must be >= 1, got {scenarios}")
    if solver not in ("cpp", "central"):
        raise FlosimError(f"policy '{name}': solver must be 'cpp' or 'central', got {solver!r}")
    if payee not in PAYEES:
        raise FlosimError(f"policy '{name}': payee must be one of {', '.join(PAYEES)}, got {payee!r}")


def cpp_settings(name: str, cpp: dict[str, Any] | None) -> tuple[ADMMOptions, BestResponseOptions | None]:
    """A policy's ``cpp`` mapping, validated once when the policy is built (bad settings are errors
    then, not at its first decision): ADMM options, and ``answers``, the agents' best-response settings."""
    from policies.cpp import admm_options, answer_options

    cpp = dict(cpp or {})
    answers = cpp.pop("answers", None)
    admm = admm_options(cpp, f"policy '{name}'")
    if not admm.certify:
        # the policies commit only a certified agreement: without checks every week would stop on
        # residuals and quietly fall back to JIT
        raise FlosimError(f"policy '{name}': cpp.certify = false would stop every negotiation on residuals "
                          "(not certified), and the policy commits only certified plans, so every week would "
                          "fall back to JIT; leave certify on (loosen gap_tol instead)")
    return admm, answer_options(answers, f"policy '{name}'")


#: Units of its block below which a vendor counts as having delivered in full (the execution's
#: ``sim.execution.SHORT_UNITS``, which this floor cannot import): its agreed pivot stands.
FULL_UNITS = 1e-6

#: A vendor's pivot counterfactual ``x^{-v}`` (its preferences ignored): ``coordinated``, the retailer and
#: the other vendors agree on a plan and the retailer orders from ``v`` whatever suits it at ``v``'s
#: wholesale price; ``jit-orders``, the same with ``v``'s part of this week's PO held at the retailer's
#: JIT order (what it would order from ``v`` today). Neither depends on ``v``'s reports; with one vendor
#: both are the retailer's own plan ``x^J`` (the CBT).
COUNTERFACTUALS = ("coordinated", "jit-orders")


def pivot_counterfactual(ctx: PlanningContext, vendor: str, jit_plan: np.ndarray, kind: str, solver: str,
                         admm: ADMMOptions, answers: BestResponseOptions | None = None,
                         start: Any = None, warm: Any = None,
                         on_result: Callable[[Any], None] | None = None,
                         warm_tail: int = 1) -> tuple[np.ndarray | None, dict[str, Any]]:
    """``x^{-v}`` of ``vendor`` (``kind``: one of :data:`COUNTERFACTUALS`): the plan of the retailer and the
    other vendors with ``vendor``'s preferences ignored; ``None`` if the negotiation did not converge.
    Without other vendors it is the retailer's own plan ``jit_plan``. ``start``: a state to start the
    negotiation from; never one that carries ``vendor``'s reports (the main negotiation's): ``x^{-v}``
    would then depend on them, and where many counterfactual POs are nearly equally cheap (as for
    ``two-vendors``' sonora) a lie could choose among them (:class:`CPPVCGPolicy` starts it cold).
    ``warm``: last week's result of the same counterfactual's negotiation, shifted a week (it was
    negotiated without ``v``, before this week's reports; ``warm_tail`` as for :func:`efficient_plan`);
    ``on_result``: called with the negotiation's result."""
    others = [u for u in ctx.vendors if u != vendor]
    if not others:
        return jit_plan, {}
    held = None
    if kind == "jit-orders":  # v's part of this week's PO: the retailer's JIT order; the rest free
        held = np.full(jit_plan[:, 0].shape, np.nan)
        i = ctx.public.vendor_index(vendor)
        held[i] = jit_plan[i, 0]
    return efficient_plan(ctx, solver, admm, answers, vendors=others, start=start, first_week=held, warm=warm,
                          on_result=on_result, warm_tail=warm_tail)


@contextmanager
def planning_within(ctx: PlanningContext, box: PlanBounds | None) -> Iterator[None]:
    """Within the block, the agents of ``ctx`` plan inside ``box`` (``[V, H, F, K]``; what agreeing a plan
    would commit, :func:`sim.model.commitment.agreed_box`) instead of the commitments their states hold;
    their states are restored after it. ``box`` None, or an agent without a state it can re-observe
    (an outside agent), changes nothing for that agent."""
    if box is None or box is ctx.bounds:
        yield
        return
    kept: list[tuple[Any, Any]] = []
    retailer = ctx.retailer
    try:
        if hasattr(retailer, "observe") and getattr(retailer, "_state", None) is not None:
            kept.append((retailer, (retailer.state, retailer.forecast)))
            retailer.observe(replace(retailer.state, bounds=box), retailer.forecast)
        for agent in ctx.vendors.values():
            if hasattr(agent, "observe") and getattr(agent, "_state", None) is not None:
                kept.append((agent, (agent.state,)))
                agent.observe(replace(agent.state, bounds=box.block(agent.index)))
        yield
    finally:
        for agent, args in kept:
            agent.observe(*args)


def pivot_options(admm: ADMMOptions, main: Any) -> ADMMOptions:
    """The options of a vendor's pivot negotiations (``x^{-v}`` and the joint re-plan at ``x*_t``):
    ``admm`` with their stop on the absolute gap the main negotiation ``main`` was allowed,
    ``gap_tol`` times its certified lower bound on the social cost. Their own objective ``S_-v``
    includes the retailer's wholesale payments to ``v``, which no revenue of ``v`` cancels, so it is
    1.3 to 1.8 times the social cost on ``two-vendors`` and the relative ``gap_tol`` would let each
    of them err by that much more than the main plan, while ``T_v`` is a difference of their values.
    ``admm`` itself when ``main`` carries no certified positive lower bound (a central solve) or the
    options already stop on an absolute gap."""
    cert = getattr(main, "certificate", None)
    if admm.gap_abs is not None or cert is None or not np.isfinite(cert.lower) or cert.lower <= 0:
        return admm
    return admm.model_copy(update={"gap_abs": admm.gap_tol * float(cert.lower)})


@dataclass(frozen=True)
class Pivot:
    """One vendor's pivot this week: the terms of ``T_v`` by party, the raw total and what is paid."""

    vendor: str
    terms: dict[str, float]  # party -> that party's extra cost at x* over x^{-v} (the retailer's as its CBT)
    raw: float
    paid: float
    cbt: CBTBreakdown  # the retailer's term, in detail


def vendor_pivot(ctx: PlanningContext, vendor: str, plan: np.ndarray, counterfactual: np.ndarray, *,
                 discount: float, risk_aversion: float, scenarios: int, two_way: bool,
                 joint_at_plan: np.ndarray | None = None, paths: np.ndarray | None = None,
                 commit: CommitmentSettings | None = None, continuation: str = "paths") -> Pivot:
    """``T_v`` of ``vendor`` for moving from ``counterfactual`` (``x^{-v}``) to ``plan`` (``x*``); see the
    module docstring. ``joint_at_plan``: with other vendors, the plan the retailer and the other
    vendors agree on with this week's PO fixed at ``plan``'s (the later weeks re-planned without
    ``vendor``); None with one vendor (the retailer alone re-plans: the CBT). ``paths``: the week's
    demand scenarios (:func:`policies.cbt.demand_scenarios`; default: drawn now). ``commit``: the
    mechanism's mutual commitment: the retailer's continuation after ``plan`` stays inside what agreeing
    it commits (:class:`policies.cbt.TransferPricer`). ``continuation``: how the retailer's continuation
    is valued (:data:`policies.cbt.CONTINUATIONS`; with ``forecast`` and ``discount`` 1,
    ``T_v = S_-v(x*_t) - S_-v(x^{-v}_t)`` with every term on the forecast)."""
    pricer = TransferPricer(ctx, counterfactual, discount=discount, risk_aversion=risk_aversion, scenarios=scenarios,
                            two_way=True, paths=paths, commit=commit, continuation=continuation)
    cbt = pricer.price(plan)
    terms = {"retailer": cbt.raw}
    if joint_at_plan is not None:
        # S_-v(po): the retailer's and the other vendors' least cost with the PO fixed and the later
        # weeks re-planned together. The CBT prices the retailer's side with its own continuation; the
        # joint continuation adds the difference, on the forecast (zero with one vendor). The retailer's
        # own continuation of each PO is the pricer's, already solved (``completed`` caches it)
        r = ctx.retailer
        terms["retailer"] += ((r.evaluate(joint_at_plan).total - pricer.completed(plan[:, 0], plan).total)
                              - (r.evaluate(counterfactual).total - pricer.completed(counterfactual[:, 0]).total))
        for name, agent in ctx.vendors.items():
            if name != vendor:
                u = ctx.public.vendor_index(name)
                terms[name] = agent.evaluate(joint_at_plan[u]).total - agent.evaluate(counterfactual[u]).total
    raw = float(sum(terms.values()))
    return Pivot(vendor, terms, raw, raw if two_way else max(raw, 0.0), cbt)


def pivot_transfers(pivots: Sequence[Pivot], payee: str) -> dict[str, float]:
    """The week's transfers (what each party pays) from the vendors' pivots as computed (``Pivot.paid``:
    clamped or not): each vendor pays what its pivot asks; the retailer receives all of it (``payee:
    retailer``) or every party its own term, scaled like the clamped total (``payee: each``). Budget
    balanced. The rules proper are :mod:`policies.transfer_rules`."""
    return distribute([PivotTerms(p.vendor, p.terms, p.raw) for p in pivots], {p.vendor: p.paid for p in pivots}, payee)


class CPPVCGPolicy:
    name = "cpp-vcg"

    def __init__(
        self,
        discount: float = 1.0,
        risk_aversion: float = 0.0,
        scenarios: int = 16,
        two_way: bool = False,
        solver: str = "cpp",
        payee: str | None = None,
        cpp: dict[str, Any] | None = None,
        privacy: dict[str, Any] | None = None,
        counterfactual: str = "coordinated",
        remedy: str = "none",
        transfer: dict[str, Any] | TransferSettings | None = None,
        commitment: dict[str, Any] | CommitmentSettings | None = None,
        warm_start: bool = True,
        warm_tail: int | None = None,
    ) -> None:
        #: what an agreed plan commits beyond its PO (None: the weekly commitment; :mod:`sim.model.commitment`)
        self.commit = commitment_settings(commitment, f"policies.{self.name}.commitment")
        _check_params(self.name, discount, risk_aversion, scenarios, solver, "retailer" if payee is None else payee)
        if counterfactual not in COUNTERFACTUALS:
            raise FlosimError(f"policy '{self.name}': counterfactual must be one of {', '.join(COUNTERFACTUALS)}, "
                              f"got {counterfactual!r}")
        self.remedy = check_remedy(f"policy '{self.name}'", remedy)
        self.discount, self.risk_aversion, self.scenarios = discount, risk_aversion, scenarios
        #: the transfer rule and its options (``transfer``; ``two_way`` and ``payee`` are aliases)
        self.transfer = transfer_settings(transfer, two_way=two_way, payee=payee, where=f"policy '{self.name}'").resolved(
            default_continuation(risk_aversion))
        self.two_way, self.solver, self.payee = self.transfer.rule != "one-way", solver, self.transfer.payee
        self.counterfactual = counterfactual
        check_continuation(self.name, self.transfer.continuation, risk_aversion)
        if self.remedy != "none" and self.transfer.rule not in ("one-way", "two-way"):
            # a remedy re-prices the vendors' pivots on the delivered PO (:meth:`repriced`); the other rules'
            # terms (the retailer's pivot, expected externalities, split savings) are not re-priced
            raise FlosimError(f"policy '{self.name}': remedy {self.remedy!r} works with transfer.rule one-way or "
                              f"two-way, got transfer.rule {self.transfer.rule!r}")
        self._centre: Any = None  # the scenario's private data: the expected-externality prior's centre
        self.admm, self.answers = cpp_settings(self.name, cpp)
        self.privacy = ViewRecorder(privacy_options(privacy, f"policy '{self.name}'"))
        if self.privacy.admm_update():
            self.admm = self.admm.model_copy(update=self.privacy.admm_update())
        if not isinstance(warm_start, bool):
            raise FlosimError(f"policy '{self.name}': warm_start must be true or false, got {warm_start!r}")
        #: start each week's main negotiation from last week's agreement (:meth:`warm`)
        self.warm_start = warm_start
        if warm_tail is not None and (isinstance(warm_tail, bool) or not isinstance(warm_tail, int) or warm_tail < 1):
            raise FlosimError(f"policy '{self.name}': warm_tail must be a whole number of weeks, at least 1, "
                              f"or left out (half the horizon), got {warm_tail!r}")
        #: the horizon's last weeks whose plan and prices keep their place in a warm start (None: half the
        #: horizon; :func:`policies.cpp.shift_week`)
        self.warm_tail = warm_tail
        self._last: tuple[int, Any] | None = None  # (week, result) of the last converged main negotiation
        self._last_cf: dict[str, tuple[int, Any]] = {}  # each vendor's last counterfactual negotiation

    @property
    def continuation(self) -> str:
        """How the pivots value the retailer's continuation, as in effect (``transfer.continuation``, or
        the default :func:`default_continuation` when it was left out)."""
        return str(self.transfer.continuation)

    def parameters(self) -> dict[str, Any]:
        """The pricing parameters as checked and in effect (defaults resolved), keyed as in the scenario's
        ``policies.cpp-vcg``: what a run records to say which transfer ran (``transfer.continuation``
        is the valuation used, whether given or the default)."""
        return {"discount": self.discount, "risk_aversion": self.risk_aversion, "scenarios": self.scenarios,
                "solver": self.solver, "counterfactual": self.counterfactual, "remedy": self.remedy,
                "transfer": self.transfer.model_dump(exclude_none=True),
                "commitment": None if self.commit is None else self.commit.model_dump()}

    @property
    def shown(self) -> list[Any]:
        """What the policy showed the retailer, week by week (with ``privacy: {record: true}``)."""
        return self.privacy.shown

    def bind_scenario(self, scenario: Any) -> None:
        """Called by :func:`policies.registry.make_policy`: the scenario's parameters are the centre of the
        ``expected-externality`` rule's prior (public in the simulator; the parties report through their agents)."""
        self.commit = commitment_settings(self.commit, f"policies.{self.name}.commitment", scenario.horizon)
        if self.transfer.rule == "expected-externality":
            from sim.model.data import split_scenario

            _, r_data, v_data = split_scenario(scenario)
            self._centre = (r_data, v_data)

    def settlement(self, ctx: PlanningContext, plan: np.ndarray, pivots: Sequence[Pivot],
                   savings: dict[str, float], retailer_extra: float) -> tuple[Any, dict[str, Any]]:
        """The week's transfers under the rule (:func:`policies.transfer_rules.settle`) from the vendors'
        pivots, the reported savings of the binding week over JIT and, as the rule needs, the retailer's
        pivot or the expected externalities; with the rule's diagnostics."""
        rule, diag = self.transfer.rule, {}
        inputs = WeekInputs(pivots=[PivotTerms(p.vendor, p.terms, p.raw) for p in pivots], savings=savings,
                            retailer_extra=retailer_extra)
        if rule == "vcg-both":
            index = {n: ctx.public.vendor_index(n) for n in ctx.vendors}
            rp = retailer_pivot(ctx.vendors, plan[:, 0], self.discount, index)
            inputs = replace(inputs, retailer_pivot=rp.total)
            diag["retailer_pivot"] = rp.total
        elif rule == "expected-externality":
            if self._centre is None:
                raise FlosimError(f"policy '{self.name}': transfer rule 'expected-externality' needs the scenario "
                                  "(the prior's centre): build the policy with policies.registry.make_policy, or call "
                                  "bind_scenario(scenario)")
            xi = expected_externalities(ctx, self.transfer.prior, self._centre, ctx.rng.spawn(1)[0])
            inputs = replace(inputs, externalities=xi)
            diag.update({f"expected_externality_{p}": v for p, v in xi.items()})
        done = settle(self.transfer, inputs)
        diag.update(transfer_rule=rule, transfer_continuation=self.continuation, transfer_balance=done.balance,
                    transfer_clamped=len(done.clamped))
        return done, diag

    def warm(self, ctx: PlanningContext) -> Any:
        """The result this week's main negotiation starts from: last week's converged main negotiation
        (its plan and prices shifted a week, and its ``rho``: a rolling horizon changes little from week
        to week), when ``warm_start`` is on and it was the week just before ``ctx.week``; else None (a
        cold start). A vendor's counterfactual ``x^{-v}`` never starts from the main negotiation (it
        carries ``v``'s reports, :func:`pivot_counterfactual`), but from last week's ``x^{-v}``, which
        was negotiated without ``v``, under the same rule."""
        return self._previous(self._last, ctx)

    def tail(self, ctx: PlanningContext) -> int:
        """The horizon's last weeks whose plan and prices keep their place when a negotiation starts
        from last week's (``warm_tail``, or half the horizon: :func:`policies.cpp.shift_week`)."""
        if self.warm_tail is not None:
            return self.warm_tail
        return max(1, int(ctx.public.shape[1]) // 2)

    def _previous(self, last: tuple[int, Any] | None, ctx: PlanningContext) -> Any:
        """``last`` (week, result) if warm starts are on and it is of the week before ``ctx.week``."""
        if not self.warm_start or last is None or self.solver != "cpp":
            return None
        week, result = last
        return result if week == ctx.week - 1 and result.converged else None

    def decide(self, ctx: PlanningContext) -> Decision:
        jit = jit_outcome(ctx)
        negotiated: list[Any] = []
        warm = self.warm(ctx)
        self._last = None
        tail = self.tail(ctx)
        plan, diag = efficient_plan(ctx, self.solver, self.admm, self.answers,
                                    wrap_vendor=self.privacy.vendor_wrapper(ctx), on_result=negotiated.append, warm=warm,
                                    warm_tail=tail)
        result = negotiated[0] if negotiated else None
        if result is not None and result.converged:
            self._last = (ctx.week, result)
        if self.solver == "cpp":
            diag["warm_start"] = warm is not None
        if plan is None:  # never a silent wrong answer: flag the week and fall back to JIT
            self.privacy.keep(ctx.week, result, jit.plan, 0.0)
            return Decision(jit.plan, {}, False, jit.planned(), {**diag, "fallback": "jit"})
        # every vendor's pivot (and the ex-ante comparison with JIT) on the same demand scenarios
        paths = demand_scenarios(ctx, self.scenarios)
        pivots, counterfactuals = [], {}
        pivot_admm = pivot_options(self.admm, result)  # each pivot's error within the main plan's
        # the joint re-plan at x*_t starts from the main agreement (it depends on x* anyway)
        start = NegotiationState.of(result, list(ctx.vendors)) if result is not None else None
        last_cf, self._last_cf = self._last_cf, {}
        for name in ctx.vendors:
            others = [u for u in ctx.vendors if u != name]
            # without the other vendors the counterfactual is the retailer alone: its JIT plan. Never
            # from this week's main agreement (it carries v's reports: see pivot_counterfactual); from
            # last week's counterfactual, negotiated without v, when warm starts are on
            kept: list[Any] = []
            counterfactual, cdiag = pivot_counterfactual(ctx, name, jit.plan, self.counterfactual, self.solver, pivot_admm,
                                                         self.answers, warm=self._previous(last_cf.get(name), ctx),
                                                         on_result=kept.append, warm_tail=tail)
            if kept and kept[0].converged:
                self._last_cf[name] = (ctx.week, kept[0])
            # S_-v(x*_t): the later weeks re-planned without v inside what agreeing x* commits (as the
            # retailer's own continuation is priced), so v pays for the obligations its influence adds
            with planning_within(ctx, self._agreed(ctx, plan)):
                joint, jdiag = (None, {}) if not others or counterfactual is None else efficient_plan(
                    ctx, self.solver, pivot_admm, self.answers, vendors=others, start=start, first_week=plan[:, 0])
            if counterfactual is None or (others and joint is None):  # a pivot's negotiation failed: no transfer
                self.privacy.keep(ctx.week, result, jit.plan, 0.0)
                failed = cdiag if counterfactual is None else jdiag
                return Decision(jit.plan, {}, False, jit.planned(),
                                {**diag, "fallback": "jit", "pivot_failed": name, "pivot_status": failed.get("status", "")})
            counterfactuals[name] = counterfactual
            pivots.append(vendor_pivot(ctx, name, plan, counterfactual, two_way=self.two_way, joint_at_plan=joint,
                                       paths=paths, continuation=self.transfer.continuation, **self.pricing))
        r_eff = ctx.retailer.evaluate(plan)
        v_eff = evaluate_blocks(ctx, plan)
        savings, retailer_extra = binding_week_savings(ctx, jit, r_eff, v_eff)
        settled, rule_diag = self.settlement(ctx, plan, pivots, savings, retailer_extra)
        transfers = settled.transfers
        diag.update(rule_diag)
        # the retailer's expected extra cost of x* over JIT (immediate + mean of the continuation) over the
        # demand paths, whatever the transfer's valuation (under ``forecast``: each path's cost from one solve)
        measure = "paths" if self.transfer.continuation == "paths" else "paths-whole"
        vs_jit = pivots[0].cbt if len(pivots) == 1 and self.transfer.continuation == measure else cost_benefit_transfer(
            ctx, plan, jit.plan, two_way=True, paths=paths, continuation=measure, **self.pricing)
        paid_total = float(sum(settled.paid.values()))
        self.privacy.keep(ctx.week, result, plan, paid_total)
        if len(pivots) == 1:  # the one-vendor names of earlier versions
            cbt = pivots[0].cbt
            diag.update(cbt_immediate=cbt.immediate, cbt_future_ce=cbt.future_ce, cbt_future_mean=cbt.future_mean,
                        cbt_raw=pivots[0].raw)
        for p in pivots:
            diag[f"pivot_raw_{p.vendor}"] = p.raw
            diag[f"pivot_paid_{p.vendor}"] = settled.paid.get(p.vendor, 0.0)
        # ex ante participation: expected gain over JIT from this week's decision, per party
        diag["ex_ante_margin_retailer"] = -transfers.get("retailer", 0.0) - (vs_jit.immediate + vs_jit.future_mean)
        for name, cost in v_eff.items():
            diag[f"ex_ante_margin_{name}"] = (jit.vendors[name].total - cost.total) - transfers.get(name, 0.0)
        if len(pivots) > 1:
            # the part of a vendor's margin its pivot does not control: its JIT cost less its cost of
            # shipping its block of the counterfactual. With exact solves and known demand the rest of
            # the margin is >= 0 (two-way, payee retailer; docs/vendors.md, "Participation")
            for p, cf in zip(pivots, counterfactuals.values()):
                i = ctx.public.vendor_index(p.vendor)
                diag[f"counterfactual_margin_{p.vendor}"] = jit.vendors[p.vendor].total - ctx.vendors[p.vendor].evaluate(cf[i]).total
        diag.update(planned_social=r_eff.total + sum(c.total for c in v_eff.values()),
                    jit_planned_social=sum(jit.planned().values()))
        planned = {"retailer": r_eff.total + transfers.get("retailer", 0.0),
                   **{name: c.total + transfers.get(name, 0.0) for name, c in v_eff.items()}}
        agreed = {p.vendor: p for p in pivots}
        return Decision(plan, transfers, True, planned, diag, remedy=self.remedy, commit=self.commit,
                        reprice=lambda delivered, shocked=None: self.repriced(
                            ctx, plan, counterfactuals, paths, delivered, shocked, agreed=agreed, admm=pivot_admm,
                            start=start),
                        counterfactual={name: cf[:, 0].copy() for name, cf in counterfactuals.items()})

    @property
    def pricing(self) -> dict[str, Any]:
        """The CBT settings every transfer of this policy is priced with (its pivots, their re-pricing and
        the retailer's ex-ante comparison); the valuation and the clamp are chosen per call."""
        return {"discount": self.discount, "risk_aversion": self.risk_aversion, "scenarios": self.scenarios,
                "commit": self.commit}

    def _agreed(self, ctx: PlanningContext, plan: np.ndarray) -> PlanBounds | None:
        """The box agreeing ``plan`` leaves this week's continuations (the commitments held, and the new ones)."""
        return agreed_box(ctx.bounds, plan, self.commit)

    def repriced(self, ctx: PlanningContext, plan: np.ndarray, counterfactuals: dict[str, np.ndarray],
                 paths: np.ndarray, delivered: np.ndarray, shocked: dict[str, np.ndarray] | None = None, *,
                 agreed: dict[str, Pivot] | None = None, admm: ADMMOptions | None = None,
                 start: Any = None) -> dict[str, float]:
        """The week's transfers recomputed on the delivered PO ``delivered`` ``[V, F, K]`` (remedies
        ``refund`` and ``damages``, :mod:`sim.execution`): each vendor's pivot on the same demand
        scenarios, with its own block of the PO as it delivered it and the others' as ordered (a vendor
        answers for its own shortfall only), against its counterfactual under the same shock: its block
        of ``x^{-v}``'s first week less ``shocked[v]`` ``[F, K]``, what the shock would have made it short
        on JIT terms (with other vendors, their later weeks re-planned with that first week). With one
        vendor, known demand and two-way transfers, a vendor then pays ``R(d) - R(c)`` and bears
        ``S(d) - R(c)``: the social cost of what was delivered less a term none of its reports moves
        (``c`` is the retailer's JIT PO less the JIT vendor's shortfall under the realised capacity),
        so truthful reports stay optimal, and the shock's own effect on the retailer is the
        retailer's, as under JIT (one-way: where ``R(d) < R(c)`` the vendor pays nothing and bears
        its own cost; the argument holds where that clamp does not bind). ``agreed``: the pivots the decision priced; a vendor
        that delivered its block in full and whose counterfactual the shock left whole keeps its own
        (re-solving it would move its transfer by the negotiation's tolerance alone). ``admm``,
        ``start``: the pivot negotiations' options and starting state, as the decision's (default the
        policy's options, a cold start)."""
        admm = self.admm if admm is None else admm
        shocked = shocked or {}
        pivots = []
        for name in ctx.vendors:
            v = ctx.public.vendor_index(name)
            ordered = np.maximum(np.asarray(plan[v, 0], dtype=float), 0.0)
            missing = float(np.maximum(ordered - np.asarray(delivered[v], dtype=float), 0.0).sum())
            jit_short = np.asarray(shocked.get(name, 0.0), dtype=float)
            if agreed is not None and name in agreed and missing <= FULL_UNITS and float(jit_short.sum()) <= FULL_UNITS:
                pivots.append(agreed[name])
                continue
            at = np.array(plan, dtype=float, copy=True)
            at[v, 0] = delivered[v]
            others = [u for u in ctx.vendors if u != name]
            with planning_within(ctx, self._agreed(ctx, plan)):
                joint = None if not others else self._replan(ctx, others, at[:, 0], admm, start)
            counterfactual = counterfactuals[name]
            if float(jit_short.sum()) > FULL_UNITS:
                first = np.array(counterfactual[:, 0], dtype=float, copy=True)
                first[v] = np.maximum(first[v] - jit_short, 0.0)
                if others:  # the retailer and the others re-plan the later weeks with that first week
                    counterfactual = self._replan(ctx, others, first, admm, None)
                else:  # the retailer alone: only the first week is priced (its own continuation)
                    counterfactual = np.array(counterfactual, dtype=float, copy=True)
                    counterfactual[:, 0] = first
            pivots.append(vendor_pivot(ctx, name, at, counterfactual, two_way=self.two_way, joint_at_plan=joint,
                                       paths=paths, continuation=self.transfer.continuation, **self.pricing))
        return pivot_transfers(pivots, self.payee)

    def _replan(self, ctx: PlanningContext, others: list[str], first_week: np.ndarray, admm: ADMMOptions,
                start: Any) -> np.ndarray:
        """The plan of the retailer and ``others`` with this week's PO ``first_week`` ``[V, F, K]`` fixed
        (the policy's solver; centrally if that negotiation does not converge)."""
        joint = efficient_plan(ctx, self.solver, admm, self.answers, vendors=others, start=start, first_week=first_week)[0]
        if joint is None:
            joint = efficient_plan(ctx, "central", admm, self.answers, vendors=others, first_week=first_week)[0]
        return joint


def binding_week_savings(ctx: PlanningContext, jit: Any, r_eff: Any, v_eff: dict[str, Any]) -> tuple[dict[str, float], float]:
    """The binding week's planned costs of the plan over JIT: each vendor's saving (as it reports its
    costs: what makes split-savings manipulable) and the retailer's extra cost."""
    retailer_extra = float(r_eff.by_week[0] - jit.retailer.by_week[0])
    savings = {name: float(jit.vendors[name].by_week[0] - c.by_week[0]) for name, c in v_eff.items()}
    return savings, retailer_extra


class SplitSavingsPolicy:
    """The efficient plan with the planned saving over JIT split (not incentive compatible)."""

    name = "split-savings"

    def __init__(self, share: float = 0.5, solver: str = "cpp", cpp: dict[str, Any] | None = None) -> None:
        if not 0 <= share <= 1:
            raise FlosimError(f"policy '{self.name}': share must be in [0, 1], got {share}")
        _check_params(self.name, 1.0, 0.0, 1, solver)
        self.share, self.solver = share, solver
        self.transfer = TransferSettings(rule="split-savings", share=float(share))
        self.admm, self.answers = cpp_settings(self.name, cpp)

    def decide(self, ctx: PlanningContext) -> Decision:
        jit = jit_outcome(ctx)
        plan, diag = efficient_plan(ctx, self.solver, self.admm, self.answers)
        if plan is None:
            return Decision(jit.plan, {}, False, jit.planned(), {**diag, "fallback": "jit"})
        r_eff, v_eff = ctx.retailer.evaluate(plan), evaluate_blocks(ctx, plan)
        # the binding week's planned costs: retailer's extra cost and each vendor's saving from x*_t over
        # x^J_t, the vendors' as they report them (which is what makes the rule manipulable)
        savings, retailer_extra = binding_week_savings(ctx, jit, r_eff, v_eff)
        saving = sum(savings.values()) - retailer_extra
        transfers = settle(self.transfer, WeekInputs(savings=savings, retailer_extra=retailer_extra)).transfers
        pay_total = -transfers["retailer"]  # retailer ends `share` of the week's saving better off
        diag.update(
            planned_saving=saving,
            ex_ante_margin_retailer=pay_total - retailer_extra,
            planned_social=r_eff.total + sum(c.total for c in v_eff.values()),
            jit_planned_social=sum(jit.planned().values()),
        )
        for name in v_eff:
            diag[f"ex_ante_margin_{name}"] = savings[name] - transfers[name]
        planned = {"retailer": r_eff.total - pay_total, **{name: c.total + transfers[name] for name, c in v_eff.items()}}
        return Decision(plan, transfers, True, planned, diag)
