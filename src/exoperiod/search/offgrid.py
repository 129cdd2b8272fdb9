"""Planets whose period lies outside the model's grid, found by the coherent fold and BLS.

Place in the flow (search side): readers -> inputs -> preprocess -> fold -> model -> refine
(ephemeris, **offgrid**) -> predict -> views, plots, results -> outputs, batch.

The model scores periods of its grid (1-40 d by default). A planet outside it shows up,
if at all, as a harmonic inside it: WASP-18 b (0.94 d) is scored at 2P = 1.88 d. So the
two ranges the model cannot see are searched without it:

- short periods, [:data:`SHORT_MIN_DAYS`, grid minimum): ultra-short-period planets
  and hot Jupiters;
- long periods, (grid maximum, half the time span]: two transits at least.

Each range gets the model's own search, the stack-slide box fold of the whole light
curve (:class:`~exoperiod.search.fold.CoherentFold`, every trial period the baseline
needs), and BLS then refines the :data:`N_PEAKS` best fold trials of each range
(:meth:`~exoperiod.search.refine.TransitSearch.search_near`). A BLS scan of the ranges
themselves cost 2 s on a 4-year light curve while searching only its first 200 days; the
folds search all of it in ~0.2 s. Their cost grows with the period (more phase bins per
trial), so on a long light curve the long range is searched only as far as
:data:`FOLD_BUDGET` allows (~90 d for 4 years), and a note says which periods were left
out. On simulated light curves this finds more of the planets outside the grid than the
BLS scan did, and no more false ones (``benchmarks/off_grid.py``).

An off-grid box is reported only when it beats every candidate of the grid by
:data:`~exoperiod.search.refine.HARMONIC_SNR_MARGIN` in SNR (then it comes first, and grid
candidates that are its harmonics are dropped): a box search over wide ranges finds noise
peaks of SNR 7-10 in most light curves, and the grid candidates carry the model's
probability, which an off-grid box has not (its ``probability`` is NaN, JSON null).
"""

from __future__ import annotations

import numpy as np

from ..grid import PeriodGrid
from .fold import DOWNSAMPLE, SEGMENT_CELLS, CoherentFold
from .preprocess import Series
from .refine import (
    HARMONIC_SNR_MARGIN,
    N_PEAKS,
    SEED_STEPS,
    Candidate,
    TransitSearch,
    candidate_from_fit,
    top_peaks,
)

#: Shortest period searched, days (a 0.3-d orbit is near the Roche limit of a Sun-like star).
SHORT_MIN_DAYS = 0.3
#: Fewest transits a long period must show.
MIN_TRANSITS = 2
#: An off-grid box needs this SNR at least, whatever the grid found.
MIN_SNR = 7.0
#: Fraction of a grid candidate's transits inside an off-grid planet's that makes it an alias.
SHARED_TRANSIT_FRACTION = 1 / 3
#: BLS's SNR of a fold peak (finer durations and phases) was at most 1.8 times the fold's
#: on 319 peaks of real and simulated light curves (median 1.1): a peak below the
#: off-grid SNR threshold divided by this cannot reach it and is not refined.
FOLD_TO_BLS_SNR = 2.0
#: Fold peaks closer than this many fine trials are one peak (a transit's is a few wide).
PEAK_SEPARATION_TRIALS = 10
#: A fold peak must also stand this many standard deviations above the mean of its
#: range's periodogram (TLS's SDE; 7 is its 1 % false-alarm level on white noise) where
#: the range has at least SDE_MIN_TRIALS trials: there the highest noise peak rises with
#: the number of trials, and red noise lifts long boxes at long periods. Without it,
#: 10 of 30 simulated planet-free 4-year light curves got an off-grid candidate; with it
#: 2, as with the BLS scan of their first 200 days (``benchmarks/off_grid.py``). A
#: periodogram of a hundred trials (40-45 d in a quarter) is too short for an SDE.
MIN_SDE = 7.0
SDE_MIN_TRIALS = 1000
#: Most work of the off-grid folds of one light curve, in histogram-bin additions (cells
#: folded at each coarse trial plus bins stacked at each fine trial, ~1 ns each here):
#: ~0.2 s. A 4-year Kepler light curve needs 1e8 for the short range and would need 4e8
#: for the long one up to 744 d; a quarter needs 1e6 in all.
FOLD_BUDGET = 2e8


def off_grid_ranges(grid: PeriodGrid, span_days: float,
                    period_range_days: tuple[float, float] | None = None) -> list[tuple[float, float]]:
    """Period ranges (days) outside ``grid`` to search, clipped to ``period_range_days``."""
    lo_limit, hi_limit = period_range_days or (0.0, np.inf)
    edges = []
    if grid.min_days > SHORT_MIN_DAYS:
        edges.append((SHORT_MIN_DAYS, grid.min_days))
    if span_days / MIN_TRANSITS > grid.max_days:
        edges.append((grid.max_days, span_days / MIN_TRANSITS))
    clipped = [(max(lo, lo_limit), min(hi, hi_limit)) for lo, hi in edges]
    return [(lo, hi) for lo, hi in clipped if hi > lo * 1.001]


