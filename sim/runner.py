"""Running several policies on common random numbers.

``run_policies(scenario, ["jit", "first-best"])`` draws the run's random inputs once, simulates each
policy on them in its own :class:`~sim.world.World`, and returns a :class:`RunResult` of tidy tables:
``ledger`` (run, policy, week, party, component, value, phase), ``flows`` (units by week) and
``decisions`` (transfers, planned costs and policy diagnostics by week).

After the measured weeks each world runs the scenario's cool-down (``settle_weeks``, default the
horizon) under JIT; those rows carry ``phase: settle`` and the measured ones ``phase: measured``, so
raw figures sum the measured rows and settled figures all of them (:mod:`sim.metrics`).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import pandas as pd
from tqdm import tqdm

from forecasts.inputs import WorldInputs, draw_inputs
from sim.model.decision import Policy
from policies.registry import build_policies
from sim.model.scenario import Scenario
from sim.world import World


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
) -> RunResult:
    """Simulate each policy on the same random inputs; see the module docstring.

    ``progress``: show a progress bar on stderr (default: only when stderr is a terminal, and only for
    runs that last more than two seconds). ``on_error``: if given, a policy that raises is reported to
    it and the finished policies' results are returned with ``error`` set, instead of raising.
    """
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
        for policy in built:
            bar.set_postfix_str(policy.name)
            started = time.perf_counter()
            world = World(scenario, policy, inputs, run_id=run_id, on_week=lambda _t: bar.update(1))
            try:
                rec = world.run(weeks, settle=settle)
            except Exception as exc:  # noqa: BLE001 - reported, finished results are kept
                if on_error is None:
                    raise
                on_error(policy.name, exc)
                error = f"policy {policy.name!r} failed: {type(exc).__name__}: {exc}"
                break
            timings[f"{policy.name}_s"] = time.perf_counter() - started
            ledger += rec.ledger
            flows += rec.flows
            decisions += rec.decisions
            shortfalls += rec.shortfalls
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
