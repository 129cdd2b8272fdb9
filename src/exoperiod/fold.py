"""A batched box-fold periodogram: the physics the period model is built on.

Every trial period folds the window into phase bins of about 40 % of a typical transit
duration, and boxes of 1..4 bins slide over the phase. The statistic is the box's summed
flux in units of its own noise, ``-sum(flux) / sqrt(n)``: for unit-noise input that is
the transit SNR, the quantity BLS maximises. Here it is one sparse matrix product and a
few dense reductions for a whole batch, which is why the model is fast (astropy BLS
refolds and rescans the data for each period separately).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn

from .grid import PeriodGrid

# Central-transit duration of a Sun-like star scales as P^(1/3): 13 h at one year.
_SUN_T14_HOURS_AT_1YR = 13.0
_BIN_FRACTION_OF_DURATION = 0.4
BOX_WIDTHS_BINS = (1, 2, 3, 4)
# Downsampling before the fold: two Kepler long cadences (59 min) still resolve the
# shortest transits the grid cares about (~1.5 h at 1 d) and quarter the fold's cost.
DOWNSAMPLE = 2


def typical_duration_days(period_days: np.ndarray | float) -> np.ndarray:
    """Central-transit duration of a Sun-like star at ``period_days``, days."""
    return _SUN_T14_HOURS_AT_1YR / 24.0 * (np.asarray(period_days) / 365.25) ** (1 / 3)


def trial_periods(grid: PeriodGrid, span_days: float, cell_days: float) -> tuple[np.ndarray, np.ndarray]:
    """Trial periods and the phase-bin width, in cells, used at each.

    Neighbouring trials differ so that over the window a transit drifts by at most two
    phase bins; the trial nearer the true period then leaves at most half a bin of
    smearing at either end, which costs little SNR.
    """
    periods, widths = [], []
    p = grid.min_days
    while p <= grid.max_days:
        w = max(1, int(round(_BIN_FRACTION_OF_DURATION * typical_duration_days(p) / cell_days)))
        periods.append(p)
        widths.append(w)
        p *= 1.0 + 2.0 * w * cell_days / span_days
    return np.asarray(periods), np.asarray(widths, dtype=np.int64)


class FoldPeriodogram(nn.Module):
    """Best box SNR at each trial period for a batch of uniform-cadence windows.

    Parameters
    ----------
    grid : PeriodGrid
    length : int
        Cells per window (a multiple of 2).
    cadence_days : float
        Cell width, days.

    It has no parameters: it is rebuilt from (grid, length, cadence) and is not saved.
    Trials are grouped by their number of phase bins so that each group folds into one
    dense (batch, trials, bins) block.
    """

    def __init__(self, grid: PeriodGrid, length: int, cadence_days: float) -> None:
        super().__init__()
        if length % DOWNSAMPLE:
            raise ValueError(f"window length {length} is not a multiple of {DOWNSAMPLE}")
        cells = length // DOWNSAMPLE
        cell_days = cadence_days * DOWNSAMPLE
        periods, widths = trial_periods(grid, length * cadence_days, cell_days)
        n_bins = np.maximum(np.round(periods / cell_days / widths).astype(np.int64), 2 * max(BOX_WIDTHS_BINS))
        pad = max(BOX_WIDTHS_BINS) - 1
        # Groups of trials whose bin counts differ by < 15 %, padded to the largest.
        groups, first = [], 0
        for j in range(1, len(periods) + 1):
            if j == len(periods) or n_bins[j] > 1.15 * n_bins[first]:
                groups.append((first, j, int(n_bins[first:j].max()) + pad))
                first = j
        rows, cols = [], []
        offset = 0
        x = np.arange(cells)
        for g0, g1, stride in groups:
            for j in range(g0, g1):
                p_cells = periods[j] / cell_days
                phase_bin = np.floor((x % p_cells) / p_cells * n_bins[j]).astype(np.int64)
                base = offset + (j - g0) * stride
                # The first bins again after the last, so that boxes wrap around phase 1.
                wrap = phase_bin < pad
                rows += [base + phase_bin, base + n_bins[j] + phase_bin[wrap]]
                cols += [x, x[wrap]]
            offset += (g1 - g0) * stride
        rows, cols = np.concatenate(rows), np.concatenate(cols)
        order = np.lexsort((cols, rows))
        crow = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=offset))])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "sparse CSR support is in beta": it works here
            self.fold = torch.sparse_csr_tensor(
                torch.as_tensor(crow), torch.as_tensor(cols[order]),
                torch.ones(len(cols), dtype=torch.float32), size=(offset, cells),
            )
        # A trial's rows past its own bins and their wrapped copies stay empty, so boxes
        # starting there have no flux and score 0: no mask needed.
        self.groups = groups
        self.periods_days = periods
        self.trial_bin = grid.index(periods)

    @property
    def n_trials(self) -> int:
        return len(self.periods_days)

    def forward(self, flux: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """SNR of the best box at each trial period, shape (batch, n_trials)."""
        batch = flux.shape[0]
        m = mask.to(torch.float32)
        f = (flux.to(torch.float32) * m).reshape(batch, -1, DOWNSAMPLE).sum(-1)
        n = m.reshape(batch, -1, DOWNSAMPLE).sum(-1)
        folded = (self.fold @ torch.cat([f, n]).T).T  # (2 * batch, rows)
        out, offset = [], 0
        starts_pad = max(BOX_WIDTHS_BINS) - 1
        for g0, g1, stride in self.groups:
            block = folded[:, offset:offset + (g1 - g0) * stride].reshape(2 * batch, g1 - g0, stride)
            offset += (g1 - g0) * stride
            csum = torch.nn.functional.pad(block.cumsum(-1), (1, 0))
            starts = stride - starts_pad
            best = None
            for w in BOX_WIDTHS_BINS:
                # In place, as this loop is most of the model's time: -sum / sqrt(n).
                # Boxes of fewer than 3 cadences are scaled as if they had 3, so that a
                # single outlier cannot pass for a transit.
                inv_sqrt_n = (csum[batch:, :, w:w + starts] - csum[batch:, :, :starts]).clamp_(min=3.0).rsqrt_()
                neg_snr = (csum[:batch, :, w:w + starts] - csum[:batch, :, :starts]).mul_(inv_sqrt_n)
                best = neg_snr if best is None else torch.minimum(best, neg_snr, out=best)
            out.append(best.amin(-1).neg_())
        return torch.cat(out, dim=1)
