"""Menu of contracts (docs/model.md, "Policies"; measured in docs/mechanisms.md).

Each week the retailer builds candidate six-week plans, always including its own plan ``x^J``,
prices each at the cost-benefit transfer it would carry (:class:`policies.cbt.TransferPricer`), and
offers the menu. The vendor picks the item minimising its own cost plus price; the PO is that item's
first week. No cost model is revealed: the retailer sees only which item was picked, the vendor only
plans and prices.

Items and pricing. ``items: week`` (default): only the first week of an item binds, as
with CPP-VCG; each candidate is cut to its first week and completed with the retailer's own optimal
continuation, and priced at the CBT its first week carries (the CPP-VCG rule). For such items that
price equals the retailer's deviation cost over the whole completed plan, so the vendor's cost plus
price is the social cost of the completed item up to a constant: the vendor picks the item best for
the supply chain *if the later weeks follow the retailer's continuation* (not quite the binding
week's value; see below), and pays only for what binds. ``items: plan``: items are whole six-week plans priced as
whole plans (``pricing: plan``: the retailer's deviation cost over the plan, first week on the
forecast, later weeks as a certainty equivalent); the pick is aligned too, but re-priced every week
on a rolling horizon the vendor pays for the same later weeks again and again (on ``pilot`` it ends
worse off than under JIT). ``items: plan`` with ``pricing: first-week`` prices whole plans at
their first week only: a vendor then prefers items whose unpriced later weeks suit it, and the
menu can do worse than JIT; it is kept to show that. (``items`` was called ``commitment`` before
mutual commitment existed: ``commitment: week`` and ``commitment: plan`` still mean ``items: week`` and
``items: plan``.)

Mutual commitment. ``commitment: {weeks: k, band: b}`` (a mapping; :mod:`sim.model.commitment`):
the first ``k`` weeks of the plan the vendors pick bind both parties within ``±b`` on later re-plans,
as for ``cpp-vcg``. Every item then lies inside the commitments already agreed: the retailer's own
plans (``x^J``, discount and steer items, completions) are planned inside them, and a shift item is
moved into the box entry by entry; the JIT counterfactual and the prices' continuations plan inside
them too. A declined vendor's JIT block is raised to the floor it agreed earlier; a vendor that
declines stays on JIT terms and commits nothing new (nor the retailer towards it).

Candidates (``method``):

* ``discount``: the retailer's own optimal plan under a virtual per-unit inbound discount at one FC,
  on a grid of levels (fractions of each product's wholesale price, below 1);
* ``shift``: ``x^J`` with a fraction of one FC's volume moved to another, re-timed by the difference
  in lead times so that moved units arrive in the week they were planned to;
* ``mixed`` (default): both, interleaved.

Tailoring. When the vendor declares a coarse preference the menu concentrates on it.
``preference: auto`` asks the vendor's agent; with ``disclosure: volume`` (default) it discloses the
FCs it would rather ship to *and* the weekly volume it has room for at each (its spare truck volume,
rounded to ``volume_step``, default 100; no costs): "room for about 700 a week to DAL"
(:meth:`sim.parties.vendor.VendorAgent.coarse_volumes`). With ``disclosure: names`` it names the FCs only.
A list of names, or a mapping ``{name: weekly volume or null}``, can also be given; a name is an FC
or a region, and a region stands for the FCs that serve it (those with an outbound arc to it,
cheapest outbound cost first, :meth:`sim.parties.retailer.RetailerAgent.fcs_serving`: ``SouthWest`` on
``default`` is PHX, then DAL); a volume given for a region applies to each of its FCs. Where names
overlap: a name that is both an FC and a region means the FC; an FC named itself keeps its own
volume; an FC served by several named regions takes the largest of their volumes (a number over
none; room towards one FC is not added up across regions). Unknown names are an error listing the
FCs and regions. Items, in this order:

1. with a disclosed volume: "steer" items aimed at it (the retailer's own plan under a surcharge at
   another FC and a discount at the preferred one that applies only up to the disclosed volume), one
   per surcharge in ``ROOM_SURCHARGES`` and source FC, then shifts of ``x^J`` filling the preferred
   FC up to that volume (same-week only under weekly commitment: a re-timed shift's first week is
   only a cut); each followed by its "early" versions (``pulls``, default ``[0.25, 0.5]``): the same item
   with that fraction of next week's units shipped this week at every FC whose first week the item
   leaves as in ``x^J`` (see "Items shipped a week early" below);
2. steer items and capped shifts on a grid of caps (``CAP_MULTIPLES`` of the preferred FC's largest
   weekly JIT volume), then plain discounts and shifts towards the preferred FCs.

Under weekly commitment items are distinct by their first week, so ``size`` is the number offered.
Menus are nested: a larger menu contains every item of a smaller one with the same parameters.

Measured on ``default`` with known demand (``flosim menu --deterministic --week 0,1,2,3,4,5,6,7
--sizes 1,2,4,8,12,16,24``, binding week scored by ``S``, the least social cost with the PO fixed),
12-item menus: tailored with the volume disclosed 0.00-0.56% above first-best (weeks 1-3, 6, 7:
0.18-0.19% from 2 items on; week 5: 0.00%; weeks 0 and 4: 0.56% and 0.34%); with names only
0.34-1.25% (above 1% at weeks 1-3, 6, 7); untailored 0.50-1.58%. See ``docs/mechanisms.md``.

What the vendor optimises, and why the binding share need not grow with the menu. The vendor's
criterion is its cost of the completed plan plus the price, ``V(x_0, c_R(x_0)) + R*(x_0) - R(x^J)``:
the social cost of the completed plan, in which the later weeks are the retailer's own (JIT)
continuation ``c_R``. The binding week's social value is ``S(x_0) = min_c R(x_0, c) + V(x_0, c)``,
with the later weeks efficient. The two differ by the inefficiency of the JIT continuation, which
depends on ``x_0``: on ``default`` a full DAL truck this week makes the retailer's continuation order
less at DAL, where the vendor ships cheaply, so the vendor's criterion undervalues it and may prefer a
smaller shift (week 0: a same-week shift with ``S`` 0.56% above first-best beats the steer item at
0.06%). Whenever the menu adds an item that is better on the vendor's criterion and worse on ``S``,
the binding share falls; the retailer cannot screen such items out (both need the vendor's costs),
so no generation rule guarantees monotonicity. The vendor's criterion (``share_vendor`` in
``flosim menu``, equal to ``share_plan`` with known demand) is monotone for nested menus priced on
the same demand paths, with uncertain demand too.
Letting the vendor value an item by its own best cost given the first week (free continuation) or
by its first week alone was tried and aligned worse (``docs/mechanisms.md``).

Items shipped a week early (``pulls``). On ``pilot`` almost all of what first best saves against
JIT in a realised run is lost sales (first best plans more stock at the FCs: the joint LP is flat
along "ship earlier", and the vertex it returns ships ahead), while the items above only move
``x^J``'s volume between FCs and weeks without adding stock. An early version of an item ships a
quarter (and one a half) of next week's units this week wherever the item leaves the first week
alone; an item that leaves the whole first week as in ``x^J`` gets none. Its price (the retailer's
deviation cost, its continuation valued on demand paths) falls by what that stock saves the retailer
in lost sales over the paths, down to zero under the one-way rule, so a vendor that likes the item
also likes its early version as long as the extra units cost it little (it produces earlier).
Measured (``docs/settled.md``, "Why the menu saved nothing on ``pilot``, and what changed"): the
realised share of the first-best saving rises on ``pilot`` and on ``default`` and the vendor gains
more; with known demand the early units are worth nothing to the retailer and the 12-item picks and
binding gaps above are unchanged. ``pulls: []`` turns them off. Without a disclosed volume
(untailored, or names only) nothing changes.

Incentives. The prices are CBTs computed from the retailer's reported costs, so the menu is truthful
for the vendor only: no vendor lie pays (audited), but the retailer gains by overstating its holding
cost (same pick, higher price; ``docs/mechanisms.md``).

Several vendors. Each vendor is offered its own menu for its own block, priced at the cost its
choice puts on the others. Vendor ``v``'s items are built as above from ``x^J`` (the retailer's own
plan over every vendor at their wholesale prices) and ``v``'s own coarse disclosure; they differ from
``x^J`` only in ``v``'s block (a discount or steer item is the retailer's plan under a virtual
discount on ``v``'s units, of which only ``v``'s block is kept). Item ``i`` of vendor ``v`` is priced
at ``v``'s pivot term against JIT: the retailer's CBT of the item against ``x^J``; for a shared plan
nothing is added for the other vendors, since their blocks are the JIT ones in every item of ``v``'s
menu and their costs do not change. One pricer serves every menu (one JIT counterfactual, the same
demand paths). The vendors choose simultaneously, each from its own menu, minimising its own cost of
its block plus the price; the PO combines the chosen blocks, scaled down where together they exceed
an FC's receiving capacity (the rule of ``policies.cpp.plan_from_answer``). Each vendor pays its
item's price to the retailer (``Decision.transfers``); the mechanism keeps nothing. The JIT
counterfactual of every margin is :func:`policies.jit.jit_outcome` (each vendor may short its block).
The combination is not priced as a whole: each price assumes the others stay at ``x^J``, so the
retailer's expected cost of the combined plan need not equal the sum of the prices
(``ex_ante_margin_retailer`` says by how much).

A vendor that can ship no item of its menu (``x^J`` asks more of it than it can make or truck; on
``two-vendors`` the Tucson vendor in some weeks) declines the menu and stays on JIT terms: its block
is what it would ship under JIT, at no price (``menu_item_<name>`` = ``declined: JIT terms``).
``decline: any`` lets a vendor decline whenever JIT terms suit it better than every item, which
makes ex-ante participation hold for every vendor by construction; the default ``infeasible`` keeps
today's menus, where the JIT item commits the vendor to ship ``x^J`` in full (worth less to a vendor
that would short part of it than JIT terms, so its ex-ante margin can be negative).

Diagnostics. One vendor: as before (``menu_size``, ``menu_pick``, ``menu_item``, ``cbt_immediate``,
``cbt_future_ce``, ``vendor_saving``, ``ex_ante_margin_retailer``, ``ex_ante_margin_<name>``,
``planned_social``, ``jit_planned_social``). Several: the same per vendor keyed by its name
(``menu_pick_<name>``, ``menu_item_<name>``, ``vendor_saving_<name>``, ``ex_ante_margin_<name>`` ...)
and ``receiving_scaled``.

Parameters: ``size`` (items including ``x^J``, a whole number >= 1; per vendor), ``method``, ``preference``, ``disclosure``,
``volume_step``, ``levels``, ``pulls`` (fractions in (0, 1]; ``[]`` for none),
``items`` (``week`` or ``plan``), ``commitment`` (``{weeks, band}``; or a
string, an alias of ``items``), ``pricing``, ``decline`` (``infeasible`` or ``any``), and the
CBT parameters ``discount``, ``risk_aversion``, ``scenarios``, ``two_way`` (an alias of ``transfer: {rule: two-way}``; the menu implements the rules ``one-way`` and ``two-way`` of :mod:`policies.transfer_rules`)
and ``transfer.continuation`` (how a price values the retailer's continuation, :mod:`policies.cbt`: ``paths``
by default (:data:`DEFAULT_CONTINUATION`), ``forecast``, ``paths-whole``; the retailer's ex-ante margin is measured
over the demand paths whichever). The menu keeps ``paths`` where ``cpp-vcg`` defaults to ``forecast``:
measured on the pilot, its saving over JIT and the vendor's margin are worse under forecast prices
(docs/mechanisms.md, "Valuing the retailer's continuation").
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain, zip_longest
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np

from policies.cbt import CBTBreakdown, TransferPricer, check_continuation
from policies.jit import jit_outcome
from policies.transfer_rules import transfer_settings
from sim.model.commitment import CommitmentSettings, commitment_settings
from sim.model.decision import Decision, PlanningContext, check_remedy
from sim.model.errors import FlosimError
from sim.model.plan_cost import PlanCost

DEFAULT_LEVELS = (0.05, 0.1, 0.2, 0.35, 0.5, 0.75)
SHIFT_FRACTIONS = (0.25, 0.5, 1.0)
CAP_MULTIPLES = (1.25, 1.4, 1.1, 1.55, 1.7, 1.85, 2.0)
STEER_SURCHARGES = (0.2, 0.1)
ROOM_SURCHARGES = (0.3, 0.2, 0.5)
STEER_DISCOUNT = 0.1
#: Fractions of next week's units a tailored menu also offers to ship this week, with each item aimed at a
#: disclosed volume (``pulls``; see the module docstring, "Items shipped a week early"). Measured against
#: ``[0.25]``, ``[0.5]`` and ``[0.1]`` on three worlds of ``default`` and ``pilot`` (docs/settled.md)
PULLS = (0.25, 0.5)
METHODS = ("discount", "shift", "mixed")
DECLINE = ("infeasible", "any")
ITEMS = ("week", "plan")  # what a menu item is: its first week, or the whole plan (``items``)
DECLINED = "declined: JIT terms"  # the pick of a vendor that can ship no item of its menu
#: The transfer rules a menu implements: its prices are CBTs, clamped at zero or not (the vendor's pick is
#: its own; the retailer chooses nothing, so it has no pivot of its own to pay).
MENU_RULES = ("one-way", "two-way")
#: How an item's price values the retailer's continuation when ``transfer.continuation`` is left out (see the
#: module docstring; ``cpp-vcg``'s default is ``forecast``, :func:`policies.cpp_vcg.default_continuation`).
DEFAULT_CONTINUATION = "paths"
#: Units of its block below which a vendor counts as having shipped its PO in full (as the execution does)
FULL_UNITS = 1e-6


@dataclass(frozen=True)
class MenuItem:
    plan: np.ndarray  # the whole plan [V, H, F, K]; the item differs from x^J in the menu's vendor's block
    kind: str  # "jit", "discount DAL=0.2", "shift PHX->DAL 0.5", ...


def _embed(full: np.ndarray, v: int, block: np.ndarray) -> np.ndarray:
    """``full`` with vendor ``v``'s block replaced by ``block``."""
    out = np.array(full, dtype=float, copy=True)
    out[v] = block
    return out


