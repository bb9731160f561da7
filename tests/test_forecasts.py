"""Forecasts and random inputs: the martingale model of forecast evolution (MMFE), demand shapes,
lane delays, demand scenarios, and common random numbers."""

from __future__ import annotations

import numpy as np
import pytest

from forecasts.delays import draw_delays, expected_delay
from forecasts.demand import mean_demand, region_weights
from forecasts.inputs import draw_inputs, policy_rng
from forecasts.sampling import sample_demand_paths
from conftest import with_product_generator
from sim.model.scenario import scenario_from_dict

H = 5
WEEKS = 4000
MU, CV = 1000.0, 0.1  # 10 standard deviations from zero: clipping never bites


@pytest.fixture(scope="module")
def mmfe(small_scenario):
    s = small_scenario.with_overrides(
        {
            "horizon": H,
            "regions": ["East"],
            "outbound_cost": {"E1": {"East": 0.2}, "W1": {"East": 0.3}},
            "products": [{"name": "a", "wholesale_price": 5.0, "holding_cost": 0.05, "lost_sales_penalty": 9.0, "base_demand": MU}],
            "fcs": [{"name": "E1"}, {"name": "W1"}],
            "origins.O2.production_cost": 2.0,
            "origins.O1.initial_stock": {},
            "demand": {"cv": CV},
            "seed": 1234,
        }
    )
    return s, draw_inputs(s, weeks=WEEKS)


def _revision(inputs, j):
    """Revision of the forecast of week s between the updates of week s-j and week s-j+1 (j >= 1)."""
    F = inputs.forecasts[:, :, 0, 0]
    return F[1:, j - 1] - F[:-1, j]


def test_forecast_revisions_are_mean_zero(mmfe):
    _, inputs = mmfe
    sd_total = CV * MU
    for j in range(1, H):
        rev = _revision(inputs, j)
        n = rev.size
        # each revision reveals share 1/H of the variance: mean 0 (4 standard errors), sd right within 10%
        assert abs(rev.mean()) < 4 * rev.std() / np.sqrt(n), j
        assert rev.std() == pytest.approx(sd_total / np.sqrt(H), rel=0.10), j
        # martingale: a revision is unpredictable from the forecast it revises
        prior = inputs.forecasts[:-1, j, 0, 0]
        if j < H - 1:
            assert abs(np.corrcoef(prior, rev)[0, 1]) < 4 / np.sqrt(n), j
        else:
            assert np.all(prior == prior[0])  # H-1 weeks out the forecast is still the plain mean


def test_forecast_error_shrinks_as_the_week_approaches(mmfe):
    _, inputs = mmfe
    D = inputs.demand[:, 0, 0]
    sds, predicted = [], []
    for j in range(H):
        err = D[j:] - inputs.forecasts[: WEEKS - j, j, 0, 0]
        assert abs(err.mean()) < 4 * err.std() / np.sqrt(err.size) + 1e-9, j  # unbiased
        sds.append(err.std())
        predicted.append(inputs.forecast_sd[0, j, 0, 0])
    assert sds[0] > 0
    assert all(a < b for a, b in zip(sds, sds[1:])), sds  # strictly sharper as the week approaches
    # and as stated by the forecast model: sd of the error j weeks out = cv mu sqrt((j+1)/H)
    np.testing.assert_allclose(sds, predicted, rtol=0.10)
    np.testing.assert_allclose(predicted, CV * MU * np.sqrt(np.arange(1, H + 1) / H), rtol=1e-12)


def test_far_forecast_is_the_mean_and_this_weeks_forecast_is_not_the_realisation(mmfe):
    s, inputs = mmfe
    mu = mean_demand(s, WEEKS + H)
    # with H equal shares, nothing is known about a week H-1 weeks out beyond its mean ...
    np.testing.assert_allclose(inputs.forecasts[:, H - 1], mu[H - 1 : WEEKS + H - 1], rtol=1e-12)
    # ... and the last revision arrives with the realisation itself
    assert not np.allclose(inputs.forecasts[:, 0], inputs.demand)


def test_revision_shares_set_when_uncertainty_resolves(mmfe):
    s, _ = mmfe
    shares = [0.7, 0.0, 0.0, 0.0, 0.3]  # most variance revealed only by the realisation
    s2 = s.with_overrides({"demand.revision.shares": shares})
    inputs = draw_inputs(s2, weeks=WEEKS)
    sd = CV * MU
    assert _revision(inputs, 4).std() == pytest.approx(sd * np.sqrt(0.3), rel=0.10)
    for j in (1, 2, 3):
        assert np.all(_revision(inputs, j) == 0)
    err0 = inputs.demand[:, 0, 0] - inputs.forecasts[:, 0, 0, 0]
    assert err0.std() == pytest.approx(sd * np.sqrt(0.7), rel=0.10)


def test_deterministic_demand_is_its_mean(small_scenario):
    s = small_scenario.with_overrides({"demand.deterministic": True, "demand.cv": 0.4})
    inputs = draw_inputs(s)
    mu = mean_demand(s, s.weeks + s.horizon)
    np.testing.assert_array_equal(inputs.demand, mu[: s.weeks])
    for j in range(s.horizon):
        np.testing.assert_array_equal(inputs.forecasts[:, j], mu[j : j + s.weeks])
    assert np.all(inputs.forecast_sd == 0)


