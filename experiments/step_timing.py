"""Where a simulation's time goes: wall-clock timers around the main steps of every policy.

``with StepTimer() as timer: ...`` wraps a fixed list of flosim functions (:data:`STEPS`) with timers
for the duration of the block and restores them afterwards; ``timer.report(total_s)`` then gives, per
step, the seconds, calls and share of ``total_s``. Nothing a function returns changes: the timers only
read ``time.perf_counter`` around each call. ``flosim bench --replay`` uses it to say where each
policy's time goes on a trace replay (``docs/performance.md``).

Two layers, each timed *exclusively* (a step's own time, without the time of a step of the same layer
nested in it, so a layer's shares add up to at most 1):

- ``steps``: what the policy does, called on the simulation's own thread (the negotiation's set-up,
  its rounds, the certificate checks, the JIT plan, the CBT's pricing (its LPs on the forecast and
  one per demand path), the demand paths, menu items and offers, plan evaluations, the first-best
  solve, the world's own bookkeeping). Time not in any step is ``other`` (the policy's own Python, the SimPy loop).
- ``work``: the kind of computation underneath (LP builds, HiGHS solves, OSQP best responses and
  their set-up, agent processes). The negotiation asks its agents in threads, so this layer's
  seconds are summed over threads and may exceed the wall time of the step that waited for them.
"""

from __future__ import annotations

import functools
import importlib
import sys
import threading
import time
from collections import defaultdict
from typing import Any, Callable

#: (layer, label, module, attribute): ``attribute`` is ``name`` (a module function) or ``Class.name``.
STEPS: tuple[tuple[str, str, str, str], ...] = (
    ("steps", "negotiation set-up", "policies.cpp", "negotiate_efficient_plan"),
    ("steps", "negotiation rounds", "sim.negotiation.coordinator", "ConsensusADMM.negotiate"),
    ("steps", "certificate checks", "sim.negotiation.certificate", "Certifier.__call__"),
    ("steps", "certificate checks", "sim.negotiation.certificate", "certify"),
    ("steps", "plan confirmation", "sim.negotiation.best_response", "LPBestResponse.confirm"),
    ("steps", "JIT plan", "policies.jit", "jit_outcome"),
    ("steps", "JIT ordering (and the cool-down's)", "policies.jit", "JITPolicy.decide"),
    ("steps", "first-best solve", "sim.parties.oracle", "joint_plan"),
    ("steps", "demand paths", "policies.cbt", "demand_scenarios"),
    ("steps", "demand paths", "forecasts.sampling", "sample_demand_paths"),
    ("steps", "CBT pricing", "policies.cbt", "cost_benefit_transfer"),
    ("steps", "CBT pricing", "policies.cbt", "TransferPricer.price"),
    ("steps", "CBT pricing", "policies.cbt", "TransferPricer.price_plan"),
    ("steps", "CBT pricing", "policies.cbt", "TransferPricer.__init__"),
    ("steps", "CBT: the retailer's plan on the forecast", "policies.cbt", "TransferPricer.completed"),
    ("steps", "CBT: one LP per demand path", "policies.cbt", "TransferPricer._future"),
    ("steps", "CBT: one LP per demand path", "policies.cbt", "TransferPricer._weeks_of_po"),
    ("steps", "menu items", "policies.menu", "build_menu"),
    ("steps", "menu offers", "policies.menu", "MenuPolicy.offer"),
    ("steps", "plan evaluations", "sim.parties.retailer", "RetailerAgent.evaluate"),
    ("steps", "plan evaluations", "sim.parties.vendor", "VendorAgent.evaluate"),
    ("steps", "world (fulfil, serve, account)", "sim.world", "World._execute"),
    ("steps", "world (fulfil, serve, account)", "sim.world", "World._serve"),
    ("steps", "world (fulfil, serve, account)", "sim.world", "World._account"),
    ("steps", "world (fulfil, serve, account)", "sim.world", "World.context"),
    ("work", "LP builds", "sim.parties.retailer", "RetailerAgent.add_block"),
    ("work", "LP builds", "sim.parties.vendor", "VendorAgent.add_block"),
    ("work", "LP builds", "sim.model.lp", "LPBuilder.build"),
    ("work", "LP builds", "sim.model.lp", "LinearProgram.with_bounds"),
    ("work", "HiGHS solves", "sim.model.lp", "solve_lp"),
    ("work", "HiGHS solves", "sim.model.lp", "LPModel.solve"),
    ("work", "OSQP set-up", "sim.negotiation.best_response", "LPBestResponse.__init__"),
    ("work", "OSQP best responses", "sim.negotiation.best_response", "LPBestResponse.best_response"),
    ("work", "agent process start-up", "sim.negotiation.best_response", "ProcessNegotiator._start"),
    ("work", "agent process calls", "sim.negotiation.best_response", "ProcessNegotiator._call"),
)

