"""``flosim record``: export a run's random inputs (every declared stream: demand, forecasts, delays ...)
as a trace folder.

The trace holds exactly the inputs ``flosim run`` with the same scenario, weeks and seed simulates on,
so ``flosim replay DIR`` reruns that period bit for bit; the format is in ``docs/traces.md``.
``--scenario`` also takes a results folder (its resolved ``scenario.yaml`` carries seed and weeks), to
record the trace of a run made earlier.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from experiments.commands.run import add_scenario_args
from forecasts.inputs import draw_inputs
from forecasts.traces import write_trace
from sim.results import default_results_dir
from sim.model.scenario import Scenario, load_scenario


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("record", help="export a run's inputs (demand, forecasts, delays) as a replayable trace")
    add_scenario_args(p)
    p.add_argument("--out", help="trace folder to create (default: results/trace-<timestamp>)")
    p.add_argument("--force", action="store_true", help="replace --out if it already holds a trace")
    p.add_argument("--json", action="store_true", help="print what was written as JSON on stdout")
    p.set_defaults(func=main)


def scenario_from_arg(text: str) -> Scenario:
    """A built-in name, a YAML file, or a results folder holding ``scenario.yaml``."""
    path = Path(text)
    if path.is_dir() and (path / "scenario.yaml").exists():
        return load_scenario(path / "scenario.yaml")
    return load_scenario(text)


def main(args: argparse.Namespace) -> int:
    scenario = scenario_from_arg(args.scenario)
    weeks = scenario.weeks if args.weeks is None else args.weeks
    seed = scenario.seed if args.seed is None else args.seed
    scenario = scenario.model_copy(update={"weeks": weeks, "seed": seed})
    inputs = draw_inputs(scenario, weeks=weeks, seed=seed)
    out = Path(args.out or default_results_dir("trace"))
    write_trace(out, scenario, inputs, seed=seed, source=" ".join(["flosim", *sys.argv[1:]]), overwrite=args.force)
    info = {"trace_dir": str(out), "scenario": scenario.name, "weeks": weeks, "horizon": scenario.horizon, "seed": seed,
            "regions": len(scenario.regions), "products": len(scenario.products), "lanes": len(scenario.all_lanes)}
    if args.json:
        json.dump(info, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(f"recorded {weeks} weeks of scenario {scenario.name} (seed {seed}) to {out}")
        print(f"replay it with: flosim replay {out}")
    return 0
