"""The CPP coordinator: consensus ADMM with residual balancing and safeguarded Anderson acceleration.

The coordinator finds a plan all agents agree on, ``argmin_x sum_i C_i(x)``, without seeing any
``C_i``. Each round it sends agent ``i`` the consensus plan ``z``, its prices ``y_i`` and the penalty
``rho``; the agent answers its best response ``x_i = argmin C_i(x) + y_i·x + (rho/2)||x - z||²``
(:class:`sim.negotiation.protocol.Negotiator`). With over-relaxation ``alpha`` (``relaxation``, default 1.6;
Boyd et al. 2011, section 3.4.3) the answers enter as ``xr_i = alpha x_i + (1 - alpha) z`` and the
coordinator sets

    z ← mean_i (xr_i + y_i/rho),        y_i ← y_i + rho (xr_i - z)

(prices sum to zero after the first round, so ``z`` is the average relaxed answer) and checks the
primal residual ``r = sqrt(sum_i ||x_i - z||²)`` and the dual residual
``s = sqrt(sum_i ||rho (x_i - z_prev) - (y_i - y_i_prev)||²)`` (each agent's optimality condition
at the new prices; with ``alpha = 1`` it is ``rho sqrt(N) ||z - z_prev||``) against relative
tolerances (Boyd et al. 2011, section 3.3), each in its own units:

    eps_pri  = sqrt(N n) eps_abs                + eps_rel max(sqrt(sum ||x_i||²), sqrt(N) ||z||)   (plan units)
    eps_dual = sqrt(N n) eps_abs rms(y)         + eps_rel sqrt(sum ||y_i||²)                       (price units)
             = (eps_abs + eps_rel) sqrt(sum ||y_i||²)

``eps_abs`` is a disagreement per plan component; in the dual test of a negotiation that stops on
residuals it is a share of the rms price (the agents' own cost scale, as the prices reveal it). So
both tests are then free of the cost scale: multiplying every agent's cost by ``c`` (and ``rho`` with
it) multiplies prices, ``rho``, ``s`` and ``eps_dual`` by ``c`` and leaves the answers, ``r``,
``eps_pri`` and the stopping round unchanged. Where the agents certify, the residual test only
triggers checks (and balances ``rho``) and keeps Boyd's form, ``eps_abs`` valued at one unit of money
per unit or at the rms price where that is smaller: ``sqrt(N n) eps_abs min(1, rms(y)) + eps_rel
||y||``. With prices of a unit or more (flosim's scenarios) that is the test of earlier versions, so
their rounds up to the first check are unchanged; with costs in a small unit it is the scale-free
form, without which ``rho`` was balanced the wrong way (at every cost multiplied by 1e-3 the
negotiation was not certified within 500 rounds); with costs in a large unit it is a relative test.

**Stopping rule.** The residuals say that the answers agree and the prices have settled; they say
how far the plan is from optimal only relative to the plan's and the prices' sizes, and a small
disagreement can be costly (a unit short where a backlog penalty is 100 times the holding cost).
So where the agents can bound their own cost (a :class:`sim.negotiation.certificate.Certifier`: each agent's
dual value and its cost of the plan, :mod:`sim.negotiation.certificate`), the residual test only *triggers*
checks: the negotiation stops as ``"converged"`` when the certified relative gap of its plan to
first best is at most ``gap_tol`` (default 1e-3), a bound that holds at any cost scale. The
coordinator hands the certifier, besides its prices, each agent's *answer prices* ``y_i + rho (x_i -
z)`` (as sent this round): the prices at which the agent's answer is its exact best response, which
give a far tighter bound than the coordinator's own prices when an agent's LP is degenerate
(:func:`sim.negotiation.certificate.answer_prices_of`). After the
first check, checks repeat at the first round with the residual test passed at least
``certify_every`` rounds after the last (a fixed spacing, not a timed one, so that a negotiation is
reproducible bit for bit). The last round (``max_iter``) is checked whatever its residuals: ADMM
over degenerate LPs can stall with a residual a few times its tolerance while the plan is already
near-optimal (the answers keep moving among equally cheap ways to make and ship), and such a
negotiation used to end at the cap with a plan its certificate would have accepted (measured: a
pivot negotiation of ``two-vendors`` stalled at primal residual 2.7 against a tolerance of 1.2 for
440 rounds while its certified gap was 1.8e-4). So a ``converged`` negotiation has a certified plan,
and answers that agree within tolerance unless it was certified at the cap. With ``gap_abs`` set
the stop is on the certified *absolute* gap ``upper - lower`` instead (also when the lower bound is
<= 0, where no relative gap is bounded): for a negotiation whose own objective is not the quantity
whose error matters, such as CPP-VCG's pivots (:func:`policies.cpp_vcg.pivot_options`). Where some agent
cannot certify, the negotiation stops on the residual test alone with status
``"stopped_on_residuals"``, ``certified`` and ``converged`` false: an agreement (``agreed``), but
with no bound on its gap (measured on FloPro-style agents with a high backlog penalty, at the
default tolerances: 2e-3 to 4e-1 above the optimum).

Speed-ups (:class:`ADMMOptions`). With ``rho=None`` (default) the first round runs
at ``rho = 0.01`` and ``rho`` is then set to ``1 / rms(answers)``, so a typical disagreement costs
about one unit of money per unit of plan. (On the pilot benchmark, turning residual balancing off
after that measured fewer rounds; on some small random instances the first-round ``rho`` is off by
two orders of magnitude and balancing is what makes them converge, so it is on by default.)

* **Residual balancing** of ``rho``: if ``r/eps_pri`` and ``s/eps_dual`` differ by more than ``rho_mu``,
  ``rho`` is scaled by ``sqrt`` of their ratio (clipped to ``[1/rho_tau_max, rho_tau_max]``). Changes are
  at least ``rho_interval`` rounds apart, and that wait doubles after every ``rho_backoff`` changes,
  so ``rho`` settles and plain ADMM's convergence guarantee applies. Prices are unscaled, so they stay valid.
* **Anderson acceleration** (type II, memory ``anderson_memory``) of the fixed-point map
  ``(z, y/rho) → ADMM round``. An accelerated point is kept only if the combined residual
  ``||u - G(u)||`` of the next round is not larger than ``anderson_safeguard`` times that of the
  last plain round; otherwise the coordinator returns to the plain ADMM iterate (safeguard) and
  pauses acceleration for 1, 2, 4 ... plain rounds after consecutive rejections, so acceleration
  costs little when it does not help. Every evaluated point, accepted or not, feeds the memory.

Status is ``"converged"`` (certified gap within ``gap_tol``), ``"stopped_on_residuals"`` (both
residuals within tolerance, no certificate possible), ``"iteration_cap"`` (``max_iter`` rounds
without converging), ``"time_limit"`` (``time_limit`` seconds of negotiation passed without
converging; checked after each round, so a round under way is finished) or ``"failed"`` (an agent
raised or answered with non-finite numbers). A result
that did not converge is never presented as an agreement: callers check :attr:`NegotiationResult.converged`.

**Agents that hold part of the plan** (``negotiate(..., blocks=...)``, :mod:`sim.negotiation.blocks`).
Agent ``i`` may hold only ``x[blocks[i]]`` (a numpy basic index; None: the whole plan). It is then
sent ``z[blocks[i]]`` and its prices in its block's shape, and nothing else of the plan. The update is
general-form consensus (Boyd et al. 2011, section 7.2): each component's ``z`` is the mean of
``xr_i + y_i/rho`` over the agents holding it, each agent's prices update on its own components, and
the residuals and tolerances count agent components: ``sqrt(m)`` with ``m`` the number of (agent,
component) pairs in place of ``sqrt(N n)``, and ``||z restricted to each agent, stacked||`` in place of
``sqrt(N) ||z||``. The agents' components are stacked in one vector (an index into ``z``; means by
weighted bin counts); with every block the whole plan that is the ``[N, n]`` array and the mean
``mean(axis=0)``, so the numbers are exactly those without blocks.

What a user may do: ``ConsensusADMM(ADMMOptions(...)).negotiate(negotiators, shape)`` with any
objects implementing the protocol; pass ``record_transcript=True`` to keep everything that left an
agent (:mod:`sim.negotiation.transcript`). Each round only ``best_response`` is called on a negotiator; at a
certificate check, agents that offer them are asked ``dual_value`` and ``own_cost`` (two numbers each;
``negotiate(..., certifier=None)`` or ``ADMMOptions(certify=False)`` stops on residuals instead).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from sim.negotiation.blocks import BlockLayout, norm
from sim.negotiation.protocol import Negotiator
from sim.negotiation.transcript import Transcript
from sim.model.validation import number_from_text

Status = Literal["converged", "stopped_on_residuals", "iteration_cap", "time_limit", "failed"]

#: statuses of an agreement (the answers agree within tolerance); only "converged" is certified
AGREED: tuple[str, ...] = ("converged", "stopped_on_residuals")


class ADMMOptions(BaseModel):
    """Options of :class:`ConsensusADMM`; every field has a default, unknown fields are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    rho: float | None = Field(None, gt=0, description="initial penalty; None: 1/(rms of the first round's answers)")
    max_iter: int = Field(500, ge=1, description="cap on negotiation rounds (agent queries per agent)")
    time_limit: float | None = Field(None, gt=0, description=(
        "wall-clock seconds after which an unconverged negotiation stops (status 'time_limit'); None: no limit. "
        "For benchmarks: with a limit, where a negotiation stops depends on the machine's speed, so runs are "
        "no longer reproducible bit for bit"))

    @field_validator("*", mode="before")
    @classmethod
    def _numbers(cls, value: Any, info: Any) -> Any:
        return value if cls.model_fields[info.field_name].annotation is bool else number_from_text(value)
    eps_abs: float = Field(1e-3, ge=0, description="absolute tolerance per plan component (units)")
    eps_rel: float = Field(1e-3, ge=0, description="relative tolerance on residual norms")
    gap_tol: float = Field(1e-3, gt=0, description=(
        "certified relative gap to first best at which a negotiation whose agents can certify stops as 'converged'"))
    gap_abs: float | None = Field(None, gt=0, description=(
        "certified absolute gap (upper - lower, money) at which it stops instead, when set: for a negotiation whose "
        "objective is not the quantity whose error matters (a pivot's, which includes payments no party's revenue "
        "cancels); None: the relative gap_tol"))
    certify: bool = Field(True, description=(
        "check the certificate where every agent can give it (False: stop on residuals, status 'stopped_on_residuals')"))
    certify_every: int = Field(10, ge=1, description=(
        "fewest rounds between certificate checks (each at a round whose residual test passes)"))
    adaptive_rho: bool = Field(True, description="residual balancing of rho")
    rho_mu: float = Field(5.0, gt=1, description="rebalance when normalised residuals differ by this factor")
    rho_tau_max: float = Field(10.0, gt=1, description="largest factor of one rho change")
    rho_interval: int = Field(5, ge=1, description="rounds between rho changes; the wait doubles after every rho_backoff changes")
    rho_backoff: int = Field(4, ge=1, description="changes of rho after which the wait between changes doubles")
    relaxation: float = Field(1.6, gt=0, lt=2, description="over-relaxation alpha: answers enter the updates as alpha x + (1 - alpha) z")
    anderson: bool = Field(False, description="safeguarded Anderson acceleration (off by default: slower with over-relaxation on the benchmarks, docs/cpp.md)")
    anderson_memory: int = Field(8, ge=1)
    anderson_reg: float = Field(1e-10, ge=0, description="Tikhonov regularisation of the least-squares step")
    anderson_safeguard: float = Field(1.0, gt=0, description="accept an accelerated point if its residual <= this times the plain one")
    record_transcript: bool = Field(False, description="keep every round's z, prices, rho, answers and residuals")
    parallel: bool = Field(True, description="query the agents of a round concurrently (threads; pays off when agents run in their own processes)")


