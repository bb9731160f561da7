"""Sweeps: a design over scenario parameters x policies x replications, resumable, on any executor.

A sweep spec is a YAML file (schema below, documented with examples in ``docs/sweeps.md``)::

    name: smoke
    scenario: default              # built-in name, or a YAML file relative to the spec's folder
    weeks: 3                       # optional; default the scenario's
    policies: [jit, first-best, cpp-vcg]
    replications: 2                # seeds spawned from root_seed with numpy.random.SeedSequence
    root_seed: 12345
    fixed: {demand.cv: 0.25}       # overrides applied to every run
    grid:                          # full factorial over these values
      lanes.0.spare_volume: [0, 700]
    lhs:                           # Latin hypercube (scipy.stats.qmc), crossed with the grid
      samples: 4
      parameters:
        demand.cv: {low: 0.1, high: 0.4}
        fcs.PHX.lead_time: {low: 1, high: 3, integer: true}

Parameters are dotted paths into the scenario, applied with :meth:`sim.model.scenario.Scenario.with_overrides`
(list items by position or by name: ``lanes.0.spare_volume``, ``fcs.PHX.lead_time``). One *run* is one
design point and one replication; it simulates every policy on common random numbers (``jit`` always
runs, as the reference for savings and participation). Replication ``i`` uses the same seed at every
design point, so differences between points are not luck either.

What a user may do:

* ``load_spec(path)`` validates a spec (unknown fields, unknown parameter paths and policies are
  :class:`sim.model.errors.SpecError` naming file, field and value); ``plan_runs(spec)`` lists the runs;
* ``run_sweep(spec, out, executor=..., resume=...)`` runs them. Each run writes ``runs/<run_id>/`` (a
  results folder ``flosim plot`` can read) atomically; a run that raises writes ``runs/<run_id>/error.json``
  and the others go on; ``resume=True`` skips finished runs (and retries failed ones); at the end every
  finished run is gathered into tidy tables in ``out``: ``summary.parquet`` (one row per run x policy
  with the swept parameter values, and a column per party and figure: ``net_cost_<party>``,
  ``settled_net_cost_<party>``, ``transfers_<party>``, ``<party>_cumulative_margin`` ...), ``runs.parquet`` (status, error, seed, wall time per run),
  ``ledger.parquet``, ``flows.parquet``, ``decisions.parquet``, plus ``sweep.json`` and ``scenario.yaml``.

Run ids are deterministic: a hash of the base scenario, the run's overrides, policies, weeks and seed,
plus the replication number. Results do not depend on the executor or the number of workers.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import shutil
import sys
import time
import traceback
import socket
from contextlib import closing, contextmanager
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from experiments.replications import replication_seeds  # noqa: F401 - one seed rule for sweeps and runs
from sim.metrics import BY_PARTY, party_columns
from experiments.overrides import override_problem
from sim.model.errors import FlosimError, SpecError
from sim.model.scenario import Scenario, builtin_scenarios, dump_scenario, load_scenario, scenario_from_dict
from sim.model.validation import Number, Whole, format_validation_error, read_yaml

SPEC_VERSION = 1
TABLES = ("ledger", "flows", "decisions")


# -- the spec -------------------------------------------------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class LHSRange(_Strict):
    """Range of one Latin-hypercube parameter: uniform on ``[low, high]`` (or log-uniform with
    ``scale: log``), rounded to whole numbers when ``integer``."""

    low: Number
    high: Number
    integer: bool = False
    scale: Literal["linear", "log"] = "linear"

    @model_validator(mode="after")
    def _check(self) -> "LHSRange":
        if not (math.isfinite(self.low) and math.isfinite(self.high)) or self.low > self.high:
            raise ValueError(f"needs finite low <= high, got low={self.low}, high={self.high}")
        if self.scale == "log" and self.low <= 0:
            raise ValueError(f"scale 'log' needs low > 0, got {self.low}")
        return self


class LHSDesign(_Strict):
    """``samples`` points of a Latin hypercube over ``parameters`` (its seed comes from ``root_seed``)."""

    samples: Whole = Field(ge=1)
    parameters: dict[str, LHSRange] = Field(min_length=1)


class SweepSpec(_Strict):
    """A sweep: base scenario, design (``fixed``, ``grid``, ``lhs``), policies, replications, seed."""

    spec_version: Literal[1] = 1
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="used in the default output folder name")
    description: str = ""
    scenario: str = Field("default", description="built-in scenario name or YAML file (relative to the spec's folder)")
    weeks: Whole | None = Field(None, ge=1, description="weeks simulated per run (default: the scenario's)")
    policies: list[str] = Field(min_length=1, description="policy names or module:Class; jit is always added")
    replications: Whole = Field(1, ge=1)
    root_seed: Whole = Field(0, ge=0, description="root of every replication seed and of the Latin hypercube")
    fixed: dict[str, Any] = Field(default_factory=dict, description="overrides applied to every run")
    grid: dict[str, list[Any]] = Field(default_factory=dict, description="parameter -> values, full factorial")
    lhs: LHSDesign | None = None

    @model_validator(mode="after")
    def _check(self) -> "SweepSpec":
        for path, values in self.grid.items():
            if not values:
                raise ValueError(f"grid.{path}: needs at least one value")
        seen: dict[str, str] = {}
        for where, keys in (("fixed", self.fixed), ("grid", self.grid), ("lhs.parameters", self.lhs.parameters if self.lhs else {})):
            for key in keys:
                if key in seen:
                    raise ValueError(f"parameter {key!r} appears in both {seen[key]} and {where}")
                seen[key] = where
        if len(set(self.policies)) != len(self.policies):
            raise ValueError(f"policies has duplicates: {self.policies}")
        return self

    @property
    def parameters(self) -> list[str]:
        """The swept parameters (grid, then Latin hypercube), in spec order."""
        return [*self.grid, *(self.lhs.parameters if self.lhs else {})]

    @property
    def all_policies(self) -> list[str]:
        return self.policies if "jit" in self.policies else ["jit", *self.policies]


@dataclass(frozen=True)
class LoadedSpec:
    spec: SweepSpec
    scenario: Scenario  # the resolved base scenario
    source: str  # the spec file, for messages


def _resolve_scenario(name: str, spec_dir: Path | None) -> Scenario:
    path = Path(name).expanduser()
    if spec_dir is not None and not path.is_absolute() and (spec_dir / path).exists():
        return load_scenario(spec_dir / path)
    if name in builtin_scenarios() or path.exists():
        return load_scenario(name)
    return load_scenario(name)  # raises the scenario loader's message


def validate_spec(spec: SweepSpec, source: str = "<spec>", spec_dir: Path | None = None) -> LoadedSpec:
    """Check a spec against its scenario and the available policies."""
    from policies.registry import available_policies

    try:
        scenario = _resolve_scenario(spec.scenario, spec_dir)
    except FlosimError as exc:
        raise SpecError(f"{source}: field 'scenario' = {spec.scenario!r}: {exc}") from None
    base = scenario.model_dump(mode="json")
    for where, keys in (("fixed", spec.fixed), ("grid", spec.grid), ("lhs.parameters", spec.lhs.parameters if spec.lhs else {})):
        for key in keys:
            why = override_problem(base, key)
            if why:
                raise SpecError(f"{source}: field '{where}.{key}': {key!r} is not a scenario parameter: {why}")
    available = available_policies()
    for i, p in enumerate(spec.policies):
        if ":" not in p and p not in available:
            raise SpecError(f"{source}: field 'policies.{i}' = {p!r}: unknown or unavailable policy (available: {', '.join(available)})")
    if spec.fixed:
        try:
            scenario = scenario.with_overrides(spec.fixed, source=f"{source} (fixed)")
        except FlosimError as exc:
            raise SpecError(str(exc)) from None
    _check_before_running(spec, scenario, source)
    return LoadedSpec(spec, scenario, source)


#: Most runs one sweep folder may hold (far beyond any real design: hundreds of scenarios x replications).
MAX_RUNS = 1_000_000


def _check_before_running(spec: SweepSpec, scenario: Scenario, source: str) -> None:
    """What would otherwise fail in every run, checked before the first: each policy can be built (a
    user's ``module:Class`` imports, has a name no other policy has, accepts its parameters), each
    grid value and each end of a Latin-hypercube range gives a valid scenario, and the runs fit in
    memory."""
    from forecasts.inputs import check_fits
    from policies.registry import build_policies

    points = math.prod(len(v) for v in spec.grid.values()) * (spec.lhs.samples if spec.lhs else 1)
    if points * spec.replications > MAX_RUNS:  # before the design is drawn: 10^8 LHS samples hung for minutes
        sizes = [f"grid {' x '.join(str(len(v)) for v in spec.grid.values())}" if spec.grid else "",
                 f"lhs.samples {spec.lhs.samples:,}" if spec.lhs else "", f"replications {spec.replications:,}"]
        raise SpecError(f"{source}: the design has {points * spec.replications:,} runs ({', '.join(x for x in sizes if x)}); "
                        f"one sweep folder holds at most {MAX_RUNS:,} (a folder and a sweep.json entry each): "
                        "sweep fewer points or split the design")
    try:
        build_policies(spec.all_policies, scenario)
    except FlosimError as exc:
        raise SpecError(f"{source}: field 'policies': {exc}") from None
    for path, values in spec.grid.items():
        for i, value in enumerate(values):
            try:
                scenario.with_overrides({path: value}, source="")
            except FlosimError as exc:
                raise SpecError(f"{source}: field 'grid.{path}.{i}' = {value!r}: {_why(exc)}") from None
    for path, r in (spec.lhs.parameters.items() if spec.lhs else []):
        for end in ("low", "high"):
            value = getattr(r, end)
            value = int(round(value)) if r.integer else value
            try:
                scenario.with_overrides({path: value}, source="")
            except FlosimError as exc:
                raise SpecError(f"{source}: field 'lhs.parameters.{path}.{end}' = {value!r}: {_why(exc)}") from None
    try:
        check_fits(scenario, spec.weeks or scenario.weeks)
    except FlosimError as exc:
        raise SpecError(f"{source}: field 'weeks': {exc}") from None


def _why(exc: FlosimError) -> str:
    """A scenario error's message without its (empty) source prefix."""
    return "; ".join(line.removeprefix(": ") for line in str(exc).splitlines())


def load_spec(path: str | Path) -> LoadedSpec:
    """Read, validate and resolve a sweep spec file."""
    path = Path(path)
    source = str(path)
    data = read_yaml(path, SpecError, "a YAML sweep spec")
    if not isinstance(data, dict):
        raise SpecError(f"{source}: the top level must be a mapping of fields, not {type(data).__name__}")
    version = data.get("spec_version", SPEC_VERSION)
    if isinstance(version, bool) or version != SPEC_VERSION:  # true == 1 in Python
        raise SpecError(f"{source}: field 'spec_version' = {version!r}: this flosim reads version {SPEC_VERSION}")
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(format_validation_error(source, exc)) from None
    return validate_spec(spec, source, path.resolve().parent)


# -- the design -----------------------------------------------------------------------------------


def lhs_points(design: LHSDesign, root_seed: int) -> list[dict[str, Any]]:
    """The Latin-hypercube points, deterministic in ``root_seed``."""
    from scipy.stats import qmc

    rng = np.random.default_rng(np.random.SeedSequence([root_seed, 0x4C4853]))  # 'LHS' stream
    names = list(design.parameters)
    unit = qmc.LatinHypercube(d=len(names), seed=rng).random(design.samples)
    points = []
    for row in unit:
        point: dict[str, Any] = {}
        for u, name in zip(row, names):
            r = design.parameters[name]
            if r.scale == "log":
                value = math.exp(math.log(r.low) + float(u) * (math.log(r.high) - math.log(r.low)))
            else:
                value = r.low + float(u) * (r.high - r.low)
            point[name] = int(round(value)) if r.integer else float(value)
        points.append(point)
    return points


def design_points(spec: SweepSpec) -> list[dict[str, Any]]:
    """Every design point (swept parameter -> value): the grid's full factorial crossed with the
    Latin hypercube; a single empty point when nothing is swept."""
    grid = [dict(zip(spec.grid, values)) for values in itertools.product(*spec.grid.values())] if spec.grid else [{}]
    lhs = lhs_points(spec.lhs, spec.root_seed) if spec.lhs else [{}]
    return [{**g, **l} for g in grid for l in lhs]


@dataclass(frozen=True)
class RunTask:
    """Everything one run needs, picklable for process pools and Dask workers."""

    run_id: str
    point: int
    replication: int
    seed: int
    parameters: dict[str, Any]  # the swept values of this design point
    base: dict[str, Any]  # the base scenario (fixed overrides applied), as JSON data
    source: str
    policies: tuple[str, ...]
    weeks: int | None
    runs_dir: str
    command: str = ""


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def _trace_name(trace_dir: Any) -> Any:
    """A trace folder as run ids see it: ``trace:<digest of its contents>``, so a trace is named by
    what it holds, not by the folder it sits in (the loader makes a trace beside the scenario file
    absolute, so a moved project would otherwise re-run everything). A trace this machine cannot
    read (it may be on the workers') is named by its path."""
    if not isinstance(trace_dir, str) or not trace_dir:
        return trace_dir
    from forecasts.traces import resolve_trace_dir, trace_digest

    try:
        return f"trace:{trace_digest(resolve_trace_dir(trace_dir))}"
    except (FlosimError, OSError):
        return trace_dir


def _location_free(scenario: dict[str, Any]) -> dict[str, Any]:
    """The base scenario as run ids see it (see :func:`_trace_name`)."""
    demand = scenario.get("demand") or {}
    if demand.get("model") != "trace":
        return scenario
    return {**scenario, "demand": {**demand, "trace_dir": _trace_name(demand.get("trace_dir"))}}


def plan_runs(loaded: LoadedSpec, runs_dir: str | Path) -> list[RunTask]:
    """The sweep's runs in design order (point-major, then replication)."""
    spec = loaded.spec
    base = loaded.scenario.model_dump(mode="json")
    base_hash = _digest(_location_free(base))
    seeds = replication_seeds(spec.root_seed, spec.replications)
    tasks = []
    for i, point in enumerate(design_points(spec)):
        keyed = {**point, "demand.trace_dir": _trace_name(point["demand.trace_dir"])} if "demand.trace_dir" in point else point
        for rep, seed in enumerate(seeds):
            key = {"base": base_hash, "overrides": keyed, "policies": spec.all_policies, "weeks": spec.weeks, "seed": seed}
            run_id = f"{_digest(key)[:10]}-r{rep:03d}"
            tasks.append(RunTask(run_id, i, rep, seed, point, base, loaded.source, tuple(spec.all_policies), spec.weeks,
                                 str(Path(runs_dir).resolve()), " ".join(["flosim", *sys.argv[1:]])))
    return tasks


# -- one run --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunOutcome:
    run_id: str
    status: Literal["done", "failed"]
    wall_s: float
    error: str | None = None


def is_complete(run_dir: Path) -> bool:
    """A finished run: results present and no error recorded."""
    return (run_dir / "summary.json").exists() and (run_dir / "ledger.parquet").exists() and not (run_dir / "error.json").exists()


def damage(run_dir: Path) -> str | None:
    """Why a finished-looking run folder cannot be read back (a truncated Parquet table, a corrupt
    ``summary.json`` ...), naming the file; None when every file reads."""
    from sim.results import check_results_folder

    try:
        check_results_folder(run_dir)
    except FlosimError as exc:
        return str(exc)
    return None


def set_aside(run_dir: Path) -> Path:
    """Move a damaged run folder to ``runs/.damaged/<run_id>-<time>`` (kept for a look, never read
    again) and return where it went."""
    target = run_dir.parent / ".damaged" / f"{run_dir.name}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(run_dir, target)
    return target


def _publish(tmp: Path, final: Path) -> None:
    if final.exists():  # a failed attempt being retried
        shutil.rmtree(final)
    os.replace(tmp, final)


def record_failure(task: RunTask, error: BaseException | str, wall_s: float = 0.0, tb: str = "") -> RunOutcome:
    """Write ``runs/<run_id>/error.json`` (atomically) and return the failed outcome."""
    from sim.results import write_json

    runs_dir = Path(task.runs_dir)
    message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    tmp = runs_dir / f".tmp-{task.run_id}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    write_json(tmp / "error.json", {
        "run_id": task.run_id, "point": task.point, "replication": task.replication, "seed": task.seed,
        "parameters": task.parameters, "error": message, "traceback": tb, "wall_s": wall_s,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    })
    _publish(tmp, runs_dir / task.run_id)
    return RunOutcome(task.run_id, "failed", wall_s, message)


