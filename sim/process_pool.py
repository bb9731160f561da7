"""A local pool of worker processes, shared by ``flosim run --workers`` and the sweeps' local executor.

:func:`run_in_processes` calls ``fn`` on each task in up to ``workers`` processes and yields
``(index, outcome)`` as tasks finish, the outcome being ``fn``'s result or the exception it raised (or
that lost the process). Workers are forked from a server that has ``preload`` imported already (Linux;
elsewhere they are spawned), are not daemonic (a policy may start agent processes of its own), leave
when the process that started them is gone, even after ``kill -9`` (:mod:`sim.watchdog`). When the
caller is interrupted (Ctrl-C, or it stops reading), ``on_interrupt`` says what happens to the tasks
still running: ``"wait"`` lets them finish (a sweep keeps the runs it had started), ``"stop"`` ends the
workers at once (a ``flosim run`` the user wants stopped). Each worker starts with this process's
module switches (:mod:`sim.model.switches`), so its answers are the ones this process would give.
"""

from __future__ import annotations

import multiprocessing
import sys
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Callable, Iterator, Sequence, TypeVar

from sim.model import switches
from sim.watchdog import parent_identity, watch_parent

T = TypeVar("T")
R = TypeVar("R")


def _start_worker(parent: tuple[int, float], values: dict[tuple[str, str], Any], initializer: Callable[..., None] | None,
                  initargs: tuple[Any, ...]) -> None:
    watch_parent(*parent)
    switches.apply(values)
    if initializer is not None:
        initializer(*initargs)


def run_in_processes(fn: Callable[[T], R], tasks: Sequence[T], workers: int, *, preload: Sequence[str] = (),
                     initializer: Callable[..., None] | None = None,
                     initargs: tuple[Any, ...] = (), on_interrupt: str = "wait") -> Iterator[tuple[int, R | BaseException]]:
    """See the module docstring; ``initializer(*initargs)`` runs once in each worker before its tasks."""
    if on_interrupt not in ("wait", "stop"):
        raise ValueError(f"on_interrupt must be 'wait' or 'stop', got {on_interrupt!r}")
    if not tasks:
        return
    if sys.platform.startswith("linux"):
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(list(preload))
    else:
        ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=ctx, initializer=_start_worker,
                               initargs=(parent_identity(), switches.current(), initializer, initargs))
    try:
        pending: dict[Future, int] = {pool.submit(fn, task): i for i, task in enumerate(tasks)}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                i = pending.pop(future)
                exc = future.exception()
                yield i, (exc if exc is not None else future.result())
    except BaseException:  # interrupted (Ctrl-C) or the caller stopped reading
        if on_interrupt == "stop":
            _terminate(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _terminate(pool: ProcessPoolExecutor) -> None:
    """Stop a pool's worker processes now (``terminate_workers`` from Python 3.14, else each process)."""
    stop = getattr(pool, "terminate_workers", None)
    if callable(stop):
        stop()
        return
    for process in list(getattr(pool, "_processes", {}).values()):
        process.terminate()
