"""Simulated Kepler stars and transit injection (exoperiod.learning.simulate, exoperiod.learning.inject)."""

from __future__ import annotations

import time
from dataclasses import replace
from itertools import combinations

import batman
import lightkurve as lk
import numpy as np
import pytest

from exoperiod.learning.inject import (
    RP_RS_MAX,
    Planet,
    Star,
    a_over_rstar,
    inject_transits,
    limb_darkening_kepler,
    planet_for_snr,
    sample_planets,
    transit_duration_hours,
    transit_model,
    transit_snr,
)
from exoperiod.learning.simulate import (
    KEPLER_LONG_CADENCE_MINUTES,
    SimulatedStar,
    noise_per_cadence_ppm,
    sample_star,
    simulate_lightcurve,
    simulate_star,
)
from exoperiod.paths import shared_data_dir

SUN = Star(radius_rsun=1.0, mass_msun=1.0, teff_k=5772.0, logg_cgs=4.438)
REAL_QUARTER = "lightcurves/kepler/9726699/kplr009726699-2009350155506_llc.fits"


def quiet_star(cdpp6_ppm: float = 60.0, has_systematics: bool = False) -> SimulatedStar:
    return SimulatedStar(
        star_id="TEST",
        star=SUN,
        cdpp6_ppm=cdpp6_ppm,
        noise_ppm_per_cadence=noise_per_cadence_ppm(cdpp6_ppm),
        rotation_period_days=12.0,
        variability_ppm=1500.0,
        has_systematics=has_systematics,
    )


def batman_reference(
    t: np.ndarray, planet: Planet, star: Star, exposure_minutes: float, supersample: int
) -> np.ndarray:
    """batman on every cadence, without exoperiod's near-transit window."""
    params = batman.TransitParams()
    params.t0, params.per, params.rp = planet.t0_days, planet.period_days, planet.rp_rs
    params.a = a_over_rstar(planet.period_days, star.density_gcc)
    params.inc = np.degrees(np.arccos(planet.impact / params.a))
    params.ecc, params.w, params.limb_dark = 0.0, 90.0, "quadratic"
    params.u = list(limb_darkening_kepler(star.teff_k, star.logg_cgs))
    model = batman.TransitModel(
        params, t, supersample_factor=supersample, exp_time=exposure_minutes / 1440.0
    )
    return model.light_curve(params)


def robust_point_to_point(flux: np.ndarray) -> float:
    """White-noise sigma from the MAD of first differences (insensitive to slow trends)."""
    d = np.diff(flux[np.isfinite(flux)])
    return 1.4826 * np.median(np.abs(d - np.median(d))) / np.sqrt(2.0)


def valid_times(lc: lk.LightCurve) -> np.ndarray:
    return lc.time.value[np.isfinite(lc.flux.value)]


# --- simulate -------------------------------------------------------------------------


def test_same_seed_same_light_curve_and_different_seed_differs():
    lc1, sim1 = simulate_star(123, "A")
    lc2, sim2 = simulate_star(123, "A")
    lc3, _ = simulate_star(124, "A")
    assert sim1 == sim2
    np.testing.assert_array_equal(lc1.time.value, lc2.time.value)
    np.testing.assert_array_equal(lc1.flux.value, lc2.flux.value)  # NaNs in the same places
    np.testing.assert_array_equal(lc1.quality.value, lc2.quality.value)
    assert len(lc1) != len(lc3) or not np.allclose(lc1.flux.value, lc3.flux.value, equal_nan=True)


def test_long_lived_spots_repeat_their_pattern_rotations_later():
    base = replace(sample_star(np.random.default_rng(8), "SPOTS"), rotation_period_days=3.0,
                   variability_ppm=5000.0, has_systematics=False)

    def correlation_after(q0: float, rotations: int) -> float:
        lc = simulate_lightcurve(replace(base, spot_q0=q0), np.random.default_rng(9), duration_days=90.0)
        time, flux = np.asarray(lc.time.value, float), np.asarray(lc.flux.value, float) - 1.0
        later = np.interp(time + rotations * 3.0, time, flux, right=np.nan)
        ok = np.isfinite(flux) & np.isfinite(later)
        return float(np.corrcoef(flux[ok], later[ok])[0, 1])

    # Spots of Q0 = 1 are forgotten after a few rotations; Q0 = 100 keeps the same pattern.
    assert correlation_after(1.0, 5) < 0.3
    assert correlation_after(100.0, 5) > 0.7


