"""Martingale model of forecast evolution (MMFE), additive form.

The demand of week ``s`` is ``D_s = max(0, mu_s + sum_m eps[s, m])`` with independent, mean-zero
normal revisions ``eps[s, m] ~ N(0, share_m * (cv * mu_s)^2)``, ``m = 0 .. H-1``. Revision ``m`` is
revealed when week ``s`` is ``m - 1`` weeks ahead, i.e. at the forecast update of week ``s - m + 1``
(``m = 0`` is revealed by the realisation itself). So the forecast made in week ``t`` for week
``s = t + j`` is ``F_t(s) = max(0, mu_s + sum_{m > j} eps[s, m])``: revisions are mean-zero, the forecast
sharpens as the week approaches (remaining variance ``(cv mu_s)^2 sum_{m <= j} share_m``), and the
realised demand is the end of the martingale. How fast it sharpens is the split of the variance over
the revisions: given shares, or a named profile (:data:`REVISION_PROFILES`: equal, fast, slow).
Clipping at zero keeps quantities physical and breaks the martingale property only where the
forecast is near zero.
"""

from __future__ import annotations

import numpy as np


#: Named revision speeds (``demand.revision.profile``): the weight of revision ``m`` before normalising.
#: ``fast`` doubles with the distance (most of a week's uncertainty resolves early, far ahead),
#: ``slow`` halves with it (most resolves late, the largest share with the realisation itself).
REVISION_PROFILES = {
    "equal": lambda m, H: np.ones_like(m, dtype=float),
    "fast": lambda m, H: 2.0 ** m,
    "slow": lambda m, H: 2.0 ** (H - 1 - m),
}


def revision_shares(horizon: int, shares: list[float] | None = None, profile: str | None = None) -> np.ndarray:
    """Fractions of the demand variance revealed at each lead (``[H]``, summing to one): the given
    ``shares`` normalised, else the named ``profile`` (:data:`REVISION_PROFILES`), else equal shares."""
    if shares is None:
        if profile is None:
            return np.full(horizon, 1.0 / horizon)
        w = REVISION_PROFILES[profile](np.arange(horizon), horizon)
        return w / w.sum()
    a = np.asarray(shares, dtype=float)
    total = a.sum()
    return a / total if total > 0 else np.full(horizon, 1.0 / horizon)


def draw_revisions(
    mean: np.ndarray, cv: np.ndarray, shares: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Revisions ``eps[s, m, r, k]`` for every week of ``mean[s, r, k]``."""
    S, R, K = mean.shape
    sd = cv[None, None, :] * mean  # [S, R, K]
    z = rng.standard_normal((S, shares.size, R, K))
    return z * np.sqrt(shares)[None, :, None, None] * sd[:, None, :, :]


def forecasts_and_demand(
    mean: np.ndarray, eps: np.ndarray, weeks: int, horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    """Forecasts ``F[t, j, r, k]`` (made in week t for week t+j) and realised demand ``D[t, r, k]``.

    ``mean`` and ``eps`` must cover weeks ``0 .. weeks + horizon - 2``.
    """
    # tail[s, m] = sum_{m' >= m} eps[s, m'], with tail[s, H] = 0
    tail = np.concatenate([np.cumsum(eps[:, ::-1], axis=1)[:, ::-1], np.zeros_like(eps[:, :1])], axis=1)
    t = np.arange(weeks)[:, None]
    j = np.arange(horizon)[None, :]
    s = t + j
    F = np.maximum(0.0, mean[s] + tail[s, j + 1])
    D = np.maximum(0.0, mean[:weeks] + tail[:weeks, 0])
    return F, D


def remaining_sd(mean: np.ndarray, cv: np.ndarray, shares: np.ndarray, weeks: int, horizon: int) -> np.ndarray:
    """Standard deviation still unresolved in each forecast ``[t, j, r, k]``: ``cv mu sqrt(sum_{m<=j} share)``."""
    t = np.arange(weeks)[:, None]
    j = np.arange(horizon)[None, :]
    frac = np.sqrt(np.cumsum(shares))[None, :, None, None]
    return frac * cv[None, None, None, :] * mean[t + j]
