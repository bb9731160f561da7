"""``flosim plot RESULTS_DIR``: comparison figures of a run, a replay or a sweep, from saved results only.

Writes social cost by policy (95% CI across replications), savings against JIT, the cost-benefit
transfer by week, participation margins, CPP convergence and, for sweeps, savings against each swept
parameter (see :mod:`experiments.plots.figures`) to ``RESULTS_DIR/plots/`` or ``--out``. For a
``flosim menu`` folder it rebuilds the menu-efficiency figure from ``menu_efficiency.parquet``.
"""

from __future__ import annotations

import argparse
import json
import sys

from experiments.plots.figures import make_plots
from experiments.plots.style import FORMATS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plot", help="comparison figures of a results folder (run, replay, sweep or flosim menu)")
    p.add_argument("results", metavar="RESULTS_DIR", help="a folder written by flosim run, replay, sweep or menu")
    p.add_argument("--out", help="folder for the images (default: RESULTS_DIR/plots)")
    p.add_argument("--format", action="append", choices=FORMATS, metavar="FMT",
                   help=f"image format, repeat for several: {', '.join(FORMATS)} (default: png)")
    p.add_argument("--json", action="store_true", help="print the written files and skipped figures as JSON")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    result = make_plots(args.results, args.out, formats=args.format or ["png"])
    if args.json:
        json.dump({"plots_dir": str(result.out_dir), "files": [str(p) for p in result.paths],
                   "skipped": {spec.stem: why for spec, why in result.skipped}}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for spec, paths in result.made:
            print(f"{spec.stem:<24} {', '.join(str(p) for p in paths)}")
        for spec, why in result.skipped:
            print(f"{spec.stem:<24} skipped: {why}")
    return 0
