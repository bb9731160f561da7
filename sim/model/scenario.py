"""Scenario files: the schema, loading and validation.

A scenario is a YAML file describing one retailer, its vendors and the world they live in: products,
fulfillment centers (FCs), demand regions, each vendor's origins, lanes and prices, costs, the demand
and forecast model, the planning horizon, the number of simulated weeks, the cool-down after them
(``settle_weeks``: the weeks every policy's world continues under JIT so the stock a run leaves
behind is valued), the seed and policy parameters.

What a user may do:

* ``load_scenario("default")`` or ``load_scenario("path/to/file.yaml")`` returns a validated
  :class:`Scenario`; built-in scenario names are listed by :func:`builtin_scenarios`.
* ``scenario.model_copy(update=...)`` or :meth:`Scenario.with_overrides` derives variants for sweeps.
* ``dump_scenario(scenario, path)`` writes the *resolved* scenario (generated products materialised),
  which reloads to the identical object: a results folder stores it so a run can be repeated exactly.
* ``scenario.vendor_specs()`` gives the vendors (:class:`VendorSpec`: name, origins, lanes, wholesale
  prices) whatever the schema version; ``scenario.all_lanes`` the lanes in the global lane order.

Schema version 1 (the default) has one vendor, named ``"vendor"``: top-level ``origins`` and
``lanes`` and a ``wholesale_price`` per product. Version 2 lists ``vendors``, each with its own
origins, lanes and the products it supplies at its own prices (docs/model.md, "Several vendors").
Every field is documented on the models below; unknown fields are errors, so a typo never silently
falls back to a default. Problems raise :class:`sim.model.errors.ScenarioError` whose message
names the file, the field (as a dotted path) and the offending value.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Callable, Literal

import numpy as np
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from sim.model.errors import FlosimError, ScenarioError
from sim.model.validation import FieldError as _FieldError
from sim.model.validation import Number, Whole, format_validation_error, load_yaml_text, read_yaml

#: The schema version of a file that does not say (version 1: one vendor).
SCHEMA_VERSION = 1
#: The schema versions this flosim reads: 1 (one vendor) and 2 (a ``vendors`` list).
SCHEMA_VERSIONS = (1, 2)
#: Longest cool-down a scenario may ask for (five years of weeks): longer is a typo, not a study.
MAX_SETTLE_WEEKS = 260

NonNeg = Annotated[Number, Field(ge=0)]
Pos = Annotated[Number, Field(gt=0)]
NonNegInt = Annotated[Whole, Field(ge=0)]


class _Strict(BaseModel):
    # numbers must be finite (.inf/.nan would reach the LP solver) and not true/false (Number, Whole)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Product(_Strict):
    """A product (ASIN). Costs are per unit; ``holding_cost`` is per unit and week at an FC."""

    name: str
    wholesale_price: NonNeg | None = Field(
        None,
        description="w_k, paid by the retailer to the vendor per unit shipped; required in schema version 1, "
        "not allowed in version 2 (each vendor names its own prices under vendors.<name>.products)",
    )
    holding_cost: NonNeg = Field(description="h_k, retailer holding cost per unit-week at an FC")
    lost_sales_penalty: NonNeg = Field(description="pi_k, per unit of unmet demand (per week if backlogged)")
    volume: Pos = Field(1.0, description="vol_k, truck volume one unit takes")
    base_demand: NonNeg = Field(description="mean weekly demand summed over regions, before multipliers")
    cv: NonNeg | None = Field(None, description="coefficient of variation of weekly regional demand; default demand.cv")


class FC(_Strict):
    """A retailer fulfillment center."""

    name: str
    receiving_cost: NonNeg = Field(0.0, description="a_f, per unit received")
    lead_time: Whole = Field(1, ge=1, description="l_f, nominal weeks from vendor shipment to arrival")
    receiving_capacity: NonNeg | None = Field(None, description="max units shipped to this FC per week")
    initial_stock: dict[str, NonNeg] = Field(default_factory=dict, description="product -> units on hand")


class Origin(_Strict):
    """A vendor plant or warehouse."""

    name: str
    capacity: NonNeg = Field(description="P_o, units produced per week (all products)")
    production_cost: NonNeg | dict[str, NonNeg] = Field(
        description="c_prod[o,k] per unit: one number for all products or a product -> cost map"
    )
    holding_cost: NonNeg = Field(0.0, description="h^V, vendor holding cost per unit-week at this origin")
    initial_stock: dict[str, NonNeg] = Field(default_factory=dict, description="product -> units on hand")


class Delay(_Strict):
    """Distribution of the random extra delay (whole weeks) on a lane, added to the FC's lead time."""

    values: list[NonNegInt] = Field(default_factory=lambda: [0])
    probs: list[NonNeg] = Field(default_factory=lambda: [1.0])

    @model_validator(mode="after")
    def _check(self) -> "Delay":
        if len(self.values) != len(self.probs):
            raise ValueError(f"values has {len(self.values)} entries but probs has {len(self.probs)}")
        if not self.values:
            raise ValueError("needs at least one value")
        total = float(sum(self.probs))
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"probs sum to {total:g}, not 1")
        return self


