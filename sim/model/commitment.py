"""Mutual commitment: frozen weeks with flexibility bands (a rolling-horizon quantity-flexibility contract).

A mechanism run with ``commitment: {weeks: k, band: b}`` turns the first ``k`` weeks of every plan it
agrees at week ``t`` into commitments. Week ``tau``'s **reference quantity** ``c[v, tau, f, k]`` is the
plan's quantity the first time ``tau`` enters the frozen zone (at ``t = tau - k + 1``, or at the first
committed decision after that); it is never moved afterwards (no drift). Every later plan, at
``t + 1, ..., tau``, whoever makes it (the mechanism, or the retailer alone in a JIT week), must keep
``x[v, tau, f, k]`` within ``[(1 - b) c, (1 + b) c]``. The retailer therefore orders, takes and pays for
at least ``(1 - b) c`` whatever demand does; at execution the vendor ships at least ``(1 - b) c`` of
week ``tau`` as far as its realised capacity allows (:mod:`sim.execution`). ``k = 1, b = 0`` is the
weekly commitment every mechanism had before: only the PO binds, and nothing binds a later plan.

The record is public: both parties agreed it, so each agent sees the week's bounds in its state and
every plan it computes (its preferred plan, its continuations after a PO, its negotiation answers, a
central solve) stays inside them.

What a user may do: :func:`commitment_settings` validates a policy's ``commitment`` parameter (a bad
one is a :class:`~sim.model.errors.FlosimError` naming the field and value); :class:`PlanBounds` is
the box a planner gets (lower/upper bounds on plan entries, ``0``/``inf`` where free);
:class:`CommitmentRecord` is what the world holds (reference quantities by absolute week) and turns
into a week's :class:`PlanBounds` and into the vendors' execution floors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, ValidationError

from sim.model.errors import FlosimError

#: A plan entry may sit this far outside its band before a decision counts as breaking it (LP rounding).
BAND_TOLERANCE = 1e-6


class CommitmentSettings(BaseModel):
    """``weeks``: how many weeks of an agreed plan bind (``k >= 1``, at most the planning horizon);
    ``band``: the share by which a later re-plan may move a committed quantity (``0 <= b <= 1``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    weeks: StrictInt = Field(1, ge=1, description="k: weeks of an agreed plan that bind")
    band: StrictFloat | StrictInt = Field(0.0, ge=0, le=1, description="b: flexibility band, a share of the committed units")

    @property
    def weekly(self) -> bool:
        """Whether this is the weekly commitment of a mechanism without the option (``k = 1``): no
        later plan is ever bound (the band then matters nowhere)."""
        return self.weeks == 1


def commitment_settings(value: Any, where: str, horizon: int | None = None) -> CommitmentSettings | None:
    """A policy's ``commitment`` parameter as :class:`CommitmentSettings` (None stays None: no option).
    ``where``: the dotted field, e.g. ``policies.cpp-vcg.commitment``, named in every error;
    ``horizon``: the scenario's planning horizon, which ``weeks`` may not exceed (checked when known)."""
    if value is None:
        return None
    if isinstance(value, CommitmentSettings):
        settings = value
    else:
        if not isinstance(value, dict):
            raise FlosimError(f"{where} = {value!r}: a mapping {{weeks: k, band: b}} is needed")
        try:
            settings = CommitmentSettings(**{str(k): v for k, v in value.items()})
        except ValidationError as exc:
            problems = []
            for e in exc.errors():
                name = ".".join(str(p) for p in e["loc"][:1])
                what = "is not a setting (settings: weeks, band)" if e["type"] == "extra_forbidden" else e["msg"]
                shown = "" if e["type"] == "extra_forbidden" else f" = {e['input']!r}"
                problems.append(f"{where}.{name}{shown}: {what}")
            raise FlosimError("; ".join(problems)) from None
    if horizon is not None and settings.weeks > horizon:
        raise FlosimError(f"{where}.weeks = {settings.weeks}: must be at most the planning horizon ({horizon} weeks)")
    return settings


@dataclass(frozen=True)
class PlanBounds:
    """Lower and upper bounds on plan entries (``lower = 0``, ``upper = inf`` where free), shaped like the
    plan they bound: a whole plan ``[V, H, F, K]`` or one vendor's block ``[H, F, K]`` (the week axis is
    the third from last)."""

    lower: np.ndarray
    upper: np.ndarray

    @staticmethod
    def free(shape: tuple[int, ...]) -> "PlanBounds":
        return PlanBounds(np.zeros(shape), np.full(shape, np.inf))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.lower.shape)

    @property
    def active(self) -> bool:
        """Whether any entry is bounded."""
        return bool(np.any(self.lower > 0) or np.any(np.isfinite(self.upper)))

    def block(self, v: int) -> "PlanBounds":
        """Vendor ``v``'s block of a whole plan's bounds."""
        return PlanBounds(self.lower[v], self.upper[v])

    def weeks(self, h: int) -> "PlanBounds":
        """The bounds of the first ``h`` weeks (a plan on a shorter horizon)."""
        return PlanBounds(self.lower[..., :h, :, :], self.upper[..., :h, :, :])

    def clip(self, plan: np.ndarray) -> np.ndarray:
        """``plan`` moved into the box, entry by entry."""
        return np.clip(np.asarray(plan, dtype=float), self.lower, self.upper)

    def violation(self, plan: np.ndarray) -> float:
        """The largest distance of an entry of ``plan`` outside the box (0 inside)."""
        plan = np.asarray(plan, dtype=float)
        return float(max(np.max(self.lower - plan, initial=0.0), np.max(plan - self.upper, initial=0.0)))

    def contains(self, plan: np.ndarray, tol: float = BAND_TOLERANCE) -> bool:
        """Whether ``plan`` is in the box up to ``tol`` (absolute, plus ``tol`` relative to the bound)."""
        plan = np.asarray(plan, dtype=float)
        slack = tol * (1.0 + np.where(np.isfinite(self.upper), self.upper, self.lower))
        return bool(np.all(plan >= self.lower - slack) and np.all(plan <= np.where(np.isfinite(self.upper), self.upper + slack, np.inf)))


