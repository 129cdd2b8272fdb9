"""Samples per second of dataset building, end to end (read or simulate, inject,
preprocess, label, write, journal).

Measures simulated synthetics with 1 and 2 workers, and the local source on the real
light curves of ../shared/data (positives, negatives and synthetics), and writes
``benchmarks/results/dataset_throughput.md``.

Two rates are given: *end to end* (the build's wall time, worker start-up included) and
*steady* (stars finished after the first one per worker, over the time since then):
spawned workers import lightkurve and load numba's cache for several seconds first.

Usage::

    PYTHONPATH=src python benchmarks/dataset_throughput.py [--synthetics 1000] [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from exoperiod.config import load_config
from exoperiod.learning.datasets import build_datasets
from exoperiod.paths import shared_data_dir

RESULTS = Path(__file__).resolve().parent / "results" / "dataset_throughput.md"


def _timed_build(config, workers: int, **options) -> dict:
    """Build; return samples, failures, seconds and the two rates.

    The steady rate counts stars finished after each worker's first one, over the time
    since then; it is given for one-sample-per-star builds (simulated) only.
    """
    finished: list[float] = []
    start, cpu = time.perf_counter(), time.process_time()
    summary = build_datasets(config, workers=workers, progress=lambda kind, done, total: finished.append(
        time.perf_counter()), **options)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    stars = finished[1:]  # the first call announces the dataset
    steady = (len(stars) - workers) / (stars[-1] - stars[workers - 1]) if len(stars) > workers + 1 else float("nan")
    return {"written": summary.written, "failed": summary.failed, "seconds": seconds,
            "end_to_end": summary.written / seconds, "steady": steady,
            # With one worker all the work is in this process: its CPU time per sample
            # does not depend on what else the machine runs.
            "cpu_ms": 1000 * cpu / summary.written if workers == 1 else float("nan")}


def _row(source: str, datasets: str, workers: int, result: dict) -> str:
    steady = f"{result['steady']:.1f}" if source == "simulated" else "-"
    cpu = f"{result['cpu_ms']:.1f}" if workers == 1 else "-"
    return (f"| {source} | {datasets} | {workers} | {result['written']} | {result['failed']} | "
            f"{result['seconds']:.1f} | {result['end_to_end']:.1f} | {steady} | {cpu} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetics", type=int, default=1000, help="simulated synthetic stars per run")
    parser.add_argument("--local-synthetics", type=int, default=100, help="synthetics from real negatives")
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke test")
    args = parser.parse_args()
    count = 60 if args.quick else args.synthetics
    base = load_config()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # Warm-up: numba's on-disk cache and the imports of this process.
        build_datasets(base.model_copy(update={"output_root": str(tmp / "warm"), "synthetic_samples_count": 5}),
                       only=("synthetic",))
        for workers in (1, 2):
            config = base.model_copy(update={"output_root": str(tmp / f"sim{workers}"),
                                             "synthetic_samples_count": count})
            result = _timed_build(config, workers, only=("synthetic",))
            rows.append(_row("simulated", "synthetic", workers, result))
            print(rows[-1], flush=True)
        shared = shared_data_dir()
        if shared is None:
            rows.append("| local | (../shared/data not found) | - | - | - | - | - | - | - |")
        else:
            for workers in (1, 2):
                config = base.model_copy(update={
                    "output_root": str(tmp / f"local{workers}"),
                    "koi_table": str(shared / "tables" / "koi_cumulative.csv"),
                    "synthetic_samples_count": 20 if args.quick else args.local_synthetics,
                })
                result = _timed_build(config, workers, source="local", local_dir=shared)
                rows.append(_row("local (../shared/data)", "positive+negative+synthetic", workers, result))
                print(rows[-1], flush=True)
    load = os.getloadavg()
    report = "\n".join([
        "# Dataset building throughput",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M')} on {platform.machine()} / {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; load average at the end {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} "
        "(other jobs share the machine).",
        f"Command: `PYTHONPATH=src python benchmarks/dataset_throughput.py{' --quick' if args.quick else ''}`.",
        "",
        "A simulated sample is one quarter-long window (4096 cadences); a real light curve gives one sample "
        "per window (about 17 for a stitched Q1-Q17 file). *End to end* divides the samples by the build's "
        "wall time, worker start-up included; *steady* (simulated only) leaves out each worker's first "
        "star (workers spend seconds importing lightkurve and loading numba's cache). *CPU ms/sample* "
        "(one worker: all the work in one process) does not depend on the machine's other load; "
        "two idle cores make about 2000 / that many samples a second.",
        "",
        "| source | datasets | workers | samples | failures | seconds | samples/s end to end | "
        "samples/s steady | CPU ms/sample |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
    ])
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(report)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