class Lane(_Strict):
    """An origin -> FC lane. Its weekly cost is convex piecewise linear in the volume shipped:
    the first ``spare_volume`` units of volume ride a scheduled truck at ``spare_cost`` per unit of
    volume, the rest costs ``truckload_cost`` per unit of volume (full-truckload rates)."""

    origin: str
    fc: str
    spare_volume: NonNeg = 0.0
    spare_cost: NonNeg = 0.0
    truckload_cost: NonNeg
    delay: Delay = Field(default_factory=Delay)

    @model_validator(mode="after")
    def _convex(self) -> "Lane":
        if self.spare_volume > 0 and self.spare_cost > self.truckload_cost:
            raise ValueError(
                f"spare_cost {self.spare_cost:g} exceeds truckload_cost {self.truckload_cost:g}; the lane cost must be convex"
            )
        return self


class Vendor(_Strict):
    """A vendor of a schema-version-2 scenario: its own origins and lanes (every lane leaves from one of
    this vendor's origins) and the products it supplies at its own wholesale price: a mapping
    ``product -> price``, or ``all`` with one ``wholesale_price`` for every product (the form to use
    with a ``product_generator``, whose product names are only known once generated)."""

    name: str
    origins: list[Origin]
    lanes: list[Lane]
    products: dict[str, NonNeg] | str = Field(
        description="product -> this vendor's wholesale price per unit, or 'all' (with wholesale_price)"
    )
    wholesale_price: NonNeg | None = Field(None, description="the price of every product when products is 'all'")

    @field_validator("products")
    @classmethod
    def _all_or_mapping(cls, value: dict[str, float] | str) -> dict[str, float] | str:
        if isinstance(value, str) and value != "all":
            raise ValueError("give a mapping product -> wholesale price, or 'all' (with wholesale_price)")
        return value

    @model_validator(mode="after")
    def _prices(self) -> "Vendor":
        if self.products == "all" and self.wholesale_price is None:
            raise _FieldError("wholesale_price", None, "products 'all' needs a wholesale_price (the price of every product)")
        if self.products != "all" and self.wholesale_price is not None:
            raise _FieldError(
                "wholesale_price", self.wholesale_price, "only with products 'all'; give each product's price in the products mapping"
            )
        return self


@dataclass(frozen=True)
class VendorSpec:
    """One vendor as the model sees it, whatever the schema version: its name, origins, lanes and
    ``wholesale`` (product -> price for the products it supplies, in the scenario's product order)."""

    name: str
    origins: list[Origin]
    lanes: list[Lane]
    wholesale: dict[str, float]

    @property
    def products(self) -> list[str]:
        """The products this vendor supplies, in the scenario's product order."""
        return list(self.wholesale)


#: The one vendor's name in a schema-version-1 scenario (so its ledgers keep their party name).
V1_VENDOR = "vendor"
#: Names no vendor may take: they are the other parties of a run's ledger.
RESERVED_PARTIES = ("retailer", "mechanism")


class Revision(_Strict):
    """Martingale model of forecast evolution: the variance of a week's demand is revealed in
    ``horizon`` revisions; ``shares[m]`` is the fraction revealed at the forecast update when the week
    comes ``m - 1`` weeks away (``m = 0``: by the realisation itself), normalised to sum to one.
    Default: equal shares.

    ``profile`` names a revision speed instead of listing shares, for sweeps: ``equal`` (the
    default), ``fast`` (shares doubling with the distance, ``2^m``: most of the uncertainty about a
    week is gone two or three weeks ahead) or ``slow`` (halving, ``2^(H-1-m)``: most of it is left
    until the week itself). Give ``shares`` or ``profile``, not both."""

    shares: list[NonNeg] | None = None
    profile: Literal["equal", "fast", "slow"] | None = Field(
        None, description="named revision speed (equal, fast, slow) instead of shares"
    )

    @model_validator(mode="after")
    def _one_way(self) -> "Revision":
        if self.shares is not None and self.profile is not None:
            raise _FieldError("profile", self.profile, "give shares or profile, not both")
        return self


