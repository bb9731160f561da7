"""The incentive audit's lies: generated from a party's private data, or today's hand-written set.

A :class:`Lie` changes what one party *reports*: its private data (``apply``) and, for what the
party observes week by week rather than holds as data, what its agent observes (``observe``: the
retailer's stock on hand and forecast, a vendor's stock at its origins). The party's true data and
true state are untouched; the audit measures its true outcome.

Generated families (:func:`generated_lies`), for every private parameter of the party:

* each array parameter scaled as a whole, and at one index of each labelled axis at a time, by every
  factor of :data:`COST_FACTORS` (costs) or :data:`QUANTITY_FACTORS` (quantities: capacity, stock,
  spare truck volume, forecast; 0 hides the quantity). Names read ``holding[product=razors] x2``
  (one index) or ``holding x2`` (the whole parameter);
* the retailer: receiving cost per FC; holding cost and lost-sales penalty per product; outbound
  cost per FC and per region; the terminal value (a number: scaled as a whole); its stock on hand per
  FC (``initial_stock``: the stock it reports each week, its initial stock in week 0); its forecast per
  region (``forecast``: not a data field; the retailer observes it each week, and it sets the demand
  scenarios the CBT is priced on);
* a vendor: capacity and holding cost per origin; production cost per origin and per product; stock
  per origin (``initial_stock``, as for the retailer); spare truck volume, spare-volume cost and
  truckload cost per lane.

A lie that changes nothing (scaling a zero, or an infinite outbound cost) is left out, except the
stock and forecast lies: they scale what the party observes each week, which the data cannot tell
(an origin without stock in week 0 may hold some later). Scaling cannot overstate a zero: phantom
stock at an empty origin, or spare volume on a lane without any, is not among the lies. Fields that
are structure, not private parameters a party could misstate to gain, are not lied about: they are
listed in :data:`STRUCTURE` with the reason.

:func:`default_lies` is the audit's hand-written set (names unchanged: ``scale_costs_x0.5``,
``inflate_lane_CIN->DAL_x3``, ``hide_spare_volume``, ``understate_capacity_x0.7``,
``overstate_capacity_x1.5``, ``overstate_capacity_<largest origin>_x2``,
``inflate_holding_x3``, ``inflate_lost_sales_x1.5``), :func:`all_lies` that set plus the generated
families, and :func:`pick_lies` the audit's choice for ``--lies``: the default set, all, or a number
drawn reproducibly from a seed.

What a user may do: build a party's lies with these functions and pass them to
:func:`experiments.audit.run_audit` through ``lies=``, or run ``flosim audit --lies all|N``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable

import numpy as np

from sim.model.data import PublicData, RetailerData, VendorData
from sim.model.decision import RETAILER
from sim.model.errors import FlosimError
from sim.parties.retailer import RetailerAgent, RetailerState
from sim.parties.vendor import VendorAgent, VendorState

#: factors a cost is scaled by (each lie: one factor)
COST_FACTORS = (0.5, 0.8, 1.25, 2.0)
#: factors a quantity is scaled by; 0 hides it
QUANTITY_FACTORS = (0.0, 0.5, 0.8, 1.25, 2.0)
#: the hand-written vendor lies' factors for all costs together
ALPHAS = (0.5, 0.8, 1.25, 2.0)
#: the control "lie" of every party: its true data, reported through the same path as a lie (gain 0)
TRUTHFUL = "truthful"
#: spawn key of the lie-sampling stream: the audit's seed spawns it, apart from the world's streams
LIE_STREAM = 0x6C696573

COST, QUANTITY = "cost", "quantity"

#: the retailer's private parameters: field -> (one label per array axis, None: not lied about per
#: index on that axis; kind). ``forecast`` is observed each week, not a field of RetailerData.
RETAILER_PARAMETERS: dict[str, tuple[tuple[str | None, ...], str]] = {
    "receiving": (("fc",), COST),
    "holding": (("product",), COST),
    "penalty": (("product",), COST),
    "outbound": (("fc", "region"), COST),
    "terminal_value": ((), COST),
    "initial_stock": (("fc", None), QUANTITY),
    "forecast": ((None, "region", None), QUANTITY),
}
#: a vendor's private parameters, as for the retailer
VENDOR_PARAMETERS: dict[str, tuple[tuple[str | None, ...], str]] = {
    "capacity": (("origin",), QUANTITY),
    "production": (("origin", "product"), COST),
    "holding": (("origin",), COST),
    "initial_stock": (("origin", None), QUANTITY),
    "spare_volume": (("lane",), QUANTITY),
    "spare_cost": (("lane",), COST),
    "truckload_cost": (("lane",), COST),
}
#: fields of the private data that are not lied about, and why
STRUCTURE: dict[str, str] = {
    "name": "the party's name: who is reporting",
    "origins": "origin names: labels",
    "lane_origin": "which origin a lane leaves: the network's shape, checked when goods ship",
    "lane_fc": "which FC a lane reaches: the network's shape, checked when goods ship",
    "lane_names": "lane names: labels",
    "supplies": "which products the vendor makes: public (the wholesale price list)",
    "lane_offset": "the lane's position in the scenario's lane order: bookkeeping",
}
#: the observed parameters (not data fields), with the agent state they distort
OBSERVED = ("forecast", "initial_stock")


@dataclass(frozen=True)
class Lie:
    """One misreport of one party. ``apply``: private data -> reported private data; ``observe`` (if
    set): what the party observes -> what it reports observing (retailer: ``(state, forecast)``, a
    vendor: ``state``). ``parameter``: the parameter lied about (a data field, ``forecast``, ``costs``
    for all costs together, or ``""`` for the truthful control)."""

    party: str  # the liar's party name: "retailer" or a vendor's name
    name: str
    apply: Callable[[Any], Any]
    parameter: str = ""
    observe: Callable[..., Any] | None = None


class _MisreportingRetailer(RetailerAgent):
    """A retailer agent that reports a distorted view of its stock or forecast each week."""

    def __init__(self, public: PublicData, data: RetailerData, distort: Callable[..., Any]) -> None:
        super().__init__(public, data)
        self._distort = distort

    def observe(self, state: RetailerState, forecast: np.ndarray) -> None:
        super().observe(*self._distort(state, np.asarray(forecast, dtype=float)))


class _MisreportingVendor(VendorAgent):
    """A vendor agent that reports a distorted view of its stock each week."""

    def __init__(self, public: PublicData, data: VendorData, distort: Callable[..., Any]) -> None:
        super().__init__(public, data)
        self._distort = distort

    def observe(self, state: VendorState) -> None:
        super().observe(self._distort(state))


def liar_agent(public: PublicData, lie: Lie, true_data: Any) -> Any:
    """The agent that answers for ``lie.party`` while it tells ``lie`` (true data ``true_data``)."""
    data = lie.apply(true_data)
    if lie.party == RETAILER:
        return RetailerAgent(public, data) if lie.observe is None else _MisreportingRetailer(public, data, lie.observe)
    return VendorAgent(public, data) if lie.observe is None else _MisreportingVendor(public, data, lie.observe)


def _scaled(a: np.ndarray, factor: float, axis: int | None, index: int | None) -> np.ndarray:
    """``a`` with ``factor`` applied everywhere (``axis`` None) or at ``index`` on ``axis``; infinite
    entries (no route) stay as they are."""
    out = np.array(a, dtype=float, copy=True)
    if axis is None:
        sel: Any = slice(None)
    else:
        sel = tuple([slice(None)] * axis + [index])
    part = out[sel]
    out[sel] = np.where(np.isfinite(part), part * factor, part)
    return out


def _labels(public: PublicData, data: Any) -> dict[str, tuple[str, ...]]:
    labels = {"fc": public.fcs, "region": public.regions, "product": public.products}
    if isinstance(data, VendorData):
        labels.update(origin=data.origins, lane=data.lane_names)
    return labels


def _field_lie(party: str, param: str, factor: float, axis: int | None, index: int | None, label: str) -> Lie:
    name = f"{param}{label} x{factor:g}"
    if param == "forecast":
        def distort_forecast(state: RetailerState, forecast: np.ndarray) -> tuple[RetailerState, np.ndarray]:
            return state, _scaled(forecast, factor, axis, index)

        return Lie(party, name, lambda d: d, param, distort_forecast)
    if param == "initial_stock":
        # the stock on hand it reports each week (week 0: its initial stock), and the data field alike
        def apply_stock(d: Any) -> Any:
            return replace(d, initial_stock=_scaled(d.initial_stock, factor, axis, index))

        if party == RETAILER:
            def distort_retailer(state: RetailerState, forecast: np.ndarray) -> tuple[RetailerState, np.ndarray]:
                return replace(state, stock=_scaled(state.stock, factor, axis, index)), forecast

            return Lie(party, name, apply_stock, param, distort_retailer)

        def distort_vendor(state: VendorState) -> VendorState:
            return replace(state, stock=_scaled(state.stock, factor, axis, index))

        return Lie(party, name, apply_stock, param, distort_vendor)

    def apply(d: Any) -> Any:
        value = getattr(d, param)
        if np.ndim(value) == 0:
            return replace(d, **{param: float(value) * factor})
        return replace(d, **{param: _scaled(value, factor, axis, index)})

    return Lie(party, name, apply, param)


def _changes(value: np.ndarray, factor: float, axis: int | None, index: int | None) -> bool:
    """Whether scaling changes anything: some finite, nonzero entry is touched."""
    part = np.asarray(value, dtype=float)
    if axis is not None:
        part = np.take(part, index, axis=axis)
    return factor != 1.0 and bool(np.any(np.isfinite(part) & (part != 0)))


def generated_lies(public: PublicData, data: RetailerData | VendorData, forecast: np.ndarray | None = None) -> list[Lie]:
    """Every generated lie of the party whose private data is ``data``: each parameter of
    :data:`RETAILER_PARAMETERS` / :data:`VENDOR_PARAMETERS` scaled as a whole and at one index of
    each labelled axis at a time (module docstring). ``forecast`` (``[H, R, K]``, retailer only) is
    used to leave out lies that change nothing; without it every forecast lie is kept."""
    retailer = isinstance(data, RetailerData)
    party = RETAILER if retailer else data.name
    params = RETAILER_PARAMETERS if retailer else VENDOR_PARAMETERS
    labels = _labels(public, data)
    lies: list[Lie] = []
    for param, (axes, kind) in params.items():
        if param == "forecast":
            value = np.ones((public.horizon, public.R, public.K)) if forecast is None else np.asarray(forecast, dtype=float)
        else:
            value = np.asarray(getattr(data, param), dtype=float)
        factors = COST_FACTORS if kind == COST else QUANTITY_FACTORS
        targets: list[tuple[int | None, int | None, str]] = [(None, None, "")]
        for axis, axis_label in enumerate(axes):
            if axis_label is None:
                continue
            names = labels[axis_label]
            assert len(names) == value.shape[axis], (param, axis_label)
            targets += [(axis, i, f"[{axis_label}={n}]") for i, n in enumerate(names)]
        for axis, index, label in targets:
            for factor in factors:
                # stock and forecast are observed week by week: a lie scales whatever is there that week
                if param in OBSERVED or _changes(value, factor, axis, index):
                    lies.append(_field_lie(party, param, factor, axis, index, label))
    return lies


def _scale_vendor(alpha: float) -> Callable[[VendorData], VendorData]:
    return lambda d: replace(
        d,
        production=d.production * alpha,
        holding=d.holding * alpha,
        spare_cost=d.spare_cost * alpha,
        truckload_cost=d.truckload_cost * alpha,
    )


def vendor_lies(data: VendorData) -> list[Lie]:
    """The hand-written lies of the vendor whose data is ``data`` (rows carry ``party = data.name``):
    all costs scaled by each of :data:`ALPHAS`; one lane inflated x3 (the first with spare truck
    volume, else the cheapest); spare truck volume hidden; capacity understated x0.7; capacity
    overstated (over-promising) x1.5, and x2 at its largest origin alone."""
    party = data.name
    lies = [Lie(party, TRUTHFUL, lambda d: d)]
    lies += [Lie(party, f"scale_costs_x{a:g}", _scale_vendor(a), "costs") for a in ALPHAS]
    spare = np.flatnonzero(data.spare_volume > 0)
    lane = int(spare[0]) if spare.size else int(np.argmin(data.truckload_cost))

    def inflate(d: VendorData) -> VendorData:
        bump = np.ones(d.L)
        bump[lane] = 3.0
        return replace(d, spare_cost=d.spare_cost * bump, truckload_cost=d.truckload_cost * bump)

    lies.append(Lie(party, f"inflate_lane_{data.lane_names[lane]}_x3", inflate, "spare_cost,truckload_cost"))
    lies.append(Lie(party, "hide_spare_volume", lambda d: replace(d, spare_volume=np.zeros_like(d.spare_volume)), "spare_volume"))
    lies.append(Lie(party, "understate_capacity_x0.7", lambda d: replace(d, capacity=d.capacity * 0.7), "capacity"))
    # over-promising: capacity it does not have, shipped short at execution (settled under the remedy)
    lies.append(Lie(party, "overstate_capacity_x1.5", lambda d: replace(d, capacity=d.capacity * 1.5), "capacity"))
    big = int(np.argmax(data.capacity))

    def overstate_one(d: VendorData) -> VendorData:
        more = np.ones(d.O)
        more[big] = 2.0
        return replace(d, capacity=d.capacity * more)

    lies.append(Lie(party, f"overstate_capacity_{data.origins[big]}_x2", overstate_one, "capacity"))
    return lies


def retailer_lies(data: RetailerData) -> list[Lie]:
    """The retailer's hand-written lies: holding cost x3, lost-sales penalty x1.5."""
    return [
        Lie(RETAILER, TRUTHFUL, lambda d: d),
        Lie(RETAILER, "inflate_holding_x3", lambda d: replace(d, holding=d.holding * 3.0), "holding"),
        Lie(RETAILER, "inflate_lost_sales_x1.5", lambda d: replace(d, penalty=d.penalty * 1.5), "penalty"),
    ]


