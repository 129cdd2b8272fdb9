"""The exoperiod configuration: one JSON file, validated by pydantic.

Place in the flow: base module: used by the search side and the learning side, imports
neither.

The keys of the seed project's ``config.json`` are accepted as they are (including the
misspelt ``valid_lightcurve_lenght_threshold``); unknown keys and impossible values are
rejected with a one-line :class:`ConfigError` that names the key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)

from .constants import KEPLER_LONG_CADENCE_MINUTES, MINUTES_PER_DAY
from .errors import ExoperiodError
from .paths import PACKAGE_DATA

DEFAULT_CONFIG_PATH = PACKAGE_DATA / "config.json"

# Bounds that keep memory sane. The model's fold grows with the window length and the
# number of trial periods: 4,096 cells and the default grid take ~0.5 GB, 8,192 cells
# ~1.3 GB, 16,384 cells 4.5 GB; 1,000 bins over 0.2-1,000 d ~0.8 GB (measured, 2026-11).
# A config file and the config inside a model file go through the same bounds.
MAX_LIGHTCURVE_LENGTH = 8192
MAX_PERIOD_BINS = 1000
MIN_PERIOD_DAYS = 0.2
MAX_PERIOD_DAYS = 1000.0
#: One minute to one day. The model grid spans a light curve's whole time span (at most
#: 30 years, see :data:`exoperiod.search.readers.MAX_TIME_SPAN_DAYS`): at one minute that is 16
#: million cells, ~0.15 GB to preprocess; at 15 s it was 0.55 GB (measured). Shorter
#: cadences in a file (TESS's 20 s) are binned to the grid anyway.
CADENCE_MINUTES_RANGE = (1.0, 1440.0)
#: Stars per dataset and planets per synthetic star.
MAX_SAMPLE_COUNT = 1_000_000
MAX_PLANETS_PER_STAR = 10
#: A config file is a few hundred bytes; anything this large is not one.
MAX_CONFIG_BYTES = 1 << 20


class ConfigError(ExoperiodError):
    """A configuration file that cannot be used; the message is one line."""


class _Strict(BaseModel):
    # allow_inf_nan: JSON's Infinity, NaN and 1e999 are never a usable setting.
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True, allow_inf_nan=False)


class PeriodDistribution(_Strict):
    min: float = Field(1.0, ge=MIN_PERIOD_DAYS, description="Shortest period of the grid, days.")
    max: float = Field(40.0, gt=0, le=MAX_PERIOD_DAYS, description="Longest period of the grid, days.")
    bins: int = Field(100, ge=2, le=MAX_PERIOD_BINS, description="Number of period bins.")
    spacing: Literal["log", "linear"] = "log"

    @model_validator(mode="after")
    def _ordered(self) -> "PeriodDistribution":
        if self.min >= self.max:
            raise ValueError(f"min ({self.min}) must be below max ({self.max})")
        return self


class DurationDistribution(PeriodDistribution):
    """The transit-duration grid, hours (the seed repository's ``duration`` key)."""

    min: float = Field(1.0, gt=0, description="Shortest duration of the grid, hours.")
    max: float = Field(20.0, gt=0, description="Longest duration of the grid, hours.")
    bins: int = Field(100, ge=2, description="Number of duration bins.")
    spacing: Literal["log", "linear"] = Field(
        "linear", description="Linear like the seed repository's grid (its key has no spacing)."
    )


class DistributionParams(_Strict):
    period: PeriodDistribution = PeriodDistribution()
    duration: DurationDistribution = DurationDistribution()


class SyntheticPriors(_Strict):
    """Priors of injected planets (see README, "Simulated stars and injected planets")."""

    snr_min: float = Field(7.0, gt=0, description="Lowest injected transit SNR.")
    snr_max: float = Field(50.0, gt=0, description="Highest injected transit SNR.")
    impact_max: float = Field(0.9, ge=0, lt=1, description="Impact parameter b ~ U(0, impact_max).")
    min_period_ratio: float = Field(
        1.3, gt=1, description="Smallest period ratio between two planets of one star."
    )

    @model_validator(mode="after")
    def _ordered(self) -> "SyntheticPriors":
        if self.snr_min >= self.snr_max:
            raise ValueError(f"snr_min ({self.snr_min}) must be below snr_max ({self.snr_max})")
        return self


class Config(_Strict):
    """Every setting of a dataset build, a training run and a prediction."""

    username: str | None = Field(None, description="Kaggle user name (optional).")
    key: SecretStr | None = Field(None, description="Kaggle API key (optional, never printed).")
    dataset_name: str = "nasa/kepler-exoplanet-search-results"
    star_catalog_files: list[str] = Field(default_factory=list)
    koi_table: str | None = Field(
        None, description="Local KOI cumulative CSV; None downloads it from the archive."
    )
    positive_sample_count: int = Field(100, ge=0, le=MAX_SAMPLE_COUNT)
    negative_sample_count: int = Field(100, ge=0, le=MAX_SAMPLE_COUNT)
    synthetic_samples_count: int = Field(1000, ge=0, le=MAX_SAMPLE_COUNT)
    planets_per_synthetic_star: int = Field(2, ge=1, le=MAX_PLANETS_PER_STAR)
    period_filter: float = Field(40.0, gt=0, description="Positives keep planets with P below this, days.")
    valid_lightcurve_length_threshold: float = Field(
        0.5,
        gt=0,
        le=1,
        validation_alias=AliasChoices(
            "valid_lightcurve_length_threshold", "valid_lightcurve_lenght_threshold"
        ),
        description="Smallest fraction of a window's cadences that must hold valid flux.",
    )
    distribution_params: DistributionParams = DistributionParams()
    lightcurve_length: int = Field(4096, ge=64, le=MAX_LIGHTCURVE_LENGTH, description="Cadences per model window.")
    min_lightcurve_length: int = Field(
        1000, ge=1, description="Fewest valid cadences a light curve needs to be used."
    )
    cadence_minutes: float = Field(
        KEPLER_LONG_CADENCE_MINUTES, ge=CADENCE_MINUTES_RANGE[0], le=CADENCE_MINUTES_RANGE[1]
    )
    detrend_window_days: float = Field(
        1.75, gt=0, description="wotan biweight window; 3x the longest transit kept (13 h). With "
                                "adaptive_detrending, the longest window a star gets."
    )
    adaptive_detrending: bool = Field(
        True, description="Give each star a window that follows its variability time scale "
                          "(fast rotators a short one, quiet stars detrend_window_days)."
    )
    flux_column: Literal["pdcsap", "sap"] = "pdcsap"
    seed: int = Field(42, ge=0, description="numpy seeds are non-negative.")
    output_root: str = "data"
    positive: str = "positive"
    negative: str = "negative"
    synthetic: str = "synthetic"
    curves: str = Field("curves", description="Folder of whole light curves of any length (exoperiod.learning.curves).")
    synthetic_priors: SyntheticPriors = SyntheticPriors()

    @model_validator(mode="after")
    def _consistent(self) -> "Config":
        if self.min_lightcurve_length > self.lightcurve_length:
            raise ValueError(
                f"min_lightcurve_length ({self.min_lightcurve_length}) exceeds "
                f"lightcurve_length ({self.lightcurve_length})"
            )
        return self

    @property
    def window_days(self) -> float:
        """Time span of one model window, days."""
        return self.lightcurve_length * self.cadence_minutes / MINUTES_PER_DAY

    def grid(self):
        """The :class:`~exoperiod.grid.PeriodGrid` this configuration describes."""
        from .grid import PeriodGrid

        p = self.distribution_params.period
        return PeriodGrid(p.min, p.max, p.bins, p.spacing)

    def duration_grid(self):
        """The transit-duration grid (hours, in a :class:`~exoperiod.grid.PeriodGrid`)."""
        from .grid import PeriodGrid

        d = self.distribution_params.duration
        return PeriodGrid(d.min, d.max, d.bins, d.spacing)

    def dataset_dir(self, kind: Literal["positive", "negative", "synthetic"]) -> Path:
        return Path(self.output_root) / getattr(self, kind)


def _describe(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "config"
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    return f"{where}: {msg}"


def config_from_dict(data: dict, source: str = "config") -> Config:
    """Validate a dictionary of settings; raise :class:`ConfigError` naming the bad key."""
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"{source}: {_describe(err)}") from None


def load_config(path: str | Path | None = None) -> Config:
    """Load a JSON configuration file (the packaged default when ``path`` is None)."""
    path = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: a directory, not a config file") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read ({err.strerror})") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES >> 20} MiB, not a config file")
    try:
        data = json.loads(raw.decode("utf-8-sig"))  # -sig: editors that write a BOM
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text (byte {err.start})") from None
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}: not valid JSON ({err.msg}, line {err.lineno})") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid JSON (nested too deeply)") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a JSON object")
    return config_from_dict(data, str(path))