class Demand(_Strict):
    """Demand model. Mean demand of product k in region r in week s is
    ``base_demand_k * region_weights[r] * multipliers[s mod len] * (1 + trend * s)``; the realisation
    adds mean-zero normal revisions with total standard deviation ``cv * mean`` and is clipped at 0.
    ``model`` is a label for the shape (``stationary``, ``trend``, ``seasonal``, ``vadk``, ``trace``)
    and checks that the matching parameters are given."""

    model: Literal["stationary", "trend", "seasonal", "vadk", "trace"] = "stationary"
    cv: NonNeg = 0.2
    region_weights: dict[str, NonNeg] | None = Field(None, description="region -> weight; default uniform")
    multipliers: list[NonNeg] = Field(default_factory=lambda: [1.0])
    trend: Number = 0.0
    revision: Revision = Field(default_factory=Revision)
    deterministic: bool = Field(False, description="if true, demand equals its mean and forecasts are exact")
    trace_dir: str | None = Field(None, description="folder of a recorded trace (model: trace)")

    @model_validator(mode="after")
    def _check(self) -> "Demand":
        if not self.multipliers:
            raise ValueError("multipliers must not be empty")
        if self.model == "trace" and not self.trace_dir:
            raise ValueError("model 'trace' needs trace_dir")
        if self.model == "stationary" and (self.trend != 0 or len(set(self.multipliers)) > 1):
            raise ValueError("model 'stationary' takes no trend and constant multipliers; use 'trend' or 'seasonal'")
        return self

Share = Annotated[Number, Field(ge=0, le=1)]


class Outage(_Strict):
    """Independent outages: in each week, each origin it covers loses ``depth`` of its capacity with
    ``probability``, independently of other weeks and origins."""

    origin: str | None = Field(None, description="the origin it strikes; default every origin")
    probability: Share = Field(description="chance of an outage in a week, in [0, 1]")
    depth: Share = Field(description="share of the origin's weekly capacity lost in an outage, in [0, 1]")
    weeks: list[NonNegInt] | None = Field(None, description="weeks in which it may strike; default every week")


class Disruption(_Strict):
    """A persistent disruption: a two-state Markov chain per origin it covers. An origin that is up
    fails with ``p_fail`` each week and, once down, recovers with ``p_recover`` each week; while down
    it loses ``depth`` of its capacity. Every origin starts the run up."""

    origin: str | None = Field(None, description="the origin it strikes; default every origin")
    p_fail: Share = Field(description="chance an origin that is up goes down in a week, in [0, 1]")
    p_recover: Share = Field(description="chance an origin that is down comes back in a week, in [0, 1]")
    depth: Share = Field(description="share of the origin's weekly capacity lost while down, in [0, 1]")


class Shocks(_Strict):
    """Capacity shocks: what share ``kappa[t, o]`` of each origin's capacity is available in week ``t``.
    Each outage and disruption multiplies it by ``1 - depth`` when it strikes; with none it is 1."""

    outages: list[Outage] = Field(default_factory=list)
    disruptions: list[Disruption] = Field(default_factory=list)
    disclosure: Literal["execution", "disclosed"] = Field(
        "execution", description="when a vendor learns kappa[t]: at execution (default), or before planning "
        "(disclosed: its agent plans week t with it; the others see only its answers)")


#: How a vendor that cannot ship its committed PO in full chooses what to short (:class:`Execution`).
RATIONING_RULES = ("cheapest", "pro-rata", "priority")


class ExecutionRules(_Strict):
    """How a vendor that cannot ship a committed PO in full rations it: ``cheapest`` (default: it ships
    as much as it can at least cost to itself), ``pro-rata`` (every FC and product it was ordered gets
    the same share, as large as its capacity allows), ``priority`` (the retailer's FCs in ``ranking``
    order, most important first; unranked FCs last)."""

    rationing: Literal["cheapest", "pro-rata", "priority"] = "cheapest"
    ranking: list[str] | None = Field(None, description="priority only: the retailer's FCs, most important first")


class ProductGenerator(_Strict):
    """Products drawn from the clusters of the public Flo Pro V-ADK calibration (docs/model.md, "Demand and forecasts").
    Base demand of a product: cluster chosen with probability ``mix``, then normal with the cluster's
    mean and CV (floored at 1); holding cost uniform on ``holding_cost_range``."""

    count: Whole = Field(ge=1)
    cluster_means: list[Pos] = Field(default_factory=lambda: [133.31, 1573.45, 185.36])
    cluster_cvs: list[NonNeg] = Field(default_factory=lambda: [0.297, 0.302, 0.658])
    mix: list[NonNeg] = Field(default_factory=lambda: [0.745, 0.042, 0.212])
    holding_cost_range: tuple[NonNeg, NonNeg] = (0.006, 0.100)
    wholesale_price: NonNeg = 5.0
    lost_sales_penalty: NonNeg = 10.0
    volume: Pos = 1.0
    name_prefix: str = "P"

    @model_validator(mode="after")
    def _check(self) -> "ProductGenerator":
        n = len(self.cluster_means)
        if len(self.cluster_cvs) != n or len(self.mix) != n:
            raise ValueError("cluster_means, cluster_cvs and mix must have the same length")
        if abs(sum(self.mix) - 1.0) > 0.01:  # published shares are rounded; they are normalised on use
            raise ValueError(f"mix sums to {sum(self.mix):g}, not 1")
        lo, hi = self.holding_cost_range
        if lo > hi:
            raise ValueError(f"holding_cost_range {list(self.holding_cost_range)} is not increasing")
        return self


