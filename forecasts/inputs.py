"""The random inputs of one simulated run, drawn once and shared by every policy.

:class:`WorldInputs` (:mod:`forecasts.streams`) holds everything random the world needs: realised demand, the forecasts the
retailer sees each week, the unresolved forecast uncertainty, and lane delays. ``draw_inputs`` makes
them from one ``numpy.random.Generator`` per stream, spawned from the scenario seed with
``numpy.random.SeedSequence``; every policy in a run is simulated on the same object (common random
numbers), so differences between policies are differences between policies, not luck.
"""

from __future__ import annotations

import numpy as np

from forecasts.delays import draw_delays
from forecasts.demand import demand_cv, mean_demand
from forecasts.evolution import draw_revisions, forecasts_and_demand, remaining_sd, revision_shares
from forecasts.streams import WorldInputs
from sim.model.errors import ScenarioError
from sim.model.scenario import Scenario


def settle_inputs(inputs: WorldInputs, weeks: int, settle: int) -> WorldInputs:
    """The first ``weeks`` weeks of ``inputs`` followed by a ``settle``-week cool-down on the last forecast.

    The cool-down is what every policy's world continues on after the measured weeks (settled costs):
    the demand of cool-down week ``s`` is the forecast the retailer made for it in the last measured
    week (``forecasts[weeks - 1, s - weeks + 1]``; beyond that forecast's horizon its last week's figure
    is held), the forecasts made during the cool-down say the same with no uncertainty left, and every
    lane runs on its nominal lead time. It depends only on what the measured weeks already hold, so it
    is the same for every policy, for a drawn run and for the replay of its recorded trace, and adding
    cool-down weeks never changes a measured week's numbers.
    """
    if weeks > inputs.weeks:
        raise ValueError(f"inputs cover {inputs.weeks} weeks, asked to settle after {weeks}")
    T, H = weeks, inputs.forecasts.shape[1]
    last = inputs.forecasts[T - 1]  # [H, R, K]: weeks T-1 .. T+H-2
    # path[i] = demand of week T-1+i for i = 1 .. settle+H-1 (index 0 unused)
    path = np.stack([last[min(i, H - 1)] for i in range(settle + H)])
    demand = np.concatenate([inputs.demand[:T], path[1 : settle + 1]])
    cool_f = np.stack([path[1 + s : 1 + s + H] for s in range(settle)]) if settle else inputs.forecasts[:0]
    forecasts = np.concatenate([inputs.forecasts[:T], cool_f])
    forecast_sd = np.concatenate([inputs.forecast_sd[:T], np.zeros_like(cool_f)])
    delays = np.concatenate([inputs.delays[:T], np.zeros((settle, inputs.delays.shape[1]), dtype=inputs.delays.dtype)])
    return WorldInputs(demand=demand, forecasts=forecasts, forecast_sd=forecast_sd, delays=delays)


_STREAMS = ("demand", "delays", "policy")  # order fixes each stream's spawn position: append only


def _stream_seeds(seed: int) -> dict[str, np.random.SeedSequence]:
    return dict(zip(_STREAMS, np.random.SeedSequence(seed).spawn(len(_STREAMS))))


def input_streams(seed: int) -> dict[str, np.random.Generator]:
    """Independent generators for the world's random streams (demand, delays), spawned from ``seed``.

    Each stream has a fixed spawn position, so drawing more or fewer numbers from one never shifts
    another; new streams are appended to ``_STREAMS``.
    """
    seeds = _stream_seeds(seed)
    return {name: np.random.default_rng(seeds[name]) for name in ("demand", "delays")}


def policy_rng(seed: int, week: int) -> np.random.Generator:
    """The generator a policy gets in week ``week``: the same for every policy, independent of order."""
    ss = _stream_seeds(seed)["policy"]
    return np.random.default_rng(np.random.SeedSequence(ss.entropy, spawn_key=(*ss.spawn_key, week)))


def check_fits(s: Scenario, weeks: int) -> None:
    """Refuse, before anything is allocated, a run of ``weeks`` weeks too big for this machine's
    memory (see :mod:`sim.model.memory`); ``--weeks 1000000000`` would otherwise end in a MemoryError."""
    from sim.model.memory import run_too_big
    from sim.model.scenario import run_size

    why = run_too_big(run_size(s, weeks))
    if why:
        raise ScenarioError(f"weeks = {weeks:,}: {why}")


def draw_inputs(s: Scenario, weeks: int | None = None, seed: int | None = None) -> WorldInputs:
    """Draw a run's inputs from the scenario's demand model and lanes.

    A ``demand.model: trace`` scenario reads its inputs from ``demand.trace_dir`` instead
    (:mod:`forecasts.traces`); the seed then only drives the policies' own randomness.
    """
    if s.demand.model == "trace":
        from forecasts.traces import load_trace_inputs

        return load_trace_inputs(s, weeks)
    weeks = s.weeks if weeks is None else weeks
    seed = s.seed if seed is None else seed
    check_fits(s, weeks)
    H = s.horizon
    streams = input_streams(seed)
    mean = mean_demand(s, weeks + H)
    cv = demand_cv(s)
    shares = revision_shares(H, s.demand.revision.shares)
    if s.demand.deterministic:
        eps = np.zeros((mean.shape[0], H, *mean.shape[1:]))
        sd = np.zeros((weeks, H, *mean.shape[1:]))
    else:
        eps = draw_revisions(mean, cv, shares, streams["demand"])
        sd = remaining_sd(mean, cv, shares, weeks, H)
    F, D = forecasts_and_demand(mean, eps, weeks, H)
    delays = draw_delays(s, weeks, streams["delays"])
    return WorldInputs(demand=D, forecasts=F, forecast_sd=sd, delays=delays)
