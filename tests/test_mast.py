"""The MAST source at its network boundary: real file bytes from ../shared/data replayed
through vcrpy and through a scripted HTTP adapter that injects faults (timeouts, 429,
503, truncated bodies), and lightkurve's search replaced by a real-shaped SearchResult."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
import requests
import yaml
from astropy.io import fits
from astropy.table import Table
from lightkurve import SearchResult
from requests.structures import CaseInsensitiveDict

from exoperiod.config import config_from_dict
from exoperiod.learning.catalog import CatalogStar
from exoperiod.learning.datasets import (
    DownloadError,
    MastClient,
    MastError,
    Positives,
    RateLimiter,
    RetryPolicy,
    download_file,
)
from exoperiod.learning.datasets.mast import MAST_DOWNLOAD_URL, search_products
from exoperiod.search.readers import read_lightcurve

KEPLER62 = 9002278
KEPLER62_Q13 = "kplr009002278-2012179063303_llc.fits"
KEPLER62_URI = f"mast:Kepler/url/missions/kepler/lightcurves/0090/009002278/{KEPLER62_Q13}"
KEPLER62_URL = f"{MAST_DOWNLOAD_URL}?uri={KEPLER62_URI}"


@pytest.fixture(scope="module")
def q13_path(shared_data):
    return shared_data / "lightcurves" / "kepler" / str(KEPLER62) / KEPLER62_Q13


@pytest.fixture(scope="module")
def q13_bytes(q13_path):
    return q13_path.read_bytes()


class _Sleeps(list):
    """A RetryPolicy sleep that records instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _policy(attempts: int = 6) -> RetryPolicy:
    return RetryPolicy(attempts=attempts, base_delay_s=1.0, sleep=_Sleeps())


class _BrokenBody(io.BytesIO):
    """A body whose connection drops half-way (what urllib3 reports as a broken chunk)."""

    def read(self, size=-1):
        data = super().read(size)
        if not data:
            raise requests.exceptions.ChunkedEncodingError("Connection broken: IncompleteRead")
        return data


