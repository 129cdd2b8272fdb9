"""Refined transit durations (exoperiod.search.refine) against the Kepler KOI catalogue.

Every confirmed KOI planet with a period on the model's grid, in every real host light
curve of ../shared/data, is refined from the model bin holding its catalogue period, as
``predict`` refines a bin. Where the refinement finds the planet (period within 1 %) at
SNR > 15, its duration must match ``koi_duration`` (T14, first to last contact).
Measured (the shipped config's preprocessing): 9 such planets; the BLS box alone gave
0.72 - 0.98 of T14 (median 0.85, Kepler-62 d at 2.1 h for 2.94 h); the trapezoid fit gives
0.90 - 1.17 (median 1.10).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from exoperiod.config import load_config
from exoperiod.search.preprocess import PreprocessError, to_windows
from exoperiod.search.readers import read_lightcurve
from exoperiod.search.refine import (
    TransitSearch,
    refine_bin,
    trapezoid_flux,
    trapezoid_residuals,
)

MIN_SNR = 15.0
TOLERANCE = 0.20
#: Fewer matched planets than this means the data or the search changed, not the durations.
MIN_PLANETS = 8


def _koi_planets(shared_data):
    """(file, KOI name, catalogue period) of the confirmed KOI planets of the real hosts."""
    manifest = pd.read_csv(shared_data / "MANIFEST.csv")
    hosts = manifest[manifest.host_class.str.startswith("host_P<40", na=False)
                     & manifest.koi_entries.str.contains("|CONFIRMED|", regex=False, na=False)]
    for row in hosts.itertuples():
        for entry in row.koi_entries.split(";"):
            name, disposition, period = entry.split("|")
            if disposition == "CONFIRMED" and name.startswith("K0"):
                yield row.file, name.split("(")[0], float(period)


def test_refined_durations_match_the_koi_catalogue(shared_data):
    koi = pd.read_csv(shared_data / "tables/koi_cumulative.csv", comment="#").set_index("kepoi_name")
    config = load_config()
    grid = config.grid()
    searches: dict[str, tuple[TransitSearch, bool] | None] = {}
    measured = []
    for file, name, period_days in _koi_planets(shared_data):
        if not grid.min_days <= period_days <= grid.max_days:
            continue
        if file not in searches:
            lc = read_lightcurve(shared_data / file)
            try:
                searches[file] = (TransitSearch(to_windows(lc, config).detrended), bool(lc.meta.get("FLUX_STANDARDIZED")))
            except PreprocessError:  # a 10-day Q0 excerpt is shorter than one model window
                searches[file] = None
        if searches[file] is None:
            continue
        search, standardized = searches[file]
        b = grid.index(period_days)
        candidate = refine_bin(search, grid.edges_days[b], grid.edges_days[b + 1], 1.0, b, standardized=standardized)
        if candidate.snr > MIN_SNR and abs(candidate.period_days / period_days - 1) < 0.01:
            measured.append((name, candidate.duration_hours, float(koi.loc[name, "koi_duration"])))
    assert len(measured) >= MIN_PLANETS, measured
    off = [(name, round(ours / catalogue, 3)) for name, ours, catalogue in measured
           if abs(ours / catalogue - 1) > TOLERANCE]
    assert not off, f"refined / KOI duration beyond {TOLERANCE:.0%}: {off}"


def test_the_trapezoid_has_the_documented_shape():
    phase = np.array([-3.0, -2.0, -1.5, -1.0, 0.0, 1.0, 1.5, 2.0, 3.0])
    # T14 = 4, ingress = 0.5 * T14 / 2 = 1: flat bottom within |x| <= 1, linear to |x| = 2.
    flux = trapezoid_flux(phase, 0.0, 4.0, 0.5, 0.01, 1.0)
    np.testing.assert_allclose(flux, [1.0, 1.0, 0.995, 0.99, 0.99, 0.99, 0.995, 1.0, 1.0])
    shifted = trapezoid_flux(phase + 0.5, 0.5, 4.0, 0.5, 0.01, 1.0)
    np.testing.assert_allclose(shifted, flux)
    # An ingress fraction of 1 is a V: the bottom only at mid-transit.
    v = trapezoid_flux(np.array([0.0, 1.0]), 0.0, 4.0, 1.0, 0.01, 1.0)
    np.testing.assert_allclose(v, [0.99, 0.995])
    assert pytest.approx(float(trapezoid_flux(np.array([0.0]), 0.0, 4.0, 0.0, 0.01, 1.0)[0])) == 0.99


def test_the_fit_residuals_are_the_trapezoid_to_the_last_bit():
    # The fit runs on trapezoid_residuals (numba); it must be the numpy expression it
    # replaced to the last bit, or the fit would take other steps and move t0.
    rng = np.random.default_rng(0)
    for trial in range(200):
        x = rng.uniform(-0.3, 0.3, int(rng.integers(1, 300)))
        instants = x[:, None] + 0.02 * (np.arange(7) / 7 - 0.5 + 0.5 / 7)
        y = 1.0 + 1e-3 * rng.standard_normal(len(x))
        params = [rng.uniform(-0.05, 0.05), rng.uniform(0.01, 0.3), 0.0 if trial % 7 == 0 else rng.uniform(0, 1),
                  rng.uniform(0, 0.01), 1.0 + 1e-4 * rng.standard_normal()]
        np.testing.assert_array_equal(trapezoid_residuals(instants, y, *params),
                                      trapezoid_flux(instants, *params).mean(axis=1) - y)
