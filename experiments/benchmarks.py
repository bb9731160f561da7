"""Benchmarks: how much a CPP negotiation costs compared with solving the same problem centrally.

Three sizes, built programmatically (no files needed):

* ``small``: the built-in default scenario (3 FCs x 3 products x 6 weeks).
* ``pilot``: the public Flo Pro V-ADK calibration: 330 products drawn by the V-ADK product generator,
  5 FCs, 5 regions with regional weights [0.247, 0.158, 0.233, 0.131, 0.231], 2 vendor origins,
  lanes from both origins to every FC, some with spare scheduled-truck volume, 6 weeks.
* ``large``: 2,000 products x 20 FCs (8 regions, 4 origins), 6 weeks. It converges with late answers capped
  (``--answer max_iter=800``: 119 rounds, about 37 minutes on two cores); at the default answer settings
  its late answers take minutes each (``docs/cpp.md``).
* ``PxFxRxO`` (for example ``1000x5x5x2``): the same synthetic network with ``P`` products, ``F``
  FCs, ``R`` regions (equal weights) and ``O`` origins, seeded by ``P``, for scaling studies.
* ``PxFxRxOxV`` (for example ``330x5x5x2x3``): ``V`` vendors, each with its own ``O`` origins and lanes
  to every FC, each supplying every product at its own wholesale price (5.0, 5.1, ...): the
  negotiation has ``V + 1`` agents, the retailer answering for the whole plan and each vendor for
  its block.

For each size :func:`run_benchmark` times, in one process and on the same planning round (week 0,
scenario's initial stock, mean demand as the forecast):

* the joint first-best LP: model build and HiGHS solve separately (``build_s``, ``central_s``;
  ``central_method``: HiGHS's own choice, simplex in practice, below a million LP variables, its
  interior-point solver without crossover above, where simplex does not finish in reasonable time,
  see :func:`sim.model.lp.solve_lp`);
* the CPP negotiation as the ``cpp`` policy runs it (:func:`policies.cpp.negotiate_efficient_plan`:
  sending each agent its data and building its best-response solver, in its own process from 5,000
  plan components on, the ADMM rounds, the certificate checks and the vendor's confirmation of the
  plan, up to the agents' workers being released: ``cpp_s``), its iterations, and
  the relative social-cost gap of the plan it returns to the first best; and ``certified_gap``, the
  bound on that gap the two agents certify without any central solve (:mod:`sim.negotiation.certificate`:
  each agent's cost of the plan and its dual value at its final prices), with its time
  (``certify_s``: the stopping rule's checks, which are part of the negotiation and so of ``cpp_s``).

What ``cpp_s`` leaves out: the agents' worker processes are started before the timers
(:func:`sim.negotiation.best_response.prestart_workers`; ``startup_s``: a ``python`` each, importing
numpy, scipy, OSQP and flosim, about 0.6 s on two cores). An agent that negotiates for a party is a
service already running on that party's side, and the central solve's timer leaves out its solver's
imports too; what a negotiation pays each time (the agent's data, its model, every answer and check)
is in ``cpp_s``. The workers are ready (idle) before the central solve starts, so they take no CPU
from it. ``cpp_cpu_s`` is this process's CPU during the negotiation plus what its workers report
having used for it (:func:`sim.negotiation.best_response.workers_cpu`, their start-up left out).

What a user may do: ``flosim bench --sizes small,pilot`` (or call :func:`run_benchmark`), and build the
same scenarios with :func:`benchmark_scenario` for their own experiments.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from sim.parties.retailer import RetailerAgent, RetailerState
from sim.parties.vendor import VendorAgent, VendorState
from sim.model.data import split_scenario
from sim.model.errors import FlosimError
from sim.model.scenario import Scenario, load_scenario, scenario_from_dict

SIZES = ("small", "pilot", "large")
VADK_REGION_WEIGHTS = [0.247, 0.158, 0.233, 0.131, 0.231]


def _grid_scenario(name: str, *, products: int, fcs: int, regions: int, origins: int, weights: list[float] | None, seed: int,
                   vendors: int = 1) -> dict[str, Any]:
    """A synthetic network: FCs and regions on a line (outbound cost grows with distance, far pairs
    unreachable), every origin ships to every FC, about a third of the lanes carry spare volume."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xBE7C]))
    region_names = [f"R{r}" for r in range(regions)]
    fc_names = [f"FC{f:02d}" for f in range(fcs)]
    origin_names = [f"O{o}" for o in range(origins)]
    fc_pos = np.linspace(0.0, regions - 1.0, fcs)
    outbound: dict[str, dict[str, float]] = {}
    for f, fname in enumerate(fc_names):
        row = {}
        for r, rname in enumerate(region_names):
            dist = abs(fc_pos[f] - r)
            if dist <= 2.0:
                row[rname] = round(0.3 + 0.45 * dist + float(rng.uniform(0, 0.1)), 3)
        outbound[fname] = row
    w = np.asarray(weights if weights is not None else np.full(regions, 1.0 / regions))
    # the V-ADK cluster mix [0.745, 0.042, 0.212] sums to 0.999; normalised here (the schema wants 1)
    mix = np.array([0.745, 0.042, 0.212])
    gen = {"count": products, "mix": [float(m) for m in mix / mix.sum()]}
    # mean weekly demand of the generator is about 0.745*133 + 0.042*1573 + 0.212*185 ~ 205 per product
    total = 205.0 * products
    # each region is served mostly by its nearest FCs: an FC's share of total demand (for initial stock)
    near = np.exp(-2.0 * np.abs(fc_pos[:, None] - np.arange(regions)[None, :]))
    fc_share = (near / near.sum(axis=0, keepdims=True)) @ (w / w.sum())
    lead = rng.choice([1, 2], size=fcs, p=[0.6, 0.4])
    fc_list = [
        {"name": fname, "receiving_cost": 0.2, "lead_time": int(lead[f]), "initial_stock": {}}
        for f, fname in enumerate(fc_names)
    ]
    capacity = 0.65 * total  # per origin: two origins cover demand with ~30% slack
    if origins != 2:
        capacity = 1.3 * total / origins
    origin_list = [
        {"name": oname, "capacity": round(capacity, 1), "production_cost": round(2.0 + 0.3 * o, 2), "holding_cost": 0.02}
        for o, oname in enumerate(origin_names)
    ]
    lanes = []
    for o, oname in enumerate(origin_names):
        o_pos = (o + 0.5) * (regions - 1) / origins
        for f, fname in enumerate(fc_names):
            dist = abs(o_pos - fc_pos[f])
            lane: dict[str, Any] = {"origin": oname, "fc": fname, "truckload_cost": round(0.4 + 0.5 * dist, 3)}
            if rng.uniform() < 0.35:
                lane["spare_volume"] = round(float(total * fc_share[f] * rng.uniform(0.1, 0.4)), 1)
                lane["spare_cost"] = 0.05
            lanes.append(lane)
    data = {
        "name": name,
        "description": f"benchmark network: {products} products, {fcs} FCs, {regions} regions, {origins} origins",
        "weeks": 6,
        "horizon": 6,
        "seed": seed,
        "regions": region_names,
        "fcs": fc_list,
        "outbound_cost": outbound,
        "product_generator": gen,
        "origins": origin_list,
        "lanes": lanes,
        "demand": {"model": "vadk", "cv": 0.3, "region_weights": dict(zip(region_names, map(float, w), strict=True)),
                   "multipliers": [1.014, 0.980, 0.989, 1.000, 1.015, 1.001]},
    }
    if vendors > 1:
        data = _several_vendors(data, vendors, origins, regions, fc_names, fc_pos, fc_share, total, rng)
    scenario = scenario_from_dict(data, f"benchmark '{name}'")
    # initial FC stock: about 1.2 weeks of each product's demand, split by FC share
    stock_rng = np.random.default_rng(np.random.SeedSequence([seed, 0x570C]))
    resolved = scenario.model_dump(mode="json")
    base = np.array([p["base_demand"] for p in resolved["products"]])
    for f, fc in enumerate(resolved["fcs"]):
        units = base * fc_share[f] * stock_rng.uniform(0.6, 1.8, size=base.size)
        fc["initial_stock"] = {p["name"]: round(float(u), 1) for p, u in zip(resolved["products"], units, strict=True)}
    return resolved


