"""CPP convergence: ADMM rounds and final residuals per planning week, and residual histories from
saved transcripts (:mod:`sim.negotiation.transcript`) when the results folder holds any."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from experiments.plots.data import PlotData, policy_color, transcripts  # noqa: E402

RESIDUALS = ("primal_residual", "dual_residual")


def _cpp_policies(data: PlotData) -> list[str]:
    d = data.decisions
    if d is None or d.empty or "iterations" not in d:
        return []
    return [p for p in data.policies if p in set(d.policy) and d.loc[d.policy == p, "iterations"].notna().any()]


def _transcript_history(path) -> pd.DataFrame:
    import pyarrow.parquet as pq

    t = pq.read_table(path, columns=["iteration", "agent", "array", "values"]).to_pandas()
    t = t[(t.agent == -1) & t.array.isin(["primal", "dual"])]
    t["value"] = [float(v[0]) for v in t["values"]]
    return t.pivot_table(index="iteration", columns="array", values="value").reset_index()


def plot_cpp_convergence(data: PlotData) -> "plt.Figure | None":
    """Left: ADMM rounds per week (mean across replications). Right (when known): final primal and dual
    residuals per week (log scale), or the residual history of each saved transcript."""
    policies = _cpp_policies(data)
    files = transcripts(data.folder)
    if not policies and not files:
        return None
    d = data.decisions
    has_residuals = any(col in d and d.loc[d.policy == p, col].notna().any() for p in policies for col in RESIDUALS)
    if files or has_residuals:
        fig, axes = plt.subplots(1, 2, figsize=(8.4, 3.4))
    else:  # only rounds are known (e.g. CPP-VCG reports no residuals): one panel, no empty axes
        fig, ax0 = plt.subplots(figsize=(5.2, 3.4))
        axes = [ax0]
    ax = axes[0]
    for p in policies:
        s = data.across(d[d.policy == p].dropna(subset=["iterations"]), "iterations", ["week"]).sort_values("week")
        ax.plot(s.week, s["mean"], marker="o", ms=3, color=policy_color(p, data.policies), label=p)
    ax.set_xlabel("week")
    ax.set_ylabel("ADMM rounds to converge (count)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("CPP rounds per planning week")
    if policies:
        ax.legend(title="policy")
        if "converged" in d:
            conv = d[d.policy.isin(policies)]["converged"].astype("float").mean()
            ax.text(0.98, 0.03, f"converged in {100 * conv:.0f}% of weeks", transform=ax.transAxes, fontsize=7, ha="right")
        ax.set_ylim(bottom=0)
    else:
        ax.text(0.5, 0.5, "no per-week CPP diagnostics", ha="center", va="center", transform=ax.transAxes)
    if len(axes) == 1:
        fig.tight_layout()
        return fig
    ax = axes[1]
    if files:
        for i, path in enumerate(files[:8]):
            h = _transcript_history(path)
            color = plt.cm.viridis(i / max(1, min(len(files), 8) - 1))
            if "primal" in h:
                ax.semilogy(h.iteration, h.primal, color=color, label=f"{path.stem}: primal")
            if "dual" in h:
                ax.semilogy(h.iteration, h.dual, color=color, ls="--", label=f"{path.stem}: dual")
        ax.set_xlabel("ADMM round")
        ax.set_title("Residual history (saved transcripts)")
    else:
        for p in policies:
            color = policy_color(p, data.policies)
            for col, ls in zip(RESIDUALS, ("-", "--")):
                if col in d and d.loc[d.policy == p, col].notna().any():
                    s = data.across(d[d.policy == p].dropna(subset=[col]), col, ["week"]).sort_values("week")
                    ax.semilogy(s.week, np.maximum(s["mean"], 1e-16), ls=ls, marker="o", ms=3, color=color,
                                label=f"{p}: {col.replace('_', ' ')}")
        ax.set_xlabel("week")
        ax.set_title("Final residuals per planning week")
    ax.set_ylabel("residual norm (plan units, log scale)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
