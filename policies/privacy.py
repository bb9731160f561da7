"""Privacy settings of the CPP policies, and the record of what each mechanism shows the retailer.

The ``cpp`` and ``cpp-vcg`` policies take a ``privacy`` mapping (scenario
``policies: {cpp-vcg: {privacy: {...}}}`` or a keyword argument), validated into
:class:`PrivacyOptions`:

* ``eps``, ``sensitivity``, ``scope``: the vendor answers with noise (:mod:`sim.negotiation.answer_noise`);
  ``eps: .inf`` (default) is no noise, and the policy then runs exactly as without the option;
* ``coordinator``: ``retailer`` (default; as in Flo Pro, the retailer runs the coordinator and sees
  every round) or ``neutral`` (a third party runs it and the agents are sealed: the retailer's
  organisation sees only the agreed plan, the transfer and what it can work out from its own cost
  model, here its own agent's final prices, a subgradient of its own cost at the plan). With two
  parties any participant can infer the other's answers from ``z`` and its own, so the neutral
  setting models agents that keep their answers from their own organisation, not just a neutral
  party in the middle;
* ``record``: keep what the mechanism showed the retailer, week by week, in the policy's
  :attr:`shown` list (:class:`RoundsShown` or :class:`AgreementShown` entries), which is what
  :mod:`experiments.observer` reads. The round cap is the ADMM option ``max_iter`` (``cpp: {max_iter: N}``).

:class:`RecordingJIT` and :class:`RecordingMenu` keep the same record for ``jit`` (the order sent and
what was shipped) and ``menu`` (the items offered, their prices, the vendor's pick and its coarse disclosure).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sim.model.decision import Decision, PlanningContext
from policies.jit import JITPolicy
from policies.menu import MenuPolicy
from sim.negotiation.answer_noise import AnswerNoise, NoiseOptions
from sim.model.errors import FlosimError
from sim.negotiation.transcript import Transcript
from sim.model.validation import number_from_text


class PrivacyOptions(BaseModel):
    """A CPP policy's ``privacy`` settings (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    eps: float = Field(math.inf, gt=0, description="the vendor's noise budget (inf: exact answers)")
    sensitivity: float = Field(1.0, gt=0, description="L1 change of marginal costs the budget protects")
    scope: Literal["run", "week", "answer"] = "run"
    coordinator: Literal["retailer", "neutral"] = "retailer"
    record: bool = False

    @field_validator("eps", "sensitivity", mode="before")
    @classmethod
    def _numbers(cls, value: Any) -> Any:
        return number_from_text(value)

    @property
    def noise(self) -> NoiseOptions:
        return NoiseOptions(eps=self.eps, sensitivity=self.sensitivity, scope=self.scope)


def privacy_options(options: PrivacyOptions | dict[str, Any] | None, where: str) -> PrivacyOptions:
    """Validate a ``privacy`` mapping; errors name the policy, the setting and the value."""
    if isinstance(options, PrivacyOptions):
        return options
    if options is not None and not isinstance(options, dict):
        raise FlosimError(f"{where}: privacy must be a mapping of settings, got {options!r}")
    try:
        opts = PrivacyOptions(**dict(options or {}))
        opts.noise  # noqa: B018 - the noise's own checks (finite sensitivity, no nan)
        return opts
    except ValidationError as exc:
        problems = "; ".join(f"privacy.{'.'.join(map(str, e['loc']))} = {e.get('input')!r}: {e['msg']}" if e["loc"]
                             else f"privacy: {e['msg']}" for e in exc.errors())
        raise FlosimError(f"{where}: {problems}") from None


@dataclass(frozen=True)
class RoundsShown:
    """A week under a coordinator the retailer runs: every round of the negotiation."""

    week: int
    transcript: Transcript
    vendor_index: int = 1


@dataclass(frozen=True)
class AgreementShown:
    """A week under a neutral coordinator with sealed agents: the agreed plan, the transfer and the
    retailer agent's final prices (a subgradient of the retailer's own cost at the plan). With one
    vendor, ``plan`` and ``retailer_prices`` are the vendor's block ``(H, F, K)`` of each (what the
    retailer learns about that vendor); with several, the whole plan ``(V, H, F, K)``."""

    week: int
    plan: np.ndarray
    retailer_prices: np.ndarray
    transfer: float
    agreed: bool


