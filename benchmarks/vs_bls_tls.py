"""exoperiod against astropy BLS and transitleastsquares on identical light curves.

Light curves
------------
Per SNR tier (7, 10, 15, 25, 50 by default), ``--n`` quarter-long light curves of
simulated stars (:func:`exoperiod.learning.simulate.simulate_star`, 90 days) and ``--n`` real
Kepler quarters of stars that are not KOIs (the seven ``no_known_planet`` Kepler FITS
quarters of ../shared/data, used in turn), each with one injected planet: period
log-uniform in 1-40 d, mid-transit time uniform within the first period, impact
parameter U(0, 0.9), and the radius ratio that gives the tier's matched-filter SNR
(:func:`exoperiod.learning.inject.planet_for_snr`) against the scatter of the light curve after
exoperiod's detrending, measured before the injection.

Methods, on the same light curve
--------------------------------
- **exoperiod, model alone**: the centre of the most probable bin (and of the three most
  probable distinct bins) of :func:`exoperiod.search.predict.predict`'s ``bin_probabilities``.
- **exoperiod, model + refine**: ``predict(lc, model, top_k=3, max_planets=1).periods``
  (BLS restricted to each of the three bins).
- **BLS**: astropy ``BoxLeastSquares`` on the detrended flux of
  :func:`exoperiod.search.preprocess.clean_and_detrend` (exoperiod's own detrending), with one
  error for every cadence (the MAD scatter), 20,000 log-spaced trial periods 1-40 d,
  eight log-spaced durations 1-13 h, objective "likelihood": with equal errors it is
  SNR^2 / (2 (1 - q)), q the box's fraction of the period, so it ranks boxes as their
  depth SNR does up to that small factor, at half the cost of objective "snr".
- **TLS**: ``transitleastsquares`` on the same detrended flux and errors,
  ``period_min=1, period_max=40, use_threads=1``, its own period and duration grids,
  the installed package's default search backend unless ``--tls-backend`` says otherwise.

A period is recovered when ``|p / P - 1| < 2 %``; top-3 for BLS and TLS are the three
highest peaks of the periodogram more than 2 % apart. CPU seconds are
``time.process_time()`` (user + sys of the process) around each step, in the same
worker, after one warm-up light curve (numba compilation is not counted). They are
reported as *search* and *preprocessing*: for BLS and TLS the preprocessing is the
:func:`~exoperiod.search.preprocess.clean_and_detrend` they share (timed once per light curve),
for exoperiod its own cleaning, detrending and windowing inside ``predict`` (whose
per-stage CPU clock gives the model and refinement times).

Real hosts: every ``host_P<40d`` light curve of ../shared/data, with its KOI periods.
The stitched Q1-Q17 files are cut to their first 90 days (a quarter-long window, the
same for all methods); exoperiod is also run on the whole Q1-Q17 curve.

Usage::

    python benchmarks/vs_bls_tls.py                   # --n 20: ~10 min on 2 idle cores
    python benchmarks/vs_bls_tls.py --n 1 --no-real   # smoke run (~20 s)

The default run is ~930 CPU seconds (213 light curves); it took 22 min of wall time on
2 cores while a training job used one of them.

Writes ``vs_bls_tls.md``, ``vs_bls_tls.png`` and ``vs_bls_tls.csv`` (one row per light
curve and method) into ``--out``.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import platform
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import lightkurve as lk
import numpy as np
import pandas as pd
from astropy.stats import mad_std
from astropy.timeseries import BoxLeastSquares

from exoperiod.config import Config, load_config
from exoperiod.learning.catalog import CatalogStar
from exoperiod.learning.datasets.samples import Curve, exposure_minutes
from exoperiod.learning.evaluate import (
    PERIOD_TOLERANCE,
    atomic_write_text,
    describe_model,
    markdown_table,
    period_recovered,
    pyplot,
    relative_match,
    save_figure,
)
from exoperiod.learning.inject import (
    RP_RS_MAX,
    Planet,
    Star,
    planet_for_snr,
    transit_model,
    transit_snr,
)
from exoperiod.learning.simulate import simulate_star
from exoperiod.paths import shared_data_dir
from exoperiod.search.model import DEFAULT_MODEL_PATH, PeriodModel
from exoperiod.search.predict import predict, top_bins
from exoperiod.search.preprocess import clean_and_detrend
from exoperiod.search.readers import read_lightcurve

RESULTS_DIR = Path(__file__).resolve().parent / "results"
TIERS = (7.0, 10.0, 15.0, 25.0, 50.0)
PERIOD_RANGE_DAYS = (1.0, 40.0)
IMPACT_MAX = 0.9
QUARTER_DAYS = 90.0
BLS_PERIODS_DAYS = np.geomspace(*PERIOD_RANGE_DAYS, 20_000)
BLS_DURATIONS_DAYS = np.geomspace(1.0, 13.0, 8) / 24.0
#: Kepler quarters of stars that are not KOIs (../shared/data/MANIFEST.csv, host_class
#: "no_known_planet"); KIC 10001893 is an sdB pulsator, KIC 1430163 an active star.
NON_HOST_QUARTERS = (
    "lightcurves/kepler/9726699/kplr009726699-2009350155506_llc.fits",
    "lightcurves/kepler/10002792/kplr010002792-2009259160929_llc.fits",
    "lightcurves/kepler/10002792/kplr010002792-2010174085026_llc.fits",
    "lightcurves/kepler/1430163/kplr001430163-2010355172524_llc.fits",
    "lightcurves/kepler/1430163/kplr001430163-2013011073258_llc.fits",
    "lightcurves/kepler/10001893/kplr010001893-2011177032512_llc.fits",
    "lightcurves/kepler/5110407/kplr005110407-2009350155506_llc-kepcotrend-llsq.fits",
)
METHODS = ("exoperiod_model", "exoperiod", "bls", "tls")
LABELS = {"exoperiod_model": "exoperiod model", "exoperiod": "exoperiod model + refine", "bls": "BLS",
          "tls": "TLS"}
POPULATION_CODE = {"simulated": 0, "real": 1}
WARM_UP_SEED = 2**32 - 1


# ------------------------------------------------------------------------ light curves


@dataclass(frozen=True)
class Case:
    """One light curve with one injected planet."""

    population: str
    snr: float
    index: int
    seed: int
    file: str | None = None

    @property
    def name(self) -> str:
        source = Path(self.file).name if self.file else f"SIM-{self.index}"
        return f"{self.population} SNR {self.snr:g} #{self.index} ({source})"


@dataclass(frozen=True)
class HostCase:
    """A real light curve of a known planet host."""

    name: str
    file: str
    known_periods_days: tuple[float, ...]
    stitched: bool


def make_cases(n: int, tiers: Sequence[float], seed: int, simulated: bool = True,
               real_files: Sequence[str] = ()) -> list[Case]:
    """``n`` cases per tier and population; real cases use ``real_files`` in turn."""
    cases = []
    for snr in tiers:
        if simulated:
            cases += [Case("simulated", float(snr), i, seed) for i in range(n)]
        if real_files:
            cases += [Case("real", float(snr), i, seed, str(real_files[i % len(real_files)])) for i in range(n)]
    return cases


def host_cases(shared: Path) -> list[HostCase]:
    """The shared folder's light curves of hosts of planets below 40 d, with all their KOI periods."""
    manifest = pd.read_csv(shared / "MANIFEST.csv")
    out = []
    for row in manifest[manifest["host_class"].str.startswith("host_P<40d")].itertuples():
        planets = [p.rsplit(":", 1) for p in row.known_planets.split(";")]
        host = planets[0][0].rsplit(" ", 1)[0]
        out.append(HostCase(f"{host} {row.quarter_or_sector}", str(shared / row.file),
                            tuple(float(p) for _, p in planets), "stitched" in row.quarter_or_sector))
    return out