def _only(ctx: PlanningContext, v: int) -> np.ndarray:
    """``[V]`` bool: vendor ``v`` alone (a virtual discount applies to its units only)."""
    mask = np.zeros(ctx.public.V, dtype=bool)
    mask[v] = True
    return mask


def _weekly_volume(plan: np.ndarray, f: int, volume: np.ndarray) -> np.ndarray:
    return (plan[:, f, :] * volume[None, :]).sum(axis=1)


def _move(plan: np.ndarray, a: int, b: int, amount: np.ndarray, shift: int) -> np.ndarray:
    """Move ``amount[tau, k]`` units from FC ``a`` in week ``tau`` to FC ``b`` in week ``tau + shift``;
    units whose new week falls outside the horizon stay at ``a``."""
    H = plan.shape[0]
    out = plan.copy()
    for tau in range(H):
        new = tau + shift
        if 0 <= new < H:
            out[tau, a] -= amount[tau]
            out[new, b] += amount[tau]
    return out


def _discount_items(ctx: PlanningContext, full: np.ndarray, v: int, fcs: Sequence[int], levels: Sequence[float]) -> Iterator[MenuItem]:
    for level in levels:
        for f in fcs:
            d = np.zeros(ctx.public.F)
            d[f] = level
            plan = ctx.retailer.preferred_plan(inbound_discount=d, only=_only(ctx, v)).plan
            yield MenuItem(_embed(full, v, plan[v]), f"discount {ctx.public.fcs[f]}={level:g}")