class ScriptedMast(requests.adapters.BaseAdapter):
    """Serves real bytes per URL, after the faults its script lists; records requests."""

    def __init__(self, files: dict[str, bytes], script: list[str] | None = None, always: str | None = None):
        super().__init__()
        self.files, self.script, self.always = files, list(script or []), always
        self.requests: list[requests.PreparedRequest] = []

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        self.requests.append(request)
        step = self.always or (self.script.pop(0) if self.script else "ok")
        if step == "timeout":
            raise requests.exceptions.ReadTimeout("HTTPSConnectionPool: Read timed out. (read timeout=120)")
        if step in ("429", "503", "404"):
            headers = {"Retry-After": "7"} if step == "429" else {}
            return self._response(request, int(step), b"", headers)
        body = self.files[request.url]
        start = int(request.headers["Range"].split("=")[1].rstrip("-")) if "Range" in request.headers else 0
        payload = body[start:]
        status = 206 if start else 200
        headers = {"Content-Length": str(len(payload)), "Content-Type": "application/octet-stream"}
        if step == "truncated":  # the server closes early: fewer bytes than announced
            return self._response(request, status, payload[: len(payload) // 2], headers)
        if step == "broken":
            return self._response(request, status, payload[: len(payload) // 3], headers, raw=_BrokenBody)
        return self._response(request, status, payload, headers)

    @staticmethod
    def _response(request, status, body, headers, raw=io.BytesIO):
        response = requests.Response()
        response.status_code, response.url, response.request = status, request.url, request
        response.reason = {200: "OK", 206: "Partial Content", 404: "Not Found", 429: "Too Many Requests",
                           503: "Service Unavailable"}[status]
        response.headers = CaseInsensitiveDict(headers)
        response.raw = raw(body)
        return response

    def close(self):
        pass


def _session(adapter: ScriptedMast) -> requests.Session:
    session = requests.Session()
    session.mount("https://", adapter)
    return session


def test_download_replays_real_bytes_through_vcrpy(tmp_path, q13_bytes):
    """The default HTTP stack (no injected session), replayed by vcrpy from a cassette
    made at test time from the real Kepler-62 Q13 file (no FITS file is committed)."""
    import vcr

    cassette = tmp_path / "mast_download.yaml"
    cassette.write_text(yaml.safe_dump({"version": 1, "interactions": [{
        "request": {"method": "GET", "uri": KEPLER62_URL, "body": None, "headers": {}},
        "response": {"status": {"code": 200, "message": "OK"}, "body": {"string": q13_bytes},
                     "headers": {"Content-Type": ["application/octet-stream"],
                                 "Content-Length": [str(len(q13_bytes))],
                                 "Content-Disposition": [f"attachment; filename={KEPLER62_Q13}"]}},
    }]}))
    dest = tmp_path / "cache" / KEPLER62_Q13
    with vcr.VCR(record_mode="none").use_cassette(str(cassette)) as played:
        assert download_file(KEPLER62_URL, dest, expected_size=len(q13_bytes)) == dest
        assert played.play_count == 1
    assert dest.read_bytes() == q13_bytes
    lc = read_lightcurve(dest)
    assert lc.meta["TARGETID"] == KEPLER62 and lc.meta["QUARTER"] == 13


def test_faults_are_retried_and_the_download_resumes(tmp_path, q13_bytes):
    adapter = ScriptedMast({KEPLER62_URL: q13_bytes}, ["timeout", "429", "503", "truncated", "broken", "ok"])
    policy = _policy()
    dest = tmp_path / KEPLER62_Q13
    download_file(KEPLER62_URL, dest, session=_session(adapter), policy=policy)
    assert dest.read_bytes() == q13_bytes
    assert not (tmp_path / (KEPLER62_Q13 + ".part")).exists()
    # The truncated body was kept and continued: the last two requests ask for the rest.
    half = len(q13_bytes) // 2
    ranges = [r.headers.get("Range") for r in adapter.requests]
    assert ranges[:4] == [None] * 4 and ranges[4] == f"bytes={half}-"
    assert ranges[5] == f"bytes={half + (len(q13_bytes) - half) // 3}-"
    # Backoff: the 429's Retry-After is honoured, the others grow exponentially (jittered).
    sleeps = policy.sleep
    assert len(sleeps) == 5 and sleeps[1] == 7.0
    assert 0.5 <= sleeps[0] <= 1.0 and 2.0 <= sleeps[2] <= 4.0 and 4.0 <= sleeps[3] <= 8.0


def test_truncated_download_never_becomes_the_final_file(tmp_path, q13_bytes):
    adapter = ScriptedMast({KEPLER62_URL: q13_bytes}, always="truncated")
    dest = tmp_path / KEPLER62_Q13
    with pytest.raises(DownloadError) as err:
        download_file(KEPLER62_URL, dest, session=_session(adapter), policy=_policy(attempts=3))
    assert not dest.exists()
    assert str(err.value).startswith(KEPLER62_URL) and "TruncatedDownload" in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("fault", "requests_made"), [("503", 3), ("404", 1), ("timeout", 3)])
def test_lasting_failures_end_in_one_line(tmp_path, q13_bytes, fault, requests_made):
    adapter = ScriptedMast({KEPLER62_URL: q13_bytes}, always=fault)
    with pytest.raises(DownloadError) as err:
        download_file(KEPLER62_URL, tmp_path / "f.fits", session=_session(adapter), policy=_policy(attempts=3))
    assert len(adapter.requests) == requests_made  # a 404 is not retried
    expected = {"503": "HTTP 503 Service Unavailable", "404": "HTTP 404 Not Found", "timeout": "ReadTimeout"}[fault]
    assert expected in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "f.fits").exists()


def test_cached_file_of_the_right_size_is_not_fetched(tmp_path, q13_bytes):
    adapter = ScriptedMast({KEPLER62_URL: q13_bytes})
    dest = tmp_path / KEPLER62_Q13
    dest.write_bytes(q13_bytes)
    download_file(KEPLER62_URL, dest, session=_session(adapter), expected_size=len(q13_bytes))
    assert adapter.requests == []
    dest.write_bytes(q13_bytes[:1000])  # a stale or damaged copy is fetched again
    download_file(KEPLER62_URL, dest, session=_session(adapter), expected_size=len(q13_bytes))
    assert len(adapter.requests) == 1 and dest.read_bytes() == q13_bytes


def test_rate_limiter_spaces_requests():
    now = [0.0]
    waits = []

    def sleep(seconds):
        waits.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(2.0, burst=2, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        limiter.acquire()
    assert waits == pytest.approx([0.5, 0.5, 0.5])  # a burst of 2, then 2 per second
    now[0] += 10.0
    limiter.acquire()
    assert len(waits) == 3  # a rested bucket lets the next one through at once


def _search_result(q13_path, kepid: int, filename: str, size: int) -> SearchResult:
    """A lightkurve SearchResult shaped like MAST's answer for a Kepler Q13 light curve
    (columns and values of the real Kepler-62 product; times from its FITS header)."""
    header = fits.getheader(q13_path, 1)
    t_min = header["TSTART"] + 2454833.0 - 2400000.5
    return SearchResult(Table(rows=[{
        "intentType": "science", "obs_collection": "Kepler", "provenance_name": "Kepler",
        "project": "Kepler", "mission": "Kepler Quarter 13", "author": "Kepler",
        "target_name": f"kplr{kepid:09d}", "obs_id": f"kplr{kepid:09d}_lc_Q111111111111111111",
        "dataproduct_type": "timeseries", "t_min": t_min, "t_max": header["TSTOP"] + 2454833.0 - 2400000.5,
        "exptime": 1800.0, "distance": 0.0, "sequence_number": 13,
        "description": "Lightcurve Long Cadence (CLC) - Q13", "productSubGroupDescription": "LLC",
        "dataURI": f"mast:Kepler/url/missions/kepler/lightcurves/{kepid // 100000:04d}/{kepid:09d}/{filename}",
        "productFilename": filename, "size": size,
    }]))


class FakeSearch:
    """Stands in for lightkurve.search_lightcurve; records its calls."""

    def __init__(self, results, failures=()):
        self.results, self.failures, self.calls = results, list(failures), []

    def __call__(self, target, **kwargs):
        self.calls.append((target, kwargs))
        if self.failures:
            raise self.failures.pop(0)
        return self.results[target]


def test_search_asks_lightkurve_for_official_long_cadence(q13_path, q13_bytes):
    search = FakeSearch({"KIC 9002278": _search_result(q13_path, KEPLER62, KEPLER62_Q13, len(q13_bytes))})
    products = search_products(CatalogStar("Kepler", KEPLER62), segments=[13], search=search)
    asked = {"mission": "Kepler", "author": "Kepler", "exptime": 1800, "quarter": [13]}
    assert search.calls == [("KIC 9002278", asked)]
    assert [(p.filename, p.size, p.url) for p in products] == [(KEPLER62_Q13, len(q13_bytes), KEPLER62_URL)]


def test_client_fetches_caches_and_retries_the_search(tmp_path, q13_path, q13_bytes):
    result = _search_result(q13_path, KEPLER62, KEPLER62_Q13, len(q13_bytes))
    search = FakeSearch({"KIC 9002278": result}, failures=[requests.ConnectionError("MAST unreachable")])
    adapter = ScriptedMast({KEPLER62_URL: q13_bytes}, ["503"])
    client = MastClient(tmp_path, session=_session(adapter), search=search, policy=_policy())
    star = CatalogStar("Kepler", KEPLER62)
    (path,) = client.fetch(star)
    assert path == tmp_path / "kepler" / str(KEPLER62) / KEPLER62_Q13 and path.read_bytes() == q13_bytes
    assert len(search.calls) == 2 and len(adapter.requests) == 2
    listing = json.loads((path.parent / "products.json").read_text())
    assert listing["products"][0]["filename"] == KEPLER62_Q13
    # A rebuild finds the product list and the file in the cache: no search, no download.
    assert client.fetch(star) == [path]
    assert len(search.calls) == 2 and len(adapter.requests) == 2


def test_client_reports_targets_without_data(tmp_path):
    empty = SearchResult(Table())
    client = MastClient(tmp_path, search=FakeSearch({"KIC 1": empty}), policy=_policy())
    with pytest.raises(MastError, match=r"^KIC 1: MAST lists no Kepler light curve with exptime 1800 s$"):
        client.fetch(CatalogStar("Kepler", 1))
    failing = MastClient(tmp_path, search=FakeSearch({}, failures=[ValueError("bad target")]), policy=_policy())
    with pytest.raises(MastError, match=r"^KIC 2: MAST search failed \(ValueError: bad target\)$"):
        failing.fetch(CatalogStar("Kepler", 2))


def test_positives_from_mast_go_on_past_a_failing_star(tmp_path, shared_data, q13_path, q13_bytes):
    """A positive dataset built through the MAST source: Kepler-62's real Q13 file is
    served, Kepler-356's download keeps failing with 503 and ends as a failure row."""
    koi = pd.read_csv(shared_data / "tables" / "koi_cumulative.csv", comment="#")
    koi_path = tmp_path / "koi.csv"
    koi[koi.kepid.isin([KEPLER62, 2307415])].to_csv(koi_path, index=False)
    other = "kplr002307415-2012179063303_llc.fits"
    search = FakeSearch({
        "KIC 9002278": _search_result(q13_path, KEPLER62, KEPLER62_Q13, len(q13_bytes)),
        "KIC 2307415": _search_result(q13_path, 2307415, other, 480_960),
    })

    class Router(ScriptedMast):
        def send(self, request, **kwargs):
            self.always = None if KEPLER62_Q13 in request.url else "503"
            return super().send(request, **kwargs)

    client = MastClient(tmp_path / "mast", session=_session(Router({KEPLER62_URL: q13_bytes})), search=search,
                        policy=_policy(attempts=3))
    config = config_from_dict({"output_root": str(tmp_path / "data"), "koi_table": str(koi_path),
                               "positive_sample_count": 5})
    summary = Positives(config, source="mast", mast=client).build()
    assert (summary.stars, summary.written, summary.failed) == (2, 1, 1)
    meta = pd.read_csv(tmp_path / "data" / "positive" / "metadata.csv")
    assert meta["sample_id"].tolist() == ["pos-KIC9002278-Q13-w0"]
    assert meta["source"].tolist() == ["mast"]
    failures = pd.read_csv(tmp_path / "data" / "positive" / "failures.csv")
    assert failures["star_id"].tolist() == ["KIC 2307415"]
    assert "HTTP 503 Service Unavailable" in failures["reason"][0] and other in failures["reason"][0]
    with np.load(tmp_path / "data" / "positive" / "pos-KIC9002278-Q13-w0.npz") as sample:
        grid = config.grid()
        assert sorted(np.argsort(-sample["arr_1"])[:3]) == [grid.index(p) for p in (5.714897, 12.4418, 18.164073)]
