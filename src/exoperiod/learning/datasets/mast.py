"""Light curves from MAST: lightkurve's product search, then polite, resumable downloads.

Place in the flow (learning side): simulate, instruments, catalog (http) -> inject -> **datasets**,
curves -> train -> vetting -> evaluate; presets, demo.

The search is lightkurve's ``search_lightcurve`` (which asks MAST through astroquery);
the files it lists are then fetched by :func:`~exoperiod.learning.http.download_file`
from MAST's download URL, so every request shares one rate limiter and one retry policy,
and an interrupted download resumes. Files land in
``<cache_dir>/<mission>/<target id>/<MAST file name>``, a layout the local source
reads as it is, and a target's product list is cached beside them so a rebuild does not
search again.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import requests

from ...errors import ExoperiodError
from ...files import atomic_write_text
from ..catalog import CatalogStar
from ..http import (
    RateLimiter,
    RetryPolicy,
    call_with_retries,
    describe,
    download_file,
    new_session,
)

MAST_DOWNLOAD_URL = "https://mast.stsci.edu/api/v0.1/Download/file"


@dataclass(frozen=True)
class MissionQuery:
    """How lightkurve is asked for one mission's official light curves."""

    prefix: str
    author: str
    exptime_s: int
    segment: str


#: Official pipeline light curves: Kepler and K2 long cadence, TESS SPOC 2-minute.
MISSIONS = {
    "Kepler": MissionQuery("KIC", "Kepler", 1800, "quarter"),
    "K2": MissionQuery("EPIC", "K2", 1800, "campaign"),
    "TESS": MissionQuery("TIC", "SPOC", 120, "sector"),
}


class MastError(ExoperiodError):
    """A target MAST has nothing for, or that could not be fetched; one line."""


@dataclass(frozen=True)
class Product:
    """One file MAST lists for a target."""

    data_uri: str
    filename: str
    size: int | None

    @property
    def url(self) -> str:
        return f"{MAST_DOWNLOAD_URL}?uri={self.data_uri}"


def _size(value) -> int | None:
    try:
        size = int(value)
    except (TypeError, ValueError):
        return None
    return size if size > 0 else None


def search_products(
    star: CatalogStar, segments: Sequence[int] | None = None, search: Callable | None = None
) -> list[Product]:
    """The light-curve files MAST has for a star.

    Parameters
    ----------
    star : CatalogStar
    segments : sequence of int, optional
        Kepler quarters, K2 campaigns or TESS sectors; None takes them all.
    search : callable, optional
        ``lightkurve.search_lightcurve`` (the default) or a stand-in with its signature.

    Returns
    -------
    list of Product
        Sorted by file name.
    """
    if search is None:
        import lightkurve

        search = lightkurve.search_lightcurve
    query = MISSIONS[star.mission]
    kwargs = {query.segment: list(segments)} if segments else {}
    result = search(
        f"{query.prefix} {star.target_id}", mission=star.mission, author=query.author,
        exptime=query.exptime_s, **kwargs,
    )
    table = getattr(result, "table", None)
    if table is None or len(table) == 0:
        return []
    products = {
        str(row["productFilename"]): Product(str(row["dataURI"]), str(row["productFilename"]), _size(row["size"]))
        for row in table
    }
    return [products[name] for name in sorted(products)]


class MastClient:
    """Searches and downloads with a bounded thread pool, a rate limit and retries.

    Parameters
    ----------
    cache_dir : path
        Download cache; files already there with the size MAST lists are not fetched again.
    segments : sequence of int, optional
        Quarters / campaigns / sectors to take (None: all).
    session : requests.Session, optional
        HTTP layer of the downloads (a pooled session by default).
    search : callable, optional
        Product search, ``lightkurve.search_lightcurve`` by default.
    concurrency : int
        Targets fetched at once.
    requests_per_second : float
        Average request rate towards MAST, searches and downloads together.
    policy : RetryPolicy, optional
    """

    def __init__(
        self,
        cache_dir: str | os.PathLike,
        *,
        segments: Sequence[int] | None = None,
        session: requests.Session | None = None,
        search: Callable | None = None,
        concurrency: int = 4,
        requests_per_second: float = 5.0,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.cache_dir = Path(cache_dir)
        self.segments = sorted(segments) if segments else None
        self.session = session or new_session(concurrency)
        self.search = search
        self.concurrency = concurrency
        self.limiter = RateLimiter(requests_per_second, burst=concurrency)
        self.policy = policy or RetryPolicy()

    def folder(self, star: CatalogStar) -> Path:
        return self.cache_dir / star.mission.lower() / str(star.target_id)

    def products(self, star: CatalogStar) -> list[Product]:
        """The star's products, from the cache or from a (retried) MAST search."""
        listing = self.folder(star) / "products.json"
        if listing.is_file():
            cached = json.loads(listing.read_text())
            if cached.get("segments") == self.segments:
                return [Product(**p) for p in cached["products"]]
        products = call_with_retries(
            lambda: search_products(star, self.segments, self.search), self.policy, self.limiter
        )
        if products:
            atomic_write_text(listing, json.dumps({"segments": self.segments,
                                                   "products": [asdict(p) for p in products]}))
        return products

    def fetch(self, star: CatalogStar) -> list[Path]:
        """Download (or find in the cache) every light curve of a star.

        Raises
        ------
        MastError
            MAST lists no light curve, or a search or download failed for good.
        """
        try:
            products = self.products(star)
        except Exception as exc:  # noqa: BLE001 - lightkurve/astroquery fail in many ways
            raise MastError(f"{star.star_id}: MAST search failed ({describe(exc)})") from exc
        if not products:
            query = MISSIONS[star.mission]
            raise MastError(
                f"{star.star_id}: MAST lists no {query.author} light curve with exptime "
                f"{query.exptime_s} s{' in ' + query.segment + 's ' + str(self.segments) if self.segments else ''}"
            )
        folder = self.folder(star)
        return [
            download_file(p.url, folder / p.filename, session=self.session, expected_size=p.size,
                          policy=self.policy, limiter=self.limiter)
            for p in products
        ]

    def fetch_all(self, stars: Iterable[CatalogStar]) -> Iterator[tuple[CatalogStar, list[Path] | Exception]]:
        """Fetch many stars with ``concurrency`` threads; yields (star, files or error)
        as each finishes."""
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="mast")
        try:
            futures = {pool.submit(self.fetch, star): star for star in stars}
            for future in as_completed(futures):
                try:
                    yield futures[future], future.result()
                except Exception as exc:  # noqa: BLE001 - reported per star, the build goes on
                    yield futures[future], exc
        finally:
            # A build stopped early (Ctrl-C, an error) must not wait for every queued star.
            pool.shutdown(wait=True, cancel_futures=True)
