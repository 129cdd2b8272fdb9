"""The candidates' vetter (exoperiod.search.vetting, exoperiod.learning.vetting).

What it reads is measured on real stars (a hot Jupiter, a spotted K2 star); fitting is
tested on a rule it must find; the shipped model's candidates must carry the vetter's
probability beside the scorer's.
"""

from __future__ import annotations

from dataclasses import replace

import lightkurve as lk
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from exoperiod.cli import app
from exoperiod.grid import PeriodGrid
from exoperiod.learning.curves import SUN_LIKE, add_eclipsing_binary, make_sample
from exoperiod.config import load_config
from exoperiod.learning import vetting as learning_vetting
from exoperiod.learning.vetting import VettingError, collect_candidates, fit_vetter, vetter_seeds
from exoperiod.search.model import VETTING_FEATURES, PeriodModel
from exoperiod.search.predict import predict
from exoperiod.search.preprocess import to_series
from exoperiod.search.readers import read_lightcurve
from exoperiod.search.refine import TransitSearch, refine_bin
from exoperiod.search.vetting import vet, vetting_features

KEPLER_6_Q0 = "lightcurves/kepler/10874614/kplr010874614-2009131105131_llc.fits"
KEPLER_6_B_DAYS = 3.234699
#: EPIC 246981320 (K2 C13, no known planet) spins in ~1.07 d: its best box there is a spot.
SPOTTED_K2 = "lightcurves/k2/246981320/EPIC_246981320_mast.fits"
FEATURE = {name: i for i, name in enumerate(VETTING_FEATURES)}


def _features_of_bin(path, period_days: float, model) -> np.ndarray:
    search = TransitSearch(to_series(read_lightcurve(path), model.config).detrended)
    b = model.grid.index(period_days)
    candidate = refine_bin(search, model.grid.edges_days[b], model.grid.edges_days[b + 1], 0.5, b)
    assert abs(candidate.period_days / period_days - 1) < 0.05
    return vetting_features(search, candidate, 0.5)


def test_a_transit_and_a_spot_look_different_to_the_vetter(shared_data, untrained_model):
    transit = _features_of_bin(shared_data / KEPLER_6_Q0, KEPLER_6_B_DAYS, untrained_model)
    spot = _features_of_bin(shared_data / SPOTTED_K2, 1.07, untrained_model)
    assert transit.shape == spot.shape == (len(VETTING_FEATURES),)
    # A box fits the hot Jupiter far better than a sinusoid; the spot the other way round.
    assert transit[FEATURE["sinusoid_gain"]] < -0.5 < 0 < spot[FEATURE["sinusoid_gain"]]
    # Its depth at P/2 is half its depth (a spot's modulation is there at every phase),
    # its three transits carry about a third each, and half a period later there is
    # nothing, where the spot's fold has a bump.
    f = FEATURE
    assert 0.4 < transit[f["half_period_depth_ratio"]] < 0.6 and spot[f["half_period_depth_ratio"]] < 0.3
    assert transit[f["log_transits"]] == pytest.approx(np.log(3)) and transit[f["largest_transit_share"]] < 0.45
    assert abs(transit[f["asinh_secondary_sigma"]]) < 2 and spot[f["asinh_secondary_sigma"]] < -2
    assert spot[f["log_red_noise"]] > transit[f["log_red_noise"]] + 0.5
    assert transit[FEATURE["scorer_log_odds"]] == pytest.approx(0.0)


@pytest.mark.parametrize("seed", range(6))
def test_an_eclipsing_binary_eclipses_twice_per_period(seed):
    time = np.arange(0.0, 80.0, 30 / 1440)
    flat = lk.LightCurve(time=time, flux=np.ones_like(time))
    lc, period = add_eclipsing_binary(flat, np.random.default_rng(seed), SUN_LIKE, PeriodGrid(1.0, 40.0, 100))
    assert 1.0 <= period <= 40.0
    flux = np.asarray(lc.flux.value, float)
    phase = (time - time[np.argmin(flux)]) / period % 1.0
    primary = 1 - flux[(phase < 0.02) | (phase > 0.98)].min()
    secondary = 1 - flux[np.abs(phase - 0.5) < 0.02].min()
    outside = flux[(np.abs(phase - 0.25) < 0.1) | (np.abs(phase - 0.75) < 0.1)]
    # An eclipse at phase 0, a shallower (or absent) one at phase 0.5, nothing between.
    assert primary > 0 and 0 <= secondary <= primary
    assert np.allclose(outside, 1.0)


