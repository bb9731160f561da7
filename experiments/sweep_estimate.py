"""What a sweep will cost, from a measured sample of its own runs (``flosim sweep SPEC --estimate N``).

Before sending a sweep to a cluster (or leaving a laptop on overnight) a researcher wants to know its
bill. :func:`estimate_sweep` runs ``N`` of the spec's runs, spread evenly over its design (point-major
order, first and last included), one after the other in this process, exactly as the sweep would run
them (:func:`experiments.sweep.execute_run`, into a temporary folder that is removed afterwards), and
measures each run's CPU time (this process and any agent processes it started, user + system) and
wall time. The estimate is the mean CPU time of a run times the number of runs; nothing of the sweep's
own folder is written or read, so an estimate never disturbs a sweep in progress.

CPU time, not wall time, is what scales to another machine's cores: on a shared machine the wall
clock also counts the other jobs. The runs differ (design points change the network's capacities
and costs), so the sample's spread (``cpu_s.min`` .. ``cpu_s.max``) is reported with the mean.
"""

from __future__ import annotations

import resource
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from experiments.sweep import LoadedSpec, RunTask, execute_run, plan_runs
from sim.model.errors import FlosimError


def _cpu_s() -> float:
    """CPU seconds used so far by this process and its waited-for children (user + system)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def sample_tasks(tasks: list[RunTask], n: int) -> list[RunTask]:
    """``n`` of ``tasks`` spread evenly over the list (all of them when ``n`` is at least their number)."""
    if n >= len(tasks):
        return list(tasks)
    picks = np.unique(np.round(np.linspace(0, len(tasks) - 1, n)).astype(int))
    return [tasks[i] for i in picks]


@dataclass(frozen=True)
class SweepEstimate:
    spec: str
    runs_total: int
    sampled: list[dict[str, Any]]  # one row per measured run: run_id, point, replication, cpu_s, wall_s, status

    @property
    def cpu_per_run(self) -> np.ndarray:
        return np.array([r["cpu_s"] for r in self.sampled if r["status"] == "done"], dtype=float)

    def as_json(self) -> dict[str, Any]:
        cpu = self.cpu_per_run
        mean = float(cpu.mean()) if cpu.size else None
        return {
            "spec": self.spec,
            "runs_total": self.runs_total,
            "runs_sampled": len(self.sampled),
            "runs_failed": sum(r["status"] != "done" for r in self.sampled),
            "cpu_s": {"mean": mean, "min": float(cpu.min()) if cpu.size else None, "max": float(cpu.max()) if cpu.size else None},
            "estimated_cpu_hours": None if mean is None else mean * self.runs_total / 3600.0,
            "sampled": self.sampled,
        }


def estimate_sweep(loaded: LoadedSpec, n: int, *, on_run: Callable[[dict[str, Any]], None] | None = None) -> SweepEstimate:
    """Run ``n`` of the sweep's runs (:func:`sample_tasks`) and measure them; see the module docstring.
    ``on_run`` is called with each measured row as it finishes (progress for long samples)."""
    if n < 1:
        raise FlosimError(f"--estimate must be >= 1, got {n}")
    scratch = Path(tempfile.mkdtemp(prefix="flosim-estimate-"))
    try:
        tasks = plan_runs(loaded, scratch / "runs")
        rows = []
        for task in sample_tasks(tasks, n):
            cpu0, wall0 = _cpu_s(), time.perf_counter()
            outcome = execute_run(task)
            row = {"run_id": task.run_id, "point": task.point, "replication": task.replication,
                   "cpu_s": _cpu_s() - cpu0, "wall_s": time.perf_counter() - wall0, "status": outcome.status,
                   **({"error": outcome.error} if outcome.error else {})}
            rows.append(row)
            if on_run is not None:
                on_run(row)
        return SweepEstimate(loaded.spec.name, len(tasks), rows)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
