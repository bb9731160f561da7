"""A negotiator in parts (sim.negotiation.parts): the retailer's LP falls apart by product, and its
parts answer for their own plan components. The certificate's numbers add up to the whole LP's, the
answers solve the whole query, and parts in worker processes answer exactly as parts in this one."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import one_vendor_round
from sim.model import separable
from sim.negotiation.best_response import (BestResponseOptions, LPBestResponse, ProcessNegotiator, negotiator_for,
                                           process_negotiator, workers_for)
from sim.negotiation.parts import PartsNegotiator

SOLVED = BestResponseOptions(early_max_iter=20000, abs_tol=1e-6, rel_tol=1e-8, adaptive=0.0)


def _split_always(monkeypatch) -> None:
    """Let the small test LPs fall apart as a large one does (in this process only)."""
    monkeypatch.setattr(separable, "SPLIT_MIN_VARIABLES", 0)


def test_a_separable_lp_is_answered_in_parts_whose_numbers_add_up(default_scenario, monkeypatch) -> None:
    _split_always(monkeypatch)
    retailer, _ = one_vendor_round(default_scenario)
    parts = negotiator_for(retailer, SOLVED)
    whole = negotiator_for(retailer, SOLVED.model_copy(update={"parts": 1}))
    assert isinstance(parts, PartsNegotiator) and parts.parts == 2 and isinstance(whole, LPBestResponse)
    assert parts.shape == whole.shape and parts.can_certify
    rng = np.random.default_rng(4)
    prices = rng.normal(2.0, 1.0, whole.shape)
    assert parts.dual_value(prices) == pytest.approx(whole.dual_value(prices), rel=1e-9)
    z = rng.uniform(0, 40, whole.shape)
    for rho in (0.05, 0.5):
        x_parts, x_whole = parts.best_response(z, prices, rho), whole.best_response(z, prices, rho)
        # the query's QP is rho-strongly convex in x, and its parts are independent: one answer
        np.testing.assert_allclose(x_parts, x_whole, atol=1e-3 * max(1.0, float(np.abs(x_whole).max())))
    plan = whole.confirm(x_whole)
    np.testing.assert_allclose(parts.confirm(x_whole), plan, atol=1e-6)
    assert parts.own_cost(plan) == pytest.approx(whole.own_cost(plan), rel=1e-9)
    stats = parts.stats
    assert stats["queries"] == 2 and stats["osqp_iterations"] > 0 and stats["last_exact"] is True


def test_parts_must_cover_the_plan_once() -> None:
    with pytest.raises(ValueError, match="cover the plan exactly once"):
        PartsNegotiator([object(), object()], [np.array([0, 1]), np.array([1, 2])], (4,))
    with pytest.raises(ValueError, match="one index per part"):
        PartsNegotiator([object()], [np.array([0]), np.array([1])], (2,))


def test_an_lp_in_one_piece_or_one_part_is_one_negotiator(default_scenario, monkeypatch) -> None:
    _split_always(monkeypatch)
    retailer, vendor = one_vendor_round(default_scenario)
    assert isinstance(negotiator_for(vendor), LPBestResponse)  # capacity rows link its products
    assert isinstance(negotiator_for(retailer, BestResponseOptions(parts=1)), LPBestResponse)
    assert workers_for(retailer) == 2 and workers_for(vendor) == 1
    assert workers_for(retailer, BestResponseOptions(parts=1)) == 1


def test_parts_in_workers_answer_as_parts_here() -> None:
    """Executors agree: the retailer's parts in worker processes give this process's answers bit for
    bit, query after query (a benchmark network large enough to fall apart in the workers too)."""
    from experiments.benchmarks import benchmark_scenario, planning_round

    retailer, vendors = planning_round(benchmark_scenario("100x5x5x2"))
    here = negotiator_for(retailer)
    assert isinstance(here, PartsNegotiator) and here.parts == 2
    rng = np.random.default_rng(7)
    with process_negotiator(retailer) as there:
        assert isinstance(there, PartsNegotiator) and there.parts == 2 and there.can_certify
        for _ in range(3):
            z, y = rng.uniform(0, 30, here.shape), rng.normal(0, 1.0, here.shape)
            np.testing.assert_array_equal(there.best_response(z, y, 0.1), here.best_response(z, y, 0.1))
        assert there.dual_value(y) == here.dual_value(y)
    (vendor,) = vendors.values()
    with process_negotiator(vendor) as one:
        assert isinstance(one, ProcessNegotiator)


def test_an_lp_that_does_not_fall_apart_keeps_one_worker(small_scenario) -> None:
    """Below the split's size the retailer's LP is one part: one worker answers, the other stops."""
    retailer, _ = one_vendor_round(small_scenario)
    neg = process_negotiator(retailer)
    try:
        assert isinstance(neg, ProcessNegotiator) and neg.plan_index.size == int(np.prod(retailer.plan_shape))
        z, y = np.full(retailer.plan_shape, 20.0), np.zeros(retailer.plan_shape)
        np.testing.assert_array_equal(neg.best_response(z, y, 0.3), negotiator_for(retailer).best_response(z, y, 0.3))
    finally:
        neg.close()


class _Part:
    """A stand-in part over one component: answers after ``delay`` seconds, or raises."""

    def __init__(self, delay: float = 0.0, fail: bool = False, fail_close: bool = False) -> None:
        self.delay, self.fail, self.fail_close = delay, fail, fail_close
        self.answered = self.closed = False

    def best_response(self, z, prices, rho):
        import time

        time.sleep(self.delay)
        if self.fail:
            raise RuntimeError("this part failed")
        self.answered = True
        return np.asarray(z) + 1.0

    def close(self) -> None:
        self.closed = True
        if self.fail_close:
            raise OSError("could not close")


def test_a_failing_part_is_reported_once_the_other_parts_are_done() -> None:
    """An error of one part reaches the caller only after the other parts of the query have answered,
    so a negotiator closed on that error never closes a part in the middle of a query (a worker's
    pipe written by two threads); the error is the first failing part's."""
    slow = _Part(delay=0.3)
    neg = PartsNegotiator([_Part(fail=True), slow], [np.array([0]), np.array([1])], (2,), parallel=True)
    with pytest.raises(RuntimeError, match="this part failed"):
        neg.best_response(np.zeros(2), np.zeros(2), 1.0)
    assert slow.answered
    neg.close()


