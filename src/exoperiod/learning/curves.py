"""Light curves of any length for training and benchmarks: backgrounds plus batman planets.

Place in the flow (learning side): simulate, instruments, catalog (http) -> inject -> datasets,
**curves** -> train -> vetting -> evaluate; presets, demo.

Why
---
The coherent search scores a whole light curve, so the scorer must learn on whole light
curves of every length it will meet: one Kepler quarter to 17 stitched quarters, 1-13
TESS-like sectors with their 13.7-d orbit gaps, 10-30 day fragments, and real stars'
noise, with planets from below the detection threshold to hot Jupiters.

Backgrounds
-----------
- ``kepler``: :func:`exoperiod.learning.simulate.simulate_lightcurve`, 1-17 quarters of 93 d,
  with a gap and a flux offset at each quarter boundary and rolling-band artefacts in
  some quarters (:func:`exoperiod.learning.instruments.add_quarter_boundaries`).
- ``tess``: the same stars at 30-min cadence, 1-13 sectors of 27.4 d, with a 1-day
  downlink gap every 13.7 d and momentum dumps (:func:`~exoperiod.learning.instruments.add_momentum_dumps`).
- ``k2``: one K2 campaign of 70-85 d at long cadence, with the residuals of K2's roll and
  its thruster firings every ~5.9 h (:func:`~exoperiod.learning.instruments.add_k2_roll`).
- ``fragment``: 8-30 days of Kepler-like data.
- Simulated backgrounds come in four variability families (:data:`VARIABILITY_WEIGHTS`):
  the simulator's rotation + granulation GP (55 %), long-lived spots (the GP's Q0 5-100;
  15 %), fast rotators (P_rot 0.3-5 d, 0.1-2 %; 20 %) and flaring stars (10 %). Each is
  detrended with the star's own window (:func:`exoperiod.search.preprocess.window_for_star`),
  as ``predict`` does.
- ``real``: a real light curve of ../shared/data with no known planet below 40 d
  (:func:`real_background_files`), time-reversed or with extra white noise half of the
  time, so that a hundred stars give many backgrounds.

Planets
-------
Injected into the star's *raw* flux, which is then cleaned and detrended exactly as
``predict`` does it (:func:`detrended_with_planets`): the detrending shaves each transit
as it will shave a real one (5-10 % of the depth of a 5-h transit with a 1.75-d
biweight, more with a fast rotator's short window), and the scorer learns on what the
search will see. 0-3 planets, period log-uniform over the grid, impact U(0, 0.9), and
the radius ratio that gives the drawn *total* SNR over the whole light curve against
the noise of the detrended star without planets (:func:`exoperiod.learning.inject.planet_for_snr`;
the "expected MES" of Kepler's injection tests: what the detrending then takes is the
search's loss): 70 % log-uniform in [4, 25] (the threshold region), 30 % log-uniform in
[25, 3000] (up to hot Jupiters), so that probabilities learn to grow with the signal.
"""

from __future__ import annotations

import hashlib
import json
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import lightkurve as lk
import numpy as np
import pandas as pd
from astropy.stats import mad_std

from ..config import Config
from ..constants import (
    KEPLER_QUARTER_DAYS,
    LOGG_SUN_CGS,
    MINUTES_PER_DAY,
    TESS_ORBIT_DAYS,
)
from ..files import atomic_write
from ..grid import PeriodGrid, period_weights
from ..search.preprocess import (
    PreprocessError,
    Series,
    clean_and_detrend,
    series_from_detrended,
)
from ..search.readers import LightCurveReadError, read_lightcurve
from .datasets.store import DatasetError
from .inject import Planet, Star, inject_transits, planet_for_snr, transit_duration_hours, transit_model
from .instruments import add_k2_roll, add_momentum_dumps, add_quarter_boundaries
from .simulate import log_uniform, sample_star, simulate_lightcurve

