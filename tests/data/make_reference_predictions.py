"""Record the shipped model's predictions on a fixed set of real files (one per format).

``test_reference_predictions.py`` checks that a refactor leaves them unchanged: run this
script only when a change of behaviour is intended (a retrained model, a new search),
and say so in the commit.

    python tests/data/make_reference_predictions.py
"""

from __future__ import annotations

import json
from pathlib import Path

from exoperiod import PeriodModel, predict
from exoperiod.paths import shared_data_dir

#: One file per mission and format (FITS, JSON, NPZ, CSV, K2 .dat), hosts and non-hosts.
FILES = (
    "lightcurves/kepler/9002278/kplr009002278-2012179063303_llc.fits",
    "lightcurves/kepler/10874614/kplr010874614-2009131105131_llc.fits",
    "lightcurves/kepler/757450/kplr000757450-2013131215648_llc.json",
    "lightcurves/kepler/3102384/kplr003102384_Q1-Q17_anomaly_standardized.npz",
    "lightcurves/k2/206154641/EPIC206154641.csv",
    "lightcurves/k2/210640966/ktwo210640966-c04_detrended.dat",
    "lightcurves/k2/221312395/hlsp_k2sff_k2_lightcurve_221312395-c91_kepler_v1_llc.fits",
    "lightcurves/tess/352011875/352011875.fits",
    "lightcurves/tess/100100827/wasp18b.fits",
)
OUT = Path(__file__).with_name("reference_predictions.json")


def record() -> dict[str, list[dict[str, float]]]:
    """The candidates' periods, probabilities and scorer probabilities of each file, as
    predicted now (NaN where a candidate outside the grid has none)."""
    root = shared_data_dir()
    if root is None:
        raise SystemExit("the real data folder is needed: set EXOPERIOD_SHARED_DATA")
    model = PeriodModel.load()
    return {name: [{"period_days": c.period_days, "probability": c.probability,
                    "scorer_probability": float("nan") if c.scorer_probability is None else c.scorer_probability}
                   for c in predict(root / name, model).candidates]
            for name in FILES}


if __name__ == "__main__":
    OUT.write_text(json.dumps(record(), indent=1) + "\n")
    print(f"wrote {OUT}")