def _header_number(meta: dict, key: str) -> float | None:
    try:
        value = float(meta.get(key))
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) and value > 0 else None


def _host_star(lc: lk.LightCurve) -> Star:
    """The star of a real light curve from its header (Teff, logg, radius), else solar."""
    meta = lc.meta
    return CatalogStar("Kepler", 0, teff_k=_header_number(meta, "TEFF"), logg_cgs=_header_number(meta, "LOGG"),
                       radius_rsun=_header_number(meta, "RADIUS")).host()


def injected_lightcurve(case: Case, config: Config) -> tuple[lk.LightCurve, Planet, float]:
    """The case's light curve with its planet injected, and the SNR the planet reached.

    The SNR falls short of the tier only when that needs a radius ratio above
    :data:`exoperiod.learning.inject.RP_RS_MAX` (very noisy stars).
    """
    rng = np.random.default_rng([case.seed, POPULATION_CODE[case.population], round(case.snr * 10), case.index])
    if case.file is None:
        lc, sim = simulate_star(rng, f"SIM-{case.index}", duration_days=QUARTER_DAYS,
                                cadence_minutes=config.cadence_minutes)
        host = sim.star
    else:
        lc = read_lightcurve(case.file)
        host = _host_star(lc)
    curve = Curve(lc, "", "")
    noise_ppm = curve.detrended_noise_ppm(config.detrend_window_days)
    exposure = exposure_minutes(curve)
    valid = curve.valid_time
    for _ in range(100):
        period = float(np.exp(rng.uniform(*np.log(PERIOD_RANGE_DAYS))))
        t0, impact = float(valid.min() + rng.uniform(0.0, period)), float(rng.uniform(0.0, IMPACT_MAX))
        try:
            planet = planet_for_snr(valid, case.snr, period, t0, impact, host, noise_ppm, exposure)
            break
        except ValueError:  # every transit of this draw falls into a gap
            continue
    else:
        raise RuntimeError(f"{case.name}: no planet with a transit on a valid cadence in 100 draws")
    out = lc.copy()
    out.flux = out.flux * transit_model(np.asarray(lc.time.value, dtype=float), [planet], host, exposure)
    reached = transit_snr(valid, transit_model(valid, [planet], host, exposure), noise_ppm)
    return out, planet, reached


