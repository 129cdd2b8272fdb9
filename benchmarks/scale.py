"""Archive-scale predict: one process vs a local Dask cluster, and what a whole archive costs.

Simulated Kepler quarters (``exoperiod.learning.simulate``, written as .npz) are predicted with
``exoperiod.search.batch.predict_archive`` into a Parquet dataset, once in this process and once
on a local Dask cluster of ``--workers`` processes. Measured:

- **throughput** (light curves per second): end to end (cluster start-up included) and
  steady (results after the first one per worker, over the time since then);
- **CPU per light curve**: the CPU seconds ``predict`` itself reports (``timing_seconds``:
  reading, preprocessing, model, refinement), which do not depend on what else the
  machine runs, unlike wall times on a shared machine;
- **memory per worker**: peak resident memory of each worker process;
- **overhead per task**: the CPU of all the run's processes (driver, scheduler, workers)
  not spent inside ``predict``, per light curve: imports and model loading on the
  workers, scheduling, serialisation, Parquet writing.

The same for 4-year (Kepler Q1-Q17 long) simulated light curves; and the CPU, when
``../shared/data`` is there, of real TESS 2-minute SPOC sectors; from these the cost of
the whole Kepler archive (~200,000 stars x 17 quarters) and of one TESS year (~1 million
light curves) in core-hours, and in wall hours on a 1,000-core cluster at the measured
parallel efficiency. The per-light-curve cost changes with the search; re-run after it
does. Writes ``benchmarks/results/scale.md``.

Usage::

    PYTHONPATH=src python benchmarks/scale.py [--quarters 2000] [--long 100] [--workers 2]
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

# One core for the one-process baseline, as Dask's nanny sets for each worker: without
# this, numpy's BLAS threads spin on the other core and the baseline burns ~1.8x the CPU.
for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402 - after the thread settings, which numpy reads on import
import torch  # noqa: E402

from exoperiod.learning.simulate import simulate_star  # noqa: E402
from exoperiod.paths import shared_data_dir  # noqa: E402
from exoperiod.search.batch import INPUTS_PER_TASK, local_cluster, predict_archive, worker_model  # noqa: E402
from exoperiod.search.model import DEFAULT_MODEL_PATH  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "scale.md"
KEPLER_STARS, KEPLER_QUARTERS = 200_000, 17
TESS_LIGHTCURVES_PER_YEAR = 1_000_000
CLUSTER_CORES = 1_000
FOUR_YEARS_DAYS = 1460.0
#: The populations run through both engines (folder name: what the table calls them).
POPULATIONS = {"quarters": "simulated 90-d Kepler quarter", "long": "simulated 4-year Kepler light curve"}


def _write_quarters(folder: Path, n: int, seed: int, duration_days: float = 90.0) -> None:
    for i in range(n):
        lc, _ = simulate_star(seed + i, f"SIM-{seed + i}", duration_days=duration_days)
        np.savez(folder / f"sim{i:05d}.npz", time=lc.time.value, flux=lc.flux.value, flux_err=lc.flux_err.value)


def _cpu_seconds(row: dict) -> float:
    """CPU of one prediction as ``predict`` measures it (all stages but the wall clock)."""
    return sum(v for k, v in row["timing_seconds"].items() if k != "wall")


def _run(inputs: list[str], out: Path, workers: int) -> dict:
    """Predict ``inputs``; times, CPU, rows and per-process peak memory.

    CPU is counted in every process of the run (this one, which also hosts a local
    cluster's scheduler, and the workers), so that the overhead per task does not
    depend on how busy the machine is.
    """
    rows, arrivals = [], []
    start, cpu_here = time.perf_counter(), time.process_time()

    def collect(row: dict) -> None:
        rows.append(row)
        arrivals.append(time.perf_counter())

    if workers == 1:
        predict_archive(inputs, out=out, on_result=collect)
        cpu_workers, startup = 0.0, {}
        peaks_mb = [resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024]
    else:
        from distributed import Client

        with local_cluster(workers) as cluster, Client(cluster, set_as_default=False) as client:
            # Start-up (imports, model loading) is measured apart: an archive run amortises it.
            startup = client.run(_load_model)
            before = client.run(time.process_time)
            predict_archive(inputs, scheduler=cluster.scheduler_address, out=out, on_result=collect)
            after = client.run(time.process_time)
            cpu_workers = sum(after[w] - before[w] for w in before)
            peaks_mb = sorted(client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024).values())
    wall = time.perf_counter() - start
    cpu_total = time.process_time() - cpu_here + cpu_workers
    # Steady: the rows after each worker's first task, over the time since the last of those.
    first = min(len(arrivals) - 1, workers * INPUTS_PER_TASK if workers > 1 else 1)
    predict_cpu = [_cpu_seconds(r) for r in rows]
    return {"n": len(rows), "errors": sum(bool(r["error"]) for r in rows), "wall": wall,
            "end_to_end": len(rows) / wall,
            "steady": (len(arrivals) - first) / (arrivals[-1] - arrivals[first - 1]),
            "cpu": float(np.mean(predict_cpu)), "overhead": (cpu_total - sum(predict_cpu)) / len(rows),
            "startup": float(np.mean(list(startup.values()))) if startup else float("nan"), "peaks_mb": peaks_mb}


def _load_model() -> float:
    """CPU seconds a fresh worker spends importing exoperiod and loading the model."""
    start = time.process_time()
    worker_model(str(DEFAULT_MODEL_PATH))
    return time.process_time() - start


def _tess_two_minute(limit: int) -> list[str]:
    """Real TESS 2-minute SPOC sectors of the shared data folder (none without it)."""
    root = shared_data_dir()
    if root is None:
        return []
    with (root / "MANIFEST.csv").open() as manifest:
        rows = [r for r in csv.DictReader(manifest)
                if r["mission"] == "TESS" and r["format"] == "FITS" and float(r["cadence_minutes"]) < 2.5
                and int(r["n_points"]) > 10_000]
    return [str(root / r["file"]) for r in rows[:limit]]


def _single_cpu(inputs: list[str], out: Path) -> tuple[float, int]:
    rows: list[dict] = []
    predict_archive(inputs, out=out, on_result=rows.append)
    good = [r for r in rows if not r["error"]]
    return (float(np.mean([_cpu_seconds(r) for r in good])) if good else float("nan")), len(good)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quarters", type=int, default=2000, help="simulated 90-day quarters")
    parser.add_argument("--long", type=int, default=100, help="simulated 4-year light curves")
    parser.add_argument("--tess", type=int, default=4, help="real TESS 2-min sectors from ../shared/data (CPU only)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(1)  # as on a worker: the comparison is one core against N
    load_before = os.getloadavg()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "quarters").mkdir()
        (tmp / "long").mkdir()
        _write_quarters(tmp / "quarters", args.quarters, args.seed)
        _write_quarters(tmp / "long", args.long, args.seed + args.quarters, duration_days=FOUR_YEARS_DAYS)
        runs = {}
        for population in POPULATIONS:
            inputs = [str(p) for p in sorted((tmp / population).iterdir())]
            runs[population] = (_run(inputs, tmp / f"{population}-one.parquet", 1),
                                _run(inputs, tmp / f"{population}-many.parquet", args.workers))
        tess_cpu, n_tess = _single_cpu(_tess_two_minute(args.tess), tmp / "tess.parquet")
    load_after = os.getloadavg()

    one, many = runs["quarters"]
    long_cpu = runs["long"][0]["cpu"]
    # Measured within the cluster run, so that the machine's load (which changes between
    # runs on a shared machine) cancels: the share of the workers' CPU spent predicting.
    efficiency = many["cpu"] / (many["cpu"] + max(many["overhead"], 0.0))
    archive = [
        ("Kepler, per quarter", KEPLER_STARS * KEPLER_QUARTERS, one["cpu"], "simulated 90-d quarter"),
        ("Kepler, stitched Q1-Q17 per star", KEPLER_STARS, long_cpu, "simulated 4-year light curve"),
        ("TESS, one year", TESS_LIGHTCURVES_PER_YEAR,
         tess_cpu if n_tess else one["cpu"], "real 2-min SPOC sector" if n_tess else "simulated quarter (proxy)"),
    ]
    lines = [
        "# Archive-scale predict: one process vs a local Dask cluster",
        "",
        f"`python benchmarks/scale.py --quarters {args.quarters} --long {args.long} --tess {args.tess} "
        f"--workers {args.workers} --seed {args.seed}` on {time.strftime('%Y-%m-%d')}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        "the shipped model, `predict` defaults (top-k 3, up to 3 planets).",
        f"Load average before/after: {load_before[0]:.1f} / {load_after[0]:.1f} "
        "(a shared machine: wall times and the ratio are pessimistic when it exceeds the core count; "
        "CPU per light curve is not affected).",
        "",
        "| light curves | engine | n | errors | wall s | end-to-end lc/s | steady lc/s | "
        "CPU s per lc in predict | overhead CPU s per lc | peak memory per process MB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for population, pair in runs.items():
        for name, r in zip(("this process", f"local cluster, {args.workers} workers"), pair):
            lines.append(f"| {POPULATIONS[population]} | {name} | {r['n']} | {r['errors']} | {r['wall']:.1f} | "
                         f"{r['end_to_end']:.2f} | {r['steady']:.2f} | {r['cpu']:.3f} | {r['overhead']:.3f} | "
                         f"{', '.join(f'{m:.0f}' for m in r['peaks_mb'])} |")
    ratios = "; ".join(f"{POPULATIONS[p]}: **{many_['steady'] / one_['steady']:.2f}x** steady, "
                       f"{many_['end_to_end'] / one_['end_to_end']:.2f}x end to end"
                       for p, (one_, many_) in runs.items())
    lines += [
        "",
        f"Throughput ratio, {args.workers} workers / one process ({INPUTS_PER_TASK} light curves per Dask task), "
        f"on this machine at its load: {ratios}. On the quarters' cluster run {efficiency:.0%} of the CPU went "
        f"into `predict` (start-up apart: {many['startup']:.1f} CPU s per worker to import and load the model), "
        f"i.e. {args.workers * efficiency:.2f}x on {args.workers} free cores.",
        "",
        f"CPU per light curve: real TESS 2-min sector {tess_cpu:.2f} s (n = {n_tess}).",
        "",
        f"## Extrapolation (paper estimate, {CLUSTER_CORES:,} cores at {efficiency:.0%} efficiency)",
        "",
        "| archive | light curves | CPU s per lc (measured on) | core-hours | wall hours on 1,000 cores |",
        "|---|---|---|---|---|",
    ]
    for name, count, cpu, basis in archive:
        core_hours = count * cpu / efficiency / 3600  # the workers' cores are held for the overhead too
        lines.append(f"| {name} | {count:,} | {cpu:.2f} ({basis}) | {core_hours:,.0f} | "
                     f"{core_hours / CLUSTER_CORES:.1f} |")
    lines += ["", "Not in these numbers: reading from a shared filesystem, and the scheduler: Dask's "
              "documentation puts its overhead near 1 ms per task, so 1,000 cores finishing a task each "
              "per second keep it about busy."]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