def _several_vendors(data: dict[str, Any], vendors: int, origins: int, regions: int, fc_names: list[str],
                     fc_pos: np.ndarray, fc_share: np.ndarray, total: float, rng: np.random.Generator) -> dict[str, Any]:
    """``data`` as a version-2 scenario with ``vendors`` vendors, each with its own ``origins`` origins
    (spread along the line, shifted per vendor) and lanes to every FC, each supplying every product
    at its own wholesale price; capacity split so that together they cover demand with ~30% slack."""
    out = {k: v for k, v in data.items() if k not in ("origins", "lanes")}
    out["schema_version"] = 2
    out["product_generator"] = {k: v for k, v in data["product_generator"].items() if k != "wholesale_price"}
    vendor_list = []
    for v in range(vendors):
        names = [f"V{v}O{o}" for o in range(origins)]
        origin_list = [{"name": n, "capacity": round(1.3 * total / (origins * vendors), 1),
                        "production_cost": round(2.0 + 0.3 * o + 0.15 * v, 2), "holding_cost": 0.02} for o, n in enumerate(names)]
        lanes = []
        for o, oname in enumerate(names):
            o_pos = ((o + 0.5) / origins + 0.37 * v / vendors) % 1.0 * (regions - 1)
            for f, fname in enumerate(fc_names):
                dist = abs(o_pos - fc_pos[f])
                lane: dict[str, Any] = {"origin": oname, "fc": fname, "truckload_cost": round(0.4 + 0.5 * dist, 3)}
                if rng.uniform() < 0.35:
                    lane["spare_volume"] = round(float(total * fc_share[f] * rng.uniform(0.1, 0.4) / vendors), 1)
                    lane["spare_cost"] = 0.05
                lanes.append(lane)
        vendor_list.append({"name": f"vendor{v}", "origins": origin_list, "lanes": lanes, "products": "all",
                            "wholesale_price": round(5.0 + 0.1 * v, 2)})
    out["vendors"] = vendor_list
    return out


