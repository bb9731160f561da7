"""Turning validation problems into messages a user can act on, for every YAML input flosim reads
(scenarios, sweep specs): read a file with clear errors, and format pydantic errors as one line per
problem naming the source, the dotted field and the value."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BeforeValidator, ValidationError

from sim.model.errors import FlosimError


class FieldError(ValueError):
    """Raised inside a validator to point at a field below the validated model, with its value."""

    def __init__(self, field: str, value: Any, problem: str) -> None:
        super().__init__(f"{problem}")
        self.field = field
        self.value = value
        self.problem = problem


def no_bool(value: Any) -> Any:
    """A ``mode="before"`` check for a numeric field: true/false is refused (pydantic would take it as
    1/0, and YAML also reads yes/on/no/off so: ``weeks: true`` would simulate one week)."""
    if isinstance(value, bool):
        raise ValueError("a number is needed, not true/false")
    return value


#: A float that is not true/false; models using it also set ``allow_inf_nan=False``.
Number = Annotated[float, BeforeValidator(no_bool)]
#: A whole number that is not true/false.
Whole = Annotated[int, BeforeValidator(no_bool)]


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


#: Limits of every YAML document flosim reads (scenarios, specs, ``--set`` values, traces). They are
#: far above any real scenario (the built-in ones are a few kilobytes, a few hundred values) and
#: refuse a hostile one at parse time, before anything is built from it: an "alias bomb" (a few
#: lines whose aliases expand to billions of values), a huge file, a deeply nested one.
MAX_YAML_BYTES = 20_000_000
MAX_YAML_ALIASES = 1_000
MAX_YAML_VALUES = 1_000_000  # values after aliases are expanded
MAX_YAML_DEPTH = 100


class _LimitedLoader(yaml.SafeLoader):
    """PyYAML's safe loader with the limits above and duplicate mapping keys refused (plain PyYAML
    keeps the last of ``weeks: 2`` ... ``weeks: 5`` without a word)."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._aliases = 0
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_YAML_ALIASES:
                mark = self.peek_event().start_mark
                raise yaml.YAMLError(f"more than {MAX_YAML_ALIASES} aliases (*name){_at(mark)}; write the values out")
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                mark = self.peek_event().start_mark
                raise yaml.YAMLError(f"nested more than {MAX_YAML_DEPTH} levels deep{_at(mark)}")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self) -> Any:
        node = super().compose_document()
        _check_expanded_size(node)
        return node

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key; the base class says so
                    continue
                if first is not None:
                    raise yaml.YAMLError(f"duplicate key {key!r}{_at(key_node.start_mark)} (first{_at(first)})")
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def _at(mark: Any) -> str:
    return f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""


def _check_expanded_size(root: Any) -> None:
    """Refuse a document whose aliases expand to more than :data:`MAX_YAML_VALUES` values (each node's
    expanded size is computed once, so this takes time linear in the file, not in the expansion)."""
    sizes: dict[int, int] = {}
    open_: set[int] = set()  # nodes whose children are being sized: meeting one again is a cycle
    stack: list[tuple[Any, bool]] = [(root, False)] if root is not None else []
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        if isinstance(node, yaml.ScalarNode):
            sizes[id(node)] = 1
            continue
        children = [c for pair in node.value for c in pair] if isinstance(node, yaml.MappingNode) else list(node.value)
        if children_done:
            open_.discard(id(node))
            total = 1 + sum(sizes.get(id(c), 0) for c in children)
            if total > MAX_YAML_VALUES:
                raise yaml.YAMLError(
                    f"expands to more than {MAX_YAML_VALUES:,} values (aliases repeating aliases){_at(node.start_mark)}"
                )
            sizes[id(node)] = total
            continue
        if id(node) in open_:
            raise yaml.YAMLError(f"an alias refers to a value that contains it{_at(node.start_mark)} (endless)")
        open_.add(id(node))
        stack.append((node, True))
        for c in children:
            if id(c) in open_:
                raise yaml.YAMLError(f"an alias refers to a value that contains it{_at(c.start_mark)} (endless)")
            if id(c) not in sizes:
                stack.append((c, False))


def load_yaml_text(text: str, source: str, error: type[FlosimError] = FlosimError) -> Any:
    """Parse one YAML document with flosim's limits (see :data:`MAX_YAML_BYTES` and the others) and
    duplicate keys refused; ``error`` naming ``source`` when the text is not valid or too big."""
    if len(text) > MAX_YAML_BYTES:
        raise error(f"{source}: {len(text):,} characters, more than the {MAX_YAML_BYTES:,} flosim reads in a YAML file")
    try:
        return yaml.load(text, Loader=_LimitedLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise error(f"{source}: not valid YAML: {' '.join(str(exc).split())}") from None
    except RecursionError:
        raise error(f"{source}: not valid YAML: nested too deeply") from None


def read_yaml(path: Path, error: type[FlosimError], what: str) -> Any:
    """The parsed content of a YAML file; ``error`` with the file name for a missing, unreadable,
    malformed or hostile file (``what`` says what was expected, e.g. "a YAML sweep spec")."""
    source = str(path)
    if not path.exists():
        raise error(f"{source}: no such file")
    if path.is_dir():
        raise error(f"{source}: is a folder, expected {what}")
    try:
        size = path.stat().st_size
        if size > MAX_YAML_BYTES:
            raise error(f"{source}: {size:,} bytes, more than the {MAX_YAML_BYTES:,} flosim reads in a YAML file")
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{source}: cannot read: {exc}") from None
    return load_yaml_text(text, source, error)


#: Location parts pydantic adds for the members of a union (``production_cost: float | dict``).
_UNION_TAG = re.compile(r"^(constrained-)?(float|int|str|bool)$|^(dict|list|tuple)\[.*\]$")


def union_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Report a union field once, in the user's terms: drop pydantic's member tags from locations,
    keep only the deepest failures (``production_cost.detergent = -1``, not also "not a number"), prefer a
    broken bound to a wrong type, and join the alternatives when a value fits none (``should be a valid
    number ... or a valid dictionary``). Other errors pass unchanged, in their order."""
    cleaned = []
    for err in errors:
        loc = tuple(err["loc"])
        clean = tuple(p for p in loc if not (isinstance(p, str) and (_UNION_TAG.match(p) or p.startswith("function-"))))
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
