"""``flosim privacy``: what each mechanism shows the retailer reveals about the vendor's private costs.

For each policy (default: jit, cpp-vcg, menu) the scenario is run with the policy recording what it
showed the retailer; an observer who holds only that record fits the vendor's delivered
marginal-cost curves and reads lane rates, spare truck volumes, production costs and capacities off
them (see docs/privacy.md). Output: per policy and parameter, truth, estimate and relative error, and
a summary row per policy (share recovered within 5% and 25%, share of the first-best saving).

Mitigations of cpp-vcg (each one more audited policy): ``--eps E`` noisy vendor answers with budget
E, ``--round-cap N`` at most N negotiation rounds a week, ``--neutral`` a neutral coordinator with
sealed agents; ``--mitigations`` runs a standard set of them. ``--transcript FILE`` audits saved
negotiation transcripts (as written to the results folder's ``transcripts/``) against the scenario's
vendor. ``--seeds 1,2,3`` repeats the audit on several root seeds (rows carry ``seed``) and adds a
mean summary row per policy (``seed: "mean"``). Summary rows carry ``planned_share_vs_cpp-vcg``, the
policy's planned share of the first-best saving as a fraction of cpp-vcg's in the same run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from experiments.commands.run import add_scenario_args
from experiments.observer import transcript_observations
from experiments.privacy import (
    MECHANISMS,
    PolicyAudit,
    Variant,
    audit_shown,
    reference_volume,
    run_privacy,
    table,
    the_vendor,
    true_segments,
)
from policies.privacy import RoundsShown
from sim.negotiation.answer_noise import NoiseOptions
from sim.model.data import PublicData
from sim.model.errors import FlosimError
from sim.results import default_results_dir, write_json, write_table
from sim.model.scenario import load_scenario
from sim.negotiation.transcript import Transcript

AUDITABLE = ("jit", "cpp", "cpp-vcg", "menu")
STANDARD_EPS = (30.0, 10.0, 3.0, 1.0)
STANDARD_CAPS = (25, 50)


def _eps(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise FlosimError(f"--eps {text!r}: not a number") from None
    if math.isnan(value) or value <= 0:
        raise FlosimError(f"--eps {text}: the privacy budget must be > 0 (inf: no noise)")
    sensitivity = NoiseOptions().sensitivity
    if not math.isfinite(sensitivity / value):
        raise FlosimError(f"--eps {text}: too small: the noise scale sensitivity / eps = {sensitivity:g} / {text} "
                          "is not a finite number")
    return value


def _cap(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise FlosimError(f"--round-cap {text!r}: not a whole number") from None
    if value < 1:
        raise FlosimError(f"--round-cap {text}: must be >= 1")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("privacy", help="privacy audit: what a mechanism's record reveals about the vendor's costs",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_scenario_args(p)
    p.add_argument("--policy", action="append", metavar="P", help=f"mechanism to audit ({', '.join(AUDITABLE)}); repeat "
                   f"(default: {', '.join(MECHANISMS)})")
    p.add_argument("--eps", action="append", metavar="E", help="audit cpp-vcg with noisy vendor answers of budget E; repeat")
    p.add_argument("--scope", choices=["run", "week", "answer"], help="how often the noise of --eps is drawn (default: run)")
    p.add_argument("--round-cap", action="append", metavar="N", help="audit cpp-vcg capped at N rounds a week; repeat")
    p.add_argument("--neutral", action="store_true", help="audit cpp-vcg with a neutral coordinator and sealed agents")
    p.add_argument("--mitigations", action="store_true", help=f"the standard set: --eps {' '.join(map(str, STANDARD_EPS))}, "
                   f"--round-cap {' '.join(map(str, STANDARD_CAPS))}, --neutral")
    p.add_argument("--seeds", metavar="S1,S2,...", help="run the audit on each of these root seeds and add one mean summary row per policy")
    p.add_argument("--transcript", action="append", metavar="FILE", help="audit a saved negotiation transcript (Parquet); repeat")
    p.add_argument("--out", help="folder for privacy.json, privacy.parquet, figures and transcripts (default: results/privacy-<timestamp>)")
    p.add_argument("--json", action="store_true", help="print the rows as JSON on stdout")
    p.set_defaults(func=main)


def variants(args: argparse.Namespace) -> list[Variant]:
    """The policies to audit, from the command line."""
    out: list[Variant] = []
    for spec in args.policy or (MECHANISMS if not args.transcript else ()):
        if spec not in AUDITABLE:
            raise FlosimError(f"--policy {spec!r}: unknown mechanism for the privacy audit (choose from {', '.join(AUDITABLE)})")
        out.append(Variant(spec, spec))
    eps = [_eps(e) for e in args.eps or []] + (list(STANDARD_EPS) if args.mitigations else [])
    caps = [_cap(n) for n in args.round_cap or []] + (list(STANDARD_CAPS) if args.mitigations else [])
    if args.scope is not None and not eps:
        raise FlosimError(f"--scope {args.scope}: applies to noisy answers only; give --eps (or --mitigations) with it")
    for e in dict.fromkeys(eps):
        out.append(Variant("cpp-vcg", f"cpp-vcg eps={e:g}", privacy={"eps": e, "scope": args.scope or "run"}))
    for n in dict.fromkeys(caps):
        out.append(Variant("cpp-vcg", f"cpp-vcg rounds<={n}", cpp={"max_iter": n}))
    if args.neutral or args.mitigations:
        out.append(Variant("cpp-vcg", "cpp-vcg neutral", privacy={"coordinator": "neutral"}))
    names = [v.name for v in out]
    if len(set(names)) != len(names):
        raise FlosimError(f"--policy: each mechanism once, got {names}")
    return out


def load_transcripts(paths: list[str], public: PublicData) -> list[RoundsShown]:
    """Saved transcripts, checked: a missing, unreadable, foreign or damaged file (a round without
    the vendor's answer, numbers that are not finite) is an error naming it."""
    shapes = (tuple(public.shape), tuple(public.block_shape))  # with the vendor axis, or saved before it
    shown = []
    for i, name in enumerate(paths):
        path = Path(name)
        if not path.exists():
            raise FlosimError(f"--transcript {name}: no such file")
        if path.is_dir():
            raise FlosimError(f"--transcript {name}: is a folder, expected a transcript file (Parquet)")
        try:
            transcript = Transcript.load(path)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a damaged file
            raise FlosimError(f"--transcript {name}: cannot read a transcript: {type(exc).__name__}: {exc}") from None
        if tuple(transcript.shape) not in shapes:
            raise FlosimError(f"--transcript {name}: plan shape {tuple(transcript.shape)} is not the scenario's {shapes[0]}")
        if transcript.n_agents < 2:
            raise FlosimError(f"--transcript {name}: {transcript.n_agents} agent(s); the vendor is agent 1")
        names = {n for _, _, n, _ in transcript.rows}
        if not {"z", "prices", "answer", "rho"} <= names:
            raise FlosimError(f"--transcript {name}: damaged: no {sorted({'z', 'prices', 'answer', 'rho'} - names)} rows")
        bad = next(((it, agent, n) for it, agent, n, values in transcript.rows
                     if n in ("z", "prices", "answer", "rho") and not np.all(np.isfinite(values))), None)
        if bad is not None:
            raise FlosimError(f"--transcript {name}: damaged: round {bad[0]}, agent {bad[1]}: {bad[2]} is not finite")
        try:
            transcript_observations(transcript, public)  # every round complete, arrays of the plan's size
        except ValueError as exc:
            raise FlosimError(f"--transcript {name}: damaged: {exc}") from None
        shown.append(RoundsShown(i, transcript))
    return shown


def check_out(out: Path) -> None:
    """Refuse a results folder that cannot be made (a file in its place or above it) before anything
    is computed, so an audit of minutes is not lost at the end."""
    for place in (out, *out.parents):
        if place.exists():
            if not place.is_dir():
                raise FlosimError(f"--out {out}: {place} is a file, not a folder")
            if not os.access(place, os.W_OK | os.X_OK):
                raise FlosimError(f"--out {out}: cannot write in {place}")
            return


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9.=-]+", "_", name)


