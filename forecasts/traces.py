"""Traces: a run's random inputs written to CSV files and read back exactly.

A *trace* is a folder that holds everything random a run needs (realised weekly demand, the
forecasts the retailer saw each week with their unresolved standard deviation, and lane delays), so
a recorded period can be replayed bit for bit or a user can feed in their own history. The format is
documented in ``docs/traces.md``:

* ``trace.json``: format name and version, scenario name, ``weeks``, ``horizon``, ``seed`` and the
  order of ``regions``, ``products`` and ``lanes`` (``"ORIGIN->FC"``);
* ``demand.csv``: ``week,region,product,units``;
* ``forecasts.csv``: ``week,lead,region,product,forecast,sd`` (made in ``week`` for ``week + lead``);
* ``delays.csv``: ``week,lane,delay_weeks``;
* ``scenario.yaml`` (optional): the resolved scenario the trace was recorded from, with its network and
  costs; ``flosim replay DIR`` uses it unless told otherwise.

Floats are written with Python's ``repr`` (the shortest text that reads back to the identical double),
so writing and reading a trace changes no bit. Readers also accept ``float.hex`` text (``0x1.8p+1``).

What a user may do:

* ``write_trace(folder, scenario, inputs)`` records inputs (``flosim record`` does this);
* ``read_trace(folder)`` reads and validates a trace on its own; ``trace.inputs_for(scenario, weeks)``
  checks it against a scenario and returns :class:`forecasts.streams.WorldInputs`;
* set ``demand: {model: trace, trace_dir: DIR}`` in a scenario: ``draw_inputs`` then reads the trace
  (via :func:`load_trace_inputs`) instead of drawing, for every command that runs the scenario;
* ``trace_scenario(folder)`` returns the trace's scenario switched to trace mode (``flosim replay``).

A relative ``trace_dir`` in a scenario file names a folder beside that file when there is one
(:func:`sim.model.scenario.load_scenario` makes it absolute); otherwise it is resolved against the current
working directory, then against the folder of built-in scenarios (so ``traces/pilot`` names the
shipped pilot trace). Every problem raises
:class:`sim.model.errors.FlosimError` naming the file, row, field and value.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from forecasts.streams import WorldInputs
from sim.model.errors import FlosimError
from sim.model.scenario import Scenario, dump_scenario, load_scenario


FORMAT = "flosim-trace"
FORMAT_VERSION = 1
FILES = {
    "demand": ("demand.csv", ("week", "region", "product", "units")),
    "forecasts": ("forecasts.csv", ("week", "lead", "region", "product", "forecast", "sd")),
    "delays": ("delays.csv", ("week", "lane", "delay_weeks")),
}


def lane_names(scenario: Scenario) -> list[str]:
    """Lane labels ``"ORIGIN->FC"`` in the global lane order (vendors in order, each vendor's lanes
    in order; a version-1 scenario's lanes as listed)."""
    return [f"{lane.origin}->{lane.fc}" for lane in scenario.all_lanes]


def format_float(x: float) -> str:
    """Text that reads back (``float(text)``) to exactly the same double."""
    return repr(float(x))


def parse_float(text: str) -> float:
    """Inverse of :func:`format_float`; also accepts ``float.hex`` text."""
    t = text.strip()
    if "x" in t.lower():
        return float.fromhex(t)
    return float(t)


# -- locating traces ------------------------------------------------------------------------------
def _builtin_root() -> Path:
    return Path(str(resources.files("sim") / "scenarios"))


def builtin_traces() -> list[str]:
    """Names of the traces shipped with flosim (``flosim replay NAME``)."""
    folder = _builtin_root() / "traces"
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if (p / "trace.json").exists())


def builtin_trace_dir(name: str) -> Path:
    """Folder of the shipped trace ``name``."""
    return _builtin_root() / "traces" / name


