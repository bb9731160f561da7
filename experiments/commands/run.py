"""``flosim run``: simulate policies on one scenario with common random numbers, write a results folder.

The summary gives raw figures (the measured weeks) and settled ones (with the scenario's cool-down
under JIT, so the stock a run leaves behind is valued: ``settled_social_cost`` ...), and each
party's figures by name (``policies.<p>.parties.<name>.net_cost``, ``participation.<p>.<name>``: the
retailer and every vendor; one-vendor scenarios keep ``retailer_net_cost``/``vendor_net_cost``). With
``--replications N`` (N >= 2) every policy runs on N worlds whose seeds are spawned from the run's
seed, and the summary gives each figure as ``{mean, lo, hi}`` (95% confidence interval), savings and
margins as paired differences per replication (:mod:`experiments.replications`); the results folder
holds every replication's rows (a ``replication`` column) and ``flosim plot``/``flosim report`` draw
the intervals. ``--set PATH=VALUE`` (repeatable) overrides a scenario parameter by its dotted path,
as sweep specs do (``--set demand.cv=0.4``, ``--set policies.menu.size=24``), validated like a file;
the results folder's ``scenario.yaml`` is the scenario as run and the summary lists the ``overrides``.
``--workers N`` simulates N policies at once, each in its own process (:func:`sim.runner.run_policies`):
the same numbers as one after the other.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
import time
from typing import Any

from experiments.commands._args import name_value
from experiments.overrides import override_problem
from policies.registry import available_policies
from sim.model.errors import FlosimError
from sim.metrics import component_table, participation, party_columns, summarize
from sim.results import check_out_folder, default_results_dir, publish_mode, replace_folder, write_results
from sim.runner import RunResult, run_policies
from sim.model.scenario import load_scenario, scenario_warnings

DEFAULT_POLICIES = ("jit", "first-best", "cpp", "cpp-vcg", "menu")
MAX_REPLICATIONS = 10_000


def _positive_int(name: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a whole number, got {text!r}") from None
        if value < (0 if name == "--seed" else 1):
            raise argparse.ArgumentTypeError(f"{name} must be {'>= 0' if name == '--seed' else '>= 1'}, got {value}")
        if name == "--replications" and value > MAX_REPLICATIONS:
            raise argparse.ArgumentTypeError(f"{name} must be <= {MAX_REPLICATIONS}, got {value}")
        return value

    return parse


def add_scenario_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scenario", default="default", help="built-in scenario name or YAML file (default: default)")
    p.add_argument("--weeks", type=_positive_int("--weeks"), help="weeks to simulate (default: the scenario's)")
    p.add_argument("--seed", type=_positive_int("--seed"), help="root seed (default: the scenario's)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="simulate policies on a scenario and write a results folder")
    add_scenario_args(p)
    p.add_argument(
        "--policy",
        action="append",
        metavar="P",
        help="policy name or module:Class; repeat for several (default: all built-ins available); "
        "jit always runs as the reference for savings and participation",
    )
    p.add_argument("--replications", type=_positive_int("--replications"), default=1, metavar="N",
                   help="run every policy on N worlds (seeds spawned from --seed) and report means with 95%% "
                   "confidence intervals, savings as paired differences (default 1: one world)")
    p.add_argument("--workers", type=_positive_int("--workers"), default=1, metavar="N",
                   help="simulate N policies at once, each in its own process (default 1: one after the other); "
                   "the same numbers either way")
    p.add_argument("--set", dest="overrides", action="append", type=name_value("PATH=VALUE", "demand.cv=0.4"), default=[],
                   metavar="PATH=VALUE", help="override a scenario parameter by its dotted path, as in sweep specs "
                   "(demand.cv=0.4, policies.menu.size=24, policies.cpp-vcg.transfer.continuation=paths); repeatable")
    p.add_argument("--out", help="results folder (default: results/run-<timestamp>); must be new or empty")
    p.add_argument("--force", action="store_true", help="replace --out if it already holds a results folder")
    p.add_argument("--json", action="store_true", help="print one JSON summary on stdout")
    p.set_defaults(func=main)


def run_summary(result: RunResult, results_dir: str, scenario_label: str) -> dict[str, Any]:
    return {
        "scenario": scenario_label,
        "weeks": result.weeks,
        "seed": result.seed,
        "settle_weeks": result.settle,
        "results_dir": results_dir,
        "policies": summarize(result.ledger, result.flows, result.decisions),
        "participation": participation(result.ledger, result.decisions) if "jit" in result.policies else {},
        **({"error": result.error} if result.error else {}),
        **({"warnings": warnings} if (warnings := scenario_warnings(result.scenario)) else {}),
    }


def _check_overrides(overrides: dict[str, Any], scenario: Any, requested: list[str]) -> None:
    """Refuse ``--set PATH`` when PATH names nothing the scenario can set (:func:`experiments.overrides.
    override_problem`, the check sweep specs get), e.g. ``policies.cpp_vcg`` for ``cpp-vcg``. A
    ``module:Class`` policy's own name is only known once it is built, so with one in the run paths
    under ``policies.`` are left to the scenario's own validation."""
    base = scenario.model_dump(mode="json")
    custom = any(":" in p for p in requested)
    for path in overrides:
        why = None if custom and path.startswith("policies.") else override_problem(base, path)
        if why:
            raise FlosimError(f"--set {path}: {why}")


