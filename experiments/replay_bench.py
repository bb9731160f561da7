"""Each policy's time on a trace replay, its ratio to first best's, and where the time goes.

:func:`bench_replay` replays a trace (``flosim replay``'s inputs and :func:`sim.runner.run_policies`)
once per policy, all in one process on the same inputs, and times each with ``time.perf_counter``:
the policy's whole replay (the measured weeks and the cool-down under JIT that every replay runs), of
which ``decide_s`` is the policy's own planning in the measured weeks, and the shares of its main
steps (:mod:`experiments.step_timing`). The ratio to first best is the issue's measure of the
mechanisms' cost (first best is one LP a week). Optionally a cProfile of each policy's replay.
"""

from __future__ import annotations

import cProfile
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import sim.parties.retailer as retailer_module
from experiments.step_timing import StepTimer
from forecasts.inputs import draw_inputs
from forecasts.traces import find_trace, trace_scenario
from policies.registry import build_policies
from sim.model.errors import FlosimError
from sim.runner import run_policies

#: the policies ``flosim bench --replay`` times unless told otherwise (the pilot's comparison)
DEFAULT_POLICIES = ("jit", "first-best", "cpp-vcg", "menu")
REFERENCE = "first-best"


@dataclass
class PolicyTiming:
    policy: str
    seconds: float  # the policy's whole replay: measured weeks and cool-down
    decide_s: float  # the policy's decide() in the measured weeks
    ratio_to_first_best: float | None  # None when first best was not timed
    steps: dict[str, dict[str, float]] = field(default_factory=dict)
    work: dict[str, dict[str, float]] = field(default_factory=dict)
    cpu_s: float = 0.0  # the process's CPU time over the same replay (all threads)
    cpu_ratio_to_first_best: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"policy": self.policy, "seconds": self.seconds, "decide_s": self.decide_s,
                "ratio_to_first_best": self.ratio_to_first_best, "cpu_s": self.cpu_s,
                "cpu_ratio_to_first_best": self.cpu_ratio_to_first_best, "steps": self.steps, "work": self.work}


@dataclass
class ReplayBench:
    trace: str
    scenario: str
    weeks: int
    settle_weeks: int
    read_trace_s: float
    policies: list[PolicyTiming]
    cpus: int | None
    load_average: list[float] | None  # 1, 5, 15 minutes, when the bench started
    warm_lp: bool = False  # the retailer's path queries pinned to the least first-week cost (WARM_START_LPS)

    def as_dict(self) -> dict[str, Any]:
        return {"trace": self.trace, "scenario": self.scenario, "weeks": self.weeks, "settle_weeks": self.settle_weeks,
                "read_trace_s": self.read_trace_s, "cpus": self.cpus, "load_average": self.load_average,
                "warm_lp": self.warm_lp,
                "policies": [p.as_dict() for p in self.policies]}


def bench_replay(trace: str, policies: Sequence[str] = DEFAULT_POLICIES, *, weeks: int | None = None,
                 profile_dir: str | Path | None = None, on_policy: Any = None, warm_lp: bool = False) -> ReplayBench:
    """Time each of ``policies`` on the replay of ``trace`` (a folder or a shipped trace's name); see
    the module docstring. ``weeks``: replay only the first ``weeks`` weeks. ``profile_dir``: also
    write ``<policy>.pstats`` there (cProfile; it slows the replay, so the times then include its
    overhead). ``on_policy(timing)``: called as each policy finishes. ``warm_lp``: the retailer answers
    its demand-path queries with the least first-week cost among its optimal plans
    (:data:`sim.parties.retailer.WARM_START_LPS`, restored afterwards)."""
    if weeks is not None and weeks < 1:
        raise FlosimError(f"--weeks must be >= 1, got {weeks}")
    if not policies:
        raise FlosimError("no policy to time")
    load = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    folder = find_trace(trace)
    scenario = trace_scenario(folder)
    if weeks is not None and weeks > scenario.weeks:
        raise FlosimError(f"--weeks {weeks}: the trace {folder} holds only {scenario.weeks} weeks")
    weeks = scenario.weeks if weeks is None else weeks
    scenario = scenario.model_copy(update={"weeks": weeks})
    build_policies(list(policies), scenario)  # unknown or repeated policies: an error before anything runs
    if profile_dir is not None:
        Path(profile_dir).mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    inputs = draw_inputs(scenario, weeks=weeks, seed=scenario.seed)  # reads the trace
    read_s = time.perf_counter() - started
    timings: list[PolicyTiming] = []
    warm_before = getattr(retailer_module, "WARM_START_LPS", False)
    retailer_module.WARM_START_LPS = warm_lp
    try:
        _time_policies(policies, scenario, weeks, inputs, profile_dir, on_policy, timings)
    finally:
        retailer_module.WARM_START_LPS = warm_before
    reference = next((t for t in timings if t.policy == REFERENCE), None)
    if reference is not None and reference.seconds:
        for t in timings:
            t.ratio_to_first_best = t.seconds / reference.seconds
            t.cpu_ratio_to_first_best = t.cpu_s / reference.cpu_s if reference.cpu_s else None
    return ReplayBench(str(folder), scenario.name, weeks, scenario.settle, read_s, timings, os.cpu_count(), load, warm_lp)


