"""The code's floors: every module imports only from its own floor or the floors below it, and no two
project modules import each other (directly or round a loop). See README, "Layout".

Floors, lowest first: ``sim.model`` (scenario, data, LPs, the policy interface); ``sim.negotiation``
(the protocol, the coordinator, best responses); ``sim.parties`` (the parties' agents, which build their
own negotiators); ``forecasts``; ``policies``; the world, runner, metrics and results (``sim``'s top);
``experiments``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("sim", "policies", "forecasts", "experiments")
FLOORS = ("sim.model", "sim.negotiation", "sim.parties", "forecasts", "policies", "sim", "experiments")


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _floor(module: str) -> int:
    """The floor of a module: the longest matching floor prefix."""
    best = -1
    for i, prefix in enumerate(FLOORS):
        if module == prefix or module.startswith(prefix + "."):
            if best < 0 or len(prefix) > len(FLOORS[best]):
                best = i
    return best


def _imports(path: Path, module: str, modules: dict[str, Path]) -> set[str]:
    """Project modules ``module`` imports, at any place in the file (a deferred import is an import)."""
    found = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module and not module.startswith(name + "."):
                found.add(name)
    return found


MODULES = _modules()
GRAPH = {m: _imports(p, m, MODULES) for m, p in MODULES.items()}


def test_every_module_has_a_floor():
    assert all(_floor(m) >= 0 for m in MODULES), [m for m in MODULES if _floor(m) < 0]


def test_no_module_imports_from_a_floor_above_its_own():
    upward = sorted(f"{m} (floor {FLOORS[_floor(m)]}) imports {d} (floor {FLOORS[_floor(d)]})"
                    for m, deps in GRAPH.items() for d in deps if _floor(d) > _floor(m))
    assert not upward, "\n".join(upward)


def test_no_import_loops():
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    loops: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                loops.append(sorted(comp))

    for v in GRAPH:
        if v not in index:
            visit(v)
    assert not loops, loops


def test_the_check_sees_an_upward_import(tmp_path):
    """The floor test can fail: a ground-floor module importing a policy is caught."""
    path = tmp_path / "probe.py"
    path.write_text("from policies.jit import JITPolicy\n")
    deps = _imports(path, "sim.model.probe", MODULES)
    assert "policies.jit" in deps and _floor("policies.jit") > _floor("sim.model.probe")