SECTOR_DAYS = 2 * TESS_ORBIT_DAYS
#: TESS downlinks once per orbit, for about a day.
TESS_GAP_DAYS = 1.0
LAYOUTS = ("kepler", "tess", "k2", "fragment", "real")
#: Share of each background layout in a training set.
LAYOUT_WEIGHTS = {"kepler": 0.4, "tess": 0.2, "k2": 0.1, "fragment": 0.05, "real": 0.25}
#: A K2 campaign's span, days (campaigns 1-19 lasted 70-85 d, apart from the short C0, C11, C19).
K2_CAMPAIGN_DAYS = (70.0, 85.0)
#: Planets per light curve: 0, 1, 2 or 3.
N_PLANET_WEIGHTS = (0.3, 0.45, 0.17, 0.08)
SNR_LOW = (4.0, 25.0)
SNR_HIGH = (25.0, 3000.0)
SNR_HIGH_SHARE = 0.3
MIN_PERIOD_RATIO = 1.3
IMPACT_MAX = 0.9
#: A Sun-like host for real backgrounds, whose star is not characterised in the file.
SUN_LIKE = Star(radius_rsun=1.0, mass_msun=1.0, teff_k=5778.0, logg_cgs=LOGG_SUN_CGS)
#: Real backgrounds: a star whose id hashes to a value below this share is held out of
#: training (the real-star generalisation check).
REAL_HOLDOUT_SHARE = 0.35


@dataclass
class InjectedPlanet:
    period_days: float
    t0_days: float
    duration_hours: float
    snr: float
    rp_rs: float
    impact: float

    def to_dict(self) -> dict:
        return {k: float(v) for k, v in self.__dict__.items()}


@dataclass
class Sample:
    """One training light curve: the uniform series the search sees, and its labels."""

    series: Series
    planets: list[InjectedPlanet]
    layout: str
    source: str
    meta: dict = field(default_factory=dict)
    #: The raw light curve with its planets, before cleaning and detrending: what a user
    #: hands ``predict`` (whose preprocessing turns it into ``series`` again).
    raw: lk.LightCurve | None = field(default=None, repr=False)


#: Variability families of simulated backgrounds and their shares in a training set:
#: the simulator's celerite2 rotation + granulation GP (P_rot 1-40 d, spots lasting about a
#: rotation); long-lived spots, the same GP with the rotation term's Q0 log-uniform in
#: [5, 100] (spots coherent over ~2-30 rotations, as on active K and M dwarfs, whose
#: residuals fold into a box at P_rot or a multiple: the issue's rotating M dwarfs); fast
#: rotators, the GP with P_rot log-uniform in [0.3, 5] d and 0.1-2 % amplitude (the stars
#: whose residual variability a fixed window takes for planets); and flaring stars (the GP
#: plus flares). The held-out family of ``benchmarks/heldout.py`` (deterministic spots of
#: evolving amplitude plus a random walk) is none of them.
VARIABILITY_WEIGHTS = {"gp": 0.55, "long_lived_spots": 0.15, "fast_rotator": 0.2, "flares": 0.1}
LONG_LIVED_SPOT_Q0 = (5.0, 100.0)
FAST_ROTATION_DAYS = (0.3, 5.0)
FAST_ROTATION_PPM = (1_000.0, 20_000.0)
#: Flares: rate per day, peak in units of the white noise per cadence, e-folding decay
#: (minutes); impulsive rise within one cadence (Davenport 2014's template, simplified).
FLARES_PER_DAY = (0.05, 1.0)
FLARE_PEAK_SIGMA = (5.0, 100.0)
FLARE_DECAY_MINUTES = (10.0, 120.0)


def add_flares(lc: lk.LightCurve, rng: np.random.Generator, noise_ppm: float) -> lk.LightCurve:
    """``lc`` with flares: Poisson times, instant rise, exponential decay (relative flux)."""
    time = np.asarray(lc.time.value, dtype=float)
    flux = np.asarray(lc.flux.value, dtype=float).copy()
    span = float(time[-1] - time[0])
    for _ in range(rng.poisson(log_uniform(rng, *FLARES_PER_DAY) * span)):
        start = float(rng.uniform(time[0], time[-1]))
        decay_days = log_uniform(rng, *FLARE_DECAY_MINUTES) / MINUTES_PER_DAY
        after = time >= start
        flux[after] += (log_uniform(rng, *FLARE_PEAK_SIGMA) * noise_ppm * 1e-6
                        * np.exp(-(time[after] - start) / decay_days))
    out = lc.copy()
    out.flux = flux
    return out


