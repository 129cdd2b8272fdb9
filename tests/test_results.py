"""Results as tables, figures and folds; transit times and uncertainties; periods outside
the model grid (exoperiod.search.results, exoperiod.search.ephemeris, exoperiod.search.offgrid)."""

from __future__ import annotations

import json

import astropy.units as u
import lightkurve as lk
import numpy as np
import pytest
from matplotlib.figure import Figure

from exoperiod import Prediction, predict, predictions_to_pandas
from exoperiod.grid import PeriodGrid
from exoperiod.search.ephemeris import box_log_likelihood
from exoperiod.search.fold import DOWNSAMPLE, CoherentFold
from exoperiod.search.offgrid import FOLD_BUDGET, _searchable_to, off_grid_ranges
from exoperiod.search.outputs import CANDIDATE_TYPE
from exoperiod.search.refine import Candidate

WASP_18 = "lightcurves/tess/100100827/wasp18b.fits"
#: WASP-18 b, Shporer et al. (2019) from TESS: P = 0.941452419 +- 0.000000065 d.
WASP_18_B_DAYS = 0.9414524
#: Kepler-62 b (KOI cumulative table): 18.16406 d.
KEPLER62_B_DAYS = 18.16406


@pytest.fixture(scope="module")
def wasp18(shared_data, shipped_model) -> Prediction:
    return predict(shared_data / WASP_18, shipped_model)


def test_wasp18_b_is_found_outside_the_grid_and_reported_first(wasp18) -> None:
    first = wasp18.candidates[0]
    assert first.outside_grid and first.bin_index == -1
    # Timed with the fitted transit: 6.5e-6 of the period from the catalogue's, 1.5 of its
    # sigma (the polished box's period alone was 7e-5 off, 15.6 sigma).
    assert abs(first.period_days - WASP_18_B_DAYS) < 3 * first.period_err_days
    assert "outside the model grid [1, 40] d, found by BLS" in first.note
    # Its aliases are not reported again: 2P = 1.88 d, which the model scored, and 4P/3 =
    # 1.26 d, whose box holds every third transit.
    for ratio in (2.0, 4 / 3):
        assert not any(abs(p / (ratio * WASP_18_B_DAYS) - 1) < 0.01 for p in wasp18.periods), wasp18.periods
    assert wasp18.duration_bin_probabilities.sum() == pytest.approx(1.0)
    # The seed repository's duration grid (1-20 h, 100 even bins); its top bin is the
    # refined duration's (WASP-18 b: T14 2.2 h).
    np.testing.assert_allclose(np.diff(wasp18.duration_bin_centers_hours), 0.19)
    top = int(np.argmax(wasp18.duration_bin_probabilities))
    assert wasp18.duration_bin_centers_hours[top] == pytest.approx(first.duration_hours, abs=0.095)
    assert 2.0 < first.duration_hours < 2.4
    as_json = json.loads(json.dumps(wasp18.to_dict(), allow_nan=False))
    assert as_json["candidates"][0]["probability"] is None and as_json["candidates"][0]["outside_grid"] is True


def test_an_in_grid_planet_keeps_the_model_candidates(kepler62) -> None:
    # No off-grid box beats Kepler-62 b's SNR: nothing is added.
    assert not any(c.outside_grid for c in kepler62.candidates)
    assert kepler62.periods[0] == pytest.approx(KEPLER62_B_DAYS, rel=1e-3)


def test_transit_times_are_the_observed_transits(wasp18) -> None:
    first = wasp18.candidates[0]
    times = np.asarray(first.transit_times_btjd_or_bkjd)
    time = wasp18.lightcurve.time.value
    cycles = (times - first.t0_btjd_or_bkjd) / first.period_days
    np.testing.assert_allclose(cycles, np.round(cycles), atol=1e-9)
    assert times[0] == first.t0_btjd_or_bkjd and time[0] <= times[0] and times[-1] <= time[-1]
    # Sector 2 (27.4 d, with a gap at the downlink) shows 28 of the 29 transits in its span.
    assert 25 <= len(times) <= int(np.ptp(time) / first.period_days) + 1
    for t in times:
        assert np.any(np.abs(time - t) < 0.5 * first.duration_hours / 24)


