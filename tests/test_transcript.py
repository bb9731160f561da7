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