def test_light_curve_is_kepler_like_with_gaps_flags_and_expected_white_noise():
    sim = quiet_star()
    lc = simulate_lightcurve(sim, np.random.default_rng(7), start_bkjd=500.0)
    t = lc.time.value
    f = lc.flux.value
    q = lc.quality.value

    assert lc.time.format == "bkjd"
    assert t[0] == pytest.approx(500.0)
    steps = np.diff(t) * 1440.0
    assert np.median(steps) == pytest.approx(KEPLER_LONG_CADENCE_MINUTES, abs=1e-6)
    assert (np.diff(t) > 0.5).sum() >= 2, "a quarter has at least two monthly downlink gaps"
    assert 3800 < len(lc) < 4410

    assert 0.005 < np.mean(q != 0) < 0.08, "a few per cent of cadences are flagged"
    assert np.isnan(f).any() and np.all(q[np.isnan(f)] != 0), "NaN flux only where flagged"
    assert set(np.unique(q)) <= {0, 1, 2, 4, 32, 128, 1024} | {1 | 128, 4 | 128, 32 | 128}

    assert np.nanmedian(f) == pytest.approx(1.0, abs=1e-12)
    sigma = sim.noise_ppm_per_cadence * 1e-6
    np.testing.assert_allclose(lc.flux_err.value, sigma, rtol=1e-3)
    assert robust_point_to_point(f) == pytest.approx(sigma, rel=0.08)
    # The variability is really there: the total scatter is well above the white noise.
    assert np.nanstd(f) > 3 * sigma

    assert lc.meta["MISSION"] == "Kepler" and lc.meta["SIMULATED"] is True
    assert lc.meta["LABEL"] == "TEST" and lc.meta["TARGETID"] is None
    assert lc.meta["ROTATION_PERIOD_DAYS"] == 12.0 and lc.meta["TEFF"] == SUN.teff_k


@pytest.mark.parametrize("cdpp6_ppm", [25.0, 400.0])
def test_white_noise_follows_cdpp_with_systematics(cdpp6_ppm):
    sim = quiet_star(cdpp6_ppm, has_systematics=True)
    lc = simulate_lightcurve(sim, np.random.default_rng(3))
    expected = noise_per_cadence_ppm(cdpp6_ppm) * 1e-6
    assert robust_point_to_point(lc.flux.value) == pytest.approx(expected, rel=0.1)


def test_sampled_stars_follow_documented_priors():
    rng = np.random.default_rng(11)
    stars = [sample_star(rng, f"S{i}") for i in range(400)]
    teff = np.array([s.star.teff_k for s in stars])
    logg = np.array([s.star.logg_cgs for s in stars])
    cdpp = np.array([s.cdpp6_ppm for s in stars])
    prot = np.array([s.rotation_period_days for s in stars])
    amp = np.array([s.variability_ppm for s in stars])
    assert teff.min() >= 3800 and teff.max() <= 6800
    assert 3.9 < logg.min() and logg.max() < 4.9
    assert cdpp.min() >= 20 and cdpp.max() <= 1000
    assert 80 < np.median(cdpp) < 125
    assert prot.min() >= 1 and prot.max() <= 40
    assert amp.min() >= 100 and amp.max() <= 10_000
    assert 0.2 < np.mean([s.has_systematics for s in stars]) < 0.4
    for s in stars[:20]:
        assert s.noise_ppm_per_cadence == pytest.approx(3.498 * s.cdpp6_ppm, rel=1e-3)
        g = 10 ** s.star.logg_cgs
        assert g == pytest.approx(2.7398e4 * s.star.mass_msun / s.star.radius_rsun**2, rel=1e-3)


# --- transit geometry and model -------------------------------------------------------


def test_a_over_rstar_for_earth_and_sun():
    assert SUN.density_gcc == pytest.approx(1.41, abs=0.01)
    assert a_over_rstar(365.25, 1.41) == pytest.approx(215.0, rel=0.01)


