"""The privacy audit: the vendor's private parameters, as the observer estimates them, next to the truth.

For each mechanism the audit runs the scenario with the policy recording what it shows the retailer
(:mod:`policies.privacy`), lets the observer fit the vendor's delivered marginal-cost curves from that
record alone (:mod:`experiments.observer`, :mod:`sim.negotiation.cost_curves`), and compares what the fit says
with the vendor's true parameters, one row per parameter:

* per lane: ``spare_cost`` and ``truckload_cost`` (the lane's marginal cost per unit of volume;
  read as the fitted per-volume part, only where products of two or more volumes were seen at its
  FC) and ``spare_volume`` (the kink where the scheduled truck's spare volume ends);
* per lane and segment: ``spare_delivered`` / ``truckload_delivered``: the marginal cost of a unit of
  the average product volume delivered through that segment (production plus lane), identified
  whatever the product volumes;
* per origin: ``production_cost`` and ``capacity`` (units a week; read where the origin's last
  segment on an FC's curve ends and the next origin's begins).

The truth is each FC's curve as the vendor's data makes it when the FC is served alone: its lanes'
segments (spare volume at the spare rate, then truckload) in order of delivered cost, each origin's
segments ending at its capacity. The audit reads the fitted curve where the true curve has a segment
(the median fitted value inside it) or a kink (where the fitted curve steps between the two
segments' levels); a segment or kink the record never reached has no estimate and counts as not
recovered. Reading the fit at the truth's segments is the observer's best case: an observer
without the truth reads the same steps off the curve by their jumps. Under a menu tailored to the
vendor's coarse disclosure, the room it discloses per FC is read as that FC's spare volume.

Summary rows per policy: the share of parameters recovered within 5% and within 25% (all
parameters in the denominator), and three measures of efficiency: ``share_of_first_best_saving``,
the realised share of the first-best saving over JIT on the run's ledger (raw figures: the stock a
run ends with is not valued, and one run's random demand moves it by several points),
``settled_share_of_first_best_saving``, the same on settled figures (the run continued under JIT
for the scenario's ``settle_weeks``, so stock left behind is used or held at its true cost), and
``planned_share_of_first_best_saving``, the share of the first-best *planned* saving over JIT that
the policy's plans captured, week by week in the policy's own state (on the forecast; no demand
noise).

What a user may do: :func:`true_segments` (a vendor's true curves), :func:`parameter_rows` (rows for
a list of fitted curves), :func:`audit_policy` (one policy's rows from a finished run), and
:func:`run_privacy` (the whole audit, used by ``flosim privacy``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from experiments.observer import disclosed_room, menu_rankings, observations, thin
from policies.privacy import RecordingJIT, RecordingMenu
from policies.registry import make_policy
from sim.parties.oracle import joint_plan
from sim.negotiation.cost_curves import FittedCurve, fit_curves
from sim.model.data import PublicData, VendorData, split_scenario
from sim.model.errors import FlosimError
from sim.metrics import summarize
from sim.runner import run_policies
from sim.model.scenario import Scenario

MECHANISMS = ("jit", "cpp-vcg", "menu")
#: observations per FC the fit keeps (drawn at random beyond this): keeps the audit's LPs small
OBSERVATION_LIMIT = 20000


@dataclass(frozen=True)
class Segment:
    """A stretch of one FC's true marginal-cost curve: volumes ``[start, end)`` through one lane's
    spare or truckload part."""

    fc: int
    start: float
    end: float
    lane: int
    origin: int
    kind: str  # "spare" or "truckload"
    alpha: float  # per-unit part (production)
    mu: float  # per-volume part (lane rate)

    def delivered(self, unit_volume: float) -> float:
        return self.alpha + unit_volume * self.mu


def the_vendor(scenario: Scenario) -> tuple[PublicData, VendorData]:
    """The public data and the data of the scenario's one vendor. The privacy audit measures what the
    retailer learns of ONE vendor's costs; a scenario with several vendors is an error naming it and
    its vendor count."""
    public, _, vendors = split_scenario(scenario)
    if len(vendors) != 1:
        raise FlosimError(f"scenario {scenario.name!r}: the privacy audit studies what the retailer learns of one "
                          f"vendor's costs; this scenario has {len(vendors)} vendors ({', '.join(vendors)})")
    return public, next(iter(vendors.values()))


def reference_volume(public: PublicData) -> float:
    """The average product volume: the unit in which delivered costs and capacities are read."""
    return float(np.mean(public.volume))


def true_segments(public: PublicData, vendor: VendorData) -> list[list[Segment]]:
    """Each FC's true curve when served alone (see the module docstring)."""
    v = reference_volume(public)
    production = vendor.production.mean(axis=1)  # [O]
    out: list[list[Segment]] = []
    for f in range(public.F):
        parts = []
        for lane in np.flatnonzero(vendor.lane_fc == f):
            o = int(vendor.lane_origin[lane])
            if vendor.spare_volume[lane] > 0:
                parts.append((production[o] + v * vendor.spare_cost[lane], int(lane), o, "spare", float(vendor.spare_cost[lane]), float(vendor.spare_volume[lane])))
            parts.append((production[o] + v * vendor.truckload_cost[lane], int(lane), o, "truckload", float(vendor.truckload_cost[lane]), math.inf))
        parts.sort(key=lambda p: (p[0], p[3] != "spare"))
        room = {o: float(vendor.capacity[o]) * v for o in range(vendor.O)}  # volume an origin can make in a week
        start, segs = 0.0, []
        for _, lane, o, kind, mu, length in parts:
            size = min(length, room[o])
            if size <= 1e-9:
                continue
            room[o] -= size
            segs.append(Segment(f, start, start + size, lane, o, kind, float(production[o]), mu))
            start += size
        out.append(segs)
    return out


