"""Preprocessing of a real Kepler light curve (the committed 20-day cut): no ../shared/data needed."""

from __future__ import annotations

import numpy as np
import pytest

from exoperiod.config import load_config
from exoperiod.learning.inject import Planet, Star, inject_transits
from exoperiod.search.preprocess import MIN_SEARCH_CADENCES, PreprocessError, to_series
from exoperiod.search.readers import read_lightcurve

SUN = Star(radius_rsun=1.0, mass_msun=1.0, teff_k=5778.0, logg_cgs=4.438)


def test_a_real_quarter_cut_becomes_a_noise_unit_series(kepler_cut):
    lc = read_lightcurve(kepler_cut)
    series = to_series(lc, load_config())
    assert series.cadence_days == pytest.approx(29.4244 / 1440.0)
    assert series.start_time_days == pytest.approx(lc.time.value[0])
    assert series.span_days == pytest.approx(np.ptp(lc.time.value), abs=2 * series.cadence_days)
    # Every cadence kept by the quality mask lands in a cell; gaps stay masked zeros.
    assert series.mask.sum() == pytest.approx(np.isfinite(lc.flux.value).sum(), abs=3)
    assert np.all(series.flux[~series.mask] == 0)
    assert abs(np.median(series.flux[series.mask])) < 0.1
    assert 0.8 < np.std(series.flux[series.mask]) < 1.5
    # Kepler-62 (Kp 13.7): a few hundred ppm per long cadence.
    assert 50 < series.noise_ppm < 1000


def test_an_injected_transit_survives_detrending(kepler_cut):
    lc = read_lightcurve(kepler_cut)
    t0 = float(lc.time.value[0]) + 2.3
    planet = Planet(period_days=4.0, t0_days=t0, rp_rs=0.03, impact=0.2)
    series = to_series(inject_transits(lc, [planet], SUN), load_config())
    time = series.start_time_days + series.cadence_days * np.arange(len(series.flux))
    in_transit = (np.abs((time - t0 + 2.0) % 4.0 - 2.0) < 0.03) & series.mask
    depth_ppm = -np.mean(series.flux[in_transit]) * series.noise_ppm
    # rp_rs = 0.03 with limb darkening: ~1000 ppm at the centre; the 1-d window keeps it.
    assert 700 < depth_ppm < 1200


def test_too_few_cadences_is_a_one_line_error(kepler_cut):
    lc = read_lightcurve(kepler_cut)[: MIN_SEARCH_CADENCES - 1]
    with pytest.raises(PreprocessError, match="fewer than the 96 the search needs") as info:
        to_series(lc, load_config())
    assert "\n" not in str(info.value) and str(kepler_cut) in str(info.value)


def _rotator(period_days: float, amplitude_sigma: float, seed: int = 0):
    """A 60-day Kepler-like light curve: white noise of 300 ppm plus a sinusoid."""
    import lightkurve as lk

    rng = np.random.default_rng(seed)
    time = 200.0 + np.arange(int(60 / (29.4244 / 1440))) * 29.4244 / 1440
    flux = 1 + 300e-6 * (amplitude_sigma * np.sin(2 * np.pi * time / period_days) + rng.standard_normal(len(time)))
    return lk.LightCurve(time=time, flux=flux, flux_err=np.full(len(time), 300e-6))


@pytest.mark.parametrize(("period_days", "amplitude_sigma", "window_days"),
                         [(1.2, 20.0, 0.3), (2.4, 20.0, 0.4), (6.0, 20.0, 1.0), (6.0, 0.5, 1.75), (30.0, 20.0, 1.75)])
def test_the_window_follows_the_star(period_days, amplitude_sigma, window_days):
    from exoperiod.search.preprocess import window_for_star

    lc = _rotator(period_days, amplitude_sigma)
    got = window_for_star(lc.time.value, lc.flux.value, 1.75)
    assert got == pytest.approx(window_days, rel=0.05)


def test_a_fast_rotator_leaves_less_residual_with_its_own_window():
    from astropy.stats import mad_std

    from exoperiod.search.preprocess import clean_and_detrend

    lc = _rotator(1.5, 30.0)
    fixed, _ = clean_and_detrend(lc, 1.75)
    adaptive, _ = clean_and_detrend(lc, 1.75, adaptive=True)
    assert fixed.meta["DETREND_WINDOW_DAYS"] == 1.75
    assert adaptive.meta["DETREND_WINDOW_DAYS"] == pytest.approx(0.3)
    # The 1.75-d window cannot follow a 1.5-d rotation; the star's own window can.
    assert mad_std(adaptive.flux.value - 1) < 0.5 * mad_std(fixed.flux.value - 1)
    assert mad_std(adaptive.flux.value - 1) < 1.3 * 300e-6
