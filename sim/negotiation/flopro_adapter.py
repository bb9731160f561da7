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
explicitly, or let :func:`layout_from_metadata` read it from ``register()``. The columns of
``var_metadata`` name the plan axes:

* the week: ``week`` or ``t``;
* the FC: ``inbound_node``, ``fc``, ``node`` or ``f``;
* the product: every other column, together (FloPro's own agents: ``asin`` and ``vendor_code``; or
  ``product`` / ``k``). A group with several vendor codes thus gets one product per (asin, vendor)
  pair.

Ids may be integers (used as indices as they are) or strings such as ``ASIN_3`` and ``NODE_1``
(FloPro's convention), numbered in natural order (``ASIN_2`` before ``ASIN_10``), so that two agents
that register the same ids, in whatever row order, place them alike. :func:`plan_axes` gives the
plan's shape and the id behind each index, over all the agents of a negotiation.
Plan components outside every group do not matter to the agent; its best response there is the
prox of a zero cost, ``z - y/rho``.

A FloPro agent reports only the utility of its own answer, not its cost of any plan, nor its dual
value: it cannot certify a plan (``can_certify`` is False), so a negotiation with it stops on
residuals (:mod:`sim.negotiation.coordinator`) and :func:`sim.negotiation.certificate.certify` says "not certified".

FloPro's ADK agents (``RetailerAgent``, ``VendorAgent``) look their metadata up in a registry that
FloPro's own runner fills before it builds them; outside that runner :func:`build_flopro_agent` does
both steps. flosim does not depend on FloPro: the helper imports it only when called.

What a user may do: ``FloProNegotiator(agent)`` (shape and layout from the agent's metadata) and hand
it to :meth:`sim.negotiation.coordinator.ConsensusADMM.negotiate` next to flosim's own negotiators, or run it in
its own process with :class:`sim.negotiation.best_response.ProcessNegotiator`; ``flosim negotiate --agents
module:factory`` from the command line.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sim.model.errors import FlosimError

WEEK_COLUMNS = ("week", "t")
FC_COLUMNS = ("inbound_node", "fc", "node", "f")


def _natural(value: Any) -> tuple:
    """Sort key: text and numbers alternating, numbers compared as numbers (``ASIN_2 < ASIN_10``)."""
    if isinstance(value, tuple):
        return tuple(_natural(v) for v in value)
    parts = re.split(r"(\d+)", str(value))
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts if p != "")


def _table(meta: Any) -> Any:
    return getattr(meta, "var_metadata", meta)


def _axis_columns(group: str, columns: list[str]) -> tuple[str, str, list[str]]:
    week = next((c for c in WEEK_COLUMNS if c in columns), None)
    fc = next((c for c in FC_COLUMNS if c in columns), None)
    product = [c for c in columns if c not in (week, fc)]
    if week is None or fc is None or not product:
        raise ValueError(
            f"group {group!r}: var_metadata needs columns for the week ({' or '.join(WEEK_COLUMNS)}), the FC "
            f"({' or '.join(FC_COLUMNS)}) and the product (any other id columns, e.g. asin, vendor_code) to place it in the plan; "
            f"it has {columns}. Pass an explicit layout instead.")
    return week, fc, product


def _keys(table: Any, cols: list[str]) -> list[Any]:
    values = [list(table[c]) for c in cols]
    return [tuple(v) if len(v) > 1 else v[0] for v in zip(*values, strict=True)]


def _is_int(values: list[Any]) -> bool:
    return all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values)


def plan_axes(metadatas: Sequence[Mapping[str, Any]]) -> tuple[tuple[int, int, int], tuple[list[Any], list[Any], list[Any]]]:
    """The plan's shape ``(H, F, K)`` and the id behind each index of each axis, over the
    ``register()`` metadata of all agents of a negotiation (see the module docstring). Integer ids
    are indices (the axis is as long as the largest plus one); string ids are numbered in natural order."""
    found: list[list[Any]] = [[], [], []]
    for metadata in metadatas:
        for group, meta in metadata.items():
            table = _table(meta)
            week, fc, product = _axis_columns(str(group), list(getattr(table, "columns", [])))
            for axis, cols in enumerate(([week], [fc], product)):
                found[axis].extend(_keys(table, cols))
    labels: list[list[Any]] = []
    for values in found:
        uniq = list(dict.fromkeys(values))
        if _is_int(uniq):
            labels.append(list(range(max(uniq) + 1)) if uniq else [])
        else:
            labels.append(sorted(uniq, key=_natural))
    shape = (len(labels[0]), len(labels[1]), len(labels[2]))
    return shape, (labels[0], labels[1], labels[2])


