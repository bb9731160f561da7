"""``flosim scenario``: start a scenario of your own from a built-in one, and check a scenario file.

    flosim scenario list                     # the built-in scenarios, one line each
    flosim scenario show default > my.yaml   # a built-in scenario as a commented YAML file to edit
    flosim scenario check my.yaml            # validate a file as `flosim run` would, without running

``show`` prints the built-in file itself, comments included, under a header saying how to use it;
``--resolved`` prints instead the scenario as loaded (generated products written out, every default
filled in), which is also what a results folder's ``scenario.yaml`` holds. ``check`` exits 0 and prints
the scenario's sizes for a valid file (and any warning, e.g. a region no FC serves), or exits 2 with the
file, field and value of the first problem.
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib import resources

import yaml

from sim.model.errors import ScenarioError
from sim.model.scenario import builtin_scenarios, load_scenario, scenario_warnings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scenario", help="list, show (as YAML to edit) or check scenarios",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    actions.add_parser("list", help="the built-in scenarios").set_defaults(func=_list)
    show = actions.add_parser("show", help="print a built-in scenario as a commented YAML file to edit")
    show.add_argument("name", metavar="NAME", help=f"built-in scenario ({', '.join(builtin_scenarios())})")
    show.add_argument("--resolved", action="store_true",
                      help="print the scenario as loaded (defaults filled in, generated products written out)")
    show.set_defaults(func=_show)
    check = actions.add_parser("check", help="validate a scenario file (or built-in name) without running it")
    check.add_argument("scenario", metavar="FILE", help="YAML scenario file or built-in name")
    check.add_argument("--json", action="store_true", help="print the sizes and warnings as JSON")
    check.set_defaults(func=_check)


def _list(args: argparse.Namespace) -> int:
    names = builtin_scenarios()
    width = max([12, *(len(n) for n in names)])  # the names line up however long the longest is
    for name in names:
        s = load_scenario(name)
        vendors = [v.name for v in s.vendor_specs()]
        who = f" [vendors: {', '.join(vendors)}]" if len(vendors) > 1 else ""
        print(f"{name:<{width}} {s.description}{who}")
    return 0


def _show(args: argparse.Namespace) -> int:
    if args.name not in builtin_scenarios():
        raise ScenarioError(f"scenario show {args.name!r}: not a built-in scenario (built-in: {', '.join(builtin_scenarios())}); "
                            "a file of your own is already YAML to edit")
    header = (f"# flosim scenario '{args.name}', written by `flosim scenario show {args.name}"
              f"{' --resolved' if args.resolved else ''}`.\n"
              "# Edit it (give it a new name), check it with `flosim scenario check FILE`, then run it with\n"
              "# `flosim run --scenario FILE`. Every field is described in sim/model/scenario.py; the model in docs/model.md.\n")
    if args.resolved:
        body = yaml.safe_dump(load_scenario(args.name).model_dump(mode="json"), sort_keys=False)
    else:
        body = (resources.files("sim") / "scenarios" / f"{args.name}.yaml").read_text()
    sys.stdout.write(header + body)
    return 0


def _check(args: argparse.Namespace) -> int:
    s = load_scenario(args.scenario)
    warnings = scenario_warnings(s)
    vendors = [v.name for v in s.vendor_specs()]
    origins, lanes = len(s.all_origins), len(s.all_lanes)  # every vendor's (a version-2 file has no top-level ones)
    info = {"scenario": s.name, "weeks": s.weeks, "horizon": s.horizon, "products": len(s.products),
            "fcs": len(s.fcs), "regions": len(s.regions), "origins": origins, "lanes": lanes,
            "vendors": vendors, "warnings": warnings}
    if args.json:
        json.dump(info, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for w in warnings:
            print(f"flosim: warning: {w}", file=sys.stderr)
        print(f"{args.scenario}: valid scenario '{s.name}': {s.weeks} weeks, horizon {s.horizon}, {len(s.products)} products, "
              f"{len(s.fcs)} FCs, {len(s.regions)} regions, {origins} origins, {lanes} lanes, "
              f"{len(vendors)} vendor{'s' if len(vendors) != 1 else ''} ({', '.join(vendors)})")
    return 0
