"""``flosim sweep SPEC.yaml``: run a sweep (design x policies x replications), resumable, locally or on Dask.

See :mod:`experiments.sweep` for the spec and the output tables and ``docs/sweeps.md`` for examples,
including a SLURM cluster. Exit status: 0 when every run finished, 1 when some runs failed (each has
``runs/<run_id>/error.json``; ``--resume`` retries them), 2 for a bad spec or option.

``--estimate N`` runs nothing of the sweep: it measures ``N`` of its runs, spread over the design, one
after the other, and prints the mean CPU time of a run and the CPU-hours of the whole sweep
(:mod:`experiments.sweep_estimate`); no sweep folder is written.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from experiments.commands.run import _positive_int
from experiments.executors import make_executor
from experiments.sweep import load_spec, run_sweep
from sim.model.errors import FlosimError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="run a sweep over scenario parameters x policies x replications")
    p.add_argument("spec", metavar="SPEC.yaml", help="sweep spec (see docs/sweeps.md; example: experiments/specs/smoke.yaml)")
    p.add_argument("--executor", choices=["local", "dask"], default="local",
                   help="local: this machine's cores (default); dask: a local Dask cluster, or --scheduler")
    p.add_argument("--workers", type=_positive_int("--workers"), help="worker processes (default: all cores; 1 = serial)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="connect to a running Dask scheduler (with --executor dask)")
    p.add_argument("--out", help="sweep folder (default: results/sweep-<spec name>)")
    p.add_argument("--resume", action="store_true", help="continue a sweep in --out: skip finished runs, retry failed ones")
    p.add_argument("--estimate", type=_positive_int("--estimate"), metavar="N",
                   help="measure N of the sweep's runs (spread over its design, run one after the other) and print the "
                   "CPU-hours the whole sweep would take; runs nothing else and writes no sweep folder")
    p.add_argument("--json", action="store_true", help="print runs_total, runs_done, runs_skipped, runs_failed, results_dir")
    p.set_defaults(func=main)


def _estimate(loaded, args: argparse.Namespace) -> int:
    from experiments.sweep_estimate import estimate_sweep

    def progress(row: dict) -> None:
        print(f"flosim: run {row['run_id']} (design point {row['point']}, replication {row['replication']}): "
              f"{row['status']}, {row['cpu_s']:.1f} s CPU, {row['wall_s']:.1f} s wall", file=sys.stderr)

    estimate = estimate_sweep(loaded, args.estimate, on_run=progress).as_json()
    if args.json:
        json.dump(estimate, sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif estimate["estimated_cpu_hours"] is None:
        print(f"sweep {estimate['spec']}: every sampled run failed; no estimate")
    else:
        cpu = estimate["cpu_s"]
        print(f"sweep {estimate['spec']}: {estimate['runs_total']} runs; {estimate['runs_sampled']} measured: "
              f"{cpu['mean']:.1f} s CPU a run (min {cpu['min']:.1f}, max {cpu['max']:.1f}); "
              f"estimated {estimate['estimated_cpu_hours']:.2f} CPU-hours")
    return 1 if estimate["runs_failed"] else 0


def main(args: argparse.Namespace) -> int:
    loaded = load_spec(args.spec)
    if getattr(args, "estimate", None):
        given = [flag for flag, on in (("--out", args.out), ("--resume", args.resume), ("--executor", args.executor != "local"),
                                       ("--workers", args.workers), ("--scheduler", args.scheduler)) if on]
        if given:
            raise FlosimError(f"--estimate measures runs one after the other in this process: it takes no --out, "
                              f"--resume, --executor, --workers or --scheduler (given: {', '.join(given)})")
        return _estimate(loaded, args)
    executor = make_executor(args.executor, args.workers, args.scheduler)
    out = Path(args.out or f"results/sweep-{loaded.spec.name}")
    report = run_sweep(loaded, out, executor=executor, resume=args.resume)
    if args.json:
        json.dump(report.as_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        damaged = f", {report.runs_damaged} of them found damaged and run again" if report.runs_damaged else ""
        print(f"sweep {loaded.spec.name}: {report.runs_total} runs, {report.runs_done} run now{damaged}, "
              f"{report.runs_skipped} already done, {report.runs_failed} failed ({report.wall_s:.1f} s)")
        print(f"results: {out} (summary.parquet, runs.parquet, ledger.parquet, sweep.json)")
    if report.failures:
        for f in report.failures[:10]:
            print(f"flosim: run {f['run_id']} failed: {f['error']} (see {out / 'runs' / f['run_id'] / 'error.json'})", file=sys.stderr)
        if len(report.failures) > 10:
            print(f"flosim: ... and {len(report.failures) - 10} more failed runs (runs.parquet lists them)", file=sys.stderr)
        return 1
    return 0
