"""From a light curve to model windows: clean, detrend, normalise, resample, cut.

Place in the flow (search side): readers -> inputs -> **preprocess** -> fold -> model ->
refine (ephemeris, offgrid) -> predict -> views, plots, results -> outputs, batch.

The model sees fixed-length windows on a uniform time grid. Gaps stay gaps: a cell with
no data is 0 (the baseline) in ``flux`` and ``False`` in ``mask``; nothing is
interpolated into it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import lightkurve as lk
import numba
import numpy as np
from astropy.stats import mad_std
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


def detrend(
    time_days: np.ndarray, flux: np.ndarray, window_days: float
) -> tuple[np.ndarray, np.ndarray]:
    """wotan biweight detrending; returns (flux / trend, trend).

    The window must be about three times the longest transit to keep (wotan's advice):
    1.75 d keeps transits of up to ~13 h, the longest of a 40-day orbit around a Sun-like star.
    """
    # wotan's numba kernels run ~20x slower on a quarter with several OpenMP threads
    # than with one (thread start-up dominates such short loops).
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        flat, trend = flatten(
            time_days, flux, method="biweight", window_length=window_days,
            edge_cutoff=0.0, break_tolerance=0.5, return_trend=True,
        )
    finally:
        numba.set_num_threads(threads)
    return flat, trend


#: Points more than this many robust sigma above the trend are clipped (cosmic rays,
#: flares). Gaussian noise exceeds 4 sigma once in ~30,000 cadences (~1.7 per Kepler
#: year), so almost no real data is lost; dips are never clipped.
UPPER_CLIP_SIGMA = 4.0


def clean_and_detrend(lc: lk.LightCurve, window_days: float) -> tuple[lk.LightCurve, np.ndarray]:
    """Quality mask, NaN removal, detrending and upward outlier clipping.

    Only upward outliers (cosmic rays, flares) are clipped: transits are dips and must stay.
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
    flat, trend = detrend(time, flux, window_days)
    ok = np.isfinite(flat)
    resid = flat[ok] - 1.0
    upper = UPPER_CLIP_SIGMA * mad_std(resid) if ok.any() else np.inf
    ok[ok] = resid < upper
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = lk.LightCurve(time=time[ok], flux=flat[ok], flux_err=err[ok] / trend[ok], meta=dict(lc.meta))
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
        The cleaned, detrended light curve at its own cadence (relative flux around 1).
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
    name = lc.meta.get("FILENAME") or lc.meta.get("LABEL") or "light curve"
    detrended, trend = clean_and_detrend(lc, config.detrend_window_days)
    return series_from_detrended(detrended, trend, config.cadence_minutes / MINUTES_PER_DAY, name)


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
    name = lc.meta.get("FILENAME") or lc.meta.get("LABEL") or "light curve"
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