def simulated_background(rng: np.random.Generator, layout: str, n_segments: int, star_id: str,
                         variability: str = "gp",
                         family_rng: np.random.Generator | None = None) -> tuple[lk.LightCurve, Star]:
    """A raw simulated light curve of ``n_segments`` quarters/sectors (a K2 campaign and a
    fragment are one segment whatever ``n_segments`` says).

    ``variability`` is one of :data:`VARIABILITY_WEIGHTS`; its own draws come from
    ``family_rng`` (needed by every family but ``gp``), so that a seed draws the same star,
    instrument signatures and planet periods, epochs and impacts whatever its family.
    """
    if family_rng is None and variability != "gp":
        raise ValueError(f"the {variability!r} family draws from family_rng: pass a seeded generator")
    sim = sample_star(rng, star_id)
    if variability == "fast_rotator":
        sim = replace(sim, rotation_period_days=log_uniform(family_rng, *FAST_ROTATION_DAYS),
                      variability_ppm=log_uniform(family_rng, *FAST_ROTATION_PPM))
    elif variability == "long_lived_spots":
        sim = replace(sim, spot_q0=log_uniform(family_rng, *LONG_LIVED_SPOT_Q0))
    elif variability not in VARIABILITY_WEIGHTS:
        raise ValueError(f"variability must be one of {', '.join(VARIABILITY_WEIGHTS)}; not {variability!r}")
    if layout == "kepler":
        lc = simulate_lightcurve(sim, rng, duration_days=KEPLER_QUARTER_DAYS * n_segments)
        lc = add_quarter_boundaries(lc, rng)
    elif layout == "tess":
        lc = simulate_lightcurve(sim, rng, duration_days=SECTOR_DAYS * n_segments, cadence_minutes=30.0)
        t = lc.time.value - lc.time.value[0]
        lc = add_momentum_dumps(lc[(t % TESS_ORBIT_DAYS) < TESS_ORBIT_DAYS - TESS_GAP_DAYS], rng,
                                sim.noise_ppm_per_cadence)
    elif layout == "k2":
        lc = add_k2_roll(simulate_lightcurve(sim, rng, duration_days=float(rng.uniform(*K2_CAMPAIGN_DAYS))),
                         rng, sim.noise_ppm_per_cadence)
        lc.meta["MISSION"] = "K2"
    elif layout == "fragment":
        lc = simulate_lightcurve(sim, rng, duration_days=float(rng.uniform(8.0, 30.0)))
    else:
        raise ValueError(f"layout must be one of kepler, tess, k2, fragment; not {layout!r}")
    if variability == "flares":
        lc = add_flares(lc, family_rng, sim.noise_ppm_per_cadence)
    return lc, sim.star


def real_background_files(shared: Path) -> pd.DataFrame:
    """Real light curves usable as planet-free backgrounds, with a ``holdout`` column.

    Kept: no known planet and no KOI/TOI candidate below 40 d (``no_known_planet``,
    ``host_P>=40d_only``, false positives), at least 8 days long. Eclipsing binaries and
    pulsators stay in: the scorer must learn that they are not planets.
    """
    manifest = pd.read_csv(shared / "MANIFEST.csv")
    usable = manifest["host_class"].str.startswith(("no_known_planet", "host_P>=40d", "koi_false", "toi_false"))
    usable &= manifest["time_span_days"].astype(float) >= 8.0
    # Standardized files (zero median, unit variance) have no relative flux to detrend.
    usable &= ~manifest["flux_type"].fillna("").str.contains("standardized")
    rows = manifest[usable].copy()
    rows["path"] = [str(shared / f) for f in rows["file"]]
    rows["holdout"] = [_hash01(t) < REAL_HOLDOUT_SHARE for t in rows["target_id"]]
    return rows[["path", "target_id", "mission", "holdout"]].reset_index(drop=True)


def _hash01(text: str) -> float:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / 16**8


def draw_planets(rng: np.random.Generator, detrended: lk.LightCurve, star: Star, grid: PeriodGrid,
                 n: int, snr_range: tuple[float, float] | None = None) -> list[tuple[Planet, float]]:
    """``n`` planets (with their total SNR) for a detrended light curve.

    ``snr_range`` fixes a log-uniform SNR range; by default the mixture of the module
    docstring. A period with no transit on a valid cadence is drawn again.
    """
    time = np.asarray(detrended.time.value, dtype=float)
    noise_ppm = float(mad_std(np.asarray(detrended.flux.value) - 1.0)) * 1e6
    exposure = float(np.median(np.diff(time))) * MINUTES_PER_DAY
    out: list[tuple[Planet, float]] = []
    if not noise_ppm > 0:  # quantised or constant flux: no SNR can be set
        return out
    for _ in range(200 * max(n, 1)):
        if len(out) == n:
            break
        period = log_uniform(rng, grid.min_days, grid.max_days)
        if any(max(period, p.period_days) / min(period, p.period_days) < MIN_PERIOD_RATIO for p, _ in out):
            continue
        lo, hi = snr_range or (SNR_HIGH if rng.random() < SNR_HIGH_SHARE else SNR_LOW)
        snr = log_uniform(rng, lo, hi)
        try:
            planet = planet_for_snr(time, snr, period, time[0] + float(rng.uniform(0, period)),
                                    float(rng.uniform(0, IMPACT_MAX)), star, noise_ppm, exposure)
        except ValueError:
            continue
        out.append((planet, snr))
    return out


