"""Results folders: write a run to disk and read it back.

A results folder holds

* ``ledger.parquet``: tidy rows ``(run, policy, week, party, component, value)``;
* ``flows.parquet``: units by run, policy and week (demand, served, shipped, stock ...);
* ``decisions.parquet``: transfers, planned costs and policy diagnostics by week;
* ``summary.json``: the summary ``flosim run --json`` prints;
* ``scenario.yaml``: the resolved scenario, which reloads to the identical scenario;
* ``metadata.json``: seed, package versions, command, timings, creation time.

That is enough to re-run a run bit for bit (``flosim run --scenario DIR/scenario.yaml --seed S``)
and to rebuild every table and plot without re-simulating (:func:`load_results`).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.errors import FlosimError
from sim.scenario import Scenario, dump_scenario, load_scenario

TABLES = ("ledger", "flows", "decisions")
PACKAGES = ("flosim", "numpy", "scipy", "pandas", "pyarrow", "simpy", "highspy", "osqp", "cvxpy", "pydantic")


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            pass
    return out


def default_results_dir(kind: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path("results") / f"{kind}-{stamp}"
    path, i = base, 1
    while path.exists():
        path = Path(f"{base}-{i}")
        i += 1
    return path


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def jsonable(v: Any) -> Any:
    """``v`` as plain JSON data: dicts (keys as strings), lists, numbers, strings, booleans and null.
    NumPy arrays and scalars become lists and Python numbers, and non-finite floats (NaN, +-inf, which
    ``json`` would write as the invalid bare ``NaN`` / ``Infinity``) become ``None`` (null)."""
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return jsonable(v.tolist())
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v


def write_json(path: Path, obj: Any) -> None:
    _atomic_write_bytes(Path(path), (json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n").encode())


def write_table(path: Path, df: pd.DataFrame) -> None:
    fd, tmp = tempfile.mkstemp(dir=Path(path).parent, prefix=f".{Path(path).name}.")
    os.close(fd)
    df.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def write_results(
    folder: str | Path,
    *,
    tables: dict[str, pd.DataFrame],
    summary: dict[str, Any],
    scenario: Scenario,
    seed: int,
    timings: dict[str, float] | None = None,
    extra_metadata: dict[str, Any] | None = None,
) -> Path:
    """Write a results folder (files are replaced atomically); returns its path."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FlosimError(f"--out {folder}: cannot create results folder: {exc}") from None
    for name, df in tables.items():
        write_table(folder / f"{name}.parquet", df)
    dump_scenario(scenario, folder / "scenario.yaml")
    write_json(folder / "summary.json", summary)
    meta = {
        "seed": seed,
        "scenario": scenario.name,
        "command": " ".join(sys.argv),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": package_versions(),
        "timings": timings or {},
    }
    meta.update(extra_metadata or {})
    write_json(folder / "metadata.json", meta)
    return folder


@dataclass
class LoadedResults:
    folder: Path
    tables: dict[str, pd.DataFrame]
    summary: dict[str, Any]
    metadata: dict[str, Any]
    scenario: Scenario | None

    @property
    def ledger(self) -> pd.DataFrame:
        return self.tables["ledger"]

    @property
    def flows(self) -> pd.DataFrame:
        return self.tables["flows"]

    @property
    def decisions(self) -> pd.DataFrame:
        return self.tables["decisions"]


def load_results(folder: str | Path) -> LoadedResults:
    """Read a results folder written by :func:`write_results`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FlosimError(f"{folder}: not a results folder (no such directory)")
    if not (folder / "ledger.parquet").exists():
        raise FlosimError(f"{folder}: not a results folder (no ledger.parquet)")
    tables = {}
    for name in TABLES:
        p = folder / f"{name}.parquet"
        if p.exists():
            tables[name] = pd.read_parquet(p)
    summary = json.loads((folder / "summary.json").read_text()) if (folder / "summary.json").exists() else {}
    meta = json.loads((folder / "metadata.json").read_text()) if (folder / "metadata.json").exists() else {}
    scenario = load_scenario(folder / "scenario.yaml") if (folder / "scenario.yaml").exists() else None
    return LoadedResults(folder, tables, summary, meta, scenario)