def _seeds(text: str | None, default: int) -> list[int]:
    if text is None:
        return [default]
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise FlosimError(f"--seeds {text!r}: expected whole numbers separated by commas, e.g. 1,2,3") from None
    if not seeds or any(seed < 0 for seed in seeds):
        raise FlosimError(f"--seeds {text!r}: expected non-negative whole numbers separated by commas")
    return list(dict.fromkeys(seeds))


def _relative_to_reference(rows: list[dict[str, Any]], reference: str = "cpp-vcg") -> None:
    """Add each summary row's planned share as a fraction of the reference policy's in the same run."""
    ref = next((r for r in rows if r["parameter"] == "summary" and r["policy"] == reference), None)
    base = None if ref is None else ref.get("planned_share_of_first_best_saving")
    for r in rows:
        if r["parameter"] == "summary":
            mine = r.get("planned_share_of_first_best_saving")
            r[f"planned_share_vs_{reference}"] = None if base in (None, 0) or mine is None else mine / base


def _means(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One summary row per policy over the seeds: the mean of each number."""
    out = []
    names = list(dict.fromkeys(r["policy"] for r in rows if r["parameter"] == "summary"))
    keys = ("within_5pct", "within_25pct", "share_of_first_best_saving", "settled_share_of_first_best_saving",
            "planned_share_of_first_best_saving",
            "planned_share_vs_cpp-vcg")
    for name in names:
        mine = [r for r in rows if r["parameter"] == "summary" and r["policy"] == name]
        row: dict[str, Any] = {"policy": name, "party": mine[0]["party"], "parameter": "summary", "truth": None, "estimate": None,
                               "relative_error": None, "seed": "mean", "seeds": [r["seed"] for r in mine]}
        for k in keys:
            values = [r.get(k) for r in mine]
            row[k] = float(np.mean(values)) if values and all(v is not None for v in values) else None
        out.append(row)
    return out


def main(args: argparse.Namespace) -> int:
    base = load_scenario(args.scenario)
    if args.seed is not None:
        base = base.model_copy(update={"seed": args.seed})
    seeds = _seeds(args.seeds, base.seed)
    public, vendor = the_vendor(base)  # one vendor; several: an error naming the scenario and the count
    chosen = variants(args)
    saved = load_transcripts(args.transcript, public) if args.transcript else []
    out = Path(args.out or default_results_dir("privacy"))
    check_out(out)
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    first: list[PolicyAudit] = []
    recorded: dict[tuple[int, str], list[Any]] = {}
    for seed in seeds:
        scenario = base.model_copy(update={"seed": seed})
        audits: list[PolicyAudit] = []
        summary: dict[str, dict[str, float]] = {}
        if chosen:
            print(f"privacy audit: running {', '.join(v.name for v in chosen)} on {scenario.name}, seed {seed}", file=sys.stderr)
            audits, summary, shown = run_privacy(scenario, chosen, weeks=args.weeks,
                                                 on_policy=lambda n: print(f"  fitting {n}", file=sys.stderr))
            recorded.update({(seed, name): entries for name, entries in shown.items()})
        if saved and seed == seeds[0]:
            found, curves, counts = audit_shown("transcripts", saved, public, vendor, np.random.default_rng(scenario.seed))
            audits.append(PolicyAudit("transcripts", found, curves, counts))
        these = table(audits, summary)
        _relative_to_reference(these)
        if len(seeds) > 1:
            for r in these:
                r["seed"] = seed
        rows += these
        first = first or audits
    if len(seeds) > 1:
        rows += _means(rows)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FlosimError(f"--out {out}: cannot create results folder: {exc}") from None
    for (seed, name), shown in recorded.items():
        folder = out / "transcripts" / (f"seed{seed}" if len(seeds) > 1 else "")
        for entry in shown:
            if isinstance(entry, RoundsShown):
                folder.mkdir(parents=True, exist_ok=True)
                entry.transcript.save(folder / f"{_slug(name)}-week{entry.week}.parquet")
    import pandas as pd

    frame = pd.DataFrame(rows).astype({"truth": float, "estimate": float, "relative_error": float})
    if "seed" in frame:
        frame["seed"] = frame["seed"].astype(str)
    if "seeds" in frame:
        frame["seeds"] = frame["seeds"].astype(str)
    write_table(out / "privacy.parquet", frame)
    write_json(out / "privacy.json", {"scenario": base.name, "weeks": args.weeks or base.weeks, "seeds": seeds,
                                      "wall_s": time.perf_counter() - started, "rows": rows})
    from experiments.plots.privacy import plot_curve, plot_tradeoff
    from experiments.plots.style import paper_style

    segs = true_segments(public, vendor)
    v = reference_volume(public)
    f = next((f for f, s in enumerate(segs) if any(seg.kind == "spare" for seg in s)), 0)
    lane = next((vendor.lane_names[seg.lane] for seg in segs[f] if seg.kind == "spare"), public.fcs[f])
    summaries = [r for r in rows if r["parameter"] == "summary" and r.get("seed", "mean") == "mean"]
    with paper_style():
        plot_curve([(s.start, s.end, s.delivered(v)) for s in segs[f]], {a.name: a.curves[f] for a in first}, v,
                   out / "marginal_cost.png", f"{base.name}: marginal cost at {public.fcs[f]} (lane {lane}), seed {seeds[0]}")
        plot_tradeoff(summaries, out / "tradeoff.png", f"{base.name}: leakage against efficiency"
                      + (f" (mean of {len(seeds)} seeds)" if len(seeds) > 1 else ""))
    if args.json:
        json.dump(rows, sys.stdout, indent=2, default=float)
        sys.stdout.write("\n")
    else:
        print(f"privacy audit, scenario {base.name}, seed {seeds[0]}: vendor parameters as an observer of each "
              "mechanism's record estimates them")
        for a in first:
            print(f"\n{a.name}")
            for r in a.rows:
                est = "not recovered" if r["estimate"] is None else f"{r['estimate']:.6g}"
                err = "" if r["relative_error"] is None else f"  ({100 * r['relative_error']:.1f}% off)"
                print(f"  {r['parameter']:<32} truth {r['truth']:<10.6g} estimate {est}{err}")
        print("\nsummary" + (f" (mean of seeds {', '.join(map(str, seeds))})" if len(seeds) > 1 else "")
              + ": share of parameters recovered within 5% / 25%; share of the first-best saving over JIT, "
              "planned (week by week, on the forecast) and realised (raw ledger)")
        for s in summaries:
            raw, planned = s.get("share_of_first_best_saving"), s.get("planned_share_of_first_best_saving")
            print(f"  {s['policy']:<24} {s['within_5pct']:.2f} / {s['within_25pct']:.2f}   "
                  f"saving share planned {'n/a' if planned is None else f'{planned:.3f}'}, "
                  f"realised {'n/a' if raw is None else f'{raw:.3f}'}")
        print(f"\nresults: {out}")
    return 0

