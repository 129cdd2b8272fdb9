"""Every kind of light curve an astronomer may hold, as the one kind exoperiod uses.

Place in the flow (search side): readers -> **inputs** -> preprocess -> fold -> model ->
refine (ephemeris, offgrid) -> vetting -> predict -> views, plots, results -> outputs, batch.

:func:`as_lightcurve` is called first by :func:`exoperiod.search.predict.predict` and
:meth:`exoperiod.search.model.PeriodModel.predict_proba`, so both take the same inputs:

- a path (any file :func:`~exoperiod.search.readers.read_lightcurve` reads; ``.ecsv`` and
  ``.tsv`` tables, and ``.csv`` tables with a column mapping, through astropy's
  :class:`~astropy.table.Table`);
- a :class:`lightkurve.LightCurve`, or a :class:`lightkurve.LightCurveCollection`
  (stitched: each piece divided by its median, then joined);
- an astropy :class:`~astropy.timeseries.TimeSeries` or :class:`~astropy.table.Table`;
- a :class:`pandas.DataFrame` (a named index, such as lightkurve's ``time``, counts as
  a column);
- a tuple of arrays ``(time, flux)`` or ``(time, flux, flux_err)``.

All of them end in the readers' common clean-up, so a DataFrame comes out exactly as
the same columns in a CSV file would: quality mask, flux divided by its median, time in
the mission's days.

Time systems
------------
The model needs time in days; periods and t0 are reported in the light curve's own
system, which for Kepler/K2 is BKJD (BJD - 2454833) and for TESS BTJD (BJD - 2457000).
A table's time system can be stated (:attr:`TableColumns.time_system`): ``bkjd`` and
``btjd`` are used as they are; ``bjd`` and ``jd`` are converted to the mission's days
(by the mission, or when it is unknown by the date: before BJD 2458300, the start of
TESS, BKJD). JD is taken as BJD: the barycentric correction needs the star's position,
and it is at most 8.3 minutes. Every conversion is written to
``meta["INPUT_NOTES"]``, which :func:`~exoperiod.search.predict.predict` adds to its notes.
An astropy :class:`~astropy.time.Time` column carries its own system.

Batches
-------
:func:`iter_inputs` yields the files of a batch (files, folders, globs, ``@list`` files)
lazily: an archive holds millions of light curves, so folders are walked one directory
listing at a time, a glob is matched while walking, and an ``@list.txt`` file is read line
by line. The order is stable (that of the sorted full path strings), so that two runs
over the same archive see the inputs in the same order.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal

import lightkurve as lk
import numpy as np
import pandas as pd
from astropy.table import Table
from astropy.time import Time

from .readers import (
    _TIME_NAMES as TIME_NAMES,  # the names a file's time column may have
)
from .readers import (
    READABLE_SUFFIXES,
    LightCurveReadError,
    lightcurve_from_columns,
    read_lightcurve,
)

__all__ = ["InputError", "TableColumns", "as_lightcurve"]

TimeSystem = Literal["bkjd", "btjd", "bjd", "jd"]
TIME_SYSTEMS: tuple[str, ...] = ("bkjd", "btjd", "bjd", "jd")
#: BJD of day 0 of each mission's own time system.
_BJD_OFFSET = {"bkjd": 2454833.0, "btjd": 2457000.0}
_MISSION_SYSTEM = {"Kepler": "bkjd", "K2": "bkjd", "TESS": "btjd"}
#: TESS's first sector began at BJD 2458325; Kepler and K2 data all precede it.
_FIRST_TESS_BJD = 2458300.0
#: Table files read through astropy (with the astropy format of each).
_TABLE_FORMATS = {".ecsv": "ascii.ecsv", ".tsv": "ascii.tab", ".csv": "ascii.csv"}
#: File name endings :func:`as_lightcurve` reads: the readers' and astropy's tables.
INPUT_SUFFIXES: tuple[str, ...] = (*READABLE_SUFFIXES, ".ecsv", ".tsv")


class InputError(LightCurveReadError):
    """An input that is not a light curve; the message is one line naming it."""


@dataclass(frozen=True)
class TableColumns:
    """How to read a table: which columns hold time, flux and its error, and the time system.

    Parameters
    ----------
    time, flux, flux_err : str, optional
        Column names (case-insensitive). Unset: found by the usual names (``time``,
        ``bkjd``, ``btjd``, ``bjd``; ``pdcsap_flux``, ``flux``, ...; ``flux_err``, ...).
        When ``flux`` is set, ``flux_err`` is only the column named here.
    time_system : {"bkjd", "btjd", "bjd", "jd"}, optional
        The system of the time column (see the module docstring). Unset: mission days,
        or full BJD when the values exceed 2,400,000 and the mission is known.
    """

    time: str | None = None
    flux: str | None = None
    flux_err: str | None = None
    time_system: TimeSystem | None = None

    def __post_init__(self) -> None:
        if self.time_system is not None and self.time_system not in TIME_SYSTEMS:
            raise InputError(f"time system must be one of {', '.join(TIME_SYSTEMS)}, not {self.time_system!r}")

    @property
    def given(self) -> bool:
        """Whether anything differs from reading the table as a file reader would."""
        return any(v is not None for v in (self.time, self.flux, self.flux_err, self.time_system))


def as_lightcurve(
    data: Any,
    flux_column: Literal["pdcsap", "sap"] = "pdcsap",
    columns: TableColumns | None = None,
) -> lk.LightCurve:
    """The light curve held by ``data``, normalised as :func:`~exoperiod.search.readers.read_lightcurve` does.

    Parameters
    ----------
    data : path, LightCurve, LightCurveCollection, TimeSeries, Table, DataFrame or tuple of arrays
        See the module docstring. A light curve that exoperiod's reader made is
        returned as it is.
    flux_column : {"pdcsap", "sap"}
        Flux to take where both are offered.
    columns : TableColumns, optional
        Column names and time system of a table (file, Table, DataFrame, arrays).

    Returns
    -------
    lightkurve.LightCurve

    Raises
    ------
    LightCurveReadError
        Unreadable input (:class:`InputError` for an unknown kind or a missing column);
        one line naming the input.
    """
    columns = columns or TableColumns()
    if isinstance(data, (str, os.PathLike)):
        return _from_path(Path(data), flux_column, columns)
    if isinstance(data, lk.LightCurveCollection):
        if len(data) == 0:
            raise InputError("<LightCurveCollection>: empty collection")
        data = data.stitch()
    if isinstance(data, lk.LightCurve):
        if _made_by_reader(data) and not columns.given:
            return data
        name = str(data.meta.get("FILENAME") or data.meta.get("LABEL") or "<LightCurve>")
        # Its own flux, not the file's other flux columns (it may be flattened, binned, ...).
        kept = [c for c in ("time", "flux", "flux_err", "quality") if c in data.colnames]
        return _from_table(Table(data)[kept], name, flux_column, columns, dict(data.meta))
    if isinstance(data, Table):  # also TimeSeries
        return _from_table(data, f"<{type(data).__name__}>", flux_column, columns, dict(data.meta))
    if isinstance(data, pd.DataFrame):
        frame = data.reset_index() if data.index.name is not None else data
        return _from_table(Table.from_pandas(frame), "<DataFrame>", flux_column, columns, dict(frame.attrs))
    if isinstance(data, (tuple, list)) and len(data) in (2, 3):
        names = ("time", "flux", "flux_err")[: len(data)]
        return _from_table(Table(dict(zip(names, data))), "<arrays>", flux_column, columns, {})
    raise InputError(
        f"<{type(data).__name__}>: not a light curve (expected a path, lightkurve LightCurve or "
        "LightCurveCollection, astropy TimeSeries or Table, pandas DataFrame, or (time, flux[, flux_err]) arrays)"
    )


def _made_by_reader(lc: lk.LightCurve) -> bool:
    return all(key in lc.meta for key in ("FLUX_ORIGIN", "QUALITY_BITMASK", "FLUX_STANDARDIZED"))


def _from_path(path: Path, flux_column: str, columns: TableColumns) -> lk.LightCurve:
    suffix = path.suffix.lower()
    if suffix in (".ecsv", ".tsv") or (suffix == ".csv" and columns.given):
        if not path.is_file():
            raise InputError(f"{path}: file not found")
        try:
            table = Table.read(path, format=_TABLE_FORMATS[suffix])
        except Exception as exc:  # noqa: BLE001 - astropy's ascii readers fail in many ways
            raise InputError(f"{path}: not a readable {suffix[1:].upper()} table ({' '.join(str(exc).split())[:200]})") from None
        return _from_table(table, str(path), flux_column, columns, dict(table.meta))
    if columns.given:
        raise InputError(f"{path}: column names and time systems apply to .csv, .tsv and .ecsv tables only")
    return read_lightcurve(path, flux_column)


def _from_table(table: Table, name: str, flux_column: str, columns: TableColumns, meta: dict) -> lk.LightCurve:
    found = {str(key).strip().lower(): table[key] for key in table.colnames}
    if columns.flux is not None:
        # Only the named flux (and error): another flux column must not be picked instead.
        wanted = {"time": columns.time or _first(found, TIME_NAMES),
                  "flux": columns.flux, "flux_err": columns.flux_err, "quality": "quality"}
        chosen = {role: _column(found, col, name) for role, col in wanted.items()
                  if col is not None and (role != "quality" or col in found)}
    else:
        chosen = dict(found)
        for role, col in (("time", columns.time), ("flux_err", columns.flux_err)):
            if col is not None:
                chosen[role] = _column(found, col, name)
    meta = {str(key).upper(): value for key, value in meta.items() if np.ndim(value) == 0}
    notes: list[str] = []
    time_key = _first(chosen, TIME_NAMES)
    if time_key is not None:
        chosen[time_key], note = _mission_days(chosen[time_key], columns.time_system, meta)
        notes += [note] if note else []
    lc = lightcurve_from_columns({key: _values(col) for key, col in chosen.items()}, name, flux_column, meta)
    lc.meta["INPUT_NOTES"] = notes
    return lc


def _first(found: dict, names: tuple[str, ...]) -> str | None:
    return next((n for n in names if n in found), None)


def _column(found: dict, col: str, name: str):
    key = col.strip().lower()
    if key not in found:
        raise InputError(f"{name}: no column {col!r} (found {sorted(found)})")
    return found[key]


def _values(col: Any) -> np.ndarray:
    """Plain float values of a column: masked cells become NaN, units are dropped."""
    if isinstance(col, Time):
        return np.asarray(col.value, dtype=float)
    if np.ma.isMaskedArray(col) or hasattr(col, "mask"):
        col = np.ma.filled(np.ma.asarray(getattr(col, "value", col), dtype=float), np.nan)
    return np.asarray(getattr(col, "value", col), dtype=float)


def _mission_days(col: Any, stated: str | None, meta: dict) -> tuple[np.ndarray | Any, str | None]:
    """Time values in the mission's days, and a note when they were converted."""
    if isinstance(col, Time):
        if col.format in _BJD_OFFSET:
            return np.asarray(col.value, dtype=float), None
        values, stated = np.asarray(col.tdb.jd, dtype=float), "bjd"
    elif stated in (None, "bkjd", "btjd"):
        return col, None
    else:
        values = _values(col)
    mission = str(meta.get("MISSION") or meta.get("TELESCOP") or "")
    target = _MISSION_SYSTEM.get({"kepler": "Kepler", "k2": "K2", "tess": "TESS"}.get(mission.lower(), ""))
    if target is None:
        target = "bkjd" if np.nanmedian(values) < _FIRST_TESS_BJD else "btjd"
    offset = _BJD_OFFSET[target]
    note = f"time given as {stated.upper()}: converted to {target.upper()} ({stated.upper()} - {offset:.0f})"
    if stated == "jd":
        note += "; taken as BJD without a barycentric correction (at most 8.3 min off)"
    return values - offset, note


