"""Catalogues: the real KOI table, star lists, and clear errors for bad files."""

from __future__ import annotations

import math

import pytest

from exoperiod.config import config_from_dict
from exoperiod.learning.catalog import (
    CatalogError,
    CatalogStar,
    confirmed_hosts,
    false_positive_stars,
    load_koi_table,
    negative_stars,
    read_koi_table,
    read_star_catalog,
)


@pytest.fixture(scope="module")
def koi(shared_data):
    return read_koi_table(shared_data / "tables" / "koi_cumulative.csv")


def test_real_koi_table_reads_with_its_comment_lines(koi):
    assert len(koi) == 9564
    assert (koi["koi_disposition"] == "CONFIRMED").sum() == 2746


def test_confirmed_hosts_group_every_planet_below_the_filter(koi):
    hosts = {s.target_id: s for s in confirmed_hosts(koi, period_filter=40.0)}
    assert sum(len(s.planets) for s in hosts.values()) == 2281  # the README's count of P < 40 d
    kepler62 = hosts[9002278]
    assert [p.name for p in kepler62.planets] == ["Kepler-62 b", "Kepler-62 c", "Kepler-62 d"]
    b = kepler62.planets[0]
    assert b.period_days == pytest.approx(5.714897, abs=1e-6)
    assert b.period_err_days == pytest.approx(6.756e-06, rel=1e-3)  # mean of |err1|, |err2|
    assert b.t0_days == pytest.approx(170.921904) and b.depth_ppm == pytest.approx(425.9)
    kepler235 = hosts[4139816]
    assert [round(p.period_days, 2) for p in kepler235.planets] == [3.34, 7.83, 20.06]  # e (46 d) is out
    assert kepler62.teff_k == 4926.0 and kepler62.logg_cgs == pytest.approx(4.653)


def test_false_positive_stars_have_no_confirmed_planet_or_candidate(koi):
    fps = {s.target_id for s in false_positive_stars(koi)}
    assert 1026032 in fps  # K06252.01, a false positive only
    assert 9002278 not in fps


def test_negatives_never_include_koi_hosts(koi, shared_data):
    quiet = read_star_catalog(shared_data / "tables" / "kepler_quiet_stars_subset.csv")
    assert len(quiet) == 900 and all(s.mission == "Kepler" for s in quiet)
    first = quiet[0]
    assert first.teff_k and first.radius_rsun and first.cdpp6_ppm
    # A confirmed host (Kepler-62) and a star with a candidate (KIC 1718189, K00993.03)
    # are dropped; a false-positive-only star (KIC 1026032) has neither and stays.
    planted = quiet[:5] + [CatalogStar("Kepler", k) for k in (9002278, 1718189, 1026032)]
    chosen = {s.target_id for s in negative_stars(koi, planted)}
    assert chosen == {s.target_id for s in quiet[:5]} | {1026032}
    with_fps = {s.target_id for s in negative_stars(koi, planted, false_positives=True)}
    assert 1433980 in with_fps and chosen < with_fps  # every false-positive-only star joins


def test_star_catalog_drops_rows_with_planets(tmp_path):
    path = tmp_path / "stars.csv"
    path.write_text("# kepler stellar export\nkepid|nconfp|teff|logg|radius\n1|0|5000|4.5|0.8\n2|1|5800|4.4|1.0\n")
    stars = read_star_catalog(path)
    assert [s.target_id for s in stars] == [1]
    host = stars[0].host()
    # mass from g = G M / R^2: M = 10**(4.5 - 4.438) * 0.8**2 = 0.738 Msun
    assert host.mass_msun == pytest.approx(0.738, abs=0.002) and host.teff_k == 5000


def test_host_defaults_to_the_sun():
    host = CatalogStar("Kepler", 1).host()
    assert (host.radius_rsun, host.mass_msun, host.teff_k) == (1.0, 1.0, 5772.0)
    assert math.isclose(host.logg_cgs, 4.438)


@pytest.mark.parametrize(
    ("text", "missing"),
    [
        ("kepid,kepoi_name\n1,K1\n", "koi_disposition, koi_period"),
        ("# comment\nkepid,koi_disposition,koi_depth\n1,CONFIRMED,100\n", "koi_period"),
    ],
)
def test_koi_table_missing_columns_is_one_clear_line(tmp_path, text, missing):
    path = tmp_path / "koi.csv"
    path.write_text(text)
    with pytest.raises(CatalogError) as err:
        read_koi_table(path)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(str(path)) and message.endswith(f"lacks column(s) {missing}")


def test_star_catalog_without_identifier_column(tmp_path):
    path = tmp_path / "stars.csv"
    path.write_text("teff,radius\n5000,1\n")
    with pytest.raises(CatalogError, match=r"stars\.csv: star catalogue lacks an identifier column"):
        read_star_catalog(path)


@pytest.mark.parametrize("content", [b"", b"\x00\x01\x02PK\xff" * 10])
def test_unreadable_or_missing_catalogue(tmp_path, content):
    path = tmp_path / "koi.parquet"
    path.write_bytes(content)
    with pytest.raises(CatalogError) as err:
        read_koi_table(path)
    assert str(err.value).startswith(f"{path}: not a readable KOI table") and "\n" not in str(err.value)
    with pytest.raises(CatalogError, match="no such KOI table file"):
        read_koi_table(tmp_path / "absent.csv")


@pytest.mark.vcr
def test_koi_table_from_the_exoplanet_archive(tmp_path):
    """The TAP query, replayed from a cassette holding real rows; then cached on disk."""
    config = config_from_dict({"output_root": str(tmp_path)})
    koi = load_koi_table(config, tmp_path / "cache")
    hosts = {s.target_id: s for s in confirmed_hosts(koi, 40.0)}
    assert sorted(hosts) == [2307415, 9002278]
    assert [p.name for p in hosts[2307415].planets] == ["Kepler-356 b", "Kepler-356 c"]
    assert (tmp_path / "cache" / "koi_cumulative.csv").is_file()
    # Once cached, the archive is not asked again (the cassette allows one request).
    assert len(load_koi_table(config, tmp_path / "cache")) == len(koi)


def test_kaggle_without_the_package_is_a_clear_error(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "kaggle", None)  # as if not installed
    config = config_from_dict({"username": "someone", "key": "sekrit-key-123"})
    with pytest.raises(CatalogError) as err:
        load_koi_table(config, tmp_path)
    assert "'kaggle' package is not installed" in str(err.value)
    assert "sekrit" not in str(err.value)
    import os

    assert "KAGGLE_KEY" not in os.environ  # the key does not outlive its use