class Scenario(_Strict):
    """A complete, validated scenario. See the module docstring for how to load one.

    Version 1 has one vendor: its ``origins`` and ``lanes`` at the top level and each product's
    ``wholesale_price``. Version 2 lists ``vendors``, each with its own origins, lanes and prices; the
    top-level ``origins`` and ``lanes`` are then empty. Code that needs the vendors whatever the
    version reads :meth:`vendor_specs` (or :attr:`all_origins` / :attr:`all_lanes`)."""

    schema_version: Literal[1, 2] = 1
    name: str
    description: str = ""
    weeks: Whole = Field(8, ge=1, description="weeks simulated")
    horizon: Whole = Field(6, ge=1, description="H, planning horizon in weeks")
    seed: Whole = Field(0, ge=0, description="root seed of every random number in a run")
    settle_weeks: Annotated[int, Field(strict=True, ge=0, le=MAX_SETTLE_WEEKS)] | None = Field(
        None,
        description="cool-down weeks simulated under JIT after the measured weeks, on the same random numbers, "
        "so the stock a run leaves behind is used or held at its true cost (settled figures); "
        "default (null) the horizon, 0 turns the cool-down off",
    )
    unmet_demand: Literal["lost", "backlog"] = "lost"
    terminal_value: Annotated[Number, Field(ge=0, lt=1)] = Field(
        0.5, description="end-of-horizon FC stock is credited at this fraction of its wholesale price in plans"
    )
    regions: list[str]
    fcs: list[FC]
    outbound_cost: dict[str, dict[str, NonNeg]] = Field(description="c_out: FC -> region -> cost per unit")
    products: list[Product] = Field(default_factory=list)
    product_generator: ProductGenerator | None = None
    origins: list[Origin] = Field(default_factory=list, description="version 1 only: the vendor's origins")
    lanes: list[Lane] = Field(default_factory=list, description="version 1 only: the vendor's lanes")
    vendors: list[Vendor] | None = Field(None, description="version 2 only: the vendors, in order")
    demand: Demand = Field(default_factory=Demand)
    shocks: Shocks | None = Field(None, description="capacity shocks (docs/model.md, \"Capacity shocks and execution\"); default none")
    execution: ExecutionRules | None = Field(None, description="how a vendor rations a committed PO it cannot ship in full; default cheapest")
    policies: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="policy name -> parameters passed to that policy"
    )

    @model_validator(mode="after")
    def _references(self) -> "Scenario":
        _unique("regions", self.regions)
        _unique("fcs", [f.name for f in self.fcs])
        if self.schema_version == 1:
            self._check_version_1()
        else:
            self._check_version_2()
        if not self.products and self.product_generator is None:
            raise ValueError("give products or a product_generator")
        if self.products and self.product_generator is not None:
            raise ValueError("give products or a product_generator, not both")
        _unique("products", [p.name for p in self.products])
        fcs = {f.name for f in self.fcs}
        regions = set(self.regions)
        products = {p.name for p in self.products}
        for where, lane in self._lanes_with_paths():
            if lane.fc not in fcs:
                raise _FieldError(f"{where}.fc", lane.fc, f"unknown FC (known: {sorted(fcs)})")
        if self.vendors is None:
            _unique("lanes", [f"{lane.origin}->{lane.fc}" for lane in self.lanes])
        else:  # origins are unique across vendors, so a lane can only repeat within one vendor
            for v in self.vendors:
                _unique(f"vendors.{v.name}.lanes", [f"{lane.origin}->{lane.fc}" for lane in v.lanes])
        for f in self.fcs:
            if f.name not in self.outbound_cost:
                raise _FieldError("outbound_cost", f.name, "FC has no outbound costs")
        for fc_name, row in self.outbound_cost.items():
            if fc_name not in fcs:
                raise _FieldError(f"outbound_cost.{fc_name}", fc_name, f"unknown FC (known: {sorted(fcs)})")
            for r in row:
                if r not in regions:
                    raise _FieldError(f"outbound_cost.{fc_name}.{r}", r, f"unknown region (known: {sorted(regions)})")
        if not any(self.outbound_cost[f].get(r) is not None for f in fcs for r in regions):
            raise ValueError("no FC can serve any region")
        if self.demand.region_weights is not None:
            for r in self.demand.region_weights:
                if r not in regions:
                    raise _FieldError(f"demand.region_weights.{r}", r, "unknown region")
        for f in self.fcs:
            if f.lead_time >= self.horizon:
                raise _FieldError(
                    f"fcs.{f.name}.lead_time", f.lead_time, f"must be below the horizon ({self.horizon}) or the FC is never restocked"
                )
        if self.demand.revision.shares is not None and len(self.demand.revision.shares) != self.horizon:
            raise _FieldError(
                "demand.revision.shares", self.demand.revision.shares, f"needs {self.horizon} entries (one per horizon week)"
            )
        if self.demand.region_weights is not None and not any(self.demand.region_weights.get(r, 0) > 0 for r in self.regions):
            raise _FieldError("demand.region_weights", dict(self.demand.region_weights), "no region has a positive weight, so there is no demand")
        self._check_shocks()
        self._check_size()
        if products:
            for f in self.fcs:
                for k in f.initial_stock:
                    if k not in products:
                        raise _FieldError(f"fcs.{f.name}.initial_stock.{k}", k, "unknown product")
            if self.schema_version == 1:
                self._check_origin_products("origins", self.origins, products)
            else:
                self._check_vendor_products(products)
        return self

    def _check_shocks(self) -> None:
        if self.execution is not None:
            fcs = [f.name for f in self.fcs]
            ranking = self.execution.ranking
            if self.execution.rationing == "priority" and not ranking:
                raise _FieldError("execution.ranking", ranking, "rationing 'priority' needs a ranking of the retailer's FCs")
            for i, name in enumerate(ranking or []):
                if name not in fcs:
                    raise _FieldError(f"execution.ranking.{i}", name, f"unknown FC (known: {fcs})")
            _unique("execution.ranking", list(ranking or []))
        if self.shocks is None:
            return
        origins = [o.name for o in self.all_origins]
        for kind, entries in (("outages", self.shocks.outages), ("disruptions", self.shocks.disruptions)):
            for i, e in enumerate(entries):
                if e.origin is not None and e.origin not in origins:
                    raise _FieldError(f"shocks.{kind}.{i}.origin", e.origin, f"unknown origin (known: {origins})")

    def _check_version_1(self) -> None:
        if self.vendors is not None:
            raise _FieldError("vendors", "<...>", "only in schema_version 2 (version 1 has one vendor: top-level origins and lanes)")
        if not self.origins:
            raise _FieldError("origins", [], "needs at least one origin")
        _unique("origins", [o.name for o in self.origins])
        origins = {o.name for o in self.origins}
        for i, lane in enumerate(self.lanes):
            if lane.origin not in origins:
                raise _FieldError(f"lanes.{i}.origin", lane.origin, f"unknown origin (known: {sorted(origins)})")
        for i, p in enumerate(self.products):
            if p.wholesale_price is None:
                raise _FieldError(f"products.{i}.wholesale_price", None, "required field is missing")

    def _check_version_2(self) -> None:
        if self.origins:
            raise _FieldError("origins", "<...>", "not in schema_version 2: each vendor lists its own origins under vendors")
        if self.lanes:
            raise _FieldError("lanes", "<...>", "not in schema_version 2: each vendor lists its own lanes under vendors")
        if not self.vendors:
            raise _FieldError("vendors", self.vendors, "schema_version 2 needs at least one vendor")
        for i, p in enumerate(self.products):
            if p.wholesale_price is not None:
                raise _FieldError(
                    f"products.{p.name}.wholesale_price", p.wholesale_price,
                    "not in schema_version 2: each vendor gives its own price under vendors.<name>.products",
                )
        if self.product_generator is not None and "wholesale_price" in self.product_generator.model_fields_set:
            raise _FieldError(
                "product_generator.wholesale_price", self.product_generator.wholesale_price,
                "not in schema_version 2: give each vendor 'products: all' with its own wholesale_price",
            )
        _unique("vendors", [v.name for v in self.vendors])
        owner: dict[str, str] = {}
        for i, v in enumerate(self.vendors):
            if not v.name.strip():  # a party name: ledger rows, JSON keys and columns are keyed by it
                raise _FieldError(f"vendors.{i}.name", v.name, "a vendor needs a name (not empty)")
            if v.name in RESERVED_PARTIES:
                raise _FieldError(f"vendors.{v.name}.name", v.name, f"reserved for another party ({', '.join(RESERVED_PARTIES)})")
            if not v.origins:
                raise _FieldError(f"vendors.{v.name}.origins", [], "a vendor needs at least one origin")
            if not v.lanes:
                raise _FieldError(f"vendors.{v.name}.lanes", [], "a vendor needs at least one lane")
            for o in v.origins:
                if o.name in owner:
                    whose = "the same vendor" if owner[o.name] == v.name else f"vendor {owner[o.name]!r}"
                    raise _FieldError(f"vendors.{v.name}.origins.{o.name}", o.name,
                                      f"duplicate origin name (also an origin of {whose}); origin names are unique across vendors")
                owner[o.name] = v.name
        for v in self.vendors:
            mine = sorted(o.name for o in v.origins)
            for i, lane in enumerate(v.lanes):
                if lane.origin not in mine:
                    if lane.origin in owner:
                        raise _FieldError(f"vendors.{v.name}.lanes.{i}.origin", lane.origin,
                                          f"an origin of vendor {owner[lane.origin]!r}; a vendor's lanes leave from its own origins ({mine})")
                    raise _FieldError(f"vendors.{v.name}.lanes.{i}.origin", lane.origin, f"unknown origin (this vendor's: {mine})")

    def _check_origin_products(self, where: str, origins: list[Origin], supplied: set[str], products: set[str] | None = None) -> None:
        """Origins' initial stock and production costs name products ``supplied`` (from all ``products``)."""
        products = supplied if products is None else products
        for o in origins:
            for k in o.initial_stock:
                if k not in products:
                    raise _FieldError(f"{where}.{o.name}.initial_stock.{k}", k, "unknown product")
                if k not in supplied:
                    raise _FieldError(f"{where}.{o.name}.initial_stock.{k}", k, "a product this vendor does not supply")
            if isinstance(o.production_cost, dict):
                missing = supplied - set(o.production_cost)
                if missing:
                    raise _FieldError(f"{where}.{o.name}.production_cost", sorted(missing), "products without a production cost")
                if products is not supplied:
                    for k in o.production_cost:
                        if k not in products:
                            raise _FieldError(f"{where}.{o.name}.production_cost.{k}", k, "unknown product")

    def _check_vendor_products(self, products: set[str]) -> None:
        assert self.vendors is not None
        supplied: dict[str, set[str]] = {}
        for v in self.vendors:
            if isinstance(v.products, dict):
                for k in v.products:
                    if k not in products:
                        raise _FieldError(f"vendors.{v.name}.products.{k}", k, f"unknown product (known: {sorted(products)})")
                if not v.products:
                    raise _FieldError(f"vendors.{v.name}.products", {}, "a vendor supplies at least one product")
            supplied[v.name] = set(products) if v.products == "all" else set(v.products)
        for p in self.products:
            if not any(p.name in mine for mine in supplied.values()):
                raise _FieldError(f"products.{p.name}", p.name, "no vendor supplies this product (add it to a vendor's products)")
        for v in self.vendors:
            self._check_origin_products(f"vendors.{v.name}.origins", v.origins, supplied[v.name], products)

    def _lanes_with_paths(self) -> list[tuple[str, Lane]]:
        if self.vendors is None:
            return [(f"lanes.{i}", lane) for i, lane in enumerate(self.lanes)]
        return [(f"vendors.{v.name}.lanes.{i}", lane) for v in self.vendors for i, lane in enumerate(v.lanes)]

    def _check_size(self) -> None:
        """Refuse, before anything is allocated, a scenario too big for this machine's memory,
        naming the field that makes it big (see :mod:`sim.model.memory`)."""
        from sim.model.memory import RunSize, run_too_big

        count = len(self.products) or (self.product_generator.count if self.product_generator else 0)
        size = run_size(self, self.weeks, count)
        why = run_too_big(size)
        if why:
            biggest = max(
                [("weeks", self.weeks, RunSize(1, size.horizon, *_rest(size))),
                 ("horizon", self.horizon, RunSize(size.weeks, 1, *_rest(size))),
                 ("product_generator.count" if self.product_generator else "products", count,
                  RunSize(size.weeks, size.horizon, 1, *_rest(size)[1:]))],
                key=lambda t: size.bytes / max(1, t[2].bytes),
            )
            raise _FieldError(biggest[0], biggest[1], why)

    # -- derived conveniences -------------------------------------------------------------------
    @property
    def settle(self) -> int:
        """Cool-down weeks after the measured ones: ``settle_weeks``, or the horizon when not given."""
        return self.horizon if self.settle_weeks is None else self.settle_weeks

    @property
    def product_names(self) -> list[str]:
        return [p.name for p in self.products]

    def vendor_specs(self) -> list[VendorSpec]:
        """The vendors in file order, whatever the schema version. A version-1 scenario has one vendor
        named ``"vendor"`` with the top-level origins and lanes and the products' wholesale prices."""
        if self.vendors is None:
            return [VendorSpec(name=V1_VENDOR, origins=list(self.origins), lanes=list(self.lanes),
                               wholesale={p.name: float(p.wholesale_price) for p in self.products if p.wholesale_price is not None})]
        out = []
        for v in self.vendors:
            if not isinstance(v.products, dict):  # 'all'
                assert v.wholesale_price is not None
                wholesale = {p.name: float(v.wholesale_price) for p in self.products}
            else:
                wholesale = {p.name: float(v.products[p.name]) for p in self.products if p.name in v.products}
            out.append(VendorSpec(name=v.name, origins=list(v.origins), lanes=list(v.lanes), wholesale=wholesale))
        return out

    @property
    def vendor_names(self) -> list[str]:
        """The vendors' names in order (``["vendor"]`` for a version-1 scenario)."""
        return [V1_VENDOR] if self.vendors is None else [v.name for v in self.vendors]

    @property
    def all_origins(self) -> list[Origin]:
        """Every vendor's origins: vendors in order, each vendor's origins in order."""
        return list(self.origins) if self.vendors is None else [o for v in self.vendors for o in v.origins]

    @property
    def all_lanes(self) -> list[Lane]:
        """Every vendor's lanes in the global lane order (the order of a run's delay stream and of
        trace files): vendors in order, each vendor's lanes in order; a version-1 scenario's lanes."""
        return list(self.lanes) if self.vendors is None else [lane for v in self.vendors for lane in v.lanes]

    @model_serializer(mode="wrap")
    def _in_its_version(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """``model_dump`` gives the scenario in its own schema version's form, which
        :func:`scenario_from_dict` reads back to an equal object: a version-1 scenario exactly the
        fields it always had (no ``vendors``: run ids and saved scenarios are unchanged); a version-2
        one no top-level ``origins``/``lanes`` and no products' ``wholesale_price``."""
        data = handler(self)
        if self.shocks is None:  # no shocks: the scenario dumps as it did before shocks existed
            data.pop("shocks", None)
        if self.execution is None:
            data.pop("execution", None)
        if self.vendors is None:
            data.pop("vendors", None)
            return data
        data.pop("origins", None)
        data.pop("lanes", None)
        for p in data.get("products") or []:
            if isinstance(p, dict) and p.get("wholesale_price") is None:
                p.pop("wholesale_price", None)
        for v in data.get("vendors") or []:
            if isinstance(v, dict) and v.get("wholesale_price") is None:
                v.pop("wholesale_price", None)
        gen = data.get("product_generator")
        if isinstance(gen, dict) and self.product_generator is not None and "wholesale_price" not in self.product_generator.model_fields_set:
            gen.pop("wholesale_price", None)  # the default: giving it is an error in version 2
        return data

    def with_overrides(self, overrides: dict[str, Any], source: str = "<overrides>") -> "Scenario":
        """Return a copy with dotted-path overrides applied (``{"demand.cv": 0.4, "weeks": 4}``),
        validated like a file. Lists are indexed by position or, for named items, by name
        (``"lanes.0.spare_volume"``, ``"fcs.PHX.lead_time"``)."""
        data = self.model_dump(mode="json")
        for path, value in overrides.items():
            _set_dotted(data, path, value, source)
        return scenario_from_dict(data, source)


def run_size(scenario: Scenario, weeks: int, products: int | None = None) -> "RunSize":
    """The sizes of a run of ``weeks`` weeks of ``scenario`` (see :mod:`sim.model.memory`)."""
    from sim.model.memory import RunSize

    count = len(scenario.products) if products is None else products
    return RunSize(weeks, scenario.horizon, count, len(scenario.regions), len(scenario.fcs), len(scenario.all_origins),
                   len(scenario.all_lanes), len(scenario.vendor_names))


def _rest(size: "RunSize") -> tuple[int, ...]:
    return (size.products, size.regions, size.fcs, size.origins, size.lanes, size.vendors)


def unserved_regions(scenario: Scenario) -> list[str]:
    """Regions with demand that no FC serves (no ``outbound_cost`` entry): their demand is lost
    whatever the policy; a run says so on stderr and in its summary (``warnings``)."""
    weights = scenario.demand.region_weights  # None: uniform, every region has demand
    served = {r for row in scenario.outbound_cost.values() for r, c in row.items() if c is not None}
    return [r for r in scenario.regions if r not in served and (weights is None or weights.get(r, 0) > 0)]


def scenario_warnings(scenario: Scenario) -> list[str]:
    """Things in a valid scenario that are probably not meant (each a sentence naming the field)."""
    out = []
    for r in unserved_regions(scenario):
        out.append(f"scenario {scenario.name!r}: region {r!r} has demand but no FC serves it "
                   f"(no outbound_cost.<FC>.{r}); its demand is lost under every policy")
    return out


def _unique(what: str, names: list[str]) -> None:
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise _FieldError(what, n, "duplicate name")
        seen.add(n)


def _set_dotted(data: Any, path: str, value: Any, source: str) -> None:
    parts = path.split(".")
    node = data
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            idx = None
            if part.lstrip("-").isdigit():
                idx = int(part)
            else:
                for j, item in enumerate(node):
                    if isinstance(item, dict) and item.get("name") == part:
                        idx = j
            if idx is None or not -len(node) <= idx < len(node):
                raise ScenarioError(f"{source}: field '{path}': no item '{part}'")
            if last:
                node[idx] = value
            else:
                node = node[idx]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                if part not in node or node[part] is None:
                    node[part] = {}
                node = node[part]
        else:
            raise ScenarioError(f"{source}: field '{path}': '{part}' is not inside a mapping or list")


def _generate_products(gen: ProductGenerator, seed: int, with_price: bool = True) -> list[dict[str, Any]]:
    """Materialise the V-ADK product generator; deterministic in ``seed``. Products carry the
    generator's ``wholesale_price`` in schema version 1 (``with_price``), none in version 2 (the
    vendors name theirs)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x50524F44]))  # 'PROD' stream
    clusters = rng.choice(len(gen.mix), size=gen.count, p=np.asarray(gen.mix) / np.sum(gen.mix))
    means = np.asarray(gen.cluster_means)[clusters]
    cvs = np.asarray(gen.cluster_cvs)[clusters]
    base = np.maximum(1.0, rng.normal(means, means * cvs))
    lo, hi = gen.holding_cost_range
    holding = rng.uniform(lo, hi, size=gen.count)
    width = len(str(gen.count))
    out = [
        {
            "name": f"{gen.name_prefix}{i:0{width}d}",
            "wholesale_price": gen.wholesale_price,
            "holding_cost": round(float(holding[i]), 6),
            "lost_sales_penalty": gen.lost_sales_penalty,
            "volume": gen.volume,
            "base_demand": round(float(base[i]), 3),
            "cv": float(cvs[i]),
        }
        for i in range(gen.count)
    ]
    if not with_price:
        for p in out:
            del p["wholesale_price"]
    return out


def scenario_from_dict(data: Any, source: str = "<scenario>") -> Scenario:
    """Validate a mapping (as read from YAML) into a resolved :class:`Scenario`."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: the top level must be a mapping of fields, not {type(data).__name__}")
    version = data.get("schema_version", SCHEMA_VERSION)
    if isinstance(version, bool) or not isinstance(version, int) or version not in SCHEMA_VERSIONS:  # true == 1 in Python
        raise ScenarioError(f"{source}: field 'schema_version' = {version!r}: this flosim reads versions "
                            f"{' and '.join(str(v) for v in SCHEMA_VERSIONS)}")
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(format_validation_error(source, exc)) from None
    _check_policies(scenario, source)  # as written: the JSON round trip below would turn .inf into null
    if scenario.product_generator is not None:
        resolved = scenario.model_dump(mode="json")
        resolved["products"] = _generate_products(scenario.product_generator, scenario.seed, with_price=scenario.schema_version == 1)
        resolved["product_generator"] = None
        return scenario_from_dict(resolved, source)
    return scenario