@dataclass
class NegotiationResult:
    """Outcome of one negotiation. ``answers[i]`` and ``prices[i]`` belong to ``negotiators[i]``."""

    z: np.ndarray
    answers: list[np.ndarray]
    prices: list[np.ndarray]
    rho: float
    iterations: int
    status: Status
    primal_residual: float
    dual_residual: float
    wall_s: float
    history: list[dict[str, float]] = field(default_factory=list)
    message: str = ""
    transcript: Transcript | None = None
    #: the last certificate (:mod:`sim.negotiation.certificate`): from the negotiation's own checks, or set by
    #: callers that certify the plan they execute
    certificate: Any = None
    #: the plan the last certificate check bounded (what the certifier's plan rule chose), if any
    certified_plan: np.ndarray | None = None
    #: certificate checks made during the negotiation and their total time (part of ``wall_s``)
    checks: int = 0
    checks_s: float = 0.0

    @property
    def converged(self) -> bool:
        """Whether the negotiation stopped on a certified gap within ``gap_tol``: an agreement known to
        be near-optimal. A stop on residuals alone is an agreement (:attr:`agreed`) but not this."""
        return self.status == "converged"

    @property
    def agreed(self) -> bool:
        """Whether the answers agree within tolerance (``"converged"`` or ``"stopped_on_residuals"``)."""
        return self.status in AGREED

    @property
    def certified(self) -> bool:
        """Whether the stop was on a certified gap within ``gap_tol`` (never after a residual stop)."""
        return self.status == "converged"

    @property
    def gap_bound(self) -> float:
        """The certified bound on the plan's relative gap to first best (inf without one)."""
        return float(self.certificate.gap) if self.certificate is not None else float("inf")

    def diagnostics(self) -> dict[str, Any]:
        """Scalars for the ledger."""
        return {
            "iterations": self.iterations,
            "converged": self.converged,
            "certified": self.certified,
            "status": self.status,
            "primal_residual": self.primal_residual,
            "dual_residual": self.dual_residual,
            "rho": self.rho,
            "wall_s": self.wall_s,
            "certificate_checks": self.checks,
            **(self.certificate.as_dict() if self.certificate is not None else {}),
        }