def test_uncertainties_are_positive_and_cover_kepler62_b(kepler62) -> None:
    b = kepler62.candidates[0]
    for err in (b.period_err_days, b.t0_err_days, b.duration_err_hours, b.depth_err_ppm):
        assert err is not None and err > 0
    # Five transits in a quarter: the catalogue period is within 3 sigma.
    assert abs(b.period_days - KEPLER62_B_DAYS) < 3 * b.period_err_days
    assert b.depth_ppm / b.depth_err_ppm == pytest.approx(b.snr, rel=0.05)


def test_to_pandas_and_to_table_hold_the_candidates(kepler62) -> None:
    frame = kepler62.to_pandas()
    assert list(frame["rank"]) == list(range(1, len(kepler62.candidates) + 1))
    assert list(frame.columns[1:]) == list(Candidate.JSON_KEYS)
    # The Parquet results of an archive run hold the same keys, in the same order.
    assert CANDIDATE_TYPE.names == list(Candidate.JSON_KEYS)
    np.testing.assert_allclose(frame["period_days"], kepler62.periods)
    table = kepler62.to_table()
    assert table["period_days"].unit == u.day and table["duration_hours"].unit == u.hour
    assert (table["depth_ppm"].quantity[0]).to_value(u.one) == pytest.approx(frame["depth_ppm"][0] * 1e-6)


def test_batch_table_keeps_failed_inputs(kepler62, wasp18) -> None:
    failed = Prediction.failed("missing.fits", "missing.fits: file not found")
    frame = predictions_to_pandas([kepler62, failed, wasp18])
    assert len(frame) == len(kepler62.candidates) + 1 + len(wasp18.candidates)
    row = frame[frame["input"] == "missing.fits"].iloc[0]
    assert row["error"] == "missing.fits: file not found" and row["rank"] == 0 and np.isnan(row["period_days"])
    assert set(frame["target"].dropna()) == {"KIC 9002278", "TIC 100100827"}


def test_plot_returns_the_report_figure(kepler62) -> None:
    fig = kepler62.plot(known_periods_days=[KEPLER62_B_DAYS])
    try:
        assert isinstance(fig, Figure)
        # Light curve, detrended, probabilities, and one fold per candidate.
        # Three light-curve panels, and per candidate its fold and its vetting views.
        assert len(fig.axes) == 3 + 2 * len(kepler62.candidates)
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


def test_the_report_names_an_off_grid_candidate(wasp18) -> None:
    import matplotlib.pyplot as plt

    fig = wasp18.plot()
    try:
        titles = [ax.get_title(loc="left") for ax in fig.axes]
        assert any(t.startswith(f"#1  P = {wasp18.periods[0]:.4f} d   outside the grid (BLS)") for t in titles), titles
    finally:
        plt.close(fig)


def test_fold_puts_the_transit_at_phase_zero(wasp18) -> None:
    folded = wasp18.fold(0)
    assert isinstance(folded, lk.FoldedLightCurve)
    phase_hours = folded.time.value * 24
    first = wasp18.candidates[0]
    inside = np.abs(phase_hours) < 0.25 * first.duration_hours
    outside = np.abs(phase_hours) > first.duration_hours
    flux = folded.flux.value
    depth = np.median(flux[outside]) - np.median(flux[inside])
    # The box depth averages the limb-darkened transit, whose centre is deeper.
    assert 0.9 < depth / (first.depth_ppm * 1e-6) < 1.4
    # Centred: the two halves of the transit are mirror images.
    ingress = np.median(flux[(phase_hours > -0.45 * first.duration_hours) & (phase_hours < -0.2 * first.duration_hours)])
    egress = np.median(flux[(phase_hours < 0.45 * first.duration_hours) & (phase_hours > 0.2 * first.duration_hours)])
    assert abs(ingress - egress) < 0.05 * depth
    assert wasp18.fold(first).time.value == pytest.approx(folded.time.value)
    with pytest.raises(IndexError, match="candidate 9 does not exist"):
        wasp18.fold(9)


