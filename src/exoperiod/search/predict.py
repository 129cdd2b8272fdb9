"""Predict planet periods for light-curve files: the model, refined by BLS, as JSON.

Place in the flow (search side): readers -> inputs -> preprocess -> fold -> model -> refine
(ephemeris, offgrid) -> vetting -> **predict** -> views, plots, results -> outputs, batch.

How a light curve is searched
-----------------------------
The whole light curve, whatever its length (a 10-day fragment, a TESS sector, 17 Kepler
quarters), is put on one uniform grid (:func:`exoperiod.search.preprocess.to_series`) and
searched coherently at every trial period its baseline needs
(:mod:`exoperiod.search.fold`); the scorer turns the best box of each period bin into a
probability (:class:`exoperiod.search.model.PeriodModel`).

How planets are searched
------------------------
1. The ``top_k`` most probable bins (ranked by log-odds) are refined one by one: a BLS
   around the bin's best fold trial (:func:`exoperiod.search.refine.refine_bin`) gives the
   period, t0, duration, depth and SNR. They are distinct signals: a bin next to a
   chosen one is skipped (the same peak), and so are the bins at P/3, P/2, 2P and 3P of
   a refined period P that explains the data better than those harmonics (aliases of
   it); a refined period that turns out to repeat an earlier one (a ratio of 1/5 .. 5
   with coinciding transits) is dropped and the next bin tried. Each candidate's
   probability is then the vetter's (:mod:`exoperiod.search.vetting`: the scorer's
   probability read beside the candidate's own transits); the order stays the scorer's.
2. A candidate whose fitted transit lasts longer than any planet's can at its period
   (:func:`exoperiod.orbits.longest_transit_hours`: the broad dips of spotted stars)
   gets probability 0 and goes after the others. The first of them is planet 1 (a
   further planet is never such a candidate). If its probability is at least
   ``min_probability``, its transits (1.5 x the box duration) are masked in the series,
   which is searched and scored again; the best bin not next to a planet's bin becomes
   the next planet if it reaches ``min_probability``. This repeats until
   ``max_planets`` are found or nothing reaches the threshold.
3. ``candidates`` lists the planets in the order found, then the remaining top-k bins of
   step 1 that do not repeat a planet; ``periods`` are their refined periods in that order.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import ClassVar, Literal

import lightkurve as lk
import numpy as np
from scipy.special import expit

from ..constants import HOURS_PER_DAY
from ..files import atomic_write_text
from ..grid import HARMONICS, PeriodGrid, period_weights
from .inputs import TableColumns, as_lightcurve, iter_inputs
from .model import PeriodModel, Scored
from .offgrid import explained_by, search_outside_grid
from .preprocess import WINDOW_PER_TRANSIT, Series, redetrended, to_series
from .refine import Candidate, TransitSearch, refine_bin
from .vetting import vet

#: A bin needs this probability to count as a planet in the multi-planet search.
MIN_PROBABILITY = 0.5
#: Bins this close (in bins) to a chosen one hold the same signal, not another planet.
NEIGHBOUR_BINS = 1
#: A refined period within this (relative) of n or 1/n times another candidate's, with
#: transits at the same times, repeats it (n up to MAX_ALIAS_ORDER).
ALIAS_TOLERANCE = 0.005
MAX_ALIAS_ORDER = 5
#: Bins tried per wanted candidate before the first pass gives up (aliases are dropped).
MAX_TRIES_PER_CANDIDATE = 3
#: In-transit cadences masked before the search for the next planet, in box durations.
MASK_WIDEN = 1.5
#: Cadences masked from the trend when a star is detrended again, in fitted durations:
#: an eaten transit looks short (13 % at the median, up to 40 %), and twice its fitted
#: duration still covers one measured at half its length (with no room left for timing
#: errors then; at the median it leaves 0.37 of a duration on either side).
REDETREND_MASK_WIDEN = 2.0
#: Beyond this share of the light curve masked, a trend would be mostly interpolation:
#: the star is not detrended again.
MAX_MASKED_SHARE = 0.5
#: What a candidate keeps from the first detrending when the star is detrended again.
EPHEMERIS_KEYS = ("period_days", "t0_btjd_or_bkjd", "period_err_days", "t0_err_days", "transit_times_btjd_or_bkjd")

ProgressCallback = Callable[[int, int, "Prediction"], None]


@dataclass
class Prediction:
    """The answer for one input: the JSON object of the contract, plus conveniences.

    Attributes
    ----------
    input : str
        The path as given (or the light curve's file name / label for a LightCurve).
    target : str or None
        "KIC 9002278", "TIC 100100827", ... when the file says.
    periods : list of float
        Refined periods of ``candidates``, days, best first.
    candidates : list of Candidate
    bin_probabilities : ndarray
        Per-bin planet probabilities of the whole light curve (before any masking).
    bin_centers_days : ndarray
        Centres of the model's period bins, days.
    error : str or None
        One line when the input could not be processed (then every list is empty).
    duration_bin_probabilities : ndarray
        The distribution of the first candidate's transit duration over
        ``duration_bin_centers_hours`` (summing to 1): a Gaussian at its refined
        (limb-darkened fit) duration with its 1-sigma error; empty without a candidate.
    duration_bin_centers_hours : ndarray
        Centres of the duration bins (``distribution_params.duration``), hours.
    mission : str or None
        "Kepler", "K2" or "TESS".
    notes : list of str
        Caveats in words: grid edge, standardized flux, why the planet search stopped.
    timing_seconds : dict
        CPU seconds (all threads) spent in ``read_preprocess`` (reading, cleaning,
        detrending, binning), ``model`` (the coherent search and the scorer, of every
        planet pass), ``refine``
        (BLS/TLS, harmonics, masking) and ``report`` (the PNG); ``wall`` is the elapsed
        time of the whole prediction.
    lightcurve, series
        The light curve as read and its preprocessed uniform series, kept for plots by
        :func:`predict` (not by :func:`predict_paths`, which plots as it goes); not JSON.
        When the star was detrended again with its planets' transits masked (see
        ``notes``), ``series.detrended`` and ``series.trend`` are the second detrending's,
        the one refinement, plots and views measure on; ``series.flux`` stays what the model scored.
    """

    input: str
    target: str | None
    periods: list[float]
    candidates: list[Candidate]
    bin_probabilities: np.ndarray
    bin_centers_days: np.ndarray
    error: str | None = None
    duration_bin_probabilities: np.ndarray = field(default_factory=lambda: np.zeros(0))
    duration_bin_centers_hours: np.ndarray = field(default_factory=lambda: np.zeros(0))
    mission: str | None = None
    notes: list[str] = field(default_factory=list)
    timing_seconds: dict[str, float] = field(default_factory=dict)
    lightcurve: lk.LightCurve | None = field(default=None, repr=False, compare=False)
    series: Series | None = field(default=None, repr=False, compare=False)

    JSON_KEYS: ClassVar[tuple[str, ...]] = (
        "input", "target", "periods", "candidates", "bin_probabilities", "bin_centers_days", "error",
        "duration_bin_probabilities", "duration_bin_centers_hours", "mission", "notes", "timing_seconds",
    )

    @classmethod
    def failed(cls, input_path: str, error: str) -> "Prediction":
        """The JSON error object of an input that could not be processed."""
        return cls(input=input_path, target=None, periods=[], candidates=[],
                   bin_probabilities=np.zeros(0), bin_centers_days=np.zeros(0), error=error)

    def to_dict(self) -> dict:
        """The JSON object (contract keys first, then ``mission``, ``notes``, ``timing_seconds``)."""
        out = {key: getattr(self, key) for key in self.JSON_KEYS}
        out["periods"] = [float(p) for p in self.periods]
        out["candidates"] = [c.to_dict() for c in self.candidates]
        out["bin_probabilities"] = [float(p) for p in self.bin_probabilities]
        out["bin_centers_days"] = [float(p) for p in self.bin_centers_days]
        out["duration_bin_probabilities"] = [float(p) for p in self.duration_bin_probabilities]
        out["duration_bin_centers_hours"] = [float(p) for p in self.duration_bin_centers_hours]
        out["notes"] = list(self.notes)
        out["timing_seconds"] = {key: round(float(v), 4) for key, v in self.timing_seconds.items()}
        return out

    def views(self, candidate: Candidate | int) -> dict[str, np.ndarray]:
        """Vetting views (global, local, odd, even, secondary) of a candidate or its index:
        see :func:`exoperiod.search.views.vetting_views`. Needs ``lightcurve`` and ``series``."""
        from .views import candidate_views

        return candidate_views(self, candidate)

    def to_pandas(self):
        """The candidates as a pandas DataFrame (see :mod:`exoperiod.search.results`)."""
        from .results import candidates_frame

        return candidates_frame(self)

    def to_table(self):
        """The candidates as an astropy Table with units."""
        from .results import candidates_table

        return candidates_table(self)

    def plot(self, known_periods_days: Sequence[float] = ()):
        """The report figure (matplotlib Figure) that ``--plots`` saves as PNG."""
        from .plots import report_figure

        return report_figure(self, known_periods_days)

    def fold(self, candidate: Candidate | int = 0) -> lk.FoldedLightCurve:
        """The detrended light curve folded at a candidate (or its index) as lightkurve's FoldedLightCurve."""
        from .results import fold_candidate

        return fold_candidate(self, candidate)


