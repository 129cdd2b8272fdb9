"""Evaluation of a period model on a dataset split, and its markdown report.

Place in the flow (learning side): simulate, instruments, catalog (http) -> inject -> datasets, curves ->
train -> vetting -> **evaluate**; presets, demo.

What is measured
----------------
Every dataset sample (a fixed window of ``build-dataset`` or a whole light curve of the
``curves`` dataset) is searched as one series; its per-bin probabilities are the sigmoid
of the model's calibrated logits. The fold features are cached beside the samples
(:func:`exoperiod.learning.datasets.store.sample_features`).

- **Top-1 / top-3 recovery**, over samples with a planet in the grid: a true planet's bin
  is the most probable bin / among the three most probable bins (neighbouring bins
  included, as in training's validation metric: :func:`exoperiod.learning.train.top_k_recovery`).
  A bin is 3.7 % wide on the default grid, so a bin hit means the period is known to
  about +-2 %, the issue's tolerance.
- **Alias rate**: the top bin is no true bin but the bin of P/3, P/2, 2P or 3P of one.
- **Recovery vs SNR and vs period**: the same numbers per tier of the sample's highest
  injected (effective, vs the detrended window noise) SNR, and per range of the period
  of that planet.
- **Calibration**: reliability diagram and expected calibration error (ECE) of the
  per-bin probabilities of every cell (sample x bin), against the *soft* labels the
  model is trained on (the Gaussian period weights, ~0.68 in a planet's bin) and, as a
  second view, against hard labels (soft label > 0.5).
- **False-alarm rate**: on negative samples (stars without planets), the fraction with
  any bin above each probability threshold.
- **After refinement** (``refine=True``): each sample with a planet goes through
  :func:`exoperiod.search.predict.predict` (model, top-3 distinct bins, BLS refinement,
  one planet); a refined period counts when ``|p / P - 1| < 2 %``. A whole light curve
  is given as a user gives it, raw, made again from its seed
  (:func:`exoperiod.learning.curves.regenerated`) while the seed still gives the stored
  series; a fixed window (or a curve that no longer regenerates) is rebuilt as a light
  curve from its stored series, which ``predict`` cleans and detrends once more: what
  the build's detrending shaved off a transit cannot come back there.
- **Duration** (with refinement): the refined T14's bin of the model's duration grid
  (the top bin of ``duration_bin_probabilities``) within one bin of the truth, beside
  astropy BLS's best box at the same period and the duration head; the refined T14 is
  also scored on :func:`other_spacing` of the grid.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import lightkurve as lk
import numpy as np
from astropy.timeseries import BoxLeastSquares
from scipy.special import expit

from ..config import Config, ConfigError
from ..constants import HOURS_PER_DAY, MINUTES_PER_DAY
from ..files import atomic_write_text, json_safe
from ..grid import HARMONICS, PeriodGrid
from ..paths import shared_data_dir
from ..plotting import pyplot, save_figure
from ..search.model import PeriodModel
from ..search.refine import MAX_DUTY_CYCLE
from .curves import regenerated, training_backgrounds
from .datasets.shards import read_series
from .datasets.store import KINDS, DatasetError, SplitSample
from .train import Split, load_split, top_k_recovery

#: Relative period tolerance of a recovered period, |p / P - 1|.
PERIOD_TOLERANCE = 0.02
#: Edges of the SNR tiers (the last tier is open-ended).
SNR_EDGES = (7.0, 10.0, 15.0, 25.0, 50.0)
#: Edges of the period ranges, days.
PERIOD_EDGES_DAYS = (1.0, 2.0, 4.0, 8.0, 16.0, 25.0, 40.0)
FALSE_ALARM_THRESHOLDS = (0.1, 0.3, 0.5, 0.7, 0.9)
CALIBRATION_BINS = 10
#: Windows scored per model call (and per progress report).
BATCH_SIZE = 256

ProgressCallback = Callable[[str, int, int], None]


# ----------------------------------------------------------------------------- metrics


def relative_match(period_days: float, true_periods_days: Sequence[float],
                   tolerance: float = PERIOD_TOLERANCE) -> bool:
    """Whether ``period_days`` is within ``tolerance`` (relative) of a true period."""
    return any(abs(period_days / p - 1.0) < tolerance for p in true_periods_days)


def period_recovered(found_periods_days: Sequence[float], true_periods_days: Sequence[float], k: int,
                     tolerance: float = PERIOD_TOLERANCE) -> bool:
    """Whether one of the first ``k`` found periods matches a true period."""
    return any(relative_match(p, true_periods_days, tolerance) for p in list(found_periods_days)[:k])


def period_alias(period_days: float, true_periods_days: Sequence[float],
                 tolerance: float = PERIOD_TOLERANCE) -> str | None:
    """The harmonic ("P/3", "P/2", "2P", "3P") of a true period that ``period_days`` is,
    within ``tolerance``; None if it is none (or is a true period itself)."""
    if relative_match(period_days, true_periods_days, tolerance):
        return None
    for name, factor in HARMONICS.items():
        if relative_match(period_days, [factor * p for p in true_periods_days], tolerance):
            return name
    return None


def bin_alias(bin_index: int, true_periods_days: Sequence[float], grid: PeriodGrid) -> str | None:
    """The harmonic of a true period whose bin ``bin_index`` is; None if it is none or is
    a true planet's own bin."""
    if any(grid.index(p) == bin_index for p in true_periods_days):
        return None
    for name, factor in HARMONICS.items():
        if any(grid.index(factor * p) == bin_index for p in true_periods_days):
            return name
    return None


