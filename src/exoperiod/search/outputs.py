"""Batch results that survive a crash: a JSON Lines journal, a Parquet dataset, the JSON list.

Place in the flow (search side): readers -> inputs -> preprocess -> fold -> model -> refine
(ephemeris, offgrid) -> vetting -> predict -> views, plots, results -> **outputs**, batch.

Every result is appended to a JSON Lines file (flushed and fsynced) the moment it
arrives, so a killed run loses only the work in flight. The Parquet dataset turns the
journal into part files (each written to a hidden temporary file, then renamed) every
``rows_per_part`` rows; the JSON output is assembled from its journal at the end. Both
know which inputs they already hold, so re-running the same command resumes.

The Parquet dataset (one row per light curve)
---------------------------------------------
==================== ================================================ =========================
column               type                                             meaning
==================== ================================================ =========================
index                int64                                            position of the input in
                                                                      the run that predicted it
input                string                                           the path
target               string                                           "KIC 9002278", ... or null
mission              string                                           "Kepler", "K2", "TESS"
periods_days         list<float64>                                    refined periods, best first
candidates           list<struct>                                     the JSON candidates (same
                                                                      keys and units)
bin_probabilities    fixed_size_list<float64>[bins]                   per-bin probabilities; null
                                                                      for a failed input
error                string                                           one line, or null
notes                list<string>                                     caveats in words
timing_seconds       struct<read_preprocess, model, refine, report,   CPU seconds per stage and
                     wall: float64>                                   wall seconds
==================== ================================================ =========================

The bin centres (days) are the same for every row: they are in the schema metadata
under ``exoperiod.bin_centers_days`` (JSON list).
"""

from __future__ import annotations

import json
import os
import textwrap
import time
from array import array
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from ..errors import ExoperiodError
from ..files import atomic_write

#: Rows buffered before a Parquet part is written (and the journal emptied).
ROWS_PER_PART = 1000
JOURNAL_NAME = "_journal.jsonl"
BIN_CENTERS_KEY = b"exoperiod.bin_centers_days"

_F64 = pa.float64()
CANDIDATE_TYPE = pa.struct([
    ("period_days", _F64), ("probability", _F64), ("t0_btjd_or_bkjd", _F64), ("duration_hours", _F64),
    ("depth_ppm", _F64), ("snr", _F64), ("odd_even_depth_ratio", _F64), ("bin_index", pa.int32()),
    ("search_pass", pa.int32()), ("note", pa.string()), ("better_period_days", _F64),
    ("period_err_days", _F64), ("t0_err_days", _F64), ("duration_err_hours", _F64), ("depth_err_ppm", _F64),
    ("outside_grid", pa.bool_()), ("transit_times_btjd_or_bkjd", pa.list_(_F64)), ("sde", _F64),
    ("scorer_probability", _F64),
])
TIMING_TYPE = pa.struct([(stage, _F64) for stage in ("read_preprocess", "model", "refine", "report", "wall")])


class OutputError(ExoperiodError):
    """An output cannot be written: one line naming the path and the cause."""


def output_error(path: Path, err: OSError) -> OutputError:
    """The one-line error of a failed write to ``path``."""
    cause = err.strerror or " ".join(str(err).split()) or type(err).__name__
    return OutputError(f"{path}: cannot write ({cause})")


def parquet_schema(bin_centers_days: np.ndarray) -> pa.Schema:
    """The schema of the results dataset of a model with these bin centres."""
    return pa.schema([
        ("index", pa.int64()), ("input", pa.string()), ("target", pa.string()), ("mission", pa.string()),
        ("periods_days", pa.list_(_F64)), ("candidates", pa.list_(CANDIDATE_TYPE)),
        ("bin_probabilities", pa.list_(_F64, len(bin_centers_days))), ("error", pa.string()),
        ("notes", pa.list_(pa.string())), ("timing_seconds", TIMING_TYPE),
        ("duration_bin_probabilities", pa.list_(_F64)),
    ], metadata={BIN_CENTERS_KEY: json.dumps([float(c) for c in bin_centers_days]).encode()})