GRID_SIZE = re.compile(r"^(\d+)x(\d+)x(\d+)x(\d+)(?:x(\d+))?$")


def is_size(size: str) -> bool:
    """Whether ``size`` names a benchmark size: one of :data:`SIZES`, ``PxFxRxO`` or ``PxFxRxOxV``."""
    m = GRID_SIZE.match(size)
    return size in SIZES or (m is not None and all(int(g) >= 1 for g in m.groups() if g is not None))


def benchmark_scenario(size: str) -> Scenario:
    """The scenario of a benchmark size (``small``, ``pilot``, ``large``, ``PxFxRxO`` or ``PxFxRxOxV``)."""
    if size not in SIZES and is_size(size):
        products, fcs, regions, origins, vendors = (int(g) if g is not None else 1 for g in GRID_SIZE.match(size).groups())
        return scenario_from_dict(_grid_scenario(f"bench-{size}", products=products, fcs=fcs, regions=regions,
                                                 origins=origins, weights=None, seed=products, vendors=vendors),
                                  f"benchmark '{size}'")
    if size == "small":
        return load_scenario("default")
    if size == "pilot":
        return scenario_from_dict(_grid_scenario("bench-pilot", products=330, fcs=5, regions=5, origins=2,
                                                 weights=VADK_REGION_WEIGHTS, seed=330), "benchmark 'pilot'")
    if size == "large":
        return scenario_from_dict(_grid_scenario("bench-large", products=2000, fcs=20, regions=8, origins=4,
                                                 weights=None, seed=2000), "benchmark 'large'")
    raise FlosimError(f"unknown benchmark size {size!r} (choose from {', '.join(SIZES)}, or PxFxRxO with positive counts)")


