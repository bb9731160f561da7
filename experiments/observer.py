"""The observer: what the retailer can learn about the vendor's costs from what a mechanism shows it.

The observer holds only what a mechanism shows the retailer (:mod:`policies.privacy`: the entries
a policy records with ``privacy: {record: true}``) and the public data (product volumes, wholesale
prices, FC names). From each entry it derives observations of the vendor's marginal cost
(:class:`sim.negotiation.cost_curves.Observations`) and fits the vendor's delivered marginal-cost curves
(:func:`sim.negotiation.cost_curves.fit_curves`). It never reads an agent, a cost model or the world.

* **Rounds of a negotiation** (coordinator run by the retailer): the vendor's answer ``x`` to a query
  ``(z, y, rho)`` satisfies ``-y - rho (x - z) ∈ ∂C_V(x)``; ``C_V`` includes the wholesale revenue
  ``-w·x`` (public), so ``w - y - rho (x - z)`` is the vendor's marginal cost of each product at each
  FC and week of the plan. Where ``x > 0`` that is an equality; where ``x = 0`` the true marginal cost
  is at least that (the answer could not go lower).
* **An agreement** (neutral coordinator, sealed agents): one point per week: the plan, and the
  retailer's own subgradient at it (its agent's final prices ``y_R``; at an agreement the vendor's
  marginal cost is ``w + y_R``).
* **Shipments** (JIT): the vendor ships a unit when the wholesale price covers its marginal cost: a
  unit ordered and shipped says "marginal cost at most ``w``", a unit short "at least ``w``". Bounds
  only: the fit reports no level from them (:attr:`FittedCurve.equalities` is 0).
* **A menu**: the pick says the vendor's cost plus price of the picked plan is lowest; that ranks
  whole plans' costs, and gives no marginal cost at a volume, so the per-FC fit takes nothing from
  it (:func:`menu_rankings` counts what it did see). A menu tailored to the vendor's coarse
  disclosure (``preference: auto``) also shows the weekly volume the vendor says it has room for at
  each FC, rounded: :func:`disclosed_room` reads it, the audit takes it as the spare volume there.

What a user may do: ``observations(shown, public)`` for a list of recorded entries, then
``fit_curves(obs, public.F)``; or :func:`transcript_observations` for a saved transcript.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from policies.privacy import AgreementShown, MenuShown, RoundsShown, ShipmentShown
from sim.negotiation.cost_curves import AT_LEAST, AT_MOST, EQUAL, Observations
from sim.model.data import PublicData
from sim.negotiation.transcript import COORDINATOR, Transcript

#: units below which an answer's component counts as zero (the answers are solved to a tolerance)
ZERO_UNITS = 1e-3


def _plan_observations(x: np.ndarray, marginal: np.ndarray, public: PublicData, *, zeros: str = "at_least") -> Observations:
    """Observations from one plan ``x[H, F, K]`` and the vendor's marginal costs ``marginal`` at it."""
    vol = np.asarray(public.volume, dtype=float)
    V = np.einsum("hfk,k->hf", np.maximum(x, 0.0), vol)  # weekly volume per FC
    H, F, K = x.shape
    fc = np.broadcast_to(np.arange(F)[None, :, None], x.shape)
    unit = np.broadcast_to(vol[None, None, :], x.shape)
    Vb = np.broadcast_to(V[:, :, None], x.shape)
    positive = x > ZERO_UNITS
    kind = np.where(positive, EQUAL, AT_LEAST)
    keep = positive if zeros == "skip" else np.ones(x.shape, dtype=bool)
    return Observations(fc[keep].astype(int), Vb[keep].astype(float), unit[keep].astype(float),
                        np.asarray(marginal, dtype=float)[keep], kind[keep].astype(int))


def vendor_wholesale(public: PublicData) -> np.ndarray:
    """The one vendor's wholesale prices ``[K]``: the observer studies what the retailer learns of ONE
    vendor's costs, so a scenario with several vendors is an error naming the vendor count."""
    w = np.asarray(public.wholesale, dtype=float)
    if w.ndim == 1:
        return w
    if w.shape[0] != 1:
        raise ValueError(f"the observer reads one vendor's answers; this scenario has {w.shape[0]} vendors "
                         f"({', '.join(public.vendors)})")
    return w[0]


