"""Positives, negatives and synthetics: the datasets a period model learns from.

Place in the flow (learning side): simulate, instruments, catalog (http) -> inject -> **datasets**,
curves -> train -> vetting -> evaluate; presets, demo.

Each dataset is a class built from a :class:`~exoperiod.config.Config` and a light-curve
source, then built::

    from exoperiod.config import load_config
    from exoperiod.learning.datasets import Negatives, Positives, Synthetics

    config = load_config("config.json")
    Synthetics(config).build(workers=2)                       # simulated stars, offline
    Negatives(config, source="local", local_dir="../shared/data").build()
    Positives(config, source="mast").build(workers=2)         # needs the internet

The base class, :class:`StarDataset`, lists the dataset's stars, skips those a previous
build finished, makes the others (in spawned worker processes when ``workers > 1``, so a
script calling it needs the usual ``if __name__ == "__main__":`` guard) and keeps the
ledger (see :mod:`exoperiod.learning.datasets.store`). A subclass says which stars it takes
(:meth:`StarDataset.catalog_stars`) and what goes into their light curves and labels
(:meth:`StarDataset.planets`).

Sources
-------
``simulated``
    The simulated stars of :mod:`exoperiod.learning.simulate`, one model window long (no network,
    no files). Negative ``i`` and synthetic ``i`` are the same star, with and without
    planets, and share a split.
``local``
    A folder of light-curve files (``local_dir``; by default the MAST download cache),
    matched to catalogue stars by KIC / EPIC / TIC number.
``mast``
    lightkurve's search and MAST downloads through :class:`~exoperiod.learning.datasets.mast.MastClient`
    (Kepler long cadence by default), cached in ``<output_root>/cache/mast``.

Counts
------
``positive_sample_count``, ``negative_sample_count`` and ``synthetic_samples_count``
count stars. A star gives one sample per model window of each of its light curves: one
for a simulated star or a Kepler quarter, about seventeen for a stitched Q1-Q17 light
curve. Real stars are taken in an order shuffled by the seed; a star that fails is
listed in ``failures.csv`` and not replaced, so the same seed always gives the same stars.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import threading
import time
import warnings
from collections import defaultdict
from concurrent.futures import (
    FIRST_COMPLETED,
    Executor,
    Future,
    ProcessPoolExecutor,
    as_completed,
    wait,
)
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path
from typing import Callable, ClassVar, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd

from ...config import Config
from ..catalog import (
    CatalogStar,
    confirmed_hosts,
    koi_stars,
    load_koi_table,
    negative_stars,
    read_star_catalog,
)
from ..inject import Star, sample_planets, transit_model
from .mast import MastClient
from .samples import (
    KIND_CODE,
    KIND_PREFIX,
    KINDS,
    Curve,
    LabelPlanet,
    StarJob,
    exposure_minutes,
    make_samples,
)
from .sources import LocalArchive
from .store import DatasetError, Ledger, StarRecord

SOURCES = ("simulated", "local", "mast")
#: Format of the sample files and tables; a folder of another format is not resumed.
FORMAT_VERSION = 1

ProgressCallback = Callable[[str, int, int], None]


@dataclass
class DatasetSummary:
    """What one dataset build did.

    Attributes
    ----------
    kind : str
    folder : str
    stars : int
        Stars in the dataset.
    written, skipped : int
        Samples written by this build, and samples a previous build had finished.
    failed : int
        Rows of ``failures.csv``: light curves or stars that gave no sample.
    seconds : float
    note : str
        Why a dataset was not built, if it was not.
    """

    kind: str
    folder: str
    stars: int = 0
    written: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    note: str = ""


@dataclass
class BuildSummary:
    """The summaries of the datasets of one build."""

    datasets: list[DatasetSummary] = field(default_factory=list)

    @property
    def written(self) -> int:
        return sum(d.written for d in self.datasets)

    @property
    def skipped(self) -> int:
        return sum(d.skipped for d in self.datasets)

    @property
    def failed(self) -> int:
        return sum(d.failed for d in self.datasets)

    @property
    def seconds(self) -> float:
        return sum(d.seconds for d in self.datasets)

    def table(self):
        """A rich table of the summary (for the command line)."""
        from rich.table import Table

        table = Table(title="Datasets")
        for column in ("dataset", "stars", "written", "skipped", "failed", "time", "folder / note"):
            table.add_column(column, justify="left" if column in ("dataset", "folder / note") else "right")
        for d in self.datasets:
            table.add_row(d.kind, str(d.stars), str(d.written), str(d.skipped), str(d.failed),
                          f"{d.seconds:.1f} s", d.note or d.folder)
        return table


def _init_worker() -> None:
    # Warnings of odd files go to failures.csv instead.
    warnings.simplefilter("ignore")
    # A worker waits on the pool's call queue, whose writing end it holds itself, so a
    # parent killed without a shutdown (kill -9, the OOM killer) would leave it waiting
    # forever. The parent's sentinel (the parent itself, also under forkserver) becomes
    # ready when the parent dies.
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with_parent, args=(parent.sentinel,), daemon=True).start()


def _exit_with_parent(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])
    os._exit(1)


@contextmanager
def _in_process_worker() -> Iterator[None]:
    """The main process set up as the only worker (see :func:`_init_worker`)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` processes set up for making samples.

    Workers start from a fresh interpreter, never as a fork of the caller (whose threads
    and locks a fork would copy). With ``forkserver`` (where the OS has it) this module
    and its imports are loaded once, in the server, and each worker is a fork of that:
    measured 4.5 s instead of 9 s for two workers, and instant for the next pool.
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
    else:
        context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker)


class StarDataset:
    """A dataset of light-curve samples: the shared machinery of the three kinds.

    Parameters
    ----------
    config : Config
    source : {"simulated", "local", "mast"}
    local_dir : path, optional
        Folder of light-curve files for the local source (default: the MAST cache).
    cache_dir : path, optional
        Downloads (KOI table, MAST files); default ``<output_root>/cache``.
    mast : MastClient, optional
        The MAST client (default: one caching in ``<cache_dir>/mast``).
    false_positives : bool
        Negatives (and the stars synthetics are injected into) also include stars whose
        every KOI is a false positive.
    """

    kind: ClassVar[str]
    count_key: ClassVar[str]

    def __init__(
        self,
        config: Config,
        source: str = "simulated",
        *,
        local_dir: str | os.PathLike | None = None,
        cache_dir: str | os.PathLike | None = None,
        mast: MastClient | None = None,
        false_positives: bool = False,
    ) -> None:
        if source not in SOURCES:
            raise DatasetError(f"unknown source {source!r} (known: {', '.join(SOURCES)})")
        self.config = config
        self.source = source
        self.cache_dir = Path(cache_dir) if cache_dir is not None else Path(config.output_root) / "cache"
        self.local_dir = Path(local_dir) if local_dir is not None else self.cache_dir / "mast"
        self._mast = mast
        self.false_positives = false_positives

    @property
    def folder(self) -> Path:
        return self.config.dataset_dir(self.kind)

    @property
    def count(self) -> int:
        """Number of stars the configuration asks for."""
        return getattr(self.config, self.count_key)

    @property
    def mast(self) -> MastClient:
        if self._mast is None:
            self._mast = MastClient(self.cache_dir / "mast")
        return self._mast

    @cached_property
    def archive(self) -> LocalArchive:
        archive = LocalArchive(self.local_dir)
        if not len(archive):
            raise DatasetError(
                f"{self.local_dir}: no light-curve files found (local source: pass local_dir, --local-dir)"
            )
        return archive

    @cached_property
    def koi(self) -> pd.DataFrame:
        return load_koi_table(self.config, self.cache_dir)

    # ------------------------------------------------------------------ the stars

    def catalog_stars(self) -> list[CatalogStar]:
        """The real stars this dataset may take, sorted by mission and identifier."""
        raise NotImplementedError

    def negative_candidates(self) -> list[CatalogStar]:
        """Planet-free real stars: from ``star_catalog_files``; without those, the local
        folder's Kepler stars that are not in the KOI table at all."""
        if self.config.star_catalog_files:
            candidates = [s for path in self.config.star_catalog_files for s in read_star_catalog(path)]
        elif self.source == "local":
            kois = koi_stars(self.koi, ("CONFIRMED", "CANDIDATE", "FALSE POSITIVE"))
            candidates = [CatalogStar(m, i) for m, i in self.archive.targets() if m == "Kepler" and i not in kois]
        elif self.false_positives:
            candidates = []
        else:
            raise DatasetError(
                f"config: star_catalog_files is empty; {self.kind} stars from MAST come from a star catalogue"
            )
        return negative_stars(self.koi, candidates, self.false_positives)

    def real_stars(self) -> list[CatalogStar]:
        """:meth:`catalog_stars` in the seed's order, keeping (for the local source) only
        stars with files."""
        archive = self.archive if self.source == "local" else None  # an empty folder fails first
        stars = self.catalog_stars()
        order = np.random.default_rng([self.config.seed, KIND_CODE[self.kind]]).permutation(len(stars))
        stars = [stars[i] for i in order]
        if archive is not None:
            stars = [s for s in stars if archive.files(s)]
        return stars

    def jobs(self) -> list[StarJob]:
        """One job per star of the dataset, in index order."""
        if self.source == "simulated":
            return [StarJob(self.kind, i, "simulated") for i in range(self.count)]
        return [self._job(i, star) for i, star in enumerate(self.real_stars()[: self.count])]

    def _job(self, index: int, star: CatalogStar) -> StarJob:
        files = self.archive.files(star) if self.source == "local" else ()
        return StarJob(self.kind, index, self.source, star, files)

    @staticmethod
    def planets(
        config: Config, job: StarJob, curves: list[Curve], host: Star, rng: np.random.Generator
    ) -> tuple[list[Curve], list[LabelPlanet]]:
        """What goes into a star's light curves and label: ``(curves, planets)``."""
        raise NotImplementedError

    # ------------------------------------------------------------------- building

    def settings(self) -> dict:
        """The settings the samples depend on; a folder built with others is not resumed."""
        c = self.config
        return {
            "format": FORMAT_VERSION, "kind": self.kind, "source": self.source, "seed": c.seed,
            "lightcurve_length": c.lightcurve_length, "min_lightcurve_length": c.min_lightcurve_length,
            "cadence_minutes": c.cadence_minutes, "detrend_window_days": c.detrend_window_days,
            "valid_lightcurve_length_threshold": c.valid_lightcurve_length_threshold,
            "flux_column": c.flux_column, "period_filter": c.period_filter,
            "planets_per_synthetic_star": c.planets_per_synthetic_star,
            "period_grid": c.distribution_params.period.model_dump(),
            "synthetic_priors": c.synthetic_priors.model_dump(),
            "false_positives": self.false_positives,
        }

    def _prepared(self, jobs: Sequence[StarJob]) -> Iterator[StarJob | StarRecord]:
        """The jobs with their light-curve files: MAST downloads happen here, each star
        once even when several jobs use it."""
        if self.source != "mast":
            yield from jobs
            return
        by_star: dict[tuple[str, int], list[StarJob]] = defaultdict(list)
        for job in jobs:
            by_star[job.star.key].append(job)
        stars = [waiting[0].star for waiting in by_star.values()]
        for star, files in self.mast.fetch_all(stars):
            for job in by_star[star.key]:
                if isinstance(files, Exception):
                    yield StarRecord(job.index, failures=[job.failure(str(files))])
                else:
                    yield StarJob(job.kind, job.index, job.source, job.star, tuple(map(str, files)))

    def _records(
        self, jobs: Sequence[StarJob], pool: ProcessPoolExecutor | None, workers: int
    ) -> Iterator[StarRecord]:
        work = partial(make_samples, self.config, str(self.folder), type(self).planets)
        if pool is None:
            with _in_process_worker():
                for item in self._prepared(jobs):
                    yield item if isinstance(item, StarRecord) else work(item)
            return
        # The main process only hands out jobs: making samples here too was measured
        # slower, as the pool's feeder and result threads then wait for the GIL.
        running: set[Future] = set()
        for item in self._prepared(jobs):
            if isinstance(item, StarRecord):
                yield item
                continue
            running.add(pool.submit(work, item))
            # A few jobs queued per worker keeps them busy without putting the whole
            # dataset in flight.
            if len(running) >= 2 * workers:
                finished, running = wait(running, return_when=FIRST_COMPLETED)
                yield from (future.result() for future in finished)
        for future in as_completed(running):
            yield future.result()

    def build(
        self, workers: int = 1, progress: ProgressCallback | None = None, pool: ProcessPoolExecutor | None = None
    ) -> DatasetSummary:
        """Build the dataset, resuming a previous build of the same folder.

        Parameters
        ----------
        workers : int
            Processes making samples; the output does not depend on it.
        progress : callable, optional
            ``progress(kind, stars_done, stars_total)``, called as stars finish.
        pool : ProcessPoolExecutor, optional
            Worker pool to use instead of starting one (:func:`build_datasets` shares one
            between datasets, as starting workers takes seconds).

        Returns
        -------
        DatasetSummary
        """
        if workers < 1:
            raise DatasetError(f"workers must be at least 1, got {workers}")
        if pool is None and workers > 1:
            with worker_pool(workers) as pool:
                return self.build(workers, progress, pool)
        start = time.perf_counter()
        jobs = self.jobs()
        ledger = Ledger(self.folder, KIND_PREFIX[self.kind])
        try:
            return self._build(jobs, ledger, workers, progress, pool, start)
        except OSError as err:  # a full disk, a read-only or unwritable folder
            where = err.filename if err.filename is not None else self.folder
            raise DatasetError(f"{where}: cannot write the {self.kind} dataset ({err.strerror or err})") from None
        finally:
            ledger.release()

    def _build(
        self, jobs: list[StarJob], ledger: Ledger, workers: int, progress: ProgressCallback | None,
        pool: ProcessPoolExecutor | None, start: float,
    ) -> DatasetSummary:
        finished = ledger.open(self.settings(), [job.star_id for job in jobs])
        pending = [job for job in jobs if job.index not in finished]
        summary = DatasetSummary(self.kind, str(self.folder), stars=len(jobs),
                                 note="" if jobs else f"no {self.kind} star found for the {self.source} source")
        summary.skipped = sum(len(finished[job.index].rows) for job in jobs if job.index in finished)
        done = len(jobs) - len(pending)
        if progress:
            progress(self.kind, done, len(jobs))
        for record in self._records(pending, pool, workers):
            ledger.append(record)
            summary.written += len(record.rows)
            done += 1
            if progress:
                progress(self.kind, done, len(jobs))
        _, failures = ledger.close()
        summary.failed = len(failures)
        summary.seconds = time.perf_counter() - start
        return summary


class Positives(StarDataset):
    """Stars with confirmed planets: every CONFIRMED KOI of the star with a period below
    ``period_filter`` goes into the label (period error: mean of the two KOI errors).

    Real light curves only: the source is ``local`` or ``mast``.
    """

    kind = "positive"
    count_key = "positive_sample_count"

    def __init__(self, config: Config, source: str = "local", **options) -> None:
        super().__init__(config, source, **options)
        if source == "simulated":
            raise DatasetError("positives need real light curves: use the local or mast source")

    def catalog_stars(self) -> list[CatalogStar]:
        return confirmed_hosts(self.koi, self.config.period_filter)

    @staticmethod
    def planets(config, job, curves, host, rng):
        return curves, [LabelPlanet.from_catalog(p) for p in job.star.planets]


class Negatives(StarDataset):
    """Stars without planets: all-zero labels.

    Real stars come from ``star_catalog_files`` (rows with ``nconfp`` or ``nkoi`` above
    zero dropped) minus every KOI host with a confirmed planet or a candidate; with
    ``false_positives=True`` also the stars whose every KOI is a false positive.
    """

    kind = "negative"
    count_key = "negative_sample_count"

    def catalog_stars(self) -> list[CatalogStar]:
        return self.negative_candidates()

    @staticmethod
    def planets(config, job, curves, host, rng):
        return curves, []


class Synthetics(StarDataset):
    """Planet-free stars with injected planets, labelled with the injected periods.

    Per star, ``n ~ U{1, ..., planets_per_synthetic_star}`` planets are drawn by
    :func:`exoperiod.learning.inject.sample_planets`: period log-uniform over the period grid,
    mid-transit time uniform within one period of the first cadence, impact parameter
    ``U(0, impact_max)``, matched-filter SNR log-uniform in ``[snr_min, snr_max]``
    (``config.synthetic_priors``) which sets the radius ratio, and no two periods closer
    than a factor ``min_period_ratio`` (stability). They are injected with batman,
    limb-darkened for the star's Teff and logg (catalogue values when known, else solar).

    The stars are the simulated ones, or the real negatives (see :class:`Negatives`),
    each used again with new planets when more synthetics than negatives are asked for.
    """

    kind = "synthetic"
    count_key = "synthetic_samples_count"

    def catalog_stars(self) -> list[CatalogStar]:
        return self.negative_candidates()

    def jobs(self) -> list[StarJob]:
        if self.source == "simulated":
            return super().jobs()
        stars = self.real_stars()
        if not stars:
            return []
        return [self._job(i, stars[i % len(stars)]) for i in range(self.count)]

    @staticmethod
    def planets(config, job, curves, host, rng):
        priors, period = config.synthetic_priors, config.distribution_params.period
        time = np.concatenate([c.valid_time for c in curves])
        drawn = sample_planets(
            rng, int(rng.integers(1, config.planets_per_synthetic_star + 1)), period.min, period.max,
            host, time, float(np.median([c.detrended_noise_ppm(config.detrend_window_days) for c in curves])),
            priors.snr_min, priors.snr_max, priors.impact_max, priors.min_period_ratio,
            exposure_minutes(curves[0]),
        )
        for curve in curves:
            # In place: the curve was made for this star alone, and inject_transits' copy
            # of the light curve costs more than the transit model itself.
            curve.lc.flux = curve.lc.flux * transit_model(curve.lc.time.value, drawn, host, exposure_minutes(curve))
        return curves, [LabelPlanet.from_injection(p, host) for p in drawn]


DATASETS: dict[str, type[StarDataset]] = {cls.kind: cls for cls in (Positives, Negatives, Synthetics)}


def build_datasets(
    config: Config,
    source: str = "simulated",
    only: Iterable[str] = KINDS,
    workers: int = 1,
    progress: ProgressCallback | None = None,
    pool: Executor | None = None,
    **options,
) -> BuildSummary:
    """Build the positive, negative and synthetic datasets (or those in ``only``).

    Parameters
    ----------
    config : Config
    source : {"simulated", "local", "mast"}
    only : iterable of str
        Datasets to build, among "positive", "negative", "synthetic".
    workers : int
        Worker processes.
    progress : callable, optional
        ``progress(kind, stars_done, stars_total)``.
    pool : concurrent.futures.Executor, optional
        Where samples are made instead of a pool of ``workers`` processes, e.g. a Dask
        cluster's (:func:`exoperiod.search.batch.dask_executor`); ``workers`` then bounds the
        jobs in flight (two per worker).
    **options
        ``local_dir``, ``cache_dir``, ``mast``, ``false_positives`` (see :class:`StarDataset`).

    Returns
    -------
    BuildSummary
        With simulated data, the positive dataset is listed as not built (it needs real
        light curves).

    Raises
    ------
    DatasetError
        A dataset the config asks stars of ended with no sample (every star failed, or
        none was found), after every dataset was built; or a dataset folder cannot be
        written (full disk, permission, a file in its place) or is being built by
        another process.
    """
    only = list(only)
    unknown = [k for k in only if k not in DATASETS]
    if unknown:
        raise DatasetError(f"unknown dataset(s) {', '.join(unknown)} (known: {', '.join(KINDS)})")
    summary, empty = BuildSummary(), []
    with nullcontext(pool) if pool is not None else worker_pool(workers) if workers > 1 else nullcontext() as pool:
        for kind in KINDS:
            if kind not in only:
                continue
            if kind == "positive" and source == "simulated":
                summary.datasets.append(DatasetSummary(
                    kind, str(config.dataset_dir(kind)),
                    note="not built: positives need real light curves (--source local or mast)"))
                continue
            dataset = DATASETS[kind](config, source, **options)
            built = dataset.build(workers, progress, pool)
            summary.datasets.append(built)
            if dataset.count and not built.written + built.skipped:
                empty.append(built)
    # A dataset asked for and left empty is a failed build, even if the others went well.
    if empty:
        reason = empty[0].note or f"all {empty[0].stars} stars failed; reasons in {empty[0].folder}/failures.csv"
        raise DatasetError(f"{empty[0].folder}: no sample written ({reason})")
    return summary