def execute_run(task: RunTask) -> RunOutcome:
    """Simulate one run and write its folder; never raises for a problem of the run itself."""
    from experiments.commands.run import run_summary
    from sim.results import write_results
    from sim.runner import run_policies

    started = time.perf_counter()
    runs_dir = Path(task.runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    tmp = runs_dir / f".tmp-{task.run_id}-{uuid.uuid4().hex[:8]}"
    try:
        scenario = scenario_from_dict(task.base, task.source)
        if task.parameters:
            scenario = scenario.with_overrides(task.parameters, source=f"{task.source} (design point {task.point})")
        result = run_policies(scenario, list(task.policies), weeks=task.weeks, seed=task.seed, run_id=task.run_id, progress=False)
        wall = time.perf_counter() - started
        result.timings["total_s"] = wall
        summary = run_summary(result, str(runs_dir / task.run_id), scenario.name)
        summary.update(run_id=task.run_id, point=task.point, replication=task.replication, parameters=task.parameters)
        write_results(tmp, tables={"ledger": result.ledger, "flows": result.flows, "decisions": result.decisions,
                                   "shortfalls": result.shortfalls},
                      summary=summary, scenario=result.scenario, seed=result.seed, timings=result.timings,
                      extra_metadata={"kind": "sweep-run", "command": task.command, "run_id": task.run_id,
                                      "point": task.point, "replication": task.replication, "parameters": task.parameters})
        _publish(tmp, runs_dir / task.run_id)
        return RunOutcome(task.run_id, "done", wall)
    except Exception as exc:  # noqa: BLE001 - a failing run is recorded, the sweep goes on
        shutil.rmtree(tmp, ignore_errors=True)
        return record_failure(task, exc, time.perf_counter() - started, traceback.format_exc())
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


# -- the sweep ------------------------------------------------------------------------------------
@dataclass
class SweepReport:
    results_dir: str
    runs_total: int
    runs_done: int = 0
    runs_skipped: int = 0
    runs_failed: int = 0
    runs_damaged: int = 0  # finished runs found damaged on resume, set aside and run again
    failures: list[dict[str, str]] = field(default_factory=list)
    wall_s: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {"runs_total": self.runs_total, "runs_done": self.runs_done, "runs_skipped": self.runs_skipped,
                "runs_failed": self.runs_failed, "runs_damaged": self.runs_damaged, "results_dir": self.results_dir,
                "failures": self.failures, "wall_s": self.wall_s}


def _holds_sweep(out: Path) -> bool:
    runs = out / "runs"
    return runs.is_dir() and any(p for p in runs.iterdir() if not p.name.startswith("."))


def run_sweep(
    loaded: LoadedSpec,
    out: str | Path,
    *,
    executor: Any = None,
    resume: bool = False,
    progress: bool | None = None,
    on_run_done: Callable[[RunTask, RunOutcome], None] | None = None,
) -> SweepReport:
    """Run (or resume) a sweep into ``out``; see the module docstring. ``executor`` defaults to
    serial in-process (:class:`experiments.executors.LocalExecutor` with one worker)."""
    started = time.perf_counter()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FlosimError(f"--out {out}: exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FlosimError(f"--out {out}: cannot create folder: {exc}") from None
    with sweep_lock(out):
        if not resume and _holds_sweep(out):
            raise FlosimError(f"--out {out}: already holds sweep results; pass --resume to continue that sweep or choose another --out")
        runs_dir = out / "runs"
        try:
            runs_dir.mkdir(exist_ok=True)
        except OSError as exc:
            raise FlosimError(f"--out {out}: cannot create folder: {exc}") from None
        return _run_locked(loaded, out, runs_dir, executor, resume, progress, on_run_done, started)


LOCK_FILE = "sweep.lock"


@contextmanager
def sweep_lock(out: Path) -> Iterator[None]:
    """Hold ``out/sweep.lock`` for the whole sweep: a second sweep in the same folder is refused with
    a message naming the holder (process, host, start time, command), instead of the two deleting each
    other's temporary folders. The lock is the operating system's (``flock``), so it is released when
    the holder exits however it exits; the file's text only says who holds it."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not a POSIX system: no lock
        yield
        return
    path = out / LOCK_FILE
    try:
        fh = open(path, "a+")
    except OSError as exc:  # a read-only folder, or something else by that name
        raise FlosimError(f"--out {out}: cannot open the sweep's lock file {path}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise FlosimError(f"--out {out}: another sweep is running in this folder ({holder.removesuffix('.')}); wait for it to "
                              f"finish, or choose another --out") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {socket.gethostname()}, started {time.strftime('%Y-%m-%dT%H:%M:%S%z')}: "
                 f"{' '.join(['flosim', *sys.argv[1:]])}\n")
        fh.flush()
        yield
    finally:
        fh.close()


def _run_locked(loaded: LoadedSpec, out: Path, runs_dir: Path, executor: Any, resume: bool, progress: bool | None,
                on_run_done: Callable[[RunTask, RunOutcome], None] | None, started: float) -> SweepReport:
    from tqdm import tqdm

    from experiments.executors import LocalExecutor

    for stale in runs_dir.glob(".tmp-*"):  # left by an interrupted run; never a finished result
        shutil.rmtree(stale, ignore_errors=True)
    tasks = plan_runs(loaded, runs_dir)
    report = SweepReport(results_dir=str(out), runs_total=len(tasks))
    todo = []
    for task in tasks:
        folder = runs_dir / task.run_id
        if resume and is_complete(folder):
            why = damage(folder)
            if why is None:
                report.runs_skipped += 1
                continue
            moved = set_aside(folder)
            report.runs_damaged += 1
            print(f"flosim: run {task.run_id} is damaged ({why}); moved it to {moved} and running it again", file=sys.stderr)
        todo.append(task)
    history = _history(out, resume)
    _write_sweep_json(out, loaded, tasks, report, state="running", history=history)
    executor = executor or LocalExecutor(workers=1)
    show = sys.stderr.isatty() if progress is None else progress
    with tqdm(total=len(todo), desc=f"sweep {loaded.spec.name}", unit="run", file=sys.stderr, disable=not show) as bar, \
            closing(executor.run(execute_run, todo)) as outcomes:
        for task, outcome in outcomes:
            if isinstance(outcome, BaseException):  # the executor lost the run (worker died, ...)
                outcome = record_failure(task, outcome)
            if outcome.status == "done":
                report.runs_done += 1
            else:
                report.runs_failed += 1
                report.failures.append({"run_id": task.run_id, "error": outcome.error or ""})
            bar.update(1)
            if report.runs_failed:
                bar.set_postfix_str(f"{report.runs_failed} failed")
            if on_run_done is not None:
                on_run_done(task, outcome)
    gather(out, loaded, tasks)
    report.wall_s = time.perf_counter() - started
    _write_sweep_json(out, loaded, tasks, report, state="finished", history=history)
    return report


def _history(out: Path, resume: bool) -> dict[str, Any]:
    """The command (and time) that started the sweep in ``out`` and, when resuming, the commands that
    resumed it since: a resume adds itself to ``resumed`` instead of overwriting ``command``."""
    now = {"command": " ".join(["flosim", *sys.argv[1:]]), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if not resume:
        return now
    try:
        before = json.loads((out / "sweep.json").read_text())
    except (OSError, ValueError):
        return now
    if not isinstance(before, dict) or not isinstance(before.get("command"), str):
        return now
    resumed = [c for c in before.get("resumed") or [] if isinstance(c, dict)]
    return {"command": before["command"], "created": before.get("created", now["created"]), "resumed": [*resumed, now]}


def _write_sweep_json(out: Path, loaded: LoadedSpec, tasks: list[RunTask], report: SweepReport, state: str,
                      history: dict[str, Any] | None = None) -> None:
    from sim.results import package_versions, write_json

    spec = loaded.spec
    dump_scenario(loaded.scenario, out / "scenario.yaml")
    points = design_points(spec)
    write_json(out / "sweep.json", {
        "kind": "sweep",
        "state": state,
        "name": spec.name,
        "spec_file": loaded.source,
        "spec": spec.model_dump(mode="json"),
        "scenario": loaded.scenario.name,
        "parameters": spec.parameters,
        "policies": spec.all_policies,
        "points": points,
        "seeds": replication_seeds(spec.root_seed, spec.replications),
        "runs": [{"run_id": t.run_id, "point": t.point, "replication": t.replication, "seed": t.seed} for t in tasks],
        **{k: v for k, v in report.as_json().items() if k != "results_dir"},
        **(history or {"command": " ".join(["flosim", *sys.argv[1:]]), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}),
        "versions": package_versions(),
    })


def _parquet_safe(df: pd.DataFrame) -> pd.DataFrame:
    """Object columns that mix types (bool and text across policies) become text, so Parquet takes them."""
    df = df.copy()
    for col in df.columns[df.dtypes == object]:
        kinds = {type(v) for v in df[col].dropna()}
        if len(kinds) > 1:
            df[col] = df[col].map(lambda v: None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v))
    return df


def _participation_columns(part: dict[str, Any], policy: str) -> dict[str, Any]:
    cols: dict[str, Any] = {}
    for party, entry in (part.get(policy) or {}).items():
        for key in ("settled_ex_post_margin", "cumulative_margin", "worst_margin", "ex_post_weeks_violated", "ex_ante_worst_margin", "ex_ante_weeks_violated"):
            cols[f"{party}_{key}"] = entry.get(key)
    return cols


def gather(out: str | Path, loaded: LoadedSpec, tasks: list[RunTask] | None = None) -> dict[str, pd.DataFrame]:
    """Collect every run of the design from ``out/runs`` into tidy tables written to ``out``."""
    from sim.results import load_results, read_json, write_table

    out = Path(out)
    tasks = tasks if tasks is not None else plan_runs(loaded, out / "runs")
    params = loaded.spec.parameters
    runs, summary = [], []
    frames: dict[str, list[pd.DataFrame]] = {t: [] for t in TABLES}
    for task in tasks:
        folder = out / "runs" / task.run_id
        row: dict[str, Any] = {"run_id": task.run_id, "point": task.point, "replication": task.replication, "seed": task.seed,
                               **{p: task.parameters.get(p) for p in params}}
        if is_complete(folder):
            try:
                res = load_results(folder)
                summaries = [{**row, "policy": policy, "weeks": res.summary["weeks"],
                              **{k: v for k, v in totals.items() if k not in BY_PARTY}, **party_columns(totals),
                              **_participation_columns(res.summary.get("participation") or {}, policy)}
                             for policy, totals in res.summary["policies"].items()]
            except (FlosimError, TypeError, AttributeError) as exc:  # damaged: reported, not gathered
                runs.append({**row, "status": "damaged", "error": f"{exc}", "wall_s": None})
                continue
            runs.append({**row, "status": "done", "error": None, "wall_s": (res.metadata.get("timings") or {}).get("total_s")})
            summary += summaries
            for t in TABLES:
                if t in res.tables:
                    df = res.tables[t].copy()
                    df.insert(1, "point", task.point)
                    df.insert(2, "replication", task.replication)
                    frames[t].append(df)
        else:
            err = folder / "error.json"
            try:
                message = read_json(err).get("error") if err.exists() else "not run"
            except FlosimError as exc:
                message = str(exc)
            runs.append({**row, "status": "failed" if err.exists() else "missing", "error": message, "wall_s": None})
    tables = {
        "summary": pd.DataFrame(summary),
        "runs": pd.DataFrame(runs),
        **{t: (pd.concat(frames[t], ignore_index=True) if frames[t] else pd.DataFrame()) for t in TABLES},
    }
    for name, df in tables.items():
        write_table(out / f"{name}.parquet", _parquet_safe(df))
    return tables


def load_sweep(folder: str | Path) -> tuple[dict[str, Any], dict[str, pd.DataFrame]]:
    """``sweep.json`` and the gathered tables of a sweep folder (for plots and reports)."""
    from sim.results import read_json, read_table

    folder = Path(folder)
    if not (folder / "sweep.json").exists():
        if (folder / "runs").is_dir():
            raise FlosimError(f"{folder}: a sweep folder without its sweep.json (deleted, or the sweep was stopped before "
                              "writing it); `flosim sweep SPEC --out DIR --resume` rewrites it and gathers the finished runs")
        raise FlosimError(f"{folder}: not a sweep folder (no sweep.json)")
    meta = read_json(folder / "sweep.json", ("kind", "parameters"))
    if not (folder / "summary.parquet").exists():
        state = meta.get("state")
        raise FlosimError(f"{folder}: the sweep's tables were not gathered (no summary.parquet; sweep.json says the sweep "
                          f"is {state!r}); `flosim sweep SPEC --out DIR --resume` finishes it and gathers the runs")
    if not (isinstance(meta["parameters"], list) and all(isinstance(p, str) for p in meta["parameters"])):
        raise FlosimError(f"{folder / 'sweep.json'}: damaged ('parameters' is not a list of parameter names)")
    tables = {}
    for name in ("summary", "runs", *TABLES):
        p = folder / f"{name}.parquet"
        if name in GATHERED_COLUMNS:  # gather writes both, whatever the runs did
            tables[name] = read_table(p)
            missing = [c for c in GATHERED_COLUMNS[name] if c not in tables[name].columns]
            if len(tables[name]) and missing:
                raise FlosimError(f"{p}: damaged or not a flosim sweep table (no column {', '.join(missing)})")
        else:
            tables[name] = read_table(p) if p.exists() else pd.DataFrame()
    return meta, tables


#: Columns the plots and reports read from a gathered sweep's tables.
GATHERED_COLUMNS = {"summary": ("run_id", "point", "replication", "policy"), "runs": ("run_id", "status")}

