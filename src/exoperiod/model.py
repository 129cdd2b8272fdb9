"""The period model: a box-fold periodogram read by a small learned scorer.

``PeriodNet`` folds each window at ~3,000 trial periods (:mod:`exoperiod.fold`), keeps the
best box SNR per period bin, and a 1-D convolutional scorer over the log-period axis turns
that, with the values at P/3, P/2, 2P and 3P, into one logit per bin. The scorer is what
learns to tell a planet from noise, red-noise bumps and harmonics.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .config import Config, config_from_dict
from .fold import FoldPeriodogram
from .grid import PeriodGrid
from .paths import PACKAGE_DATA

MODEL_FORMAT = "exoperiod-model/1"
DEFAULT_MODEL_PATH = PACKAGE_DATA / "default_model.pt"
HARMONICS = (1 / 3, 1 / 2, 2.0, 3.0)


class ModelLoadError(ValueError):
    """A model file that cannot be used; the message is one line."""


class _Block(nn.Module):
    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation)
        self.conv2 = nn.Conv1d(channels, channels, 1)
        self.norm = nn.GroupNorm(1, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(nn.functional.gelu(self.conv1(self.norm(x))))


class PeriodNet(nn.Module):
    """Windows (flux, mask) of shape (batch, length) to per-bin logits (batch, bins)."""

    n_features = 3 + len(HARMONICS)

    def __init__(self, grid: PeriodGrid, length: int, cadence_days: float, channels: int = 32) -> None:
        super().__init__()
        self.grid = grid
        self.fold = FoldPeriodogram(grid, length, cadence_days)
        self.register_buffer("trial_bin", torch.as_tensor(self.fold.trial_bin), persistent=False)
        centres = grid.centers_days
        harmonic_bins = [grid.index(centres * h) for h in HARMONICS]
        self.register_buffer("harmonic_bin", torch.as_tensor(np.stack(harmonic_bins)), persistent=False)
        self.position = nn.Parameter(torch.zeros(channels, grid.bins))
        self.inp = nn.Conv1d(self.n_features, channels, 1)
        self.blocks = nn.Sequential(*[_Block(channels, d) for d in (1, 2, 4, 8, 1)])
        self.head = nn.Conv1d(channels, 1, 1)

    @torch.no_grad()
    def features(self, flux: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Per-bin periodogram features, shape (batch, n_features, bins)."""
        snr = self.fold(flux, mask)
        batch = snr.shape[0]
        peak = torch.full((batch, self.grid.bins), -math.inf).scatter_reduce(
            1, self.trial_bin.expand(batch, -1), snr, reduce="amax"
        )
        # A bin without a trial (very fine grids) borrows nothing: it reads as no signal.
        peak = torch.where(torch.isfinite(peak), peak, torch.zeros_like(peak))
        top = peak.amax(1, keepdim=True)
        median = peak.median(1, keepdim=True).values
        harm = [torch.where(idx >= 0, peak[:, idx.clamp(min=0)], torch.zeros_like(peak))
                for idx in self.harmonic_bin]
        return torch.stack([peak, peak - median, peak - top, *harm], dim=1)

    def score(self, features: torch.Tensor) -> torch.Tensor:
        """Logits from :meth:`features`, shape (batch, bins)."""
        x = self.inp(features / 10.0) + self.position
        return self.head(self.blocks(x)).squeeze(1)

    def forward(self, flux: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.score(self.features(flux, mask))


def combine_window_logits(logits: np.ndarray, prior_logit: np.ndarray) -> np.ndarray:
    """Evidence of several windows of one star as one logit vector.

    Each window's logit is the prior log-odds plus that window's evidence. The windows'
    evidence is summed and divided by the square root of their number:
    ``prior + sum(logit_w - prior) / sqrt(n)``. A planet seen in every window gains
    ``sqrt(n)`` times one window's evidence, so a 4-year light curve gives a sharper
    answer than one quarter, while noise, which is independent from window to window,
    keeps one window's spread. Plain summing (naive Bayes) would treat the windows as
    independent witnesses, which they are not (same star, same systematics), and drives
    every harmonic of a clear planet to probability 1.
    """
    logits = np.atleast_2d(logits)
    return prior_logit + (logits - prior_logit).sum(0) / np.sqrt(len(logits))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class PeriodModel:
    """A trained :class:`PeriodNet` with the configuration it was trained for.

    Use :meth:`load` to read a model file (the packaged default when no path is given)
    and :meth:`predict_proba` to get per-bin probabilities.
    """

    def __init__(self, config: Config, net: PeriodNet | None = None, card: dict | None = None,
                 prior_logit: np.ndarray | None = None) -> None:
        self.config = config
        self.grid = config.grid()
        self.net = net or PeriodNet(self.grid, config.lightcurve_length, config.cadence_minutes / 1440.0)
        self.net.eval()
        self.card = card or {}
        self.prior_logit = (np.zeros(self.grid.bins) if prior_logit is None
                            else np.asarray(prior_logit, dtype=float))

    # -- files -----------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the model file atomically (state_dict, config, grid and model card)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "format": MODEL_FORMAT,
            "state_dict": self.net.state_dict(),
            "config": self.config.model_dump(mode="json", exclude={"username", "key"}),
            "grid": self.grid.to_dict(),
            "prior_logit": torch.as_tensor(self.prior_logit),
            "card": self.card,
        }
        tmp = path.with_name(path.name + ".tmp")
        torch.save(payload, tmp)
        tmp.replace(path)

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
        if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
            raise ModelLoadError(f"{path}: not an exoperiod model file (format {MODEL_FORMAT} expected)")
        config = config_from_dict(payload["config"], str(path))
        if grid is not None and config.grid() != grid:
            raise ModelLoadError(f"{path}: trained on grid {config.grid().to_dict()}, not {grid.to_dict()}")
        model = cls(config, card=payload.get("card", {}), prior_logit=payload["prior_logit"].numpy())
        try:
            model.net.load_state_dict(payload["state_dict"])
        except (RuntimeError, KeyError) as err:
            raise ModelLoadError(f"{path}: weights do not fit the model ({str(err).splitlines()[0]})") from None
        model.net.eval()
        return model

    # -- inference ---------------------------------------------------------------
    @torch.no_grad()
    def window_logits(self, flux: np.ndarray, mask: np.ndarray | None = None, batch_size: int = 256) -> np.ndarray:
        """Logits for windows of shape (n, length) (or one window of shape (length,))."""
        flux = np.atleast_2d(np.asarray(flux, dtype=np.float32))
        if flux.shape[1] != self.config.lightcurve_length:
            raise ValueError(f"windows have {flux.shape[1]} cells; this model takes {self.config.lightcurve_length}")
        mask = np.isfinite(flux) if mask is None else np.atleast_2d(np.asarray(mask, dtype=bool))
        flux = np.where(mask, flux, 0.0).astype(np.float32)
        out = [self.net(torch.from_numpy(flux[i:i + batch_size]), torch.from_numpy(mask[i:i + batch_size])).numpy()
               for i in range(0, len(flux), batch_size)]
        return np.concatenate(out).astype(float)

    def predict_proba(self, data, mask: np.ndarray | None = None) -> np.ndarray:
        """Per-bin probabilities of a transiting planet.

        Parameters
        ----------
        data : light curve, Windows, or ndarray
            A light curve in any form :func:`exoperiod.inputs.as_lightcurve` takes
            (preprocessed here; several windows are combined into one answer), preprocessed :class:`~exoperiod.preprocess.Windows`, one flux window
            of shape (length,), or a batch of shape (n, length).
        mask : ndarray of bool, optional
            Valid cells of array input; default: finite cells.

        Returns
        -------
        ndarray
            Shape (bins,) for a light curve, Windows or a single window; (n, bins) for a batch.
        """
        from .inputs import as_lightcurve
        from .preprocess import Windows, to_windows

        if isinstance(data, np.ndarray):
            logits = self.window_logits(data, mask)
            return _sigmoid(logits[0] if data.ndim == 1 else logits)
        windows = data if isinstance(data, Windows) else to_windows(as_lightcurve(data), self.config)
        logits = self.window_logits(windows.flux, windows.mask)
        return _sigmoid(combine_window_logits(logits, self.prior_logit))
