"""Training loop for :class:`~exoperiod.search.model.PeriodNet` (readable in one sitting).

Place in the flow (learning side): simulate, instruments, catalog (http) -> inject -> datasets, curves ->
**train** -> vetting -> evaluate; presets, demo.

Data: dataset folders with ``metadata.parquet`` (each sample's split and planets) and one
``.npz`` per sample: the fixed windows of ``exoperiod build-dataset`` (positive, negative,
synthetic) and the whole light curves of any length of
:func:`exoperiod.learning.curves.write_curves` (the ``curves`` folder); or the same packed
into Parquet shards (:mod:`exoperiod.learning.datasets.shards`). The coherent fold has no
parameters, so each sample is searched once and its per-bin features are cached
(:func:`~exoperiod.learning.datasets.store.sample_features`); an epoch then costs
seconds whatever the light curves' length. Each epoch draws a fixed number of training
samples from the pools by the configured mix and fits the scorer with AdamW, a one-cycle
schedule, binary cross-entropy against the soft period labels and, at each planet's
period bin, cross-entropy against its duration label. The validation metric is top-1
period recovery; training stops early when it stalls. A temperature fitted on the
validation split afterwards calibrates the probabilities.

Several processes: launched with ``torchrun`` (``WORLD_SIZE`` > 1) the loop runs under
torch DistributedDataParallel (gloo on CPU, nccl with CUDA). Every process draws the
same epoch order; each takes every ``world``-th sample of each batch, and DDP averages
the gradients, so a step sees the same batch as on one process. Rank 0 writes the files.
"""

from __future__ import annotations

import csv
import itertools
import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from ..checkpoint import save_checkpoint
from ..config import Config
from ..errors import ExoperiodError
from ..files import atomic_write
from ..grid import period_weights
from ..plotting import pyplot, save_figure
from ..search.model import FEATURE_NAMES, PeriodModel, PeriodNet
from .datasets.shards import is_store, read_packed_split
from .datasets.store import KINDS, SplitSample, read_split, sample_features


class TrainError(ExoperiodError):
    """A training run that cannot start; the message is one line."""


