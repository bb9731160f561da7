"""Confidence intervals for replicated figures: one place for the Student-t interval that
replicated runs (:mod:`experiments.replications`), plots and the report all use.

What a user may do: ``mean_ci(values)`` gives the mean, the half-width of its 95% interval and the
number of values (NaN half-width with fewer than two).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def mean_ci(values: Any, level: float = 0.95) -> tuple[float, float, int]:
    """Mean, half-width of the Student-t confidence interval (NaN with fewer than two values), count."""
    from scipy import stats

    x = np.asarray(pd.Series(values).dropna(), dtype=float)
    n = x.size
    if n == 0:
        return float("nan"), float("nan"), 0
    if n < 2:
        return float(x.mean()), float("nan"), 1
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * x.std(ddof=1) / np.sqrt(n))
    return float(x.mean()), half, n
