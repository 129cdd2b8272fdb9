"""One coherent box search over every cadence of a star, fast: the stack-slide fold.

Place in the flow (search side): readers -> inputs -> preprocess -> **fold** -> model ->
refine (ephemeris, offgrid) -> vetting -> predict -> views, plots, results -> outputs, batch.

Why
---
A planet of total SNR 12 over Kepler's 17 quarters has an SNR of ~3 in each: no single
quarter shows it, and combining per-quarter scores afterwards cannot recover evidence that
no quarter had. The search must fold the whole light curve at trial periods fine enough
for its whole baseline (neighbouring trials differ so that a transit drifts by at most
a fraction of its duration over the span, the criterion of Ofir 2014 that TLS uses):
~100,000 trials for 4 years at 1-40 d. Folding 36,000 cells at each would cost 4e9
operations.

How
---
The stack-slide of continuous-wave gravitational-wave searches (and, in spirit, the Fast
Folding Algorithm of pulsar searches):

1. The uniform series is cut into segments of ``segment_cells`` cells. Each segment is
   folded at a *coarse* grid of trial periods, fine enough for one segment's span, into
   phase histograms (sum of flux and number of cadences per phase bin), its phase counted
   from the segment's own start.
2. Each *fine* trial period (fine enough for the whole span) takes the histograms of
   its nearest coarse trial, rotates segment ``s``'s histogram by the phase that the
   segment's start time has at the fine period, and adds them up: the fold of the whole
   light curve at the fine period, for the cost of a few additions per bin and segment.
3. Boxes of 1..4 phase bins slide over the summed histogram: ``-sum(flux)/sqrt(n)`` is
   the box's SNR for unit-noise input, BLS's statistic.

Errors of the approximation: a coarse trial is within half a coarse step of the fine one
(drift over a segment <= ``COARSE_DRIFT_BINS / 2`` bins), a fine trial within half a
fine step of the true period (drift over the span <= ``FINE_DRIFT_BINS / 2`` bins), and
each segment's rotation is rounded to the nearest bin. Bins are ~40 % of a typical
transit, so the smearing costs a few % of SNR (measured in the tests against
:func:`fold_snr_slow`, the obvious reference).

Cost for a 4-year Kepler curve (36,000 two-cadence cells): ~2e8 additions to fold the
segments and ~2e8 to stack them, in numba; one quarter costs ~1e7.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from ..constants import DAYS_PER_YEAR, HOURS_PER_DAY, SUN_T14_HOURS_AT_1YR
from ..grid import PeriodGrid

#: Phase-bin width as a fraction of the typical duration at each period.
BIN_FRACTION_OF_DURATION = 0.4
#: Box widths tried, in phase bins: 0.4 to 1.6 typical durations.
BOX_WIDTHS_BINS = (1, 2, 3, 4)
#: Two Kepler long cadences (59 min) per cell still resolve the shortest transits the
#: grid cares about (~1.5 h at 1 d) and halve the cost.
DOWNSAMPLE = 2
#: Neighbouring fine trials drift apart by this many phase bins over the whole span.
FINE_DRIFT_BINS = 1.0
#: Neighbouring coarse trials drift apart by this many phase bins over one segment.
COARSE_DRIFT_BINS = 1.0
#: Cells (after downsampling) per segment: 83.7 d of Kepler long cadence. Longer
#: segments need more coarse trials, shorter ones more rotations; this balances them.
SEGMENT_CELLS = 2048
#: Boxes holding fewer cadences are scored as if they held this many, so that a single
#: outlier cannot pass for a transit.
MIN_BOX_CADENCES = 3.0


def typical_duration_days(period_days: np.ndarray | float) -> np.ndarray:
    """Central-transit duration of a Sun-like star at ``period_days``, days."""
    return SUN_T14_HOURS_AT_1YR / HOURS_PER_DAY * (np.asarray(period_days) / DAYS_PER_YEAR) ** (1 / 3)


def phase_bin_cells(period_days: np.ndarray, cell_days: float) -> np.ndarray:
    """Phase-bin width at each period, in cells (at least one cell)."""
    return np.maximum(1.0, BIN_FRACTION_OF_DURATION * typical_duration_days(period_days) / cell_days)


def trial_periods(grid: PeriodGrid, span_cells: float, cell_days: float, drift_bins: float) -> np.ndarray:
    """Trial periods, days, spaced so that neighbours drift ``drift_bins`` phase bins
    apart over ``span_cells`` (a transit drifts by dP * span / P)."""
    duration_scale = BIN_FRACTION_OF_DURATION * SUN_T14_HOURS_AT_1YR / HOURS_PER_DAY / DAYS_PER_YEAR ** (1 / 3) / cell_days
    return _trial_periods(grid.min_days, grid.max_days, duration_scale, drift_bins / max(span_cells, 1.0))


@numba.njit(cache=True)
def _trial_periods(min_days, max_days, duration_scale, drift_per_cell):
    # A plain loop: each step depends on the last (~1e5 steps for 4 years).
    out = [min_days]
    p = min_days
    while True:
        p *= 1.0 + drift_per_cell * max(1.0, duration_scale * p ** (1.0 / 3.0))
        if p > max_days:
            break
        out.append(p)
    return np.array(out)


@dataclass(frozen=True)
class FoldResult:
    """The best box at every fine trial period.

    Attributes
    ----------
    periods_days : ndarray
        Fine trial periods, days.
    snr : ndarray (float32)
        SNR of the best box, ``-sum(flux)/sqrt(n)`` for unit-noise flux.
    epoch_days : ndarray
        Centre of the best box, days after the series' first cell, in [0, P).
    duration_days : ndarray
        Width of the best box, days.
    """

    periods_days: np.ndarray
    snr: np.ndarray
    epoch_days: np.ndarray
    duration_days: np.ndarray


@numba.njit(cache=True, nogil=True)
def _fold_segments(flux, count, seg_cells, coarse_period_cells, coarse_bins, coarse_offset, total_bins):
    n = flux.shape[0]
    n_seg = (n + seg_cells - 1) // seg_cells
    hist_flux = np.zeros((n_seg, total_bins), np.float32)
    hist_count = np.zeros((n_seg, total_bins), np.float32)
    # A segment's valid cells, gathered once: the bin loop then has no branch and
    # vectorises, and only the scatter into the histogram stays scalar (2x faster).
    cell = np.empty(seg_cells, np.float64)
    cell_flux = np.empty(seg_cells, np.float64)
    cell_count = np.empty(seg_cells, np.float64)
    cell_bin = np.empty(seg_cells, np.int64)
    for s in range(n_seg):
        first = s * seg_cells
        m = 0
        for i in range(first, min(n, first + seg_cells)):
            if count[i] > 0:
                cell[m] = i - first
                cell_flux[m] = flux[i]
                cell_count[m] = count[i]
                m += 1
        for j in range(coarse_period_cells.shape[0]):
            step = 1.0 / coarse_period_cells[j]
            nb = coarse_bins[j]
            for q in range(m):
                # The same expression as _fold_cells, so that removing cells undoes
                # adding them bin for bin.
                phase = cell[q] * step
                cell_bin[q] = int((phase - np.floor(phase)) * nb)
            hf = hist_flux[s, coarse_offset[j]:coarse_offset[j] + nb]
            hn = hist_count[s, coarse_offset[j]:coarse_offset[j] + nb]
            for q in range(m):
                hf[cell_bin[q]] += cell_flux[q]
                hn[cell_bin[q]] += cell_count[q]
    return hist_flux, hist_count


@numba.njit(cache=True, nogil=True)
def _fold_cells(hist_flux, hist_count, cells, flux, count, seg_cells, coarse_period_cells, coarse_bins,
                coarse_offset):
    # Add a few cells (negative flux and count to remove them) to existing histograms.
    for k in range(cells.shape[0]):
        i = cells[k]
        s = i // seg_cells
        first = s * seg_cells
        for j in range(coarse_period_cells.shape[0]):
            step = 1.0 / coarse_period_cells[j]
            phase = (i - first) * step
            b = int((phase - np.floor(phase)) * coarse_bins[j])
            hist_flux[s, coarse_offset[j] + b] += flux[i]
            hist_count[s, coarse_offset[j] + b] += count[i]


@numba.njit(cache=True, nogil=True, inline="always")
def _add_to(total, hist):
    for b in range(hist.shape[0]):
        total[b] += hist[b]


@numba.njit(cache=True, nogil=True)
def _stack_slide(hist_flux, hist_count, seg_cells, fine_period_cells, fine_coarse, coarse_bins,
                 coarse_offset, widths, min_count):
    n_fine = fine_period_cells.shape[0]
    n_seg = hist_flux.shape[0]
    max_bins = 0
    for j in range(coarse_bins.shape[0]):
        max_bins = max(max_bins, coarse_bins[j])
    max_w = 0
    for w in widths:
        max_w = max(max_w, w)
    total_f = np.zeros(max_bins + max_w, np.float64)
    total_n = np.zeros(max_bins + max_w, np.float64)
    best_snr = np.zeros(n_fine, np.float32)
    best_start = np.zeros(n_fine, np.int64)
    best_width = np.ones(n_fine, np.int64)
    for f in range(n_fine):
        j = fine_coarse[f]
        nb = coarse_bins[j]
        off = coarse_offset[j]
        period = fine_period_cells[f]
        total_f[:nb] = 0.0
        total_n[:nb] = 0.0
        for s in range(n_seg):
            start = s * seg_cells
            k = int((start % period) / period * nb + 0.5) % nb
            # Bin b goes to b + k, wrapping: two contiguous runs, one loop per array
            # each, which vectorise (2x faster than one loop with a wrap test).
            _add_to(total_f[k:nb], hist_flux[s, off:off + nb - k])
            _add_to(total_n[k:nb], hist_count[s, off:off + nb - k])
            _add_to(total_f[:k], hist_flux[s, off + nb - k:off + nb])
            _add_to(total_n[:k], hist_count[s, off + nb - k:off + nb])
        # Wrap the first bins after the last so that boxes cross phase 1.
        for b in range(max_w):
            total_f[nb + b] = total_f[b % nb]
            total_n[nb + b] = total_n[b % nb]
        top = -np.inf
        top_squared = 0.0
        for w in widths:
            if w > nb:
                continue
            sf = 0.0
            sn = 0.0
            for b in range(w):
                sf += total_f[b]
                sn += total_n[b]
            for b in range(nb):
                if sn > 0:
                    n_eff = max(sn, min_count)
                    dip = min(sf, 0.0)
                    # Once a positive SNR is held, a box can beat it only if dip**2 / n_eff
                    # > top**2: that test, with a margin far above rounding, skips the
                    # square root and division (and their unpredictable sign branch)
                    # for almost every box; the boxes it lets through are compared exactly.
                    if top <= 0.0 or dip * dip >= top_squared * n_eff * (1.0 - 1e-9):
                        snr = -sf / np.sqrt(n_eff)
                        if snr > top:
                            top = snr
                            top_squared = snr * snr
                            best_start[f] = b
                            best_width[f] = w
                sf += total_f[b + w] - total_f[b]
                sn += total_n[b + w] - total_n[b]
        best_snr[f] = top if top > -np.inf else 0.0
    return best_snr, best_start, best_width


@dataclass(frozen=True)
class FoldState:
    """The segments' phase histograms of one series, from which any fine trial is
    stacked; kept so that masking a planet's transits only subtracts those cells."""

    flux: np.ndarray  # per two-cadence cell: summed flux
    count: np.ndarray  # per two-cadence cell: valid cadences
    hist_flux: np.ndarray
    hist_count: np.ndarray
    segment_cells: int