# ------------------------------------------------------------------ batches


def iter_inputs(paths: Iterable[str | os.PathLike]) -> Iterator[str]:
    """Files to process, one at a time.

    Parameters
    ----------
    paths : iterable of path
        Each a file (kept as given), a folder (its readable files, recursively), a glob
        (``*``, ``?``, ``[...]``, ``**`` for any depth; matched folders give all their
        readable files), or ``@FILE``: a text file with one such path per line (blank
        lines and lines starting with ``#`` skipped; relative paths are relative to the
        working directory, as on the command line).

    Yields
    ------
    str
        Paths with a readable ending (:data:`INPUT_SUFFIXES`), in
        sorted order within each given path. A path that is neither a folder nor a
        matching glob is yielded as given, so that the reader says what is wrong with it.

    Raises
    ------
    FileNotFoundError
        An ``@FILE`` list does not exist.
    """
    for given in map(str, paths):
        if given.startswith("@") and not Path(given).exists():
            yield from _expand(_list_lines(Path(given[1:])))
        else:
            yield from _expand([given])


def _expand(paths: Iterable[str]) -> Iterator[str]:
    for given in paths:
        if Path(given).is_dir():
            yield from _walk(str(Path(given)))
        elif not Path(given).exists() and glob.has_magic(given):
            found = False
            for path in _glob(given):
                found = True
                yield path
            if not found:
                yield given
        else:
            yield given