def layout_from_metadata(metadata: Mapping[str, Any], shape: tuple[int, ...] | None = None,
                         labels: tuple[list[Any], list[Any], list[Any]] | None = None) -> dict[str, np.ndarray]:
    """Flat plan indices of each group, read from FloPro ``register()`` metadata (see the module
    docstring). ``labels``: the id behind each index of each axis (:func:`plan_axes` over all agents);
    by default this agent's own ids. ``shape`` defaults to the labels' lengths."""
    if labels is None:
        _, labels = plan_axes([metadata])
    shape = tuple(int(v) for v in (shape or tuple(len(a) for a in labels)))
    if len(shape) != 3:
        raise ValueError(f"the plan must have three axes (week, FC, product), got shape {shape}")
    position = [{v: i for i, v in enumerate(axis)} for axis in labels]
    layout: dict[str, np.ndarray] = {}
    for group, meta in metadata.items():
        table = _table(meta)
        week, fc, product = _axis_columns(str(group), list(getattr(table, "columns", [])))
        coords = []
        for axis, cols in enumerate(([week], [fc], product)):
            keys = _keys(table, cols)
            try:
                idx = np.asarray([position[axis][v] for v in keys], dtype=np.int64)
            except KeyError as exc:
                raise ValueError(f"group {group!r}: id {exc.args[0]!r} ({'/'.join(cols)}) is not among the plan's ids") from None
            if idx.size and idx.max() >= shape[axis]:
                raise ValueError(f"group {group!r}: {'/'.join(cols)} index {int(idx.max())} outside the plan of shape {shape}")
            coords.append(idx)
        layout[str(group)] = np.ravel_multi_index(tuple(coords), shape)
    _check_layout(layout, int(np.prod(shape)))
    return layout


def build_flopro_agent(agent_cls: type, metadata: Mapping[str, Any], data: Any = None, *, solver: Any = None,
                       agent_params: Mapping[str, Any] | None = None, registry: dict | None = None) -> Any:
    """Build a FloPro ADK agent (``RetailerAgent``, ``VendorAgent`` or any ``CounterpartyAgent``)
    outside FloPro's runner.

    The ADK's agents read their public-variable metadata from a module-level registry that FloPro's
    runner fills before building them (otherwise ``RegistrationError``). This helper registers
    ``metadata`` for ``agent_cls`` (FloPro's ``flopro_var_metadata(ids, n_weeks)`` makes it, or the
    generator's ``generate_variable_group_metadata()``), then builds the agent with ``data`` (the
    agent's input data, e.g. the generator's ``generate_counterparty_input_data()``) behind a
    loader, and ``solver`` (a FloPro ``SolverStrategy``; None: the agent's default). ``registry``:
    the dict to register in (default: FloPro's own, imported when needed; flosim does not depend on
    FloPro)."""
    if registry is None:
        try:
            module = importlib.import_module("flo_pro_adk.core.counterparty.counterparty_agent")
        except ImportError as exc:
            raise FlosimError(f"build_flopro_agent needs the FloPro ADK (flo_pro_adk) installed: {exc}") from None
        registry = module._var_metadata_registry
    registry[agent_cls] = dict(metadata)
    kwargs: dict[str, Any] = {"agent_params": dict(agent_params or {}), "data_loader": _Loaded(data) if data is not None else None}
    if solver is not None:
        kwargs["solver"] = solver
    return agent_cls(**kwargs)


class _Loaded:
    """A data loader holding data already in memory (FloPro's loaders offer ``load()``)."""

    def __init__(self, data: Any) -> None:
        self._data = data

    def load(self) -> Any:
        return self._data

    def snapshot(self, run_id: str) -> None:  # what FloPro's loaders also offer; nothing to do
        pass


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
    """A :class:`~sim.negotiation.protocol.Negotiator` wrapping a FloPro-SDK-style agent."""

    #: a FloPro agent states only the utility of its own last answer: no certificate (sim.negotiation.certificate)
    can_certify = False

    def __init__(self, agent: Any, shape: tuple[int, ...] | None = None, layout: Mapping[str, np.ndarray] | None = None,
                 labels: tuple[list[Any], list[Any], list[Any]] | None = None) -> None:
        """``shape`` and ``layout`` default to what the agent's ``register()`` metadata says
        (:func:`layout_from_metadata`); ``labels``: the ids of the plan's axes over all agents of the
        negotiation (:func:`plan_axes`), so that agents registering different ids agree."""
        self.agent = agent
        metadata = agent.register() or {} if layout is None else {}
        if shape is None:
            if labels is not None:
                shape = tuple(len(a) for a in labels)
            elif metadata:
                shape, labels = plan_axes([metadata])
            else:
                raise ValueError("FloProNegotiator: the agent registers no metadata; give the plan's shape and a layout")
        self.shape = tuple(int(s) for s in shape)
        n = int(np.prod(self.shape))
        if layout is None:
            layout = layout_from_metadata(metadata, self.shape, labels) if metadata else {"x": np.arange(n)}
        self.layout = {str(g): np.asarray(idx, dtype=np.int64).ravel() for g, idx in layout.items()}
        _check_layout(self.layout, n)
        #: the agent's last reported objective (utility, subsidy, proximal), for diagnostics
        self.last_objective: Any = None
        self._last_answer: np.ndarray | None = None

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
        self._last_answer = x.reshape(self.shape)
        return self._last_answer.copy()

    def last_cost(self) -> float:
        """``-utility`` of the agent's last answer (FloPro agents report utility with each answer).
        Diagnostics only: not the agent's cost of any other plan, so not a certificate."""
        if self.last_objective is None:
            raise RuntimeError("no answer yet")
        return -float(self.last_objective.utility)

    def own_cost(self, x: np.ndarray) -> float:
        """``-utility`` of the agent's last answer, which ``x`` must be (anything else raises: a FloPro
        agent cannot cost other plans). Diagnostics only."""
        if self.last_objective is None or self._last_answer is None:
            raise RuntimeError("no answer yet")
        if not np.array_equal(np.asarray(x, dtype=float).reshape(self.shape), self._last_answer):
            raise ValueError("a FloPro agent states only the cost of its own last answer, not of another plan")
        return self.last_cost()
