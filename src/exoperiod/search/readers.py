"""Read one Kepler, K2 or TESS light curve, whatever file it arrived in.

Place in the flow (search side): **readers** -> inputs -> preprocess -> fold -> model ->
refine (ephemeris, offgrid) -> vetting -> predict -> views, plots, results -> outputs, batch.

Supported: SPOC light-curve FITS (Kepler and K2 long and short cadence, TESS), the
K2SFF and K2SC high-level science products, FITS written by lightkurve's ``to_fits``
(stitched light curves too), CSV and whitespace-separated ``.dat`` tables (with
a header line, or two or three numeric columns without one), JSON (one object holding
arrays, or JSON lines with one cadence per line) and ``.npz``.

Every format reader ends in :func:`_finish`, so all light curves come out alike: the
quality bitmask applied, flux divided by its median, time in the mission's own days
(BKJD for Kepler and K2, BTJD for TESS) and the same meta keys.
"""

from __future__ import annotations

import glob
import gzip
import json
import os
import re
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

import lightkurve as lk
import numpy as np
import pandas as pd
from astropy.io import fits
from astropy.time import Time
from lightkurve.io.detect import detect_filetype
from lightkurve.io.generic import read_generic_lightcurve
from lightkurve.io.k2sff import read_k2sff_lightcurve
from lightkurve.utils import KeplerQualityFlags, TessQualityFlags

from ..constants import DAYS_PER_YEAR, KEPLER_LONG_CADENCE_MINUTES, MINUTES_PER_DAY
from ..errors import ExoperiodError

__all__ = ["LightCurveReadError", "lightcurve_from_columns", "read_lightcurve"]

#: Kepler long cadence, the time step given to flux-only ``arr_0`` samples.
SYNTHETIC_CADENCE_DAYS = KEPLER_LONG_CADENCE_MINUTES / MINUTES_PER_DAY

_QUALITY_BITMASKS = ("none", "default", "hard", "hardest")
_BJDREF = {"Kepler": 2454833.0, "K2": 2454833.0, "TESS": 2457000.0}
_TIME_FORMAT = {"Kepler": "bkjd", "K2": "bkjd", "TESS": "btjd"}
_ID_PREFIX = {"Kepler": "KIC", "K2": "EPIC", "TESS": "TIC"}
_MISSION_NAMES = {"kepler": "Kepler", "k2": "K2", "tess": "TESS"}
_SEGMENT_KEYS = ("QUARTER", "CAMPAIGN", "SECTOR")
# The longest quarter is ~98 d, campaign ~88 d, sector ~36 d: a longer light curve is
# stitched, and the single QUARTER/SECTOR its header still carries describes one piece.
_MAX_SEGMENT_DAYS = {"Kepler": 110.0, "K2": 110.0, "TESS": 40.0}
# EPIC numbers start at 200,000,000; KIC numbers stay below 20 million.
_FIRST_EPIC = 200_000_000
#: Largest light-curve file read (a ``.fits.gz`` after decompression), bytes: ~80 times
#: the largest file in ../shared/data (3.4 MB; a stitched Kepler Q0-Q17 is 2.9 MB). An
#: accepted file costs about its size in memory (more for JSON); a larger one is refused
#: before it is read.
MAX_FILE_BYTES = 256 << 20
#: Longest time span of a light curve, days (30 years; Kepler to TESS is ~17). A longer
#: span is a wrong time unit or a stray value, and would size the time grid absurdly.
MAX_TIME_SPAN_DAYS = 30 * DAYS_PER_YEAR

_NAME_IDS = (
    (re.compile(r"kplr(\d{9})", re.I), "Kepler"),
    (re.compile(r"ktwo(\d{9})", re.I), "K2"),
    (re.compile(r"hlsp_\w+?_k2_\w+?_(\d{9})", re.I), "K2"),
    (re.compile(r"tess\d{13}-s\d{4}-(\d{16})", re.I), "TESS"),  # SPOC
    (re.compile(r"(\d{16})-s\d{4}", re.I), "TESS"),  # TESS-SPOC and other HLSPs
    (re.compile(r"(?<![a-z])kic[_ -]?(\d+)", re.I), "Kepler"),
    (re.compile(r"(?<![a-z])epic[_ -]?(\d+)", re.I), "K2"),
    (re.compile(r"(?<![a-z])tic[_ -]?(\d+)", re.I), "TESS"),
)
_NAME_SEGMENTS = (
    (re.compile(r"-s(\d{4})-\d{16}", re.I), "SECTOR"),  # SPOC
    (re.compile(r"\d{16}-s(\d{4})", re.I), "SECTOR"),  # TESS-SPOC and other HLSPs
    (re.compile(r"\d{9}-c(\d{1,3})(?![0-9])", re.I), "CAMPAIGN"),
)
_OBJECT_ID = re.compile(r"\s*(KIC|EPIC|TIC)?[\s_-]*(\d+)\s*", re.I)
_SEGMENT_VALUE = re.compile(r"\s*[A-Za-z]{0,2}\s*(\d+)\s*")

