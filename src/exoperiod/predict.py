"""Predict planet periods for light-curve files: the model, refined by BLS, as JSON.

How the evidence of a long light curve is combined
--------------------------------------------------
A light curve longer than one model window (a Kepler Q1-Q17 curve is 18 windows of
4096 long cadences) is cut into windows; each window gives per-bin logits, and their
evidence is summed as log-odds relative to the model's prior
(:func:`exoperiod.model.combine_window_logits`), so every further window with a transit
sharpens the answer.

How planets are searched
------------------------
1. The ``top_k`` most probable bins of the whole light curve (ranked by log-odds) are
   refined one by one with a BLS restricted to the bin (:mod:`exoperiod.refine`). They
   are distinct signals: a bin next to a chosen one is skipped (the same peak), and so
   are the bins at P/3, P/2, 2P and 3P of a refined period P that explains the data
   better than those harmonics (aliases of it); a refined period that turns out to
   repeat an earlier one (a ratio of 1/5 .. 5 with coinciding transits: neighbouring
   bins share signal, and the model also fires at 4P, 5P) is dropped and the next bin
   tried.
2. The most probable of them is planet 1. If its probability is at least
   ``min_probability``, its transits (1.5 x the box duration) are removed from the light
   curve, which is preprocessed and scored again; the best bin not next to a planet's
   bin becomes the next planet if it reaches ``min_probability``. This repeats until
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
from pathlib import Path
from typing import ClassVar, Literal

import lightkurve as lk
import numpy as np

from .grid import PeriodGrid
from .inputs import iter_inputs
from .model import PeriodModel, combine_window_logits
from .preprocess import PreprocessError, Windows, to_windows
from .readers import read_lightcurve
from .refine import HARMONICS, Candidate, TransitSearch, refine_bin

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
    mission : str or None
        "Kepler", "K2" or "TESS".
    notes : list of str
        Caveats in words: grid edge, standardized flux, why the planet search stopped.
    timing_seconds : dict
        CPU seconds (all threads) spent in ``read_preprocess`` (reading, cleaning,
        detrending, windowing; also of the masked light curves), ``model``, ``refine``
        (BLS/TLS, harmonics, masking) and ``report`` (the PNG); ``wall`` is the elapsed
        time of the whole prediction.
    lightcurve, windows
        The light curve as read and its preprocessed windows, kept for plots by
        :func:`predict` (not by :func:`predict_paths`, which plots as it goes); not JSON.
    """

    input: str
    target: str | None
    periods: list[float]
    candidates: list[Candidate]
    bin_probabilities: np.ndarray
    bin_centers_days: np.ndarray
    error: str | None = None
    mission: str | None = None
    notes: list[str] = field(default_factory=list)
    timing_seconds: dict[str, float] = field(default_factory=dict)
    lightcurve: lk.LightCurve | None = field(default=None, repr=False, compare=False)
    windows: Windows | None = field(default=None, repr=False, compare=False)

    JSON_KEYS: ClassVar[tuple[str, ...]] = (
        "input", "target", "periods", "candidates", "bin_probabilities", "bin_centers_days", "error",
        "mission", "notes", "timing_seconds",
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
        out["notes"] = list(self.notes)
        out["timing_seconds"] = {key: round(float(v), 4) for key, v in self.timing_seconds.items()}
        return out


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


def bin_logits(model: PeriodModel, windows: Windows) -> np.ndarray:
    """Per-bin log-odds of all windows together (window evidence summed).

    Bins are ranked by these, not by probabilities: with many windows, the
    probabilities of several bins round to exactly 1.0 and would tie.
    """
    return combine_window_logits(model.window_logits(windows.flux, windows.mask), model.prior_logit)


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits))


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
) -> Prediction:
    """Periods of transiting planets in one light curve.

    Parameters
    ----------
    lc_or_path : lightkurve.LightCurve or path
        A light curve as :func:`exoperiod.readers.read_lightcurve` returns it, or a file
        it can read.
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

    Returns
    -------
    Prediction
        With ``lightcurve`` and ``windows`` attached for :func:`exoperiod.report.plot_prediction`.

    Raises
    ------
    LightCurveReadError, PreprocessError
        The file cannot be read, or has too little valid data for one window.
    ModelLoadError
        The model file cannot be used.
    """
    wall_start = time.perf_counter()
    model = resolve_model(model)
    clock = CpuClock()
    with clock("read_preprocess"):
        lc = lc_or_path if isinstance(lc_or_path, lk.LightCurve) else read_lightcurve(lc_or_path, flux_column)
        windows = to_windows(lc, model.config)
    with clock("model"):
        logits = bin_logits(model, windows)
    standardized = bool(lc.meta.get("FLUX_STANDARDIZED"))
    candidates, notes = _search_planets(lc, windows, logits, model, clock, top_k=top_k,
                                        max_planets=max_planets, min_probability=min_probability,
                                        standardized=standardized, use_tls=use_tls)
    if standardized:
        notes.append("the flux is standardized (zero median, unit variance): depth_ppm is null; "
                     "depths and the plotted flux are in units of the scatter")
    notes += _grid_edge_notes(candidates, model.grid)
    timing = dict(clock.seconds, wall=time.perf_counter() - wall_start)
    given = lc_or_path if not isinstance(lc_or_path, lk.LightCurve) else lc.meta.get("FILENAME") or lc.meta.get("LABEL")
    return Prediction(
        input=str(given),
        target=_target(lc),
        periods=[c.period_days for c in candidates],
        candidates=candidates,
        bin_probabilities=_sigmoid(logits),
        bin_centers_days=model.grid.centers_days,
        mission=lc.meta.get("MISSION"),
        notes=notes,
        timing_seconds=timing,
        lightcurve=lc,
        windows=windows,
    )


