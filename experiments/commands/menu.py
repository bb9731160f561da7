"""``flosim menu``: efficiency of the menu of contracts against its size (tailored vs untailored).

    flosim menu [--scenario S ...] [--spec SWEEP.yaml] [--set PATH=VALUE ...] [--sizes 1,2,4,8]
                [--weeks 1,3] [--deterministic] [--disclosure volume|names] [--method mixed]
                [--out DIR] [--json]

For each scenario, planning week (reached under JIT), tailoring (untailored, or tailored to what the
vendor discloses) and menu size, the vendor picks from the menu once. Shares of the first-best saving
(see :mod:`experiments.menu_efficiency`):

* ``share`` (binding week): the PO scored by the least social cost with it fixed, later weeks
  re-planned efficiently; what the 1% claim is about; need not grow with the menu;
* ``share_vendor`` (vendor's criterion): its cost plus the price, on common demand scenarios; never
  falls as the (nested) menu grows;
* ``share_plan`` (completed plan): the picked six-week plan's social cost on the forecast.

Scenarios: ``--scenario`` (repeat for several; rows are labelled by scenario name, with the file
name added where names repeat), or ``--spec SWEEP.yaml``: the base scenario, ``fixed`` overrides and
design points (``grid`` x ``lhs``) of a sweep spec (``docs/sweeps.md``), one row label per point, e.g.
``default[lanes.0.spare_volume=0]``; the spec's policies, replications and weeks are not used (one
planning context per point, at the scenario's seed). ``--set PATH=VALUE`` (repeatable) overrides a
scenario parameter in every scenario, with the dotted paths of sweep specs (``--set demand.cv=0.4``).

Writes ``menu_efficiency.parquet``, ``menu_efficiency.json`` (rows and the scenarios' labels, sources
and overrides) and the plot ``menu_efficiency.png`` / ``.pdf`` to ``--out``; ``--json`` prints the
rows on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml
from tqdm import tqdm

from experiments.menu_efficiency import DEFAULT_SIZES, menu_efficiency, unique_sizes
from experiments.plots.menu import plot_menu_efficiency
from sim.errors import FlosimError
from sim.results import default_results_dir, write_json, write_table
from sim.scenario import Scenario, load_scenario


def _int_list(what: str, minimum: int):
    def parse(text: str) -> list[int]:
        try:
            values = [int(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None
        if not values or min(values) < minimum:
            kind = "positive" if minimum >= 1 else "non-negative"
            raise argparse.ArgumentTypeError(f"expected {kind} whole numbers ({what}), got {text!r}")
        return unique_sizes(values)

    return parse


def _override(text: str) -> tuple[str, Any]:
    path, sep, value = text.partition("=")
    if not sep or not path.strip():
        raise argparse.ArgumentTypeError(f"expected PATH=VALUE (e.g. demand.cv=0.4), got {text!r}")
    try:
        return path.strip(), yaml.safe_load(value)
    except yaml.YAMLError:
        raise argparse.ArgumentTypeError(f"{path.strip()}: cannot read the value {value!r}") from None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("menu", help="share of the first-best saving a menu captures, by menu size",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenario", action="append", help="scenario name or file; repeat for several (default: default)")
    p.add_argument("--spec", metavar="SWEEP.yaml", help="sweep spec: one scenario per design point (not with --scenario)")
    p.add_argument("--set", dest="overrides", action="append", type=_override, default=[], metavar="PATH=VALUE",
                   help="scenario parameter override applied to every scenario, e.g. demand.cv=0.4; repeatable")
    p.add_argument("--sizes", type=_int_list("menu sizes", 1), default=list(DEFAULT_SIZES),
                   help="menu sizes, positive, e.g. 1,2,4,8,16 (sorted, repeats dropped)")
    p.add_argument("--weeks", type=_int_list("planning weeks", 0), default=[1, 3],
                   help="planning weeks to evaluate, e.g. 0,1,3 (sorted, repeats dropped)")
    p.add_argument("--deterministic", action="store_true", help="known demand (prices then equal forecast costs)")
    p.add_argument("--disclosure", choices=("volume", "names"), default="volume",
                   help="what the vendor discloses for tailoring: FC names and weekly room (volume, default) or names only")
    p.add_argument("--method", choices=("mixed", "discount", "shift"), default="mixed",
                   help="how candidates are generated (the menu policy's method; default mixed)")
    p.add_argument("--out", help="folder for menu_efficiency.parquet/.json and the plot (default: results/menu-<timestamp>)")
    p.add_argument("--json", action="store_true", help="print the table as JSON rows")
    p.set_defaults(func=main)


def unique_labels(names: list[str], sources: list[str]) -> list[str]:
    """Row labels: the scenario names; where a name repeats, with its file's stem added
    (``default (variant)``; ``built-in`` for a built-in name), or the path as given if stems repeat
    too, or finally ``#i``."""
    from sim.scenario import builtin_scenarios

    def where(src: str, full: bool) -> str:
        if src in builtin_scenarios() and not Path(src).exists():
            return "built-in"
        return src if full else Path(src).stem

    labels = list(names)
    for full in (False, True):
        labels = [n if names.count(n) == 1 else f"{n} ({where(src, full)})" for n, src in zip(names, sources)]
        if len(set(labels)) == len(labels):
            return labels
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        if labels.count(label) > 1:
            seen[label] = seen.get(label, 0) + 1
            label = f"{label} #{seen[label]}"
        out.append(label)
    return out


