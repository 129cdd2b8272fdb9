"""The coherent stack-slide fold against the slow, obvious reference fold."""

from __future__ import annotations

import numpy as np
import pytest

from exoperiod.grid import PeriodGrid
from exoperiod.search.fold import (
    BOX_WIDTHS_BINS,
    DOWNSAMPLE,
    MIN_BOX_CADENCES,
    SEGMENT_CELLS,
    CoherentFold,
    _fold_segments,
    _stack_slide,
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


def _fold_segments_slow(flux, count, seg_cells, coarse_period_cells, coarse_bins, coarse_offset, total_bins):
    """The obvious segment fold: every valid cell of a segment into its coarse trials'
    histograms, one by one, in the kernel's order (float32 histograms)."""
    n_seg = -(-len(flux) // seg_cells)
    hist_flux = np.zeros((n_seg, total_bins), np.float32)
    hist_count = np.zeros((n_seg, total_bins), np.float32)
    for s in range(n_seg):
        for j, period in enumerate(coarse_period_cells):
            for i in range(s * seg_cells, min(len(flux), (s + 1) * seg_cells)):
                if count[i] > 0:
                    phase = (i - s * seg_cells) * (1.0 / period)
                    b = coarse_offset[j] + int((phase - np.floor(phase)) * coarse_bins[j])
                    hist_flux[s, b] = np.float32(hist_flux[s, b] + flux[i])
                    hist_count[s, b] = np.float32(hist_count[s, b] + count[i])
    return hist_flux, hist_count


def _stack_slide_slow(hist_flux, hist_count, seg_cells, fine_period_cells, fine_coarse, coarse_bins,
                      coarse_offset, widths, min_count):
    """The obvious stack and slide: each segment's histogram rotated into a float64 sum,
    every box of every width scored with the square root, the first best kept."""
    out = []
    for period, j in zip(fine_period_cells, fine_coarse):
        nb, off = coarse_bins[j], coarse_offset[j]
        total_f, total_n = np.zeros(nb), np.zeros(nb)
        for s in range(hist_flux.shape[0]):
            k = int(((s * seg_cells) % period) / period * nb + 0.5) % nb
            for b in range(nb):
                total_f[(b + k) % nb] += hist_flux[s, off + b]
                total_n[(b + k) % nb] += hist_count[s, off + b]
        top, start, width = -np.inf, 0, 1
        for w in widths:
            sf, sn = 0.0, 0.0
            for b in range(w):
                sf, sn = sf + total_f[b], sn + total_n[b]
            for b in range(nb):
                if sn > 0 and -sf / np.sqrt(max(sn, min_count)) > top:
                    top, start, width = -sf / np.sqrt(max(sn, min_count)), b, w
                sf += total_f[(b + w) % nb] - total_f[b]
                sn += total_n[(b + w) % nb] - total_n[b]
        out.append((np.float32(top if top > -np.inf else 0.0), start, width))
    return tuple(np.array(column) for column in zip(*out))


def test_the_fold_kernels_give_the_obvious_loops_numbers_to_the_last_bit():
    # The kernels gather valid cells, add rotated histograms in two vectorised runs and
    # skip the square root of boxes that cannot win; none of that may change a number,
    # or the features the shipped model was trained on would change.
    flux, mask = _box_series(3 * 2 * 1024, 2.3, 0.7, 0.1, 12.0, seed=6)
    mask[2000:2600] = False
    fold = CoherentFold(PeriodGrid(1.0, 1.3, 10), CADENCE_DAYS)
    cell_flux, count = fold._cells(flux, mask)
    fine, fine_coarse, coarse_cells, bins, offsets = fold.trials(len(cell_flux))
    seg = 1024  # three segments: rotations and wraps of every kind
    args = (cell_flux, count, seg, coarse_cells, bins, offsets, int(bins.sum()))
    hist = _fold_segments(*args)
    for fast, slow in zip(hist, _fold_segments_slow(*args)):
        np.testing.assert_array_equal(fast, slow)
    pick = np.random.default_rng(7).choice(len(fine), 60, replace=False)
    stack_args = (*hist, seg, fine[pick] / fold.cell_days, fine_coarse[pick], bins, offsets,
                  np.asarray(BOX_WIDTHS_BINS, dtype=np.int64), MIN_BOX_CADENCES)
    for fast, slow in zip(_stack_slide(*stack_args), _stack_slide_slow(*stack_args)):
        np.testing.assert_array_equal(fast, slow)


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
    state = fold.fold(flux, mask)
    updated = fold.result(fold.without(state, flux, mask, remove))
    np.testing.assert_allclose(updated.snr, direct.snr, rtol=1e-4, atol=1e-4)
    # In place (predict's planet passes): the same numbers, without a copy of the histograms.
    in_place = fold.without(state, flux, mask, remove, in_place=True)
    assert in_place.hist_flux is state.hist_flux
    np.testing.assert_array_equal(fold.result(in_place).snr, updated.snr)


def test_in_a_kepler_file_an_injected_planet_is_the_best_trial(kepler_cut):
    """A generated 20-d Kepler file (spots, granulation, gaps) with a batman planet: the
    fold's best trial is at its period (no ../shared/data needed)."""
    from exoperiod.config import load_config
    from exoperiod.learning.inject import Planet, Star, inject_transits
    from exoperiod.search.preprocess import to_series
    from exoperiod.search.readers import read_lightcurve

    lc = read_lightcurve(kepler_cut)
    planet = Planet(period_days=3.7, t0_days=float(lc.time.value[0]) + 1.1, rp_rs=0.03, impact=0.3)
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


def test_scoring_one_light_curve_runs_torch_on_one_thread_with_the_same_numbers(shipped_model):
    import torch

    flux, mask = _box_series(2 * 4096, 3.3, 1.0, 0.1, 12.0, seed=8)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        scored = shipped_model.score_series(flux, mask)
        assert torch.get_num_threads() == 2  # given back as it was
        logits, duration = shipped_model.score_features(scored.features[None])  # on two threads
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_array_equal(scored.logits, logits[0])
    np.testing.assert_array_equal(scored.duration_proba, duration[0])
