"""Agent workers kept across negotiations: a worker is given back only when nothing of its last
negotiation can reach the next one. A negotiator closed in the middle of a call, one the garbage
collector ends, and the idle workers a forked child inherits never hand a worker to a next user."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from conftest import one_vendor_round
from sim.negotiation import best_response as br
from sim.negotiation.best_response import ProcessNegotiator, negotiator_for, stop_idle_workers


def _given_back(agent):
    """One negotiation (one answer) on a fresh worker, closed: the query and the worker, now the only
    idle one."""
    z, y = np.full(agent.plan_shape, 20.0), np.zeros(agent.plan_shape)
    stop_idle_workers()
    with ProcessNegotiator(agent) as neg:
        neg.best_response(z, y, 0.3)
    (proc,) = br._IDLE
    return z, y, proc


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


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_leaves_its_parents_idle_workers_alone(small_scenario) -> None:
    """A child forked while workers wait idle (multiprocessing's 'fork' start method) does not
    take them (they answer its parent), and does not hold their pipes: they still stop as soon
    as the parent lets them go, not after a 10 s time-out and a kill."""
    retailer, _ = one_vendor_round(small_scenario)
    try:
        _, _, proc = _given_back(retailer)
        said_r, said_w = os.pipe()
        go_r, go_w = os.pipe()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # (fork of a process with threads)
            pid = os.fork()
        if pid == 0:  # the child: never returns into pytest
            try:
                os.close(said_r)
                os.close(go_w)
                ok = not br._IDLE and br._take_worker() is None
                os.write(said_w, b"1" if ok else b"0")
                os.read(go_r, 1)  # alive until the parent has stopped its workers
            finally:
                os._exit(0)
        os.close(said_w)
        os.close(go_r)
        try:
            assert os.read(said_r, 1) == b"1", "the forked child saw its parent's idle workers as its own"
            t = time.perf_counter()
            stop_idle_workers()
            assert time.perf_counter() - t < 5.0
            assert proc.returncode == 0  # it read end of file and left (not killed)
        finally:
            os.write(go_w, b"x")
            os.close(go_w)
            os.close(said_r)
            os.waitpid(pid, 0)
    finally:
        stop_idle_workers()


def test_a_worker_given_back_serves_the_next_negotiation_as_a_fresh_one(small_scenario) -> None:
    """Workers serve one negotiation after another: the next agent (another party, another week's
    model) gets the answers a fresh process gives, bit for bit, also after a call that failed in the
    worker; one whose answer was never read, or one beyond MAX_IDLE_WORKERS, is not kept."""
    retailer, vendor = one_vendor_round(small_scenario)
    try:
        z, y, proc = _given_back(retailer)
        pid = proc.pid
        zv, yv = np.full(vendor.plan_shape, 20.0), np.zeros(vendor.plan_shape)
        for agent, zz, yy in ((vendor, zv, yv), (retailer, z, y)):
            with ProcessNegotiator(agent) as again:
                assert again._proc.pid == pid
                np.testing.assert_array_equal(again.best_response(zz, yy, 0.3), negotiator_for(agent).best_response(zz, yy, 0.3))
                assert again.dual_value(yy) == negotiator_for(agent).dual_value(yy)
        with ProcessNegotiator(retailer) as failing:
            with pytest.raises(br.BestResponseError):
                failing.best_response(np.zeros(3), np.zeros(3), 0.3)  # the wrong shape fails in the worker
            failing.best_response(z, y, 0.3)  # and the worker answers the next call
        assert len(br._IDLE) == 1
        unread = ProcessNegotiator(retailer)
        unread.best_response(z, y, 0.3)
        unread._in_flight = True  # as if a call had been interrupted before its answer was read
        unread.close()
        assert unread._proc.poll() is not None and not br._IDLE
        negs = [ProcessNegotiator(retailer) for _ in range(br.MAX_IDLE_WORKERS + 1)]
        for neg in negs:
            neg.best_response(z, y, 0.3)
        for neg in negs:
            neg.close()
        assert len(br._IDLE) == br.MAX_IDLE_WORKERS
        assert sum(neg._proc.poll() is not None for neg in negs) == 1
        with pytest.raises(br.BestResponseError, match="closed"):
            negs[0].best_response(z, y, 0.3)
    finally:
        stop_idle_workers()
