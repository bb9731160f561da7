"""``flosim menu``: efficiency of the menu of contracts against its size (tailored vs untailored)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tqdm import tqdm

from experiments.menu_efficiency import DEFAULT_SIZES, menu_efficiency
from experiments.plots.menu import plot_menu_efficiency
from sim.errors import FlosimError
from sim.results import default_results_dir, write_table
from sim.scenario import load_scenario


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"expected non-negative whole numbers, got {text!r}")
    return values


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("menu", help="share of the first-best saving a menu captures, by menu size")
    p.add_argument("--scenario", action="append", help="scenario name or file; repeat to sweep (default: default)")
    p.add_argument("--sizes", type=_int_list, default=list(DEFAULT_SIZES), help="menu sizes, e.g. 1,2,4,8,16")
    p.add_argument("--weeks", type=_int_list, default=[1, 3], help="planning weeks to evaluate, e.g. 0,1,3")
    p.add_argument("--deterministic", action="store_true", help="known demand (prices then equal forecast costs)")
    p.add_argument("--disclosure", choices=("volume", "names"), default="volume",
                   help="what the vendor discloses for tailoring: FC names and weekly room (volume, default) or names only")
    p.add_argument("--out", help="folder for menu_efficiency.parquet and the plot")
    p.add_argument("--json", action="store_true", help="print the table as JSON rows")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    scenarios = [load_scenario(s) for s in (args.scenario or ["default"])]
    if args.deterministic:
        scenarios = [s.with_overrides({"demand.deterministic": True}) for s in scenarios]
    if any(size < 1 for size in args.sizes):
        raise FlosimError(f"--sizes: menu sizes must be >= 1, got {args.sizes}")
    for s in scenarios:
        if max(args.weeks) >= s.weeks:
            raise FlosimError(f"--weeks: week {max(args.weeks)} is beyond scenario '{s.name}' ({s.weeks} weeks)")
    out = Path(args.out or default_results_dir("menu"))
    steps = len(scenarios) * len(args.weeks) * 2 * len(args.sizes)
    with tqdm(total=steps, desc="menus", file=sys.stderr, disable=not sys.stderr.isatty(), delay=2.0) as bar:
        table = menu_efficiency(scenarios, args.sizes, args.weeks, disclosure=args.disclosure, on_step=lambda: bar.update(1))
    out.mkdir(parents=True, exist_ok=True)
    write_table(out / "menu_efficiency.parquet", table)
    plot_menu_efficiency(table, out / "menu_efficiency.png")
    if args.json:
        json.dump(table.to_dict(orient="records"), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        summary = table.groupby(["tailored", "size"])[["share", "gap"]].mean().unstack("tailored")
        print("share of the first-best saving captured (mean over weeks and scenarios), and relative gap to first-best")
        print(summary.to_string(float_format=lambda v: f"{v:.4f}"))
        print(f"\nresults: {out}")
    return 0