@dataclass(frozen=True)
class Reliability:
    """A reliability diagram: per probability bin, the mean prediction and mean target.

    Attributes
    ----------
    edges : list of float
        ``n + 1`` edges of the probability bins.
    mean_probability, mean_target : list of float
        Per bin (NaN where a bin is empty).
    count : list of int
        Predictions per bin.
    ece : float
        Expected calibration error: ``sum_b (count_b / N) |mean_probability_b - mean_target_b|``.
    """

    edges: list[float]
    mean_probability: list[float]
    mean_target: list[float]
    count: list[int]
    ece: float


def reliability(probabilities: np.ndarray, targets: np.ndarray, n_bins: int = CALIBRATION_BINS) -> Reliability:
    """Reliability diagram and ECE of probabilities against targets in [0, 1].

    Parameters
    ----------
    probabilities, targets : ndarray
        Same shape; every element is one prediction (soft targets are allowed).
    n_bins : int
        Equal-width probability bins.
    """
    p, y = np.ravel(probabilities).astype(float), np.ravel(targets).astype(float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, n_bins - 1)
    count = np.bincount(which, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(which, weights=p, minlength=n_bins) / count
        mean_y = np.bincount(which, weights=y, minlength=n_bins) / count
    gap = np.where(count > 0, np.abs(mean_p - mean_y), 0.0)
    ece = float(np.sum(count * gap) / count.sum()) if count.sum() else float("nan")
    return Reliability(edges.tolist(), mean_p.tolist(), mean_y.tolist(), count.tolist(), ece)


def false_alarm_rates(max_probabilities: np.ndarray,
                      thresholds: Sequence[float] = FALSE_ALARM_THRESHOLDS) -> dict[float, float]:
    """Fraction of negative samples whose highest bin probability exceeds each threshold."""
    m = np.asarray(max_probabilities, dtype=float)
    return {float(t): float(np.mean(m > t)) if len(m) else float("nan") for t in thresholds}


@dataclass(frozen=True)
class RecoveryRow:
    """Recovery of one group of samples (an SNR tier, a period range, a dataset kind)."""

    group: str
    n: int
    top1: float
    top3: float


def recovery_by(logits: np.ndarray, true_bins: list[list[int]], groups: Sequence[str],
                order: Sequence[str]) -> list[RecoveryRow]:
    """Top-1 and top-3 bin recovery per group, in ``order`` (empty groups are left out)."""
    groups = np.asarray(groups)
    rows = []
    for name in order:
        idx = np.flatnonzero(groups == name)
        if len(idx):
            bins = [true_bins[i] for i in idx]
            rows.append(RecoveryRow(name, len(idx), top_k_recovery(logits[idx], bins, 1),
                                    top_k_recovery(logits[idx], bins, 3)))
    return rows


def tier_labels(values: Sequence[float], edges: Sequence[float], unit: str = "") -> tuple[list[str], list[str]]:
    """Group names of ``values`` cut at ``edges``, and all names in order.

    Values below the first edge go to ``"< first"``, above the last to ``">= last"``, NaN
    to ``"unknown"``.
    """
    names = [f"< {edges[0]:g}{unit}"]
    names += [f"{lo:g}-{hi:g}{unit}" for lo, hi in itertools.pairwise(edges)]
    names += [f">= {edges[-1]:g}{unit}", "unknown"]
    v = np.asarray(values, dtype=float)
    which = np.where(np.isfinite(v), np.digitize(np.nan_to_num(v), edges), len(edges) + 1)
    return [names[i] for i in which], names


# --------------------------------------------------------------------------- the split


@dataclass(frozen=True)
class SamplePlanets:
    """What the metadata says about one sample's planets (periods in the grid only)."""

    kind: str
    periods_days: list[float]
    snrs: list[float]
    noise_ppm: float
    window_start_days: float
    durations_hours: list[float] = field(default_factory=list)

    @property
    def primary(self) -> int | None:
        """Index of the planet with the highest SNR (the first if none is known)."""
        if not self.periods_days:
            return None
        return int(np.argmax(np.nan_to_num(self.snrs, nan=-np.inf))) if any(np.isfinite(self.snrs)) else 0


    @classmethod
    def of(cls, sample: SplitSample, grid: PeriodGrid) -> SamplePlanets:
        """The planets of ``sample`` whose periods are in ``grid``."""
        planets = [p for p in sample.planets if grid.contains(p["period_days"])]
        return cls(sample.kind, [float(p["period_days"]) for p in planets],
                   [float(p["snr"]) if p.get("snr") is not None else math.nan for p in planets],
                   sample.noise_ppm, sample.window_start_days,
                   [float(p.get("duration_hours") or math.nan) for p in planets])


def window_lightcurve(flux: np.ndarray, mask: np.ndarray, start_days: float, config: Config,
                      noise_ppm: float) -> lk.LightCurve:
    """A dataset window as a light curve (relative flux around 1) for :func:`~exoperiod.search.predict.predict`.

    Standardized windows (no noise scale) get an arbitrary 1000 ppm: periods do not care.
    """
    cadence_days = config.cadence_minutes / MINUTES_PER_DAY
    time_days = start_days + cadence_days * np.flatnonzero(mask)
    scale = (noise_ppm if np.isfinite(noise_ppm) else 1000.0) * 1e-6
    return lk.LightCurve(time=time_days, flux=1.0 + scale * flux[mask].astype(float),
                         meta={"LABEL": "dataset window", "MISSION": "Kepler"})


# -------------------------------------------------------------------------- evaluation


@dataclass
class DurationRow:
    """Durations within one bin of the truth for one SNR tier of the planets found."""

    group: str
    n: int
    refined: float
    bls: float


@dataclass
class RefinedRecovery:
    """Recovery of the refined periods of :func:`exoperiod.search.predict.predict`."""

    n: int
    top1: float
    top3: float
    alias_rate: float
    cpu_seconds_per_sample: float
    #: Refined (limb-darkened fit) duration within one duration bin of the truth, over the
    #: ``n_duration`` samples whose top-1 refined period is right and whose duration is known.
    duration_top1: float = float("nan")
    #: The same for astropy BLS's best box duration at that refined period.
    bls_duration_top1: float = float("nan")
    n_duration: int = 0
    #: Samples searched on their raw light curve, regenerated from their seed
    #: (:func:`exoperiod.learning.curves.regenerated`); the others on their stored series.
    n_raw: int = 0
    #: ``duration_top1`` on :func:`other_spacing` of the model's duration grid.
    duration_top1_other_spacing: float = float("nan")
    #: ``duration_top1`` and ``bls_duration_top1`` by the planet's SNR tier (:data:`SNR_EDGES`): where durations are
    #: limited by the noise and where by the method.
    duration_by_snr: list[DurationRow] = field(default_factory=list)


@dataclass
class EvaluationResult:
    """Every metric of one evaluation (see the module docstring); ``to_dict`` is JSON-ready.

    Rates are fractions in [0, 1] (NaN where their sample set is empty).
    """

    model: str
    data_root: str
    split: str
    n_samples: int
    n_with_planet: int
    n_negative: int
    top1: float
    top3: float
    alias_rate: float
    aliases: dict[str, float]
    by_snr: list[RecoveryRow]
    by_period: list[RecoveryRow]
    by_kind: list[RecoveryRow]
    calibration_soft: Reliability
    calibration_hard: Reliability
    false_alarm: dict[float, float]
    cpu_ms_per_window: float
    #: The duration head's most probable bin, at the true period bin, within one bin of
    #: the true duration's bin (planets of known duration).
    duration_top1: float = float("nan")
    #: The model's duration grid the durations are scored on: ``min_hours``, ``max_hours``,
    #: ``bins``, ``spacing``.
    duration_grid: dict = field(default_factory=dict)
    refined: RefinedRecovery | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["false_alarm"] = {f"{t:g}": v for t, v in self.false_alarm.items()}
        return json_safe(out)


def describe_model(model: PeriodModel) -> str:
    """One line about a model from its card: training data, epoch, validation top-1."""
    card = model.card
    if not card:
        return "a model without a card (untrained?)"
    top1 = card.get("metrics", {}).get("val_top1")
    return (f"trained on {card.get('trained_on', '?')}, epoch {card.get('epoch', '?')}"
            + (f", validation top-1 {top1:.3f}" if top1 is not None else ""))


def _logits(model: PeriodModel, data: Split, progress: ProgressCallback | None) -> tuple[np.ndarray, np.ndarray]:
    """Period logits (n, bins) and duration probabilities (n, duration_bins, bins)."""
    logits, durations = [], []
    for start in range(0, len(data), BATCH_SIZE):
        stop = min(start + BATCH_SIZE, len(data))
        period, duration = model.score_features(data.features[start:stop])
        logits.append(period)
        durations.append(duration)
        if progress:
            progress("model", stop, len(data))
    if not logits:
        return np.zeros((0, model.grid.bins)), np.zeros((0, model.duration_grid.bins, model.grid.bins))
    return np.concatenate(logits), np.concatenate(durations)


def duration_bin_hits(predicted_bins: Sequence[int], true_weights: Sequence[np.ndarray]) -> list[bool]:
    """A duration is right when its bin is within one bin of the label's peak (a duration
    off the grid, bin -1, is wrong)."""
    return [b >= 0 and abs(int(b) - int(np.argmax(w))) <= 1 for b, w in zip(predicted_bins, true_weights)]


def within_one_bin(grid: PeriodGrid, predicted_hours: float, true_hours: float) -> bool:
    """Whether a duration is within one bin of the truth on a duration ``grid`` (hours);
    a duration off the grid is wrong."""
    predicted, true = grid.index(predicted_hours), grid.index(true_hours)
    return predicted >= 0 and true >= 0 and abs(predicted - true) <= 1


def _search_cpu_ms(model: PeriodModel, data: Split, n: int = 20) -> float:
    """CPU ms of the search and the scorer per sample, on the first ``n`` samples (the
    features of the evaluation itself come from the cache), reading excluded."""
    series = list(read_series(data.samples[:n]))
    start = time.process_time()
    for flux, mask, _ in series:
        model.score_series(flux, mask)
    return 1000.0 * (time.process_time() - start) / max(len(series), 1)


def _refined_recovery(model: PeriodModel, data: Split, planets: list[SamplePlanets],
                      progress: ProgressCallback | None) -> RefinedRecovery:
    from ..search.predict import predict

    todo = [i for i, s in enumerate(planets) if s.periods_days]
    top1, top3, alias, duration, bls_duration, duration_snr, other = [], [], [], [], [], [], []
    grid = model.duration_grid
    other_grid = other_spacing(grid)
    backgrounds, n_raw, seconds = training_backgrounds(shared_data_dir()), 0, 0.0
    series = read_series(data.samples[i] for i in todo)
    for done, (i, (flux, mask, start_days)) in enumerate(zip(todo, series), start=1):
        s, sample = planets[i], data.samples[i]
        # What a user hands predict: the raw light curve, where the dataset can give it back.
        again = regenerated(sample.sample_id, flux, model.config, backgrounds) if sample.kind == "curves" else None
        n_raw += again is not None
        lc = again.raw if again is not None else window_lightcurve(
            flux, mask, s.window_start_days if start_days is None else start_days, model.config, s.noise_ppm)
        start = time.process_time()
        try:
            prediction = predict(lc, model, top_k=3, max_planets=1)
        except ValueError:  # PreprocessError: a window too sparse once re-cleaned
            prediction = None
        seconds += time.process_time() - start
        candidates = prediction.candidates if prediction else []
        found = [c.period_days for c in candidates]
        true_hours = s.durations_hours[s.primary]
        if grid.contains(true_hours) and period_recovered(found, [s.periods_days[s.primary]], 1):
            # The duration grid is a PeriodGrid in hours: its "centers_days" are hours.
            box_hours = bls_duration_hours(prediction.series.detrended, found[0], grid.centers_days)
            duration.append(within_one_bin(grid, candidates[0].duration_hours, true_hours))
            other.append(within_one_bin(other_grid, candidates[0].duration_hours, true_hours))
            bls_duration.append(within_one_bin(grid, box_hours, true_hours))
            duration_snr.append(s.snrs[s.primary])
        top1.append(period_recovered(found, s.periods_days, 1))
        top3.append(period_recovered(found, s.periods_days, 3))
        alias.append(bool(found) and period_alias(found[0], s.periods_days) is not None)
        if progress:
            progress("refine", done, len(todo))

    def mean(x: list[bool]) -> float:
        return float(np.mean(x)) if x else float("nan")

    groups, order = tier_labels(duration_snr, SNR_EDGES)
    by_snr = [DurationRow(name, len(hits), mean([duration[i] for i in hits]), mean([bls_duration[i] for i in hits]))
              for name in order if (hits := [i for i, g in enumerate(groups) if g == name])]
    return RefinedRecovery(len(todo), mean(top1), mean(top3), mean(alias), seconds / max(len(todo), 1),
                           duration_top1=mean(duration), bls_duration_top1=mean(bls_duration),
                           n_duration=len(duration), duration_top1_other_spacing=mean(other),
                           duration_by_snr=by_snr, n_raw=n_raw)


def _duration_by_snr_table(refined: RefinedRecovery | None) -> list[str]:
    if refined is None or not refined.duration_by_snr:
        return []
    return ["By the planet's SNR (same planets):",
            markdown_table(["SNR", "n", "refined", "BLS box"],
                           [(row.group, row.n, _percent(row.refined), _percent(row.bls)) for row in refined.duration_by_snr])]


def bls_duration_hours(lc: lk.LightCurve, period_days: float, durations_hours: np.ndarray) -> float:
    """astropy BLS's transit duration at ``period_days``: its most powerful box among
    ``durations_hours`` (those shorter than a quarter of the period), the estimate a BLS
    user reads, set beside the refined duration on the same detrended light curve."""
    durations_days = durations_hours[durations_hours < MAX_DUTY_CYCLE * period_days * HOURS_PER_DAY] / HOURS_PER_DAY
    result = BoxLeastSquares(lc.time.value, lc.flux.value).power([period_days], durations_days)
    return float(result.duration[0]) * HOURS_PER_DAY


def evaluate_model(
    model: PeriodModel,
    data_root: str | os.PathLike,
    config: Config,
    split: str = "test",
    out_dir: str | os.PathLike | None = None,
    progress: ProgressCallback | None = None,
    refine: bool = False,
) -> EvaluationResult:
    """Evaluate a period model on one split of the datasets under ``data_root``.

    Parameters
    ----------
    model : PeriodModel
    data_root : path
        Folder holding the dataset folders (``config.positive``, ``config.negative``,
        ``config.synthetic``, ``config.curves``), as written by ``exoperiod build-dataset``,
        or their store of Parquet shards (``exoperiod pack-dataset``).
    config : Config
        The dataset's configuration (folder names, window length, grid); it must match
        the model's grid and window length.
    split : {"train", "val", "test"}
    out_dir : path, optional
        If given, :func:`write_report` writes the report there.
    progress : callable, optional
        ``progress(stage, done, total)`` with stages "load", "model", "refine" (only with
        ``refine``) and "report" (only with ``out_dir``).
    refine : bool
        Also run :func:`exoperiod.search.predict.predict` (BLS refinement of the top-3 distinct
        bins) on each sample with a planet: slower, ~0.1-1 s per sample.

    Returns
    -------
    EvaluationResult

    Raises
    ------
    ConfigError
        The config does not match the model.
    DatasetError
        The split has no samples, or the tables and sample files disagree.
    """
    if config.grid() != model.grid or config.cadence_minutes != model.config.cadence_minutes:
        raise ConfigError(f"the data's grid/cadence ({config.grid().to_dict()}, {config.cadence_minutes} min) "
                          f"differ from the model's ({model.grid.to_dict()}, {model.config.cadence_minutes} min)")
    root = Path(data_root)
    if progress:
        progress("load", 0, 1)
    data = load_split(root, config, split, model)
    planets = [SamplePlanets.of(s, model.grid) for s in data.samples]
    if not len(data):
        raise DatasetError(f"{root}: no samples in split {split!r}")
    if [s.kind for s in planets] != list(data.kind):
        raise DatasetError(f"{root}: metadata and sample files disagree; rebuild the datasets")
    if progress:
        progress("load", 1, 1)

    logits, duration_proba = _logits(model, data, progress)
    duration_hits = duration_bin_hits([duration_proba[i, :, b].argmax() for i, b, _ in data.durations],
                                      [w for _, _, w in data.durations])
    cpu_ms = _search_cpu_ms(model, data)
    probabilities = expit(logits)
    grid = model.grid
    has_planet = np.array([bool(b) for b in data.true_bins])
    # Stars without planets: the negative dataset, and whole light curves drawn without one.
    negative = (data.kind == "negative") | ((data.kind == "curves") & ~has_planet)
    top_bin = logits.argmax(1)
    aliases = [bin_alias(int(top_bin[i]), planets[i].periods_days, grid) for i in np.flatnonzero(has_planet)]
    n_planet = int(has_planet.sum())

    primary_snr = [s.snrs[s.primary] if s.primary is not None else math.nan for s in planets]
    primary_period = [s.periods_days[s.primary] if s.primary is not None else math.nan for s in planets]
    snr_groups, snr_order = tier_labels(primary_snr, SNR_EDGES)
    period_groups, period_order = tier_labels(primary_period, PERIOD_EDGES_DAYS, " d")
    sel = np.flatnonzero(has_planet)
    bins = [data.true_bins[i] for i in sel]

    def rows(groups: Sequence[str], order: Sequence[str]) -> list[RecoveryRow]:
        return recovery_by(logits[sel], bins, [groups[i] for i in sel], order)

    notes = []
    if not negative.any():
        notes.append(f"split {split!r} has no negative samples: no false-alarm rate")
    if n_planet == 0:
        notes.append(f"split {split!r} has no sample with a planet in the grid: no recovery")
    result = EvaluationResult(
        model=describe_model(model),
        data_root=str(root), split=split, n_samples=len(data), n_with_planet=n_planet,
        n_negative=int(negative.sum()),
        top1=top_k_recovery(logits, data.true_bins, 1), top3=top_k_recovery(logits, data.true_bins, 3),
        alias_rate=float(np.mean([a is not None for a in aliases])) if aliases else float("nan"),
        aliases={name: float(np.mean([a == name for a in aliases])) if aliases else float("nan")
                 for name in HARMONICS},
        by_snr=rows(snr_groups, snr_order), by_period=rows(period_groups, period_order),
        by_kind=rows(list(data.kind), KINDS),
        calibration_soft=reliability(probabilities, data.labels),
        calibration_hard=reliability(probabilities, data.labels > 0.5),
        false_alarm=false_alarm_rates(probabilities[negative].max(1) if negative.any() else np.zeros(0)),
        cpu_ms_per_window=cpu_ms,
        duration_top1=float(np.mean(duration_hits)) if duration_hits else float("nan"),
        duration_grid=_hours(model.duration_grid), notes=notes,
    )
    if refine and n_planet:
        result.refined = _refined_recovery(model, data, planets, progress)
    if out_dir is not None:
        if progress:
            progress("report", 0, 1)
        write_report(result, out_dir)
        if progress:
            progress("report", 1, 1)
    return result


# ------------------------------------------------------------------------------ report


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A GitHub markdown table; floats print with 3 significant digits, NaN as "-"."""

    def cell(v) -> str:
        if isinstance(v, float):
            return "-" if not math.isfinite(v) else f"{v:.3g}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _hours(grid: PeriodGrid) -> dict:
    # A duration grid is a PeriodGrid in hours: its "_days" attributes hold hours.
    return {"min_hours": grid.min_days, "max_hours": grid.max_days, "bins": grid.bins, "spacing": grid.spacing}


def other_spacing(grid: PeriodGrid) -> PeriodGrid:
    """``grid`` with the other spacing (log for linear, linear for log): the same refined
    durations scored on both. Bins of equal width in hours are wide for short transits in
    relative terms and narrow for long ones; log bins are the same share of every
    duration (3 % at 100 bins over 1-20 h: narrower than 0.19 h below 6.3 h, wider above)."""
    return PeriodGrid(grid.min_days, grid.max_days, grid.bins, "log" if grid.spacing == "linear" else "linear")


def _grid_words(grid: PeriodGrid) -> str:
    # The grid is in hours (a duration grid); "days" in its attribute names is the period grid's.
    if grid.spacing == "log":
        step = f"{100 * ((grid.max_days / grid.min_days) ** (1 / grid.bins) - 1):.2g} %"
    else:
        step = f"{(grid.max_days - grid.min_days) / grid.bins:.2g} h"
    return f"a {grid.spacing} grid of {grid.min_days:g}-{grid.max_days:g} h in {grid.bins} bins of {step}"


def _percent(x: float) -> str:
    return "-" if not math.isfinite(x) else f"{100 * x:.1f} %"


def _recovery_table(rows: list[RecoveryRow], what: str) -> str:
    return markdown_table([what, "samples", "top-1", "top-3"],
                          [(r.group, r.n, _percent(r.top1), _percent(r.top3)) for r in rows])


def _errorbar(p: np.ndarray, n: np.ndarray) -> np.ndarray:
    # Binomial standard error; a group of a few samples should look as uncertain as it is.
    return np.sqrt(np.clip(p * (1 - p), 0, None) / np.maximum(n, 1))


def _plot_recovery(rows: list[RecoveryRow], xlabel: str, path: Path) -> None:
    fig, ax = pyplot().subplots(figsize=(6, 3.5))
    x = np.arange(len(rows))
    n = np.array([r.n for r in rows])
    for offset, key, label in ((-0.18, "top1", "top-1"), (0.18, "top3", "top-3")):
        y = np.array([getattr(r, key) for r in rows])
        ax.bar(x + offset, y, 0.36, yerr=_errorbar(y, n), capsize=2, label=label)
    ax.set_xticks(x, [f"{r.group}\n(n={r.n})" for r in rows], fontsize=8)
    ax.set(xlabel=xlabel, ylabel="period recovery", ylim=(0, 1.05))
    ax.legend(loc="lower right")
    fig.tight_layout()
    save_figure(fig, path)


def _plot_reliability(result: EvaluationResult, path: Path) -> None:
    fig, (a, b) = pyplot().subplots(1, 2, figsize=(9, 3.8))
    for rel, label in ((result.calibration_soft, "soft labels"), (result.calibration_hard, "labels > 0.5")):
        a.plot(rel.mean_probability, rel.mean_target, "o-", label=f"{label} (ECE {rel.ece:.4f})")
    a.plot([0, 1], [0, 1], "k:", lw=1)
    a.set(xlabel="predicted bin probability", ylabel="mean label", xlim=(0, 1), ylim=(0, 1))
    a.legend(fontsize=8)
    edges = np.array(result.calibration_soft.edges)
    b.bar(edges[:-1], result.calibration_soft.count, np.diff(edges), align="edge", edgecolor="k", log=True)
    b.set(xlabel="predicted bin probability", ylabel="cells (sample x bin)")
    fig.tight_layout()
    save_figure(fig, path)


def _plot_false_alarm(result: EvaluationResult, path: Path) -> None:
    fig, ax = pyplot().subplots(figsize=(5, 3.5))
    t = list(result.false_alarm)
    ax.plot(t, [result.false_alarm[x] for x in t], "o-")
    ax.set(xlabel="probability threshold", ylabel="negatives with any bin above",
           title=f"false alarms (n = {result.n_negative} negatives)", ylim=(0, 1.05))
    fig.tight_layout()
    save_figure(fig, path)


PLOTS = {"recovery_vs_snr": "recovery_vs_snr.png", "recovery_vs_period": "recovery_vs_period.png",
         "reliability": "reliability.png", "false_alarm": "false_alarm.png"}


def _markdown(result: EvaluationResult) -> str:
    r = result
    aliases = ", ".join(f"{name} {_percent(v)}" for name, v in r.aliases.items())
    parts = [
        f"# exoperiod evaluation: split `{r.split}` of `{r.data_root}`",
        (f"Model: {r.model}. Samples: {r.n_samples} ({r.n_with_planet} with a planet in the "
        f"grid, {r.n_negative} negatives). Search and scorer CPU time: {r.cpu_ms_per_window:.1f} ms per sample."),
        *[f"> {note}" for note in r.notes],
        "## Period recovery",
        ("A planet is recovered when its period bin is the most probable bin (top-1) or among the "
        "three most probable bins (top-3, neighbouring bins included); a bin is ~3.7 % wide."),
        markdown_table(["metric", "value"], [
            ("top-1 recovery", _percent(r.top1)), ("top-3 recovery", _percent(r.top3)),
            ("alias rate (top bin at P/3, P/2, 2P or 3P)", _percent(r.alias_rate)),
            ("aliases by harmonic", aliases)]),
    ]
    if r.refined is not None:
        f = r.refined
        parts += [
            "### After refinement",
            (f"`exoperiod.search.predict` (top-3 distinct bins, BLS-refined) on the {f.n} samples with a planet; "
            f"a period is recovered when |p/P - 1| < {100 * PERIOD_TOLERANCE:g} %. {f.n_raw} of them are searched "
            "on their raw light curve, made again from the sample's seed (what a user hands `predict`; the "
            "stored series is detrended already, and what a short window shaved off a transit is gone from "
            f"it), {f.n - f.n_raw} on their stored series (no seed, or the seed no longer gives that series)."),
            markdown_table(["metric", "value"], [
                ("top-1 recovery", _percent(f.top1)), ("top-3 recovery", _percent(f.top3)),
                ("alias rate", _percent(f.alias_rate)),
                ("CPU seconds per sample (model + refine)", f"{f.cpu_seconds_per_sample:.2f}")]),
        ]
    g = r.duration_grid
    model_grid = PeriodGrid(g["min_hours"], g["max_hours"], g["bins"], g["spacing"])
    durations = [("the model's duration head, at the true period bin (all planets of known duration)",
                  _percent(r.duration_top1))]
    if r.refined is not None:
        durations += [
            (f"refined (limb-darkened fit, T14), top-1 period right ({r.refined.n_duration} planets)",
             _percent(r.refined.duration_top1)),
            ("astropy BLS's best box at the same period, same planets", _percent(r.refined.bls_duration_top1)),
            (f"refined, on {_grid_words(other_spacing(model_grid))} instead, same planets",
             _percent(r.refined.duration_top1_other_spacing))]
    parts += [
        "## Transit duration",
        (f"A duration is right when its bin of `distribution_params.duration` ({_grid_words(model_grid)}) "
         "is within one bin of the true T14's bin."),
        markdown_table(["duration estimate", "within one bin"], durations),
        *_duration_by_snr_table(r.refined),
        "## Recovery vs SNR",
        ("SNR: the highest injected matched-filter SNR of the sample's planets, against the noise "
        "of the detrended window (unknown for catalogue planets without a depth)."),
        _recovery_table(r.by_snr, "SNR"),
        f"![recovery vs SNR]({PLOTS['recovery_vs_snr']})",
        "## Recovery vs period",
        "Period of the sample's highest-SNR planet.",
        _recovery_table(r.by_period, "period"),
        f"![recovery vs period]({PLOTS['recovery_vs_period']})",
        "## Recovery by dataset",
        _recovery_table(r.by_kind, "dataset"),
        "## Calibration",
        ("Every cell (sample x period bin) is one prediction. *Soft labels* are the targets the model "
        "is trained on (a planet's Gaussian period weight, ~0.68 in its own bin and ~0.16 in each "
        "neighbour); *labels > 0.5* count only a planet's own bin as a hit. Most cells are near 0, "
        "so the ECE is dominated by the lowest bin: read the diagram too."),
        markdown_table(["target", "ECE"], [("soft labels", f"{r.calibration_soft.ece:.4f}"),
                                          ("labels > 0.5", f"{r.calibration_hard.ece:.4f}")]),
        markdown_table(["probability", "cells", "mean probability", "mean soft label", "mean label > 0.5"], [
            (f"{lo:.1f}-{hi:.1f}", n, p, y, h) for lo, hi, n, p, y, h in zip(
                r.calibration_soft.edges[:-1], r.calibration_soft.edges[1:], r.calibration_soft.count,
                r.calibration_soft.mean_probability, r.calibration_soft.mean_target,
                r.calibration_hard.mean_target)]),
        f"![reliability]({PLOTS['reliability']})",
        "## False alarms",
        f"Fraction of the {r.n_negative} negative samples with any bin above the threshold.",
        markdown_table(["threshold", "false-alarm rate"], [(f"{t:g}", _percent(v)) for t, v in r.false_alarm.items()]),
        f"![false alarms]({PLOTS['false_alarm']})",
    ]
    return "\n\n".join(parts) + "\n"


def write_report(result: EvaluationResult, out_dir: str | os.PathLike) -> Path:
    """Write ``report.md``, ``metrics.json`` and the PNG plots into ``out_dir``.

    Every file is written under a temporary name and renamed, so a file with its final
    name is complete. Returns the path of ``report.md``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _plot_recovery(result.by_snr, "injected SNR", out / PLOTS["recovery_vs_snr"])
    _plot_recovery(result.by_period, "period", out / PLOTS["recovery_vs_period"])
    _plot_reliability(result, out / PLOTS["reliability"])
    _plot_false_alarm(result, out / PLOTS["false_alarm"])
    atomic_write_text(out / "metrics.json", json.dumps(result.to_dict(), indent=2) + "\n")
    atomic_write_text(out / "report.md", _markdown(result))
    return out / "report.md"
