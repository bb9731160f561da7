"""Results folders: write a run to disk and read it back.

A results folder holds

* ``ledger.parquet``: tidy rows ``(run, policy, week, party, component, value)``;
* ``flows.parquet``: units by run, policy and week (demand, served, shipped, stock ...);
* ``decisions.parquet``: transfers, planned costs and policy diagnostics by week;
* ``shortfalls.parquet`` (runs written since shortages were modelled): units ordered, shipped and
  short, and the shortfall's cost to the retailer, by week, vendor, FC and product;
* ``summary.json``: the summary ``flosim run --json`` prints (each policy's totals, with every party's
  figures by name under ``parties``, and participation per party: README, "What flosim run --json
  prints");
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

from sim.model.errors import FlosimError
from sim.model.files import publish_mode
from sim.model.scenario import Scenario, dump_scenario, load_scenario

TABLES = ("ledger", "flows", "decisions")
#: Tables a results folder may hold besides :data:`TABLES` (folders written before them lack them).
OPTIONAL_TABLES = ("shortfalls",)
LEDGER_COLUMNS = ("run", "policy", "week", "party", "component", "value")
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
    publish_mode(tmp)
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
    publish_mode(tmp)
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

    @property
    def shortfalls(self) -> pd.DataFrame:
        """Units ordered, shipped and short, and their cost, by week, vendor, FC and product (empty for
        a folder written before the table existed)."""
        return self.tables.get("shortfalls", pd.DataFrame())


def read_table(path: str | Path) -> pd.DataFrame:
    """A Parquet table flosim wrote; :class:`FlosimError` naming the file if it cannot be read
    (truncated, not Parquet, unreadable)."""
    path = Path(path)
    try:
        return pd.read_parquet(path)
    except FileNotFoundError:
        raise FlosimError(f"{path}: missing") from None
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a damaged file
        why = _short(str(exc).replace(f"Could not open Parquet input source '{path}': ", ""))
        raise FlosimError(f"{path}: damaged, not a readable Parquet table ({type(exc).__name__}: {why})") from None


def read_json(path: str | Path, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """A JSON object flosim wrote; :class:`FlosimError` naming the file if it cannot be read, is not
    an object, or lacks one of the ``required`` keys."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise FlosimError(f"{path}: missing") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise FlosimError(f"{path}: damaged, not readable JSON ({_short(exc)})") from None
    if not isinstance(data, dict):
        raise FlosimError(f"{path}: damaged, holds {type(data).__name__} instead of a JSON object")
    missing = [k for k in required if k not in data]
    if missing:
        raise FlosimError(f"{path}: damaged or not written by this flosim (no {', '.join(repr(k) for k in missing)})")
    return data


def _is_number(value: Any) -> bool:
    """A summary total: a number, or null (a share with nothing to share), or a replicated run's
    ``{mean, lo, hi}`` of such numbers (``flosim run --replications``)."""
    if isinstance(value, dict):
        return set(value) == {"mean", "lo", "hi"} and all(_is_number(v) for v in value.values())
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _is_party_totals(value: Any) -> bool:
    """A policy's ``parties``: party name -> figures (``net_cost``, ``settled_net_cost`` ...), each a
    number, null or a replicated ``{mean, lo, hi}``."""
    return isinstance(value, dict) and all(isinstance(e, dict) and all(_is_number(v) for v in e.values())
                                           for e in value.values())


def _short(exc: BaseException | str) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 160 else text[:157] + "..."


#: What a run's ``summary.json`` must hold to be read back.
SUMMARY_KEYS = ("policies", "weeks")


def check_results_folder(folder: str | Path) -> None:
    """Read every file of a results folder once; :class:`FlosimError` naming the first damaged one
    (a sweep's resume uses this to tell a finished run from a damaged one)."""
    load_results(folder)


