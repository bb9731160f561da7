"""Inverse optimisation: a vendor's delivered marginal-cost curves fitted to observed subgradients.

An observer who sees a party's answers (a CPP transcript, or an agreed plan and prices) learns, at
each answer, a subgradient of that party's cost. This module turns such observations into the
cheapest-to-explain convex piecewise-linear cost per FC and reads marginal costs and kinks off it.

The observer's assumed form of the vendor's cost (what it is assumed to know; no numbers):

* costs are separate by FC and week: delivering to FC ``f`` in a week costs ``Phi_f(V)``, with ``V``
  the week's volume to ``f`` (``sum_k vol_k x[k]``; product volumes are public);
* the marginal cost of one more unit of product ``k`` at volume ``V`` is
  ``alpha_f(V) + vol_k * mu_f(V)``: a per-unit part (production) and a per-volume part (the lane's
  rate), both step functions of ``V`` (a lane's spare truck volume at a low rate, then truckload
  rates, then a capacity where the marginal cost jumps); the cost is convex, so
  ``alpha_f + vol_k mu_f`` is non-decreasing in ``V`` for every product volume ``vol_k``.

The true model is coupled (origins serve several FCs and their capacity is shared, stock can be
carried between weeks); those couplings show up as misfit, which is part of what the audit measures.

The fit is one linear program per FC (HiGHS through ``scipy.optimize.linprog``): the step values on
the grid of observed volumes minimise the total absolute violation of the observations (equalities,
and one-sided bounds from answers at zero), plus a small multiple of the curve's total rise (which
keeps noise from adding steps), subject to the monotonicity above. With exact observations the fit
matches every one of them. ``alpha`` and ``mu`` are told apart only where products of different
volumes were observed (:attr:`FittedCurve.split_identified`); their sum at a reference volume
(:meth:`FittedCurve.delivered`) is identified either way.

What a user may do: build :class:`Observations` (``experiments.observer`` builds them from what a mechanism
shows the retailer), call :func:`fit_curves`, and read :meth:`FittedCurve.level_between` and
:meth:`FittedCurve.kink_between`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

EQUAL, AT_LEAST, AT_MOST = 0, 1, 2


@dataclass(frozen=True)
class Observations:
    """Observed marginal costs: at FC ``fc[i]``, weekly volume ``volume[i]``, a unit of volume
    ``unit_volume[i]`` costs ``value[i]`` at the margin (``kind`` EQUAL), at least it (AT_LEAST) or at
    most it (AT_MOST)."""

    fc: np.ndarray
    volume: np.ndarray
    unit_volume: np.ndarray
    value: np.ndarray
    kind: np.ndarray

    @staticmethod
    def empty() -> "Observations":
        z = np.zeros(0)
        return Observations(z.astype(int), z, z, z, z.astype(int))

    @staticmethod
    def concat(parts: list["Observations"]) -> "Observations":
        parts = [p for p in parts if p.size]
        if not parts:
            return Observations.empty()
        return Observations(*(np.concatenate([getattr(p, n) for p in parts]) for n in ("fc", "volume", "unit_volume", "value", "kind")))

    @property
    def size(self) -> int:
        return int(self.value.size)

    def subset(self, mask: np.ndarray) -> "Observations":
        return Observations(self.fc[mask], self.volume[mask], self.unit_volume[mask], self.value[mask], self.kind[mask])


@dataclass(frozen=True)
class FittedCurve:
    """One FC's fitted step functions on the grid of observed weekly volumes. At each grid volume the
    curve has a left and a right value (a convex function's subgradients at a kink form an interval,
    and an answer sitting on a lane's kink shows any value in it); away from kinks they agree."""

    grid: np.ndarray  # [G] volumes, increasing
    alpha_left: np.ndarray  # [G] per-unit part, left end of the interval
    mu_left: np.ndarray  # [G] per-volume part, left end
    alpha_right: np.ndarray  # [G]
    mu_right: np.ndarray  # [G]
    split_identified: bool  # products of at least two volumes observed
    observations: int
    equalities: int
    misfit: float  # mean absolute violation per observation

    @property
    def alpha(self) -> np.ndarray:
        return 0.5 * (self.alpha_left + self.alpha_right)

    @property
    def mu(self) -> np.ndarray:
        return 0.5 * (self.mu_left + self.mu_right)

    def delivered(self, unit_volume: float, side: str = "middle") -> np.ndarray:
        """Marginal cost of a unit of volume ``unit_volume`` at each grid volume (``side``: ``left``,
        ``right`` end of the interval, or its ``middle``)."""
        if side == "left":
            return self.alpha_left + unit_volume * self.mu_left
        if side == "right":
            return self.alpha_right + unit_volume * self.mu_right
        return self.alpha + unit_volume * self.mu

    def _inside(self, lo: float, hi: float) -> np.ndarray:
        width = hi - lo if np.isfinite(hi) else np.inf
        margin = 0.02 * min(width, lo if lo > 0 else width)  # a long last segment: 2% of where it starts
        return (self.grid > lo + margin) & (self.grid < (hi - margin if np.isfinite(hi) else np.inf))

    def level_between(self, lo: float, hi: float, values: np.ndarray) -> float | None:
        """Median of ``values`` (a grid-shaped array such as :meth:`delivered`) on grid volumes strictly
        inside ``(lo, hi)`` (margins of 2% of the segment, or of ``lo`` if that is less); None if none
        was observed there, or if the record held bounds only."""
        inside = self._inside(lo, hi)
        return float(np.median(values[inside])) if inside.any() and self.equalities else None

    def kink_between(self, lo_segment: tuple[float, float], hi_segment: tuple[float, float], unit_volume: float) -> float | None:
        """Where the fitted curve steps up between two segments ``(start, end)`` of volume: a grid
        volume whose interval spans both segments' levels (an answer sitting on the kink) is the kink
        itself; otherwise the grid volumes between the last one at the lower level and the first at
        the upper one (their median), or the midpoint of those two. None unless both segments were
        observed."""
        mid = self.delivered(unit_volume)
        low = self.level_between(*lo_segment, mid)
        high = self.level_between(*hi_segment, mid)
        if low is None or high is None or high <= low:
            return None
        tol = 0.1 * (high - low)
        window = (self.grid > lo_segment[0]) & (self.grid < (hi_segment[1] if np.isfinite(hi_segment[1]) else np.inf))
        g = self.grid[window]
        left, right = self.delivered(unit_volume, "left")[window], self.delivered(unit_volume, "right")[window]
        at_high = np.flatnonzero(right >= high - tol)
        at_low = np.flatnonzero(left <= low + tol)
        if not at_low.size or not at_high.size:
            return None
        j = int(at_high[0])
        before = at_low[at_low <= j]
        if not before.size:
            return None
        i = int(before[-1])
        if i == j:
            return float(g[i])
        between = np.arange(i + 1, j)
        if between.size:
            return float(np.median(g[between]))
        return float(0.5 * (g[i] + g[j]))


def _grid(volume: np.ndarray, max_grid: int, resolution: float) -> tuple[np.ndarray, np.ndarray]:
    """Grid of distinct observed volumes (rounded to ``resolution``; merged to at most ``max_grid``
    points by quantiles) and each observation's grid index."""
    key = np.round(volume / resolution) * resolution
    grid, index = np.unique(key, return_inverse=True)
    if grid.size > max_grid:
        edges = np.unique(np.quantile(key, np.linspace(0, 1, max_grid + 1)[1:-1]))
        cell = np.searchsorted(edges, key, side="right")
        used, index = np.unique(cell, return_inverse=True)
        grid = np.array([np.median(key[cell == u]) for u in used])
    return grid, index.ravel()


def fit_curve(obs: Observations, *, max_grid: int = 1500, resolution: float = 1e-6, rise_weight: float = 1e-3) -> FittedCurve | None:
    """Fit one FC's curve to its observations (all of ``obs``); None if there are none."""
    n = obs.size
    if n == 0:
        return None
    grid, gi = _grid(obs.volume, max_grid, resolution)
    G = grid.size
    vols = np.unique(np.round(obs.unit_volume, 12))
    split = vols.size >= 2
    # variables: alpha_left[G], mu_left[G], alpha_right[G], mu_right[G], then slacks
    AL, ML, AR, MR = 0, G, 2 * G, 3 * G
    kind = obs.kind
    eq = kind == EQUAL
    # an equality is two one-sided rows: left end <= value <= right end
    upper_rows = np.flatnonzero(eq | (kind == AT_MOST))  # left(g) <= value
    lower_rows = np.flatnonzero(eq | (kind == AT_LEAST))  # right(g) >= value
    n_slack = upper_rows.size + lower_rows.size
    nv = 4 * G + n_slack

    def rows_of(sel: np.ndarray, a0: int, m0: int, sign: float, slack0: int) -> sp.csr_matrix:
        r = np.arange(sel.size)
        data = np.concatenate([np.full(sel.size, sign), sign * obs.unit_volume[sel], -np.ones(sel.size)])
        cols = np.concatenate([a0 + gi[sel], m0 + gi[sel], 4 * G + slack0 + r])
        return sp.csr_matrix((data, (np.concatenate([r, r, r]), cols)), shape=(sel.size, nv))

    blocks = [rows_of(upper_rows, AL, ML, 1.0, 0), rows_of(lower_rows, AR, MR, -1.0, upper_rows.size)]
    b_ub = [obs.value[upper_rows], -obs.value[lower_rows]]
    # monotone for every product volume seen: left(g) <= right(g) <= left(g+1)
    g_all = np.arange(G)
    for v in vols:
        data = np.concatenate([np.ones(G), np.full(G, v), -np.ones(G), np.full(G, -v)])
        cols = np.concatenate([AL + g_all, ML + g_all, AR + g_all, MR + g_all])
        blocks.append(sp.csr_matrix((data, (np.concatenate([g_all] * 4), cols)), shape=(G, nv)))
        b_ub.append(np.zeros(G))
        if G > 1:
            g0 = np.arange(G - 1)
            data = np.concatenate([np.ones(G - 1), np.full(G - 1, v), -np.ones(G - 1), np.full(G - 1, -v)])
            cols = np.concatenate([AR + g0, MR + g0, AL + g0 + 1, ML + g0 + 1])
            blocks.append(sp.csr_matrix((data, (np.concatenate([g0] * 4), cols)), shape=(G - 1, nv)))
            b_ub.append(np.zeros(G - 1))
    c = np.zeros(nv)
    c[4 * G :] = 1.0
    # total rise of each product volume's curve (right end of the last point less left end of the
    # first), weighted so it never outweighs one observation's fit: keeps noise from adding steps
    weight = rise_weight / max(vols.size, 1)
    for v in vols:
        c[AR + G - 1] += weight
        c[MR + G - 1] += weight * v
        c[AL] -= weight
        c[ML] -= weight * v
    free = (None, None)
    # without two product volumes alpha and mu are not told apart: mu = 0 (the whole marginal cost
    # in alpha), so the answer is unique; ``split_identified`` says so
    mu_bounds = free if split else (0.0, 0.0)
    bounds = [free] * G + [mu_bounds] * G + [free] * G + [mu_bounds] * G + [(0.0, None)] * n_slack
    res = linprog(c, A_ub=sp.vstack(blocks).tocsr(), b_ub=np.concatenate(b_ub), bounds=bounds, method="highs")
    if res.status != 0:
        raise RuntimeError(f"cost-curve fit: HiGHS: {res.message}")
    x = res.x
    misfit = float(np.sum(x[4 * G :]) / n)
    return FittedCurve(grid, x[AL : AL + G], x[ML : ML + G], x[AR : AR + G], x[MR : MR + G], split, n, int(eq.sum()), misfit)


def fit_curves(obs: Observations, n_fcs: int, **options: float) -> list[FittedCurve | None]:
    """:func:`fit_curve` for each FC ``0..n_fcs-1`` (None where nothing was observed)."""
    return [fit_curve(obs.subset(obs.fc == f), **options) for f in range(n_fcs)]
