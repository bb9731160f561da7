"""CPP-VCG (Flo Pro) and the split-savings comparator (docs/model.md, "Policies" and "Transfers").

``cpp-vcg``: each week the agents negotiate the efficient plan ``x*`` (CPP, or a central solve when
``solver: central``), the retailer's own plan ``x^J`` is the counterfactual without the vendor, the PO
is ``x*``'s first week and the vendor pays the retailer the cost-benefit transfer of
:mod:`policies.cbt`. Truthful answers are a dominant strategy for the vendor: its cost plus the CBT
equals the social cost up to terms it cannot influence.

``split-savings``: the same efficient plan, but the binding week's planned saving over JIT (the
vendor's reported saving less the retailer's extra cost) is split 50/50 through the transfer. Its transfer depends on the vendor's reported costs, so it is *not* incentive compatible:
the incentive audit shows lies that pay.

Parameters (scenario ``policies: {cpp-vcg: {...}}`` or keyword arguments): ``discount`` (delta),
``risk_aversion`` (gamma, 0 = expectation), ``scenarios`` (demand paths for the certainty equivalent),
``two_way`` (allow negative transfers), ``solver`` (``cpp`` or ``central``), ``cpp`` (ADMM options, and
``answers``, the agents' best-response settings; validated when the policy is built), ``privacy``
(``cpp-vcg`` only: noisy vendor answers, a neutral coordinator, a record of what the retailer was
shown; :mod:`policies.privacy`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from sim.model.decision import Decision, PlanningContext
from policies.cbt import cost_benefit_transfer
from policies.privacy import ViewRecorder, privacy_options
from sim.model.agents import joint_plan
from sim.negotiation.best_response import BestResponseOptions
from sim.negotiation.coordinator import ADMMOptions
from sim.model.errors import FlosimError


def efficient_plan(ctx: PlanningContext, solver: str, admm: ADMMOptions,
                   answers: BestResponseOptions | None = None, *, wrap_vendor: Callable[[Any], Any] | None = None,
                   on_result: Callable[[Any], None] | None = None) -> tuple[np.ndarray | None, dict[str, Any]]:
    """``x*`` by CPP negotiation (default) or the central oracle; ``None`` if CPP did not converge.
    ``admm``, ``answers``: the negotiation's and the agents' settings (see :func:`cpp_settings`);
    ``wrap_vendor``: wraps the vendor's negotiator (noisy answers); ``on_result``: called with the
    negotiation's result (its transcript, prices)."""
    if solver == "central":
        return joint_plan(ctx.retailer, ctx.vendor).plan, {"solver": "central"}
    from policies.cpp import negotiate_efficient_plan

    plan, result = negotiate_efficient_plan(ctx, admm, answers=answers, wrap_vendor=wrap_vendor)
    if on_result is not None:
        on_result(result)
    diag = {"solver": "cpp", "iterations": result.iterations, "converged": result.status == "converged", "status": result.status}
    return (plan if result.status == "converged" else None), diag


def _check_params(name: str, discount: float, risk_aversion: float, scenarios: int, solver: str) -> None:
    if not 0 < discount <= 1:
        raise FlosimError(f"policy '{name}': discount must be in (0, 1], got {discount}")
    if risk_aversion < 0:
        raise FlosimError(f"policy '{name}': risk_aversion must be >= 0, got {risk_aversion}")
    if scenarios < 1:
        raise FlosimError(f"policy '{name}': scenarios must be >= 1, got {scenarios}")
    if solver not in ("cpp", "central"):
        raise FlosimError(f"policy '{name}': solver must be 'cpp' or 'central', got {solver!r}")


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