def test_limb_darkening_table():
    assert limb_darkening_kepler(5800.0, 4.5) == pytest.approx((0.4883, 0.1822))
    u1, u2 = limb_darkening_kepler(5772.0, 4.438)
    assert 0.45 < u1 < 0.55 and 0.15 < u2 < 0.22
    # Cooler stars are more limb-darkened in the Kepler band; outside the grid: its edge.
    assert sum(limb_darkening_kepler(4800.0, 4.5)) > sum(limb_darkening_kepler(6500.0, 4.5))
    assert limb_darkening_kepler(2000.0, 6.0) == limb_darkening_kepler(3500.0, 5.0)


def test_transit_depth_matches_limb_darkened_small_planet_value():
    planet = Planet(period_days=10.0, t0_days=105.0, rp_rs=0.05, impact=0.3)
    t = np.arange(104.0, 106.0, 1.0 / 1440.0)  # one-minute cadence around one transit
    model = transit_model(t, [planet], SUN, exposure_minutes=1.0)
    u1, u2 = limb_darkening_kepler(SUN.teff_k, SUN.logg_cgs)
    mu = np.sqrt(1.0 - planet.impact**2)
    intensity_ratio = (1 - u1 * (1 - mu) - u2 * (1 - mu) ** 2) / (1 - u1 / 3 - u2 / 6)
    depth = 1.0 - model[np.argmin(np.abs(t - planet.t0_days))]
    assert depth == pytest.approx(planet.rp_rs**2 * intensity_ratio, rel=0.03)
    assert depth > 1.15 * planet.rp_rs**2, "limb darkening deepens a central transit"


@pytest.mark.parametrize(
    ("period", "impact", "rp_rs", "hours"),
    [(10.0, 0.3, 0.05, (3.5, 4.5)), (0.6, 0.8, 0.1, (0.8, 1.6)), (35.0, 0.0, 0.02, (5.5, 7.5))],
)
def test_transit_duration_matches_model_span(period, impact, rp_rs, hours):
    planet = Planet(period_days=period, t0_days=100.0, rp_rs=rp_rs, impact=impact)
    t = np.arange(99.7, 100.3, 10.0 / 86400.0)  # ten-second cadence, one transit
    model = batman_reference(t, planet, SUN, exposure_minutes=10.0 / 60.0, supersample=1)
    in_transit = t[model < 1.0]
    span_hours = (in_transit[-1] - in_transit[0]) * 24.0
    duration = transit_duration_hours(planet, SUN)
    assert hours[0] < duration < hours[1]
    assert span_hours == pytest.approx(duration, abs=20.0 / 3600.0)


@pytest.mark.parametrize(("period", "impact"), [(0.7, 0.85), (3.0, 0.0), (25.0, 0.5)])
def test_windowed_model_equals_batman_on_every_cadence(period, impact):
    planet = Planet(period_days=period, t0_days=201.3, rp_rs=0.08, impact=impact)
    t = 200.0 + np.arange(4400) * KEPLER_LONG_CADENCE_MINUTES / 1440.0
    reference = batman_reference(t, planet, SUN, KEPLER_LONG_CADENCE_MINUTES, supersample=7)
    assert np.sum(reference < 1.0) > 10
    np.testing.assert_allclose(transit_model(t, [planet], SUN), reference, rtol=0, atol=1e-12)


def test_long_cadence_model_spans_duration_within_one_cadence():
    planet = Planet(period_days=7.3, t0_days=201.1, rp_rs=0.03, impact=0.5)
    t = 200.0 + np.arange(3000) * KEPLER_LONG_CADENCE_MINUTES / 1440.0
    model = transit_model(t, [planet], SUN)
    cadence_hours = KEPLER_LONG_CADENCE_MINUTES / 60.0
    first = t[model < 1.0]
    first = first[first < planet.t0_days + 1.0]
    # Cadences whose exposure overlaps the transit have mid-times within T14/2 + half a
    # cadence of t0, so their span is T14 to within one cadence.
    span_hours = (first[-1] - first[0]) * 24.0
    assert span_hours == pytest.approx(transit_duration_hours(planet, SUN), abs=cadence_hours)
    # Supersampling matters at long cadence: the unsmeared model differs.
    sharp = transit_model(t, [planet], SUN, supersample=1)
    assert np.max(np.abs(sharp - model)) > 0.05 * planet.rp_rs**2


