"""Running several policies on common random numbers.

``run_policies(scenario, ["jit", "first-best"])`` draws the run's random inputs once, simulates each
policy on them in its own :class:`~sim.world.World`, and returns a :class:`RunResult` of tidy tables:
``ledger`` (run, policy, week, party, component, value, phase), ``flows`` (units by week) and
``decisions`` (transfers, planned costs and policy diagnostics by week).

After the measured weeks each world runs the scenario's cool-down (``settle_weeks``, default the
horizon) under JIT; those rows carry ``phase: settle`` and the measured ones ``phase: measured``, so
raw figures sum the measured rows and settled figures all of them (:mod:`sim.metrics`).

``workers=N`` simulates the policies in ``N`` processes at once. The results are the same numbers
as one after the other: every world reads the same drawn inputs, and a policy's own randomness comes
from :func:`forecasts.inputs.policy_rng` (the scenario's seed and the week), never from a generator
another policy has used; the module switches that change answers (:mod:`sim.model.switches`, e.g.
``sim.model.lp.LP_STARTS``) are carried to the worker processes as set in this one.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import pandas as pd
from tqdm import tqdm

from forecasts.inputs import WorldInputs, draw_inputs
from sim.model.decision import Policy
from policies.registry import build_policies
from sim.model.scenario import Scenario
from sim.process_pool import run_in_processes
from sim.world import World, WorldRecord


@dataclass
class RunResult:
    scenario: Scenario
    seed: int
    weeks: int
    ledger: pd.DataFrame  # measured and cool-down rows, told apart by ``phase``
    flows: pd.DataFrame
    decisions: pd.DataFrame
    policies: list[str]
    inputs: WorldInputs | None = None
    timings: dict[str, float] = field(default_factory=dict)
    error: str | None = None  # set when a policy failed part way; tables hold the finished ones
    settle: int = 0  # cool-down weeks after the measured ones
    #: units ordered, shipped and short, and the shortfall's cost to the retailer, by week, vendor, FC
    #: and product (:mod:`sim.execution`)
    shortfalls: pd.DataFrame = field(default_factory=pd.DataFrame)


def run_policies(
    scenario: Scenario,
    policies: Sequence[str | Policy],
    *,
    weeks: int | None = None,
    seed: int | None = None,
    inputs: WorldInputs | None = None,
    run_id: str = "run",
    progress: bool | None = None,
    on_error: Callable[[str, BaseException], None] | None = None,
    workers: int = 1,
) -> RunResult:
    """Simulate each policy on the same random inputs; see the module docstring.

    ``progress``: show a progress bar on stderr (default: only when stderr is a terminal, and only for
    runs that last more than two seconds). ``on_error``: if given, a policy that raises is reported to
    it and the finished policies' results are returned with ``error`` set, instead of raising.
    ``workers``: policies simulated at once, each in its own process (1: one after the other, in this
    process); the tables are in the order of ``policies`` whichever finishes first.
    """
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"workers must be a whole number >= 1, got {workers!r}")
    weeks = scenario.weeks if weeks is None else weeks
    seed = scenario.seed if seed is None else seed
    if seed != scenario.seed:
        scenario = scenario.model_copy(update={"seed": seed})
    if weeks != scenario.weeks:
        scenario = scenario.model_copy(update={"weeks": weeks})
    built = build_policies(policies, scenario)
    names = [p.name for p in built]
    t0 = time.perf_counter()
    inputs = inputs if inputs is not None else draw_inputs(scenario, weeks=weeks, seed=seed)
    timings = {"draw_inputs_s": time.perf_counter() - t0}
    ledger, flows, decisions, shortfalls = [], [], [], []
    error = None
    settle = scenario.settle
    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(total=(weeks + settle) * len(built), desc="simulating", unit="week", file=sys.stderr, disable=not show, delay=2.0)
    try:
        if workers > 1 and len(built) > 1:
            outcomes = _simulate_in_processes(scenario, built, inputs, run_id, weeks, settle, workers, bar)
        else:
            outcomes = _simulate_here(scenario, built, inputs, run_id, weeks, settle, bar)
        for policy, (outcome, seconds) in zip(built, outcomes):
            if isinstance(outcome, BaseException):  # reported, the results of the policies before it kept
                if on_error is None:
                    raise outcome
                on_error(policy.name, outcome)
                error = f"policy {policy.name!r} failed: {type(outcome).__name__}: {outcome}"
                break
            timings[f"{policy.name}_s"] = seconds
            ledger += outcome.ledger
            flows += outcome.flows
            decisions += outcome.decisions
            shortfalls += outcome.shortfalls
    finally:
        bar.close()
    done = [n for n in names if f"{n}_s" in timings]
    return RunResult(
        scenario=scenario,
        seed=seed,
        weeks=weeks,
        ledger=pd.DataFrame(ledger, columns=["run", "policy", "week", "party", "component", "value", "phase"]),
        flows=pd.DataFrame(flows),
        decisions=pd.DataFrame(decisions),
        policies=done,
        inputs=inputs,
        timings=timings,
        error=error,
        settle=settle,
        shortfalls=pd.DataFrame(shortfalls, columns=["run", "policy", "week", "phase", "vendor", "fc", "product",
                                                     "ordered", "shipped", "shortfall", "cost"]),
    )


Outcome = tuple["WorldRecord | BaseException", float]  # a policy's record (or what it raised) and its seconds


def _simulate(scenario: Scenario, policy: Policy, inputs: WorldInputs, run_id: str, weeks: int, settle: int,
              on_week: Callable[[int], None] | None = None) -> Outcome:
    """One policy's world, measured and cool-down weeks; an exception is returned, not raised."""
    started = time.perf_counter()
    try:
        rec = World(scenario, policy, inputs, run_id=run_id, on_week=on_week).run(weeks, settle=settle)
    except Exception as exc:  # noqa: BLE001 - the caller reports it and keeps the finished results
        return exc, time.perf_counter() - started
    return rec, time.perf_counter() - started


def _simulate_here(scenario: Scenario, built: Sequence[Policy], inputs: WorldInputs, run_id: str, weeks: int,
                   settle: int, bar: Any) -> list[Outcome]:
    """The policies one after the other in this process; stops after the first that fails."""
    out: list[Outcome] = []
    for policy in built:
        bar.set_postfix_str(policy.name)
        out.append(_simulate(scenario, policy, inputs, run_id, weeks, settle, on_week=lambda _t: bar.update(1)))
        if isinstance(out[-1][0], BaseException):
            break
    return out


def _simulate_in_processes(scenario: Scenario, built: Sequence[Policy], inputs: WorldInputs, run_id: str, weeks: int,
                           settle: int, workers: int, bar: Any) -> list[Outcome]:
    """The policies in a pool of ``workers`` processes (:func:`sim.process_pool.run_in_processes`, with
    the module switches as set here); the bar advances by a policy's weeks when it finishes. Results in the
    order of ``built``; an interrupt stops the policies still running."""
    results: dict[int, Outcome] = {}
    tasks = [(scenario, policy, inputs, run_id, weeks, settle) for policy in built]
    for i, outcome in run_in_processes(_simulate_task, tasks, workers, preload=["sim.runner"], on_interrupt="stop"):
        # a process that failed itself (killed, unpicklable) gives an exception instead of an Outcome
        results[i] = (outcome, 0.0) if isinstance(outcome, BaseException) else outcome
        bar.set_postfix_str(built[i].name)
        bar.update(weeks + settle)
    return [results[i] for i in range(len(built))]


def _simulate_task(task: tuple[Scenario, Policy, WorldInputs, str, int, int]) -> Outcome:
    return _simulate(*task)
