"""Participation margins (docs/model.md, "Metrics"): is each party better off than under JIT, week by week?"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from experiments.plots.data import COST_UNIT, PlotData, policy_color, weekly_margins  # noqa: E402


def plot_participation(data: PlotData) -> "plt.Figure | None":
    """Two panels (retailer, vendor): cumulative ex post margin over JIT on the same random numbers.
    Above zero the party is better off than under JIT; dashed lines are ex ante (planned) margins of
    the week's decision where the policy reports them."""
    if "jit" not in set(data.ledger.get("policy", [])):
        return None
    m = weekly_margins(data)
    if m.empty:
        return None
    stats = data.across(m, "cumulative", ["policy", "party", "week"])
    d = data.decisions
    fig, axes = plt.subplots(1, 2, figsize=(8.4, 3.4), sharex=True)
    for ax, party in zip(axes, ("retailer", "vendor")):
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
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    handles, labels = axes[0].get_legend_handles_labels()
    for h, l in zip(*axes[1].get_legend_handles_labels()):
        if l not in labels:
            handles.append(h)
            labels.append(l)
    fig.legend(handles, labels, loc="lower center", ncol=min(3, max(1, len(labels))), bbox_to_anchor=(0.5, -0.02))
    fig.tight_layout(rect=(0, 0.08 + 0.05 * ((len(labels) - 1) // 3), 1, 1))
    return fig
