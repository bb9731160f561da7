"""Derived metrics from the tidy tables: social cost, net costs, transfers, fill rate, savings.

All functions take the ledger / flows / decisions data frames (as written to and read from a results
folder), so every number in a summary can be recomputed from saved results.

Raw and settled figures. Rows carry a ``phase``: ``measured`` for the run's weeks, ``settle`` for the
cool-down after them, in which every policy's world continues under JIT on the same inputs (see
:func:`forecasts.inputs.settle_inputs`). Raw figures (``social_cost``, ``retailer_net_cost`` ...) sum
the measured rows only, exactly as before the cool-down existed; settled figures
(``settled_social_cost``, ``settled_retailer_net_cost`` ...) sum both phases, so the stock a policy
leaves behind is used or held at its true cost instead of being charged and never credited. Tables
without a ``phase`` column (results written before it existed) are all measured.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


#: ``phase`` of a ledger, flows or decisions row: a measured week, or a cool-down week (settled costs).
MEASURED, SETTLE = "measured", "settle"


def measured(df: pd.DataFrame) -> pd.DataFrame:
    """The measured weeks' rows of a ledger, flows or decisions table (all rows if it has no ``phase``)."""
    if "phase" not in df.columns or not len(df):
        return df
    return df[df["phase"].isna() | (df["phase"] == MEASURED)]


RETAILER, MECHANISM = "retailer", "mechanism"


def parties(ledger: pd.DataFrame) -> list[str]:
    """The parties of a ledger, retailer first, then the vendors in the order they appear (the
    mechanism's own balance, if any, last)."""
    names = [str(p) for p in pd.unique(ledger["party"])] if len(ledger) else []
    vendors = [p for p in names if p not in (RETAILER, MECHANISM)]
    return [RETAILER] + vendors + ([MECHANISM] if MECHANISM in names else [])


def vendor_names(ledger: pd.DataFrame) -> list[str]:
    """The vendors of a ledger, in the order they appear."""
    return [p for p in parties(ledger) if p not in (RETAILER, MECHANISM)]


