"""``flosim menu``: efficiency of the menu of contracts against its size (tailored vs untailored).

    flosim menu [--scenario S ...] [--spec SWEEP.yaml] [--set PATH=VALUE ...] [--sizes 1,2,4,8]
                [--week 1,3] [--deterministic] [--disclosure volume|names] [--method mixed|discount|shift]
                [--format png ...] [--out DIR] [--json]

For each scenario, planning week (reached under JIT), tailoring (untailored, or tailored to what the
vendor discloses) and menu size, the vendor picks from the menu once. Shares of the first-best saving
(see :mod:`experiments.menu_efficiency`):

* ``share`` (binding week): the PO scored by the least social cost with it fixed, later weeks
  re-planned efficiently; what the 1% claim is about; need not grow with the menu;
* ``share_vendor`` (vendor's criterion): its cost plus the price, on common demand scenarios; never
  falls as the (nested) menu grows;
* ``share_plan`` (completed plan): the picked six-week plan's social cost on the forecast.

The menu is the scenario's own (``policies.menu`` in its file: ``levels``, ``volume_step``,
``items`` (or its alias ``commitment: week|plan``), ``pricing``, ``discount``, ``risk_aversion``, ``scenarios``, ``two_way``, ``method``,
``disclosure``), as ``flosim run`` would build it; the command sets only the size and the preference
(untailored: none; tailored: the scenario's if it names FCs or regions, else the vendor's disclosure)
and, if given, ``--method`` and ``--disclosure``. Prices average over the policy's demand paths
(``scenarios``, default 8; ``--set policies.menu.scenarios=4`` for fewer).

Scenarios: ``--scenario`` (repeat for several; rows are labelled by scenario name, with the file
name added where names repeat), or ``--spec SWEEP.yaml``: the base scenario, ``fixed`` overrides and
design points (``grid`` x ``lhs``) of a sweep spec (``docs/sweeps.md``), one row label per point, e.g.
``default[lanes.0.spare_volume=0]``; the spec's policies, replications and weeks are not used (one
planning context per point, at the scenario's seed). ``--set PATH=VALUE`` (repeatable) overrides a
scenario parameter in every scenario, with the dotted paths of sweep specs (``--set demand.cv=0.4``,
``--set policies.menu.items=plan``); a path the spec already sets in ``fixed``, ``grid`` or
``lhs`` (or inside one, or containing one) is an error rather than a silent override, and so is
``--deterministic`` where the spec sets ``demand.deterministic``.

Writes ``menu_efficiency.parquet``, ``menu_efficiency.json`` (rows; the scenarios' labels, sources,
overrides and menu parameters in effect; sizes, weeks, method, disclosure and price paths) and the
plot ``menu_efficiency.<format>`` (``--format``, repeatable: png, svg, pdf; default png and pdf) to
``--out``; ``flosim plot DIR`` rebuilds the plot from the folder. ``--json`` prints the rows on
stdout. Undefined figures are null in JSON: ``share`` where JIT's PO is already first-best,
``social`` where the PO is infeasible.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from experiments.commands._args import check_week, name_value
from experiments.menu_efficiency import DEFAULT_SIZES, menu_efficiency, menu_policy, unique_sizes
from experiments.plots.menu import plot_menu_efficiency
from experiments.plots.style import FORMATS
from sim.model.errors import FlosimError
from sim.results import default_results_dir, jsonable, write_json, write_table
from sim.model.scenario import Scenario, load_scenario


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


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("menu", help="share of the first-best saving a menu captures, by menu size",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenario", action="append", help="scenario name or file; repeat for several (default: default)")
    p.add_argument("--spec", metavar="SWEEP.yaml", help="sweep spec: one scenario per design point (not with --scenario)")
    p.add_argument("--set", dest="overrides", action="append", type=name_value("PATH=VALUE", "demand.cv=0.4"), default=[], metavar="PATH=VALUE",
                   help="scenario parameter override applied to every scenario, e.g. demand.cv=0.4; repeatable")
    p.add_argument("--sizes", type=_int_list("menu sizes", 1), default=list(DEFAULT_SIZES),
                   help="menu sizes, positive, e.g. 1,2,4,8,16 (sorted, repeats dropped)")
    p.add_argument("--week", dest="weeks", type=_int_list("planning weeks", 0), action="append",
                   help="planning week(s) to evaluate, as week indices (0 = the first week), e.g. 0,1,3 or "
                        "--week 0 --week 3 (sorted, repeats dropped; default 1,3)")
    # before --week existed the indices were given as --weeks, which elsewhere is a count of weeks: still read
    p.add_argument("--weeks", dest="weeks_indices", type=_int_list("planning weeks", 0), action="append",
                   help=argparse.SUPPRESS)
    p.add_argument("--deterministic", action="store_true", help="known demand (prices then equal forecast costs)")
    p.add_argument("--disclosure", choices=("volume", "names"), default=None,
                   help="what the vendor discloses for tailoring: FC names and weekly room (volume) or names only "
                        "(default: the scenario's policies.menu.disclosure, else volume)")
    p.add_argument("--method", choices=("mixed", "discount", "shift"), default=None,
                   help="how candidates are generated (default: the scenario's policies.menu.method, else mixed)")
    p.add_argument("--format", action="append", choices=FORMATS, metavar="FMT",
                   help=f"plot image format, repeat for several: {', '.join(FORMATS)} (default: png and pdf)")
    p.add_argument("--out", help="folder for menu_efficiency.parquet/.json and the plot (default: results/menu-<timestamp>)")
    p.add_argument("--json", action="store_true", help="print the table as JSON rows")
    p.set_defaults(func=main)


def unique_labels(names: list[str], sources: list[str]) -> list[str]:
    """Row labels: the scenario names; where a name repeats, with its file's stem added
    (``default (variant)``; ``built-in`` for a built-in name), or the path as given if stems repeat
    too, or finally ``#i``."""
    from sim.model.scenario import builtin_scenarios

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


