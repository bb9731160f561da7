"""The random inputs of one simulated run, drawn once and shared by every policy.

:class:`WorldInputs` (:mod:`forecasts.streams`) holds everything random the world needs, as named
streams: realised demand, the forecasts the retailer sees each week, the unresolved forecast
uncertainty, and lane delays (:mod:`forecasts.catalogue` declares them). ``draw_inputs`` draws each
source of streams from its own ``numpy.random.Generator``, spawned from the scenario seed with
``numpy.random.SeedSequence``; every policy in a run is simulated on the same object (common random
numbers), so differences between policies are differences between policies, not luck.
"""

from __future__ import annotations

import numpy as np

from forecasts import catalogue
from forecasts.streams import WorldInputs, all_streams
from sim.model.errors import ScenarioError
from sim.model.scenario import Scenario


def settle_inputs(inputs: WorldInputs, weeks: int, settle: int) -> WorldInputs:
    """The first ``weeks`` weeks of ``inputs`` followed by a ``settle``-week cool-down.

    The cool-down is what every policy's world continues on after the measured weeks (settled costs):
    its demand is what the retailer's last measured forecast said, with no uncertainty left
    (:func:`forecasts.catalogue.cool_down_demand`), every lane runs on its nominal lead time, and any
    other stream holds its neutral value. It depends only on what the measured weeks already hold,
    so it is the same for every policy, for a drawn run and for the replay of its recorded trace, and
    adding cool-down weeks never changes a measured week's numbers.
    """
    if weeks > inputs.weeks:
        raise ValueError(f"inputs cover {inputs.weeks} weeks, asked to settle after {weeks}")
    out: dict[str, np.ndarray] = {}
    for source in catalogue.sources():
        held = {s.name: inputs[s.name] for s in source.streams if s.name in inputs}
        if not held:
            continue
        if len(held) != len(source.streams):
            missing = [s.name for s in source.streams if s.name not in held]
            raise ValueError(f"inputs hold part of source {source.name!r}: {missing} missing")
        out.update(source.settle(held, weeks, settle))
    undeclared = [n for n in inputs.names if n not in out]
    if undeclared:
        raise ValueError(f"inputs hold streams {undeclared} no source in forecasts.catalogue declares")
    return WorldInputs(streams={n: out[n] for n in inputs.names})


def _stream_seeds(seed: int) -> dict[str, np.random.SeedSequence]:
    sources = catalogue.sources()
    return {src.name: child for src, child in zip(sources, np.random.SeedSequence(seed).spawn(len(sources)))}


def input_streams(seed: int) -> dict[str, np.random.Generator]:
    """One independent generator per source of world streams (demand, delays ...), spawned from ``seed``.

    Each source has a fixed spawn position (its place in :data:`forecasts.catalogue.SOURCES`), so
    drawing more or fewer numbers from one never shifts another; new sources are appended.
    """
    seeds = _stream_seeds(seed)
    return {src.name: np.random.default_rng(seeds[src.name]) for src in catalogue.sources() if src.streams}


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
    """Draw a run's inputs: every declared stream, each source from its own child of the seed.

    A ``demand.model: trace`` scenario reads its inputs from ``demand.trace_dir`` instead
    (:mod:`forecasts.traces`); the seed then only drives the policies' own randomness.
    """
    if s.demand.model == "trace":
        from forecasts.traces import load_trace_inputs

        return load_trace_inputs(s, weeks)
    weeks = s.weeks if weeks is None else weeks
    seed = s.seed if seed is None else seed
    check_fits(s, weeks)
    rngs = input_streams(seed)
    drawn: dict[str, np.ndarray] = {}
    for source in catalogue.sources():
        if not source.streams:
            continue
        arrays = dict(source.draw(s, weeks, rngs[source.name]))  # type: ignore[misc]
        names = [st.name for st in source.streams]
        if sorted(arrays) != sorted(names):
            raise ValueError(f"source {source.name!r} drew {sorted(arrays)}, declared {names}")
        for st in source.streams:
            a = np.asarray(arrays[st.name])
            shape = st.shape(catalogue.AXES, s, weeks)
            if a.shape != shape or a.dtype != np.dtype(st.dtype):
                raise ValueError(f"source {source.name!r}: stream {st.name!r} drawn as {a.dtype}{list(a.shape)}, "
                                 f"declared {np.dtype(st.dtype)}{list(shape)} (axes {st.axes})")
            drawn[st.name] = a
    return WorldInputs(streams={st.name: drawn[st.name] for st in all_streams(catalogue.sources()) if st.name in drawn})
