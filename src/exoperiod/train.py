"""Training loop for :class:`~exoperiod.model.PeriodNet` (readable in one sitting).

Data: the dataset folders written by ``exoperiod build-dataset`` (``<root>/<kind>/*.npz``
with ``metadata.parquet`` giving each sample's split and planets). Each epoch draws a
fixed number of training samples from the positive / negative / synthetic pools by the
configured mix, augments them without changing their periods, and fits the scorer with
AdamW, a cosine schedule and binary cross-entropy against the soft period labels. The
validation metric is top-1 period recovery; training stops early when it stalls.
"""

from __future__ import annotations

import csv
import json
import math
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field

from .checkpoint import save_checkpoint
from .config import Config
from .model import PeriodModel, PeriodNet

KINDS = ("positive", "negative", "synthetic")


class TrainError(ValueError):
    """A training run that cannot start; the message is one line."""


class TrainSettings(BaseModel):
    """Knobs of a training run (the dataset and grid come from :class:`Config`)."""

    model_config = ConfigDict(extra="forbid")
    epochs: int = Field(12, ge=1)
    samples_per_epoch: int = Field(6000, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(3e-3, gt=0)
    weight_decay: float = Field(1e-2, ge=0)
    patience: int = Field(4, ge=1, description="Epochs without a better validation top-1 before stopping.")
    mix: dict[str, float] = Field(default_factory=lambda: {"positive": 0.1, "negative": 0.25, "synthetic": 0.65})
    augment: bool = True
    channels: int = Field(32, ge=4)


@dataclass
class Split:
    """Samples of one split in memory, with the bins of their true periods."""

    flux: np.ndarray
    mask: np.ndarray
    labels: np.ndarray
    kind: np.ndarray
    true_bins: list[list[int]]
    snr: np.ndarray

    def __len__(self) -> int:
        return len(self.flux)


def load_split(root: Path, config: Config, split: str) -> Split:
    """Read every sample of ``split`` from the dataset folders under ``root``."""
    grid = config.grid()
    flux, mask, labels, kinds, true_bins, snrs = [], [], [], [], [], []
    for kind in KINDS:
        folder = root / getattr(config, kind)
        table = folder / "metadata.parquet"
        if not table.is_file():
            continue
        meta = pd.read_parquet(table)
        for row in meta[meta["split"] == split].itertuples():
            with np.load(folder / f"{row.sample_id}.npz", allow_pickle=False) as z:
                if len(z["arr_0"]) != config.lightcurve_length or len(z["arr_1"]) != grid.bins:
                    raise TrainError(f"{folder / row.sample_id}.npz: shape does not match the config")
                flux.append(z["arr_0"])
                mask.append(z["mask"])
                labels.append(z["arr_1"])
            planets = json.loads(row.planets) if isinstance(row.planets, str) else []
            bins = [grid.index(p["period_days"]) for p in planets]
            true_bins.append([b for b in bins if b >= 0])
            snrs.append(max([p.get("snr") or 0.0 for p in planets], default=0.0))
            kinds.append(kind)
    if not flux:
        return Split(np.zeros((0, config.lightcurve_length), np.float32), np.zeros((0, config.lightcurve_length), bool),
                     np.zeros((0, grid.bins), np.float32), np.array([]), [], np.array([]))
    return Split(np.stack(flux), np.stack(mask).astype(bool), np.stack(labels), np.array(kinds), true_bins,
                 np.asarray(snrs, dtype=float))


def augment(flux: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Period-preserving augmentations: a time shift, random gaps and extra noise."""
    flux, mask = flux.copy(), mask.copy()
    n, length = flux.shape
    for i in range(n):
        shift = int(rng.integers(-length // 20, length // 20 + 1))
        flux[i], mask[i] = np.roll(flux[i], shift), np.roll(mask[i], shift)
        # The wrapped part is not the same star a window later: mask it out, not fold it in.
        if shift > 0:
            mask[i, :shift] = False
        elif shift < 0:
            mask[i, shift:] = False
        for _ in range(rng.integers(0, 4)):
            start, width = rng.integers(0, length), rng.integers(10, 150)
            mask[i, start:start + width] = False
        sigma = rng.uniform(0.0, 0.5)
        flux[i] = (flux[i] + sigma * rng.standard_normal(length).astype(np.float32)) / math.sqrt(1 + sigma**2)
    return np.where(mask, flux, 0.0).astype(np.float32), mask


def top_k_recovery(logits: np.ndarray, true_bins: list[list[int]], k: int = 1) -> float:
    """Fraction of samples with a planet in the grid whose true bin is among the top k."""
    hits = [bool(set(np.argsort(-row)[:k]) & set(bins)) for row, bins in zip(logits, true_bins) if bins]
    return float(np.mean(hits)) if hits else float("nan")


def _features(net: PeriodNet, flux: np.ndarray, mask: np.ndarray, batch: int = 256) -> torch.Tensor:
    return torch.cat([net.features(torch.from_numpy(flux[i:i + batch]), torch.from_numpy(mask[i:i + batch]))
                      for i in range(0, len(flux), batch)])


def _draw(train: Split, mix: dict[str, float], n: int, rng: np.random.Generator) -> np.ndarray:
    pools = {k: np.flatnonzero(train.kind == k) for k in KINDS}
    weights = np.array([mix.get(k, 0.0) if len(pools[k]) else 0.0 for k in KINDS])
    if weights.sum() <= 0:
        raise TrainError("the mix gives no weight to any dataset that has training samples")
    counts = rng.multinomial(n, weights / weights.sum())
    return np.concatenate([rng.choice(pools[k], c) for k, c in zip(KINDS, counts) if c])


def _plot(history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    a.plot(epochs, [h["train_loss"] for h in history], label="train")
    a.plot(epochs, [h["val_loss"] for h in history], label="validation")
    a.set(xlabel="epoch", ylabel="BCE loss")
    a.legend()
    b.plot(epochs, [h["val_top1"] for h in history], label="top-1")
    b.plot(epochs, [h["val_top3"] for h in history], label="top-3")
    b.set(xlabel="epoch", ylabel="validation period recovery", ylim=(0, 1))
    b.legend()
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


def train(
    config: Config,
    data_root: str | Path,
    out_dir: str | Path,
    settings: TrainSettings | None = None,
    resume: bool = False,
    progress: Callable[[str, int, int, dict], None] | None = None,
    card_extra: dict | None = None,
) -> PeriodModel:
    """Train a period model; write ``model.pt``, ``last.pt``, ``metrics.csv`` and ``curves.png``.

    Parameters
    ----------
    config : Config
    data_root : path
        Folder holding the dataset folders (``config.positive`` ...).
    out_dir : path
        Run folder.
    settings : TrainSettings, optional
    resume : bool
        Continue from ``out_dir/last.pt`` (same data, same seed: same result).
    progress : callable, optional
        ``progress(stage, done, total, metrics)`` after each batch and epoch.
    card_extra : dict, optional
        More entries for the model card (e.g. the command that trained it).

    Returns
    -------
    PeriodModel
        The best model by validation top-1 (also saved as ``out_dir/model.pt``).
    """
    settings = settings or TrainSettings()
    data_root, out_dir = Path(data_root), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    train_set, val_set = load_split(data_root, config, "train"), load_split(data_root, config, "val")
    if not len(train_set) or not len(val_set):
        raise TrainError(f"{data_root}: need training and validation samples (found {len(train_set)} and {len(val_set)})")

    torch.manual_seed(config.seed)
    net = PeriodNet(config.grid(), config.lightcurve_length, config.cadence_minutes / 1440.0, settings.channels)
    opt = torch.optim.AdamW(net.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    steps_per_epoch = math.ceil(settings.samples_per_epoch / settings.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, settings.lr, total_steps=settings.epochs * steps_per_epoch,
                                                pct_start=0.1)
    prior = np.clip(train_set.labels.mean(0), 1e-4, 1 - 1e-4)
    prior_logit = np.log(prior / (1 - prior))
    history: list[dict] = []
    best_top1, start_epoch, stale = -1.0, 1, 0
    last = out_dir / "last.pt"
    if resume and last.is_file():
        state = torch.load(last, map_location="cpu", weights_only=True)
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        history, best_top1, stale = state["history"], state["best_top1"], state["stale"]
        start_epoch = len(history) + 1

    val_features = _features(net, val_set.flux, val_set.mask)
    val_labels = torch.from_numpy(val_set.labels)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    started = time.perf_counter()
    for epoch in range(start_epoch, settings.epochs + 1):
        if stale >= settings.patience:
            break
        rng = np.random.default_rng([config.seed, epoch])
        order = _draw(train_set, settings.mix, settings.samples_per_epoch, rng)
        net.train()
        losses = []
        for step in range(steps_per_epoch):
            idx = order[step * settings.batch_size:(step + 1) * settings.batch_size]
            flux, mask = train_set.flux[idx], train_set.mask[idx]
            if settings.augment:
                flux, mask = augment(flux, mask, rng)
            logits = net.score(net.features(torch.from_numpy(flux), torch.from_numpy(mask)))
            loss = bce(logits, torch.from_numpy(train_set.labels[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
            if progress:
                progress("train", step + 1, steps_per_epoch, {"epoch": epoch, "loss": float(np.mean(losses))})
        net.eval()
        with torch.no_grad():
            val_logits = net.score(val_features)
            val_loss = bce(val_logits, val_labels).item()
        row = {"epoch": epoch, "train_loss": float(np.mean(losses)), "val_loss": val_loss,
               "val_top1": top_k_recovery(val_logits.numpy(), val_set.true_bins, 1),
               "val_top3": top_k_recovery(val_logits.numpy(), val_set.true_bins, 3),
               "lr": sched.get_last_lr()[0], "seconds": time.perf_counter() - started}
        history.append(row)
        if row["val_top1"] > best_top1:
            best_top1, stale = row["val_top1"], 0
            card = {"trained_on": str(data_root), "epoch": epoch, "settings": settings.model_dump(),
                    "metrics": row, "n_train": len(train_set), "n_val": len(val_set),
                    "train_seconds": row["seconds"], "torch": str(torch.__version__),
                    "python": platform.python_version(), **(card_extra or {})}
            PeriodModel(config, net, card, prior_logit).save(out_dir / "model.pt")
        else:
            stale += 1
        save_checkpoint({"net": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                         "history": history, "best_top1": best_top1, "stale": stale}, last)
        _write_metrics(history, out_dir)
        if progress:
            progress("epoch", epoch, settings.epochs, row)
    return PeriodModel.load(out_dir / "model.pt")


def _write_metrics(history: list[dict], out_dir: Path) -> None:
    tmp = out_dir / "metrics.csv.tmp"
    with tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
    tmp.replace(out_dir / "metrics.csv")
    _plot(history, out_dir / "curves.png")