class CpuClock:
    """CPU seconds per stage, summed over every time a stage is entered."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {"read_preprocess": 0.0, "model": 0.0, "refine": 0.0}

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.process_time()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.process_time() - start


def resolve_model(model: PeriodModel | str | os.PathLike | None) -> PeriodModel:
    """A model instance from an instance, a model file, or None (the packaged model)."""
    return model if isinstance(model, PeriodModel) else PeriodModel.load(model)


def peak_probability(probabilities: np.ndarray, b: int) -> float:
    """Probability of a planet in bin ``b`` or a neighbour: the sum of their per-bin
    probabilities, capped at 1.

    A planet's label is spread over its bin and the neighbours (a Gaussian at least half
    a bin wide, :func:`exoperiod.grid.period_weights`), so a calibrated model gives a sure
    planet ~0.7 in its bin and ~0.15 on either side: the sum over the peak is the
    expected number of planets there, the probability of one when there is at most one.
    """
    lo, hi = max(b - NEIGHBOUR_BINS, 0), b + NEIGHBOUR_BINS + 1
    return float(min(1.0, probabilities[lo:hi].sum()))


def top_bins(scores: np.ndarray, k: int, taken: Sequence[int] = (), excluded: Sequence[int] = ()) -> list[int]:
    """The ``k`` highest-scoring bins, skipping chosen and ``taken`` bins and their
    neighbours, and the ``excluded`` bins themselves."""
    chosen: list[int] = []
    for b in np.argsort(-scores, kind="stable"):
        if len(chosen) == k:
            break
        if int(b) not in excluded and all(abs(int(b) - c) > NEIGHBOUR_BINS for c in [*chosen, *taken]):
            chosen.append(int(b))
    return chosen


def predict(
    lc_or_path: lk.LightCurve | str | os.PathLike,
    model: PeriodModel | str | os.PathLike | None = None,
    top_k: int = 3,
    max_planets: int = 3,
    flux_column: Literal["pdcsap", "sap"] = "pdcsap",
    use_tls: bool = False,
    min_probability: float = MIN_PROBABILITY,
    columns: TableColumns | None = None,
    off_grid: bool = True,
    period_range_days: tuple[float, float] | None = None,
) -> Prediction:
    """Periods of transiting planets in one light curve.

    Parameters
    ----------
    lc_or_path : path, LightCurve, LightCurveCollection, TimeSeries, Table, DataFrame or arrays
        A light curve in any form :func:`exoperiod.search.inputs.as_lightcurve` takes.
    model : PeriodModel, path or None
        The model (None: the one shipped with the package).
    top_k : int
        Bins of the whole light curve refined with BLS.
    max_planets : int
        Most planets found by masking and searching again.
    flux_column : {"pdcsap", "sap"}
        Flux to read where a file has both.
    use_tls : bool
        Refine with transit least squares instead of BLS (much slower).
    min_probability : float
        Bin probability a further planet needs.
    columns : TableColumns, optional
        Column names and time system of a table input.
    off_grid : bool
        Also search periods outside the model's grid (the fold, refined by BLS:
        :mod:`exoperiod.search.offgrid`).
    period_range_days : (float, float), optional
        Report only candidates with periods in this range, days.

    Returns
    -------
    Prediction
        With ``lightcurve`` and ``series`` attached for :func:`exoperiod.search.plots.plot_prediction`.

    Raises
    ------
    LightCurveReadError, PreprocessError
        The file cannot be read, or has too little valid data to search.
    ModelLoadError
        The model file cannot be used.
    """
    wall_start = time.perf_counter()
    model = resolve_model(model)
    clock = CpuClock()
    with clock("read_preprocess"):
        lc = as_lightcurve(lc_or_path, flux_column, columns)
        series = to_series(lc, model.config)
    with clock("model"):
        scored = model.score_series(series.flux, series.mask)
    standardized = bool(lc.meta.get("FLUX_STANDARDIZED"))
    with clock("refine"):
        search = TransitSearch(series.detrended)
    search_planets = partial(_search_planets, scored=scored, model=model, clock=clock, top_k=top_k,
                             max_planets=max_planets, min_probability=min_probability,
                             standardized=standardized, use_tls=use_tls)
    candidates, notes = search_planets(series, search)
    series, search, candidates, notes = _measured_again_if_eroded(lc, series, search, candidates, notes,
                                                                  search_planets, clock, min_probability)
    with clock("refine"):
        candidates = _off_grid_and_range(candidates, notes, series, search, model.grid, standardized, off_grid,
                                         period_range_days)
    if standardized:
        notes.append("the flux is standardized (zero median, unit variance): depth_ppm is null; "
                     "depths and the plotted flux are in units of the scatter")
    notes += _grid_edge_notes(candidates, model.grid) + lc.meta.get("INPUT_NOTES", [])
    timing = dict(clock.seconds, wall=time.perf_counter() - wall_start)
    given = lc_or_path if isinstance(lc_or_path, (str, os.PathLike)) else lc.meta.get("FILENAME") or lc.meta.get("LABEL")
    return Prediction(
        input=str(given),
        target=_target(lc),
        periods=[c.period_days for c in candidates],
        candidates=candidates,
        bin_probabilities=expit(scored.logits),
        bin_centers_days=model.grid.centers_days,
        duration_bin_probabilities=_duration_distribution(model.duration_grid, candidates),
        duration_bin_centers_hours=model.duration_grid.centers_days,  # the duration grid is in hours
        mission=lc.meta.get("MISSION"),
        notes=notes,
        timing_seconds=timing,
        lightcurve=lc,
        series=series,
    )


def _duration_distribution(duration_grid: PeriodGrid, candidates: list[Candidate]) -> np.ndarray:
    """The first candidate's duration as a distribution over the duration bins.

    From the refined limb-darkened fit rather than the scorer's duration head: on the test
    split of the default curves (``exoperiod evaluate --refine``) the refined duration's
    bin is within one bin of the truth for 86.0 % of the 93 planets whose period is
    found, the head's for 27.4 %: the fold's boxes are 1-4 phase bins wide, too coarse for
    the default grid's bins of 0.19 h. With bins of equal width (on the grid's axis) the
    top bin is the refined duration's.
    """
    if not candidates or not np.isfinite(candidates[0].duration_hours):
        return np.zeros(0)
    first = candidates[0]
    weights = period_weights(duration_grid, [first.duration_hours], [first.duration_err_hours]).weights
    return weights / weights.sum() if weights.sum() > 0 else weights


def _measured_again_if_eroded(
    lc: lk.LightCurve,
    series: Series,
    search: TransitSearch,
    candidates: list[Candidate],
    notes: list[str],
    search_planets: Callable[[Series, TransitSearch], tuple[list[Candidate], list[str]]],
    clock: CpuClock,
    min_probability: float,
) -> tuple[Series, TransitSearch, list[Candidate], list[str]]:
    """Series, search, candidates and notes, refined again on the star detrended with
    its planets' transits masked when the window eats into them (else as given).

    The model's scores of the first detrending stay (it was trained on that one): the
    first planet's bin and scorer probability are the same (the vetter reads the transits
    as measured again); a later pass masks the transits
    as measured again, so its bins may differ, and any candidate whose duration now
    exceeds a planet's loses its probability. A candidate that is the same signal both
    times (:func:`_same_signal`) keeps its first
    ephemeris (period, t0, their errors, transit times): the trend interpolated across
    the masked transits blurs their timing (taken from the second, the median period
    error of 51 held-out planets grew from 1.0e-4 to 1.4e-4, measured when periods were
    the box's). Durations, depths and SNRs come from the second.
    """
    eroded = _eroded_planets(candidates, series, min_probability)

    def transits(time_days: np.ndarray) -> np.ndarray:
        return np.any([c.transit_mask(time_days, REDETREND_MASK_WIDEN) for c in eroded], axis=0)

    if not eroded or np.mean(transits(series.detrended.time.value)) > MAX_MASKED_SHARE:
        return series, search, candidates, notes
    with clock("read_preprocess"):
        redone = redetrended(lc, series, transits)
    with clock("refine"):
        search = TransitSearch(redone.detrended)
    first = {c.bin_index: c for c in candidates}
    candidates, notes = search_planets(series, search)
    candidates = [replace(c, **{key: getattr(first[c.bin_index], key) for key in EPHEMERIS_KEYS})
                  if _same_signal(c, first.get(c.bin_index)) else c for c in candidates]
    notes.append(f"detrended again with the transits at {', '.join(f'{c.period_days:.4g}' for c in eroded)} d "
                 f"masked: the star's window ({series.window_days * HOURS_PER_DAY:.1f} h) is shorter than "
                 f"{WINDOW_PER_TRANSIT:g} of their durations")
    return redone, search, candidates, notes


def _same_signal(candidate: Candidate, other: Candidate | None) -> bool:
    """Whether two refinements of one bin found the same periodic signal: their periods
    agree within :data:`ALIAS_TOLERANCE`. (Not within their errors: on the held-out
    benchmark the two detrendings of one planet differ by more than 3 sigma for 22 of
    51, ~1e-4 of the period, while another peak of the bin lies percents away.)"""
    return other is not None and abs(candidate.period_days / other.period_days - 1) <= ALIAS_TOLERANCE


def _eroded_planets(candidates: list[Candidate], series: Series, min_probability: float) -> list[Candidate]:
    """The planets found (the first candidate and later passes' ones, with probability >=
    ``min_probability``, not too long for a planet and not better explained by a
    harmonic) whose transits the detrending window is too short to keep whole.

    The fitted duration decides, shortened already by the window it is compared with:
    a transit eaten a little (3 h read as 2.6 h under an 8-h window) is left as it is.
    ``_search_planets`` lists its planets first, and the other candidates all come from
    the first pass, so the planets are the first candidate and those of later passes.
    """
    planets = [c for i, c in enumerate(candidates) if i == 0 or c.search_pass > 0]
    return [c for c in planets if c.probability >= min_probability and not c.longer_than_a_planet
            and c.better_period_days is None
            and series.window_days * HOURS_PER_DAY < WINDOW_PER_TRANSIT * c.duration_hours]


def _target(lc: lk.LightCurve) -> str | None:
    if lc.meta.get("TARGETID") is not None:
        return str(lc.meta["LABEL"])
    obj = lc.meta.get("OBJECT")
    return str(obj) if obj not in (None, "", "None") else None


def _search_planets(
    series: Series,
    search: TransitSearch,
    scored: Scored,
    model: PeriodModel,
    clock: CpuClock,
    *,
    top_k: int,
    max_planets: int,
    min_probability: float,
    standardized: bool,
    use_tls: bool,
) -> tuple[list[Candidate], list[str]]:
    """Refined candidates (planets first, then the other top-k bins) and notes; ``search``
    is the BLS of ``series.detrended`` or of the same light curve detrended again with the
    planets' transits masked (the model's ``series.flux`` stays the first detrending's)."""
    edges = model.grid.edges_days

    def refine(search: TransitSearch, found: Scored, b: int, search_pass: int) -> Candidate:
        candidate = refine_bin(search, edges[b], edges[b + 1], peak_probability(expit(found.logits), b), b,
                               search_pass, standardized, use_tls, seed_period_days=float(found.best.period_days[b]))
        return vet(model.vetter, search, replace(candidate, sde=found.best.sde(b)))

    logits = scored.logits
    with clock("refine"):
        first: list[Candidate] = []
        tried: list[int] = []
        aliases: list[int] = []
        while len(first) < top_k and len(tried) < MAX_TRIES_PER_CANDIDATE * top_k:
            best = top_bins(logits, 1, taken=tried, excluded=aliases)
            if not best:
                break
            tried.append(best[0])
            candidate = refine(search, scored, best[0], 0)
            if not any(_is_alias(candidate, other) for other in first):
                first.append(candidate)
                if candidate.better_period_days is None:
                    aliases += _alias_bins(candidate.period_days, model.grid)
    # A candidate too long for a planet (probability 0) never becomes planet 1 while a
    # planet-like one is there; otherwise the order is the model's.
    first.sort(key=lambda c: c.longer_than_a_planet)
    planets, notes = first[:1], []
    if planets and planets[0].probability < min_probability:
        notes.append(f"no period bin reaches probability {min_probability:.2f}: the candidates are "
                     "best guesses, not detections")
    remaining, rescored = series, scored
    while planets and len(planets) < max_planets and planets[-1].probability >= min_probability:
        with clock("refine"):
            cells = remaining.start_time_days + remaining.cadence_days * np.arange(len(remaining.flux))
            removed = planets[-1].transit_mask(cells, widen=MASK_WIDEN)
            previous, remaining = remaining, remaining.without(removed)
            search = search.without(planets[-1].transit_mask(search.time_days, widen=MASK_WIDEN))
        if remaining.mask.sum() < 2:
            notes.append(f"planet search stopped after {len(planets)}: too little data left once "
                         "their transits are masked")
            break
        with clock("model"):
            # Only the masked cells are folded again (subtracted), then all trials restacked;
            # in place: of the earlier passes only their logits are kept.
            rescored = model.rescore_without(rescored, previous.flux, previous.mask, removed, in_place=True)
        best = top_bins(rescored.logits, 1, taken=[c.bin_index for c in planets])
        if not best or peak_probability(expit(rescored.logits), best[0]) < min_probability:
            notes.append(f"planet search stopped after {len(planets)}: with their transits masked no "
                         f"further bin reaches probability {min_probability:.2f}")
            break
        with clock("refine"):
            candidate = refine(search, rescored, best[0], len(planets))
        if candidate.longer_than_a_planet:
            notes.append(f"planet search stopped after {len(planets)}: the next signal lasts longer "
                         "than a planet's transit can")
            break
        planets.append(candidate)
    others = [c for c in first[1:] if not any(abs(c.bin_index - planet.bin_index) <= NEIGHBOUR_BINS
                                              or _is_alias(c, planet) for planet in planets)]
    return planets + others, notes


def _off_grid_and_range(
    candidates: list[Candidate],
    notes: list[str],
    series: Series,
    search: TransitSearch,
    grid: PeriodGrid,
    standardized: bool,
    off_grid: bool,
    period_range_days: tuple[float, float] | None,
) -> list[Candidate]:
    """Put a stronger off-grid planet first (dropping its aliases), then keep the
    candidates inside ``period_range_days`` (saying so in ``notes``)."""
    extra = None
    if off_grid:
        extra, off_grid_notes = search_outside_grid(series, grid, candidates, standardized,
                                                    period_range_days, search)
        notes += off_grid_notes
    if extra is not None:
        candidates = [extra] + [c for c in candidates if not (_is_alias(c, extra) or explained_by(c, extra))]
    if period_range_days is not None:
        lo, hi = period_range_days
        candidates = [c for c in candidates if lo <= c.period_days <= hi]
        notes.append(f"candidates restricted to periods in [{lo:g}, {hi:g}] d")
    return candidates


def _is_alias(candidate: Candidate, other: Candidate) -> bool:
    """``candidate`` repeats ``other``: periods in a ratio n or 1/n (n = 1 ..
    :data:`MAX_ALIAS_ORDER`) and transits at the same times, so that the longer period's
    transits are all transits of the shorter one."""
    short, long_ = sorted((candidate, other), key=lambda c: c.period_days)
    ratio = long_.period_days / short.period_days
    n = round(ratio)
    if not 1 <= n <= MAX_ALIAS_ORDER or abs(ratio / n - 1) > ALIAS_TOLERANCE:
        return False
    return bool(short.transit_mask(np.array([long_.t0_btjd_or_bkjd]))[0])


def _alias_bins(period_days: float, grid: PeriodGrid) -> list[int]:
    """Bins at P/3, P/2, 2P and 3P: for a period that explains the data best, aliases."""
    bins = [grid.index(period_days * factor) for factor in HARMONICS.values()]
    return [b for b in bins if b >= 0]


def _grid_edge_notes(candidates: list[Candidate], grid: PeriodGrid) -> list[str]:
    """Say so when the strongest signal points outside the searched period range."""
    if not candidates:
        return []
    strongest = max(candidates, key=lambda c: c.snr)
    searched = f"[{grid.min_days:g}, {grid.max_days:g}] d"
    notes = []
    if strongest.bin_index in (0, grid.bins - 1):
        edge = grid.min_days if strongest.bin_index == 0 else grid.max_days
        notes.append(f"strongest signal near the grid edge ({edge:g} d); periods outside {searched} "
                     "are not searched")
    if strongest.better_period_days is not None and not grid.contains(strongest.better_period_days):
        notes.append(f"the strongest signal ({strongest.period_days:.4f} d) is better explained by "
                     f"{strongest.better_period_days:.4f} d, outside the searched grid {searched}")
    return notes


def expand_paths(paths: Sequence[str | os.PathLike]) -> list[str]:
    """Files to process, as a list: see :func:`exoperiod.search.inputs.iter_inputs` (folders
    recursively, globs, ``@list`` files; sorted, readable endings).

    A path that is neither a folder nor matches a glob is kept as given, so that the
    reader reports what is wrong with it.
    """
    return list(iter_inputs(paths))


def predict_paths(
    paths: Sequence[str | os.PathLike],
    model: PeriodModel | str | os.PathLike | None = None,
    top_k: int = 3,
    max_planets: int = 3,
    flux_column: Literal["pdcsap", "sap"] = "pdcsap",
    plots_dir: str | os.PathLike | None = None,
    progress: ProgressCallback | None = None,
    use_tls: bool = False,
    views_dir: str | os.PathLike | None = None,
    **predict_options,
) -> list[Prediction]:
    """Predict every file of ``paths``; a file that fails gives an error Prediction.

    Parameters
    ----------
    paths : sequence of path
        Files, folders (searched recursively) and globs (see :func:`expand_paths`).
    model : PeriodModel, path or None
        Loaded once (None: the packaged model); a bad model file raises ModelLoadError.
    top_k, max_planets, flux_column, use_tls
        As for :func:`predict`.
    plots_dir : path, optional
        Write one PNG per input here (``<file name>.png``).
    views_dir : path, optional
        Write the vetting views of each candidate here (``<file name>.<n>.npz``, see
        :func:`exoperiod.search.views.write_views`).
    progress : callable, optional
        ``progress(done, total, prediction)`` after each input.
    **predict_options
        Further keywords of :func:`predict` (``columns``, ``off_grid``, ``period_range_days``).

    Returns
    -------
    list of Prediction
        One per expanded input, in order, without the light-curve data (to keep a
        large batch small).
    """
    model = resolve_model(model)
    files = expand_paths(paths)
    plot_names: set[str] = set()
    view_names: set[str] = set()
    predictions = []
    for done, path in enumerate(files, start=1):
        try:
            prediction = predict(path, model, top_k=top_k, max_planets=max_planets,
                                 flux_column=flux_column, use_tls=use_tls, **predict_options)
        except Exception as err:  # noqa: BLE001 - one odd file must not stop a batch
            prediction = Prediction.failed(path, _one_line(err, path))
        if plots_dir is not None and prediction.error is None:
            _plot(prediction, Path(plots_dir), plot_names)
        if views_dir is not None and prediction.error is None:
            _write_views(prediction, Path(views_dir), view_names)
        prediction = replace(prediction, lightcurve=None, series=None)
        predictions.append(prediction)
        if progress is not None:
            progress(done, len(files), prediction)
    return predictions


def _plot(prediction: Prediction, plots_dir: Path, taken: set[str]) -> None:
    from .plots import plot_prediction

    name = _unique_name(Path(prediction.input).name, taken) + ".png"
    start = time.process_time()
    try:
        plot_prediction(prediction, plots_dir / name)
    except Exception as err:  # noqa: BLE001 - a failed plot must not lose the prediction
        prediction.notes.append(f"plot not written: {_one_line(err)}")
    prediction.timing_seconds["report"] = time.process_time() - start


def _write_views(prediction: Prediction, views_dir: Path, taken: set[str]) -> None:
    from .views import write_views

    try:
        write_views(prediction, views_dir / _unique_name(Path(prediction.input).name, taken))
    except Exception as err:  # noqa: BLE001 - failed views must not lose the prediction
        prediction.notes.append(f"views not written: {_one_line(err)}")


def _unique_name(name: str, taken: set[str]) -> str:
    """``name``, or ``name-2``, ``name-3``, ... if taken (the same file name in two folders)."""
    unique, n = name, 2
    while unique in taken:
        unique, n = f"{name}-{n}", n + 1
    taken.add(unique)
    return unique


def _one_line(err: Exception, path: str | None = None) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    if not isinstance(err, ValueError):  # our own errors are ValueErrors with a clear message
        text = f"{type(err).__name__}: {text}"
    if path is not None and not text.startswith((path, str(Path(path)))):
        text = f"{path}: {text}"
    return text


def write_json(predictions: Sequence[Prediction], path: str | os.PathLike) -> None:
    """Write the JSON list of predictions atomically (a temporary file, then a rename)."""
    atomic_write_text(path, json.dumps([p.to_dict() for p in predictions], indent=2, allow_nan=False) + "\n")
