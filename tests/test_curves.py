"""Whole-light-curve training samples: layouts, injected planets, the written dataset."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from exoperiod.config import load_config
from exoperiod.learning.curves import make_sample, regenerated, write_curves
from exoperiod.learning.datasets.store import DatasetError, sample_features
from exoperiod.learning.train import load_split
from exoperiod.search.preprocess import to_series
from exoperiod.search.model import PeriodModel, features_key


def test_a_planet_is_injected_at_its_total_snr_and_labelled():
    config = load_config()
    sample = make_sample(7, config, layout="kepler", n_segments=3, n_planets=1, snr_range=(20.0, 20.0))
    (planet,) = sample.planets
    assert planet.snr == pytest.approx(20.0)
    assert 0.5 < planet.duration_hours < 15.0
    # The injected box in the series: its in-transit cells sit well below the noise.
    series = sample.series
    t = series.start_time_days + series.cadence_days * np.arange(len(series.flux))
    phase = (t - planet.t0_days + planet.period_days / 2) % planet.period_days - planet.period_days / 2
    inside = (np.abs(phase) < 0.25 * planet.duration_hours / 24) & series.mask
    assert series.flux[inside].mean() < -3 * 20.0 / np.sqrt(series.mask.sum()) / 2


def test_planets_go_into_the_raw_flux_and_the_series_is_what_predict_makes_of_it():
    # A 7-h transit on a fast rotator: its biweight window (0.3 d) is shorter than
    # three durations, so the detrending shaves most of the dip, as it would on a real star.
    config = load_config()
    sample = make_sample(6, config, layout="kepler", n_segments=1, n_planets=1, snr_range=(200.0, 200.0),
                         variability="fast_rotator")
    (planet,) = sample.planets
    series = to_series(sample.raw, config)
    np.testing.assert_array_equal(series.flux, sample.series.flux)
    np.testing.assert_array_equal(series.mask, sample.series.mask)
    detrended = sample.series.detrended
    assert detrended.meta["DETREND_WINDOW_DAYS"] < 3 * planet.duration_hours / 24
    t = np.asarray(detrended.time.value, float)
    phase = (t - planet.t0_days + planet.period_days / 2) % planet.period_days - planet.period_days / 2
    inside = np.abs(phase) < 0.25 * planet.duration_hours / 24
    depth = 1.0 - np.mean(np.asarray(detrended.flux.value, float)[inside])
    assert 0 < depth < 0.5 * planet.rp_rs**2


def test_tess_layout_has_its_orbit_gaps():
    sample = make_sample(3, load_config(), layout="tess", n_segments=2, n_planets=0)
    gaps = np.diff(np.flatnonzero(sample.series.mask)) * sample.series.cadence_days
    assert (gaps > 0.9).sum() >= 3  # one downlink per 13.7-d orbit
    assert sample.planets == []


def test_written_curves_carry_their_features_and_load_for_training(tmp_path):
    config = load_config().model_copy(update={"output_root": str(tmp_path)})
    folder = write_curves(config, 4, seed=1, workers=2)
    table = pd.read_parquet(folder / "metadata.parquet")
    assert len(table) == 4 and set(table["split"]) <= {"train", "val", "test"}
    with np.load(folder / f"{table['sample_id'][0]}.npz", allow_pickle=False) as z:
        assert z["arr_0"].dtype == np.float32 and z["arr_0"].shape == z["mask"].shape
        assert z["arr_1"].shape == (100,) and z["arr_2"].shape == (100,)
        assert str(z["features_key"]) == features_key(config)
        own = z["features"]
        np.testing.assert_array_equal(own, PeriodModel(config).search(z["arr_0"], z["mask"])[1])
    # Resume: a second call writes nothing new and keeps the table.
    assert write_curves(config, 4, seed=1) == folder
    pd.testing.assert_frame_equal(pd.read_parquet(folder / "metadata.parquet"), table)
    loaded = sum(len(load_split(tmp_path, config, split)) for split in ("train", "val", "test"))
    assert loaded == 4
    # Loading searched nothing, so nothing was cached; and a light curve written again under
    # its id is read with its own features, never a cache entry of that id.
    cache = folder / f"features-{features_key(config)}.npz"
    assert not cache.exists()
    np.savez(cache, **{table["sample_id"][0]: np.zeros_like(own)})
    np.testing.assert_array_equal(sample_features(folder, [table["sample_id"][0]], PeriodModel(config))[0], own)


def test_a_written_sample_gives_back_its_raw_light_curve_only_while_its_seed_gives_its_series(tmp_path):
    config = load_config().model_copy(update={"output_root": str(tmp_path)})
    folder = write_curves(config, 2, seed=1)
    sample_id = pd.read_parquet(folder / "metadata.parquet")["sample_id"][0]
    with np.load(folder / f"{sample_id}.npz", allow_pickle=False) as z:
        stored = z["arr_0"]
    again = regenerated(sample_id, stored, config, None)
    # The raw light curve predict would get: preprocessed, it is the stored series again.
    np.testing.assert_allclose(to_series(again.raw, config).flux, stored, atol=1e-5)
    assert np.nanstd(again.raw.flux.value) > np.nanstd(again.series.detrended.flux.value)  # not detrended
    # Another simulator (here: another window) no longer gives the stored series.
    other = config.model_copy(update={"detrend_window_days": 0.5, "adaptive_detrending": False})
    assert regenerated(sample_id, stored, other, None) is None
    assert regenerated(sample_id, stored[::-1].copy(), config, None) is None
    with pytest.raises(DatasetError, match="not the id of a whole light curve"):
        regenerated("synthetic-0001", stored, config, None)


def test_variability_families_change_the_star_not_the_draws():
    config = load_config()
    kwargs = dict(layout="kepler", n_segments=1, n_planets=1, snr_range=(30.0, 30.0))
    gp, fast, flares = (make_sample(5, config, variability=v, **kwargs) for v in ("gp", "fast_rotator", "flares"))
    # The family draws come from their own stream: same planet whatever the family.
    assert gp.planets[0].period_days == fast.planets[0].period_days == flares.planets[0].period_days
    assert [s.source.rsplit(":", 1)[1] for s in (gp, fast, flares)] == ["gp", "fast_rotator", "flares"]
    # A fast rotator (P_rot <= 5 d, >= 0.1 %) gets a short window; flares add upward excursions
    # that the upward clipping removes, so the detrended series stays within the noise.
    assert fast.series.window_days < 1.0
    assert np.max(flares.series.flux[flares.series.mask]) < 6
    with pytest.raises(ValueError, match="variability must be one of"):
        make_sample(5, config, variability="pulsator", **kwargs)
