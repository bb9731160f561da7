"""Traces: a run's random inputs written to CSV files and read back exactly.

A *trace* is a folder that holds everything random a run needs (every stream declared in
:mod:`forecasts.catalogue`: realised weekly demand, the forecasts the retailer saw each week with
their unresolved standard deviation, lane delays), so a recorded period can be replayed bit for bit or
a user can feed in their own history. The format is documented in ``docs/traces.md``:

* ``trace.json``: format name and version, scenario name, ``weeks``, ``horizon``, ``seed`` and, for
  each named axis the trace's streams use, the order of its names (``regions``, ``products``,
  ``lanes`` as ``"ORIGIN->FC"`` ...);
* one CSV file per stream file (:class:`forecasts.streams.Stream`'s ``file``): a column per axis, then
  one value column per stream stored in it: ``demand.csv`` (``week,region,product,units``),
  ``forecasts.csv`` (``week,lead,region,product,forecast,sd``), ``delays.csv``
  (``week,lane,delay_weeks``);
* ``scenario.yaml`` (optional): the resolved scenario the trace was recorded from, with its network and
  costs; ``flosim replay DIR`` uses it unless told otherwise.

Nothing here names a stream: files, columns, checks and the digest all come from the catalogue, so a
stream declared there is recorded and replayed with no change to this module. A stream declared after
a trace was recorded (not ``required``) reads as its neutral value from that trace.

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
import itertools
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

from forecasts import catalogue
from forecasts.streams import Axis, Stream, WorldInputs, all_streams, trace_files
from sim.model.errors import FlosimError
from sim.model.scenario import Scenario, dump_scenario, load_scenario


FORMAT = "flosim-trace"
FORMAT_VERSION = 1


def layout() -> dict[str, list[Stream]]:
    """The trace's data files in order, each with the streams it stores (from the catalogue)."""
    return trace_files(catalogue.sources())


def _axes() -> dict[str, Axis]:
    return catalogue.AXES


def _required_files() -> list[str]:
    return [f for f, streams in layout().items() if streams[0].required]


def _needs(first: str = "") -> str:
    """``"demand.csv, forecasts.csv, delays.csv and trace.json"``: what every trace folder holds."""
    names = [*_required_files()]
    names = [first, *names] if first else [*names, "trace.json"]
    return ", ".join(names[:-1]) + " and " + names[-1]


