"""Catalogues of stars and planets: the Kepler KOI table and lists of planet-free stars.

Place in the flow (learning side): simulate, instruments, **catalog** (http) -> inject -> datasets,
curves -> train -> vetting -> evaluate; presets, demo.

The KOI cumulative table comes from a local CSV (``config.koi_table``), from Kaggle's
``nasa/kepler-exoplanet-search-results`` when Kaggle credentials are configured and the
optional ``kaggle`` package is installed, or from the NASA Exoplanet Archive's TAP
service (plain HTTPS, cached on disk). Whatever the origin, the table is checked for the
columns dataset building needs, and a file that lacks them is rejected with one line
naming the file and the missing columns.
"""

from __future__ import annotations

import itertools
import math
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator
from urllib.parse import urlencode

import numpy as np
import pandas as pd

from ..config import Config
from ..constants import G_CGS, LOGG_SUN_CGS, M_SUN_G, R_SUN_CM
from ..errors import ExoperiodError
from .inject import Star

#: The NASA Exoplanet Archive's synchronous TAP endpoint.
TAP_URL = "https://exoplanetarchive.ipac.caltech.edu/TAP/sync"

#: Columns dataset building cannot do without.
KOI_REQUIRED = ("kepid", "koi_disposition", "koi_period")
#: Columns used when present (planet metadata, period errors, host star).
KOI_OPTIONAL = (
    "kepoi_name", "kepler_name", "koi_period_err1", "koi_period_err2", "koi_time0bk",
    "koi_depth", "koi_duration", "koi_impact", "koi_model_snr", "koi_steff", "koi_slogg",
    "koi_srad",
)
#: Columns of a star catalogue that identify a star, by mission.
STAR_ID_COLUMNS = {"kepid": "Kepler", "kic": "Kepler", "epic": "K2", "epic_number": "K2",
                   "epicid": "K2", "tic": "TESS", "tic_id": "TESS", "ticid": "TESS"}
_ID_PREFIX = {"Kepler": "KIC", "K2": "EPIC", "TESS": "TIC"}
# Columns that count a star's planets or planet candidates; a negative has zero in each.
_PLANET_COUNT_COLUMNS = ("nconfp", "nkoi")

SUN_TEFF_K = 5772.0


class CatalogError(ExoperiodError):
    """A catalogue that cannot be used; the message is one line naming the file."""


@dataclass(frozen=True)
class CatalogPlanet:
    """A catalogue planet (a KOI); unknown values are None."""

    name: str
    period_days: float
    period_err_days: float | None = None
    t0_days: float | None = None
    depth_ppm: float | None = None
    duration_hours: float | None = None
    impact: float | None = None
    snr: float | None = None


@dataclass(frozen=True)
class CatalogStar:
    """A target star with what the catalogues say about it.

    Attributes
    ----------
    mission : {"Kepler", "K2", "TESS"}
        Mission whose identifier ``target_id`` is (KIC, EPIC or TIC number).
    target_id : int
    planets : tuple of CatalogPlanet
        The planets that go into the star's label (empty for a negative).
    teff_k, logg_cgs, radius_rsun, mass_msun, cdpp6_ppm : float or None
        Stellar parameters when the catalogue has them.
    """

    mission: str
    target_id: int
    planets: tuple[CatalogPlanet, ...] = ()
    teff_k: float | None = None
    logg_cgs: float | None = None
    radius_rsun: float | None = None
    mass_msun: float | None = None
    cdpp6_ppm: float | None = None

    @property
    def star_id(self) -> str:
        """``"KIC 9002278"``, ``"EPIC 211089792"`` or ``"TIC 100100827"``."""
        return f"{_ID_PREFIX[self.mission]} {self.target_id}"

    @property
    def key(self) -> tuple[str, int]:
        return self.mission, self.target_id

    def host(self) -> Star:
        """The star as an injection host; unknown parameters are filled in.

        Missing values come from the others through ``g = G M / R^2`` where possible,
        else from the Sun, so a star known only by its Teff still gets its own limb
        darkening.
        """
        radius, mass, logg = self.radius_rsun, self.mass_msun, self.logg_cgs
        if mass is None and radius is not None and logg is not None:
            mass = 10**logg * (radius * R_SUN_CM) ** 2 / G_CGS / M_SUN_G
        if radius is None and mass is not None and logg is not None:
            radius = math.sqrt(G_CGS * mass * M_SUN_G / 10**logg) / R_SUN_CM
        radius = radius or 1.0
        mass = mass or 1.0
        if logg is None:
            logg = LOGG_SUN_CGS + math.log10(mass) - 2.0 * math.log10(radius)
        return Star(radius, mass, self.teff_k or SUN_TEFF_K, logg, cdpp6_ppm=self.cdpp6_ppm)


# ------------------------------------------------------------------ reading files


def _delimiter(path: Path) -> str:
    """The field separator of a text table: archive exports use ',', '|' or tabs."""
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if line.strip() and not line.startswith("#"):
                return next((sep for sep in ("|", "\t") if sep in line), ",")
    return ","