class _Failed(Exception):
    pass


class ConsensusADMM:
    """Consensus ADMM over any number of :class:`~sim.negotiation.protocol.Negotiator` objects."""

    def __init__(self, options: ADMMOptions | None = None) -> None:
        self.options = options or ADMMOptions()

    def negotiate(
        self,
        negotiators: Sequence[Negotiator],
        shape: tuple[int, ...],
        z0: np.ndarray | None = None,
        prices0: Sequence[np.ndarray] | None = None,
        on_round: Callable[[dict[str, Any]], None] | None = None,
        certifier: Any = "auto",
        blocks: Sequence[Any] | None = None,
    ) -> NegotiationResult:
        """Run the negotiation; see the module docstring. ``z0``/``prices0`` warm-start it;
        ``on_round`` is called with each round's history entry (progress on long negotiations).
        ``certifier``: a :class:`sim.negotiation.certificate.Certifier` (or any callable ``(z, answers, prices) ->
        Certificate``); ``"auto"`` (default) builds one that bounds the consensus plan ``z`` when every
        agent can certify and ``options.certify`` is on; None stops on residuals.

        ``blocks[i]``: the part of the plan agent ``i`` holds, a numpy basic index into an array of
        shape ``shape`` (an int, a slice or a tuple of them; None, the default, the whole plan;
        :mod:`sim.negotiation.blocks`). Agent ``i`` is then asked with ``z[blocks[i]]`` and its prices in
        its block's shape and answers in that shape; ``answers[i]``, ``prices[i]`` and ``prices0[i]``
        are in that shape, ``z`` and ``z0`` global. Blocks that do not fit ``shape``, or leave a
        component no agent holds, are a ``ValueError`` before any agent is asked."""
        opt = self.options
        start = time.perf_counter()
        N = len(negotiators)
        if N == 0:
            raise ValueError("negotiate needs at least one negotiator")
        layout = BlockLayout.of(shape, N, blocks)
        if isinstance(certifier, str):
            if certifier != "auto":
                raise ValueError(f"certifier must be 'auto', None or a Certifier, got {certifier!r}")
            from sim.negotiation.certificate import Certifier  # (certificate imports best_response, not this module)

            certifier = Certifier.for_agents(negotiators, blocks=blocks) if opt.certify else None
        elif not opt.certify:
            certifier = None
        elif certifier is not None and hasattr(certifier, "blocks"):
            theirs = BlockLayout.of(shape, N, certifier.blocks)
            if theirs.block_shapes != layout.block_shapes or not all(
                    np.array_equal(a, b) for a, b in zip(theirs.flat, layout.flat, strict=True)):
                raise ValueError(f"the certifier's blocks {certifier.blocks!r} are not the negotiation's {blocks!r}")
        certificate: Any = None
        certified_plan: np.ndarray | None = None
        next_check: int | None = None
        checked_at = -1
        checks, checks_s = 0, 0.0
        n = layout.n
        m = layout.m
        given = None if blocks is None or all(b is None for b in blocks) else layout.json_blocks()
        transcript = Transcript(shape=layout.shape, n_agents=N, blocks=given) if opt.record_transcript else None
        history: list[dict[str, float]] = []
        calls = 0

        def shown(i: int, z: np.ndarray) -> np.ndarray:
            # what agent i is shown of the plan: its own block, nothing else (a copy, so that an
            # agent cannot change the coordinator's state)
            return z.reshape(layout.block_shapes[i]).copy() if layout.full else z[layout.flat[i]].reshape(layout.block_shapes[i])

        def ask(i: int, z: np.ndarray, Y: np.ndarray, rho: float) -> Any:
            try:
                return negotiators[i].best_response(shown(i, z), layout.part(Y, i), float(rho))
            except Exception as exc:  # an agent that fails is reported, not hidden
                return _Failed(f"agent {i} raised {type(exc).__name__}: {exc}")

        def query(z: np.ndarray, Y: np.ndarray, rho: float) -> np.ndarray:
            nonlocal calls
            X = layout.zeros()
            if pool is not None:
                answers = list(pool.map(lambda i: ask(i, z, Y, rho), range(N)))
            else:
                answers = [ask(i, z, Y, rho) for i in range(N)]
            for i, ans in enumerate(answers):
                if isinstance(ans, _Failed):
                    raise ans
                a = np.asarray(ans, dtype=float)
                size = layout.flat[i].size
                if a.size != size:
                    raise _Failed(f"agent {i} answered with shape {a.shape}; expected its block's shape {layout.block_shapes[i]}")
                if not np.all(np.isfinite(a)):
                    raise _Failed(f"agent {i} answered with non-finite values")
                layout.part(X, i)[...] = a.reshape(layout.block_shapes[i])
            calls += 1
            return X

        if z0 is None:
            z = np.zeros(n)
        else:
            z = np.asarray(z0, dtype=float).ravel().copy()
            if z.size != n:
                raise ValueError(f"z0 has shape {np.shape(z0)}; the plan has shape {layout.shape}")
        Y = layout.zeros() if prices0 is None else layout.stack(prices0, "prices0")
        rho = opt.rho
        X = layout.zeros()
        pool = ThreadPoolExecutor(max_workers=N) if opt.parallel and N > 1 else None
        status: Status = "iteration_cap"
        message = ""
        r = s = np.inf
        try:
            auto_rho = rho is None
            if auto_rho:
                # first round at a moderate rho; its answers give the plan's scale, and rho is then
                # set so that a typical disagreement costs about one unit of money per unit
                # (residual balancing takes over from there)
                rho = 1e-2
            rho = float(rho)
            # Anderson state on u = (z, Y/rho)
            mem_u: list[np.ndarray] = []
            mem_f: list[np.ndarray] = []
            plain_next: np.ndarray | None = None  # G(u) of the last accepted point, for the safeguard
            ref_res = np.inf
            aa_pause, aa_backoff = 0, 1
            last_rho_change = 0
            rho_wait = opt.rho_interval
            rho_changes = 0
            k = 0
            while k < opt.max_iter:
                if k > 0 and opt.time_limit is not None and time.perf_counter() - start >= opt.time_limit:
                    status = "time_limit"  # after a whole round, so the state is the one a cap would leave
                    break
                k += 1
                X = query(z, Y, rho)
                zs = layout.spread(z)  # z where each agent component is (z itself when all hold all)
                Xr = X if opt.relaxation == 1.0 else opt.relaxation * X + (1.0 - opt.relaxation) * zs
                z_new = layout.mean(Xr + Y / rho)  # each component: the mean over its holders
                zs_new = layout.spread(z_new)
                Y_new = Y + rho * (Xr - zs_new)
                r = float(np.sqrt(np.sum((X - zs_new) ** 2)))
                # dual residual: each agent's optimality condition at the new prices,
                # rho (x_i - z) - (y_i_new - y_i); with relaxation 1 this is rho sqrt(N) ||z_new - z||
                s = norm(rho * (X - zs) - (Y_new - Y))
                eps_pri = np.sqrt(m) * opt.eps_abs + opt.eps_rel * max(norm(X), layout.spread_norm(z_new))
                if certifier is None:
                    # the stop itself: eps_abs valued at the rms price, so the test is in the prices' own scale
                    eps_dual = (opt.eps_abs + opt.eps_rel) * norm(Y_new)
                else:
                    # only the trigger of certificate checks (and rho's balancing): Boyd's form, eps_abs
                    # valued at one unit of money per unit, or at the rms price where that is smaller
                    # (costs in a small unit), so that rho is balanced the right way at any cost scale
                    y_norm = norm(Y_new)
                    eps_dual = np.sqrt(m) * opt.eps_abs * min(1.0, y_norm / np.sqrt(m)) + opt.eps_rel * y_norm
                u = np.concatenate([z, (Y / rho).ravel()])
                g = np.concatenate([z_new, (Y_new / rho).ravel()])
                f = g - u
                res = norm(f)
                step = "plain"
                if transcript is not None:
                    transcript.record(k, z, [layout.part(Y, i) for i in range(N)], rho,
                                      [layout.part(X, i) for i in range(N)], r, s)
                agreed = r <= eps_pri and s <= eps_dual
                stop: Status | None = None
                if certifier is None:
                    stop = "stopped_on_residuals" if agreed else None
                elif (agreed and (next_check is None or k >= next_check)) or k == opt.max_iter:
                    # the residual test only triggers checks (the certificate is valid at any round): the
                    # last round is checked whatever the residuals say, so that a negotiation whose
                    # residuals stall above their tolerance on a near-optimal plan (degenerate answers
                    # that keep moving at no cost) is not lost to the cap
                    try:
                        args = (z_new.reshape(shape), [layout.part(X, i) for i in range(N)],
                                [layout.part(Y_new, i) for i in range(N)])
                        if getattr(certifier, "takes_answer_prices", False):
                            # the prices at which each answer is exact: y_i + rho (x_i - z) as sent
                            A = Y + rho * (X - zs)
                            targets: dict[str, Any] = ({"target": opt.gap_tol} if opt.gap_abs is None else
                                                       {"target": None, "target_abs": opt.gap_abs})
                            certificate = certifier(*args, answer_prices=[layout.part(A, i) for i in range(N)], **targets)
                        else:
                            certificate = certifier(*args)
                    except Exception as exc:  # an agent that fails at a check is reported like one failing to answer
                        raise _Failed(f"certificate check at round {k} raised {type(exc).__name__}: {exc}") from None
                    certified_plan = getattr(certifier, "last_plan", None)
                    checks += 1
                    checks_s += certificate.wall_s
                    checked_at = k
                    if within_tolerance(certificate, opt):
                        stop = "converged"
                    else:  # a fixed spacing (not timed), so that a negotiation is reproducible bit for bit
                        next_check = k + opt.certify_every
                if stop is not None:
                    z, Y = z_new, Y_new
                    status = stop
                    history.append(_hist(k, rho, r, s, eps_pri, eps_dual, "plain", certificate))
                    if on_round is not None:
                        on_round(history[-1])
                    break
                if opt.anderson:
                    # every evaluated pair (u, G(u)) informs the secant model, accepted or not
                    mem_u.append(g)
                    mem_f.append(f)
                    if len(mem_u) > opt.anderson_memory + 1:
                        mem_u.pop(0)
                        mem_f.pop(0)
                if opt.anderson and plain_next is not None and res > opt.anderson_safeguard * ref_res:
                    # the accelerated point did worse than the plain round it replaced: go back, and
                    # pause acceleration (longer after each consecutive rejection), so that a map on
                    # which it does not help costs little more than plain ADMM
                    u_next = plain_next
                    step = "rejected"
                    aa_pause = aa_backoff
                    aa_backoff = min(2 * aa_backoff, 64)
                else:
                    if plain_next is not None:
                        aa_backoff = 1  # the accelerated point was accepted
                    u_next = g
                    if opt.anderson and len(mem_u) >= 2 and aa_pause == 0:
                        u_next = _anderson(mem_u, mem_f, opt.anderson_reg)
                        step = "anderson"
                    aa_pause = max(0, aa_pause - 1)
                    ref_res = res
                plain_next = g if step == "anderson" else None
                history.append(_hist(k, rho, r, s, eps_pri, eps_dual, step,
                                     certificate if checked_at == k else None))
                if on_round is not None:
                    on_round(history[-1])
                z = u_next[:n].copy()
                Y = u_next[n:].reshape(layout.stacked_shape) * rho
                if auto_rho and k == 1:
                    rho = 1.0 / max(1.0, float(np.sqrt(np.mean(X**2))))
                    mem_u.clear()
                    mem_f.clear()
                    plain_next = None
                    continue
                # residual balancing
                if opt.adaptive_rho and k - last_rho_change >= rho_wait and step != "rejected":
                    ratio = (r / max(eps_pri, 1e-300)) / max(s / max(eps_dual, 1e-300), 1e-300)
                    if ratio > opt.rho_mu or ratio < 1.0 / opt.rho_mu:
                        factor = float(np.clip(np.sqrt(ratio), 1.0 / opt.rho_tau_max, opt.rho_tau_max))
                        rho *= factor
                        last_rho_change = k
                        rho_changes += 1
                        if rho_changes % opt.rho_backoff == 0:
                            rho_wait *= 2  # geometric back-off: rho settles, so ADMM's convergence holds
                        mem_u.clear()
                        mem_f.clear()
                        plain_next = None
            iterations = k
        except _Failed as exc:
            status = "failed"
            message = str(exc)
            iterations = len(history)
        finally:
            if pool is not None:
                pool.shutdown(wait=True)
        return NegotiationResult(
            z=z.reshape(shape),
            answers=[layout.part(X, i).copy() for i in range(N)],
            prices=[layout.part(Y, i).copy() for i in range(N)],
            rho=float(rho) if rho is not None else float("nan"),
            iterations=iterations,
            status=status,
            primal_residual=r,
            dual_residual=s,
            wall_s=time.perf_counter() - start,
            history=history,
            message=message or _message(status, iterations, opt, certificate),
            transcript=transcript,
            certificate=certificate,
            certified_plan=certified_plan,
            checks=checks,
            checks_s=checks_s,
        )