def _point_label(name: str, point: dict[str, Any]) -> str:
    if not point:
        return name
    shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in point.items())
    return f"{name}[{shown}]"


def _scenarios(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Each scenario with its label, source and overrides."""
    if args.spec and args.scenario:
        raise FlosimError("--spec and --scenario cannot be combined: the spec names its scenario")
    out: list[dict[str, Any]] = []
    if args.spec:
        from experiments.sweep import design_points, load_spec

        loaded = load_spec(args.spec)
        for i, point in enumerate(design_points(loaded.spec)):
            scenario = loaded.scenario.with_overrides(point, source=f"{args.spec} (design point {i})") if point else loaded.scenario
            out.append({"scenario": scenario, "label": _point_label(scenario.name, point), "source": args.spec,
                        "overrides": {**loaded.spec.fixed, **point}})
    else:
        names = args.scenario or ["default"]
        loaded_scenarios = [load_scenario(s) for s in names]
        labels = unique_labels([s.name for s in loaded_scenarios], names)
        out = [{"scenario": s, "label": label, "source": src, "overrides": {}} for s, label, src in zip(loaded_scenarios, labels, names)]
    overrides = dict(args.overrides)
    if args.deterministic:
        overrides["demand.deterministic"] = True
    if overrides:
        for entry in out:
            entry["scenario"] = entry["scenario"].with_overrides(overrides, source="--set")
            entry["overrides"] = {**entry["overrides"], **overrides}
    return out


def main(args: argparse.Namespace) -> int:
    entries = _scenarios(args)
    scenarios: list[Scenario] = [e["scenario"] for e in entries]
    for s in scenarios:
        if max(args.weeks) >= s.weeks:
            raise FlosimError(f"--weeks: week {max(args.weeks)} is beyond scenario '{s.name}' ({s.weeks} weeks)")
    out = Path(args.out or default_results_dir("menu"))
    steps = len(scenarios) * len(args.weeks) * 2 * len(args.sizes)
    with tqdm(total=steps, desc="menus", file=sys.stderr, disable=not sys.stderr.isatty(), delay=2.0) as bar:
        table = menu_efficiency(scenarios, args.sizes, args.weeks, labels=[e["label"] for e in entries],
                                method=args.method, disclosure=args.disclosure, on_step=lambda: bar.update(1))
    out.mkdir(parents=True, exist_ok=True)
    write_table(out / "menu_efficiency.parquet", table)
    rows = table.to_dict(orient="records")
    write_json(out / "menu_efficiency.json", {
        "scenarios": [{"label": e["label"], "name": e["scenario"].name, "source": e["source"], "overrides": e["overrides"]}
                      for e in entries],
        "sizes": args.sizes, "weeks": args.weeks, "disclosure": args.disclosure, "method": args.method, "rows": rows,
    })
    plot_menu_efficiency(table, out / "menu_efficiency.png")
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        summary = table.groupby(["scenario", "tailored", "size"])[["share", "share_vendor", "gap"]].mean().unstack("tailored")
        summary.columns = [f"{what} ({'tailored' if tailored else 'untailored'})" for what, tailored in summary.columns]
        print("mean over weeks of: share = share of the first-best saving captured by the binding week's PO;")
        print("share_vendor = the same on the vendor's criterion (its cost + price; never falls as the menu grows);")
        print("gap = binding week's social cost relative to first-best")
        print(summary.to_string(float_format=lambda v: f"{v:.4f}"))
        print(f"\nresults: {out}")
    return 0