def point_labels(name: str, points: list[dict[str, Any]]) -> list[str]:
    """Row labels of a spec's design points, ``name[path=value, ...]``: floats to 4 significant digits
    where that tells the points apart, else in full (``repr``); points that are still alike (a value
    repeated in the grid) get ``#i``, their index among the design points."""

    def label(point: dict[str, Any], fmt) -> str:
        if not point:
            return name
        return f"{name}[" + ", ".join(f"{k}={fmt(v) if isinstance(v, float) else v}" for k, v in point.items()) + "]"

    labels = [label(p, lambda v: f"{v:.4g}") for p in points]
    if len(set(labels)) < len(labels):
        labels = [label(p, repr) for p in points]
    return [f"{lb} #{i}" if labels.count(lb) > 1 else lb for i, lb in enumerate(labels)]


def _overlaps(a: str, b: str) -> bool:
    """Dotted paths that set the same parameter: equal, or one inside the other."""
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def _check_no_spec_conflict(spec: Any, overrides: dict[str, Any], deterministic: bool) -> None:
    """A --set (or --deterministic) path that the spec sets too would silently replace the spec's
    values (a swept parameter collapses to one value): a user error naming both."""
    lhs = spec.lhs.parameters if spec.lhs else {}
    for path in overrides:
        for where, keys in (("fixed", spec.fixed), ("grid", spec.grid), ("lhs", lhs)):
            for key in keys:
                if _overlaps(path, key):
                    option = "--deterministic" if deterministic and path == "demand.deterministic" else f"--set {path}"
                    raise FlosimError(f"{option}: the spec sets {key!r} in {where}; change it in the spec instead "
                                      "(the option would silently replace the spec's values)")


def _cli_overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides = dict(args.overrides)
    if args.deterministic:
        overrides["demand.deterministic"] = True
    return overrides


def _uniform(values: list[Any]) -> Any:
    """The value if all agree, else ``None``."""
    return values[0] if values and all(v == values[0] for v in values) else None


