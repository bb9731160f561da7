"""Figures of a privacy audit: a lane's true and recovered marginal-cost curve, and leakage against
efficiency for the mitigations. Draw them inside :func:`experiments.plots.style.paper_style` (as
``flosim privacy`` does) for the style of every flosim figure."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from experiments.plots.style import save_to  # noqa: E402
from sim.negotiation.cost_curves import FittedCurve  # noqa: E402


def plot_curve(true_steps: Sequence[tuple[float, float, float]], fitted: dict[str, FittedCurve | None], unit_volume: float,
               path: str | Path, title: str) -> Path:
    """The true marginal cost of a unit of ``unit_volume`` at an FC against the week's volume there
    (``true_steps``: ``(start, end, cost)``), and each policy's recovered curve (points: the fitted
    value at each volume the record showed)."""
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    finite_end = max([s[1] for s in true_steps if np.isfinite(s[1])] + [s[0] for s in true_steps] + [1.0])
    seen = [c.grid.max() for c in fitted.values() if c is not None and c.grid.size]
    xmax = 1.15 * max([finite_end, *seen])
    xs, ys = [], []
    for start, end, cost in true_steps:
        xs += [start, min(end, xmax)]
        ys += [cost, cost]
    ax.plot(xs, ys, color="black", lw=2.2, label="true (vendor's data, FC served alone)")
    markers = iter(["o", "s", "^", "D", "v", "P", "X"])
    for name, curve in fitted.items():
        if curve is None or not curve.equalities:
            continue
        ax.plot(curve.grid, curve.delivered(unit_volume), ls="", marker=next(markers, "o"), ms=3, alpha=0.6,
                label=f"recovered from {name}")
    ax.set_xlim(0, xmax)
    ax.set_xlabel("weekly volume shipped to the FC")
    ax.set_ylabel(f"marginal cost of a unit of volume {unit_volume:g}")
    ax.set_title(title)
    ax.legend()
    return save_to(fig, path)


def tradeoff_points(summaries: Sequence[dict[str, Any]]) -> list[tuple[str, float, float]]:
    """``(policy, leakage, efficiency)`` per summary row: the share of parameters recovered within 5%
    against the planned share of the first-best saving (the audit's yardstick; the raw realised share
    moves by tens of points with one run's demand). Rows without a planned share are left out."""
    return [(s["policy"], float(s["within_5pct"]), float(s["planned_share_of_first_best_saving"]))
            for s in summaries if s.get("planned_share_of_first_best_saving") is not None]


def plot_tradeoff(summaries: Sequence[dict[str, Any]], path: str | Path, title: str) -> Path:
    """Leakage (share of parameters recovered within 5%) against efficiency (planned share of the
    first-best saving), one point per audited policy or mitigation (:func:`tradeoff_points`)."""
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for name, leak, eff in tradeoff_points(summaries):
        ax.scatter(leak, eff, s=30)
        ax.annotate(name, (leak, eff), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("share of vendor parameters recovered within 5%")
    ax.set_ylabel("share of the first-best saving (planned, week by week)")
    ax.set_title(title)
    return save_to(fig, path)