#: Eclipsing binaries (:func:`add_eclipsing_binary`): the companion's radius over the
#: primary's, its surface brightness over the primary's (sets the secondary eclipse's
#: depth over the primary's), the impact parameter as a share of 1 + k (above 1 - k the
#: eclipses are grazing, V-shaped), and the light of other stars in the aperture that
#: dilutes them (log-uniform: from an isolated binary to a background one at 1 % of the
#: light, as blended binaries make most of Kepler's false positives).
BINARY_RADIUS_RATIO = (0.2, 1.0)
BINARY_SURFACE_BRIGHTNESS_RATIO = (0.0, 1.0)
BINARY_IMPACT_SHARE = (0.0, 0.95)
BINARY_LIGHT_SHARE = (0.003, 1.0)


def add_eclipsing_binary(lc: lk.LightCurve, rng: np.random.Generator, star: Star,
                         grid: PeriodGrid) -> tuple[lk.LightCurve, float]:
    """``lc`` with the primary and secondary eclipses of a circular binary, and its period.

    A negative the vetter must learn (the issue's "eclipsing binaries as negatives"): both
    eclipses are batman transits of a companion of radius ratio k, the secondary half a
    period later and shallower by the surface-brightness ratio, both diluted by the
    binary's share of the light in the aperture. Period log-uniform over ``grid``.
    """
    time = np.asarray(lc.time.value, dtype=float)
    exposure = float(np.median(np.diff(time))) * MINUTES_PER_DAY
    period = log_uniform(rng, grid.min_days, grid.max_days)
    t0 = time[0] + float(rng.uniform(0, period))
    k = float(rng.uniform(*BINARY_RADIUS_RATIO))
    impact = float(rng.uniform(*BINARY_IMPACT_SHARE)) * (1 + k)
    brightness = float(rng.uniform(*BINARY_SURFACE_BRIGHTNESS_RATIO))
    light = log_uniform(rng, *BINARY_LIGHT_SHARE)
    primary = transit_model(time, [Planet(period, t0, k, impact)], star, exposure)
    # The secondary: the companion eclipsed, its light lost in proportion to the primary's
    # eclipse depth times the brightness ratio (the same geometry, half a period later).
    secondary = 1 - brightness * (1 - transit_model(time, [Planet(period, t0 + period / 2, k, impact)], star, exposure))
    out = lc.copy()
    out.flux = out.flux * (1 + light * (primary * secondary - 1))
    return out, period


