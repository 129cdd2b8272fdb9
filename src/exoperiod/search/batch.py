"""Predict a whole archive: in this process or on a Dask cluster, results that survive.

Place in the flow (search side): readers -> inputs -> preprocess -> fold -> model -> refine
(ephemeris, offgrid) -> vetting -> predict -> views, plots, results -> outputs, **batch**.

Where the work runs
-------------------
- ``workers=1`` and no scheduler: in this process, one input after another.
- ``workers=N > 1``: a local Dask cluster of N worker processes with one thread each
  (``distributed.LocalCluster``), started and stopped by the run.
- ``scheduler="tcp://host:8786"``: an existing Dask cluster (e.g. dask-jobqueue's
  ``SLURMCluster``); its workers must see the input files and the model file.

Each worker loads the model once (a cache keyed by the model file) and runs torch on one
thread, so N workers use N cores. Inputs are streamed from
:func:`exoperiod.search.inputs.iter_inputs` and at most ``IN_FLIGHT_PER_THREAD`` tasks per worker
thread are submitted at a time, so the driver's memory does not grow with the archive.
A task predicts ``INPUTS_PER_TASK`` inputs, so that scheduling costs little beside a
0.15-s quarter. A worker that dies has its task run again on another worker (Dask
reschedules it); a task that kills ``distributed.scheduler.allowed-failures`` workers in a
row is split into one task per input, run one at a time with nothing else in flight (a
worker's death also fails the tasks queued on it), and an input that still kills its
workers becomes an error row instead of stopping the run.

Each result goes to the outputs (:mod:`exoperiod.search.outputs`) as soon as it arrives. Inputs
that every requested output already holds are skipped, which makes re-running a killed
command a resume.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Literal

from ..errors import ExoperiodError
from ..grid import PeriodGrid
from .inputs import TableColumns, iter_inputs
from .model import DEFAULT_MODEL_PATH, PeriodModel
from .outputs import JsonResults, ParquetResults
from .predict import Prediction, predict_paths

#: Inputs predicted by one Dask task. A task costs the cluster ~17 ms of CPU (scheduling,
#: serialisation; benchmarks/results/scale.md) where a Kepler quarter takes ~0.15 s, so one
#: input per task spends ~10 % on the engine; 8 bring that under 2 %, and a killed run loses
#: at most 8 inputs per task in flight.
INPUTS_PER_TASK = 8
#: Tasks submitted per worker thread: one running, one queued so that no worker waits
#: for the driver between two tasks.
IN_FLIGHT_PER_THREAD = 2
#: Tasks in flight while a cluster has no worker yet (a batch job still in the queue).
MIN_IN_FLIGHT = 4
#: How often the in-flight bound follows the cluster's size (workers join and leave).
RESIZE_SECONDS = 5.0
#: Seconds to wait for an existing scheduler to answer.
CONNECT_TIMEOUT_SECONDS = 30

#: Dask settings of the workers ``--workers N`` starts (the README gives them as a YAML
#: file for a cluster of your own), measured with benchmarks/scale.py on 2 workers:
#: - no statistical profiler: sampling each worker's stack every 10 ms cost 5 % of the
#:   throughput, for a dashboard tab that triage does not need;
#: - no ``MALLOC_TRIM_THRESHOLD_`` (the nanny sets 65536 to hand freed memory back to the
#:   system): setting it turns off glibc's adaptive mmap threshold, so every large array
#:   of a 4-year light curve is mapped and faulted in afresh, +40 % CPU per light curve.
#:   Without it a worker keeps its peak heap (~1 GB), which the bounded tasks bound.
WORKER_DASK_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
}

ResultCallback = Callable[[dict], None]


class ClusterError(ExoperiodError):
    """The cluster cannot run the predictions at all (e.g. another environment there)."""


@dataclass(frozen=True)
class PredictOptions:
    """The options of :func:`exoperiod.search.predict.predict_paths` that a batch passes on."""

    top_k: int = 3
    max_planets: int = 3
    flux_column: Literal["pdcsap", "sap"] = "pdcsap"
    use_tls: bool = False
    plots_dir: str | None = None
    views_dir: str | None = None
    off_grid: bool = True
    columns: TableColumns | None = None
    period_range_days: tuple[float, float] | None = None

    def as_kwargs(self) -> dict:
        """The keyword arguments of ``predict_paths`` (shallow: ``columns`` stays a
        TableColumns, which ``dataclasses.asdict`` would turn into a dict)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class BatchSummary:
    """Counts of a batch run."""

    predicted: int = 0
    failed: int = 0
    skipped: int = 0
    dashboard: str | None = None