def read_table(path: str | os.PathLike, required: Iterable[str], what: str) -> pd.DataFrame:
    """Read a CSV (``#`` comment lines allowed) or Parquet table and check its columns.

    Parameters
    ----------
    path : str or os.PathLike
    required : iterable of str
        Columns that must be present (compared case-insensitively; the returned table
        has lower-case column names).
    what : str
        What the table is, for the error message ("KOI table", "star catalogue").

    Raises
    ------
    CatalogError
        Missing or unreadable file, or missing columns; one line naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise CatalogError(f"{path}: no such {what} file")
    try:
        if path.suffix.lower() == ".parquet":
            table = pd.read_parquet(path)
        else:
            table = pd.read_csv(path, comment="#", sep=_delimiter(path), skipinitialspace=True,
                                low_memory=False)
    except Exception as exc:  # noqa: BLE001 - pandas/pyarrow fail in many ways on bad files
        reason = " ".join(str(exc).split())[:200]
        raise CatalogError(f"{path}: not a readable {what} ({type(exc).__name__}: {reason})") from None
    table.columns = [str(c).strip().lower() for c in table.columns]
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise CatalogError(f"{path}: {what} lacks column(s) {', '.join(missing)}")
    return table


def read_koi_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a KOI cumulative table (archive export or Kaggle's ``cumulative.csv``)."""
    return read_table(path, KOI_REQUIRED, "KOI table")


# ------------------------------------------------------------------- downloading


def download_koi_table(dest: Path, fetch: Callable[[str, Path], Path] | None = None) -> Path:
    """Download the KOI cumulative table from the NASA Exoplanet Archive (TAP, CSV).

    Parameters
    ----------
    dest : Path
        Where the CSV goes; an existing file is reused, so the archive is asked once.
    fetch : callable, optional
        ``fetch(url, dest) -> Path``, the HTTP download; defaults to
        :func:`exoperiod.learning.http.download_file` with its retries and backoff.
    """
    if dest.is_file():
        return dest
    if fetch is None:
        from .http import download_file as fetch
    query = f"select {','.join(KOI_REQUIRED + KOI_OPTIONAL)} from cumulative"
    return fetch(f"{TAP_URL}?{urlencode({'query': query, 'format': 'csv'})}", dest)


def download_koi_table_kaggle(config: Config, dest_dir: Path) -> Path:
    """Download the KOI table from Kaggle (``config.dataset_name``) with the optional
    ``kaggle`` package; the credentials are ``config.username`` and ``config.key``.

    Raises
    ------
    CatalogError
        The ``kaggle`` package is not installed, or the download holds no CSV.
    """
    found = sorted(dest_dir.glob("*.csv"))
    if found:
        return found[0]
    try:
        # kaggle authenticates from the environment as soon as it is imported.
        with _environment(KAGGLE_USERNAME=config.username or "",
                          KAGGLE_KEY=config.key.get_secret_value() if config.key else ""):
            from kaggle.api.kaggle_api_extended import KaggleApi

            api = KaggleApi()
            api.authenticate()
    except ImportError:
        raise CatalogError(
            "config: username/key are set for Kaggle but the 'kaggle' package is not "
            "installed (pip install kaggle, or set koi_table to a local CSV)"
        ) from None
    dest_dir.mkdir(parents=True, exist_ok=True)
    api.dataset_download_files(config.dataset_name, path=str(dest_dir), unzip=True, quiet=True)
    found = sorted(dest_dir.glob("*.csv"))
    if not found:
        raise CatalogError(f"{dest_dir}: the Kaggle data set {config.dataset_name} holds no CSV file")
    return found[0]


