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

Parameters are dotted paths into the scenario, applied with :meth:`sim.scenario.Scenario.with_overrides`
(list items by position or by name: ``lanes.0.spare_volume``, ``fcs.PHX.lead_time``). One *run* is one
design point and one replication; it simulates every policy on common random numbers (``jit`` always
runs, as the reference for savings and participation). Replication ``i`` uses the same seed at every
design point, so differences between points are not luck either.

What a user may do:

* ``load_spec(path)`` validates a spec (unknown fields, unknown parameter paths and policies are
  :class:`sim.errors.SpecError` naming file, field and value); ``plan_runs(spec)`` lists the runs;
* ``run_sweep(spec, out, executor=..., resume=...)`` runs them. Each run writes ``runs/<run_id>/`` (a
  results folder ``flosim plot`` can read) atomically; a run that raises writes ``runs/<run_id>/error.json``
  and the others go on; ``resume=True`` skips finished runs (and retries failed ones); at the end every
  finished run is gathered into tidy tables in ``out``: ``summary.parquet`` (one row per run x policy
  with the swept parameter values), ``runs.parquet`` (status, error, seed, wall time per run),
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
from contextlib import closing
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from experiments.replications import replication_seeds  # noqa: F401 - one seed rule for sweeps and runs
from sim.errors import FlosimError, SpecError
from sim.scenario import Scenario, builtin_scenarios, dump_scenario, load_scenario, scenario_from_dict
from sim.validation import format_validation_error, read_yaml

SPEC_VERSION = 1
TABLES = ("ledger", "flows", "decisions")


# -- the spec -------------------------------------------------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LHSRange(_Strict):
    """Range of one Latin-hypercube parameter: uniform on ``[low, high]`` (or log-uniform with
    ``scale: log``), rounded to whole numbers when ``integer``."""

    low: float
    high: float
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

    samples: int = Field(ge=1)
    parameters: dict[str, LHSRange] = Field(min_length=1)


class SweepSpec(_Strict):
    """A sweep: base scenario, design (``fixed``, ``grid``, ``lhs``), policies, replications, seed."""

    spec_version: Literal[1] = 1
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="used in the default output folder name")
    description: str = ""
    scenario: str = Field("default", description="built-in scenario name or YAML file (relative to the spec's folder)")
    weeks: int | None = Field(None, ge=1, description="weeks simulated per run (default: the scenario's)")
    policies: list[str] = Field(min_length=1, description="policy names or module:Class; jit is always added")
    replications: int = Field(1, ge=1)
    root_seed: int = Field(0, ge=0, description="root of every replication seed and of the Latin hypercube")
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


def _check_path(base: dict[str, Any], path: str) -> str | None:
    """Why ``path`` does not name a field of the scenario, or None if it does."""
    node: Any = base
    for i, part in enumerate(path.split(".")):
        if node is None:  # an optional mapping left empty (e.g. demand.region_weights): any key may be set
            return None
        if isinstance(node, list):
            names = [item.get("name") for item in node if isinstance(item, dict)]
            if part.lstrip("-").isdigit() and -len(node) <= int(part) < len(node):
                node = node[int(part)]
            elif part in names:
                node = node[names.index(part)]
            else:
                known = [n for n in names if n] or [str(j) for j in range(len(node))]
                return f"no item {part!r} in {'.'.join(path.split('.')[:i]) or 'scenario'} (items: {known[:10]})"
        elif isinstance(node, dict):
            if part not in node:
                where = ".".join(path.split(".")[:i]) or "the scenario"
                return f"{where} has no field {part!r} (fields: {sorted(node)[:12]})"
            node = node[part]
        else:
            return f"{'.'.join(path.split('.')[:i])} is a value, not a mapping or list"
    return None


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
            why = _check_path(base, key)
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
    return LoadedSpec(spec, scenario, source)


def load_spec(path: str | Path) -> LoadedSpec:
    """Read, validate and resolve a sweep spec file."""
    path = Path(path)
    source = str(path)
    data = read_yaml(path, SpecError, "a YAML sweep spec")
    if not isinstance(data, dict):
        raise SpecError(f"{source}: the top level must be a mapping of fields, not {type(data).__name__}")
    version = data.get("spec_version", SPEC_VERSION)
    if version != SPEC_VERSION:
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
        write_results(tmp, tables={"ledger": result.ledger, "flows": result.flows, "decisions": result.decisions},
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
    failures: list[dict[str, str]] = field(default_factory=list)
    wall_s: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {"runs_total": self.runs_total, "runs_done": self.runs_done, "runs_skipped": self.runs_skipped,
                "runs_failed": self.runs_failed, "results_dir": self.results_dir, "failures": self.failures,
                "wall_s": self.wall_s}


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
    from tqdm import tqdm

    from experiments.executors import LocalExecutor

    started = time.perf_counter()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FlosimError(f"--out {out}: exists and is not a folder")
    if not resume and out.exists() and _holds_sweep(out):
        raise FlosimError(f"--out {out}: already holds sweep results; pass --resume to continue that sweep or choose another --out")
    runs_dir = out / "runs"
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FlosimError(f"--out {out}: cannot create folder: {exc}") from None
    for stale in runs_dir.glob(".tmp-*"):  # left by an interrupted run; never a finished result
        shutil.rmtree(stale, ignore_errors=True)
    tasks = plan_runs(loaded, runs_dir)
    report = SweepReport(results_dir=str(out), runs_total=len(tasks))
    todo = []
    for task in tasks:
        if resume and is_complete(runs_dir / task.run_id):
            report.runs_skipped += 1
        else:
            todo.append(task)
    _write_sweep_json(out, loaded, tasks, report, state="running")
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
    _write_sweep_json(out, loaded, tasks, report, state="finished")
    return report


def _write_sweep_json(out: Path, loaded: LoadedSpec, tasks: list[RunTask], report: SweepReport, state: str) -> None:
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
        "command": " ".join(["flosim", *sys.argv[1:]]),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
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
    from sim.results import write_table

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
            s = json.loads((folder / "summary.json").read_text())
            meta = json.loads((folder / "metadata.json").read_text()) if (folder / "metadata.json").exists() else {}
            runs.append({**row, "status": "done", "error": None, "wall_s": meta.get("timings", {}).get("total_s")})
            for policy, totals in s["policies"].items():
                summary.append({**row, "policy": policy, "weeks": s["weeks"], **totals,
                                **_participation_columns(s.get("participation", {}), policy)})
            for t in TABLES:
                p = folder / f"{t}.parquet"
                if p.exists():
                    df = pd.read_parquet(p)
                    df.insert(1, "point", task.point)
                    df.insert(2, "replication", task.replication)
                    frames[t].append(df)
        else:
            err = folder / "error.json"
            message = json.loads(err.read_text()).get("error") if err.exists() else "not run"
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
    folder = Path(folder)
    if not (folder / "sweep.json").exists():
        raise FlosimError(f"{folder}: not a sweep folder (no sweep.json)")
    meta = json.loads((folder / "sweep.json").read_text())
    tables = {}
    for name in ("summary", "runs", *TABLES):
        p = folder / f"{name}.parquet"
        tables[name] = pd.read_parquet(p) if p.exists() else pd.DataFrame()
    return meta, tables