def _shift_items(ctx: PlanningContext, full: np.ndarray, v: int, targets: Sequence[int]) -> Iterator[MenuItem]:
    lead = ctx.public.lead_time
    jit = full[v]
    for frac in SHIFT_FRACTIONS:
        for b in targets:
            for a in range(ctx.public.F):
                if a != b:
                    plan = _move(jit, a, b, frac * jit[:, a, :], int(lead[a] - lead[b]))
                    yield MenuItem(_embed(full, v, plan), f"shift {ctx.public.fcs[a]}->{ctx.public.fcs[b]} {frac:g}")


def _capped_shift_plan(ctx: PlanningContext, jit: np.ndarray, a: int, b: int, cap: float, retime: bool) -> np.ndarray:
    """``x^J`` with volume moved from FC ``a`` to FC ``b`` until ``b``'s weekly volume reaches ``cap``,
    re-timed (moved units arrive when planned) or in the same week (arriving early where ``b``'s lead
    time is shorter)."""
    vol, lead = ctx.public.volume, ctx.public.lead_time
    H = jit.shape[0]
    src = _weekly_volume(jit, a, vol)
    shift = int(lead[a] - lead[b]) if retime else 0
    plan = jit.copy()
    for tau in range(H):  # fill b's room week by week
        new = tau + shift
        if not (0 <= new < H) or src[tau] <= 0:
            continue
        room = max(cap - float((plan[new, b] * vol).sum()), 0.0)
        amount = np.zeros_like(jit[:, a, :])
        amount[tau] = min(1.0, room / src[tau]) * jit[tau, a, :]
        plan = _move(plan, a, b, amount, shift)
    return plan


def _steer_plan(ctx: PlanningContext, full: np.ndarray, v: int, a: int, b: int, surcharge: float, cap: float) -> np.ndarray:
    """The retailer's own optimal plan under a surcharge at FC ``a`` and a discount at FC ``b`` that
    applies only to the first ``cap`` units of weekly volume there (vendor ``v``'s units only). The
    retailer chooses which demand to move, so the plan stays consistent with its own outbound costs.
    Only ``v``'s block is taken; the other vendors' blocks stay those of ``full`` (``x^J``)."""
    d = np.zeros(ctx.public.F)
    d[a], d[b] = -surcharge, STEER_DISCOUNT
    caps = np.full(ctx.public.F, np.inf)
    caps[b] = cap
    plan = ctx.retailer.preferred_plan(inbound_discount=d, discount_cap=caps, only=_only(ctx, v)).plan
    return _embed(full, v, plan[v])


def _jit_cap(jit: np.ndarray, b: int, mult: float, vol: np.ndarray) -> float:
    return mult * (float(_weekly_volume(jit, b, vol).max()) or float(vol.mean()))


def _capped_shift_items(ctx: PlanningContext, full: np.ndarray, v: int, targets: Sequence[int]) -> Iterator[MenuItem]:
    """Move volume towards a preferred FC until its weekly volume reaches a cap, on a grid of caps
    (multiples of its largest weekly JIT volume), re-timed and same-week."""
    fcs = ctx.public.fcs
    jit = full[v]
    for mult in CAP_MULTIPLES:
        for b in targets:
            cap = _jit_cap(jit, b, mult, ctx.public.volume)
            for a in range(ctx.public.F):
                if a == b:
                    continue
                for retime in (True, False):
                    how = "re-timed" if retime else "same week"
                    yield MenuItem(_embed(full, v, _capped_shift_plan(ctx, jit, a, b, cap, retime)),
                                   f"shift {fcs[a]}->{fcs[b]} up to {mult:g}x volume, {how}")


