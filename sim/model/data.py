"""A scenario split into what is public and what each party keeps private, as numpy arrays.

* :class:`PublicData`: names and sizes, FC lead times and wholesale prices: what both parties and
  every policy may read.
* :class:`RetailerData`: the retailer's private costs (receiving, holding, outbound, lost sales).
* :class:`VendorData`: the vendor's private costs and capacities (production, lanes, origins).

Index order everywhere: weeks ``t``/``tau``, FCs ``f``, regions ``r``, products ``k``, origins ``o``,
lanes ``l``. A plan ``x`` has shape ``(H, F, K)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.model.scenario import Scenario


@dataclass(frozen=True)
class PublicData:
    products: tuple[str, ...]
    fcs: tuple[str, ...]
    regions: tuple[str, ...]
    horizon: int
    lead_time: np.ndarray  # [F] nominal weeks from shipment to arrival
    wholesale: np.ndarray  # [K]
    volume: np.ndarray  # [K]
    receiving_capacity: np.ndarray  # [F], inf if none
    backlog: bool

    @property
    def shape(self) -> tuple[int, int, int]:
        """Shape of a plan: (H, F, K)."""
        return (self.horizon, len(self.fcs), len(self.products))

    @property
    def K(self) -> int:
        return len(self.products)

    @property
    def F(self) -> int:
        return len(self.fcs)

    @property
    def R(self) -> int:
        return len(self.regions)


@dataclass(frozen=True)
class RetailerData:
    receiving: np.ndarray  # [F]
    holding: np.ndarray  # [K]
    penalty: np.ndarray  # [K]
    outbound: np.ndarray  # [F, R], inf where an FC cannot serve a region
    terminal_value: float
    initial_stock: np.ndarray  # [F, K]


@dataclass(frozen=True)
class VendorData:
    origins: tuple[str, ...]
    capacity: np.ndarray  # [O]
    production: np.ndarray  # [O, K]
    holding: np.ndarray  # [O]
    initial_stock: np.ndarray  # [O, K]
    lane_origin: np.ndarray  # [L]
    lane_fc: np.ndarray  # [L]
    spare_volume: np.ndarray  # [L]
    spare_cost: np.ndarray  # [L]
    truckload_cost: np.ndarray  # [L]
    lane_names: tuple[str, ...]

    @property
    def O(self) -> int:
        return len(self.origins)

    @property
    def L(self) -> int:
        return self.lane_origin.size


def split_scenario(s: Scenario) -> tuple[PublicData, RetailerData, VendorData]:
    """Arrays for the three views of a scenario."""
    products = tuple(p.name for p in s.products)
    fcs = tuple(f.name for f in s.fcs)
    regions = tuple(s.regions)
    kpos = {k: i for i, k in enumerate(products)}
    fpos = {f: i for i, f in enumerate(fcs)}
    opos = {o.name: i for i, o in enumerate(s.origins)}
    public = PublicData(
        products=products,
        fcs=fcs,
        regions=regions,
        horizon=s.horizon,
        lead_time=np.array([f.lead_time for f in s.fcs], dtype=int),
        wholesale=np.array([p.wholesale_price for p in s.products]),
        volume=np.array([p.volume for p in s.products]),
        receiving_capacity=np.array([np.inf if f.receiving_capacity is None else f.receiving_capacity for f in s.fcs]),
        backlog=s.unmet_demand == "backlog",
    )
    outbound = np.full((len(fcs), len(regions)), np.inf)
    for f, row in s.outbound_cost.items():
        for r, cost in row.items():
            outbound[fpos[f], regions.index(r)] = cost
    fc_stock = np.zeros((len(fcs), len(products)))
    for f in s.fcs:
        for k, units in f.initial_stock.items():
            fc_stock[fpos[f.name], kpos[k]] = units
    retailer = RetailerData(
        receiving=np.array([f.receiving_cost for f in s.fcs]),
        holding=np.array([p.holding_cost for p in s.products]),
        penalty=np.array([p.lost_sales_penalty for p in s.products]),
        outbound=outbound,
        terminal_value=s.terminal_value,
        initial_stock=fc_stock,
    )
    production = np.zeros((len(s.origins), len(products)))
    origin_stock = np.zeros((len(s.origins), len(products)))
    for i, o in enumerate(s.origins):
        if isinstance(o.production_cost, dict):
            for k, cost in o.production_cost.items():
                if k in kpos:
                    production[i, kpos[k]] = cost
        else:
            production[i, :] = o.production_cost
        for k, units in o.initial_stock.items():
            origin_stock[i, kpos[k]] = units
    vendor = VendorData(
        origins=tuple(o.name for o in s.origins),
        capacity=np.array([o.capacity for o in s.origins]),
        production=production,
        holding=np.array([o.holding_cost for o in s.origins]),
        initial_stock=origin_stock,
        lane_origin=np.array([opos[lane.origin] for lane in s.lanes], dtype=int),
        lane_fc=np.array([fpos[lane.fc] for lane in s.lanes], dtype=int),
        spare_volume=np.array([lane.spare_volume for lane in s.lanes]),
        spare_cost=np.array([lane.spare_cost for lane in s.lanes]),
        truckload_cost=np.array([lane.truckload_cost for lane in s.lanes]),
        lane_names=tuple(f"{lane.origin}->{lane.fc}" for lane in s.lanes),
    )
    return public, retailer, vendor
