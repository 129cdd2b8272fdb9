"""exoperiod, BLS and TLS on data the model was not trained on (issue: beyond our simulator).

Populations
-----------
- **family**: a noise family that never appears in training: spot modulation with an
  evolving amplitude plus a Gaussian random walk plus white noise (numpy, below), on
  1-4 Kepler quarters with Kepler's gaps.
- **real**: the held-out real stars of ../shared/data (``curves.real_background_files``,
  ``holdout`` True: 35 % of the planet-free stars by a hash of their id, never drawn in
  training), time-reversed or not.
- **hosts**: every real planet host with P < 40 d in ../shared/data, searched as given
  (known periods from the manifest).

Per tier of total SNR (against the detrended noise, as in training and as Kepler's MES;
the white-noise SNR is recorded too), ``--n`` light curves with one batman planet injected
into the raw flux, and ``--n`` without (false alarms). exoperiod ``predict`` (top-3
candidates, one planet pass) gets the raw light curve; astropy BLS (20,000 periods, 8
durations) and TLS get the same light curve detrended exactly as ``predict`` detrends it
(``clean_and_detrend``, the star's own window), so all three search the same flux.

Writes ``heldout.md`` and ``heldout.csv`` (one row per light curve and method) into ``--out``.
Rows are appended as each light curve finishes, and a rerun skips the (light curve, method)
pairs already there: a stopped run resumes, and ``--refresh exoperiod`` reruns only
exoperiod (a new model) beside the BLS and TLS rows of the same light curves.

Usage::

    python benchmarks/heldout.py --n 12            # ~15 min on 2 idle cores
    python benchmarks/heldout.py --n 1 --no-tls    # smoke run
    python benchmarks/heldout.py --report-only     # tables again from heldout.csv
    python benchmarks/heldout.py --n 100 --refresh exoperiod --model runs/x/model.pt
    python benchmarks/heldout.py --n 100 --no-bls --no-tls   # exoperiod on more light curves than BLS/TLS
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).parent))  # vs_bls_tls: the BLS and TLS set-ups

import lightkurve as lk  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from astropy.stats import binom_conf_interval, mad_std  # noqa: E402

from exoperiod.config import load_config  # noqa: E402
from exoperiod.files import atomic_write_text  # noqa: E402
from exoperiod.learning.curves import (  # noqa: E402
    SUN_LIKE,
    detrended_with_planets,
    real_background_files,
)
from exoperiod.learning.evaluate import PERIOD_TOLERANCE, reliability  # noqa: E402
from exoperiod.learning.simulate import sample_star, simulate_lightcurve  # noqa: E402
from exoperiod.paths import shared_data_dir  # noqa: E402
from exoperiod.search.preprocess import clean_and_detrend  # noqa: E402
from exoperiod.search.readers import read_lightcurve  # noqa: E402

TIERS = (7, 10, 15, 25, 50, 200)
POPULATION_SEED = {"family": 1, "real": 2}
RESULTS = Path(__file__).parent / "results"
#: One row of ``heldout.csv``: a light curve and a method; ``probability`` (the vetter's),
#: ``scorer_probability``, ``max_bin_probability``, ``snr`` and ``sde`` (of the first
#: candidate) are exoperiod's only.
COLUMNS = ["population", "tier", "i", "case", "truth", "white_snr", "method", "periods", "top1", "top3",
           "probability", "scorer_probability", "max_bin_probability", "snr", "sde", "cpu_s"]
_STATE: dict = {}


def family_lightcurve(rng: np.random.Generator) -> lk.LightCurve:
    """The held-out noise family: evolving spots + random walk + white noise, 1-4 quarters."""
    quarters = int(rng.integers(1, 5))
    base = simulate_lightcurve(sample_star(rng, "FAMILY"), rng, duration_days=93.0 * quarters)
    t = np.asarray(base.time.value, float)
    white = float(np.exp(rng.uniform(np.log(60e-6), np.log(600e-6))))
    p_rot = float(np.exp(rng.uniform(np.log(0.5), np.log(30.0))))
    amp = float(np.exp(rng.uniform(np.log(1e-4), np.log(1e-2)))) * (1 + 0.5 * np.sin(2 * np.pi * t / (3 * p_rot)))
    spots = amp * (np.sin(2 * np.pi * t / p_rot) + 0.3 * np.sin(4 * np.pi * t / p_rot + 1.0))
    walk = np.cumsum(rng.standard_normal(len(t))) * white * 0.05
    flux = 1.0 + spots + walk - walk.mean() + white * rng.standard_normal(len(t))
    return lk.LightCurve(time=base.time, flux=flux / np.median(flux), flux_err=np.full(len(t), white),
                         quality=base["quality"].value, meta={"MISSION": "Kepler", "LABEL": "family"})


def light_curve(population: str, tier: float | None, i: int, config, real_files: list[str]):
    """(raw light curve, its detrended version, true periods, white-noise SNR) of one case;
    tier None: no planet. The planet is in the raw flux: every method sees what the
    detrending left of it (exoperiod detrends the raw curve itself, identically)."""
    rng = np.random.default_rng([20_000_000, POPULATION_SEED[population], int(tier or 0), i])
    if population == "family":
        raw = family_lightcurve(rng)
    else:
        raw = read_lightcurve(real_files[i % len(real_files)])
    raw, detrended, _, planets = detrended_with_planets(raw, SUN_LIKE, rng, config, 0 if tier is None else 1,
                                                        None if tier is None else (tier, tier),
                                                        augment=population == "real")
    if tier is None:
        return raw, detrended, [], None
    # The same planet against the white noise alone (point-to-point scatter / sqrt 2).
    flux = np.asarray(detrended.flux.value, float)
    white = float(mad_std(np.diff(flux))) / np.sqrt(2)
    white_snr = tier * float(mad_std(flux)) / white if white > 0 else None
    return raw, detrended, [p.period_days for p in planets], white_snr


def _init(model_path: str | None) -> None:
    import torch

    from exoperiod.search.model import PeriodModel

    torch.set_num_threads(1)
    _STATE["model"] = PeriodModel.load(model_path)
    _STATE["config"] = load_config()


def _recovered(found: list[float], truth: list[float], k: int) -> bool:
    return any(abs(p / t - 1) < PERIOD_TOLERANCE for p in found[:k] for t in truth)


def run_case(item: tuple) -> list[dict]:
    population, tier, i, real_files, methods, host = item
    from vs_bls_tls import bls_periods, tls_periods

    from exoperiod.search.predict import predict

    config, model = _STATE["config"], _STATE["model"]
    if host is not None:
        path, truth = host
        raw, white_snr = read_lightcurve(path), None
        detrended = clean_and_detrend(raw, config.detrend_window_days, config.adaptive_detrending)[0]
    else:
        raw, detrended, truth, white_snr = light_curve(population, tier, i, config, real_files)
    rows = []
    base = {"population": population, "tier": tier, "i": i, "case": case_id(item),
            "truth": ";".join(f"{p:.5f}" for p in truth), "white_snr": white_snr}
    for method in methods:
        start = time.process_time()
        probability, scorer, max_bin, snr, sde = None, None, None, None, None
        if method == "exoperiod":
            found = predict(raw, model, top_k=3, max_planets=1, off_grid=False)  # as BLS and TLS: 1-40 d
            periods = found.periods
            first = found.candidates[0] if found.candidates else None
            probability = first.probability if first else 0.0
            scorer = first.scorer_probability if first else 0.0
            snr, sde = (first.snr, first.sde) if first else (None, None)
            max_bin = float(np.max(found.bin_probabilities))
        elif method == "bls":
            periods = bls_periods(detrended)
        else:
            periods = tls_periods(detrended)
        rows.append({**base, "method": method, "periods": ";".join(f"{p:.5f}" for p in periods),
                     "top1": _recovered(periods, truth, 1), "top3": _recovered(periods, truth, 3),
                     "probability": probability, "scorer_probability": scorer, "max_bin_probability": max_bin,
                     "snr": snr, "sde": sde, "cpu_s": time.process_time() - start})
    return rows


def case_id(item: tuple) -> str:
    """One light curve's name in ``heldout.csv``: population, tier and index, or the host's file."""
    population, tier, i, _, _, host = item
    return Path(host[0]).name if host is not None else f"{population}/{tier or 0:g}/{i}"


def _rate(hits: pd.Series) -> str:
    k, n = int(hits.sum()), len(hits)
    if not n:
        return "-"
    lo, hi = binom_conf_interval(k, n, confidence_level=0.95, interval="wilson")
    return f"{100 * k / n:.0f} [{100 * lo:.0f}-{100 * hi:.0f}]"


def report(rows: pd.DataFrame, methods: list[str], out: Path, args) -> str:
    lines = ["# Held-out populations: exoperiod, BLS and TLS on the same detrended light curves", "",
             "Top-1 recovery in % with Wilson 95 % intervals; tiers are the total SNR against the detrended "
             "noise (MES-like), the median white-noise SNR of each tier is in the last column. exoperiod ran "
             "on every light curve (n), BLS and TLS on the first of them (n same): exoperiod's score on those "
             "is in the column beside theirs. See `heldout.py`.", ""]
    planets = rows[rows["tier"].notna() & (rows["population"] != "hosts")]
    others = [m for m in methods if m != "exoperiod"]
    lines += ["| population | SNR | n | exoperiod | n same | exoperiod, same | " + " | ".join(others)
              + " | exoperiod p (median, top-1 hits) | white-noise SNR |", "|---" * (len(others) + 8) + "|"]
    for (population, tier), group in planets.groupby(["population", "tier"]):
        ours = group[group["method"] == "exoperiod"]
        same = set(ours["case"])
        for m in others:
            same &= set(group.loc[group["method"] == m, "case"])
        cells = [_rate(group[(group["method"] == m) & group["case"].isin(same)]["top1"]) for m in others]
        hits = ours[ours["top1"]]
        p = f"{hits['probability'].median():.2f}" if len(hits) else "-"
        lines.append(f"| {population} | {tier:g} | {len(ours)} | {_rate(ours['top1'])} | {len(same)} | "
                     f"{_rate(ours[ours['case'].isin(same)]['top1'])} | " + " | ".join(cells)
                     + f" | {p} | {group['white_snr'].median():.1f} |")
    negatives = rows[rows["tier"].isna() & (rows["population"] != "hosts") & (rows["method"] == "exoperiod")]
    lines += ["", "False alarms of exoperiod on light curves without a planet (share with a bin >= 0.5, with a "
              "candidate probability >= 0.5 and >= 0.9):", "",
              "| population | n | bin >= 0.5 | candidate >= 0.5 | candidate >= 0.9 |", "|---|---|---|---|---|"]
    for population, group in negatives.groupby("population"):
        lines.append(f"| {population} | {len(group)} | {_rate(group['max_bin_probability'] >= 0.5)} | "
                     f"{_rate(group['probability'] >= 0.5)} | {_rate(group['probability'] >= 0.9)} |")
    lines += ["", "Calibration of the top candidate's probability (it claims: a planet at this period), "
              "over every light curve with and without a planet: reliability in 5 bins of p and the "
              "expected calibration error (ECE, the mean |p - hit rate| weighted by the bin's share):", "",
              "| population | n | " + " | ".join(f"p {lo:.1f}-{lo + 0.2:.1f}: mean p / hit rate (n)" for lo in
                                                 np.arange(0, 1, 0.2)) + " | ECE |", "|---" * 8 + "|"]
    ours = rows[(rows["method"] == "exoperiod") & (rows["population"] != "hosts")]
    for population, group in ours.groupby("population"):
        hit = group["top1"].astype(bool).to_numpy() & group["tier"].notna().to_numpy()
        diagram = reliability(group["probability"].fillna(0.0).to_numpy(float), hit, n_bins=5)
        cells = [f"{p:.2f} / {y:.2f} ({n})" if n else "-"
                 for p, y, n in zip(diagram.mean_probability, diagram.mean_target, diagram.count)]
        lines.append(f"| {population} | {len(group)} | " + " | ".join(cells) + f" | {diagram.ece:.3f} |")
    hosts = rows[rows["population"] == "hosts"]
    if len(hosts):
        lines += ["", "Real hosts (a known period among the top 3):", "",
                  "| method | hosts | top-3 | top-1 |", "|---|---|---|---|"]
        for m in methods:
            g = hosts[hosts["method"] == m]
            lines.append(f"| {m} | {len(g)} | {int(g['top3'].sum())} | {int(g['top1'].sum())} |")
        ours = hosts[(hosts["method"] == "exoperiod") & hosts["top1"]]
        lines.append(f"\nMedian exoperiod probability of a correct top-1 candidate on real hosts: "
                     f"{ours['probability'].median():.2f} (n = {len(ours)}).")
    cpu = rows[rows["population"] != "hosts"].groupby("method")["cpu_s"].mean()
    lines += ["", "| CPU s per light curve | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|",
              "| mean | " + " | ".join(f"{cpu.get(m, float('nan')):.2f}" for m in methods) + " |"]
    text = "\n".join(lines) + "\n"
    atomic_write_text(out / "heldout.md", text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=12)
    parser.add_argument("--tls", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--bls", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--model", default=None)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--report-only", action="store_true", help="Tables from the last run's heldout.csv.")
    parser.add_argument("--refresh", action="append", default=[], choices=["exoperiod", "bls", "tls"],
                        help="Drop this method's rows of heldout.csv and run it again (repeatable).")
    args = parser.parse_args()
    if args.report_only:
        frame = pd.read_csv(args.out / "heldout.csv")
        methods = [m for m in ("exoperiod", "bls", "tls") if m in set(frame["method"])]
        args.n = int(frame.loc[frame["population"] != "hosts", "i"].max()) + 1
        print(report(frame, methods, args.out, args))
        return
    shared = shared_data_dir()
    if shared is None:
        raise SystemExit("needs ../shared/data (or EXOPERIOD_SHARED_DATA)")
    real = real_background_files(shared)
    held = sorted(real.loc[real["holdout"], "path"])
    methods = ["exoperiod"] + (["bls"] if args.bls else []) + (["tls"] if args.tls else [])
    items = []
    for i in range(args.n):
        for population in ("family", "real"):
            for tier in (*TIERS, None):
                items.append((population, tier, i, held, methods, None))
    manifest = pd.read_csv(shared / "MANIFEST.csv")
    for row in manifest[manifest["host_class"].str.startswith("host_P<40d")].itertuples():
        truth = [float(x.split(":")[1]) for x in str(row.known_planets).split(";") if x]
        items.append(("hosts", None, 0, held, methods, (str(shared / row.file), truth)))
    args.out.mkdir(parents=True, exist_ok=True)
    csv_path = args.out / "heldout.csv"
    done = pd.read_csv(csv_path) if csv_path.exists() else pd.DataFrame(columns=["case", "method"])
    if "case" not in done.columns:
        raise SystemExit(f"{csv_path}: written before resumable runs (no 'case' column); move it away")
    done = done[~done["method"].isin(args.refresh)].reindex(columns=COLUMNS)  # older files: no snr, sde
    if len(done):
        atomic_write_text(csv_path, done.to_csv(index=False))
    else:
        csv_path.unlink(missing_ok=True)
    have = set(zip(done["case"], done["method"]))
    todo = []
    for item in items:
        missing = [m for m in methods if (case_id(item), m) not in have]
        if missing:
            todo.append((*item[:4], missing, item[5]))
    print(f"{len(items) - len(todo)} of {len(items)} light curves done by every method", flush=True)
    with ProcessPoolExecutor(args.workers, initializer=_init, initargs=(args.model,)) as pool:
        for finished, result in enumerate(pool.map(run_case, todo), start=1):
            # One write per light curve, appended: a stopped run keeps what it finished.
            pd.DataFrame(result, columns=COLUMNS).to_csv(csv_path, mode="a", header=not csv_path.exists(),
                                                         index=False)
            if finished % 20 == 0:
                print(f"{finished}/{len(todo)}", flush=True)
    frame = pd.read_csv(csv_path)
    print(report(frame[frame["i"] < args.n], methods, args.out, args))


if __name__ == "__main__":
    main()