class CoherentFold:
    """The stack-slide box search of one uniform series (see the module docstring).

    Parameters
    ----------
    grid : PeriodGrid
        Periods searched: ``grid.min_days`` to ``grid.max_days``.
    cadence_days : float
        Cell width of the input series, days.

    It has no parameters to learn; the trial grids depend only on the series' length,
    and are rebuilt per call (cheap next to the fold).
    """

    def __init__(self, grid: PeriodGrid, cadence_days: float) -> None:
        self.grid = grid
        self.cell_days = cadence_days * DOWNSAMPLE
        self._last_trials: tuple[int, tuple] = (-1, ())

    def trials(self, n_cells: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Fine periods (days), their coarse trial, coarse periods (cells), bins, offsets
        (read-only arrays).

        Those of the last length asked for are kept: the fold, the stacking and every
        planet pass of a light curve ask for the same (~4 ms each for 4 years).
        """
        cached_cells, cached = self._last_trials
        if cached_cells == n_cells:
            return cached
        seg = min(SEGMENT_CELLS, n_cells)
        fine = trial_periods(self.grid, n_cells, self.cell_days, FINE_DRIFT_BINS)
        coarse = trial_periods(self.grid, seg, self.cell_days, COARSE_DRIFT_BINS)
        # The nearest coarse trial in log period.
        idx = np.clip(np.searchsorted(np.log(coarse), np.log(fine)), 1, len(coarse) - 1)
        nearer_left = np.log(fine) - np.log(coarse[idx - 1]) < np.log(coarse[idx]) - np.log(fine)
        fine_coarse = np.where(nearer_left, idx - 1, idx)
        coarse_cells = coarse / self.cell_days
        bins = np.maximum(np.round(coarse_cells / phase_bin_cells(coarse, self.cell_days)).astype(np.int64),
                          2 * max(BOX_WIDTHS_BINS))
        offsets = np.concatenate([[0], np.cumsum(bins)[:-1]])
        trials = (fine, fine_coarse, coarse_cells, bins, offsets)
        for array in trials:
            array.setflags(write=False)
        # One tuple, replaced whole: a model shared by threads never reads a mixed pair.
        self._last_trials = (n_cells, trials)
        return trials

    def __call__(self, flux: np.ndarray, mask: np.ndarray) -> FoldResult:
        """Best box per fine trial period of one series.

        Parameters
        ----------
        flux : ndarray
            Uniform series in units of the per-cadence noise (dips negative).
        mask : ndarray of bool
            Cells holding data; others are ignored.
        """
        return self.result(self.fold(flux, mask))

    @staticmethod
    def _cells(flux: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Summed flux and valid-cadence count per two-cadence cell."""
        flux = np.asarray(flux, dtype=np.float64)
        mask = np.asarray(mask, dtype=bool)
        n = len(flux) - len(flux) % DOWNSAMPLE
        f = np.where(mask[:n], flux[:n], 0.0).reshape(-1, DOWNSAMPLE).sum(1)
        return f, mask[:n].reshape(-1, DOWNSAMPLE).sum(1).astype(np.float64)

    def fold(self, flux: np.ndarray, mask: np.ndarray) -> FoldState:
        """Fold every segment of a series at the coarse trials (step 1 of the module docstring)."""
        f, c = self._cells(flux, mask)
        _, _, coarse_cells, bins, offsets = self.trials(len(f))
        seg = min(SEGMENT_CELLS, len(f))
        hist_f, hist_n = _fold_segments(f, c, seg, coarse_cells, bins, offsets, int(bins.sum()))
        return FoldState(f, c, hist_f, hist_n, seg)

    def without(self, state: FoldState, flux: np.ndarray, mask: np.ndarray, remove: np.ndarray,
                in_place: bool = False) -> FoldState:
        """``state`` with the cells ``mask & remove`` of the series it was folded from
        taken out: only those cells are folded again (with a minus sign), so a planet
        pass costs the stacking, not a new fold.

        ``in_place`` takes them out of ``state``'s own histograms (then ``state`` must not
        be used again) instead of copies: the copy of a 4-year light curve's 90 MB costs
        half as much as the stacking.
        """
        gone_f, gone_c = self._cells(flux, np.asarray(mask, bool) & np.asarray(remove, bool))
        cells = np.flatnonzero(gone_c > 0)
        _, _, coarse_cells, bins, offsets = self.trials(len(state.flux))
        hist_f, hist_n = (state.hist_flux, state.hist_count) if in_place else (state.hist_flux.copy(),
                                                                              state.hist_count.copy())
        _fold_cells(hist_f, hist_n, cells, -gone_f, -gone_c, state.segment_cells, coarse_cells, bins, offsets)
        return FoldState(state.flux - gone_f, state.count - gone_c, hist_f, hist_n, state.segment_cells)

    def result(self, state: FoldState) -> FoldResult:
        """Stack the segments at every fine trial and score the boxes (steps 2 and 3)."""
        fine, fine_coarse, _, bins, offsets = self.trials(len(state.flux))
        snr, start, width = _stack_slide(state.hist_flux, state.hist_count, state.segment_cells,
                                         fine / self.cell_days, fine_coarse, bins, offsets,
                                         np.asarray(BOX_WIDTHS_BINS, dtype=np.int64), MIN_BOX_CADENCES)
        bin_days = fine / bins[fine_coarse]
        # Phase bin b covers [b, b+1) bins from the first cell's *centre*; cells are
        # DOWNSAMPLE cadences wide, whose centre is half a cadence later.
        epoch = ((start + width / 2.0) * bin_days + 0.5 * (DOWNSAMPLE - 1) * self.cell_days / DOWNSAMPLE) % fine
        return FoldResult(periods_days=fine, snr=snr, epoch_days=epoch, duration_days=width * bin_days)


def fold_snr_slow(flux: np.ndarray, mask: np.ndarray, cadence_days: float, periods_days: np.ndarray,
                  bins: np.ndarray) -> np.ndarray:
    """The obvious reference: fold every cadence at each period, best box of 1..4 bins.

    Same statistic and phase convention as :class:`CoherentFold` (two-cadence cells,
    phase counted from the first cell), no segments, no rounding.
    """
    n = len(flux) - len(flux) % DOWNSAMPLE
    f = np.where(mask[:n], flux[:n], 0.0).reshape(-1, DOWNSAMPLE).sum(1)
    c = mask[:n].reshape(-1, DOWNSAMPLE).sum(1).astype(float)
    x = np.arange(len(f)) * cadence_days * DOWNSAMPLE
    out = np.zeros(len(periods_days))
    for i, (p, nb) in enumerate(zip(periods_days, bins)):
        b = np.floor((x % p) / p * nb).astype(int) % nb
        sf = np.bincount(b, weights=f, minlength=nb)
        sn = np.bincount(b, weights=c, minlength=nb)
        best = -np.inf
        for w in BOX_WIDTHS_BINS:
            if w > nb:
                continue
            box_f = sum(np.roll(sf, -k) for k in range(w))
            box_n = sum(np.roll(sn, -k) for k in range(w))
            snr = -box_f[box_n > 0] / np.sqrt(np.maximum(box_n[box_n > 0], MIN_BOX_CADENCES))
            best = max(best, snr.max(initial=-np.inf))
        out[i] = best
    return out
