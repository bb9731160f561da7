"""Random inputs as declared streams: the same seed draws the same numbers as before streams were
declared, and a new stream is one declaration (drawn reproducibly, written to a trace, read back)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).parent / "data"
sys.path.insert(0, str(DATA))
from make_inputs_golden import draw_all  # noqa: E402


def test_draws_equal_those_made_before_streams_were_declared():
    """Every array of tests/data/inputs_golden.npz (drawn by main at 9f80133, before this change),
    bit for bit: same child seeds, same order, same dtype, for a v1 and a v2 scenario, the pilot, a
    deterministic run, a cool-down and the policies' generators."""
    stored = np.load(DATA / "inputs_golden.npz")
    drawn = draw_all()
    assert sorted(drawn) == sorted(stored.files)
    for key in stored.files:
        assert drawn[key].dtype == stored[key].dtype and drawn[key].shape == stored[key].shape, key
        assert drawn[key].tobytes() == stored[key].tobytes(), key
