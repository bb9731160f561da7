"""One-page report of a results folder (run, replay or sweep): tables and figures.

``write_report(folder)`` writes ``folder/report.html``: a self-contained page (figures embedded as
base64 PNG, no external files or scripts) with what was run, the policy comparison (for sweeps mean
and 95% CI across replications), cost components, participation margins, for sweeps the design points
and failed runs, and every figure of :func:`experiments.plots.figures.make_plots` (also written to
``folder/plots``). ``fmt="md"`` writes Markdown instead, linking the PNG files. Everything comes from the
saved results; nothing is simulated again.
"""

from __future__ import annotations

import base64
import html
import math
import time
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from experiments.intervals import mean_ci
from experiments.plots.data import PlotData, load_plot_data, settled_or_raw, weekly_margins
from experiments.plots.figures import PlotSet, make_plots
from sim.model.errors import FlosimError

#: Settled figures (the run plus its cool-down under JIT, leftover stock valued) first, then the raw
#: ones (the measured weeks only); each label says which.
#: Each party's net cost (the retailer and every vendor, by name) comes after the social figures:
#: see :func:`metrics`.
METRICS = [
    ("settled_social_cost", "settled social cost"),
    ("settled_saving_vs_jit", "settled saving vs JIT"),
    ("settled_share_of_first_best_saving", "settled share of first-best saving"),
    ("social_cost", "raw social cost"),
    ("transfers", "transfers paid by the vendors"),
    ("saving_vs_jit", "raw saving vs JIT"),
    ("share_of_first_best_saving", "raw share of first-best saving"),
    ("fill_rate", "fill rate"),
]


def metrics(data: PlotData) -> list[tuple[str, str]]:
    """The policy table's columns: :data:`METRICS` with each party's settled net cost after the settled
    figures and its raw net cost after the raw social cost (one column per party name, for any number
    of vendors; results written before party names existed give the retailer and the vendor)."""
    s = data.summary
    parties = data.parties or ["retailer", "vendor"]

    def column(party: str, settled: bool) -> str:
        new, old = (f"settled_net_cost_{party}", f"settled_{party}_net_cost") if settled else (f"net_cost_{party}", f"{party}_net_cost")
        return new if new in s or old not in s else old

    settled = [(column(p, True), f"settled {p} net cost") for p in parties]
    raw = [(column(p, False), f"raw {p} net cost") for p in parties]
    return [*METRICS[:3], *settled, METRICS[3], *raw, *METRICS[4:]]
PERCENT = {"share_of_first_best_saving", "settled_share_of_first_best_saving", "fill_rate"}


def _fmt(value: Any, percent: bool = False) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, (bool,)):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        if percent:
            return f"{100 * value:.1f}%"
        return f"{value:,.2f}" if abs(value) < 1e15 else f"{value:.3g}"
    return str(value)


def _fmt_ci(mean: float, ci: float, percent: bool) -> str:
    if ci is None or not math.isfinite(ci):
        return _fmt(mean, percent)
    return f"{_fmt(mean, percent)} ± {_fmt(ci, percent)}"


# -- tables ---------------------------------------------------------------------------------------
def policy_table(data: PlotData) -> pd.DataFrame:
    """Rows: policies; columns: the headline metrics (mean ± 95% CI across replications when > 1).
    Shares of the first-best saving are the policy's mean saving over first best's, with the
    delta-method interval (as ``flosim run --replications`` reports them), not means of
    per-replication ratios, which a replication where first best saves little would blow up."""
    rows = []
    for policy in data.policies:
        s = data.summary[data.summary.policy == policy]
        row = {"policy": policy}
        for col, label in metrics(data):
            if col in s and s[col].notna().any():
                share = _share_of_first_best(data, policy, SHARES[col]) if col in SHARES else None
                if share is not None:
                    row[label] = share
                    continue
                per_rep = s.groupby("replication")[col].mean()
                m, h, _ = mean_ci(per_rep)
                row[label] = _fmt_ci(m, h, col in PERCENT)
        rows.append(row)
    return pd.DataFrame(rows)


#: Share columns and the savings they are the ratio of (the policy's over first best's).
SHARES = {"settled_share_of_first_best_saving": "settled_saving_vs_jit", "share_of_first_best_saving": "saving_vs_jit"}


def _share_of_first_best(data: PlotData, policy: str, saving: str) -> str | None:
    """The policy's mean saving over first best's (per replication, averaged over design points), with
    its delta-method interval; says so when first best's saving is not distinguishable from zero."""
    from experiments.replications import ratio_interval

    s = data.summary
    if saving not in s or "first-best" not in set(s.policy):
        return None
    per_rep = [s[s.policy == p].groupby("replication")[saving].mean() for p in (policy, "first-best")]
    both = pd.concat(per_rep, axis=1, join="inner").dropna()
    r = ratio_interval(both.iloc[:, 0].to_numpy(), both.iloc[:, 1].to_numpy())
    if r["mean"] is None:
        return _fmt(None)
    if r["lo"] is None:
        bounded = "" if len(both) < 2 else " (no bounded CI: first best's saving is not distinguishable from 0)"
        return _fmt(r["mean"], True) + bounded
    return _fmt_ci(r["mean"], r["hi"] - r["mean"], True)