@dataclass(frozen=True)
class ShipmentShown:
    """A JIT week: the order the retailer sent the (one) vendor and what it shipped, ``[F, K]`` each."""

    week: int
    order: np.ndarray
    shipped: np.ndarray


@dataclass(frozen=True)
class MenuShown:
    """A menu week: the items offered (plans), their prices, the vendor's pick and what the vendor
    disclosed for tailoring the menu (FC names, with ``disclosure: volume`` the weekly volume it has
    room for at each, rounded; None if the menu was not tailored to a disclosure)."""

    week: int
    items: tuple[np.ndarray, ...]
    prices: tuple[float, ...]
    pick: int
    disclosure: Any = None


class ViewRecorder:
    """What a CPP policy shows the retailer, and the vendor's answer noise, over one run."""

    def __init__(self, options: PrivacyOptions) -> None:
        self.options = options
        self.shown: list[Any] = []
        self._noise: AnswerNoise | None = None

    def vendor_wrapper(self, ctx: PlanningContext) -> Any:
        """A function ``(vendor name, negotiator) -> negotiator`` wrapping each vendor's negotiator for
        this week's negotiation (None: no noise)."""
        if not self.options.noise.active:
            return None
        from sim.negotiation.answer_noise import NoisyNegotiator

        if self._noise is None or self.options.scope != "run":
            # the policy's own stream: spawned from the week's generator, whose draws stay as they were
            self._noise = AnswerNoise(self.options.noise, ctx.public.block_shape, ctx.rng.spawn(1)[0])
        noise = self._noise
        draws = {name: noise.for_negotiation() for name in ctx.vendors}  # one per vendor, in vendor order
        return lambda name, neg: NoisyNegotiator(neg, draws[name])

    def admm_update(self) -> dict[str, Any]:
        return {"record_transcript": True} if self.options.record and self.options.coordinator == "retailer" else {}

    def keep(self, week: int, result: Any, plan: np.ndarray, transfer: float) -> None:
        """Record the week's view (if asked to); ``result`` is the negotiation's result or None."""
        if not self.options.record:
            return
        if self.options.coordinator == "retailer":
            if result is not None and result.transcript is not None:
                self.shown.append(RoundsShown(week, result.transcript))
        else:
            plan = np.asarray(plan, dtype=float)
            prices = np.asarray(result.prices[0], dtype=float).copy() if result is not None else np.zeros_like(plan)
            agreed = bool(result is not None and result.converged)
            if plan.shape[0] == 1:  # one vendor: what the retailer learns of it is about its block x[0]
                plan, prices = plan[0], prices[0]
            self.shown.append(AgreementShown(week, plan.copy(), prices.copy(), float(transfer), agreed))


class RecordingJIT(JITPolicy):
    """``jit`` that keeps what the retailer sees: its order and what arrived from it. What was shipped
    is worked out by the vendor's own fulfilment of the order (the world runs the same step)."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.shown: list[ShipmentShown] = []

    def decide(self, ctx: PlanningContext) -> Decision:
        decision = super().decide(ctx)
        shipped = ctx.vendor.fulfil(decision.po[0], committed=decision.committed).shipped  # one vendor
        self.shown.append(ShipmentShown(ctx.week, decision.po[0].copy(), np.asarray(shipped, dtype=float).copy()))
        return decision


class RecordingMenu(MenuPolicy):
    """``menu`` that keeps what the retailer sees: items, prices and the vendor's pick."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.shown: list[MenuShown] = []
        self._offer: Any = None

    def offer(self, ctx: PlanningContext, *args: Any, **kwargs: Any) -> Any:
        self._offer = super().offer(ctx, *args, **kwargs)
        return self._offer

    def decide(self, ctx: PlanningContext) -> Decision:
        decision = super().decide(ctx)
        items, quotes, _ = self._offer
        pick = int(decision.diagnostics["menu_pick"])
        disclosure = self.preferred(ctx) if self.preference == "auto" else None
        self.shown.append(MenuShown(ctx.week, tuple(np.asarray(i.plan, dtype=float).copy() for i in items),
                                    tuple(float(q.paid) for q in quotes), pick, disclosure))
        return decision