def _steer_items(ctx: PlanningContext, full: np.ndarray, v: int, targets: Sequence[int]) -> Iterator[MenuItem]:
    """Steer volume from another FC to a preferred FC (:func:`_steer_plan`), the discount capped at a
    grid of multiples of the preferred FC's largest weekly JIT volume."""
    fcs = ctx.public.fcs
    jit = full[v]
    for mult in CAP_MULTIPLES:
        for surcharge in STEER_SURCHARGES:
            for b in targets:
                cap = _jit_cap(jit, b, mult, ctx.public.volume)
                for a in range(ctx.public.F):
                    if a != b:
                        yield MenuItem(_steer_plan(ctx, full, v, a, b, surcharge, cap), f"steer {fcs[a]}->{fcs[b]} surcharge {surcharge:g} up to {mult:g}x volume")


def _pulled(item: MenuItem, jit: np.ndarray, v: int, frac: float) -> MenuItem:
    """``item`` with ``frac`` of next week's units shipped this week instead, at every FC whose first
    week the item leaves as in ``x^J`` (vendor ``v``'s block): the item's own moves, plus stock that
    waits at the FCs a week longer."""
    plan = np.array(item.plan, dtype=float, copy=True)
    block = plan[v]
    if block.shape[0] < 2:
        return item
    same = np.all(np.isclose(block[0], jit[v, 0], atol=1e-9), axis=-1)  # [F] FCs the item leaves alone
    moved = frac * block[1, same]
    block[0, same] += moved
    block[1, same] -= moved
    return MenuItem(plan, f"{item.kind}, {frac:g} of next week earlier")


def _with_pulls(items: Iterable[MenuItem], jit: np.ndarray, v: int, pulls: Sequence[float]) -> Iterator[MenuItem]:
    """Each item, then its :func:`_pulled` versions (none for an item whose first week is ``x^J``'s: it
    moves nothing towards the disclosed volume this week, e.g. where the FC's JIT volume already fills it)."""
    for item in items:
        yield item
        if np.allclose(item.plan[v, 0], jit[v, 0], atol=1e-6):
            continue
        for frac in pulls:
            yield _pulled(item, jit, v, frac)


def _room_items(
    ctx: PlanningContext, full: np.ndarray, v: int, rooms: dict[int, float], *, steer: bool, shift: bool, first_week: bool
) -> Iterator[MenuItem]:
    """Items aimed at the weekly volume the vendor disclosed for a preferred FC: steer items with the
    discount capped at that volume (one per surcharge in ``ROOM_SURCHARGES`` and source FC), then
    shifts of ``x^J`` filling the FC up to it. For a weekly commitment (``first_week``) shifts are
    same-week only: a re-timed shift moves units into a later week, so its first week is only a cut."""
    fcs = ctx.public.fcs
    jit = full[v]
    for surcharge in ROOM_SURCHARGES if steer else ():
        for b, room in rooms.items():
            for a in range(ctx.public.F):
                if a != b:
                    yield MenuItem(_steer_plan(ctx, full, v, a, b, surcharge, room), f"steer {fcs[a]}->{fcs[b]} surcharge {surcharge:g} up to {room:g}")
    for b, room in rooms.items() if shift else ():
        for a in range(ctx.public.F):
            if a != b:
                for retime in (False,) if first_week else (True, False):
                    how = "re-timed" if retime else "same week"
                    yield MenuItem(_embed(full, v, _capped_shift_plan(ctx, jit, a, b, room, retime)),
                                   f"shift {fcs[a]}->{fcs[b]} up to {room:g}, {how}")


Preference = Sequence[str] | Mapping[str, float | None]


def _as_preference(preferred: Preference | None) -> dict[str, float | None]:
    if preferred is None:
        return {}
    if isinstance(preferred, str):
        return {preferred: None}
    if isinstance(preferred, Mapping):
        return dict(preferred)
    return {name: None for name in preferred}


def region_fcs(ctx: PlanningContext, region: str) -> list[int]:
    """Indices of the FCs that serve ``region``, cheapest outbound cost first: the retailer agent's
    :meth:`sim.parties.retailer.RetailerAgent.fcs_serving`. The retailer builds the menu, and which of its FCs
    serve a region is its own information. A custom retailer agent without that method cannot take a
    region preference: a user error saying so."""
    serving = getattr(ctx.retailer, "fcs_serving", None)
    if not callable(serving):
        raise FlosimError(
            f"policy 'menu': preference {region!r} is a region, but the retailer agent "
            f"({type(ctx.retailer).__name__}) has no fcs_serving(region) method to name the FCs serving it; "
            "name FCs instead")
    names = list(serving(region))
    unknown = [n for n in names if n not in ctx.public.fcs]
    if unknown:
        raise FlosimError(f"policy 'menu': fcs_serving({region!r}) returned unknown FCs {unknown} (FCs: {list(ctx.public.fcs)})")
    return [ctx.public.fcs.index(n) for n in names]


def _check_volumes(pref: Mapping[Any, Any]) -> None:
    """Each disclosed volume a positive number or ``None``, else one user error listing the bad ones."""
    bad = {p: v for p, v in pref.items() if v is not None and not _positive_number(v)}
    if bad:
        raise FlosimError(f"policy 'menu': preference volumes must be positive numbers (or null), got {bad}")


def _larger(a: float | None, b: float | None) -> float | None:
    """The larger of two disclosed volumes; a number over ``None``."""
    return b if a is None else a if b is None else max(a, b)


def resolve_preference(ctx: PlanningContext, preferred: Preference | None) -> dict[int, float | None]:
    """FC index -> disclosed weekly volume (``None``: none), in the order first named.

    Rules. A name is an FC or a region; a name that is both means the FC (FC names take precedence:
    name the region's FCs to mean the region). A region stands for the FCs serving it
    (:func:`region_fcs`), and a volume given for a region applies to each of them (each item fills
    one FC). An FC named itself keeps its own volume, whatever regions it also serves. An FC reached
    through several named regions takes the largest of their volumes (a number over none): each
    states the weekly room the vendor has towards that FC, and room towards one FC is not added up
    across the regions it serves. The result does not depend on the order of the regions."""
    pref = _as_preference(preferred)
    public = ctx.public
    unknown = [p for p in pref if p not in public.fcs and p not in public.regions]
    if unknown:
        shown = unknown[0] if len(unknown) == 1 else unknown
        raise FlosimError(f"policy 'menu': preference {shown!r} is not an FC or region (FCs: {list(public.fcs)}; regions: {list(public.regions)})")
    _check_volumes(pref)
    out: dict[int, float | None] = {}
    explicit: set[int] = set()
    for name, volume in pref.items():
        volume = None if volume is None else float(volume)
        if name in public.fcs:  # an FC, even if a region has the same name
            f = public.fcs.index(name)
            out[f] = volume
            explicit.add(f)
            continue
        fcs = region_fcs(ctx, name)
        if not fcs:
            raise FlosimError(f"policy 'menu': preference {name!r}: no FC serves that region")
        for f in fcs:
            if f not in explicit:
                out[f] = _larger(out[f], volume) if f in out else volume
    return out