def mean_demand(scenario: Scenario, start_week: int = 0) -> np.ndarray:
    """Mean regional demand ``[H, R, K]`` for weeks ``start_week .. start_week + H - 1`` (the demand
    model's expectation; used as the forecast of a single planning round)."""
    d = scenario.demand
    R, H = len(scenario.regions), scenario.horizon
    if d.region_weights is None:
        w = np.full(R, 1.0 / R)
    else:
        w = np.array([d.region_weights.get(r, 0.0) for r in scenario.regions])
        w = w / w.sum() if w.sum() > 0 else w
    base = np.array([p.base_demand for p in scenario.products])
    weeks = start_week + np.arange(H)
    mult = np.array([d.multipliers[s % len(d.multipliers)] * (1.0 + d.trend * s) for s in weeks])
    return np.maximum(0.0, mult[:, None, None] * w[None, :, None] * base[None, None, :])


def planning_round(scenario: Scenario) -> tuple[RetailerAgent, dict[str, VendorAgent]]:
    """The agents at the start of week 0 (the retailer, and each vendor by name): the scenario's
    initial stock, nothing in transit, and mean demand as the forecast. A single planning round needs
    no simulated world."""
    public, rdata, vdata = split_scenario(scenario)
    retailer = RetailerAgent(public, rdata)
    retailer.observe(RetailerState(rdata.initial_stock.copy(), np.zeros(public.block_shape), np.zeros((public.R, public.K))),
                     mean_demand(scenario))
    vendors = {}
    for name, data in vdata.items():
        vendors[name] = VendorAgent(public, data)
        vendors[name].observe(VendorState(data.initial_stock.copy()))
    return retailer, vendors


class _ScaledBuilder:
    """An LP builder whose cost terms are multiplied by ``scale`` (everything else passes through)."""

    def __init__(self, inner: Any, scale: float) -> None:
        self._inner, self._scale = inner, scale

    def add_cost(self, idx: np.ndarray, coef: Any, label: Any) -> None:
        self._inner.add_cost(idx, self._scale * np.asarray(coef, dtype=float), label)

    def add_constant(self, value: float, label: Any) -> None:
        self._inner.add_constant(self._scale * value, label)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class ScaledCosts:
    """An agent whose every cost (and the wholesale price it pays or receives) is multiplied by
    ``scale``: the same planning problem in another currency unit. Its plans and optimum are the
    agent's; its costs, prices and duals are ``scale`` times theirs. For scale-invariance studies
    (``flosim bench --cost-scale``)."""

    def __init__(self, agent: Any, scale: float) -> None:
        self.agent, self.scale = agent, float(scale)
        self.public = agent.public
        self.party = agent.party
        self.plan_shape = agent.plan_shape
        self.index = getattr(agent, "index", None)
        self.warm_checks = getattr(agent, "warm_checks", False)
        self.separable = getattr(agent, "separable", False)

    def negotiator(self, options: Any = None, *, process: bool = False) -> Any:
        """The scaled agent's negotiator, built from its scaled cost model."""
        from sim.negotiation.best_response import negotiator_for, process_negotiator

        return process_negotiator(self, options) if process else negotiator_for(self, options)

    def add_block(self, b: Any, x: np.ndarray, *args: Any, **kwargs: Any) -> Any:
        return self.agent.add_block(_ScaledBuilder(b, self.scale), x, *args, **kwargs)

    def evaluate(self, plan: np.ndarray, *args: Any, **kwargs: Any) -> Any:
        """The agent's own (unscaled) evaluation; multiply totals by ``scale`` for this agent's."""
        return self.agent.evaluate(plan, *args, **kwargs)

    def preferred_plan(self, *args: Any, **kwargs: Any) -> Any:
        return self.agent.preferred_plan(*args, **kwargs)


