"""Config, period grid and labels, and preprocessing on real Kepler data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from astropy.timeseries import BoxLeastSquares

from exoperiod.config import ConfigError, load_config
from exoperiod.grid import PeriodGrid, period_weights
from exoperiod.learning.inject import Planet, Star, inject_transits
from exoperiod.search.preprocess import PreprocessError, to_windows
from exoperiod.search.readers import read_lightcurve

REPO = Path(__file__).resolve().parents[1]
NON_HOST_Q7 = "lightcurves/kepler/1430163/kplr001430163-2010355172524_llc.fits"  # quiet: ~110 ppm
KEPLER62_Q13 = "lightcurves/kepler/9002278/kplr009002278-2012179063303_llc.fits"

SEED_CONFIG = {  # the seed project's config.json keys, as they are
    "username": "someone", "key": "0123456789abcdef", "dataset_name": "nasa/kepler-exoplanet-search-results",
    "star_catalog_files": ["stars.csv"], "positive_sample_count": 10, "negative_sample_count": 10,
    "synthetic_samples_count": 10, "planets_per_synthetic_star": 3, "period_filter": 40,
    "valid_lightcurve_lenght_threshold": 0.6, "distribution_params": {"period": {"min": 1, "max": 40, "bins": 100}},
    "lightcurve_length": 1500, "min_lightcurve_length": 1000,
    "positive": "positive", "negative": "negative", "synthetic": "synthetic",
}


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    return path


def test_seed_config_keys_are_accepted_and_the_key_stays_secret(tmp_path):
    config = load_config(_write(tmp_path, SEED_CONFIG))
    assert config.valid_lightcurve_length_threshold == 0.6
    assert config.lightcurve_length == 1500
    assert "0123456789abcdef" not in repr(config) and "0123456789abcdef" not in str(config.model_dump())
    assert config.key.get_secret_value() == "0123456789abcdef"


def test_shipped_config_files_agree():
    assert load_config(REPO / "config.json") == load_config()


@pytest.mark.parametrize("change, key", [
    ({"colour": "blue"}, "colour"),
    ({"distribution_params": {"period": {"min": 40, "max": 1, "bins": 100}}}, "distribution_params.period"),
    ({"distribution_params": {"period": {"min": 1, "max": 40, "bins": 1}}}, "distribution_params.period.bins"),
    ({"negative_sample_count": -1}, "negative_sample_count"),
    ({"distribution_params": {"period": {"min": 1, "max": 40, "bins": 10, "spacing": "cubic"}}},
     "distribution_params.period.spacing"),
])
def test_bad_config_names_the_key_in_one_line(tmp_path, change, key):
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, {**SEED_CONFIG, **change}))
    message = str(err.value)
    assert "\n" not in message and key in message and "config.json" in message


def test_broken_json_is_one_line(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"seed": 1,')
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(path)


def test_grid_edges_centres_and_index():
    grid = PeriodGrid(1.0, 40.0, 100, "log")
    assert grid.edges_days[0] == pytest.approx(1.0) and grid.edges_days[-1] == pytest.approx(40.0)
    assert np.allclose(np.diff(np.log(grid.edges_days)), np.log(40) / 100)
    assert grid.index(1.0) == 0 and grid.index(40.0) == 99 and grid.index(41.0) == -1
    assert all(grid.index(c) == i for i, c in enumerate(grid.centers_days))
    linear = PeriodGrid(1.0, 41.0, 40, "linear")
    assert np.allclose(np.diff(linear.edges_days), 1.0) and linear.index(10.5) == 9


def test_labels_of_kepler_235_from_the_koi_table(shared_data):
    from exoperiod.learning.catalog import read_koi_table

    koi = read_koi_table(shared_data / "tables" / "koi_cumulative.csv")
    planets = koi[(koi["kepid"] == 4139816) & (koi["koi_disposition"] == "CONFIRMED")]
    assert len(planets) == 4  # b 3.34 d, c 7.83 d, d 20.06 d, e 46.18 d
    grid = load_config().grid()
    errors = (planets["koi_period_err1"].abs() + planets["koi_period_err2"].abs()) / 2
    labels = period_weights(grid, planets["koi_period"], errors)
    assert labels.n_outside == 1  # Kepler-235 e is beyond 40 d
    inside = planets["koi_period"][planets["koi_period"] < 40]
    for period in inside:
        assert labels.weights[grid.index(period)] > 0.3
    peaks = [i for i in range(1, grid.bins - 1)
             if labels.weights[i] >= labels.weights[i - 1] and labels.weights[i] > labels.weights[i + 1]]
    assert sorted(peaks) == sorted(grid.index(p) for p in inside)
    far = np.ones(grid.bins, bool)
    for period in inside:
        far[max(grid.index(period) - 2, 0): grid.index(period) + 3] = False
    assert labels.weights[far].max() < 1e-3
    assert np.all((labels.weights >= 0) & (labels.weights <= 1))


def test_label_width_follows_the_period_error():
    grid = PeriodGrid()
    sharp = period_weights(grid, [10.0], [1e-5]).weights
    wide = period_weights(grid, [10.0], [1.5]).weights
    assert (sharp > 0.01).sum() <= 3 and (wide > 0.01).sum() > 5
    assert period_weights(grid, []).weights.sum() == 0


def test_injected_10_day_transit_survives_preprocessing(shared_data):
    """The detrending must keep transits: BLS finds an injected 10-d planet at 10 d +- 1 %."""
    lc = read_lightcurve(shared_data / NON_HOST_Q7)
    star = Star(radius_rsun=1.0, mass_msun=1.0, teff_k=5700, logg_cgs=4.44)
    planet = Planet(period_days=10.0, t0_days=float(lc.time.value[0]) + 3.3, rp_rs=0.02, impact=0.3)
    windows = to_windows(inject_transits(lc, [planet], star), load_config())
    assert windows.flux.shape == (1, 4096) and windows.mask.sum() > 3500
    flat = windows.detrended
    periods = np.exp(np.linspace(np.log(1.0), np.log(40.0), 20000))
    result = BoxLeastSquares(flat.time.value, flat.flux.value).power(periods, [0.1, 0.15, 0.2, 0.3])
    assert result.period[np.argmax(result.power)] == pytest.approx(10.0, rel=0.01)
    # The transits are in the model window too, as dips of many noise units.
    in_transit = ((windows.time_days(0) - planet.t0_days + 0.1) % 10.0) < 0.2
    assert windows.flux[0][in_transit & windows.mask[0]].mean() < -3


def test_windows_keep_gaps_as_gaps(shared_data):
    config = load_config()
    lc = read_lightcurve(shared_data / KEPLER62_Q13)
    windows = to_windows(lc, config)
    flux, mask = windows.flux[0], windows.mask[0]
    assert np.all(flux[~mask] == 0)
    assert 3800 < mask.sum() <= 4241  # Kepler-62 Q13 has 4,241 finite cadences; some fall after the window
    assert abs(np.median(flux[mask])) < 0.1 and 0.8 < np.std(flux[mask]) < 1.5
    assert np.max(flux[mask]) < 6  # upward outliers are clipped
    # The monthly downlink gap is a masked run, not interpolated flux.
    runs = np.diff(np.flatnonzero(np.diff(mask.astype(int)) != 0))
    assert runs.size and runs.max() > 20


def test_long_light_curves_become_many_windows_and_short_ones_fail(shared_data):
    config = load_config()
    long = to_windows(read_lightcurve(shared_data / "lightcurves/kepler/4139816/kplr004139816_Q1-Q17_anomaly_standardized.npz"), config)
    assert len(long) >= 15
    assert np.all(np.diff(long.start_time_days) >= config.window_days - 1e-6)
    short = read_lightcurve(shared_data / "lightcurves/kepler/10874614/kplr010874614-2009131105131_llc.fits")
    with pytest.raises(PreprocessError, match="min_lightcurve_length"):
        to_windows(short, config)


def test_short_cadence_is_binned_to_the_model_cadence(shared_data):
    lc = read_lightcurve(shared_data / "lightcurves/tess/100100827/wasp18b.fits")
    windows = to_windows(lc, load_config())
    assert windows.cadence_days == pytest.approx(29.4244 / 1440)
    # 27 d of 2-min data fill about a third of an 84-d window.
    assert 1000 < windows.mask[0].sum() < 1400
