"""The period model: the coherent box search read by a small learned scorer.

Place in the flow (search side): readers -> inputs -> preprocess -> fold -> **model** ->
refine (ephemeris, offgrid) -> vetting -> predict -> views, plots, results -> outputs, batch.

The search (:mod:`exoperiod.search.fold`) folds the whole light curve at every trial period
its baseline needs and keeps the best box SNR per trial. :func:`fold_features` reduces
that to a few numbers per period bin: the bin's best SNR, its contrast to the
periodogram's median and maximum, the values at P/3, P/2, 2P and 3P, how many transits
the light curve can hold at that period, how long the light curve is, and the best box's
width. A 1-D convolutional scorer over the log-period axis turns them into one logit per
bin (is there a planet in this bin?) and, per bin, a distribution over transit durations.
The scorer is what learns the false-alarm level for the number of trials, red-noise bumps
and harmonics; the fold has no parameters, so its features are computed once per
training sample and cached. The model file also holds the candidates' :class:`Vetter`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.special import expit, softmax
from torch import nn

from ..checkpoint import (
    MODEL_FORMAT,
    ModelLoadError,
    save_checkpoint,
    validate_checkpoint,
)
from ..config import Config, config_from_dict
from ..constants import MINUTES_PER_DAY
from ..grid import HARMONICS, PeriodGrid
from ..paths import PACKAGE_DATA
from . import fold
from .fold import CoherentFold, FoldResult, FoldState, typical_duration_days

DEFAULT_MODEL_PATH = PACKAGE_DATA / "default_model.pt"
#: SNRs enter the scorer as asinh(snr / FEATURE_SNR_SCALE): linear around the detection
#: threshold (SNR ~ 7), logarithmic beyond, so that a hot Jupiter at SNR 3000 is a
#: large but finite input and the probability keeps growing with the signal.
FEATURE_SNR_SCALE = 4.0
#: The light-curve length feature is log(valid days / 90 d): 0 for one Kepler quarter of
#: data, ~2.8 for four years, negative for a TESS sector.
QUARTER_FEATURE_DAYS = 90.0
FEATURE_NAMES = ("peak", "peak_minus_median", "peak_minus_top", "at_P/3", "at_P/2", "at_2P", "at_3P",
                 "log_transits", "log_valid_quarters", "log_box_over_typical")


@dataclass(frozen=True)
class BinFold:
    """The best fine trial of every period bin, from one fold.

    Attributes
    ----------
    snr : ndarray
        Best box SNR in the bin (0 where the bin has no trial).
    period_days, epoch_days, duration_days : ndarray
        Period, box centre (days after the series' first cell) and box width of that trial.
    snr_mean, snr_std : float
        Mean and standard deviation of the best box SNR over all trial periods (for the SDE).
    """

    snr: np.ndarray
    period_days: np.ndarray
    epoch_days: np.ndarray
    duration_days: np.ndarray
    snr_mean: float = 0.0
    snr_std: float = 1.0

    def sde(self, b: int) -> float:
        """Signal detection efficiency of bin ``b``: TLS's SDE on this periodogram."""
        return float((self.snr[b] - self.snr_mean) / self.snr_std) if self.snr_std > 0 else 0.0


def best_per_bin(fold: FoldResult, grid: PeriodGrid) -> BinFold:
    """Reduce the fine trials to the best one of each period bin."""
    b = grid.index(fold.periods_days)
    inside = b >= 0
    b, snr = b[inside], fold.snr[inside]
    order = np.lexsort((snr, b))  # by bin, then SNR: the last of each bin is its best
    last = np.flatnonzero(np.append(np.diff(b[order]) != 0, True))
    pick = np.flatnonzero(inside)[order[last]]
    out = {name: np.zeros(grid.bins) for name in ("snr", "period_days", "epoch_days", "duration_days")}
    out["period_days"][:] = grid.centers_days
    out["duration_days"][:] = typical_duration_days(grid.centers_days)
    bins = b[order[last]]
    out["snr"][bins] = fold.snr[pick]
    out["period_days"][bins] = fold.periods_days[pick]
    out["epoch_days"][bins] = fold.epoch_days[pick]
    out["duration_days"][bins] = fold.duration_days[pick]
    return BinFold(**out, snr_mean=float(np.mean(fold.snr)), snr_std=float(np.std(fold.snr)))


def features_key(config: Config) -> str:
    """What cached fold features depend on: the grid, the cadence, the feature set and
    the fold's constants. Training caches features under this key and recomputes them
    when it changes."""
    parts = [config.grid().to_dict(), config.cadence_minutes, FEATURE_NAMES,
             [fold.BIN_FRACTION_OF_DURATION, fold.BOX_WIDTHS_BINS, fold.DOWNSAMPLE,
              fold.FINE_DRIFT_BINS, fold.COARSE_DRIFT_BINS, fold.SEGMENT_CELLS]]
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:12]


