"""Participation margins (docs/model.md, "Metrics"): is each party better off than under JIT, week by week?

One panel per party by name (the retailer, then every vendor), so a scenario with several vendors
shows each vendor's margin; the mechanism's balance, if any, is not a participant and gets no panel."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from experiments.plots.data import COST_UNIT, PlotData, policy_color, weekly_margins  # noqa: E402

COLUMNS = 3  # panels per row


def plot_participation(data: PlotData) -> "plt.Figure | None":
    """One panel per party: cumulative ex post margin over JIT on the same random numbers. Above zero
    the party is better off than under JIT; dashed lines are ex ante (planned) margins of the week's
    decision where the policy reports them (``ex_ante_margin_<party>``)."""
    if "jit" not in set(data.ledger.get("policy", [])):
        return None
    m = weekly_margins(data)
    parties = [p for p in data.agents if p in set(m.get("party", []))]
    if m.empty or not parties:
        return None
    stats = data.across(m, "cumulative", ["policy", "party", "week"])
    d = data.decisions
    cols = 2 if len(parties) == 4 else min(COLUMNS, len(parties))  # four parties: two by two
    weeks = sorted(set(m.week))
    rows = math.ceil(len(parties) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * max(cols, 2), 3.4 * rows), sharex=True, squeeze=False)
    for ax, party in zip(axes.flat, parties):
        for p in [p for p in data.policies if p != "jit"]:
            s = stats[(stats.policy == p) & (stats.party == party)].sort_values("week")
            if s.empty:
                continue
            color = policy_color(p, data.policies)
            ax.plot(s.week, s["mean"], marker="o", ms=3, color=color, label=f"{p} (ex post, cumulative)")
            if s["ci"].notna().any():
                ax.fill_between(s.week, s["mean"] - s["ci"], s["mean"] + s["ci"], color=color, alpha=0.2, lw=0)
            col = f"ex_ante_margin_{party}"
            if d is not None and len(d) and col in d and d.loc[d.policy == p, col].notna().any():
                a = data.across(d[d.policy == p].dropna(subset=[col]), col, ["week"]).sort_values("week")
                ax.plot(a.week, a["mean"], ls="--", lw=1, color=color, label=f"{p} (ex ante, weekly)")
        ax.axhline(0, color="black", lw=0.8)
        ax.set_title(f"{party}: margin over JIT (> 0: better off)")
        ax.set_xlabel("week")
        ax.set_ylabel(f"raw margin, measured weeks ({COST_UNIT})")
        if len(weeks) <= 20:  # every week a tick, and only weeks (one week would get fractions)
            ax.set_xticks(weeks)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.xaxis.set_tick_params(labelbottom=True)  # shared x axis: every panel keeps its labels
    for ax in list(axes.flat)[len(parties):]:
        ax.set_visible(False)
    handles, labels = [], []
    for ax in list(axes.flat)[: len(parties)]:
        for h, l in zip(*ax.get_legend_handles_labels()):
            if l not in labels:
                handles.append(h)
                labels.append(l)
    fig.legend(handles, labels, loc="lower center", ncol=min(3, max(1, len(labels))), bbox_to_anchor=(0.5, -0.02))
    legend_rows = (len(labels) - 1) // 3 + 1
    fig.tight_layout(rect=(0, min(0.4, (0.05 + 0.05 * legend_rows) / rows), 1, 1))
    return fig
