"""CPU of one ``predict`` per light curve, start-up excluded (issue 9: the speed budget).

Light curves
------------
- **4-year, simulated**: ``--n`` 16-quarter Kepler light curves with one planet, as
  ``long_curves.py`` builds them (its seeds, total SNR 7-20 in turn);
- **4-year, real**: the Kepler Q1-Q17 files of ``../shared/data``;
- **quarter, real**: the single Kepler quarters (``*_llc.fits``) of ``../shared/data``.

What is timed
-------------
``process_time`` of one process with one thread, after a warm-up prediction (numba,
torch and caches loaded):

- ``read``: reading the file (:func:`exoperiod.search.inputs.as_lightcurve`; 0 for the
  simulated light curves, which are in memory);
- ``predict``: the whole default :func:`exoperiod.search.predict.predict` of the light
  curve read (up to three planet passes, refinement, the search outside the grid);
- ``model path``: :func:`exoperiod.search.preprocess.to_series` and
  :meth:`exoperiod.search.model.PeriodModel.score_series` (preprocess, fold, scorer).

Budget (issue 9): ``predict`` <= 1.5 s per 4-year light curve and <= 0.1 s per quarter;
the model path <= 1 s per 4-year light curve (the full-baseline BLS of
``long_curves.py`` takes ~27 s: 25x). The table goes to stdout and ``--out`` (Markdown).

Usage::

    PYTHONPATH=src python benchmarks/predict_cost.py [--n 5] [--out benchmarks/results/predict_cost.md]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from exoperiod.config import load_config  # noqa: E402
from exoperiod.learning.curves import make_sample  # noqa: E402
from exoperiod.paths import shared_data_dir  # noqa: E402
from exoperiod.search.inputs import as_lightcurve  # noqa: E402
from exoperiod.search.model import PeriodModel  # noqa: E402
from exoperiod.search.predict import predict  # noqa: E402
from exoperiod.search.preprocess import to_series  # noqa: E402

#: Total SNRs of the simulated 4-year light curves, in turn (``long_curves.py``'s tiers).
TIERS = (7, 8, 10, 12, 15, 20)
N_QUARTERS = 16


def simulated(n: int, config) -> dict[str, object]:
    """``n`` 4-year light curves of ``long_curves.py`` (its seeds), detrended."""
    out = {}
    for i in range(n):
        tier = TIERS[i % len(TIERS)]
        seed = 10_000_000 + 1000 * tier + i // len(TIERS)
        sample = make_sample(seed, config, layout="kepler", n_segments=N_QUARTERS, n_planets=1,
                             snr_range=(tier, tier))
        out[f"sim {seed}"] = sample.raw
    return out


def cpu_seconds(run) -> float:
    start = time.process_time()
    run()
    return time.process_time() - start


def measure(inputs: dict[str, object], model: PeriodModel) -> list[dict[str, float]]:
    rows = []
    for name, given in inputs.items():
        start = time.process_time()
        lc = as_lightcurve(given)
        read = time.process_time() - start

        def model_path(lc=lc):
            series = to_series(lc, model.config)
            model.score_series(series.flux, series.mask)

        rows.append({"name": name, "read": read, "predict": cpu_seconds(lambda lc=lc: predict(lc, model)),
                     "model path": cpu_seconds(model_path)})
        print(f"{name}: read {read:.3f} s, predict {rows[-1]['predict']:.3f} s, "
              f"model path {rows[-1]['model path']:.3f} s", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=5, help="simulated 4-year light curves")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = load_config()
    model = PeriodModel.load()
    root = shared_data_dir()
    kepler = root / "lightcurves" / "kepler" if root is not None else None
    groups = {"4-year, simulated": simulated(args.n, config)}
    if kepler is not None:
        groups["4-year, real"] = {p.name: str(p) for p in sorted(kepler.glob("*/*_Q1-Q17_*.npz"))}
        groups["quarter, real"] = {p.name: str(p) for p in sorted(kepler.glob("*/kplr*_llc.fits"))}
    predict(next(iter(groups["4-year, simulated"].values())), model)  # warm-up: numba, torch, caches
    keys = ("predict", "model path", "read")
    lines = ["| light curves | n | " + " | ".join(f"{key} median (max) s" for key in keys) + " |",
             "|---|---|" + "---|" * len(keys)]
    for group, inputs in groups.items():
        as_lightcurve(next(iter(inputs.values())))  # warm-up: the reader's imports
        rows = measure(inputs, model)
        cells = [f"{statistics.median(r[key] for r in rows):.3f} ({max(r[key] for r in rows):.3f})" for key in keys]
        lines.append(f"| {group} | {len(rows)} | " + " | ".join(cells) + " |")
    table = "\n".join([f"# CPU of `predict` per light curve ({time.strftime('%Y-%m-%d')}, `predict_cost.py`)", "",
                       "process_time of one process, one thread, start-up excluded; seconds.", "", *lines]) + "\n"
    print(table)
    if args.out is not None:
        args.out.write_text(table)


if __name__ == "__main__":
    main()
