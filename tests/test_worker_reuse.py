"""Agent workers kept across negotiations: a worker is given back only when nothing of its last
negotiation can reach the next one. A negotiator closed in the middle of a call, one the garbage
collector ends never hand a worker to a next user."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from conftest import one_vendor_round
from sim.negotiation import best_response as br
from sim.negotiation.best_response import ProcessNegotiator, negotiator_for, stop_idle_workers


def test_a_negotiator_closed_during_a_call_stops_its_worker(small_scenario) -> None:
    """close() from another thread while a call holds the negotiator (here between the worker's
    set-up report and the question): the worker is not given back (it would read the question as
    its next agent, or answer the call to whoever takes it next); the call fails with
    BestResponseError, and the next negotiator gets a worker that answers as a fresh one."""
    retailer, _ = one_vendor_round(small_scenario)
    z, y = np.full(retailer.plan_shape, 20.0), np.zeros(retailer.plan_shape)
    entered = threading.Event()

    class Paused(ProcessNegotiator):
        def _start(self) -> None:
            super()._start()
            entered.set()
            time.sleep(0.5)  # the call holds the negotiator; close() comes now

    stop_idle_workers()
    try:
        neg = Paused(retailer)
        errors: list[BaseException] = []

        def ask() -> None:
            try:
                neg.best_response(z, y, 0.3)
            except BaseException as exc:  # noqa: BLE001 - looked at below
                errors.append(exc)

        t = threading.Thread(target=ask)
        t.start()
        assert entered.wait(60)
        neg.close()
        t.join(60)
        assert not t.is_alive()
        assert len(errors) == 1 and isinstance(errors[0], br.BestResponseError), errors
        assert neg._proc.poll() is not None and neg._proc not in br._IDLE
        assert not br._IDLE
        with ProcessNegotiator(retailer) as nxt:
            np.testing.assert_array_equal(nxt.best_response(z, y, 0.3), negotiator_for(retailer).best_response(z, y, 0.3))
    finally:
        stop_idle_workers()


_COLLECTED = """\
import gc, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
from conftest import one_vendor_round, small_scenario_dict
from sim.model.scenario import scenario_from_dict
from sim.negotiation import best_response as br

retailer, _ = one_vendor_round(scenario_from_dict(small_scenario_dict(), "<small>"))
neg = br.ProcessNegotiator(retailer)
neg.best_response(np.full(retailer.plan_shape, 20.0), np.zeros(retailer.plan_shape), 0.3)
proc = neg._proc
neg.itself = neg  # a cycle: only the collector ends it
del neg
with br._IDLE_LOCK:  # the collector runs at any allocation, also while this thread holds the lock
    gc.collect()
print(proc.poll() is not None, len(br._IDLE))
"""


def test_a_negotiator_the_garbage_collector_ends_stops_its_worker() -> None:
    """A negotiator dropped without close() and found by the garbage collector stops its worker:
    the collector may run while this thread holds the idle workers' lock (giving the worker back
    there would wait for that lock for ever), and it is no place for a round trip to the worker."""
    tests = str(Path(__file__).resolve().parent)
    run = subprocess.run([sys.executable, "-c", _COLLECTED, tests], capture_output=True, text=True, timeout=90,
                         cwd=str(Path(tests).parent))
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["True", "0"]