def fold_features(best: BinFold, grid: PeriodGrid, valid_days: float) -> np.ndarray:
    """Per-bin scorer inputs, shape (len(FEATURE_NAMES), bins), float32."""
    peak = best.snr
    a = lambda x: np.arcsinh(x / FEATURE_SNR_SCALE)  # noqa: E731 - one transform for every SNR feature
    harmonic = [np.where(idx >= 0, peak[np.maximum(idx, 0)], 0.0)
                for idx in (grid.index(grid.centers_days * h) for h in HARMONICS.values())]
    centres = grid.centers_days
    transits = np.log(np.maximum(valid_days / centres, 0.5))
    quarters = np.full(grid.bins, np.log(max(valid_days, 1.0) / QUARTER_FEATURE_DAYS))
    box = np.log(best.duration_days / typical_duration_days(best.period_days))
    rows = [a(peak), a(peak - np.median(peak)), a(peak - peak.max()), *map(a, harmonic), transits, quarters, box]
    return np.stack(rows).astype(np.float32)


#: What the vetter reads of one candidate (:func:`exoperiod.search.vetting.vetting_features`),
#: in this order. Each is scale-free (ratios, significances, logarithms), so that a deep
#: and a shallow transit of the same kind look alike.
VETTING_FEATURES = (
    "scorer_log_odds",  # the scorer's peak probability, as log-odds
    "asinh_snr",  # refined box SNR, as the scorer's features take SNRs
    "sde",  # the coherent search's SDE in the candidate's bin
    "sinusoid_gain",  # sinusoid's log-likelihood gain over the box's, in units of the box's gain
    "log_odd_even_sigma",  # |odd - even depth| in sigma, log(1 + x)
    "asinh_secondary_sigma",  # depth at phase 0.5 in sigma (a bump is negative)
    "half_period_depth_ratio",  # box depth at P/2 over the depth at P (a transit: 1/2)
    "log_transits",  # transits with data
    "largest_transit_share",  # share of the log-likelihood gain from the strongest transit
    "log_red_noise",  # Pont et al.'s beta at the transit's duration
    "log_duration_over_longest",  # T14 over the longest transit a planet has at this period
    "better_harmonic",  # 1 when P/3, P/2, 2P or 3P explains the data better
)
#: Hidden units of the vetter: 8 had the lowest cross-validated log-loss on 1,632
#: candidates (0.101; 16 units 0.119, a logistic regression 0.125).
VETTER_HIDDEN_UNITS = 8


