"""Verification of the model's period bins with a box least-squares search.

Place in the flow (search side): readers -> inputs -> preprocess -> fold -> model ->
**refine** (ephemeris, offgrid) -> vetting -> predict -> views, plots, results -> outputs, batch.

The model says *which bins* hold a planet; a fine BLS (astropy
:class:`~astropy.timeseries.BoxLeastSquares`) restricted to one bin's period range then
says *where*: period, mid-transit time, depth and SNR, all measured on the whole
detrended light curve (every window), so a 4-year light curve pins the period far better
than one quarter; a limb-darkened transit fitted to the box's transits then gives the
duration and times the period and mid-transit time finer than a box can
(:meth:`TransitSearch.transit_shape`). Restricting the search to a bin (plus half a bin on each
side) keeps it cheap: a bin is ~4 % of the period axis, it is scanned coarsely first
and finely only around its best peaks.

SNR
---
``snr`` is the BLS depth over its uncertainty, with every cadence given the same error:
the robust (MAD) scatter of the detrended flux. For a box of depth ``delta`` over ``N``
in-transit cadences this is ``delta * sqrt(N) / sigma``, the matched-filter SNR that
:mod:`exoperiod.learning.inject` uses, so injected and recovered SNRs compare directly. It assumes
white noise; stellar variability left after detrending makes it optimistic.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field, replace
from typing import ClassVar, NamedTuple

import lightkurve as lk
import numpy as np
from astropy.stats import mad_std
from astropy.timeseries import BoxLeastSquares
from scipy.optimize import least_squares

from ..constants import HOURS_PER_DAY, KEPLER_SOLAR_LIMB_DARKENING
from ..files import json_safe
from ..grid import HARMONICS
from ..orbits import longest_transit_hours
from .ephemeris import box_depth, ephemeris_fields, middle_transit, polish
from .fold import typical_duration_days

#: Trial transit durations of the BLS, hours (the longest also capped by the period).
MIN_DURATION_HOURS = 0.5
MAX_DURATION_HOURS = 15.0
N_DURATIONS = 20
#: A box longer than this fraction of the period is not a transit.
MAX_DUTY_CYCLE = 0.25
#: Neighbouring trial periods differ so that a transit drifts by at most
#: ``resolution / PERIOD_OVERSAMPLE`` over the whole light curve; the resolution is half
#: the typical duration at that period, but never below the shortest trial duration.
PERIOD_OVERSAMPLE = 2.0
#: The coarse scan of a bin is this many times coarser than the fine one (its transits
#: still drift by at most half a typical duration, so a planet's peak survives it); the
#: fine scan then covers the neighbourhood of the best N_PEAKS coarse peaks. 4x less work.
COARSE_FACTOR = 4
N_PEAKS = 3
#: A harmonic must beat the candidate's SNR by this factor to be called better: noise
#: alone makes the two differ by a few per cent.
HARMONIC_SNR_MARGIN = 1.1
#: Significance, in sigma, of an odd/even depth difference.
DEPTH_SIGMA = 3.0
#: An odd/even difference must also be this large a fraction of the deeper one to be
#: reported: at high SNR, spot crossings and sampling make a few per cent "significant".
ODD_EVEN_MIN_DIFFERENCE = 0.3
#: The search extends this fraction of the bin's (log) width beyond each edge: a period
#: near an edge often scores highest in the neighbouring bin, and the top-k choice skips
#: the bin next to a chosen one.
BIN_MARGIN = 0.5
#: BLS steps scanned on either side of the coherent fold's best period.
SEED_STEPS = 4
#: The transit-shape fit of a BLS box (:meth:`TransitSearch.transit_shape`) and its timing
#: use the cadences within this many box durations of mid-transit (at most half a period
#: on either side); its total duration may range over SHAPE_DURATION_RANGE times the
#: box's, its mid-time move by half a box.
SHAPE_WINDOW_DURATIONS = 3.0
SHAPE_DURATION_RANGE = (0.5, 2.5)
#: Folded cadences beyond this many are averaged in as many phase bins (each 6 % of the
#: box duration) before the fit: a 1-d planet in 4 years folds ~20,000 cadences into the
#: window, and the fit's cost follows the points. 100 bins and 5 points per exposure
#: measured the same durations as 200 and 7 (simulated test split and KOI hosts) for
#: 6 ms per fit instead of 8 (a real quarter's predict: 0.093 s instead of 0.106 s).
SHAPE_MAX_POINTS = 100
#: Points per cadence at which the transit model is averaged over the exposure.
SUPERSAMPLE = 5
#: Phases the template of :meth:`TransitSearch._timed` is drawn at over its window (six
#: box durations at most): steps of 0.3 % of a box, far below any timing a light curve gives.
TEMPLATE_POINTS = 2001
#: Stopping rule of each transit-shape fit: durations to 1e-4 of themselves are far
#: finer than any light curve measures them, and a fit that wanders (a shallow dip in
#: red noise took 300 steps) stops at 50 steps instead of costing 0.3 s.
SHAPE_FIT_OPTIONS = {"xtol": 1e-4, "ftol": 1e-6, "max_nfev": 50}
#: Stopping rule of the timing fit. Its offsets of period and mid-time start at 0, so
#: scipy's ``xtol`` test (relative to the offsets themselves) is nearly absolute, ~1e-9 d:
#: the fit stops on ``ftol`` (1e-9 of the sum of squares), in 4-12 evaluations.
TIMING_FIT_OPTIONS = {"xtol": 1e-6, "ftol": 1e-9, "max_nfev": 50}


@dataclass
class Candidate:
    """One refined period: a JSON ``candidates`` entry.

    Attributes
    ----------
    period_days : float
        Refined orbital period, days.
    probability : float
        That a planet is at this period: the vetter's (:mod:`exoperiod.search.vetting`),
        which reads the scorer's probability beside the candidate's own transits; the
        scorer's when the model has no vetter. 0 when the transit lasts longer than a
        planet's can at its period (``longer_than_a_planet``).
    t0_btjd_or_bkjd : float
        Mid-time of the first transit in the data, in the light curve's own time system
        (BKJD for Kepler/K2, BTJD for TESS), days.
    duration_hours : float
        Transit duration T14 (first to last contact), hours: of a limb-darkened transit
        fitted to the folded transit (:meth:`TransitSearch.transit_shape`), or of TLS's
        fit with ``use_tls``; the BLS box's when that fit fails.
    depth_ppm : float or None
        Box depth, ppm; None when the flux is standardized and a depth means nothing.
    snr : float
        Box matched-filter SNR (see the module docstring).
    odd_even_depth_ratio : float or None
        Depth of the odd transits over that of the even ones (1 for a planet; far from 1
        hints at an eclipsing binary at twice the period); None if even transits are
        absent or have no depth.
    bin_index : int
        Index of the model bin the search was restricted to.
    search_pass : int
        0 for the original light curve, ``j`` after the transits of ``j`` planets were
        masked.
    note : str or None
        Harmonic, odd/even, sinusoid and duration warnings, in words.
    better_period_days : float or None
        The harmonic (P/3, P/2, 2P or 3P) that explains the data better, if any.
    box_depth : float
        Box depth in units of the detrended flux (also for standardized flux); used to
        draw the box.
    period_err_days, t0_err_days, duration_err_hours, depth_err_ppm : float or None
        1-sigma uncertainties (how: :mod:`exoperiod.search.ephemeris`); None when not measured.
    transit_times_btjd_or_bkjd : list of float
        Mid-times of the transits with data, in the light curve's time system.
    outside_grid : bool
        Found outside the model's period grid (by the fold, refined by BLS:
        :mod:`exoperiod.search.offgrid`); then
        ``probability`` is NaN (JSON null) and ``bin_index`` -1.
    sde : float or None
        Signal detection efficiency of the coherent search, as TLS defines its SDE: the
        best box SNR in the candidate's bin minus the mean over all trial periods, in
        standard deviations of the periodogram. A significance that does not depend on
        the model (TLS's rule of thumb: SDE > 9 is a false-alarm rate below 1e-4 on
        white noise); None outside the grid.
    scorer_probability : float or None
        The scorer's probability of the candidate's peak (its bin and the neighbours),
        from the search pass that found it, before vetting; None outside the grid.
    vetting_features : ndarray or None
        What the vetter read (:func:`exoperiod.search.vetting.vetting_features`), also
        without a vetter; None when the candidate is not vetted (not in the JSON).
    longer_than_a_planet : bool
        ``duration_hours`` exceeds :func:`exoperiod.orbits.longest_transit_hours` at
        this period: a dip of stellar variability, not a transit (not in the JSON; the
        note says it).
    """

    period_days: float
    probability: float
    t0_btjd_or_bkjd: float
    duration_hours: float
    depth_ppm: float | None
    snr: float
    odd_even_depth_ratio: float | None
    bin_index: int
    search_pass: int = 0
    note: str | None = None
    better_period_days: float | None = None
    box_depth: float = 0.0
    period_err_days: float | None = None
    t0_err_days: float | None = None
    duration_err_hours: float | None = None
    depth_err_ppm: float | None = None
    transit_times_btjd_or_bkjd: list[float] = field(default_factory=list)
    outside_grid: bool = False
    sde: float | None = None
    scorer_probability: float | None = None
    vetting_features: np.ndarray | None = field(default=None, repr=False, compare=False)
    longer_than_a_planet: bool = False

    JSON_KEYS: ClassVar[tuple[str, ...]] = (
        "period_days", "probability", "t0_btjd_or_bkjd", "duration_hours", "depth_ppm", "snr",
        "odd_even_depth_ratio", "bin_index", "search_pass", "note", "better_period_days",
        "period_err_days", "t0_err_days", "duration_err_hours", "depth_err_ppm", "outside_grid",
        "transit_times_btjd_or_bkjd", "sde", "scorer_probability",
    )

    def to_dict(self) -> dict:
        """The JSON object: the contract's keys first, then the extra keys."""
        return {key: json_safe(getattr(self, key)) for key in self.JSON_KEYS}

    def transit_mask(self, time_days: np.ndarray, widen: float = 1.0) -> np.ndarray:
        """True within ``widen`` x the duration around each of its transits.

        The transits at P/2 or P/3 include those at P (same t0): when a shorter harmonic
        explains the data better, all of its transits are masked, or masking this
        candidate would leave half of them behind.
        """
        period = self.period_days
        if self.better_period_days is not None and self.better_period_days < period:
            period = self.better_period_days
        return in_transit(time_days, period, self.t0_btjd_or_bkjd, widen * self.duration_hours / HOURS_PER_DAY)