def test_mean_demand_shapes(small_scenario):
    s = small_scenario.with_overrides(
        {"demand.model": "seasonal", "demand.multipliers": [1.0, 2.0, 0.5], "demand.region_weights": {"East": 3, "West": 1}}
    )
    mu = mean_demand(s, 6)
    w = region_weights(s)
    np.testing.assert_allclose(w, [0.75, 0.25])
    base = np.array([p.base_demand for p in s.products])
    np.testing.assert_allclose(mu.sum(axis=1), np.array([1, 2, 0.5, 1, 2, 0.5])[:, None] * base[None, :])
    np.testing.assert_allclose(mu[:, 0] / mu[:, 1], 3.0)
    t = s.with_overrides({"demand.model": "trend", "demand.trend": 0.1})
    np.testing.assert_allclose(mean_demand(t, 4).sum(axis=(1, 2)), base.sum() * np.array([1, 2.2, 0.6, 1.3]))


def test_delays_follow_the_lane_distribution(small_scenario):
    s = small_scenario.with_overrides({"lanes.0.delay": {"values": [0, 1, 3], "probs": [0.5, 0.3, 0.2]}})
    n = 20_000
    d = draw_delays(s, n, np.random.default_rng(5))
    assert d.shape == (n, len(s.lanes)) and d.dtype.kind == "i"
    for v, p in zip([0, 1, 3], [0.5, 0.3, 0.2]):
        assert np.mean(d[:, 0] == v) == pytest.approx(p, abs=4 * np.sqrt(p * (1 - p) / n))
    assert set(np.unique(d[:, 1])) == {0}  # lane 1 has the default: always on time
    assert set(np.unique(d[:, 2])) <= {0, 2}
    np.testing.assert_allclose(expected_delay(s), [0.9, 0.0, 1.0])


def test_demand_paths_sample_the_forecast_distribution():
    forecast = np.full((3, 2, 1), 100.0)
    sd = np.array([0.0, 10.0, 20.0])[:, None, None] * np.ones((3, 2, 1))
    paths = sample_demand_paths(forecast, sd, 20_000, np.random.default_rng(9))
    assert paths.shape == (20_000, 3, 2, 1)
    np.testing.assert_allclose(paths.mean(axis=0), forecast, atol=4 * 20 / np.sqrt(20_000))
    np.testing.assert_allclose(paths.std(axis=0), sd, rtol=0.05, atol=1e-12)
    same = sample_demand_paths(forecast, None, 3, np.random.default_rng(0))
    assert np.array_equal(same, np.broadcast_to(forecast, same.shape))
    with pytest.raises(ValueError):
        sample_demand_paths(forecast, sd, 0, np.random.default_rng(0))


def test_inputs_are_fixed_by_the_seed(small_scenario):
    a, b = draw_inputs(small_scenario), draw_inputs(small_scenario)
    assert a.same_as(b)
    c = draw_inputs(small_scenario, seed=small_scenario.seed + 1)
    assert not np.array_equal(a.demand, c.demand)
    assert not np.array_equal(a.forecasts, c.forecasts)
    # the policies' generator is a separate stream: same for every policy in a week, new each week
    assert policy_rng(7, 2).random() == policy_rng(7, 2).random()
    assert policy_rng(7, 2).random() != policy_rng(7, 3).random()


def test_demand_of_early_weeks_does_not_depend_on_run_length(small_scenario):
    a, b = draw_inputs(small_scenario, weeks=3), draw_inputs(small_scenario, weeks=10)
    np.testing.assert_array_equal(a.demand, b.demand[:3])
    np.testing.assert_array_equal(a.forecasts, b.forecasts[:3])


def test_delays_of_early_weeks_do_not_depend_on_run_length(small_scenario):
    a, b = draw_inputs(small_scenario, weeks=8), draw_inputs(small_scenario, weeks=40)
    np.testing.assert_array_equal(a.delays, b.delays[:8])


def test_a_lanes_delays_do_not_depend_on_the_other_lanes(small_scenario):
    a = draw_inputs(small_scenario, weeks=30)
    assert len(np.unique(a.delays[:, 2])) > 1  # lane 2 is random: the comparison means something
    changed = small_scenario.with_overrides({"lanes.0.delay": {"values": [0, 1, 2, 3], "probs": [0.25] * 4}})
    np.testing.assert_array_equal(draw_inputs(changed, weeks=30).delays[:, 1:], a.delays[:, 1:])
    more = small_scenario.with_overrides(
        {"lanes": [lane.model_dump() for lane in small_scenario.lanes] + [{"origin": "O2", "fc": "E1", "truckload_cost": 1.0}]}
    )
    np.testing.assert_array_equal(draw_inputs(more, weeks=30).delays[:, :3], a.delays)


def test_generated_products_feed_demand(small_dict):
    d = with_product_generator(small_dict, count=40, mix=[0.745, 0.043, 0.212])
    s = scenario_from_dict(d)
    mu = mean_demand(s, 1)
    np.testing.assert_allclose(mu[0].sum(axis=0), [p.base_demand for p in s.products])
    assert draw_inputs(s).demand.shape == (s.weeks, 2, 40)