def default_lies(data: RetailerData | VendorData) -> list[Lie]:
    """The hand-written set of the party (the truthful control first)."""
    return retailer_lies(data) if isinstance(data, RetailerData) else vendor_lies(data)


def all_lies(public: PublicData, data: RetailerData | VendorData, forecast: np.ndarray | None = None) -> list[Lie]:
    """The hand-written set followed by every generated lie (the truthful control first)."""
    return default_lies(data) + generated_lies(public, data, forecast)


def lie_rng(seed: int, party_position: int) -> np.random.Generator:
    """The generator that samples the lies of the party at ``party_position`` (its place among the
    scenario's parties: retailer 0, then the vendors): spawned from the audit's ``seed`` on its own
    stream, so a party's sample depends on neither the world's random numbers nor the other parties."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(LIE_STREAM, party_position)))


def parse_lies(value: str | int | None) -> str | int | None:
    """``--lies``: None (the hand-written set), ``"all"``, or a positive count; anything else is an
    user error (:class:`FlosimError`) naming the value."""
    if value is None or value == "all":
        return value
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or int(text) < 1:
        raise FlosimError(f"--lies {value!r}: expected 'all' or a positive whole number")
    return int(text)


def pick_lies(public: PublicData, data: RetailerData | VendorData, which: str | int | None, rng: np.random.Generator | None,
              forecast: np.ndarray | None = None) -> list[Lie]:
    """The lies the audit tries for one party: ``which`` None: the hand-written set; ``"all"``: all of
    :func:`all_lies`; a count ``n``: the truthful control plus ``n`` lies drawn without replacement
    from the others by ``rng`` (all of them if there are fewer), in generation order."""
    if which is None:
        return default_lies(data)
    pool = all_lies(public, data, forecast)
    if which == "all":
        return pool
    control, rest = pool[:1], pool[1:]
    if rng is None:
        raise ValueError("pick_lies: a sampled number of lies needs a generator")
    n = min(int(which), len(rest))
    chosen = np.sort(rng.choice(len(rest), size=n, replace=False))
    return control + [rest[i] for i in chosen]
