"""Plug agents written for the amzn/FloPro SDK contract into flosim's CPP coordinator.

The FloPro SDK's agent contract (as published in the amzn/FloPro repository) is a class with

* ``register()`` returning public-variable metadata: a mapping ``group name -> metadata`` whose
  ``var_metadata`` is a table with one row per public variable of the group;
* ``solve(public_vars, prices, rho)`` where each argument maps a group name to a 1-d array (``rho``
  per variable), returning an object with ``preferred_vars`` (group name -> 1-d array) and an
  ``objective`` (with ``utility``, ``subsidy``, ``proximal``).

Such an agent *maximises* ``utility(x) + p·x - (rho/2)||x - z||²`` and its coordinator updates prices
``p ← p - rho (x - z)``. flosim's agents *minimise* ``C(x) + y·x + (rho/2)||x - z||²`` with
``y ← y + rho (x - z)``. The two are the same negotiation with ``C = -utility`` and ``y = -p``:
the adapter sends ``p = -y`` and passes the answer back unchanged.

Where a group's variables sit in flosim's plan ``(H, F, K)`` is given by a *layout*: group name ->
flat (C-order) indices into the plan, one per row of the group's ``var_metadata``. Give it
explicitly, or let :func:`layout_from_metadata` read it from ``register()``: each ``var_metadata``
must then have integer columns naming the plan axes, ``week``/``fc``/``product`` (or ``t``/``f``/``k``).
Plan components outside every group do not matter to the agent; its best response there is the
prox of a zero cost, ``z - y/rho``.

What a user may do: ``FloProNegotiator(agent, shape)`` and hand it to
:meth:`sim.coordinator.ConsensusADMM.negotiate` next to flosim's own negotiators.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

AXIS_COLUMNS = (("week", "fc", "product"), ("t", "f", "k"))


def layout_from_metadata(metadata: Mapping[str, Any], shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Flat plan indices of each group, read from FloPro ``register()`` metadata (see module docstring)."""
    layout: dict[str, np.ndarray] = {}
    for group, meta in metadata.items():
        table = getattr(meta, "var_metadata", meta)
        columns = list(getattr(table, "columns", []))
        for names in AXIS_COLUMNS:
            if all(c in columns for c in names):
                coords = tuple(np.asarray(table[c], dtype=np.int64) for c in names)
                layout[str(group)] = np.ravel_multi_index(coords, shape)
                break
        else:
            raise ValueError(
                f"group {group!r}: var_metadata needs columns {AXIS_COLUMNS[0]} or {AXIS_COLUMNS[1]} to place it in the plan; "
                f"it has {columns}. Pass an explicit layout instead."
            )
    _check_layout(layout, int(np.prod(shape)))
    return layout


def _check_layout(layout: Mapping[str, np.ndarray], n: int) -> None:
    seen = np.zeros(n, dtype=bool)
    for group, idx in layout.items():
        idx = np.asarray(idx)
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise ValueError(f"group {group!r}: indices outside the plan of {n} components")
        if np.any(seen[idx]) or np.unique(idx).size != idx.size:
            raise ValueError(f"group {group!r}: a plan component appears twice in the layout")
        seen[idx] = True


class FloProNegotiator:
    """A :class:`~sim.protocol.Negotiator` wrapping a FloPro-SDK-style agent."""

    def __init__(self, agent: Any, shape: tuple[int, ...], layout: Mapping[str, np.ndarray] | None = None) -> None:
        self.agent = agent
        self.shape = tuple(int(s) for s in shape)
        n = int(np.prod(self.shape))
        if layout is None:
            metadata = agent.register() or {}
            layout = layout_from_metadata(metadata, self.shape) if metadata else {"x": np.arange(n)}
        self.layout = {str(g): np.asarray(idx, dtype=np.int64).ravel() for g, idx in layout.items()}
        _check_layout(self.layout, n)
        #: the agent's last reported objective (utility, subsidy, proximal), for diagnostics
        self.last_objective: Any = None

    def best_response(self, z: np.ndarray, prices: np.ndarray, rho: float) -> np.ndarray:
        """Ask the FloPro agent; ``p = -prices`` and a per-variable ``rho`` array per group."""
        zf = np.asarray(z, dtype=float).ravel()
        yf = np.asarray(prices, dtype=float).ravel()
        public = {g: zf[idx].copy() for g, idx in self.layout.items()}
        p = {g: -yf[idx] for g, idx in self.layout.items()}
        rhos = {g: np.full(idx.size, float(rho)) for g, idx in self.layout.items()}
        solution = self.agent.solve(public, p, rhos)
        self.last_objective = getattr(solution, "objective", None)
        x = zf - yf / float(rho)  # components outside every group: prox of a zero cost
        preferred = solution.preferred_vars
        for g, idx in self.layout.items():
            if g not in preferred:
                raise ValueError(f"FloPro agent answered without group {g!r} (got {sorted(preferred)})")
            values = np.asarray(preferred[g], dtype=float).ravel()
            if values.size != idx.size:
                raise ValueError(f"FloPro agent answered {values.size} values for group {g!r}, expected {idx.size}")
            x[idx] = values
        return x.reshape(self.shape)

    def own_cost(self, x: np.ndarray) -> float:
        """``-utility`` of the agent's last answer (FloPro agents report utility with each answer);
        ``x`` must be that answer. Diagnostics only."""
        if self.last_objective is None:
            raise RuntimeError("no answer yet")
        return -float(self.last_objective.utility)
