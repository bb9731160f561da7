"""The mutual-commitment sweep (``experiments/specs/commitment.yaml``): what committing to ``k`` weeks with
a flexibility band ``b`` changes against the weekly commitment (``k = 1, b = 0``), cell by cell.

A cell is one forecast uncertainty (``demand.cv`` x ``demand.revision.profile``) and one commitment
(``k``, ``b``). Its change is paired: in each replication, the cell's settled figure less the weekly
commitment's at the same uncertainty and on the same random numbers (the sweep gives replication ``i``
the same seed at every design point), then the mean and its 95% Student-t interval over replications.

What a user may do:

* ``commitment_changes(summary)``: the table of changes (settled social cost, each party's settled net
  cost, lost units), one row per cell, from a sweep's ``summary.parquet``;
* ``component_changes(ledger, summary)``: the same change split by ledger component (lost sales,
  holding, production ...), which says *why* a cell costs more or less;
* ``weeks_around(flows, summary, weeks)``: mean units by week (produced, stock, lost ...) per cell;
* ``markdown(table)``, ``pivot_markdown(table, label)``: the table as Markdown, one line per cell or
  one line per forecast uncertainty;
* ``plot_commitment(table, path)``: the figure (rows: demand CV, columns: revision speed; x: ``k``,
  one line per band), saved with :func:`experiments.plots.style.save_to`;
* ``python -m experiments.plots.commitment SWEEP_FOLDER [--out FIGURE] [--policy P]`` prints the tables
  (Markdown) and writes the figure (default ``SWEEP_FOLDER/commitment.png``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from experiments.intervals import mean_ci  # noqa: E402
from experiments.plots.style import paper_style, save_to  # noqa: E402
from sim.model.errors import FlosimError  # noqa: E402

WEEKS = "policies.cpp-vcg.commitment.weeks"
BAND = "policies.cpp-vcg.commitment.band"
CV = "demand.cv"
SPEED = "demand.revision.profile"
SPEEDS = ("fast", "equal", "slow")
#: Figures compared, as (summary column, label); each party's column is found by name.
FIGURES = (("settled_social_cost", "social"), ("lost_units", "lost units"))


def _uncertainty(summary: pd.DataFrame) -> list[str]:
    return [c for c in (CV, SPEED) if c in summary]


def _cells(summary: pd.DataFrame, policy: str) -> pd.DataFrame:
    for col in (WEEKS, BAND):
        if col not in summary:
            raise FlosimError(f"the sweep does not vary {col!r} (its parameters: "
                              f"{[c for c in summary.columns if '.' in c]}); run experiments/specs/commitment.yaml")
    rows = summary[summary.policy == policy]
    if rows.empty:
        raise FlosimError(f"the sweep has no runs of policy {policy!r} (policies: {sorted(set(summary.policy))})")
    return rows


def _reference(rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    ref = rows[(rows[WEEKS] == 1) & (rows[BAND] == 0)]
    if ref.empty:
        raise FlosimError("the sweep has no weekly-commitment cell (k = 1, b = 0) to compare with")
    return ref.set_index([*keys, "replication"])


def _paired(cell: pd.DataFrame, ref: pd.DataFrame, keys: list[str], column: str) -> tuple[float, float, float, int]:
    """Mean, interval ends and count of ``cell[column] - ref[column]``, paired by replication and seed."""
    c = cell.set_index([*keys, "replication"])
    both = c[[column, "seed"]].merge(ref[[column, "seed"]], left_index=True, right_index=True, suffixes=("", "_ref"))
    both = both[both.seed == both.seed_ref]  # the same random numbers, or no pair
    m, h, n = mean_ci(both[column] - both[f"{column}_ref"])
    return m, m - h, m + h, n


def commitment_changes(summary: pd.DataFrame, policy: str = "cpp-vcg") -> pd.DataFrame:
    """One row per cell: ``k``, ``b``, the uncertainty, ``n`` (paired replications), the weekly
    commitment's mean settled social cost (``reference``), the units the cell's agreements committed
    beyond their binding week (``committed``, a mean, when the sweep recorded it), and for the settled social cost
    (``social``), each party's settled net cost (``<party>``) and the lost units (``lost units``) the
    change's mean, ``_lo`` and ``_hi`` (95% interval). Negative: the commitment lowers the cost."""
    rows = _cells(summary, policy)
    keys = _uncertainty(rows)
    ref = _reference(rows, keys)
    parties = [c.removeprefix("settled_net_cost_") for c in rows.columns if c.startswith("settled_net_cost_")]
    figures = [*FIGURES[:1], *((f"settled_net_cost_{p}", p) for p in parties), *FIGURES[1:]]
    out = []
    for cell_key, cell in rows.groupby([*keys, WEEKS, BAND], sort=True):
        row = dict(zip([*keys, "k", "b"], cell_key))
        at = ref.xs(tuple(cell_key[: len(keys)]), level=list(range(len(keys)))) if keys else ref
        row["reference"] = float(at["settled_social_cost"].mean())
        if "committed_units" in cell:  # what the cell's agreements committed beyond the binding week (mean)
            row["committed"] = float(cell["committed_units"].fillna(0.0).mean())
        for column, label in figures:
            m, lo, hi, n = _paired(cell, ref, keys, column)
            row.update({label: m, f"{label}_lo": lo, f"{label}_hi": hi})
            row["n"] = n
        out.append(row)
    table = pd.DataFrame(out)
    if SPEED in keys:  # fast, equal, slow in that order
        table["_speed"] = table[SPEED].map({s: i for i, s in enumerate(SPEEDS)})
        table = table.sort_values([c for c in (CV, "_speed", "k", "b") if c in table]).drop(columns="_speed")
    return table.reset_index(drop=True)