def lane_names(scenario: Scenario) -> list[str]:
    """Lane labels ``"ORIGIN->FC"`` in the global lane order (vendors in order, each vendor's lanes
    in order; a version-1 scenario's lanes as listed): the names of the ``lane`` axis."""
    return catalogue.AXES["lane"].labels(scenario)  # type: ignore[misc]


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
    sits in: sweeps key their runs by it, so moving a project keeps its run ids.

    It covers ``trace.json``, every file a trace must hold (an absent one counts as empty) and every
    optional stream file the trace holds, in the catalogue's order; an optional file a trace lacks
    adds nothing, so declaring a new stream leaves the digest of every existing trace unchanged.
    """
    folder = Path(folder)
    h = hashlib.sha256()
    for name, streams in [("trace.json", None), *layout().items()]:
        p = folder / name
        if streams is not None and not streams[0].required and not p.is_file():
            continue
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
def _labels(axis: Axis, scenario: Scenario, weeks: int) -> list[Any]:
    """What a CSV row writes for each position of ``axis``: its name, or the position itself."""
    if axis.named:
        return axis.labels(scenario)  # type: ignore[misc]
    return list(range(axis.size(scenario, weeks)))


def _streams_to_write(scenario: Scenario, inputs: WorldInputs) -> dict[str, list[Stream]]:
    """The files to write for ``inputs`` (every declared stream they hold), checked against the scenario."""
    out: dict[str, list[Stream]] = {}
    declared = {s.name for s in all_streams(catalogue.sources())}
    undeclared = [n for n in inputs.names if n not in declared]
    if undeclared:
        raise ValueError(f"inputs hold streams {undeclared} that forecasts.catalogue does not declare")
    for file, streams in layout().items():
        held = [s.name for s in streams if s.name in inputs]
        if not held:
            if streams[0].required:
                raise ValueError(f"inputs lack {[s.name for s in streams]}, which every trace holds")
            continue
        if len(held) != len(streams):
            raise ValueError(f"inputs hold {held} but not all of {[s.name for s in streams]}, stored together in {file}")
        if not streams[0].required and all(np.all(inputs[s.name] == s.neutral) for s in streams):
            continue  # nothing random happened in it: the trace reads it back as its neutral value anyway
        for s in streams:
            expected = s.shape(_axes(), scenario, inputs.weeks)
            if inputs[s.name].shape != expected:
                raise ValueError(f"inputs' {s.name} of shape {inputs[s.name].shape} do not fit scenario {scenario.name!r} "
                                 f"(expected {expected} over {', '.join(s.axes)})")
        out[file] = streams
    return out


def _write_file(path: Path, streams: list[Stream], scenario: Scenario, inputs: WorldInputs) -> None:
    """One CSV file: a column per axis, a value column per stream; rows in C order of the axes."""
    axes = [_axes()[a] for a in streams[0].axes]
    labels = [_labels(a, scenario, inputs.weeks) for a in axes]
    text = [int if s.integer else format_float for s in streams]
    values = [inputs[s.name].ravel().tolist() for s in streams]
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow([*streams[0].axes, *(s.column for s in streams)])
        for i, row in enumerate(itertools.product(*labels)):
            w.writerow([*row, *(f(v[i]) for f, v in zip(text, values))])


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

    Every stream the inputs hold is written to its declared file (``forecasts.catalogue``), except an
    optional stream holding only its neutral value (capacity with no shocks), which the trace reads
    back as that value anyway: a run without shocks records the files it recorded before. The
    folder appears complete or not at all (files go to a temporary sibling, renamed at the end). An
    existing folder is replaced only if ``overwrite`` and it is a trace (holds ``trace.json``).
    """
    folder = Path(folder)
    if folder.exists():
        if not overwrite:
            raise FlosimError(f"--out {folder}: already exists (choose another folder, or --force to replace a trace)")
        if not (folder / "trace.json").exists():
            raise FlosimError(f"--out {folder}: exists and is not a trace folder (no trace.json); not replacing it")
    files = _streams_to_write(scenario, inputs)
    T = inputs.weeks
    used = {a for streams in files.values() for a in streams[0].axes}
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.tmp-"))
        from sim.model.files import publish_mode

        publish_mode(tmp, folder=True)  # mkdtemp makes it owner-only
    except OSError as exc:
        raise FlosimError(f"--out {folder}: cannot create trace folder: {exc}") from None
    try:
        for file, streams in files.items():
            _write_file(tmp / file, streams, scenario, inputs)
        meta = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "scenario": scenario.name,
            "weeks": int(T),
            "horizon": int(scenario.horizon),
            "seed": int(scenario.seed if seed is None else seed),
            **{a.key: a.labels(scenario) for a in _axes().values() if a.named and a.name in used},  # type: ignore[misc]
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
    """A trace as read from disk, in its own name order (``meta`` is ``trace.json``); ``streams`` holds
    the streams its files store, by name (``trace.demand`` reads one)."""

    folder: Path
    meta: dict[str, Any]
    streams: dict[str, np.ndarray]

    def __getattr__(self, name: str) -> np.ndarray:
        streams = self.__dict__.get("streams")
        if streams is not None and name in streams:
            return streams[name]
        raise AttributeError(f"Trace has no stream {name!r}")

    @property
    def weeks(self) -> int:
        return int(self.meta["weeks"])

    @property
    def horizon(self) -> int:
        return int(self.meta["horizon"])

    def inputs_for(self, scenario: Scenario, weeks: int | None = None) -> WorldInputs:
        """The first ``weeks`` weeks of this trace as inputs for ``scenario`` (names are matched, so
        the scenario may list regions, products, lanes ... in another order). A declared stream the
        trace does not store (declared after it was recorded) is its neutral value throughout."""
        meta_file = self.folder / "trace.json"
        if scenario.horizon != self.horizon:
            raise FlosimError(
                f"{meta_file}: field 'horizon' = {self.horizon}: scenario '{scenario.name}' plans {scenario.horizon} weeks ahead"
            )
        weeks = self.weeks if weeks is None else weeks
        if weeks > self.weeks:
            raise FlosimError(f"{meta_file}: field 'weeks' = {self.weeks}: the trace is shorter than the {weeks} weeks asked for")
        declared = {s.name: s for s in all_streams(catalogue.sources())}
        used = {a for n in self.streams for a in declared[n].axes}
        order = {a.name: _match(meta_file, a.key, self.meta[a.key], a.labels(scenario))  # type: ignore[misc]
                 for a in _axes().values() if a.named and a.name in used}
        out = {}
        for stream in declared.values():
            if stream.name not in self.streams:
                out[stream.name] = stream.neutral_array(stream.shape(_axes(), scenario, weeks))
                continue
            a = self.streams[stream.name][:weeks]
            for i, axis in enumerate(stream.axes):
                if axis in order:
                    a = np.take(a, order[axis], axis=i)
            out[stream.name] = np.ascontiguousarray(a)
        return WorldInputs(streams=out)


