"""What a dataset folder holds, and how it survives being killed.

Place in the flow (learning side): simulate, instruments, catalog (http) -> inject -> **datasets**,
curves -> train -> vetting -> evaluate; presets, demo.

A dataset folder has one ``<sample_id>.npz`` per sample, ``metadata.csv`` and
``metadata.parquet`` (one row per sample), ``failures.csv`` (one row per star or file
that gave no sample, with the reason) and ``build.json`` (the settings the samples were
made with); training adds ``features-<key>.npz``, the fold features it searched
(:func:`sample_features`).

Integrity rests on three rules:

- every file is written under a temporary name and renamed into place, so a file with
  its final name is complete;
- a star's metadata rows are appended to ``journal.jsonl`` (flushed at once, fsynced at
  least every second) only after all its sample files are in place, so the journal and
  the compacted tables are a ledger of finished stars; on restart, stars in the ledger
  whose files all exist are skipped and every other star is made again from scratch;
- a star's samples depend only on the seed, the dataset kind and the star's index, and
  the sample files are byte-reproducible (fixed zip timestamps), so a remade star gives
  the same bytes.

At the end of a build the journal is compacted into the tables, sorted by star, and
sample files that no finished star claims (left by a kill between writing the files and
journaling the star, or by a build with more stars) are removed. The three tables are
written under temporary names first and renamed together, so a full disk leaves the
previous tables (or none), never some new and some old.

A build holds ``build.lock`` (an OS file lock, released even when the process is killed)
while it writes: a second build into the same folder fails at once instead of deleting
the first one's temporary files.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from filelock import FileLock, Timeout

from ...errors import ExoperiodError
from ...files import atomic_write, atomic_write_text

if TYPE_CHECKING:
    from ...search.model import PeriodModel

METADATA_COLUMNS = (
    "sample_id", "star_id", "star_index", "kind", "source", "mission", "lightcurve",
    "quarter_or_window", "window_index", "window_start_days", "noise_ppm", "cdpp6_ppm",
    "n_planets", "planets", "split",
)
FAILURE_COLUMNS = ("star_id", "star_index", "source", "lightcurve", "reason")
_FLOAT_COLUMNS = ("window_start_days", "noise_ppm", "cdpp6_ppm")
_INT_COLUMNS = ("star_index", "window_index", "n_planets")

#: Fractions of stars in the train and validation splits; the rest is the test split.
SPLIT_FRACTIONS = (("train", 0.8), ("val", 0.1))
#: Longest time a journaled star may wait for fsync, seconds.
FSYNC_INTERVAL_S = 1.0
# Any fixed date works: zip entries carry one, and it must not be "now".
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


class DatasetError(ExoperiodError):
    """A dataset that cannot be built as asked (bad source, a folder built with other
    settings); the message is one line."""


#: The dataset kinds, each a folder named by the config (``config.positive``, ...), in the
#: order a split is read.
KINDS = ("positive", "negative", "synthetic", "curves")


@dataclass(frozen=True)
class SplitSample:
    """One sample of a split, as its folder's ``metadata.parquet`` describes it.

    Attributes
    ----------
    kind : str
        One of :data:`KINDS`.
    sample_id : str
    path : Path
        The file holding the sample: its ``.npz``, or the Parquet shard of a packed store
        (:mod:`exoperiod.learning.datasets.shards`).
    planets : list of dict
        The planets as written (``period_days``, ``snr``, ``duration_hours``, ...).
    noise_ppm : float
        The detrended noise per cadence (NaN if unknown).
    window_start_days : float
        Time of the sample's first cadence (0 for whole light curves).
    """

    kind: str
    sample_id: str
    path: Path
    planets: list[dict]
    noise_ppm: float
    window_start_days: float


def read_split(root: Path, config, split: str) -> list[SplitSample]:
    """Every sample of ``split`` ("train", "val" or "test") under ``root``: kind by kind
    in :data:`KINDS` order, each kind in its table's order. The one reader of the tables
    this module writes; training and evaluation both read splits through it."""
    samples = []
    for kind in KINDS:
        folder = root / getattr(config, kind)
        table = folder / "metadata.parquet"
        if not table.is_file():
            continue
        meta = pd.read_parquet(table)
        for row in meta[meta["split"] == split].itertuples():
            planets = json.loads(row.planets) if isinstance(row.planets, str) else []
            noise = getattr(row, "noise_ppm", math.nan)
            samples.append(SplitSample(kind, row.sample_id, folder / f"{row.sample_id}.npz", planets,
                                       float(noise) if pd.notna(noise) else math.nan,
                                       float(getattr(row, "window_start_days", 0.0))))
    return samples


def sample_features(folder: Path, sample_ids: list[str], model: PeriodModel, write_cache: bool = True) -> np.ndarray:
    """Fold features of the samples of one dataset folder, computed once and cached.

    The cache is ``<folder>/features-<key>.npz`` (sample id -> features, key
    :func:`~exoperiod.search.model.features_key`) and holds only what had to be searched:
    samples that carry their own ``features`` array with the same key (written by
    :func:`exoperiod.learning.curves.write_curves`) always use it, so a light curve written
    again under its id never meets its predecessor's features. Only the requested entries
    of the cache are read, so a few samples of a large folder cost little.

    Parameters
    ----------
    folder : Path
    sample_ids : list of str
    model : PeriodModel
        Searches the samples that have no features yet.
    write_cache : bool
        Add the features searched here to the cache. The shard packer reads a folder
        without writing to it: rewriting the cache for every shard would cost the square
        of the folder's size.

    Returns
    -------
    ndarray
        (samples, features, bins), float32.
    """
    from ...search.model import FEATURE_NAMES, features_key

    key = features_key(model.config)
    cache_path = folder / f"features-{key}.npz"
    found: dict[str, np.ndarray] = {}
    if cache_path.is_file():
        wanted = set(sample_ids)
        with np.load(cache_path, allow_pickle=False) as z:
            found = {name: z[name] for name in z.files if name in wanted}
    searched = []
    for sample_id in sample_ids:
        # A sample's own features are read from it even when the cache has its id: they
        # were written with its flux, and a rewritten sample keeps its id.
        with np.load(folder / f"{sample_id}.npz", allow_pickle=False) as z:
            if "features" in z.files and str(z["features_key"]) == key:
                found[sample_id] = z["features"]
            elif sample_id not in found:
                found[sample_id] = model.search(z["arr_0"], z["mask"].astype(bool))[1]
                searched.append(sample_id)
    if searched and write_cache:
        cached: dict[str, np.ndarray] = {}
        if cache_path.is_file():
            with np.load(cache_path, allow_pickle=False) as z:
                cached = {name: z[name] for name in z.files}
        with atomic_write(cache_path) as tmp:
            np.savez(tmp, **cached, **{s: found[s] for s in searched})
    if not sample_ids:
        return np.zeros((0, len(FEATURE_NAMES), model.grid.bins), np.float32)
    return np.stack([found[s] for s in sample_ids])


def split_of(star_id: str, seed: int) -> str:
    """The split ("train", "val" or "test") of a star: a salted hash of its id, so every
    sample of a star, in every dataset, lands in the same split."""
    digest = hashlib.sha256(f"{seed}:{star_id}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2.0**64
    edge = 0.0
    for name, fraction in SPLIT_FRACTIONS:
        edge += fraction
        if u < edge:
            return name
    return "test"


def write_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write an ``.npz`` (readable by :func:`numpy.load`) atomically and reproducibly.

    ``numpy.savez`` stamps every zip entry with the current time, so two runs would give
    different bytes; this writes the same uncompressed entries with a fixed date.
    """
    with atomic_write(path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:
        for key, value in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_DATE)
            with archive.open(info, "w", force_zip64=True) as handle:
                np.lib.format.write_array(handle, np.asanyarray(value), allow_pickle=False)