def component_changes(ledger: pd.DataFrame, summary: pd.DataFrame, policy: str = "cpp-vcg") -> pd.DataFrame:
    """The change in each ledger component (summed over parties and the measured and cool-down weeks,
    so settled), mean over paired replications, one row per cell and one column per component;
    ``transfer`` rows cancel between parties and are left out."""
    rows = _cells(summary, policy)
    keys = _uncertainty(rows)
    led = ledger[(ledger.policy == policy) & (ledger.component != "transfer")]
    totals = led.groupby(["run", "component"]).value.sum().unstack("component", fill_value=0.0)
    comps = list(totals.columns)
    per_run = rows[["run_id", *keys, WEEKS, BAND, "replication", "seed"]].join(totals, on="run_id")
    ref = _reference(per_run, keys)
    out = []
    for cell_key, cell in per_run.groupby([*keys, WEEKS, BAND], sort=True):
        row = dict(zip([*keys, "k", "b"], cell_key))
        c = cell.set_index([*keys, "replication"])
        both = c[[*comps, "seed"]].merge(ref[[*comps, "seed"]], left_index=True, right_index=True, suffixes=("", "_ref"))
        both = both[both.seed == both.seed_ref]
        for comp in comps:
            row[comp] = float((both[comp] - both[f"{comp}_ref"]).mean())
        out.append(row)
    return pd.DataFrame(out)


def weeks_around(flows: pd.DataFrame, summary: pd.DataFrame, weeks: Sequence[int], policy: str = "cpp-vcg",
                 columns: Sequence[str] = ("produced", "vendor_stock_end", "shipped", "fc_stock_end", "unmet")) -> pd.DataFrame:
    """Mean units of ``columns`` in ``weeks`` (over replications) per cell: rows (cell, week)."""
    rows = _cells(summary, policy)
    keys = _uncertainty(rows)
    f = flows[(flows.policy == policy) & flows.week.isin(list(weeks))]
    f = f.merge(rows[["run_id", *keys, WEEKS, BAND]], left_on="run", right_on="run_id")
    return f.groupby([*keys, WEEKS, BAND, "week"])[list(columns)].mean().rename_axis([*keys, "k", "b", "week"])


