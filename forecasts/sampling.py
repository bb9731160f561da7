"""Demand scenarios drawn from the forecast distribution, for certainty equivalents.

Under the martingale forecast model the demand of week ``t + j`` is the current forecast plus the
revisions not yet revealed: normal with mean ``forecast[j]`` and standard deviation ``sd[j]``,
independent across weeks, clipped at zero. ``sample_demand_paths`` draws ``n`` such paths.
"""

from __future__ import annotations

import numpy as np


def sample_demand_paths(forecast: np.ndarray, sd: np.ndarray | None, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` demand paths ``[n, H, R, K]``; with ``sd`` None or zero every path equals the forecast."""
    if n < 1:
        raise ValueError(f"need at least one scenario, got {n}")
    base = np.broadcast_to(forecast, (n, *forecast.shape))
    if sd is None or not np.any(sd > 0):
        return base.copy()
    return np.maximum(0.0, base + sd[None] * rng.standard_normal((n, *forecast.shape)))
