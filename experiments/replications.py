"""Replicated comparisons: the same policies on several independent worlds, with confidence intervals.

One world is one draw of demand, forecasts and delays; a difference between two policies on it may be
luck. ``replicate(scenario, policies, n)`` runs every policy on ``n`` worlds whose seeds are spawned
from the run's seed with ``numpy.random.SeedSequence`` (replication ``i`` does not depend on ``n``, so
adding replications keeps the earlier ones), all policies of a replication on the same random numbers.
:func:`replicated_summary` then reports, per policy, the mean and a 95% Student-t confidence interval
``{mean, lo, hi}`` of

* ``settled_social_cost`` (and the raw ``social_cost``, each party's settled and raw net cost, transfers,
  fill rate);
* ``settled_saving_vs_jit`` (and raw ``saving_vs_jit``): paired differences, JIT's cost minus the
  policy's in the same replication, so the worlds' common luck cancels;
* ``share_of_first_best`` (settled; raw ``share_of_first_best_saving``): the policy's mean saving over
  first best's mean saving, a ratio of paired means; its interval is the delta-method (linearised)
  interval of that ratio, which stays finite when one replication's first-best saving is near zero
  (a mean of per-replication ratios would not);

``parties.<name>.net_cost`` (and ``settled_net_cost``, ``transfers``) for every party by name (the
retailer and each vendor), and per policy and party ``settled_ex_post_margin`` (JIT's settled net
cost minus the policy's in the same replication; raw ``cumulative_margin`` too). What a user may do: call these from Python, or
``flosim run --replications N``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
from tqdm import tqdm

from experiments.intervals import mean_ci
from sim.model.decision import Policy
from sim.metrics import PARTY_TOTALS, participation, summarize
from sim.runner import RunResult, run_policies
from sim.model.scenario import Scenario

LEVEL = 0.95

#: Per-policy figures reported as intervals: (key in the replicated summary, key in one run's totals).
POLICY_FIGURES = (
    "settled_social_cost", "social_cost", "settled_retailer_net_cost", "settled_vendor_net_cost",
    "retailer_net_cost", "vendor_net_cost", "transfers", "fill_rate", "settled_saving_vs_jit", "saving_vs_jit",
    "shortfall_units", "shortfall_cost", "committed_units", "commitment_released_units",
)
PARTY_FIGURES = ("settled_ex_post_margin", "cumulative_margin")


def replication_seeds(seed: int, n: int) -> list[int]:
    """One integer seed per replication, spawned from ``seed`` (child ``i`` does not depend on ``n``)."""
    return [int(c.generate_state(1, np.uint64)[0] >> np.uint64(1)) for c in np.random.SeedSequence(seed).spawn(n)]


def interval(values: Sequence[float], level: float = LEVEL) -> dict[str, float | None]:
    """Mean and Student-t confidence interval ``{mean, lo, hi}`` (``lo``/``hi`` null with one value)."""
    x = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    m, half, n = mean_ci(x, level)  # the one Student-t rule, shared with the plots and the report
    if n == 0:
        return {"mean": None, "lo": None, "hi": None}
    if n < 2:
        return {"mean": m, "lo": None, "hi": None}
    return {"mean": m, "lo": m - half, "hi": m + half}


def ratio_interval(num: Sequence[float], den: Sequence[float], level: float = LEVEL) -> dict[str, float | None]:
    """``mean(num) / mean(den)`` with its delta-method interval (paired samples ``num[i]``, ``den[i]``).

    ``lo``/``hi`` are null, not a wide finite interval, when the denominator's own mean is not
    distinguishable from zero at ``level`` (``|mean| <= t * standard error``): the ratio's confidence
    set is then unbounded (Fieller), and the linearised interval would be a meaningless pair of large
    numbers. :func:`ratio_unbounded` tells this case from a single value.
    """
    a, b = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if a.size == 0 or abs(b.mean()) < 1e-9:
        return {"mean": None, "lo": None, "hi": None}
    r = float(a.mean() / b.mean())
    if a.size < 2:
        return {"mean": r, "lo": None, "hi": None}
    resid = (a - r * b) / b.mean()  # linearised ratio: its mean is zero, its spread is the ratio's
    if not resid.any():  # num is r times den in every replication (first best against itself): exact
        return {"mean": r, "lo": r, "hi": r}
    if ratio_unbounded(b, level):
        return {"mean": r, "lo": None, "hi": None}
    half = mean_ci(resid, level)[1]
    return {"mean": r, "lo": r - half, "hi": r + half}


def ratio_unbounded(den: Sequence[float], level: float = LEVEL) -> bool:
    """Whether a ratio over the paired mean of ``den`` has no bounded confidence interval: at least two
    finite values whose mean is within ``t * standard error`` of zero."""
    b = np.asarray(den, dtype=float)
    b = b[np.isfinite(b)]
    if b.size < 2:
        return False
    return bool(abs(b.mean()) <= mean_ci(b, level)[1])


@dataclass
class Replicated:
    """The runs of a replicated comparison, one :class:`~sim.runner.RunResult` per replication."""

    scenario: Scenario
    seed: int
    seeds: list[int]
    results: list[RunResult] = field(default_factory=list)
    error: str | None = None

    def tables(self) -> dict[str, pd.DataFrame]:
        """Ledger, flows, decisions and shortfalls of every replication, with a ``replication`` column."""
        out = {}
        for name in ("ledger", "flows", "decisions", "shortfalls"):
            frames = []
            for i, r in enumerate(self.results):
                df = getattr(r, name).copy()
                df.insert(1, "replication", i)
                frames.append(df)
            out[name] = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        return out


def replicate(
    scenario: Scenario,
    policies: Sequence[str | Policy],
    n: int,
    *,
    seed: int | None = None,
    weeks: int | None = None,
    progress: bool | None = None,
    on_error: Callable[[str, BaseException], None] | None = None,
    workers: int = 1,
) -> Replicated:
    """Run ``policies`` on ``n`` replications (see the module docstring); stops at a failed one.
    ``workers``: policies of a replication simulated at once (:func:`sim.runner.run_policies`)."""
    if n < 1:
        raise ValueError(f"replications must be >= 1, got {n}")
    seed = scenario.seed if seed is None else seed
    rep = Replicated(scenario, seed, replication_seeds(seed, n))
    show = sys.stderr.isatty() if progress is None else progress
    for i, s in enumerate(tqdm(rep.seeds, desc="replications", unit="world", file=sys.stderr, disable=not show)):
        r = run_policies(scenario, policies, weeks=weeks, seed=s, run_id=f"rep-{i}", progress=False, on_error=on_error,
                          workers=workers)
        rep.results.append(r)
        if r.error:
            rep.error = f"replication {i} (seed {s}): {r.error}"
            break
    return rep


def run_figures(result: RunResult) -> dict[str, Any]:
    """One replication's per-policy totals and participation (the single-run summary's two parts)."""
    return {
        "policies": summarize(result.ledger, result.flows, result.decisions),
        "participation": participation(result.ledger, result.decisions) if "jit" in result.policies else {},
    }


def replicated_summary(per_run: list[dict[str, Any]], policies: list[str]) -> dict[str, Any]:
    """``policies`` and ``participation`` of a replicated summary from each replication's
    :func:`run_figures` (only replications in which every policy finished)."""
    done = [r for r in per_run if all(p in r["policies"] for p in policies)]
    out_p: dict[str, dict[str, Any]] = {}
    out_part: dict[str, dict[str, Any]] = {}
    warnings: list[str] = []

    def column(policy: str, key: str) -> list[float]:
        return [np.nan if r["policies"][policy].get(key) is None else r["policies"][policy][key] for r in done]

    for p in policies:
        entry: dict[str, Any] = {}
        for key in POLICY_FIGURES:
            if all(key in r["policies"][p] for r in done):
                entry[key] = interval(column(p, key))
        if "jit" in policies and "first-best" in policies:
            for cost, name in (("settled_social_cost", "share_of_first_best"), ("social_cost", "share_of_first_best_saving")):
                jit, fb, mine = (np.asarray(column(q, cost)) for q in ("jit", "first-best", p))
                entry[name] = ratio_interval(jit - mine, jit - fb)
                if p == "first-best" and (entry[name]["mean"] is None or ratio_unbounded(jit - fb)):
                    basis = "settled" if cost.startswith("settled_") else "raw"
                    m = interval(jit - fb)
                    warnings.append(
                        f"{name}: first best's {basis} saving over JIT is not distinguishable from 0 "
                        f"(mean {_num(m['mean'])}, 95% CI [{_num(m['lo'])}, {_num(m['hi'])}]), so the shares of it "
                        "have no bounded interval: lo and hi are null; compare the savings instead")
        if done and all("commitment_cost" in r["policies"][p] for r in done):
            entry["commitment_cost"] = {party: interval([r["policies"][p]["commitment_cost"].get(party, np.nan) for r in done])
                                        for party in _party_names(r["policies"][p]["commitment_cost"] for r in done)}
        names = _party_names(r["policies"][p].get("parties") or {} for r in done)
        if names:
            entry["parties"] = {
                party: {k: interval([np.nan if v is None else v for v in
                                     (((r["policies"][p].get("parties") or {}).get(party) or {}).get(k) for r in done)])
                        for k in PARTY_TOTALS}
                for party in names}
        out_p[p] = entry
        parties = {}
        for party in _party_names(r["participation"].get(p) or {} for r in done):
            vals = {k: [r["participation"].get(p, {}).get(party, {}).get(k) for r in done] for k in PARTY_FIGURES}
            if any(v is not None for v in vals["settled_ex_post_margin"]):
                parties[party] = {k: interval([np.nan if x is None else x for x in v]) for k, v in vals.items()}
        if parties:
            out_part[p] = parties
    return {"policies": out_p, "participation": out_part, "replications_complete": len(done),
            **({"warnings": warnings} if warnings else {})}


def _party_names(per_run) -> list[str]:
    """The party names of several replications' mappings, in first-seen order (retailer first)."""
    return list(dict.fromkeys(name for mapping in per_run for name in mapping))


def _num(v: float | None) -> str:
    return "n/a" if v is None else f"{v:,.1f}"
