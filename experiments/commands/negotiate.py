"""``flosim negotiate``: a CPP negotiation among any protocol agents, from the command line.

    flosim negotiate --agents MODULE:FACTORY [--agents ...] [--set NAME=VALUE ...] [--transcript PATH] [--json]

Each ``--agents`` names a function (``package.module:function``, importable from the current
directory or the Python path) called without arguments; it returns one agent or a list of them.
An agent is either a flosim negotiator (``best_response(z, prices, rho)``; its ``shape`` attribute
gives the plan's shape) or an agent written for the FloPro SDK (``register()`` and ``solve(...)``),
which is adapted (:class:`sim.negotiation.flopro_adapter.FloProNegotiator`) and placed from its metadata. Prints
the rounds, the status, whether the stop was certified (:mod:`sim.negotiation.certificate`; agents that cannot
certify stop on residuals), the certified gap bound, the wall time and the residuals; ``--transcript``
saves everything that left an agent to a Parquet file. ``--set`` changes an ADMM option, as in
``flosim bench``. Example: ``flosim negotiate --agents experiments.flopro_standins:pair``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Mapping
from typing import Any

from experiments.commands._args import name_value
from sim.model.errors import FlosimError
from sim.results import jsonable


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("negotiate", help="negotiate among any protocol agents (FloPro-style included)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--agents", action="append", required=True, metavar="MODULE:FACTORY",
                   help="a function returning one agent or a list of agents; repeatable")
    p.add_argument("--set", dest="admm", action="append", type=name_value("NAME=VALUE", "eps_rel=1e-4"), default=[],
                   metavar="NAME=VALUE", help="ADMM option (sim.negotiation.coordinator.ADMMOptions); repeatable")
    p.add_argument("--transcript", metavar="PATH", help="save the negotiation's transcript (Parquet)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def _factory(spec: str) -> Any:
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise FlosimError(f"--agents {spec!r}: expected MODULE:FACTORY, e.g. experiments.flopro_standins:pair")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise FlosimError(f"--agents {spec!r}: cannot import module {module_name!r}: {exc}") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise FlosimError(f"--agents {spec!r}: module {module_name!r} has no function {attr!r}")
    return factory


def load_agents(specs: list[str]) -> tuple[list[Any], tuple[int, ...]]:
    """The negotiators named by ``--agents`` specs and the plan's shape (see the module docstring)."""
    from sim.negotiation.flopro_adapter import FloProNegotiator, plan_axes

    raw: list[Any] = []
    for spec in specs:
        try:
            made = _factory(spec)()
        except FlosimError:
            raise
        except Exception as exc:
            raise FlosimError(f"--agents {spec!r}: the factory raised {type(exc).__name__}: {exc}") from None
        items = list(made) if isinstance(made, (list, tuple)) else [made]
        for item in items:
            if not (callable(getattr(item, "best_response", None)) or
                    (callable(getattr(item, "solve", None)) and callable(getattr(item, "register", None)))):
                raise FlosimError(f"--agents {spec!r}: {type(item).__name__} is not an agent (it needs best_response, "
                                  "or register and solve for a FloPro-style agent)")
            raw.append(item)
    if not raw:
        raise FlosimError("--agents: the factories returned no agents")
    flopro = [a for a in raw if not callable(getattr(a, "best_response", None))]
    shapes = {_shape(a) for a in raw if callable(getattr(a, "best_response", None)) and hasattr(a, "shape")}
    labels = None
    if flopro:
        metadatas = []
        for a in flopro:
            try:
                meta = a.register()
            except Exception as exc:
                raise FlosimError(f"--agents: {type(a).__name__}.register() raised {type(exc).__name__}: {exc}") from None
            if not isinstance(meta, Mapping):
                raise FlosimError(f"--agents: {type(a).__name__}.register() returned {type(meta).__name__}, "
                                  "not a mapping of variable groups to their metadata")
            metadatas.append(meta)
        try:
            fshape, labels = plan_axes(metadatas)
        except Exception as exc:  # the metadata's tables, as the agents wrote them
            raise FlosimError(f"--agents: cannot place the FloPro-style agents from their metadata: {exc}") from None
        shapes.add(tuple(fshape))
    if len(shapes) != 1:
        raise FlosimError(f"--agents: the agents' plans differ in shape ({sorted(shapes)})" if shapes else
                          "--agents: no agent says the plan's shape (give flosim negotiators a 'shape' attribute)")
    shape = shapes.pop()
    try:
        negs = [a if callable(getattr(a, "best_response", None)) else FloProNegotiator(a, shape, labels=labels) for a in raw]
    except Exception as exc:  # the adapter's own checks (ValueError) or the agent's register() the second time
        raise FlosimError(f"--agents: {exc}") from None
    return negs, shape


def _shape(agent: Any) -> tuple[int, ...]:
    """A negotiator's ``shape`` attribute, checked: positive whole numbers."""
    shape = agent.shape
    try:
        dims = tuple(shape) if not isinstance(shape, (str, bytes)) else None
        if dims is None or not dims or any(isinstance(d, bool) or int(d) != d or int(d) < 1 for d in dims):
            raise ValueError
    except (TypeError, ValueError):
        raise FlosimError(f"--agents: {type(agent).__name__}.shape = {shape!r} is not a plan shape "
                          "(positive whole numbers, e.g. (6, 2, 3))") from None
    return tuple(int(d) for d in dims)


def run(args: argparse.Namespace) -> int:
    from policies.cpp import admm_options
    from sim.negotiation.coordinator import ConsensusADMM

    admm = dict(args.admm)
    if args.transcript:
        admm["record_transcript"] = True
    opts = admm_options(admm, "flosim negotiate --set")
    negotiators, shape = load_agents(args.agents)
    result = ConsensusADMM(opts).negotiate(negotiators, shape)
    report = {
        "agents": len(negotiators),
        "shape": list(shape),
        "rounds": result.iterations,
        "status": result.status,
        "converged": result.converged,
        "certified": result.certified,
        "gap_bound": result.gap_bound if result.certificate is not None else None,
        "wall_s": result.wall_s,
        "primal_residual": result.primal_residual,
        "dual_residual": result.dual_residual,
        "rho": result.rho,
        "message": result.message,
    }
    if args.transcript and result.transcript is not None:
        try:
            result.transcript.save(args.transcript)
        except OSError as exc:
            raise FlosimError(f"--transcript {args.transcript!r}: cannot write: {exc}") from None
        report["transcript"] = args.transcript
    if args.json:
        print(json.dumps(jsonable(report), indent=2))
    else:
        for key, value in report.items():
            print(f"{key:<16} {value}")
    return 0
