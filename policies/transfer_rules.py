"""Transfer rules: how a week's pivots (or savings, or expected externalities) become what each party pays.

One family, one settings block, shared by ``cpp-vcg``, the ``menu`` and the several-vendor pivot::

    policies:
      cpp-vcg: {transfer: {rule: two-way}}
      menu:    {transfer: {rule: one-way}}

A rule turns the week's numbers into per-party transfers ``T_p`` (positive: ``p`` pays) and the
mechanism's balance ``B`` with ``sum_p T_p + B = 0``: ``B = 0`` when the rule is budget balanced,
``B > 0`` a deficit funded from outside, ``B < 0`` a surplus the mechanism keeps (the ledger's
``mechanism`` party). Rules (docs/mechanisms.md, "Transfer rules", gives the theory and the measured
table):

* ``one-way`` (default, Flo Pro): each vendor ``v`` pays its pivot ``max(T_v, 0)`` to the retailer
  (``payee: each``: every other party its own term, scaled like the clamped total). Where the clamp
  binds the vendor's payoff is no longer the social cost (:attr:`Settlement.clamped` names those vendors).
* ``two-way``: the same, unclamped; the retailer pays the vendor when the agreed plan lowers its own cost.
* ``vcg-both``: every party pays its own pivot to the mechanism: vendor ``v`` its ``T_v``; the retailer
  ``T_R = sum_v [C_v(x*) - C_v(x^v)]``, the cost its influence puts on the vendors, whose counterfactual is
  each vendor's own preferred plan ``x^v = argmin C_v`` (priced like the CBT: the binding week plus the
  vendor's own best continuation). Dominant-strategy truthful for every party; not budget balanced:
  ``B = -(sum_v T_v + T_R)``.
* ``expected-externality`` (AGV / dAGVA): party ``i`` pays its expected externality ``xi_i`` (the others'
  expected cost of the plan chosen on ``i``'s report, the others' types drawn from a declared prior) and
  receives an equal share of the others': ``T_i = xi_i - sum_{j != i} xi_j / (n - 1)``. Budget balanced in
  every week (``B = 0``); Bayesian truthful for cost-parameter reports; not individually rational.
* ``split-savings``: the manipulable comparator: the binding week's reported saving over JIT is split
  (the retailer keeps ``share``), each vendor paying in proportion to how much the plan changes its costs.

Every rule that charges a vendor's pivot prices it as :mod:`policies.cbt` says; ``continuation``
(``paths``, ``forecast``, ``paths-whole``) chooses how that pivot values the retailer's continuation
(with ``forecast`` the pivot is the exact Clarke pivot of the plan chosen on the forecast, never
negative, so one-way's clamp does not bind). Left out, it is the mechanism's own default
(:meth:`TransferSettings.resolved`): ``forecast`` for ``cpp-vcg`` (whose promise is truthfulness:
the vendor's payoff is then the planning objective), ``paths`` for ``cpp-vcg`` with
``risk_aversion > 0`` (a certainty equivalent needs the paths) and for the ``menu`` (whose saving is
worse under forecast prices); each mechanism records the valuation it used.

The rules are pure functions of numbers (:func:`settle` on a :class:`WeekInputs`), so a transfer can be
recomputed for another purchase order (a delivered PO, a remedy) by re-pricing the inputs at that PO
and settling again. :func:`transfer_settings` validates a settings block (bad input: a
:class:`sim.model.errors.FlosimError` naming ``transfer.<field>``).

The prior of ``expected-externality`` (``prior: {draws: 4, spread: 0.2}``): every party's cost
parameters (the retailer's receiving, holding, penalty and outbound costs; a vendor's production,
holding, spare-truck and truckload costs) are the scenario's, each field scaled by its own factor drawn
uniformly from ``[1 - spread, 1 + spread]``; quantities (capacity, stock, spare volume, the forecast)
are not drawn: the drawn types use the party's reported state and forecast. The expectation is
approximated by ``draws`` type profiles drawn once a week from the policy's generator (common to every
party, independent of the reports), the plan for each profile solved centrally (one LP), and each
party's cost of a plan is its planned cost over the horizon on the forecast (a one-shot reading of the
week: the plan's later weeks are valued as if they bound). ``xi_i`` is taken less its prior mean
``E[xi_i(theta_i)]``, estimated on the same draws (the others' cost at each drawn profile's own plan):
subtracting a constant that does not depend on ``i``'s report keeps both Bayesian truthfulness and
budget balance, makes each party's expected transfer zero before types are drawn, and keeps the
transfers of the order of what a type changes rather than of the parties' whole costs (on common
draws, so the Monte-Carlo noise of the two terms largely cancels).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sim.model.decision import RETAILER
from sim.model.errors import FlosimError

#: Every rule, the default first.
RULES = ("one-way", "two-way", "vcg-both", "expected-externality", "split-savings")
#: Who receives a vendor's pivot payment under one-way and two-way: the retailer, or each other party its own term.
PAYEES = ("retailer", "each")
#: The cost fields of each party the expected-externality prior draws (quantities are not drawn).
RETAILER_COST_FIELDS = ("receiving", "holding", "penalty", "outbound")
VENDOR_COST_FIELDS = ("production", "holding", "spare_cost", "truckload_cost")


class PriorSettings(BaseModel):
    """The expected-externality rule's prior over the parties' cost parameters (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)

    draws: int = Field(4, ge=1, le=64, description="type profiles drawn each week to approximate the expectation")
    spread: float = Field(0.2, gt=0, lt=1, description="each cost field scaled by a factor uniform in [1-spread, 1+spread]")

    @field_validator("spread", mode="before")
    @classmethod
    def _number(cls, v: Any) -> Any:
        return float(v) if isinstance(v, int) and not isinstance(v, bool) else v