def detrended_with_planets(lc: lk.LightCurve, star: Star, rng: np.random.Generator, config: Config,
                           n_planets: int, snr_range: tuple[float, float] | None = None,
                           augment: bool = False, grid: PeriodGrid | None = None) -> tuple[lk.LightCurve, lk.LightCurve, np.ndarray, list[InjectedPlanet]]:
    """A star with planets in its raw flux, and that light curve detrended as ``predict`` does it.

    The star is first detrended alone: its noise and valid cadences set each planet's
    radius for the drawn total SNR (:func:`draw_planets`). The planets are then injected
    into the raw flux and the whole light curve is cleaned and detrended again, with the
    star's own window (:func:`~exoperiod.search.preprocess.clean_and_detrend`), so that the
    detrending takes its share of every transit as it does on real data.

    Parameters
    ----------
    lc : lightkurve.LightCurve
        The raw light curve (flux around 1, quality flags as read).
    star : Star
        The host (its density sets the transit durations).
    rng : numpy.random.Generator
        Every random choice (augmentation, planets).
    config : Config
        Grid, detrending window and whether it adapts to the star.
    n_planets : int
    snr_range : (float, float), optional
        A log-uniform range of total SNR (default: :func:`draw_planets`' mixture).
    augment : bool
        Time-reverse and add white noise first (:func:`augment_real`), for real stars.
    grid : PeriodGrid, optional
        Periods are drawn log-uniform over it (default: the config's).

    Returns
    -------
    raw, detrended : lightkurve.LightCurve
        The raw light curve with its planets, and its detrended version.
    trend : numpy.ndarray
        The trend ``detrended`` was divided by.
    planets : list of InjectedPlanet
    """
    window, adaptive = config.detrend_window_days, config.adaptive_detrending
    quiet, trend = clean_and_detrend(lc, window, adaptive)
    if augment:
        lc = augment_real(lc, rng, float(mad_std(np.asarray(quiet.flux.value, dtype=float))))
        quiet, trend = clean_and_detrend(lc, window, adaptive)
    drawn = draw_planets(rng, quiet, star, grid or config.grid(), n_planets, snr_range)
    if not drawn:
        return lc, quiet, trend, []
    raw = inject_transits(lc, [planet for planet, _ in drawn], star)
    planets = [InjectedPlanet(planet.period_days, planet.t0_days, transit_duration_hours(planet, star),
                              snr, planet.rp_rs, planet.impact) for planet, snr in drawn]
    detrended, trend = clean_and_detrend(raw, window, adaptive)
    return raw, detrended, trend, planets


#: Extra white noise for an augmented real background, in units of its own scatter:
#: 0.3 barely changes the star, 1.5 makes a Kp~12 star look like a Kp~14 one (the range
#: of Kepler's planet hosts), while its red noise and gaps stay its own.
EXTRA_NOISE_RANGE = (0.3, 1.5)


def augment_real(lc: lk.LightCurve, rng: np.random.Generator, noise: float) -> lk.LightCurve:
    """Time reversal and extra white noise (``noise``: the detrended star's scatter, in
    relative flux), each half of the time: new backgrounds with the star's own red noise
    and gaps. Flux, errors and quality flags are reversed together; times stay."""
    out = lc.copy()
    flux = np.asarray(out.flux.value, dtype=float)
    if rng.random() < 0.5:
        flux = flux[::-1].copy()
        for column in ("flux_err", "quality"):
            if column in out.colnames:
                out[column] = out[column][::-1]
    if rng.random() < 0.5:
        flux = flux + rng.uniform(*EXTRA_NOISE_RANGE) * noise * rng.standard_normal(len(flux))
    out.flux = flux
    return out


def make_sample(seed: int, config: Config, real_files: list[str] | None = None,
                layout: str | None = None, n_segments: int | None = None, n_planets: int | None = None,
                snr_range: tuple[float, float] | None = None, variability: str | None = None,
                binary: bool = False) -> Sample:
    """One training or benchmark light curve, fully determined by ``seed`` and the rest.

    Parameters
    ----------
    seed : int
        Seed of every random choice.
    config : Config
        The period grid, cadence and detrending window.
    real_files : list of str, optional
        Real backgrounds to draw from for the ``real`` layout (None: no real layout).
    layout, n_segments, n_planets, snr_range, variability : optional
        Fix what is otherwise drawn (benchmarks fix all of them). The variability family
        of a simulated background is drawn from its own stream (seeded by ``seed``).
    binary : bool
        Add an eclipsing binary to the star (:func:`add_eclipsing_binary`, from a stream
        of its own: every other draw is the same as without it); its period is in
        ``meta["binary_period_days"]``. The training curves have none; the vetter's
        light curves have some (:mod:`exoperiod.learning.vetting`).
    """
    rng = np.random.default_rng(seed)
    family_rng = np.random.default_rng([seed, 1])
    if variability is None:
        names = list(VARIABILITY_WEIGHTS)
        variability = str(family_rng.choice(names, p=[VARIABILITY_WEIGHTS[k] for k in names]))
    if layout is None:
        names = [k for k in LAYOUTS if k != "real" or real_files]
        weights = np.array([LAYOUT_WEIGHTS[k] for k in names])
        layout = str(rng.choice(names, p=weights / weights.sum()))
    if layout == "real":
        path = str(rng.choice(real_files))
        lc, star, source = read_lightcurve(path), SUN_LIKE, path
    else:
        if layout in ("k2", "fragment"):
            n_segments = 1
        elif n_segments is None:  # Kepler has 17 quarters, TESS 13 sectors a year
            n_segments = int(rng.integers(1, 18 if layout == "kepler" else 14))
        lc, star = simulated_background(rng, layout, n_segments, f"SIM-{seed}", variability, family_rng)
        source = f"simulated:{layout}:{n_segments}:{variability}"
    if n_planets is None:
        n_planets = int(rng.choice(len(N_PLANET_WEIGHTS), p=N_PLANET_WEIGHTS))
    meta = {"seed": seed}
    if binary:
        lc, meta["binary_period_days"] = add_eclipsing_binary(lc, np.random.default_rng([seed, 2]), star,
                                                              config.grid())
    raw, detrended, trend, planets = detrended_with_planets(lc, star, rng, config, n_planets, snr_range,
                                                            augment=layout == "real")
    series = series_from_detrended(detrended, trend, config.cadence_minutes / MINUTES_PER_DAY, source)
    return Sample(series=series, planets=planets, layout=layout, source=source,
                  meta={**meta, "span_days": series.span_days, "valid_days": series.valid_days}, raw=raw)


