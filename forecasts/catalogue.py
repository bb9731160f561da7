"""The catalogue of a run's random streams: the axes they are indexed by and the sources they are
drawn from, in the order the run's seed spawns its children.

Every random input of the world is declared here once (see :mod:`forecasts.streams` for what a
declaration holds); drawing (:func:`forecasts.inputs.draw_inputs`), the cool-down after a run
(:func:`forecasts.inputs.settle_inputs`) and traces (:mod:`forecasts.traces`: file names, columns,
checks and the trace's digest) all walk :data:`SOURCES`, so a new random input is one :class:`Source`
appended to it, as ``capacity`` (capacity shocks, the fourth source) was::

    Source("capacity", (Stream("capacity", ("week", "origin"), "capacity.csv", "available",
                               high=1.0, neutral=1.0),),
           draw=draw_capacity)

What a user may rely on:

* a source's position in :data:`SOURCES` is the index of its child of
  ``numpy.random.SeedSequence(seed)``: sources are only ever appended, so a new one never changes the
  numbers an existing one draws for a seed (``policy`` holds position 2: the policies' own generators;
  ``capacity`` position 3);
* the streams of trace format version 1 (``demand``, ``forecasts``, ``forecast_sd``, ``delays``) are
  ``required``: every trace holds them; a stream added later is optional, and a trace recorded before
  it existed reads as its neutral value, so old traces keep replaying.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from forecasts.delays import draw_delays
from forecasts.demand import demand_cv, mean_demand
from forecasts.evolution import draw_revisions, forecasts_and_demand, remaining_sd, revision_shares
from forecasts.streams import Axis, Source, Stream, check_catalogue

AXES: dict[str, Axis] = {
    a.name: a
    for a in (
        Axis("week", "weeks", count=lambda s, weeks: weeks),
        Axis("lead", "horizon", count=lambda s, weeks: s.horizon),
        Axis("region", "regions", labels=lambda s: list(s.regions)),
        Axis("product", "products", labels=lambda s: list(s.product_names)),
        Axis("lane", "lanes", labels=lambda s: [f"{lane.origin}->{lane.fc}" for lane in s.all_lanes]),
        Axis("origin", "origins", labels=lambda s: [o.name for o in s.all_origins]),
        Axis("fc", "fcs", labels=lambda s: [f.name for f in s.fcs]),
        Axis("vendor", "vendors", labels=lambda s: list(s.vendor_names)),
    )
}
"""The axes streams may use, by name (named axes in the order ``trace.json`` lists them)."""


def draw_demand(s, weeks: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Realised demand, the forecasts made each week and their unresolved uncertainty, from the
    scenario's mean demand and the martingale forecast model (:mod:`forecasts.evolution`)."""
    H = s.horizon
    mean = mean_demand(s, weeks + H)
    cv = demand_cv(s)
    shares = revision_shares(H, s.demand.revision.shares, s.demand.revision.profile)
    if s.demand.deterministic:
        eps = np.zeros((mean.shape[0], H, *mean.shape[1:]))
        sd = np.zeros((weeks, H, *mean.shape[1:]))
    else:
        eps = draw_revisions(mean, cv, shares, rng)
        sd = remaining_sd(mean, cv, shares, weeks, H)
    F, D = forecasts_and_demand(mean, eps, weeks, H)
    return {"demand": D, "forecasts": F, "forecast_sd": sd}


