"""The local process pool shared by ``flosim run --workers`` and the sweeps' local executor."""

from __future__ import annotations

import time

import pytest

from sim.process_pool import run_in_processes


def _square_or_sleep(x: int) -> int:
    if x < 0:
        time.sleep(-x)
    if x == 13:
        raise ValueError("unlucky")
    return x * x


def _set(value: int) -> None:
    global _SEEN
    _SEEN = value


_SEEN = 0


def _seen(_task: int) -> int:
    return _SEEN


def test_outcomes_by_index_with_exceptions_returned():
    got = dict(run_in_processes(_square_or_sleep, [2, 13, 3], 2))
    assert got[0] == 4 and got[2] == 9
    assert isinstance(got[1], ValueError) and "unlucky" in str(got[1])


def test_initializer_runs_in_each_worker():
    assert [v for _, v in run_in_processes(_seen, [0, 1, 2], 2, initializer=_set, initargs=(7,))] == [7, 7, 7]


def test_stop_ends_running_tasks_when_the_caller_stops_reading():
    started = time.perf_counter()
    outcomes = run_in_processes(_square_or_sleep, [1, -60], 2, on_interrupt="stop")
    assert next(outcomes) == (0, 1)
    outcomes.close()  # as an interrupted caller does
    assert time.perf_counter() - started < 30  # the 60-second task was not waited for


def test_bad_on_interrupt_refused():
    with pytest.raises(ValueError, match="on_interrupt"):
        list(run_in_processes(_square_or_sleep, [1], 1, on_interrupt="later"))
