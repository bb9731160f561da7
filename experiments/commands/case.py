"""``flosim case scf|inspection``: the mechanism case studies from the seed sources.

* ``flosim case scf``: supply-chain formation (Narahari & Srivastava) -- Table 5 from the paper's
  Table 4, the project's own Table 4 from Tables 1-3 with a documented fit, payments for Cases 1-4,
  misreport audits, dAGVA, and which of the paper's numbers follow from its text.
* ``flosim case inspection``: optimal mechanism with deferred inspection and reward (Alaei et al.) vs
  Myerson, for one bidder and for two i.i.d. bidders.

Both print a readable report, or exactly one JSON document with ``--json``; both write a PNG figure
and the report as ``report.json`` to ``--out`` (default ``results/case-<name>/``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from sim.model.errors import FlosimError


def _num(value: str, name: str, kind: type = float, lo: float | None = None, hi: float | None = None) -> Any:
    """Parse a command-line number, raising :class:`FlosimError` that names the option and the value."""
    try:
        x = kind(value)
    except (TypeError, ValueError):
        raise FlosimError(f"{name}: expected {'an integer' if kind is int else 'a number'}, got {value!r}") from None
    if isinstance(x, float) and not np.isfinite(x):
        raise FlosimError(f"{name}: must be finite, got {value!r}")
    if (lo is not None and x < lo) or (hi is not None and x > hi):
        bound = f"between {lo} and {hi}" if lo is not None and hi is not None else (
            f">= {lo}" if lo is not None else f"<= {hi}")
        raise FlosimError(f"{name}: must be {bound}, got {value!r}")
    return x


def _floats(value: str, name: str) -> tuple[float, ...]:
    parts = [p for p in value.split(",") if p.strip()]
    if not parts:
        raise FlosimError(f"{name}: expected comma-separated numbers, got {value!r}")
    return tuple(_num(p.strip(), name) for p in parts)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("case", help="mechanism case studies from the sources (scf, inspection)")
    cases = p.add_subparsers(dest="case", metavar="CASE")
    cases.required = True

    s = cases.add_parser("scf", help="supply-chain formation: SCF-DSIC vs SCF-BIC (Narahari & Srivastava)")
    s.add_argument("--alpha", default="350", help="alpha in the DSIC payment, eq. (19) (default: 350, the paper's)")
    s.add_argument("--fit", default="shape", help="cost fit: 'shape' (default) or 'shape-mu' (see README)")
    s.add_argument("--sigma-floor", default="0.01", help="lower bound on every sigma_i in days (default: 0.01)")
    s.add_argument("--samples", default="30", help="sampled misreports per echelon in the audits (default: 30)")
    s.add_argument("--seed", default="0", help="seed of the audit's random generator (default: 0)")
    s.add_argument("--type-scales", default="0.8,1.0,1.2",
                   help="dAGVA type model: each echelon's cost is scale x fitted cost (default: 0.8,1.0,1.2)")
    s.add_argument("--type-prior", default="0.25,0.5,0.25", help="prior over the scales (default: 0.25,0.5,0.25)")
    s.add_argument("--out", help="folder for the figure and report.json (default: results/case-scf)")
    s.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    s.set_defaults(func=run_scf)

    i = cases.add_parser("inspection", help="optimal auction with deferred inspection and reward vs Myerson")
    i.add_argument("--dist", default="uniform",
                   help="value distribution: uniform (default), triangular, beta25, exponential, uniform12")
    i.add_argument("--grid", default="200", help="value grid points for one bidder (default: 200)")
    i.add_argument("--grid2", default="40", help="value grid points for two bidders (default: 40)")
    i.add_argument("--inspection-prob", default="1", help="probability a lie is detected, 0..1 (default: 1)")
    i.add_argument("--deposit-factor", default="1",
                   help="deposit as a multiple of the bid; a detected liar forfeits it (default: 1, the paper's)")
    i.add_argument("--inspection-cost", default="0", help="cost per inspection (default: 0)")
    i.add_argument("--inspect", default="all",
                   help="whose value is observed: 'all' bidders (default, the paper's) or only 'winners'")
    i.add_argument("--out", help="folder for the figure and report.json (default: results/case-inspection)")
    i.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    i.set_defaults(func=run_inspection)


def _finish(report: dict, out: Path, plot, render, as_json: bool) -> int:
    out.mkdir(parents=True, exist_ok=True)
    report["figure"] = str(plot(report, out))
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    if as_json:
        json.dump(report, sys.stdout)
        sys.stdout.write("\n")
    else:
        print(render(report))
        print(f"\nfigure: {report['figure']}\nreport: {out / 'report.json'}")
    return 0


def run_scf(args: argparse.Namespace) -> int:
    from experiments.cases import scf_report

    alpha = _num(args.alpha, "--alpha")
    samples = _num(args.samples, "--samples", int, 1, 10_000)
    seed = _num(args.seed, "--seed", int, 0, 2**63 - 1)
    sigma_floor = _num(args.sigma_floor, "--sigma-floor", float, 0.0, 0.25)
    scales = _floats(args.type_scales, "--type-scales")
    if any(x <= 0 for x in scales) or len(set(scales)) != len(scales):
        raise FlosimError(f"--type-scales: need distinct positive numbers, got {args.type_scales!r}")
    prior = _floats(args.type_prior, "--type-prior")
    if len(prior) != len(scales) or any(x < 0 for x in prior) or not np.isclose(sum(prior), 1.0):
        raise FlosimError(f"--type-prior: need {len(scales)} non-negative numbers summing to 1, got {args.type_prior!r}")
    if 1.0 not in scales:
        raise FlosimError(f"--type-scales: must include 1.0 (the fitted cost itself), got {args.type_scales!r}")
    if args.fit not in ("shape", "shape-mu"):
        raise FlosimError(f"--fit: unknown fit {args.fit!r} (use 'shape' or 'shape-mu')")
    report = scf_report.run_case(
        alpha=alpha, fit=args.fit, sigma_floor=sigma_floor, samples=samples, rng=np.random.default_rng(seed),
        type_scales=scales, type_prior=prior,
    )
    report["seed"] = seed
    out = Path(args.out) if args.out else Path("results") / "case-scf"
    return _finish(report, out, scf_report.plot_payments, scf_report.render_text, args.json)


def run_inspection(args: argparse.Namespace) -> int:
    from experiments.cases import inspection_report

    report = inspection_report.run_case(
        dist=args.dist,
        grid_points=_num(args.grid, "--grid", int, 2, 2000),
        grid_points_two=_num(args.grid2, "--grid2", int, 4, 120),
        inspection_prob=_num(args.inspection_prob, "--inspection-prob", float, 0.0, 1.0),
        deposit_factor=_num(args.deposit_factor, "--deposit-factor", float, 0.0, 100.0),
        inspection_cost=_num(args.inspection_cost, "--inspection-cost", float, 0.0, None),
        inspect=args.inspect,
    )
    out = Path(args.out) if args.out else Path("results") / "case-inspection"
    return _finish(report, out, inspection_report.plot_allocations, inspection_report.render_text, args.json)
