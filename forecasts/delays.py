"""Stochastic lead times: the random extra delay of each lane's weekly shipment.

All units a lane carries in one week ride the same truck, so they share one delay ``delays[t, l]``
drawn from the lane's distribution. Drawing per (week, lane) rather than per shipment keeps the
random numbers common to all policies: the same truck is late whatever it carries.
"""

from __future__ import annotations

import numpy as np

from sim.model.scenario import Scenario


def draw_delays(s: Scenario, weeks: int, rng: np.random.Generator) -> np.ndarray:
    """Extra delay in whole weeks, ``[weeks, L]`` (integers >= 0)."""
    lanes = s.all_lanes  # the global lane order: vendors in order, each vendor's lanes in order
    out = np.zeros((weeks, len(lanes)), dtype=np.int64)
    # one child stream per lane: lane l's delays of week t depend neither on the run's length nor on
    # the other lanes
    for i, (lane, child) in enumerate(zip(lanes, rng.spawn(len(lanes)))):
        out[:, i] = child.choice(np.asarray(lane.delay.values), size=weeks, p=np.asarray(lane.delay.probs))
    return out


def expected_delay(s: Scenario) -> np.ndarray:
    """Mean extra delay per lane ``[L]``."""
    return np.array([float(np.dot(lane.delay.values, lane.delay.probs)) for lane in s.all_lanes])
