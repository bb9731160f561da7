"""Whether a dotted path (``demand.cv``, ``policies.menu.size``) names something a scenario can set.

Sweep specs (``fixed``, ``grid``, ``lhs.parameters``) and ``flosim run --set`` override scenario
parameters by such paths. :meth:`sim.model.scenario.Scenario.with_overrides` validates the values;
:func:`override_problem` says, before that, why a path names nothing at all, so that a typo is refused
with the path named instead of being written into the scenario where nothing reads it (a scenario
may hold parameters of policies it does not run, so ``policies.cpp_vcg`` would otherwise pass).
"""

from __future__ import annotations

from typing import Any


def override_problem(base: dict[str, Any], path: str) -> str | None:
    """Why ``path`` names nothing a scenario (``base``, its JSON data) can set, or None if it does:
    a field of the scenario, or a parameter of a built-in policy the scenario leaves unwritten; under
    ``policies.`` the name must be a built-in policy or one the scenario has parameters for."""
    parts = path.split(".")
    if parts[0] == "policies" and len(parts) > 1:
        from policies.registry import available_policies

        known = {*available_policies(), *(base.get("policies") or {})}
        if parts[1] not in known:
            return f"no policy named {parts[1]!r} (known: {', '.join(sorted(known))})"
    if _policy_parameter(path):
        return None
    problem = _check_path(base, path)
    if problem and parts[0] == "policies" and len(parts) >= 3:
        named, closed = _policy_parameters(parts[1])
        if named and closed:  # a built-in policy's parameter misspelt: name what it takes, not what the file sets
            return f"policy {parts[1]!r} has no parameter {parts[2]!r} (parameters: {', '.join(sorted(named))})"
    return problem


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


def _policy_parameters(name: str) -> tuple[list[str], bool]:
    """The named parameters of built-in policy ``name``, and whether they are all it takes (False
    when it also takes ``**kwargs``, as ``cpp`` does its ADMM settings); ``([], False)`` for a name
    that is not a built-in policy's."""
    import inspect

    from policies.registry import BUILTIN, _load, available_policies

    if name not in BUILTIN or name not in available_policies():
        return [], False
    signature = inspect.signature(_load(BUILTIN[name], name).__init__).parameters.values()
    named = [p.name for p in signature if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    return named, not any(p.kind is p.VAR_KEYWORD for p in signature)


def _policy_parameter(path: str) -> bool:
    """Whether ``path`` is ``policies.<built-in policy>.<one of its parameters>[...]``: a parameter the
    scenario may leave unwritten (``policies.cpp-vcg.commitment.weeks``), or any name under a policy
    that takes other keywords too (``policies.cpp.gap_tol``, one of cpp's ADMM options); the policy
    checks the name and the value when each design point is loaded."""
    parts = path.split(".")
    if len(parts) < 3 or parts[0] != "policies":
        return False
    named, closed = _policy_parameters(parts[1])
    # a policy that takes other keywords checks the name itself when it is loaded
    return parts[2] in named or (bool(named) and not closed and parts[2] != "self")
