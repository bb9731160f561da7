"""The transcript of a CPP negotiation: everything that ever left an agent, and what it was asked.

Each round the coordinator sends every agent its part of the consensus plan ``z``, that agent's
prices and the penalty ``rho``, and receives its answer. A :class:`Transcript` records, per round,
the global ``z``, each agent's prices and answer, ``rho`` and the primal/dual residuals. It is the
object to inspect when auditing what a mechanism revealed (docs/model.md, "Metrics", privacy): the
agents' cost models never appear in it.

Agents may hold only part of the plan (``blocks``, :mod:`sim.negotiation.blocks`). Agent ``i``'s
prices and answers are then in its block's shape, and it was shown ``z[blocks[i]]`` only:
:meth:`Transcript.shown` rebuilds exactly what it was shown in a round, :meth:`Transcript.held` the
global components it held. Without blocks (every agent holds the whole plan) ``blocks`` is None.

Storage is one tidy Parquet table (pyarrow), one row per ``(iteration, agent, array)`` with the array
flattened in C order into a ``float64`` list column; ``agent = -1`` rows hold the coordinator's
``z`` and the round's scalars (``rho``, ``primal``, ``dual`` as one-element arrays). The plan shape
is stored in the file's metadata (``flosim.transcript``: ``{"shape", "n_agents", "version": 1}``).
With blocks the metadata also holds ``"blocks"``, one entry per agent in the JSON form of
:func:`sim.negotiation.blocks.block_to_json` (null: the whole plan; an int; ``{"slice": [start, stop,
step]}``; a list of those for a tuple index), and ``"version": 2``; a transcript without blocks is
written exactly as before, so earlier readers keep reading it. :meth:`Transcript.load` rebuilds an
object equal to the saved one (:meth:`Transcript.equals` compares bit for bit).

What a user may do: ``ConsensusADMM(ADMMOptions(record_transcript=True))``, then
``result.transcript.save("t.parquet")``, ``Transcript.load("t.parquet")``, ``transcript.to_frame()``
(a pandas frame in the same long format) or ``transcript.array(round, agent, "answer")``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sim.negotiation.blocks import BlockLayout, block_from_json

COORDINATOR = -1
ARRAYS = ("z", "prices", "answer", "rho", "primal", "dual")


@dataclass
class Transcript:
    """Rounds of a negotiation; see the module docstring."""

    shape: tuple[int, ...]
    n_agents: int
    rows: list[tuple[int, int, str, np.ndarray]] = field(default_factory=list)
    #: each agent's block in JSON form (:func:`sim.negotiation.blocks.block_to_json`); None: all hold the whole plan
    blocks: list | None = None

    def _layout(self) -> BlockLayout:
        blocks = None if self.blocks is None else [block_from_json(b) for b in self.blocks]
        return BlockLayout.of(self.shape, self.n_agents, blocks)

    def record(self, iteration: int, z: np.ndarray, prices: np.ndarray, rho: float, answers: np.ndarray, primal: float, dual: float) -> None:
        """Append one round: ``z`` global; ``prices[i]`` and ``answers[i]`` agent ``i``'s (its block's shape)."""
        self.rows.append((iteration, COORDINATOR, "z", np.array(z, dtype=float).ravel()))
        for name, value in (("rho", rho), ("primal", primal), ("dual", dual)):
            self.rows.append((iteration, COORDINATOR, name, np.array(value, dtype=float).ravel()))
        for i in range(self.n_agents):
            self.rows.append((iteration, i, "prices", np.array(prices[i], dtype=float).ravel()))
            self.rows.append((iteration, i, "answer", np.array(answers[i], dtype=float).ravel()))

    @property
    def iterations(self) -> int:
        return max((r[0] for r in self.rows), default=0)

    def array(self, iteration: int, agent: int, name: str) -> np.ndarray:
        """One recorded array: ``z`` in the plan's shape, an agent's ``prices`` and ``answer`` in its
        block's shape, scalars as 0-d arrays."""
        for it, a, nm, values in self.rows:
            if it == iteration and a == agent and nm == name:
                if name in ("prices", "answer") and a != COORDINATOR:
                    return values.reshape(self.block_shape(a))
                return values.reshape(self.shape) if values.size > 1 or name == "z" else values.reshape(())
        raise KeyError((iteration, agent, name))

    def block_shape(self, agent: int) -> tuple[int, ...]:
        """The shape of ``agent``'s block (the plan's shape without blocks)."""
        return self.shape if self.blocks is None else self._layout().block_shapes[agent]

    def held(self, agent: int) -> np.ndarray:
        """The global components ``agent`` held: their flat (C-order) indices in the plan, in the
        order of its block's entries."""
        return self._layout().flat[agent].copy()

    def shown(self, iteration: int, agent: int) -> dict[str, np.ndarray]:
        """What ``agent`` was shown in round ``iteration``: its part of ``z``, its prices and ``rho``."""
        z = self.array(iteration, COORDINATOR, "z").ravel()[self.held(agent)].reshape(self.block_shape(agent))
        return {"z": z, "prices": self.array(iteration, agent, "prices"), "rho": self.array(iteration, COORDINATOR, "rho")}

    def to_table(self) -> pa.Table:
        values = pa.array([r[3] for r in self.rows], type=pa.list_(pa.float64()))
        table = pa.table(
            {
                "iteration": pa.array([r[0] for r in self.rows], type=pa.int32()),
                "agent": pa.array([r[1] for r in self.rows], type=pa.int32()),
                "array": pa.array([r[2] for r in self.rows], type=pa.string()),
                "values": values,
            }
        )
        info: dict = {"shape": list(self.shape), "n_agents": self.n_agents, "version": 1}
        if self.blocks is not None:
            info.update(version=2, blocks=list(self.blocks))
        meta = {"flosim.transcript": json.dumps(info)}
        return table.replace_schema_metadata(meta)

    def to_frame(self):  # -> pandas.DataFrame
        """The long table as a pandas frame (``values`` holds numpy arrays)."""
        return self.to_table().to_pandas()

    def save(self, path: str | Path) -> Path:
        """Write the transcript as Parquet; returns the path."""
        path = Path(path)
        pq.write_table(self.to_table(), path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Transcript":
        """Read a transcript written by :meth:`save`."""
        table = pq.read_table(path)
        meta = json.loads((table.schema.metadata or {}).get(b"flosim.transcript", b"{}"))
        if "shape" not in meta:
            raise ValueError(f"{path}: not a flosim transcript (no 'flosim.transcript' metadata)")
        cols = table.to_pydict()
        flat = table.column("values").combine_chunks()
        offsets = flat.offsets.to_numpy()
        data = flat.values.to_numpy(zero_copy_only=False)
        rows = [
            (int(it), int(a), str(nm), np.array(data[offsets[j] : offsets[j + 1]], dtype=float))
            for j, (it, a, nm) in enumerate(zip(cols["iteration"], cols["agent"], cols["array"], strict=True))
        ]
        return cls(shape=tuple(meta["shape"]), n_agents=int(meta["n_agents"]), rows=rows, blocks=meta.get("blocks"))

    def equals(self, other: "Transcript") -> bool:
        """Bit-for-bit equality (NaNs compare equal)."""
        if (self.shape != other.shape or self.n_agents != other.n_agents or self.blocks != other.blocks
                or len(self.rows) != len(other.rows)):
            return False
        for (i1, a1, n1, v1), (i2, a2, n2, v2) in zip(self.rows, other.rows, strict=True):
            if (i1, a1, n1) != (i2, a2, n2) or v1.shape != v2.shape or not np.array_equal(v1, v2, equal_nan=True):
                return False
        return True

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Transcript) and self.equals(other)