def _match(meta_file: Path, field: str, in_trace: list[str], in_scenario: list[str]) -> list[int]:
    missing = [n for n in in_scenario if n not in in_trace]
    if missing:
        raise FlosimError(f"{meta_file}: field '{field}': the scenario's {missing[:5]} are not in the trace (trace has {in_trace[:8]})")
    extra = [n for n in in_trace if n not in in_scenario]
    if extra:
        raise FlosimError(f"{meta_file}: field '{field}': {extra[:5]} are not in the scenario (scenario has {in_scenario[:8]})")
    pos = {n: i for i, n in enumerate(in_trace)}
    return [pos[n] for n in in_scenario]


def _files_held(folder: Path) -> dict[str, list[Stream]]:
    """The data files this trace must or does hold: the required ones and the optional ones present."""
    return {f: streams for f, streams in layout().items() if streams[0].required or (folder / f).exists()}


def _read_meta(folder: Path) -> dict[str, Any]:
    path = folder / "trace.json"
    if not path.exists():
        raise FlosimError(f"{path}: missing; a trace folder needs {_needs('trace.json')}")
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
    used = {a for streams in _files_held(folder).values() for a in streams[0].axes}
    for axis in _axes().values():
        if not axis.named or axis.name not in used:
            continue
        field = axis.key
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
        raise FlosimError(f"{path}: missing; a trace folder needs {_needs()}")
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


def _index(path: Path, line: int, field: str, text: str, names: list[str] | int, key: str = "") -> int:
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
        raise FlosimError(f"{path}: row {line}: field '{field}' = {text!r}: not in trace.json's {key or field + 's'} {names[:8]}") from None


def _value(path: Path, line: int, stream: Stream, text: str) -> float:
    field = stream.column
    try:
        v = parse_float(text)
    except ValueError:
        raise FlosimError(f"{path}: row {line}: field '{field}' = {text!r}: not a number") from None
    if not math.isfinite(v) or not stream.low <= v <= stream.high:
        bounds = f">= {stream.low:g}" if stream.high == math.inf else f"in [{stream.low:g}, {stream.high:g}]"
        raise FlosimError(f"{path}: row {line}: field '{field}' = {text!r}: must be finite and {bounds}")
    if stream.integer and v != int(v):
        what = f" of {stream.unit}" if stream.unit else ""
        raise FlosimError(f"{path}: row {line}: field '{field}' = {text!r}: must be a whole number{what}")
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


def _read_file(path: Path, streams: list[Stream], meta: dict[str, Any]) -> dict[str, np.ndarray]:
    """The streams stored in one CSV file, each in trace.json's name order."""
    axes = [_axes()[a] for a in streams[0].axes]
    # what a row's axis field must be: a position below the count, or one of trace.json's names
    domains: list[list[str] | int] = [meta[a.key] for a in axes]
    shape = tuple(d if isinstance(d, int) else len(d) for d in domains)
    header = (*streams[0].axes, *(s.column for s in streams))
    arrays = _fill(path, shape, (
        (line,
         tuple(_index(path, line, a.name, row[a.name], d, a.key) for a, d in zip(axes, domains)),
         tuple(_value(path, line, s, row[s.column]) for s in streams))
        for line, row in _rows(path, header)
    ), len(streams), ", ".join(streams[0].axes))
    return {s.name: arr.astype(s.dtype, copy=False) for s, arr in zip(streams, arrays)}


def read_trace(folder: str | Path) -> Trace:
    """Read and validate a trace folder (every file, row and field): every file a trace must hold,
    and the file of any other declared stream it holds."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FlosimError(f"{folder}: no such trace folder")
    meta = _read_meta(folder)
    streams: dict[str, np.ndarray] = {}
    for file, group in _files_held(folder).items():
        streams.update(_read_file(folder / file, group, meta))
    return Trace(folder, meta, streams)


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
