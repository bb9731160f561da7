"""Agents written for the amzn/FloPro SDK contract plug into the coordinator through the adapter.

The agent below is written in that style (maximises ``utility + p·x - (rho/2)||x - z||²``, answers
``preferred_vars`` per public-variable group, registers group metadata as a table); it is our own
test double, not SDK code."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from experiments.flopro_standins import GroupMetadata as GroupMeta, Objective, Solution
from sim.negotiation.coordinator import ADMMOptions, ConsensusADMM
from sim.negotiation.flopro_adapter import FloProNegotiator, layout_from_metadata

SHAPE = (2, 2, 3)  # weeks, FCs, products


class FloProStyleBuyer:
    """Utility ``sum(value * x) - sum(cost * x)`` for ``0 <= x <= cap``, one group per FC."""

    def __init__(self, value: np.ndarray, cap: np.ndarray) -> None:
        self.value, self.cap = value, cap  # [H, F, K]

    def register(self) -> dict[str, GroupMeta]:
        H, F, K = SHAPE
        out = {}
        for f in range(F):
            rows = [(t, f, k) for k in range(K) for t in range(H)]  # deliberately not C order
            out[f"fc{f}"] = GroupMeta(f"fc{f}", pd.DataFrame(rows, columns=["week", "fc", "product"]))
        return out

    def solve(self, public_vars, prices, rho) -> Solution:
        meta = self.register()
        preferred, utility, subsidy, proximal = {}, 0.0, 0.0, 0.0
        for g, z in public_vars.items():
            m = meta[g].var_metadata
            idx = (m["week"].to_numpy(), m["fc"].to_numpy(), m["product"].to_numpy())
            v, cap = self.value[idx], self.cap[idx]
            # argmax v·x + p·x - rho/2 ||x - z||² over the box
            x = np.clip(z + (v + prices[g]) / rho[g], 0.0, cap)
            preferred[g] = x
            utility += float(v @ x)
            subsidy += float(prices[g] @ x)
            proximal += float(rho[g] @ (x - z) ** 2) / 2
        return Solution(preferred, Objective(utility, subsidy, proximal))


class Seller:
    """flosim-style negotiator: cost ``c·x``, ``0 <= x <= cap`` (minimisation form)."""

    def __init__(self, cost: np.ndarray, cap: np.ndarray) -> None:
        self.cost, self.cap = cost, cap

    def best_response(self, z, prices, rho):
        return np.clip(z - (self.cost + prices) / rho, 0.0, self.cap)


def test_adapter_matches_minimisation_form() -> None:
    rng = np.random.default_rng(0)
    value, cap = rng.uniform(1, 3, SHAPE), rng.uniform(1, 5, SHAPE)
    adapted = FloProNegotiator(FloProStyleBuyer(value, cap), SHAPE)
    z, y, rho = rng.uniform(0, 4, SHAPE), rng.normal(size=SHAPE), 0.7
    # our form with C = -utility: argmin -value·x + y·x + rho/2||x - z||²
    expected = np.clip(z - (-value + y) / rho, 0.0, cap)
    np.testing.assert_allclose(adapted.best_response(z, y, rho), expected)
    assert adapted.own_cost(expected) == pytest.approx(-float(np.sum(value * expected)))


def test_flopro_agent_negotiates_with_a_flosim_agent() -> None:
    rng = np.random.default_rng(1)
    value = rng.uniform(1, 3, SHAPE)
    cost = rng.uniform(1, 3, SHAPE)
    cap_b, cap_s = rng.uniform(1, 5, SHAPE), rng.uniform(1, 5, SHAPE)
    agents = [FloProNegotiator(FloProStyleBuyer(value, cap_b), SHAPE), Seller(cost, cap_s)]
    result = ConsensusADMM(ADMMOptions(eps_abs=1e-7, eps_rel=1e-7, max_iter=3000)).negotiate(agents, SHAPE)
    assert result.agreed and result.status == "stopped_on_residuals"  # a FloPro agent cannot certify
    # optimum: trade up to the smaller cap wherever value exceeds cost
    expected = np.where(value > cost, np.minimum(cap_b, cap_s), 0.0)
    np.testing.assert_allclose(result.z, expected, atol=1e-4)
    # FloPro's price convention p = -y: the buyer is paid a negative price (it pays) for what it buys
    p = -result.prices[0]
    assert np.all(p[expected > 0] <= 1e-6)
    np.testing.assert_allclose(result.prices[0] + result.prices[1], 0.0, atol=1e-9)


def test_layout_needs_plan_axes() -> None:
    with pytest.raises(ValueError, match="columns"):
        layout_from_metadata({"g": GroupMeta("g", pd.DataFrame({"a": [0]}))}, SHAPE)
    with pytest.raises(ValueError, match="twice"):
        layout_from_metadata({"g": GroupMeta("g", pd.DataFrame({"t": [0, 0], "f": [0, 0], "k": [0, 0]}))}, SHAPE)
