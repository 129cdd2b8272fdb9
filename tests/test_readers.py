"""exoperiod.search.readers on the real files of the shared data folder and on damaged copies."""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Callable
from pathlib import Path

import astropy.units as u
import lightkurve as lk
import numpy as np
import pytest
from astropy.io import fits
from astropy.time import Time
from lightkurve.utils import KeplerQualityFlags, TessQualityFlags
from make_fixtures import write_truncated

from exoperiod.paths import shared_data_dir
from exoperiod.search.readers import (
    SYNTHETIC_CADENCE_DAYS,
    LightCurveReadError,
    read_lightcurve,
)

KEPLER62_Q13 = "lightcurves/kepler/9002278/kplr009002278-2012179063303_llc.fits"
K2_LLC = "lightcurves/k2/211121743/ktwo211121743-c04_llc.fits"
K2SC_V2 = "lightcurves/k2/211099743/hlsp_k2sc_k2_llc_211099743-c04_kepler_v2_lc.fits"
JSON_Q17 = "lightcurves/kepler/1026032/kplr001026032-2013131215648_llc.json"
SEGMENT_KEY = {"Q": "QUARTER", "C": "CAMPAIGN", "S": "SECTOR"}


def _manifest_cases() -> list:
    """One case per manifest file and per npz beside it (the anomaly npz are their own file)."""
    root = shared_data_dir()
    if root is None:
        return []
    with open(root / "MANIFEST.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [
        pytest.param(rel, row, id=rel.removeprefix("lightcurves/"))
        for row in rows
        for rel in dict.fromkeys((row["file"], row["npz"]))
    ]


def _expected_flux_origin(rel: str, row: dict[str, str]) -> str:
    if rel.endswith((".npz", ".json")):
        return "flux"
    if rel.endswith(".csv"):
        # Boyajian's star: header "Time,n_flux"; the TLS test file has no header.
        return "flux" if "EPIC" in rel else "n_flux"
    if rel.endswith(".dat"):
        return "corrflux"  # DAVE: Dates Flux Corrflux Xpos Ypos
    if row["flux_type"] == "PDCSAP":
        return "pdcsap_flux"
    if "K2SFF" in row["flux_type"]:
        return "fcor"
    if "hlsp_k2sc" in rel:
        return "pdc:flux"
    return "flux"  # K2SC C13 files and lightkurve to_fits output


@pytest.mark.parametrize(("rel", "row"), _manifest_cases())
def test_every_manifest_file_loads(shared_data: Path, rel: str, row: dict[str, str]) -> None:
    # Every file in the folder is a valid light curve: none is expected to be rejected.
    lc = read_lightcurve(shared_data / rel, quality_bitmask="none")
    time_days = lc.time.value
    flux = lc.flux.value
    finite = np.isfinite(flux)
    mission = row["mission"]

    assert lc.meta["MISSION"] == mission
    assert lc.meta["TARGETID"] == int(row["target_id"].split()[1])
    assert lc.meta["LABEL"] == row["target_id"]
    assert lc.meta["FLUX_ORIGIN"] == _expected_flux_origin(rel, row)
    assert lc.meta["FILENAME"] == str(shared_data / rel)
    assert lc.meta["SYNTHETIC_TIME"] is False

    assert np.isfinite(time_days).all()
    # The manifest counts cadences with finite time and flux, before any quality mask.
    assert finite.sum() == int(row["n_points"])
    assert np.ptp(time_days[finite]) == pytest.approx(float(row["time_span_days"]), abs=2e-3)
    low, high = (1300.0, 4000.0) if mission == "TESS" else (100.0, 3300.0)  # BTJD / BKJD, not JD
    assert low < time_days.min() and time_days.max() < high

    standardized = "standardized" in row["flux_type"]
    assert lc.meta["FLUX_STANDARDIZED"] is standardized
    assert lc.flux.unit == u.dimensionless_unscaled
    if standardized:
        assert np.median(flux[finite]) == pytest.approx(1.0, abs=0.05)
        assert np.std(flux[finite]) == pytest.approx(1.0, abs=0.15)
    else:
        assert np.median(flux[finite]) == pytest.approx(1.0, abs=1e-9)
    err = lc.flux_err.value
    known = np.isfinite(err)
    assert (err[known] >= 0).all()
    if known.any():
        assert np.median(err[known]) < 1.0  # relative errors (golden-lc's faint target has ~0.5)
    assert lc["quality"].dtype == np.int32

    segment = row["quarter_or_sector"]
    found = {key: lc.meta[key] for key in SEGMENT_KEY.values() if key in lc.meta}
    if "stitched" in segment or rel.endswith((".json", ".csv")):
        # Stitched files span many quarters; JSON and CSV exports do not say their segment.
        assert found == {}
    else:
        assert found == {SEGMENT_KEY[segment[0]]: int(segment[1:])}

    # The default bitmask removes flagged cadences and keeps the median at 1.
    masked = read_lightcurve(shared_data / rel)
    flags = TessQualityFlags if mission == "TESS" else KeplerQualityFlags
    assert flags.create_quality_mask(masked["quality"].value, bitmask="default").all()
    assert len(masked) <= len(lc)
    if not standardized:
        assert np.nanmedian(masked.flux.value) == pytest.approx(1.0, abs=1e-9)


