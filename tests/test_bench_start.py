"""What the pilot benchmark's speed-ups rest on: workers started ahead answer as fresh ones do, a
check's plan made during the dual LPs gives the same certificate, the retailer's warm own cost is its
cold one, and the coordinator's norms are numpy's."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import one_vendor_round
from sim.negotiation import best_response as br
from sim.negotiation.best_response import ProcessNegotiator, negotiator_for, prestart_workers, stop_idle_workers
from sim.negotiation.blocks import norm
from sim.negotiation.certificate import certify


def test_workers_started_ahead_are_taken_and_answer_like_fresh_ones(small_scenario) -> None:
    retailer, vendor = one_vendor_round(small_scenario)
    z, y = np.full(retailer.plan_shape, 20.0), np.zeros(retailer.plan_shape)
    stop_idle_workers()  # (workers given back by earlier tests' negotiations)
    try:
        assert prestart_workers(2, preload=("sim.parties.retailer",)) == 2
        ahead = ProcessNegotiator(retailer)
        assert len(br._IDLE) == 1  # it took one of the two
        with ahead, ProcessNegotiator(vendor) as other:
            assert not br._IDLE
            np.testing.assert_array_equal(ahead.best_response(z, y, 0.3), negotiator_for(retailer).best_response(z, y, 0.3))
            assert ahead.can_certify and other.can_certify
        assert not ahead.alive and len(br._IDLE) == 2  # both given back after the negotiation
    finally:
        stop_idle_workers()
    assert not br._IDLE


def test_idle_workers_stop_and_a_bad_preload_is_an_error() -> None:
    stop_idle_workers()
    prestart_workers(1)
    (proc,) = br._IDLE
    stop_idle_workers()
    assert proc.poll() is not None and not br._IDLE
    with pytest.raises(br.BestResponseError, match="no_such_module"):
        prestart_workers(1, preload=("no_such_module",))
    assert not br._IDLE


def test_a_plan_made_during_the_dual_lps_certifies_the_same(small_scenario) -> None:
    retailer, vendor = one_vendor_round(small_scenario)
    negs = [negotiator_for(retailer), negotiator_for(vendor)]
    blocks = [None, 0]
    shape = retailer.plan_shape
    plan = np.full(shape, 5.0)
    prices = [np.full(shape, 0.3), -np.full(shape[1:], 0.3)]
    given = certify(negs, prices, plan, blocks=blocks)
    made = certify(negs, prices, lambda: plan, blocks=blocks)
    assert (made.upper, made.lower, made.gap) == (given.upper, given.lower, given.gap)

    def fails() -> np.ndarray:
        raise br.BestResponseError("cannot confirm")

    with pytest.raises(br.BestResponseError, match="cannot confirm"):  # the plan's failure is not "no bound"
        certify(negs, prices, fails, blocks=blocks)


def test_warm_own_cost_is_the_cold_one(small_scenario) -> None:
    retailer, _ = one_vendor_round(small_scenario)
    warm = negotiator_for(retailer)
    assert warm.warm_checks  # the retailer's agent asks for it
    cold = br.LPBestResponse(warm._lp, warm._x.reshape(warm.shape))
    assert not cold.warm_checks
    rng = np.random.default_rng(5)
    for _ in range(3):
        prices = rng.uniform(-1, 1, warm.shape)
        plan = np.maximum(warm.best_response(rng.uniform(0, 30, warm.shape), prices, 0.5), 0)
        assert warm.dual_value(prices) == cold.dual_value(prices)  # the model's first solve is solve_lp's
        assert warm.own_cost(plan) == pytest.approx(cold.own_cost(plan), rel=1e-9, abs=1e-7)
    assert warm._check is not None and warm._check.solves == 2  # the last dual LP, then own cost from its basis


def test_norm_is_numpys() -> None:
    a = np.random.default_rng(0).normal(size=(2, 12000))
    assert norm(a) == pytest.approx(float(np.linalg.norm(a)), rel=1e-13)
    assert norm(np.zeros(3)) == 0.0


def test_workers_report_their_cpu_without_their_start_up(small_scenario) -> None:
    """A worker started ahead reports the CPU its negotiation used, less what starting took (the bench
    adds it to its own CPU time), and is given back to wait for the next negotiation."""
    br.stop_idle_workers()
    try:
        assert br.prestart_workers(1, preload=("sim.parties.retailer",)) == 1
        (proc,) = br._IDLE
        assert proc.startup_cpu_s > 0  # importing numpy, scipy, OSQP and flosim takes CPU
        before = br.workers_cpu()
        retailer, _ = one_vendor_round(small_scenario)
        with br.ProcessNegotiator(retailer) as neg:
            neg.best_response(np.full(retailer.plan_shape, 20.0), np.zeros(retailer.plan_shape), 0.3)
        used = br.workers_cpu() - before
        assert 0 < used and used == pytest.approx(proc.cpu_s - proc.startup_cpu_s)
        assert br._IDLE == [proc]
    finally:
        br.stop_idle_workers()
    assert proc.poll() is not None and not br._IDLE
