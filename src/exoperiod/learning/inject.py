"""Transit models and injection into simulated or real light curves.

Place in the flow (learning side): simulate, instruments, catalog (http) -> **inject** -> datasets,
curves -> train -> vetting -> evaluate; presets, demo.

Planets are on circular orbits and modelled with batman (Kreidberg 2015): quadratic
limb darkening for the Kepler band, integrated over the exposure by supersampling.
All times are in the light curve's own time system (BKJD for Kepler), in days.

Transit signal-to-noise ratio
-----------------------------
One definition is used everywhere in exoperiod: the matched-filter SNR of the
noiseless model on the valid cadences of a light curve,

    SNR = sqrt(sum_i (1 - model_i)^2) / sigma_cadence,

with sigma_cadence the white noise per cadence. For a box-shaped transit of depth
``delta`` covering ``N`` cadences this is the familiar ``delta * sqrt(N) / sigma``; for
a real, limb-darkened transit it also credits ingress, egress and the deeper centre.
``N`` counts only cadences that exist, so the same planet has a lower SNR in a light
curve with gaps that swallow some of its transits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import batman
import lightkurve as lk
import numpy as np
from scipy.optimize import brentq, newton

from ..constants import (
    KEPLER_LONG_CADENCE_MINUTES,
    M_SUN_G,
    MINUTES_PER_DAY,
    R_SUN_CM,
)
from ..orbits import RP_RS_MAX, a_over_rstar, inclination_rad, t14_hours

_LOG_RP_RS_MIN = np.log(1e-5)

# Quadratic limb-darkening coefficients (a, b) = (u1, u2) in the Kepler band, solar
# metallicity, PHOENIX models: Claret, Hauschildt & Witte (2012, A&A 546, A14) and
# Claret et al. (2013, A&A 552, A16), VizieR J/A+A/546/A14 limb1-4, as distributed with
# transitleastsquares (JAA546A14limb1-4.csv). A subset of the grid covering the simulated
# stars: Teff rows below, logg columns 4.0, 4.5, 5.0. The published grid has no 4600 and
# 4700 K nodes, and its coefficients jump by ~0.05 between some neighbouring nodes
# (e.g. 6000->6200 K at logg 4.5); both are kept as published.
_LD_TEFF_K = np.array(
    [3500, 3700, 3900, 4100, 4300, 4500, 4800, 5000, 5200]
    + [5400, 5600, 5800, 6000, 6200, 6400, 6600, 6800, 7000],
    dtype=float,
)
_LD_LOGG_CGS = np.array([4.0, 4.5, 5.0])
_LD_U1 = np.array(
    [
        [0.5195, 0.4154, 0.3191],
        [0.5492, 0.4146, 0.3360],
        [0.6207, 0.4586, 0.3486],
        [0.7125, 0.5690, 0.4189],
        [0.7400, 0.6670, 0.5366],
        [0.7071, 0.7010, 0.6372],
        [0.6583, 0.6557, 0.6593],
        [0.6119, 0.6147, 0.6067],
        [0.5811, 0.5808, 0.5682],
        [0.5557, 0.5364, 0.5327],
        [0.5353, 0.5102, 0.5032],
        [0.4994, 0.4883, 0.4787],
        [0.4804, 0.4703, 0.4353],
        [0.4613, 0.4093, 0.4167],
        [0.4416, 0.3903, 0.3998],
        [0.4202, 0.3727, 0.3821],
        [0.3971, 0.3984, 0.3651],
        [0.3722, 0.3765, 0.3473],
    ]
)
_LD_U2 = np.array(
    [
        [0.2495, 0.3159, 0.3321],
        [0.2087, 0.2976, 0.3364],
        [0.1275, 0.2425, 0.3095],
        [0.0556, 0.1583, 0.2483],
        [0.0259, 0.0790, 0.1676],
        [0.0486, 0.0462, 0.1005],
        [0.0839, 0.0772, 0.0698],
        [0.1114, 0.1061, 0.1141],
        [0.1293, 0.1269, 0.1403],
        [0.1420, 0.1574, 0.1619],
        [0.1510, 0.1712, 0.1772],
        [0.1758, 0.1822, 0.1886],
        [0.1867, 0.1893, 0.2207],
        [0.1990, 0.2236, 0.2278],
        [0.2132, 0.2334, 0.2360],
        [0.2307, 0.2436, 0.2480],
        [0.2507, 0.2360, 0.2592],
        [0.2726, 0.2538, 0.2709],
    ]
)


@dataclass(frozen=True)
class Star:
    """A host star.

    Attributes
    ----------
    radius_rsun : float
        Stellar radius, solar radii.
    mass_msun : float
        Stellar mass, solar masses.
    teff_k : float
        Effective temperature, K.
    logg_cgs : float
        log10 of the surface gravity in cm s^-2.
    cdpp6_ppm : float or None
        Kepler 6-hour combined differential photometric precision, ppm, if known.
    """

    radius_rsun: float
    mass_msun: float
    teff_k: float
    logg_cgs: float
    cdpp6_ppm: float | None = None

    @property
    def density_gcc(self) -> float:
        """Mean stellar density, g cm^-3 (the Sun: 1.41)."""
        radius_cm = self.radius_rsun * R_SUN_CM
        return self.mass_msun * M_SUN_G / (4.0 / 3.0 * np.pi * radius_cm**3)


@dataclass(frozen=True)
class Planet:
    """A transiting planet on a circular orbit.

    Attributes
    ----------
    period_days : float
        Orbital period, days.
    t0_days : float
        Time of one mid-transit, days, in the light curve's time system (BKJD for Kepler).
    rp_rs : float
        Planet-to-star radius ratio.
    impact : float
        Impact parameter, in stellar radii.
    injected : bool
        True for a planet put into the data by exoperiod, False for a known real one.
    """

    period_days: float
    t0_days: float
    rp_rs: float
    impact: float
    injected: bool = True

    def to_dict(self) -> dict:
        """The planet as a plain dictionary (what ``meta["INJECTED"]`` holds)."""
        return asdict(self)


def transit_duration_hours(planet: Planet, star: Star) -> float:
    """Total transit duration T14 (first to fourth contact) of a planet around ``star``
    (:func:`exoperiod.orbits.t14_hours`, a/R* from the star's density).

    Parameters
    ----------
    planet : Planet
        The planet; its period, radius ratio ``k`` and impact parameter ``b`` are used.
    star : Star
        The host, whose density sets a/R*.

    Returns
    -------
    float
        T14 in hours; 0 when the planet misses the stellar disc (b >= 1 + k).
    """
    a_rs = a_over_rstar(planet.period_days, star.density_gcc)
    inclination_rad(planet.impact, a_rs)  # no orbit, no duration: raises ValueError
    return t14_hours(planet.period_days, a_rs, planet.impact, planet.rp_rs)


def limb_darkening_kepler(teff_k: float, logg_cgs: float) -> tuple[float, float]:
    """Quadratic limb-darkening coefficients (u1, u2) in the Kepler band.

    Bilinear interpolation in (Teff, logg) of the Claret et al. (2012, 2013) PHOENIX
    solar-metallicity grid (see the table at the top of this module); values outside
    3500-7000 K or logg 4.0-5.0 take the nearest edge of the grid. The more often cited
    Claret & Bloemen (2011) ATLAS table was not available offline; for a Sun-like star
    the two give similar u1 + u2 (0.67 here), which is what sets the transit depth.

    Parameters
    ----------
    teff_k : float
        Effective temperature, K.
    logg_cgs : float
        log10 surface gravity, cm s^-2.

    Returns
    -------
    tuple of float
        (u1, u2).
    """
    teff = float(np.clip(teff_k, _LD_TEFF_K[0], _LD_TEFF_K[-1]))
    logg = float(np.clip(logg_cgs, _LD_LOGG_CGS[0], _LD_LOGG_CGS[-1]))
    u = []
    for table in (_LD_U1, _LD_U2):
        at_teff = [np.interp(teff, _LD_TEFF_K, table[:, j]) for j in range(len(_LD_LOGG_CGS))]
        u.append(float(np.interp(logg, _LD_LOGG_CGS, at_teff)))
    return u[0], u[1]


def _default_supersample(exposure_minutes: float) -> int:
    # Long-cadence exposures smear ingress/egress noticeably (Kipping 2010); 7 sub-samples
    # keep the error well below 1 % of the depth. Short cadence needs none.
    return 7 if exposure_minutes > 10.0 else 1


class _BatmanPlanet:
    """batman model of one planet evaluated only on cadences near its transits.

    Out-of-transit cadences are exactly 1, so skipping them makes a quarter-long model
    cost a few hundred points instead of ~30 000 supersampled ones. The window is sized
    for ``rp_rs_window``, so :meth:`flux` is exact for any radius ratio up to it, which
    lets a solver vary ``rp_rs`` without rebuilding the model.
    """

    def __init__(
        self,
        time_days: np.ndarray,
        planet: Planet,
        star: Star,
        exposure_minutes: float,
        supersample: int,
        rp_rs_window: float,
    ) -> None:
        exposure_days = exposure_minutes / MINUTES_PER_DAY
        window = Planet(planet.period_days, planet.t0_days, rp_rs_window, planet.impact)
        half_width = transit_duration_hours(window, star) / 48.0 + exposure_days
        phase = (time_days - planet.t0_days + 0.5 * planet.period_days) % planet.period_days
        self.n_time = len(time_days)
        self.near = np.flatnonzero(np.abs(phase - 0.5 * planet.period_days) < half_width)

        a_rs = a_over_rstar(planet.period_days, star.density_gcc)
        params = batman.TransitParams()
        params.t0 = planet.t0_days
        params.per = planet.period_days
        params.rp = planet.rp_rs
        params.a = a_rs
        params.inc = float(np.degrees(inclination_rad(planet.impact, a_rs)))
        params.ecc = 0.0
        params.w = 90.0
        params.limb_dark = "quadratic"
        params.u = list(limb_darkening_kepler(star.teff_k, star.logg_cgs))
        self.params = params
        self.model = None
        if self.near.size:
            self.model = batman.TransitModel(
                params,
                np.ascontiguousarray(time_days[self.near], dtype=float),
                supersample_factor=supersample,
                exp_time=exposure_days if supersample > 1 else 0.0,
            )

    def near_flux(self, rp_rs: float) -> np.ndarray:
        """Relative flux on the cadences ``self.near`` for the given radius ratio."""
        if self.model is None:
            return np.ones(0)
        self.params.rp = rp_rs
        return self.model.light_curve(self.params)

    def flux(self, rp_rs: float) -> np.ndarray:
        """Relative flux on every cadence for the given radius ratio."""
        out = np.ones(self.n_time)
        out[self.near] = self.near_flux(rp_rs)
        return out


def transit_model(
    time_days: np.ndarray,
    planets: Sequence[Planet],
    star: Star,
    exposure_minutes: float = KEPLER_LONG_CADENCE_MINUTES,
    supersample: int | None = None,
) -> np.ndarray:
    """Relative flux of a star with transiting planets (1 = no transit).

    Parameters
    ----------
    time_days : numpy.ndarray
        Cadence mid-times, days, in the planets' time system.
    planets : sequence of Planet
        The planets; their transits multiply (overlapping transits are not treated
        as mutual events, which only matters for planet-planet eclipses).
    star : Star
        The host: its density sets a/R*, its Teff and logg the limb darkening.
    exposure_minutes : float
        Exposure time each cadence integrates over, minutes.
    supersample : int or None
        Sub-exposures per cadence; None chooses 7 for exposures above 10 minutes, else 1.

    Returns
    -------
    numpy.ndarray
        Relative flux, same length as ``time_days``.
    """
    time_days = np.asarray(time_days, dtype=float)
    if supersample is None:
        supersample = _default_supersample(exposure_minutes)
    flux = np.ones(len(time_days))
    for planet in planets:
        model = _BatmanPlanet(time_days, planet, star, exposure_minutes, supersample, planet.rp_rs)
        flux *= model.flux(planet.rp_rs)
    return flux


def inject_transits(
    lc: lk.LightCurve,
    planets: Sequence[Planet],
    star: Star,
    exposure_minutes: float | None = None,
) -> lk.LightCurve:
    """Multiply a light curve by the transit model of some planets.

    Parameters
    ----------
    lc : lightkurve.LightCurve
        Normalised light curve (simulated or real); it is not modified.
    planets : sequence of Planet
        Planets with ``t0_days`` in the time system of ``lc.time.value``.
    star : Star
        The host star.
    exposure_minutes : float or None
        Exposure per cadence; None takes the median cadence spacing of ``lc``.

    Returns
    -------
    lightkurve.LightCurve
        A copy whose flux is multiplied by the model; ``flux_err`` is unchanged, and
        ``meta["INJECTED"]`` lists the planets as dictionaries (after any already there).
    """
    time_days = np.asarray(lc.time.value, dtype=float)
    if exposure_minutes is None:
        exposure_minutes = float(np.nanmedian(np.diff(time_days))) * MINUTES_PER_DAY
    model = transit_model(time_days, planets, star, exposure_minutes)
    out = lc.copy()
    out.flux = out.flux * model
    out.meta["INJECTED"] = list(lc.meta.get("INJECTED", [])) + [p.to_dict() for p in planets]
    return out


def transit_snr(
    time_days: np.ndarray, flux_model: np.ndarray, noise_ppm_per_cadence: float
) -> float:
    """Matched-filter SNR of a noiseless transit model (see the module docstring).

    Parameters
    ----------
    time_days : numpy.ndarray
        Times of the valid cadences (those holding usable flux); cadences whose time
        or model is not finite are left out.
    flux_model : numpy.ndarray
        Relative model flux on those cadences.
    noise_ppm_per_cadence : float
        White noise per cadence, ppm.

    Returns
    -------
    float
        ``sqrt(sum((1 - model)^2)) / sigma``.
    """
    time_days = np.asarray(time_days, dtype=float)
    flux_model = np.asarray(flux_model, dtype=float)
    if time_days.shape != flux_model.shape:
        raise ValueError(f"time has shape {time_days.shape}, model {flux_model.shape}")
    valid = np.isfinite(time_days) & np.isfinite(flux_model)
    signal = 1.0 - flux_model[valid]
    return float(np.sqrt(np.sum(signal**2)) / (noise_ppm_per_cadence * 1e-6))


def planet_for_snr(
    time_days: np.ndarray,
    snr: float,
    period_days: float,
    t0_days: float,
    impact: float,
    star: Star,
    noise_ppm_per_cadence: float,
    exposure_minutes: float = KEPLER_LONG_CADENCE_MINUTES,
) -> Planet:
    """The planet whose transits reach a given matched-filter SNR on these cadences.

    ``rp_rs`` is solved for with the same batman model that :func:`transit_model` uses,
    so the realised :func:`transit_snr` matches ``snr`` to 1e-4 relative, unless that
    needs ``rp_rs`` above :data:`RP_RS_MAX`, in which case ``rp_rs = RP_RS_MAX`` and the
    SNR falls short.

    Parameters
    ----------
    time_days : numpy.ndarray
        Times of the valid cadences the SNR is counted over, days.
    snr : float
        Requested SNR.
    period_days, t0_days, impact : float
        Orbit of the planet (period and mid-transit time in days; impact parameter).
    star : Star
        The host star.
    noise_ppm_per_cadence : float
        White noise per cadence, ppm.
    exposure_minutes : float
        Exposure per cadence, minutes (as given later to :func:`transit_model`).

    Returns
    -------
    Planet

    Raises
    ------
    ValueError
        If no valid cadence falls in transit, so no radius reaches any SNR.
    """
    time_days = np.asarray(time_days, dtype=float)
    time_days = time_days[np.isfinite(time_days)]
    trial = Planet(period_days, t0_days, RP_RS_MAX, impact)
    model = _BatmanPlanet(
        time_days, trial, star, exposure_minutes, _default_supersample(exposure_minutes), RP_RS_MAX
    )

    near_time = time_days[model.near]

    def snr_of(rp_rs: float) -> float:
        # Cadences outside the window have model flux 1 and add nothing to the SNR.
        return transit_snr(near_time, model.near_flux(rp_rs), noise_ppm_per_cadence)

    snr_max = snr_of(RP_RS_MAX)
    if snr_max == 0.0:
        raise ValueError(
            f"no valid cadence is in transit for P = {period_days} d, t0 = {t0_days}"
        )
    if snr_max <= snr:
        return Planet(period_days, t0_days, RP_RS_MAX, impact)

    def log_residual(log_k: float) -> float:
        return float(np.log(snr_of(np.exp(log_k)) / snr))

    # SNR ~ depth ~ k^2 away from grazing geometry, so a secant in log-log space from the
    # k^2 guess converges in 2-3 model evaluations; brentq is the fallback for grazing
    # orbits where that power law fails.
    log_k_guess = np.log(RP_RS_MAX * np.sqrt(snr / snr_max))
    log_k = newton(log_residual, log_k_guess, x1=np.log(RP_RS_MAX), tol=1e-6, disp=False)
    if not (_LOG_RP_RS_MIN <= log_k <= np.log(RP_RS_MAX)) or abs(log_residual(log_k)) > 1e-4:
        log_k = brentq(log_residual, _LOG_RP_RS_MIN, np.log(RP_RS_MAX), xtol=1e-7)
    return Planet(period_days, t0_days, float(np.exp(log_k)), impact)


def _period_ratio(p1: float, p2: float) -> float:
    return max(p1, p2) / min(p1, p2)


def sample_planets(
    rng: np.random.Generator,
    n: int,
    period_min_days: float,
    period_max_days: float,
    star: Star,
    time_days: np.ndarray,
    noise_ppm: float,
    snr_min: float,
    snr_max: float,
    impact_max: float = 0.9,
    min_period_ratio: float = 1.3,
    exposure_minutes: float = KEPLER_LONG_CADENCE_MINUTES,
) -> list[Planet]:
    """Draw planets to inject into one light curve.

    Priors: period log-uniform in [period_min_days, period_max_days]; t0 uniform in
    [t_start, t_start + P) with t_start the first valid time; impact parameter uniform
    in [0, impact_max); matched-filter SNR log-uniform in [snr_min, snr_max], turned into
    ``rp_rs`` by :func:`planet_for_snr` and capped at :data:`RP_RS_MAX`.
    A draw is rejected, and drawn again, if its period is within a factor
    ``min_period_ratio`` of an accepted planet's (crude dynamical stability, and no
    aliasing of one planet's transits onto another's) or if none of its transits lands
    on a valid cadence (a planet the data cannot show must not be labelled).

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.
    n : int
        Number of planets.
    period_min_days, period_max_days : float
        Period range, days.
    star : Star
        The host star.
    time_days : numpy.ndarray
        Times of the valid cadences, days.
    noise_ppm : float
        White noise per cadence, ppm.
    snr_min, snr_max : float
        SNR range.
    impact_max : float
        Largest impact parameter.
    min_period_ratio : float
        Smallest allowed ratio of the longer to the shorter period of any two planets.
    exposure_minutes : float
        Exposure per cadence, minutes.

    Returns
    -------
    list of Planet
        ``n`` planets, sorted by period.

    Raises
    ------
    ValueError
        If ``n`` planets cannot be placed (e.g. the period range is too narrow for
        ``n`` periods spaced by ``min_period_ratio``).
    """
    time_days = np.asarray(time_days, dtype=float)
    time_days = time_days[np.isfinite(time_days)]
    t_start = float(time_days.min())
    log_p = (np.log(period_min_days), np.log(period_max_days))
    log_snr = (np.log(snr_min), np.log(snr_max))
    planets: list[Planet] = []
    max_draws = 1000 * max(n, 1)
    for _ in range(max_draws):
        if len(planets) == n:
            break
        period = float(np.exp(rng.uniform(*log_p)))
        t0 = t_start + float(rng.uniform(0.0, period))
        impact = float(rng.uniform(0.0, impact_max))
        snr = float(np.exp(rng.uniform(*log_snr)))
        if any(_period_ratio(period, p.period_days) < min_period_ratio for p in planets):
            continue
        try:
            planets.append(
                planet_for_snr(
                    time_days, snr, period, t0, impact, star, noise_ppm, exposure_minutes
                )
            )
        except ValueError:
            continue
    if len(planets) < n:
        raise ValueError(
            f"could not place {n} planets with periods {period_min_days}-{period_max_days} d "
            f"spaced by a factor {min_period_ratio} in {max_draws} draws"
        )
    return sorted(planets, key=lambda p: p.period_days)