def labels(sample: Sample, config: Config) -> tuple[np.ndarray, np.ndarray]:
    """Period weights (``arr_1``) and duration weights (``arr_2``) of a sample."""
    period = period_weights(config.grid(), [p.period_days for p in sample.planets]).weights
    duration = period_weights(config.duration_grid(), [p.duration_hours for p in sample.planets]).weights
    return period, duration


def planets_json(sample: Sample) -> str:
    return json.dumps([p.to_dict() for p in sample.planets])


def split_of(sample: Sample) -> str:
    """train / val / test by a hash of the star: 80 / 10 / 10 %. Real stars are only
    ever drawn from the training stars (:func:`real_background_files`), so all their
    samples train, except 10 % of the stars, for validation."""
    key = sample.source if sample.layout == "real" else f"seed:{sample.meta['seed']}"
    u = _hash01(key)
    if sample.layout == "real":
        return "val" if u < 0.1 else "train"
    return "train" if u < 0.8 else "val" if u < 0.9 else "test"


def training_backgrounds(shared: Path | None) -> list[str] | None:
    """The real planet-free stars of ../shared/data that training light curves may be
    drawn on (its held-out stars excluded), or None without shared data."""
    if shared is None or not (shared / "MANIFEST.csv").is_file():
        return None
    real = real_background_files(shared)
    return sorted(real.loc[~real["holdout"], "path"])


def sample_id_of(seed: int) -> str:
    """The sample id of the light curve made from ``seed``."""
    return f"curve-{seed:07d}"


def seed_of(sample_id: str) -> int:
    """The seed of the light curve ``sample_id`` (:func:`sample_id_of` backwards)."""
    head, _, digits = sample_id.partition("-")
    if head != "curve" or not digits.isdigit():
        raise DatasetError(f"{sample_id}: not the id of a whole light curve (curve-<seed>)")
    return int(digits)


def regenerated(sample_id: str, stored_flux: np.ndarray, config: Config,
                real_files: list[str] | None) -> Sample | None:
    """A written sample made again from its seed, with its raw light curve.

    A sample stores the series the search sees (detrended once with the star's window,
    on the uniform grid), not the raw light curve a user hands ``predict``: what a short
    window shaves off a transit is gone from it. Regenerating the sample gives the raw one
    back, but only with the same simulator and the same real backgrounds: the stored
    series is the check.

    Parameters
    ----------
    sample_id : str
        ``curve-<seed>``.
    stored_flux : ndarray
        The sample's stored series (``arr_0``, float32).
    config : Config
        The configuration it was written with (grid, cadence, window).
    real_files : list of str or None
        The real backgrounds it was drawn from (:func:`training_backgrounds` of the shared
        data it was built with).

    Returns
    -------
    Sample or None
        None when the seed no longer gives the stored series, or a background no longer reads.

    Raises
    ------
    DatasetError
        ``sample_id`` is no whole light curve's.
    """
    try:
        again = make_sample(seed_of(sample_id), config, real_files)
    except (PreprocessError, LightCurveReadError, OSError):  # a background gone or unreadable
        return None
    flux = again.series.flux.astype(np.float32)
    same = len(flux) == len(stored_flux) and np.allclose(flux, stored_flux, atol=1e-4, equal_nan=True)
    return again if same else None