class TrainSettings(BaseModel):
    """Knobs of a training run (the dataset and grid come from :class:`Config`)."""

    model_config = ConfigDict(extra="forbid")
    epochs: int = Field(30, ge=1)
    samples_per_epoch: int = Field(4000, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(3e-3, gt=0)
    weight_decay: float = Field(1e-2, ge=0)
    patience: int = Field(8, ge=1, description="Epochs without a lower validation loss before stopping.")
    mix: dict[str, float] = Field(default_factory=lambda: {"positive": 0.1, "negative": 0.2, "synthetic": 0.3,
                                                           "curves": 0.4})
    channels: int = Field(32, ge=4)
    duration_weight: float = Field(0.1, ge=0, description="Weight of the duration loss beside the period loss.")
    rank_weight: float = Field(0.0, ge=0, description="Weight of the ranking loss (where the planet is, given "
                                                      "there is one) beside the period loss.")


@dataclass
class Split:
    """Samples of one split: cached fold features, labels and where each sample lives."""

    features: np.ndarray  # (n, features, bins)
    labels: np.ndarray  # (n, bins)
    kind: np.ndarray
    true_bins: list[list[int]]
    snr: np.ndarray
    samples: list[SplitSample]
    #: (sample index, period bin, duration weights summing to 1) per planet of known duration.
    durations: list[tuple[int, int, np.ndarray]]

    def __len__(self) -> int:
        return len(self.labels)


def load_split(root: Path, config: Config, split: str, model: PeriodModel | None = None) -> Split:
    """Features, labels and planets of every sample of ``split`` under ``root``: the
    dataset folders, or a store of Parquet shards (``root/store.json``,
    :mod:`exoperiod.learning.datasets.shards`) of which only the features, labels and
    planets are read."""
    grid, duration_grid = config.grid(), config.duration_grid()
    if is_store(root):
        samples, features, labels = read_packed_split(root, config, split)
    else:
        model = model or PeriodModel(config)
        samples = read_split(root, config, split)
        features = [sample_features(folder, [s.sample_id for s in group], model)
                    for folder, group in itertools.groupby(samples, key=lambda s: s.path.parent)]
        labels = []
        for sample in samples:
            with np.load(sample.path, allow_pickle=False) as z:
                if len(z["arr_1"]) != grid.bins:
                    raise TrainError(f"{sample.path}: {len(z['arr_1'])} period bins, the config has {grid.bins}")
                labels.append(z["arr_1"][None])
    true_bins, durations = [], []
    for index, sample in enumerate(samples):
        bins = [grid.index(p["period_days"]) for p in sample.planets]
        for p, b in zip(sample.planets, bins):
            if b >= 0 and p.get("duration_hours"):
                w = period_weights(duration_grid, [p["duration_hours"]]).weights
                if w.sum() > 0:
                    durations.append((index, int(b), w / w.sum()))
        true_bins.append([b for b in bins if b >= 0])
    return Split(
        np.concatenate([np.zeros((0, len(FEATURE_NAMES), grid.bins), np.float32), *features]),
        np.concatenate([np.zeros((0, grid.bins), np.float32), *labels]),
        np.array([s.kind for s in samples]), true_bins,
        np.array([max([p.get("snr") or 0.0 for p in s.planets], default=0.0) for s in samples], float),
        samples, durations)


def top_k_recovery(logits: np.ndarray, true_bins: list[list[int]], k: int = 1) -> float:
    """Fraction of samples with a planet in the grid whose true bin is among the top k."""
    hits = [bool(set(np.argsort(-row)[:k]) & set(bins)) for row, bins in zip(logits, true_bins) if bins]
    return float(np.mean(hits)) if hits else float("nan")


def _draw(train: Split, mix: dict[str, float], n: int, rng: np.random.Generator) -> np.ndarray:
    pools = {k: np.flatnonzero(train.kind == k) for k in KINDS}
    weights = np.array([mix.get(k, 0.0) if len(pools[k]) else 0.0 for k in KINDS])
    if weights.sum() <= 0:
        raise TrainError("the mix gives no weight to any dataset that has training samples")
    counts = rng.multinomial(n, weights / weights.sum())
    return np.concatenate([rng.choice(pools[k], c) for k, c in zip(KINDS, counts) if c])


def _duration_loss(duration_logits: torch.Tensor, batch: np.ndarray, split: Split) -> torch.Tensor:
    """Cross-entropy of the duration distribution at each planet's period bin."""
    where = {int(i): j for j, i in enumerate(batch)}
    rows = [(where[i], b, w) for i, b, w in split.durations if i in where]
    if not rows:
        return duration_logits.sum() * 0.0
    j, b, w = zip(*rows)
    log_p = torch.log_softmax(duration_logits[list(j), :, list(b)], dim=1)
    return -(torch.from_numpy(np.stack(w)) * log_p).sum(1).mean()


#: The ranking target is the label to this power, normalised: a planet's own bin (~0.7)
#: keeps 99.9 % of its weight against a neighbour (~0.15).
RANK_TARGET_POWER = 4


def _rank_loss(logits: torch.Tensor, labels: np.ndarray) -> torch.Tensor:
    """Cross-entropy of the softmax over period bins against the (sharpened) label
    normalised to sum to 1, on the light curves with a planet: *which* bin, given there
    is a planet.

    The per-bin BCE calibrates each bin on its own, and near the detection threshold,
    where every bin's probability stays near the prior, it leaves their order to small
    differences it never trained: on 4-year light curves at total SNR 7 the fold's best
    bin was the planet's for 30 % of them, the scorer's top bin for 15 %. Its weight,
    and what it does to false alarms, are measured beside
    :data:`exoperiod.learning.presets.DEFAULT_SETTINGS` (a "no planet" class in the
    softmax, so that planet-free light curves would train it too, did not lower them).
    """
    # The label's spread over neighbouring bins (there for the per-bin BCE) is sharpened
    # to each planet's own bin: the order between a bin and its neighbours is learned too.
    y = torch.from_numpy(labels) ** RANK_TARGET_POWER
    total = y.sum(1)
    has = total > 0
    if not bool(has.any()):
        return logits.sum() * 0.0
    return -((y[has] / total[has, None]) * torch.log_softmax(logits[has], dim=1)).sum(1).mean()


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature T minimising the BCE of ``logits / T`` against ``labels``."""
    x, y = torch.from_numpy(logits.astype(np.float64)), torch.from_numpy(labels.astype(np.float64))
    grid = np.exp(np.linspace(np.log(0.25), np.log(4.0), 121))
    losses = [torch.nn.functional.binary_cross_entropy_with_logits(x / t, y).item() for t in grid]
    return float(grid[int(np.argmin(losses))])


def process_group() -> tuple[int, int]:
    """(rank, world size): under ``torchrun`` the process group is set up here (gloo on
    CPU, nccl when CUDA is there); (0, 1) in a plain process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), world