def _list_lines(list_file: Path) -> Iterator[str]:
    if not list_file.is_file():
        raise FileNotFoundError(f"{list_file}: input list not found (@FILE names a text file, one path a line)")
    with list_file.open(encoding="utf-8") as lines:
        for line in lines:
            line = line.strip()
            if line and not line.startswith("#"):
                yield line


def _sorted_entries(folder: str) -> list[os.DirEntry]:
    """One directory's entries in the order of their full path strings: a folder sorts as
    ``name/``, so ``b.fits`` comes before the files of folder ``b.d``, after those of ``b``."""
    try:
        with os.scandir(folder or ".") as entries:
            listed = list(entries)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return []
    return sorted(listed, key=lambda e: e.name + "/" if e.is_dir(follow_symlinks=False) else e.name)


def _readable(name: str) -> bool:
    return name.lower().endswith(INPUT_SUFFIXES)


def _walk(folder: str) -> Iterator[str]:
    """Readable files below ``folder``, recursively, sorted by full path."""
    for entry in _sorted_entries(folder):
        path = os.path.join(folder, entry.name)
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(path)
        elif _readable(entry.name) and entry.is_file():
            yield path


def _glob(pattern: str) -> Iterator[str]:
    """Readable files matching ``pattern`` (and all those in matching folders), sorted."""
    parts = Path(pattern).parts
    fixed = 0
    while fixed < len(parts) - 1 and not glob.has_magic(parts[fixed]):
        fixed += 1
    root = os.path.join(*parts[:fixed]) if fixed else ""
    yield from _glob_below(root, (), parts[fixed:])


