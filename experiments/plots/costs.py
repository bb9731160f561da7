"""Social cost by policy and savings against JIT, with confidence intervals across replications.

Both figures use settled figures (the run plus its cool-down under JIT, so the stock a policy leaves
behind is valued) when the results hold them, and raw figures for results written before settled
costs existed; the axis label says which."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from experiments.plots.data import COST_UNIT, PlotData, policy_color, settled_or_raw  # noqa: E402


def _subtitle(data: PlotData) -> str:
    reps = data.replications
    if data.kind == "sweep":
        return f"mean over {data.points} design points; 95% CI across {reps} replications"
    return "one replication (no confidence interval)" if reps < 2 else f"95% CI across {reps} replications"


def _bars(ax, stats, order: list[str], ylabel: str) -> None:
    stats = stats.set_index("policy").reindex([p for p in order if p in set(stats.policy)])
    x = np.arange(len(stats))
    err = stats["ci"].to_numpy()
    ax.bar(x, stats["mean"], color=[policy_color(p, order) for p in stats.index],
           yerr=None if np.all(np.isnan(err)) else np.nan_to_num(err), capsize=4, error_kw={"lw": 1})
    ax.set_xticks(x, stats.index)
    ax.set_xlabel("policy")
    ax.set_ylabel(ylabel)
    ax.axhline(0, color="black", lw=0.6)


def plot_social_cost(data: PlotData) -> "plt.Figure":
    """Bars: total social cost (the retailer plus every vendor; transfers cancel) of each policy, settled when known."""
    col, basis = settled_or_raw(data.summary, "social_cost")
    stats = data.across(data.summary, col, ["policy"])
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    _bars(ax, stats, data.policies, f"{basis} social cost ({COST_UNIT})")
    lo = float(np.nanmin(stats["mean"] - np.nan_to_num(stats["ci"])))
    hi = float(np.nanmax(stats["mean"] + np.nan_to_num(stats["ci"])))
    if lo > 0:  # zoom in: the differences matter, not the level
        pad = 0.15 * (hi - lo) if hi > lo else 0.05 * hi
        ax.set_ylim(max(0.0, lo - pad), hi + pad)
    ax.set_title(f"Social cost by policy\n{_subtitle(data)}")
    fig.tight_layout()
    return fig


def plot_savings(data: PlotData) -> "plt.Figure | None":
    """Bars: saving against JIT on the same random numbers; labels give the share of the first-best saving."""
    if "saving_vs_jit" not in data.summary or "jit" not in set(data.summary.policy):
        return None
    rows = data.summary[data.summary.policy != "jit"]
    if rows.empty:
        return None
    col, basis = settled_or_raw(data.summary, "saving_vs_jit")
    stats = data.across(rows, col, ["policy"])
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    order = [p for p in data.policies if p != "jit"]
    _bars(ax, stats, order, f"{basis} saving vs JIT ({COST_UNIT})")
    means = stats.set_index("policy")["mean"]
    if "first-best" in means and np.isfinite(means["first-best"]) and abs(means["first-best"]) > 1e-9:
        # the share is the ratio of the bars' mean savings, as the report and the replicated summary give it
        share = means / means["first-best"]
        for i, p in enumerate([p for p in order if p in set(stats.policy)]):
            if p in share and np.isfinite(share[p]):
                y = float(stats.set_index("policy").loc[p, "mean"])
                ax.annotate(f"{100 * share[p]:.0f}% of first-best", (i, y), textcoords="offset points",
                            xytext=(0, 4 if y >= 0 else -12), ha="center", fontsize=7)
    ax.set_title(f"Saving against JIT\n{_subtitle(data)}")
    fig.tight_layout()
    return fig
