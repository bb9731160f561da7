"""Store a few runs' random inputs, drawn by the code of the day, as ``tests/data/inputs_golden.npz``
(run from the repository root: ``python tests/data/make_inputs_golden.py``).

``tests/test_streams.py`` draws the same runs and compares every array bit for bit, so a change to how
streams are declared, spawned or drawn cannot silently change a seed's inputs. The stored file was
made before random inputs became declared streams (main at 9f80133); regenerate it only after a
deliberate change to the draws, and say why in the commit message.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE.parents[1]) not in sys.path:
    sys.path.insert(1, str(HERE.parents[1]))

STREAMS = ("demand", "forecasts", "forecast_sd", "delays")
#: (key, scenario, weeks, seed, overrides)
RUNS = (
    ("default", "default", 4, None, {}),
    ("default_seed7", "default", 3, 7, {}),
    ("default_settle", "default", 3, None, {}),  # then settle_inputs(..., 3, 4)
    ("deterministic", "default", 2, None, {"demand.deterministic": True}),
    ("two_vendors", "two-vendors", 3, None, {}),
    ("pilot", "pilot", 2, None, {}),
)
POLICY_DRAWS = ((7, 0), (7, 3), (20190506, 2))


def draw_all() -> dict[str, np.ndarray]:
    from forecasts.inputs import draw_inputs, policy_rng, settle_inputs
    from sim.model.scenario import load_scenario

    out: dict[str, np.ndarray] = {}
    for key, name, weeks, seed, overrides in RUNS:
        s = load_scenario(name)
        if overrides:
            s = s.with_overrides(overrides)
        inputs = draw_inputs(s, weeks=weeks, seed=seed)
        if key == "default_settle":
            inputs = settle_inputs(inputs, weeks, 4)
        for stream in STREAMS:
            out[f"{key}/{stream}"] = getattr(inputs, stream)
    for seed, week in POLICY_DRAWS:
        out[f"policy_rng/{seed}/{week}"] = policy_rng(seed, week).random(4)
    return out


if __name__ == "__main__":
    path = HERE / "inputs_golden.npz"
    np.savez_compressed(path, **draw_all())
    print(f"wrote {path} ({path.stat().st_size} bytes)")
