"""Recipes that reproduce the shipped model with one command.

``exoperiod train --preset default`` builds the simulated default population (resumable)
and trains on it with the settings below; on 2 CPU cores it takes well under an hour.
"""

from __future__ import annotations

from pathlib import Path

from .config import Config
from .train import TrainSettings

DEFAULT_DATA_ROOT = Path("data/default")
DEFAULT_COUNTS = {"synthetic_samples_count": 10000, "negative_sample_count": 3000, "positive_sample_count": 0}
DEFAULT_SETTINGS = TrainSettings(epochs=12, samples_per_epoch=6000, batch_size=64, lr=3e-3,
                                 mix={"positive": 0.0, "negative": 0.25, "synthetic": 0.75})


def default_config(config: Config) -> Config:
    """``config`` with the dataset sizes and output folder of the default recipe."""
    return config.model_copy(update={**DEFAULT_COUNTS, "output_root": str(DEFAULT_DATA_ROOT)})


def prepare_default(config: Config, progress=None, workers: int = 2) -> tuple[Config, Path, TrainSettings]:
    """Build (or resume) the default simulated datasets; return what training needs.

    ``progress(kind, done, total)`` is called as the datasets are built.
    """
    from .datasets import build_datasets

    config = default_config(config)
    build_datasets(config, source="simulated", only=("negative", "synthetic"), workers=workers, progress=progress)
    return config, Path(config.output_root), DEFAULT_SETTINGS