def quarter_cut(lc: lk.LightCurve) -> lk.LightCurve:
    """The first :data:`QUARTER_DAYS` of a light curve."""
    time_days = np.asarray(lc.time.value, dtype=float)
    return lc[time_days < np.nanmin(time_days) + QUARTER_DAYS]


# ----------------------------------------------------------------------------- methods


def distinct_peaks(periods_days: np.ndarray, power: np.ndarray, n: int = 3,
                   separation: float = PERIOD_TOLERANCE) -> list[float]:
    """Periods of the ``n`` highest periodogram values more than ``separation`` apart (relative)."""
    chosen: list[float] = []
    for i in np.argsort(-np.nan_to_num(np.asarray(power, dtype=float), nan=-np.inf), kind="stable"):
        p = float(periods_days[i])
        if not relative_match(p, chosen, separation):
            chosen.append(p)
            if len(chosen) == n:
                break
    return chosen


def _time_flux_sigma(detrended: lk.LightCurve) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = np.asarray(detrended.time.value, dtype=float)
    f = np.asarray(detrended.flux.value, dtype=float)
    return t, f, np.full_like(f, float(mad_std(f)))


def bls_periods(detrended: lk.LightCurve) -> list[float]:
    """Top-3 distinct BLS periods (see the module docstring for the settings)."""
    t, f, dy = _time_flux_sigma(detrended)
    result = BoxLeastSquares(t, f, dy=dy).power(BLS_PERIODS_DAYS, BLS_DURATIONS_DAYS, objective="likelihood")
    return distinct_peaks(np.asarray(result.period), np.asarray(result.power))


def tls_periods(detrended: lk.LightCurve, backend: str | None = None) -> list[float]:
    """Top-3 distinct TLS periods (SDE peaks) between 1 and 40 days."""
    from transitleastsquares import transitleastsquares

    t, f, dy = _time_flux_sigma(detrended)
    options = {"backend": backend} if backend else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = transitleastsquares(t, f, dy).power(
            period_min=PERIOD_RANGE_DAYS[0], period_max=PERIOD_RANGE_DAYS[1], use_threads=1,
            show_progress_bar=False, verbose=False, **options)
    return distinct_peaks(np.asarray(result.periods), np.asarray(result.power))


