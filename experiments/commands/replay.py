"""``flosim replay``: rerun a recorded period (the shipped nine-week pilot, or a user's trace) exactly.

``flosim replay pilot`` replays the pilot trace shipped with flosim; ``flosim replay DIR`` replays a
trace folder written by ``flosim record`` or assembled by hand (``docs/traces.md``). Every policy is
simulated on the trace's inputs, with the trace's seed for the policies' own randomness, so two replays
(and a replay of a recorded run) give identical ledgers. By default the pilot's comparison runs:
``jit``, ``cpp-vcg``, ``menu`` and ``first-best`` (those available). ``--json`` prints the same summary
as ``flosim run --json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from experiments.commands.run import _positive_int, _print_table, run_summary, write_run_folder
from forecasts.traces import builtin_traces, find_trace, trace_scenario
from policies.registry import available_policies
from sim.model.errors import FlosimError
from sim.results import check_out_folder, default_results_dir
from sim.runner import run_policies

PILOT_POLICIES = ("jit", "cpp-vcg", "menu", "first-best")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("replay", help="rerun a recorded trace (e.g. the nine-week pilot) exactly")
    p.add_argument("trace", metavar="TRACE", help=f"a trace folder, or a shipped trace ({', '.join(builtin_traces()) or 'none'})")
    p.add_argument("--scenario", help="scenario (network, costs) to replay with (default: the trace's scenario.yaml)")
    p.add_argument("--policy", action="append", metavar="P",
                   help="policy name or module:Class; repeat (default: jit, cpp-vcg, menu, first-best); jit always runs")
    p.add_argument("--weeks", type=_positive_int("--weeks"), help="replay only the first N weeks (default: all)")
    p.add_argument("--out", help="results folder (default: results/replay-<timestamp>); must be new or empty")
    p.add_argument("--force", action="store_true", help="replace --out if it already holds a results folder")
    p.add_argument("--json", action="store_true", help="print one JSON summary on stdout (same keys as flosim run)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    folder = find_trace(args.trace)
    scenario = trace_scenario(folder, args.scenario)
    if args.weeks is not None and args.weeks > scenario.weeks:
        raise FlosimError(f"--weeks {args.weeks}: the trace {folder} holds only {scenario.weeks} weeks")
    policies = args.policy or [p for p in PILOT_POLICIES if p in available_policies()]
    if "jit" not in policies:
        policies = ["jit", *policies]
    out = Path(args.out) if args.out else default_results_dir("replay")
    check_out_folder(out, getattr(args, "force", False))  # before replaying, not after
    started = time.perf_counter()
    failures: list[str] = []
    result = run_policies(scenario, policies, weeks=args.weeks,
                          on_error=lambda name, exc: failures.append(f"{name}: {type(exc).__name__}: {exc}"))
    if not result.policies:  # the first policy failed: nothing to show or keep
        raise FlosimError(f"{result.error}; nothing was written")
    result.timings["total_s"] = time.perf_counter() - started
    summary = run_summary(result, str(out), scenario.name)
    write_run_folder(out, result, summary, extra_metadata={"kind": "replay", "trace": str(folder)})
    if args.json:
        json.dump(summary, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(f"replay of trace {folder}")
        _print_table(summary, result)
    if result.error:
        raise FlosimError(f"{result.error}; results of the finished policies are in {out}")
    return 0