def resolve_trace_dir(trace_dir: str | Path) -> Path:
    """Absolute folder of a trace: as given if absolute, else relative to the current working
    directory, else relative to the built-in scenarios folder."""
    p = Path(trace_dir).expanduser()
    tried = [p] if p.is_absolute() else [Path.cwd() / p, _builtin_root() / p]
    for candidate in tried:
        if candidate.is_dir():
            return candidate.resolve()
    where = " or ".join(str(c) for c in tried)
    raise FlosimError(f"demand.trace_dir = {str(trace_dir)!r}: no such trace folder (looked for {where})")


def trace_digest(folder: str | Path) -> str:
    """A digest of a trace's recorded inputs (``trace.json`` and its data files), whatever folder it
    sits in: sweeps key their runs by it, so moving a project keeps its run ids."""
    folder = Path(folder)
    h = hashlib.sha256()
    for name in ["trace.json", *(f for f, _ in FILES.values())]:
        p = folder / name
        h.update(name.encode() + b"\0" + (p.read_bytes() if p.is_file() else b"") + b"\0")
    return h.hexdigest()


def find_trace(name_or_dir: str | Path) -> Path:
    """A trace folder given by path, or a shipped trace given by name (``"pilot"``)."""
    p = Path(name_or_dir).expanduser()
    if p.is_dir():
        return p.resolve()
    if isinstance(name_or_dir, str) and name_or_dir in builtin_traces():
        return builtin_trace_dir(name_or_dir)
    known = ", ".join(builtin_traces()) or "none"
    raise FlosimError(f"{name_or_dir}: no such trace folder and not a shipped trace (shipped: {known})")


