"""FloPro-style stand-in agents: a retailer and a vendor written against the FloPro SDK's agent
contract, for tests, benchmarks and ``flosim negotiate --agents experiments.flopro_standins:pair``.

They are flosim's own code (FloPro's agents need its SDK and a commercial solver), built to behave
like FloPro's simulated ``RetailerAgent`` and ``VendorAgent`` where the adapter can see it:

* ``register()`` returns what FloPro's agents register: one group ``asin_vendor_inbound_periods``
  whose ``var_metadata`` has columns ``asin, vendor_code, inbound_node, week`` with string ids
  (``ASIN_0``, ``V0``, ``NODE_1``), one row per (asin, node) pair and week, asin first;
* ``solve(public_vars, prices, rho)`` *maximises* ``utility + p·x - (rho/2)||x - z||²`` with a
  per-variable ``rho`` and returns ``preferred_vars`` and an ``objective`` (utility, subsidy,
  proximal); nothing else is offered, so like FloPro's agents they cannot certify a plan.

The retailer holds stock and backlog per (asin, node, week): ``inv - back = inv_prev - back_prev +
x - demand``, cost ``holding·inv + backlog_penalty·back`` (FloPro's retailer, lead time 0). The
vendor holds stock per (asin, warehouse, week) between bounds, receives procurement, ships ``x =
sum over warehouses``, cost ``holding·stock + transport·shipments`` (FloPro's vendor). Their answers
come from flosim's OSQP best response (:mod:`sim.negotiation.best_response`) on those LPs.

What a user may do: :func:`pair` (a seeded instance; ``backlog_ratio`` sets the backlog penalty as a
multiple of the mean holding cost), :func:`first_best` (the central optimum of a pair, for
benchmarks), or write their own agents in this style.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sim.negotiation.best_response import BestResponseOptions, LPBestResponse
from sim.model.lp import LPBuilder, solve_lp

GROUP = "asin_vendor_inbound_periods"


@dataclass(frozen=True)
class Objective:
    utility: float
    subsidy: float
    proximal: float


@dataclass
class Solution:
    preferred_vars: dict[str, np.ndarray]
    objective: Objective


@dataclass
class GroupMetadata:
    name: str
    var_metadata: pd.DataFrame


def flopro_metadata(n_asins: int, n_nodes: int, n_weeks: int, vendor_code: str = "V0") -> dict[str, GroupMetadata]:
    """FloPro's registration metadata: one group, rows (asin, vendor_code, inbound_node, week), asin first."""
    rows = [{"asin": f"ASIN_{a}", "vendor_code": vendor_code, "inbound_node": f"NODE_{j}", "week": t}
            for a in range(n_asins) for j in range(n_nodes) for t in range(n_weeks)]
    return {GROUP: GroupMetadata(GROUP, pd.DataFrame(rows))}


class _StandIn:
    """Shared part: an LP cost model over the public variables in FloPro's row order."""

    def __init__(self, dims: tuple[int, int, int], cost_scale: float = 1.0) -> None:
        self.dims = dims
        self.cost_scale = float(cost_scale)
        self._br: LPBestResponse | None = None

    def register(self) -> dict[str, GroupMetadata]:
        return flopro_metadata(*self.dims)

    def lp_and_x(self) -> tuple[Any, np.ndarray]:
        b = LPBuilder()
        x = b.add_var((int(np.prod(self.dims)),))
        self.add_block(b, x)
        return b.build(), x

    def add_block(self, b: LPBuilder, x: np.ndarray) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def solve(self, public_vars: dict[str, np.ndarray], prices: dict[str, np.ndarray], rho: dict[str, np.ndarray]) -> Solution:
        if self._br is None:
            lp, x = self.lp_and_x()
            self._br = LPBestResponse(lp, x, BestResponseOptions(abs_tol=1e-6, rel_tol=1e-8, adaptive=0.0))
        z, p, r = (np.asarray(d[GROUP], dtype=float) for d in (public_vars, prices, rho))
        # maximise utility + p·x - rho/2||x - z||²  <=>  minimise C(x) - p·x + rho/2||x - z||²
        x = np.asarray(self._br.best_response(z, -p, r), dtype=float)
        cost = self._br.own_cost(x)
        return Solution({GROUP: x}, Objective(utility=-cost, subsidy=float(p @ x), proximal=float(r @ (x - z) ** 2) / 2))


