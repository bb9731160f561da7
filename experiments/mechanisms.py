"""The transfer rules side by side: what each gives up, measured (``flosim mechanisms``; docs/mechanisms.md).

Every rule of :mod:`policies.transfer_rules` runs as ``cpp-vcg`` with ``transfer: {rule: R}`` (the same
negotiated plan; only the transfers differ, so ``split-savings`` here is the rule, not the separate
policy). For each rule one row:

* ``planning_gap``: the truthful plans' social cost above first best over the audited rounds, as a
  fraction of their social cost (the incentive audit's ``truthful_slack``: what planning tolerance leaves
  on the table, and the floor under any lie gain);
* ``max_vendor_lie_gain`` / ``max_retailer_lie_gain``: the best lie of any vendor / of the retailer in the
  incentive audit's round mode (:func:`experiments.audit.run_audit`), as a fraction of social cost; the
  truthful control is among the rows, so the figure is never below zero;
* ``ex_ante_violations`` / ``ex_post_violations``: party-weeks whose ex-ante (planned, against JIT) or
  ex-post (realised, against the JIT world on the same random numbers) margin is negative
  (:func:`sim.metrics.participation`), summed over replications; ``ex_ante_worst_margin`` /
  ``ex_post_worst_margin`` the worst such margin;
* ``balance_total``: the mechanism's balance ``B`` summed over the simulated weeks (mean over
  replications; positive: a deficit funded from outside, negative: a surplus kept), ``balance_weeks``
  the mean ``B`` of each week;
* ``clamp_weeks``: weeks in which the rule's clamp binds (one-way only: a vendor's raw pivot is
  negative and nothing is paid), summed over replications; ``negative_pivot_weeks`` the weeks in which
  some vendor's raw pivot is negative under any rule (where one-way's clamp binds or would).

``expected-externality`` needs a prior: the scenario's (``policies: {cpp-vcg: {transfer: {prior: ...}}}``)
or, when it declares none, :data:`DEFAULT_PRIOR` (said in the output).

What a user may do: :func:`compare_rules` (the rows), or ``flosim mechanisms``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from experiments.audit import mechanism_overrides, run_audit
from experiments.replications import replication_seeds
from policies.registry import make_policy
from policies.transfer_rules import RULES
from sim.metrics import measured, participation
from sim.model.decision import RETAILER
from sim.model.scenario import Scenario
from sim.runner import run_policies

#: The prior used for ``expected-externality`` when the scenario declares none.
DEFAULT_PRIOR = {"draws": 4, "spread": 0.2}
#: The row keys of the JSON contract (more keys follow them).
ROW_KEYS = ("rule", "planning_gap", "max_vendor_lie_gain", "max_retailer_lie_gain", "ex_ante_violations",
            "ex_post_violations", "balance_total", "clamp_weeks")


def rule_options(scenario: Scenario, rule: str, options: Sequence[tuple[str, Any]] = ()) -> tuple[dict[str, Any], bool]:
    """``cpp-vcg``'s parameters for ``rule``: the scenario's, ``options`` and the rule; with the default
    prior added for ``expected-externality`` if neither the scenario nor ``options`` gives one. Whether
    the default prior was added."""
    params = mechanism_overrides(scenario, ["cpp-vcg"], rule, options).get("cpp-vcg", {})
    added = rule == "expected-externality" and not (params.get("transfer") or {}).get("prior")
    if added:
        params = mechanism_overrides(scenario, ["cpp-vcg"], rule, [*options, *(
            (f"transfer.prior.{k}", v) for k, v in DEFAULT_PRIOR.items())])["cpp-vcg"]
    return params, added


def _max_gain(table: pd.DataFrame, vendors: bool) -> float | None:
    rows = table[(table.party != RETAILER) if vendors else (table.party == RETAILER)]
    return float(rows.relative_gain.max()) if len(rows) else None


def compare_rules(
    scenario: Scenario,
    rules: Sequence[str] = RULES,
    *,
    weeks: int | None = None,
    audit_weeks: int = 2,
    lies: str | int | None = 3,
    replications: int = 1,
    seed: int | None = None,
    options: Sequence[tuple[str, Any]] = (),
    progress: Callable[[str], None] | None = None,
    on_step: Callable[[], None] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One row per rule (see the module docstring) and the run's metadata. ``weeks``: simulated weeks
    per replication (default: the scenario's); ``audit_weeks``, ``lies``: the incentive audit's rounds and
    lies per party (``experiments.lies.pick_lies``: a count drawn from the seed, ``"all"``, or None for
    the hand-written set); ``options``: ``cpp-vcg`` parameters (``("solver", "central")``,
    ``("cpp.gap_tol", 1e-3)``). ``progress(message)``: told each stage; ``on_step()``: after each audited
    decision."""
    seed = scenario.seed if seed is None else seed
    weeks = scenario.weeks if weeks is None else weeks
    params, prior_added = {}, False
    for rule in rules:
        params[rule], added = rule_options(scenario, rule, options)
        prior_added |= added
        make_policy("cpp-vcg", scenario, **params[rule])  # bad settings: an error before any work
    rows: dict[str, dict[str, Any]] = {rule: {"rule": rule} for rule in rules}
    # the incentive audit, one rule at a time (round mode: the theory's test)
    for rule in rules:
        if progress:
            progress(f"rule {rule}: incentive audit ({audit_weeks} rounds)")
        table = run_audit(scenario, ["cpp-vcg"], weeks=audit_weeks, seed=seed, lies=lies,
                          policy_overrides={"cpp-vcg": params[rule]}, on_run=on_step)
        social = float(table.truthful_social_cost.iloc[0])
        rows[rule].update(planning_gap=float(table.truthful_slack.iloc[0]) / abs(social) if social else None,
                          max_vendor_lie_gain=_max_gain(table, vendors=True),
                          max_retailer_lie_gain=_max_gain(table, vendors=False),
                          best_vendor_lie=_best(table, vendors=True), best_retailer_lie=_best(table, vendors=False),
                          audited_lies=int(len(table)))
    # participation, balance and clamps: every rule simulated beside JIT on the same random numbers
    acc: dict[str, dict[str, Any]] = {rule: {"ante": 0, "post": 0, "ante_worst": [], "post_worst": [], "balance": [],
                                             "weeks": [], "clamp": 0, "negative": 0} for rule in rules}
    for r, rep_seed in enumerate(replication_seeds(seed, replications) if replications > 1 else [seed]):
        if progress:
            progress(f"replication {r + 1}/{replications}: simulating jit and {len(rules)} rules for {weeks} weeks")
        policies = []
        for rule in rules:
            policy = make_policy("cpp-vcg", scenario, **params[rule])
            policy.name = f"cpp-vcg/{rule}"  # one ledger name per rule
            policies.append(policy)
        result = run_policies(scenario, ["jit", *policies], weeks=weeks, seed=rep_seed, progress=False)
        part = participation(result.ledger, result.decisions)
        decisions = measured(result.decisions)
        for rule, policy in zip(rules, policies):
            a = acc[rule]
            for entry in part.get(policy.name, {}).values():
                a["ante"] += entry.get("ex_ante_weeks_violated") or 0
                a["post"] += entry.get("ex_post_weeks_violated") or 0
                a["ante_worst"].append(entry.get("ex_ante_worst_margin"))
                a["post_worst"].append(entry.get("worst_margin"))
            d = decisions[decisions.policy == policy.name].sort_values("week")
            balance = d["transfer_balance"].astype(float).fillna(0.0) if "transfer_balance" in d else pd.Series(0.0, index=d.index)
            a["balance"].append(float(balance.sum()))
            a["weeks"].append(balance.to_numpy())
            a["clamp"] += int((d.get("transfer_clamped", pd.Series(0, index=d.index)).fillna(0).astype(float) > 0).sum())
            raw = [c for c in d.columns if c.startswith("pivot_raw_")]
            a["negative"] += int((d[raw].astype(float) < 0).any(axis=1).sum()) if raw else 0
    for rule in rules:
        a = acc[rule]
        worst = lambda xs: min((x for x in xs if x is not None), default=None)  # noqa: E731
        rows[rule].update(ex_ante_violations=a["ante"], ex_post_violations=a["post"],
                          ex_ante_worst_margin=worst(a["ante_worst"]), ex_post_worst_margin=worst(a["post_worst"]),
                          balance_total=float(np.mean(a["balance"])),
                          balance_weeks=[float(v) for v in np.mean(np.vstack(a["weeks"]), axis=0)] if a["weeks"] else [],
                          clamp_weeks=a["clamp"], negative_pivot_weeks=a["negative"])
    ordered = [{**{k: rows[rule][k] for k in ROW_KEYS}, **{k: v for k, v in rows[rule].items() if k not in ROW_KEYS}}
               for rule in rules]
    meta = {"scenario": scenario.name, "seed": seed, "weeks": weeks, "audit_weeks": audit_weeks,
            "lies": "hand-written" if lies is None else lies, "replications": replications,
            "options": dict(options), "prior": DEFAULT_PRIOR if prior_added else None}
    return ordered, meta


def _best(table: pd.DataFrame, vendors: bool) -> str | None:
    rows = table[(table.party != RETAILER) if vendors else (table.party == RETAILER)]
    if not len(rows):
        return None
    top = rows.loc[rows.relative_gain.idxmax()]
    return f"{top.party}: {top.lie}"