def test_missing_planet_and_multi_planet_product():
    t = np.linspace(0.0, 30.0, 5000)
    miss = Planet(10.0, 5.0, 0.05, impact=1.2)
    assert transit_duration_hours(miss, SUN) == 0.0
    np.testing.assert_array_equal(transit_model(t, [miss], SUN), 1.0)
    a = Planet(3.0, 1.0, 0.04, 0.1)
    b = Planet(7.0, 2.5, 0.06, 0.4)
    np.testing.assert_allclose(
        transit_model(t, [a, b], SUN),
        transit_model(t, [a], SUN) * transit_model(t, [b], SUN),
    )


# --- SNR ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def simulated():
    lc, sim = simulate_star(2024, "SNR")
    return lc, sim


@pytest.mark.parametrize(
    ("snr", "period", "impact"), [(7.0, 3.3, 0.0), (15.0, 11.7, 0.6), (40.0, 27.0, 0.85)]
)
def test_planet_for_snr_realises_requested_snr(simulated, snr, period, impact):
    lc, sim = simulated
    t = valid_times(lc)
    planet = planet_for_snr(
        t, snr, period, t[0] + 0.37 * period, impact, sim.star, sim.noise_ppm_per_cadence
    )
    # Measure the SNR independently: inject into a noiseless flat copy and sum.
    flat = lk.LightCurve(time=lc.time, flux=np.ones(len(lc)), flux_err=lc.flux_err)
    signal = 1.0 - inject_transits(flat, [planet], sim.star).flux.value
    signal = signal[np.isfinite(lc.flux.value)]
    realised = np.sqrt(np.sum(signal**2)) / (sim.noise_ppm_per_cadence * 1e-6)
    assert realised == pytest.approx(snr, rel=0.05)
    # The textbook box estimate depth * sqrt(N_in) / sigma agrees roughly.
    n_in = np.sum(signal > 0)
    box = np.max(signal) * np.sqrt(n_in) / (sim.noise_ppm_per_cadence * 1e-6)
    assert box == pytest.approx(snr, rel=0.35)


def test_snr_counts_only_cadences_that_exist(simulated):
    lc, sim = simulated
    t = valid_times(lc)
    args = (12.0, 9.0, t[0] + 2.0, 0.2, sim.star, sim.noise_ppm_per_cadence)
    full = planet_for_snr(t, *args)
    # Lose the first three transits to a gap: the same SNR now needs a bigger planet,
    # by (N_full / N_gappy)^(1/4) since SNR ~ rp_rs^2 sqrt(N).
    gappy = t[t > t[0] + 2.0 + 2 * 9.0 + 0.5]
    n_full = np.sum(transit_model(t, [full], sim.star) < 1.0)
    n_gappy = np.sum(transit_model(gappy, [full], sim.star) < 1.0)
    assert n_gappy < 0.8 * n_full
    ratio = planet_for_snr(gappy, *args).rp_rs / full.rp_rs
    assert ratio == pytest.approx((n_full / n_gappy) ** 0.25, rel=0.02)
    model = transit_model(gappy, [full], sim.star)
    snr_gappy = transit_snr(gappy, model, sim.noise_ppm_per_cadence)
    assert snr_gappy == pytest.approx(12.0 * np.sqrt(n_gappy / n_full), rel=0.02)
    with pytest.raises(ValueError, match="no valid cadence"):
        planet_for_snr(t[t < t[0] + 3.0], 10.0, 30.0, t[0] + 10.0, 0.0, sim.star, 100.0)


def test_sample_planets_respects_priors_and_period_ratio(simulated):
    lc, sim = simulated
    t = valid_times(lc)
    for seed in range(15):
        planets = sample_planets(
            np.random.default_rng(seed),
            3,
            1.0,
            40.0,
            sim.star,
            t,
            sim.noise_ppm_per_cadence,
            7.0,
            50.0,
            impact_max=0.9,
            min_period_ratio=1.3,
        )
        assert len(planets) == 3
        assert [p.period_days for p in planets] == sorted(p.period_days for p in planets)
        for p, q in combinations(planets, 2):
            assert q.period_days / p.period_days >= 1.3
        for p in planets:
            assert 1.0 <= p.period_days <= 40.0
            assert t[0] <= p.t0_days < t[0] + p.period_days
            assert 0.0 <= p.impact < 0.9
            assert 0.0 < p.rp_rs <= RP_RS_MAX
            snr = transit_snr(t, transit_model(t, [p], sim.star), sim.noise_ppm_per_cadence)
            assert snr > 0.0
            if p.rp_rs < RP_RS_MAX:
                assert 7.0 * 0.999 <= snr <= 50.0 * 1.001
    first, second = (
        sample_planets(np.random.default_rng(3), 3, 1, 40, sim.star, t, 100, 7, 50) for _ in "ab"
    )
    assert first == second
    with pytest.raises(ValueError, match="could not place"):
        sample_planets(np.random.default_rng(0), 3, 10.0, 12.0, sim.star, t, 100.0, 7, 50)