def test_off_grid_ranges_and_the_period_range(shared_data, shipped_model) -> None:
    grid = PeriodGrid()
    assert off_grid_ranges(grid, 27.0) == [(0.3, 1.0)]
    assert off_grid_ranges(grid, 90.0)[-1] == (40.0, 45.0)
    assert off_grid_ranges(grid, 90.0, (2.0, 42.0)) == [(40.0, 42.0)]
    restricted = predict(shared_data / WASP_18, shipped_model, period_range_days=(1.0, 3.0))
    assert restricted.periods and all(1.0 <= p <= 3.0 for p in restricted.periods)
    assert "candidates restricted to periods in [1, 3] d" in restricted.notes


def test_a_long_light_curve_folds_the_long_range_as_far_as_the_budget_goes() -> None:
    # 4 years: the short range fits the budget whole; the long range (40-744 d) would
    # need ~4x what is left, so it is cut at a trial period, whose trials are the first
    # ones of the whole range (the cut range is searched exactly as the whole would be).
    cadence_days, n_cells = 29.4244 / 1440, 36_500
    short = CoherentFold(PeriodGrid(0.3, 1.0), cadence_days)
    reached, work = _searchable_to(short, n_cells, n_cells, FOLD_BUDGET)
    assert reached == 1.0 and work < FOLD_BUDGET
    long_range = CoherentFold(PeriodGrid(40.0, 744.0), cadence_days)
    cut, cut_work = _searchable_to(long_range, n_cells, n_cells, FOLD_BUDGET - work)
    assert 60.0 < cut < 150.0 and cut_work <= FOLD_BUDGET - work
    fine = long_range.trials(n_cells)[0]
    kept = CoherentFold(PeriodGrid(40.0, cut), cadence_days).trials(n_cells)[0]
    np.testing.assert_array_equal(kept, fine[:len(kept)])
    assert kept[-1] == cut
    # A quarter: everything fits, many times over.
    assert _searchable_to(long_range, 2 * 2048 // DOWNSAMPLE, 2048, FOLD_BUDGET)[0] == 744.0


def test_the_box_likelihood_is_that_of_the_obvious_fold() -> None:
    # The scans take each cadence's phase from its transit number (a subtraction) in
    # numba; the obvious way folds every cadence with a modulo.
    rng = np.random.default_rng(3)
    time = np.sort(rng.uniform(0.0, 90.0, 4000))
    flux = 1.0 + 1e-3 * rng.standard_normal(len(time))
    period, t0, duration = 3.3, 1.7, 0.12
    near = np.abs((time - t0 + 0.5 * period) % period - 0.5 * period) < 2 * duration
    flux[np.abs((time - t0 + 0.5 * period) % period - 0.5 * period) < 0.5 * duration] -= 2e-3
    rows = (period + rng.uniform(-1e-3, 1e-3, 50), t0 + rng.uniform(-0.06, 0.06, 50),
            duration * rng.uniform(0.5, 1.5, 50))
    cycle = np.round((time[near] - t0) / period)
    fast = box_log_likelihood(time[near], cycle, flux[near], flux.sum(), len(flux), 1e-3, *rows)
    slow = []
    for p, t, d in zip(*rows):
        inside = np.abs((time - t + 0.5 * p) % p - 0.5 * p) < 0.5 * d
        depth = flux[~inside].mean() - flux[inside].mean()
        slow.append(0.5 * depth**2 / (1e-3**2 * (1 / inside.sum() + 1 / (~inside).sum())))
    np.testing.assert_allclose(fast, slow, rtol=1e-9)


def test_the_duration_distribution_is_centred_on_the_refined_duration() -> None:
    from types import SimpleNamespace

    from exoperiod.grid import PeriodGrid
    from exoperiod.search.predict import _duration_distribution

    grid = PeriodGrid(1.0, 20.0, 100)
    sharp = _duration_distribution(grid, [SimpleNamespace(duration_hours=2.94, duration_err_hours=0.01)])
    wide = _duration_distribution(grid, [SimpleNamespace(duration_hours=2.94, duration_err_hours=0.5)])
    assert sharp.sum() == pytest.approx(1.0) and wide.sum() == pytest.approx(1.0)
    assert np.argmax(sharp) == grid.index(2.94) and abs(np.argmax(wide) - grid.index(2.94)) <= 1
    assert (wide > 0.01).sum() > (sharp > 0.01).sum()  # the error widens it
    assert _duration_distribution(grid, []).size == 0
