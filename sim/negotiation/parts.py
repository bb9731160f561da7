"""One agent's negotiator made of parts: an agent whose cost falls apart answers part by part.

The retailer's cost separates by product (no constraint links two products), so its best response
is many small QPs side by side. :class:`PartsNegotiator` holds a few negotiators, each over its own
components of the plan (a group of the LP's pieces, :mod:`sim.model.separable`), and answers the
protocol by asking each part for its components and putting the answers together. Each part is a
separate OSQP problem that stops on its own tolerance, so the answers are those of ``k`` agents
side by side, not of one: they depend on how many parts there are, never on where the parts run.

Why parts: OSQP holds the GIL, and the retailer's answer is the slowest of a round while the
negotiation moves far (on the ``pilot`` benchmark 100 capped OSQP iterations of the retailer against
half that time for the vendor). With its parts in worker processes
(:func:`sim.negotiation.best_response.process_negotiator`) the two cores share the retailer's work
with the vendor's.

What a user may do: build one with :func:`sim.negotiation.best_response.negotiator_for` (in this
process) or :func:`~sim.negotiation.best_response.process_negotiator` (each part in a worker); set
the number of parts with the answer option ``parts`` (``BestResponseOptions``; 1 keeps one OSQP
problem). The certificate's numbers add up over the parts: ``own_cost`` and ``dual_value`` are sums,
``confirm`` puts the parts' confirmed components together.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, Callable, Sequence

import numpy as np

from sim.negotiation.protocol import can_certify


class PartsNegotiator:
    """A negotiator over plan shape ``shape`` made of ``parts``: part ``i`` answers for the flat
    plan components ``index[i]`` (the parts' components cover the plan once). ``parallel``: ask the
    parts of a query at once, from threads (for parts in worker processes, whose threads wait on
    pipes); otherwise one after the other. Close it (or use it as a context manager) to close parts
    that need it."""

    def __init__(self, parts: Sequence[Any], index: Sequence[np.ndarray], shape: tuple[int, ...],
                 parallel: bool = False) -> None:
        if len(parts) != len(index) or not parts:
            raise ValueError("PartsNegotiator: one index per part, and at least one part")
        self.shape = tuple(int(v) for v in shape)
        self._parts = list(parts)
        self._index = [np.asarray(i, dtype=np.int64).ravel() for i in index]
        size = int(np.prod(self.shape))
        covered = np.concatenate(self._index)
        if covered.size != size or not np.array_equal(np.sort(covered), np.arange(size)):
            raise ValueError("PartsNegotiator: the parts' components must cover the plan exactly once")
        self._pool = ThreadPoolExecutor(len(parts)) if parallel and len(parts) > 1 else None

    @property
    def parts(self) -> int:
        """How many parts answer."""
        return len(self._parts)

    def _each(self, ask: Callable[[int], Any]) -> list[Any]:
        """``ask(i)`` of every part, in part order. From threads, every part's call ends before an
        error (the first part's in part order) is raised: a caller that closes the negotiator on
        that error never closes a part in the middle of a call."""
        if self._pool is None:
            return [ask(i) for i in range(len(self._parts))]
        futures = [self._pool.submit(ask, i) for i in range(len(self._parts))]
        wait(futures)
        return [f.result() for f in futures]

    def _joined(self, answers: list[Any]) -> np.ndarray:
        out = np.empty(int(np.prod(self.shape)))
        for idx, answer in zip(self._index, answers):
            out[idx] = np.ravel(answer)
        return out.reshape(self.shape)

    def best_response(self, z: np.ndarray, prices: np.ndarray, rho: Any) -> np.ndarray:
        """Each part's best response on its components, put together."""
        z = np.asarray(z, dtype=float).ravel()
        y = np.asarray(prices, dtype=float).ravel()
        r = np.broadcast_to(np.asarray(rho, dtype=float), self.shape).ravel() if np.ndim(rho) else rho
        return self._joined(self._each(lambda i: self._parts[i].best_response(
            z[self._index[i]], y[self._index[i]], r[self._index[i]] if np.ndim(r) else r)))

    def confirm(self, x: np.ndarray) -> np.ndarray:
        """Each part's confirmed components (the parts share no constraint, so together they are the
        most of ``x`` the agent can carry out)."""
        flat = np.asarray(x, dtype=float).ravel()
        return self._joined(self._each(lambda i: self._parts[i].confirm(flat[self._index[i]])))

    def own_cost(self, x: np.ndarray) -> float:
        """The sum of the parts' costs (``inf`` if one cannot carry out its components)."""
        flat = np.asarray(x, dtype=float).ravel()
        return float(sum(self._each(lambda i: float(self._parts[i].own_cost(flat[self._index[i]])))))

    def dual_value(self, prices: np.ndarray) -> float:
        """The sum of the parts' dual values (``-inf`` if one is unbounded below)."""
        y = np.asarray(prices, dtype=float).ravel()
        return float(sum(self._each(lambda i: float(self._parts[i].dual_value(y[self._index[i]])))))

    @property
    def can_certify(self) -> bool:
        """Whether every part offers the certificate's two numbers."""
        return all(can_certify(p) for p in self._parts)

    @property
    def stats(self) -> dict[str, Any]:
        """The parts' answer statistics put together, for parts that keep them: queries of the
        negotiator, OSQP iterations of all parts, answers in which some part stopped at a cap
        (``inexact``: at least the most of any one part) and whether every part's last answer was
        solved."""
        kept = [getattr(p, "stats", None) for p in self._parts]
        if any(s is None for s in kept):
            return {}
        return {"queries": max(s["queries"] for s in kept),
                "osqp_iterations": sum(s["osqp_iterations"] for s in kept),
                "inexact": max(s["inexact"] for s in kept),
                "polished": sum(s["polished"] for s in kept),
                "last_exact": None if any(s["last_exact"] is None for s in kept) else all(s["last_exact"] for s in kept)}

    def close(self) -> None:
        """Close the parts that have ``close`` (worker processes) and the query threads; idempotent.
        Every part is closed even if one fails to (the first such error is raised afterwards)."""
        error: BaseException | None = None
        for part in self._parts:
            close = getattr(part, "close", None)
            if callable(close):
                try:
                    close()
                except BaseException as exc:
                    error = error or exc
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if error is not None:
            raise error

    def __enter__(self) -> "PartsNegotiator":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
