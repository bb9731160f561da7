"""Mean demand by week, region and product (docs/model.md, "Demand and forecasts").

``mean_demand(scenario, n_weeks)`` returns ``mu[s, r, k] = base_k * w_r * m(s) * (1 + trend * s)``
with regional weights ``w_r`` normalised to sum to one and multipliers ``m`` repeated cyclically.
The scenario's ``demand.model`` names the shape: ``stationary`` (constant), ``trend``, ``seasonal``
(multipliers, e.g. the V-ADK seasonal profile [0.367, 0.406, 1.009, 2.336, 1.093, 0.788]), ``vadk``
(products from the V-ADK generator with any of the above), ``trace`` (read from files instead).
"""

from __future__ import annotations

import numpy as np

from sim.model.scenario import Scenario

#: Public V-ADK calibration (github amzn/FloPro): regional weights and six-week multipliers.
VADK_REGION_WEIGHTS = (0.247, 0.158, 0.233, 0.131, 0.231)
VADK_STABLE = (1.014, 0.980, 0.989, 1.000, 1.015, 1.001)
VADK_SEASONAL = (0.367, 0.406, 1.009, 2.336, 1.093, 0.788)


def region_weights(s: Scenario) -> np.ndarray:
    """Regional demand shares ``[R]``, summing to one (uniform unless the scenario gives weights)."""
    R = len(s.regions)
    if s.demand.region_weights is None:
        return np.full(R, 1.0 / R)
    w = np.array([s.demand.region_weights.get(r, 0.0) for r in s.regions], dtype=float)
    total = w.sum()
    return w / total if total > 0 else np.full(R, 1.0 / R)


def mean_demand(s: Scenario, n_weeks: int) -> np.ndarray:
    """``mu[s, r, k]`` for weeks ``0 .. n_weeks-1``."""
    base = np.array([p.base_demand for p in s.products], dtype=float)
    weeks = np.arange(n_weeks)
    mult = np.asarray(s.demand.multipliers, dtype=float)[weeks % len(s.demand.multipliers)]
    level = mult * np.maximum(0.0, 1.0 + s.demand.trend * weeks)
    return level[:, None, None] * region_weights(s)[None, :, None] * base[None, None, :]


def demand_cv(s: Scenario) -> np.ndarray:
    """Coefficient of variation of weekly regional demand per product ``[K]``."""
    return np.array([s.demand.cv if p.cv is None else p.cv for p in s.products], dtype=float)
