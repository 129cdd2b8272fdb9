"""The period grid the model speaks in, and the label vector of a star's planets.

Place in the flow: base module: used by the search side and the learning side, imports
neither.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal, Sequence

import numpy as np
from scipy.special import ndtr

#: The harmonics of a period P that a transit search confuses with P, as factors of P:
#: a box at P/2 or P/3 catches every second or third box (and noise), one at 2P or 3P
#: half or a third of the transits. The scorer reads the periodogram there, refinement
#: tests them, evaluation counts them as aliases.
HARMONICS = {"P/3": 1 / 3, "P/2": 1 / 2, "2P": 2.0, "3P": 3.0}


@dataclass(frozen=True)
class PeriodGrid:
    """``bins`` period bins between ``min_days`` and ``max_days``.

    Parameters
    ----------
    min_days, max_days : float
        Edges of the first and last bin, days.
    bins : int
        Number of bins (at least 2).
    spacing : {"log", "linear"}
        Log spacing gives every bin the same relative width, which matches how period
        uncertainty scales (the period grid's default); linear gives bins of equal width,
        as the seed repository's transit-duration grid (hours) has them.
    """

    min_days: float = 1.0
    max_days: float = 40.0
    bins: int = 100
    spacing: Literal["log", "linear"] = "log"

    def __post_init__(self) -> None:
        if not 0 < self.min_days < self.max_days:
            raise ValueError(f"need 0 < min_days < max_days, got {self.min_days}, {self.max_days}")
        if self.bins < 2:
            raise ValueError(f"bins must be at least 2, got {self.bins}")
        if self.spacing not in ("log", "linear"):
            raise ValueError(f"spacing must be 'log' or 'linear', got {self.spacing!r}")

    def _to_axis(self, period_days):
        p = np.asarray(period_days, dtype=float)
        return np.log(p) if self.spacing == "log" else p

    def _from_axis(self, x):
        return np.exp(x) if self.spacing == "log" else np.asarray(x, dtype=float)

    @property
    def edges_days(self) -> np.ndarray:
        """The ``bins + 1`` bin edges, days."""
        lo, hi = self._to_axis([self.min_days, self.max_days])
        return self._from_axis(np.linspace(lo, hi, self.bins + 1))

    @property
    def centers_days(self) -> np.ndarray:
        """Bin centres (geometric for log spacing), days."""
        e = self._to_axis(self.edges_days)
        return self._from_axis(0.5 * (e[:-1] + e[1:]))

    def index(self, period_days: float | np.ndarray) -> np.ndarray | int:
        """Index of the bin holding each period, -1 outside the grid."""
        p = np.asarray(period_days, dtype=float)
        idx = np.searchsorted(self.edges_days, p, side="right") - 1
        idx = np.where((p >= self.min_days) & (p <= self.max_days), np.minimum(idx, self.bins - 1), -1)
        return int(idx) if idx.ndim == 0 else idx

    def contains(self, period_days: float) -> bool:
        return self.min_days <= period_days <= self.max_days

    def to_dict(self) -> dict:
        return {"min_days": self.min_days, "max_days": self.max_days, "bins": self.bins,
                "spacing": self.spacing}


@dataclass(frozen=True)
class Labels:
    """A label vector and how many of the star's planets fell outside the grid."""

    weights: np.ndarray
    n_outside: int


def period_weights(
    grid: PeriodGrid,
    periods_days: Sequence[float] | Iterable[float],
    period_errors_days: Sequence[float | None] | None = None,
) -> Labels:
    """The per-bin label vector of a star's planets.

    Each planet's period is a Gaussian with its catalogue error, widened to at least half
    a bin on each side so that it always covers a bin; its mass in a bin is the Gaussian's
    probability of that bin. Planets combine as "at least one planet in this bin",
    ``1 - prod(1 - w_i)``, a multi-label target in [0, 1]. A star with no planet in range
    gets all zeros.

    Parameters
    ----------
    grid : PeriodGrid
    periods_days : sequence of float
        Orbital periods, days.
    period_errors_days : sequence of float or None, optional
        1-sigma period errors, days (None or NaN: unknown, the half-bin floor is used).

    Returns
    -------
    Labels
        ``weights`` (float32, shape ``(grid.bins,)``) and ``n_outside``, the number of
        planets ignored because their period lies outside the grid.
    """
    periods = np.asarray(list(periods_days), dtype=float)
    errors = np.full(periods.shape, np.nan)
    if period_errors_days is not None:
        errors = np.array([np.nan if e is None else e for e in period_errors_days], dtype=float)
        if errors.shape != periods.shape:
            raise ValueError("periods_days and period_errors_days differ in length")
    weights = np.zeros(grid.bins)
    inside = np.isfinite(periods) & (periods >= grid.min_days) & (periods <= grid.max_days)
    edges = grid._to_axis(grid.edges_days)
    for period, err in zip(periods[inside], errors[inside]):
        centre = float(grid._to_axis(period))
        # The error propagates to the grid's axis: d(ln P) = dP / P on a log grid.
        sigma = 0.0 if not np.isfinite(err) else (err / period if grid.spacing == "log" else err)
        half_bin = 0.5 * (edges[grid.index(period) + 1] - edges[grid.index(period)])
        sigma = max(abs(sigma), half_bin)
        mass = np.diff(ndtr((edges - centre) / sigma))
        weights = 1.0 - (1.0 - weights) * (1.0 - mass)
    return Labels(weights.astype(np.float32), int((~inside).sum()))
