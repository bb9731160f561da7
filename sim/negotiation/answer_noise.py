"""Noisy answers: an agent that perturbs its own cost before it answers a CPP query.

A CPP answer ``x`` to a query ``(z, y, rho)`` reveals a subgradient of the answering agent's cost at
``x`` (``-y - rho (x - z)``). An agent that wants to reveal less answers for a perturbed cost
``C(x) + b·x`` instead, with ``b`` Laplace noise of scale ``sensitivity / eps`` per plan component:
*objective perturbation* (Chaudhuri, Monteleoni & Sarwate 2011; for ADMM, Zhang & Zhu 2017 and, for
agents with constraints, Ryu & Kim 2023). Its answers stay feasible (they are still best responses
over the agent's own constraints), and the coordinator needs no change: :class:`NoisyNegotiator`
wraps any :class:`~sim.negotiation.protocol.Negotiator` and passes it the query with prices ``y + b``.

What the noise protects, stated as the Laplace mechanism does: two cost models that differ by a
term ``d·x`` linear in the plan and the same in every week (``d`` one number per FC and product, money
per unit), with ``||d||_1 <= sensitivity``, give answer sequences whose densities differ by at most a
factor ``exp(eps)`` per draw of ``b`` (the answers of ``C + d·x`` with noise ``b`` are those of ``C``
with noise ``b + d``). A lane rate or a production cost is covered only where a change of it is such
a term, moving the marginal cost of every unit by the same amount whatever the plan (a lane that is
its FC's only supply, an origin that is the only source): a change ``delta`` in such a lane's rate
is ``d = delta * vol_k`` for each product ``k``, of L1 norm ``delta * sum_k vol_k``. Changes that
move a kink (spare truck volume, capacities, a spare rate alone) are not covered: a perturbed cost
keeps its kinks in place. Nor is what the vendor's true constraints and costs decide outside the
answers: the shipments of an executed plan and of a week that falls back to JIT.

``scope`` says how often ``b`` is drawn: ``run`` (default) once per simulated run, one value per
(FC, product) for every week of the horizon (the vendor negotiates as if its cost model were
``C + b`` throughout; every transcript is then post-processing of one draw, so ``eps`` is the
whole run's budget); ``week`` once per negotiation (each week spends ``eps``; budgets add over
weeks); ``answer`` afresh for every answer and every plan component (week, FC, product), as in
DP-ADMM (against a change the same in every week, as above, each answer spends ``H * eps``, ``H`` the
weeks of the plan, since the change meets an independent draw in each of them; a negotiation with
noise that does not shrink need not converge).

``eps = inf`` (the default) adds nothing: answers are the wrapped negotiator's own, bit for bit.

What a user may do: ``NoiseOptions(eps=1.0)``; ``noise = AnswerNoise(options, shape, rng)`` once per
run; each negotiation ``NoisyNegotiator(inner, noise.for_negotiation())``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sim.model.validation import number_from_text


class NoiseOptions(BaseModel):
    """How an agent perturbs its answers; ``eps = inf`` (default) means no noise."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    eps: float = Field(math.inf, gt=0, description="privacy budget per draw of the noise (inf: no noise)")
    sensitivity: float = Field(1.0, gt=0, description="L1 change of the marginal costs (money per unit) the budget protects")
    scope: Literal["run", "week", "answer"] = Field("run", description="draw the noise once per run, per negotiation or per answer")

    @field_validator("eps", "sensitivity", mode="before")
    @classmethod
    def _numbers(cls, value: Any, info: Any) -> Any:
        value = number_from_text(value)
        if isinstance(value, float) and math.isnan(value):
            raise ValueError(f"{info.field_name} must be a number, got nan")
        if info.field_name == "sensitivity" and isinstance(value, (int, float)) and not math.isfinite(value):
            raise ValueError("sensitivity must be finite")
        return value

    @model_validator(mode="after")
    def _finite_scale(self) -> "NoiseOptions":
        # a budget so small that sensitivity / eps overflows would draw infinite prices: every
        # negotiation would fail and the run would quietly fall back to JIT
        if self.active and not math.isfinite(self.sensitivity / self.eps):
            raise ValueError(f"eps = {self.eps:g} with sensitivity = {self.sensitivity:g}: the noise scale "
                             "sensitivity / eps is not a finite number; choose a larger eps")
        return self

    @property
    def active(self) -> bool:
        return math.isfinite(self.eps)

    @property
    def scale(self) -> float:
        """Laplace scale ``sensitivity / eps`` (0 without noise)."""
        return self.sensitivity / self.eps if self.active else 0.0