def plot_commitment(table: pd.DataFrame, path: str | Path, label: str = "social",
                    ylabel: str = "change in settled social cost") -> Path:
    """Rows: demand CV; columns: revision speed (fast, equal, slow); in each panel the change against
    ``k = 1, b = 0`` with its 95% interval, by committed weeks ``k``, one line per band ``b``."""
    cvs = sorted(table[CV].unique()) if CV in table else [None]
    speeds = [s for s in SPEEDS if SPEED in table and s in set(table[SPEED])] or [None]
    bands = sorted(table.b.unique())
    ks = sorted(table.k.unique())
    colors = plt.get_cmap("viridis")(np.linspace(0.0, 0.8, len(bands)))
    with paper_style():
        fig, axes = plt.subplots(len(cvs), len(speeds), figsize=(2.5 * len(speeds) + 0.6, 2.0 * len(cvs) + 0.8),
                                 sharex=True, sharey=True, squeeze=False)
        for i, cv in enumerate(cvs):
            for j, speed in enumerate(speeds):
                ax = axes[i, j]
                t = table
                if cv is not None:
                    t = t[t[CV] == cv]
                if speed is not None:
                    t = t[t[SPEED] == speed]
                for n, (b, color) in enumerate(zip(bands, colors)):
                    r = t[t.b == b].sort_values("k")
                    x = r.k.to_numpy(float) + (n - (len(bands) - 1) / 2) * 0.08
                    m = r[label].to_numpy(float)
                    err = np.vstack([m - r[f"{label}_lo"].to_numpy(float), r[f"{label}_hi"].to_numpy(float) - m])
                    ax.errorbar(x, m, yerr=np.nan_to_num(err), marker="o", ms=3.5, capsize=2.5, lw=1.1, color=color,
                                label=f"b = {b:g}")
                ax.axhline(0.0, color="black", lw=0.6)
                ax.set_xticks(ks)
                if i == 0 and speed is not None:
                    ax.set_title(f"{speed} revision")
                if j == 0:
                    ax.set_ylabel(f"CV {cv:g}" if cv is not None else "")
                if i == len(cvs) - 1:
                    ax.set_xlabel("committed weeks k")
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="upper center", ncol=len(labels), bbox_to_anchor=(0.5, 1.0))
        fig.supylabel(f"{ylabel} vs k = 1, b = 0", fontsize=9)
        fig.tight_layout(rect=(0, 0, 1, 0.95))
        return save_to(fig, path)