@dataclass(frozen=True)
class BenchRow:
    """One benchmark size: sizes, timings (seconds) and the CPP plan's relative gap to first-best."""

    size: str
    n_public: int
    n_lp_vars: int
    build_s: float
    central_method: str
    central_s: float
    cpp_s: float
    ratio: float
    iterations: int
    status: str
    gap: float
    #: the bound on ``gap`` the agents certify without the central solve (sim.negotiation.certificate), and
    #: the time of the stopping rule's certificate checks (included in ``cpp_s``)
    certified_gap: float
    certify_s: float
    #: the ADMM options and the agents' answer settings given (empty: defaults), so a row says how
    #: it was made
    admm_options: dict[str, Any] = field(default_factory=dict)
    answer_options: dict[str, Any] = field(default_factory=dict)
    #: every cost multiplied by this (``--cost-scale``); the gaps are relative, so comparable
    cost_scale: float = 1.0
    #: the agents' worker processes started before the timers (interpreter start and imports; not
    #: in ``cpp_s``, see :func:`run_benchmark`); 0 when the agents answer in this process
    startup_s: float = 0.0
    #: CPU time (all threads, and the agents' worker processes less their start-up) of the central
    #: solve and of the negotiation, and their ratio: the steadier figures on a machine shared with
    #: other jobs, where the wall clock counts their time too
    central_cpu_s: float = 0.0
    cpp_cpu_s: float = 0.0
    cpu_ratio: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_benchmark(size: str, options: dict[str, Any] | None = None, on_round: Any = None,
                  answers: dict[str, Any] | None = None, cost_scale: float = 1.0) -> BenchRow:
    """Time the central joint LP (build and HiGHS solve separately) and a CPP negotiation on the
    same planning round; the gap is ``(social cost of the CPP plan - first best) / |first best|``.
    ``on_round`` is called with each negotiation round's history entry (progress). ``options``: ADMM
    options (:class:`sim.negotiation.coordinator.ADMMOptions`); ``answers``: the agents' best-response settings
    (:func:`policies.cpp.answer_options`)."""
    from policies.cpp import PROCESS_THRESHOLD, admm_options, answer_options
    from sim.negotiation.best_response import prestart_workers, stop_idle_workers, workers_for

    opts = admm_options(options, "flosim bench")  # bad options fail before the central solve
    answer_opts = answer_options(answers, "flosim bench")
    scenario = benchmark_scenario(size)
    retailer, vendors = planning_round(scenario)
    if cost_scale != 1.0:
        retailer = ScaledCosts(retailer, cost_scale)
        vendors = {name: ScaledCosts(v, cost_scale) for name, v in vendors.items()}
    # agents that will answer in their own processes get their workers now, before the timers: a
    # worker's interpreter start and imports are what an agent service already running does not pay
    # (and the central solve's timer excludes its solver's imports too); the agent's data, its model
    # and every answer stay in cpp_s. Waiting here keeps the workers' imports off the central solve.
    startup_s = 0.0
    if int(np.prod(retailer.public.block_shape)) >= PROCESS_THRESHOLD:
        agents = [retailer, *vendors.values()]
        modules = sorted({type(a).__module__ for a in agents} | {type(a.agent).__module__ for a in agents if hasattr(a, "agent")})
        t = time.perf_counter()
        prestart_workers(sum(workers_for(a, answer_opts) for a in agents), preload=tuple(modules))
        startup_s = time.perf_counter() - t
    try:
        return _timed(size, opts, answer_opts, retailer, vendors, options, answers, cost_scale, on_round, startup_s)
    finally:
        stop_idle_workers()