_TIME_NAMES = ("time", "t", "bjd", "bkjd", "btjd", "dates")
_QUALITY_NAMES = ("quality", "sap_quality")
_NPZ_ARRAYS = ("time", "flux", "flux_err", "quality", "arr_0")


class LightCurveReadError(ExoperiodError):
    """One-line message: '<path>: <problem>'."""


class _BadFile(Exception):
    """A problem with the file; read_lightcurve prefixes the path."""


@dataclass
class _Raw:
    """What a format reader found, before the common clean-up in :func:`_finish`."""

    time: np.ndarray | Time
    flux: np.ndarray
    flux_err: np.ndarray | None
    quality: np.ndarray | None
    flux_origin: str
    meta: dict[str, Any]
    synthetic_time: bool = False


def read_lightcurve(
    path: str | os.PathLike,
    flux_column: Literal["pdcsap", "sap"] = "pdcsap",
    quality_bitmask: str | int = "default",
) -> lk.LightCurve:
    """Read a light curve file into a normalised :class:`lightkurve.LightCurve`.

    Parameters
    ----------
    path : str or os.PathLike
        ``.fits``/``.fit``/``.fits.gz``, ``.csv``, ``.json``/``.jsonl``/``.ndjson`` or
        ``.npz``.
    flux_column : {"pdcsap", "sap"}
        Which flux to take where the file offers both (SPOC files, the PDC and SAP
        extensions of K2SC files, CSV/JSON with ``pdcsap_flux``/``sap_flux``). Products
        with a single flux (K2SFF ``FCOR``, K2SC C13, ``to_fits`` output, npz) give
        that flux whatever is asked; ``meta["FLUX_ORIGIN"]`` says what was used.
    quality_bitmask : str or int
        Lightkurve's bitmask ("none", "default", "hard", "hardest" or an int), applied
        to the ``quality`` column with the Kepler or TESS flag definitions: flagged
        cadences are removed.

    Returns
    -------
    lightkurve.LightCurve
        ``time`` in the mission's days (``lc.time.value``: BKJD for Kepler/K2, BTJD for
        TESS), ``flux`` and ``flux_err`` divided by the median flux (dimensionless,
        ``flux_err`` NaN where unknown), ``quality`` (int32, 0 where unknown). Rows
        with a non-finite time are dropped; rows with NaN flux are kept. ``meta`` holds
        the file's header keys and ``MISSION`` ("Kepler", "K2", "TESS" or None),
        ``TARGETID`` (KIC/EPIC/TIC number or None), ``LABEL`` (e.g. "KIC 9002278"),
        ``QUARTER``/``CAMPAIGN``/``SECTOR`` when known and not stitched,
        ``FLUX_ORIGIN`` (the column used: "pdcsap_flux", "sap_flux", "fcor" for K2SFF,
        "pdc:flux"/"sap:flux" for the two K2SC v2 extensions, "flux", "arr_0", or the
        CSV/JSON column name), ``FILENAME``, ``QUALITY_BITMASK``, ``FLUX_STANDARDIZED``
        (True for zero-median unit-variance input, stored as ``1 + x``: depths are
        meaningless) and ``SYNTHETIC_TIME`` (True for flux-only ``arr_0`` npz, whose
        time is ``arange(n) * 29.4244 min``).

    Raises
    ------
    LightCurveReadError
        The file is missing, empty, truncated, corrupt, not a light curve, has no time
        column or no finite flux. The message is one line: ``"<path>: <problem>"``.
    ValueError
        ``flux_column`` or ``quality_bitmask`` is not a valid choice.
    """
    if flux_column not in ("pdcsap", "sap"):
        raise ValueError(f"flux_column must be 'pdcsap' or 'sap', not {flux_column!r}")
    if isinstance(quality_bitmask, str) and quality_bitmask not in _QUALITY_BITMASKS:
        raise ValueError(
            f"quality_bitmask must be one of {_QUALITY_BITMASKS} or an int, not {quality_bitmask!r}"
        )
    path = Path(path)
    try:
        reader = _reader_for(path)
        with warnings.catch_warnings():
            # astropy and lightkurve warn about units, FITS conventions and NaNs in
            # archive files; none of it changes what this reader returns.
            warnings.simplefilter("ignore")
            return _finish(path, reader(path, flux_column), quality_bitmask)
    except _BadFile as exc:
        raise LightCurveReadError(f"{path}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - damaged files break astropy/pandas/lightkurve in many ways
        raise LightCurveReadError(f"{path}: unreadable file ({_one_line(exc)})") from None


def lightcurve_from_columns(
    columns: dict[str, Any],
    name: str,
    flux_column: Literal["pdcsap", "sap"] = "pdcsap",
    meta: dict[str, Any] | None = None,
) -> lk.LightCurve:
    """A light curve from in-memory columns, cleaned up exactly as a file would be.

    Parameters
    ----------
    columns : dict
        Column name (any case) -> 1-D values; the time, flux, flux_err and quality
        columns are found by the names a CSV file may use (``time``/``bkjd``/...,
        ``pdcsap_flux``/``flux``/..., ``flux_err``/..., ``quality``).
    name : str
        What to call the input in messages and in ``meta["FILENAME"]``; a file-like name
        (``kplr009002278...``) also identifies the target.
    flux_column, meta
        As for :func:`read_lightcurve`; ``meta`` holds header-like keys (``MISSION``,
        ``OBJECT``, ``TICID``, ...).

    Raises
    ------
    LightCurveReadError
        ``"<name>: <problem>"``, as for a file.
    """
    lowered = {str(key).strip().lower(): value for key, value in columns.items()}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _finish(Path(name), _from_columns(lowered, flux_column, dict(meta or {})), "default")
    except _BadFile as exc:
        raise LightCurveReadError(f"{name}: {exc}") from None


def _reader_for(path: Path) -> Callable[[Path, str], _Raw]:
    if not path.exists():
        raise _BadFile("no file matches this pattern" if glob.has_magic(str(path)) else "file not found")
    if not path.is_file():
        raise _BadFile("not a regular file")
    size = path.stat().st_size
    if size == 0:
        raise _BadFile("empty file")
    if size > MAX_FILE_BYTES:
        raise _BadFile(f"{size / 2**20:.0f} MiB, more than the {MAX_FILE_BYTES >> 20} MiB a light-curve file can be")
    name = path.name.lower()
    for suffixes, reader in _READERS:
        if name.endswith(suffixes):
            return reader
    raise _BadFile(
        f"unknown file extension {''.join(path.suffixes[-2:])!r} "
        "(expected .fits, .fits.gz, .csv, .dat, .json, .jsonl or .npz)"
    )


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


# --------------------------------------------------------------------------- FITS


# Community products lightkurve recognises and this module has no sample of: read with
# lightkurve's defaults (its quality mask, its flux column).
_OTHER_LIGHTKURVE_PRODUCTS = ("QLP", "ELEANOR", "PATHOS", "CDIPS", "TASOC", "EVEREST", "KEPSEISMIC", "TGLC")


def _read_fits(path: Path, flux_column: str) -> _Raw:
    size = _fits_size(path)
    try:
        hdul = fits.open(path, memmap=False)
    except (OSError, ValueError) as exc:
        raise _BadFile(f"truncated or corrupt FITS file ({_one_line(exc)})") from None
    with hdul:
        # astropy opens a truncated file without complaint and fails (or pads) only when
        # the data is read: compare the size the headers describe with the real one.
        # len() parses every header; HDU.fileinfo, not HDUList.fileinfo, which
        # re-serialises every header. Bytes after the last HDU are ignored, as by astropy.
        last = hdul[len(hdul) - 1].fileinfo()
        expected = last["datLoc"] + last["datSpan"]
        if expected > size:
            raise _BadFile(f"truncated or corrupt FITS file ({size} bytes, the headers describe {expected})")
        names = [hdu.name.upper() for hdu in hdul]
        header = hdul[0].header
        if "K2SC" in names or "k2sc" in str(header.get("CREATOR", "")).lower():
            return _read_k2sc(path, names, flux_column)
        if "BESTAPER" in names:
            lc = read_k2sff_lightcurve(str(path))
            return _from_lightkurve(lc, "fcor")
        if "LIGHTCURVE" in names:
            return _read_lightcurve_extension(path, hdul, flux_column)
        filetype = _lightkurve_filetype(hdul)
    if filetype is not None and filetype.endswith("TargetPixelFile"):
        raise _BadFile("a target pixel file, not a light curve")
    if filetype in _OTHER_LIGHTKURVE_PRODUCTS:
        lc = lk.read(str(path))
        return _from_lightkurve(lc, str(lc.meta.get("FLUX_ORIGIN") or "flux"))
    raise _BadFile("not a FITS light curve (no LIGHTCURVE table)")


def _fits_size(path: Path) -> int:
    """The size of the FITS content, after checking the magic bytes (and, for a ``.gz``,
    the size cap) before anything large is read. A ``.gz`` is decompressed in a stream
    that is thrown away and stops at :data:`MAX_FILE_BYTES`, so a small gzip bomb costs
    neither memory nor much time."""
    gzipped = path.name.lower().endswith(".gz")
    try:
        with (gzip.open if gzipped else open)(path, "rb") as handle:
            if handle.read(6) != b"SIMPLE":
                raise _BadFile("not a FITS file (does not start with SIMPLE)")
            if not gzipped:
                size = path.stat().st_size
            else:
                size = 6
                while size <= MAX_FILE_BYTES and (chunk := handle.read(1 << 20)):
                    size += len(chunk)
    except (EOFError, OSError, zlib.error) as exc:
        if not gzipped:
            raise  # unreadable (permissions, I/O error): read_lightcurve says so
        raise _BadFile(f"truncated or corrupt gzip file ({_one_line(exc)})") from None
    if size > MAX_FILE_BYTES:
        raise _BadFile(f"decompresses to more than the {MAX_FILE_BYTES >> 20} MiB a light-curve file can be")
    return size


def _lightkurve_filetype(hdul: fits.HDUList) -> str | None:
    if len(hdul) < 2:
        return None
    try:
        return detect_filetype(hdul)
    except Exception:  # noqa: BLE001 - detection pokes at optional headers and columns
        return None


def _read_lightcurve_extension(path: Path, hdul: fits.HDUList, flux_column: str) -> _Raw:
    """SPOC files (Kepler, K2, TESS) and lightkurve ``to_fits`` output."""
    table_header = hdul["LIGHTCURVE"].header
    # TTYPEn/TUNITn straight from the header: building astropy's ColDefs costs more
    # than the rest of this function.
    names = {
        str(table_header.get(f"TTYPE{i}", "")).strip().lower(): i
        for i in range(1, int(table_header.get("TFIELDS", 0)) + 1)
    }
    if "time" not in names:
        raise _BadFile("no time column (need 'TIME')")
    # to_fits output carries the flux its writer chose in FLUX (SAP/PDCSAP columns, if
    # any, are raw copies); SPOC files have no FLUX column.
    column = "flux" if "flux" in names else f"{flux_column}_flux"
    if column not in names:
        other = "sap" if flux_column == "pdcsap" else "pdcsap"
        hint = f" (it has {other.upper()}_FLUX: use --flux {other})" if f"{other}_flux" in names else ""
        raise _BadFile(f"no {column.upper()} column in the LIGHTCURVE table{hint}")
    header = hdul[0].header
    telescope = str(header.get("TELESCOP") or header.get("MISSION") or "").strip().lower()
    time_unit = str(table_header.get(f"TUNIT{names['time']}", "")).strip().lower()
    if telescope == "tess" or time_unit == "btjd":
        time_format, quality_column = "btjd", "quality"
    elif telescope in ("kepler", "k2") or time_unit == "bkjd":
        time_format, quality_column = "bkjd", "sap_quality"
    else:
        raise _BadFile(f"unknown time system (no TELESCOP, TIME unit {time_unit or 'missing'!r})")
    # lightkurve's read_kepler/read_tess_lightcurve are this call plus a quality mask and
    # two more table copies (~20% of the time); _finish applies the mask.
    lc = read_generic_lightcurve(
        str(path), flux_column=column, quality_column=quality_column, time_format=time_format
    )
    raw = _from_lightkurve(lc, column)
    if not telescope and time_unit == "btjd":
        raw.meta["MISSION"] = "TESS"  # BTJD is TESS's own time system
    return raw


def _read_k2sc(path: Path, extensions: list[str], flux_column: str) -> _Raw:
    """K2SC HLSP: one K2SC extension (C13 files) or PDC and SAP extensions (v2 files)."""
    if "K2SC" in extensions:
        ext, origin = "K2SC", "flux"
    else:
        ext = "SAP" if flux_column == "sap" else "PDC"
        origin = f"{ext.lower()}:flux"
        if ext not in extensions:
            raise _BadFile(f"K2SC file without a {ext} extension")
    lc = read_generic_lightcurve(
        str(path), flux_column="flux", flux_err_column="error", quality_column="quality",
        time_format="bkjd", ext=ext,
    )
    return _from_lightkurve(lc, origin)


def _from_lightkurve(lc: lk.LightCurve, flux_origin: str) -> _Raw:
    quality = np.asarray(lc["quality"]) if "quality" in lc.colnames else None
    meta = dict(lc.meta)
    # Lightkurve's mask refers to the rows before our own mask; it would mislead.
    meta.pop("QUALITY_MASK", None)
    return _Raw(
        time=lc.time,
        flux=np.asarray(lc.flux.value),
        flux_err=np.asarray(lc.flux_err.value) if "flux_err" in lc.colnames else None,
        quality=quality,
        flux_origin=flux_origin,
        meta=meta,
    )


# ---------------------------------------------------------------- CSV and JSON


def _read_csv(path: Path, flux_column: str) -> _Raw:
    return _read_table(path, flux_column, sep=",")


def _read_ascii(path: Path, flux_column: str) -> _Raw:
    """Whitespace-separated columns, e.g. DAVE's K2 ``*_detrended.dat``
    (``Dates Flux Corrflux Xpos Ypos``)."""
    return _read_table(path, flux_column, sep=r"\s+")


#: Column names given to a table without a header line, by its number of columns.
_HEADERLESS_COLUMNS = {2: ("time", "flux"), 3: ("time", "flux", "flux_err")}


def _read_table(path: Path, flux_column: str, sep: str) -> _Raw:
    """A text table with a header line, or without one (two or three numeric columns:
    time, flux[, flux_err], as in the transitleastsquares test files)."""
    try:
        first = _first_data_line(path)
        headerless = _is_numeric_row(first, sep)
        table = pd.read_csv(path, comment="#", skipinitialspace=True, sep=sep,
                            header=None if headerless else "infer")
    except pd.errors.EmptyDataError:
        raise _BadFile("empty table (no header line)") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise _BadFile(f"not a readable text table ({_one_line(exc)})") from None
    if headerless:
        names = _HEADERLESS_COLUMNS.get(table.shape[1])
        if names is None:
            raise _BadFile(
                f"table without a header has {table.shape[1]} columns; "
                "expected 2 (time, flux) or 3 (time, flux, flux_err)"
            )
        table.columns = list(names)
    columns = {str(name).strip().lower(): table[name] for name in table.columns}
    return _from_columns(columns, flux_column, meta={})


def _first_data_line(path: Path) -> str:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip() and not line.lstrip().startswith("#"):
                return line
    return ""


def _is_numeric_row(line: str, sep: str) -> bool:
    cells = [cell for cell in re.split(sep, line.strip()) if cell.strip()]
    try:
        [float(cell) for cell in cells]
    except ValueError:
        return False
    return bool(cells)


def _read_json(path: Path, flux_column: str) -> _Raw:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise _BadFile("not a UTF-8 text file") from None
    try:
        records = [json.loads(text)]
    except json.JSONDecodeError as exc:
        if exc.msg != "Extra data":
            raise _BadFile(
                f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg} (truncated file?)"
            ) from None
        records = _json_lines(text)
    if not records or not all(isinstance(record, dict) for record in records):
        raise _BadFile("JSON holds no object with 'time' and 'flux'")
    records = [{str(key).lower(): value for key, value in record.items()} for record in records]
    holds_arrays = [any(isinstance(value, list) for value in record.values()) for record in records]
    if len(records) == 1 and holds_arrays[0]:
        # One light curve: arrays under time/flux/..., scalars describe it.
        (record,) = records
        columns = {key: value for key, value in record.items() if isinstance(value, list)}
        scalars = {key: value for key, value in record.items() if not isinstance(value, (list, dict))}
    elif any(holds_arrays):
        raise _BadFile(f"{len(records)} light curves in one JSON-lines file; expected one")
    else:
        # JSON lines with one cadence per line.
        keys = {key for record in records for key in record}
        columns = {key: [record.get(key) for record in records] for key in keys}
        scalars = {}
    # The source's own class label (e.g. "eb", "conf") must not shadow our target LABEL.
    meta = {("SOURCE_LABEL" if key == "label" else key.upper()): value for key, value in scalars.items()}
    return _from_columns(columns, flux_column, meta)