class ShapeFit(NamedTuple):
    """A limb-darkened transit fitted to a fold (:meth:`TransitSearch._shape`)."""

    shift_days: float  # of mid-transit from the fold's
    t14_days: float
    impact: float
    rp_rs: float


@dataclass(frozen=True)
class BoxFit:
    """The best box of a BLS search (periods and times in days)."""

    period_days: float
    t0_days: float
    duration_days: float
    depth: float
    depth_err: float

    @property
    def snr(self) -> float:
        """Depth over its uncertainty (see the module docstring)."""
        return float(self.depth / self.depth_err) if self.depth_err > 0 else 0.0


def trial_durations_days(min_period_days: float) -> np.ndarray:
    """BLS trial durations, days: log-spaced, none above a quarter of the period."""
    durations = np.geomspace(MIN_DURATION_HOURS, MAX_DURATION_HOURS, N_DURATIONS) / HOURS_PER_DAY
    kept = durations[durations < MAX_DUTY_CYCLE * min_period_days]
    return kept if len(kept) else durations[:1]


def relative_period_step(period_days: float, baseline_days: float) -> float:
    """Relative step dP / P between neighbouring fine BLS trial periods near ``period_days``."""
    resolution_days = max(MIN_DURATION_HOURS / HOURS_PER_DAY, 0.5 * float(typical_duration_days(period_days)))
    # A step of dP drifts a transit by baseline * dP / P: keep that below resolution/oversample.
    return resolution_days / (PERIOD_OVERSAMPLE * max(baseline_days, period_days))


