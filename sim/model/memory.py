"""How much memory a run needs, checked before anything is allocated.

A run holds its random inputs (demand, and for every week the forecasts of the next ``horizon`` weeks
and their uncertainty, by region and product) and, each week, the parties' planning LPs (a variable
per lane, FC, region and product for each week of the horizon). :func:`run_bytes` estimates that from
the scenario's sizes; :func:`check_run_fits` refuses, with the sizes named, a run that would need more
than the memory this machine has available (``weeks: 1000000000``, ``horizon: 100000`` or a product
generator ``count`` of ten million would otherwise end in a ``MemoryError`` after minutes).

The estimate is deliberately rough (a factor of two either way); it only has to tell a run that fits
from one that cannot.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Bytes an LP variable costs across the modelling layer and the solver (columns, bounds, nonzeros).
LP_BYTES_PER_VARIABLE = 400
#: Bytes a scenario's product costs as Python objects (model, resolved dict, YAML text).
PRODUCT_BYTES = 4_000


@dataclass(frozen=True)
class RunSize:
    """The sizes that drive a run's memory."""

    weeks: int
    horizon: int
    products: int
    regions: int
    fcs: int
    origins: int  # over all vendors
    lanes: int  # over all vendors
    vendors: int = 1

    @property
    def input_bytes(self) -> int:
        # forecasts, their standard deviations and two temporaries of the same shape, float64
        return 4 * 8 * (self.weeks + self.horizon) * self.horizon * self.regions * self.products

    @property
    def lp_variables(self) -> int:
        # each vendor's block of the plan adds a shipment per FC; the retailer's stock and receipts one each
        per_week = self.lanes + self.fcs * self.regions + (1 + self.vendors) * self.fcs + 2 * self.origins + self.regions
        return self.horizon * self.products * per_week

    @property
    def bytes(self) -> int:
        return self.input_bytes + LP_BYTES_PER_VARIABLE * self.lp_variables + PRODUCT_BYTES * self.products


def available_bytes() -> int:
    """Memory this machine has available now (physical memory not in use)."""
    import psutil

    return int(psutil.virtual_memory().available)


def _gb(n: float) -> str:
    return f"{n / 1e9:,.1f} GB" if n >= 1e8 else f"{n / 1e6:,.0f} MB"


def run_too_big(size: RunSize, available: int | None = None) -> str | None:
    """Why a run of ``size`` cannot fit in memory, or None when it can."""
    available = available_bytes() if available is None else available
    need = size.bytes
    if need <= available:
        return None
    return (f"a run of {size.weeks:,} weeks, horizon {size.horizon:,}, {size.products:,} products and "
            f"{size.regions:,} regions needs about {_gb(need)} of memory; this machine has {_gb(available)} available")
