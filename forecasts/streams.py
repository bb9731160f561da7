"""Random streams: how one random input of a run is declared, and the record that holds a run's streams.

A *stream* is one random array the world consumes, indexed by named axes whose first is always the
week: realised demand ``[week, region, product]``, lane delays ``[week, lane]``. Its :class:`Stream`
declaration says everything the rest of flosim needs to handle it without knowing it by name:

* its ``axes`` (names of :class:`Axis` declarations: how long each is for a scenario, and which names
  label its positions);
* its ``dtype`` and the values a trace may hold for it (``low``, ``high``; a whole number if integer);
* where a trace stores it: the CSV ``file`` and the value ``column`` (the other columns are its axes;
  streams with the same axes may share a file, one value column each);
* its ``neutral`` value, the value meaning "nothing random happens": the world runs on it in the
  cool-down weeks after a run, and a trace recorded before the stream existed reads as it.

A :class:`Source` is one child of the run's ``numpy.random.SeedSequence`` and the streams drawn from
it by its ``draw`` function (demand, forecasts and their uncertainty come from one child; delays from
another). The run's sources are listed in :mod:`forecasts.catalogue`, in their spawn order; drawing
(:mod:`forecasts.inputs`) and traces (:mod:`forecasts.traces`) walk that list, so a new random input
is one more :class:`Source` appended to it.

:class:`WorldInputs` holds a run's streams by name. Drawn inputs and a recorded trace both produce
one, so the world cannot tell them apart; it reads them as attributes (``inputs.demand``,
``inputs.delays``) or by name (``inputs["demand"]``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

#: The order in which ``WorldInputs(demand, forecasts, forecast_sd, delays)`` takes positional
#: arrays: the record's fields before streams were declared (kept so that code written then works).
POSITIONAL = ("demand", "forecasts", "forecast_sd", "delays")

DrawFn = Callable[[Any, int, np.random.Generator], Mapping[str, np.ndarray]]
CoolDownFn = Callable[[Mapping[str, np.ndarray], int, int], Mapping[str, np.ndarray]]


@dataclass(frozen=True)
class Axis:
    """One dimension streams are indexed by.

    A *counted* axis (``week``, ``lead``) has positions ``0 .. n-1``; ``trace.json`` gives ``n`` in the
    field ``key`` (``weeks``, ``horizon``) and ``count(scenario, weeks)`` gives it for a run. A *named*
    axis (``region``, ``lane`` ...) has ``labels(scenario)``, which a trace lists in ``trace.json``'s
    field ``key`` (``regions``, ``lanes``) and its CSV files name in the column ``name``; a trace is
    matched to a scenario by these names, so either may list them in another order.
    """

    name: str
    key: str
    labels: Callable[[Any], list[str]] | None = None
    count: Callable[[Any, int], int] | None = None

    def __post_init__(self) -> None:
        if (self.labels is None) == (self.count is None):
            raise ValueError(f"axis {self.name!r}: give exactly one of labels (a named axis) or count (a counted axis)")

    @property
    def named(self) -> bool:
        return self.labels is not None

    def size(self, scenario: Any, weeks: int) -> int:
        """How many positions this axis has in a run of ``weeks`` weeks of ``scenario``."""
        return len(self.labels(scenario)) if self.labels is not None else int(self.count(scenario, weeks))  # type: ignore[misc]


@dataclass(frozen=True)
class Stream:
    """One random input: its name (the attribute of :class:`WorldInputs`), axes, type and trace column."""

    name: str
    axes: tuple[str, ...]
    file: str
    column: str
    dtype: type = np.float64
    low: float = 0.0
    high: float = math.inf
    unit: str = ""  # what a whole number counts, for error messages ("weeks")
    neutral: float | None = None
    required: bool = False  # every trace must hold it (the streams of trace format version 1)
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or self.name.startswith("_") or self.name in _RESERVED:
            raise ValueError(f"stream {self.name!r}: the name must be a Python identifier, not private and not one of {sorted(_RESERVED)}")
        if not self.axes or self.axes[0] != "week":
            raise ValueError(f"stream {self.name!r}: axes {self.axes}: the first axis must be 'week'")
        if len(set(self.axes)) != len(self.axes):
            raise ValueError(f"stream {self.name!r}: axes {self.axes} repeat a name")
        if self.column in self.axes:
            raise ValueError(f"stream {self.name!r}: value column {self.column!r} is also an axis")
        if not self.required and self.neutral is None:
            raise ValueError(f"stream {self.name!r}: a stream traces need not hold must declare its neutral value")
        if self.neutral is not None and not self.low <= self.neutral <= self.high:
            raise ValueError(f"stream {self.name!r}: neutral value {self.neutral} outside [{self.low}, {self.high}]")

    @property
    def integer(self) -> bool:
        return np.issubdtype(np.dtype(self.dtype), np.integer)

    def shape(self, axes: Mapping[str, Axis], scenario: Any, weeks: int) -> tuple[int, ...]:
        """The array shape of this stream over ``weeks`` weeks of ``scenario``."""
        return tuple(axes[a].size(scenario, weeks) for a in self.axes)

    def neutral_array(self, shape: tuple[int, ...]) -> np.ndarray:
        """An array of ``shape`` holding the neutral value."""
        if self.neutral is None:
            raise ValueError(f"stream {self.name!r} has no neutral value")
        return np.full(shape, self.neutral, dtype=self.dtype)


@dataclass(frozen=True)
class Source:
    """One child of the run's seed and the streams drawn from it.

    ``draw(scenario, weeks, rng)`` returns one array per stream, by name, drawn from ``rng`` only (the
    source's own generator, so drawing more or fewer numbers never shifts another source's).
    ``cool_down(arrays, weeks, settle)`` continues its streams' first ``weeks`` weeks by ``settle``
    cool-down weeks (see :func:`forecasts.inputs.settle_inputs`); by default each stream holds its
    neutral value in them. A source with no streams (``policy``) only reserves its child: the
    generators policies draw from each week.
    """

    name: str
    streams: tuple[Stream, ...] = ()
    draw: DrawFn | None = None
    cool_down: CoolDownFn | None = None

    def __post_init__(self) -> None:
        if self.streams and self.draw is None:
            raise ValueError(f"source {self.name!r}: its streams need a draw function")
        if self.cool_down is None:
            lacking = [s.name for s in self.streams if s.neutral is None]
            if lacking:
                raise ValueError(f"source {self.name!r}: streams {lacking} have no neutral value, so the source needs a cool_down")

    def settle(self, arrays: Mapping[str, np.ndarray], weeks: int, settle: int) -> dict[str, np.ndarray]:
        """The source's streams for ``weeks`` measured weeks followed by ``settle`` cool-down weeks."""
        if self.cool_down is not None:
            return dict(self.cool_down(arrays, weeks, settle))
        out = {}
        for s in self.streams:
            a = arrays[s.name]
            out[s.name] = np.concatenate([a[:weeks], s.neutral_array((settle, *a.shape[1:])).astype(a.dtype)])
        return out


