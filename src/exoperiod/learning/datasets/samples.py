"""One star's samples: light curves in, sample files and metadata rows out.

Place in the flow (learning side): simulate, instruments, catalog (http) -> inject -> **datasets**,
curves -> train -> vetting -> evaluate; presets, demo.

This is the work a build spreads over processes. It depends only on the configuration,
the job (dataset kind, star index, star and files) and the dataset's planet rule, and
draws every random number from generators seeded with ``(seed, code, star index)``, so
a star can be made again, alone and in any process, with the same result.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable

import lightkurve as lk
import numpy as np
from astropy.stats import mad_std

from ...config import Config
from ...constants import MINUTES_PER_DAY
from ...grid import period_weights
from ...search.preprocess import clean_and_detrend, quality_mask, to_windows
from ...search.readers import read_lightcurve
from ..catalog import CatalogPlanet, CatalogStar
from ..inject import Planet, Star, transit_duration_hours, transit_model, transit_snr
from ..simulate import sample_star, simulate_lightcurve
from .store import StarRecord, split_of, write_npz

KINDS = ("positive", "negative", "synthetic")
KIND_PREFIX = {"positive": "pos", "negative": "neg", "synthetic": "syn"}
#: Second element of every random seed: which dataset draws. Simulated stars have their
#: own code, so simulated negative ``i`` and synthetic ``i`` are the same star.
KIND_CODE = {"positive": 1, "negative": 2, "synthetic": 3}
SIMULATED_STAR_CODE = 0
#: A simulated light curve is one model window long plus this margin, days: enough for
#: a full window after the first cadences are cut, too short to make a second one.
SIMULATION_MARGIN_DAYS = 1.0


@dataclass(frozen=True)
class StarJob:
    """One star to make samples of.

    Attributes
    ----------
    kind : {"positive", "negative", "synthetic"}
    index : int
        Position of the star in the dataset's star list: the seed of its randomness.
    source : {"simulated", "local", "mast"}
    star : CatalogStar or None
        The real star (None for a simulated one).
    files : tuple of str
        Its light-curve files (empty for a simulated star).
    """

    kind: str
    index: int
    source: str
    star: CatalogStar | None = None
    files: tuple[str, ...] = ()

    @property
    def star_id(self) -> str:
        return self.star.star_id if self.star is not None else f"SIM-{self.index:06d}"

    def failure(self, reason: str, lightcurve: str = "") -> dict:
        """A row of ``failures.csv``."""
        return {"star_id": self.star_id, "star_index": self.index, "source": self.source,
                "lightcurve": lightcurve, "reason": " ".join(reason.split())}


@dataclass(frozen=True)
class Curve:
    """One light curve of a star and the name its samples carry."""

    lc: lk.LightCurve
    segment: str
    name: str

    @cached_property
    def valid_time(self) -> np.ndarray:
        """Times of the cadences that hold usable flux (injecting transits keeps them)."""
        keep = quality_mask(self.lc) & np.isfinite(np.asarray(self.lc.flux.value, dtype=float))
        return np.asarray(self.lc.time.value, dtype=float)[keep]

    def detrended_noise_ppm(self, window_days: float) -> float:
        """Per-cadence scatter left after detrending: the noise a period search sees.

        Injected SNRs are set against it, not against the white noise alone, so that an
        SNR of 7 means the same to the search on a quiet star and on a spotted one.
        """
        detrended, _ = clean_and_detrend(self.lc, window_days)
        return float(mad_std(np.asarray(detrended.flux.value, dtype=float) - 1.0) * 1e6)


def _number(value) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


@dataclass(frozen=True)
class LabelPlanet:
    """A planet in a sample's label: from a catalogue or injected by us."""

    name: str | None
    period_days: float
    period_err_days: float | None
    t0_days: float | None
    depth_ppm: float | None
    duration_hours: float | None
    rp_rs: float | None
    impact: float | None
    injected: bool

    @classmethod
    def from_catalog(cls, planet: CatalogPlanet) -> LabelPlanet:
        return cls(planet.name, planet.period_days, planet.period_err_days, planet.t0_days,
                   planet.depth_ppm, planet.duration_hours, None, planet.impact, injected=False)

    @classmethod
    def from_injection(cls, planet: Planet, host: Star) -> LabelPlanet:
        centre = transit_model(np.array([planet.t0_days]), [planet], host, supersample=1)[0]
        return cls(None, planet.period_days, None, planet.t0_days, (1.0 - centre) * 1e6,
                   transit_duration_hours(planet, host), planet.rp_rs, planet.impact, injected=True)

    def model(self, time_days: np.ndarray, host: Star) -> np.ndarray | None:
        """Relative flux of this planet's transits alone (None when unknown).

        Injected planets use the batman model they were injected with; catalogue planets
        a box of the catalogue depth and duration.
        """
        if self.injected:
            planet = Planet(self.period_days, self.t0_days, self.rp_rs, self.impact)
            return transit_model(time_days, [planet], host)
        if self.t0_days is None or self.duration_hours is None or self.depth_ppm is None:
            return None
        half = 0.5 * self.period_days
        phase = (time_days - self.t0_days + half) % self.period_days - half
        return np.where(np.abs(phase) < self.duration_hours / 48.0, 1.0 - self.depth_ppm * 1e-6, 1.0)

    def record(self, snr: float | None) -> dict:
        """The planet as it goes into the ``planets`` metadata column."""
        values = {k: (_number(v) if isinstance(v, float) else v) for k, v in asdict(self).items()}
        return {**values, "snr": _number(snr) if snr is not None else None}


#: ``rule(config, job, curves, host, rng) -> (curves, planets)``: what a dataset puts
#: into a star's light curves and labels (see the dataset classes).
PlanetRule = Callable[[Config, StarJob, list[Curve], Star, np.random.Generator],
                      tuple[list[Curve], list[LabelPlanet]]]


