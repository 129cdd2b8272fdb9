"""Vetting views of a candidate: the phase-folded inputs of Astronet- and ExoMiner-like models.

Place in the flow (search side): readers -> inputs -> preprocess -> fold -> model -> refine
(ephemeris, offgrid) -> vetting -> predict -> **views**, plots, results -> outputs, batch.

A period alone does not say whether a signal is a planet; vetting models judge the
*shape* of the folded light curve. This module makes the views they are trained on, so
that a candidate found here can be handed to such a model (or to a person: the PNG report
draws the same arrays).

Definitions
-----------
Shallue & Vanderburg (2018, AJ 155, 94), section 3.3, and their Astronet code
(``google-research/exoplanet-ml``, ``astronet/data/preprocess.py``):

* **global view**: the whole phase, ``[-P/2, P/2)`` around the transit, in 2,001 bins of
  width ``P / 2001``;
* **local view**: ``+-4`` transit durations around the transit in 201 bins, each bin
  ``0.16`` durations wide (the bins overlap: their centres are 0.039 durations apart,
  which smooths a sparsely sampled transit);
* every bin holds the **median** of its cadences; each view is then shifted so that its
  median is 0 and divided by the absolute value of its minimum, so a transit's bottom
  sits at -1.

Empty bins are interpolated linearly from their nearest non-empty neighbours, as
ExoMiner does within the transit. Astronet fills them with the light curve's median
instead; on one quarter of long-cadence data (a few transits sampled at the same
phases every orbit) that cuts a transit into a comb of spikes back to the baseline.

Valizadegan et al. (2022, ApJ 926, 120, ExoMiner) add views with the local view's bins:

* **odd** and **even local views**: the local view of the odd- and of the even-numbered
  transits alone (cycles counted from the first transit in the data);
* **secondary view**: the local view centred on the most significant secondary dip (the
  best box of the candidate's period and duration once the primary transits are
  masked), or at phase 0.5 when there is none.

These three are scaled by the local view's factor rather than by their own minimum:
divided by their own minimum, odd and even views would both reach -1 whatever their
depths, and the secondary view of a planet (no eclipse) would show its deepest noise
bin as an eclipse as deep as the transit. So an eclipsing binary shows odd and even
bottoms at different levels, and a secondary eclipse at its depth relative to the
transit.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import lightkurve as lk
import numpy as np
from astropy.stats import mad_std
from astropy.timeseries import BoxLeastSquares
from scipy.stats import binned_statistic

from ..constants import HOURS_PER_DAY
from ..files import atomic_write
from .refine import Candidate, in_transit

if TYPE_CHECKING:
    from .predict import Prediction

GLOBAL_BINS = 2001
#: Global-view bin width, as a fraction of the period (contiguous bins).
GLOBAL_BIN_WIDTH_PHASE = 1 / 2001
LOCAL_BINS = 201
#: Local-view bin width, in transit durations (Astronet's ``bin_width_factor``).
LOCAL_BIN_WIDTH_DURATIONS = 0.16
#: The local view spans this many durations on either side of mid-transit.
LOCAL_HALF_WIDTH_DURATIONS = 4.0
#: Cadences within this many durations of a primary mid-transit are left out of the
#: search for a secondary eclipse (a box next to the transit would find its wings).
SECONDARY_MASK_DURATIONS = 2.0
#: Earlier planets' transits are masked this much wider than their box (as for the search).
EARLIER_PLANET_WIDEN = 1.5

VIEW_NAMES = ("global_view", "local_view", "odd_local_view", "even_local_view", "secondary_view")


def vetting_views(
    lc: lk.LightCurve, period_days: float, t0_days: float, duration_hours: float
) -> dict[str, np.ndarray]:
    """The global, local, odd, even and secondary views of one candidate.

    Parameters
    ----------
    lc : lightkurve.LightCurve
        Detrended light curve (relative flux around 1, or standardized flux around 0:
        each view is shifted to its own median), time in days.
    period_days : float
        Orbital period, days.
    t0_days : float
        A mid-transit time, in the light curve's time system, days.
    duration_hours : float
        Transit duration, hours: sets the local view's width.

    Returns
    -------
    dict of str to ndarray
        The arrays of :data:`VIEW_NAMES` (2,001 and 201 bins) and the parameters used,
        as 0-d arrays so that ``numpy.savez(path, **views)`` stores everything:
        ``period_days``, ``t0_btjd_or_bkjd``, ``duration_hours``, ``global_bins``,
        ``local_bins``, ``global_bin_width_phase``, ``local_bin_width_durations``,
        ``local_half_width_durations`` (4, or less when 4 durations exceed half the
        period: the local view never wraps), ``secondary_phase`` (centre of the secondary
        view as a fraction of the period after the transit) and ``local_view_scale``
        (the depth, in flux units, that -1 of the local, odd, even and secondary views
        stands for).

    Raises
    ------
    ValueError
        For a non-positive period or duration, or a light curve without finite flux.
    """
    if not (period_days > 0 and duration_hours > 0):
        raise ValueError(f"views need a positive period and duration, not {period_days} d and {duration_hours} h")
    finite = np.isfinite(np.asarray(lc.flux.value, dtype=float))
    # Slicing an astropy time series rebuilds its time index (0.4 s at 65k cadences): only if needed.
    if not finite.all():
        lc = lc[finite]
    if len(lc) == 0:
        raise ValueError("views need a light curve with finite flux; this one has none")
    duration_days = duration_hours / HOURS_PER_DAY
    half_width_days = min(LOCAL_HALF_WIDTH_DURATIONS * duration_days, 0.5 * period_days)
    local_width_days = LOCAL_BIN_WIDTH_DURATIONS * duration_days
    folded = lc.fold(period=period_days, epoch_time=t0_days)
    phase_days = np.asarray(folded.time.value, dtype=float)
    flux = np.asarray(folded.flux.value, dtype=float)
    # A view with no data at all (a candidate's transits all masked) is the baseline.
    baseline = float(np.median(flux))

    def local(phase: np.ndarray, values: np.ndarray) -> np.ndarray:
        return median_bins(phase, values, -half_width_days, half_width_days, LOCAL_BINS, local_width_days, baseline)

    global_view, _ = normalise(median_bins(phase_days, flux, -0.5 * period_days, 0.5 * period_days, GLOBAL_BINS,
                                           GLOBAL_BIN_WIDTH_PHASE * period_days, baseline))
    local_view, scale = normalise(local(phase_days, flux))
    odd = np.asarray(folded.odd_mask)
    secondary_phase = secondary_phase_fraction(lc, period_days, t0_days, duration_days)
    secondary_days = ((phase_days - secondary_phase * period_days + 0.5 * period_days) % period_days) - 0.5 * period_days
    views = {
        "global_view": global_view,
        "local_view": local_view,
        "odd_local_view": normalise(local(phase_days[odd], flux[odd]), scale)[0],
        "even_local_view": normalise(local(phase_days[~odd], flux[~odd]), scale)[0],
        "secondary_view": normalise(local(secondary_days, flux), scale)[0],
    }
    parameters = {
        "period_days": period_days, "t0_btjd_or_bkjd": t0_days, "duration_hours": duration_hours,
        "global_bins": GLOBAL_BINS, "local_bins": LOCAL_BINS, "global_bin_width_phase": GLOBAL_BIN_WIDTH_PHASE,
        "local_bin_width_durations": LOCAL_BIN_WIDTH_DURATIONS,
        "local_half_width_durations": half_width_days / duration_days,
        "secondary_phase": secondary_phase, "local_view_scale": scale,
    }
    return views | {key: np.asarray(value) for key, value in parameters.items()}


def local_bin_centres_durations(views: dict[str, np.ndarray]) -> np.ndarray:
    """Centres of the local views' bins, in durations from mid-transit (0 in the middle)."""
    half, width, n = (float(views["local_half_width_durations"]), float(views["local_bin_width_durations"]),
                      int(views["local_bins"]))
    return -half + 0.5 * width + (2 * half - width) / (n - 1) * np.arange(n)


