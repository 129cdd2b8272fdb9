"""Every input kind of predict() and predict_proba() (exoperiod.search.inputs), on real Kepler data."""

from __future__ import annotations

from pathlib import Path

import lightkurve as lk
import numpy as np
import pytest
from astropy.table import Table
from astropy.time import Time
from astropy.timeseries import TimeSeries

from exoperiod import (
    InputError,
    LightCurveReadError,
    as_lightcurve,
    predict,
    read_lightcurve,
)
from exoperiod.search.inputs import TableColumns

KEPLER62_Q13 = "lightcurves/kepler/9002278/kplr009002278-2012179063303_llc.fits"
BKJD_OFFSET = 2454833.0


@pytest.fixture(scope="module")
def fits_path(shared_data: Path) -> Path:
    return shared_data / KEPLER62_Q13


@pytest.fixture(scope="module")
def reference(fits_path: Path) -> lk.LightCurve:
    return read_lightcurve(fits_path)


@pytest.fixture(scope="module")
def lightkurve_lc(fits_path: Path) -> lk.KeplerLightCurve:
    # What an astronomer has after lightkurve's own reader: PDCSAP flux in e-/s, BKJD.
    return lk.read(fits_path)


KINDS = {
    "path": lambda p, lc: p,
    "str": lambda p, lc: str(p),
    "lightkurve LightCurve": lambda p, lc: lc,
    "LightCurveCollection": lambda p, lc: lk.LightCurveCollection([lc[:2000], lc[2000:]]),
    "astropy TimeSeries": lambda p, lc: TimeSeries(time=lc.time, data={"flux": lc.flux.value,
                                                                       "flux_err": lc.flux_err.value}),
    "astropy Table": lambda p, lc: Table({"time": lc.time.value, "flux": lc.flux.value}),
    "pandas DataFrame": lambda p, lc: lc.to_pandas()[["flux", "flux_err"]],
    "(time, flux)": lambda p, lc: (lc.time.value, lc.flux.value),
    "(time, flux, flux_err)": lambda p, lc: (lc.time.value, lc.flux.value, lc.flux_err.value),
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_input_kind_gives_the_files_light_curve(kind, fits_path, reference, lightkurve_lc) -> None:
    lc = as_lightcurve(KINDS[kind](fits_path, lightkurve_lc))
    np.testing.assert_allclose(lc.time.value, reference.time.value, rtol=0, atol=1e-6)
    # The collection's halves are divided by their own medians: within 0.1 % of one median.
    np.testing.assert_allclose(lc.flux.value, reference.flux.value, rtol=2e-3 if "Collection" in kind else 1e-9)


@pytest.mark.parametrize("kind", ["lightkurve LightCurve", "LightCurveCollection", "pandas DataFrame", "(time, flux)"])
def test_predict_proba_takes_every_kind(kind, fits_path, reference, lightkurve_lc, shipped_model) -> None:
    expected = shipped_model.predict_proba(reference)
    got = shipped_model.predict_proba(KINDS[kind](fits_path, lightkurve_lc))
    assert got.shape == expected.shape
    assert np.argmax(got) == np.argmax(expected)
    # A collection's halves are normalised by their own medians: a 0.1 % step mid-quarter
    # that the detrending follows, so low bins move by up to ~0.02 (not a path bug).
    np.testing.assert_allclose(got, expected, atol=0.03 if "Collection" in kind else 0.01)


def test_predict_names_a_dataframe_input_and_finds_kepler62s_planet(lightkurve_lc, shipped_model) -> None:
    result = predict(lightkurve_lc.to_pandas()[["flux"]], model=shipped_model, top_k=1, max_planets=1)
    assert result.error is None and result.input == "<DataFrame>"
    # Kepler-62 b (18.16 d) is the strong planet of this quarter.
    assert result.periods[0] == pytest.approx(18.164, rel=0.01)


@pytest.mark.parametrize("system, offset", [("bjd", BKJD_OFFSET), ("jd", BKJD_OFFSET), ("bkjd", 0.0)])
def test_ecsv_with_a_stated_time_system_is_converted_and_said(tmp_path, reference, system, offset) -> None:
    path = tmp_path / "kepler62.ecsv"
    Table({"BJD_TDB": reference.time.value + offset, "Rel_Flux": reference.flux.value},
          meta={"MISSION": "Kepler", "OBJECT": "KIC 9002278"}).write(path)
    lc = as_lightcurve(path, columns=TableColumns(time="bjd_tdb", flux="rel_flux", time_system=system))
    np.testing.assert_allclose(lc.time.value, reference.time.value, atol=1e-6)
    assert lc.time.format == "bkjd" and lc.meta["LABEL"] == "KIC 9002278"
    notes = lc.meta["INPUT_NOTES"]
    if offset:
        assert notes and notes[0].startswith(f"time given as {system.upper()}: converted to BKJD")
        assert ("barycentric" in notes[0]) == (system == "jd")
    else:
        assert notes == []


def test_tsv_and_csv_with_mapped_columns(tmp_path, reference, lightkurve_lc) -> None:
    frame = lightkurve_lc.to_pandas().reset_index()[["time", "sap_flux", "pdcsap_flux", "pdcsap_flux_err"]]
    frame = frame.rename(columns={"time": "mjd_like", "pdcsap_flux_err": "e_flux"})
    tsv, csv = tmp_path / "k62.tsv", tmp_path / "k62.csv"
    frame.to_csv(tsv, sep="\t", index=False)
    frame.to_csv(csv, index=False)
    mapping = TableColumns(time="MJD_LIKE", flux="pdcsap_flux", flux_err="e_flux")
    for path in (tsv, csv):
        lc = as_lightcurve(path, columns=mapping)
        # The FITS columns are float32, written to text with float32 precision.
        np.testing.assert_allclose(lc.flux.value, reference.flux.value, rtol=1e-6)
        np.testing.assert_allclose(lc.flux_err.value, reference.flux_err.value, rtol=1e-6)
    sap = as_lightcurve(csv, columns=TableColumns(time="mjd_like", flux="sap_flux"))
    assert sap.meta["FLUX_ORIGIN"] == "flux" and np.all(np.isnan(sap.flux_err.value))
    assert not np.allclose(sap.flux.value, reference.flux.value)


def test_a_time_column_of_astropy_time_carries_its_system(reference) -> None:
    bjd = Time(reference.time.value + BKJD_OFFSET, format="jd", scale="tdb")
    lc = as_lightcurve(TimeSeries(time=bjd, data={"flux": reference.flux.value}, meta={"MISSION": "Kepler"}))
    np.testing.assert_allclose(lc.time.value, reference.time.value, atol=1e-6)
    assert lc.meta["INPUT_NOTES"] == ["time given as BJD: converted to BKJD (BJD - 2454833)"]


def test_without_a_mission_the_date_chooses_btjd_or_bkjd(reference) -> None:
    kepler = as_lightcurve((reference.time.value + BKJD_OFFSET, reference.flux.value),
                           columns=TableColumns(time_system="bjd"))
    assert "converted to BKJD" in kepler.meta["INPUT_NOTES"][0]
    tess = as_lightcurve((reference.time.value + 2459000.0, reference.flux.value),
                         columns=TableColumns(time_system="bjd"))
    assert "converted to BTJD" in tess.meta["INPUT_NOTES"][0]
    np.testing.assert_allclose(tess.time.value, reference.time.value + 2000.0)


@pytest.mark.parametrize("bad, message", [
    (42, "<int>: not a light curve"),
    (np.zeros(5), "<ndarray>: not a light curve"),
    (lk.LightCurveCollection([]), "<LightCurveCollection>: empty collection"),
])
def test_other_objects_are_refused_in_one_line(bad, message) -> None:
    with pytest.raises(InputError, match=message) as caught:
        as_lightcurve(bad)
    assert "\n" not in str(caught.value)


def test_a_missing_column_and_a_bad_table_name_the_file(tmp_path, reference) -> None:
    path = tmp_path / "lc.ecsv"
    Table({"time": reference.time.value, "flux": reference.flux.value}).write(path)
    with pytest.raises(InputError, match=r"lc.ecsv: no column 'rel_flux' \(found \['flux', 'time'\]\)"):
        as_lightcurve(path, columns=TableColumns(flux="rel_flux"))
    broken = tmp_path / "broken.ecsv"
    broken.write_text("# %ECSV 1.0\n# ---\n# datatype: [oops\n")
    with pytest.raises(LightCurveReadError, match="broken.ecsv: not a readable ECSV table"):
        as_lightcurve(broken)
    with pytest.raises(InputError, match="apply to .csv, .tsv and .ecsv"):
        as_lightcurve(tmp_path / "x.fits", columns=TableColumns(time_system="bjd"))
    with pytest.raises(InputError, match="time system must be one of"):
        TableColumns(time_system="mjd")  # type: ignore[arg-type]


def test_folders_and_globs_include_astropy_tables(tmp_path, reference) -> None:
    from exoperiod.search.predict import expand_paths

    for name in ("a.ecsv", "b.tsv", "c.csv", "notes.txt"):
        (tmp_path / name).write_text("time\tflux\n1\t1\n")
    assert [Path(p).name for p in expand_paths([tmp_path])] == ["a.ecsv", "b.tsv", "c.csv"]