def _rel(truth: float, estimate: float | None) -> float | None:
    if estimate is None or not math.isfinite(estimate):
        return None
    return abs(estimate - truth) / abs(truth) if truth != 0 else abs(estimate - truth)


def _row(policy: str, party: str, parameter: str, truth: float, estimate: float | None) -> dict[str, Any]:
    return {"policy": policy, "party": party, "parameter": parameter, "truth": float(truth),
            "estimate": None if estimate is None else float(estimate), "relative_error": _rel(truth, estimate)}


def parameter_rows(policy: str, public: PublicData, vendor: VendorData, curves: Sequence[FittedCurve | None],
                   disclosed: dict[int, float] | None = None) -> list[dict[str, Any]]:
    """One row per private parameter: truth, the fit's estimate (None where not recovered), relative
    error. ``disclosed``: weekly room per FC the vendor disclosed (a tailored menu), read as the
    spare volume of the FC's first segment where the fit has no kink there."""
    v = reference_volume(public)
    truth_curves = true_segments(public, vendor)
    rows: list[dict[str, Any]] = []
    prod_est: dict[int, list[float]] = {o: [] for o in range(vendor.O)}
    cap_est: dict[int, list[float]] = {o: [] for o in range(vendor.O)}
    cap_seen: set[int] = set()
    lane_name = vendor.lane_names
    for f, segs in enumerate(truth_curves):
        curve = curves[f] if f < len(curves) else None
        kinks: list[float | None] = []  # estimated end of each segment (None: not seen)
        for j, seg in enumerate(segs):
            nxt = segs[j + 1] if j + 1 < len(segs) else None
            kink = None
            if curve is not None and nxt is not None:
                kink = curve.kink_between((seg.start, seg.end), (nxt.start, nxt.end), v)
            kinks.append(kink)
        for j, seg in enumerate(segs):
            name = lane_name[seg.lane]
            delivered = mu = alpha = None
            if curve is not None:
                delivered = curve.level_between(seg.start, seg.end, curve.delivered(v))
                if curve.split_identified:
                    mu = curve.level_between(seg.start, seg.end, curve.mu)
                    alpha = curve.level_between(seg.start, seg.end, curve.alpha)
            rows.append(_row(policy, vendor.name, f"{name} {seg.kind}_delivered", seg.delivered(v), delivered))
            rows.append(_row(policy, vendor.name, f"{name} {seg.kind}_cost", seg.mu, mu))
            if alpha is not None:
                prod_est[seg.origin].append(alpha)
            if seg.kind == "spare":
                start = 0.0 if j == 0 else kinks[j - 1]
                end = kinks[j]
                est = None if start is None or end is None else end - start
                if est is None and j == 0 and disclosed and f in disclosed:
                    est = disclosed[f]
                rows.append(_row(policy, vendor.name, f"{name} spare_volume", seg.end - seg.start, est))
            last_of_origin = j + 1 < len(segs) and segs[j + 1].origin != seg.origin and math.isfinite(seg.end)
            if last_of_origin and seg.end - _origin_start(segs, j) >= vendor.capacity[seg.origin] * v - 1e-6:
                cap_seen.add(seg.origin)
                s0 = _origin_start(segs, j)
                start_est = 0.0 if s0 == 0 else _kink_at(segs, kinks, s0)
                if start_est is not None and kinks[j] is not None:
                    cap_est[seg.origin].append((kinks[j] - start_est) / v)
    for o in range(vendor.O):
        rows.append(_row(policy, vendor.name, f"{vendor.origins[o]} production_cost", float(vendor.production[o].mean()),
                         float(np.median(prod_est[o])) if prod_est[o] else None))
        if o in cap_seen:
            rows.append(_row(policy, vendor.name, f"{vendor.origins[o]} capacity", float(vendor.capacity[o]),
                             float(np.median(cap_est[o])) if cap_est[o] else None))
    return rows