def _segment(lc: lk.LightCurve, path: Path) -> str:
    for key, letter in (("QUARTER", "Q"), ("CAMPAIGN", "C"), ("SECTOR", "S")):
        if lc.meta.get(key) is not None:
            return f"{letter}{lc.meta[key]}"
    # Stitched or unlabelled light curves are told apart by their file name.
    return re.sub(r"[^A-Za-z0-9_.-]", "_", path.name.split(".")[0])


def _simulated_curve(config: Config, job: StarJob) -> tuple[list[Curve], Star]:
    rng = np.random.default_rng([config.seed, SIMULATED_STAR_CODE, job.index])
    sim = sample_star(rng, job.star_id)
    lc = simulate_lightcurve(sim, rng, duration_days=config.window_days + SIMULATION_MARGIN_DAYS,
                             cadence_minutes=config.cadence_minutes)
    return [Curve(lc, "sim", "simulated")], sim.star


def _real_curves(config: Config, job: StarJob, failures: list[dict]) -> tuple[list[Curve], Star]:
    curves: dict[str, Curve] = {}
    for file in job.files:
        path = Path(file)
        try:
            lc = read_lightcurve(path, config.flux_column)
        except ValueError as exc:  # LightCurveReadError: one line naming the file
            failures.append(job.failure(str(exc), path.name))
            continue
        segment = _segment(lc, path)
        if segment in curves:
            failures.append(job.failure(f"same segment {segment} as {curves[segment].name}; skipped", path.name))
            continue
        curves[segment] = Curve(lc, segment, path.name)
    return list(curves.values()), job.star.host()


def _sample_id(job: StarJob, curve: Curve, window: int) -> str:
    parts = [KIND_PREFIX[job.kind]]
    if job.star is None or job.kind == "synthetic":
        parts.append(f"{job.index:06d}")  # simulated stars and re-used real stars
    if job.star is not None:
        parts += [job.star_id.replace(" ", ""), curve.segment]
    return "-".join(parts + [f"w{window}"])


def _window_samples(
    config: Config, folder: Path, job: StarJob, curve: Curve, host: Star,
    planets: list[LabelPlanet], weights: np.ndarray,
) -> list[dict]:
    windows = to_windows(curve.lc, config)
    # Standardised inputs (zero median, unit variance) have lost their depth scale.
    standardized = bool(curve.lc.meta.get("FLUX_STANDARDIZED"))
    noise_ppm = None if standardized else windows.noise_ppm
    time = curve.valid_time
    models = [p.model(time, host) if noise_ppm else None for p in planets]
    cadence, length = windows.cadence_days, config.lightcurve_length
    split = split_of(job.star_id, config.seed)
    rows = []
    for k, start in enumerate(windows.start_time_days):
        sample_id = _sample_id(job, curve, k)
        inside = (time >= start - 0.5 * cadence) & (time < start + (length - 0.5) * cadence)
        snrs = [transit_snr(time[inside], m[inside], noise_ppm) if m is not None else None for m in models]
        write_npz(folder / f"{sample_id}.npz", {
            "arr_0": windows.flux[k], "arr_1": weights, "mask": windows.mask[k],
            "sample_id": np.array(sample_id), "star_id": np.array(job.star_id),
        })
        rows.append({
            "sample_id": sample_id, "star_id": job.star_id, "star_index": job.index,
            "kind": job.kind, "source": job.source, "mission": curve.lc.meta.get("MISSION") or "Kepler",
            "lightcurve": curve.name, "quarter_or_window": curve.segment, "window_index": k,
            "window_start_days": float(start), "noise_ppm": noise_ppm, "cdpp6_ppm": host.cdpp6_ppm,
            "n_planets": len(planets),
            "planets": json.dumps([p.record(s) for p, s in zip(planets, snrs, strict=True)]),
            "split": split,
        })
    return rows


def make_samples(config: Config, folder: str, rule: PlanetRule, job: StarJob) -> StarRecord:
    """Make and write every sample of one star.

    Parameters
    ----------
    config : Config
    folder : str
        The dataset folder.
    rule : PlanetRule
        The dataset's planets: catalogue ones, none, or injected ones.
    job : StarJob

    Returns
    -------
    StarRecord
        Metadata rows of the written samples and the failures met (a light curve that
        could not be read or cut into windows, or a star with nothing usable).
    """
    failures: list[dict] = []
    rows: list[dict] = []
    try:
        curves, host = _simulated_curve(config, job) if job.star is None else _real_curves(config, job, failures)
        if not curves:
            raise ValueError("no readable light curve")
        rng = np.random.default_rng([config.seed, KIND_CODE[job.kind], job.index])
        curves, planets = rule(config, job, curves, host, rng)
        grid = config.grid()
        weights = period_weights(grid, [p.period_days for p in planets],
                                 [p.period_err_days for p in planets]).weights
        for curve in curves:
            try:
                rows += _window_samples(config, Path(folder), job, curve, host, planets, weights)
            except ValueError as exc:  # PreprocessError: too few valid cadences, etc.
                failures.append(job.failure(str(exc), curve.name))
    except OSError:
        raise  # the output folder is unwritable: stopping beats logging every star
    except Exception as exc:  # noqa: BLE001 - one bad star must not stop a build
        failures.append(job.failure(f"{type(exc).__name__}: {exc}"))
    return StarRecord(job.index, rows, failures)


def exposure_minutes(curve: Curve) -> float:
    """The cadence of a light curve, minutes (exposures integrate over it)."""
    return float(np.median(np.diff(curve.valid_time))) * MINUTES_PER_DAY
