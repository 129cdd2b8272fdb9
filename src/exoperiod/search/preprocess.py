"""From a light curve to model windows: clean, detrend, normalise, resample, cut.

Place in the flow (search side): readers -> inputs -> **preprocess** -> fold -> model ->
refine (ephemeris, offgrid) -> vetting -> predict -> views, plots, results -> outputs, batch.

The model sees fixed-length windows on a uniform time grid. Gaps stay gaps: a cell with
no data is 0 (the baseline) in ``flux`` and ``False`` in ``mask``; nothing is
interpolated into it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace

import lightkurve as lk
import numba
import numpy as np
from astropy.stats import mad_std
from astropy.timeseries import LombScargle
from lightkurve.utils import KeplerQualityFlags, TessQualityFlags
from wotan import flatten

from ..config import Config
from ..constants import DAYS_PER_YEAR, MINUTES_PER_DAY
from ..errors import ExoperiodError


class PreprocessError(ExoperiodError):
    """A light curve that cannot become a model window; the message is one line."""


@dataclass(frozen=True)
class Windows:
    """Model windows cut from one light curve.

    Attributes
    ----------
    flux : ndarray, shape (n_windows, length), float32
        Detrended flux in units of the per-cadence noise (0 = baseline, dips negative).
    mask : ndarray, shape (n_windows, length), bool
        True where the cell holds data.
    start_time_days : ndarray, shape (n_windows,)
        Time of each window's first cell (mission time system, days).
    cadence_days : float
        Cell width, days.
    noise_ppm : float
        Robust per-cell scatter of the detrended flux, the unit of ``flux``.
    detrended : lightkurve.LightCurve
        The cleaned, detrended light curve at its own cadence (relative flux around 1),
        for refinement and plots.
    trend : ndarray
        The wotan trend the raw flux was divided by, aligned with ``detrended``.
    """

    flux: np.ndarray
    mask: np.ndarray
    start_time_days: np.ndarray
    cadence_days: float
    noise_ppm: float
    detrended: lk.LightCurve
    trend: np.ndarray

    def __len__(self) -> int:
        return len(self.flux)

    def time_days(self, i: int) -> np.ndarray:
        """Centre times of the cells of window ``i``."""
        return self.start_time_days[i] + self.cadence_days * np.arange(self.flux.shape[1])


def quality_mask(lc: lk.LightCurve) -> np.ndarray:
    """True for cadences to keep: Kepler/K2 or TESS "default" quality bitmask."""
    if "quality" not in lc.colnames:
        return np.ones(len(lc), bool)
    quality = np.asarray(lc["quality"].value if hasattr(lc["quality"], "value") else lc["quality"])
    flags = TessQualityFlags if lc.meta.get("MISSION") == "TESS" else KeplerQualityFlags
    return flags.create_quality_mask(quality.astype(np.int32), bitmask="default")


#: Gaps longer than this [d] split a light curve into pieces wotan detrends apart (a
#: star's level may jump across a data download or a safe mode).
BREAK_TOLERANCE_DAYS = 0.5


def detrend(
    time_days: np.ndarray, flux: np.ndarray, window_days: float, masked: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """wotan biweight detrending of a light curve sorted in time; returns (flux / trend, trend).

    The window must be about :data:`WINDOW_PER_TRANSIT` times the longest transit to keep
    (wotan's advice): 1.75 d keeps transits of up to ~13 h, the longest of a 40-day orbit
    around a Sun-like star. ``masked`` cadences (transits found already) do not pull the
    trend. Where a window holds no unmasked cadence, the trend is interpolated linearly
    within the piece between gaps (never across a gap, where the star's level may jump);
    a piece with no unmasked cadence at all keeps the unmasked trend.
    """

    def trend_of(mask: np.ndarray | None) -> np.ndarray:
        # wotan's numba kernels run ~20x slower on a quarter with several OpenMP threads
        # than with one (thread start-up dominates such short loops).
        threads = numba.get_num_threads()
        numba.set_num_threads(1)
        try:
            with warnings.catch_warnings():
                if mask is not None:  # spans with no trend of their own are bridged below
                    warnings.filterwarnings("ignore", message=".*received a NaN trend", category=UserWarning)
                return flatten(time_days, flux, method="biweight", window_length=window_days, edge_cutoff=0.0,
                               break_tolerance=BREAK_TOLERANCE_DAYS, return_trend=True, mask=mask)[1]
        finally:
            numba.set_num_threads(threads)

    trend = trend_of(masked)
    if masked is not None and not np.isfinite(trend).all():
        unmasked = None
        pieces = np.split(np.arange(len(time_days)), np.flatnonzero(np.diff(time_days) > BREAK_TOLERANCE_DAYS) + 1)
        for piece in pieces:
            known = np.isfinite(trend[piece])
            if known.all():
                continue
            if known.any():
                trend[piece] = np.interp(time_days[piece], time_days[piece][known], trend[piece][known])
            else:
                unmasked = trend_of(None) if unmasked is None else unmasked
                trend[piece] = unmasked[piece]
    return flux / trend, trend


#: A transit survives a biweight window this many times its duration (wotan's advice).
WINDOW_PER_TRANSIT = 3.0

#: Points more than this many robust sigma above the trend are clipped (cosmic rays,
#: flares). Gaussian noise exceeds 4 sigma once in ~30,000 cadences (~1.7 per Kepler
#: year), so almost no real data is lost; dips are never clipped.
UPPER_CLIP_SIGMA = 4.0


#: Shortest biweight window [d] a star is given: 0.3 d (7.2 h) keeps transits of up to
#: ~2.4 h whole (wotan's window of three transit durations), those of planets of 1-3 d.
MIN_WINDOW_DAYS = 0.3
#: The window is this fraction of the dominant variability period: a biweight follows a
#: sinusoid that completes fewer than ~1/6 of a cycle inside its window; a longer window
#: leaves a residual at the rotation period that the fold takes for a planet.
WINDOW_PER_VARIABILITY_PERIOD = 1 / 6
#: Variability of less than this many white-noise sigma (robust scatter of the flux over
#: the point-to-point scatter / sqrt 2) leaves the longest window: nothing to follow.
QUIET_VARIABILITY_RATIO = 2.0
#: Periods the variability period is searched over [d]: fast rotators to slow ones.
VARIABILITY_PERIODS_DAYS = (0.2, 20.0)


def variability(time_days: np.ndarray, flux: np.ndarray) -> tuple[float, float]:
    """The dominant variability period (days; Lomb-Scargle peak) and its strength
    (robust scatter of the flux in units of the white noise)."""
    white = float(mad_std(np.diff(flux))) / np.sqrt(2.0)
    ratio = float(mad_std(flux)) / white if white > 0 else 0.0
    span = float(time_days[-1] - time_days[0]) if len(time_days) > 1 else 0.0
    lo, hi = VARIABILITY_PERIODS_DAYS
    if span < 2 * lo or ratio < QUIET_VARIABILITY_RATIO:
        return math.inf, ratio
    # Oversampled 5x against the span's resolution, as astropy's autopower does.
    n = int(min(200_000, max(1000, 5 * span * (1 / lo - 1 / min(hi, span)))))
    frequency = np.linspace(1 / min(hi, span), 1 / lo, n)
    power = LombScargle(time_days, flux).power(frequency, method="fast")
    return float(1.0 / frequency[int(np.argmax(power))]), ratio


def window_for_star(time_days: np.ndarray, flux: np.ndarray, max_window_days: float) -> float:
    """The biweight window for one star: :data:`WINDOW_PER_VARIABILITY_PERIOD` of its
    variability period, between :data:`MIN_WINDOW_DAYS` and ``max_window_days`` (quiet
    stars get the longest, which keeps the longest transits).

    Measured on a held-out noise family (evolving spots, P_rot 0.5-30 d, plus a random
    walk; 30 stars, shipped model): light curves without a planet with a bin >= 0.5 fell
    from 53 % (fixed 1.75 d) to 30 %, planets of SNR 15 recovered from 37 % to 77 %.
    """
    period_days, _ = variability(time_days, flux)
    return float(np.clip(WINDOW_PER_VARIABILITY_PERIOD * period_days, MIN_WINDOW_DAYS, max_window_days))


def clean_and_detrend(lc: lk.LightCurve, window_days: float, adaptive: bool = False,
                      transits: Callable[[np.ndarray], np.ndarray] | None = None
                      ) -> tuple[lk.LightCurve, np.ndarray]:
    """Quality mask, NaN removal, detrending and upward outlier clipping.

    Only upward outliers (cosmic rays, flares) are clipped: transits are dips and must stay.
    With ``adaptive``, ``window_days`` is the longest window and each star gets
    :func:`window_for_star`; the window used is ``meta["DETREND_WINDOW_DAYS"]`` of the result.
    ``transits`` (times in days -> bool) marks cadences the trend must not follow
    (:func:`detrend`'s ``masked``).
    """
    time = np.asarray(lc.time.value, dtype=float)
    flux = np.asarray(lc.flux.value, dtype=float)
    err = np.asarray(lc.flux_err.value, dtype=float) if "flux_err" in lc.colnames else np.full_like(flux, np.nan)
    keep = quality_mask(lc) & np.isfinite(time) & np.isfinite(flux)
    time, flux, err = time[keep], flux[keep], err[keep]
    order = np.argsort(time, kind="stable")
    time, flux, err = time[order], flux[order], err[order]
    if len(time) == 0:
        raise PreprocessError(f"{lc.meta.get('LABEL', 'light curve')}: no valid cadences after the quality mask")
    if adaptive:
        window_days = window_for_star(time, flux / np.nanmedian(flux), window_days)
    flat, trend = detrend(time, flux, window_days, None if transits is None else transits(time))
    ok = np.isfinite(flat)
    resid = flat[ok] - 1.0
    upper = UPPER_CLIP_SIGMA * mad_std(resid) if ok.any() else np.inf
    ok[ok] = resid < upper
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = lk.LightCurve(time=time[ok], flux=flat[ok], flux_err=err[ok] / trend[ok],
                            meta={**lc.meta, "DETREND_WINDOW_DAYS": float(window_days)})
    return out, trend[ok]


def _bin_uniform(time_days: np.ndarray, values: np.ndarray, start: float, cadence_days: float, n_cells: int):
    # A mean per cell with bincount: lightkurve's bin() does the same but ~100x slower,
    # and dataset building runs this for every sample.
    cell = np.floor((time_days - start) / cadence_days + 0.5).astype(np.int64)
    inside = (cell >= 0) & (cell < n_cells)
    counts = np.bincount(cell[inside], minlength=n_cells)
    sums = np.bincount(cell[inside], weights=values[inside], minlength=n_cells)
    mean = np.divide(sums, counts, out=np.zeros(n_cells), where=counts > 0)
    return mean, counts > 0


#: Fewest valid cadences a light curve needs for the coherent search: ~2 days of Kepler
#: long cadence. Shorter than that, no period of the grid shows two transits.
MIN_SEARCH_CADENCES = 96
#: Longest span the uniform grid is built for (Kepler's whole mission is ~4.3 years;
#: TESS's continuous viewing zone over a decade fits): beyond it, a time value is wrong.
MAX_SPAN_DAYS = 30 * DAYS_PER_YEAR


@dataclass(frozen=True)
class Series:
    """A whole light curve on one uniform time grid, for the coherent search.

    Attributes
    ----------
    flux : ndarray (float32)
        Detrended flux in units of the per-cadence noise (0 = baseline, dips negative).
    mask : ndarray of bool
        True where the cell holds data.
    start_time_days : float
        Time of the first cell (mission time system, days).
    cadence_days : float
        Cell width, days.
    noise_ppm : float
        Robust per-cell scatter of the detrended flux, the unit of ``flux``.
    detrended : lightkurve.LightCurve
        The cleaned, detrended light curve at its own cadence (relative flux around 1);
        after :func:`redetrended`, the second detrending (``flux`` and ``noise_ppm`` stay
        the first's).
    trend : ndarray
        The wotan trend the raw flux was divided by, aligned with ``detrended``.
    """

    flux: np.ndarray
    mask: np.ndarray
    start_time_days: float
    cadence_days: float
    noise_ppm: float
    detrended: lk.LightCurve
    trend: np.ndarray

    @property
    def window_days(self) -> float:
        """The biweight window the star was detrended with, days."""
        return float(self.detrended.meta["DETREND_WINDOW_DAYS"])

    @property
    def span_days(self) -> float:
        return len(self.flux) * self.cadence_days

    @property
    def valid_days(self) -> float:
        return float(self.mask.sum()) * self.cadence_days

    def without(self, remove: np.ndarray) -> "Series":
        """The same series with the cells where ``remove`` is True masked out."""
        return replace(self, mask=self.mask & ~remove, flux=np.where(remove, 0.0, self.flux).astype(np.float32))


def series_from_detrended(detrended: lk.LightCurve, trend: np.ndarray, cadence_days: float,
                          name: str = "light curve", min_cadences: int = MIN_SEARCH_CADENCES) -> Series:
    """Bin a detrended light curve (relative flux around 1) onto the uniform grid."""
    time = np.asarray(detrended.time.value, dtype=float)
    rel = np.asarray(detrended.flux.value, dtype=float) - 1.0
    if len(time) < min_cadences:
        raise PreprocessError(f"{name}: {len(time)} valid cadences, fewer than the {min_cadences} the search needs")
    span = time[-1] - time[0]
    if span > MAX_SPAN_DAYS:
        raise PreprocessError(f"{name}: time spans {span:.3g} days, more than {MAX_SPAN_DAYS:.0f} "
                              "(30 years): a time value is wrong")
    n_cells = int(np.floor(span / cadence_days + 0.5)) + 1
    binned, valid = _bin_uniform(time, rel, time[0], cadence_days, n_cells)
    if valid.sum() < min_cadences:
        raise PreprocessError(f"{name}: {int(valid.sum())} valid cells, fewer than the {min_cadences} the search needs")
    noise = float(mad_std(binned[valid]))
    if not np.isfinite(noise) or noise <= 0:
        raise PreprocessError(f"{name}: flux has no scatter after detrending (constant flux?)")
    return Series(flux=(binned / noise).astype(np.float32), mask=valid, start_time_days=float(time[0]),
                  cadence_days=cadence_days, noise_ppm=noise * 1e6, detrended=detrended, trend=trend)


def to_series(lc: lk.LightCurve, config: Config) -> Series:
    """Clean, detrend and bin a whole light curve onto one uniform grid.

    Raises
    ------
    PreprocessError
        Fewer than :data:`MIN_SEARCH_CADENCES` valid cadences, a span beyond
        :data:`MAX_SPAN_DAYS`, or no scatter left after detrending.
    """
    detrended, trend = clean_and_detrend(lc, config.detrend_window_days, config.adaptive_detrending)
    return series_from_detrended(detrended, trend, config.cadence_minutes / MINUTES_PER_DAY, _name(lc))


def redetrended(lc: lk.LightCurve, series: Series, transits: Callable[[np.ndarray], np.ndarray]) -> Series:
    """``series`` with its ``detrended`` and ``trend`` made again from ``lc`` with the same
    window, the cadences where ``transits`` is True masked from the trend; ``flux``,
    ``mask`` and ``noise_ppm`` (what the model scores) stay the first detrending's.

    A window shorter than :data:`WINDOW_PER_TRANSIT` transit durations (a fast
    rotator's) follows the transit and eats its depth and edges. Measured on 17 simulated
    fast rotators (P_rot 0.7-3 d, spots of 0.3-3 %) whose 3.5-10-h transits ``predict``
    found with p >= 0.5: box depth 0.41 of the true depth at the median, 0.78 once
    detrended again (a box averages ~0.8 of a limb-darkened transit); durations 10 % off
    at the median, 4 % again (but spots of 1-3 % at P_rot 3 d leave 3 of them 1.6-2.4x
    too long: the trend interpolated across a 10-h gap is off by much of the depth).
    """
    detrended, trend = clean_and_detrend(lc, series.window_days, transits=transits)
    return replace(series, detrended=detrended, trend=trend)


def _name(lc: lk.LightCurve) -> str:
    return lc.meta.get("FILENAME") or lc.meta.get("LABEL") or "light curve"


def to_windows(lc: lk.LightCurve, config: Config) -> Windows:
    """Preprocess a light curve into fixed-length windows (the dataset's ``arr_0``).

    Parameters
    ----------
    lc : lightkurve.LightCurve
        Time in days, flux normalised around 1 (as :func:`exoperiod.search.readers.read_lightcurve`
        returns it).
    config : Config
        ``lightcurve_length``, ``cadence_minutes``, ``detrend_window_days``,
        ``min_lightcurve_length`` and ``valid_lightcurve_length_threshold`` are used.

    Returns
    -------
    Windows
        One window for every ``lightcurve_length`` cells of the light curve that holds at
        least ``min_lightcurve_length`` valid cells, padded and masked at the end.

    Raises
    ------
    PreprocessError
        Too few valid cadences, or data too sparse for any window.
    """
    name = _name(lc)
    series = to_series(lc, config)
    length = config.lightcurve_length
    n_windows = -(-len(series.flux) // length)
    pad = n_windows * length - len(series.flux)
    valid = np.concatenate([series.mask, np.zeros(pad, bool)])
    if valid.sum() < config.min_lightcurve_length:
        raise PreprocessError(
            f"{name}: {int(valid.sum())} valid cadences, fewer than min_lightcurve_length="
            f"{config.min_lightcurve_length}"
        )
    flux = np.concatenate([series.flux, np.zeros(pad, np.float32)]).reshape(n_windows, length)
    mask = valid.reshape(n_windows, length)
    keep = []
    for i in range(n_windows):
        idx = np.flatnonzero(mask[i])
        if len(idx) >= config.min_lightcurve_length:
            duty = len(idx) / (idx[-1] - idx[0] + 1)
            if duty >= config.valid_lightcurve_length_threshold:
                keep.append(i)
    if not keep:
        raise PreprocessError(
            f"{name}: no window has {config.min_lightcurve_length} valid cadences with a duty "
            f"cycle of at least {config.valid_lightcurve_length_threshold}"
        )
    keep = np.asarray(keep)
    return Windows(
        flux=flux[keep].astype(np.float32),
        mask=mask[keep],
        start_time_days=series.start_time_days + keep * length * series.cadence_days,
        cadence_days=series.cadence_days,
        noise_ppm=series.noise_ppm,
        detrended=series.detrended,
        trend=series.trend,
    )
