"""Dataset folders packed into Parquet shards, for training at scale.

Place in the flow (learning side): simulate, instruments, catalog (http) -> inject -> **datasets**
(folders, then shards), curves -> train -> vetting -> evaluate; presets, demo.

The dataset folders keep one ``.npz`` per sample: that is what lets a build resume
sample by sample, but a million samples are a million small files, and a shared
filesystem pays for every one of them. :func:`pack_dataset` copies the folders into a
store of a few hundred samples per file, and :func:`exoperiod.learning.train.load_split`
reads such a store as it reads the folders.

Why Parquet rather than WebDataset tars: Parquet stores each column apart, so training
reads only what it uses, ~4 KB of fold features, the period labels and the planets of a
sample, and never its flux (up to 260 KB for a whole light curve); a tar streams whole
samples, every byte of them, which suits pipelines that decode every image of every
epoch. A shard is also a table that pandas, polars, duckdb and HF datasets read as it is.

Layout of a store:

- ``store.json``: format and version, the period and duration grids and the features key
  (:func:`~exoperiod.search.model.features_key`) the store was packed for, the rows per
  shard, the source folder, and per split the number of shards and of samples of each kind;
- ``<split>/part-NNNNN.parquet``: the samples of one split, one row each, in the order
  of :func:`~exoperiod.learning.datasets.store.read_split` (kind by kind, each in its
  table's order); shard k holds the samples k * rows_per_shard to (k + 1) * rows_per_shard - 1.

Columns: ``sample_id``, ``kind``, ``split``, ``star_id`` (strings); ``flux`` (the
``.npz``'s ``arr_0``: list<float32>, any length) and ``mask`` (list<bool>); ``arr_1``
(period weights) and ``arr_2`` (duration weights, null for samples without them) as
fixed-size lists of float32; ``features`` (the fold features, (features, bins) flattened
row by row, fixed-size list of float32); ``planets`` (the JSON of the metadata);
``noise_ppm`` and ``window_start_days``; ``start_time_days`` and ``cadence_days`` (whole
light curves' time axis, null for fixed windows). The grids and features key are also in
each shard's schema metadata (``exoperiod.store``).

Integrity follows the folders' rules: every shard is written under a temporary name and
renamed, so a shard with its final name is complete; which samples a shard holds
depends only on the folders and the rows per shard, so a re-run keeps every shard that
holds exactly the samples it would write, with the same header, and writes the others:
a killed pack resumes and ends with the same bytes. ``store.json`` is removed when a
pack starts and written when it ends, so a store without it is unfinished and is not
read. A pack holds ``pack.lock`` while it writes. It has one shard of samples in memory
at a time, beside the metadata rows of one split.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from filelock import FileLock, Timeout

from ...config import Config
from ...files import atomic_write, atomic_write_text
from ...grid import period_weights
from ...search.model import FEATURE_NAMES, PeriodModel, features_key
from .store import (
    KINDS,
    SPLIT_FRACTIONS,
    DatasetError,
    SplitSample,
    read_split,
    sample_features,
)

STORE_FILE = "store.json"
STORE_FORMAT = "exoperiod-shards"
STORE_VERSION = 1
#: Samples per shard. Whole light curves average ~90 KB (default set), the longest 260 KB:
#: ~25 MB a shard, 65 MB at most in memory, and a million samples are 4,000 files.
ROWS_PER_SHARD = 256
SPLITS = (*(name for name, _ in SPLIT_FRACTIONS), "test")
#: What training reads of a shard: never the flux.
TRAINING_COLUMNS = ["sample_id", "kind", "features", "arr_1", "planets", "noise_ppm", "window_start_days"]
_SHARD_NAME = re.compile(r"part-(\d{5})\.parquet")
_METADATA_KEY = b"exoperiod.store"


@dataclass(frozen=True)
class PackSummary:
    """What :func:`pack_dataset` did.

    Attributes
    ----------
    store : Path
        The store's ``store.json``.
    samples : dict
        Samples per split.
    shards : int
        Shards of the store.
    written : int
        Shards this run wrote; the others were complete from an earlier run.
    """

    store: Path
    samples: dict[str, int]
    shards: int
    written: int


def _header(config: Config) -> dict:
    """What a store's features and labels depend on: a store packed for another header
    cannot be read with this config."""
    return {"format": STORE_FORMAT, "version": STORE_VERSION, "grid": config.grid().to_dict(),
            "duration_grid": config.duration_grid().to_dict(), "features_key": features_key(config)}


def _schema(config: Config) -> pa.Schema:
    bins = config.grid().bins
    return pa.schema(
        [("sample_id", pa.string()), ("kind", pa.string()), ("split", pa.string()), ("star_id", pa.string()),
         ("flux", pa.list_(pa.float32())), ("mask", pa.list_(pa.bool_())),
         ("arr_1", pa.list_(pa.float32(), bins)), ("arr_2", pa.list_(pa.float32(), config.duration_grid().bins)),
         ("features", pa.list_(pa.float32(), len(FEATURE_NAMES) * bins)),
         ("planets", pa.string()), ("noise_ppm", pa.float64()), ("window_start_days", pa.float64()),
         ("start_time_days", pa.float64()), ("cadence_days", pa.float64())],
        metadata={_METADATA_KEY: json.dumps(_header(config), sort_keys=True)})


def _shard_path(out: Path, split: str, index: int) -> Path:
    return out / split / f"part-{index:05d}.parquet"


def _read_shard(path: Path, columns: list[str]) -> pa.Table:
    """The columns of one shard; a missing or unreadable one is a one-line DatasetError."""
    if not path.is_file():
        raise DatasetError(f"{path}: a shard listed in {STORE_FILE} is missing; pack the dataset again")
    try:
        return pq.read_table(path, columns=columns)
    except (pa.ArrowException, OSError) as err:
        cause = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise DatasetError(f"{path}: not a readable shard ({cause}); pack the dataset again") from None


def _holds(path: Path, samples: list[SplitSample], schema: pa.Schema) -> bool:
    """Whether ``path`` is a shard of exactly ``samples``, packed with ``schema`` (and so
    the same grids and features key)."""
    if not path.is_file():
        return False
    try:
        packed = pq.read_schema(path)
        ids = pq.read_table(path, columns=["sample_id"]).column(0).to_pylist()
    except (pa.ArrowException, OSError):
        return False
    # Field metadata differ (Parquet adds field ids); the header is the schema's own.
    return packed.equals(schema) and packed.metadata == schema.metadata and ids == [s.sample_id for s in samples]


def _duration_labels(arrays: dict, sample: SplitSample, config: Config) -> np.ndarray | None:
    # From the planets, on the store's grid: a sample written before the default grid
    # changed (log to linear, 2026-11-26) holds arr_2 on the grid of its day.
    if "arr_2" not in arrays:
        return None
    durations = [p["duration_hours"] for p in sample.planets if p.get("duration_hours")]
    return period_weights(config.duration_grid(), durations).weights


def _row(sample: SplitSample, split: str, config: Config, key: str) -> dict:
    """One sample as a row; ``features`` is None when its file carries none for ``key``."""
    with np.load(sample.path, allow_pickle=False) as z:
        arrays = {name: z[name] for name in z.files}
    bins, duration_bins = config.grid().bins, config.duration_grid().bins
    if arrays["arr_1"].shape != (bins,):
        raise DatasetError(f"{sample.path}: {arrays['arr_1'].size} period bins, the config has {bins}")
    if "arr_2" in arrays and arrays["arr_2"].shape != (duration_bins,):
        raise DatasetError(f"{sample.path}: {arrays['arr_2'].size} duration bins, the config has {duration_bins}")
    own = "features" in arrays and str(arrays["features_key"]) == key

    def scalar(name: str, cast: type):
        return cast(arrays[name]) if name in arrays else None

    return {"sample_id": sample.sample_id, "kind": sample.kind, "split": split, "star_id": scalar("star_id", str),
            "flux": arrays["arr_0"].astype(np.float32), "mask": arrays["mask"].astype(bool),
            "arr_1": arrays["arr_1"].astype(np.float32), "arr_2": _duration_labels(arrays, sample, config),
            "features": arrays["features"].astype(np.float32).ravel() if own else None,
            "planets": json.dumps(sample.planets), "noise_ppm": sample.noise_ppm,
            "window_start_days": sample.window_start_days, "start_time_days": scalar("start_time_days", float),
            "cadence_days": scalar("cadence_days", float)}


def _write_shard(path: Path, samples: list[SplitSample], split: str, config: Config, model: PeriodModel) -> None:
    key = features_key(config)
    rows = [_row(s, split, config, key) for s in samples]
    # Samples without their own features (the fixed windows) take them from their
    # folder's cache, or are searched now: the same numbers training on the folders uses.
    lacking = [i for i, row in enumerate(rows) if row["features"] is None]
    for folder, group in itertools.groupby(lacking, key=lambda i: samples[i].path.parent):
        group = list(group)
        found = sample_features(folder, [samples[i].sample_id for i in group], model, write_cache=False)
        for i, features in zip(group, found):
            rows[i]["features"] = features.astype(np.float32).ravel()
    table = pa.Table.from_pylist(rows, schema=_schema(config))
    with atomic_write(path) as tmp:
        # Flux and features are noise-like floats: dictionary encoding only costs time and
        # space on them. zstd makes a shard of whole light curves ~13 % smaller than
        # snappy and reads as fast (measured on the default training set).
        pq.write_table(table, tmp, row_group_size=len(rows), compression="zstd",
                       use_dictionary=["kind", "split", "star_id"])


def pack_dataset(root: str | Path, config: Config, out: str | Path, rows_per_shard: int = ROWS_PER_SHARD,
                 progress: Callable[[str, int, int], None] | None = None) -> PackSummary:
    """Pack the dataset folders under ``root`` into a store of Parquet shards at ``out``.

    Resumable: a re-run keeps the complete shards and writes the rest (see the module
    docstring); the folders are only read.

    Parameters
    ----------
    root : path
        Folder holding the dataset folders (``config.positive`` ... ``config.curves``).
    config : Config
        The datasets' config: folder names, grids, and the features key the store is for.
    out : path
        The store's folder.
    rows_per_shard : int
        Samples per shard.
    progress : callable, optional
        ``progress("pack <split>", samples done, samples)`` after each shard.

    Returns
    -------
    PackSummary

    Raises
    ------
    DatasetError
        No dataset folder under ``root``, a sample of other grids than the config's,
        ``out`` is ``root``, or another pack is writing to ``out``.
    """
    root, out = Path(root), Path(out)
    if rows_per_shard < 1:
        raise DatasetError(f"rows_per_shard must be at least 1, not {rows_per_shard}")
    if out.resolve() == root.resolve():
        raise DatasetError(f"{out}: the store cannot be the dataset folder it packs; choose another folder")
    if not any((root / getattr(config, kind) / "metadata.parquet").is_file() for kind in KINDS):
        raise DatasetError(f"{root}: no dataset folder with a metadata.parquet ({', '.join(KINDS)}) to pack")
    schema, model = _schema(config), PeriodModel(config)
    out.mkdir(parents=True, exist_ok=True)
    lock = FileLock(out / "pack.lock", timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise DatasetError(f"{out}: another pack is writing to this store; wait for it or choose another folder") from None
    try:
        (out / STORE_FILE).unlink(missing_ok=True)
        splits, written = {}, 0
        for split in SPLITS:
            for stray in (out / split).glob(".part-*.tmp*"):
                stray.unlink()
            samples = read_split(root, config, split)
            chunks = [samples[i:i + rows_per_shard] for i in range(0, len(samples), rows_per_shard)]
            for index, chunk in enumerate(chunks):
                path = _shard_path(out, split, index)
                if not _holds(path, chunk, schema):
                    _write_shard(path, chunk, split, config, model)
                    written += 1
                if progress:
                    progress(f"pack {split}", min((index + 1) * rows_per_shard, len(samples)), len(samples))
            for stale in (out / split).glob("part-*.parquet"):
                match = _SHARD_NAME.fullmatch(stale.name)
                if match is None or int(match.group(1)) >= len(chunks):
                    stale.unlink()
            kinds = [s.kind for s in samples]
            splits[split] = {"shards": len(chunks), "samples": len(samples),
                             "kinds": {k: kinds.count(k) for k in dict.fromkeys(kinds)}}
        store = {**_header(config), "rows_per_shard": rows_per_shard, "source": str(root.resolve()),
                 "splits": splits}
        atomic_write_text(out / STORE_FILE, json.dumps(store, indent=1, sort_keys=True) + "\n")
    finally:
        lock.release()
    return PackSummary(out / STORE_FILE, {k: v["samples"] for k, v in splits.items()},
                       sum(v["shards"] for v in splits.values()), written)


def is_store(root: Path) -> bool:
    """Whether ``root`` is a finished store of shards (it holds ``store.json``).

    Raises
    ------
    DatasetError
        ``root`` holds shards but no ``store.json``: an unfinished pack, not an empty dataset.
    """
    if (root / STORE_FILE).is_file():
        return True
    if any(next((root / split).glob("part-*.parquet"), None) for split in SPLITS):
        raise DatasetError(f"{root}: shards without {STORE_FILE}, an unfinished pack; run pack-dataset again")
    return False


def read_store(root: Path, config: Config) -> dict:
    """``root/store.json``, checked against ``config``.

    Raises
    ------
    DatasetError
        Not a store of this format, or packed for other grids or another features key
        (features that this config's model would not compute).
    """
    path = root / STORE_FILE
    try:
        store = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DatasetError(f"{path}: not JSON ({err}); pack the dataset again") from None
    expected = _header(config)
    for key in ("format", "version", "grid", "duration_grid", "features_key"):
        if not isinstance(store, dict) or store.get(key) != expected[key]:
            found = store.get(key) if isinstance(store, dict) else None
            raise DatasetError(f"{path}: packed with {key} {json.dumps(found, sort_keys=True)}, the config "
                               f"gives {json.dumps(expected[key], sort_keys=True)}; pack the dataset again with "
                               "this config")
    return store


def _flat(column: pa.ChunkedArray, n: int) -> np.ndarray:
    """A fixed-size list column as an (n, size) array."""
    return column.combine_chunks().flatten().to_numpy(zero_copy_only=False).reshape(n, -1)


def read_packed_split(root: Path, config: Config, split: str) -> tuple[list[SplitSample], list[np.ndarray], list[np.ndarray]]:
    """Every sample of ``split`` in the store at ``root``, reading only
    :data:`TRAINING_COLUMNS` of each shard.

    Returns
    -------
    samples : list of SplitSample
        In the folders' order; ``path`` is the sample's shard.
    features : list of ndarray
        (samples, features, bins) float32, one array per shard.
    labels : list of ndarray
        (samples, bins) float32 period weights, one array per shard.
    """
    store = read_store(root, config)
    expected = store["splits"].get(split, {"shards": 0, "samples": 0})
    samples, features, labels = [], [], []
    for index in range(expected["shards"]):
        path = _shard_path(root, split, index)
        table = _read_shard(path, TRAINING_COLUMNS)
        n = table.num_rows
        features.append(_flat(table["features"], n).reshape(n, len(FEATURE_NAMES), -1))
        labels.append(_flat(table["arr_1"], n))
        for sample_id, kind, planets, noise, start in zip(
                *(table[c].to_pylist() for c in ("sample_id", "kind", "planets", "noise_ppm", "window_start_days"))):
            samples.append(SplitSample(kind, sample_id, path, json.loads(planets), noise, start))
    if len(samples) != expected["samples"]:
        raise DatasetError(f"{root / STORE_FILE}: {expected['samples']} {split} samples listed, "
                           f"{len(samples)} in the shards; pack the dataset again")
    return samples, features, labels


def read_series(samples: Iterable[SplitSample]) -> Iterator[tuple[np.ndarray, np.ndarray, float | None]]:
    """The series of each sample, from its ``.npz`` or its shard: the flux (unit noise),
    the valid-cell mask and the time of the first cell in days (None for fixed windows,
    whose start is their metadata's ``window_start_days``).

    One shard's series are held at a time, so samples in split order read each shard once.
    """
    shard, table, rows = None, None, {}
    for sample in samples:
        if sample.path.suffix == ".npz":
            with np.load(sample.path, allow_pickle=False) as z:
                start = float(z["start_time_days"]) if "start_time_days" in z.files else None
                flux, mask = z["arr_0"], z["mask"].astype(bool)
            yield flux, mask, start
            continue
        if sample.path != shard:
            table = _read_shard(sample.path, ["sample_id", "flux", "mask", "start_time_days"])
            shard, rows = sample.path, {sample_id: i for i, sample_id in enumerate(table["sample_id"].to_pylist())}
        i = rows[sample.sample_id]
        yield (table["flux"][i].values.to_numpy(zero_copy_only=False),
               table["mask"][i].values.to_numpy(zero_copy_only=False), table["start_time_days"][i].as_py())
