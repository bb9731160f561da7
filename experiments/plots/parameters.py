"""Sweeps: saving against JIT as a function of each swept parameter (settled when the sweep's tables
hold settled figures, raw for older sweeps; the axis says which)."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from experiments.intervals import mean_ci  # noqa: E402
from experiments.plots.data import COST_UNIT, PlotData, policy_color, settled_or_raw  # noqa: E402

MARKERS = ("o", "s", "^", "D", "v", "P")
MAX_LEVELS = 8  # parameters with at most this many values are drawn as lines with CIs, others as scatters


def plot_savings_vs_parameters(data: PlotData) -> "plt.Figure | None":
    """One panel per swept parameter. Few distinct values (a grid): the saving against JIT averaged over
    the other parameters within each replication, mean and 95% CI across replications. Many values
    (Latin hypercube): each design point's mean saving across replications. Policies are dodged
    sideways a little so coinciding ones (cpp-vcg and first-best) both stay visible."""
    if data.kind != "sweep" or not data.parameters or "saving_vs_jit" not in data.summary:
        return None
    saving, basis = settled_or_raw(data.summary, "saving_vs_jit")
    rows = data.summary[data.summary.policy != "jit"]
    if rows.empty:
        return None
    policies = [p for p in data.policies if p != "jit" and p in set(rows.policy)]
    n = len(data.parameters)
    cols = min(3, n)
    nrows = math.ceil(n / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.6 * cols, 3.0 * nrows + 0.5), squeeze=False)
    for ax, param in zip(axes.flat, data.parameters):
        values = rows[param].dropna()
        levels = sorted(values.unique())
        span = (float(max(levels)) - float(min(levels))) if levels else 0.0
        for i, p in enumerate(policies):
            r = rows[rows.policy == p]
            color = policy_color(p, data.policies)
            style = {"ls": "--" if p == "first-best" else "-", "marker": MARKERS[i % len(MARKERS)],
                     "mfc": "none" if p == "first-best" else color}
            if len(levels) <= MAX_LEVELS:
                stats = []
                for level in levels:
                    per_rep = r[r[param] == level].groupby("replication")[saving].mean()
                    stats.append((level, *mean_ci(per_rep)[:2]))
                x, m, h = (np.array(v, dtype=float) for v in zip(*stats))
                x = x + (i - (len(policies) - 1) / 2) * 0.015 * span  # dodge, so coinciding policies stay visible
                ax.errorbar(x, m, yerr=None if np.all(np.isnan(h)) else np.nan_to_num(h), ms=4, capsize=3,
                            color=color, label=p, **style)
            else:
                pts = r.groupby("point").agg(x=(param, "first"), y=(saving, "mean"))
                ax.scatter(pts.x, pts.y, s=16, marker=style["marker"], facecolors=style["mfc"], edgecolors=color,
                           alpha=0.8, label=p)
        ax.axhline(0, color="black", lw=0.6)
        ax.set_xlabel(param)
        ax.set_ylabel(f"{basis} saving vs JIT ({COST_UNIT})")
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), bbox_to_anchor=(0.5, 1.0), title="policy")
    fig.suptitle(f"Saving against JIT by swept parameter ({basis})", y=1.06)
    fig.tight_layout()
    return fig
