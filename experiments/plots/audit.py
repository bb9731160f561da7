"""Plot of an incentive audit: the liar's relative gain by lie, one panel per mechanism."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from experiments.plots.style import save_to  # noqa: E402


def plot_audit(table: pd.DataFrame, path: str | Path, title: str = "Incentive audit") -> Path:
    """Horizontal bars of ``relative_gain`` (percent of truthful social cost); red where lying pays."""
    mechanisms = list(dict.fromkeys(table["mechanism"]))
    n_lies = max(1, table.groupby("mechanism").size().max())
    fig, axes = plt.subplots(1, len(mechanisms), figsize=(4.2 * len(mechanisms), 0.45 * n_lies + 1.6), sharey=True, squeeze=False)
    for ax, mech in zip(axes[0], mechanisms):
        t = table[table.mechanism == mech]
        labels = [f"{p}: {lie}" for p, lie in zip(t.party, t.lie)]
        values = 100 * t.relative_gain.to_numpy()
        colors = ["#c0392b" if v > 1e-6 else "#2c7fb8" for v in values]
        ax.barh(range(len(values)), values, color=colors)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(range(len(values)), labels)
        ax.invert_yaxis()
        ax.set_title(mech)
        ax.set_xlabel("liar's gain (% of truthful social cost)")
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return save_to(fig, path)
