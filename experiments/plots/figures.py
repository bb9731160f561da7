"""All comparison figures of a results folder: ``make_plots(folder)`` (what ``flosim plot`` runs).

Figures, each built only from the saved results (:mod:`experiments.plots.data`):

============================ =============================================================== ==========
file stem                    what it shows                                                   needs
============================ =============================================================== ==========
``social_cost``              social cost by policy, 95% CI across replications               any
``savings_vs_jit``           saving against JIT by policy, share of the first-best saving    jit
``net_cost_by_party``        each party's net cost (retailer, every vendor) by policy         any
``cbt_by_week``              transfer paid by each vendor, week by week                       transfers
``participation``            cumulative ex post (and ex ante) margins over JIT, per party     jit
``cpp_convergence``          ADMM rounds and residuals per week, or transcript histories     CPP runs
``savings_vs_parameters``    saving against JIT against each swept parameter                 a sweep
============================ =============================================================== ==========

A figure whose data is absent is skipped with a reason (for example CPP convergence when every
policy solved centrally).

A ``flosim menu`` folder (``menu_efficiency.parquet`` or ``.json``, no ledger) gets its one figure,
``menu_efficiency`` (:mod:`experiments.plots.menu`), rebuilt from the saved table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from experiments.plots.convergence import plot_cpp_convergence
from experiments.plots.costs import plot_savings, plot_social_cost
from experiments.plots.data import PlotData, load_plot_data
from experiments.plots.menu import STEM as MENU_STEM
from experiments.plots.menu import is_menu_folder, load_menu_table, menu_figure
from experiments.plots.parameters import plot_savings_vs_parameters
from experiments.plots.participation import plot_participation
from experiments.plots.parties import plot_net_cost_by_party
from experiments.plots.style import FORMATS, paper_style, save_figure
from experiments.plots.weekly import plot_cbt_by_week
from sim.model.errors import FlosimError


@dataclass(frozen=True)
class FigureSpec:
    stem: str
    caption: str
    build: Callable[[PlotData], object]
    skip_reason: str


FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec("social_cost", "Social cost (the retailer plus every vendor; transfers cancel) of each policy over the run.",
               plot_social_cost, "no policy totals"),
    FigureSpec("savings_vs_jit", "Saving against JIT on the same random numbers; labels give the share of the first-best saving captured.",
               plot_savings, "needs jit and another policy"),
    FigureSpec("net_cost_by_party", "Net cost of each party (the retailer and every vendor) by policy; a policy's bars sum "
               "to its social cost.", plot_net_cost_by_party, "no party figures in the summary"),
    FigureSpec("cbt_by_week", "Transfer paid by each vendor (the cost-benefit transfer under CPP-VCG), week by week.",
               plot_cbt_by_week, "no policy paid a transfer"),
    FigureSpec("participation", "Participation: each party's cumulative margin over JIT (above zero = better off than under JIT).",
               plot_participation, "needs jit and another policy"),
    FigureSpec("cpp_convergence", "CPP negotiation: ADMM rounds and residuals per planning week.",
               plot_cpp_convergence, "no CPP diagnostics (policies solved centrally) and no saved transcripts"),
    FigureSpec("savings_vs_parameters", "Saving against JIT as a function of each swept parameter.",
               plot_savings_vs_parameters, "not a sweep, or nothing swept"),
)


MENU_FIGURE = FigureSpec(MENU_STEM, "Share of the first-best saving the menu of contracts captures, by menu size "
                         "(binding week; vendor's criterion).",
                         lambda data: None, "no rows")  # drawn from the menu table, not PlotData: see make_plots


@dataclass
class PlotSet:
    data: PlotData | None  # None for a flosim menu folder
    out_dir: Path
    made: list[tuple[FigureSpec, list[Path]]] = field(default_factory=list)
    skipped: list[tuple[FigureSpec, str]] = field(default_factory=list)

    @property
    def paths(self) -> list[Path]:
        return [p for _, paths in self.made for p in paths]


def make_plots(folder: str | Path, out: str | Path | None = None, formats: Sequence[str] = ("png",),
               data: PlotData | None = None) -> PlotSet:
    """Write every applicable figure of ``folder`` to ``out`` (default ``folder/plots``)."""
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise FlosimError(f"--format {bad[0]!r}: expected one of {', '.join(FORMATS)}")
    menu = data is None and is_menu_folder(folder) and not (Path(folder) / "ledger.parquet").exists()
    table = load_menu_table(folder) if menu else None
    data = None if menu else data or load_plot_data(folder)
    out_dir = Path(out) if out is not None else Path(folder) / "plots"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FlosimError(f"--out {out_dir}: cannot create folder: {exc}") from None
    result = PlotSet(data, out_dir)
    if table is not None:
        if table.empty:
            result.skipped.append((MENU_FIGURE, MENU_FIGURE.skip_reason))
        else:
            result.made.append((MENU_FIGURE, save_figure(menu_figure(table), out_dir, MENU_STEM, formats)))
        return result
    with paper_style():
        for spec in FIGURES:
            fig = spec.build(data)
            if fig is None:
                result.skipped.append((spec, spec.skip_reason))
                continue
            fig.text(0.995, 0.005, data.title, ha="right", va="bottom", fontsize=6, color="#777777")
            result.made.append((spec, save_figure(fig, out_dir, spec.stem, formats)))
    return result