# --- injection ------------------------------------------------------------------------


def test_inject_into_simulated_light_curve(simulated):
    lc, sim = simulated
    start = lc.time.value[0]
    planets = [Planet(4.1, start + 1.0, 0.04, 0.2), Planet(13.0, start + 5.0, 0.03, 0.5)]
    out = inject_transits(lc, planets, sim.star)
    model = transit_model(lc.time.value, planets, sim.star)
    finite = np.isfinite(lc.flux.value)
    np.testing.assert_allclose(out.flux.value[finite], lc.flux.value[finite] * model[finite])
    np.testing.assert_array_equal(out.flux_err.value, lc.flux_err.value)
    assert out.meta["INJECTED"] == [p.to_dict() for p in planets]
    assert "INJECTED" not in lc.meta, "the input light curve is left alone"
    again = inject_transits(out, planets[:1], sim.star)
    assert len(again.meta["INJECTED"]) == 3


def test_inject_into_real_kepler_quarter():
    root = shared_data_dir()
    if root is None:
        pytest.skip("no shared real-data folder (set $EXOPERIOD_SHARED_DATA)")
    path = root / REAL_QUARTER
    if not path.is_file():
        pytest.skip(f"{REAL_QUARTER} is not in the shared data folder {root}")
    lc = lk.read(path).remove_nans().normalize()
    t = lc.time.value
    planet = Planet(period_days=10.0, t0_days=t[0] + 2.345, rp_rs=0.1, impact=0.2)
    out = inject_transits(lc, [planet], SUN)

    model = transit_model(t, [planet], SUN, exposure_minutes=float(np.median(np.diff(t))) * 1440)
    np.testing.assert_allclose(out.flux.value / lc.flux.value, model, rtol=1e-9)

    # Observed drop at each transit against the local out-of-transit baseline.
    half = transit_duration_hours(planet, SUN) / 48.0
    phase = (t - planet.t0_days + 5.0) % 10.0 - 5.0
    epoch = np.round((t - planet.t0_days) / 10.0)
    f = out.flux.value
    drops, depths = [], []
    for e in np.unique(epoch):
        here = epoch == e
        inside = here & (np.abs(phase) < 0.6 * half)
        around = here & (np.abs(phase) > half + 0.05) & (np.abs(phase) < half + 0.6)
        if inside.sum() >= 3 and around.sum() >= 10:
            drops.append(1.0 - np.median(f[inside]) / np.median(f[around]))
            depths.append(np.median(1.0 - model[inside]))
    assert len(drops) >= 6
    assert np.mean(drops) == pytest.approx(np.mean(depths), rel=0.15)
    assert 0.01 < np.mean(depths) < 0.015


def test_timing_simulate_and_inject():
    rng = np.random.default_rng(0)
    sims = [sample_star(rng, f"T{i}") for i in range(20)]
    simulate_lightcurve(sims[0], rng)  # warm-up
    t0 = time.perf_counter()
    lcs = [simulate_lightcurve(s, rng) for s in sims]
    t1 = time.perf_counter()
    drawn = [
        sample_planets(rng, 3, 1.0, 40.0, s.star, valid_times(lc), s.noise_ppm_per_cadence, 7, 50)
        for s, lc in zip(sims, lcs)
    ]
    t2 = time.perf_counter()
    for s, lc, planets in zip(sims, lcs, drawn):
        inject_transits(lc, planets, s.star)
    t3 = time.perf_counter()
    n = len(sims)
    print(
        f"\nper quarter: simulate {1e3 * (t1 - t0) / n:.2f} ms, "
        f"sample 3 planets {1e3 * (t2 - t1) / n:.2f} ms, "
        f"inject 3 planets {1e3 * (t3 - t2) / n:.2f} ms"
    )
