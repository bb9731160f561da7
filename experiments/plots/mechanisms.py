"""Plot of ``flosim mechanisms``: what each transfer rule gives up, one panel per property."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from experiments.plots.style import save_to  # noqa: E402


def plot_mechanisms(rows: Sequence[dict[str, Any]], path: str | Path, title: str = "Transfer rules") -> Path:
    """Three panels by rule: the best vendor and retailer lie gains beside the planning gap (percent of
    social cost), participation violations (party-weeks, ex ante and ex post), and the balance ``B`` in
    total (positive: a deficit funded from outside)."""
    rules = [r["rule"] for r in rows]
    y = np.arange(len(rules))
    val = lambda key: np.array([100 * (r.get(key) or 0.0) for r in rows])  # noqa: E731
    fig, axes = plt.subplots(1, 3, figsize=(13, 0.55 * len(rules) + 3.0), sharey=True)
    ax = axes[0]
    h = 0.27
    ax.barh(y - h, val("max_vendor_lie_gain"), h, label="best vendor lie", color="#c0392b")
    ax.barh(y, val("max_retailer_lie_gain"), h, label="best retailer lie", color="#e67e22")
    ax.barh(y + h, val("planning_gap"), h, label="planning gap", color="#7f8c8d")
    ax.axvline(0.1, color="black", lw=0.8, ls=":", label="0.1% (1e-3)")
    ax.set_xscale("symlog", linthresh=0.01)
    ax.set_xlabel("% of social cost")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    ax.set_yticks(y, rules)
    ax.invert_yaxis()
    ax = axes[1]
    ax.barh(y - 0.2, [r.get("ex_ante_violations") or 0 for r in rows], 0.4, label="ex ante", color="#2c7fb8")
    ax.barh(y + 0.2, [r.get("ex_post_violations") or 0 for r in rows], 0.4, label="ex post", color="#7fcdbb")
    ax.set_xlabel("participation: party-weeks violated")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    ax = axes[2]
    bal = [r.get("balance_total") or 0.0 for r in rows]
    ax.barh(y, bal, color=["#c0392b" if b > 0 else "#27ae60" for b in bal])
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel("balance B, total (+ deficit, - surplus)")
    for a in axes:
        a.grid(axis="x", alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return save_to(fig, path)
