"""Module switches (sim.model.switches) hold in every process that does flosim's work: an agent's worker
answers as this process would, and a task carried to another process sees the values set here."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import numpy as np

from conftest import one_vendor_round
from sim.model import switches
from sim.model import separable
from sim.negotiation.best_response import negotiator_for, process_negotiator, stop_idle_workers
from sim.negotiation.parts import PartsNegotiator


def test_an_agent_worker_answers_with_the_switches_set_here(default_scenario, monkeypatch) -> None:
    """With SPLIT_MIN_VARIABLES lowered here, the small retailer falls apart here and must in its
    workers too (a worker that kept the default would answer the whole LP in part 0: other numbers).
    Workers kept from an earlier negotiation must take the new value as well."""
    retailer, _ = one_vendor_round(default_scenario)
    rng = np.random.default_rng(3)
    with process_negotiator(retailer) as before:  # workers that then wait, idle, with the defaults
        assert before.shape == negotiator_for(retailer).shape
    monkeypatch.setattr(separable, "SPLIT_MIN_VARIABLES", 0)
    here = negotiator_for(retailer)
    assert isinstance(here, PartsNegotiator) and here.parts == 2
    try:
        with process_negotiator(retailer) as there:
            assert isinstance(there, PartsNegotiator) and there.parts == 2
            for _ in range(2):
                z, y = rng.uniform(0, 30, here.shape), rng.normal(0, 1.0, here.shape)
                np.testing.assert_array_equal(there.best_response(z, y, 0.1), here.best_response(z, y, 0.1))
    finally:
        stop_idle_workers()


def _read_split() -> int:
    return separable.SPLIT_MIN_VARIABLES


def test_a_carried_task_sets_the_switches_of_this_process(monkeypatch) -> None:
    """What a Dask worker runs: the function with the values read when it was wrapped."""
    monkeypatch.setattr(separable, "SPLIT_MIN_VARIABLES", 123)
    carried = switches.Carried(_read_split)
    assert carried.values[("sim.model.separable", "SPLIT_MIN_VARIABLES")] == 123
    monkeypatch.setattr(separable, "SPLIT_MIN_VARIABLES", 456)  # as a fresh process would hold it
    assert carried() == 123


def test_every_switch_names_a_module_global() -> None:
    for module, name in switches.SWITCHES:
        assert hasattr(importlib.import_module(module), name), (module, name)


def test_max_groups_set_here_decides_the_groups(default_scenario, monkeypatch) -> None:
    """MAX_GROUPS is read when an LP is split, not bound when the module was imported: setting it
    (here, or in a worker from the carried values) changes the groups of ``Split.of`` and of a
    ``SeparableLP`` made without ``max_groups``."""
    from conftest import retailer_lp
    from sim.model.separable import SeparableLP, Split, pieces

    monkeypatch.setattr(separable, "SPLIT_MIN_VARIABLES", 0)
    lp, _ = retailer_lp(default_scenario)
    assert np.unique(pieces(lp)).size > 3  # the retailer's LP falls apart into more than 3 pieces
    for groups in (2, 3):
        monkeypatch.setattr(separable, "MAX_GROUPS", groups)
        assert len(Split.of(lp).parts) == groups
        assert SeparableLP(lp).groups == groups
    assert len(Split.of(lp, 2).parts) == 2  # an explicit max_groups still wins


def test_a_carried_task_carries_every_switch_even_of_modules_not_imported_here() -> None:
    """A Dask worker of a long-lived scheduler may hold values an earlier client's task set: a carried
    task must reset those too, so it carries every switch, also from a process that has not imported
    the switch's module (a fresh interpreter here; the sweep command has not imported policies.cpp)."""
    code = ("import sys; from sim.model import switches; c = switches.Carried(print); "
            "print(sorted(m for m, _ in c.values) == sorted(m for m, _ in switches.SWITCHES), "
            "c.values[('policies.cpp', 'PROCESS_THRESHOLD')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True,
                         cwd=Path(__file__).resolve().parents[1]).stdout
    from policies import cpp

    assert out.split() == ["True", str(cpp.PROCESS_THRESHOLD)]
