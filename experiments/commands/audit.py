"""``flosim audit``: the incentive audit (see :mod:`experiments.audit`).

Each party lies in turn (the retailer, and with several vendors each vendor, the others truthful);
rows carry the liar's party name. ``--party NAME`` (repeatable) audits only those liars.
``--lies all|N``: besides each party's hand-written lies (the default), the lie families generated
from its private data (every cost and quantity scaled as a whole and at one FC, region, product,
origin or lane at a time, the retailer's forecast per region), all of them or N per party drawn
reproducibly from the seed; rows carry ``parameter``, the parameter lied about.
The CBT of ``cpp-vcg`` and ``menu`` is priced from the retailer's own reported costs, so those
mechanisms are truthful for the vendors only: a retailer lie can pay, and the output says so.
``--rule R``: the transfer rule of ``cpp-vcg`` and ``menu`` (:mod:`policies.transfer_rules`: one-way,
two-way, vcg-both, expected-externality, split-savings); rows carry ``rule``. ``--set NAME=VALUE``: a
mechanism parameter for this audit (``solver=central``, ``cpp.gap_tol=1e-3``, ``transfer.prior.spread=0.2``),
so that a rule's own property can be told apart from planning tolerance.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tqdm import tqdm

from experiments.audit import RULE_MECHANISMS, audit_parties, audit_steps, mechanism_overrides, run_audit
from experiments.commands._args import check_week, name_value, week_index
from policies.transfer_rules import RULES
from experiments.lies import parse_lies
from experiments.commands.run import add_scenario_args
from policies.registry import available_policies
from sim.model.errors import FlosimError
from sim.results import default_results_dir, write_json, write_table
from sim.model.scenario import load_scenario

DEFAULT_MECHANISMS = ("cpp-vcg", "split-savings", "menu")
CBT_MECHANISMS = ("cpp-vcg", "menu")  # transfers priced from the retailer's reports


def audit_notes(mechanisms: list[str], parties: list[str], rule: str | None = None) -> list[str]:
    """What the table cannot say by itself: where a mechanism promises truthfulness for one party only."""
    if rule not in (None, "one-way", "two-way"):
        return []
    cbt = [m for m in mechanisms if m in CBT_MECHANISMS]
    if not cbt or "retailer" not in parties:  # the retailer's party name
        return []
    if len([p for p in parties if p != "retailer"]) <= 1:
        return [f"{', '.join(cbt)}: the CBT is priced from the retailer's own reported costs, so the mechanism is "
                "truthful for the vendor only; a retailer lie can pay (docs/mechanisms.md)"]
    return [f"{', '.join(cbt)}: the transfers are priced from the retailer's own reported costs, so the mechanism "
            "is designed to be truthful for the vendors only; a retailer lie can pay, and with several vendors "
            "vendor lies can pay too (docs/mechanisms.md, the incentive audit)"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("audit", help="incentive audit: does any party gain by misreporting its costs?",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_scenario_args(p)
    p.add_argument("--mechanism", "--policy", dest="mechanism", action="append", metavar="M",
                   help="mechanism to audit; repeat (default: cpp-vcg, split-savings, menu)")
    p.add_argument("--mode", choices=["round", "run"], default="round",
                   help="round: per planning round with continuation values (the theory's test, default); run: whole simulated run")
    p.add_argument("--party", action="append", metavar="NAME",
                   help="liar to audit by party name (retailer, or a vendor's name); repeat (default: every party)")
    p.add_argument("--lies", metavar="all|N",
                   help="lies per party: 'all' (the hand-written set and the families generated from the party's "
                        "private data) or N of those drawn from the seed (default: the hand-written set)")
    p.add_argument("--rule", metavar="R",
                   help=f"transfer rule of the mechanisms that take one ({', '.join(RULE_MECHANISMS)}): "
                        f"{', '.join(RULES)} (default: the scenario's; with --rule and no --mechanism: cpp-vcg only)")
    p.add_argument("--set", dest="options", action="append", default=[], type=name_value("NAME=VALUE", "solver=central"),
                   metavar="NAME=VALUE",
                   help="a mechanism parameter for this audit, dotted for nested settings: solver=central, "
                        "cpp.gap_tol=1e-3, transfer.prior.spread=0.2; repeat")
    p.add_argument("--first-week", type=week_index("--first-week"), default=0, metavar="W",
                   help="round mode: the first audited planning week (default 0); --weeks counts from it")
    p.add_argument("--out", help="folder for audit.parquet, audit.json and the plot (default: results/audit-<timestamp>)")
    p.add_argument("--json", action="store_true", help="print the audit rows as JSON on stdout")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    scenario = load_scenario(args.scenario)
    if args.rule is not None and args.rule not in RULES:
        raise FlosimError(f"--rule {args.rule!r}: unknown transfer rule (rules: {', '.join(RULES)})")
    default = ["cpp-vcg"] if args.rule is not None else DEFAULT_MECHANISMS
    mechanisms = args.mechanism or [m for m in default if m in available_policies()]
    for m in mechanisms:
        if m not in available_policies() and ":" not in m:
            raise FlosimError(f"--mechanism {m!r}: not an available policy ({', '.join(available_policies())})")
    known = audit_parties(scenario)
    parties = list(dict.fromkeys(args.party)) if args.party else known[1:] + known[:1]  # vendors, then the retailer
    unknown = [p for p in parties if p not in known]
    if unknown:
        raise FlosimError(f"--party {unknown[0]}: not a party of scenario {scenario.name!r} (parties: {', '.join(known)})")
    lies = parse_lies(args.lies)
    overrides = mechanism_overrides(scenario, mechanisms, args.rule, args.options)
    from policies.registry import make_policy

    for m in mechanisms:  # bad settings (a rule the mechanism lacks, a prior missing): exit 2 before any work
        make_policy(m, scenario, **overrides.get(m, {}))
    weeks = args.weeks if args.weeks is not None else (3 if args.mode == "round" else scenario.weeks)
    if args.first_week:
        if args.mode != "round":
            raise FlosimError("--first-week: only the round mode audits from a given week")
        check_week(args.first_week + weeks - 1, scenario, "--first-week + --weeks")
    out = Path(args.out or default_results_dir("audit"))
    started = time.perf_counter()
    steps = audit_steps(scenario, mechanisms, parties, args.mode, weeks, lies, args.seed)
    with tqdm(total=steps, desc="auditing", file=sys.stderr, disable=not sys.stderr.isatty(), delay=2.0) as bar:
        table = run_audit(scenario, mechanisms, mode=args.mode, weeks=weeks, seed=args.seed, parties=parties,
                          on_run=lambda: bar.update(1), lies=lies, policy_overrides=overrides, first_week=args.first_week)
    out.mkdir(parents=True, exist_ok=True)
    write_table(out / "audit.parquet", table)
    shown = [c for c in ("mechanism", "rule", "party", "lie", "parameter", "gain", "relative_gain", "truthful_slack", "within_slack", "truthful_balance") if c in table]
    rows = table[shown].to_dict(orient="records")
    write_json(out / "audit.json", {"scenario": scenario.name, "mode": args.mode, "weeks": weeks,
                                    "seed": scenario.seed if args.seed is None else args.seed,
                                    "lies": "default" if lies is None else lies,
                                    "rule": args.rule, "options": dict(args.options), "first_week": args.first_week,
                                    "wall_s": time.perf_counter() - started, "notes": audit_notes(mechanisms, parties, args.rule),
                                    "rows": rows})
    from experiments.plots.audit import plot_audit

    plot_audit(table, out / "audit.png", title=f"Incentive audit ({args.mode}), scenario {scenario.name}")
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(f"incentive audit ({args.mode} mode, {weeks} weeks), scenario {scenario.name}: gain > 0 means lying pays")
        if "truthful_slack" in table:
            print("truthful_slack: the truthful plans' social cost above first best, the most a lie can gain where the "
                  "vendor's net cost is the social cost plus terms it cannot move (Clarke pivot); within_slack: gain <= slack")
        if "truthful_balance" in table:
            print("truthful_balance: the mechanism's balance B over the truthful rounds (+ a deficit funded from outside, "
                  "- a surplus it keeps; 0 when the transfers are budget balanced)")
        print(table[shown].to_string(index=False, float_format=lambda v: f"{v:.6g}"))
        for note in audit_notes(mechanisms, parties, args.rule):
            print(f"note: {note}")
        print(f"\nresults: {out}")
    return 0
