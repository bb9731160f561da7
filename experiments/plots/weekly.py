"""The cost-benefit transfer (CBT) week by week: what the vendor pays the retailer under each mechanism."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from experiments.plots.data import COST_UNIT, PlotData, policy_color  # noqa: E402


def plot_cbt_by_week(data: PlotData) -> "plt.Figure | None":
    """Lines: weekly transfer paid by the vendor, mean across replications with a 95% CI band."""
    d = data.decisions
    if d is None or d.empty or "transfer" not in d:
        return None
    paying = [p for p in data.policies if p in set(d.policy) and d.loc[d.policy == p, "transfer"].abs().sum() > 0]
    if not paying:
        return None
    fig, ax = plt.subplots(figsize=(5.6, 3.4))
    d = d[d.policy.isin(paying)]
    stats = data.across(d, "transfer", ["policy", "week"])
    for p in paying:
        s = stats[stats.policy == p].sort_values("week")
        color = policy_color(p, data.policies)
        ax.plot(s.week, s["mean"], marker="o", ms=3, color=color, label=p)
        if s["ci"].notna().any():
            ax.fill_between(s.week, s["mean"] - s["ci"], s["mean"] + s["ci"], color=color, alpha=0.2, lw=0)
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xlabel("week")
    ax.set_ylabel(f"transfer paid by vendor ({COST_UNIT}/week)")
    weeks = sorted(set(d.week))
    ax.set_xticks(weeks if len(weeks) <= 20 else weeks[:: int(np.ceil(len(weeks) / 20))])
    ax.legend(title="policy")
    band = "" if data.replications < 2 else "; band: 95% CI across replications"
    ax.set_title(f"Cost-benefit transfer by week{band}")
    fig.tight_layout()
    return fig
