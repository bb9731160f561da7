"""Module switches: settings held in module globals that change answers, or how they are computed.

A user or a test may set one before a run (``sim.model.lp.LP_STARTS = "scratch"``). A process that
does flosim's work elsewhere imports these modules afresh, with their defaults. There are two kinds
of such process: the pool of ``flosim run --workers`` and of a local sweep
(:mod:`sim.process_pool`), and an agent's worker (:class:`sim.negotiation.best_response.ProcessNegotiator`).
Each carries the values set here with the work it is sent, so the same run gives the same numbers in
this process and in any worker.

:func:`current` reads the values here; :func:`apply` sets them in a worker; :class:`Carried` wraps a
task function so that it sets them before it runs (for executors with no initializer of their own).
A new switch is one line in :data:`SWITCHES`.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable

#: ``(module, name)`` of every switch
SWITCHES: tuple[tuple[str, str], ...] = (
    ("sim.model.lp", "LP_STARTS"),
    ("sim.model.lp", "IPM_THRESHOLD"),
    ("sim.model.separable", "SPLIT_MIN_VARIABLES"),
    ("sim.model.separable", "MAX_GROUPS"),
    ("sim.parties.retailer", "WARM_START_LPS"),
    ("sim.parties.retailer", "KEPT_COLUMNS"),
    ("policies.cpp", "PROCESS_THRESHOLD"),
)


def current(every: bool = False) -> dict[tuple[str, str], Any]:
    """The switches of the modules imported in this process, with their values here. A module not
    imported here holds its default, which a worker of this process has without being told (its
    modules are imported afresh, and this process's set of modules only grows). ``every``: all the
    switches, their modules imported here if need be, for a worker that may have served another
    process before (a Dask worker of a scheduler that outlives its clients), which must be told the
    defaults too."""
    if every:
        return {(module, name): getattr(importlib.import_module(module), name) for module, name in SWITCHES}
    return {(module, name): getattr(sys.modules[module], name) for module, name in SWITCHES if module in sys.modules}


def apply(values: dict[tuple[str, str], Any]) -> None:
    """Set switches to ``values`` (as :func:`current` returned them in another process)."""
    for (module, name), value in values.items():
        setattr(importlib.import_module(module), name, value)


class Carried:
    """``fn`` with this process's switches: calling it in another process sets them, then calls ``fn``.
    It carries every switch (``current(every=True)``): the process that calls it may keep values set
    by an earlier caller's task."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.values = current(every=True)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        apply(self.values)
        return self.fn(*args, **kwargs)
