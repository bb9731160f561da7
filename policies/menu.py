"""Menu of contracts (DESIGN section 3, "Menu of contracts"; the blog's section on it).

Each week the retailer builds candidate six-week plans, always including its own plan ``x^J``,
prices each at the cost-benefit transfer it would carry (:class:`policies.cbt.TransferPricer`), and
offers the menu. The vendor picks the item minimising its own cost plus price; the PO is that item's
first week. No cost model is revealed: the retailer sees only which item was picked, the vendor only
plans and prices.

Commitment and pricing. ``commitment: week`` (default): only the first week of an item binds, as
with CPP-VCG; each candidate is cut to its first week and completed with the retailer's own optimal
continuation, and priced at the CBT its first week carries (the CPP-VCG rule). For such items that
price equals the retailer's deviation cost over the whole completed plan, so the vendor's cost plus
price is the social cost of the item up to a constant: the vendor picks the best item for the supply
chain, and pays only for what binds. ``commitment: plan``: items are whole six-week plans priced as
whole plans (``pricing: plan``: the retailer's deviation cost over the plan, first week on the
forecast, later weeks as a certainty equivalent); the pick is aligned too, but re-priced every week
on a rolling horizon the vendor pays for the same later weeks again and again (on ``pilot`` it ends
worse off than under JIT). ``commitment: plan`` with ``pricing: first-week`` prices whole plans at
their first week only: a vendor then prefers items whose unpriced later weeks suit it, and the
menu can do worse than JIT; it is kept to show that.

Candidates (``method``):

* ``discount``: the retailer's own optimal plan under a virtual per-unit inbound discount at one FC,
  on a grid of levels (fractions of each product's wholesale price, below 1);
* ``shift``: ``x^J`` with a fraction of one FC's volume moved to another, re-timed by the difference
  in lead times so that moved units arrive in the week they were planned to;
* ``mixed`` (default): both, interleaved.

Tailoring. When the vendor declares a coarse preference (a set of FCs it would rather ship to, names
only; ``preference: auto`` asks its agent, or give a list), the menu concentrates on it: shifts of
volume towards the preferred FCs, and "steer" items (the retailer's own plan under a surcharge at
another FC and a discount at the preferred one), both capped at a grid of weekly volumes (a spare
truck is worth filling only up to its size); then plain discounts and shifts towards them.

Menus are nested: a larger menu contains every item of a smaller one with the same parameters.
Parameters: ``size`` (items including ``x^J``), ``method``, ``preference``, ``levels``,
``commitment``, ``pricing``, and the CBT parameters ``discount``, ``risk_aversion``, ``scenarios``, ``two_way``.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import zip_longest
from typing import Any, Iterator, Sequence

import numpy as np

from policies.base import Decision, PlanningContext
from policies.cbt import CBTBreakdown, TransferPricer
from sim.errors import FlosimError

DEFAULT_LEVELS = (0.05, 0.1, 0.2, 0.35, 0.5, 0.75)
SHIFT_FRACTIONS = (0.25, 0.5, 1.0)
CAP_MULTIPLES = (1.25, 1.4, 1.1, 1.55, 1.7, 1.85, 2.0)
STEER_SURCHARGES = (0.2, 0.1)
STEER_DISCOUNT = 0.1


@dataclass(frozen=True)
class MenuItem:
    plan: np.ndarray
    kind: str  # "jit", "discount DAL=0.2", "shift PHX->DAL 0.5", ...


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


def _discount_items(ctx: PlanningContext, fcs: Sequence[int], levels: Sequence[float]) -> Iterator[MenuItem]:
    for level in levels:
        for f in fcs:
            d = np.zeros(ctx.public.F)
            d[f] = level
            yield MenuItem(ctx.retailer.preferred_plan(inbound_discount=d).plan, f"discount {ctx.public.fcs[f]}={level:g}")


def _shift_items(ctx: PlanningContext, jit: np.ndarray, targets: Sequence[int]) -> Iterator[MenuItem]:
    lead = ctx.public.lead_time
    for frac in SHIFT_FRACTIONS:
        for b in targets:
            for a in range(ctx.public.F):
                if a != b:
                    plan = _move(jit, a, b, frac * jit[:, a, :], int(lead[a] - lead[b]))
                    yield MenuItem(plan, f"shift {ctx.public.fcs[a]}->{ctx.public.fcs[b]} {frac:g}")


def _capped_shift_items(ctx: PlanningContext, jit: np.ndarray, targets: Sequence[int]) -> Iterator[MenuItem]:
    """Move volume towards a preferred FC until its weekly volume reaches a cap, on a grid of caps
    (multiples of its largest weekly JIT volume). Each cap comes re-timed (moved units arrive when
    planned) and un-timed (shipped the same week, arriving early where ``b``'s lead time is shorter)."""
    vol, lead = ctx.public.volume, ctx.public.lead_time
    H = jit.shape[0]
    for mult in CAP_MULTIPLES:
        for b in targets:
            cap = mult * (float(_weekly_volume(jit, b, vol).max()) or float(vol.mean()))
            for a in range(ctx.public.F):
                if a == b:
                    continue
                src = _weekly_volume(jit, a, vol)
                for retime in (True, False):
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
                    how = "re-timed" if retime else "same week"
                    yield MenuItem(plan, f"shift {ctx.public.fcs[a]}->{ctx.public.fcs[b]} up to {mult:g}x volume, {how}")


def _steer_items(ctx: PlanningContext, jit: np.ndarray, targets: Sequence[int]) -> Iterator[MenuItem]:
    """Steer volume from another FC ``a`` to a preferred FC ``b``: the retailer's own optimal plan under
    a surcharge at ``a`` and a discount at ``b`` that applies only up to a weekly volume cap (a grid of
    multiples of ``b``'s largest weekly JIT volume). The retailer chooses which demand to move, so
    the plan stays consistent with its own outbound costs."""
    vol = ctx.public.volume
    for mult in CAP_MULTIPLES:
        for surcharge in STEER_SURCHARGES:
            for b in targets:
                cap = np.full(ctx.public.F, np.inf)
                cap[b] = mult * (float(_weekly_volume(jit, b, vol).max()) or float(vol.mean()))
                for a in range(ctx.public.F):
                    if a == b:
                        continue
                    d = np.zeros(ctx.public.F)
                    d[a], d[b] = -surcharge, STEER_DISCOUNT
                    plan = ctx.retailer.preferred_plan(inbound_discount=d, discount_cap=cap).plan
                    yield MenuItem(plan, f"steer {ctx.public.fcs[a]}->{ctx.public.fcs[b]} surcharge {surcharge:g} up to {mult:g}x volume")


def build_menu(
    ctx: PlanningContext,
    jit_plan: np.ndarray,
    size: int,
    *,
    method: str = "mixed",
    preferred: Sequence[str] | None = None,
    levels: Sequence[float] = DEFAULT_LEVELS,
) -> list[MenuItem]:
    """Up to ``size`` distinct candidate plans, ``x^J`` first; see the module docstring."""
    if method not in ("discount", "shift", "mixed"):
        raise FlosimError(f"menu method must be 'discount', 'shift' or 'mixed', got {method!r}")
    fcs = list(range(ctx.public.F))
    gens: list[Iterator[MenuItem]] = []
    if preferred:
        unknown = [p for p in preferred if p not in ctx.public.fcs]
        if unknown:
            raise FlosimError(f"menu preference names unknown FCs {unknown} (FCs: {list(ctx.public.fcs)})")
        fcs = [ctx.public.fcs.index(p) for p in preferred]
        if method in ("shift", "mixed"):
            gens.append(_capped_shift_items(ctx, jit_plan, fcs))
        if method in ("discount", "mixed"):
            gens.append(_steer_items(ctx, jit_plan, fcs))
    if method in ("discount", "mixed"):
        gens.append(_discount_items(ctx, fcs, levels))
    if method in ("shift", "mixed"):
        gens.append(_shift_items(ctx, jit_plan, fcs))
    items = [MenuItem(jit_plan, "jit")]
    for batch in zip_longest(*gens):
        for item in batch:
            if len(items) >= size:
                return items
            if item is not None and not any(np.allclose(item.plan, o.plan, atol=1e-6) for o in items):
                items.append(item)
    return items


class MenuPolicy:
    name = "menu"

    def __init__(
        self,
        size: int = 12,
        method: str = "mixed",
        preference: str | list[str] | None = None,
        levels: Sequence[float] = DEFAULT_LEVELS,
        pricing: str = "plan",
        commitment: str = "week",
        discount: float = 1.0,
        risk_aversion: float = 0.0,
        scenarios: int = 8,
        two_way: bool = False,
    ) -> None:
        if size < 1:
            raise FlosimError(f"policy 'menu': size must be >= 1, got {size}")
        if method not in ("discount", "shift", "mixed"):
            raise FlosimError(f"policy 'menu': method must be 'discount', 'shift' or 'mixed', got {method!r}")
        if commitment not in ("plan", "week"):
            raise FlosimError(f"policy 'menu': commitment must be 'plan' or 'week', got {commitment!r}")
        self.commitment = commitment
        if pricing not in ("plan", "first-week"):
            raise FlosimError(f"policy 'menu': pricing must be 'plan' or 'first-week', got {pricing!r}")
        if any(not 0 < lv < 1 for lv in levels):
            raise FlosimError(f"policy 'menu': discount levels must be fractions in (0, 1), got {list(levels)}")
        if not 0 < discount <= 1 or risk_aversion < 0 or scenarios < 1:
            raise FlosimError(
                "policy 'menu': need 0 < discount <= 1, risk_aversion >= 0, scenarios >= 1 "
                f"(got {discount}, {risk_aversion}, {scenarios})"
            )
        if isinstance(preference, str) and preference != "auto":
            preference = [preference]
        self.size, self.method, self.preference, self.levels = size, method, preference, tuple(sorted(levels))
        self.pricing = pricing
        self.cbt: dict[str, Any] = {"discount": discount, "risk_aversion": risk_aversion, "scenarios": scenarios, "two_way": two_way}

    def offer(self, ctx: PlanningContext) -> tuple[list[MenuItem], list[CBTBreakdown], Any]:
        """The week's menu and the price of each item."""
        own = ctx.retailer.preferred_plan()
        preferred = ctx.vendor.coarse_preference() if self.preference == "auto" else self.preference
        items = build_menu(ctx, own.plan, self.size, method=self.method, preferred=preferred, levels=self.levels)
        pricer = TransferPricer(ctx, own.plan, **self.cbt)
        quote = pricer.price_plan if self.pricing == "plan" else pricer.price
        if self.commitment == "week":
            # an item is its first week; the rest is the retailer's own optimal continuation, and the
            # price is the first week's CBT (what binds), which then equals the plan's price
            completed: list[MenuItem] = [MenuItem(own.plan, "jit")]
            for item in items[1:]:
                plan = ctx.retailer.cost_with_first_week(item.plan[0]).plan
                if not any(np.allclose(plan, o.plan, atol=1e-6) for o in completed):
                    completed.append(MenuItem(plan, f"{item.kind}, first week"))
            items, quote = completed, pricer.price
        return items, [quote(item.plan) for item in items], own

    def decide(self, ctx: PlanningContext) -> Decision:
        items, quotes, own = self.offer(ctx)
        # the vendor's choice: its own cost of each plan plus the price; it never shows its costs
        vendor_costs = [ctx.vendor.evaluate(item.plan).total for item in items]
        totals = [c + q.paid for c, q in zip(vendor_costs, quotes)]
        pick = int(np.argmin(totals))
        item, quote = items[pick], quotes[pick]
        r_item = ctx.retailer.evaluate(item.plan).total
        return Decision(
            plan=item.plan,
            transfer=quote.paid,
            committed=True,
            planned={"retailer": r_item - quote.paid, "vendor": totals[pick]},
            diagnostics={
                "contract": "plan" if self.pricing == "plan" and self.commitment == "plan" else "first-week",
                "menu_size": len(items),
                "menu_pick": pick,
                "menu_item": item.kind,
                "cbt_immediate": quote.immediate,
                "cbt_future_ce": quote.future_ce,
                "ex_ante_margin_retailer": quote.paid - (quote.immediate + quote.future_mean),
                "ex_ante_margin_vendor": vendor_costs[0] - totals[pick],
                "planned_social": r_item + vendor_costs[pick],
                "jit_planned_social": own.total + vendor_costs[0],
            },
        )