def component_table(data: PlotData) -> pd.DataFrame:
    """Mean total of each (party, component) per run, one column per policy."""
    led = data.ledger
    if led.empty:
        return pd.DataFrame()
    runs = max(1, led["run"].nunique())
    t = led.pivot_table(index=["party", "component"], columns="policy", values="value", aggfunc="sum", sort=False) / runs
    t = t[[p for p in data.policies if p in t.columns]]
    return t.reset_index().map(lambda v: _fmt(v) if isinstance(v, float) else v)


def participation_table(data: PlotData) -> pd.DataFrame:
    """Per policy and party: settled ex post margin over JIT (with the cool-down), the raw cumulative
    margin over the measured weeks, worst week, weeks below zero."""
    if "jit" not in set(data.ledger.get("policy", [])):
        return pd.DataFrame()
    m = weekly_margins(data)
    if m.empty:
        return pd.DataFrame()
    per_run = m.groupby(["run", "replication", "policy", "party"], as_index=False).agg(
        cumulative=("margin", "sum"), worst=("margin", "min"), violated=("margin", lambda v: int((v < -1e-6 * max(1.0, v.abs().max())).sum())))
    rows = []
    for (policy, party), g in per_run.groupby(["policy", "party"], sort=False):
        c, ch, _ = mean_ci(g.groupby("replication")["cumulative"].mean())
        settled = f"{party}_settled_ex_post_margin"
        s = data.summary[data.summary.policy == policy]
        sc, sh = (mean_ci(s.groupby("replication")[settled].mean())[:2] if settled in s and s[settled].notna().any()
                  else (float("nan"), float("nan")))
        rows.append({"policy": policy, "party": party, "settled margin over JIT": _fmt_ci(sc, sh, False),
                     "raw cumulative margin over JIT": _fmt_ci(c, ch, False),
                     "worst weekly margin": _fmt(float(g["worst"].min())),
                     "weeks worse off than JIT": f"{int(g['violated'].sum())} of {int(m[(m.policy == policy) & (m.party == party)].shape[0])}",
                     "runs worse off overall": f"{int((g['cumulative'] < 0).sum())} of {len(g)}"})
    order = {p: i for i, p in enumerate(data.policies)}
    party_order = {p: i for i, p in enumerate(data.parties)}
    out = pd.DataFrame(rows)
    out = out[out.party.isin(data.agents)] if data.agents else out  # the mechanism's balance does not participate
    return out.sort_values(["policy", "party"], key=lambda s: s.map(order if s.name == "policy" else party_order),
                           kind="stable")


def design_table(data: PlotData, limit: int = 60) -> pd.DataFrame:
    """Sweeps: mean saving against JIT per design point (rows) and policy (columns), settled when the
    sweep holds settled figures (the column names say which)."""
    if data.kind != "sweep" or "saving_vs_jit" not in data.summary:
        return pd.DataFrame()
    s = data.summary[data.summary.policy != "jit"]
    if s.empty:
        return pd.DataFrame()
    saving, basis = settled_or_raw(data.summary, "saving_vs_jit")
    t = s.pivot_table(index=["point", *data.parameters], columns="policy", values=saving, aggfunc="mean", sort=True)
    t = t[[p for p in data.policies if p in t.columns]].reset_index().head(limit)
    t.columns = [c if c in ("point", *data.parameters) else f"{basis} saving vs JIT: {c}" for c in t.columns]
    return t.map(lambda v: _fmt(v) if isinstance(v, float) else v)


def run_status_table(data: PlotData) -> pd.DataFrame:
    if data.kind != "sweep" or data.runs.empty:
        return pd.DataFrame()
    bad = data.runs[data.runs.status != "done"]
    return bad[["run_id", "point", "replication", *data.parameters, "status", "error"]].head(50) if len(bad) else pd.DataFrame()


def overview(data: PlotData) -> list[tuple[str, str]]:
    m = data.meta
    items = [("results folder", str(data.folder)), ("kind", data.kind)]
    if data.kind == "sweep":
        items += [("sweep", str(m.get("name"))), ("scenario", str(m.get("scenario"))),
                  ("swept parameters", ", ".join(data.parameters) or "none"), ("policies", ", ".join(m.get("policies", []))),
                  ("runs", f"{m.get('runs_total')} total; {int((data.runs.status == 'done').sum())} finished, "
                           f"{int((data.runs.status == 'failed').sum())} failed"),
                  ("design points x replications", f"{len(m.get('points', []))} x {len(m.get('seeds', []))}"),
                  ("root seed", str(m.get("spec", {}).get("root_seed")))]
    else:
        items += [("title", data.title), ("policies", ", ".join(data.policies)), ("seed", str(m.get("seed")))]
        if m.get("trace"):
            items.append(("trace", str(m["trace"])))
    items += [("command", str(m.get("command", "–"))), ("created", str(m.get("created", "–")))]
    versions = m.get("versions") or {}
    if versions:
        items.append(("versions", ", ".join(f"{k} {v}" for k, v in versions.items())))
    return items