def geometric_periods_days(lo_days: float, hi_days: float, step: float) -> np.ndarray:
    """Periods from ``lo_days`` to ``hi_days`` with relative spacing at most ``step``."""
    n = int(np.ceil(np.log(hi_days / lo_days) / np.log1p(step))) + 1
    return np.geomspace(lo_days, hi_days, max(n, 2))


def top_peaks(power: np.ndarray, n: int, separation: int = 0) -> list[int]:
    """Indices of the ``n`` highest local maxima of ``power``, each more than
    ``separation`` indices from a higher one."""
    padded = np.concatenate([[-np.inf], np.nan_to_num(power, nan=-np.inf), [-np.inf]])
    local = np.flatnonzero((padded[1:-1] >= padded[:-2]) & (padded[1:-1] >= padded[2:]))
    chosen: list[int] = []
    for i in local[np.argsort(-power[local], kind="stable")]:
        if len(chosen) == n:
            break
        if all(abs(int(i) - j) > separation for j in chosen):
            chosen.append(int(i))
    return chosen


class TransitSearch:
    """BLS searches and statistics on one detrended light curve.

    Parameters
    ----------
    lc : lightkurve.LightCurve
        Detrended light curve, relative flux around 1, time in days.
    """

    def __init__(self, lc: lk.LightCurve) -> None:
        self._use(np.asarray(lc.time.value, dtype=float), np.asarray(lc.flux.value, dtype=float))

    def without(self, remove: np.ndarray) -> TransitSearch:
        """The same search on the cadences where ``remove`` (aligned with ``time_days``) is
        False: a planet's transits masked without slicing a LightCurve (an astropy table
        whose time index costs ~30 ms to slice for 4 years)."""
        out = object.__new__(TransitSearch)
        out._use(self.time_days[~remove], self.flux[~remove])
        return out

    def _use(self, time: np.ndarray, flux: np.ndarray) -> None:
        ok = np.isfinite(time) & np.isfinite(flux)
        self.time_days, self.flux = time[ok], flux[ok]
        self.sigma = float(mad_std(self.flux - np.median(self.flux)))
        if not np.isfinite(self.sigma) or self.sigma <= 0:
            self.sigma = float(np.std(self.flux)) or 1.0
        # One error for every cadence: the SNR is then the matched-filter SNR, and
        # cadences with underestimated pipeline errors cannot dominate the fit.
        self.bls = BoxLeastSquares(self.time_days, self.flux, dy=np.full_like(self.flux, self.sigma))
        self.baseline_days = float(np.ptp(self.time_days)) if len(self.time_days) else 0.0
        # The median time step: the exposure each cadence's transit model is averaged over.
        self.exposure_days = float(np.median(np.diff(self.time_days))) if len(self.time_days) > 1 else 0.0

    def search(self, lo_days: float, hi_days: float) -> BoxFit:
        """Best box with a period in [lo_days, hi_days].

        A coarse scan (:data:`COARSE_FACTOR` times the fine step) finds the
        :data:`N_PEAKS` best peaks, and a fine scan around each picks the best box.
        """
        durations = trial_durations_days(lo_days)
        fine_step = relative_period_step(lo_days, self.baseline_days)
        coarse = geometric_periods_days(lo_days, hi_days, COARSE_FACTOR * fine_step)
        power = self.bls.power(coarse, durations, objective="likelihood").power
        fits = [self._best(geometric_periods_days(coarse[max(i - 1, 0)], coarse[min(i + 1, len(coarse) - 1)],
                                                  fine_step), durations)
                for i in top_peaks(np.asarray(power), N_PEAKS)]
        return max(fits, key=lambda fit: fit.snr)

    def search_near(self, period_days: float, n_steps: int = 3) -> BoxFit:
        """Best box within ``n_steps`` trial periods of ``period_days``."""
        step = relative_period_step(period_days, self.baseline_days)
        periods = period_days * (1.0 + step) ** np.arange(-n_steps, n_steps + 1)
        return self._best(periods, trial_durations_days(periods[0]))

    def _best(self, periods_days: np.ndarray, durations_days: np.ndarray) -> BoxFit:
        result = self.bls.power(periods_days, durations_days, objective="likelihood")
        i = int(np.nanargmax(result.power))
        return BoxFit(float(result.period[i]), self.first_transit(float(result.transit_time[i]),
                                                                   float(result.period[i])),
                      float(result.duration[i]), float(result.depth[i]), float(result.depth_err[i]))

    def first_transit(self, t0_days: float, period_days: float) -> float:
        """The first mid-transit time of this ephemeris at or after the start of the data."""
        return float(t0_days + period_days * np.ceil((self.time_days.min() - t0_days) / period_days))

    def transit_shape(self, fit: BoxFit, standardized: bool = False) -> BoxFit:
        """``fit`` with the period, mid-time and duration of a limb-darkened transit fitted to its transits.

        A box fits the flat bottom of a limb-darkened transit and leaves out most of
        ingress and egress, so BLS durations fall short of the catalogues' first-to-last
        contact duration T14 (by 15 % at the median on the real Kepler hosts), and its
        duration grid steps by 20 %. A trapezoid measures T14 better but bends its sides
        to follow the limb darkening: 10 % too long for small planets and too short for
        giants, at any SNR. So a batman transit (quadratic limb darkening of a Sun-like
        star, :data:`~exoperiod.constants.KEPLER_SOLAR_LIMB_DARKENING`; integrated over
        each cadence's exposure, the median time step, or a 29.4-min Kepler cadence would
        lengthen every transit by half an hour) is fitted to the folded transit with its
        mid-time, T14, impact parameter, radius ratio and baseline free, the depth being
        the radius ratio's. For ``standardized`` flux, whose depth is in noise units and
        says nothing of the radius ratio, depth and baseline are solved linearly at each
        step instead.

        A fold at a period off by its own 1-sigma error smears the transit by about one
        transit's timing error at either end of the light curve, tens of times what the
        fold measures T14 to at high SNR: on the simulated test split, T14 of a planet at
        SNR 500 came out 6 % long at the box's period, 1 % at the true one. So the period
        and mid-time are fitted again with that transit as the template (:meth:`_timed`;
        the box likelihood they start from, :func:`~exoperiod.search.ephemeris.polish`,
        has flat tops between cadences), and the shape is fitted again on the new fold.

        Depth and SNR stay a box's (:func:`~exoperiod.search.ephemeris.box_depth`, over
        T14 at the timed ephemeris): they are what the BLS detection statistic means.
        ``fit``, polished, is returned when the fit cannot start or the folded window
        holds too few cadences; a fit stopped by the cap of :data:`SHAPE_FIT_OPTIONS`
        keeps where it got.
        """
        fit = polished = polish(self, fit)
        shape = self._shape(fit, standardized)
        if shape is None:
            return fit
        timed = self._timed(fit, shape)
        again = None if timed is None else self._shape(timed, standardized)
        if again is not None:
            fit, shape = timed, again
        t0 = self.first_transit(fit.t0_days + shape.shift_days, fit.period_days)
        if not in_transit(self.time_days, fit.period_days, t0, shape.t14_days).any():
            # Shifted and narrowed into a gap (a transit or two at the edges of the data):
            # no cadence would measure that transit, so the box stays.
            return polished
        return box_depth(self, replace(fit, t0_days=t0, duration_days=shape.t14_days))

    @staticmethod
    def _half_window_days(fit: BoxFit) -> float:
        """Half the span around mid-transit that the shape and timing fits use."""
        return min(SHAPE_WINDOW_DURATIONS * fit.duration_days, 0.5 * fit.period_days)

    def _shape(self, fit: BoxFit, standardized: bool) -> ShapeFit | None:
        """The transit fitted to ``fit``'s fold (see :meth:`transit_shape`); None if the fit cannot start."""
        period, box = fit.period_days, fit.duration_days
        half_window = self._half_window_days(fit)
        phase = (self.time_days - fit.t0_days + 0.5 * period) % period - 0.5 * period
        near = np.abs(phase) < half_window
        x, y, weight = _phase_binned(phase[near], self.flux[near], half_window)
        if len(x) < 10 or not fit.depth > 0:
            return None
        lo, hi = SHAPE_DURATION_RANGE
        max_days = min(hi * box, MAX_DUTY_CYCLE * period, 2 * half_window)
        out = np.abs(x) > box
        baseline = float(np.median(y[out])) if out.any() else float(np.median(y))
        # Parameters: mid-time shift, T14, impact parameter, radius ratio and, for relative
        # flux, the baseline (standardized flux: depth and baseline solved linearly).
        relative = not standardized and baseline > 0
        n = 5 if relative else 4

        def residuals(p: np.ndarray) -> np.ndarray:
            dip = shape.dip(*p[:4])
            if relative:
                return weight * (p[4] * (1.0 - dip) - y)
            design = np.column_stack([np.ones_like(dip), -dip]) * weight[:, None]
            return design @ np.linalg.lstsq(design, y * weight, rcond=None)[0] - y * weight

        rp_rs = float(np.clip(np.sqrt(fit.depth / baseline), 0.01, 0.5)) if relative else 0.05
        # b starts at 0.3: a second start near grazing (0.85) found V-shaped fits to noise
        # and lowered the share of durations within one (log) bin on the test split (57 -> 53 %).
        start = [0.0, float(np.clip(1.2 * box, lo * box, max_days)), 0.3, rp_rs, baseline][:n]
        bounds = ([-0.5 * box, lo * box, 0.0, 0.005, -np.inf][:n], [0.5 * box, max_days, 1.0, 0.6, np.inf][:n])
        try:
            shape = _TransitShape(x, period, self.exposure_days)
            result = least_squares(residuals, start, bounds=bounds, **SHAPE_FIT_OPTIONS,
                                   x_scale=[box, box, 0.3, rp_rs, fit.depth][:n])
        except ValueError:
            return None
        return ShapeFit(*(float(v) for v in result.x[:4]))

    def _timed(self, fit: BoxFit, shape: ShapeFit) -> BoxFit | None:
        """``fit`` with the period and mid-time at which the transit ``shape`` best
        matches the cadences near its transits; None with fewer than two transits that
        hold a cadence.

        Unlike a box's, the likelihood of a limb-darkened template is smooth in the
        period, so least squares finds its maximum. The template is drawn once on a fine
        grid of phases and interpolated; its depth and the baseline are solved linearly
        at each step. The epoch is the transit nearest the middle of the data, where it
        does not correlate with the period. The period moves by at most one step of the
        BLS grid it came from (the box likelihood, polished, is already within one): it
        is made finer here, never moved to another signal (with three transits, a
        half-duration drift allows 3 % of the period: a 3.11-d alias of Kepler-6 b slid
        onto the planet's own transits at 3.18 d).
        """
        period_days = fit.period_days
        t0_days = middle_transit(self, period_days, fit.t0_days + shape.shift_days)
        half_window_days = self._half_window_days(fit)
        cycle = np.round((self.time_days - t0_days) / period_days)
        offset_days = self.time_days - t0_days - cycle * period_days
        if len(np.unique(cycle[np.abs(offset_days) < 0.5 * shape.t14_days])) < 2:
            return None
        near = np.abs(offset_days) < half_window_days
        time_days, cycle, flux = self.time_days[near], cycle[near], self.flux[near]
        phase_days = np.linspace(-half_window_days, half_window_days, TEMPLATE_POINTS)
        template = _TransitShape(phase_days, period_days, self.exposure_days).dip(
            0.0, shape.t14_days, shape.impact, shape.rp_rs)

        def residuals(p: np.ndarray) -> np.ndarray:
            dip = np.interp(time_days - (t0_days + p[1]) - cycle * (period_days + p[0]), phase_days, template)
            dip -= dip.mean()
            norm = float(dip @ dip)
            scale = float(dip @ flux) / norm if norm > 0 else 0.0
            return flux - flux.mean() - scale * dip

        max_step_days = period_days * relative_period_step(period_days, self.baseline_days)
        try:
            result = least_squares(residuals, [0.0, 0.0], bounds=([-max_step_days, -0.5 * shape.t14_days],
                                                                 [max_step_days, 0.5 * shape.t14_days]),
                                   x_scale=[0.1 * max_step_days, 0.1 * shape.t14_days], **TIMING_FIT_OPTIONS)
        except ValueError:
            return None
        period_days += float(result.x[0])
        return replace(fit, period_days=period_days, t0_days=self.first_transit(t0_days + float(result.x[1]),
                                                                                period_days))

    def vet(self, fit: BoxFit) -> tuple[float | None, list[str]]:
        """The odd/even depth ratio (None if either half has no data) and warnings, in words.

        Odd and even depths differ when the difference exceeds :data:`DEPTH_SIGMA` sigma
        and :data:`ODD_EVEN_MIN_DIFFERENCE` of the deeper depth; the sigma counts red
        noise (:meth:`red_noise_factor`): with few transits, spots alone make them differ
        by many white-noise sigma. A sinusoid at the period that fits better than the
        box (astropy's ``harmonic_delta_log_likelihood`` > 0) points to spots or
        pulsation rather than a transit.
        """
        stats = self.bls.compute_stats(fit.period_days, fit.duration_days, fit.t0_days)
        (d_odd, e_odd), (d_even, e_even) = stats["depth_odd"], stats["depth_even"]
        err = np.hypot(e_odd, e_even) * self.red_noise_factor(fit.duration_days)
        ratio = float(d_odd / d_even) if np.isfinite(err) and d_even > 0 else None
        flags = []
        deeper = max(d_odd, d_even)
        if (np.isfinite(err) and deeper > 0 and abs(d_odd - d_even) > DEPTH_SIGMA * err
                and abs(d_odd - d_even) > ODD_EVEN_MIN_DIFFERENCE * deeper):
            shown = f"{ratio:.2f}" if ratio is not None else "inf"
            flags.append(f"odd and even depths differ (ratio {shown}): 2P (an eclipsing binary?) may "
                            "explain the data better")
        if stats["harmonic_delta_log_likelihood"] > 0:
            flags.append("a sinusoid at this period fits better than a transit: stellar variability?")
        return ratio, flags

    def red_noise_factor(self, duration_days: float) -> float:
        """How much the scatter of ``duration_days`` means exceeds white noise (>= 1).

        The "beta" of Pont, Zucker & Queloz (2006): the scatter of the flux averaged in
        bins of the duration, over what white noise of the per-cadence scatter gives.
        """
        bins = np.floor((self.time_days - self.time_days[0]) / duration_days).astype(np.int64)
        counts = np.bincount(bins)
        full = counts >= max(2, 0.5 * counts.max())
        if full.sum() < 10:
            return 1.0
        means = np.bincount(bins, weights=self.flux)[full] / counts[full]
        white = self.sigma / np.sqrt(counts[full].mean())
        return max(1.0, float(mad_std(means) / white))

    def better_harmonic(self, fit: BoxFit) -> tuple[str, float] | None:
        """The harmonic of ``fit`` that explains the data better, as (name, period days).

        A harmonic wins if its SNR beats the candidate's by :data:`HARMONIC_SNR_MARGIN`
        and its depth is at least half the candidate's: at the true period the depth is
        the same as at a multiple of it, while a box at P/2 over transits that repeat
        only every P is half as deep and has 1/sqrt(2) of the SNR. Harmonics with fewer
        than two transits in the data are not tried.
        """
        best_name, best_snr, best_period = None, fit.snr, 0.0
        for name, factor in HARMONICS.items():
            period = fit.period_days * factor
            if period > 0.5 * self.baseline_days or period * MAX_DUTY_CYCLE < MIN_DURATION_HOURS / HOURS_PER_DAY:
                continue
            alt = self.search_near(period)
            if alt.depth >= 0.5 * fit.depth and alt.snr > HARMONIC_SNR_MARGIN * best_snr:
                best_name, best_snr, best_period = name, alt.snr, alt.period_days
        return None if best_name is None else (best_name, best_period)