def predict_archive(
    paths: Iterable[str | os.PathLike],
    model: str | os.PathLike | None = None,
    options: PredictOptions = PredictOptions(),
    *,
    workers: int = 1,
    scheduler: str | None = None,
    out: str | os.PathLike | None = None,
    json_out: str | os.PathLike | None = None,
    on_result: ResultCallback | None = None,
    on_start: Callable[[BatchSummary], None] | None = None,
    rows_per_part: int | None = None,
    grid: PeriodGrid | None = None,
) -> BatchSummary:
    """Predict every input of ``paths``, streaming results to the outputs.

    Parameters
    ----------
    paths : iterable of path
        Files, folders, globs and ``@list`` files (:func:`exoperiod.search.inputs.iter_inputs`).
    model : path or None
        Model file (None: the shipped model). Loaded here first, so that a bad file is
        one error before any work starts; workers load it again from the same path.
    options : PredictOptions
    workers : int
        Worker processes of a local Dask cluster; 1 runs in this process.
    scheduler : str, optional
        Address of a running Dask scheduler (then ``workers`` must be 1).
    out : path, optional
        Parquet dataset folder (:class:`exoperiod.search.outputs.ParquetResults`).
    json_out : path, optional
        JSON list of the predictions (:class:`exoperiod.search.outputs.JsonResults`).
    on_result : callable, optional
        Called with each new result (a :meth:`Prediction.to_dict` with ``index``).
    on_start : callable, optional
        Called once the engine is up, with the summary (``dashboard`` set on a cluster).
    rows_per_part : int, optional
        Rows per Parquet part (default :data:`exoperiod.search.outputs.ROWS_PER_PART`).
    grid : PeriodGrid, optional
        If given, the model must have been trained on it (a config's grid).

    Returns
    -------
    BatchSummary

    Raises
    ------
    ModelLoadError
        The model file cannot be used.
    OutputError
        An output cannot be written (one line naming the path and the cause).
    ClusterError
        The scheduler cannot be reached, or the cluster fails to run a task for a
        reason no input causes.
    """
    if workers > 1 and scheduler is not None:
        raise ValueError("give --workers or --scheduler, not both")
    model_path = str(Path(model).resolve()) if model is not None else str(DEFAULT_MODEL_PATH)
    loaded = PeriodModel.load(model_path, grid=grid)
    outputs = []
    try:
        if out is not None:
            parts = {} if rows_per_part is None else {"rows_per_part": rows_per_part}
            outputs.append(ParquetResults(out, loaded.grid.centers_days, **parts))
        if json_out is not None:
            outputs.append(JsonResults(json_out))
        summary = BatchSummary()
        jobs = _pending(iter_inputs(paths), outputs, summary)
        first = next(jobs, None)  # no cluster to start when every input is done
        jobs = itertools.chain([first] if first else [], jobs)
        if first is None or (workers == 1 and scheduler is None):
            _announce(on_start, summary)
            results = (_predict_row(index, path, loaded, options) for index, path in jobs)
            _collect(results, outputs, summary, on_result)
        else:
            with _client(workers, scheduler) as client:
                summary.dashboard = client.dashboard_link
                _announce(on_start, summary)
                _collect(_on_dask(client, jobs, model_path, options), outputs, summary, on_result)
        for output in outputs:
            output.finish()
    finally:
        for output in outputs:
            output.close()
    return summary


def _announce(on_start: Callable[[BatchSummary], None] | None, summary: BatchSummary) -> None:
    if on_start is not None:
        on_start(summary)


def _pending(inputs: Iterator[str], outputs: list, summary: BatchSummary) -> Iterator[tuple[int, str]]:
    """(index, path) of the inputs some output does not hold yet."""
    for index, path in enumerate(inputs):
        for output in outputs:
            output.seen(index, path)
        if outputs and all(path in output.done for output in outputs):
            summary.skipped += 1
        else:
            yield index, path


def _collect(results: Iterator[dict], outputs: list, summary: BatchSummary,
             on_result: ResultCallback | None) -> None:
    for row in results:
        for output in outputs:
            output.add(row)
        if row["error"]:
            summary.failed += 1
        else:
            summary.predicted += 1
        if on_result is not None:
            on_result(row)


def _predict_row(index: int, path: str, model: PeriodModel, options: PredictOptions) -> dict:
    prediction = predict_paths([path], model, **options.as_kwargs())[0]
    return {**prediction.to_dict(), "index": index}


# --------------------------------------------------------------------- on a Dask cluster

_WORKER_MODELS: dict[str, PeriodModel] = {}


