"""What K2, TESS and stitched Kepler quarters add to a star: the instrument's signatures.

Place in the flow (learning side): simulate, **instruments**, catalog (http) -> inject ->
datasets, curves -> train -> vetting -> evaluate; presets, demo.

Why
---
:func:`exoperiod.learning.simulate.simulate_lightcurve` makes one star through one
Kepler-like instrument. Real archives hold other instruments, whose systematics are
*periodic* or *dip-shaped* and so look like planets to a period search. In the held-out
real stars, three of the six false alarms (a bin >= 0.5) of the model shipped before these
signatures (commit c51a797) were K2 light curves at 1.20-1.24 d, five periods of K2's
thruster firings. Each function below adds one
signature to a raw light curve, before the planets are injected and the star detrended:

==========================  ==============================================================
signature                   model
==========================  ==============================================================
K2 roll (:func:`add_k2_     Solar pressure rolls the two-wheel spacecraft and thrusters
roll`)                      fire every ~5.9 h to bring it back (Howell et al. 2014, PASP
                            126, 398). Roll-corrected photometry (PDC, K2SFF, EVEREST)
                            keeps a residual sawtooth at the firing period, its amplitude
                            drifting over the campaign, and a jump at each firing. Here:
                            firing period U(5.75, 6.1) h; sawtooth peak to peak log-uniform
                            20-1000 ppm, modulated by 1 +- 0.5 sin over U(5, 30) d; each
                            firing's cadence flagged (bit 1048576, which lightkurve's
                            default mask removes) with probability 0.9, else an outlier of
                            U(2, 8) sigma of either sign (what slips through).
TESS momentum dumps         Reaction wheels are unloaded every U(2.5, 6) d (sector
(:func:`add_momentum_       dependent); the dump's cadence is flagged (bit 32) and the
dumps`)                     pointing takes 1-2 cadences to settle after 30 % of them:
                            unflagged outliers of U(2, 6) sigma, either sign.
Kepler quarters             Kepler rolled by 90 degrees every ~93 d: a downlink gap of
(:func:`add_quarter_        U(0.5, 1.5) d at each quarter boundary, and the star on another
boundaries`)                CCD, so each quarter's flux level differs (N(0, 0.1 %) after
                            the pipeline's normalisation) and with probability 0.25 the
                            quarter has rolling-band artefacts: Poisson(U(0.1, 1) per day)
                            dips or bumps of log-uniform 10-300 ppm lasting U(0.1, 1) d
                            (Kepler Instrument Handbook, KSCI-19033, section 6.7).
==========================  ==============================================================

Amplitudes are ranges, not fits. The K2 roll's sawtooth, measured as the best sinusoid
at 3.8-4.4 cycles a day in the detrended flux, is 0.38 (median; 0.29-0.62 for 80 %) of the
white noise per cadence in simulated campaigns and 0.44 (0.12-1.3) in the 169 K2 light
curves of ../shared/data. With firing outliers at half the firings and up to 20 sigma,
the shipped model of 2026-11-26 took 78 % of simulated planet-free campaigns for a planet
(a bin >= 0.5), against 2 % of the real K2 stars it trained on and 6 % of held-out ones;
with the rates above, 8 % (the model before, c51a797). An event (firing, dump) lands on
the first cadence at or after its time, if that is within one cadence of it; a dump's
settling cadences are the next ones in the series, across a gap if the dump is the last
cadence before one. Every draw comes from the caller's generator.
"""

from __future__ import annotations

import lightkurve as lk
import numpy as np

from ..constants import HOURS_PER_DAY, KEPLER_QUARTER_DAYS
from .simulate import FLAG_DESATURATION, event_cadences, log_uniform

#: K2's quality bit for a thruster firing (K2 Data Release Notes; lightkurve removes it).
FLAG_THRUSTER_FIRING = 1048576
K2_FIRING_HOURS = (5.75, 6.1)
K2_ROLL_PPM = (20.0, 1000.0)
K2_ROLL_DRIFT_DAYS = (5.0, 30.0)
K2_FIRING_FLAGGED = 0.9
K2_FIRING_OUTLIER_SIGMA = (2.0, 8.0)
TESS_DUMP_INTERVAL_DAYS = (2.5, 6.0)
TESS_DUMP_OUTLIER_SIGMA = (2.0, 6.0)
TESS_DUMP_UNSETTLED = 0.3
QUARTER_GAP_DAYS = (0.5, 1.5)
QUARTER_OFFSET_PPM = 1000.0
ROLLING_BAND_QUARTERS = 0.25
ROLLING_BAND_PER_DAY = (0.1, 1.0)
ROLLING_BAND_PPM = (10.0, 300.0)
ROLLING_BAND_DAYS = (0.1, 1.0)


