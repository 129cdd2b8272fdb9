"""Planets outside the model grid: does ``predict`` report them, and how many false ones?

Written for issue 9, when the BLS scan of the off-grid ranges (2 s on a 4-year light
curve, searching only its first 200 days) gave way to the coherent fold
(:mod:`exoperiod.search.offgrid`): the same cases are run with each version of the code
(``PYTHONPATH`` pointing at one or the other), into a cache per ``--label``.

Light curves
------------
Simulated Kepler light curves (:func:`exoperiod.learning.curves.simulated_background`),
one quarter or 16 quarters (4 years), searched raw by ``predict``. Per length and
range, ``--n`` light curves per total SNR (10, 15, 25: matched-filter SNR against the
detrended noise, as ``long_curves.py``) with one batman planet of period log-uniform in

- **short**: 0.3-1 d (below the 1-d grid);
- **long**: 40-45 d for a quarter (its two-transit limit), 40-120 d for 4 years;

and ``--n`` light curves without a planet (false alarms). The planet is injected into
the raw flux (:func:`exoperiod.learning.curves.detrended_with_planets`); the recorded
before/after runs (2026-11-25) injected it into the detrended flux, which the
detrending in ``predict`` then shaved a second time. Seeds ``20_000_000 + ...``,
disjoint from training and from ``long_curves.py``.

Per light curve: whether the first candidate (top-1) or any candidate has the planet's
period within 2 %, whether an off-grid candidate was reported at all (on planet-free
light curves: a false alarm), the relative error of the matched period, and the CPU of
``predict`` (``process_time``, one thread). Rows are cached in ``off_grid_<label>.csv``
under ``--out`` as they finish (a killed run resumes); ``--report`` compares labels.

Usage::

    PYTHONPATH=/path/to/old/src python benchmarks/off_grid.py --label before --n 8 --out DIR
    PYTHONPATH=src python benchmarks/off_grid.py --label after --n 8 --out DIR
    python benchmarks/off_grid.py --report before,after --out DIR
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from exoperiod.config import load_config  # noqa: E402
from exoperiod.grid import PeriodGrid  # noqa: E402
from exoperiod.learning.curves import (  # noqa: E402
    detrended_with_planets,
    simulated_background,
)
from exoperiod.learning.evaluate import PERIOD_TOLERANCE  # noqa: E402

TIERS = (10, 15, 25)
#: Quarters per light curve and the period ranges (days) planets are drawn from.
LENGTHS = {"quarter": (1, {"short": (0.3, 1.0), "long": (40.0, 45.0)}),
           "4-year": (16, {"short": (0.3, 1.0), "long": (40.0, 120.0)})}
RESULTS = Path(__file__).parent / "results"


def cases(n: int) -> list[dict]:
    """Every case: length, range ("none": no planet), tier, index and seed."""
    out = []
    for k, (length, (_, ranges)) in enumerate(LENGTHS.items()):
        for r, name in enumerate(ranges):
            for t, tier in enumerate(TIERS):
                out += [{"length": length, "range": name, "tier": tier, "i": i,
                         "seed": 20_000_000 + 100_000 * k + 10_000 * r + 1000 * t + i} for i in range(n)]
        out += [{"length": length, "range": "none", "tier": 0, "i": i, "seed": 20_900_000 + 100_000 * k + i}
                for i in range(n)]
    return out


def light_curve(case: dict, config):
    """The raw light curve of a case, with its planet in the raw flux, and the planet's
    period (NaN: none)."""
    rng = np.random.default_rng(case["seed"])
    n_segments, ranges = LENGTHS[case["length"]]
    lc, star = simulated_background(rng, "kepler", n_segments, f"SIM-{case['seed']}")
    if case["range"] == "none":
        return lc, float("nan")
    lo, hi = ranges[case["range"]]
    raw, _, _, planets = detrended_with_planets(lc, star, rng, config, 1, (case["tier"], case["tier"]),
                                                grid=PeriodGrid(lo, hi))
    return raw, planets[0].period_days


def run(n: int, cache: Path, ranges: set[str]) -> None:
    import torch

    from exoperiod.search.model import PeriodModel
    from exoperiod.search.predict import predict

    torch.set_num_threads(1)
    config = load_config()
    model = PeriodModel.load()
    done = set(pd.read_csv(cache)["seed"]) if cache.is_file() else set()
    todo = [c for c in cases(n) if c["seed"] not in done and c["range"] in ranges]
    if todo:
        predict(light_curve(todo[0], config)[0], model)  # warm-up: numba, torch, caches
    for case in todo:
        lc, truth = light_curve(case, config)
        start = time.process_time()
        found = predict(lc, model)
        cpu = time.process_time() - start
        hits = [abs(p / truth - 1) < PERIOD_TOLERANCE for p in found.periods]
        off = [c for c in found.candidates if c.outside_grid]
        matched = [p for p, hit in zip(found.periods, hits) if hit]
        row = {**case, "true_period_days": truth, "periods": ";".join(f"{p:.7f}" for p in found.periods),
               "top1": bool(hits[:1] and hits[0]), "any": any(hits), "off_grid_reported": bool(off),
               "period_rel_error": abs(matched[0] / truth - 1) if matched else float("nan"), "cpu_seconds": cpu}
        pd.DataFrame([row]).to_csv(cache, mode="a", header=not cache.is_file(), index=False)
        print(f"{case['length']} {case['range']} SNR {case['tier']} #{case['i']}: top-1 {row['top1']}, "
              f"off-grid {row['off_grid_reported']}, {cpu:.2f} s", flush=True)


def _percent(hits: pd.Series) -> str:
    return f"{100 * hits.mean():.0f} ({int(hits.sum())}/{len(hits)})" if len(hits) else "-"


def report(labels: list[str], out: Path) -> str:
    """A Markdown table per label: recovery per length, range and tier; false alarms; CPU."""
    frames = {label: pd.read_csv(out / f"off_grid_{label}.csv") for label in labels}
    common = set.intersection(*(set(f["seed"]) for f in frames.values()))
    lines = ["# Planets outside the model grid", "",
             (f"Code versions {', '.join(labels)} on the same simulated light curves (`off_grid.py` for the "
              "set-up). Top-1 / any: the planet's period within 2 % in the first / any candidate; the period "
              "error is that of the matched candidate."), "",
             "| code | length | planet range | SNR | top-1 % | any % | median rel. period error |",
             "|---|---|---|---|---|---|---|"]
    for label, frame in frames.items():
        frame = frame[frame["seed"].isin(common)]
        for (length, name, tier), group in frame[frame["range"] != "none"].groupby(["length", "range", "tier"]):
            errors = group["period_rel_error"].dropna()
            error = f"{errors.median():.1e}" if len(errors) else "-"
            lines.append(f"| {label} | {length} | {name} | {tier} | {_percent(group['top1'])} "
                         f"| {_percent(group['any'])} | {error} |")
    lines += ["", "| code | length | off-grid candidate on planet-free light curves % | median CPU s of predict |",
              "|---|---|---|---|"]
    for label, frame in frames.items():
        frame = frame[frame["seed"].isin(common)]
        for length, group in frame.groupby("length"):
            free = group[group["range"] == "none"]
            lines.append(f"| {label} | {length} | {_percent(free['off_grid_reported'])} "
                         f"| {group['cpu_seconds'].median():.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=8, help="light curves per length, range and SNR")
    parser.add_argument("--label", default=None, help="run the cases into off_grid_<label>.csv")
    parser.add_argument("--report", default=None, help="comma-separated labels to compare")
    parser.add_argument("--ranges", default="short,long,none", help="planet ranges to run (none: no planet)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.label:
        run(args.n, args.out / f"off_grid_{args.label}.csv", set(args.ranges.split(",")))
    if args.report:
        table = report(args.report.split(","), args.out)
        (args.out / "off_grid.md").write_text(table)
        print(table)


if __name__ == "__main__":
    main()