def _json_lines(text: str) -> list[Any]:
    records = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise _BadFile(
                    f"invalid JSON on line {lineno} column {exc.colno}: {exc.msg} (truncated file?)"
                ) from None
    return records


def _from_columns(columns: dict[str, Any], flux_column: str, meta: dict[str, Any]) -> _Raw:
    """Pick time/flux/flux_err/quality from lower-cased table columns (CSV, JSON)."""
    found = sorted(columns)
    time_name = next((name for name in _TIME_NAMES if name in columns), None)
    if time_name is None:
        raise _BadFile(f"no time column (need 'time'; found {found})")
    # A systematics-corrected column (DAVE's ``corrflux``) is the PDCSAP of its product.
    corrected = ("corrflux",) if flux_column == "pdcsap" else ()
    flux_names = (f"{flux_column}_flux", *corrected, "flux", "pdcsap_flux", "sap_flux", "n_flux", "fcor", "corrflux")
    flux_name = next((name for name in flux_names if name in columns), None)
    if flux_name is None:
        raise _BadFile(f"no flux column (need 'flux'; found {found})")
    err_names = (f"{flux_name}_err", "flux_err", "error", "flux_error", "err")
    err_name = next((name for name in err_names if name in columns), None)
    quality_name = next((name for name in _QUALITY_NAMES if name in columns), None)
    quality = None
    if quality_name is not None:
        quality = np.nan_to_num(_as_float(quality_name, columns[quality_name]), nan=0.0)
    return _Raw(
        time=_as_float(time_name, columns[time_name]),
        flux=_as_float(flux_name, columns[flux_name]),
        flux_err=_as_float(err_name, columns[err_name]) if err_name else None,
        quality=quality,
        flux_origin=flux_name,
        meta=meta,
    )