#: Checks of one policy's parameters, ``check(name, params)`` raising :class:`FlosimError`, that run
#: when a scenario is loaded. The scenario knows no policy (it stands on the ground floor), so the
#: policy registry, which does, adds its check here when it is imported (``policies.registry``;
#: every command line imports it): a bad parameter of a built-in policy is refused at load, not at
#: the run's first decision.
POLICY_PARAMETER_CHECKS: list[Callable[[str, Any, "Scenario"], None]] = []


def _check_policies(scenario: Scenario, source: str) -> None:
    """The policies' parameters, checked now rather than at the run's first decision."""
    for name, params in scenario.policies.items():
        try:
            for check in POLICY_PARAMETER_CHECKS:
                check(name, params, scenario)
        except FlosimError as exc:
            raise ScenarioError(f"{source}: field 'policies.{name}': {exc}") from None


def builtin_scenarios() -> list[str]:
    """Names of the scenarios shipped with flosim."""
    folder = resources.files("sim") / "scenarios"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load a built-in scenario by name or a YAML file by path, validated and resolved."""
    path = Path(name_or_path)
    if isinstance(name_or_path, str) and name_or_path in builtin_scenarios() and not path.exists():
        text = (resources.files("sim") / "scenarios" / f"{name_or_path}.yaml").read_text()
        source = f"scenario '{name_or_path}'"
        return scenario_from_dict(load_yaml_text(text, source, ScenarioError), source)
    if not path.exists():
        raise ScenarioError(
            f"{name_or_path}: no such file, and not a built-in scenario (built-in: {', '.join(builtin_scenarios())})"
        )
    data = read_yaml(path, ScenarioError, "a YAML scenario file")
    _trace_dir_beside(data, path.parent)
    return scenario_from_dict(data, str(name_or_path))


def _trace_dir_beside(data: Any, folder: Path) -> None:
    """A relative ``demand.trace_dir`` names a folder beside the scenario file when one is there:
    made absolute, so the scenario reads the same trace from any working directory (and the
    resolved scenario a run saves says where). Otherwise it is left for
    :func:`forecasts.traces.resolve_trace_dir` (working directory, then built-in traces)."""
    demand = data.get("demand") if isinstance(data, dict) else None
    trace_dir = demand.get("trace_dir") if isinstance(demand, dict) else None
    if isinstance(trace_dir, str) and trace_dir and not Path(trace_dir).expanduser().is_absolute():
        beside = folder / trace_dir
        if beside.is_dir():
            demand["trace_dir"] = str(beside.resolve())


def dump_scenario(scenario: Scenario, path: str | Path) -> None:
    """Write the resolved scenario as YAML; :func:`load_scenario` reads it back to an equal object."""
    Path(path).write_text(yaml.safe_dump(scenario.model_dump(mode="json"), sort_keys=False))
