"""Transcripts: everything that left an agent, saved to Parquet and reloaded identically."""

from __future__ import annotations

import numpy as np
import pytest

from sim.negotiation.best_response import negotiator_for
from sim.negotiation.coordinator import ADMMOptions, ConsensusADMM
from sim.negotiation.transcript import COORDINATOR, Transcript
from sim.world import planning_context


def test_saved_transcript_reloads_identically(default_scenario, tmp_path) -> None:
    ctx = planning_context(default_scenario, week=0)
    retailer, vendor = ctx.retailer, ctx.vendor
    # the retailer holds the whole plan (1, H, F, K), the one vendor its block x[0]
    result = ConsensusADMM(ADMMOptions(record_transcript=True)).negotiate(
        [negotiator_for(retailer), negotiator_for(vendor)], retailer.public.shape, blocks=[None, 0]
    )
    t = result.transcript
    assert t is not None and t.iterations == result.iterations
    path = t.save(tmp_path / "t.parquet")
    back = Transcript.load(path)
    assert back == t and back.equals(t)
    assert back.shape == retailer.public.shape and back.n_agents == 2 and back.blocks == [None, 0]
    assert back.block_shape(1) == retailer.public.block_shape
    # the last round's answers are the result's answers
    np.testing.assert_array_equal(back.array(result.iterations, 1, "answer"), result.answers[1])
    assert float(back.array(1, COORDINATOR, "rho")) > 0
    frame = back.to_frame()
    assert set(frame.columns) == {"iteration", "agent", "array", "values"}
    assert set(frame["array"]) == {"z", "prices", "answer", "rho", "primal", "dual"}
    # a changed value is noticed
    it, a, name, values = back.rows[5]
    back.rows[5] = (it, a, name, values + 1e-12)
    assert not back.equals(t)


def test_load_rejects_other_parquet(tmp_path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"a": [1]}), tmp_path / "x.parquet")
    with pytest.raises(ValueError):
        Transcript.load(tmp_path / "x.parquet")


class _Quadratic:
    def __init__(self, a: float, b: np.ndarray) -> None:
        self.a, self.b = a, b

    def best_response(self, z, prices, rho):
        return (self.a * self.b - prices + rho * z) / (self.a + rho)


def test_a_transcript_with_blocks_says_what_each_agent_held_and_was_shown(tmp_path) -> None:
    import json

    import pyarrow.parquet as pq

    shape, blocks = (2, 3), [None, 0, (1, slice(0, 2))]
    rng = np.random.default_rng(1)
    grid = np.zeros(shape)
    agents = [_Quadratic(a, rng.normal(size=grid[b].shape if b is not None else shape)) for a, b in zip((1.0, 2.0, 3.0), blocks, strict=True)]
    result = ConsensusADMM(ADMMOptions(rho=1.0, record_transcript=True)).negotiate(agents, shape, blocks=blocks)
    t = result.transcript
    back = Transcript.load(t.save(tmp_path / "t.parquet"))
    assert back == t and back.blocks == [None, 0, [1, {"slice": [0, 2, None]}]]
    meta = json.loads(pq.read_table(tmp_path / "t.parquet").schema.metadata[b"flosim.transcript"])
    assert meta["version"] == 2 and meta["blocks"] == back.blocks
    assert [back.block_shape(i) for i in range(3)] == [(2, 3), (3,), (2,)]
    assert back.held(0).tolist() == list(range(6)) and back.held(1).tolist() == [0, 1, 2] and back.held(2).tolist() == [3, 4]
    k = result.iterations
    np.testing.assert_array_equal(back.array(k, 2, "answer"), result.answers[2])
    assert back.array(k, 1, "prices").shape == (3,)
    shown = back.shown(k, 2)
    np.testing.assert_array_equal(shown["z"], back.array(k, COORDINATOR, "z")[1, :2])
    np.testing.assert_array_equal(shown["prices"], back.array(k, 2, "prices"))
    # a round's rows: each agent's arrays have its block's size
    sizes = {(a, name): v.size for it, a, name, v in back.rows if it == 1}
    assert sizes[(COORDINATOR, "z")] == 6 and sizes[(1, "answer")] == 3 and sizes[(2, "prices")] == 2


def test_a_transcript_without_blocks_keeps_the_earlier_format(tmp_path) -> None:
    import json

    import pyarrow.parquet as pq

    agents = [_Quadratic(1.0, np.ones((2, 3))), _Quadratic(2.0, np.zeros((2, 3)))]
    result = ConsensusADMM(ADMMOptions(rho=1.0, record_transcript=True)).negotiate(agents, (2, 3), blocks=[None, None])
    path = result.transcript.save(tmp_path / "t.parquet")
    meta = json.loads(pq.read_table(path).schema.metadata[b"flosim.transcript"])
    assert meta == {"shape": [2, 3], "n_agents": 2, "version": 1}
    assert Transcript.load(path).blocks is None
