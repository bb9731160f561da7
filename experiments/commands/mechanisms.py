"""``flosim mechanisms``: the transfer rules side by side (see :mod:`experiments.mechanisms`).

One row per rule (``one-way``, ``two-way``, ``vcg-both``, ``expected-externality``, ``split-savings``; all by
default, or ``--rules R ...``): the planning gap, the best vendor and retailer lie (fractions of social
cost), ex-ante and ex-post participation (party-weeks violated against JIT), the balance ``B`` in total
and the weeks where one-way's clamp binds; a figure (``mechanisms.png``) and ``mechanisms.json`` in
``--out``. The default run is kept affordable: 2 audited rounds and 3 sampled lies per party
(``--lies N|all``, ``--audit-weeks W``); ``--set solver=central`` or ``--set cpp.gap_tol=1e-3`` tells a
rule's own property from planning tolerance. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tqdm import tqdm

from experiments.commands._args import name_value
from experiments.commands.run import _positive_int
from experiments.lies import parse_lies
from experiments.mechanisms import compare_rules
from policies.transfer_rules import RULES
from sim.model.errors import FlosimError
from sim.model.scenario import load_scenario
from sim.results import default_results_dir, write_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("mechanisms", help="the transfer rules side by side: lie gains, participation, balance",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenario", default="default", help="built-in scenario name or YAML file (default: default)")
    p.add_argument("--rules", nargs="+", metavar="R", help=f"rules to compare (default: all: {', '.join(RULES)})")
    p.add_argument("--replications", type=_positive_int("--replications"), default=1, metavar="N",
                   help="simulated worlds for participation and balance (seeds spawned from --seed; default 1)")
    p.add_argument("--weeks", type=_positive_int("--weeks"), help="weeks simulated per world (default: the scenario's)")
    p.add_argument("--audit-weeks", type=_positive_int("--audit-weeks"), default=2, metavar="W",
                   help="planning rounds of the incentive audit (default 2)")
    p.add_argument("--lies", default="3", metavar="all|N",
                   help="lies per party in the audit: N drawn from the seed (default 3) or 'all'")
    p.add_argument("--seed", type=_positive_int("--seed"), help="root seed (default: the scenario's)")
    p.add_argument("--set", dest="options", action="append", default=[], type=name_value("NAME=VALUE", "solver=central"),
                   metavar="NAME=VALUE", help="a cpp-vcg parameter for every rule (solver=central, cpp.gap_tol=1e-3, "
                                              "transfer.prior.spread=0.3); repeat")
    p.add_argument("--out", help="folder for mechanisms.json and mechanisms.png (default: results/mechanisms-<timestamp>)")
    p.add_argument("--json", action="store_true", help="print the rows as JSON on stdout")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    rules = list(dict.fromkeys(args.rules or RULES))
    bad = [r for r in rules if r not in RULES]
    if bad:
        raise FlosimError(f"--rules {bad[0]!r}: unknown transfer rule (rules: {', '.join(RULES)})")
    lies = parse_lies(args.lies)
    scenario = load_scenario(args.scenario)
    if any(name.split(".")[0] == "transfer" and name.split(".")[-1] == "rule" for name, _ in args.options):
        raise FlosimError("--set transfer.rule: the rules are chosen with --rules")
    out = Path(args.out or default_results_dir("mechanisms"))
    started = time.perf_counter()
    say = lambda msg: print(f"mechanisms: {msg}", file=sys.stderr, flush=True)  # noqa: E731
    with tqdm(desc="audited decisions", file=sys.stderr, disable=not sys.stderr.isatty(), delay=2.0) as bar:
        rows, meta = compare_rules(scenario, rules, weeks=args.weeks, audit_weeks=args.audit_weeks, lies=lies,
                                   replications=args.replications, seed=args.seed, options=args.options,
                                   progress=say, on_step=lambda: bar.update(1))
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "mechanisms.json", {**meta, "wall_s": time.perf_counter() - started, "rows": rows})
    from experiments.plots.mechanisms import plot_mechanisms

    plot_mechanisms(rows, out / "mechanisms.png", title=f"Transfer rules, scenario {scenario.name}")
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    print(f"transfer rules on scenario {scenario.name} ({meta['weeks']} weeks x {args.replications} world(s); "
          f"audit: {args.audit_weeks} rounds, lies {meta['lies']}); gains and gap as fractions of social cost")
    if meta["prior"]:
        print(f"expected-externality: the scenario declares no prior; used {meta['prior']}")
    cols = ("rule", "planning_gap", "max_vendor_lie_gain", "max_retailer_lie_gain", "ex_ante_violations",
            "ex_post_violations", "balance_total", "clamp_weeks", "negative_pivot_weeks")
    fmt = lambda v: f"{v:.3g}" if isinstance(v, float) else str(v)  # noqa: E731
    table = [cols, *[[fmt(r[c]) for c in cols] for r in rows]]
    widths = [max(len(str(line[i])) for line in table) for i in range(len(cols))]
    for line in table:
        print("  ".join(str(v).rjust(w) for v, w in zip(line, widths)))
    print(f"\nresults: {out}")
    return 0