def _timed(size: str, opts: Any, answer_opts: Any, retailer: Any, vendors: dict[str, Any], options: dict[str, Any] | None,
           answers: dict[str, Any] | None, cost_scale: float, on_round: Any, startup_s: float) -> BenchRow:
    """The timed part of :func:`run_benchmark`."""
    from sim.model.decision import PlanningContext
    from policies.cpp import negotiate_efficient_plan
    from sim.model.lp import LPBuilder, solve_lp
    from sim.negotiation.best_response import workers_cpu

    t0 = time.perf_counter()
    b = LPBuilder()
    x = b.add_var(retailer.public.shape)
    retailer.add_block(b, x)
    for v, vendor in enumerate(vendors.values()):
        vendor.add_block(b, x[v])
    lp = b.build()
    t1, c1 = time.perf_counter(), time.process_time()
    central = solve_lp(lp)  # simplex, or interior point from sim.model.lp.IPM_THRESHOLD variables on
    first_best = central.objective
    t2, c2 = time.perf_counter(), time.process_time()
    before = workers_cpu()
    ctx = PlanningContext(week=0, public=retailer.public, retailer=retailer, vendors=vendors, rng=np.random.default_rng(0))
    plan, result = negotiate_efficient_plan(ctx, opts, on_round=on_round, certify=True, answers=answer_opts)
    t3, c3 = time.perf_counter(), time.process_time()
    # the negotiation has closed its workers, which reported their CPU (less what starting took)
    agents_cpu = workers_cpu() - before
    # the stopping rule's checks are part of the negotiation (in cpp_s); a certificate computed after
    # an unconverged negotiation (for the report) is not
    after_s = 0.0 if result.certificate is None or result.checks and result.certified else result.certificate.wall_s
    certify_s = result.checks_s
    social = cost_scale * (retailer.evaluate(plan).total + sum(vendor.evaluate(plan[v]).total for v, vendor in enumerate(vendors.values())))
    return BenchRow(
        size=size,
        n_public=int(np.prod(retailer.public.shape)),
        n_lp_vars=lp.n,
        build_s=t1 - t0,
        central_method=central.method,
        central_s=t2 - t1,
        cpp_s=t3 - t2 - after_s,
        ratio=(t3 - t2 - after_s) / max(t2 - t1, 1e-9),
        iterations=result.iterations,
        status=result.status,
        gap=(social - first_best) / max(abs(first_best), 1e-9),
        certified_gap=result.certificate.gap,
        certify_s=certify_s,
        # as validated (``--set eps_rel=3e-3`` is text on the command line; the row says 0.003)
        admm_options={k: getattr(opts, k) for k in (options or {})},
        answer_options={k: getattr(answer_opts, k) for k in (answers or {})},
        cost_scale=float(cost_scale),
        startup_s=startup_s,
        central_cpu_s=c2 - c1,
        cpp_cpu_s=c3 - c2 + agents_cpu,
        cpu_ratio=(c3 - c2 + agents_cpu) / max(c2 - c1, 1e-9),
    )


def format_table(rows: list[BenchRow], size_width: int | None = None) -> str:
    """A plain-text table of benchmark rows (``size_width``: width of the size column, default: fit)."""
    w = size_width or max(7, max((len(r.size) for r in rows), default=0) + 2)
    head = f"{'size':<{w}}{'n_public':>10}{'LP vars':>10}{'build_s':>9}{'central':>8}{'central_s':>11}{'cpp_s':>9}{'ratio':>8}{'iters':>7}  {'status':<14}{'gap':>10}{'certified':>11}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r.size:<{w}}{r.n_public:>10}{r.n_lp_vars:>10}{r.build_s:>9.3f}{r.central_method:>8}{r.central_s:>11.3f}{r.cpp_s:>9.2f}"
            f"{r.ratio:>8.1f}{r.iterations:>7}  {r.status:<14}{r.gap:>10.2e}{r.certified_gap:>11.2e}"
        )
    return "\n".join(lines)