def _glob_below(folder: str, rel: tuple[str, ...], comps: tuple[str, ...]) -> Iterator[str]:
    for entry in _sorted_entries(folder):
        path, parts = os.path.join(folder, entry.name), (*rel, entry.name)
        if entry.is_dir(follow_symlinks=False):
            if _matches(parts, comps):
                yield from _walk(path)
            elif _may_match_below(parts, comps):
                yield from _glob_below(path, parts, comps)
        elif _readable(entry.name) and _matches(parts, comps) and entry.is_file():
            yield path


def _component_matches(name: str, comp: str) -> bool:
    # As glob: a wildcard does not match a leading dot.
    return fnmatchcase(name, comp) and (not name.startswith(".") or comp.startswith("."))


def _matches(parts: tuple[str, ...], comps: tuple[str, ...]) -> bool:
    if not comps:
        return not parts
    if comps[0] == "**":
        return any(_matches(parts[i:], comps[1:]) for i in range(len(parts) + 1)
                   if not any(p.startswith(".") for p in parts[:i]))
    return bool(parts) and _component_matches(parts[0], comps[0]) and _matches(parts[1:], comps[1:])


def _may_match_below(parts: tuple[str, ...], comps: tuple[str, ...]) -> bool:
    """A path inside folder ``parts`` can still match: its components match the
    pattern's up to the first ``**`` (beyond which anything can follow)."""
    fixed = comps.index("**") if "**" in comps else len(comps)
    if "**" not in comps and len(parts) >= len(comps):
        return False
    return all(_component_matches(p, c) for p, c in zip(parts[:fixed], comps[:fixed]))