def _plain_markdown(df: pd.DataFrame, signed: bool = True) -> str:
    """A data frame as a Markdown table: parameters as given, figures rounded to whole units (with
    their sign when ``signed``: changes)."""
    keys = {CV, SPEED, "k", "b", "week"}
    number = "{:+,.0f}" if signed else "{:,.0f}"
    cell = lambda c, v: f"{v:g}" if c in keys and isinstance(v, (int, float, np.number)) else (  # noqa: E731
        number.format(v) if isinstance(v, (float, np.floating)) else str(v))
    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + " --- |" * len(df.columns)]
    lines += ["| " + " | ".join(cell(c, v) for c, v in zip(df.columns, row)) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def _fmt(m: float, lo: float, hi: float) -> str:
    if np.isnan(lo):
        return f"{m:,.0f}"
    return f"{m:+,.0f} [{lo:+,.0f}, {hi:+,.0f}]"


def markdown(table: pd.DataFrame) -> str:
    """The table of changes as Markdown: one line per cell."""
    parties = [c for c in table.columns if c not in ("k", "b", "n", "reference", "committed", CV, SPEED, "social", "lost units")
               and not c.endswith(("_lo", "_hi"))]
    head = [c for c in (CV, SPEED) if c in table] + ["k", "b", "n", "social cost change"] + \
        [f"{p} change" for p in parties] + ["lost units change"] + (["units committed"] if "committed" in table else [])
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for _, r in table.iterrows():
        cells = [f"{r[c]:g}" if c == CV else str(r[c]) for c in (CV, SPEED) if c in table]
        cells += [f"{int(r.k)}", f"{r.b:g}", f"{int(r.n)}", _fmt(r.social, r.social_lo, r.social_hi)]
        cells += [_fmt(r[p], r[f"{p}_lo"], r[f"{p}_hi"]) for p in parties]
        cells += [_fmt(r["lost units"], r["lost units_lo"], r["lost units_hi"])]
        cells += [f"{r.committed:,.0f}"] if "committed" in table else []
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def pivot_markdown(table: pd.DataFrame, label: str = "social") -> str:
    """One figure of the table as Markdown, one line per forecast uncertainty and one column per
    commitment ``(k, b)`` with ``k >= 2`` (every ``k = 1`` cell binds nothing beyond the PO)."""
    keys = [c for c in (CV, SPEED) if c in table]
    cells = [(k, b) for k, b in sorted(set(zip(table.k, table.b))) if k >= 2]
    head = [{CV: "CV", SPEED: "revision"}[c] for c in keys] + [f"k={k}, b={b:g}" for k, b in cells]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for key, g in table.groupby(keys, sort=False) if keys else [((), table)]:
        key = key if isinstance(key, tuple) else (key,)
        row = [f"{v:g}" if isinstance(v, float) else str(v) for v in key]
        for k, b in cells:
            r = g[(g.k == k) & (g.b == b)]
            row.append(_fmt(*(float(r.iloc[0][c]) for c in (label, f"{label}_lo", f"{label}_hi"))) if len(r) else "")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.plots.commitment", description=__doc__.splitlines()[0])
    p.add_argument("folder", help="a sweep folder of experiments/specs/commitment.yaml (or its smoke version)")
    p.add_argument("--out", help="figure file (.png, .svg or .pdf; default FOLDER/commitment.png)")
    p.add_argument("--policy", default="cpp-vcg", help="the committed policy (default cpp-vcg)")
    p.add_argument("--weeks", default="4-9", help="weeks of the per-week table, FIRST-LAST (default 4-9: the build-up and the peak)")
    args = p.parse_args(argv)
    try:
        from experiments.sweep import load_sweep

        folder = Path(args.folder)
        if not (folder / "summary.parquet").exists():
            raise FlosimError(f"{folder}: not a finished sweep folder (no summary.parquet)")
        try:
            first, last = (int(x) for x in args.weeks.split("-"))
        except ValueError:
            raise FlosimError(f"--weeks {args.weeks!r}: give FIRST-LAST, e.g. 4-9") from None
        _, tables = load_sweep(folder)
        summary = tables["summary"]
        table = commitment_changes(summary, args.policy)
        print(f"Change against k = 1, b = 0 ({args.policy}, settled, paired by replication; mean [95% interval])\n")
        print(markdown(table))
        for label in [c for c in table.columns if c not in ("k", "b", "n", "reference", "committed", CV, SPEED)
                      and not c.endswith(("_lo", "_hi"))]:
            what = {"social": "settled social cost", "lost units": "lost units (measured weeks)"}.get(label, f"the {label}'s settled net cost")
            print(f"\nChange in {what} against k = 1, b = 0, by forecast uncertainty and commitment\n")
            print(pivot_markdown(table, label))
        if "ledger" in tables and not tables["ledger"].empty:
            comp = component_changes(tables["ledger"], summary, args.policy)
            print("\nChange by ledger component (all parties, settled; mean over replications)\n")
            print(_plain_markdown(comp))
        if "flows" in tables and not tables["flows"].empty:
            wk = weeks_around(tables["flows"], summary, range(first, last + 1), args.policy)
            print(f"\nUnits by week {first}-{last} (mean over replications)\n")
            print(_plain_markdown(wk.reset_index(), signed=False))
        out = Path(args.out) if args.out else folder / "commitment.png"
        plot_commitment(table, out)
        print(f"\nfigure: {out}")
        for party in [c.removeprefix("settled_net_cost_") for c in summary.columns if c.startswith("settled_net_cost_")]:
            if party in table:
                extra = out.with_name(f"{out.stem}_{party}{out.suffix}")
                plot_commitment(table, extra, label=party, ylabel=f"change in the {party}'s settled net cost")
                print(f"figure: {extra}")
    except FlosimError as exc:
        print(f"{p.prog}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