@dataclass
class Found:
    """What one method found on one light curve, and its CPU seconds.

    ``preprocess_cpu_seconds`` is the cleaning and detrending the search ran on:
    exoperiod's own (inside ``predict``), the shared :func:`clean_and_detrend` for BLS and TLS.
    """

    periods_days: list[float]
    search_cpu_seconds: float
    preprocess_cpu_seconds: float
    error: str | None = None

    def row(self, method: str, truth: Sequence[float]) -> dict:
        return {"method": method, "periods_found": ";".join(f"{p:.5f}" for p in self.periods_days),
                "top1": period_recovered(self.periods_days, truth, 1),
                "top3": period_recovered(self.periods_days, truth, 3),
                "cpu_search_s": self.search_cpu_seconds, "cpu_preprocess_s": self.preprocess_cpu_seconds,
                "error": self.error}


def _one_line(err: Exception) -> str:
    return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"


def _timed(run, detrended: lk.LightCurve, detrend_cpu_seconds: float, *args) -> Found:
    start = time.process_time()
    try:
        periods, error = run(detrended, *args), None
    except Exception as err:  # noqa: BLE001 - a method failing on one light curve is a result
        periods, error = [], _one_line(err)
    return Found(periods, time.process_time() - start, detrend_cpu_seconds, error)


def exoperiod_methods(lc: lk.LightCurve, model: PeriodModel) -> dict[str, Found]:
    """Model alone (top distinct bins' centres) and model + refine, from one prediction."""
    start = time.process_time()
    try:
        prediction = predict(lc, model, top_k=3, max_planets=1, off_grid=False)  # BLS and TLS search 1-40 d too
    except Exception as err:  # noqa: BLE001 - e.g. too few cadences for a model window
        failed = Found([], 0.0, time.process_time() - start, _one_line(err))
        return {"exoperiod_model": failed, "exoperiod": failed}
    t = prediction.timing_seconds
    centres = model.grid.centers_days
    return {
        "exoperiod_model": Found([float(centres[b]) for b in top_bins(prediction.bin_probabilities, 3)],
                                 t["model"], t["read_preprocess"]),
        "exoperiod": Found(list(prediction.periods[:3]), t["model"] + t["refine"], t["read_preprocess"]),
    }


# ---------------------------------------------------------------------- worker process

_WORKER: dict = {}


def setup_worker(model_path: str | None, methods: Sequence[str], tls_backend: str | None,
                 config: Config) -> None:
    """Load the model and warm every method up on one simulated light curve."""
    _WORKER.update(methods=tuple(methods), tls_backend=tls_backend, config=config,
                   model=PeriodModel.load(model_path) if _needs_model(methods) else None)
    # Its own seed stream (the last entropy word), apart from every benchmark case.
    run_case(Case("simulated", 30.0, 0, seed=WARM_UP_SEED))


def _init_pool_worker(model_path: str | None, methods: Sequence[str], tls_backend: str | None,
                      config: Config) -> None:
    # One thread everywhere: each worker's process_time is then its own core's work.
    import numba
    import torch

    numba.set_num_threads(1)
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    setup_worker(model_path, methods, tls_backend, config)


def _needs_model(methods: Sequence[str]) -> bool:
    return any(m.startswith("exoperiod") for m in methods)


def _search(lc: lk.LightCurve, truth: Sequence[float]) -> list[dict]:
    """Every method on one light curve: one row per method."""
    config, methods = _WORKER["config"], _WORKER["methods"]
    start = time.process_time()
    detrended, _ = clean_and_detrend(lc, config.detrend_window_days, config.adaptive_detrending)
    detrend_cpu = time.process_time() - start
    found: dict[str, Found] = {}
    if _needs_model(methods):
        found.update(exoperiod_methods(lc, _WORKER["model"]))
    if "bls" in methods:
        found["bls"] = _timed(bls_periods, detrended, detrend_cpu)
    if "tls" in methods:
        found["tls"] = _timed(tls_periods, detrended, detrend_cpu, _WORKER["tls_backend"])
    return [f.row(m, truth) for m, f in found.items() if m in methods]