class TransferSettings(BaseModel):
    """A mechanism's transfer rule and its options: ``rule`` (one of :data:`RULES`), ``payee`` (one-way
    and two-way: who receives a vendor's pivot), ``share`` (split-savings: the retailer's share of the
    saving), ``prior`` (expected-externality: required), ``continuation`` (how a pivot values the
    retailer's continuation, :data:`policies.cbt.CONTINUATIONS`: ``paths``, over sampled demand paths;
    ``forecast``, with the week's cost from one solve on the forecast the plan is chosen on;
    ``paths-whole``, on the paths, each path's week and continuation from one solve; ``None``, the
    default: the mechanism's own default, which it fills in with :meth:`resolved`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)

    rule: Literal["one-way", "two-way", "vcg-both", "expected-externality", "split-savings"] = "one-way"
    payee: Literal["retailer", "each"] = "retailer"
    share: float = Field(0.5, ge=0, le=1)
    prior: PriorSettings | None = None
    continuation: Literal["paths", "forecast", "paths-whole"] | None = None

    @field_validator("share", mode="before")
    @classmethod
    def _number(cls, v: Any) -> Any:
        return float(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @model_validator(mode="after")
    def _prior_needed(self) -> "TransferSettings":
        if self.rule == "expected-externality" and self.prior is None:
            raise ValueError("prior: expected-externality needs a prior over the parties' private parameters, "
                             "e.g. prior: {draws: 4, spread: 0.2}")
        return self

    def resolved(self, default: str) -> "TransferSettings":
        """These settings with ``continuation`` set to ``default`` (the mechanism's own) if it was left
        out; as given otherwise. A mechanism keeps the resolved settings, so what it records (its
        ``parameters()``, its ``transfer_continuation`` diagnostic) names the valuation it used."""
        if self.continuation is not None:
            return self
        return self.model_copy(update={"continuation": default})

    @property
    def clamps(self) -> bool:
        """Whether a vendor's pivot is clamped at zero (one-way)."""
        return self.rule == "one-way"


def transfer_settings(transfer: Any = None, *, two_way: bool | None = None, payee: str | None = None,
                      allowed: Sequence[str] = RULES, where: str = "policy 'cpp-vcg'") -> TransferSettings:
    """Validate a ``transfer`` settings block (a mapping, or a :class:`TransferSettings`). ``two_way`` and
    ``payee``: a policy's older top-level options, kept as aliases (``two_way: true`` is ``rule: two-way``;
    given together with a ``transfer.rule`` they must agree). ``allowed``: the rules this mechanism
    implements. Bad input raises :class:`FlosimError` naming ``transfer.<field>``."""
    if transfer is None:
        data: dict[str, Any] = {}
    elif isinstance(transfer, TransferSettings):
        data = transfer.model_dump(exclude_unset=True)
        if transfer.prior is not None:
            data["prior"] = transfer.prior.model_dump()
    elif isinstance(transfer, Mapping):
        data = dict(transfer)
    else:
        raise FlosimError(f"{where}: transfer must be a mapping such as {{rule: two-way}}, got {transfer!r}")
    if two_way is not None:
        if not isinstance(two_way, bool):
            raise FlosimError(f"{where}: two_way must be true or false, got {two_way!r}")
        alias = "two-way" if two_way else "one-way"
        if "rule" in data and two_way and data["rule"] != alias:
            raise FlosimError(f"{where}: two_way: true (an alias of transfer.rule: two-way) contradicts "
                              f"transfer.rule: {data['rule']!r}; give only transfer.rule")
        data.setdefault("rule", alias)
    if payee is not None:
        if "payee" in data and data["payee"] != payee:
            raise FlosimError(f"{where}: payee {payee!r} contradicts transfer.payee {data['payee']!r}; give one")
        data["payee"] = payee
    try:
        settings = TransferSettings(**{str(k): v for k, v in data.items()})
    except ValidationError as exc:
        problems = "; ".join(_problem(e) for e in exc.errors())
        raise FlosimError(f"{where}: {problems}") from None
    except TypeError as exc:
        raise FlosimError(f"{where}: transfer: {exc}") from None
    if settings.rule not in allowed:
        raise FlosimError(f"{where}: transfer.rule {settings.rule!r} is not implemented by this mechanism "
                          f"(it takes: {', '.join(allowed)})")
    return settings


def _problem(e: Mapping[str, Any]) -> str:
    loc = ".".join(str(p) for p in e["loc"])
    name = f"transfer.{loc}" if loc else "transfer"
    if e["type"] == "extra_forbidden":
        return f"{name}: unknown option (options: rule, payee, share, prior{{draws, spread}}, continuation)"
    if e["type"] == "literal_error" and loc == "rule":
        return f"transfer.rule: unknown rule {e.get('input')!r} (rules: {', '.join(RULES)})"
    if e["type"] == "literal_error" and loc == "continuation":
        return f"transfer.continuation: unknown valuation {e.get('input')!r} (one of: paths, forecast, paths-whole)"
    msg = str(e["msg"]).removeprefix("Value error, ")
    return f"{name}: {msg} (got {e.get('input')!r})" if loc else f"transfer.{msg}"


# -- the week's inputs and the settlement -------------------------------------------------------------

@dataclass(frozen=True)
class PivotTerms:
    """One vendor's pivot this week: ``terms[p]`` the extra cost its influence puts on party ``p`` (the
    retailer's as its CBT); ``raw = sum(terms)``."""

    vendor: str
    terms: Mapping[str, float]
    raw: float


@dataclass(frozen=True)
class WeekInputs:
    """What a rule needs of the week, by rule: ``pivots`` (one-way, two-way, vcg-both), ``retailer_pivot``
    (vcg-both: the retailer's own pivot, :func:`retailer_pivot`), ``savings`` and ``retailer_extra``
    (split-savings: each vendor's reported saving and the retailer's extra cost of the binding week
    over JIT), ``externalities`` (expected-externality: each party's ``xi``, :func:`expected_externalities`)."""

    pivots: Sequence[PivotTerms] = ()
    retailer_pivot: float | None = None
    savings: Mapping[str, float] | None = None
    retailer_extra: float | None = None
    externalities: Mapping[str, float] | None = None


@dataclass(frozen=True)
class Settlement:
    """The week's transfers (``transfers[p]``: what ``p`` pays) and the mechanism's balance ``B``:
    ``sum(transfers) + balance == 0`` (up to rounding). ``paid[v]``: what vendor ``v``'s own pivot asks
    after the rule (clamped under one-way); ``clamped``: the vendors whose one-way clamp binds."""

    rule: str
    transfers: dict[str, float]
    balance: float
    paid: dict[str, float] = field(default_factory=dict)
    clamped: tuple[str, ...] = ()

    @property
    def residual(self) -> float:
        """``sum(transfers) + balance``: zero for every rule (the accounting identity)."""
        return math.fsum([*self.transfers.values(), self.balance])


def pay_pivots(pivots: Sequence[PivotTerms], payee: str, clamp: bool) -> tuple[dict[str, float], dict[str, float]]:
    """One-way (``clamp``) and two-way: each vendor pays ``max(raw, 0)`` (or ``raw``), distributed by
    :func:`distribute`. Returns the transfers and what each vendor's pivot asks."""
    paid = {p.vendor: (max(p.raw, 0.0) if clamp else p.raw) for p in pivots}
    return distribute(pivots, paid, payee), paid


def distribute(pivots: Sequence[PivotTerms], paid: Mapping[str, float], payee: str) -> dict[str, float]:
    """Each vendor pays ``paid[v]``; the retailer receives it all (``payee: retailer``) or every party its
    own term of ``v``'s pivot, scaled like the paid total (``payee: each``). Budget balanced."""
    out: dict[str, float] = {}
    for p in pivots:
        amount = paid[p.vendor]
        if amount == 0.0:
            continue
        out[p.vendor] = out.get(p.vendor, 0.0) + amount
        if payee == "retailer" or p.raw == 0.0:
            out[RETAILER] = out.get(RETAILER, 0.0) - amount
        else:
            scale = amount / p.raw
            for party, term in p.terms.items():
                out[party] = out.get(party, 0.0) - scale * term
    return out


def split_savings(savings: Mapping[str, float], retailer_extra: float, share: float) -> dict[str, float]:
    """Split-savings: the binding week's reported saving ``sum_v s_v - retailer_extra`` is split so that the
    retailer keeps ``share`` of it; it receives ``retailer_extra + share * saving``, which the vendors pay
    (:func:`split_payment`). Budget balanced."""
    saving = sum(savings.values()) - retailer_extra
    pay_total = retailer_extra + share * saving
    transfers = split_payment(savings, pay_total)
    transfers[RETAILER] = -pay_total
    return transfers


def split_payment(savings: Mapping[str, float], pay_total: float) -> dict[str, float]:
    """What each vendor pays of ``pay_total`` (split-savings): its own reported saving less its part of
    what the vendors keep, ``K = sum_u s_u - pay_total``, in proportion to how much the plan changes
    its costs: ``T_v = s_v - K |s_v| / sum_u |s_u|`` (equal parts when no vendor's cost changes). The
    payments sum to ``pay_total``; a vendor whose costs the plan leaves alone pays nothing, and each
    vendor's margin over JIT, ``s_v - T_v``, has the sign of ``K`` (a vendor whose saving is negative is
    made whole first). With one vendor it pays ``pay_total``. (A split in proportion to the signed
    savings divides by their sum, which may be near zero while the savings are large.)"""
    if len(savings) == 1:
        return {name: pay_total for name in savings}
    kept = sum(savings.values()) - pay_total
    scale = sum(abs(s) for s in savings.values())
    weights = {name: abs(s) / scale if scale > 0 else 1.0 / len(savings) for name, s in savings.items()}
    return {name: s - kept * weights[name] for name, s in savings.items()}


def agv_transfers(externalities: Mapping[str, float]) -> dict[str, float]:
    """AGV / dAGVA: ``T_i = xi_i - sum_{j != i} xi_j / (n - 1)``; sums to zero (needs two parties or more)."""
    n = len(externalities)
    if n < 2:
        raise FlosimError("transfer rule 'expected-externality': needs at least two parties")
    total = math.fsum(externalities.values())
    return {p: xi - (total - xi) / (n - 1) for p, xi in externalities.items()}


def settle(settings: TransferSettings, inputs: WeekInputs) -> Settlement:
    """The week's transfers and balance under ``settings.rule`` from ``inputs`` (a pure function: call it
    again with inputs re-priced at another PO to recompute the transfer of that PO)."""
    rule = settings.rule
    if rule in ("one-way", "two-way"):
        transfers, paid = pay_pivots(inputs.pivots, settings.payee, clamp=rule == "one-way")
        clamped = tuple(p.vendor for p in inputs.pivots if rule == "one-way" and p.raw < 0.0)
        return Settlement(rule, transfers, 0.0, paid, clamped)
    if rule == "vcg-both":
        if inputs.retailer_pivot is None:
            raise FlosimError("transfer rule 'vcg-both': the retailer's pivot was not priced")
        transfers = {p.vendor: p.raw for p in inputs.pivots}
        transfers[RETAILER] = float(inputs.retailer_pivot)
        return Settlement(rule, transfers, -math.fsum(transfers.values()), {p.vendor: p.raw for p in inputs.pivots})
    if rule == "split-savings":
        if inputs.savings is None or inputs.retailer_extra is None:
            raise FlosimError("transfer rule 'split-savings': the week's savings were not computed")
        transfers = split_savings(inputs.savings, inputs.retailer_extra, settings.share)
        return Settlement(rule, transfers, 0.0, {v: transfers[v] for v in inputs.savings})
    if rule == "expected-externality":
        if inputs.externalities is None:
            raise FlosimError("transfer rule 'expected-externality': the expected externalities were not computed")
        transfers = agv_transfers(inputs.externalities)
        return Settlement(rule, transfers, 0.0, {p: t for p, t in transfers.items() if p != RETAILER})
    raise FlosimError(f"transfer.rule: unknown rule {rule!r} (rules: {', '.join(RULES)})")


# -- the inputs some rules need beyond the vendors' pivots ---------------------------------------------

@dataclass(frozen=True)
class RetailerPivot:
    """The retailer's pivot under ``vcg-both``: per vendor, its extra cost at the agreed PO over its own
    preferred plan (binding week plus ``discount`` times the change in its own best continuation)."""

    terms: dict[str, float]

    @property
    def total(self) -> float:
        return float(sum(self.terms.values()))


def retailer_pivot(vendors: Mapping[str, Any], po: np.ndarray, discount: float, index: Mapping[str, int]) -> RetailerPivot:
    """``T_R = sum_v [c_v(po_v) - c_v(x^v_t)] + discount * [V_v(po_v) - V_v(x^v)]``: vendor ``v``'s cost with
    this week's block fixed at ``po[v]`` and its own best continuation, against its own preferred plan
    ``x^v = argmin C_v`` (its agent's :meth:`~sim.parties.vendor.VendorAgent.preferred_plan`). ``index``:
    each vendor's position on the PO's vendor axis."""
    terms: dict[str, float] = {}
    for name, agent in vendors.items():
        preferred = getattr(agent, "preferred_plan", None)
        if preferred is None:
            raise FlosimError(f"transfer rule 'vcg-both': vendor {name!r}'s agent cannot state its preferred plan "
                              "(it has no preferred_plan query)")
        own, fixed = preferred(), preferred(first_week=np.asarray(po)[index[name]])
        terms[name] = (float(fixed.by_week[0] - own.by_week[0])
                       + discount * float(fixed.by_week[1:].sum() - own.by_week[1:].sum()))
    return RetailerPivot(terms)


def _scaled(data: Any, fields: Sequence[str], factors: np.ndarray) -> Any:
    return replace(data, **{f: np.asarray(getattr(data, f), dtype=float) * a for f, a in zip(fields, factors)})


def expected_externalities(ctx: Any, prior: PriorSettings, centre: tuple[Any, Mapping[str, Any]],
                           rng: np.random.Generator) -> dict[str, float]:
    """Each party's expected externality ``xi_i`` this week, less its prior mean (see the module
    docstring). ``centre``: the scenario's retailer data and vendor data by name (the prior's centre,
    public in the simulator); ``rng``: draws the type profiles (independent of the reports).
    ``(parties + 1) * draws`` central LPs."""
    from sim.parties.oracle import joint_plan
    from sim.parties.retailer import RetailerAgent
    from sim.parties.vendor import VendorAgent

    public = ctx.public
    r_data, v_data = centre
    names = list(ctx.vendors)
    lo, hi = 1.0 - prior.spread, 1.0 + prior.spread

    def retailer_of(data: Any) -> Any:
        agent = RetailerAgent(public, data)
        agent.observe(ctx.retailer.state, ctx.retailer.forecast)
        return agent

    def vendor_of(name: str, data: Any) -> Any:
        agent = VendorAgent(public, data)
        agent.observe(ctx.vendors[name].state)
        return agent

    profiles = []
    for _ in range(prior.draws):  # one drawn type per party, the same for every party's expectation
        r = retailer_of(_scaled(r_data, RETAILER_COST_FIELDS, rng.uniform(lo, hi, len(RETAILER_COST_FIELDS))))
        vs = {n: vendor_of(n, _scaled(v_data[n], VENDOR_COST_FIELDS, rng.uniform(lo, hi, len(VENDOR_COST_FIELDS))))
              for n in names}
        profiles.append((r, vs))
    reported = {RETAILER: ctx.retailer, **ctx.vendors}
    # each drawn profile's own plan: the reference every party's expected externality is taken from
    drawn_plans = [joint_plan(r, vs) for r, vs in profiles]

    def others(plan: Any, party: str) -> float:
        return (0.0 if party == RETAILER else plan.retailer.total) + sum(
            c.total for n, c in plan.vendors.items() if n != party)

    out = {}
    for party in [RETAILER, *names]:
        on_report = [joint_plan(reported[party], vs) if party == RETAILER else joint_plan(r, {**vs, party: reported[party]})
                     for r, vs in profiles]
        # the others' cost at the plan chosen on the report, less at the plan of the party's own drawn type:
        # the second term estimates E[xi_i] over i's prior (a constant: its report does not enter it)
        out[party] = float(np.mean([others(p, party) - others(q, party) for p, q in zip(on_report, drawn_plans)]))
    return out