def load_results(folder: str | Path) -> LoadedResults:
    """Read a results folder written by :func:`write_results`; a missing or damaged file is a
    :class:`FlosimError` naming it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FlosimError(f"{folder}: not a results folder (no such directory)")
    if not (folder / "ledger.parquet").exists():
        raise FlosimError(f"{folder}: not a results folder (no ledger.parquet)")
    tables = {}
    for name in TABLES:  # every writer writes all three: one missing is a damaged (or partly copied) folder
        tables[name] = read_table(folder / f"{name}.parquet")
    for name in OPTIONAL_TABLES:
        if (folder / f"{name}.parquet").exists():
            tables[name] = read_table(folder / f"{name}.parquet")
    summary = read_json(folder / "summary.json", SUMMARY_KEYS) if (folder / "summary.json").exists() else {}
    if summary and not (isinstance(summary["policies"], dict) and all(isinstance(v, dict) for v in summary["policies"].values())):
        raise FlosimError(f"{folder / 'summary.json'}: damaged ('policies' is not a mapping of policy: totals)")
    if summary and not all(_is_number(v) for totals in summary["policies"].values() for k, v in totals.items()
                           if k not in ("parties", "commitment_cost")):
        raise FlosimError(f"{folder / 'summary.json'}: damaged (a policy's totals are not all numbers)")
    if summary and not all(isinstance(totals.get("commitment_cost", {}), dict) and
                           all(_is_number(v) for v in totals.get("commitment_cost", {}).values())
                           for totals in summary["policies"].values()):
        raise FlosimError(f"{folder / 'summary.json'}: damaged (a policy's 'commitment_cost' is not a mapping of party: number)")
    if summary and not all(_is_party_totals(totals.get("parties", {})) for totals in summary["policies"].values()):
        raise FlosimError(f"{folder / 'summary.json'}: damaged (a policy's 'parties' is not a mapping of party: figures)")
    part = summary.get("participation") or {}
    if summary and not (isinstance(part, dict) and all(isinstance(v, dict) and all(isinstance(e, dict) for e in v.values())
                                                        for v in part.values())):
        raise FlosimError(f"{folder / 'summary.json'}: damaged ('participation' is not a mapping of policy: party: checks)")
    missing = [c for c in LEDGER_COLUMNS if c not in tables["ledger"].columns]
    if missing:
        raise FlosimError(f"{folder / 'ledger.parquet'}: damaged or not a flosim ledger (no column {', '.join(missing)})")
    if not pd.api.types.is_numeric_dtype(tables["ledger"]["value"]):
        raise FlosimError(f"{folder / 'ledger.parquet'}: damaged or not a flosim ledger (its 'value' column is not numbers)")
    meta = read_json(folder / "metadata.json") if (folder / "metadata.json").exists() else {}
    scenario = None
    if (folder / "scenario.yaml").exists():
        try:
            scenario = load_scenario(folder / "scenario.yaml")
        except FlosimError as exc:
            raise FlosimError(f"damaged results folder {folder}: {exc}") from None
    return LoadedResults(folder, tables, summary, meta, scenario)


RESULT_FILES = ("ledger.parquet", "summary.json", "metadata.json", "scenario.yaml")


def check_out_folder(folder: str | Path, force: bool, what: str = "results") -> None:
    """Before anything is computed: refuse an ``--out`` that is a file, the current folder or one
    holding it (the run's folder is put in place whole, by renaming), or a folder that is not empty
    unless ``force`` (then it must be a results folder, holding every file of :data:`RESULT_FILES`,
    which is replaced whole, so no old file, plot or report stays beside the new run; a folder of
    one's own that merely holds a ``scenario.yaml`` is never replaced)."""
    given = folder
    folder = Path(os.path.abspath(folder))
    try:
        holds_cwd = not folder.name or Path.cwd().resolve().is_relative_to(folder.resolve())
    except OSError:  # the current folder was removed
        holds_cwd = False
    if holds_cwd:
        raise FlosimError(f"--out {given}: is the current folder or holds it; give the results a folder of their own "
                          "(e.g. --out results/run1)")
    if folder.exists() and not folder.is_dir():
        raise FlosimError(f"--out {given}: exists and is not a folder")
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FlosimError(f"--out {given}: cannot create results folder: {exc}") from None
    if not os.access(folder.parent, os.W_OK | os.X_OK):
        raise FlosimError(f"--out {given}: cannot create results folder: {folder.parent} is not writable")
    if not folder.is_dir() or not any(folder.iterdir()):
        return
    if not force:
        raise FlosimError(f"--out {given}: folder exists and is not empty (choose another folder, or --force to replace {what})")
    missing = [name for name in RESULT_FILES if not (folder / name).exists()]
    if missing:
        raise FlosimError(f"--out {given}: exists and is not a {what} folder (no {', '.join(missing)}); not replacing it")


def replace_folder(tmp: Path, final: Path) -> None:
    """Put the finished folder ``tmp`` at ``final``, replacing what is there (moved aside first, removed
    only once the new folder is in place)."""
    import shutil

    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