def _plot(history: list[dict], path: Path) -> None:
    plt = pyplot()
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
    save_figure(fig, path)


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
        Folder holding the dataset folders (``config.positive`` ... ``config.curves``), or
        their store of Parquet shards (:func:`exoperiod.learning.datasets.shards.pack_dataset`).
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
        The best model by validation loss (also saved as ``out_dir/model.pt``), with
        its temperature fitted on the validation split.
    """
    settings = settings or TrainSettings()
    data_root, out_dir = Path(data_root), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rank, world = process_group()
    barrier = torch.distributed.barrier if world > 1 else (lambda: None)
    if rank > 0:
        barrier()  # rank 0 computes and caches the features first
    train_set, val_set = load_split(data_root, config, "train"), load_split(data_root, config, "val")
    if rank == 0:
        barrier()
    progress = progress if rank == 0 else None
    if not len(train_set) or not len(val_set):
        raise TrainError(f"{data_root}: need training and validation samples (found {len(train_set)} and {len(val_set)})")

    # The scorer is small (~40k parameters): a step is too little work for intra-op
    # threads to pay, and on a loaded machine they spin (measured: 35 ms a step on one
    # thread, 120 ms on two, with other jobs running).
    torch.set_num_threads(1)
    torch.manual_seed(config.seed)
    net = PeriodNet(config.grid().bins, config.duration_grid().bins, settings.channels)
    model = torch.nn.parallel.DistributedDataParallel(net) if world > 1 else net
    opt = torch.optim.AdamW(net.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    steps_per_epoch = math.ceil(settings.samples_per_epoch / settings.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, settings.lr, total_steps=settings.epochs * steps_per_epoch,
                                                pct_start=0.1)
    history: list[dict] = []
    best_loss, start_epoch, stale = math.inf, 1, 0
    last = out_dir / "last.pt"
    if resume and last.is_file():
        state = torch.load(last, map_location="cpu", weights_only=True)
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        history, best_loss, stale = state["history"], state["best_val_loss"], state["stale"]
        start_epoch = len(history) + 1

    train_x, val_x = torch.from_numpy(train_set.features), torch.from_numpy(val_set.features)
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
            idx = order[step * settings.batch_size:(step + 1) * settings.batch_size][rank::world]
            logits, duration_logits = model(train_x[idx])
            loss = bce(logits, torch.from_numpy(train_set.labels[idx]))
            loss = loss + settings.duration_weight * _duration_loss(duration_logits, idx, train_set)
            if settings.rank_weight:
                loss = loss + settings.rank_weight * _rank_loss(logits, train_set.labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(_mean_over_processes(loss.detach(), world))
            if progress:
                progress("train", step + 1, steps_per_epoch, {"epoch": epoch, "loss": float(np.mean(losses))})
        net.eval()
        with torch.no_grad():
            val_logits, _ = net(val_x)
            val_loss = bce(val_logits, val_labels).item()
        row = {"epoch": epoch, "train_loss": float(np.mean(losses)), "val_loss": val_loss,
               "val_top1": top_k_recovery(val_logits.numpy(), val_set.true_bins, 1),
               "val_top3": top_k_recovery(val_logits.numpy(), val_set.true_bins, 3),
               "lr": sched.get_last_lr()[0], "seconds": time.perf_counter() - started}
        history.append(row)
        # The validation loss (binary cross-entropy, a proper scoring rule) picks the model,
        # not top-1: top-1 on a few hundred light curves ties and jumps between epochs, and
        # the first maximum can be an undertrained, underconfident model.
        improved = val_loss < best_loss
        best_loss, stale = (val_loss, 0) if improved else (best_loss, stale + 1)
        if rank > 0:  # the same metrics on every process (same weights): only rank 0 writes
            continue
        if improved:
            card = {"trained_on": str(data_root), "epoch": epoch, "settings": settings.model_dump(),
                    "metrics": row, "n_train": len(train_set), "n_val": len(val_set),
                    "train_seconds": row["seconds"], "torch": str(torch.__version__),
                    "python": platform.python_version(), **(card_extra or {})}
            temperature = fit_temperature(val_logits.numpy(), val_set.labels)
            PeriodModel(config, net, {**card, "temperature": temperature}, temperature).save(out_dir / "model.pt")
        save_checkpoint({"net": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                         "history": history, "best_val_loss": best_loss, "stale": stale}, last)
        _write_metrics(history, out_dir)
        if progress:
            progress("epoch", epoch, settings.epochs, row)
    barrier()  # model.pt is rank 0's
    return PeriodModel.load(out_dir / "model.pt")


def _mean_over_processes(value: torch.Tensor, world: int) -> float:
    if world > 1:
        torch.distributed.all_reduce(value)
        value = value / world
    return value.item()


def _write_metrics(history: list[dict], out_dir: Path) -> None:
    with atomic_write(out_dir / "metrics.csv") as tmp, tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
    _plot(history, out_dir / "curves.png")