def test_closing_closes_every_part_even_if_one_fails_to() -> None:
    parts = [_Part(fail_close=True), _Part()]
    neg = PartsNegotiator(parts, [np.array([0]), np.array([1])], (2,), parallel=True)
    np.testing.assert_array_equal(neg.best_response(np.zeros(2), np.zeros(2), 1.0), [1.0, 1.0])
    with pytest.raises(OSError, match="could not close"):
        neg.close()
    assert all(p.closed for p in parts) and neg._pool is None


def _recorded_workers(monkeypatch) -> list:
    """Every ProcessNegotiator that process_negotiator makes, kept to look at afterwards."""
    from sim.negotiation import best_response as br

    made: list = []

    class Recorded(br.ProcessNegotiator):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(br, "ProcessNegotiator", Recorded)
    return made


def test_a_part_that_fails_to_set_up_stops_every_worker(small_scenario, monkeypatch) -> None:
    """A bad first week fails in the workers' set-up: the error names it, and no worker is left running."""
    from sim.negotiation import best_response as br
    from sim.negotiation.best_response import BestResponseError

    made = _recorded_workers(monkeypatch)
    retailer, _ = one_vendor_round(small_scenario)
    with pytest.raises(BestResponseError, match="failed to start"):
        process_negotiator(retailer, first_week=np.zeros(7))
    assert len(made) == 2 and not any(w.alive for w in made)
    # (alive is False once closed: the processes themselves have stopped, none waits idle)
    assert all(w._proc.poll() is not None for w in made) and not any(w._proc in br._IDLE for w in made)


def test_a_worker_that_cannot_start_stops_the_ones_started(small_scenario, monkeypatch) -> None:
    from sim.negotiation import best_response as br

    made = _recorded_workers(monkeypatch)
    spawned: list = []
    real = br._spawn_worker

    def spawn_once(*args, **kwargs):
        if spawned:
            raise OSError("no more processes")
        spawned.append(real(*args, **kwargs))
        return spawned[-1]

    monkeypatch.setattr(br, "_take_worker", lambda: None)
    monkeypatch.setattr(br, "_spawn_worker", spawn_once)
    retailer, _ = one_vendor_round(small_scenario)
    with pytest.raises(OSError, match="no more processes"):
        process_negotiator(retailer)
    assert len(made) == 1 and not made[0].alive
    assert made[0]._proc.poll() is not None and made[0]._proc not in br._IDLE


class _TwoProducts:
    """An agent whose LP falls apart into two products and carries a constant cost (5.0)."""

    plan_shape = (2, 2)  # [product, week]

    def add_block(self, b, x) -> None:
        stock = b.add_var((2, 2), ub=6.0)
        b.add_cost(stock, np.array([[1.0, 2.0], [0.5, 1.5]]), ("t", "stock", 0))
        b.add_cost(x, np.array([[3.0, 1.0], [2.0, 4.0]]), ("t", "x", 0))
        rows = b.new_rows("eq", (2, 2), np.array([[4.0, 3.0], [2.0, 5.0]]))  # x + stock = demand
        b.add_terms("eq", rows, x, 1.0)
        b.add_terms("eq", rows, stock, 1.0)
        b.add_constant(5.0, ("t", "fixed", 0))


def test_a_constant_cost_counts_once_over_the_parts(monkeypatch) -> None:
    _split_always(monkeypatch)
    agent = _TwoProducts()
    parts, whole = negotiator_for(agent, SOLVED), negotiator_for(agent, SOLVED.model_copy(update={"parts": 1}))
    assert isinstance(parts, PartsNegotiator) and parts.parts == 2 and isinstance(whole, LPBestResponse)
    plan = np.array([[1.0, 2.0], [0.0, 3.0]])
    # stock = demand - x: 3, 1, 2, 2 at 1, 2, 0.5, 1.5 (9); x: 1, 2, 0, 3 at 3, 1, 2, 4 (17); the constant 5
    expected = (3 * 1 + 1 * 2 + 2 * 0.5 + 2 * 1.5) + (1 * 3 + 2 * 1 + 0 * 2 + 3 * 4) + 5
    assert whole.own_cost(plan) == pytest.approx(expected)
    assert parts.own_cost(plan) == pytest.approx(expected)
    prices = np.array([[-5.0, 0.0], [0.0, -1.0]])
    assert parts.dual_value(prices) == pytest.approx(whole.dual_value(prices))