def _positive_number(v: Any) -> bool:
    return _number(v) and v > 0


def build_menu(
    ctx: PlanningContext,
    jit_plan: np.ndarray,
    size: int,
    *,
    method: str = "mixed",
    preferred: Preference | None = None,
    levels: Sequence[float] = DEFAULT_LEVELS,
    first_week: bool = False,
    vendor: int = 0,
    pulls: Sequence[float] = (),
) -> list[MenuItem]:
    """Up to ``size`` distinct candidate plans, ``x^J`` first; see the module docstring.

    ``preferred``: FC or region names, or a mapping from such a name to the weekly volume the vendor
    disclosed for it (``None``: no volume); a region stands for the FCs serving it
    (:func:`resolve_preference`). ``first_week``: items count as distinct only if their first weeks differ
    (the menu of a weekly commitment). ``vendor``: the plan position of the vendor the menu is for (items
    move its block; ``jit_plan`` is the whole plan ``[V, H, F, K]``)."""
    v = vendor
    _check_method(method)
    fcs = list(range(ctx.public.F))
    first: Iterable[MenuItem] = ()  # items aimed at a disclosed volume come before the grids
    gens: list[Iterator[MenuItem]] = []
    pref = resolve_preference(ctx, preferred)
    if pref:
        fcs = list(pref)
        rooms = {f: v for f, v in pref.items() if v is not None}
        if rooms:
            first = _room_items(ctx, jit_plan, v, rooms, steer=method != "shift", shift=method != "discount", first_week=first_week)
            if pulls:
                first = _with_pulls(first, jit_plan, v, pulls)
        if method in ("shift", "mixed"):
            gens.append(_capped_shift_items(ctx, jit_plan, v, fcs))
        if method in ("discount", "mixed"):
            gens.append(_steer_items(ctx, jit_plan, v, fcs))
    if method in ("discount", "mixed"):
        gens.append(_discount_items(ctx, jit_plan, v, fcs, levels))
    if method in ("shift", "mixed"):
        gens.append(_shift_items(ctx, jit_plan, v, fcs))
    key = (lambda p: p[:, 0]) if first_week else (lambda p: p)
    items = [MenuItem(jit_plan, "jit")]
    for item in chain(first, (i for batch in zip_longest(*gens) for i in batch)):
        if len(items) >= size:
            break
        if item is not None and ctx.bounds is not None:  # inside the commitments agreed earlier
            item = MenuItem(ctx.bounds.clip(item.plan), item.kind)
        if item is not None and not any(np.allclose(key(item.plan), key(o.plan), atol=1e-6) for o in items):
            items.append(item)
    return items


def _check_method(method: Any) -> None:
    if method not in METHODS:
        raise FlosimError(f"policy 'menu': method must be 'discount', 'shift' or 'mixed', got {method!r}")


def _number(v: Any) -> bool:
    return isinstance(v, (int, float, np.number)) and not isinstance(v, bool) and bool(np.isfinite(v))


def _fractions(field: str, value: Any, *, one: bool) -> list[float]:
    """``value`` as a list of fractions in (0, 1) (``one``: in (0, 1]), else a user error naming ``field``."""
    interval = "(0, 1]" if one else "(0, 1)"
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise FlosimError(f"policy 'menu': {field} must be a list of fractions in {interval}, got {value!r}")
    value = list(value)
    if any(not _number(f) or not (0 < f <= 1 if one else 0 < f < 1) for f in value):
        raise FlosimError(f"policy 'menu': {field} must be a list of fractions in {interval}, got {value}")
    return value