def run_case(case: Case) -> list[dict]:
    """Inject the case's planet and run every method; one row per method."""
    lc, planet, reached = injected_lightcurve(case, _WORKER["config"])
    base = {"population": case.population, "snr": case.snr, "snr_reached": reached, "index": case.index,
            "file": case.file or "", "true_period_days": planet.period_days, "rp_rs": planet.rp_rs}
    return [{**base, **row} for row in _search(lc, [planet.period_days])]


def run_host(host: HostCase) -> list[dict]:
    """Every method on a host's (quarter-long) light curve; exoperiod also on the whole."""
    lc = read_lightcurve(host.file)
    quarter = quarter_cut(lc) if host.stitched else lc
    base = {"host": host.name, "file": Path(host.file).name, "known_periods_days": host.known_periods_days}
    rows = [{**base, "data": "first 90 d" if host.stitched else "whole file", **row}
            for row in _search(quarter, host.known_periods_days)]
    if host.stitched and _needs_model(_WORKER["methods"]):
        whole = exoperiod_methods(lc, _WORKER["model"])["exoperiod"]
        rows.append({**base, "data": "whole Q1-Q17", **whole.row("exoperiod", host.known_periods_days)})
    return rows


def _run_one(item: Case | HostCase) -> list[dict]:
    return run_case(item) if isinstance(item, Case) else run_host(item)


def run_all(items: Sequence[Case | HostCase], methods: Sequence[str] = METHODS, workers: int = 2,
            model_path: str | None = None, tls_backend: str | None = None, config: Config | None = None,
            progress=None) -> list[dict]:
    """Run the methods on every case and host; rows in the order of ``items``.

    ``workers=1`` runs in this process (the caller sets thread counts); more start a pool
    of spawned processes with one numba and one torch thread each.
    """
    config = config or load_config()
    if workers == 1:
        setup_worker(model_path, methods, tls_backend, config)
        results = []
        for done, item in enumerate(items, start=1):
            results.append(_run_one(item))
            if progress:
                progress(done, len(items), item)
        return [row for rows in results for row in rows]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_pool_worker,
                             initargs=(model_path, tuple(methods), tls_backend, config)) as pool:
        futures = [pool.submit(_run_one, item) for item in items]
        results = []
        for done, (item, future) in enumerate(zip(items, futures), start=1):
            results.append(future.result())
            if progress:
                progress(done, len(items), item)
    return [row for rows in results for row in rows]


# ----------------------------------------------------------------------------- summary


def recovery_table(rows: pd.DataFrame, methods: Sequence[str]) -> str:
    """Markdown: top-1 / top-3 recovery per population and SNR tier, one column per method."""
    body = []
    for (population, snr), group in rows.groupby(["population", "snr"], sort=True):
        cells = []
        for m in methods:
            g = group[group["method"] == m]
            cells.append(f"{100 * g['top1'].mean():.0f} / {100 * g['top3'].mean():.0f}" if len(g) else "-")
        body.append((population, f"{snr:g}", group["index"].nunique(), *cells))
    return markdown_table(["light curves", "SNR", "n", *[f"{LABELS[m]} top-1 / top-3 %" for m in methods]], body)


def cpu_table(rows: pd.DataFrame, methods: Sequence[str]) -> str:
    """Markdown: mean CPU seconds per light curve, search alone and with preprocessing."""
    mean = rows.groupby("method")[["cpu_search_s", "cpu_preprocess_s"]].mean()
    mean["total"] = mean.sum(axis=1)
    body = []
    for m in methods:
        if m not in mean.index:
            continue
        ratio = (f"{mean.loc['bls', 'cpu_search_s'] / mean.loc[m, 'cpu_search_s']:.0f}x / "
                 f"{mean.loc['bls', 'total'] / mean.loc[m, 'total']:.0f}x") if "bls" in mean.index else "-"
        body.append((LABELS[m], f"{mean.loc[m, 'cpu_search_s']:.3f}", f"{mean.loc[m, 'cpu_preprocess_s']:.3f}",
                     f"{mean.loc[m, 'total']:.3f}", ratio))
    return markdown_table(["method", "CPU s / light curve: search", "preprocessing", "total",
                           "BLS / method (search / total)"], body)