def _searchable_to(fold: CoherentFold, n_cells: int, valid_cells: int, budget: float) -> tuple[float, float]:
    """The longest period of ``fold``'s range that its search reaches within ``budget``
    (NaN if not even the first trial), and the work it takes (see :data:`FOLD_BUDGET`).

    The fine trials of a shorter range are the first ones of the longer range, so the
    range can be cut at any trial.
    """
    fine, fine_coarse, _, bins, _ = fold.trials(n_cells)
    segments = -(-n_cells // min(SEGMENT_CELLS, n_cells))
    work = np.cumsum(segments * bins[fine_coarse]) + (fine_coarse + 1.0) * valid_cells
    within = int(np.searchsorted(work, budget, side="right"))
    if within == len(fine):
        return fold.grid.max_days, float(work[-1])
    return (float(fine[within - 1]), float(work[within - 1])) if within else (float("nan"), 0.0)


def _fold_peaks(series: Series, lo_days: float, hi_days: float,
                budget: float) -> tuple[list[tuple[float, float]], float, float]:
    """The :data:`N_PEAKS` best fold trials in [lo_days, hi_days] that pass :data:`MIN_SDE`,
    as (period days, fold SNR), the longest period searched and the work done."""
    fold = CoherentFold(PeriodGrid(lo_days, hi_days), series.cadence_days)
    n_cells = len(series.flux) // DOWNSAMPLE
    valid_cells = int(np.count_nonzero(series.mask[:n_cells * DOWNSAMPLE].reshape(-1, DOWNSAMPLE).any(axis=1)))
    searched_to, work = _searchable_to(fold, n_cells, valid_cells, budget)
    if not searched_to > lo_days:
        return [], lo_days, 0.0
    if searched_to < hi_days:
        fold = CoherentFold(PeriodGrid(lo_days, searched_to), series.cadence_days)
    result = fold(series.flux, series.mask)
    peaks = top_peaks(result.snr, N_PEAKS, PEAK_SEPARATION_TRIALS)
    if len(result.snr) >= SDE_MIN_TRIALS:
        floor = float(np.mean(result.snr) + MIN_SDE * np.std(result.snr))
        peaks = [i for i in peaks if result.snr[i] >= floor]
    return [(float(result.periods_days[i]), float(result.snr[i])) for i in peaks], searched_to, work


def search_outside_grid(
    series: Series,
    grid: PeriodGrid,
    grid_candidates: list[Candidate],
    standardized: bool,
    period_range_days: tuple[float, float] | None = None,
    search: TransitSearch | None = None,
) -> tuple[Candidate | None, list[str]]:
    """The best off-grid box if it beats every grid candidate (see the module docstring),
    else None; and notes on ranges a long light curve left unsearched.

    ``search`` is the BLS of ``series.detrended`` when the caller has one already.
    """
    search = search or TransitSearch(series.detrended)
    threshold = max(MIN_SNR, HARMONIC_SNR_MARGIN * max((c.snr for c in grid_candidates), default=0.0))
    fits, notes, budget = [], [], FOLD_BUDGET
    for lo, hi in off_grid_ranges(grid, search.baseline_days, period_range_days):
        peaks, searched_to, work = _fold_peaks(series, lo, hi, budget)
        budget -= work
        if searched_to < hi:
            notes.append(f"periods in [{searched_to:.3g}, {hi:.3g}] d were not searched outside "
                         "the model grid (too long a light curve for a quick search)")
        fits += [search.search_near(period, SEED_STEPS) for period, snr in peaks
                 if FOLD_TO_BLS_SNR * snr >= threshold]
    fits = [f for f in fits if f.snr >= threshold]
    if not fits:
        return None, notes
    fit = search.transit_shape(max(fits, key=lambda f: f.snr), standardized)
    searched = f"[{grid.min_days:g}, {grid.max_days:g}] d"
    candidate = candidate_from_fit(search, fit, float("nan"), -1, 0, standardized,
                                   [f"outside the model grid {searched}, found by BLS"])
    candidate.outside_grid = True
    return candidate, notes


def explained_by(candidate: Candidate, planet: Candidate) -> bool:
    """At least :data:`SHARED_TRANSIT_FRACTION` of ``candidate``'s observed transits fall
    in ``planet``'s: a period in a ratio p/q to the planet's (WASP-18 b's 4/3 P = 1.26 d
    catches every third of its transits) rather than a planet of its own. Two real
    planets share a transit by chance only at a rate of about their duty cycle."""
    times = np.asarray(candidate.transit_times_btjd_or_bkjd)
    return bool(len(times)) and float(planet.transit_mask(times).mean()) >= SHARED_TRANSIT_FRACTION
