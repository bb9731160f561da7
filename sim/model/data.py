"""A scenario split into what is public and what each party keeps private, as numpy arrays.

* :class:`PublicData`: names and sizes, the vendors and who supplies what at which wholesale price,
  FC lead times: what every party and every policy may read.
* :class:`RetailerData`: the retailer's private costs (receiving, holding, outbound, lost sales).
* :class:`VendorData`: one vendor's private costs and capacities (production, lanes, origins); each
  vendor has its own.

Index order everywhere: vendors ``v``, weeks ``t``/``tau``, FCs ``f``, regions ``r``, products ``k``,
origins ``o``, lanes ``l``. A plan ``x`` has shape ``(V, H, F, K)``: units vendor ``v`` ships to FC
``f`` in week ``t + tau``; vendor ``v``'s block ``x[v]`` has shape ``(H, F, K)``. A vendor ships only the
products it supplies (``supplies[v, k]``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.model.scenario import Scenario


@dataclass(frozen=True)
class PublicData:
    products: tuple[str, ...]
    fcs: tuple[str, ...]
    regions: tuple[str, ...]
    horizon: int
    lead_time: np.ndarray  # [F] nominal weeks from shipment to arrival
    wholesale: np.ndarray  # [V, K] vendor v's price of product k (0 where v does not supply k)
    volume: np.ndarray  # [K]
    receiving_capacity: np.ndarray  # [F], inf if none
    backlog: bool
    vendors: tuple[str, ...]  # names, in the order of a plan's vendor axis
    supplies: np.ndarray  # [V, K] bool: vendor v supplies product k

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """Shape of a whole plan: (V, H, F, K)."""
        return (len(self.vendors), self.horizon, len(self.fcs), len(self.products))

    @property
    def block_shape(self) -> tuple[int, int, int]:
        """Shape of one vendor's block of a plan: (H, F, K)."""
        return (self.horizon, len(self.fcs), len(self.products))

    @property
    def V(self) -> int:
        return len(self.vendors)

    def within_receiving_capacity(self, plan: np.ndarray) -> np.ndarray:
        """``plan`` ``[V, H, F, K]`` with every vendor's units into an FC scaled down by one factor in each
        week where all vendors' units together exceed the FC's public receiving capacity; unchanged
        elsewhere (and when no FC has a capacity). The rule every policy uses to make a plan executable."""
        plan = np.asarray(plan, dtype=float)
        cap = np.asarray(self.receiving_capacity, dtype=float)
        if not np.any(np.isfinite(cap)):
            return plan
        total = plan.sum(axis=(0, 3))  # [H, F], all vendors
        with np.errstate(divide="ignore", invalid="ignore"):
            factor = np.where(total > cap[None, :], cap[None, :] / np.where(total > 0, total, 1.0), 1.0)
        return plan * factor[None, :, :, None]

    def vendor_index(self, name: str) -> int:
        """Position of vendor ``name`` on a plan's vendor axis."""
        try:
            return self.vendors.index(name)
        except ValueError:
            raise KeyError(f"unknown vendor {name!r} (vendors: {', '.join(self.vendors)})") from None

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
    name: str
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
    supplies: np.ndarray  # [K] bool: the products this vendor makes and ships
    lane_offset: int = 0  # index of its first lane in the scenario's lane order (the delay stream's axis)

    @property
    def O(self) -> int:
        return len(self.origins)

    @property
    def L(self) -> int:
        return self.lane_origin.size


def split_scenario(s: Scenario) -> tuple[PublicData, RetailerData, dict[str, VendorData]]:
    """Arrays for the views of a scenario: public, the retailer's, and each vendor's (by name, in order)."""
    products = tuple(p.name for p in s.products)
    fcs = tuple(f.name for f in s.fcs)
    regions = tuple(s.regions)
    kpos = {k: i for i, k in enumerate(products)}
    fpos = {f: i for i, f in enumerate(fcs)}
    specs = s.vendor_specs()
    wholesale = np.zeros((len(specs), len(products)))
    supplies = np.zeros((len(specs), len(products)), dtype=bool)
    for v, spec in enumerate(specs):
        for k, price in spec.wholesale.items():
            wholesale[v, kpos[k]] = price
            supplies[v, kpos[k]] = True
    public = PublicData(
        products=products,
        fcs=fcs,
        regions=regions,
        horizon=s.horizon,
        lead_time=np.array([f.lead_time for f in s.fcs], dtype=int),
        wholesale=wholesale,
        volume=np.array([p.volume for p in s.products]),
        receiving_capacity=np.array([np.inf if f.receiving_capacity is None else f.receiving_capacity for f in s.fcs]),
        backlog=s.unmet_demand == "backlog",
        vendors=tuple(spec.name for spec in specs),
        supplies=supplies,
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
    vendors: dict[str, VendorData] = {}
    offset = 0
    for v, spec in enumerate(specs):
        vendors[spec.name] = _vendor_data(spec, products, fpos, supplies[v], offset)
        offset += len(spec.lanes)
    return public, retailer, vendors


def _vendor_data(spec: Any, products: tuple[str, ...], fpos: dict[str, int], supplies: np.ndarray, offset: int) -> VendorData:
    kpos = {k: i for i, k in enumerate(products)}
    opos = {o.name: i for i, o in enumerate(spec.origins)}
    production = np.zeros((len(spec.origins), len(products)))
    origin_stock = np.zeros((len(spec.origins), len(products)))
    for i, o in enumerate(spec.origins):
        if isinstance(o.production_cost, dict):
            for k, cost in o.production_cost.items():
                if k in kpos:
                    production[i, kpos[k]] = cost
        else:
            production[i, :] = o.production_cost
        for k, units in o.initial_stock.items():
            origin_stock[i, kpos[k]] = units
    return VendorData(
        name=spec.name,
        origins=tuple(o.name for o in spec.origins),
        capacity=np.array([o.capacity for o in spec.origins]),
        production=production,
        holding=np.array([o.holding_cost for o in spec.origins]),
        initial_stock=origin_stock,
        lane_origin=np.array([opos[lane.origin] for lane in spec.lanes], dtype=int),
        lane_fc=np.array([fpos[lane.fc] for lane in spec.lanes], dtype=int),
        spare_volume=np.array([lane.spare_volume for lane in spec.lanes]),
        spare_cost=np.array([lane.spare_cost for lane in spec.lanes]),
        truckload_cost=np.array([lane.truckload_cost for lane in spec.lanes]),
        lane_names=tuple(f"{lane.origin}->{lane.fc}" for lane in spec.lanes),
        supplies=supplies.copy(),
        lane_offset=offset,
    )
