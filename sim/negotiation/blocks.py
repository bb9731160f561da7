"""Which part of the plan each agent of a negotiation holds: agent blocks and their stacked layout.

In a CPP negotiation every agent may own only part of the global plan: the retailer the whole plan
``x[V, H, F, K]``, vendor ``v`` only its own block ``x[v]``. Agent ``i``'s block is a numpy *basic
index* ``blocks[i]`` into an array of the plan's shape: an int, a slice, a tuple of ints and slices
(``...`` allowed), or None for the whole plan. Agent ``i`` is shown ``z[blocks[i]]`` and its own
prices, both in its block's shape, and answers in that shape; it never sees another component.

:class:`BlockLayout` turns the blocks into the coordinator's working form: one *stacked* vector of
every agent's components, agent after agent, each in C order of its block, with ``index`` saying
which global component each stacked entry is. The consensus plan of a component is the mean over
the agents holding it (``np.bincount`` with weights). When every agent holds the whole plan the
stacked form is the ``[N, n]`` array of earlier versions and the mean is ``mean(axis=0)``, so a
negotiation without blocks computes exactly what it computed before (bit for bit).

What a user may do: pass ``blocks=[None, 0, 1]`` (say) to
:meth:`sim.negotiation.coordinator.ConsensusADMM.negotiate`, :func:`sim.negotiation.certificate.certify` or
:meth:`sim.negotiation.certificate.Certifier.for_agents`; ``BlockLayout.of(shape, n_agents, blocks)`` checks
blocks (an index that does not fit the plan, a block that selects nothing or a component no agent
holds is a ``ValueError`` naming it); :func:`block_to_json` / :func:`block_from_json` write a block
in a transcript's metadata.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Union

import numpy as np

Block = Union[int, slice, "tuple[int | slice, ...]", None]


def _check_basic(block: Any, where: str) -> None:
    parts = block if isinstance(block, tuple) else (block,)
    for p in parts:
        if p is Ellipsis:
            continue
        if isinstance(p, (bool, np.bool_)) or not isinstance(p, (int, np.integer, slice)):
            raise ValueError(f"{where} = {block!r}: not a basic index (an int, a slice or a tuple of them)")
        if isinstance(p, slice):
            for v in (p.start, p.stop, p.step):
                if v is not None and (isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer))):
                    raise ValueError(f"{where} = {block!r}: slice bounds must be ints or None")


def norm(a: np.ndarray) -> float:
    """The Euclidean norm of all of ``a``'s entries, without BLAS. ``np.linalg.norm`` calls BLAS's dot,
    which OpenBLAS runs on several threads from 10,000 entries on; its threads then spin for a while
    (tens of milliseconds) waiting for more work, so a coordinator taking a few norms a round kept a
    core busy the whole negotiation, the core its agents' processes answer on (measured on the pilot
    benchmark, two cores: 4 of the coordinator's 6 CPU seconds). Also the same bits on any machine
    (a threaded dot sums in an order that depends on the thread count)."""
    a = np.asarray(a, dtype=float)
    return float(np.sqrt(np.sum(np.square(a))))


@dataclass(frozen=True)
class BlockLayout:
    """The agents' blocks of a plan of shape ``shape`` and the stacked layout of their components.

    ``flat[i]``: global (C-order) indices of agent ``i``'s components in the C order of its block;
    ``block_shapes[i]``: its block's shape; ``index``: all ``flat`` concatenated (the stacked
    layout); ``offsets``: where each agent's entries start in it; ``holders``: agents per component;
    ``full``: every agent holds every component in plan order (the stacked form is then ``[N, n]``)."""

    shape: tuple[int, ...]
    blocks: tuple[Block, ...]
    flat: tuple[np.ndarray, ...]
    block_shapes: tuple[tuple[int, ...], ...]
    index: np.ndarray
    offsets: np.ndarray
    holders: np.ndarray
    full: bool

    @classmethod
    def of(cls, shape: Sequence[int], n_agents: int, blocks: Sequence[Block] | None = None) -> "BlockLayout":
        """The layout of ``blocks`` (None: every agent holds the whole plan); ``ValueError`` naming the
        agent for a block that is not a basic index, does not fit ``shape`` or selects nothing, and
        naming the components for those no agent holds."""
        shape = tuple(int(s) for s in shape)
        n = int(np.prod(shape))
        if blocks is None:
            blocks = [None] * n_agents
        blocks = tuple(blocks)
        if len(blocks) != n_agents:
            raise ValueError(f"blocks: {len(blocks)} blocks for {n_agents} agents (one block per agent, None = the whole plan)")
        grid = np.arange(n, dtype=np.int64).reshape(shape)
        flat, shapes = [], []
        for i, b in enumerate(blocks):
            if b is None:
                sel = grid
            else:
                _check_basic(b, f"blocks[{i}]")
                try:
                    sel = grid[b]
                except IndexError as exc:
                    raise ValueError(f"blocks[{i}] = {b!r} does not fit the plan's shape {shape}: {exc}") from None
            if sel.size == 0:
                raise ValueError(f"blocks[{i}] = {b!r} selects no component of the plan (shape {shape})")
            flat.append(np.ascontiguousarray(sel).ravel())
            shapes.append(tuple(int(s) for s in np.shape(sel)))
        index = np.concatenate(flat) if flat else np.zeros(0, dtype=np.int64)
        holders = np.bincount(index, minlength=n)
        if np.any(holders == 0):
            idle = np.flatnonzero(holders == 0)
            shown = ", ".join(str(tuple(int(c) for c in np.unravel_index(j, shape))) for j in idle[:5])
            more = f" and {idle.size - 5} more" if idle.size > 5 else ""
            raise ValueError(f"blocks: {idle.size} of the plan's {n} components are held by no agent: {shown}{more}")
        arange = np.arange(n)
        full = all(f.size == n and np.array_equal(f, arange) for f in flat)
        offsets = np.concatenate([[0], np.cumsum([f.size for f in flat])]).astype(np.int64)
        return cls(shape=shape, blocks=blocks, flat=tuple(flat), block_shapes=tuple(shapes), index=index,
                   offsets=offsets, holders=holders.astype(float), full=full)

    @property
    def n_agents(self) -> int:
        return len(self.flat)

    @property
    def n(self) -> int:
        """Components of the global plan."""
        return int(np.prod(self.shape))

    @property
    def m(self) -> int:
        """Agent components in all (``N n`` when every agent holds the whole plan)."""
        return int(self.index.size)

    @property
    def stacked_shape(self) -> tuple[int, ...]:
        return (self.n_agents, self.n) if self.full else (self.m,)

    def zeros(self) -> np.ndarray:
        """A stacked array of zeros."""
        return np.zeros(self.stacked_shape)

    def spread(self, z: np.ndarray) -> np.ndarray:
        """The global flat ``z`` where each stacked entry's component is (broadcasts against a stacked array)."""
        return z if self.full else z[self.index]

    def mean(self, stacked: np.ndarray) -> np.ndarray:
        """Each global component's mean over the agents holding it."""
        if self.full:
            return stacked.mean(axis=0)
        return np.bincount(self.index, weights=stacked, minlength=self.n) / self.holders

    def spread_norm(self, z: np.ndarray) -> float:
        """``||z restricted to each agent, stacked||`` (``sqrt(N) ||z||`` when every agent holds it all)."""
        if self.full:
            return float(np.sqrt(self.n_agents)) * norm(z)
        return norm(z[self.index])

    def part(self, stacked: np.ndarray, i: int) -> np.ndarray:
        """Agent ``i``'s entries of a stacked array, in its block's shape (a view)."""
        flat = stacked[i] if self.full else stacked[self.offsets[i]:self.offsets[i + 1]]
        return flat.reshape(self.block_shapes[i])

    def take(self, plan: np.ndarray, i: int) -> np.ndarray:
        """Agent ``i``'s block of a global plan (the plan itself for a whole-plan agent)."""
        plan = np.asarray(plan)
        if plan.shape != self.shape:
            plan = plan.reshape(self.shape)
        b = self.blocks[i]
        return plan if b is None else plan[b]

    def stack(self, arrays: Sequence[np.ndarray], what: str) -> np.ndarray:
        """Per-agent arrays (each of its block's size) as one stacked array; ``ValueError`` naming the
        agent whose array has the wrong size."""
        if len(arrays) != self.n_agents:
            raise ValueError(f"{what}: {len(arrays)} arrays for {self.n_agents} agents")
        parts = []
        for i, a in enumerate(arrays):
            a = np.asarray(a, dtype=float)
            if a.size != self.flat[i].size:
                raise ValueError(f"{what}[{i}] has shape {a.shape}; agent {i}'s block has shape {self.block_shapes[i]}")
            parts.append(a.ravel())
        return np.array(parts) if self.full else np.concatenate(parts)

    def center(self, stacked: np.ndarray) -> np.ndarray:
        """Subtract from every entry the mean over its component's holders: the prices then sum to zero
        over the agents holding each component."""
        return stacked - self.spread(self.mean(stacked))

    def json_blocks(self) -> list[Any]:
        return [block_to_json(b) for b in self.blocks]


def block_to_json(block: Block) -> Any:
    """A block as JSON: None (the whole plan), an int, ``{"slice": [start, stop, step]}``, ``"..."``,
    or a list of those for a tuple."""
    if block is None:
        return None
    if isinstance(block, tuple):
        return [block_to_json(b) for b in block]
    if block is Ellipsis:
        return "..."
    if isinstance(block, slice):
        return {"slice": [None if v is None else int(v) for v in (block.start, block.stop, block.step)]}
    return int(block)


def block_from_json(value: Any) -> Block:
    """The inverse of :func:`block_to_json`."""
    if value is None:
        return None
    if isinstance(value, list):
        return tuple(block_from_json(v) for v in value)
    if value == "...":
        return Ellipsis
    if isinstance(value, dict):
        return slice(*value["slice"])
    return int(value)