def _as_float(name: str, values: Any) -> np.ndarray:
    if isinstance(values, pd.Series):
        # Stray text cells become NaN rather than failing the whole column.
        return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    try:
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise _BadFile(f"column {name!r} is not numeric") from None


# ------------------------------------------------------------------------ npz


def _read_npz(path: Path, flux_column: str) -> _Raw:
    """Arrays time/flux/flux_err/quality (or flux-only ``arr_0``); one flux, so
    ``flux_column`` does not apply."""
    with path.open("rb") as handle:
        if handle.read(4) not in (b"PK\x03\x04", b"PK\x05\x06"):
            raise _BadFile("not an npz archive (no zip signature)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            # Upper-case keys are the metadata strings; other arrays are not needed.
            wanted = [key for key in archive.files if key in _NPZ_ARRAYS or key.isupper()]
            arrays = {key: archive[key] for key in wanted}
            files = sorted(archive.files)
    except ValueError as exc:
        if "pickle" in str(exc):
            raise _BadFile("npz holds pickled objects; refusing to unpickle") from None
        raise _BadFile(f"truncated or corrupt npz file ({_one_line(exc)})") from None
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
        raise _BadFile(f"truncated or corrupt npz file ({_one_line(exc)})") from None
    flux_key = "flux" if "flux" in arrays else "arr_0" if "arr_0" in arrays else None
    if flux_key is None:
        raise _BadFile(f"no flux array (need 'flux' or 'arr_0'; found {files})")
    flux = _as_float(flux_key, arrays[flux_key])
    synthetic = "time" not in arrays and flux_key == "arr_0"
    if synthetic:
        time = np.arange(flux.size) * SYNTHETIC_CADENCE_DAYS
    elif "time" in arrays:
        time = _as_float("time", arrays["time"])
    else:
        raise _BadFile(f"no time column (need 'time'; found {files})")
    quality = arrays.get("quality")
    if quality is not None:
        quality = np.nan_to_num(_as_float("quality", quality), nan=0.0)
    meta = {key: value.item() for key, value in arrays.items() if key.isupper() and value.ndim == 0}
    return _Raw(
        time=time,
        flux=flux,
        flux_err=_as_float("flux_err", arrays["flux_err"]) if "flux_err" in arrays else None,
        quality=quality,
        flux_origin=flux_key,
        meta=meta,
        synthetic_time=synthetic,
    )


_READERS: tuple[tuple[tuple[str, ...], Callable[[Path, str], _Raw]], ...] = (
    ((".fits", ".fit", ".fts", ".fits.gz", ".fit.gz"), _read_fits),
    ((".csv",), _read_csv),
    ((".dat",), _read_ascii),
    ((".json", ".jsonl", ".ndjson"), _read_json),
    ((".npz",), _read_npz),
)
#: File name endings :func:`read_lightcurve` accepts (lower case).
READABLE_SUFFIXES: tuple[str, ...] = tuple(sfx for suffixes, _ in _READERS for sfx in suffixes)


# ------------------------------------------------------------- common clean-up


def _finish(path: Path, raw: _Raw, quality_bitmask: str | int) -> lk.LightCurve:
    """Mask, normalise and label a light curve the same way for every format."""
    meta = raw.meta
    mission, target_id = _identify(meta, path)
    flux = raw.flux
    if flux.ndim != 1 or np.ndim(raw.time) != 1 or len(raw.time) != flux.size:
        raise _BadFile(
            f"time and flux are not 1-D arrays of one length (shapes {np.shape(raw.time)} and {flux.shape})"
        )
    time = raw.time
    time_days = time.value if isinstance(time, Time) else time
    # Native int32 (FITS columns are big-endian): a plain column for downstream numpy code.
    quality = np.zeros(flux.size, np.int32) if raw.quality is None else raw.quality.astype(np.int32)
    flux_err = raw.flux_err if raw.flux_err is not None else np.full(flux.size, np.nan)
    if flux_err.shape != flux.shape or quality.shape != flux.shape:
        raise _BadFile("flux_err or quality differs in length from flux")
    keep = np.isfinite(time_days)
    _check_time(time_days[keep])
    had_flux = bool(np.isfinite(flux[keep]).any())
    if quality_bitmask != "none" and quality.any():
        flags = TessQualityFlags if mission == "TESS" else KeplerQualityFlags
        keep &= flags.create_quality_mask(quality, bitmask=quality_bitmask)
    if not keep.all():
        time, time_days, flux, flux_err, quality = (
            time[keep], time_days[keep], flux[keep], flux_err[keep], quality[keep]
        )
    finite = np.isfinite(flux)
    if not finite.any():
        raise _BadFile(
            f"no finite flux values left after the quality mask ({quality_bitmask!r})"
            if had_flux else "no finite flux values"
        )
    if finite.sum() < 2:
        raise _BadFile("only one cadence with finite time and flux; a light curve needs many")
    if np.ptp(flux[finite]) == 0:
        raise _BadFile(f"flux is constant ({flux[finite][0]:.6g} at every cadence): nothing to search")
    flux, flux_err, standardized = _normalise(flux, flux_err, finite)

    if not isinstance(time, Time):
        if mission is not None and np.median(time_days) > 2_400_000:
            time_days = time_days - _BJDREF[mission]  # full BJD in a table: use mission days
        # Without a mission the time system is unknown; lightkurve then calls it JD.
        time = Time(time_days, format=_TIME_FORMAT[mission], scale="tdb") if mission else time_days

    segments = _segments(meta, path)
    if mission is not None and np.ptp(time_days) > _MAX_SEGMENT_DAYS[mission]:
        segments = {}
    for key in _SEGMENT_KEYS:
        meta.pop(key, None)
    meta.update(segments)
    meta.update(
        MISSION=mission,
        TARGETID=target_id,
        LABEL=_label(mission, target_id, meta.get("OBJECT"), path),
        FLUX_ORIGIN=raw.flux_origin,
        FILENAME=str(path),
        QUALITY_BITMASK=quality_bitmask,
        FLUX_STANDARDIZED=standardized,
        SYNTHETIC_TIME=raw.synthetic_time,
    )
    return lk.LightCurve(time=time, flux=flux, flux_err=flux_err, quality=quality, meta=meta)


def _check_time(time_days: np.ndarray) -> None:
    """Refuse a time column no light curve has, before anything is sized from it."""
    if time_days.size == 0:
        raise _BadFile("no finite time values")
    span_days = float(np.ptp(time_days))
    if span_days > MAX_TIME_SPAN_DAYS:
        raise _BadFile(
            f"time spans {span_days:.3g} days, more than the {MAX_TIME_SPAN_DAYS / DAYS_PER_YEAR:.0f} years a "
            "light curve can cover (time not in days, or a stray time value)"
        )


def _normalise(
    flux: np.ndarray, flux_err: np.ndarray, finite: np.ndarray
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Divide by the median; zero-median unit-variance input becomes ``1 + x`` instead."""
    # float64 before the median: a float32 median is off by ~1e-7. The arrays were read
    # for this call alone, so float64 input may be changed in place.
    out = flux.astype(np.float64, copy=False)
    err = flux_err.astype(np.float64, copy=False)
    values = out[finite]
    median = float(np.median(values))
    if abs(median) < 0.1 and 0.5 < float(np.std(values)) < 2.0:
        # Standardised (detrended, divided by its scatter): dividing by a median of ~0
        # would explode, and the scale is already relative.
        out += 1.0
        return out, err, True
    if not median > 0:
        raise _BadFile(f"median flux is {median:.3g}; cannot normalise to 1")
    out /= median
    err /= median
    return out, err, False


# ----------------------------------------------------------------- identity


def _identify(meta: dict[str, Any], path: Path) -> tuple[str | None, int | None]:
    """Mission and KIC/EPIC/TIC number from header-like keys, then from the file name."""
    name_mission, name_id = target_from_name(f"{path.name} {meta.get('NAME') or ''}")
    object_mission, object_id = _parse_object(meta.get("OBJECT"))
    mission = (
        _mission_name(meta.get("MISSION")) or _mission_name(meta.get("TELESCOP"))
        or object_mission or name_mission
    )
    kepler_id, tic_id = _int_or_none(meta.get("KEPLERID")), _int_or_none(meta.get("TICID"))
    has_campaign = _int_or_none(meta.get("CAMPAIGN")) is not None
    if mission == "Kepler" and (has_campaign or (kepler_id or 0) >= _FIRST_EPIC):
        mission = "K2"  # K2 files say TELESCOP='Kepler' and keep the EPIC number in KEPLERID
    if mission == "TESS":
        header_id = tic_id
    elif mission in ("Kepler", "K2"):
        header_id = kepler_id
    else:
        header_id = kepler_id or tic_id
    return mission, header_id or object_id or name_id


def target_from_name(text: str) -> tuple[str | None, int | None]:
    """(mission, KIC/EPIC/TIC number) named in a file name such as ``kplr009002278-...``."""
    for pattern, mission in _NAME_IDS:
        match = pattern.search(text)
        if match:
            return mission, int(match.group(1))
    return None, None


def _parse_object(value: Any) -> tuple[str | None, int | None]:
    """'KIC 9002278' -> ("Kepler", 9002278); a bare number has no mission; names -> None."""
    if value is None:
        return None, None
    match = _OBJECT_ID.fullmatch(str(value))
    if not match:
        return None, None
    prefix = (match.group(1) or "").upper()
    mission = {"KIC": "Kepler", "EPIC": "K2", "TIC": "TESS"}.get(prefix)
    return mission, int(match.group(2))


def _mission_name(value: Any) -> str | None:
    return _MISSION_NAMES.get(str(value).strip().lower()) if value is not None else None


def _int_or_none(value: Any) -> int | None:
    """13, '13', 'Q13', 'C04' -> int; None, '', 'None', 'Q1-Q17(stitched)' -> None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return int(value) if np.isfinite(value) and float(value).is_integer() else None
    match = _SEGMENT_VALUE.fullmatch(str(value))
    return int(match.group(1)) if match else None


def _segments(meta: dict[str, Any], path: Path) -> dict[str, int]:
    segments = {key: _int_or_none(meta.get(key)) for key in _SEGMENT_KEYS}
    found = {key: value for key, value in segments.items() if value is not None}
    if found:
        return found
    for pattern, key in _NAME_SEGMENTS:
        match = pattern.search(path.name)
        if match:
            return {key: int(match.group(1))}
    return {}


def _label(mission: str | None, target_id: int | None, obj: Any, path: Path) -> str:
    if mission is not None and target_id is not None:
        return f"{_ID_PREFIX[mission]} {target_id}"
    if obj not in (None, "", "None"):
        return str(obj)
    return path.name.split(".")[0]