def _mark(periods: str, error: str | None, known: Sequence[float]) -> str:
    if isinstance(error, str):
        # Messages read "<path>: <problem>"; the problem is what the table needs.
        return f"error: {error.rsplit(': ', 1)[-1]}"
    if not periods:
        return "-"
    return ", ".join(f"**{float(p):.4f}**" if relative_match(float(p), known) else f"{float(p):.4f}"
                     for p in periods.split(";"))


def host_table(rows: pd.DataFrame, methods: Sequence[str]) -> str:
    """Markdown: per host light curve, the KOI periods and each method's top-3 (bold: a
    KOI period within 2 %)."""
    body = []
    for (host, file, data), group in rows.groupby(["host", "file", "data"], sort=False):
        known = group["known_periods_days"].iloc[0]
        found = {r.method: _mark(r.periods_found, r.error, known) for r in group.itertuples()}
        body.append((host, f"{data} ({file})", ", ".join(f"{p:g}" for p in known),
                     *[found.get(m, "") for m in methods]))
    return markdown_table(["host", "data", "KOI periods (d)", *[f"{LABELS[m]} top-3 (d)" for m in methods]], body)


def plot(rows: pd.DataFrame, methods: Sequence[str], path: Path) -> None:
    """Top-1 recovery vs SNR tier per population, and CPU per light curve, in one PNG."""
    populations = list(dict.fromkeys(rows["population"]))
    tiers = sorted(rows["snr"].unique())
    fig, axes = pyplot().subplots(1, len(populations) + 1, figsize=(4.2 * (len(populations) + 1), 3.6))
    for ax, population in zip(axes, populations):
        sub = rows[rows["population"] == population]
        for k, m in enumerate(methods):
            g = sub[sub["method"] == m].groupby("snr")["top1"].mean().reindex(tiers)
            # A small sideways shift keeps methods with equal scores visible.
            ax.plot(np.arange(len(tiers)) + 0.06 * (k - 1.5), g.values, "os^D"[k % 4] + "-", label=LABELS[m])
        ax.set_xticks(np.arange(len(tiers)), [f"{t:g}" for t in tiers])
        ax.set(xlabel="injected SNR", ylabel="top-1 recovery", ylim=(-0.03, 1.03),
               title=f"{population} light curves (n = {sub['index'].nunique()} per tier)")
    axes[0].legend(fontsize=8)
    cpu = rows.groupby("method")[["cpu_search_s", "cpu_preprocess_s"]].mean().reindex(list(methods))
    x = np.arange(len(methods))
    axes[-1].bar(x - 0.2, cpu["cpu_search_s"], 0.4, label="search")
    axes[-1].bar(x + 0.2, cpu["cpu_search_s"] + cpu["cpu_preprocess_s"], 0.4, label="with preprocessing")
    axes[-1].set_xticks(x, [LABELS[m].replace("exoperiod ", "").replace(" + ", "\n+ ") for m in methods],
                        fontsize=8)
    axes[-1].set(yscale="log", ylim=(1e-3, None), ylabel="CPU s per light curve",
                 title="cost (exoperiod: model, model + refine)")
    axes[-1].legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def report(cases: pd.DataFrame, hosts: pd.DataFrame, methods: Sequence[str], args: argparse.Namespace,
           wall_seconds: float) -> str:
    """The markdown report of a run."""
    import transitleastsquares

    load = os.getloadavg()
    parts = [
        "# exoperiod vs BLS vs TLS",
        (f"Measured {time.strftime('%Y-%m-%d %H:%M')} on {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, transitleastsquares {transitleastsquares.__version__} (backend "
        f"{args.tls_backend or 'package default'}); {args.workers} worker processes with one thread each; "
        f"wall time {wall_seconds / 60:.1f} min; load average at the end {load[0]:.1f}. Command: "
        f"`python benchmarks/vs_bls_tls.py --n {args.n} --tiers {args.tiers} --seed {args.seed}"
        f"{'' if args.real else ' --no-real'}`. Model: {args.model or 'the packaged default'} "
        f"(sha256 {_sha256(Path(args.model) if args.model else DEFAULT_MODEL_PATH)[:12]}, "
        f"{describe_model(PeriodModel.load(args.model))})."),
        ("A period is recovered when |p/P - 1| < 2 %. Top-3: the three highest distinct peaks "
        "(bins for the model alone). Settings: see the docstring of `benchmarks/vs_bls_tls.py`."),
        "## Recovery (top-1 / top-3, %)",
        recovery_table(cases, methods),
        "## CPU per light curve (mean over all injected light curves)",
        cpu_table(cases, methods),
        "![recovery and CPU](vs_bls_tls.png)",
    ]
    errors = cases[cases["error"].notna()]
    if len(errors):
        parts.append(f"Errors: {len(errors)} method runs failed, e.g. `{errors['error'].iloc[0]}`.")
    short = cases.drop_duplicates(["population", "snr", "index"])
    short = short[short["snr_reached"] < 0.99 * short["snr"]]
    if len(short):
        stars = ", ".join(sorted({Path(f).name.split("-")[0] for f in short["file"] if f} | (
            {"simulated"} if (short["file"] == "").any() else set())))
        parts.append(f"{len(short)} light curves did not reach their tier's SNR (radius ratio capped at "
                     f"{RP_RS_MAX}; median reached {short['snr_reached'].median():.1f}): {stars}. They are "
                     "counted in their tier.")
    if len(hosts):
        parts += ["## Real planet hosts",
                  "Bold: within 2 % of a KOI period (all KOI periods are listed, also those beyond 40 d).",
                  host_table(hosts, methods)]
    return "\n\n".join(parts) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="light curves per SNR tier and population")
    parser.add_argument("--tiers", default=",".join(f"{t:g}" for t in TIERS), help="SNR tiers, comma-separated")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="output folder")
    parser.add_argument("--real", action=argparse.BooleanOptionalAction, default=True,
                        help="also inject into real Kepler quarters and run the real hosts")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--model", default=None, help="model file (default: the packaged model)")
    parser.add_argument("--tls-backend", default=None, help="TLS search backend (default: the package's)")
    args = parser.parse_args()

    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    import numba
    import torch

    numba.set_num_threads(1)
    torch.set_num_threads(1)
    shared = shared_data_dir() if args.real else None
    if args.real and shared is None:
        parser.error("../shared/data not found (set EXOPERIOD_SHARED_DATA, or pass --no-real)")
    tiers = [float(t) for t in args.tiers.split(",")]
    real_files = [str(shared / f) for f in NON_HOST_QUARTERS] if shared else []
    cases = make_cases(args.n, tiers, args.seed, simulated=True, real_files=real_files)
    hosts = host_cases(shared) if shared else []
    start = time.perf_counter()
    rows = run_all([*cases, *hosts], METHODS, args.workers, args.model, args.tls_backend,
                   progress=lambda done, total, item: print(f"[{done}/{total}] {item.name}", flush=True))
    wall = time.perf_counter() - start
    table = pd.DataFrame(rows)
    is_host = table["host"].notna() if "host" in table else pd.Series(False, index=table.index)
    case_rows, host_rows = table[~is_host], table[is_host]
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "vs_bls_tls.csv", table.to_csv(index=False))
    plot(case_rows, METHODS, args.out / "vs_bls_tls.png")
    atomic_write_text(args.out / "vs_bls_tls.md", report(case_rows, host_rows, METHODS, args, wall))
    print(f"wrote {args.out / 'vs_bls_tls.md'}")


if __name__ == "__main__":
    main()
