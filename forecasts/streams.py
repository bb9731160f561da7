"""The record of one run's random inputs, shared by drawing (:mod:`forecasts.inputs`) and traces
(:mod:`forecasts.traces`).

:class:`WorldInputs` is what the world consumes each week: realised demand, the forecasts the
retailer sees, the forecast uncertainty left in them, and lane delays. Drawn inputs and a recorded
trace both produce one, so the world cannot tell them apart; this module holds only the record, so
that the code that draws inputs and the code that reads and writes traces both stand on it without
importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class WorldInputs:
    demand: np.ndarray  # [T, R, K] realised demand
    forecasts: np.ndarray  # [T, H, R, K] forecast made in week t for week t+j
    forecast_sd: np.ndarray  # [T, H, R, K] unresolved standard deviation of those forecasts
    delays: np.ndarray  # [T, L] extra delay of lane l's shipment of week t

    @property
    def weeks(self) -> int:
        return self.demand.shape[0]

    def same_as(self, other: "WorldInputs") -> bool:
        return all(
            np.array_equal(getattr(self, n), getattr(other, n)) for n in ("demand", "forecasts", "forecast_sd", "delays")
        )
