"""Dataset building: positive, negative and synthetic samples for training.

Place in the flow (learning side): simulate, instruments, catalog (http) -> inject -> **datasets**,
curves -> train -> vetting -> evaluate; presets, demo.

See :mod:`exoperiod.learning.datasets.build` for the datasets and sources,
:mod:`exoperiod.learning.datasets.store` for the output format and how builds resume, and
:mod:`exoperiod.learning.datasets.mast` for downloads from MAST.
"""

from ..http import DownloadError, RateLimiter, RetryPolicy, download_file
from .build import (
    DATASETS,
    SOURCES,
    BuildSummary,
    DatasetSummary,
    Negatives,
    Positives,
    StarDataset,
    Synthetics,
    build_datasets,
)
from .mast import MastClient, MastError
from .samples import KINDS
from .sources import LocalArchive
from .store import DatasetError

__all__ = [
    "DATASETS", "KINDS", "SOURCES", "BuildSummary", "DatasetError", "DatasetSummary", "DownloadError",
    "LocalArchive", "MastClient", "MastError", "Negatives", "Positives", "RateLimiter", "RetryPolicy",
    "StarDataset", "Synthetics", "build_datasets", "download_file",
]
