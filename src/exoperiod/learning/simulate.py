"""Simulated Kepler-like stars: exoperiod's embedded default data (no network needed).

Place in the flow (learning side): **simulate**, instruments, catalog (http) -> inject -> datasets,
curves -> train -> vetting -> evaluate; presets, demo.

A simulated star is a main-sequence dwarf observed for one Kepler quarter at long
cadence. Its light curve holds white noise at the star's CDPP, stellar variability
drawn from a celerite2 Gaussian process (spot rotation plus granulation), Kepler's data
gaps and quality flags, and, for some stars, instrumental systematics. Transits are
added afterwards with :func:`exoperiod.learning.inject.inject_transits`.

Priors and rules
----------------
====================  ==============================================================
quantity              prior or rule
====================  ==============================================================
Teff                  N(5600 K, 700 K) truncated to [3800, 6800] K (Kepler targets
                      are mostly G and K dwarfs)
R*, M* (dwarf)        Pecaut & Mamajek (2013) mean dwarf sequence (Mamajek's table,
                      version 2024.05.15), linear in Teff
radius                dwarf radius x exp(|N(0, 0.10)|): stars only grow as they age
mass                  dwarf mass x exp(N(0, 0.05))
logg                  4.438 + log10(M/Msun) - 2 log10(R/Rsun)
CDPP (6 h)            log-normal, median 100 ppm, sigma_ln 0.7, truncated to
                      [20, 1000] ppm
noise per cadence     CDPP6 x sqrt(6 h / cadence) (3.50 x CDPP6 at 29.4244 min);
                      6 h because Kepler's CDPP6_0 keyword and the stellar
                      table's rrmscdpp06p0 are 6.0-hour CDPPs
rotation period       log-uniform in [1, 40] d
rotation amplitude    log-uniform in [100, 10 000] ppm (0.01-1 %), the standard
                      deviation of a celerite2 RotationTerm with Q0 = 1, dQ = 2,
                      f = 0.5 (spots evolve over a few rotations)
granulation           celerite2 SHOTerm, Q = 1/sqrt(2), standard deviation
                      30 ppm (g/g_sun)^-1/2, timescale 1/w0 = 2 h (g/g_sun)^-1
                      (ad hoc: tens of ppm on hour timescales, the Kepler
                      "flicker", growing as gravity drops as in Kallinger et al.
                      2014; not fitted to data)
systematics           Bernoulli(0.3) per star
start time            U(130, 1500) BKJD (the span of the Kepler mission)
downlink gaps         every 30 d (+- U(-2, 2) d), lasting U(0.6, 1.4) d
safe-mode gaps        Poisson(0.15 per 90 d), uniform start, lasting U(1, 5) d
====================  ==============================================================

Quality flags (Kepler bit values; flux NaN where marked):

- 32 (reaction-wheel desaturation) every 3 d, flux kept;
- 4 (coarse point) on the first 1-3 cadences after every gap, NaN;
- 2 (safe mode) on the 2 cadences either side of a safe-mode gap, NaN;
- 1 (attitude tweak) Poisson(1 per 90 d) events of 1-3 cadences, NaN;
- 128 (cosmic ray in the aperture, corrected) on 1 % of cadences, flux kept;
- 1024 (sudden sensitivity dropout) where one happens.

Systematics, when present: a thermal-settling ramp ``A exp(-(t - t_s)/tau)`` at the start
and after every gap (``|A|`` log-uniform in [100, 1000] ppm with random sign, ``tau``
U(0.2, 1.5) d); with probability 0.5 a sudden sensitivity dropout, a drop log-uniform in
[200, 2000] ppm at a uniform time, of which a fraction U(0, 0.7) recovers with e-folding
time U(0.5, 3) d; and 1 + Poisson(3) single-cadence upward outliers of U(5, 30) sigma
(cosmic rays the pipeline missed, so unflagged).

Everything is drawn from the caller's :class:`numpy.random.Generator` in a fixed order:
the same seed gives identical arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import celerite2
import lightkurve as lk
import numpy as np
from astropy.time import Time
from celerite2 import terms

from ..constants import KEPLER_LONG_CADENCE_MINUTES, LOGG_SUN_CGS, MINUTES_PER_DAY
from .inject import Star

CDPP_WINDOW_HOURS = 6.0
SYSTEMATICS_PROBABILITY = 0.3
BKJD_START_RANGE_DAYS = (130.0, 1500.0)

# Pecaut & Mamajek (2013) dwarf sequence, Mamajek's table v2024.05.15:
# spectral types M0.5V ... F2V, Teff (K), radius (Rsun), mass (Msun).
_DWARF_TEFF_K = np.array(
    [3770, 3850, 3930, 3990, 4090, 4300, 4440, 4600, 4870, 5100, 5170, 5290]
    + [5380, 5480, 5660, 5770, 5930, 6050, 6180, 6350, 6550, 6750, 6820],
    dtype=float,
)
_DWARF_RADIUS_RSUN = np.array(
    [0.544, 0.588, 0.608, 0.615, 0.630, 0.669, 0.701, 0.710, 0.755, 0.783, 0.797, 0.813]
    + [0.853, 0.914, 0.977, 1.012, 1.100, 1.167, 1.221, 1.359, 1.473, 1.578, 1.622]
)
_DWARF_MASS_MSUN = np.array(
    [0.56, 0.585, 0.60, 0.61, 0.64, 0.67, 0.70, 0.72, 0.76, 0.82, 0.85, 0.86]
    + [0.89, 0.93, 0.98, 1.00, 1.07, 1.12, 1.16, 1.25, 1.32, 1.41, 1.43]
)

# Kepler quality-flag bits (Kepler Archive Manual, table 2-3).
FLAG_ATTITUDE_TWEAK = 1
FLAG_SAFE_MODE = 2
FLAG_COARSE_POINT = 4
FLAG_DESATURATION = 32
FLAG_COSMIC_RAY = 128
FLAG_SENSITIVITY_DROPOUT = 1024

_ROTATION_DQ = 2.0
_ROTATION_F = 0.5


@dataclass(frozen=True)
class SimulatedStar:
    """Everything that defines a simulated star (but not one noise realisation).

    Attributes
    ----------
    star_id : str
        Label of the star, e.g. ``"SIM-0"``.
    star : Star
        Physical parameters.
    cdpp6_ppm : float
        6-hour CDPP of the white noise, ppm.
    noise_ppm_per_cadence : float
        White noise per cadence, ppm.
    rotation_period_days : float
        Spot-rotation period, days.
    variability_ppm : float
        Standard deviation of the rotational variability, ppm.
    has_systematics : bool
        Whether thermal ramps, a sensitivity dropout and outliers are added.
    spot_q0 : float
        Q0 of the celerite2 RotationTerm, which sets how long the spots last: the
        primary's quality factor is 0.5 + Q0 + dQ, a coherence time of ~(Q0 + 2.5) / pi
        rotations. 1 here (about a rotation, as on the Sun); a training family
        (``learning.curves``) draws longer-lived ones.
    """

    star_id: str
    star: Star
    cdpp6_ppm: float
    noise_ppm_per_cadence: float
    rotation_period_days: float
    variability_ppm: float
    has_systematics: bool
    spot_q0: float = 1.0

    @property
    def _gravity_ratio(self) -> float:
        return 10.0 ** (self.star.logg_cgs - LOGG_SUN_CGS)

    @property
    def granulation_ppm(self) -> float:
        """Standard deviation of the granulation signal, ppm."""
        return 30.0 * self._gravity_ratio**-0.5

    @property
    def granulation_timescale_hours(self) -> float:
        """Granulation timescale 1/w0 of the SHOTerm, hours."""
        return 2.0 * self._gravity_ratio**-1.0

    def meta(self) -> dict:
        """Light-curve metadata describing this star (upper-case keys)."""
        return {
            "STAR_ID": self.star_id,
            "RADIUS_RSUN": self.star.radius_rsun,
            "MASS_MSUN": self.star.mass_msun,
            "TEFF_K": self.star.teff_k,
            "LOGG_CGS": self.star.logg_cgs,
            "CDPP6_PPM": self.cdpp6_ppm,
            "NOISE_PPM_PER_CADENCE": self.noise_ppm_per_cadence,
            "ROTATION_PERIOD_DAYS": self.rotation_period_days,
            "VARIABILITY_PPM": self.variability_ppm,
            "HAS_SYSTEMATICS": self.has_systematics,
            "SPOT_Q0": self.spot_q0,
            "GRANULATION_PPM": self.granulation_ppm,
            "GRANULATION_TIMESCALE_HOURS": self.granulation_timescale_hours,
            # Kepler's own header keywords, so code reading a real file's stellar
            # parameters from lc.meta works unchanged on a simulated one.
            "TEFF": self.star.teff_k,
            "LOGG": self.star.logg_cgs,
            "RADIUS": self.star.radius_rsun,
        }


def noise_per_cadence_ppm(
    cdpp6_ppm: float, cadence_minutes: float = KEPLER_LONG_CADENCE_MINUTES
) -> float:
    """White noise per cadence that averages down to a given 6-hour CDPP.

    Parameters
    ----------
    cdpp6_ppm : float
        6-hour CDPP, ppm.
    cadence_minutes : float
        Cadence, minutes.

    Returns
    -------
    float
        ``cdpp6 * sqrt(6 h / cadence)``, ppm.
    """
    return float(cdpp6_ppm * np.sqrt(CDPP_WINDOW_HOURS * 60.0 / cadence_minutes))


def log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def _truncated(
    rng: np.random.Generator,
    draw: Callable[[np.random.Generator], float],
    low: float,
    high: float,
) -> float:
    while True:
        value = float(draw(rng))
        if low <= value <= high:
            return value


def sample_star(rng: np.random.Generator, star_id: str) -> SimulatedStar:
    """Draw a star from the priors in the module docstring.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.
    star_id : str
        Label given to the star.

    Returns
    -------
    SimulatedStar
    """
    teff = _truncated(rng, lambda r: r.normal(5600.0, 700.0), 3800.0, 6800.0)
    radius = float(np.interp(teff, _DWARF_TEFF_K, _DWARF_RADIUS_RSUN))
    radius *= float(np.exp(abs(rng.normal(0.0, 0.10))))
    mass = float(np.interp(teff, _DWARF_TEFF_K, _DWARF_MASS_MSUN))
    mass *= float(np.exp(rng.normal(0.0, 0.05)))
    logg = LOGG_SUN_CGS + np.log10(mass) - 2.0 * np.log10(radius)
    cdpp6 = _truncated(rng, lambda r: r.lognormal(np.log(100.0), 0.7), 20.0, 1000.0)
    rotation_period = log_uniform(rng, 1.0, 40.0)
    variability = log_uniform(rng, 100.0, 10_000.0)
    has_systematics = bool(rng.random() < SYSTEMATICS_PROBABILITY)
    return SimulatedStar(
        star_id=star_id,
        star=Star(radius, mass, teff, float(logg), cdpp6_ppm=cdpp6),
        cdpp6_ppm=cdpp6,
        noise_ppm_per_cadence=noise_per_cadence_ppm(cdpp6),
        rotation_period_days=rotation_period,
        variability_ppm=variability,
        has_systematics=has_systematics,
    )


def _gap_intervals(
    rng: np.random.Generator, start: float, end: float, duration_days: float
) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """Downlink and safe-mode gaps as (begin, end) times."""
    downlinks = []
    centre = start + 30.0
    while centre < end - 1.0:
        begin = centre + rng.uniform(-2.0, 2.0)
        downlinks.append((begin, begin + rng.uniform(0.6, 1.4)))
        centre += 30.0
    safe_modes = []
    for _ in range(rng.poisson(0.15 * duration_days / 90.0)):
        begin = rng.uniform(start, end)
        safe_modes.append((begin, begin + rng.uniform(1.0, 5.0)))
    return downlinks, safe_modes


def _gp_signal(sim: SimulatedStar, time_days: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Variability plus white noise: L z with L the Cholesky factor of the covariance.

    celerite2's own ``sample`` draws from numpy's global generator; applying the factor
    to a normal vector from our generator keeps the light curve reproducible. The white
    noise rides on the diagonal, which also keeps the factorisation well conditioned.
    """
    kernel = terms.RotationTerm(
        sigma=sim.variability_ppm * 1e-6,
        period=sim.rotation_period_days,
        Q0=sim.spot_q0,
        dQ=_ROTATION_DQ,
        f=_ROTATION_F,
    ) + terms.SHOTerm(
        sigma=sim.granulation_ppm * 1e-6,
        w0=24.0 / sim.granulation_timescale_hours,
        Q=1.0 / np.sqrt(2.0),
    )
    gp = celerite2.GaussianProcess(kernel)
    gp.compute(time_days, diag=np.full(len(time_days), (sim.noise_ppm_per_cadence * 1e-6) ** 2))
    return gp.dot_tril(z)


