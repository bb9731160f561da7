"""Store a few runs' random inputs, drawn by the code of the day, as ``tests/data/inputs_golden.npz``
(run from the repository root: ``python tests/data/make_inputs_golden.py``).

Each run stores its resolved scenario (YAML text, under ``KEY/scenario``) beside its arrays, so
``tests/test_streams.py`` draws the same runs from the same scenarios (whatever later edits to the
built-in ones) and compares every array bit for bit: a change to how streams are declared, spawned or
drawn cannot silently change a seed's inputs. The stored file was made by main at 9f80133, before
random inputs became declared streams; regenerate it only after a deliberate change to the draws,
and say why in the commit message.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE.parents[1]) not in sys.path:
    sys.path.insert(1, str(HERE.parents[1]))

STREAMS = ("demand", "forecasts", "forecast_sd", "delays")
#: (key, built-in scenario, weeks, seed, overrides, cool-down weeks)
RUNS = (
    ("default", "default", 4, None, {}, 0),
    ("default_seed7", "default", 3, 7, {}, 0),
    ("default_settle", "default", 3, None, {}, 4),
    ("deterministic", "default", 2, None, {"demand.deterministic": True}, 0),
    ("two_vendors", "two-vendors", 3, None, {}, 0),
    ("pilot", "pilot", 2, None, {}, 0),
)
POLICY_DRAWS = ((7, 0), (7, 3), (20190506, 2))


def scenario_texts() -> dict[str, str]:
    """The resolved scenario of each run, as YAML text (from the built-in scenarios)."""
    from sim.model.scenario import dump_scenario, load_scenario

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for key, name, weeks, seed, overrides, _ in RUNS:
            s = load_scenario(name).with_overrides({**overrides, "weeks": weeks, **({} if seed is None else {"seed": seed})})
            dump_scenario(s, Path(tmp) / f"{key}.yaml")
            out[key] = (Path(tmp) / f"{key}.yaml").read_text()
    return out


def draw_all(texts: dict[str, str]) -> dict[str, np.ndarray]:
    """Every run's streams (after its cool-down, if any) and a few policy generators' draws."""
    import yaml

    from forecasts.inputs import draw_inputs, policy_rng, settle_inputs
    from sim.model.scenario import scenario_from_dict

    out: dict[str, np.ndarray] = {}
    for key, _name, weeks, _seed, _overrides, settle in RUNS:
        s = scenario_from_dict(yaml.safe_load(texts[key]))
        inputs = draw_inputs(s)
        if settle:
            inputs = settle_inputs(inputs, weeks, settle)
        for stream in STREAMS:
            out[f"{key}/{stream}"] = getattr(inputs, stream)
    for seed, week in POLICY_DRAWS:
        out[f"policy_rng/{seed}/{week}"] = policy_rng(seed, week).random(4)
    return out


if __name__ == "__main__":
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "inputs_golden.npz"
    texts = scenario_texts()
    arrays = draw_all(texts)
    np.savez_compressed(path, **arrays, **{f"{k}/scenario": np.array(t) for k, t in texts.items()})
    print(f"wrote {path} ({path.stat().st_size} bytes)")