def test_a_binary_leaves_every_other_draw_of_a_training_curve_alone():
    plain, binary = (make_sample(123, load_config(), binary=b) for b in (False, True))
    assert "binary_period_days" in binary.meta and "binary_period_days" not in plain.meta
    assert (plain.layout, plain.source) == (binary.layout, binary.source)
    assert [p.period_days for p in plain.planets] == [p.period_days for p in binary.planets]
    assert not np.array_equal(plain.raw.flux.value, binary.raw.flux.value)


def test_a_candidate_without_data_in_its_transits_keeps_the_scorer_s_probability(kepler62, shipped_model):
    # One transit, a year after the quarter: no cadence to measure (astropy's compute_stats
    # fails on that; a fitted ephemeris in sparse data can end up so).
    search = TransitSearch(kepler62.series.detrended)
    away = replace(kepler62.candidates[0], period_days=1000.0, t0_btjd_or_bkjd=float(search.time_days[-1]) + 365.0,
                   probability=0.42, note=None)
    assert vetting_features(search, away, 0.42) is None
    kept = vet(shipped_model.vetter, search, away)
    assert kept.probability == kept.scorer_probability == 0.42
    assert "not vetted" in kept.note


def _rule(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Planets are the candidates with a box SNR above 2 that a sinusoid does not explain."""
    x = np.random.default_rng(seed).standard_normal((n, len(VETTING_FEATURES))).astype(np.float32)
    return x, (x[:, FEATURE["sinusoid_gain"]] < 0) & (x[:, FEATURE["asinh_snr"]] > -0.5)


def test_fitting_finds_the_rule_and_is_reproducible():
    x, y = _rule(3000, 0)
    vetter = fit_vetter(x, y, seed=1)
    test_x, test_y = _rule(2000, 1)
    p = vetter.probability(test_x)
    assert np.mean((p > 0.5) == test_y) > 0.95
    assert vetter.probability(test_x[0]) == pytest.approx(p[0])
    again = fit_vetter(x, y, seed=1)
    for (name, a), (_, b) in zip(vetter.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), name


def test_fitting_refuses_what_it_cannot_learn_from():
    x, y = _rule(50, 0)
    with pytest.raises(VettingError, match="all false"):
        fit_vetter(x, np.zeros(50, bool), seed=0)
    with pytest.raises(VettingError, match=r"\(n, 12\)"):
        fit_vetter(x[:, :5], y, seed=0)


def test_a_model_file_keeps_its_vetter(tmp_path, untrained_model):
    x, y = _rule(500, 0)
    vetted = PeriodModel(untrained_model.config, untrained_model.net, vetter=fit_vetter(x, y, seed=0))
    vetted.save(tmp_path / "vetted.pt")
    untrained_model.save(tmp_path / "plain.pt")
    loaded = PeriodModel.load(tmp_path / "vetted.pt")
    assert np.array_equal(loaded.vetter.probability(x), vetted.vetter.probability(x))
    assert PeriodModel.load(tmp_path / "plain.pt").vetter is None


def test_the_shipped_model_s_candidates_carry_both_probabilities(shared_data, shipped_model):
    assert shipped_model.vetter is not None
    prediction = predict(shared_data / KEPLER_6_Q0, shipped_model, max_planets=1)
    first = prediction.candidates[0]
    assert abs(first.period_days / KEPLER_6_B_DAYS - 1) < 0.01
    # A 1 %-deep hot Jupiter in 10 days of data (three transits): the scorer is unsure
    # (0.52), its transits are not.
    assert first.probability > max(0.7, first.scorer_probability + 0.2)
    record = prediction.to_dict()["candidates"][0]
    assert record["scorer_probability"] == first.scorer_probability != first.probability


def test_a_candidate_s_probability_is_the_vetter_s_reading_of_its_transits(kepler62, shipped_model):
    # Kepler-62 Q13 is detrended once: the first pass's candidates were vetted on the light
    # curve the prediction carries (a later pass's, on it with the planets before masked).
    assert not any("detrended again" in note for note in kepler62.notes)
    search = TransitSearch(kepler62.series.detrended)
    first_pass = [c for c in kepler62.candidates if c.search_pass == 0]
    assert len(first_pass) >= 2
    for candidate in first_pass:
        features = vetting_features(search, candidate, candidate.scorer_probability)
        assert np.array_equal(candidate.vetting_features, features)
        assert candidate.probability == pytest.approx(shipped_model.vetter.probability(features), abs=1e-6)


def test_without_a_vetter_the_probability_is_the_scorer_s(shared_data, shipped_model):
    plain = PeriodModel(shipped_model.config, shipped_model.net, temperature=shipped_model.temperature)
    prediction = predict(shared_data / KEPLER_6_Q0, plain, max_planets=1)
    assert all(c.probability == c.scorer_probability for c in prediction.candidates)
    # What a vetter would read is measured all the same: a vetter is fitted on it.
    assert all(c.vetting_features is not None for c in prediction.candidates if not c.longer_than_a_planet)
    vetted = predict(shared_data / KEPLER_6_Q0, shipped_model, max_planets=1)
    assert [c.scorer_probability for c in vetted.candidates] == [c.scorer_probability for c in prediction.candidates]


def test_candidates_are_collected_once_and_resume(shared_data, shipped_model, tmp_path, monkeypatch):
    model_path = tmp_path / "model.pt"
    shipped_model.save(model_path)
    searched = []
    rows_of = learning_vetting.candidate_rows

    def counted(seed, **kwargs):
        searched.append(seed)
        return rows_of(seed, **kwargs)

    monkeypatch.setattr(learning_vetting, "candidate_rows", counted)
    config = shipped_model.config.model_copy(update={"seed": 5})
    first = collect_candidates(model_path, config, 2, tmp_path, shared_data)
    again = collect_candidates(model_path, config, 2, tmp_path, shared_data, binaries=1)
    seeds = vetter_seeds(config, 2, binaries=1)
    assert seeds[-1] == 7_000_000  # the light curve with a binary comes from a block of its own
    assert searched == seeds  # the first two once, then only the third
    assert set(again["seed"]) <= set(seeds) and len(again) >= len(first)
    assert again[again["seed"].isin(seeds[:2])].reset_index(drop=True).equals(first.reset_index(drop=True))
    assert set(again.columns) >= {"seed", "planet", *VETTING_FEATURES}
    # The vetter's light curves are never the training curves of the same seed.
    assert not set(vetter_seeds(config, 3000, 3000)) & {config.seed * 1_000_000 + i for i in range(3000)}


def test_fit_vetter_command_writes_the_model_with_its_vetter(shared_data, shipped_model, tmp_path):
    plain = PeriodModel(shipped_model.config, shipped_model.net, card=shipped_model.card,
                        temperature=shipped_model.temperature)
    plain.save(tmp_path / "plain.pt")
    result = CliRunner().invoke(app, ["fit-vetter", "--model", str(tmp_path / "plain.pt"),
                                      "--out", str(tmp_path / "vetted.pt"), "--curves", "2", "--binaries", "0",
                                      "--workers", "1"])
    assert result.exit_code == 0, result.output
    vetted = PeriodModel.load(tmp_path / "vetted.pt")
    card = vetted.card["vetter"]
    assert (card["light_curves"], card["with_binaries"]) == (2, 0) and 0 < card["planets"] < card["candidates"]
    assert f"vetter fitted on {card['candidates']} candidates" in result.output
    # The scorer is the same; only the vetter was added.
    for (name, a), (_, b) in zip(vetted.net.state_dict().items(), shipped_model.net.state_dict().items()):
        assert torch.equal(a, b), name
    assert (tmp_path / "vetting_candidates.csv").is_file()


def test_fit_vetter_command_names_a_missing_model(tmp_path):
    result = CliRunner().invoke(app, ["fit-vetter", "--model", str(tmp_path / "none.pt"),
                                      "--out", str(tmp_path / "out.pt")])
    assert result.exit_code == 2
    assert "none.pt: no such model file" in result.output
    assert not (tmp_path / "out.pt").exists()