def _target(lc: lk.LightCurve) -> str | None:
    if lc.meta.get("TARGETID") is not None:
        return str(lc.meta["LABEL"])
    obj = lc.meta.get("OBJECT")
    return str(obj) if obj not in (None, "", "None") else None


def _search_planets(
    lc: lk.LightCurve,
    windows: Windows,
    logits: np.ndarray,
    model: PeriodModel,
    clock: CpuClock,
    *,
    top_k: int,
    max_planets: int,
    min_probability: float,
    standardized: bool,
    use_tls: bool,
) -> tuple[list[Candidate], list[str]]:
    """Refined candidates (planets first, then the other top-k bins) and notes."""
    edges = model.grid.edges_days

    def refine(search: TransitSearch, b: int, logit: float, search_pass: int) -> Candidate:
        return refine_bin(search, edges[b], edges[b + 1], float(_sigmoid(logit)), b, search_pass,
                          standardized, use_tls)

    with clock("refine"):
        search = TransitSearch(windows.detrended)
        first: list[Candidate] = []
        tried: list[int] = []
        aliases: list[int] = []
        while len(first) < top_k and len(tried) < MAX_TRIES_PER_CANDIDATE * top_k:
            best = top_bins(logits, 1, taken=tried, excluded=aliases)
            if not best:
                break
            tried.append(best[0])
            candidate = refine(search, best[0], logits[best[0]], 0)
            if not any(_is_alias(candidate, other) for other in first):
                first.append(candidate)
                if candidate.better_period_days is None:
                    aliases += _alias_bins(candidate.period_days, model.grid)
    planets, notes = first[:1], []
    if planets and planets[0].probability < min_probability:
        notes.append(f"no period bin reaches probability {min_probability:.2f}: the candidates are "
                     "best guesses, not detections")
    remaining = lc
    while planets and len(planets) < max_planets and planets[-1].probability >= min_probability:
        with clock("refine"):
            time_days = np.asarray(remaining.time.value, dtype=float)
            remaining = remaining[~planets[-1].transit_mask(time_days, widen=MASK_WIDEN)]
        try:
            with clock("read_preprocess"):
                masked = to_windows(remaining, model.config)
        except PreprocessError:
            notes.append(f"planet search stopped after {len(planets)}: too little data left once "
                         "their transits are masked")
            break
        with clock("model"):
            masked_logits = bin_logits(model, masked)
        best = top_bins(masked_logits, 1, taken=[c.bin_index for c in planets])
        if not best or _sigmoid(masked_logits[best[0]]) < min_probability:
            notes.append(f"planet search stopped after {len(planets)}: with their transits masked no "
                         f"further bin reaches probability {min_probability:.2f}")
            break
        with clock("refine"):
            planets.append(refine(TransitSearch(masked.detrended), best[0], masked_logits[best[0]], len(planets)))
    others = [c for c in first[1:] if not any(abs(c.bin_index - planet.bin_index) <= NEIGHBOUR_BINS
                                              or _is_alias(c, planet) for planet in planets)]
    return planets + others, notes


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
    """Files to process, as a list: see :func:`exoperiod.inputs.iter_inputs` (folders
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
    progress : callable, optional
        ``progress(done, total, prediction)`` after each input.

    Returns
    -------
    list of Prediction
        One per expanded input, in order, without the light-curve data (to keep a
        large batch small).
    """
    model = resolve_model(model)
    files = expand_paths(paths)
    plot_names: set[str] = set()
    predictions = []
    for done, path in enumerate(files, start=1):
        try:
            prediction = predict(path, model, top_k=top_k, max_planets=max_planets,
                                 flux_column=flux_column, use_tls=use_tls)
        except Exception as err:  # noqa: BLE001 - one odd file must not stop a batch
            prediction = Prediction.failed(path, _one_line(err, path))
        if plots_dir is not None and prediction.error is None:
            _plot(prediction, Path(plots_dir), plot_names)
        prediction = replace(prediction, lightcurve=None, windows=None)
        predictions.append(prediction)
        if progress is not None:
            progress(done, len(files), prediction)
    return predictions


def _plot(prediction: Prediction, plots_dir: Path, taken: set[str]) -> None:
    from .report import plot_prediction

    name = Path(prediction.input).name + ".png"
    stem, n = name, 2
    while name in taken:  # the same file name in two folders
        name, n = f"{stem[:-4]}-{n}.png", n + 1
    taken.add(name)
    start = time.process_time()
    try:
        plot_prediction(prediction, plots_dir / name)
    except Exception as err:  # noqa: BLE001 - a failed plot must not lose the prediction
        prediction.notes.append(f"plot not written: {_one_line(err)}")
    prediction.timing_seconds["report"] = time.process_time() - start


def _one_line(err: Exception, path: str | None = None) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    if not isinstance(err, ValueError):  # our own errors are ValueErrors with a clear message
        text = f"{type(err).__name__}: {text}"
    if path is not None and not text.startswith((path, str(Path(path)))):
        text = f"{path}: {text}"
    return text


def write_json(predictions: Sequence[Prediction], path: str | os.PathLike) -> None:
    """Write the JSON list of predictions atomically (a temporary file, then a rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps([p.to_dict() for p in predictions], indent=2, allow_nan=False) + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