def _systematics(
    rng: np.random.Generator,
    time_days: np.ndarray,
    segment_starts: np.ndarray,
    sigma: float,
    quality: np.ndarray,
) -> np.ndarray:
    """Thermal ramps, a sensitivity dropout and outliers (relative flux offsets)."""
    n = len(time_days)
    offset = np.zeros(n)
    bounds = np.append(segment_starts, n)
    for i0, i1 in zip(bounds[:-1], bounds[1:]):
        amplitude = log_uniform(rng, 100e-6, 1000e-6) * rng.choice((-1.0, 1.0))
        tau = rng.uniform(0.2, 1.5)
        offset[i0:i1] += amplitude * np.exp(-(time_days[i0:i1] - time_days[i0]) / tau)
    if rng.random() < 0.5:
        i_drop = int(rng.integers(n))
        drop = log_uniform(rng, 200e-6, 2000e-6)
        recovered = rng.uniform(0.0, 0.7)
        tau = rng.uniform(0.5, 3.0)
        dt = time_days[i_drop:] - time_days[i_drop]
        offset[i_drop:] -= drop * (1.0 - recovered * (1.0 - np.exp(-dt / tau)))
        quality[i_drop] |= FLAG_SENSITIVITY_DROPOUT
    n_outliers = 1 + rng.poisson(3.0)
    idx = rng.integers(n, size=n_outliers)
    offset[idx] += rng.uniform(5.0, 30.0, size=n_outliers) * sigma
    return offset


