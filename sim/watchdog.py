"""Worker processes that leave when the sweep that started them is gone.

A sweep (or a ``flosim run --workers N``) killed with ``kill -9`` gets no chance to stop its workers, which would go on simulating and
writing into the output folder. Every worker a sweep starts on this machine (a process pool's, or a
Dask ``LocalCluster``'s) runs :func:`watch_parent`: a daemon thread that checks once a second that the
sweep process still exists (by process id *and* start time, so a reused id does not count) and ends
the worker when it does not, or when the sweep is a zombie (killed, not yet reaped by its own parent).
On Linux the start time is the kernel's count of clock ticks since boot: the wall-clock start time
moves when the system clock is stepped (NTP, a resumed virtual machine), which would end every worker
of a healthy sweep. The run the worker was on is abandoned; its temporary folder is removed by
the next sweep in that folder. Workers of an external Dask scheduler belong to their cluster and are
left alone.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

import psutil

try:  # the Dask plugin base class; Dask is a dependency, but a process pool does not need it
    from distributed.diagnostics.plugin import WorkerPlugin
except ImportError:  # pragma: no cover
    WorkerPlugin = object  # type: ignore[assignment,misc]

#: Exit status of a worker that left because its sweep was gone.
ORPHAN_EXIT = 70
#: Linux with /proc: start times are read as clock ticks since boot (see the module docstring).
_PROC = sys.platform.startswith("linux") and os.path.isdir("/proc/self")


def _linux_stat(pid: int) -> tuple[float, str] | None:
    """A Linux process's start (clock ticks since boot, which a change of the wall clock does not move)
    and state letter (``Z`` zombie, ``X`` dead); None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rpartition(b")")[2].split()  # the command name may hold spaces and ')'
        return float(fields[19]), fields[0].decode()  # fields 22 (starttime) and 3 (state) of proc(5)
    except (OSError, IndexError, ValueError):
        return None


def parent_identity() -> tuple[int, float]:
    """This process's id and start time: together they name it even after its id is reused."""
    pid = os.getpid()
    if _PROC:
        stat = _linux_stat(pid)
        assert stat is not None, "/proc/self/stat is always readable"
        return pid, stat[0]
    return pid, psutil.Process(pid).create_time()


def alive(pid: int, started: float) -> bool:
    """Whether the process ``pid`` that started at ``started`` (as :func:`parent_identity` gave it)
    still runs; a zombie does not."""
    if _PROC:
        stat = _linux_stat(pid)
        return stat is not None and stat[1] not in ("Z", "X") and stat[0] == started
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE and abs(proc.create_time() - started) < 1e-3
    except psutil.Error:
        return False


def watch_parent(pid: int, started: float, interval: float = 1.0) -> None:
    """End this process (status :data:`ORPHAN_EXIT`) once ``pid`` is gone; checks every ``interval`` s."""

    def loop() -> None:
        while alive(pid, started):
            time.sleep(interval)
        os._exit(ORPHAN_EXIT)

    threading.Thread(target=loop, name="flosim-watch-parent", daemon=True).start()


class WatchParentPlugin(WorkerPlugin):
    """Runs :func:`watch_parent` in each worker of a Dask cluster the sweep started itself."""

    def __init__(self, pid: int, started: float) -> None:
        self.pid, self.started = pid, started

    def setup(self, worker: Any) -> None:
        watch_parent(self.pid, self.started)
