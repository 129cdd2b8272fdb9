"""One PNG per prediction: the light curve, the period probabilities and each candidate.

Place in the flow (search side): readers -> inputs -> preprocess -> fold -> model -> refine
(ephemeris, offgrid) -> vetting -> predict -> views, **plots**, results -> outputs, batch.

Rows, top to bottom: the flux as read with the detrending trend; the detrended flux
with each candidate's transits coloured; the model's probability per period bin (log
period axis) with the candidates numbered; one phase-folded panel per candidate at its
refined period, binned points over the cadences, with the fitted box; under each, the
candidate's vetting views (:mod:`exoperiod.search.views`: local, odd, even and secondary), the
same arrays a vetting model would be given.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..constants import HOURS_PER_DAY
from ..plotting import pyplot, save_figure
from .refine import Candidate
from .views import candidate_views, earlier_planets_kept, local_bin_centres_durations

if TYPE_CHECKING:
    from .predict import Prediction

COLOURS = ("tab:red", "tab:blue", "tab:green", "tab:purple", "tab:orange", "tab:brown")
#: Odd and even transit views: apart from each other and from the candidates' colours.
ODD_COLOUR, EVEN_COLOUR = "darkorange", "deepskyblue"
PANELS_PER_ROW = 3
#: Gaps longer than this break the trend line instead of bridging them, days.
LINE_GAP_DAYS = 0.5
#: Points in the folded panels per transit duration after binning.
BINS_PER_DURATION = 6


def plot_prediction(
    prediction: Prediction, path: str | os.PathLike, known_periods_days: Sequence[float] = ()
) -> Path:
    """Write the report PNG of a prediction made by :func:`exoperiod.search.predict.predict`.

    Parameters
    ----------
    prediction : Prediction
        Must still carry ``lightcurve`` and ``series``.
    path : path
        The PNG to write (atomically: a temporary file, then a rename).
    known_periods_days : sequence of float
        Periods to mark on the probability panel (e.g. catalogue planets), days.

    Returns
    -------
    Path
        ``path``.
    """
    fig = report_figure(prediction, known_periods_days)
    path = Path(path)
    save_figure(fig, path, dpi=100)
    return path


def report_figure(prediction: Prediction, known_periods_days: Sequence[float] = ()) -> Figure:
    """The report as a matplotlib Figure (see :func:`plot_prediction`); close it when done."""
    if prediction.lightcurve is None or prediction.series is None:
        raise ValueError("the prediction carries no light curve (made by predict_paths?); "
                         "use predict() or predict_paths(plots_dir=...)")
    candidates = prediction.candidates
    candidate_rows = -(-len(candidates) // PANELS_PER_ROW)
    # Each row of folded candidates has a row of their vetting views below it.
    fig = pyplot().figure(figsize=(15, 2.6 * 3 + 5.8 * candidate_rows), layout="constrained")
    grid = fig.add_gridspec(3 + 2 * candidate_rows, PANELS_PER_ROW,
                            height_ratios=[1, 1, 1] + [1.25, 1.0] * candidate_rows)
    raw_ax = fig.add_subplot(grid[0, :])
    flat_ax = fig.add_subplot(grid[1, :], sharex=raw_ax)
    _plot_raw(raw_ax, prediction)
    _plot_detrended(flat_ax, prediction)
    _plot_probabilities(fig.add_subplot(grid[2, :]), prediction, known_periods_days)
    for i in range(len(candidates)):
        row, column = 3 + 2 * (i // PANELS_PER_ROW), i % PANELS_PER_ROW
        _plot_fold(fig.add_subplot(grid[row, column]), prediction, i)
        _plot_views(fig.add_subplot(grid[row + 1, column]), prediction, i)
    fig.suptitle(_title(prediction), fontsize=13)
    return fig


def _title(prediction: Prediction) -> str:
    lc = prediction.lightcurve
    time = np.asarray(lc.time.value, dtype=float)
    span = float(np.nanmax(time) - np.nanmin(time))
    segment = next((f"{key.title()} {lc.meta[key]}" for key in ("QUARTER", "CAMPAIGN", "SECTOR")
                    if lc.meta.get(key) is not None), None)
    what = ", ".join(str(x) for x in (prediction.mission, segment) if x)
    name = prediction.target or Path(prediction.input).name
    head = (f"{name}  ({what})" if what else name) + (
        f"  -  {span:.0f} d, {len(time):,} cadences, searched as one series")
    source = Path(prediction.input).name
    if lc.meta.get("FLUX_STANDARDIZED"):
        source += "   (standardized flux, in units of its scatter)"
    return f"{head}\n{source}"


def _units(prediction: Prediction) -> tuple[float, str]:
    """Factor from relative flux to the plotted unit, and the unit's name."""
    if prediction.lightcurve.meta.get("FLUX_STANDARDIZED"):
        return 1.0, "sigma"
    return 1e6, "ppm"


