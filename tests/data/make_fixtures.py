"""Tiny Kepler long-cadence files for the tests, generated (nothing copied from ../shared/data).

:func:`write_kepler_llc` writes 1,000 cadences (20.4 d) of a simulated star
(:mod:`exoperiod.learning.simulate`: rotation, granulation, white noise, Kepler's gaps and
quality flags) in the layout of a MAST ``kplr*_llc.fits`` file: a primary header with
``TELESCOP``/``KEPLERID``/``QUARTER``, a ``LIGHTCURVE`` table with ``TIME``, ``SAP_FLUX``,
``PDCSAP_FLUX`` (and errors), ``SAP_QUALITY`` and ``CADENCENO``, and an ``APERTURE``
image. :func:`write_truncated` cuts such a file at 60 % of its bytes, as a killed
download leaves it. ``tests/conftest.py`` makes both once per test session, so that
reader, preprocess and fold tests run without ../shared/data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits

from exoperiod.learning.simulate import sample_star, simulate_lightcurve

#: A KIC number no real target uses in these tests (the simulated star's label).
KEPLER_ID = 12345678
QUARTER = 13
CADENCES = 1000
#: Kepler long cadence in days, and the flux level of a Kp ~ 13.7 star (e-/s).
CADENCE_DAYS = 29.4244 / 1440.0
FLUX_E_PER_S = 5.0e4


def write_kepler_llc(path: Path, seed: int = 8) -> Path:
    """Write a simulated 1,000-cadence Kepler long-cadence FITS file to ``path``."""
    rng = np.random.default_rng(seed)
    sim = sample_star(rng, f"KIC {KEPLER_ID}")
    lc = simulate_lightcurve(sim, rng, duration_days=CADENCES * CADENCE_DAYS)[:CADENCES]
    relative = np.asarray(lc.flux.value, dtype=float)
    error = np.asarray(lc.flux_err.value, dtype=float)
    # SAP keeps a slow instrumental drift that PDC removes, as in real files.
    drift = 1.0 + 0.02 * np.linspace(-1.0, 1.0, len(relative)) ** 2
    columns = [
        fits.Column("TIME", "D", unit="BJD - 2454833", array=np.asarray(lc.time.value, dtype=float)),
        fits.Column("TIMECORR", "E", array=np.zeros(len(relative))),
        fits.Column("CADENCENO", "J", array=np.arange(len(relative)) + 50_000),
        fits.Column("SAP_FLUX", "E", unit="e-/s", array=FLUX_E_PER_S * relative * drift),
        fits.Column("SAP_FLUX_ERR", "E", unit="e-/s", array=FLUX_E_PER_S * error),
        fits.Column("PDCSAP_FLUX", "E", unit="e-/s", array=FLUX_E_PER_S * relative),
        fits.Column("PDCSAP_FLUX_ERR", "E", unit="e-/s", array=FLUX_E_PER_S * error),
        fits.Column("SAP_QUALITY", "J", array=np.asarray(lc["quality"].value, dtype=np.int32)),
    ]
    primary = fits.PrimaryHDU()
    primary.header.update({"TELESCOP": "Kepler", "INSTRUME": "Kepler Photometer", "OBJECT": f"KIC {KEPLER_ID}",
                           "KEPLERID": KEPLER_ID, "QUARTER": QUARTER, "OBSMODE": "long cadence"})
    table = fits.BinTableHDU.from_columns(columns, name="LIGHTCURVE")
    table.header.update({"TELESCOP": "Kepler", "OBJECT": f"KIC {KEPLER_ID}", "KEPLERID": KEPLER_ID,
                         "TIMEREF": "SOLARSYSTEM", "TIMESYS": "TDB", "BJDREFI": 2454833, "BJDREFF": 0.0,
                         "TIMEUNIT": "d", "EXPOSURE": CADENCES * CADENCE_DAYS})
    aperture = fits.ImageHDU(np.full((4, 6), 3, dtype=np.int32), name="APERTURE")
    fits.HDUList([primary, table, aperture]).writeto(path, overwrite=True, checksum=True)
    return path


def write_truncated(source: Path, path: Path) -> Path:
    """``source`` cut at 60 % of its bytes."""
    data = source.read_bytes()
    path.write_bytes(data[: int(0.6 * len(data))])
    return path
