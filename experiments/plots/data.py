"""What the comparison plots and the report read: one saved results folder, as tidy tables.

``load_plot_data(folder)`` accepts a run or replay folder (``flosim run``, ``flosim replay``, one sweep
run under ``runs/``) or a sweep folder (``flosim sweep``) and returns :class:`PlotData`: the same
tables whatever the kind, with a run id, design point and replication on every row, so every figure is
built from saved results only and the same code serves single runs and sweeps.

Parties are named (``retailer`` and each vendor's name): the summary table has a column
``net_cost_<party>`` (and ``settled_net_cost_<party>``, ``transfers_<party>``) per party and
participation columns ``<party>_<check>``, for any number of vendors.

The ledger, flows and decisions tables hold the measured weeks only (raw, week by week); settled
figures (the run plus its cool-down under JIT) come from the summary's ``settled_*`` columns, and
the cost figures use them when present and say so.

Statistics follow one rule: a metric is first averaged over design points within each replication
(replications share seeds across points: common random numbers), then summarised across replications
by its mean and a Student-t confidence interval (:func:`experiments.intervals.mean_ci`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from experiments.intervals import mean_ci
from sim.model.errors import FlosimError
from sim.metrics import MECHANISM, measured, parties, party_columns

#: Fixed colours so a policy looks the same in every figure.
POLICY_COLORS = {
    "jit": "#7f7f7f",
    "first-best": "#222222",
    "cpp-vcg": "#1f77b4",
    "cpp": "#6baed6",
    "menu": "#ff7f0e",
    "split-savings": "#d62728",
}
_EXTRA = ["#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf"]
COST_UNIT = "currency units"
#: Party colours: the retailer always the same, vendors in the order they appear, the mechanism grey.
RETAILER_COLOR, MECHANISM_COLOR = "#4c72b0", "#8c8c8c"
_VENDOR_COLORS = ["#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#ccb974", "#64b5cd"]


def settled_or_raw(summary: pd.DataFrame, col: str) -> tuple[str, str]:
    """``(settled_<col>, "settled")`` when the summary table has settled figures, else ``(col, "raw")``
    (results written before settled costs existed): every cost or saving figure says which it shows."""
    settled = f"settled_{col}"
    if settled in summary and summary[settled].notna().any():
        return settled, "settled"
    return col, "raw"


def policy_color(policy: str, order: list[str]) -> str:
    if policy in POLICY_COLORS:
        return POLICY_COLORS[policy]
    others = [p for p in order if p not in POLICY_COLORS]
    return _EXTRA[others.index(policy) % len(_EXTRA)] if policy in others else _EXTRA[0]


def party_color(party: str, order: list[str]) -> str:
    """A party's colour in figures with one series per party (``order``: the results' parties)."""
    if party == "retailer":
        return RETAILER_COLOR
    if party == MECHANISM:
        return MECHANISM_COLOR
    vendors = [p for p in order if p not in ("retailer", MECHANISM)]
    return _VENDOR_COLORS[vendors.index(party) % len(_VENDOR_COLORS)] if party in vendors else _VENDOR_COLORS[0]


@dataclass
class PlotData:
    """A results folder as tidy tables (see the module docstring)."""

    folder: Path
    kind: Literal["run", "replay", "sweep"]
    title: str
    summary: pd.DataFrame  # run_id, point, replication, policy, metrics, swept parameters
    ledger: pd.DataFrame
    flows: pd.DataFrame
    decisions: pd.DataFrame
    runs: pd.DataFrame  # run_id, point, replication, seed, status, error, swept parameters
    parameters: list[str] = field(default_factory=list)
    policies: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def parties(self) -> list[str]:
        """The parties of the results, by name: the retailer, then each vendor in the ledger's order (and
        ``mechanism`` last when a policy's transfers left it a balance)."""
        return parties(self.ledger) if len(self.ledger) and "party" in self.ledger else []

    @property
    def agents(self) -> list[str]:
        """The parties who take part (retailer and vendors), without the mechanism's balance."""
        return [p for p in self.parties if p != MECHANISM]

    @property
    def replications(self) -> int:
        return int(self.summary["replication"].nunique()) if len(self.summary) else 0

    @property
    def points(self) -> int:
        return int(self.summary["point"].nunique()) if len(self.summary) else 0

    def by_replication(self, df: pd.DataFrame, value: str, keys: list[str]) -> pd.DataFrame:
        """``value`` averaged over design points within each replication, per ``keys``."""
        return df.groupby(["replication", *keys], as_index=False, sort=False)[value].mean()

    def across(self, df: pd.DataFrame, value: str, keys: list[str]) -> pd.DataFrame:
        """Mean, CI half-width and count of ``value`` across replications, per ``keys``."""
        per_rep = self.by_replication(df, value, keys)
        rows = []
        for key, g in per_rep.groupby(keys, sort=False):
            m, h, n = mean_ci(g[value])
            rows.append({**dict(zip(keys, key if isinstance(key, tuple) else (key,))), "mean": m, "ci": h, "n": n})
        return pd.DataFrame(rows, columns=[*keys, "mean", "ci", "n"])


def _order(policies: list[str]) -> list[str]:
    preferred = ["jit", "cpp-vcg", "cpp", "menu", "split-savings", "first-best"]
    return [p for p in preferred if p in policies] + [p for p in policies if p not in preferred]