def _with_gaps(time_days: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Insert NaN into long gaps so that a line does not bridge them."""
    breaks = np.flatnonzero(np.diff(time_days) > LINE_GAP_DAYS) + 1
    return np.insert(time_days, breaks, np.nan), np.insert(values, breaks, np.nan)


def _points(ax: Axes, x: np.ndarray, y: np.ndarray, **kwargs) -> None:
    # Rasterised dots: a 65k-cadence light curve stays a light PNG and a readable plot.
    size = 1.0 if len(x) > 20_000 else 2.0
    ax.scatter(x, y, s=size, lw=0, rasterized=True, **kwargs)


def _robust_limits(values: np.ndarray, low: float = 0.5, high: float = 99.8) -> tuple[float, float]:
    lo, hi = np.nanpercentile(values, [low, high])
    pad = 0.15 * (hi - lo) or 1.0
    return float(lo - pad), float(hi + pad)


def _plot_raw(ax: Axes, prediction: Prediction) -> None:
    lc, series = prediction.lightcurve, prediction.series
    scale, unit = _units(prediction)
    time = np.asarray(lc.time.value, dtype=float)
    flux = (np.asarray(lc.flux.value, dtype=float) - 1.0) * scale
    _points(ax, time, flux, color="0.35", label="flux as read")
    trend_time = np.asarray(series.detrended.time.value, dtype=float)
    ax.plot(*_with_gaps(trend_time, (series.trend - 1.0) * scale), color="tab:orange", lw=1.2,
            label="trend (wotan biweight)")
    ax.set_ylim(*_robust_limits(flux[np.isfinite(flux)]))
    ax.set_ylabel(f"flux [{unit}]")
    ax.legend(loc="upper right", fontsize=8, markerscale=6)
    ax.tick_params(labelbottom=False)


def _plot_detrended(ax: Axes, prediction: Prediction) -> None:
    detrended = prediction.series.detrended
    scale, unit = _units(prediction)
    time = np.asarray(detrended.time.value, dtype=float)
    flux = (np.asarray(detrended.flux.value, dtype=float) - 1.0) * scale
    _points(ax, time, flux, color="0.35")
    lo, hi = _robust_limits(flux)
    deepest = min([lo] + [-c.box_depth * scale for c in prediction.candidates])
    # Below the data, one row of ticks per candidate at its transit times.
    row = 0.07 * (hi - min(lo, deepest))
    bottom = min(lo, deepest) - row * len(prediction.candidates)
    for i, candidate in enumerate(prediction.candidates):
        times = _transit_times(candidate, time[0], time[-1])
        y = bottom + row * (i + 0.5)
        ax.vlines(times, y - 0.35 * row, y + 0.35 * row, color=_colour(i), lw=1)
        ax.text(time[0], y, f"#{i + 1} ", color=_colour(i), ha="right", va="center", fontsize=8, weight="bold")
    ax.set_ylim(bottom, hi)
    ax.set_ylabel(f"detrended [{unit}]")
    time_system = {"TESS": "BTJD"}.get(prediction.mission, "BKJD" if prediction.mission else "days")
    ax.set_xlabel(f"time [{time_system}]   (ticks below: transit times of the candidates)")


def _transit_times(candidate: Candidate, start_days: float, end_days: float) -> np.ndarray:
    n = np.arange(np.ceil((start_days - candidate.t0_btjd_or_bkjd) / candidate.period_days),
                  np.floor((end_days - candidate.t0_btjd_or_bkjd) / candidate.period_days) + 1)
    return candidate.t0_btjd_or_bkjd + n * candidate.period_days


def _plot_probabilities(ax: Axes, prediction: Prediction, known_periods_days: Sequence[float]) -> None:
    centres, proba = prediction.bin_centers_days, prediction.bin_probabilities
    ax.semilogx(centres, proba, "-", color="0.25", lw=1.2, drawstyle="steps-mid")
    ax.fill_between(centres, proba, step="mid", color="0.8")
    ax.axhline(0.5, color="0.5", lw=0.8, ls=":")
    lo, hi = centres[0] * 0.95, centres[-1] * 1.05
    outside = [p for p in known_periods_days if not lo <= p <= hi]
    for period in known_periods_days:
        if lo <= period <= hi:
            ax.axvline(period, color="tab:cyan", lw=1.5, ls="--", alpha=0.8)
    if len(known_periods_days):
        off_axis = f" (off the axis: {', '.join(f'{p:g}' for p in outside)} d)" if outside else ""
        ax.plot([], [], color="tab:cyan", ls="--", label="known periods" + off_axis)
    for i, candidate in enumerate(prediction.candidates):
        if candidate.outside_grid:  # no bin, no probability: only its fold is drawn
            continue
        # A planet found after masking others has the probability of its own search pass.
        x, y = centres[candidate.bin_index], candidate.probability
        ax.plot(x, y, "o", color=_colour(i), ms=8, mfc="white" if candidate.search_pass else _colour(i), mew=2)
        ax.annotate(f"#{i + 1}", (x, y), xytext=(0, 7), textcoords="offset points", ha="center",
                    fontsize=9, color=_colour(i), weight="bold")
    ax.set_xlim(lo, hi)
    # Head-room above 1 for the candidate labels and the legend.
    ax.set_ylim(0, 1.3)
    ax.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
    ax.set_xlabel("period [days]   (grey: model bins, whole light curve;  filled dots: candidates;  "
                  "open dots: found after masking the planets before them)")
    ax.set_ylabel("P(planet in bin)")
    ticks = [t for t in (0.5, 1, 2, 3, 5, 7, 10, 15, 20, 30, 40, 60, 100) if lo <= t <= hi]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    if len(known_periods_days):
        ax.legend(loc="upper left", fontsize=8)
    if prediction.notes:
        ax.set_title("\n".join(f"note: {note}" for note in prediction.notes), loc="left", fontsize=8.5,
                     color="saddlebrown")


def _plot_fold(ax: Axes, prediction: Prediction, index: int) -> None:
    candidate = prediction.candidates[index]
    detrended = prediction.series.detrended
    scale, unit = _units(prediction)
    time = np.asarray(detrended.time.value, dtype=float)
    flux = (np.asarray(detrended.flux.value, dtype=float) - 1.0) * scale
    # The planets masked before this candidate was searched would only add dips here.
    keep = earlier_planets_kept(prediction, candidate, time)
    period, duration_hours = candidate.period_days, candidate.duration_hours
    phase_hours = ((time - candidate.t0_btjd_or_bkjd + 0.5 * period) % period - 0.5 * period) * HOURS_PER_DAY
    half_width_hours = min(max(3.0 * duration_hours, 6.0), 0.5 * period * HOURS_PER_DAY)
    near = keep & (np.abs(phase_hours) < half_width_hours)
    x, y = phase_hours[near], flux[near]
    _points(ax, x, y, color="0.65")
    bin_hours = max(duration_hours / BINS_PER_DURATION, 0.25)
    centres, means = _bin(x, y, -half_width_hours, half_width_hours, bin_hours)
    ax.plot(centres, means, "o", color="k", ms=3.5)
    depth = candidate.box_depth * scale
    half = duration_hours / 2
    ax.plot([-half_width_hours, -half, -half, half, half, half_width_hours], [0, 0, -depth, -depth, 0, 0],
            color=_colour(index), lw=2)
    # Zoom on the binned points and the box: the cadences' scatter would hide a shallow transit.
    finite = means[np.isfinite(means)]
    spread = float(np.std(finite)) if len(finite) > 2 else abs(depth)
    lo = min(-1.5 * depth, float(finite.min(initial=0.0))) - 2 * spread
    hi = max(0.6 * depth, float(finite.max(initial=0.0))) + 2 * spread
    if np.isfinite(lo) and np.isfinite(hi) and hi > lo:
        ax.set_ylim(lo, hi)
    ax.set_xlim(-half_width_hours, half_width_hours)
    ax.set_xlabel("hours from mid-transit")
    ax.set_ylabel(unit)
    ax.set_title(_fold_title(index, candidate), fontsize=9.5, color=_colour(index), loc="left")
    if candidate.note:
        ax.text(0.02, 0.03, textwrap.fill(candidate.note, 55), transform=ax.transAxes, fontsize=7.5,
                va="bottom", bbox={"facecolor": "lightyellow", "alpha": 0.85, "edgecolor": "0.7"})


def _plot_views(ax: Axes, prediction: Prediction, index: int) -> None:
    """The local view with the odd, even and secondary views over it (normalised units)."""
    views = candidate_views(prediction, index)
    x = local_bin_centres_durations(views)
    ax.axhline(0, color="0.8", lw=0.8)
    ax.axhline(-1, color="0.8", lw=0.8, ls=":")
    ax.plot(x, views["odd_local_view"], color=ODD_COLOUR, lw=1, label="odd transits")
    ax.plot(x, views["even_local_view"], color=EVEN_COLOUR, lw=1, label="even transits")
    ax.plot(x, views["secondary_view"], color="0.45", lw=1, ls="--",
            label=f"secondary (phase {float(views['secondary_phase']):.2f})")
    ax.plot(x, views["local_view"], color="k", lw=1.8, label="local view")
    shown = np.concatenate([views[name] for name in ("local_view", "odd_local_view", "even_local_view",
                                                     "secondary_view")])
    ax.set_ylim(min(-1.3, float(np.percentile(shown, 0.5)) - 0.1), max(0.6, float(np.percentile(shown, 99.5)) + 0.1))
    half = float(views["local_half_width_durations"])
    ax.set_xlim(-half, half)
    ax.set_xlabel(f"transit durations from mid-transit (1 = {prediction.candidates[index].duration_hours:.1f} h)")
    ax.set_ylabel("normalised flux")
    ax.set_title(f"#{index + 1}  vetting views: local depth -1 = "
                 f"{_depth_text(prediction, float(views['local_view_scale']))}", fontsize=9, loc="left",
                 color=_colour(index))
    ax.legend(loc="lower right", fontsize=7, ncol=2)


def _depth_text(prediction: Prediction, relative_depth: float) -> str:
    scale, unit = _units(prediction)
    return f"{relative_depth * scale:.0f} {unit}" if unit == "ppm" else f"{relative_depth:.2f} {unit}"


def _fold_title(index: int, candidate: Candidate) -> str:
    depth = f"{candidate.depth_ppm:.0f} ppm" if candidate.depth_ppm is not None else f"{candidate.box_depth:.2f} sigma"
    found = "" if candidate.search_pass == 0 else f", pass {candidate.search_pass + 1}"
    origin = "outside the grid (BLS)" if candidate.outside_grid else f"prob {candidate.probability:.2f}"
    return (f"#{index + 1}  P = {candidate.period_days:.4f} d   {origin}{found}\n"
            f"SNR {candidate.snr:.1f}   depth {depth}   dur {candidate.duration_hours:.1f} h")


def _bin(x: np.ndarray, y: np.ndarray, lo: float, hi: float, width: float) -> tuple[np.ndarray, np.ndarray]:
    edges = np.arange(lo, hi + width, width)
    index = np.digitize(x, edges) - 1
    counts = np.bincount(index, minlength=len(edges))[: len(edges) - 1]
    sums = np.bincount(index, weights=y, minlength=len(edges))[: len(edges) - 1]
    means = np.divide(sums, counts, out=np.full(len(counts), np.nan), where=counts > 0)
    return 0.5 * (edges[:-1] + edges[1:]), means


def _colour(index: int) -> str:
    return COLOURS[index % len(COLOURS)]