def _write_tables(tables: Mapping[Path, pd.DataFrame]) -> None:
    """Write CSV/Parquet tables all or none: every temporary file, then every rename."""
    with ExitStack() as stack:  # a failure leaves every table as it was
        for path, table in tables.items():
            tmp = stack.enter_context(atomic_write(path))
            if path.suffix == ".parquet":
                table.to_parquet(tmp, index=False)
            else:
                table.to_csv(tmp, index=False)


def metadata_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Metadata rows as a table with fixed columns and types."""
    table = pd.DataFrame(list(rows), columns=list(METADATA_COLUMNS))
    for column in _FLOAT_COLUMNS:
        table[column] = pd.to_numeric(table[column], errors="coerce").astype(float)
    for column in _INT_COLUMNS:
        table[column] = table[column].astype(np.int64)
    return table


def _read_rows(path: Path, columns: tuple[str, ...]) -> list[dict]:
    if not path.is_file():
        return []
    # Strings stay strings (no "NA" guessing) and floats read back exactly, so a table
    # written, read and written again is byte-identical.
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    rows = []
    for record in table.to_dict("records"):
        for column in _FLOAT_COLUMNS:
            if column in record:
                record[column] = float(record[column]) if record[column] != "" else None
        for column in _INT_COLUMNS:
            if column in record:
                record[column] = int(record[column])
        rows.append({c: record.get(c) for c in columns})
    return rows


@dataclass
class StarRecord:
    """What one star produced: its sample rows and the failures met on the way."""

    index: int
    rows: list[dict] = field(default_factory=list)
    failures: list[dict] = field(default_factory=list)


class Ledger:
    """The record of finished stars of one dataset folder.

    Parameters
    ----------
    folder : Path
        The dataset folder.
    prefix : str
        Sample-id prefix of this dataset ("pos", "neg", "syn"): only ``<prefix>-*.npz``
        files are ever removed.
    """

    def __init__(self, folder: Path, prefix: str) -> None:
        self.folder = folder
        self.prefix = prefix
        self.metadata_csv = folder / "metadata.csv"
        self.metadata_parquet = folder / "metadata.parquet"
        self.failures_csv = folder / "failures.csv"
        self.journal = folder / "journal.jsonl"
        self.settings = folder / "build.json"
        self._lock = FileLock(folder / "build.lock", timeout=0)
        self._records: dict[int, StarRecord] = {}
        self._failed: dict[int, StarRecord] = {}
        self._handle = None
        self._synced = time.monotonic()

    def sample_path(self, sample_id: str) -> Path:
        return self.folder / f"{sample_id}.npz"

    def open(self, settings: Mapping[str, Any], star_ids: Sequence[str]) -> dict[int, StarRecord]:
        """Start (or resume) a build with these settings.

        Removes stray temporary files, refuses a folder built with other settings, and
        returns the finished stars (by index) whose sample files are all present.

        Parameters
        ----------
        settings : mapping
            What the samples depend on (stored in ``build.json``).
        star_ids : sequence of str
            The star of each index in this build. A record of another star at an index
            (the star list changed: another catalogue or folder) does not count.

        Raises
        ------
        DatasetError
            The folder holds samples made with different settings, another build is
            writing to it, or a file stands where it (or a folder above it) should be.
        """
        blocking = next((p for p in (self.folder, *self.folder.parents) if p.exists() and not p.is_dir()), None)
        if blocking is not None:
            raise DatasetError(f"{blocking}: a file, where the dataset folder {self.folder} should be")
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire()
        except Timeout:
            raise DatasetError(
                f"{self.folder}: another build is writing to this folder; wait for it or use another output_root"
            ) from None
        for stray in self.folder.glob("*.tmp*"):
            stray.unlink()
        self._check_settings(dict(settings))
        records: dict[int, StarRecord] = {}
        for row in _read_rows(self.metadata_csv, METADATA_COLUMNS):
            records.setdefault(row["star_index"], StarRecord(row["star_index"])).rows.append(row)
        for failure in _read_rows(self.failures_csv, FAILURE_COLUMNS):
            if failure["star_index"] in records:
                records[failure["star_index"]].failures.append(failure)
        for record in self._journal_records():
            records[record.index] = record
        self._records = {
            i: r for i, r in records.items()
            if i < len(star_ids) and r.rows and r.rows[0]["star_id"] == star_ids[i]
            and all(self.sample_path(row["sample_id"]).is_file() for row in r.rows)
        }
        self._handle = self.journal.open("a", encoding="utf-8")
        return dict(self._records)

    def _check_settings(self, settings: dict[str, Any]) -> None:
        if self.settings.is_file():
            previous = json.loads(self.settings.read_text())
            changed = sorted(k for k in settings.keys() | previous.keys() if settings.get(k) != previous.get(k))
            if changed:
                key = changed[0]
                raise DatasetError(
                    f"{self.folder}: built with {key}={previous.get(key)!r}, now {settings.get(key)!r}; "
                    "use another output_root or delete the folder"
                )
            return
        atomic_write_text(self.settings, json.dumps(settings, indent=1, sort_keys=True))

    def _journal_records(self) -> list[StarRecord]:
        if not self.journal.is_file():
            return []
        records = []
        for line in self.journal.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue  # the last line of a killed build may be cut short
            records.append(StarRecord(entry["index"], entry["rows"], entry["failures"]))
        return records

    def append(self, record: StarRecord) -> None:
        """Journal a finished star (its sample files must already be in place)."""
        self._handle.write(json.dumps({"index": record.index, "rows": record.rows,
                                       "failures": record.failures}) + "\n")
        # Flushing hands the line to the OS, which is all a killed process needs. fsync,
        # against an OS crash, is grouped: a lost line only means a star made again.
        self._handle.flush()
        if time.monotonic() - self._synced > FSYNC_INTERVAL_S:
            os.fsync(self._handle.fileno())
            self._synced = time.monotonic()
        if record.rows:
            self._records[record.index] = record
        else:
            self._failed[record.index] = record

    def close(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Compact the ledger into the tables; rows and files of stars that are not part
        of this build are dropped, stars that gave no sample go to ``failures.csv`` only.

        Returns
        -------
        tuple of DataFrame
            The metadata and failure tables as written.
        """
        os.fsync(self._handle.fileno())
        self._handle.close()
        kept = [self._records[i] for i in sorted(self._records)]
        failed = [r for i, r in self._failed.items() if i not in self._records]
        table = metadata_frame(row for record in kept for row in record.rows)
        failure_rows = [f for record in sorted(kept + failed, key=lambda r: r.index) for f in record.failures]
        failure_table = pd.DataFrame(failure_rows, columns=list(FAILURE_COLUMNS))
        _write_tables({self.metadata_csv: table, self.metadata_parquet: table, self.failures_csv: failure_table})
        claimed = {f"{sample_id}.npz" for sample_id in table["sample_id"]}
        for path in self.folder.glob(f"{self.prefix}-*.npz"):
            if path.name not in claimed:
                path.unlink()
        self.journal.unlink(missing_ok=True)
        return table, failure_table

    def release(self) -> None:
        """End the build, finished or not: close the journal, remove this build's
        temporary files if it failed, and release the folder's lock."""
        if not self._lock.is_locked:
            return
        if self._handle is not None and not self._handle.closed:
            try:
                self._handle.close()
            except OSError:
                pass  # a full disk fails the flush; the journal's last line may be cut, which open() allows
        for stray in self.folder.glob("*.tmp*"):
            stray.unlink(missing_ok=True)
        self._lock.release()
