"""Period, mid-time and duration of the planets of the simulated test split, measured on their raw light curves.

Why
---
`exoperiod evaluate` refines the series a dataset stored: detrended once already when the
dataset was built, on the 29.4-min grid. A user hands `predict` the raw light curve. This
benchmark regenerates the raw light curve of every test-split sample of ``data/default``
from its seed (``learning.curves.regenerated``; the samples whose seed no longer gives the
stored series are skipped), runs `predict` on it (top 3, one planet pass)
and, where the first candidate is the brightest planet (period within 2 %), sets its
period, first mid-time and T14 against the injected ones. Run it once per code version
(``--label``), then compare (``--report``).

Usage (``--label`` needs a version of exoperiod from 2026-11-26 on, with ``regenerated``;
``timing_box.csv`` was written by the one before, which compared the planets instead)::

    PYTHONPATH=/path/to/old/src python benchmarks/timing.py --label box
    PYTHONPATH=src python benchmarks/timing.py --label template
    python benchmarks/timing.py --report box,template      # -> benchmarks/results/timing.md

Needs ``data/default`` (``exoperiod train --preset default`` builds it) and the shared
data it was built with (its real backgrounds decide the draws of every sample).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from exoperiod.config import load_config  # noqa: E402
from exoperiod.files import atomic_write_text  # noqa: E402
from exoperiod.learning.curves import regenerated, training_backgrounds  # noqa: E402
from exoperiod.learning.datasets.shards import read_series  # noqa: E402
from exoperiod.learning.datasets.store import read_split  # noqa: E402
from exoperiod.learning.evaluate import PERIOD_TOLERANCE  # noqa: E402
from exoperiod.paths import shared_data_dir  # noqa: E402

RESULTS = Path(__file__).with_name("results")
DATA = Path("data/default")
#: SNR of the planets in the table's second row: where timing, not noise, limits T14.
HIGH_SNR = 100.0


def run(out: Path) -> None:
    from exoperiod.search.model import DEFAULT_MODEL_PATH, PeriodModel
    from exoperiod.search.predict import predict

    model = PeriodModel.load(DEFAULT_MODEL_PATH)
    config, grid = model.config, model.config.grid()
    real_files = training_backgrounds(shared_data_dir())
    rows = []
    samples = [s for s in read_split(DATA, config, "test")
               if s.kind == "curves" and any(grid.contains(p["period_days"]) for p in s.planets)]
    for sample, (flux, _, _) in zip(samples, read_series(samples)):
        truth = max((p for p in sample.planets if grid.contains(p["period_days"])), key=lambda p: p["snr"])
        again = regenerated(sample.sample_id, flux, config, real_files)
        if again is None:
            continue
        found = predict(again.raw, model, top_k=3, max_planets=1).candidates
        if not found or abs(found[0].period_days / truth["period_days"] - 1) >= PERIOD_TOLERANCE:
            continue
        c = found[0]
        rows.append({"sample_id": sample.sample_id, "source": again.source, "snr": truth["snr"],
                     "period_days": truth["period_days"], "t0_days": truth["t0_days"],
                     "duration_hours": truth["duration_hours"], "found_period_days": c.period_days,
                     "period_err_days": c.period_err_days, "found_t0_days": c.t0_btjd_or_bkjd,
                     "found_duration_hours": c.duration_hours})
        print(f"{len(rows)} {sample.sample_id}", flush=True)
    pd.DataFrame(rows).to_csv(out, index=False)


def _measures(df: pd.DataFrame, duration_grid) -> dict[str, str]:
    # Not in the code before it, which --label may run: imported for the report only.
    from exoperiod.learning.evaluate import other_spacing, within_one_bin

    period = df["period_days"]
    t0_min = np.abs((df["found_t0_days"] - df["t0_days"] + 0.5 * period) % period - 0.5 * period) * 1440
    pairs = list(zip(df["found_duration_hours"], df["duration_hours"]))
    hits = {grid.spacing: [within_one_bin(grid, found, true) for found, true in pairs]
            for grid in (duration_grid, other_spacing(duration_grid))}
    return {
        "n": str(len(df)),
        "median \\|P / P_true - 1\\|": f"{np.median(np.abs(df['found_period_days'] / period - 1)):.2g}",
        "median \\|t0 error\\| (min)": f"{np.median(t0_min):.2f}",
        "median \\|P - P_true\\| / period_err_days": f"{np.median(np.abs(df['found_period_days'] - period) / df['period_err_days']):.2f}",
        "median \\|T14 / T14_true - 1\\|": f"{np.median(np.abs(df['found_duration_hours'] / df['duration_hours'] - 1)):.3f}",
        **{f"T14 within one bin, {spacing} grid": f"{100 * np.mean(h):.1f} %" for spacing, h in sorted(hits.items())},
    }


def report(labels: list[str], folder: Path) -> str:
    duration_grid = load_config().duration_grid()
    tables = {label: pd.read_csv(folder / f"timing_{label}.csv") for label in labels}
    lines = ["# Period, mid-time and duration on the raw light curves of the test split",
             "", "`timing.py` for the set-up. Planets whose first candidate is at their period.", ""]
    for name, keep in (("all", lambda df: df["snr"] > 0), (f"SNR >= {HIGH_SNR:g}", lambda df: df["snr"] >= HIGH_SNR)):
        measured = {label: _measures(df[keep(df)], duration_grid) for label, df in tables.items()}
        keys = list(next(iter(measured.values())))
        lines += [f"## {name}", "", "| measure | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
        lines += ["| " + key + " | " + " | ".join(measured[label][key] for label in labels) + " |" for key in keys]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--label", default=None, help="run the test split into timing_<label>.csv")
    parser.add_argument("--report", default=None, help="comma-separated labels to compare")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.label:
        run(args.out / f"timing_{args.label}.csv")
    if args.report:
        table = report(args.report.split(","), args.out)
        atomic_write_text(args.out / "timing.md", table)
        print(table)


if __name__ == "__main__":
    main()