def agreed_box(bounds: PlanBounds | None, plan: np.ndarray, settings: CommitmentSettings | None) -> PlanBounds | None:
    """The box on a plan made this week once ``plan`` ``[V, H, F, K]`` is agreed under ``settings``:
    ``bounds`` (the commitments already held, week ``j`` of the plan being absolute week ``t + j``) with
    the weeks ``1 .. k - 1`` that held no commitment yet bound to ``plan``'s band. What the agreement
    leaves the continuation (the round audit values a decision with it); None when nothing is bound."""
    plan = np.asarray(plan, dtype=float)
    if settings is None or settings.weeks <= 1:
        return bounds
    out = PlanBounds.free(plan.shape) if bounds is None else PlanBounds(bounds.lower.copy(), bounds.upper.copy())
    for j in range(1, min(settings.weeks, plan.shape[1])):
        if np.all(np.isfinite(out.upper[:, j])):
            continue  # anchored on an earlier agreement
        c = np.maximum(plan[:, j], 0.0)
        out.lower[:, j] = (1.0 - settings.band) * c
        out.upper[:, j] = (1.0 + settings.band) * c
    return out


@dataclass
class CommitmentRecord:
    """The commitments the world holds: each committed week's reference quantities ``[V, F, K]`` and
    the band agreed with them, by absolute week. Public: both parties agreed it."""

    shape: tuple[int, int, int, int]  # the plan's (V, H, F, K)
    reference: dict[int, np.ndarray] = field(default_factory=dict)
    band: dict[int, float] = field(default_factory=dict)

    def bounds(self, week: int) -> PlanBounds | None:
        """The box on a plan made at ``week`` (its week ``j`` is absolute week ``week + j``); None when
        no committed week lies in the plan's horizon (the plan is free)."""
        V, H, F, K = self.shape
        held = [tau for tau in self.reference if week <= tau < week + H]
        if not held:
            return None
        out = PlanBounds.free(self.shape)
        for tau in held:
            c, b = self.reference[tau], self.band[tau]
            out.lower[:, tau - week] = (1.0 - b) * c
            out.upper[:, tau - week] = (1.0 + b) * c
        return out

    def commit(self, week: int, plan: np.ndarray, settings: CommitmentSettings) -> float:
        """Record the commitments of a plan agreed at ``week`` under ``settings``: weeks
        ``week .. week + k - 1`` that hold no reference yet get the plan's quantities. Returns the units
        newly committed beyond the binding week (``committed_units``)."""
        plan = np.asarray(plan, dtype=float)
        beyond = 0.0
        for j in range(min(settings.weeks, plan.shape[1])):
            tau = week + j
            if tau in self.reference:
                continue  # anchored on its first commitment
            self.reference[tau] = np.maximum(plan[:, j], 0.0).copy()
            self.band[tau] = float(settings.band)
            if j > 0:
                beyond += float(self.reference[tau].sum())
        return beyond

    def floor(self, week: int) -> np.ndarray | None:
        """What the vendors must ship at least in ``week`` (``[V, F, K]``, ``(1 - b) c``), or None."""
        if week not in self.reference:
            return None
        return (1.0 - self.band[week]) * self.reference[week]
