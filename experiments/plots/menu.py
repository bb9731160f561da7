"""Plot: share of the first-best saving captured by the menu, against menu size."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def plot_menu_efficiency(table: pd.DataFrame, path: str | Path, title: str = "Menu of contracts") -> Path:
    """Mean share captured (with min-max band over weeks and scenarios), tailored vs untailored."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for tailored, style in ((False, {"color": "#7f8c8d", "marker": "o"}), (True, {"color": "#c0392b", "marker": "s"})):
        t = table[table.tailored == tailored].groupby("size")["share"]
        mean, lo, hi = t.mean(), t.min(), t.max()
        label = "tailored to the vendor's coarse preference" if tailored else "untailored"
        ax.plot(mean.index, 100 * mean.values, label=label, **style)
        ax.fill_between(mean.index, 100 * lo.values, 100 * hi.values, color=style["color"], alpha=0.15)
    ax.axhline(100, color="black", lw=0.8, ls="--", label="first-best")
    ax.set_xlabel("menu size (items offered, including JIT)")
    ax.set_ylabel("share of first-best saving captured\nby the binding week's PO (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path