def cool_down_demand(arrays: Mapping[str, np.ndarray], weeks: int, settle: int) -> dict[str, np.ndarray]:
    """Demand and forecasts of the cool-down: what the last measured week's forecast said.

    The demand of cool-down week ``s`` is the forecast made for it in the last measured week
    (``forecasts[weeks - 1, s - weeks + 1]``; beyond that forecast's horizon its last week's figure is
    held), and the forecasts made during the cool-down say the same with no uncertainty left.
    """
    demand, forecasts, forecast_sd = arrays["demand"], arrays["forecasts"], arrays["forecast_sd"]
    T, H = weeks, forecasts.shape[1]
    last = forecasts[T - 1]  # [H, R, K]: weeks T-1 .. T+H-2
    # path[i] = demand of week T-1+i for i = 1 .. settle+H-1 (index 0 unused)
    path = np.stack([last[min(i, H - 1)] for i in range(settle + H)])
    cool_f = np.stack([path[1 + s : 1 + s + H] for s in range(settle)]) if settle else forecasts[:0]
    return {
        "demand": np.concatenate([demand[:T], path[1 : settle + 1]]),
        "forecasts": np.concatenate([forecasts[:T], cool_f]),
        "forecast_sd": np.concatenate([forecast_sd[:T], np.zeros_like(cool_f)]),
    }


DEMAND = Source(
    "demand",
    (
        Stream("demand", ("week", "region", "product"), "demand.csv", "units", required=True,
               description="realised demand of the week"),
        Stream("forecasts", ("week", "lead", "region", "product"), "forecasts.csv", "forecast", required=True,
               description="forecast made in the week for week + lead"),
        Stream("forecast_sd", ("week", "lead", "region", "product"), "forecasts.csv", "sd", required=True,
               description="standard deviation of demand not yet resolved in that forecast"),
    ),
    draw=draw_demand,
    cool_down=cool_down_demand,
)

DELAYS = Source(
    "delays",
    (
        Stream("delays", ("week", "lane"), "delays.csv", "delay_weeks", dtype=np.int64, unit="weeks", neutral=0,
               required=True, description="extra whole weeks of delay of the lane's truck leaving in the week"),
    ),
    draw=lambda s, weeks, rng: {"delays": draw_delays(s, weeks, rng)},
)

POLICY = Source("policy")  # the policies' own generators (forecasts.inputs.policy_rng); no world stream


def draw_capacity(s, weeks: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The share of each origin's weekly capacity available in each week (``[week, origin]``, in
    [0, 1]) under the scenario's ``shocks``: 1 with none, and then no number is drawn.

    Each outage and each disruption draws one uniform number per week and origin (for every origin,
    whichever it covers, so naming an origin never shifts another entry's numbers), in the order the
    scenario lists them; each multiplies the share by ``1 - depth`` in the weeks it strikes.
    """
    origins = [o.name for o in s.all_origins]
    kappa = np.ones((weeks, len(origins)))
    shocks = s.shocks
    if shocks is None:
        return {"capacity": kappa}
    for e in shocks.outages:
        u = rng.random((weeks, len(origins)))
        hit = u < e.probability
        if e.origin is not None:
            hit[:, [o != e.origin for o in origins]] = False
        if e.weeks is not None:
            hit[[t not in e.weeks for t in range(weeks)]] = False
        kappa = np.where(hit, kappa * (1.0 - e.depth), kappa)
    for e in shocks.disruptions:
        u = rng.random((weeks, len(origins)))
        down = np.zeros((weeks, len(origins)), dtype=bool)
        state = np.zeros(len(origins), dtype=bool)  # every origin starts up
        for t in range(weeks):
            state = np.where(state, u[t] >= e.p_recover, u[t] < e.p_fail)
            down[t] = state
        if e.origin is not None:
            down[:, [o != e.origin for o in origins]] = False
        kappa = np.where(down, kappa * (1.0 - e.depth), kappa)
    return {"capacity": kappa}


CAPACITY = Source(
    "capacity",
    (
        Stream("capacity", ("week", "origin"), "capacity.csv", "available", high=1.0, neutral=1.0,
               description="share of the origin's weekly capacity available in the week (capacity shocks)"),
    ),
    draw=draw_capacity,
)

SOURCES: tuple[Source, ...] = (DEMAND, DELAYS, POLICY, CAPACITY)
"""The run's sources in spawn order: append only."""

check_catalogue(SOURCES, AXES)


def sources() -> tuple[Source, ...]:
    """The run's sources as declared now (:data:`SOURCES`, read at each call), checked."""
    declared = tuple(SOURCES)
    check_catalogue(declared, AXES)
    return declared