# -- rendering ------------------------------------------------------------------------------------
CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.86em}th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em;font-size:.9em}
dt{font-weight:600}dd{margin:0;word-break:break-all}figure{margin:1.2em 0}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.88em;color:#444}.note{color:#666;font-size:.88em}
"""


def _html_table(df: pd.DataFrame) -> str:
    if df.empty:
        return "<p class='note'>none</p>"
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(v) if not isinstance(v, str) else v)}</td>" for v in row) + "</tr>"
                   for row in df.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _md_table(df: pd.DataFrame) -> str:
    if df.empty:
        return "_none_\n"
    def cell(v: Any) -> str:
        return (v if isinstance(v, str) else _fmt(v)).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(cell(str(c)) for c in df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def _sections(data: PlotData) -> list[tuple[str, str, pd.DataFrame]]:
    ci_note = ("Mean over design points within each replication, then mean ± 95% CI across replications."
               if data.kind == "sweep" else
               ("Mean ± 95% CI across replications." if data.replications > 1 else "One replication: totals over the run."))
    sections = [
        ("Policy comparison", f"Totals in currency units. {ci_note} Savings are against JIT on the same random numbers. "
         "Settled figures add a cool-down under JIT after the measured weeks, so the stock a policy leaves behind "
         "is valued; raw figures are the measured weeks only.",
         policy_table(data)),
        ("Cost components", "Mean total per run by party and component over the measured weeks (raw; transfers and wholesale payments cancel in the social cost).",
         component_table(data)),
        ("Participation", "Ex post margin of each party over JIT on the same random numbers (positive: better off than under JIT); "
         "settled with the cool-down, the other columns over the measured weeks.",
         participation_table(data)),
    ]
    if data.kind == "sweep":
        sections.append(("Design points", "Mean saving against JIT per design point (first 60 points; settled when the "
                                          "sweep holds settled figures, as the column names say).", design_table(data)))
        sections.append(("Failed runs", "Runs that raised; each has runs/RUN_ID/error.json. flosim sweep --resume retries them.",
                         run_status_table(data)))
    return sections


def render_html(data: PlotData, plots: PlotSet) -> str:
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>flosim report: {html.escape(data.title)}</title>",
             f"<style>{CSS}</style></head><body>", f"<h1>flosim report: {html.escape(data.title)}</h1>", "<dl>"]
    parts += [f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in overview(data)]
    parts.append("</dl>")
    for title, note, df in _sections(data):
        parts += [f"<h2>{html.escape(title)}</h2>", f"<p class='note'>{html.escape(note)}</p>", _html_table(df)]
    parts.append("<h2>Figures</h2>")
    for spec, paths in plots.made:
        png = next((p for p in paths if p.suffix == ".png"), None)
        if png is None:
            continue
        b64 = base64.b64encode(png.read_bytes()).decode("ascii")
        parts.append(f"<figure id='{spec.stem}'><img alt='{html.escape(spec.caption)}' src='data:image/png;base64,{b64}'>"
                     f"<figcaption>{html.escape(spec.caption)}</figcaption></figure>")
    if plots.skipped:
        parts.append("<p class='note'>Not drawn: " + "; ".join(html.escape(f"{s.stem} ({why})") for s, why in plots.skipped) + ".</p>")
    parts.append(f"<p class='note'>Written by flosim report on {time.strftime('%Y-%m-%d %H:%M')} from the saved results only.</p>")
    parts.append("</body></html>\n")
    return "".join(parts)


def render_markdown(data: PlotData, plots: PlotSet, relative_to: Path) -> str:
    lines = [f"# flosim report: {data.title}", ""]
    lines += [f"- **{k}**: {v}" for k, v in overview(data)]
    for title, note, df in _sections(data):
        lines += ["", f"## {title}", "", note, "", _md_table(df)]
    lines += ["", "## Figures", ""]
    for spec, paths in plots.made:
        png = next((p for p in paths if p.suffix == ".png"), None)
        if png is not None:
            rel = Path(_relpath(png, relative_to))
            lines += [f"![{spec.caption}]({rel.as_posix()})", "", f"*{spec.caption}*", ""]
    if plots.skipped:
        lines.append("Not drawn: " + "; ".join(f"{s.stem} ({why})" for s, why in plots.skipped) + ".")
    return "\n".join(lines) + "\n"


def _relpath(path: Path, start: Path) -> str:
    import os

    return os.path.relpath(path.resolve(), start.resolve())


def write_report(folder: str | Path, out: str | Path | None = None, fmt: Literal["html", "md"] = "html") -> Path:
    """Write the report of ``folder`` (default ``folder/report.html`` or ``.md``); returns its path."""
    if fmt not in ("html", "md"):
        raise FlosimError(f"--format {fmt!r}: expected 'html' or 'md'")
    folder = Path(folder)
    data = load_plot_data(folder)
    plots = make_plots(folder, formats=["png"], data=data)
    path = Path(out) if out is not None else folder / f"report.{fmt}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = render_html(data, plots) if fmt == "html" else render_markdown(data, plots, path.parent)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise FlosimError(f"--out {path}: cannot write report: {exc}") from None
    return path