class StandInRetailer(_StandIn):
    """FloPro-style retailer: stock and backlog per (asin, node, week); see the module docstring."""

    def __init__(self, demand: np.ndarray, holding: np.ndarray, backlog_penalty: float, initial: np.ndarray,
                 cost_scale: float = 1.0) -> None:
        super().__init__(demand.shape, cost_scale)
        self.demand, self.holding, self.backlog_penalty, self.initial = demand, holding, float(backlog_penalty), initial

    def add_block(self, b: LPBuilder, x: np.ndarray) -> None:
        A, J, T = self.dims
        xs = np.asarray(x).reshape(A, J, T)
        inv, back = b.add_var((A, J, T)), b.add_var((A, J, T))
        rows = b.new_rows("eq", (A, J, T), -self.demand + np.pad(self.initial[:, :, None], ((0, 0), (0, 0), (0, T - 1))))
        b.add_terms("eq", rows, inv, 1.0)
        b.add_terms("eq", rows, back, -1.0)
        b.add_terms("eq", rows, xs, -1.0)
        b.add_terms("eq", rows[:, :, 1:], inv[:, :, :-1], -1.0)
        b.add_terms("eq", rows[:, :, 1:], back[:, :, :-1], 1.0)
        b.add_cost(inv, self.cost_scale * self.holding[:, :, None], ("retailer", "holding", 0))
        b.add_cost(back, self.cost_scale * self.backlog_penalty, ("retailer", "backlog", 0))


class StandInVendor(_StandIn):
    """FloPro-style vendor: stock per (asin, warehouse, week) within bounds, procurement, shipments."""

    def __init__(self, dims: tuple[int, int, int], procure: np.ndarray, initial: np.ndarray, upper: np.ndarray,
                 holding: np.ndarray, transport: np.ndarray, cost_scale: float = 1.0) -> None:
        super().__init__(dims, cost_scale)
        self.procure, self.initial, self.upper, self.holding, self.transport = procure, initial, upper, holding, transport

    def add_block(self, b: LPBuilder, x: np.ndarray) -> None:
        A, J, T = self.dims
        W = self.procure.shape[1]
        xs = np.asarray(x).reshape(A, J, T)
        ship = b.add_var((A, W, J, T))
        stock = b.add_var((A, W, T), 0.0, self.upper)
        # stock[t] = stock[t-1] + procure[t] - sum_j ship[t]   (stock[-1] = initial)
        rows = b.new_rows("eq", (A, W, T), self.procure + np.pad(self.initial[:, :, None], ((0, 0), (0, 0), (0, T - 1))))
        b.add_terms("eq", rows, stock, 1.0)
        b.add_terms("eq", rows[:, :, 1:], stock[:, :, :-1], -1.0)
        b.add_terms("eq", rows[:, :, None, :], ship, 1.0)
        # x[a, j, t] = sum_w ship[a, w, j, t]
        link = b.new_rows("eq", (A, J, T))
        b.add_terms("eq", link, xs, 1.0)
        b.add_terms("eq", link[:, None, :, :], ship, -1.0)
        b.add_cost(stock, self.cost_scale * self.holding[None, :, :], ("vendor", "holding", 0))
        b.add_cost(ship, self.cost_scale * self.transport[None, :, :, :], ("vendor", "transport", 0))


