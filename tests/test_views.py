"""Vetting views (exoperiod.search.views): Astronet / ExoMiner views of real hosts and a non-host.

The ephemerides are the KOI cumulative table's (period, ``koi_time0bk``, ``koi_duration``),
so that these tests judge the views, not the model that found the candidates; the views
are made from the detrended light curve of a real prediction.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from exoperiod.cli import app
from exoperiod.search.predict import Prediction, predict, predict_paths
from exoperiod.search.views import (
    GLOBAL_BINS,
    LOCAL_BINS,
    VIEW_NAMES,
    local_bin_centres_durations,
    median_bins,
    vetting_views,
    write_views,
)

KEPLER = "lightcurves/kepler"
KEPLER_62_Q13 = f"{KEPLER}/9002278/kplr009002278-2012179063303_llc.fits"
KEPLER_235_Q1_Q17 = f"{KEPLER}/4139816/kplr004139816_Q1-Q17_anomaly_standardized.npz"
#: KIC 1430163: no KOI, 136 ppm scatter after detrending (a quiet non-host).
NON_HOST_Q7 = f"{KEPLER}/1430163/kplr001430163-2010355172524_llc.fits"
#: (period days, koi_time0bk BKJD, koi_duration hours) from the KOI cumulative table.
KEPLER_62 = {"d": (18.164073, 180.812425, 2.9355), "b": (5.714897, 170.921904, 2.3572)}
KEPLER_235 = {"d": (20.060363, 147.465540, 3.3203), "b": (3.340219, 171.979062, 1.9104)}
#: Local-view bin centres, in durations from mid-transit (Astronet's: 0.16 wide, ±4 durations).
LOCAL_X = -3.92 + 0.0392 * np.arange(201)
#: The transit's bottom (the central bins) and the baseline well clear of the transit.
CENTRE = np.abs(LOCAL_X) < 0.25
OUTSIDE = np.abs(LOCAL_X) > 1.5
#: Measured: the central median is -0.78 (Kepler-62 d, b) to -0.92 (Kepler-235 d, b) of the
#: deepest bin, and the baseline scatter 0.03 - 0.11; the non-host gives +0.12 and 0.34.
HOST_CENTRE = (-1.1, -0.6)
HOST_BASELINE_SCATTER = 0.2


@pytest.fixture(scope="module")
def kepler235(shared_data, shipped_model) -> Prediction:
    return predict(shared_data / KEPLER_235_Q1_Q17, shipped_model)


@pytest.fixture(scope="module")
def non_host(shared_data, shipped_model) -> Prediction:
    return predict(shared_data / NON_HOST_Q7, shipped_model)


def _centre(view: np.ndarray) -> float:
    return float(np.median(view[CENTRE]))


@pytest.mark.parametrize("host, planet", [("kepler62", "d"), ("kepler62", "b"), ("kepler235", "d"),
                                          ("kepler235", "b")])
def test_a_real_planet_is_centred_in_the_local_view_at_depth_minus_one(request, host, planet):
    prediction = request.getfixturevalue(host)
    ephemeris = (KEPLER_62 if host == "kepler62" else KEPLER_235)[planet]
    views = vetting_views(prediction.series.detrended, *ephemeris)
    local = views["local_view"]
    assert local.min() == -1.0 and abs(float(np.median(local))) < 1e-12
    assert abs(LOCAL_X[np.argmin(local)]) < 0.5, "the deepest bin is not at mid-transit"
    assert HOST_CENTRE[0] < _centre(local) < HOST_CENTRE[1]
    assert np.std(local[OUTSIDE]) < HOST_BASELINE_SCATTER
    # The global view's deepest bin is the transit too, at the middle of the phase.
    period_days, _, duration_hours = ephemeris
    offset_hours = (np.argmin(views["global_view"]) - GLOBAL_BINS // 2) * period_days / GLOBAL_BINS * 24
    assert abs(offset_hours) < 0.5 * duration_hours


def test_a_non_hosts_views_have_no_dip(non_host):
    detrended = non_host.series.detrended
    views = vetting_views(detrended, 7.3, float(detrended.time.value[0]) + 1.0, 3.0)
    local = views["local_view"]
    # Normalised by its deepest (noise) bin, the centre sits at the baseline, in the scatter.
    assert _centre(local) > -0.5
    assert -_centre(local) < 2 * np.std(local[OUTSIDE])


def test_odd_and_even_views_agree_for_a_planet_and_not_for_a_false_period(kepler62):
    detrended = kepler62.series.detrended
    planet = vetting_views(detrended, *KEPLER_62["d"])
    assert abs(_centre(planet["odd_local_view"]) - _centre(planet["even_local_view"])) < 0.25
    assert _centre(planet["odd_local_view"]) < -0.6
    # At 3/2 of b's period, every other fold lands on a transit of b: one of the two
    # views has the transit, the other does not (as an eclipsing binary at 2P would).
    period, t0, duration = KEPLER_62["b"]
    alias = vetting_views(detrended, 1.5 * period, t0, duration)
    assert abs(_centre(alias["odd_local_view"]) - _centre(alias["even_local_view"])) > 0.5
    # A planet has no secondary eclipse: its secondary view is flat at the transit's scale.
    assert abs(_centre(planet["secondary_view"])) < 0.25


def test_the_secondary_view_finds_an_injected_eclipse_at_its_depth(non_host):
    # An eclipsing binary on a real quiet star: a 3-h, 2,000-ppm primary every 5.3 d and a
    # 600-ppm secondary at phase 0.4 (an eccentric orbit), boxes cut into the detrended flux.
    lc = non_host.series.detrended.copy()
    time_days = np.asarray(lc.time.value, dtype=float)
    period, t0, duration_hours = 5.3, float(time_days[0]) + 1.7, 3.0
    phase = ((time_days - t0) / period) % 1.0
    half = 0.5 * duration_hours / 24 / period
    eclipses = 2000e-6 * ((phase < half) | (phase > 1 - half)) + 600e-6 * (np.abs(phase - 0.4) < half)
    lc.flux = lc.flux * (1 - eclipses)
    views = vetting_views(lc, period, t0, duration_hours)
    assert float(views["secondary_phase"]) == pytest.approx(0.4, abs=0.01)
    # Scaled by the primary's factor: the secondary is 0.3 of the transit, as injected.
    assert _centre(views["secondary_view"]) / _centre(views["local_view"]) == pytest.approx(0.3, abs=0.1)


def test_shapes_and_parameters_are_as_documented(kepler62):
    views = kepler62.views(0)
    assert views["global_view"].shape == (GLOBAL_BINS,) == (2001,)
    for name in VIEW_NAMES[1:]:
        assert views[name].shape == (LOCAL_BINS,) == (201,)
        assert np.isfinite(views[name]).all()
    candidate = kepler62.candidates[0]
    assert float(views["period_days"]) == candidate.period_days
    assert float(views["t0_btjd_or_bkjd"]) == candidate.t0_btjd_or_bkjd
    assert float(views["duration_hours"]) == candidate.duration_hours
    assert int(views["global_bins"]) == 2001 and int(views["local_bins"]) == 201
    assert float(views["local_half_width_durations"]) == pytest.approx(4.0)
    np.testing.assert_allclose(local_bin_centres_durations(views), LOCAL_X, atol=1e-12)
    assert 0.0 <= float(views["secondary_phase"]) < 1.0 and float(views["local_view_scale"]) > 0
    # At a short period the local view stops at half the period on either side, never wraps.
    short = vetting_views(kepler62.series.detrended, 0.5, candidate.t0_btjd_or_bkjd, 3.5)
    assert float(short["local_half_width_durations"]) == pytest.approx(6.0 / 3.5)
    assert short["local_view"].shape == (201,)
    # The API takes the candidate itself as well as its index.
    np.testing.assert_array_equal(kepler62.views(candidate)["local_view"], views["local_view"])


def test_median_bins_follow_astronets_overlapping_bins():
    # On a ramp, the median of bin i is the middle of [lo + i s, lo + i s + width).
    x = np.linspace(-4.0, 4.0, 80_001)
    width = 0.16
    binned = median_bins(x, x, -4.0, 4.0, 201, width, empty=np.nan)
    spacing = (8.0 - width) / 200
    np.testing.assert_allclose(binned, -4.0 + spacing * np.arange(201) + width / 2, atol=1e-4)
    assert binned[100] == pytest.approx(0.0, abs=1e-4)
    # Empty bins are interpolated between their neighbours, never left at NaN.
    gappy = np.abs(x) > 1.0
    filled = median_bins(x[gappy], x[gappy], -4.0, 4.0, 201, width, empty=np.nan)
    assert np.isfinite(filled).all() and np.all(np.diff(filled) >= 0)


def test_bad_parameters_are_one_clear_error(kepler62):
    with pytest.raises(ValueError, match="positive period and duration"):
        vetting_views(kepler62.series.detrended, 0.0, 0.0, 2.0)
    stripped = Prediction.failed("x.fits", "no data")
    stripped.candidates = kepler62.candidates
    with pytest.raises(ValueError, match="x.fits: the prediction carries no light curve"):
        stripped.views(0)


def test_views_round_trip_through_npz(tmp_path, kepler62):
    written = write_views(kepler62, tmp_path / "kepler62")
    assert [p.name for p in written] == [f"kepler62.{n}.npz" for n in range(1, len(kepler62.candidates) + 1)]
    assert sorted(tmp_path.iterdir()) == sorted(written), "a temporary file was left behind"
    for index, path in enumerate(written):
        expected = kepler62.views(index)
        with np.load(path) as loaded:
            assert sorted(loaded.files) == sorted(expected)
            for key, value in expected.items():
                np.testing.assert_array_equal(loaded[key], value)


def test_views_that_cannot_be_written_are_a_note_not_a_lost_prediction(tmp_path, shared_data, shipped_model):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    [prediction] = predict_paths([shared_data / KEPLER_62_Q13], shipped_model, max_planets=1,
                                 views_dir=blocker / "views")
    assert prediction.error is None and prediction.candidates
    assert any(note.startswith("views not written: ") for note in prediction.notes), prediction.notes


def test_cli_views_writes_one_file_per_candidate(tmp_path, shared_data, shipped_model):
    out_json = tmp_path / "out.json"
    result = CliRunner().invoke(app, ["predict", str(shared_data / KEPLER_62_Q13), "--views", str(tmp_path / "views"),
                                      "--json", str(out_json)])
    assert result.exit_code == 0, result.output
    candidates = json.loads(out_json.read_text())[0]["candidates"]
    files = sorted((tmp_path / "views").iterdir())
    assert [f.name for f in files] == [f"kplr009002278-2012179063303_llc.fits.{n}.npz"
                                       for n in range(1, len(candidates) + 1)]
    with np.load(files[0]) as first:
        assert float(first["period_days"]) == pytest.approx(candidates[0]["period_days"])
        assert first["local_view"].shape == (201,)


def test_the_report_draws_the_same_views_a_vetting_model_gets(kepler62):
    import matplotlib.pyplot as plt

    from exoperiod.search.plots import report_figure

    fig = report_figure(kepler62, ())
    try:
        panels = [ax for ax in fig.axes if "vetting views" in ax.get_title(loc="left")]
        assert len(panels) == len(kepler62.candidates)
        for index, ax in enumerate(panels):
            drawn = {line.get_label(): line.get_ydata() for line in ax.get_lines()}
            views = kepler62.views(index)
            for label, name in (("local view", "local_view"), ("odd transits", "odd_local_view"),
                                ("even transits", "even_local_view")):
                np.testing.assert_array_equal(drawn[label], views[name])
    finally:
        plt.close(fig)