def _phase_binned(phase_days: np.ndarray, flux: np.ndarray, half_window_days: float
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Folded cadences (phase, flux, weight 1), or their means in :data:`SHAPE_MAX_POINTS`
    phase bins (weight sqrt(count), so each bin counts as its cadences) when more."""
    if len(phase_days) <= SHAPE_MAX_POINTS:
        return phase_days, flux, np.ones_like(flux)
    edges = np.linspace(-half_window_days, half_window_days, SHAPE_MAX_POINTS + 1)
    which = np.clip(np.searchsorted(edges, phase_days, side="right") - 1, 0, SHAPE_MAX_POINTS - 1)
    count = np.bincount(which, minlength=SHAPE_MAX_POINTS)
    kept = count > 0
    mean = lambda values: np.bincount(which, values, SHAPE_MAX_POINTS)[kept] / count[kept]  # noqa: E731
    return mean(phase_days), mean(flux), np.sqrt(count[kept])


class _TransitShape:
    """The dip ``1 - flux`` of a batman transit at given phases, parametrised by what a
    light curve measures: mid-time shift, T14, impact parameter ``b`` and radius ratio
    ``k`` (circular orbit; a/R* and the inclination follow from T14, b and k)."""

    def __init__(self, phase_days: np.ndarray, period_days: float, exposure_days: float) -> None:
        import batman

        self.period = period_days
        self.params = batman.TransitParams()
        self.params.t0, self.params.per, self.params.rp, self.params.a = 0.0, period_days, 0.1, 10.0
        self.params.inc, self.params.ecc, self.params.w = 90.0, 0.0, 90.0
        self.params.limb_dark, self.params.u = "quadratic", list(KEPLER_SOLAR_LIMB_DARKENING)
        # No exposure to average over (duplicated time stamps): the instantaneous shape.
        smeared = exposure_days > 0
        self.model = batman.TransitModel(self.params, phase_days, supersample_factor=SUPERSAMPLE if smeared else 1,
                                         exp_time=exposure_days if smeared else 0.0)

    def dip(self, shift_days: float, t14_days: float, impact: float, rp_rs: float) -> np.ndarray:
        # T14 = P/pi * arcsin(sqrt((1 + k)^2 - b^2) / (a sin i)) (Winn 2010, eq. 14) solved
        # for a, with a sin i = sqrt(a^2 - b^2).
        chord_sq = (1.0 + rp_rs) ** 2 - impact**2
        a_rs = float(np.sqrt(impact**2 + chord_sq / np.sin(np.pi * t14_days / self.period) ** 2))
        self.params.t0, self.params.rp, self.params.a = shift_days, rp_rs, a_rs
        self.params.inc = float(np.degrees(np.arccos(impact / a_rs)))
        return 1.0 - self.model.light_curve(self.params)


def in_transit(time_days: np.ndarray, period_days: float, t0_days: float, duration_days: float) -> np.ndarray:
    """True for times within half ``duration_days`` of a mid-transit time."""
    phase = (np.asarray(time_days, dtype=float) - t0_days + 0.5 * period_days) % period_days - 0.5 * period_days
    return np.abs(phase) < 0.5 * duration_days


def tls_fit(search: TransitSearch, lo_days: float, hi_days: float) -> BoxFit | None:
    """Transit least squares (limb-darkened template) on [lo_days, hi_days].

    Returns None when TLS finds nothing in that range (its period grid can be empty for
    a narrow bin of a short light curve).
    """
    from transitleastsquares import transitleastsquares

    model = transitleastsquares(search.time_days, search.flux, np.full_like(search.flux, search.sigma))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = model.power(period_min=lo_days, period_max=hi_days, oversampling_factor=2,
                                 duration_grid_step=1.1, use_threads=os.cpu_count() or 1,
                                 show_progress_bar=False, verbose=False)
        except (ValueError, IndexError):
            return None
    if not np.isfinite(result.period):
        return None
    depth = 1.0 - float(result.depth)
    return BoxFit(float(result.period), search.first_transit(float(result.T0), float(result.period)),
                  float(result.duration), depth, depth / result.snr if result.snr > 0 else np.inf)


def refine_bin(
    search: TransitSearch,
    lo_days: float,
    hi_days: float,
    probability: float,
    bin_index: int,
    search_pass: int = 0,
    standardized: bool = False,
    use_tls: bool = False,
    seed_period_days: float | None = None,
) -> Candidate:
    """Refine one model bin into a :class:`Candidate`.

    Parameters
    ----------
    search : TransitSearch
        The light curve to search.
    lo_days, hi_days : float
        Edges of the bin, days; the search extends :data:`BIN_MARGIN` of its width
        beyond each.
    probability : float
        The model's probability of the bin.
    bin_index, search_pass : int
        Recorded in the candidate.
    standardized : bool
        The flux is standardized: ``depth_ppm`` is None.
    use_tls : bool
        Refine period, t0, duration, depth and SNR with TLS instead of BLS (slower, and
        its first call compiles for ~15 s; BLS is kept for standardized flux and when
        TLS finds nothing in the bin). The SNR is then TLS's own.
    seed_period_days : float, optional
        The best period of the coherent fold in this bin: the BLS then only scans
        :data:`SEED_STEPS` of its fine steps on either side (the fold's trials are ~1.6
        BLS steps apart), instead of the whole bin.
    """
    margin = (hi_days / lo_days) ** BIN_MARGIN
    lo_days, hi_days = lo_days / margin, hi_days * margin
    box = search.search(lo_days, hi_days) if seed_period_days is None else search.search_near(seed_period_days, SEED_STEPS)
    fit, notes = None, []
    if use_tls and standardized:
        # TLS fits a limb-darkened transit to relative flux; standardized flux has none.
        notes.append("TLS skipped for standardized flux; BLS values shown")
    elif use_tls:
        fit = tls_fit(search, lo_days, hi_days)
        if fit is None:
            notes.append("TLS found nothing in this bin; BLS values shown")
        else:
            fit = polish(search, fit)
    if fit is None:  # TLS's fit is a transit shape already: its duration is T14
        fit = search.transit_shape(box, standardized)
    return candidate_from_fit(search, fit, probability, bin_index, search_pass, standardized, notes)


def candidate_from_fit(
    search: TransitSearch,
    fit: BoxFit,
    probability: float,
    bin_index: int,
    search_pass: int,
    standardized: bool,
    notes: list[str],
) -> Candidate:
    """A :class:`Candidate` of a fitted box: harmonics and odd/even vetted, uncertainties measured.

    ``fit`` carries the box depth of its own ephemeris and duration, as
    :meth:`TransitSearch.transit_shape` and :func:`~exoperiod.search.ephemeris.polish`
    return it.

    ``notes`` (words for the candidate's ``note``) is extended with the vetting's warnings.
    """
    harmonic = search.better_harmonic(fit)
    if harmonic is not None:
        notes.append(f"{harmonic[0]} = {harmonic[1]:.4f} d explains the data better")
    ratio, flags = search.vet(fit)
    notes += flags
    duration_hours, longest_hours = fit.duration_days * HOURS_PER_DAY, longest_transit_hours(fit.period_days)
    too_long = duration_hours > longest_hours
    if too_long:
        # The scorer sees box SNRs, not shapes: the broad dips of spotted stars (a quarter
        # of their period) got p 0.5-0.9 on held-out stars, and no planet's transit is
        # that long. Among 894 held-out candidates, 103 were this long and none a planet.
        notes.append(f"lasts {duration_hours:.1f} h, longer than a planet's transit can at this period "
                     f"({longest_hours:.1f} h): stellar variability; probability set to 0")
        probability = 0.0 if np.isfinite(probability) else probability
    return Candidate(
        period_days=fit.period_days,
        probability=float(probability),
        t0_btjd_or_bkjd=fit.t0_days,
        duration_hours=duration_hours,
        depth_ppm=None if standardized else fit.depth * 1e6,
        snr=fit.snr,
        odd_even_depth_ratio=ratio,
        bin_index=int(bin_index),
        search_pass=search_pass,
        note="; ".join(notes) or None,
        better_period_days=None if harmonic is None else harmonic[1],
        box_depth=fit.depth,
        **ephemeris_fields(search, fit, standardized),
        longer_than_a_planet=too_long,
    )
