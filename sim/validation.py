"""Turning validation problems into messages a user can act on, for every YAML input flosim reads
(scenarios, sweep specs): read a file with clear errors, and format pydantic errors as one line per
problem naming the source, the dotted field and the value."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from sim.errors import FlosimError


class FieldError(ValueError):
    """Raised inside a validator to point at a field below the validated model, with its value."""

    def __init__(self, field: str, value: Any, problem: str) -> None:
        super().__init__(f"{problem}")
        self.field = field
        self.value = value
        self.problem = problem


def number_from_text(value: Any) -> Any:
    """A settings model's ``mode="before"`` check for a numeric field: a number written as text (YAML
    1.1 reads ``1e-3`` as a string, a command line ``--set max_iter=1e3``) is read as a number, and
    true/false is refused (YAML also reads yes/on/no/off so; pydantic would take it as 1/0)."""
    if isinstance(value, bool):
        raise ValueError("a number is needed, not true/false")
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def read_yaml(path: Path, error: type[FlosimError], what: str) -> Any:
    """The parsed content of a YAML file; ``error`` with the file name for a missing, unreadable or
    malformed file (``what`` says what was expected, e.g. "a YAML sweep spec")."""
    source = str(path)
    if not path.exists():
        raise error(f"{source}: no such file")
    if path.is_dir():
        raise error(f"{source}: is a folder, expected {what}")
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{source}: cannot read: {exc}") from None
    except yaml.YAMLError as exc:
        raise error(f"{source}: not valid YAML: {exc}") from None


#: Location parts pydantic adds for the members of a union (``production_cost: float | dict``).
_UNION_TAG = re.compile(r"^(constrained-)?(float|int|str|bool)$|^(dict|list|tuple)\[.*\]$")


def union_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Report a union field once, in the user's terms: drop pydantic's member tags from locations,
    keep only the deepest failures (``production_cost.detergent = -1``, not also "not a number"), prefer a
    broken bound to a wrong type, and join the alternatives when a value fits none (``should be a valid
    number ... or a valid dictionary``). Other errors pass unchanged, in their order."""
    cleaned = []
    for err in errors:
        loc = tuple(p for p in err["loc"] if not str(p).startswith("function-"))
        clean = tuple(p for p in loc if not (isinstance(p, str) and _UNION_TAG.match(p)))
        cleaned.append(({**err, "loc": clean}, clean != loc))
    tagged = [e for e, is_union in cleaned if is_union]

    def mismatch(e: dict[str, Any]) -> bool:
        return e["type"].endswith(("_type", "_parsing"))

    out: list[dict[str, Any]] = []
    for err, is_union in cleaned:
        if not is_union:
            out.append(err)
            continue
        loc = err["loc"]
        if any(o["loc"][: len(loc)] == loc and len(o["loc"]) > len(loc) for o in tagged):
            continue  # a member that got further explains the problem better
        if mismatch(err) and any(o["loc"] == loc and not mismatch(o) for o in tagged):
            continue  # the value has a right type but breaks a bound: say only that
        same = next((o for o in out if o["loc"] == loc and o.get("_union")), None)
        if same is None:
            out.append({**err, "_union": True})
        elif err["msg"] not in same["msg"]:
            same["msg"] = f"{same['msg']}, or {err['msg'][0].lower()}{err['msg'][1:]}"
    return out


def format_validation_error(source: str, exc: ValidationError) -> str:
    """One line per problem: ``SOURCE: field 'dotted.path' = value: what is wrong``."""
    lines = []
    for err in union_errors(exc.errors()):
        loc = ".".join(str(p) for p in err["loc"])
        ctx_err = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_err, FieldError):
            field = ".".join(p for p in (loc, ctx_err.field) if p)
            lines.append(f"{source}: field '{field}' = {ctx_err.value!r}: {ctx_err.problem}")
            continue
        value = err.get("input")
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        elif err["type"] == "missing":
            lines.append(f"{source}: field '{loc}': required field is missing")
            continue
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        shown = value if not isinstance(value, dict | list) or len(repr(value)) < 120 else "<...>"
        lines.append(f"{source}: field '{loc or '<top>'}' = {shown!r}: {msg}")
    return "\n".join(lines)