def check_catalogue(sources: Sequence[Source], axes: Mapping[str, Axis]) -> None:
    """Refuse a list of sources flosim could not draw, store or read unambiguously."""
    names: set[str] = set()
    for src in sources:
        if src.name in names:
            raise ValueError(f"source {src.name!r} declared twice")
        names.add(src.name)
    seen: dict[str, Stream] = {}
    files: dict[str, list[Stream]] = {}
    for s in all_streams(sources):
        if s.name in seen:
            raise ValueError(f"stream {s.name!r} declared twice")
        seen[s.name] = s
        unknown = [a for a in s.axes if a not in axes]
        if unknown:
            raise ValueError(f"stream {s.name!r}: unknown axes {unknown} (declared: {sorted(axes)})")
        files.setdefault(s.file, []).append(s)
    for file, group in files.items():
        first = group[0]
        for s in group[1:]:
            if s.axes != first.axes or s.required != first.required:
                raise ValueError(f"streams {first.name!r} and {s.name!r} share {file} but not their axes and whether traces must hold them")
        cols = [s.column for s in group]
        if len(set(cols)) != len(cols):
            raise ValueError(f"{file}: two streams write the same column ({cols})")


def all_streams(sources: Iterable[Source]) -> list[Stream]:
    """Every stream of ``sources``, in declaration order."""
    return [s for src in sources for s in src.streams]


def trace_files(sources: Iterable[Source]) -> dict[str, list[Stream]]:
    """The trace's data files in declaration order, each with the streams it holds (value columns in order)."""
    files: dict[str, list[Stream]] = {}
    for s in all_streams(sources):
        files.setdefault(s.file, []).append(s)
    return files


_RESERVED = {"streams", "weeks", "same_as", "get", "names"}


@dataclass(frozen=True, init=False, eq=False)
class WorldInputs:
    """A run's random streams by name, each an array whose first axis is the week.

    ``WorldInputs(demand=D, forecasts=F, forecast_sd=S, delays=L)`` (or positionally in that order, or
    ``WorldInputs(streams={...})``) holds them; ``inputs.demand`` or ``inputs["demand"]`` reads one.
    ``dataclasses.replace(inputs, demand=D2)`` gives a copy with one stream replaced.
    """

    streams: dict[str, np.ndarray] = field(default_factory=dict)

    def __init__(self, *arrays: np.ndarray, streams: Mapping[str, np.ndarray] | None = None, **named: np.ndarray) -> None:
        if len(arrays) > len(POSITIONAL):
            raise TypeError(f"WorldInputs takes at most {len(POSITIONAL)} positional arrays ({', '.join(POSITIONAL)}); name the others")
        held = dict(streams or {})
        held.update(zip(POSITIONAL, arrays))
        held.update(named)
        bad = [n for n in held if not n.isidentifier() or n.startswith("_") or n in _RESERVED]
        if bad:
            raise ValueError(f"WorldInputs: invalid stream names {bad}")
        weeks = {n: np.shape(a)[0] if np.ndim(a) else None for n, a in held.items()}
        if None in weeks.values() or len(set(weeks.values())) > 1:
            raise ValueError(f"WorldInputs: every stream's first axis is the week and they must agree; lengths {weeks}")
        object.__setattr__(self, "streams", held)

    def __getattr__(self, name: str) -> np.ndarray:
        streams = self.__dict__.get("streams")
        if streams is not None and name in streams:
            return streams[name]
        held = sorted(streams) if streams is not None else []
        raise AttributeError(f"WorldInputs holds no stream {name!r} (it holds {held})")

    def __getitem__(self, name: str) -> np.ndarray:
        return self.streams[name]

    def __contains__(self, name: object) -> bool:
        return name in self.streams

    @property
    def names(self) -> list[str]:
        """The streams held, in the order given."""
        return list(self.streams)

    def get(self, name: str, default: Any = None) -> Any:
        return self.streams.get(name, default)

    @property
    def weeks(self) -> int:
        return next((int(a.shape[0]) for a in self.streams.values()), 0)

    def same_as(self, other: "WorldInputs") -> bool:
        """Whether ``other`` holds the same streams with equal values."""
        return set(self.streams) == set(other.streams) and all(
            np.array_equal(a, other.streams[n]) for n, a in self.streams.items()
        )

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}{list(np.shape(a))}" for n, a in self.streams.items())
        return f"WorldInputs({inner})"