def _columns(lc: lk.LightCurve) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Time (days), a copy of the flux and of the quality flags, to change and put back."""
    time = np.asarray(lc.time.value, dtype=float)
    flux = np.asarray(lc.flux.value, dtype=float).copy()
    quality = np.asarray(lc["quality"].value, dtype=np.int64).copy()
    return time, flux, quality


def _with(lc: lk.LightCurve, flux: np.ndarray, quality: np.ndarray, keep: np.ndarray | None = None) -> lk.LightCurve:
    """A copy of ``lc`` with this flux and these flags, and only the ``keep`` cadences."""
    out = lc.copy()
    out.flux = flux
    out["quality"] = quality.astype(np.int32)
    return out if keep is None else out[keep]


def _signed(rng: np.random.Generator, n: int, sigma_range: tuple[float, float], noise: float) -> np.ndarray:
    """``n`` outliers of either sign, U(``sigma_range``) times ``noise`` (relative flux)."""
    return rng.choice([-1.0, 1.0], size=n) * rng.uniform(*sigma_range, size=n) * noise


def add_k2_roll(lc: lk.LightCurve, rng: np.random.Generator, noise_ppm: float) -> lk.LightCurve:
    """``lc`` with K2's roll residuals: a sawtooth at the thruster-firing period and a
    flagged cadence or an outlier at each firing.

    Parameters
    ----------
    lc : lightkurve.LightCurve
        Raw light curve (relative flux, Kepler quality bits), one campaign.
    rng : numpy.random.Generator
        Every draw (firing period and phase, amplitude, drift, flags, outliers).
    noise_ppm : float
        White noise per cadence, ppm: the outliers' unit.

    Returns
    -------
    lightkurve.LightCurve
        A copy with the residuals added and the flagged firings marked (bit 1048576).
    """
    time, flux, quality = _columns(lc)
    firing_days = rng.uniform(*K2_FIRING_HOURS) / HOURS_PER_DAY
    first = time[0] + rng.uniform(0.0, firing_days)
    drift = 1.0 + 0.5 * np.sin(2 * np.pi * time / rng.uniform(*K2_ROLL_DRIFT_DAYS) + rng.uniform(0, 2 * np.pi))
    phase = ((time - first) / firing_days) % 1.0
    flux += log_uniform(rng, *K2_ROLL_PPM) * 1e-6 * drift * (phase - 0.5)
    firings = event_cadences(time, np.arange(first, time[-1], firing_days), float(np.median(np.diff(time))))
    flagged = rng.random(len(firings)) < K2_FIRING_FLAGGED
    quality[firings[flagged]] |= FLAG_THRUSTER_FIRING
    loose = firings[~flagged]
    flux[loose] += _signed(rng, len(loose), K2_FIRING_OUTLIER_SIGMA, noise_ppm * 1e-6)
    return _with(lc, flux, quality)


def add_momentum_dumps(lc: lk.LightCurve, rng: np.random.Generator, noise_ppm: float) -> lk.LightCurve:
    """``lc`` with TESS's momentum dumps: a flagged cadence every few days and, after some,
    the pointing's settling: outliers on the 1-2 cadences that follow.

    Parameters
    ----------
    lc : lightkurve.LightCurve
        Raw light curve (relative flux), one or more sectors.
    rng : numpy.random.Generator
        Every draw (interval, phase, which dumps settle slowly, outliers).
    noise_ppm : float
        White noise per cadence, ppm: the outliers' unit.

    Returns
    -------
    lightkurve.LightCurve
        A copy with the dumps flagged (bit 32) and the settling outliers added.
    """
    time, flux, quality = _columns(lc)
    interval_days = rng.uniform(*TESS_DUMP_INTERVAL_DAYS)
    dumps = event_cadences(time, np.arange(time[0] + rng.uniform(0.0, interval_days), time[-1], interval_days),
                           float(np.median(np.diff(time))))
    quality[dumps] |= FLAG_DESATURATION
    for dump in dumps[rng.random(len(dumps)) < TESS_DUMP_UNSETTLED]:
        after = np.arange(dump + 1, min(dump + 1 + int(rng.integers(1, 3)), len(time)))
        flux[after] += _signed(rng, len(after), TESS_DUMP_OUTLIER_SIGMA, noise_ppm * 1e-6)
    return _with(lc, flux, quality)


def add_quarter_boundaries(lc: lk.LightCurve, rng: np.random.Generator) -> lk.LightCurve:
    """``lc`` (one or more Kepler quarters) with a gap and a flux offset at each quarter
    boundary, and rolling-band dips and bumps in some quarters.

    Parameters
    ----------
    lc : lightkurve.LightCurve
        Raw light curve (relative flux) of consecutive 93-d quarters from its first cadence.
    rng : numpy.random.Generator
        Every draw (gaps, offsets, which quarters have rolling bands, their events).

    Returns
    -------
    lightkurve.LightCurve
        A copy without the gaps' cadences, with the offsets and rolling bands added.
    """
    time, flux, quality = _columns(lc)
    quarter = np.floor((time - time[0]) / KEPLER_QUARTER_DAYS).astype(int)
    keep = np.ones(len(time), dtype=bool)
    for q in range(int(quarter.max()) + 1):
        inside = quarter == q
        if q > 0:
            start = time[0] + q * KEPLER_QUARTER_DAYS
            keep &= ~((time >= start) & (time < start + rng.uniform(*QUARTER_GAP_DAYS)))
        flux[inside] *= 1.0 + QUARTER_OFFSET_PPM * 1e-6 * rng.standard_normal()
        if rng.random() < ROLLING_BAND_QUARTERS:
            t_in = time[inside]
            span_days = float(t_in[-1] - t_in[0])
            for _ in range(rng.poisson(rng.uniform(*ROLLING_BAND_PER_DAY) * span_days)):
                centre, width = rng.uniform(t_in[0], t_in[-1]), rng.uniform(*ROLLING_BAND_DAYS)
                # A smooth-edged (super-Gaussian) step up or down, as the band crosses the aperture.
                shape = np.exp(-(((t_in - centre) / (width / 2)) ** 4))
                flux[inside] += rng.choice([-1.0, 1.0]) * log_uniform(rng, *ROLLING_BAND_PPM) * 1e-6 * shape
    return _with(lc, flux, quality, keep)
