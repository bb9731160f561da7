"""Executors: where a sweep's runs execute. Results never depend on the choice.

* :class:`LocalExecutor` runs on this machine: in-process when ``workers == 1`` (easiest to debug),
  else in a pool of ``workers`` processes (:func:`sim.process_pool.run_in_processes`).
* :class:`DaskExecutor` runs on a Dask cluster: a ``distributed.LocalCluster`` it starts (``workers``
  single-threaded worker processes) or an existing scheduler at ``scheduler`` (``tcp://host:8786``), for
  example one started on a SLURM cluster with dask-jobqueue (``docs/sweeps.md``). Workers write their run
  folders themselves, so on a cluster the output folder must be on a shared file system, and a user's
  own policy module must be importable on every worker.

Both yield ``(task, outcome)`` pairs as runs finish; if the executor itself loses a run (a worker
dies), the outcome is the exception and the sweep records it as a failed run. Worker processes an
executor starts on this machine exit when the sweep process is gone, even after ``kill -9``
(:mod:`sim.watchdog`).
"""

from __future__ import annotations

import logging
import os
from typing import Any, Callable, Iterator, Sequence, TypeVar

from sim.model.errors import FlosimError

T = TypeVar("T")
R = TypeVar("R")


class LocalExecutor:
    """Serial (``workers=1``) or a local process pool; see the module docstring."""

    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, workers if workers is not None else (os.cpu_count() or 1))

    def describe(self) -> dict[str, Any]:
        return {"executor": self.name, "workers": self.workers}

    def run(self, fn: Callable[[T], R], tasks: Sequence[T]) -> Iterator[tuple[T, R | BaseException]]:
        if not tasks:
            return
        if self.workers == 1 or len(tasks) == 1:
            for task in tasks:
                yield task, fn(task)
            return
        from sim.process_pool import run_in_processes

        # workers fork with flosim already imported
        for i, outcome in run_in_processes(fn, tasks, self.workers, preload=["experiments.sweep"]):
            yield tasks[i], outcome


class DaskExecutor:
    """A Dask cluster: started locally (``LocalCluster``) or reached at ``scheduler``."""

    name = "dask"

    def __init__(self, workers: int | None = None, scheduler: str | None = None, processes: bool = True) -> None:
        self.workers = max(1, workers if workers is not None else (os.cpu_count() or 1))
        self.scheduler = scheduler
        self.processes = processes

    def describe(self) -> dict[str, Any]:
        return {"executor": self.name, "workers": self.workers if not self.scheduler else None, "scheduler": self.scheduler}

    def _client(self):
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:  # pragma: no cover - dask is a dependency
            raise FlosimError(f"--executor dask needs dask[distributed]: {exc}") from None
        if self.scheduler:
            try:
                return Client(self.scheduler, timeout="20s"), None
            except (OSError, TimeoutError) as exc:
                raise FlosimError(f"--scheduler {self.scheduler}: cannot connect: {exc}") from None
            except ValueError as exc:
                raise FlosimError(f"--scheduler {self.scheduler!r}: not a scheduler address ({exc})") from None
        import dask

        # non-daemonic workers: a policy may start processes of its own (CPP runs each agent in its own
        # process on large plans), which daemonic processes may not do
        with dask.config.set({"distributed.worker.daemon": False}):
            cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=self.processes,
                                   dashboard_address=None, silence_logs=logging.ERROR)
        return Client(cluster), cluster

    def run(self, fn: Callable[[T], R], tasks: Sequence[T]) -> Iterator[tuple[T, R | BaseException]]:
        if not tasks:
            return
        from distributed import as_completed

        from sim.model.switches import Carried

        client, cluster = self._client()
        try:
            if cluster is not None:  # workers on this machine leave when the sweep is killed
                from sim.watchdog import WatchParentPlugin, parent_identity

                client.register_plugin(WatchParentPlugin(*parent_identity()), name="flosim-watch-parent")
            token = os.urandom(4).hex()
            carried = Carried(fn)  # the module switches set here hold in the workers too
            futures = {client.submit(carried, task, key=f"flosim-{getattr(task, 'run_id', i)}-{token}", pure=False): task
                       for i, task in enumerate(tasks)}
            for fut in as_completed(list(futures)):
                task = futures[fut]
                try:
                    yield task, fut.result()
                except Exception as exc:  # noqa: BLE001 - the run is lost, not the sweep
                    yield task, exc
            futures.clear()
        finally:
            client.close()
            if cluster is not None:
                cluster.close()


def make_executor(kind: str, workers: int | None = None, scheduler: str | None = None) -> LocalExecutor | DaskExecutor:
    """The executor ``flosim sweep --executor KIND`` uses."""
    if scheduler and kind != "dask":
        raise FlosimError("--scheduler needs --executor dask")
    if kind == "local":
        return LocalExecutor(workers)
    if kind == "dask":
        return DaskExecutor(workers, scheduler)
    raise FlosimError(f"--executor {kind!r}: expected 'local' or 'dask'")
