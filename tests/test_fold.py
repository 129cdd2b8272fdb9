"""The coherent stack-slide fold against the slow, obvious reference fold."""

from __future__ import annotations

import numpy as np
import pytest

from exoperiod.grid import PeriodGrid
from exoperiod.search.fold import (
    DOWNSAMPLE,
    SEGMENT_CELLS,
    CoherentFold,
    fold_snr_slow,
    trial_periods,
    typical_duration_days,
)

CADENCE_DAYS = 29.4244 / 1440.0
GRID = PeriodGrid()


def _box_series(n_cells: int, period_days: float, t0_days: float, duration_days: float, snr: float, seed: int):
    """Unit white noise with a box of the given total SNR (depth * sqrt(N_in) = snr)."""
    rng = np.random.default_rng(seed)
    flux = rng.standard_normal(n_cells)
    mask = rng.random(n_cells) > 0.1
    t = np.arange(n_cells) * CADENCE_DAYS
    in_transit = np.abs((t - t0_days + period_days / 2) % period_days - period_days / 2) < duration_days / 2
    n_in = int((in_transit & mask).sum())
    flux[in_transit] -= snr / np.sqrt(n_in)
    return flux, mask


def test_one_segment_equals_the_slow_fold_exactly():
    # One quarter is one segment: no rotation, no coarse-to-fine mapping, so the fast
    # fold must give the reference's numbers at every trial period.
    flux, mask = _box_series(2 * SEGMENT_CELLS, 7.3, 2.1, 0.2, 10.0, seed=1)
    fold = CoherentFold(GRID, CADENCE_DAYS)
    fast = fold(flux, mask)
    fine, coarse_of, _, bins, _ = fold.trials(len(flux) // DOWNSAMPLE)
    pick = np.random.default_rng(2).choice(len(fine), 300, replace=False)
    slow = fold_snr_slow(flux, mask, CADENCE_DAYS, fine[pick], bins[coarse_of[pick]])
    np.testing.assert_allclose(fast.snr[pick], slow, rtol=1e-5)


@pytest.mark.parametrize("period_days", [1.37, 6.1, 33.0])
def test_four_years_a_box_keeps_its_snr_and_ephemeris(period_days):
    # 17 quarters: 18 segments rotated and stacked. The box of total SNR 12 (about 3 per
    # quarter) must come out at its period with the SNR the slow fold gives, within the
    # few % that rounding the rotations costs, and near depth * sqrt(N).
    n = 17 * 4096
    t0, duration = 3.3, float(typical_duration_days(period_days))
    flux, mask = _box_series(n, period_days, t0, duration, 12.0, seed=3)
    fold = CoherentFold(GRID, CADENCE_DAYS)
    fast = fold(flux, mask)
    near = np.flatnonzero(np.abs(fast.periods_days / period_days - 1) < 2e-4)
    best = near[np.argmax(fast.snr[near])]
    fine, coarse_of, _, bins, _ = fold.trials(n // DOWNSAMPLE)
    slow = fold_snr_slow(flux, mask, CADENCE_DAYS, fine[near], bins[coarse_of[near]]).max()
    assert fast.snr[best] == pytest.approx(slow, rel=0.08)
    assert 12.0 * 0.7 < fast.snr[best] < 12.0 * 1.25  # boxes of whole bins lose ~10 %, noise +-1
    assert int(np.argmax(fast.snr)) in near  # the highest peak of the whole periodogram
    phase_error = (fast.epoch_days[best] - t0 + period_days / 2) % period_days - period_days / 2
    assert abs(phase_error) < duration
    assert 0.3 * duration < fast.duration_days[best] < 2.5 * duration


def test_trials_are_fine_enough_for_the_whole_baseline():
    # Ofir's criterion: over the span, neighbouring trials drift by at most one phase
    # bin (40 % of a typical duration): ~100,000 trials for 4 years, ~6,000 for a quarter.
    cell_days = CADENCE_DAYS * DOWNSAMPLE
    quarter = trial_periods(GRID, 2048, cell_days, 1.0)
    four_years = trial_periods(GRID, 17 * 2048, cell_days, 1.0)
    assert 4_000 < len(quarter) < 8_000 and 70_000 < len(four_years) < 140_000
    span_days = 17 * 2048 * cell_days
    drift_days = np.diff(four_years) / four_years[:-1] * span_days
    bin_days = np.maximum(0.4 * typical_duration_days(four_years[:-1]), cell_days)
    assert (drift_days <= bin_days * 1.0001).all()
    assert four_years[0] == GRID.min_days and four_years[-1] <= GRID.max_days


def test_noise_alone_gives_no_outstanding_peak():
    flux, mask = _box_series(4 * 4096, 5.0, 1.0, 0.1, 0.0, seed=4)
    snr = CoherentFold(GRID, CADENCE_DAYS)(flux, mask).snr
    # The maximum of ~20,000 correlated trials of unit noise: a few sigma, not more.
    assert 3.0 < snr.max() < 7.0


# ---------------------------------------------------- whole light curves, shipped model

def _quiet_four_years(seed: int, planets: list[tuple[float, float]]):
    """17 Kepler quarters of white noise (300 ppm) with quarterly gaps and batman
    planets of the given (period, total SNR)."""
    import lightkurve as lk

    from exoperiod.learning.inject import Star, planet_for_snr, transit_model

    sun = Star(1.0, 1.0, 5778.0, 4.438)
    rng = np.random.default_rng(seed)
    t = 130.0 + np.arange(int(17 * 93 / CADENCE_DAYS)) * CADENCE_DAYS
    t = t[((t - 130.0) % 93.0) < 89.0]
    sigma = 300e-6
    model = np.ones(len(t))
    for period, snr in planets:
        planet = planet_for_snr(t, snr, period, 131.0 + rng.uniform(0, period), 0.3, sun, sigma * 1e6)
        model *= transit_model(t, [planet], sun, 29.4244)
    flux = (1.0 + sigma * rng.standard_normal(len(t))) * model
    return lk.LightCurve(time=t, flux=flux, flux_err=np.full(len(t), sigma), meta={"MISSION": "Kepler"})


def test_four_years_a_planet_of_snr_3_per_quarter_is_found(shipped_model):
    # Total SNR 12.4 = 3 x sqrt(17): no quarter shows it alone. Measured: the true bin is
    # the top bin for 3 of these 4 light curves (the fourth: its P/2 bin).
    hits = 0
    for seed in range(4):
        period = 7.3 + seed
        proba = shipped_model.predict_proba(_quiet_four_years(seed, [(period, 12.4)]))
        hits += int(abs(int(proba.argmax()) - shipped_model.grid.index(period)) <= 1)
    assert hits >= 3


def test_four_years_three_planets_give_three(shipped_model):
    from exoperiod.search.predict import predict

    truth = [3.1, 11.7, 27.3]
    lc = _quiet_four_years(9, list(zip(truth, (25.0, 30.0, 40.0))))
    found = predict(lc, shipped_model, top_k=3, max_planets=3).periods[:3]
    assert sorted(found) == pytest.approx(truth, rel=0.002)


def test_a_ten_day_fragment_is_scored_not_rejected(shipped_model, shared_data):
    # Kepler-6 Q0: 9.7 days, ~490 cadences; b (3.2347 d) shows three transits.
    from exoperiod.search.predict import predict

    prediction = predict(shared_data / "lightcurves/kepler/10874614/kplr010874614-2009131105131_llc.fits",
                         shipped_model, max_planets=1)
    assert prediction.periods[0] == pytest.approx(3.234699, rel=0.002)


def test_masking_cells_from_a_fold_state_equals_folding_without_them():
    # A planet pass subtracts the masked cells from the segment histograms instead of
    # folding the whole series again: the result must be the same fold.
    flux, mask = _box_series(5 * 4096, 4.4, 1.0, 0.15, 15.0, seed=5)
    remove = np.zeros(len(flux), bool)
    remove[::37] = True
    remove[5000:5300] = True
    fold = CoherentFold(GRID, CADENCE_DAYS)
    direct = fold(flux, mask & ~remove)
    updated = fold.result(fold.without(fold.fold(flux, mask), flux, mask, remove))
    np.testing.assert_allclose(updated.snr, direct.snr, rtol=1e-4, atol=1e-4)


def test_on_real_kepler_noise_an_injected_planet_is_the_best_trial(kepler_cut):
    """The committed 20-d cut of a real quarter, with a batman planet of SNR ~15: the fold's
    best trial is at its period (no ../shared/data needed)."""
    from exoperiod.config import load_config
    from exoperiod.learning.inject import Planet, Star, inject_transits
    from exoperiod.search.preprocess import to_series
    from exoperiod.search.readers import read_lightcurve

    lc = read_lightcurve(kepler_cut)
    planet = Planet(period_days=3.7, t0_days=float(lc.time.value[0]) + 1.1, rp_rs=0.02, impact=0.3)
    sun = Star(radius_rsun=1.0, mass_msun=1.0, teff_k=5778.0, logg_cgs=4.438)
    series = to_series(inject_transits(lc, [planet], sun), load_config())
    result = CoherentFold(GRID, series.cadence_days)(series.flux, series.mask)
    best = int(np.argmax(result.snr))
    assert result.periods_days[best] == pytest.approx(3.7, rel=0.01)
    assert result.snr[best] > 10
    # Without the planet, nothing stands out at its period.
    without = CoherentFold(GRID, series.cadence_days)(*_real_noise(kepler_cut))
    near = np.abs(without.periods_days / 3.7 - 1) < 0.01
    assert without.snr[near].max() < 6


def _real_noise(path):
    from exoperiod.config import load_config
    from exoperiod.search.preprocess import to_series
    from exoperiod.search.readers import read_lightcurve

    series = to_series(read_lightcurve(path), load_config())
    return series.flux, series.mask