def _write_one(seed: int, config: Config, real_files: list[str] | None, folder: str) -> dict:
    """Make, search and write one sample; return its metadata row."""
    from ..search.model import PeriodModel, features_key

    sample_id = sample_id_of(seed)
    try:
        sample = make_sample(seed, config, real_files)
    except PreprocessError as err:
        return {"sample_id": sample_id, "error": str(err)}
    period, duration = labels(sample, config)
    # The search has no weights: an untrained model's fold gives the training features.
    features = PeriodModel(config).search(sample.series.flux, sample.series.mask)[1]
    path = Path(folder) / f"{sample_id}.npz"
    with atomic_write(path) as tmp:
        np.savez_compressed(tmp, arr_0=sample.series.flux, arr_1=period, arr_2=duration, mask=sample.series.mask,
                            features=features, features_key=np.array(features_key(config)),
                            sample_id=np.array(sample_id), star_id=np.array(sample.source),
                            start_time_days=np.array(sample.series.start_time_days),
                            cadence_days=np.array(sample.series.cadence_days))
    return {"sample_id": sample_id, "error": "", "split": split_of(sample), "layout": sample.layout,
            "source": sample.source, "n_cells": len(sample.series.flux), "valid_days": sample.series.valid_days,
            "noise_ppm": sample.series.noise_ppm, "planets": planets_json(sample),
            "max_snr": max([p.snr for p in sample.planets], default=0.0)}


def write_curves(config: Config, n: int, seed: int | None = None, shared: Path | None = None,
                 workers: int = 1, progress=None) -> Path:
    """Write ``n`` whole light curves of any length to ``<output_root>/<curves>``.

    Each sample is an ``.npz``: ``arr_0`` the uniform series (float32, unit noise,
    variable length), ``mask`` its valid cells, ``arr_1`` period weights, ``arr_2``
    duration weights (``distribution_params.duration``), ``features`` the cached fold
    features (with ``features_key``), and ``start_time_days``/``cadence_days`` to put
    the series back on a time axis. ``metadata.parquet``/``.csv`` hold one row each
    (split, layout, source, planets as JSON). Resumable: existing samples are kept;
    rows are rewritten at the end.

    Parameters
    ----------
    config : Config
    n : int
        Number of samples (seeds ``seed * 1_000_000 + i``).
    seed : int, optional
        Default: ``config.seed``.
    shared : Path, optional
        ../shared/data, for real backgrounds (its training stars only).
    workers : int
        Processes.
    progress : callable, optional
        ``progress("curves", done, total)``.
    """
    from .datasets.build import worker_pool

    seed = config.seed if seed is None else seed
    folder = Path(config.output_root) / config.curves
    folder.mkdir(parents=True, exist_ok=True)
    table = folder / "metadata.csv"
    rows = {r["sample_id"]: r for r in pd.read_csv(table, keep_default_na=False).to_dict("records")} if table.is_file() else {}
    real_files = training_backgrounds(shared)
    seeds = [seed * 1_000_000 + i for i in range(n)]
    todo = [s for s in seeds if sample_id_of(s) not in rows or not (folder / f"{sample_id_of(s)}.npz").is_file()]
    done = n - len(todo)
    job = partial(_write_one, config=config, real_files=real_files, folder=str(folder))
    # The dataset builders' pool: fresh workers (never a fork of a process running torch).
    with worker_pool(workers) if workers > 1 else nullcontext() as pool:
        for row in pool.map(job, todo, chunksize=4) if pool else map(job, todo):
            rows[row["sample_id"]] = row
            done += 1
            if progress:
                progress("curves", done, n)
            if done % 200 == 0:
                _write_table(rows, folder)
    _write_table(rows, folder)
    return folder


def _write_table(rows: dict, folder: Path) -> None:
    table = pd.DataFrame([r for r in rows.values() if not r.get("error")]).sort_values("sample_id")
    failed = pd.DataFrame([r for r in rows.values() if r.get("error")], columns=["sample_id", "error"])
    for frame, name in ((table, "metadata"), (failed, "failures")):
        with atomic_write(folder / f"{name}.csv") as tmp:
            frame.to_csv(tmp, index=False)
    with atomic_write(folder / "metadata.parquet") as tmp:
        table.to_parquet(tmp, index=False)


__all__ = ["Sample", "InjectedPlanet", "make_sample", "labels", "real_background_files", "regenerated",
           "sample_id_of", "seed_of", "training_backgrounds", "write_curves"]
