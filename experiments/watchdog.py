"""Worker processes that leave when the sweep that started them is gone.

A sweep killed with ``kill -9`` gets no chance to stop its workers, which would go on simulating and
writing into the output folder. Every worker a sweep starts on this machine (a process pool's, or a
Dask ``LocalCluster``'s) runs :func:`watch_parent`: a daemon thread that checks once a second that the
sweep process still exists (by process id *and* start time, so a reused id does not count) and ends
the worker when it does not. The run the worker was on is abandoned; its temporary folder is removed by
the next sweep in that folder. Workers of an external Dask scheduler belong to their cluster and are
left alone.
"""

from __future__ import annotations

import os
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


def parent_identity() -> tuple[int, float]:
    """This process's id and start time: together they name it even after its id is reused."""
    return os.getpid(), psutil.Process().create_time()


def alive(pid: int, started: float) -> bool:
    """Whether the process ``pid`` that started at ``started`` still runs."""
    try:
        return abs(psutil.Process(pid).create_time() - started) < 1e-3
    except (psutil.NoSuchProcess, psutil.AccessDenied):
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