def _flag_runs(
    rng: np.random.Generator, starts: np.ndarray, n: int, flag: int, quality: np.ndarray
) -> np.ndarray:
    """Flag runs of 1-3 cadences from each start; return the flagged indices."""
    flagged = []
    for i0 in starts:
        flagged.extend(range(int(i0), min(int(i0) + int(rng.integers(1, 4)), n)))
    idx = np.asarray(flagged, dtype=int)
    quality[idx] |= flag
    return idx


def event_cadences(time_days: np.ndarray, events_days: np.ndarray, cadence_days: float) -> np.ndarray:
    """Index of the first cadence at or after each event (a desaturation, a thruster firing),
    for the events within one cadence of it: an event in a gap marks no cadence."""
    at = np.clip(np.searchsorted(time_days, events_days), 0, len(time_days) - 1)
    return np.unique(at[np.abs(time_days[at] - events_days) < cadence_days])


def simulate_lightcurve(
    sim: SimulatedStar,
    rng: np.random.Generator,
    duration_days: float = 90.0,
    cadence_minutes: float = KEPLER_LONG_CADENCE_MINUTES,
    start_bkjd: float | None = None,
) -> lk.LightCurve:
    """Simulate one Kepler-like long-cadence light curve of a star.

    Parameters
    ----------
    sim : SimulatedStar
        The star.
    rng : numpy.random.Generator
        Source of randomness (all draws, including the Gaussian process).
    duration_days : float
        Span before gaps are cut out, days (a Kepler quarter by default).
    cadence_minutes : float
        Cadence, minutes. The white noise per cadence is ``sim.noise_ppm_per_cadence``
        whatever the cadence, so a cadence other than Kepler's long cadence changes the
        CDPP the light curve actually has.
    start_bkjd : float or None
        Time of the first cadence, BKJD; None draws it from U(130, 1500).

    Returns
    -------
    lightkurve.LightCurve
        Time in BKJD (TDB), flux normalised to median 1, ``flux_err`` the white noise per
        cadence, ``quality`` with Kepler bits; NaN flux on some flagged cadences.
        ``meta`` holds MISSION, LABEL, TARGETID (None), SIMULATED (True) and
        :meth:`SimulatedStar.meta`.
    """
    if start_bkjd is None:
        start_bkjd = float(rng.uniform(*BKJD_START_RANGE_DAYS))
    cadence_days = cadence_minutes / MINUTES_PER_DAY
    all_times = start_bkjd + cadence_days * np.arange(int(round(duration_days / cadence_days)))
    end = float(all_times[-1])
    downlinks, safe_modes = _gap_intervals(rng, start_bkjd, end, duration_days)
    keep = np.ones(len(all_times), dtype=bool)
    for begin, stop in downlinks + safe_modes:
        keep &= (all_times < begin) | (all_times >= stop)
    time_days = all_times[keep]
    n = len(time_days)
    # A cadence after a hole in the time stamps starts a new segment.
    after_hole = np.flatnonzero(np.diff(time_days) > 1.5 * cadence_days) + 1
    segment_starts = np.concatenate(([0], after_hole))

    sigma = sim.noise_ppm_per_cadence * 1e-6
    flux = 1.0 + _gp_signal(sim, time_days, rng.standard_normal(n))
    quality = np.zeros(n, dtype=np.int32)
    if sim.has_systematics:
        flux += _systematics(rng, time_days, segment_starts, sigma, quality)

    nan_idx = [_flag_runs(rng, segment_starts[1:], n, FLAG_COARSE_POINT, quality)]
    for begin, stop in safe_modes:
        around = np.flatnonzero(
            ((time_days >= begin - 2.5 * cadence_days) & (time_days < begin))
            | ((time_days >= stop) & (time_days < stop + 2.5 * cadence_days))
        )
        quality[around] |= FLAG_SAFE_MODE
        nan_idx.append(around)
    tweaks = rng.integers(n, size=rng.poisson(duration_days / 90.0))
    nan_idx.append(_flag_runs(rng, tweaks, n, FLAG_ATTITUDE_TWEAK, quality))
    desat_times = start_bkjd + rng.uniform(0.0, 3.0) + 3.0 * np.arange(int(duration_days / 3.0))
    quality[event_cadences(time_days, desat_times, cadence_days)] |= FLAG_DESATURATION
    quality[rng.random(n) < 0.01] |= FLAG_COSMIC_RAY
    flux[np.concatenate(nan_idx)] = np.nan

    median = np.nanmedian(flux)
    meta = {"MISSION": "Kepler", "LABEL": sim.star_id, "TARGETID": None, "SIMULATED": True}
    meta.update(sim.meta())
    return lk.LightCurve(
        time=Time(time_days, format="bkjd", scale="tdb"),
        flux=flux / median,
        flux_err=np.full(n, sigma / median),
        quality=quality,
        meta=meta,
    )


def simulate_star(
    seed: int | np.random.Generator, star_id: str = "SIM-0", **kw
) -> tuple[lk.LightCurve, SimulatedStar]:
    """Draw a star and simulate its light curve.

    Parameters
    ----------
    seed : int or numpy.random.Generator
        Seed of a new generator, or a generator to draw from.
    star_id : str
        Label of the star.
    **kw
        Passed to :func:`simulate_lightcurve` (``duration_days``, ``cadence_minutes``,
        ``start_bkjd``).

    Returns
    -------
    tuple of (lightkurve.LightCurve, SimulatedStar)
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    sim = sample_star(rng, star_id)
    return simulate_lightcurve(sim, rng, **kw), sim