def worker_model(model_path: str) -> PeriodModel:
    """The model of this worker process, loaded on first use."""
    if model_path not in _WORKER_MODELS:
        import torch

        torch.set_num_threads(1)  # one core per worker: the cluster's size is the parallelism
        _WORKER_MODELS[model_path] = PeriodModel.load(model_path)
    return _WORKER_MODELS[model_path]


def _predict_on_worker(task: list[tuple[int, str]], model_path: str, options: PredictOptions) -> list[dict]:
    """The task run on a Dask worker: one row per (index, path) of ``task``."""
    model = worker_model(model_path)
    return [_predict_row(index, path, model, options) for index, path in task]


@contextmanager
def _client(workers: int, scheduler: str | None) -> Iterator:
    """A client of the scheduler, or of a local cluster that lives as long as it."""
    from distributed import Client

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT_SECONDS)
        except OSError as err:
            raise ClusterError(f"cannot reach the Dask scheduler at {scheduler} "
                               f"({' '.join(str(err).split())})") from None
        with client:
            yield client
        return
    with local_cluster(workers) as cluster, Client(cluster, set_as_default=False) as client:
        yield client


@contextmanager
def local_cluster(workers: int) -> Iterator:
    """The local Dask cluster that ``--workers N`` starts: N processes of one thread each."""
    import dask
    from distributed import LocalCluster

    # A random dashboard port: several users (or runs) share one machine.
    with dask.config.set(WORKER_DASK_CONFIG), \
            LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                         silence_logs=logging.ERROR) as cluster:
        yield cluster


@contextmanager
def dask_executor(workers: int = 1, scheduler: str | None = None) -> Iterator[tuple[Executor, int]]:
    """A ``concurrent.futures`` executor on a Dask cluster, and its number of worker threads.

    For code written against executors, such as the dataset build
    (:func:`exoperiod.learning.datasets.build_datasets`): a local cluster of ``workers``
    processes, or the running cluster at ``scheduler``.
    """
    with _client(workers, scheduler) as client:
        yield client.get_executor(pure=False), max(1, sum(client.nthreads().values()))


def _on_dask(client, jobs: Iterator[tuple[int, str]], model_path: str, options: PredictOptions) -> Iterator[dict]:
    """Results of ``jobs`` in the order their tasks complete, with a bounded number in flight."""
    from distributed import as_completed
    from distributed.scheduler import KilledWorker

    run = uuid.uuid4().hex[:8]
    in_flight: dict[str, list[tuple[int, str]]] = {}
    # The inputs of a task that killed its workers, to find the culprit: each is tried in a
    # task of its own with nothing else on the cluster, because a worker's death also fails
    # the tasks queued behind it there (dask/distributed#5234: every task assigned to a
    # worker that dies counts a failure), and a suspect that dies alone is the culprit.
    alone: list[tuple[int, str]] = []
    suspects: set[str] = set()  # keys of those tasks
    pending = as_completed(loop=client.loop)

    def limit() -> int:
        return max(MIN_IN_FLIGHT, IN_FLIGHT_PER_THREAD * sum(client.nthreads().values()))

    def top_up(bound: int) -> None:
        while pending.count() < bound:
            if alone and pending.count():
                return
            suspect = bool(alone)
            task = [alone.pop(0)] if suspect else list(itertools.islice(jobs, INPUTS_PER_TASK))
            if not task:
                return
            future = client.submit(_predict_on_worker, task, model_path, options, pure=False,
                                   key=f"exoperiod-predict-{run}-{task[0][0]}-{'alone' if suspect else len(task)}")
            in_flight[future.key] = task
            pending.add(future)
            if suspect:
                suspects.add(future.key)
                return

    bound, resized = limit(), time.monotonic()
    top_up(bound)
    for future in pending:
        task = in_flight.pop(future.key)
        suspect = future.key in suspects
        suspects.discard(future.key)
        try:
            rows = future.result()
        except KilledWorker:
            if not suspect:
                alone.extend(task)
                rows = []
            else:
                index, path = task[0]
                rows = [{**Prediction.failed(path, f"{path}: the workers running it died (out of memory or a crash) "
                                                   "every time it was tried").to_dict(), "index": index}]
        except Exception as err:  # noqa: BLE001 - predict_paths catches what an input can cause
            inputs = f"a task of {len(task)} inputs starting at {task[0][1]}" if len(task) > 1 else task[0][1]
            raise ClusterError(f"the Dask cluster could not run the prediction of {inputs} "
                               f"({type(err).__name__}: {' '.join(str(err).split())}); the scheduler and the "
                               "workers need exoperiod and its dependencies installed as here") from None
        future.release()
        yield from rows
        if time.monotonic() - resized > RESIZE_SECONDS:
            bound, resized = limit(), time.monotonic()
        top_up(bound)
