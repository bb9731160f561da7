"""Finding a policy by name: built-in names, or ``package.module:Class`` for a user's own policy.

``make_policy("jit", scenario)`` builds a built-in; ``make_policy("mypkg.mymodule:MyPolicy", scenario)``
imports the user's class. Either way the class is called with the scenario's parameters for that
policy (``scenario.policies[name]``, as keyword arguments) and must satisfy
:class:`sim.model.decision.Policy` (a ``name`` and a ``decide(ctx)`` method).
"""

from __future__ import annotations

import importlib
import inspect
import math
import importlib.util
import os
import sys
from typing import Any

from sim.model.decision import Policy
from sim.model.errors import FlosimError
from sim.model.scenario import POLICY_PARAMETER_CHECKS, Scenario

BUILTIN: dict[str, str] = {
    "jit": "policies.jit:JITPolicy",
    "first-best": "policies.first_best:FirstBestPolicy",
    "cpp": "policies.cpp:CPPPolicy",
    "cpp-vcg": "policies.cpp_vcg:CPPVCGPolicy",
    "split-savings": "policies.cpp_vcg:SplitSavingsPolicy",
    "menu": "policies.menu:MenuPolicy",
}


def available_policies() -> list[str]:
    """Built-in policy names whose module is present in this installation."""
    out = []
    for name, target in BUILTIN.items():
        module = target.split(":")[0]
        if importlib.util.find_spec(module) is not None:
            out.append(name)
    return out


