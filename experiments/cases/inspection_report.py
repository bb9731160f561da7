"""The ``flosim case inspection`` report: optimal mechanism with inspection vs Myerson, one and two bidders.

What a user may do: :func:`run_case` returns the whole report as a JSON-ready dict (every verdict is
derived from computed numbers), :func:`render_text` prints it and :func:`plot_allocations` draws the
allocation rules.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from experiments.cases import inspection as ins
from sim.model.errors import FlosimError

VALUE_UNITS = "value units"


def _r(x: float, nd: int = 6) -> float:
    return round(float(x), nd)


def _is_continuous(jump: float, jump_half: float) -> bool:
    """No threshold on the grid: steps are small and shrink when the grid is refined."""
    return jump < 0.1 and jump <= 0.75 * jump_half


def run_case(
    *,
    dist: str = "uniform",
    grid_points: int = 200,
    grid_points_two: int = 40,
    inspection_prob: float = 1.0,
    deposit_factor: float = 1.0,
    inspection_cost: float = 0.0,
    inspect: str = "all",
) -> dict:
    """Everything ``flosim case inspection`` reports, as a JSON-ready dict.

    ``inspect``: ``"all"`` (every bidder's value is observed, the paper's setting) or ``"winners"``
    (only the winner's value is observed).
    """
    if inspect not in ("all", "winners"):
        raise FlosimError(f"--inspect: use 'all' or 'winners', got {inspect!r}")
    model = ins.InspectionModel(inspection_prob, deposit_factor, inspection_cost, inspect_losers=(inspect == "all"))
    grid = ins.value_grid(dist, grid_points)
    if grid_points_two < 4 or grid_points_two > 120:
        raise FlosimError(f"--grid2: need an integer between 4 and 120, got {grid_points_two}")
    mech = ins.optimal_mechanism(grid, model)
    off = ins.optimal_mechanism(grid, ins.InspectionModel(0.0, deposit_factor))
    other = ins.optimal_mechanism(grid, ins.InspectionModel(inspection_prob, deposit_factor, inspection_cost,
                                                            inspect_losers=not model.inspect_losers))
    price, rev_myerson = ins.myerson_posted_price(grid)
    shape = ins.shape_diagnostics(grid, mech.allocation)
    coarse = ins.value_grid(dist, max(grid_points // 2, 2))
    mech_coarse = ins.optimal_mechanism(coarse, model)
    shape_coarse = ins.shape_diagnostics(coarse, mech_coarse.allocation)
    shape_off = ins.shape_diagnostics(grid, off.allocation)
    viol = ins.constraint_violations(mech)
    spread = ins.allocation_spread(mech_coarse)  # on the half grid: the check costs two more LPs
    full = mech.allocation >= 1 - 1e-7
    distinct_full = int(len(np.unique(np.round(mech.payment[full], 6)))) if full.any() else 0
    sweep = {}
    for th in (0.25, 0.5, 0.75, 1.0):
        m = mech if th == inspection_prob else ins.optimal_mechanism(
            grid, ins.InspectionModel(th, deposit_factor, inspect_losers=model.inspect_losers))
        sweep[str(th)] = _r(m.revenue)
    continuous = _is_continuous(shape["max_jump"], shape_coarse["max_jump"])

    # Two i.i.d. bidders.
    g2 = ins.value_grid(dist, grid_points_two)
    g2h = ins.value_grid(dist, max(grid_points_two // 2, 4))
    two = {}
    for label, g in (("grid", g2), ("half_grid", g2h)):
        opt = ins.optimal_two_bidders(g, model, "ex_post")
        hb = ins.optimal_two_bidders(g, model, "highest_bid")
        two[label] = (opt, hb)
    opt, hb = two["grid"]
    opt0 = ins.optimal_two_bidders(g2, ins.InspectionModel(0.0, deposit_factor), "ex_post")
    inspections = model.inspected_per_bidder(mech.allocation, grid.probs)
    reserve, rev_spa, q_spa = ins.second_price_with_reserve(g2)
    gap = (opt.revenue - hb.revenue) / opt.revenue
    gap_half = (two["half_grid"][0].revenue - two["half_grid"][1].revenue) / two["half_grid"][0].revenue
    surplus2 = ins.expected_max_value(g2)
    viol2 = ins.two_bidder_violations(opt)
    shape2 = ins.shape_diagnostics(g2, opt.interim_allocation)

    holds, fails = [], []
    claim = "optimal allocation increases continuously in the bid (no threshold)"
    detail = (f"max step {shape['max_jump']:.4f} at {grid_points} points vs {shape_coarse['max_jump']:.4f} at "
              f"{coarse.n}; Myerson's step is {shape_off['max_jump']:.2f}")
    (holds if shape["increasing"] and continuous else fails).append(f"{claim}: {detail}.")
    claim = "revenue with inspection is at least Myerson's"
    (holds if mech.net_revenue >= rev_myerson - 1e-9 else fails).append(
        f"{claim}: {mech.net_revenue:.4f} (net of inspection cost) vs {rev_myerson:.4f}.")
    claim = "with inspection off the LP recovers Myerson's posted price"
    (holds if abs(off.revenue - rev_myerson) <= 1e-7 else fails).append(
        f"{claim}: LP {off.revenue:.6f} vs posted price {price:.4f} -> {rev_myerson:.6f}.")
    if distinct_full > 1:
        holds.append(f"different payments for the same allocation: {distinct_full} distinct payments among "
                     "types allocated with probability 1 (the reward keeps screening them).")
    claim = "two bidders: inspection beats a second-price auction with the optimal reserve"
    (holds if opt.net_revenue >= rev_spa - 1e-9 else fails).append(
        f"{claim}: {opt.net_revenue:.4f} vs {rev_spa:.4f} (reserve {reserve:.3f}).")
    claim = "two bidders: 'allocate to the highest bid, reward the truthful' attains the optimum"
    detail = (f"relative gap {gap:.2e} at {g2.n} points, {gap_half:.2e} at {g2h.n} points "
              f"(lowest win probability a(b) = {float(hb.win_probability.min()):.3f})")
    (holds if gap <= 1e-6 else fails).append(f"{claim}: {detail}.")
    if opt.revenue >= surplus2 * (1 - 1e-6):
        holds.append(f"two bidders: the optimum extracts the full surplus E[max v] = {surplus2:.4f} on this grid "
                     "(a liar forfeits the whole bid, so no information rent is left).")

    return {
        "dist": dist,
        "description": ins.DISTRIBUTIONS[dist][2],
        "model": {"inspection_prob": inspection_prob, "deposit_factor": deposit_factor,
                  "inspection_cost": inspection_cost, "inspect": inspect},
        "grid": [_r(x) for x in grid.values],
        "probs": [float(f"{x:.6g}") for x in grid.probs],
        "allocation": [_r(x) for x in mech.allocation],
        "payment": [_r(x) for x in mech.payment],
        "reward": [_r(x) for x in mech.reward],
        "revenue": {
            "inspection": _r(mech.revenue),
            "inspection_net": _r(mech.net_revenue),
            "myerson": _r(rev_myerson),
            "lp_without_inspection": _r(off.revenue),
            "full_surplus": _r(grid.mean()),
            ("inspection_winners_only" if model.inspect_losers else "inspection_all_bidders"): _r(other.revenue),
        },
        "myerson_price": _r(price),
        "revenue_by_inspection_prob": sweep,
        "break_even_inspection_cost": _r((mech.revenue - rev_myerson) / inspections) if inspections > 0 else None,
        "checks": {
            "constraint_violations": {k: float(f"{v:.3g}") for k, v in viol.items()},
            "increasing": shape["increasing"],
            "max_jump": _r(shape["max_jump"]),
            "max_jump_half_grid": _r(shape_coarse["max_jump"]),
            "myerson_max_jump": _r(shape_off["max_jump"]),
            "continuous": continuous,
            "first_full_allocation": shape["first_full_allocation"],
            "allocation_spread_on_optimal_face_half_grid": float(f"{spread:.3g}"),
            "distinct_payments_at_full_allocation": distinct_full,
            "revenue_at_least_myerson": bool(mech.net_revenue >= rev_myerson - 1e-9),
            "lp_off_recovers_posted_price": bool(abs(off.revenue - rev_myerson) <= 1e-7),
        },
        "two_bidders": {
            "grid_points": g2.n,
            "grid": [_r(x) for x in g2.values],
            "revenue": {
                "optimal_with_inspection": _r(opt.revenue),
                "highest_bid_with_reward": _r(hb.revenue),
                "second_price_optimal_reserve": _r(rev_spa),
                "optimal_without_inspection": _r(opt0.revenue),
                "full_surplus": _r(surplus2),
            },
            "reserve": _r(reserve),
            "relative_gap_highest_bid": float(f"{gap:.3g}"),
            "relative_gap_highest_bid_half_grid": float(f"{gap_half:.3g}"),
            "interim_allocation_optimal": [_r(x) for x in opt.interim_allocation],
            "interim_allocation_highest_bid": [_r(x) for x in hb.interim_allocation],
            "interim_allocation_second_price": [_r(x) for x in q_spa],
            "win_probability_highest_bid": [_r(x) for x in hb.win_probability],
            "constraint_violations": {k: float(f"{v:.3g}") for k, v in viol2.items()},
            "optimal_interim_increasing": shape2["increasing"],
        },
        "statements": {"holds": holds, "does_not_hold": fails},
    }


def render_text(rep: dict) -> str:
    """Human-readable version of :func:`run_case`'s report."""
    m, r, c = rep["model"], rep["revenue"], rep["checks"]
    lines = [
        f"Deferred inspection and reward -- {rep['description']}, {len(rep['grid'])} grid points",
        f"  inspection prob {m['inspection_prob']}, deposit = {m['deposit_factor']} x bid, "
        f"inspection cost {m['inspection_cost']} per inspection, inspected: {m['inspect']} bidders",
        "",
        "One bidder: revenue",
        f"  with inspection (LP)      {r['inspection']:.4f}   net of inspection cost {r['inspection_net']:.4f}",
        f"  Myerson posted price      {r['myerson']:.4f}   (price {rep['myerson_price']:.4f})",
        f"  LP, inspection off        {r['lp_without_inspection']:.4f}",
        f"  full surplus E[v]         {r['full_surplus']:.4f}",
        *[f"  {k.replace('_', ' '):<25} {v:.4f}" for k, v in r.items() if k.startswith("inspection_") and k != "inspection_net"],
        "  by inspection prob:       " + ", ".join(f"{k}: {v:.4f}" for k, v in rep["revenue_by_inspection_prob"].items()),
        f"  break-even cost per inspection (vs Myerson): {rep['break_even_inspection_cost']}",
        "",
        "  optimal allocation q(b) (every ~10th grid point):",
    ]
    step = max(1, len(rep["grid"]) // 10)
    lines.append("    b: " + " ".join(f"{x:6.3f}" for x in rep["grid"][::step]))
    lines.append("    q: " + " ".join(f"{x:6.3f}" for x in rep["allocation"][::step]))
    lines.append(f"  checks: constraint violations {c['constraint_violations']}")
    lines.append(f"          increasing {c['increasing']}, max step {c['max_jump']} (half grid {c['max_jump_half_grid']},"
                 f" Myerson {c['myerson_max_jump']}), q = 1 from b = {c['first_full_allocation']}, "
                 f"allocation spread on the optimal face (half grid) {c['allocation_spread_on_optimal_face_half_grid']}")
    t = rep["two_bidders"]
    lines += ["", f"Two i.i.d. bidders ({t['grid_points']} grid points): revenue"]
    for k, v in t["revenue"].items():
        lines.append(f"  {k:<30} {v:.4f}")
    lines.append(f"  reserve {t['reserve']}, relative gap highest-bid vs optimal {t['relative_gap_highest_bid']} "
                 f"(half grid {t['relative_gap_highest_bid_half_grid']})")
    lines += ["", "What holds:"] + [f"  + {s}" for s in rep["statements"]["holds"]]
    if rep["statements"]["does_not_hold"]:
        lines += ["What does not hold:"] + [f"  - {s}" for s in rep["statements"]["does_not_hold"]]
    return "\n".join(lines)


def plot_allocations(rep: dict, out_dir: Path) -> Path:
    """Two panels: one bidder's q(b) with inspection vs Myerson; two bidders' interim allocations."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
    b = np.asarray(rep["grid"])
    ax1.plot(b, rep["allocation"], lw=2,
             label=f"with inspection (theta={rep['model']['inspection_prob']}), revenue {rep['revenue']['inspection']:.3f}")
    ax1.step(b, (b >= rep["myerson_price"] - 1e-12).astype(float), where="post", ls="--",
             label=f"Myerson posted price {rep['myerson_price']:.3f}, revenue {rep['revenue']['myerson']:.3f}")
    ax1.set_xlabel(f"bid b = reported value ({VALUE_UNITS})")
    ax1.set_ylabel("allocation probability q(b)")
    ax1.set_title(f"One bidder, {rep['description']}")
    ax1.set_ylim(-0.03, 1.05)
    ax1.legend(fontsize=8, loc="lower right")
    t = rep["two_bidders"]
    b2 = np.asarray(t["grid"])
    ax2.plot(b2, t["interim_allocation_optimal"], lw=2, label="optimal with inspection (ex post LP)")
    ax2.plot(b2, t["interim_allocation_highest_bid"], ls=":", lw=2, label="highest bid wins + reward")
    ax2.plot(b2, t["interim_allocation_second_price"], ls="--",
             label=f"second price, reserve {t['reserve']:.3f}")
    ax2.set_xlabel(f"bid b = reported value ({VALUE_UNITS})")
    ax2.set_ylabel("interim probability of winning Q(b)")
    ax2.set_title("Two i.i.d. bidders")
    ax2.set_ylim(-0.03, 1.05)
    ax2.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    path = out_dir / f"inspection_{rep['dist']}.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