# -- writing --------------------------------------------------------------------------------------
def write_trace(
    folder: str | Path,
    scenario: Scenario,
    inputs: WorldInputs,
    *,
    seed: int | None = None,
    source: str = "",
    overwrite: bool = False,
) -> Path:
    """Write ``inputs`` (drawn for ``scenario``) as a trace folder; returns its path.

    The folder appears complete or not at all (files go to a temporary sibling, renamed at the end).
    An existing folder is replaced only if ``overwrite`` and it is a trace (holds ``trace.json``).
    """
    folder = Path(folder)
    if folder.exists():
        if not overwrite:
            raise FlosimError(f"--out {folder}: already exists (choose another folder, or --force to replace a trace)")
        if not (folder / "trace.json").exists():
            raise FlosimError(f"--out {folder}: exists and is not a trace folder (no trace.json); not replacing it")
    T, H, R, K = inputs.forecasts.shape
    if (R, K) != (len(scenario.regions), len(scenario.products)) or H != scenario.horizon:
        raise ValueError(f"inputs of shape {inputs.forecasts.shape} do not fit scenario {scenario.name!r}")
    regions, products, lanes = scenario.regions, scenario.product_names, lane_names(scenario)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.tmp-"))
        from sim.model.files import publish_mode

        publish_mode(tmp, folder=True)  # mkdtemp makes it owner-only
    except OSError as exc:
        raise FlosimError(f"--out {folder}: cannot create trace folder: {exc}") from None
    try:
        with open(tmp / "demand.csv", "w", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(FILES["demand"][1])
            for t in range(T):
                for r, rn in enumerate(regions):
                    for k, kn in enumerate(products):
                        w.writerow([t, rn, kn, format_float(inputs.demand[t, r, k])])
        with open(tmp / "forecasts.csv", "w", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(FILES["forecasts"][1])
            for t in range(T):
                for j in range(H):
                    for r, rn in enumerate(regions):
                        for k, kn in enumerate(products):
                            w.writerow([t, j, rn, kn, format_float(inputs.forecasts[t, j, r, k]),
                                        format_float(inputs.forecast_sd[t, j, r, k])])
        with open(tmp / "delays.csv", "w", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(FILES["delays"][1])
            for t in range(T):
                for l, ln in enumerate(lanes):
                    w.writerow([t, ln, int(inputs.delays[t, l])])
        meta = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "scenario": scenario.name,
            "weeks": int(T),
            "horizon": int(H),
            "seed": int(scenario.seed if seed is None else seed),
            "regions": list(regions),
            "products": list(products),
            "lanes": lanes,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "source": source,
        }
        (tmp / "trace.json").write_text(json.dumps(meta, indent=2) + "\n")
        recorded = scenario if seed is None or seed == scenario.seed else scenario.model_copy(update={"seed": seed})
        dump_scenario(recorded.model_copy(update={"weeks": int(T)}), tmp / "scenario.yaml")
        os.chmod(tmp, 0o755)
        if folder.exists():
            old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
            os.replace(folder, old)
            os.replace(tmp, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


# -- reading --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Trace:
    """A trace as read from disk, in its own name order (``meta`` is ``trace.json``)."""

    folder: Path
    meta: dict[str, Any]
    demand: np.ndarray  # [T, R, K]
    forecasts: np.ndarray  # [T, H, R, K]
    forecast_sd: np.ndarray  # [T, H, R, K]
    delays: np.ndarray  # [T, L]

    @property
    def weeks(self) -> int:
        return int(self.meta["weeks"])

    @property
    def horizon(self) -> int:
        return int(self.meta["horizon"])

    def inputs_for(self, scenario: Scenario, weeks: int | None = None) -> WorldInputs:
        """The first ``weeks`` weeks of this trace as inputs for ``scenario`` (names are matched, so
        the scenario may list regions, products and lanes in another order)."""
        meta_file = self.folder / "trace.json"
        if scenario.horizon != self.horizon:
            raise FlosimError(
                f"{meta_file}: field 'horizon' = {self.horizon}: scenario '{scenario.name}' plans {scenario.horizon} weeks ahead"
            )
        weeks = self.weeks if weeks is None else weeks
        if weeks > self.weeks:
            raise FlosimError(f"{meta_file}: field 'weeks' = {self.weeks}: the trace is shorter than the {weeks} weeks asked for")
        r_idx = _match(meta_file, "regions", self.meta["regions"], scenario.regions)
        k_idx = _match(meta_file, "products", self.meta["products"], scenario.product_names)
        l_idx = _match(meta_file, "lanes", self.meta["lanes"], lane_names(scenario))
        return WorldInputs(
            demand=np.ascontiguousarray(self.demand[:weeks][:, r_idx][:, :, k_idx]),
            forecasts=np.ascontiguousarray(self.forecasts[:weeks][:, :, r_idx][:, :, :, k_idx]),
            forecast_sd=np.ascontiguousarray(self.forecast_sd[:weeks][:, :, r_idx][:, :, :, k_idx]),
            delays=np.ascontiguousarray(self.delays[:weeks][:, l_idx]),
        )


def _match(meta_file: Path, field: str, in_trace: list[str], in_scenario: list[str]) -> list[int]:
    missing = [n for n in in_scenario if n not in in_trace]
    if missing:
        raise FlosimError(f"{meta_file}: field '{field}': the scenario's {missing[:5]} are not in the trace (trace has {in_trace[:8]})")
    extra = [n for n in in_trace if n not in in_scenario]
    if extra:
        raise FlosimError(f"{meta_file}: field '{field}': {extra[:5]} are not in the scenario (scenario has {in_scenario[:8]})")
    pos = {n: i for i, n in enumerate(in_trace)}
    return [pos[n] for n in in_scenario]


def _read_meta(folder: Path) -> dict[str, Any]:
    path = folder / "trace.json"
    if not path.exists():
        raise FlosimError(f"{path}: missing; a trace folder needs trace.json, demand.csv, forecasts.csv and delays.csv")
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FlosimError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(meta, dict):
        raise FlosimError(f"{path}: the top level must be an object")
    if meta.get("format", FORMAT) != FORMAT:
        raise FlosimError(f"{path}: field 'format' = {meta.get('format')!r}: expected {FORMAT!r}")
    if meta.get("version", FORMAT_VERSION) != FORMAT_VERSION:
        raise FlosimError(f"{path}: field 'version' = {meta.get('version')!r}: this flosim reads version {FORMAT_VERSION}")
    for field in ("weeks", "horizon"):
        v = meta.get(field)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise FlosimError(f"{path}: field '{field}' = {v!r}: must be a whole number >= 1")
    for field in ("regions", "products", "lanes"):
        v = meta.get(field)
        if not isinstance(v, list) or not v or not all(isinstance(x, str) for x in v):
            raise FlosimError(f"{path}: field '{field}' = {v!r}: must be a non-empty list of names")
        if len(set(v)) != len(v):
            dup = next(x for x in v if v.count(x) > 1)
            raise FlosimError(f"{path}: field '{field}': duplicate name {dup!r}")
    meta.setdefault("scenario", folder.name)
    return meta


def _rows(path: Path, header: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    if not path.exists():
        raise FlosimError(f"{path}: missing; a trace folder needs {', '.join(f for f, _ in FILES.values())} and trace.json")
    try:
        fh = open(path, newline="")
    except OSError as exc:
        raise FlosimError(f"{path}: cannot read: {exc}") from None
    with fh:
        reader = csv.reader(fh)
        try:
            first = next(reader, None)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise FlosimError(f"{path}: not a CSV file: {exc}") from None
        if first is None:
            raise FlosimError(f"{path}: empty file; expected the header {','.join(header)}")
        names = [c.strip() for c in first]
        if names != list(header):
            raise FlosimError(f"{path}: row 1: header {','.join(names)!r} should be {','.join(header)!r}")
        try:
            for line, row in enumerate(reader, start=2):
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) != len(header):
                    raise FlosimError(f"{path}: row {line}: {len(row)} fields, expected {len(header)} ({','.join(header)})")
                yield line, dict(zip(header, (c.strip() for c in row)))
        except (csv.Error, UnicodeDecodeError) as exc:
            raise FlosimError(f"{path}: not a valid CSV file: {exc}") from None


def _index(path: Path, line: int, field: str, text: str, names: list[str] | int) -> int:
    if isinstance(names, int):
        try:
            value = int(text)
        except ValueError:
            raise FlosimError(f"{path}: row {line}: field '{field}' = {text!r}: not a whole number") from None
        if not 0 <= value < names:
            raise FlosimError(f"{path}: row {line}: field '{field}' = {value}: outside 0..{names - 1}")
        return value
    try:
        return names.index(text)
    except ValueError:
        raise FlosimError(f"{path}: row {line}: field '{field}' = {text!r}: not in trace.json's {field}s {names[:8]}") from None


def _value(path: Path, line: int, field: str, text: str) -> float:
    try:
        v = parse_float(text)
    except ValueError:
        raise FlosimError(f"{path}: row {line}: field '{field}' = {text!r}: not a number") from None
    if not math.isfinite(v) or v < 0:
        raise FlosimError(f"{path}: row {line}: field '{field}' = {text!r}: must be finite and >= 0")
    return v


def _fill(path: Path, shape: tuple[int, ...], entries: Iterator[tuple[int, tuple[int, ...], tuple[float, ...]]],
          n_values: int, dims: str) -> list[np.ndarray]:
    out = [np.zeros(shape) for _ in range(n_values)]
    seen = np.zeros(shape, dtype=bool)
    for line, idx, values in entries:
        if seen[idx]:
            raise FlosimError(f"{path}: row {line}: duplicate entry for ({dims}) = {idx}")
        seen[idx] = True
        for arr, v in zip(out, values):
            arr[idx] = v
    if not seen.all():
        missing = tuple(int(i) for i in np.argwhere(~seen)[0])
        raise FlosimError(f"{path}: {int((~seen).sum())} entries missing, e.g. ({dims}) = {missing} (indices in trace.json order)")
    return out


def read_trace(folder: str | Path) -> Trace:
    """Read and validate a trace folder (every file, row and field)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FlosimError(f"{folder}: no such trace folder")
    meta = _read_meta(folder)
    T, H = meta["weeks"], meta["horizon"]
    regions, products, lanes = meta["regions"], meta["products"], meta["lanes"]
    R, K, L = len(regions), len(products), len(lanes)

    p = folder / FILES["demand"][0]
    (demand,) = _fill(p, (T, R, K), (
        (line, (_index(p, line, "week", row["week"], T), _index(p, line, "region", row["region"], regions),
                _index(p, line, "product", row["product"], products)),
         (_value(p, line, "units", row["units"]),))
        for line, row in _rows(p, FILES["demand"][1])
    ), 1, "week, region, product")

    p = folder / FILES["forecasts"][0]
    forecasts, sd = _fill(p, (T, H, R, K), (
        (line, (_index(p, line, "week", row["week"], T), _index(p, line, "lead", row["lead"], H),
                _index(p, line, "region", row["region"], regions), _index(p, line, "product", row["product"], products)),
         (_value(p, line, "forecast", row["forecast"]), _value(p, line, "sd", row["sd"])))
        for line, row in _rows(p, FILES["forecasts"][1])
    ), 2, "week, lead, region, product")

    p = folder / FILES["delays"][0]

    def delay(line: int, text: str) -> float:
        v = _value(p, line, "delay_weeks", text)
        if v != int(v):
            raise FlosimError(f"{p}: row {line}: field 'delay_weeks' = {text!r}: must be a whole number of weeks")
        return v

    (delays,) = _fill(p, (T, L), (
        (line, (_index(p, line, "week", row["week"], T), _index(p, line, "lane", row["lane"], lanes)),
         (delay(line, row["delay_weeks"]),))
        for line, row in _rows(p, FILES["delays"][1])
    ), 1, "week, lane")
    return Trace(folder, meta, demand, forecasts, sd, delays.astype(np.int64))


def load_trace_inputs(scenario: Scenario, weeks: int | None = None) -> WorldInputs:
    """Inputs of a ``demand.model: trace`` scenario, read from its ``demand.trace_dir``
    (the hook :func:`forecasts.inputs.draw_inputs` calls)."""
    if scenario.demand.trace_dir is None:
        raise FlosimError(f"scenario '{scenario.name}': field 'demand.trace_dir' is missing (model: trace)")
    folder = resolve_trace_dir(scenario.demand.trace_dir)
    return read_trace(folder).inputs_for(scenario, scenario.weeks if weeks is None else weeks)


def trace_scenario(trace_dir: str | Path, scenario: Scenario | str | Path | None = None) -> Scenario:
    """The scenario to replay a trace with, in trace mode pointing at the trace's absolute folder.

    ``scenario`` defaults to the trace's own ``scenario.yaml``; its ``weeks`` becomes the trace's and its
    seed the recorded one (the seed still drives policies' own randomness, e.g. demand scenarios for
    the certainty equivalent, so it must match for a bit-for-bit replay).
    """
    folder = Path(trace_dir).resolve()
    meta = _read_meta(folder)
    if scenario is None:
        path = folder / "scenario.yaml"
        if not path.exists():
            raise FlosimError(f"{path}: missing; give the scenario (network and costs) this trace belongs to with --scenario")
        base = load_scenario(path)
    elif isinstance(scenario, Scenario):
        base = scenario
    else:
        base = load_scenario(scenario)
    seed = meta.get("seed", base.seed)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise FlosimError(f"{folder / 'trace.json'}: field 'seed' = {seed!r}: must be a whole number >= 0")
    return base.with_overrides(
        {"demand.model": "trace", "demand.trace_dir": str(folder), "weeks": int(meta["weeks"]), "seed": seed},
        source=str(folder / "scenario.yaml"),
    )