def transcript_observations(transcript: Transcript, public: PublicData, vendor_index: int = 1) -> Observations:
    """Every round's vendor answer in ``transcript``, as observations of its marginal cost.

    The vendor answers for its block ``(H, F, K)``: a transcript of the whole plan ``(V, H, F, K)`` with
    blocks (as the CPP policies record it), or one saved before the vendor axis, where every agent held
    the plan ``(H, F, K)``."""
    w = vendor_wholesale(public)[None, None, :]
    if tuple(transcript.shape) not in (tuple(public.shape), tuple(public.block_shape)):
        raise ValueError(f"transcript plan shape {tuple(transcript.shape)} is not the scenario's {tuple(public.shape)}")
    if not 0 <= vendor_index < transcript.n_agents:
        raise ValueError(f"transcript has {transcript.n_agents} agents; no agent {vendor_index}")
    shape = tuple(public.block_shape)
    if tuple(transcript.block_shape(vendor_index)) != shape:
        raise ValueError(f"transcript agent {vendor_index} answers for a block of shape "
                         f"{tuple(transcript.block_shape(vendor_index))}, not a vendor's {shape}")
    held = transcript.held(vendor_index)
    rounds: dict[int, dict[str, np.ndarray]] = {}
    for it, agent, name, values in transcript.rows:
        if agent == COORDINATOR and name in ("z", "rho"):
            rounds.setdefault(it, {})[name] = values
        elif agent == vendor_index and name in ("prices", "answer"):
            rounds.setdefault(it, {})[name] = values
    parts = []
    for it in sorted(rounds):
        r = rounds[it]
        if not all(k in r for k in ("z", "rho", "prices", "answer")):
            raise ValueError(f"transcript round {it} is incomplete (has {sorted(r)})")
        size = int(np.prod(transcript.shape))
        if r["z"].size != size:
            raise ValueError(f"transcript round {it}: z has {r['z'].size} numbers, the plan {size}")
        z = r["z"][held].reshape(shape)  # the part of z the vendor was shown
        y, x = (r[k].reshape(shape) for k in ("prices", "answer"))
        rho = r["rho"].reshape(-1)[0] if r["rho"].size == 1 else r["rho"][held].reshape(shape)
        marginal = w - y - rho * (x - z)
        parts.append(_plan_observations(x, marginal, public))
    return Observations.concat(parts)


def _agreement_observations(entry: AgreementShown, public: PublicData) -> Observations:
    if not entry.agreed:
        return Observations.empty()  # no agreement, no point on the vendor's curve
    w = vendor_wholesale(public)[None, None, :]
    return _plan_observations(entry.plan, w + entry.retailer_prices, public, zeros="skip")


def _shipment_observations(entry: ShipmentShown, public: PublicData) -> Observations:
    vol = np.asarray(public.volume, dtype=float)
    w = vendor_wholesale(public)
    ordered = entry.order > ZERO_UNITS
    short = entry.shipped < entry.order - ZERO_UNITS
    V = entry.shipped @ vol  # [F]
    F, K = entry.order.shape
    fc = np.broadcast_to(np.arange(F)[:, None], (F, K))
    kind = np.where(short, AT_LEAST, AT_MOST)
    return Observations(fc[ordered].astype(int), np.broadcast_to(V[:, None], (F, K))[ordered].astype(float),
                        np.broadcast_to(vol[None, :], (F, K))[ordered].astype(float),
                        np.broadcast_to(w[None, :], (F, K))[ordered].astype(float), kind[ordered].astype(int))


def observations(shown: Iterable[Any], public: PublicData) -> Observations:
    """Observations of the vendor's marginal cost in what a mechanism showed the retailer."""
    parts = []
    for entry in shown:
        if isinstance(entry, RoundsShown):
            parts.append(transcript_observations(entry.transcript, public, entry.vendor_index))
        elif isinstance(entry, AgreementShown):
            parts.append(_agreement_observations(entry, public))
        elif isinstance(entry, ShipmentShown):
            parts.append(_shipment_observations(entry, public))
        elif isinstance(entry, MenuShown):
            continue  # rankings of whole plans: no marginal cost at a volume (see the module docstring)
        else:
            raise TypeError(f"observer: cannot read {type(entry).__name__}")
    return Observations.concat(parts)


def menu_rankings(shown: Iterable[Any]) -> int:
    """How many pairwise rankings (picked item over another) the menu weeks in ``shown`` revealed."""
    return sum(len(e.items) - 1 for e in shown if isinstance(e, MenuShown))


def disclosed_room(shown: Iterable[Any], public: PublicData) -> dict[int, float]:
    """The weekly room per FC index the vendor disclosed to a tailored menu (median over the weeks
    that disclosed a volume for that FC)."""
    seen: dict[int, list[float]] = {}
    for e in shown:
        if isinstance(e, MenuShown) and isinstance(e.disclosure, dict):
            for name, room in e.disclosure.items():
                if room is not None and name in public.fcs:
                    seen.setdefault(public.fcs.index(name), []).append(float(room))
    return {f: float(np.median(v)) for f, v in seen.items()}


def thin(obs: Observations, limit: int, rng: np.random.Generator) -> Observations:
    """At most ``limit`` observations per FC, drawn without replacement (keeps the fit's LP small on
    long transcripts); all of them if there are fewer."""
    keep = np.zeros(obs.size, dtype=bool)
    for f in np.unique(obs.fc):
        idx = np.flatnonzero(obs.fc == f)
        keep[idx if idx.size <= limit else rng.choice(idx, size=limit, replace=False)] = True
    return obs.subset(keep)