class AnswerNoise:
    """The noise of one agent over a run: holds its generator and, for ``scope: run``, its one draw."""

    def __init__(self, options: NoiseOptions, shape: tuple[int, ...], rng: np.random.Generator | None) -> None:
        if options.active and rng is None:
            raise ValueError("noisy answers need a random generator")
        self.options, self.shape, self.rng = options, tuple(shape), rng
        self._run_draw: np.ndarray | None = None

    def _per_fc_product(self) -> np.ndarray:
        assert self.rng is not None
        draw = self.rng.laplace(0.0, self.options.scale, size=self.shape[1:])
        return np.broadcast_to(draw, self.shape).copy()

    def for_negotiation(self) -> Callable[[], np.ndarray] | None:
        """The noise of the next negotiation: a function giving ``b`` for each answer, or None (no noise)."""
        o = self.options
        if not o.active:
            return None
        if o.scope == "answer":
            assert self.rng is not None
            return lambda: self.rng.laplace(0.0, o.scale, size=self.shape)  # type: ignore[union-attr]
        if o.scope == "run":
            if self._run_draw is None:
                self._run_draw = self._per_fc_product()
            fixed = self._run_draw
        else:
            fixed = self._per_fc_product()
        return FixedDraw(fixed)


class FixedDraw:
    """The same noise ``b`` at every answer of a negotiation (scopes ``run`` and ``week``): the agent
    answers for one perturbed cost ``C(x) + b·x`` throughout, which it can also certify."""

    def __init__(self, b: np.ndarray) -> None:
        self.b = b

    def __call__(self) -> np.ndarray:
        return self.b


class NoisyNegotiator:
    """A negotiator that answers for its cost plus ``b·x`` (``b`` from ``draw`` at each answer).

    ``best_response`` answers for the perturbed cost; ``confirm``, ``close`` and anything else are the
    wrapped negotiator's own, so plans are still confirmed against the agent's true constraints.

    The certificate's two numbers (:mod:`sim.negotiation.certificate`) are those of the cost the agent answers
    for: with one draw for the whole negotiation (:class:`FixedDraw`, scopes ``run`` and ``week``)
    ``own_cost(x) = C(x) + b·x`` and ``dual_value(y) = min_x C(x) + (y + b)·x``, so a negotiation stops
    as ``converged`` when its plan is certified near-optimal for the perturbed cost it negotiated on,
    and these numbers, like the answers, are post-processing of that one perturbed cost (the same
    privacy guarantee; the agent's true cost is never stated). With a fresh draw per answer (scope
    ``answer``) there is no one cost to certify: ``can_certify`` is False and the negotiation stops on
    residuals (``stopped_on_residuals``)."""

    def __init__(self, inner: Any, draw: Callable[[], np.ndarray] | None) -> None:
        self._inner = inner
        self._draw = draw

    def best_response(self, z: np.ndarray, prices: np.ndarray, rho: Any) -> np.ndarray:
        if self._draw is None:
            return self._inner.best_response(z, prices, rho)
        b = self._draw()
        return self._inner.best_response(z, np.asarray(prices, dtype=float) + b.reshape(np.shape(prices)), rho)

    @property
    def can_certify(self) -> bool:
        """Whether the answers' cost can be certified: the inner negotiator can, and the noise is one
        draw for the whole negotiation (or there is none)."""
        from sim.negotiation.certificate import can_certify

        return (self._draw is None or isinstance(self._draw, FixedDraw)) and can_certify(self._inner)

    def _fixed(self) -> np.ndarray | None:
        if self._draw is None:
            return None
        if not isinstance(self._draw, FixedDraw):
            raise AttributeError("a negotiator with fresh noise at every answer answers for no one cost, so it "
                                 "cannot certify (no own_cost / dual_value)")
        return self._draw.b

    def own_cost(self, x: np.ndarray) -> float:
        """The cost the agent answers for, ``C(x) + b·x``."""
        b = self._fixed()
        cost = float(self._inner.own_cost(x))
        return cost if b is None else cost + float(np.sum(b.reshape(np.shape(x)) * np.asarray(x, dtype=float)))

    def dual_value(self, prices: np.ndarray) -> float:
        """``min_x C(x) + b·x + prices·x``: the inner agent's dual value at ``prices + b``."""
        b = self._fixed()
        if b is None:
            return float(self._inner.dual_value(prices))
        return float(self._inner.dual_value(np.asarray(prices, dtype=float) + b.reshape(np.shape(prices))))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