def median_bins(
    x: np.ndarray, values: np.ndarray, lo: float, hi: float, n_bins: int, width: float, empty: float
) -> np.ndarray:
    """Medians of ``values`` in ``n_bins`` bins of ``width`` spread evenly over [lo, hi].

    Bin ``i`` covers ``[lo + i * s, lo + i * s + width)`` with ``s = (hi - lo - width) /
    (n_bins - 1)`` (Astronet's binning), so bins wider than ``s`` overlap. scipy's
    :func:`~scipy.stats.binned_statistic` needs disjoint bins: the bins are taken in
    ``m`` interleaved sets (every ``m``-th bin), each disjoint, one call per set. Empty
    bins are interpolated linearly from the nearest non-empty ones (constant beyond the
    outermost); all are ``empty`` if every bin is.
    """
    spacing = (hi - lo - width) / (n_bins - 1)
    starts = lo + spacing * np.arange(n_bins)
    # Bins i and i + m must not overlap; the tiny excess keeps rounding from letting
    # the end of one touch the start of the next.
    m = int(np.floor(width / spacing * (1 + 1e-9))) + 1
    out = np.full(n_bins, np.nan)
    for offset in range(min(m, n_bins)):
        chosen = starts[offset::m]
        # Edges start, end, start, end, ...: the bins between an end and the next start
        # are the gaps, dropped by taking every other statistic.
        edges = np.column_stack([chosen, chosen + width]).ravel()
        stat = binned_statistic(x, values, statistic="median", bins=edges).statistic
        out[offset::m] = stat[::2]
    filled = np.isfinite(out)
    if not filled.any():
        return np.full(n_bins, empty)
    return np.interp(starts, starts[filled], out[filled])


