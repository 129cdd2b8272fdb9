"""Planets whose period lies outside the model's grid, found by BLS alone.

Place in the flow (search side): readers -> inputs -> preprocess -> fold -> model -> refine
(ephemeris, **offgrid**) -> predict -> views, plots, results -> outputs, batch.

The model scores periods of its grid (1-40 d by default). A planet outside it shows up,
if at all, as a harmonic inside it: WASP-18 b (0.94 d) is scored at 2P = 1.88 d. So BLS
also searches the two ranges the model cannot see:

- short periods, [:data:`SHORT_MIN_DAYS`, grid minimum): ultra-short-period planets
  and hot Jupiters; split in ranges of a factor :data:`SHORT_RANGE_RATIO` so that each
  gets the trial durations its shortest period allows;
- long periods, (grid maximum, half the time span]: two transits at least.

An off-grid box is reported only when it beats every candidate of the grid by
:data:`~exoperiod.search.refine.HARMONIC_SNR_MARGIN` in SNR (then it comes first, and grid
candidates that are its harmonics are dropped): BLS alone over wide ranges finds noise
peaks of SNR 7-10 in most light curves, and the grid candidates carry the model's
probability, which an off-grid box has not (its ``probability`` is NaN, JSON null).
A long light curve is scanned on its first part only, then refined on the whole
(:func:`_fit_within_budget`), so the search costs about a second whatever the length.
"""

from __future__ import annotations

import lightkurve as lk
import numpy as np

from ..grid import PeriodGrid
from .refine import (
    COARSE_FACTOR,
    HARMONIC_SNR_MARGIN,
    BoxFit,
    Candidate,
    TransitSearch,
    candidate_from_fit,
    geometric_periods_days,
    relative_period_step,
)

#: Shortest period searched, days (a 0.3-d orbit is near the Roche limit of a Sun-like star).
SHORT_MIN_DAYS = 0.3
#: Widest (ratio of its ends) short-period sub-range.
SHORT_RANGE_RATIO = 1.8
#: Fewest transits a long period must show.
MIN_TRANSITS = 2
#: An off-grid box needs this SNR at least, whatever the grid found.
MIN_SNR = 7.0
#: Fraction of a grid candidate's transits inside an off-grid planet's that makes it an alias.
SHARED_TRANSIT_FRACTION = 1 / 3
#: Most trial periods x cadences of one off-grid BLS scan (about 2 s of CPU here).
COST_BUDGET = 2e7


def off_grid_ranges(grid: PeriodGrid, span_days: float,
                    period_range_days: tuple[float, float] | None = None) -> list[tuple[float, float]]:
    """Period ranges (days) outside ``grid`` to search, clipped to ``period_range_days``."""
    lo_limit, hi_limit = period_range_days or (0.0, np.inf)
    edges = []
    if grid.min_days > SHORT_MIN_DAYS:
        n = int(np.ceil(np.log(grid.min_days / SHORT_MIN_DAYS) / np.log(SHORT_RANGE_RATIO)))
        cuts = np.geomspace(SHORT_MIN_DAYS, grid.min_days, n + 1)
        edges += [(float(lo), float(hi)) for lo, hi in zip(cuts[:-1], cuts[1:])]
    if span_days / MIN_TRANSITS > grid.max_days:
        edges.append((grid.max_days, span_days / MIN_TRANSITS))
    clipped = [(max(lo, lo_limit), min(hi, hi_limit)) for lo, hi in edges]
    return [(lo, hi) for lo, hi in clipped if hi > lo * 1.001]


def _coarse_cost(lo_days: float, hi_days: float, baseline_days: float, n_cadences: int) -> float:
    """Trial periods x cadences of a BLS scan: its CPU time is proportional to it."""
    step = COARSE_FACTOR * relative_period_step(lo_days, baseline_days)
    return len(geometric_periods_days(lo_days, hi_days, step)) * float(n_cadences)


def _fit_within_budget(
    search: TransitSearch, detrended: lk.LightCurve, lo_days: float, hi_days: float
) -> tuple[BoxFit | None, float]:
    """Best box in [lo_days, hi_days] at bounded cost, and the longest period searched.

    A long light curve needs many trial periods (their spacing shrinks with the time
    span) over many cadences: a Kepler Q1-Q17 curve would take minutes. Then the scan
    runs on its first part, as long as :data:`COST_BUDGET` allows (any 90 days show an
    ultra-short-period planet hundreds of times), and the period is refined on the
    whole light curve around what the part found.
    """
    n = len(search.time_days)
    cost = _coarse_cost(lo_days, hi_days, search.baseline_days, n)
    if cost <= COST_BUDGET:
        return search.search(lo_days, hi_days), hi_days
    # Cost grows with the square of the span (trial periods and cadences both).
    part_days = search.baseline_days * np.sqrt(COST_BUDGET / cost)
    hi_days = min(hi_days, part_days / MIN_TRANSITS)
    if hi_days <= lo_days:
        return None, lo_days
    time = np.asarray(detrended.time.value, dtype=float)
    part = TransitSearch(detrended[time < np.nanmin(time) + part_days])
    rough = part.search(lo_days, hi_days)
    # The part's period is uncertain by about one of its steps: that many whole-curve steps.
    n_steps = int(np.ceil(COARSE_FACTOR * search.baseline_days / part.baseline_days))
    return search.search_near(rough.period_days, n_steps), hi_days


def search_outside_grid(
    detrended: lk.LightCurve,
    grid: PeriodGrid,
    grid_candidates: list[Candidate],
    standardized: bool,
    period_range_days: tuple[float, float] | None = None,
) -> tuple[Candidate | None, list[str]]:
    """The best off-grid box if it beats every grid candidate (see the module docstring),
    else None; and notes on ranges a long light curve left unsearched."""
    search = TransitSearch(detrended)
    fits, notes = [], []
    for lo, hi in off_grid_ranges(grid, search.baseline_days, period_range_days):
        fit, searched_to = _fit_within_budget(search, detrended, lo, hi)
        if searched_to < hi:
            notes.append(f"periods in [{max(lo, searched_to):.3g}, {hi:.3g}] d were not searched outside "
                         "the model grid (too long a light curve for a quick BLS)")
        if fit is not None:
            fits.append(fit)
    best_grid_snr = max((c.snr for c in grid_candidates), default=0.0)
    fits = [f for f in fits if f.snr >= max(MIN_SNR, HARMONIC_SNR_MARGIN * best_grid_snr)]
    if not fits:
        return None, notes
    fit = max(fits, key=lambda f: f.snr)
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