class JsonLines:
    """An append-only JSON Lines file whose every line is on disk once appended.

    A run killed while writing leaves at most one torn last line: reading skips it and
    :meth:`open` cuts it off before appending.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = None
        self._valid_bytes = 0

    def rows(self) -> Iterator[dict]:
        """The complete rows written so far."""
        self._valid_bytes = 0
        if not self.path.is_file():
            return
        with self.path.open("rb") as lines:
            for line in lines:
                if not line.endswith(b"\n"):
                    break
                self._valid_bytes += len(line)
                yield json.loads(line)

    def open(self) -> None:
        """Open for appending, cutting a torn last line off first."""
        for _ in self.rows():
            pass
        try:
            if self.path.is_file():
                os.truncate(self.path, self._valid_bytes)
            self._file = self.path.open("ab")
        except OSError as err:
            raise output_error(self.path, err) from None

    def append(self, row: dict) -> None:
        try:
            self._file.write(json.dumps(row, allow_nan=False).encode() + b"\n")
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as err:
            raise output_error(self.path, err) from None

    def clear(self) -> None:
        """Empty the file (its rows are safe elsewhere)."""
        try:
            self._file.truncate(0)
            os.fsync(self._file.fileno())
        except OSError as err:
            raise output_error(self.path, err) from None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class ParquetResults:
    """The results dataset: a folder of Parquet parts plus a journal of the newest rows.

    Parameters
    ----------
    folder : path
        The dataset folder (created; an existing one is resumed).
    bin_centers_days : ndarray
        The model's bin centres: fixes the length of ``bin_probabilities``.
    rows_per_part : int
        Rows per part file, which bounds the memory of the buffer.
    """

    def __init__(self, folder: str | os.PathLike, bin_centers_days: np.ndarray,
                 rows_per_part: int = ROWS_PER_PART) -> None:
        self.folder = Path(folder)
        self.schema = parquet_schema(bin_centers_days)
        self.rows_per_part = rows_per_part
        self._journal = JsonLines(self.folder / JOURNAL_NAME)
        self._buffer: list[dict] = []
        self._run = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
        self._parts = 0
        if self.folder.exists() and not self.folder.is_dir():
            raise OutputError(f"{self.folder}: exists and is not a folder (a Parquet dataset is a folder of parts)")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            for stale in self.folder.glob(".part-*.tmp*"):  # a part being written when a run was killed
                stale.unlink()
        except OSError as err:
            raise output_error(self.folder, err) from None
        self.done = self._inputs_in_parts()
        recovered = [row for row in self._journal.rows() if row["input"] not in self.done]
        self._journal.open()
        if recovered:
            self._write_part(recovered)
        self._journal.clear()
        self.done.update(row["input"] for row in recovered)

    def _inputs_in_parts(self) -> set[str]:
        try:
            dataset = ds.dataset(self.folder, format="parquet")
        except (OSError, pa.ArrowInvalid) as err:
            raise OutputError(f"{self.folder}: not a readable Parquet dataset ({' '.join(str(err).split())})") from None
        if not dataset.files:
            return set()
        if dataset.schema.metadata != self.schema.metadata:
            raise OutputError(f"{self.folder}: holds results of a model with other period bins; "
                              "write to another --out")
        return set(dataset.to_table(columns=["input"]).column("input").to_pylist())

    def seen(self, index: int, path: str) -> None:
        """Nothing to note: the dataset keeps the results of every run."""

    def add(self, row: dict) -> None:
        """Keep one result (a :meth:`Prediction.to_dict` with ``index``) unless its input is done."""
        if row["input"] in self.done:
            return
        self._journal.append(row)
        self._buffer.append(row)
        self.done.add(row["input"])
        if len(self._buffer) >= self.rows_per_part:
            self.flush()

    def flush(self) -> None:
        """Write the buffered rows as a part and empty the journal."""
        if self._buffer:
            self._write_part(self._buffer)
            self._journal.clear()
            self._buffer = []

    def finish(self) -> None:
        """Write the last part: the run is complete."""
        self.flush()

    def close(self) -> None:
        """Release the journal (its rows are recovered by the next run if not flushed)."""
        self._journal.close()

    def _write_part(self, rows: list[dict]) -> None:
        self._parts += 1
        name = f"part-{self._run}-{self._parts:05d}.parquet"
        final = self.folder / name
        table = pa.Table.from_pylist([_arrow_row(row) for row in rows], schema=self.schema)
        try:
            with atomic_write(final, fsync=True) as tmp:
                pq.write_table(table, tmp)
        except OSError as err:
            raise output_error(final, err) from None


def _arrow_row(row: dict) -> dict:
    return {"index": row["index"], "input": row["input"], "target": row["target"], "mission": row["mission"],
            "periods_days": row["periods"], "candidates": row["candidates"],
            "bin_probabilities": row["bin_probabilities"] or None, "error": row["error"], "notes": row["notes"],
            "timing_seconds": row["timing_seconds"], "duration_bin_probabilities": row["duration_bin_probabilities"]}


def read_results(folder: str | os.PathLike) -> pd.DataFrame:
    """The results dataset as a pandas DataFrame sorted by ``index``."""
    return ds.dataset(folder, format="parquet").to_table().to_pandas().sort_values("index", ignore_index=True)


class JsonResults:
    """The ``--json`` output: the JSON list, assembled from a journal ``<name>.jsonl``.

    The journal (a sidecar that stays) gets each result as it arrives; at the end the
    JSON is written from it: the :meth:`Prediction.to_dict` objects of this run's inputs
    in input order, as :func:`exoperiod.search.predict.write_json` writes them. Re-running a
    command (killed or not) predicts only the inputs the journal lacks.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise OutputError(f"{self.path}: is a folder; --json names the JSON file to write")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise output_error(self.path.parent, err) from None
        self._journal = JsonLines(self.path.with_name(self.path.name + ".jsonl"))
        self.done = {row["input"] for row in self._journal.rows()}
        self._journal.open()
        self._positions: dict[str, int] = {}

    def seen(self, index: int, path: str) -> None:
        """Input ``index`` of this run is ``path`` (done before or not): it goes in the JSON there."""
        self._positions[path] = index

    def add(self, row: dict) -> None:
        if row["input"] not in self.done:
            self._journal.append(row)
            self.done.add(row["input"])

    def close(self) -> None:
        """Release the journal."""
        self._journal.close()

    def finish(self) -> None:
        """Write the JSON list (a temporary file, then a rename)."""
        self._journal.close()
        try:
            with atomic_write(self.path, fsync=True) as tmp, tmp.open("w", encoding="utf-8") as out:
                self._write_list(out)
        except OSError as err:
            raise output_error(self.path, err) from None

    def _write_list(self, out) -> None:
        """The journal rows of this run's inputs in input order, holding only the
        (position, byte offset) of each journal line in memory."""
        positions, offsets, offset = array("q"), array("q"), 0
        with self._journal.path.open("rb") as lines:
            for line in lines:
                position = self._positions.get(json.loads(line)["input"])
                if position is not None:
                    positions.append(position)
                    offsets.append(offset)
                offset += len(line)
            order = np.argsort(np.frombuffer(positions, dtype=np.int64), kind="stable")
            if not len(order):
                out.write("[]\n")
                return
            out.write("[\n")
            for n, i in enumerate(order):
                lines.seek(offsets[i])
                row = json.loads(lines.readline())
                del row["index"]
                text = textwrap.indent(json.dumps(row, indent=2, allow_nan=False), "  ")
                out.write(text + (",\n" if n + 1 < len(order) else "\n"))
            out.write("]\n")
