"""Plot: share of the first-best saving captured by the menu, against menu size.

Two panels, both against the same first-best saving: the binding week's PO (the share the 1% claim is
about; need not grow with the menu) and the vendor's criterion (its cost plus the price; never falls
as a nested menu grows). One line per scenario and tailoring (mean over the planning weeks), with a
band from the least to the largest share over the weeks. Written in the image formats of
:mod:`experiments.plots.style` (``flosim menu`` default: PNG and PDF). ``flosim plot DIR`` rebuilds it
from a saved ``flosim menu`` folder (:func:`load_menu_table`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from experiments.plots.style import save_figure  # noqa: E402
from sim.model.errors import FlosimError  # noqa: E402

STEM = "menu_efficiency"

PANELS = (
    ("share", "binding week's PO: share\n(least social cost with the PO fixed; may fall)"),
    ("share_vendor", "vendor's criterion: share_vendor\n(its cost + price on common demand scenarios; never falls)"),
)
TAILORING = {False: {"ls": "--", "marker": "o", "label": "untailored", "colour": "#7f8c8d"},
             True: {"ls": "-", "marker": "s", "label": "tailored to the vendor's disclosure", "colour": "#c0392b"}}


def _weeks_text(weeks: list[int]) -> str:
    if len(weeks) > 2 and weeks == list(range(weeks[0], weeks[-1] + 1)):
        return f"weeks {weeks[0]}-{weeks[-1]}"
    return ("week " if len(weeks) == 1 else "weeks ") + ", ".join(str(w) for w in weeks)


def _tailored_label(table: pd.DataFrame) -> str:
    """What the tailored menus were tailored to: the vendor's disclosure (``auto``) or the scenario's
    named preference."""
    prefs = set(table.loc[table.tailored.astype(bool), "preference"]) if "preference" in table else {"auto"}
    if prefs <= {"auto"}:
        return TAILORING[True]["label"]
    return f"tailored to preference {prefs.pop()}" if len(prefs) == 1 else "tailored to the given preferences"


def menu_title(table: pd.DataFrame) -> str:
    """Scenario(s), planning weeks, demand (known/uncertain), disclosure and method, from the table."""
    scenarios = list(dict.fromkeys(table["scenario"]))
    shown = ", ".join(scenarios) if len(scenarios) <= 3 else f"{len(scenarios)} scenarios"
    weeks = sorted(int(w) for w in table["week"].unique())
    parts = [_weeks_text(weeks)]
    for col, fmt in (("demand", "{} demand"), ("disclosure", "disclosure: {}"), ("method", "method: {}"),
                     ("contract", "contract: {}"), ("price_paths", "price paths: {}")):
        if col in table and not (col == "price_paths" and set(table.get("demand", [])) == {"known"}):
            parts.append(fmt.format("/".join(str(v) for v in dict.fromkeys(table[col]))))
    return f"Menu of contracts on {shown}\n" + ", ".join(parts)


def is_menu_folder(folder: str | Path) -> bool:
    """A folder written by ``flosim menu`` (it holds ``menu_efficiency.parquet`` or ``.json``)."""
    folder = Path(folder)
    return (folder / f"{STEM}.parquet").exists() or (folder / f"{STEM}.json").exists()


def load_menu_table(folder: str | Path) -> pd.DataFrame:
    """The table of a saved ``flosim menu`` folder: ``menu_efficiency.parquet``, else the rows of
    ``menu_efficiency.json``."""
    folder = Path(folder)
    from sim.results import read_json, read_table

    if (folder / f"{STEM}.parquet").exists():
        return read_table(folder / f"{STEM}.parquet")
    if (folder / f"{STEM}.json").exists():
        rows = read_json(folder / f"{STEM}.json", ("rows",))["rows"]
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise FlosimError(f"{folder / f'{STEM}.json'}: damaged ('rows' is not a list of objects)")
        return pd.DataFrame(rows)
    raise FlosimError(f"{folder}: not a flosim menu folder (no {STEM}.parquet or {STEM}.json)")


def plot_menu_efficiency(table: pd.DataFrame, out_dir: str | Path, formats: Sequence[str] = ("png", "pdf"),
                         title: str | None = None) -> list[Path]:
    """Write :func:`menu_figure` as ``out_dir/menu_efficiency.<format>`` for each format; the paths."""
    return save_figure(menu_figure(table, title), Path(out_dir), STEM, formats)


def menu_figure(table: pd.DataFrame, title: str | None = None) -> "plt.Figure":
    """Mean share captured over weeks (band: min-max over weeks), per scenario, tailored vs untailored,
    on the binding week and on the vendor's criterion."""
    if table.empty:
        raise FlosimError("menu plot: the table has no rows")
    scenarios = list(dict.fromkeys(table["scenario"]))
    colours = plt.get_cmap("tab10" if len(scenarios) <= 10 else "tab20")
    sizes = sorted(int(s) for s in table["size"].unique())
    panels = [(col, label) for col, label in PANELS if col in table]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.4), sharey=True, squeeze=False)
    for ax, (col, label) in zip(axes[0], panels):
        for i, scenario in enumerate(scenarios):
            for tailored, style in TAILORING.items():
                # one scenario: a colour per tailoring; several: a colour per scenario, style per tailoring
                colour = colours(i % colours.N) if len(scenarios) > 1 else style["colour"]
                t = table[(table.scenario == scenario) & (table.tailored == tailored)].groupby("size")[col]
                if not len(t):
                    continue
                mean, lo, hi = t.mean(), t.min(), t.max()
                ax.plot(mean.index, 100 * mean.values, color=colour, ls=style["ls"], marker=style["marker"], ms=4)
                ax.fill_between(mean.index, 100 * lo.values, 100 * hi.values, color=colour, alpha=0.12, lw=0)
        ax.axhline(100, color="black", lw=0.8, ls=":")
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes)
        ax.set_xticklabels([str(s) for s in sizes])
        ax.minorticks_off()
        ax.set_xlabel("menu size (items offered, including JIT)")
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("share of the first-best saving captured (%)")
    several = len(scenarios) > 1
    handles = [Line2D([], [], color=colours(i % colours.N), lw=2, label=s) for i, s in enumerate(scenarios)] if several else []
    labels = {False: TAILORING[False]["label"], True: _tailored_label(table)}
    handles += [Line2D([], [], color="black" if several else st["colour"], ls=st["ls"], marker=st["marker"], ms=4, label=labels[t])
                for t, st in TAILORING.items()]
    handles += [Patch(color="grey", alpha=0.25, label="band: min-max over weeks (line: mean)"),
                Line2D([], [], color="black", lw=0.8, ls=":", label="first-best (100%)")]
    ncol = min(len(handles), 3)
    rows = -(-len(handles) // ncol)
    fig.suptitle(title or menu_title(table), fontsize=11)
    fig.tight_layout()
    # the legend below the panels, never over the lines
    inch = 1 / fig.get_figheight()
    fig.subplots_adjust(bottom=(0.75 + 0.22 * rows) * inch, top=1 - 1.05 * inch)
    fig.legend(handles=handles, loc="lower center", ncol=ncol, fontsize=8.5, frameon=False, bbox_to_anchor=(0.5, 0.0))
    return fig