def _time_policies(policies: Sequence[str], scenario: Any, weeks: int, inputs: Any, profile_dir: str | Path | None,
                   on_policy: Any, timings: list[PolicyTiming]) -> None:
    for name in policies:
        profiler = cProfile.Profile() if profile_dir is not None else None
        with StepTimer() as timer:
            started, cpu_started = time.perf_counter(), time.process_time()
            if profiler is not None:
                profiler.enable()
            try:
                result = run_policies(scenario, [name], weeks=weeks, inputs=inputs, progress=False)
            finally:
                if profiler is not None:
                    profiler.disable()
            seconds, cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
        if profiler is not None:
            profiler.dump_stats(str(Path(profile_dir) / f"{name.replace(':', '_').replace('/', '_')}.pstats"))
        decisions = result.decisions
        decide_s = float(decisions["wall_s"].sum()) if "wall_s" in decisions else 0.0
        report = timer.report(seconds)
        timing = PolicyTiming(result.policies[0], seconds, decide_s, None, report["steps"], report["work"], cpu_s)
        timings.append(timing)
        if on_policy is not None:
            on_policy(timing)


def format_replay_table(bench: ReplayBench, top: int = 4) -> str:
    """A table: one row per policy (seconds, ratio to first best, decide seconds), then each policy's
    largest steps and kinds of work."""
    lines = [f"replay of {bench.trace}: {bench.weeks} weeks + {bench.settle_weeks} cool-down weeks under JIT; "
             f"trace read in {bench.read_trace_s:.2f} s; {bench.cpus} CPUs, load average {_load(bench.load_average)}"
             + ("; the retailer's LPs warm-started (--warm-lp)" if bench.warm_lp else ""),
             f"{'policy':<12} {'seconds':>8} {'x first-best':>12} {'decide_s':>9} {'cpu_s':>8} {'cpu x fb':>8}  largest steps (share of the policy's time)"]
    for t in bench.policies:
        ratio = "-" if t.ratio_to_first_best is None else f"{t.ratio_to_first_best:.2f}"
        cpu_ratio = "-" if t.cpu_ratio_to_first_best is None else f"{t.cpu_ratio_to_first_best:.2f}"
        steps = ", ".join(f"{label} {row['share']:.0%}" for label, row in list(t.steps.items())[:top])
        lines.append(f"{t.policy:<12} {t.seconds:>8.2f} {ratio:>12} {t.decide_s:>9.2f} {t.cpu_s:>8.2f} {cpu_ratio:>8}  {steps}")
    lines.append("work underneath (summed over threads; share of the policy's time):")
    for t in bench.policies:
        work = ", ".join(f"{label} {row['share']:.0%} ({int(row['calls'])} calls)" for label, row in list(t.work.items())[:top])
        lines.append(f"  {t.policy:<12} {work or '-'}")
    if not any(t.policy == REFERENCE for t in bench.policies):
        lines.append(f"(no ratios: {REFERENCE} was not among the policies)")
    return "\n".join(lines)


def _load(load: list[float] | None) -> str:
    return "unknown" if load is None else "/".join(f"{x:.2f}" for x in load)
