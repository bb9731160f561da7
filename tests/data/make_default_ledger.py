"""Regenerate the stored ``default`` ledgers the tests compare against exactly (run from the repository root):

    python tests/data/make_default_ledger.py          # rewrite the files
    python tests/data/make_default_ledger.py --check  # only compare, print the rows that differ

Each file holds the ``default`` scenario's ledger over its stored weeks (3, then the cool-down) for its
stored policies, each row as the tests build it (``_ledger_rows(run_policies(...))``):

* ``default_ledger_main.json``: ``jit``, ``first-best``, ``cpp-vcg`` at their defaults
  (tests/test_shocks.py: no shocks changes nothing);
* ``default_ledger_paths.json``: ``cpp-vcg`` with ``transfer: {continuation: paths}`` (its ``options``
  key, merged into the scenario's ``policies`` block); its rows are those ``default_ledger_main.json``
  held while ``paths`` was the default (tests/test_cbt_default.py: the explicit setting keeps them).

Regenerate after a deliberate change to a policy or the world, and say in the commit message which rows
moved and why (``--check`` lists them).
"""

from __future__ import annotations

import copy
import json
import sys
from importlib import resources
from pathlib import Path

HERE = Path(__file__).resolve().parent
FILES = ("default_ledger_main.json", "default_ledger_paths.json")
# run as a script, import this checkout's code (not an installed copy elsewhere)
if str(HERE.parents[1]) not in sys.path:
    sys.path.insert(1, str(HERE.parents[1]))


def ledger_rows(result) -> list[list]:
    """Every ledger row as ``[policy, week, phase, party, component, repr(value)]`` (the test's form)."""
    return [[str(x.policy), int(x.week), str(x.phase), str(x.party), str(x.component), repr(float(x.value))]
            for x in result.ledger.itertuples()]


def compute(weeks: int, policies: list[str], options: dict | None = None) -> list[list]:
    """The rows of ``default`` over ``weeks`` for ``policies``, with ``options`` (policy name -> settings)
    merged into the scenario's ``policies`` block."""
    import yaml

    from sim.model.scenario import scenario_from_dict
    from sim.runner import run_policies

    data = copy.deepcopy(yaml.safe_load((resources.files("sim") / "scenarios" / "default.yaml").read_text()))
    data["weeks"] = weeks
    for name, settings in (options or {}).items():
        data.setdefault("policies", {})[name] = {**data.get("policies", {}).get(name, {}), **settings}
    return ledger_rows(run_policies(scenario_from_dict(data, "<test>"), policies, progress=False))


def main(argv: list[str]) -> int:
    differs = False
    for name in FILES:
        path = HERE / name
        stored = json.loads(path.read_text())
        rows = compute(stored["weeks"], stored["policies"], stored.get("options"))
        changed = [(old, new) for old, new in zip(stored["ledger"], rows) if old != new]
        for old, new in changed:
            print(f"{old[:5]}: {old[5]} -> {new[5]}" if old[:5] == new[:5] else f"{old} -> {new}")
        if len(rows) != len(stored["ledger"]):
            print(f"rows: {len(stored['ledger'])} -> {len(rows)}")
        print(f"{name}: {len(changed)} of {len(rows)} rows differ")
        differs = differs or bool(changed) or len(rows) != len(stored["ledger"])
        if "--check" not in argv:
            path.write_text(json.dumps({**stored, "ledger": rows}, indent=0))  # the files' layout
            print(f"wrote {path}")
    return 1 if differs and "--check" in argv else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
