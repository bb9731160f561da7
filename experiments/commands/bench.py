"""``flosim bench``: CPP negotiation time against a centralized solve of the same problem.

    flosim bench [--sizes small,pilot,large,PxFxRxO[xV]] [--set NAME=VALUE ...] [--answer NAME=VALUE ...] [--cost-scale S] [--json]

Per size, in one process: the number of public (plan) variables, the joint LP's build and HiGHS solve
times, the CPP negotiation's time and iterations, the ratio CPP/centralized, and the relative gap of
the CPP plan's social cost to the first best, and the bound on it the agents certify without a
central solve (``certified_gap``). Sizes are described in :mod:`experiments.benchmarks`; besides
``small``, ``pilot`` and ``large``, ``PxFxRxO`` (for example ``1000x5x5x2``, or ``PxFxRxOxV`` with V vendors, ``330x5x5x2x3``) builds the benchmark
network with that many products, FCs, regions and origins, for scaling studies. ``--set`` changes an
ADMM option of the negotiation (``--set eps_rel=3e-3``), ``--answer`` a setting of the agents' best
responses (``--answer exact_below=0`` caps every answer at ``early_max_iter`` OSQP iterations); a
name that does not exist, or a value of the wrong type, is an error before anything runs.
``--cost-scale S`` multiplies every cost of both agents by ``S`` (the same problem in another unit:
the stopping rule should not care).
``--json`` prints a list of rows with keys ``size, n_public, central_s, cpp_s, ratio, iterations, gap``
(and a few more).

    flosim bench --replay [TRACE] [--weeks N] [--policy P ...] [--profile DIR] [--warm-lp] [--json]

Replays a trace (default the shipped pilot) once per policy (default ``jit, first-best, cpp-vcg,
menu``), all in one process on the same inputs, and prints each policy's wall time (its measured weeks
and the cool-down under JIT that every replay runs), the ratio to first best's time, the time in the
policy's own planning (``decide_s``), and the shares of its main steps (negotiation set-up and rounds,
certificate checks, CBT pricing, demand paths, menu items, plan evaluations, the world's bookkeeping)
and of the work underneath (LP builds, HiGHS solves, OSQP best responses); see
:mod:`experiments.replay_bench` and ``docs/performance.md``. ``--profile DIR`` also writes a cProfile
of each policy (``DIR/<policy>.pstats``; its overhead is then in the times). ``--warm-lp`` answers
the retailer's demand-path queries with two LPs, the second pinning the least first-week cost among the
optimal plans (:data:`sim.parties.retailer.WARM_START_LPS`; the CBT's prices then differ, and it is
slower than the default order-free warm starts, :data:`sim.model.lp.LP_STARTS`: see ``docs/performance.md``). ``--json`` prints
``{trace, scenario, weeks, settle_weeks, read_trace_s, cpus, load_average, policies}``, each policy
``{policy, seconds, decide_s, ratio_to_first_best, steps, work}`` and each step or kind of work
``{seconds, calls, share}`` (share of the policy's ``seconds``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from experiments.commands._args import name_value
from sim.model.errors import FlosimError
from sim.results import jsonable


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("bench", help="benchmark CPP against a centralized solve",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--replay", nargs="?", const="pilot", default=None, metavar="TRACE",
                   help="time each policy on a trace replay instead (default trace: the shipped pilot) and report its ratio to first best")
    p.add_argument("--weeks", default=None, metavar="N", help="with --replay: replay only the first N weeks")
    p.add_argument("--policy", action="append", default=None, metavar="P",
                   help="with --replay: a policy to time; repeatable (default: jit, first-best, cpp-vcg, menu)")
    p.add_argument("--profile", default=None, metavar="DIR", help="with --replay: also write a cProfile of each policy to DIR/<policy>.pstats")
    p.add_argument("--warm-lp", action="store_true",
                   help="with --replay: answer the retailer's demand-path queries with the least first-week cost among its optimal plans "
                        "(two LPs; other CBT prices, see docs/performance.md)")
    p.add_argument("--sizes", default=None, help="comma-separated sizes: small, pilot, large, or PxFxRxO[xV] (products x FCs x regions x origins [x vendors], "
                   "the benchmark network at another size; default small,pilot)")
    p.add_argument("--set", dest="admm", action="append", type=name_value("NAME=VALUE", "eps_rel=3e-3"), default=[], metavar="NAME=VALUE",
                   help="ADMM option of the negotiation (sim.negotiation.coordinator.ADMMOptions), e.g. eps_rel=3e-3; repeatable")
    p.add_argument("--answer", dest="answers", action="append", type=name_value("NAME=VALUE", "exact_below=0"), default=[], metavar="NAME=VALUE",
                   help="the agents' best-response setting (sim.negotiation.best_response.BestResponseOptions), e.g. exact_below=0; repeatable")
    p.add_argument("--cost-scale", type=float, default=1.0, metavar="S",
                   help="multiply every cost of both agents by S (the same problem in another unit; gaps are relative)")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.replay is not None:
        return run_replay(args)
    given = [flag for flag, value in (("--weeks", args.weeks), ("--policy", args.policy), ("--profile", args.profile),
                                      ("--warm-lp", args.warm_lp or None)) if value is not None]
    if given:
        raise FlosimError(f"{given[0]}: only with --replay")
    from experiments.benchmarks import SIZES, format_table, is_size, run_benchmark
    from policies.cpp import admm_options, answer_options

    sizes = [s.strip() for s in (args.sizes or "small,pilot").split(",") if s.strip()]
    unknown = [s for s in sizes if not is_size(s)]
    if not sizes or unknown:
        raise FlosimError(f"--sizes: unknown size(s) {unknown or sizes!r} (choose from {', '.join(SIZES)}, "
                          "or PxFxRxO[xV]: products x FCs x regions x origins [x vendors], for example 1000x5x5x2 or 330x5x5x2x3)")
    if not (args.cost_scale > 0 and args.cost_scale < float("inf")):
        raise FlosimError(f"--cost-scale: must be a positive finite number, got {args.cost_scale!r}")
    admm, answers = dict(args.admm), dict(args.answers)
    admm_options(admm, "flosim bench --set")  # check both before any size runs
    answer_options(answers, "flosim bench --answer")
    from tqdm import tqdm

    rows = []
    tty = sys.stderr.isatty()
    width = max(7, max(len(s) for s in sizes) + 2)
    for size in sizes:
        # progress on stderr (rounds of the negotiation): a bar on a terminal, otherwise (batch jobs,
        # logs) a line every 10 rounds; residuals as multiples of their tolerances
        if not tty:
            print(f"flosim bench: {size}: central solve, then CPP", file=sys.stderr, flush=True)
        started = time.perf_counter()
        with tqdm(desc=f"CPP rounds ({size})", unit="round", file=sys.stderr, disable=not tty, leave=False) as bar:
            def progress(h: dict, bar: tqdm = bar, size: str = size, started: float = started) -> None:
                primal, dual = h["primal"] / h["eps_pri"], h["dual"] / h["eps_dual"]
                bar.update(1)
                bar.set_postfix(primal=f"{primal:.2g}", dual=f"{dual:.2g}")
                if not tty and h["iteration"] % 10 == 0:
                    print(f"flosim bench: {size}: round {h['iteration']}, primal {primal:.3g}, dual {dual:.3g} x tolerance,"
                          f" {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)

            row = run_benchmark(size, admm, on_round=progress, answers=answers, cost_scale=args.cost_scale)
        rows.append(row)
        if not args.json:
            table = format_table([row], size_width=width)
            print(table.splitlines()[-1] if len(rows) > 1 else table, flush=True)
    if args.json:
        print(json.dumps(jsonable([r.as_dict() for r in rows]), indent=2))
    return 0


def run_replay(args: argparse.Namespace) -> int:
    """``flosim bench --replay``: see the module docstring."""
    from experiments.replay_bench import DEFAULT_POLICIES, bench_replay, format_replay_table

    given = [flag for flag, value in (("--sizes", args.sizes), ("--set", args.admm), ("--answer", args.answers)) if value]
    if given or args.cost_scale != 1.0:
        raise FlosimError(f"{given[0] if given else '--cost-scale'}: not with --replay (it times the policies as the scenario sets them)")
    weeks = None
    if args.weeks is not None:
        try:
            weeks = int(args.weeks)
        except ValueError:
            raise FlosimError(f"--weeks must be a whole number, got {args.weeks!r}") from None
        if weeks < 1:
            raise FlosimError(f"--weeks must be >= 1, got {weeks}")

    def progress(t: object) -> None:
        print(f"flosim bench: {t.policy}: {t.seconds:.2f} s", file=sys.stderr, flush=True)  # type: ignore[attr-defined]

    bench = bench_replay(args.replay, args.policy or DEFAULT_POLICIES, weeks=weeks, profile_dir=args.profile, on_policy=progress,
                         warm_lp=args.warm_lp)
    if args.json:
        print(json.dumps(jsonable(bench.as_dict()), indent=2))
    else:
        print(format_replay_table(bench))
    return 0