def within_tolerance(certificate: Any, opt: ADMMOptions) -> bool:
    """Whether ``certificate`` stops a negotiation with options ``opt``: its absolute gap ``upper -
    lower`` within ``gap_abs`` when that is set (any finite lower bound, also one <= 0), else its
    relative gap within ``gap_tol``."""
    if opt.gap_abs is not None:
        return bool(np.isfinite(certificate.upper) and np.isfinite(certificate.lower)
                    and certificate.upper - certificate.lower <= opt.gap_abs)
    return bool(certificate.gap <= opt.gap_tol)


def _hist(k: int, rho: float, r: float, s: float, ep: float, ed: float, step: str, certificate: Any = None) -> dict[str, Any]:
    h = {"iteration": k, "rho": rho, "primal": r, "dual": s, "eps_pri": float(ep), "eps_dual": float(ed), "step": step}
    if certificate is not None:
        h["certified_gap"] = float(certificate.gap)
    return h


def _message(status: str, iterations: int, opt: ADMMOptions, certificate: Any) -> str:
    if status == "converged":
        return ""
    if status == "stopped_on_residuals":
        return ("stopped on residuals: not certified (some agent cannot bound its cost), "
                "so the plan's gap to first best is not known")
    text = f"not converged after {iterations} rounds" + (f" (time limit {opt.time_limit:g} s)" if status == "time_limit" else "")
    if certificate is not None and opt.gap_abs is not None:
        text += f"; last certified absolute gap {certificate.upper - certificate.lower:.4g} (gap_abs {opt.gap_abs:g})"
    elif certificate is not None:
        text += f"; last certified gap {certificate.gap:.3g} (gap_tol {opt.gap_tol:g})"
    return text


def _anderson(mem_u: list[np.ndarray], mem_f: list[np.ndarray], reg: float) -> np.ndarray:
    """Type-II Anderson step from the stored map values ``g_j = G(u_j)`` and residuals ``f_j``."""
    G = np.stack(mem_u, axis=1)  # [d, m+1]
    F = np.stack(mem_f, axis=1)
    dG = np.diff(G, axis=1)
    dF = np.diff(F, axis=1)
    f = F[:, -1]
    M = dF.T @ dF
    M += (reg * max(1.0, float(np.trace(M)))) * np.eye(M.shape[0])
    try:
        gamma = np.linalg.solve(M, dF.T @ f)
    except np.linalg.LinAlgError:
        return G[:, -1]
    return G[:, -1] - dG @ gamma
