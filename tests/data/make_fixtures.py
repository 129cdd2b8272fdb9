"""Make the tiny committed test files from one real Kepler light curve.

``kepler62_q13_cut.fits`` is the first 1,000 cadences (20.4 d) of Kepler-62's Quarter 13
long-cadence file, headers and all columns as MAST serves them, so that reader,
preprocess and fold tests run without ../shared/data (as lightkurve commits tiny cuts of
real files). ``kepler62_q13_truncated.fits`` is its corrupted twin: the first 60 % of the
bytes, as a killed download leaves a file.

    EXOPERIOD_SHARED_DATA=../shared/data python tests/data/make_fixtures.py
"""

from __future__ import annotations

from pathlib import Path

from astropy.io import fits

from exoperiod.paths import shared_data_dir

SOURCE = "lightcurves/kepler/9002278/kplr009002278-2012179063303_llc.fits"
HERE = Path(__file__).parent
CUT = HERE / "kepler62_q13_cut.fits"
TRUNCATED = HERE / "kepler62_q13_truncated.fits"
CADENCES = 1000


def main() -> None:
    root = shared_data_dir()
    if root is None:
        raise SystemExit("the real data folder is needed: set EXOPERIOD_SHARED_DATA")
    with fits.open(root / SOURCE) as hdus:
        table = hdus[1]
        cut = fits.BinTableHDU(table.data[:CADENCES], header=table.header)
        fits.HDUList([hdus[0].copy(), cut, *[h.copy() for h in hdus[2:]]]).writeto(CUT, overwrite=True, checksum=True)
    data = CUT.read_bytes()
    TRUNCATED.write_bytes(data[: int(0.6 * len(data))])
    print(f"wrote {CUT} ({len(data) // 1024} KiB) and {TRUNCATED}")


if __name__ == "__main__":
    main()