def test_kepler62_q13_pdcsap_and_sap(shared_data: Path) -> None:
    path = shared_data / KEPLER62_Q13
    pdcsap = read_lightcurve(path)
    sap = read_lightcurve(path, flux_column="sap")

    assert np.isfinite(pdcsap.flux.value).sum() == pytest.approx(4241, rel=0.03)
    assert np.ptp(pdcsap.time.value) == pytest.approx(90.3, abs=0.5)
    assert pdcsap.time.format == "bkjd"
    assert pdcsap.time.value[0] == pytest.approx(1182.758, abs=1e-3)
    assert {key: pdcsap.meta[key] for key in ("MISSION", "TARGETID", "LABEL", "QUARTER")} == {
        "MISSION": "Kepler", "TARGETID": 9002278, "LABEL": "KIC 9002278", "QUARTER": 13,
    }
    assert pdcsap.meta["FLUX_ORIGIN"] == "pdcsap_flux"
    assert sap.meta["FLUX_ORIGIN"] == "sap_flux"
    np.testing.assert_array_equal(pdcsap.time.value, sap.time.value)
    both = np.isfinite(pdcsap.flux.value) & np.isfinite(sap.flux.value)
    # SAP keeps the systematics PDC removes: percent-level drifts against PDCSAP.
    assert np.max(np.abs(pdcsap.flux.value[both] - sap.flux.value[both])) > 0.01

    # Same numbers as the raw table: default quality mask, PDCSAP divided by its median.
    with fits.open(path) as hdul:
        table = hdul["LIGHTCURVE"].data
        keep = np.isfinite(table["TIME"]) & KeplerQualityFlags.create_quality_mask(
            table["SAP_QUALITY"], bitmask="default"
        )
        raw_flux = table["PDCSAP_FLUX"][keep].astype(float)
        raw_err = table["PDCSAP_FLUX_ERR"][keep].astype(float)
        raw_time = table["TIME"][keep]
    median = np.nanmedian(raw_flux)
    np.testing.assert_allclose(pdcsap.time.value, raw_time, rtol=0, atol=1e-9)
    np.testing.assert_allclose(pdcsap.flux.value, raw_flux / median, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(pdcsap.flux_err.value, raw_err / median, rtol=1e-12, equal_nan=True)


def test_kepler_cut_reads_like_its_raw_table(kepler_cut: Path) -> None:
    lc = read_lightcurve(kepler_cut)
    assert lc.time.format == "bkjd" and lc.meta["FLUX_ORIGIN"] == "pdcsap_flux"
    assert {key: lc.meta[key] for key in ("MISSION", "TARGETID", "LABEL", "QUARTER")} == {
        "MISSION": "Kepler", "TARGETID": 12345678, "LABEL": "KIC 12345678", "QUARTER": 13,
    }
    with fits.open(kepler_cut) as hdul:
        table = hdul["LIGHTCURVE"].data
        keep = np.isfinite(table["TIME"]) & KeplerQualityFlags.create_quality_mask(
            table["SAP_QUALITY"], bitmask="default"
        )
        raw_flux, raw_time = table["PDCSAP_FLUX"][keep].astype(float), table["TIME"][keep]
    np.testing.assert_allclose(lc.time.value, raw_time, rtol=0, atol=1e-9)
    np.testing.assert_allclose(lc.flux.value, raw_flux / np.nanmedian(raw_flux), rtol=1e-12, equal_nan=True)


def test_gzipped_fits_reads_like_the_original(kepler_cut: Path, tmp_path: Path) -> None:
    path = tmp_path / "kplr012345678-2012179063303_llc.fits.gz"
    path.write_bytes(gzip.compress(kepler_cut.read_bytes()))
    packed, plain = read_lightcurve(path), read_lightcurve(kepler_cut)
    np.testing.assert_array_equal(packed.flux.value, plain.flux.value)
    assert (packed.meta["LABEL"], packed.meta["QUARTER"]) == ("KIC 12345678", 13)


def test_k2_file_without_mission_keyword_is_k2(shared_data: Path, tmp_path: Path) -> None:
    # Older SPOC files have no MISSION keyword (Kepler-62's Q13 file is one), and K2
    # files say TELESCOP='Kepler': the campaign and the EPIC number tell K2 apart.
    path = tmp_path / "no_mission.fits"
    with fits.open(shared_data / K2_LLC) as hdul:
        del hdul[0].header["MISSION"]
        hdul.writeto(path)
    lc = read_lightcurve(path)
    assert (lc.meta["MISSION"], lc.meta["LABEL"], lc.meta["CAMPAIGN"]) == ("K2", "EPIC 211121743", 4)


def test_k2sc_v2_flux_column_picks_the_extension(shared_data: Path) -> None:
    pdc = read_lightcurve(shared_data / K2SC_V2, quality_bitmask="none")
    sap = read_lightcurve(shared_data / K2SC_V2, flux_column="sap", quality_bitmask="none")
    assert (pdc.meta["FLUX_ORIGIN"], sap.meta["FLUX_ORIGIN"]) == ("pdc:flux", "sap:flux")
    assert (np.isfinite(pdc.flux.value).sum(), np.isfinite(sap.flux.value).sum()) == (3279, 3423)


def test_to_fits_round_trip(kepler_cut: Path, tmp_path: Path) -> None:
    original = read_lightcurve(kepler_cut)
    path = tmp_path / "roundtrip.fits"
    original.to_fits(
        path=str(path), overwrite=True,
        OBJECT=original.meta["LABEL"], KEPLERID=original.meta["TARGETID"], QUARTER=13,
        QUALITY=original["quality"].value,
    )
    back = read_lightcurve(path)
    np.testing.assert_allclose(back.time.value, original.time.value, rtol=0, atol=1e-9)
    # to_fits stores flux as float32
    np.testing.assert_allclose(back.flux.value, original.flux.value, rtol=1e-6, equal_nan=True)
    np.testing.assert_allclose(back.flux_err.value, original.flux_err.value, rtol=1e-6, equal_nan=True)
    np.testing.assert_array_equal(back["quality"].value, original["quality"].value)
    assert {key: back.meta[key] for key in ("MISSION", "TARGETID", "LABEL", "QUARTER", "FLUX_ORIGIN")} == {
        "MISSION": "Kepler", "TARGETID": 12345678, "LABEL": "KIC 12345678", "QUARTER": 13,
        "FLUX_ORIGIN": "flux",
    }


def test_to_fits_round_trip_of_a_bare_tess_light_curve(tmp_path: Path) -> None:
    # No TELESCOP, no target: only the BTJD time unit says which mission this is.
    rng = np.random.default_rng(1)
    flux = 250.0 * (1 + 1e-3 * rng.standard_normal(300))
    bare = lk.LightCurve(time=Time(1325.3 + np.arange(300) / 720, format="btjd", scale="tdb"), flux=flux)
    path = tmp_path / "bare.fits"
    bare.to_fits(path=str(path), overwrite=True)
    back = read_lightcurve(path)
    np.testing.assert_allclose(back.time.value, bare.time.value, rtol=0, atol=1e-9)
    np.testing.assert_allclose(back.flux.value, flux / np.median(flux), rtol=1e-6)
    assert (back.meta["MISSION"], back.meta["TARGETID"], back.meta["LABEL"]) == ("TESS", None, "bare")


def test_flux_only_npz_gets_synthetic_time(shared_data: Path, tmp_path: Path) -> None:
    flux = np.load(shared_data / KEPLER62_Q13.replace(".fits", ".npz"))["flux"]
    bare = tmp_path / "kplr009002278_sample.npz"
    np.savez(bare, flux)  # positional: stored as arr_0, like the seed's sample files
    described = tmp_path / "sample_with_keys.npz"
    np.savez(described, arr_0=flux, KEPLERID="9002278", MISSION="Kepler")
    for path in (bare, described):
        lc = read_lightcurve(path, quality_bitmask="none")
        assert lc.meta["SYNTHETIC_TIME"] is True
        assert lc.meta["FLUX_ORIGIN"] == "arr_0"
        assert (lc.meta["MISSION"], lc.meta["TARGETID"]) == ("Kepler", 9002278)
        assert len(lc) == flux.size
        np.testing.assert_allclose(np.diff(lc.time.value), SYNTHETIC_CADENCE_DAYS, rtol=1e-9)
        assert lc.time.value[0] == 0.0


def test_csv_headers_are_case_insensitive_and_full_bjd_becomes_bkjd(kepler_cut: Path, tmp_path: Path) -> None:
    reference = read_lightcurve(kepler_cut, quality_bitmask="none")
    path = tmp_path / "kplr012345678_q13.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["TIME", "Flux", "FLUX_ERR"])
        for t, f, e in zip(reference.time.value + 2454833.0, reference.flux.value, reference.flux_err.value):
            writer.writerow([repr(float(t)), repr(float(f)), repr(float(e))])
    lc = read_lightcurve(path, quality_bitmask="none")
    np.testing.assert_allclose(lc.time.value, reference.time.value, rtol=0, atol=1e-6)
    np.testing.assert_allclose(lc.flux.value, reference.flux.value, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(lc.flux_err.value, reference.flux_err.value, rtol=1e-12, equal_nan=True)
    assert (lc.meta["MISSION"], lc.meta["LABEL"], lc.meta["FLUX_ORIGIN"]) == ("Kepler", "KIC 12345678", "flux")


@pytest.mark.parametrize(
    ("name", "mission", "target_id", "segment"),
    [
        ("kplr009002278-2012179063303_llc.csv", "Kepler", 9002278, {}),
        ("ktwo211121743-c04_llc.csv", "K2", 211121743, {"CAMPAIGN": 4}),
        ("hlsp_k2sff_k2_lightcurve_247589423-c13_kepler_v1_llc.csv", "K2", 247589423, {"CAMPAIGN": 13}),
        ("EPIC_247589423_mast.csv", "K2", 247589423, {}),
        ("tess2018206045859-s0001-0000000358108509-0120-s_lc.csv", "TESS", 358108509, {"SECTOR": 1}),
        ("hlsp_tess-spoc_tess_phot_0000000358108509-s0001_tess_v1_lc.csv", "TESS", 358108509, {"SECTOR": 1}),
        ("TIC_100100827.csv", "TESS", 100100827, {}),
        ("statistic_300.csv", None, None, {}),  # "tic" inside a word is not a TIC number
    ],
)
def test_target_from_file_name(
    tmp_path: Path, name: str, mission: str | None, target_id: int | None, segment: dict[str, int]
) -> None:
    path = tmp_path / name
    path.write_text("time,flux\n1500.0,10.0\n1500.02,10.1\n1500.04,9.9\n")
    lc = read_lightcurve(path)
    assert (lc.meta["MISSION"], lc.meta["TARGETID"]) == (mission, target_id)
    assert {key: lc.meta[key] for key in SEGMENT_KEY.values() if key in lc.meta} == segment
    np.testing.assert_allclose(lc.time.value, [1500.0, 1500.02, 1500.04])
    np.testing.assert_allclose(lc.flux.value, [1.0, 1.01, 0.99])


def test_json_lines_with_one_cadence_per_line(shared_data: Path, tmp_path: Path) -> None:
    reference = read_lightcurve(shared_data / JSON_Q17, quality_bitmask="none")
    path = tmp_path / "EPIC_247589423_rows.jsonl"
    lines = [
        json.dumps({"time": float(t), "flux": float(f)})
        for t, f in zip(reference.time.value, reference.flux.value)
    ]
    path.write_text("\n".join(lines) + "\n")
    lc = read_lightcurve(path, quality_bitmask="none")
    np.testing.assert_allclose(lc.flux.value, reference.flux.value, rtol=1e-12, equal_nan=True)
    assert (lc.meta["MISSION"], lc.meta["TARGETID"]) == ("K2", 247589423)


def test_json_keeps_the_source_label_apart(shared_data: Path) -> None:
    lc = read_lightcurve(shared_data / JSON_Q17)
    assert lc.meta["SOURCE_LABEL"] == "eb"
    assert lc.meta["LABEL"] == "KIC 1026032"


def test_invalid_arguments_are_caller_errors(kepler_cut: Path) -> None:
    with pytest.raises(ValueError, match="flux_column") as info:
        read_lightcurve(kepler_cut, flux_column="kspsap")  # type: ignore[arg-type]
    assert not isinstance(info.value, LightCurveReadError)
    with pytest.raises(ValueError, match="quality_bitmask"):
        read_lightcurve(kepler_cut, quality_bitmask="strict")


# ------------------------------------------------------------------ bad files


def _truncated_fits(path: Path, data: Path) -> None:
    write_truncated(data, path)


def _truncated_gzip_fits(path: Path, data: Path) -> None:
    packed = gzip.compress(data.read_bytes())
    path.write_bytes(packed[: len(packed) // 2])


def _random_bytes(path: Path, data: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(20_000))


def _image_fits(path: Path, data: Path) -> None:
    fits.PrimaryHDU(np.zeros((4, 4))).writeto(path)


def _csv_without_time(path: Path, data: Path) -> None:
    path.write_text("flux,flux_err\n1.0,0.1\n1.1,0.1\n")


def _csv_all_nan_flux(path: Path, data: Path) -> None:
    path.write_text("time,flux\n1.0,nan\n2.0,\n3.0,NaN\n")


def _empty(path: Path, data: Path) -> None:
    path.write_bytes(b"")


def _npz_without_flux(path: Path, data: Path) -> None:
    np.savez(path, time=np.arange(10.0), quality=np.zeros(10, int))


def _npz_with_pickle(path: Path, data: Path) -> None:
    np.savez(path, time=np.arange(2.0), flux=np.array([{"a": 1}, None], dtype=object))


def _npz_truncated(path: Path, data: Path) -> None:
    lc = read_lightcurve(data)
    np.savez(path, time=lc.time.value, flux=lc.flux.value)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


def _json_cut_mid_line(path: Path, data: Path) -> None:
    lc = read_lightcurve(data)
    text = json.dumps({"time": lc.time.value.tolist(), "flux": lc.flux.value.tolist()})
    path.write_text(text[: len(text) // 2])


def _nothing(path: Path, data: Path) -> None:
    """Leave the file missing."""


BAD_FILES = [
    pytest.param(
        "kplr009002278-half.fits", _truncated_fits, "truncated or corrupt FITS file", id="fits-truncated"
    ),
    pytest.param(
        "half.fits.gz", _truncated_gzip_fits, "truncated or corrupt gzip file", id="fits-gz-truncated"
    ),
    pytest.param("random.fits", _random_bytes, "not a FITS file", id="fits-random-bytes"),
    pytest.param("image.fits", _image_fits, "not a FITS light curve (no LIGHTCURVE table)", id="fits-image"),
    pytest.param("no_time.csv", _csv_without_time, "no time column (need 'time'", id="csv-no-time"),
    pytest.param("nan_flux.csv", _csv_all_nan_flux, "no finite flux values", id="csv-all-nan"),
    pytest.param("empty.fits", _empty, "empty file", id="empty"),
    pytest.param("no_flux.npz", _npz_without_flux, "no flux array", id="npz-no-flux"),
    pytest.param("pickled.npz", _npz_with_pickle, "refusing to unpickle", id="npz-pickle"),
    pytest.param("half.npz", _npz_truncated, "truncated or corrupt npz file", id="npz-truncated"),
    pytest.param("random.npz", _random_bytes, "not an npz archive", id="npz-random-bytes"),
    pytest.param("cut.json", _json_cut_mid_line, "invalid JSON at line 1", id="json-cut"),
    pytest.param(
        "light_curve.txt", _csv_without_time, "unknown file extension '.txt'", id="unknown-extension"
    ),
    pytest.param("missing.fits", _nothing, "file not found", id="missing"),
]


@pytest.mark.parametrize(("name", "write", "problem"), BAD_FILES)
def test_bad_file_raises_one_line_error(
    kepler_cut: Path, tmp_path: Path, name: str, write: Callable[[Path, Path], None], problem: str
) -> None:
    path = tmp_path / name
    write(path, kepler_cut)  # the writers that need a good file start from this one
    with pytest.raises(LightCurveReadError) as info:
        read_lightcurve(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert problem in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_headerless_csv_and_whitespace_dat_tables(tmp_path):
    # Made here so the ASCII readers are tested without ../shared/data.
    time = 2144.0 + np.arange(50) * SYNTHETIC_CADENCE_DAYS
    flux = 1.0 + 1e-3 * np.sin(time)
    headerless = tmp_path / "EPIC206154641.csv"
    np.savetxt(headerless, np.column_stack([time, flux]), delimiter=",")
    lc = read_lightcurve(headerless)
    assert lc.meta["FLUX_ORIGIN"] == "flux" and lc.meta["TARGETID"] == 206154641
    np.testing.assert_allclose(lc.time.value, time)
    np.testing.assert_allclose(lc.flux.value, flux / np.median(flux))

    dat = tmp_path / "ktwo210497173-c04_detrended.dat"
    rows = np.column_stack([time, 4.5e4 * flux, flux, np.zeros_like(time), np.ones_like(time)])
    np.savetxt(dat, rows, header="Dates Flux Corrflux Xpos Ypos", comments="")
    assert read_lightcurve(dat).meta["FLUX_ORIGIN"] == "corrflux"
    assert read_lightcurve(dat, flux_column="sap").meta["FLUX_ORIGIN"] == "flux"
    assert read_lightcurve(dat).meta["CAMPAIGN"] == 4

    four = tmp_path / "four.csv"
    np.savetxt(four, rows[:, :4], delimiter=",")
    with pytest.raises(LightCurveReadError, match="without a header has 4 columns"):
        read_lightcurve(four)