LAYERS = ("steps", "work")
#: where a wrapped function may have been imported by name
PACKAGES = ("sim", "policies", "forecasts", "experiments")


class StepTimer:
    """Times :data:`STEPS` while active (a context manager; not re-entrant)."""

    def __init__(self, steps: tuple[tuple[str, str, str, str], ...] = STEPS) -> None:
        self.steps = steps
        self.seconds: dict[str, dict[str, float]] = {layer: defaultdict(float) for layer in LAYERS}
        self.calls: dict[str, dict[str, int]] = {layer: defaultdict(int) for layer in LAYERS}
        self._local = threading.local()
        self._lock = threading.Lock()
        self._undo: list[tuple[Any, str, Any]] = []

    def reset(self) -> None:
        """Forget what was measured (the wrappers stay in place)."""
        for layer in LAYERS:
            self.seconds[layer].clear()
            self.calls[layer].clear()

    # -- wrapping -----------------------------------------------------------------------------------
    def _timed(self, fn: Callable[..., Any], layer: str, label: str) -> Callable[..., Any]:
        timer = self

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            stacks = getattr(timer._local, "stacks", None)
            if stacks is None:
                stacks = timer._local.stacks = {name: [] for name in LAYERS}
            stack = stacks[layer]
            stack.append(0.0)  # time of nested steps of this layer, on this thread
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - started
                nested = stack.pop()
                if stack:
                    stack[-1] += elapsed
                with timer._lock:
                    timer.seconds[layer][label] += elapsed - nested
                    timer.calls[layer][label] += 1

        timed.__wrapped_by_step_timer__ = True  # type: ignore[attr-defined]
        return timed

    def __enter__(self) -> "StepTimer":
        for layer, label, module_name, attribute in self.steps:
            module = importlib.import_module(module_name)
            owner_name, _, name = attribute.rpartition(".")
            if owner_name:  # a method: replaced on its class
                owner = getattr(module, owner_name)
                original = owner.__dict__[name]
                self._undo.append((owner, name, original))
                setattr(owner, name, self._timed(original, layer, label))
                continue
            original = getattr(module, name)
            wrapped = self._timed(original, layer, label)
            # a module function is also bound wherever it was imported by name (``from x import f``)
            # (under its own or another name) in flosim's packages
            for module_name_, other in list(sys.modules.items()):
                if module_name_.partition(".")[0] not in PACKAGES:
                    continue
                for key, value in list(getattr(other, "__dict__", {}).items()):
                    if value is original:
                        self._undo.append((other, key, original))
                        setattr(other, key, wrapped)
        return self

    def __exit__(self, *exc: Any) -> None:
        for owner, name, original in reversed(self._undo):
            setattr(owner, name, original)
        self._undo.clear()

    # -- results ------------------------------------------------------------------------------------
    def report(self, total_s: float) -> dict[str, dict[str, dict[str, float]]]:
        """Per layer, per label: ``seconds``, ``calls`` and ``share`` of ``total_s`` (largest first);
        the ``steps`` layer also has ``other``, the time in no step."""
        out: dict[str, dict[str, dict[str, float]]] = {}
        for layer in LAYERS:
            rows = sorted(self.seconds[layer].items(), key=lambda kv: -kv[1])
            table = {label: {"seconds": s, "calls": self.calls[layer][label], "share": s / total_s if total_s > 0 else 0.0}
                     for label, s in rows}
            if layer == "steps":
                rest = max(total_s - sum(self.seconds[layer].values()), 0.0)
                table["other"] = {"seconds": rest, "calls": 0, "share": rest / total_s if total_s > 0 else 0.0}
            out[layer] = table
        return out