@contextmanager
def _environment(**values: str) -> Iterator[None]:
    """Set environment variables for a moment (the Kaggle key must not outlive its use)."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def load_koi_table(config: Config, cache_dir: Path) -> pd.DataFrame:
    """The KOI table the configuration points to.

    ``config.koi_table`` (a local file) wins; otherwise Kaggle when ``config.username``
    and ``config.key`` are set; otherwise the NASA Exoplanet Archive. Downloads are
    cached in ``cache_dir``.
    """
    if config.koi_table:
        return read_koi_table(config.koi_table)
    if config.username and config.key:
        return read_koi_table(download_koi_table_kaggle(config, cache_dir / "kaggle"))
    from .http import DownloadError

    try:
        return read_koi_table(download_koi_table(cache_dir / "koi_cumulative.csv"))
    except DownloadError as exc:
        raise CatalogError(f"{exc} (offline? set koi_table to a local copy of the KOI table)") from None


# -------------------------------------------------------------------- selections


def _value(row: dict, column: str) -> float | None:
    try:
        value = float(row.get(column))
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _period_error(row: dict) -> float | None:
    errors = [abs(e) for e in (_value(row, "koi_period_err1"), _value(row, "koi_period_err2")) if e is not None]
    return float(np.mean(errors)) if errors else None


def _koi_planet(row: dict) -> CatalogPlanet:
    name = next((n for n in (row.get("kepler_name"), row.get("kepoi_name")) if isinstance(n, str) and n), None)
    return CatalogPlanet(
        name=name or f"KIC {int(row['kepid'])}",
        period_days=float(row["koi_period"]),
        period_err_days=_period_error(row),
        t0_days=_value(row, "koi_time0bk"),
        depth_ppm=_value(row, "koi_depth"),
        duration_hours=_value(row, "koi_duration"),
        impact=_value(row, "koi_impact"),
        snr=_value(row, "koi_model_snr"),
    )


def _disposition(koi: pd.DataFrame) -> pd.Series:
    return koi["koi_disposition"].astype(str).str.strip().str.upper()


def confirmed_hosts(koi: pd.DataFrame, period_filter: float) -> list[CatalogStar]:
    """Stars with a CONFIRMED planet of period below ``period_filter``, by KIC number.

    Every confirmed planet of the star below the filter goes into its label.
    """
    period = pd.to_numeric(koi["koi_period"], errors="coerce")
    columns = [c for c in KOI_REQUIRED + KOI_OPTIONAL if c in koi.columns]
    confirmed = koi.loc[(_disposition(koi) == "CONFIRMED") & (period < period_filter), columns]
    rows = confirmed.sort_values(["kepid", "koi_period"]).to_dict("records")
    stars = []
    for kepid, planets in itertools.groupby(rows, key=lambda row: int(row["kepid"])):
        planets = list(planets)
        stars.append(CatalogStar(
            mission="Kepler",
            target_id=kepid,
            planets=tuple(_koi_planet(row) for row in planets),
            teff_k=_value(planets[0], "koi_steff"),
            logg_cgs=_value(planets[0], "koi_slogg"),
            radius_rsun=_value(planets[0], "koi_srad"),
        ))
    return stars


def koi_stars(koi: pd.DataFrame, dispositions: Iterable[str]) -> set[int]:
    """KIC numbers of stars with at least one KOI of the given dispositions."""
    wanted = {d.upper() for d in dispositions}
    return {int(k) for k in koi.loc[_disposition(koi).isin(wanted), "kepid"]}


def false_positive_stars(koi: pd.DataFrame) -> list[CatalogStar]:
    """Stars whose every KOI is a FALSE POSITIVE, by KIC number."""
    others = koi_stars(koi, ("CONFIRMED", "CANDIDATE"))
    fps = sorted(koi_stars(koi, ("FALSE POSITIVE",)) - others)
    return [CatalogStar("Kepler", kepid) for kepid in fps]


def read_star_catalog(path: str | os.PathLike) -> list[CatalogStar]:
    """Planet-free stars from a star catalogue file.

    The file needs an identifier column (``kepid``, ``epic`` or ``tic_id``, see
    :data:`STAR_ID_COLUMNS`). Rows with planets or candidates (``nconfp`` or ``nkoi``
    above zero, when those columns exist) are dropped. ``teff``, ``logg``, ``radius``,
    ``mass`` and ``rrmscdpp06p0`` are used when present.
    """
    path = Path(path)
    table = read_table(path, (), "star catalogue")
    id_column = next((c for c in STAR_ID_COLUMNS if c in table.columns), None)
    if id_column is None:
        raise CatalogError(
            f"{path}: star catalogue lacks an identifier column (one of {', '.join(STAR_ID_COLUMNS)})"
        )
    for column in _PLANET_COUNT_COLUMNS:
        if column in table.columns:
            table = table[pd.to_numeric(table[column], errors="coerce").fillna(0) == 0]
    ids = pd.to_numeric(table[id_column], errors="coerce")
    table = table[ids.notna()].assign(**{id_column: ids[ids.notna()].astype(np.int64)})
    mission = STAR_ID_COLUMNS[id_column]
    rows = table.drop_duplicates(id_column).sort_values(id_column).to_dict("records")
    return [
        CatalogStar(
            mission=mission,
            target_id=int(row[id_column]),
            teff_k=_value(row, "teff"),
            logg_cgs=_value(row, "logg"),
            radius_rsun=_value(row, "radius"),
            mass_msun=_value(row, "mass"),
            cdpp6_ppm=_value(row, "rrmscdpp06p0"),
        )
        for row in rows
    ]


def negative_stars(
    koi: pd.DataFrame | None, candidates: Iterable[CatalogStar], false_positives: bool = False
) -> list[CatalogStar]:
    """Stars to use as negatives, sorted by mission and identifier.

    Parameters
    ----------
    koi : DataFrame or None
        The KOI table: hosts of its confirmed planets and candidates are never negatives,
        whatever the candidates' catalogue says.
    candidates : iterable of CatalogStar
        Stars from star catalogues (see :func:`read_star_catalog`) or a local folder.
    false_positives : bool
        Also take the stars whose every KOI is a false positive.
    """
    stars = {s.key: s for s in candidates}
    if false_positives and koi is not None:
        stars.update((s.key, s) for s in false_positive_stars(koi) if s.key not in stars)
    hosts = koi_stars(koi, ("CONFIRMED", "CANDIDATE")) if koi is not None else set()
    return [s for key, s in sorted(stars.items()) if not (s.mission == "Kepler" and s.target_id in hosts)]