def _run_summary_rows(summary: dict[str, Any], run_id: str) -> pd.DataFrame:
    """One row per policy (and per replication, for ``flosim run --replications N``)."""
    rows = []
    per_rep = summary.get("per_replication")
    runs = per_rep if per_rep else [{"replication": 0, **summary}]
    for r in runs:
        rid = f"rep-{r['replication']}" if per_rep else run_id
        part = r.get("participation") or {}
        for policy, totals in (r.get("policies") or {}).items():
            row = {"run_id": rid, "point": 0, "replication": int(r["replication"]), "policy": policy,
                   **{k: v for k, v in totals.items() if k != "parties"}, **party_columns(totals)}
            for party, entry in (part.get(policy) or {}).items():
                for key, v in entry.items():
                    row[f"{party}_{key}"] = v
            rows.append(row)
    return pd.DataFrame(rows)


def _with_keys(df: pd.DataFrame, run_id: str) -> pd.DataFrame:
    df = df.copy()
    if "run" not in df.columns:
        df["run"] = run_id
    for col in ("point", "replication"):
        if col not in df.columns:
            df[col] = 0
    return df


def load_plot_data(folder: str | Path) -> PlotData:
    """Read a run, replay or sweep results folder; see the module docstring."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FlosimError(f"{folder}: no such results folder")
    if (folder / "sweep.json").exists() or (folder / "runs").is_dir():  # a run's folder has no runs/
        from experiments.sweep import load_sweep

        meta, t = load_sweep(folder)
        summary = t["summary"]
        if summary.empty:
            raise FlosimError(f"{folder}: the sweep has no finished runs to plot (see runs.parquet for errors)")
        policies = _order(list(dict.fromkeys(summary["policy"])))
        title = f"sweep {meta.get('name', folder.name)}: scenario {meta.get('scenario', '?')}"
        return PlotData(folder, "sweep", title, summary, measured(t["ledger"]), measured(t["flows"]), measured(t["decisions"]), t["runs"],
                        list(meta.get("parameters", [])), policies, meta)
    from sim.results import load_results

    res = load_results(folder)
    meta = dict(res.metadata)
    kind: Literal["run", "replay"] = "replay" if meta.get("kind") == "replay" else "run"
    run_ids = list(dict.fromkeys(res.ledger["run"])) if "run" in res.ledger and len(res.ledger) else ["run"]
    run_id = str(run_ids[0])
    summary = _run_summary_rows(res.summary, run_id)
    if summary.empty:
        raise FlosimError(f"{folder}: summary.json lists no policies to plot")
    meta.setdefault("weeks", res.summary.get("weeks"))
    scenario = res.summary.get("scenario") or (res.scenario.name if res.scenario else folder.name)
    title = f"{kind} of scenario {scenario}, {res.summary.get('weeks', '?')} weeks, seed {res.summary.get('seed', '?')}"
    seeds = res.summary.get("seeds") if res.summary.get("per_replication") else None
    runs = pd.DataFrame([{"run_id": f"rep-{i}", "point": 0, "replication": i, "seed": s, "status": "done"} for i, s in enumerate(seeds)]
                        if seeds else [{"run_id": run_id, "point": 0, "replication": 0, "seed": res.summary.get("seed"), "status": "done"}])
    return PlotData(folder, kind, title, summary, measured(_with_keys(res.ledger, run_id)), measured(_with_keys(res.flows, run_id)),
                    measured(_with_keys(res.decisions, run_id)) if len(res.decisions) else res.decisions, runs, [],
                    _order(list(dict.fromkeys(summary["policy"]))), meta)


def weekly_margins(data: PlotData, reference: str = "jit") -> pd.DataFrame:
    """Ex post participation margins from the ledger: per run, policy, party and week, the party's net
    cost in the reference (JIT) world minus under the policy (positive = better off than under JIT),
    and its running total ``cumulative``."""
    net = data.ledger.groupby(["run", "point", "replication", "policy", "week", "party"], as_index=False)["value"].sum()
    ref = net[net.policy == reference].drop(columns="policy").rename(columns={"value": "reference"})
    out = net[net.policy != reference].merge(ref, on=["run", "point", "replication", "week", "party"])
    out["margin"] = out["reference"] - out["value"]
    out = out.sort_values(["run", "policy", "party", "week"], kind="stable")
    out["cumulative"] = out.groupby(["run", "policy", "party"], sort=False)["margin"].cumsum()
    return out.reset_index(drop=True)


def transcripts(folder: Path) -> list[Path]:
    """CPP transcripts (Parquet files written by :class:`sim.negotiation.transcript.Transcript`) in a results folder."""
    import pyarrow.parquet as pq

    found = []
    for path in sorted(folder.rglob("*.parquet")):
        if path.parent == folder and path.stem in ("ledger", "flows", "decisions", "summary", "runs"):
            continue
        if "runs" in path.relative_to(folder).parts[:1] and path.stem in ("ledger", "flows", "decisions"):
            continue
        try:
            meta = pq.read_schema(path).metadata or {}
        except Exception:  # noqa: BLE001 - not a readable Parquet file: not a transcript
            continue
        if b"flosim.transcript" in meta:
            found.append(path)
    return found


def read_meta_json(path: Path) -> dict[str, Any]:
    """A JSON object beside the results (empty when absent); a damaged file is an error naming it."""
    from sim.results import read_json

    return read_json(path) if path.exists() else {}
