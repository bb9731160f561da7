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

What a user may do: build :class:`Observations` (``sim.observer`` builds them from what a mechanism
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
    """One FC's fitted step functions on the grid of observed weekly volumes."""

    grid: np.ndarray  # [G] volumes, increasing
    alpha: np.ndarray  # [G] per-unit part
    mu: np.ndarray  # [G] per-volume part
    split_identified: bool  # products of at least two volumes observed
    observations: int
    equalities: int
    misfit: float  # mean absolute violation per observation

    def delivered(self, unit_volume: float) -> np.ndarray:
        """Marginal cost of a unit of volume ``unit_volume`` at each grid volume."""
        return self.alpha + unit_volume * self.mu

    def _inside(self, lo: float, hi: float) -> np.ndarray:
        width = hi - lo if np.isfinite(hi) else max(lo, 1.0)
        margin = 0.02 * width
        return (self.grid > lo + margin) & (self.grid < (hi - margin if np.isfinite(hi) else np.inf))

    def level_between(self, lo: float, hi: float, values: np.ndarray) -> float | None:
        """Median of ``values`` (a grid-shaped array such as :meth:`delivered`) on grid volumes strictly
        inside ``(lo, hi)`` (2% margins); None if none was observed there."""
        inside = self._inside(lo, hi)
        return float(np.median(values[inside])) if inside.any() and self.equalities else None

    def kink_between(self, lo_segment: tuple[float, float], hi_segment: tuple[float, float], unit_volume: float) -> float | None:
        """Where the fitted curve steps up between two segments ``(start, end)`` of volume: the last
        grid volume still at the lower segment's level and the first at the upper one's; a grid
        volume between them (an answer sitting on the kink, whose subgradient lies between the two
        levels) is the kink itself, else their midpoint. None unless both segments were observed."""
        c = self.delivered(unit_volume)
        low = self.level_between(*lo_segment, c)
        high = self.level_between(*hi_segment, c)
        if low is None or high is None or high <= low:
            return None
        tol = 0.1 * (high - low)
        window = (self.grid > lo_segment[0]) & (self.grid < (hi_segment[1] if np.isfinite(hi_segment[1]) else np.inf))
        g, cw = self.grid[window], c[window]
        at_low = np.flatnonzero(cw <= low + tol)
        at_high = np.flatnonzero(cw >= high - tol)
        if not at_low.size or not at_high.size:
            return None
        last_low = at_low[at_low < at_high[-1]]
        if not last_low.size:
            return None
        i = int(last_low[-1])
        j = int(at_high[at_high > i][0])
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
    # variables: alpha[G], mu[G], then one slack per observation side
    kind = obs.kind
    eq = kind == EQUAL
    n_eq = int(eq.sum())
    n_slack = n + n_eq  # equality rows get a slack on either side
    nv = 2 * G + n_slack
    rows = np.arange(n)
    # alpha_g + v mu_g (+/- slacks) against value
    A_model = sp.csr_matrix(
        (np.concatenate([np.ones(n), obs.unit_volume]), (np.concatenate([rows, rows]), np.concatenate([gi, G + gi]))),
        shape=(n, nv),
    )
    slack_plus = 2 * G + np.arange(n)
    slack_minus = 2 * G + n + np.arange(n_eq)
    # equalities: model + s+ - s- = value
    eq_rows = np.flatnonzero(eq)
    A_eq = A_model[eq_rows] + sp.csr_matrix(
        (np.concatenate([np.ones(n_eq), -np.ones(n_eq)]), (np.concatenate([np.arange(n_eq)] * 2), np.concatenate([slack_plus[eq_rows], slack_minus]))),
        shape=(n_eq, nv),
    )
    b_eq = obs.value[eq_rows]
    # at least: -(model) - s <= -value ; at most: model - s <= value
    lo_rows = np.flatnonzero(kind == AT_LEAST)
    hi_rows = np.flatnonzero(kind == AT_MOST)
    slack_of = lambda r: sp.csr_matrix((np.ones(r.size), (np.arange(r.size), slack_plus[r])), shape=(r.size, nv))  # noqa: E731
    blocks = [-A_model[lo_rows] - slack_of(lo_rows), A_model[hi_rows] - slack_of(hi_rows)]
    b_ub = [-obs.value[lo_rows], obs.value[hi_rows]]
    # monotone: (alpha + v mu)[g] - (alpha + v mu)[g+1] <= 0 for every product volume seen
    if G > 1:
        g0 = np.arange(G - 1)
        for v in vols:
            data = np.concatenate([np.ones(G - 1), -np.ones(G - 1), np.full(G - 1, v), np.full(G - 1, -v)])
            cols = np.concatenate([g0, g0 + 1, G + g0, G + g0 + 1])
            blocks.append(sp.csr_matrix((data, (np.concatenate([g0] * 4), cols)), shape=(G - 1, nv)))
            b_ub.append(np.zeros(G - 1))
    c = np.zeros(nv)
    c[2 * G :] = 1.0
    # total rise of each product volume's curve, weighted so it never outweighs one observation's fit
    weight = rise_weight / max(vols.size, 1)
    for v in vols:
        c[[0, G - 1]] += weight * np.array([-1.0, 1.0])
        c[[G, 2 * G - 1]] += weight * v * np.array([-1.0, 1.0])
    if G == 1:
        c[: 2 * G] = 0.0
    if not split:
        # alpha and mu are not told apart: put the whole marginal cost in alpha (mu = 0), so the
        # answer is unique; ``split_identified`` says so
        bounds = [(None, None)] * G + [(0.0, 0.0)] * G + [(0.0, None)] * n_slack
    else:
        bounds = [(None, None)] * (2 * G) + [(0.0, None)] * n_slack
    A_ub = sp.vstack(blocks).tocsr() if blocks else None
    res = linprog(c, A_ub=A_ub, b_ub=np.concatenate(b_ub) if b_ub else None, A_eq=A_eq if n_eq else None,
                  b_eq=b_eq if n_eq else None, bounds=bounds, method="highs")
    if res.status != 0:
        raise RuntimeError(f"cost-curve fit: HiGHS: {res.message}")
    x = res.x
    alpha, mu = x[:G], x[G : 2 * G]
    misfit = float(np.sum(x[2 * G :]) / n)
    return FittedCurve(grid, alpha, mu, split, n, n_eq, misfit)


def fit_curves(obs: Observations, n_fcs: int, **options: float) -> list[FittedCurve | None]:
    """:func:`fit_curve` for each FC ``0..n_fcs-1`` (None where nothing was observed)."""
    return [fit_curve(obs.subset(obs.fc == f), **options) for f in range(n_fcs)]