def _scenarios(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Each scenario with its label, source and overrides."""
    if args.spec and args.scenario:
        raise FlosimError("--spec and --scenario cannot be combined: the spec names its scenario")
    out: list[dict[str, Any]] = []
    if args.spec:
        from experiments.sweep import design_points, load_spec

        loaded = load_spec(args.spec)
        _check_no_spec_conflict(loaded.spec, _cli_overrides(args), args.deterministic)
        points = design_points(loaded.spec)
        for i, (point, label) in enumerate(zip(points, point_labels(loaded.scenario.name, points))):
            scenario = loaded.scenario.with_overrides(point, source=f"{args.spec} (design point {i})") if point else loaded.scenario
            out.append({"scenario": scenario, "label": label, "source": args.spec, "overrides": {**loaded.spec.fixed, **point}})
    else:
        names = args.scenario or ["default"]
        loaded_scenarios = [load_scenario(s) for s in names]
        labels = unique_labels([s.name for s in loaded_scenarios], names)
        out = [{"scenario": s, "label": label, "source": src, "overrides": {}} for s, label, src in zip(loaded_scenarios, labels, names)]
    overrides = _cli_overrides(args)
    if overrides:
        for entry in out:
            entry["scenario"] = entry["scenario"].with_overrides(overrides, source="--set")
            entry["overrides"] = {**entry["overrides"], **overrides}
    return out


def _weeks(args: argparse.Namespace) -> list[int]:
    """The planning weeks of ``--week`` (and of the old spelling ``--weeks``, with a note)."""
    given = [w for group in (args.weeks or []) for w in group]
    old = [w for group in (getattr(args, "weeks_indices", None) or []) for w in group]
    if old:
        print("flosim: note: menu --weeks lists week indices; it is now spelled --week (--weeks is a count of "
              "weeks in the other commands)", file=sys.stderr)
    return unique_sizes(given + old) if given or old else [1, 3]


def main(args: argparse.Namespace) -> int:
    args.weeks = _weeks(args)
    entries = _scenarios(args)
    scenarios: list[Scenario] = [e["scenario"] for e in entries]
    for s in scenarios:
        check_week(max(args.weeks), s, "--week")
    out = Path(args.out or default_results_dir("menu"))
    steps = len(scenarios) * len(args.weeks) * 2 * len(args.sizes)
    options = {"method": args.method, "disclosure": args.disclosure}
    # the menu in effect per scenario (checked here, before anything is solved); size and preference vary by row
    menus = [{k: v for k, v in menu_policy(s, args.sizes[0], True, **options).parameters().items() if k not in ("size", "preference")}
             for s in scenarios]
    with tqdm(total=steps, desc="menus", file=sys.stderr, disable=not sys.stderr.isatty(), delay=2.0) as bar:
        table = menu_efficiency(scenarios, args.sizes, args.weeks, labels=[e["label"] for e in entries],
                                on_step=lambda: bar.update(1), **options)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FlosimError(f"--out {out}: cannot create folder: {exc}") from None
    write_table(out / "menu_efficiency.parquet", table)
    rows = jsonable(table.to_dict(orient="records"))  # NaN (share undefined) and inf (infeasible) as null
    write_json(out / "menu_efficiency.json", jsonable({
        "scenarios": [{"label": e["label"], "name": e["scenario"].name, "source": e["source"], "overrides": e["overrides"],
                       "menu": menu} for e, menu in zip(entries, menus)],
        "sizes": args.sizes, "weeks": args.weeks,
        # in effect for every scenario (null where the scenarios differ; see each scenario's "menu")
        "method": _uniform([m["method"] for m in menus]), "disclosure": _uniform([m["disclosure"] for m in menus]),
        "price_paths": _uniform([m["scenarios"] for m in menus]), "rows": rows,
    }))
    plot_menu_efficiency(table, out, formats=args.format or ["png", "pdf"])
    if args.json:
        json.dump(rows, sys.stdout, indent=2, allow_nan=False)
        sys.stdout.write("\n")
        print(f"flosim: menu results in {out} (menu_efficiency.parquet, menu_efficiency.json, plot)", file=sys.stderr)
    else:
        summary = table.groupby(["scenario", "tailored", "size"])[["share", "share_vendor", "gap"]].mean().unstack("tailored")
        summary.columns = [f"{what} ({'tailored' if tailored else 'untailored'})" for what, tailored in summary.columns]
        print("mean over weeks of: share = share of the first-best saving captured by the binding week's PO;")
        print("share_vendor = the same on the vendor's criterion (its cost + price; never falls as the menu grows);")
        print("gap = binding week's social cost relative to first-best")
        for label, menu in zip([e["label"] for e in entries], menus):
            contract = "weekly commitment" if menu["items"] == "week" else f"whole-plan commitment, {menu['pricing']} pricing"
            print(f"menu on {label}: method {menu['method']}, disclosure {menu['disclosure']}, {contract}, "
                  f"{menu['scenarios']} price paths")
        print(summary.to_string(float_format=lambda v: f"{v:.4f}"))
        print(f"\nresults: {out}")
    return 0