def _whole(field: str, value: Any, minimum: int) -> int:
    """``value`` as a whole number >= ``minimum`` (``4`` or ``4.0``), else a user error naming it."""
    if not _number(value) or float(value) != int(value) or value < minimum:
        raise FlosimError(f"policy 'menu': {field} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def _check_preference(preference: Any) -> str | list[str] | dict[str, float | None] | None:
    """The ``preference`` parameter, checked for shape: ``None``, ``auto``, an FC or region name, a list
    of names, or a mapping name -> weekly volume (a positive number, or null for none). Names are
    checked against the scenario when the menu is built."""
    if preference is None or preference == "auto":
        return preference
    if isinstance(preference, str):
        return [preference]
    if isinstance(preference, Mapping):
        if not all(isinstance(k, str) for k in preference):
            raise FlosimError(f"policy 'menu': preference names must be FC or region names, got {list(preference)}")
        _check_volumes(preference)
        return dict(preference)
    if isinstance(preference, (list, tuple)) and all(isinstance(k, str) for k in preference):
        return list(preference)
    raise FlosimError(
        "policy 'menu': preference must be 'auto', an FC or region name, a list of names or a mapping "
        f"name -> weekly volume, got {preference!r}"
    )


class MenuPolicy:
    name = "menu"

    def __init__(
        self,
        size: int = 12,
        method: str = "mixed",
        preference: str | list[str] | dict[str, float | None] | None = None,
        disclosure: str = "volume",
        volume_step: float = 100.0,
        levels: Sequence[float] = DEFAULT_LEVELS,
        pulls: Sequence[float] = PULLS,
        pricing: str = "plan",
        commitment: str | dict[str, Any] | CommitmentSettings | None = None,
        items: str | None = None,
        discount: float = 1.0,
        risk_aversion: float = 0.0,
        scenarios: int = 8,
        two_way: bool = False,
        decline: str = "infeasible",
        remedy: str = "none",
        transfer: dict[str, Any] | None = None,
    ) -> None:
        self.remedy = check_remedy("policy 'menu'", remedy)
        size = _whole("size", size, 1)
        if decline not in DECLINE:
            raise FlosimError(f"policy 'menu': decline must be 'infeasible' or 'any', got {decline!r}")
        self.decline = decline
        scenarios = _whole("scenarios", scenarios, 1)
        _check_method(method)
        if isinstance(commitment, str):  # the earlier name of ``items``
            if commitment not in ITEMS:
                raise FlosimError(f"policy 'menu': commitment must be a mapping {{weeks: k, band: b}} or (an alias of "
                                  f"items) 'plan' or 'week', got {commitment!r}")
            if items is not None and items != commitment:
                raise FlosimError(f"policy 'menu': commitment {commitment!r} (an alias of items) contradicts items {items!r}")
            items, commitment = commitment, None
        items = "week" if items is None else items
        if items not in ITEMS:
            raise FlosimError(f"policy 'menu': items must be 'plan' or 'week', got {items!r}")
        #: what an item is: its first week (``week``) or the whole plan (``plan``)
        self.items = items
        #: what the picked plan commits beyond its PO (:mod:`sim.model.commitment`; None: the weekly commitment)
        self.commit = commitment_settings(commitment, f"policies.{self.name}.commitment")
        if pricing not in ("plan", "first-week"):
            raise FlosimError(f"policy 'menu': pricing must be 'plan' or 'first-week', got {pricing!r}")
        levels = _fractions("levels", levels, one=False)
        pulls = _fractions("pulls", pulls, one=True)
        #: fractions of next week's units that items aimed at a disclosed volume also ship this week
        self.pulls = tuple(float(p) for p in pulls)
        if not _number(discount) or not 0 < discount <= 1:
            raise FlosimError(f"policy 'menu': discount must be a number in (0, 1], got {discount!r}")
        if not _number(risk_aversion) or risk_aversion < 0:
            raise FlosimError(f"policy 'menu': risk_aversion must be a number >= 0, got {risk_aversion!r}")
        if not isinstance(two_way, bool):
            raise FlosimError(f"policy 'menu': two_way must be true or false, got {two_way!r}")
        # the transfer rule (policies.transfer_rules): an item's price is its CBT, one-way or two-way
        self.transfer = transfer_settings(transfer, two_way=two_way, allowed=MENU_RULES,
                                          where="policy 'menu'").resolved(DEFAULT_CONTINUATION)
        if self.transfer.payee != "retailer":  # an item's price is paid to the retailer, whose CBT it is
            raise FlosimError(f"policy 'menu': transfer.payee {self.transfer.payee!r} is not implemented by the menu "
                              "(its prices are the retailer's CBTs, paid to the retailer: payee retailer)")
        two_way = self.transfer.rule == "two-way"
        check_continuation("menu", self.transfer.continuation, risk_aversion)
        if disclosure not in ("volume", "names"):
            raise FlosimError(f"policy 'menu': disclosure must be 'volume' or 'names', got {disclosure!r}")
        if not _positive_number(volume_step):
            raise FlosimError(f"policy 'menu': volume_step must be a number > 0, got {volume_step!r}")
        preference = _check_preference(preference)
        self.disclosure, self.volume_step = disclosure, float(volume_step)
        self.size, self.method, self.preference, self.levels = size, method, preference, tuple(sorted(levels))
        self.pricing = pricing
        self.cbt: dict[str, Any] = {"discount": discount, "risk_aversion": risk_aversion, "scenarios": scenarios, "two_way": two_way}
        #: how an item's price values the retailer's continuation (``transfer.continuation``, :mod:`policies.cbt`;
        #: :data:`DEFAULT_CONTINUATION` when left out)
        self.continuation = str(self.transfer.continuation)

    @property
    def commitment(self) -> str:
        """The item contract, ``week`` or ``plan`` (:attr:`items`; its name before mutual commitment)."""
        return self.items

    def bind_scenario(self, scenario: Any) -> None:
        """Called by :func:`policies.registry.make_policy`: a commitment may not reach beyond the horizon."""
        self.commit = commitment_settings(self.commit, f"policies.{self.name}.commitment", scenario.horizon)

    def parameters(self) -> dict[str, Any]:
        """Every parameter as checked and in effect (defaults included), keyed as in the scenario's
        ``policies.menu``: what a results file records to say which menu ran. ``commitment`` is the
        mutual commitment's mapping when one is set, else (as before ``items`` existed) the item contract."""
        commitment: Any = self.items if self.commit is None else self.commit.model_dump()
        return {"size": self.size, "method": self.method, "preference": self.preference, "disclosure": self.disclosure,
                "volume_step": self.volume_step, "levels": list(self.levels), "pulls": list(self.pulls), "pricing": self.pricing,
                "items": self.items, "commitment": commitment, **self.cbt, "transfer": {"continuation": self.continuation},
                "decline": self.decline, "remedy": self.remedy}

    def preferred(self, ctx: PlanningContext, vendor: str | None = None) -> list[str] | dict[str, float | None] | None:
        """The coarse preference vendor ``vendor``'s menu is tailored to (default: the only vendor): as
        given (the same for every vendor), or (``auto``) what that vendor's agent discloses: FC names,
        with (``disclosure: volume``) the weekly volume it has room for at each, rounded to
        ``volume_step``."""
        if self.preference != "auto":
            return self.preference
        agent = ctx.vendor if vendor is None else ctx.vendors[vendor]
        names = agent.coarse_preference()
        if self.disclosure == "names":
            return names
        volumes = agent.coarse_volumes(self.volume_step)
        return {name: volumes.get(name) for name in names}

    def pricer(self, ctx: PlanningContext, jit_plan: np.ndarray) -> TransferPricer:
        """The week's pricer against ``x^J``: one for every vendor's menu (the same JIT counterfactual,
        the same demand paths)."""
        return TransferPricer(ctx, jit_plan, **self.cbt, commit=self.commit, continuation=self.continuation)

    def measure(self, ctx: PlanningContext, jit_plan: np.ndarray, pricer: TransferPricer) -> TransferPricer:
        """The pricer the retailer's ex-ante margin is measured with: its expected extra cost over the
        demand paths, whatever the prices' valuation (``pricer`` itself unless the prices are on the
        forecast; then each path's cost from one solve, ``paths-whole``)."""
        if self.continuation != "forecast":
            return pricer
        return TransferPricer(ctx, jit_plan, **self.cbt, commit=self.commit, continuation="paths-whole")

    def offer(
        self, ctx: PlanningContext, vendor: str | None = None, *, own: PlanCost | None = None,
        pricer: TransferPricer | None = None,
    ) -> tuple[list[MenuItem], list[CBTBreakdown], Any]:
        """Vendor ``vendor``'s menu this week (default: the only vendor) and the price of each item.

        Items are whole plans ``[V, H, F, K]`` that differ from ``x^J`` (``own``, the retailer's own
        plan; solved here if not given) only in that vendor's block (under weekly commitment: in its
        block's first week, the rest the retailer's own continuation). ``pricer``: the week's
        :meth:`pricer` (built here if not given)."""
        name = _vendor_name(ctx, vendor)
        v = ctx.public.vendor_index(name)
        own = ctx.retailer.preferred_plan() if own is None else own
        items = build_menu(ctx, own.plan, self.size, method=self.method, preferred=self.preferred(ctx, name),
                           levels=self.levels, first_week=self.items == "week", vendor=v, pulls=self.pulls)
        pricer = self.pricer(ctx, own.plan) if pricer is None else pricer
        quote = pricer.price_plan if self.pricing == "plan" else pricer.price
        if self.items == "week":
            # an item is its first week; the rest is the retailer's own optimal continuation, and the
            # price is the first week's CBT (what binds), which then equals the plan's price. The
            # completion is the pricing's own first solve (one LP per item, not two)
            completed: list[MenuItem] = [MenuItem(own.plan, "jit")]
            for item in items[1:]:
                plan = pricer.completed(item.plan[:, 0]).plan
                if not any(np.allclose(plan, o.plan, atol=1e-6) for o in completed):
                    completed.append(MenuItem(plan, f"{item.kind}, first week"))
            items, quote = completed, pricer.price
        return items, [quote(item.plan) for item in items], own

    def decide(self, ctx: PlanningContext) -> Decision:
        public = ctx.public
        jit = jit_outcome(ctx)  # the JIT counterfactual: x^J, and each vendor's cost of its block (may short)
        pricer = self.pricer(ctx, jit.plan)
        picks: dict[str, Pick] = {}
        for name, agent in ctx.vendors.items():
            v = public.vendor_index(name)
            items, quotes, _ = self.offer(ctx, name, own=jit.retailer, pricer=pricer)
            # the vendor's choice: its own cost of its block plus the price; it never shows its costs
            costs = [_own_cost(agent, item.plan[v], jit.plan[v]) for item in items]
            totals = [c + q.paid for c, q in zip(costs, quotes)]
            pick = int(np.argmin(totals))
            if not np.isfinite(totals[pick]) or (self.decline == "any" and jit.vendors[name].total < totals[pick]):
                # it can ship no item (x^J asks more of it than it can make or truck), or (``decline:
                # any``) JIT terms suit it better than every item: it declines the menu and stays on
                # JIT terms, shipping what it would under JIT, at no price
                shipped = jit.vendors[name].plan
                items = [*items, MenuItem(_embed(jit.plan, v, shipped), DECLINED)]
                quotes = [*quotes, _no_price(pricer)]
                costs, totals = [*costs, jit.vendors[name].total], [*totals, jit.vendors[name].total]
                pick = len(items) - 1
            picks[name] = Pick(v, items, quotes, costs, totals, pick)
        plan, scaled = self._combine(ctx, picks)
        one = len(picks) == 1
        if one and np.array_equal(plan, next(iter(picks.values())).item.plan):
            combined = next(iter(picks.values())).quote  # the pick alone: its own price is the combination's
        else:
            combined = pricer.price_plan(plan) if self._whole_plan_price else pricer.price(plan)
        r_plan = ctx.retailer.evaluate(plan).total
        paid = {name: p.quote.paid for name, p in picks.items()}
        own_cost = {name: p.costs[p.pick] if np.array_equal(plan[p.v], p.item.plan[p.v])
                    else ctx.vendors[name].evaluate(plan[p.v]).total for name, p in picks.items()}
        received = sum(paid.values())
        diagnostics: dict[str, Any] = {
            "contract": "plan" if self._whole_plan_price and self.items == "plan" else "first-week",
            "transfer_continuation": self.continuation,
        }
        if one:
            (name, p), = picks.items()
            diagnostics.update({"menu_size": len(p.items), "menu_pick": p.pick, "menu_item": p.item.kind,
                                "cbt_immediate": p.quote.immediate, "cbt_future_ce": p.quote.future_ce})
        else:
            for name, p in picks.items():
                diagnostics.update({f"menu_size_{name}": len(p.items), f"menu_pick_{name}": p.pick,
                                    f"menu_item_{name}": p.item.kind, f"cbt_immediate_{name}": p.quote.immediate,
                                    f"cbt_future_ce_{name}": p.quote.future_ce})
            diagnostics["receiving_scaled"] = scaled
        # the retailer: what it receives less its expected cost of the combined plan against x^J, in
        # which a vendor that declined ships what it ships under JIT in both (like for like); expected
        # over the demand paths whatever the prices' valuation
        measure = self.measure(ctx, jit.plan, pricer)
        if measure is not pricer:
            combined = measure.price_plan(plan) if self._whole_plan_price else measure.price(plan)
        extra = combined.immediate + combined.future_mean
        declined = [p for p in picks.values() if p.declined]
        jit_retailer = jit.retailer.total
        if declined:
            reference = np.array(jit.plan, dtype=float, copy=True)
            for p in declined:
                reference[p.v] = p.item.plan[p.v]
            ref = measure.price_plan(reference) if self._whole_plan_price else measure.price(reference)
            extra -= ref.immediate + ref.future_mean
            jit_retailer = ctx.retailer.evaluate(reference).total
        diagnostics["ex_ante_margin_retailer"] = received - extra
        for name, p in picks.items():
            # against JIT without a menu (jit_outcome: the vendor's block of x^J, shorting what does not pay)
            diagnostics[f"ex_ante_margin_{name}"] = jit.vendors[name].total - (own_cost[name] + paid[name])
            # the vendor's own criterion: its cost plus price of the JIT item less the pick's (>= 0;
            # equal to the margin above when the JIT item's price is zero, as the CBT of x^J is, and
            # the vendor would ship x^J in full)
            saving = p.totals[0] - p.totals[p.pick] if np.isfinite(p.totals[0]) else 0.0  # 0: declined
            diagnostics["vendor_saving" if one else f"vendor_saving_{name}"] = saving
        diagnostics["planned_social"] = r_plan + sum(own_cost.values())
        # x^J at no price: each vendor's cost of shipping its block in full; a vendor that declined
        # ships what it ships under JIT (and the retailer's cost is of that plan)
        diagnostics["jit_planned_social"] = jit_retailer + sum(
            p.costs[0] if np.isfinite(p.costs[0]) else jit.vendors[name].total for name, p in picks.items())
        # a vendor that declined stays on JIT terms: it commits nothing beyond the PO, nor the retailer
        # towards it (nothing at all when every vendor declined)
        accepted = tuple(name for name, p in picks.items() if not p.declined)
        return Decision(
            plan=plan,
            transfers={"retailer": -received, **paid},
            committed=True,
            planned={"retailer": r_plan - received, **{name: own_cost[name] + paid[name] for name in picks}},
            diagnostics=diagnostics,
            remedy=self.remedy,
            reprice=lambda delivered, shocked=None: self.repriced(pricer, picks, delivered, po=plan[:, 0],
                                                                  shocked=shocked, ctx=ctx),
            commit=self.commit if accepted else None,
            commit_vendors=None if len(accepted) == len(picks) else accepted,
            counterfactual={name: jit.plan[:, 0].copy() for name, p in picks.items() if not p.declined},
        )

    def repriced(self, pricer: TransferPricer, picks: Mapping[str, "Pick"], delivered: np.ndarray,
                 po: np.ndarray | None = None, shocked: Mapping[str, np.ndarray] | None = None,
                 ctx: PlanningContext | None = None) -> dict[str, float]:
        """The week's prices recomputed on the delivered PO ``delivered`` ``[V, F, K]`` (remedies
        ``refund`` and ``damages``, :mod:`sim.execution`): each vendor's picked item priced as before
        with its block's first week less what it left unshipped of the PO ``po`` (default: its item's
        first week; the PO sent may be the items scaled to the FCs' receiving capacity), against ``x^J``
        with that vendor's block less ``shocked[v]`` ``[F, K]``, what the week's shock would have made it
        short on JIT terms (the counterfactual under the same shock, priced on the same demand paths;
        ``ctx``: the week's context, needed then). A vendor that shipped its block of ``po`` in full and
        whose JIT block the shock left whole keeps its agreed price, and one on JIT terms (declined)
        still pays nothing."""
        shocked = shocked or {}
        paid = {}
        for name, p in picks.items():
            ordered = np.maximum(np.asarray(p.item.plan[p.v, 0] if po is None else po[p.v], dtype=float), 0.0)
            missing = np.maximum(ordered - np.asarray(delivered[p.v], dtype=float), 0.0)
            jit_short = np.asarray(shocked.get(name, 0.0), dtype=float)
            if p.declined or (float(missing.sum()) <= FULL_UNITS and float(jit_short.sum()) <= FULL_UNITS):
                paid[name] = p.quote.paid
                continue
            item = np.array(p.item.plan, dtype=float, copy=True)
            item[p.v, 0] = np.maximum(item[p.v, 0] - missing, 0.0)
            against = pricer
            if float(jit_short.sum()) > FULL_UNITS:
                if ctx is None:
                    raise ValueError("menu repriced: a counterfactual shortfall needs the week's context (ctx)")
                jit = np.array(pricer.jit_plan, dtype=float, copy=True)
                jit[p.v, 0] = np.maximum(jit[p.v, 0] - jit_short, 0.0)
                against = TransferPricer(ctx, jit, discount=pricer.discount, risk_aversion=pricer.risk_aversion,
                                         two_way=pricer.two_way, paths=pricer.paths)
            paid[name] = (against.price_plan(item) if self._whole_plan_price else against.price(item)).paid
        return {"retailer": -sum(paid.values()), **paid}

    @property
    def _whole_plan_price(self) -> bool:
        return self.pricing == "plan" and self.items == "plan"

    def _combine(self, ctx: PlanningContext, picks: Mapping[str, "Pick"]) -> tuple[np.ndarray, bool]:
        """The plan the retailer sends: each vendor's block from its pick (under weekly commitment the
        pick's first week and its completion; only the first week binds), scaled down where the blocks
        together exceed an FC's receiving capacity (:meth:`sim.model.data.PublicData.within_receiving_capacity`,
        as every policy does). Whether it scaled."""
        first = next(iter(picks.values()))
        plan = np.array(first.item.plan, dtype=float, copy=True)
        for p in picks.values():
            plan[p.v] = p.item.plan[p.v]
        fitted = ctx.public.within_receiving_capacity(plan)
        scaled = not np.array_equal(fitted, plan)
        plan = fitted if scaled else plan
        if ctx.bounds is not None:  # inside the commitments agreed earlier (a declined vendor: up to its floor)
            plan = ctx.bounds.clip(plan)
        return plan, scaled


@dataclass(frozen=True)
class Pick:
    """One vendor's menu this week and its choice."""

    v: int  # the vendor's position on the plan's vendor axis
    items: list[MenuItem]
    quotes: list[CBTBreakdown]
    costs: list[float]  # its own cost of each item's block
    totals: list[float]  # cost plus price: what it minimises
    pick: int

    @property
    def declined(self) -> bool:
        """It could ship no item and stayed on JIT terms."""
        return self.item.kind == DECLINED

    @property
    def item(self) -> MenuItem:
        return self.items[self.pick]

    @property
    def quote(self) -> CBTBreakdown:
        return self.quotes[self.pick]


def _own_cost(agent: Any, block: np.ndarray, jit_block: np.ndarray) -> float:
    """A vendor's cost of shipping ``block``, its evaluation started near its block of ``x^J`` (``jit_block``) where
    its agent takes that (:meth:`sim.parties.vendor.VendorAgent.evaluate`; an outside agent is asked the
    protocol's query alone): the same total within solver tolerance, whatever order the items come in."""
    if getattr(agent, "evaluates_near", False):
        return float(agent.evaluate(block, near=jit_block).total)
    return float(agent.evaluate(block).total)


def _no_price(pricer: TransferPricer) -> CBTBreakdown:
    """The price of staying on JIT terms: nothing."""
    return CBTBreakdown(immediate=0.0, future_ce=0.0, future_mean=0.0, raw=0.0, paid=0.0,
                        retailer_cost_efficient=pricer.c_jit, retailer_cost_jit=pricer.c_jit)


def _vendor_name(ctx: PlanningContext, vendor: str | None) -> str:
    if vendor is None:
        if ctx.public.V != 1:
            raise FlosimError(f"policy 'menu': this scenario has {ctx.public.V} vendors ({', '.join(ctx.public.vendors)}); "
                              "name the vendor whose menu is offered")
        return ctx.public.vendors[0]
    if vendor not in ctx.vendors:
        raise FlosimError(f"policy 'menu': no vendor named {vendor!r} (vendors: {', '.join(ctx.public.vendors)})")
    return vendor