def main(args: argparse.Namespace) -> int:
    scenario = load_scenario(args.scenario)
    overrides = dict(getattr(args, "overrides", None) or [])
    if overrides:  # validated like a file; the results folder keeps the scenario as run
        _check_overrides(overrides, scenario, args.policy or [])
        scenario = scenario.with_overrides(overrides, source="--set")
    policies = args.policy or [p for p in DEFAULT_POLICIES if p in available_policies()]
    if "jit" not in policies:  # the reference world for savings and ex post participation
        policies = ["jit", *policies]
    out = Path(args.out) if args.out else default_results_dir("run")
    check_out_folder(out, getattr(args, "force", False))  # before minutes of simulation, not after
    for warning in scenario_warnings(scenario):
        print(f"flosim: warning: {warning}", file=sys.stderr)
    if getattr(args, "replications", 1) > 1:
        return _main_replicated(args, scenario, policies, out)
    started = time.perf_counter()
    failures: list[str] = []
    result = run_policies(
        scenario,
        policies,
        weeks=args.weeks,
        seed=args.seed,
        on_error=lambda name, exc: failures.append(f"{name}: {type(exc).__name__}: {exc}"),
        workers=getattr(args, "workers", 1),
    )
    if not result.policies:  # the first policy failed: nothing to show or keep
        raise FlosimError(f"{result.error}; nothing was written")
    result.timings["total_s"] = time.perf_counter() - started
    summary = run_summary(result, str(out), scenario.name)
    if overrides:
        summary["overrides"] = overrides
    write_run_folder(out, result, summary)
    if args.json:
        json.dump(summary, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print_table(summary, result)
    if result.error:
        raise FlosimError(f"{result.error}; results of the finished policies are in {out}")
    return 0


def write_run_folder(out: Path, result: RunResult, summary: dict[str, Any], extra_metadata: dict[str, Any] | None = None) -> None:
    """Write a run's results folder in a temporary sibling and put it at ``out`` whole (replacing an
    earlier results folder, which :func:`sim.results.check_out_folder` allowed with ``--force``)."""
    _write_whole(out, tables={"ledger": result.ledger, "flows": result.flows, "decisions": result.decisions,
                              "shortfalls": result.shortfalls},
                 summary=summary, scenario=result.scenario, seed=result.seed, timings=result.timings,
                 extra_metadata=extra_metadata)


def _write_whole(out: Path, **contents: Any) -> None:
    """:func:`sim.results.write_results` into a temporary sibling, then put the folder at ``out`` whole."""
    out = Path(os.path.abspath(out))  # a name to put beside it even for --out results/.
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        write_results(tmp, **contents)
        publish_mode(tmp, folder=True)
        replace_folder(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _print_table(summary: dict[str, Any], result: RunResult) -> None:
    print(f"scenario {summary['scenario']}, {summary['weeks']} weeks, seed {summary['seed']}; "
          f"settled figures include {summary.get('settle_weeks', 0)} cool-down weeks under JIT, raw ones do not")
    parties = list(dict.fromkeys(p for t in summary["policies"].values() for p in t.get("parties") or {}))
    cols = ["settled_social_cost", "settled_saving_vs_jit", "social_cost", *(f"net_cost_{p}" for p in parties),
            "transfers", "fill_rate", "saving_vs_jit"]
    heads = ["settled social", "settled saving", "raw social", *(f"raw {p}"[:15] for p in parties), "transfers", "fill rate",
             "raw saving"]
    print(f"{'policy':<14}" + "".join(f"{c:>16}" for c in heads))
    for name, t in summary["policies"].items():
        t = {**t, **party_columns(t)}
        cells = "".join(f"{t.get(c, float('nan')) if t.get(c) is not None else float('nan'):>16.2f}" for c in cols)
        print(f"{name:<14}{cells}")
    print()
    print("raw cost components (measured weeks):")
    print(component_table(result.ledger).round(1).to_string())
    print(f"\nresults: {summary['results_dir']}")


def _main_replicated(args: argparse.Namespace, scenario, policies: list[str], out: Path) -> int:
    from experiments.replications import replicate, replicated_summary, run_figures

    started = time.perf_counter()
    failures: list[str] = []
    rep = replicate(scenario, policies, args.replications, seed=args.seed, weeks=args.weeks,
                    on_error=lambda name, exc: failures.append(f"{name}: {type(exc).__name__}: {exc}"),
                    workers=getattr(args, "workers", 1))
    if not rep.results:
        raise FlosimError(rep.error or "no replication ran")
    first = rep.results[0]
    per_run = [run_figures(r) for r in rep.results if not r.error]
    names = [n for n in first.policies]
    summary: dict[str, Any] = {
        "scenario": scenario.name,
        "weeks": first.weeks,
        "seed": rep.seed,
        "settle_weeks": first.settle,
        "replications": args.replications,
        "seeds": rep.seeds[: len(rep.results)],
        "results_dir": str(out),
        **({"overrides": dict(args.overrides)} if getattr(args, "overrides", None) else {}),
        **replicated_summary(per_run, names),
        "per_replication": [{"replication": i, "seed": s, **fig} for i, (s, fig) in enumerate(zip(rep.seeds, per_run))],
        **({"error": rep.error} if rep.error else {}),
    }
    timings = {"total_s": time.perf_counter() - started}
    for r in rep.results:
        for k, v in r.timings.items():
            timings[k] = timings.get(k, 0.0) + v
    _write_whole(out, tables=rep.tables(), summary=summary, scenario=first.scenario.model_copy(update={"seed": rep.seed}),
                 seed=rep.seed, timings=timings, extra_metadata={"replications": args.replications, "seeds": rep.seeds})
    for warning in summary.get("warnings", []):
        print(f"flosim: warning: {warning}", file=sys.stderr)
    if args.json:
        json.dump(summary, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print_replicated(summary)
    if rep.error:
        raise FlosimError(f"{rep.error}; results of the finished replications are in {out}")
    return 0


def _ci(v: dict[str, Any] | None, percent: bool = False) -> str:
    if not v or v.get("mean") is None:
        return "-"
    f = (lambda x: f"{100 * x:.1f}%") if percent else (lambda x: f"{x:,.0f}")
    if v.get("lo") is None:
        return f(v["mean"])
    return f"{f(v['mean'])} [{f(v['lo'])}, {f(v['hi'])}]"


def _print_replicated(summary: dict[str, Any]) -> None:
    print(f"scenario {summary['scenario']}, {summary['weeks']} weeks (+{summary['settle_weeks']} cool-down weeks under JIT), "
          f"{summary['replications']} replications from seed {summary['seed']}; mean [95% CI]; settled figures")
    cols = [("settled_social_cost", "settled social cost", False), ("settled_saving_vs_jit", "saving vs JIT", False),
            ("share_of_first_best", "share of first best", True)]
    vendors = list(dict.fromkeys(party for part in summary["participation"].values() for party in part if party != "retailer"))
    print(f"{'policy':<14}" + "".join(f"{label:>34}" for _, label, _ in cols)
          + "".join(f"{(v + ' settled margin')[:33]:>34}" for v in vendors))
    for name, t in summary["policies"].items():
        part = summary["participation"].get(name) or {}
        margins = [(part.get(v) or {}).get("settled_ex_post_margin") for v in vendors]
        print(f"{name:<14}" + "".join(f"{_ci(t.get(k), pc):>34}" for k, _, pc in cols) + "".join(f"{_ci(m):>34}" for m in margins))
    print(f"\nresults: {summary['results_dir']}")