class _Block(nn.Module):
    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation)
        self.conv2 = nn.Conv1d(channels, channels, 1)
        self.norm = nn.GroupNorm(1, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(nn.functional.gelu(self.conv1(self.norm(x))))


class PeriodNet(nn.Module):
    """Fold features (batch, features, bins) to period logits (batch, bins) and
    duration logits (batch, duration_bins, bins).

    ``position`` is a learned per-bin offset: the false-alarm level differs along the
    period axis (many more trials per bin at short periods). Dilations 1, 2, 4, 8 give a
    receptive field of ~30 bins (a factor ~3 in period: harmonics and red-noise bumps are
    seen whole); the last block of dilation 1 sharpens the peak.
    """

    def __init__(self, bins: int, duration_bins: int, channels: int = 32) -> None:
        super().__init__()
        self.position = nn.Parameter(torch.zeros(channels, bins))
        self.inp = nn.Conv1d(len(FEATURE_NAMES), channels, 1)
        self.blocks = nn.Sequential(*[_Block(channels, d) for d in (1, 2, 4, 8, 1)])
        self.head = nn.Conv1d(channels, 1, 1)
        self.duration_head = nn.Conv1d(channels, duration_bins, 1)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.blocks(self.inp(features) + self.position)
        return self.head(x).squeeze(1), self.duration_head(x)


class Vetter(nn.Module):
    """A candidate's :data:`VETTING_FEATURES` (n, features) to a planet's log-odds (n,):
    the probability a candidate reports (:mod:`exoperiod.search.vetting`).

    Standardised inputs (``mean``, ``scale`` of the fitting set, kept in the weights), one
    hidden layer of :data:`VETTER_HIDDEN_UNITS`: small enough to fit on a few thousand candidates
    without overfitting, non-linear enough to read "a sinusoid fits better" differently at
    SNR 10 and at SNR 1000.
    """

    def __init__(self) -> None:
        super().__init__()
        n = len(VETTING_FEATURES)
        self.register_buffer("mean", torch.zeros(n))
        self.register_buffer("scale", torch.ones(n))
        self.net = nn.Sequential(nn.Linear(n, VETTER_HIDDEN_UNITS), nn.GELU(), nn.Linear(VETTER_HIDDEN_UNITS, 1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net((features - self.mean) / self.scale).squeeze(-1)

    @torch.no_grad()
    def probability(self, features: np.ndarray) -> np.ndarray:
        """Planet probabilities of feature rows (n, features) or one row (features,)."""
        x = torch.from_numpy(np.atleast_2d(np.asarray(features, dtype=np.float32)))
        p = torch.sigmoid(self(x)).numpy().astype(float)
        return p if np.ndim(features) == 2 else p[0]


@dataclass(frozen=True)
class Scored:
    """What the model says about one light curve."""

    logits: np.ndarray
    duration_proba: np.ndarray  # (duration_bins, bins): duration distribution given each period bin
    best: BinFold
    features: np.ndarray
    state: FoldState | None = field(default=None, repr=False)  # for PeriodModel.rescore_without


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Run torch on one thread inside, as many as before after.

    The scorer of one light curve (a batch of one, 100 bins) takes ~1 ms; more threads
    only add their start-up. And once numba's OpenMP layer has started (wotan's
    detrending starts it), torch's count is numba's, every core, whatever
    OMP_NUM_THREADS says: 0.5 s of CPU per light curve on two busy cores instead of
    0.01. A batch of one gives the same numbers on any number of threads.
    """
    threads = torch.get_num_threads()
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class PeriodModel:
    """A trained :class:`PeriodNet` with the configuration it was trained for.

    Use :meth:`load` to read a model file (the packaged default when no path is given),
    :meth:`predict_proba` for per-bin probabilities and :meth:`score_series` for
    everything the search and the scorer know about a light curve.
    """

    def __init__(self, config: Config, net: PeriodNet | None = None, card: dict | None = None,
                 temperature: float = 1.0, vetter: Vetter | None = None) -> None:
        self.config = config
        #: The candidates' vetter (:mod:`exoperiod.search.vetting`); None: a candidate's
        #: probability is the scorer's.
        self.vetter = vetter.eval() if vetter is not None else None
        self.grid = config.grid()
        self.duration_grid = config.duration_grid()
        self.net = net or PeriodNet(self.grid.bins, self.duration_grid.bins)
        self.net.eval()
        self.card = card or {}
        self.temperature = float(temperature)
        self.fold = CoherentFold(self.grid, config.cadence_minutes / MINUTES_PER_DAY)

    # -- files -----------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the model file atomically (state_dict, config, grid, temperature, card, vetter)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "format": MODEL_FORMAT,
            "state_dict": self.net.state_dict(),
            "config": self.config.model_dump(mode="json", exclude={"username", "key"}),
            "grid": self.grid.to_dict(),
            "temperature": torch.tensor(self.temperature),
            "card": self.card,
        }
        if self.vetter is not None:
            payload["vetter"] = self.vetter.state_dict()
        save_checkpoint(payload, path)

    @classmethod
    def load(cls, path: str | Path | None = None, grid: PeriodGrid | None = None) -> "PeriodModel":
        """Load a model file; ``None`` loads the model shipped with the package.

        Parameters
        ----------
        path : str or Path, optional
        grid : PeriodGrid, optional
            If given, the file must have been trained on this grid.

        Raises
        ------
        ModelLoadError
            Missing, truncated or corrupt file, another format, or another grid.
        """
        path = Path(path) if path is not None else DEFAULT_MODEL_PATH
        if not path.is_file():
            raise ModelLoadError(f"{path}: no such model file")
        try:
            payload: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises many types for a damaged zip or pickle
            raise ModelLoadError(f"{path}: not a readable model file (truncated, corrupt or not a weights-only checkpoint: {type(err).__name__})") from None
        validate_checkpoint(payload, path)
        config = config_from_dict(payload["config"], str(path))
        if grid is not None and config.grid() != grid:
            raise ModelLoadError(f"{path}: trained on grid {config.grid().to_dict()}, not {grid.to_dict()}")
        model = cls(config, card=payload.get("card", {}), temperature=float(payload["temperature"]))
        try:
            model.net.load_state_dict(payload["state_dict"])
        except (RuntimeError, KeyError) as err:
            raise ModelLoadError(f"{path}: weights do not fit the model ({str(err).splitlines()[0]})") from None
        model.net.eval()
        if "vetter" in payload:
            vetter = Vetter()
            try:
                vetter.load_state_dict(payload["vetter"])
            except (RuntimeError, KeyError) as err:
                raise ModelLoadError(f"{path}: vetter weights do not fit the vetter ({str(err).splitlines()[0]})") from None
            model.vetter = vetter.eval()
        return model

    # -- inference ---------------------------------------------------------------
    def search(self, flux: np.ndarray, mask: np.ndarray) -> tuple[BinFold, np.ndarray]:
        """Coherent search of one uniform series: the best trial per bin and the features."""
        return self._features(self.fold(flux, mask), int(np.count_nonzero(mask)))

    def _features(self, fold: FoldResult, valid_cells: int) -> tuple[BinFold, np.ndarray]:
        best = best_per_bin(fold, self.grid)
        return best, fold_features(best, self.grid, valid_cells * self.config.cadence_minutes / MINUTES_PER_DAY)

    @torch.no_grad()
    def score_features(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated logits (n, bins) and duration probabilities (n, duration_bins, bins)."""
        logits, duration = self.net(torch.from_numpy(np.asarray(features, dtype=np.float32)))
        return logits.numpy().astype(float) / self.temperature, softmax(duration.numpy().astype(float), axis=1)

    def score_series(self, flux: np.ndarray, mask: np.ndarray) -> Scored:
        """Search and score one uniform series (unit-noise flux, valid-cell mask)."""
        return self._score(self.fold.fold(flux, mask), int(np.count_nonzero(mask)))

    def rescore_without(self, scored: Scored, flux: np.ndarray, mask: np.ndarray, remove: np.ndarray,
                        in_place: bool = False) -> Scored:
        """:meth:`score_series` of ``(flux, mask & ~remove)``, from the fold state of
        ``scored`` (which came from ``(flux, mask)``): only the removed cells are folded.
        ``in_place`` reuses (and spoils) ``scored.state`` (see :meth:`CoherentFold.without`)."""
        state = self.fold.without(scored.state, flux, mask, remove, in_place)
        return self._score(state, int(np.count_nonzero(np.asarray(mask, bool) & ~np.asarray(remove, bool))))

    def _score(self, state: FoldState, valid_cells: int) -> Scored:
        best, features = self._features(self.fold.result(state), valid_cells)
        with _one_torch_thread():
            logits, duration = self.score_features(features[None])
        return Scored(logits=logits[0], duration_proba=duration[0], best=best, features=features, state=state)

    def predict_proba(self, data, mask: np.ndarray | None = None) -> np.ndarray:
        """Per-bin probabilities of a transiting planet.

        Parameters
        ----------
        data : light curve, Series, or ndarray
            A light curve of any length in any form :func:`exoperiod.search.inputs.as_lightcurve`
            takes (preprocessed here and searched as a whole), a preprocessed
            :class:`~exoperiod.search.preprocess.Series`, one uniform flux series of shape (n,)
            in units of its noise, or a batch of fixed-length windows of shape (k, n)
            (e.g. the dataset's ``arr_0``), each scored alone.
        mask : ndarray of bool, optional
            Valid cells of array input; default: finite cells.

        Returns
        -------
        ndarray
            Shape (bins,) for a light curve, a Series or one series; (k, bins) for a batch.
        """
        from .inputs import as_lightcurve
        from .preprocess import Series, to_series

        if isinstance(data, np.ndarray):
            flux = np.atleast_2d(np.asarray(data, dtype=np.float32))
            mask = np.isfinite(flux) if mask is None else np.atleast_2d(np.asarray(mask, dtype=bool))
            flux = np.where(mask, flux, 0.0)
            proba = np.stack([expit(self.score_series(f, m).logits) for f, m in zip(flux, mask)])
            return proba[0] if data.ndim == 1 else proba
        series = data if isinstance(data, Series) else to_series(as_lightcurve(data), self.config)
        return expit(self.score_series(series.flux, series.mask).logits)