def settled_totals(ledger: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per policy: settled social cost and each party's settled net cost (measured plus cool-down rows)."""
    out: dict[str, dict[str, Any]] = {}
    vendors = vendor_names(ledger)
    for policy, rows in ledger.groupby("policy", sort=False):
        by_party = rows.groupby("party")["value"].sum()
        out[str(policy)] = {"settled_social_cost": float(rows["value"].sum()),
                            "settled_retailer_net_cost": float(by_party.get(RETAILER, 0.0))}
        if len(vendors) == 1:  # the one-vendor key of earlier versions
            out[str(policy)]["settled_vendor_net_cost"] = float(by_party.get(vendors[0], 0.0))
        out[str(policy)]["_settled_parties"] = {p: float(by_party.get(p, 0.0)) for p in parties(ledger)}
    return out


def policy_totals(ledger: pd.DataFrame, flows: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per policy: social cost, each party's net cost, transfers paid by the vendors, fill rate, units
    not served, and the stock left at the end of the run (FCs, in transit, at the vendors' origins),
    all raw (measured weeks); then the settled social cost and net costs (with the cool-down).
    ``parties`` holds, by party name (the retailer, each vendor, and ``mechanism`` when the transfers
    left it a balance), the party's raw ``net_cost``, its ``settled_net_cost`` and the ``transfers`` it
    paid over the measured weeks (negative: received); the parties' net costs sum to the social cost.
    With one vendor the keys ``retailer_net_cost`` and ``vendor_net_cost`` (and their settled
    versions) stay as well. ``transfers`` is the total the vendors paid."""
    settled = settled_totals(ledger)
    names = parties(ledger)
    vendors = vendor_names(ledger)
    ledger, flows = measured(ledger), measured(flows)
    out: dict[str, dict[str, Any]] = {}
    for policy, rows in ledger.groupby("policy", sort=False):
        by_party = rows.groupby("party")["value"].sum()
        transfers = rows[rows.party.isin(vendors) & (rows.component == "transfer")]["value"].sum()
        f = flows[flows.policy == policy]
        demand = float(f["demand"].sum())
        entry: dict[str, Any] = {
            "social_cost": float(rows["value"].sum()),
            "retailer_net_cost": float(by_party.get(RETAILER, 0.0)),
        }
        if len(vendors) == 1:
            entry["vendor_net_cost"] = float(by_party.get(vendors[0], 0.0))
        entry.update({
            "transfers": float(transfers),
            "fill_rate": float(f["served"].sum() / demand) if demand > 0 else float("nan"),
            "lost_units": _unserved_units(f),
            # units the vendors were ordered but did not ship (capacity shocks, or JIT's unprofitable units)
            "shortfall_units": float(f["shortfall"].sum()) if "shortfall" in f else 0.0,
            # what those units cost the retailer by its own cost model (sim.execution): a figure, not a
            # ledger cost (the ledger's lost sales and other rows already hold what the shortfall did)
            "shortfall_cost": float(f["shortfall_cost"].sum()) if "shortfall_cost" in f else 0.0,
            # stock left at the end (units): the ledger does not value it, so a policy that ends a
            # run with less stock looks cheaper by what that stock cost; compare these too
            "end_fc_stock": float(f["fc_stock_end"].iloc[-1]) if len(f) else 0.0,
            "end_in_transit": float(f["in_transit_end"].iloc[-1]) if len(f) else 0.0,
            "end_vendor_stock": float(f["vendor_stock_end"].iloc[-1]) if len(f) else 0.0,
        })
        s = settled[str(policy)]
        settled_parties = s.pop("_settled_parties")
        entry.update(s)
        paid = rows[rows.component == "transfer"].groupby("party")["value"].sum()
        entry["parties"] = {p: {"net_cost": float(by_party.get(p, 0.0)), "settled_net_cost": settled_parties.get(p, 0.0),
                                "transfers": float(paid.get(p, 0.0))}
                            for p in names}
        out[str(policy)] = entry
    return out


#: A party's figures in a policy's ``parties`` entry (:func:`policy_totals`).
PARTY_TOTALS = ("net_cost", "settled_net_cost", "transfers")
#: A policy's totals that are mappings by party rather than numbers (:func:`party_columns` flattens them).
BY_PARTY = ("parties", "commitment_cost")


def party_columns(totals: dict[str, Any]) -> dict[str, Any]:
    """A policy's ``parties`` entry as flat columns ``<figure>_<party>`` (``net_cost_acme``,
    ``settled_net_cost_retailer`` ...), and its ``commitment_cost`` (when it ran with a commitment) as
    ``commitment_cost_<party>``, for tables with one row per policy (sweep summaries, plots)."""
    out = {f"{figure}_{party}": value for party, entry in (totals.get("parties") or {}).items()
           for figure, value in entry.items()}
    out.update({f"commitment_cost_{party}": value for party, value in (totals.get("commitment_cost") or {}).items()})
    return out


def commitment_totals(decisions: pd.DataFrame) -> dict[str, Any]:
    """A committed mechanism's commitment figures over the measured weeks (empty for a policy that ran
    without a ``commitment`` option): ``committed_units``, the units its agreements committed beyond
    their binding weeks; ``commitment_cost``, by party, what the commitment bands cost it (each week's
    ``commitment_cost_<party>``: the party's planned cost at the week's first-best plan inside the
    box less without it; docs/model.md, "Mutual commitment"); ``commitment_released_units``, the
    committed floors eased because a vendor could no longer ship them."""
    d = measured(decisions)
    if "committed_units" not in d or not d["committed_units"].notna().any():
        return {}
    d = d[d["committed_units"].notna()]
    prefix = "commitment_cost_"
    return {
        "committed_units": float(d["committed_units"].sum()),
        "commitment_cost": {c[len(prefix):]: float(d[c].astype(float).sum()) for c in d.columns if c.startswith(prefix)},
        "commitment_released_units": float(d["commitment_released"].astype(float).sum()) if "commitment_released" in d else 0.0,
    }


def _unserved_units(f: pd.DataFrame) -> float:
    """Units not served: lost over the run under lost sales; still owed at the end under backlog
    (where ``unmet`` is each week's carried backlog, so summing it would count units repeatedly)."""
    if len(f) and f["backlog_end"].sum() > 0:
        return float(f["backlog_end"].iloc[-1])
    return float(f["unmet"].sum())


def component_table(ledger: pd.DataFrame) -> pd.DataFrame:
    """Total of each (party, component) by policy over the measured weeks (raw): rows (party,
    component), one column per policy."""
    return measured(ledger).pivot_table(index=["party", "component"], columns="policy", values="value", aggfunc="sum", sort=False)


def add_comparisons(totals: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Savings against JIT and the share of the first-best saving captured, where both are present:
    raw (``saving_vs_jit``, ``share_of_first_best_saving``) and, when the totals hold settled costs,
    settled (``settled_saving_vs_jit``, ``settled_share_of_first_best_saving``)."""
    jit = totals.get("jit")
    fb = totals.get("first-best")
    for name, t in totals.items():
        if jit is None:
            continue
        for cost, prefix in (("social_cost", ""), ("settled_social_cost", "settled_")):
            if cost not in t or cost not in jit:
                continue
            t[f"{prefix}saving_vs_jit"] = jit[cost] - t[cost]
            if fb is not None and cost in fb:
                t[f"{prefix}share_of_first_best_saving"] = share_of_saving(jit[cost], fb[cost], t[cost])
    return totals


def share_of_saving(jit: float, first_best: float, cost: float) -> float:
    """Share of the first-best saving a policy's cost captures: ``(jit - cost) / (jit - first_best)``
    (NaN when first best saves nothing)."""
    potential = jit - first_best
    return (jit - cost) / potential if abs(potential) > 1e-9 else float("nan")


def summarize(ledger: pd.DataFrame, flows: pd.DataFrame, decisions: pd.DataFrame | None = None) -> dict[str, Any]:
    """The ``policies`` part of a run summary: totals and comparisons per policy."""
    totals = add_comparisons(policy_totals(ledger, flows))
    if decisions is not None and len(decisions):
        for name, d in measured(decisions).groupby("policy", sort=False):
            t = totals.setdefault(str(name), {})
            for col in ("iterations", "converged", "gap"):
                if col in d and d[col].notna().any():
                    t[f"mean_{col}" if col != "converged" else "weeks_converged"] = float(
                        d[col].sum() if col == "converged" else d[col].mean()
                    )
            t.update(commitment_totals(d))
    return {k: {kk: _clean(vv) for kk, vv in v.items()} for k, v in totals.items()}


def _clean(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _clean(vv) for k, vv in v.items()}
    if isinstance(v, (float, np.floating)):
        return None if not np.isfinite(v) else float(v)
    return v


def _tolerance(ledger: pd.DataFrame) -> float:
    """Absolute tolerance for margins: solver precision on the scale of a week's costs."""
    weekly = ledger.groupby(["policy", "week"])["value"].apply(lambda v: v.abs().sum())
    return 1e-6 * float(weekly.max()) + 1e-6 if len(weekly) else 1e-6


def weekly_net_costs(ledger: pd.DataFrame) -> pd.DataFrame:
    """Net cost by policy, week and party (columns: policy, week, party, value); measured weeks only."""
    return measured(ledger).groupby(["policy", "week", "party"], as_index=False)["value"].sum()


def participation(ledger: pd.DataFrame, decisions: pd.DataFrame, reference: str = "jit") -> dict[str, dict[str, dict[str, Any]]]:
    """Participation checks (docs/model.md, "Metrics") per policy and party.

    *Ex ante*: the policy's planned margin over JIT for the week's decision (diagnostics
    ``ex_ante_margin_<party>``; positive = better off than JIT). *Ex post*: realised weekly net cost in
    the ``reference`` (JIT) world on the same random numbers minus the policy's (positive = better off).
    ``worst_margin`` is the worst weekly ex post margin, ``cumulative_margin`` the run's total.
    A week violates a check when its margin is below minus a solver tolerance.
    ``settled_ex_post_margin`` is the cumulative ex post margin on settled costs (measured weeks plus
    the cool-down): the reference's settled net cost minus the policy's.
    """
    tol = _tolerance(measured(ledger))
    net = weekly_net_costs(ledger)
    settled = ledger.groupby(["policy", "party"])["value"].sum()
    ref = net[net.policy == reference].set_index(["week", "party"])["value"]
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for policy in ledger["policy"].unique():
        if policy == reference:
            continue
        per_party: dict[str, dict[str, Any]] = {}
        d = measured(decisions)
        d = d[d.policy == policy] if len(d) else d
        mine = net[net.policy == policy].set_index(["week", "party"])["value"]
        for party in [p for p in parties(ledger) if p != MECHANISM]:
            col = f"ex_ante_margin_{party}"
            ante = d[col].astype(float).dropna() if col in d else pd.Series(dtype=float)
            entry: dict[str, Any] = {
                "ex_ante_weeks_violated": int((ante < -tol).sum()) if len(ante) else None,
                "ex_ante_worst_margin": _clean(float(ante.min())) if ante.notna().any() else None,
            }
            if len(ref):
                margin = (ref.xs(party, level="party") - mine.xs(party, level="party")).dropna()
                entry.update(
                    ex_post_weeks_violated=int((margin < -tol).sum()),
                    worst_margin=_clean(float(margin.min())),
                    cumulative_margin=_clean(float(margin.sum())),
                    cumulative_violated=bool(margin.sum() < -tol),
                    settled_ex_post_margin=_clean(float(settled.get((reference, party), 0.0) - settled.get((policy, party), 0.0))),
                )
            else:
                entry.update(ex_post_weeks_violated=None, worst_margin=None, cumulative_margin=None, cumulative_violated=None,
                             settled_ex_post_margin=None)
            per_party[party] = entry
        out[str(policy)] = per_party
    return out
