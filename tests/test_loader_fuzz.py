"""Random mutations of the built-in scenarios fed to the loader: it returns a valid scenario or
refuses with a :class:`FlosimError`, never anything else; a mutation that makes a number non-finite
or true/false is always refused; and through the command line no mutation gives a traceback."""

from __future__ import annotations

import copy
import math
from importlib import resources
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.model.errors import FlosimError
from sim.model.scenario import Scenario, builtin_scenarios, scenario_from_dict

BUILTIN = {name: yaml.safe_load((resources.files("sim") / "scenarios" / f"{name}.yaml").read_text()) for name in builtin_scenarios()}

ODD_VALUES = [float("inf"), float("-inf"), float("nan"), True, False, None, -1, 0, 1e300, -1e-300, 10**12, "", "x", "1e-3",
              [], {}, [1, 2], {"a": 1}, {"name": "x"}, "SouthWest", 0.5]


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value in a YAML document (containers included)."""
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


def _get(node: Any, path: tuple) -> Any:
    for p in path:
        node = node[p]
    return node


@st.composite
def mutated(draw) -> tuple[dict, tuple, str, Any]:
    name = draw(st.sampled_from(sorted(BUILTIN)))
    data = copy.deepcopy(BUILTIN[name])
    path = draw(st.sampled_from(_paths(data)))
    parent = _get(data, path[:-1])
    kind = draw(st.sampled_from(["replace", "replace", "replace", "delete", "add_key"]))
    value: Any = None
    if kind == "replace":
        value = draw(st.one_of(st.sampled_from(ODD_VALUES), st.floats(allow_nan=True, allow_infinity=True),
                               st.integers(-10**6, 10**6), st.text(max_size=8)))
        parent[path[-1]] = value
    elif kind == "delete":
        if isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent.pop(path[-1])
    else:
        target = _get(data, path)
        if isinstance(target, dict):
            target[draw(st.text(min_size=1, max_size=6))] = draw(st.sampled_from(ODD_VALUES))
        else:
            kind = "none"
    return data, path, kind, value


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FUZZ
@given(mutated())
def test_the_loader_validates_or_refuses(case):
    data, path, kind, value = case
    try:
        scenario = scenario_from_dict(data, "<mutated>")
    except FlosimError as exc:
        assert str(exc).startswith("<mutated>"), str(exc)
        return
    assert isinstance(scenario, Scenario)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@st.composite
def broken_number(draw) -> tuple[dict, tuple, Any]:
    """A numeric value of a built-in scenario (not a name or a description) replaced by a non-finite
    number or by true/false."""
    name = draw(st.sampled_from(sorted(BUILTIN)))
    data = copy.deepcopy(BUILTIN[name])
    numeric = [p for p in _paths(data) if _is_number(_get(data, p))]
    path = draw(st.sampled_from(numeric))
    value = draw(st.sampled_from([float("inf"), float("-inf"), float("nan"), True, False]))
    _get(data, path[:-1])[path[-1]] = value
    return data, path, value


@FUZZ
@given(broken_number())
def test_a_number_made_non_finite_or_boolean_is_always_refused(case):
    data, path, value = case
    with pytest.raises(FlosimError) as info:
        scenario_from_dict(data, "<mutated>")
    message = str(info.value)
    where = ".".join(str(p) for p in path)
    # the message names the field (or, for a mapping keyed by names, the mapping holding it)
    assert any(".".join(str(p) for p in path[:i]) in message for i in range(len(path), 0, -1)), (where, message)
    if isinstance(value, float) and not math.isnan(value):
        assert "inf" in message or "finite" in message or "number" in message, message


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                                  HealthCheck.function_scoped_fixture])
@given(mutated())
def test_the_command_line_never_shows_a_traceback(tmp_path_factory, case):
    """The same mutations written to a file and checked with ``flosim scenario check``: exit 0 with a
    valid scenario, or 2 with one message, and never a traceback."""
    from experiments.cli import main

    data, *_ = case
    folder = tmp_path_factory.mktemp("fuzz")
    path = folder / "s.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["scenario", "check", str(path)])
    valid = True
    try:
        scenario_from_dict(yaml.safe_load(path.read_text()), str(path))
    except FlosimError:
        valid = False
    assert code == (0 if valid else 2), err.getvalue()
    assert "Traceback" not in err.getvalue()
