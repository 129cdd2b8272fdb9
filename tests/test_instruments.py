"""Instrument signatures of the training backgrounds: K2's roll, TESS's momentum dumps, Kepler's quarters."""

from __future__ import annotations

import numpy as np
from astropy.timeseries import LombScargle

from exoperiod.config import load_config
from exoperiod.constants import HOURS_PER_DAY, KEPLER_QUARTER_DAYS
from exoperiod.learning.curves import make_sample, simulated_background
from exoperiod.learning import instruments
from exoperiod.learning.instruments import (
    FLAG_THRUSTER_FIRING,
    K2_FIRING_HOURS,
    add_k2_roll,
    add_momentum_dumps,
    add_quarter_boundaries,
)
from exoperiod.learning.simulate import FLAG_DESATURATION, simulate_star
from exoperiod.search.preprocess import clean_and_detrend, quality_mask


def _quiet_star(days: float, seed: int = 0, **kw):
    lc, sim = simulate_star(seed, duration_days=days, **kw)
    return lc, sim.noise_ppm_per_cadence


def test_the_k2_roll_is_a_sawtooth_at_the_firing_period_and_its_firings_are_flagged_or_outliers(monkeypatch):
    lc, noise_ppm = _quiet_star(80.0)
    rolled = add_k2_roll(lc, np.random.default_rng(1), noise_ppm)
    time = np.asarray(rolled.time.value, float)
    added = np.asarray(rolled.flux.value, float) - np.asarray(lc.flux.value, float)
    # The strongest periodicity of what was added is the firing frequency (~4 a day) or a harmonic.
    frequency, power = LombScargle(time, np.nan_to_num(added)).autopower(minimum_frequency=0.2,
                                                                          maximum_frequency=20.0)
    best_hours = HOURS_PER_DAY / frequency[np.argmax(power)]
    assert any(K2_FIRING_HOURS[0] / k <= best_hours <= K2_FIRING_HOURS[1] / k for k in (1, 2, 3))
    flagged = (np.asarray(rolled["quality"].value) & FLAG_THRUSTER_FIRING) > 0
    firings = 80.0 * HOURS_PER_DAY / np.mean(K2_FIRING_HOURS)
    assert 0.8 * firings < flagged.sum() < firings  # 90 % of them flagged
    assert not quality_mask(rolled)[flagged].any()  # and lightkurve's default mask takes them out
    # The others are outliers of 2-8 sigma: with a sawtooth of 20 ppm they are all that
    # reaches 2 sigma (~10 % of the firings).
    monkeypatch.setattr(instruments, "K2_ROLL_PPM", (20.0, 20.0))
    faint = add_k2_roll(lc, np.random.default_rng(1), noise_ppm)
    jumps = np.abs(np.asarray(faint.flux.value, float) - np.asarray(lc.flux.value, float))
    assert 0.05 * firings < (jumps >= 2 * noise_ppm * 1e-6).sum() < 0.2 * firings


def test_tess_momentum_dumps_are_flagged_at_a_fixed_interval():
    lc, noise_ppm = _quiet_star(27.0, cadence_minutes=30.0)
    dumped = add_momentum_dumps(lc, np.random.default_rng(2), noise_ppm)
    quality = np.asarray(dumped["quality"].value) & ~np.asarray(lc["quality"].value)
    at = np.asarray(dumped.time.value, float)[(quality & FLAG_DESATURATION) > 0]
    intervals = np.diff(at)
    assert len(at) >= 4 and 2.4 < np.median(intervals) < 6.1
    assert np.ptp(intervals[intervals < 1.5 * np.median(intervals)]) < 0.05  # one schedule, not random times


def test_kepler_quarters_are_separated_by_a_gap_and_their_levels_detrend_away():
    lc, _ = _quiet_star(3 * KEPLER_QUARTER_DAYS, seed=3)
    stitched = add_quarter_boundaries(lc, np.random.default_rng(3))
    time = np.asarray(stitched.time.value, float)
    for q in (1, 2):
        boundary = time[0] + q * KEPLER_QUARTER_DAYS
        assert not ((time >= boundary) & (time < boundary + 0.5)).any()
    detrended, _ = clean_and_detrend(stitched, load_config().detrend_window_days)

    def levels(curve):
        t, f = np.asarray(curve.time.value, float), np.asarray(curve.flux.value, float)
        quarter = np.floor((t - time[0]) / KEPLER_QUARTER_DAYS)
        return np.array([np.nanmedian(f[quarter == q]) for q in range(3)])

    # Each quarter has its own level; the detrending takes them all to 1.
    assert np.ptp(levels(stitched)) > 5e-4
    assert np.ptp(levels(detrended)) < 5e-5


def test_the_k2_layout_is_one_campaign_of_k2_with_its_own_mission():
    lc, _ = simulated_background(np.random.default_rng(4), "k2", 1, "SIM-K2", "gp", np.random.default_rng(5))
    span = float(np.ptp(lc.time.value))
    assert 69.0 < span < 85.0 and lc.meta["MISSION"] == "K2"
    sample = make_sample(7, load_config(), layout="k2", n_planets=1, snr_range=(30.0, 30.0))
    assert sample.source.startswith("simulated:k2:1:") and len(sample.planets) == 1