class CPPVCGPolicy:
    name = "cpp-vcg"

    def __init__(
        self,
        discount: float = 1.0,
        risk_aversion: float = 0.0,
        scenarios: int = 16,
        two_way: bool = False,
        solver: str = "cpp",
        cpp: dict[str, Any] | None = None,
        privacy: dict[str, Any] | None = None,
    ) -> None:
        _check_params(self.name, discount, risk_aversion, scenarios, solver)
        self.discount, self.risk_aversion, self.scenarios = discount, risk_aversion, scenarios
        self.two_way, self.solver = two_way, solver
        self.admm, self.answers = cpp_settings(self.name, cpp)
        self.privacy = ViewRecorder(privacy_options(privacy, f"policy '{self.name}'"))
        if self.privacy.admm_update():
            self.admm = self.admm.model_copy(update=self.privacy.admm_update())

    @property
    def shown(self) -> list[Any]:
        """What the policy showed the retailer, week by week (with ``privacy: {record: true}``)."""
        return self.privacy.shown

    def decide(self, ctx: PlanningContext) -> Decision:
        own = ctx.retailer.preferred_plan()
        negotiated: list[Any] = []
        plan, diag = efficient_plan(ctx, self.solver, self.admm, self.answers,
                                    wrap_vendor=self.privacy.vendor_wrapper(ctx), on_result=negotiated.append)
        result = negotiated[0] if negotiated else None
        if plan is None:  # never a silent wrong answer: flag the week and fall back to JIT
            vendor = ctx.vendor.evaluate(own.plan)
            self.privacy.keep(ctx.week, result, own.plan, 0.0)
            return Decision(own.plan, 0.0, False, {"retailer": own.total, "vendor": vendor.total}, {**diag, "fallback": "jit"})
        cbt = cost_benefit_transfer(
            ctx, plan, own.plan, discount=self.discount, risk_aversion=self.risk_aversion,
            scenarios=self.scenarios, two_way=self.two_way,
        )
        r_eff = ctx.retailer.evaluate(plan)
        v_eff = ctx.vendor.evaluate(plan)
        v_jit = ctx.vendor.evaluate(own.plan)
        self.privacy.keep(ctx.week, result, plan, cbt.paid)
        diag.update(
            cbt_immediate=cbt.immediate,
            cbt_future_ce=cbt.future_ce,
            cbt_future_mean=cbt.future_mean,
            cbt_raw=cbt.raw,
            # ex ante participation: expected gain over JIT from this week's decision
            ex_ante_margin_retailer=cbt.paid - (cbt.immediate + cbt.future_mean),
            ex_ante_margin_vendor=(v_jit.total - v_eff.total) - cbt.paid,
            planned_social=r_eff.total + v_eff.total,
            jit_planned_social=own.total + v_jit.total,
        )
        return Decision(plan, cbt.paid, True, {"retailer": r_eff.total - cbt.paid, "vendor": v_eff.total + cbt.paid}, diag)


class SplitSavingsPolicy:
    """The efficient plan with the planned saving over JIT split equally (not incentive compatible)."""

    name = "split-savings"

    def __init__(self, share: float = 0.5, solver: str = "cpp", cpp: dict[str, Any] | None = None) -> None:
        if not 0 <= share <= 1:
            raise FlosimError(f"policy '{self.name}': share must be in [0, 1], got {share}")
        _check_params(self.name, 1.0, 0.0, 1, solver)
        self.share, self.solver = share, solver
        self.admm, self.answers = cpp_settings(self.name, cpp)

    def decide(self, ctx: PlanningContext) -> Decision:
        own = ctx.retailer.preferred_plan()
        plan, diag = efficient_plan(ctx, self.solver, self.admm, self.answers)
        v_jit = ctx.vendor.evaluate(own.plan, allow_short=True)  # what the vendor would do under JIT
        if plan is None:
            return Decision(own.plan, 0.0, False, {"retailer": own.total, "vendor": v_jit.total}, {**diag, "fallback": "jit"})
        r_eff, v_eff = ctx.retailer.evaluate(plan), ctx.vendor.evaluate(plan)
        # the binding week's planned costs: retailer's extra cost and vendor's saving from x*_t over x^J_t,
        # the vendor's as it reports them (which is what makes the rule manipulable)
        retailer_extra = float(r_eff.by_week[0] - own.by_week[0])
        vendor_saving = float(v_jit.by_week[0] - v_eff.by_week[0])
        saving = vendor_saving - retailer_extra
        transfer = retailer_extra + self.share * saving  # retailer ends `share` of the week's saving better off
        diag.update(
            planned_saving=saving,
            ex_ante_margin_retailer=transfer - retailer_extra,
            ex_ante_margin_vendor=vendor_saving - transfer,
            planned_social=r_eff.total + v_eff.total,
            jit_planned_social=own.total + v_jit.total,
        )
        return Decision(plan, transfer, True, {"retailer": r_eff.total - transfer, "vendor": v_eff.total + transfer}, diag)