def pair(n_asins: int = 3, n_nodes: int = 2, n_weeks: int = 3, backlog_ratio: float = 200.0, seed: int = 0,
         cost_scale: float = 1.0) -> list[Any]:
    """A seeded retailer-vendor pair in FloPro's style (two warehouses). Holding costs are drawn from
    FloPro's retailer range U(0.006, 0.100); the backlog penalty is ``backlog_ratio`` times their mean
    (FloPro's default of 10 is about 190 times); ``cost_scale`` multiplies every cost of both agents."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xF10]))
    A, J, T, W = n_asins, n_nodes, n_weeks, 2
    base = rng.uniform(20, 200, size=(A, 1, 1)) * rng.dirichlet(np.ones(J), size=A)[:, :, None]
    demand = np.round(base * rng.uniform(0.7, 1.3, size=(A, J, T)), 1)
    holding = rng.uniform(0.006, 0.100, size=(A, J))
    initial_r = np.round(demand[:, :, 0] * rng.uniform(0.0, 0.8, size=(A, J)), 1)
    retailer = StandInRetailer(demand, holding, backlog_ratio * float(holding.mean()), initial_r, cost_scale)
    total = demand.sum(axis=1)  # [A, T]
    procure = np.round(total[:, None, :] * rng.dirichlet(np.ones(W), size=A)[:, :, None] * rng.uniform(0.8, 1.1, size=(A, W, T)), 1)
    initial_v = np.round(total[:, None, 0] * rng.uniform(0.1, 0.3, size=(A, W)), 1)
    upper = np.full((A, W, T), float(total.max()) * 2.0)
    v_hold = rng.uniform(0.005, 0.05, size=(W, T))
    transport = rng.uniform(0.05, 0.5, size=(W, J, 1)) * np.ones((1, 1, T))
    vendor = StandInVendor((A, J, T), procure, initial_v, upper, v_hold, transport, cost_scale)
    return [retailer, vendor]


def first_best(agents: list[Any]) -> float:
    """The central optimum of a stand-in pair (one joint LP): the benchmark a negotiation is judged by."""
    b = LPBuilder()
    x = b.add_var((int(np.prod(agents[0].dims)),))
    for agent in agents:
        agent.add_block(b, x)
    return float(solve_lp(b.build()).objective)


def social_cost(agents: list[Any], plan_flopro_order: np.ndarray) -> float:
    """The pair's total cost of a plan given in FloPro's row order (inf if an agent cannot carry it out)."""
    total = 0.0
    for agent in agents:
        lp, x = agent.lp_and_x()
        sol = solve_lp(lp.with_bounds(x, plan_flopro_order, plan_flopro_order), raise_on_fail=False)
        total += sol.objective if sol.ok else float("inf")
    return total


def adapted(role: int, **pair_args: Any) -> Any:
    """Agent ``role`` (0 retailer, 1 vendor) of :func:`pair` behind the FloPro adapter; a module-level
    factory, so ``functools.partial(adapted, 1, seed=4)`` can build it in its own process
    (:class:`sim.negotiation.best_response.ProcessNegotiator`)."""
    from sim.negotiation.flopro_adapter import FloProNegotiator

    return FloProNegotiator(pair(**pair_args)[role])


def target_rows(ratios: tuple[float, ...] = (100, 300, 1000), scales: tuple[float, ...] = (1e-3, 1.0, 1e3),
                sizes: tuple[tuple[int, int, int], ...] = ((3, 2, 3), (4, 2, 3), (10, 5, 6)), seed: int = 1,
                options: Any = None) -> Iterator[dict[str, Any]]:
    """Negotiate each stand-in pair two ways and judge the plans against the central optimum:
    ``certified`` (the agents' LPs as flosim negotiators, which can certify) and ``flopro`` (the same
    agents behind the FloPro adapter, which cannot: the stop is on residuals). The plan judged is the
    certified plan, or the vendor's last answer (one it can carry out)."""
    from sim.negotiation.coordinator import ADMMOptions, ConsensusADMM
    from sim.negotiation.flopro_adapter import FloProNegotiator, plan_axes

    opts = options or ADMMOptions()
    for ratio in ratios:
        for scale in scales:
            for dims in sizes:
                agents = pair(*dims, backlog_ratio=ratio, seed=seed, cost_scale=scale)
                fb = first_best(agents)
                n = int(np.prod(dims))
                lp_negs = [LPBestResponse(*a.lp_and_x()) for a in agents]
                r = ConsensusADMM(opts).negotiate(lp_negs, (n,))
                plan = r.certified_plan if r.certified_plan is not None else np.asarray(r.answers[1])
                yield ({"route": "certified", "backlog_ratio": ratio, "scale": scale, "size": "x".join(map(str, dims)),
                             "status": r.status, "rounds": r.iterations, "gap_bound": r.gap_bound,
                             "gap": (social_cost(agents, plan.ravel()) - fb) / abs(fb), "wall_s": r.wall_s})
                shape, labels = plan_axes([a.register() for a in agents])
                negs = [FloProNegotiator(a, labels=labels) for a in agents]
                r = ConsensusADMM(opts).negotiate(negs, shape)
                plan = np.asarray(r.answers[1]).ravel()[negs[1].layout[GROUP]]
                yield ({"route": "flopro", "backlog_ratio": ratio, "scale": scale, "size": "x".join(map(str, dims)),
                             "status": r.status, "rounds": r.iterations, "gap_bound": r.gap_bound,
                             "gap": (social_cost(agents, plan) - fb) / abs(fb), "wall_s": r.wall_s})


if __name__ == "__main__":  # python -m experiments.flopro_standins: the stand-in targets table
    for row in target_rows():
        print("  ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