def normalise(view: np.ndarray, scale: float | None = None) -> tuple[np.ndarray, float]:
    """Shift ``view`` to a median of 0 and divide it by ``scale`` (default: the
    absolute value of its new minimum, so that the deepest bin is -1).

    Returns the view and the scale. A view with nothing below its median (no data at
    all) keeps a scale of 1: there is no depth to normalise by.
    """
    shifted = view - np.median(view)
    if scale is None:
        scale = float(abs(shifted.min()))
        if not scale > 0:
            scale = 1.0
    return shifted / scale, float(scale)


def secondary_phase_fraction(lc: lk.LightCurve, period_days: float, t0_days: float, duration_days: float) -> float:
    """Phase (fraction of the period after mid-transit) of the most significant secondary dip.

    The best box of the candidate's period and duration once the primary transits
    (:data:`SECONDARY_MASK_DURATIONS` durations around them) are masked, as astropy's
    BLS finds it; 0.5 when no box has a positive depth or too little data is left.
    """
    time = np.asarray(lc.time.value, dtype=float)
    flux = np.asarray(lc.flux.value, dtype=float)
    out = ~in_transit(time, period_days, t0_days, SECONDARY_MASK_DURATIONS * duration_days)
    if out.sum() < 3 or period_days <= (SECONDARY_MASK_DURATIONS + 1) * duration_days:
        return 0.5
    sigma = float(mad_std(flux[out])) or 1.0
    bls = BoxLeastSquares(time[out], flux[out], dy=np.full(out.sum(), sigma))
    result = bls.power([period_days], [duration_days], objective="likelihood")
    if not result.depth[0] > 0:
        return 0.5
    return float(((result.transit_time[0] - t0_days) / period_days) % 1.0)


def candidate_views(prediction: Prediction, candidate: Candidate | int) -> dict[str, np.ndarray]:
    """:func:`vetting_views` of one of ``prediction``'s candidates on its detrended light curve.

    The transits of the planets found before the candidate (earlier search passes) are
    masked, as they were when it was found: they would only add dips to its views.
    """
    if isinstance(candidate, (int, np.integer)):
        candidate = prediction.candidates[candidate]
    if prediction.series is None:
        raise ValueError(f"{prediction.input}: the prediction carries no light curve (made by predict_paths?); "
                         "use predict(), or predict_paths(views_dir=...)")
    detrended = prediction.series.detrended
    keep = earlier_planets_kept(prediction, candidate, np.asarray(detrended.time.value, dtype=float))
    if not keep.all():  # see vetting_views: slicing is slow
        detrended = detrended[keep]
    return vetting_views(detrended, candidate.period_days, candidate.t0_btjd_or_bkjd, candidate.duration_hours)


def earlier_planets_kept(prediction: Prediction, candidate: Candidate, time_days: np.ndarray) -> np.ndarray:
    """False at the transits of the planets masked before ``candidate`` was searched."""
    keep = np.ones(len(time_days), bool)
    for earlier in prediction.candidates[:candidate.search_pass]:
        keep &= ~earlier.transit_mask(time_days, widen=EARLIER_PLANET_WIDEN)
    return keep


def write_views(prediction: Prediction, path_stem: str | os.PathLike) -> list[Path]:
    """Write one ``<path_stem>.<n>.npz`` per candidate (n = 1, 2, ... in candidate order).

    Each file holds the arrays of :func:`vetting_views`; it is written to a temporary
    file and renamed, so a file that exists is complete.
    """
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for n, candidate in enumerate(prediction.candidates, start=1):
        path = stem.with_name(f"{stem.name}.{n}.npz")
        with atomic_write(path) as tmp:
            np.savez(tmp, **candidate_views(prediction, candidate))
        written.append(path)
    return written