def _load(target: str, spec: str) -> type:
    module_name, _, cls_name = target.partition(":")
    if not module_name or not cls_name:
        raise FlosimError(f"policy '{spec}': expected a built-in name ({', '.join(available_policies())}) or 'module:Class'")
    if os.getcwd() not in sys.path:  # a user's module in the working directory, as with `python -m`
        sys.path.append(os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise FlosimError(f"policy '{spec}': cannot import module '{module_name}': {exc}") from None
    except SyntaxError as exc:
        raise FlosimError(f"policy '{spec}': module '{module_name}' is not valid Python ({exc.msg}; "
                          f"{exc.filename}, line {exc.lineno})") from None
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - the user's module raised (or exited) while being imported
        raise FlosimError(f"policy '{spec}': importing module '{module_name}' raised {type(exc).__name__}: {exc}") from None
    cls = getattr(module, cls_name, None)
    if cls is None:
        raise FlosimError(f"policy '{spec}': module '{module_name}' has no attribute '{cls_name}'")
    if not callable(cls):
        raise FlosimError(f"policy '{spec}': '{cls_name}' in module '{module_name}' is not a class")
    return cls


def _non_finite(value: Any, where: str) -> tuple[str, Any] | None:
    """The first non-finite number inside ``value``: its place and the number itself."""
    if isinstance(value, float) and not math.isfinite(value):
        return where, value
    if isinstance(value, dict):
        return next((w for k, v in value.items() if (w := _non_finite(v, f"{where}.{k}"))), None)
    if isinstance(value, (list, tuple)):
        return next((w for i, v in enumerate(value) if (w := _non_finite(v, f"{where}.{i}"))), None)
    return None


#: Parameters whose own settings model gives meaning to an infinite value (``privacy: {eps: .inf}``:
#: exact answers, the default); they are left to that model's checks.
_OWN_CHECKS = ("privacy",)


def check_policy_parameters(name: str, params: Any, scenario: Scenario | None = None) -> None:
    """Check a scenario's parameters for the built-in policy ``name`` against that policy's settings,
    when the scenario is loaded (not at the run's first decision): a mapping, every name one the policy
    takes, numbers finite and not true/false where the setting is a number, and the policy accepts the
    values (it is built once and thrown away) for ``scenario`` (e.g. a commitment no longer than its
    horizon), when given. A problem raises :class:`FlosimError` naming the
    parameter (the caller adds file and field). Names that are not built-in policies are a user's own
    policies' parameters and are checked when that policy is built."""
    if name not in BUILTIN or name not in available_policies():
        return
    if not isinstance(params, dict):
        raise FlosimError(f"the parameters of policy '{name}' must be a mapping of name: value, not {params!r}")
    cls = _load(BUILTIN[name], name)
    signature = inspect.signature(cls.__init__)
    takes = {n: p for n, p in signature.parameters.items() if n != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    open_ended = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    for key, value in params.items():
        if key not in takes and not open_ended:
            raise FlosimError(f"'{key}' is not a parameter of policy '{name}' (it takes: {', '.join(takes) or 'none'})")
        found = None if key in _OWN_CHECKS else _non_finite(value, str(key))
        if found:
            raise FlosimError(f"'{found[0]}' = {found[1]!r}: not a finite number")
        default = takes[key].default if key in takes else None
        if isinstance(value, bool) and isinstance(default, (int, float)) and not isinstance(default, bool):
            raise FlosimError(f"'{key}' = {value!r}: a number is needed, not true/false")
        if isinstance(default, bool) and not isinstance(value, bool):
            raise FlosimError(f"'{key}' = {value!r}: true or false is needed")
        if isinstance(default, int) and not isinstance(default, bool) and isinstance(value, float):
            # the policy uses it as a count (``scenarios: 4.0`` failed at the first week: a float is no count)
            raise FlosimError(f"'{key}' = {value!r}: a whole number is needed (written without a decimal point)")
    try:
        policy = cls(**params)
        bind = getattr(policy, "bind_scenario", None)
        if scenario is not None and bind is not None:
            bind(scenario)
    except FlosimError as exc:
        raise FlosimError(str(exc).removeprefix(f"policy '{name}': ")) from None
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise FlosimError(f"bad parameters {params}: {exc}") from None


POLICY_PARAMETER_CHECKS.append(check_policy_parameters)  # loading a scenario checks built-in policies' parameters


def make_policy(spec: str | Policy, scenario: Scenario, **overrides: Any) -> Policy:
    """Build the policy named ``spec`` with the scenario's parameters for it."""
    if not isinstance(spec, str):
        return spec
    if spec in BUILTIN:
        if spec not in available_policies():
            raise FlosimError(f"policy '{spec}' is not implemented in this version (available: {', '.join(available_policies())})")
        target = BUILTIN[spec]
    elif ":" in spec:
        target = spec
    else:
        raise FlosimError(f"unknown policy '{spec}' (built-in: {', '.join(available_policies())}; or give 'module:Class')")
    cls = _load(target, spec)
    # parameters are keyed by the policy's name (`policies: {half-jit: {...}}`), or by the spec itself
    params = dict(scenario.policies.get(spec, scenario.policies.get(str(getattr(cls, "name", spec)), {})))
    params.update(overrides)
    try:
        policy = cls(**params)
    except FlosimError:
        raise
    except TypeError as exc:
        raise FlosimError(f"policy '{spec}': bad parameters {params}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a user's constructor raised
        raise FlosimError(f"policy '{spec}': building it with parameters {params} raised {type(exc).__name__}: {exc}") from None
    try:  # a user's ``name`` may be a property that raises
        is_policy, name = isinstance(policy, Policy), getattr(policy, "name", None)
    except Exception as exc:  # noqa: BLE001
        raise FlosimError(f"policy '{spec}': reading its name raised {type(exc).__name__}: {exc}") from None
    if not is_policy:
        raise FlosimError(f"policy '{spec}': {getattr(cls, '__name__', cls_name_of(spec))} needs a 'name' attribute and a 'decide(ctx)' method")
    if not isinstance(name, str) or not name:
        raise FlosimError(f"policy '{spec}': its name must be non-empty text, got {name!r}")
    if ":" in spec and name in BUILTIN:
        raise FlosimError(f"policy '{spec}': its name {name!r} is a built-in policy's; give the class another "
                          "name (results, savings and participation are keyed by it)")
    bind = getattr(policy, "bind_scenario", None)
    if callable(bind):  # a policy that needs the scenario's published parameters (a transfer rule's prior)
        bind(scenario)
    return policy


def cls_name_of(spec: str) -> str:
    return spec.rpartition(":")[2]


def build_policies(specs: Any, scenario: Scenario) -> list[Policy]:
    """Build every policy of a run, refusing a policy given twice or two policies with one name
    (results are keyed by the policy's name)."""
    built: list[Policy] = []
    seen: dict[str, str] = {}
    for spec in specs:
        label = spec if isinstance(spec, str) else repr(spec)
        if isinstance(spec, str) and spec in seen.values():
            raise FlosimError(f"policy '{spec}' is given twice")
        policy = make_policy(spec, scenario)
        if policy.name in seen:
            raise FlosimError(f"policies '{seen[policy.name]}' and '{label}' have the same name {policy.name!r}; "
                              "a run needs one name per policy")
        seen[policy.name] = label
        built.append(policy)
    return built
