"""Finding a policy by name: built-in names, or ``package.module:Class`` for a user's own policy.

``make_policy("jit", scenario)`` builds a built-in; ``make_policy("mypkg.mymodule:MyPolicy", scenario)``
imports the user's class. Either way the class is called with the scenario's parameters for that
policy (``scenario.policies[name]``, as keyword arguments) and must satisfy
:class:`policies.base.Policy` (a ``name`` and a ``decide(ctx)`` method).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from typing import Any

from policies.base import Policy
from sim.errors import FlosimError
from sim.scenario import Scenario

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
    cls = getattr(module, cls_name, None)
    if cls is None:
        raise FlosimError(f"policy '{spec}': module '{module_name}' has no attribute '{cls_name}'")
    return cls


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
    except TypeError as exc:
        raise FlosimError(f"policy '{spec}': bad parameters {params}: {exc}") from None
    if not isinstance(policy, Policy):
        raise FlosimError(f"policy '{spec}': {cls.__name__} needs a 'name' attribute and a 'decide(ctx)' method")
    return policy