def _origin_start(segs: list[Segment], j: int) -> float:
    """Where the run of segments of ``segs[j]``'s origin that ends at ``j`` starts."""
    i = j
    while i > 0 and segs[i - 1].origin == segs[j].origin:
        i -= 1
    return segs[i].start


def _kink_at(segs: list[Segment], kinks: list[float | None], volume: float) -> float | None:
    for seg, k in zip(segs, kinks):
        if abs(seg.end - volume) < 1e-9:
            return k
    return None


def summary_row(policy: str, rows: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """The policy's summary: shares of parameters recovered within 5% and 25% (None counts as not)."""
    mine = [r for r in rows if r["policy"] == policy and r["parameter"] != "summary"]
    n = len(mine)
    within = lambda tol: sum(1 for r in mine if r["relative_error"] is not None and r["relative_error"] <= tol) / n if n else 0.0  # noqa: E731
    party = next((r["party"] for r in mine), None)  # the audited vendor's name
    return {"policy": policy, "party": party, "parameter": "summary", "truth": None, "estimate": None,
            "relative_error": None, "within_5pct": within(0.05), "within_25pct": within(0.25), "parameters": n, **extra}


def audit_shown(policy: str, shown: Sequence[Any], public: PublicData, vendor: VendorData,
                rng: np.random.Generator) -> tuple[list[dict[str, Any]], list[FittedCurve | None], dict[str, Any]]:
    """Rows, fitted curves and counts for one policy's record of what the retailer was shown."""
    obs = observations(shown, public)
    used = thin(obs, OBSERVATION_LIMIT, rng)
    curves = fit_curves(used, public.F)
    rows = parameter_rows(policy, public, vendor, curves, disclosed_room(shown, public))
    counts = {"observations": int(obs.size), "point_observations": int((obs.kind == 0).sum()),
              "menu_rankings": menu_rankings(shown), "weeks_shown": len(shown)}
    return rows, curves, counts


@dataclass
class PolicyAudit:
    """One audited policy: its rows, fitted curves, counts and efficiency."""

    name: str
    rows: list[dict[str, Any]]
    curves: list[FittedCurve | None]
    counts: dict[str, Any]


class _Measured:
    """A policy run by the audit, with each week's planned social cost next to JIT's and first
    best's in the same state (the audit's yardstick of efficiency; read from both agents, which only
    the audit, never the observer, may do)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.planned: list[tuple[float, float, float]] = []  # (policy, jit, first best) per week

    @property
    def shown(self) -> list[Any]:
        return self.inner.shown

    def decide(self, ctx: Any) -> Any:
        decision = self.inner.decide(ctx)
        own = ctx.retailer.preferred_plan()
        jit = own.total + ctx.vendor.evaluate(own.plan[0]).total  # one vendor: its block is plan[0]
        plan = ctx.retailer.evaluate(decision.plan).total + ctx.vendor.evaluate(decision.plan[0]).total
        self.planned.append((plan, jit, joint_plan(ctx.retailer, ctx.vendor).social_cost))
        return decision

    def planned_share(self) -> float | None:
        """Share of the first-best planned saving over JIT this policy's plans captured, over the run."""
        if not self.planned:
            return None
        p, j, f = (np.array(c) for c in zip(*self.planned))
        potential = float(np.sum(j - f))
        return float(np.sum(j - p) / potential) if abs(potential) > 1e-9 else None


def _recording(spec: str, scenario: Scenario, privacy: dict[str, Any] | None, name: str | None) -> Any:
    """A policy that records what it shows the retailer."""
    params = dict(scenario.policies.get(spec, {}))
    if spec == "jit":
        policy: Any = RecordingJIT()
    elif spec == "menu":
        try:
            policy = RecordingMenu(**params)
        except TypeError as exc:
            raise FlosimError(f"policy 'menu': bad parameters {params}: {exc}") from None
    elif spec in ("cpp", "cpp-vcg"):
        merged = {**dict(params.get("privacy") or {}), **(privacy or {}), "record": True}
        policy = make_policy(spec, scenario, privacy=merged)
    else:
        raise FlosimError(f"--policy {spec!r}: the privacy audit covers {', '.join(('jit', 'cpp', 'cpp-vcg', 'menu'))}")
    if name is not None:
        policy.name = name
    return _Measured(policy)


@dataclass(frozen=True)
class Variant:
    """A policy to audit: a mechanism, optional privacy settings, and the name its rows carry."""

    spec: str
    name: str
    privacy: dict[str, Any] | None = None
    cpp: dict[str, Any] | None = None


def run_privacy(scenario: Scenario, variants: Sequence[Variant], *, weeks: int | None = None, seed: int | None = None,
                on_policy: Callable[[str], None] | None = None,
                ) -> tuple[list[PolicyAudit], dict[str, dict[str, float]], dict[str, list[Any]]]:
    """Run every variant (and jit and first-best as references, on the same random numbers) and audit
    what each showed the retailer. Returns the audits, the run's per-policy summary and each
    variant's record of what it showed the retailer."""
    public, vendor = the_vendor(scenario)
    built = []
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise FlosimError(f"privacy audit: variant names must be unique, got {names}")
    for v in variants:
        if v.cpp is not None:
            params = dict(scenario.policies.get(v.spec, {}))
            cpp = {**dict(params.get("cpp") or {}), **v.cpp}
            s2 = scenario.model_copy(update={"policies": {**scenario.policies, v.spec: {**params, "cpp": cpp}}})
        else:
            s2 = scenario
        built.append(_recording(v.spec, s2, v.privacy, v.name))
    refs = [p for p in ("jit", "first-best") if p not in names]
    result = run_policies(scenario, [*refs, *built], weeks=weeks, seed=seed, progress=False)
    summary = summarize(result.ledger, result.flows, result.decisions)
    root = np.random.SeedSequence([result.seed, 22])
    audits = []
    for policy, ss in zip(built, root.spawn(len(built))):
        if on_policy is not None:
            on_policy(policy.name)
        rows, curves, counts = audit_shown(policy.name, policy.shown, public, vendor, np.random.default_rng(ss))
        counts["planned_share_of_first_best_saving"] = policy.planned_share()
        audits.append(PolicyAudit(policy.name, rows, curves, counts))
    return audits, summary, {p.name: p.shown for p in built}


def efficiency(summary: dict[str, dict[str, float]], name: str, key: str = "share_of_first_best_saving") -> float | None:
    """The policy's share of the first-best saving over JIT, if the run has it: ``key`` names the raw
    (``share_of_first_best_saving``) or settled (``settled_share_of_first_best_saving``) figure."""
    value = summary.get(name, {}).get(key)
    return None if value is None or not math.isfinite(value) else float(value)


def table(audits: Sequence[PolicyAudit], summary: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    """The JSON rows: every parameter row, then one summary row per policy."""
    rows: list[dict[str, Any]] = []
    for a in audits:
        rows += a.rows
    for a in audits:
        rows.append(summary_row(a.name, a.rows, share_of_first_best_saving=efficiency(summary, a.name),
                                settled_share_of_first_best_saving=efficiency(
                                    summary, a.name, "settled_share_of_first_best_saving"),
                                **a.counts))
    return rows
