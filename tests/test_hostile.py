"""Hostile input, as a careless or malicious user would give it.

Every bad light-curve file, config file, model file and output folder must end in one
line on stderr naming the file and the problem, the documented exit code, no traceback,
nothing that looks complete left behind, and bounded memory. The corpus is generated
here: no binary is committed.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from astropy.io import fits
from filelock import FileLock
from typer.testing import CliRunner

from exoperiod.checkpoint import save_checkpoint
from exoperiod.cli import app
from exoperiod.config import MAX_LIGHTCURVE_LENGTH
from exoperiod.errors import one_line
from exoperiod.search.model import DEFAULT_MODEL_PATH
from exoperiod.search.readers import (
    MAX_FILE_BYTES,
    LightCurveReadError,
    read_lightcurve,
)

runner = CliRunner()
SRC = str(Path(__file__).resolve().parents[1] / "src")
KEPLER62_Q13 = "lightcurves/kepler/9002278/kplr009002278-2012179063303_llc.fits"
#: The memory a rejected file may cost, the whole process included.
MAX_RSS_MB = 500


def one_error_line(result) -> str:
    """The single stderr line of a failed command; fails on a traceback or more lines."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    return lines[0]


# ----------------------------------------------------------------- light curves


def _quiet_star(n: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    return 100.0 + np.arange(n) * 0.0204, 1.0 + rng.normal(0.0, 1e-3, n)


def _csv(path: Path, time_days: np.ndarray, flux: np.ndarray) -> None:
    np.savetxt(path, np.c_[time_days, flux], delimiter=",", header="time,flux", comments="")


def _constant(path: Path) -> None:
    _csv(path, _quiet_star()[0], np.full(3000, 1234.5))


def _single_row(path: Path) -> None:
    path.write_text("time,flux\n100.0,1.0\n")


def _header_only(path: Path) -> None:
    path.write_text("time,flux\n")


def _nan_time(path: Path) -> None:
    _csv(path, np.full(3000, np.nan), _quiet_star()[1])


def _stray_time(path: Path) -> None:
    time_days, flux = _quiet_star()
    time_days[1500] = 1e9  # the value that once asked for a 365 GiB grid
    _csv(path, time_days, flux)


def _seconds(path: Path) -> None:
    time_days, flux = _quiet_star()
    _csv(path, time_days * 86400.0, flux)


def _gzip_bomb(path: Path) -> None:
    # A valid-looking FITS start, then zeros: ~0.3 MB that inflates beyond the cap.
    zeros = bytes(1 << 20)
    with gzip.open(path, "wb", compresslevel=1) as handle:
        handle.write(b"SIMPLE  =                    T".ljust(80))
        for _ in range((MAX_FILE_BYTES >> 20) + 8):
            handle.write(zeros)


def _sparse_2gib(path: Path) -> None:
    with path.open("wb") as handle:
        handle.write(b"SIMPLE  =                    T".ljust(80))
        handle.truncate(2 << 30)  # sparse: no disk used


def _not_gzip(path: Path) -> None:
    path.write_bytes(b"SIMPLE  =                    T".ljust(2880))


def _latin1(path: Path) -> None:
    path.write_bytes("temps,flux\n1.0,1.0\n".replace("temps", "t\xe9mps").encode("latin-1"))


LIGHTCURVE_CASES = [
    pytest.param("constant.csv", _constant, "flux is constant (1234.5 at every cadence)", id="constant-flux"),
    pytest.param("single.csv", _single_row, "only one cadence", id="single-row"),
    pytest.param("header_only.csv", _header_only, "no finite time values", id="header-only"),
    pytest.param("nan_time.csv", _nan_time, "no finite time values", id="all-nan-time"),
    pytest.param("stray.csv", _stray_time, "time spans 1e+09 days, more than the 30 years", id="stray-time"),
    pytest.param("seconds.csv", _seconds, "time not in days", id="time-in-seconds"),
    pytest.param("bomb.fits.gz", _gzip_bomb, "decompresses to more than the 256 MiB", id="gzip-bomb"),
    pytest.param("sparse.fits", _sparse_2gib, "2048 MiB, more than the 256 MiB", id="sparse-2gib-fits"),
    pytest.param("sparse.csv", _sparse_2gib, "2048 MiB, more than the 256 MiB", id="sparse-2gib-csv"),
    pytest.param("sparse.json", _sparse_2gib, "2048 MiB, more than the 256 MiB", id="sparse-2gib-json"),
    pytest.param("plain.fits.gz", _not_gzip, "truncated or corrupt gzip file", id="not-gzip"),
    pytest.param("latin1.csv", _latin1, "not a readable text table", id="not-utf8"),
    pytest.param("line\nbreak.csv", _constant, "flux is constant", id="newline-in-name"),
]


@pytest.mark.parametrize(("name", "write", "problem"), LIGHTCURVE_CASES)
def test_bad_light_curve_is_one_line_from_the_command(tmp_path, name, write, problem):
    path = tmp_path / name
    write(path)
    result = runner.invoke(app, ["predict", str(path)])
    assert result.exit_code == 1  # every input failed
    line = one_error_line(result)
    assert problem in line
    # A newline in the name is escaped, so the line still names the file.
    assert line.startswith(str(path).replace("\n", "\\n") + ": ")
    assert result.stdout == ""


def test_a_pattern_matching_nothing_says_so(tmp_path):
    result = runner.invoke(app, ["predict", str(tmp_path / "nothing*.fits")])
    assert result.exit_code == 1
    assert one_error_line(result).endswith("nothing*.fits: no file matches this pattern")


@pytest.mark.parametrize(("name", "write"), [
    pytest.param("bomb.fits.gz", _gzip_bomb, id="gzip-bomb"),
    pytest.param("sparse.fits", _sparse_2gib, id="sparse-2gib-fits"),
    pytest.param("sparse.json", _sparse_2gib, id="sparse-2gib-json"),
    pytest.param("stray.csv", _stray_time, id="stray-time"),
])
def test_rejecting_a_bomb_costs_little_memory(tmp_path, name, write):
    path = tmp_path / name
    write(path)
    if not Path("/proc/self/status").is_file():
        pytest.skip("peak memory is read from /proc/self/status (Linux)")
    # A fresh process, and its VmHWM (peak resident memory, imports included): Linux
    # carries the high-water mark of the parent's memory into ru_maxrss across
    # fork + exec, so ru_maxrss of a child of this ~1 GB pytest reads ~1 GB.
    script = (
        "import re, sys\n"
        "from exoperiod.search.readers import LightCurveReadError, read_lightcurve\n"
        "try:\n    read_lightcurve(sys.argv[1])\n"
        "except LightCurveReadError as err:\n    print(err)\n"
        "print(re.search(r'VmHWM:\\s*(\\d+) kB', open('/proc/self/status').read()).group(1))\n"
    )
    out = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": SRC}, timeout=120).stdout.splitlines()
    assert out[0].startswith(f"{path}: ")
    assert int(out[1]) / 1024 <= MAX_RSS_MB


def _without_pdcsap(source: Path, path: Path) -> None:
    with fits.open(source) as hdul:
        table = hdul["LIGHTCURVE"]
        columns = fits.ColDefs([c for c in table.columns if c.name not in ("PDCSAP_FLUX", "PDCSAP_FLUX_ERR")])
        new = fits.BinTableHDU.from_columns(columns, header=table.header, name="LIGHTCURVE")
        fits.HDUList([hdul[0].copy(), new, *hdul[2:]]).writeto(path)


def test_a_spoc_file_without_pdcsap_suggests_sap(shared_data, tmp_path):
    path = tmp_path / "kplr009002278-2012179063303_llc.fits"
    _without_pdcsap(shared_data / KEPLER62_Q13, path)
    with pytest.raises(LightCurveReadError, match=r"no PDCSAP_FLUX column .*use --flux sap\)$"):
        read_lightcurve(path)
    assert read_lightcurve(path, flux_column="sap").meta["FLUX_ORIGIN"] == "sap_flux"


def test_bytes_after_the_last_hdu_are_not_a_truncation(shared_data, tmp_path):
    original = shared_data / KEPLER62_Q13
    path = tmp_path / original.name
    path.write_bytes(original.read_bytes() + b"\0" * 100)
    padded, clean = read_lightcurve(path), read_lightcurve(original)
    np.testing.assert_array_equal(padded.flux.value, clean.flux.value)


# ------------------------------------------------------------------- configs


CONFIG_CASES = [
    pytest.param('{"cadence_minutes": Infinity}', "cadence_minutes: Input should be a finite number", id="inf"),
    pytest.param('{"cadence_minutes": NaN}', "cadence_minutes: Input should be a finite number", id="nan"),
    pytest.param('{"period_filter": 1e999}', "period_filter: Input should be a finite number", id="overflow"),
    pytest.param('{"distribution_params": {"period": {"min": 1, "max": Infinity}}}',
                 "distribution_params.period.max", id="period-max-inf"),
    pytest.param('{"synthetic_priors": {"snr_max": Infinity}}', "synthetic_priors.snr_max", id="nested-inf"),
    pytest.param('{"seed": -1}', "seed: Input should be greater than or equal to 0", id="negative-seed"),
    pytest.param('{"lightcurve_length": 1e7}', f"less than or equal to {MAX_LIGHTCURVE_LENGTH}", id="length-1e7"),
    pytest.param('{"distribution_params": {"period": {"bins": 1000000}}}', "period.bins", id="bins"),
    pytest.param('{"distribution_params": {"period": {"min": 0.0001}}}', "period.min", id="period-min"),
    pytest.param('{"synthetic_samples_count": 1e12}', "synthetic_samples_count", id="count"),
    pytest.param('{"planets_per_synthetic_star": 1000}', "planets_per_synthetic_star", id="planets"),
    pytest.param('{"cadence_minutes": 1e-9}', "cadence_minutes", id="cadence-tiny"),
    pytest.param('{"seed": 1', "not valid JSON", id="bad-json"),
    pytest.param("[1, 2]", "the top level must be a JSON object", id="not-an-object"),
    pytest.param("[" * 100_000, "not valid JSON", id="deeply-nested"),
    pytest.param(b'{"seed": 1, "output_root": "d\xe9j\xe0"}', "not UTF-8 text", id="not-utf8"),
    pytest.param(" " * (2 << 20), "larger than 1 MiB", id="huge"),
]


def _config_error(path: Path) -> str:
    result = runner.invoke(app, ["build-dataset", "--config", str(path)])
    assert result.exit_code == 2
    line = one_error_line(result)
    assert line.startswith(f"error: {path}: ")
    return line


@pytest.mark.parametrize(("content", "problem"), CONFIG_CASES)
def test_impossible_config_is_one_line(tmp_path, content, problem):
    path = tmp_path / "config.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    assert problem in _config_error(path)


def test_a_config_path_that_is_a_folder_or_missing(tmp_path):
    assert _config_error(tmp_path).endswith("a directory, not a config file")
    assert _config_error(tmp_path / "missing.json").endswith("no such file")


def test_a_long_error_is_not_wrapped(tmp_path):
    # Rich wrapped lines at 80 columns when stderr was not a terminal.
    folder = tmp_path / ("a-folder-with-a-long-name-" * 4)
    folder.mkdir()
    path = folder / "config.json"
    path.write_text('{"cadence_minutes": Infinity}')
    assert len(_config_error(path)) > 160


# ------------------------------------------------------------------ model files


def _payload() -> dict:
    return torch.load(DEFAULT_MODEL_PATH, map_location="cpu", weights_only=True)


def _with(**changes) -> Callable[[], object]:
    return lambda: {**_payload(), **changes}


def _without(key: str) -> Callable[[], object]:
    return lambda: {k: v for k, v in _payload().items() if k != key}


def _config_with(**changes) -> Callable[[], object]:
    return lambda: {**_payload(), "config": {**_payload()["config"], **changes}}


def _nan_weight() -> dict:
    payload = _payload()
    payload["state_dict"]["head.bias"] = torch.tensor([float("nan")])
    return payload


MODEL_CASES = [
    pytest.param(lambda: {"format": "exoperiod-model/2"}, "no 'state_dict'", id="format-only"),
    pytest.param(lambda: {**_payload(), "format": "exoperiod-model/1"}, "format exoperiod-model/2 expected",
                 id="old-format"),
    pytest.param(_without("temperature"), "no 'temperature'", id="no-temperature"),
    pytest.param(_without("config"), "no 'config'", id="no-config"),
    pytest.param(_with(state_dict=torch.zeros(3)), "'state_dict' is a Tensor, not a dict", id="tensor-state"),
    pytest.param(_with(state_dict={1: torch.zeros(1)}), "state_dict must map names to tensors", id="int-key"),
    pytest.param(_with(state_dict={"w": [1.0]}), "state_dict must map names to tensors", id="list-weight"),
    pytest.param(_nan_weight, "weight 'head.bias' holds NaN", id="nan-weight"),
    pytest.param(_with(temperature=torch.zeros(7)), "temperature must be one positive finite number",
                 id="temperature-shape"),
    pytest.param(_with(temperature=torch.tensor(float("inf"))), "temperature must be one positive finite",
                 id="temperature-inf"),
    pytest.param(_with(temperature=torch.tensor(-1.0)), "temperature must be one positive finite",
                 id="temperature-negative"),
    pytest.param(_with(temperature=1.0), "'temperature' is a float, not a Tensor", id="temperature-float"),
    pytest.param(_with(card=[]), "'card' is a list, not a dict", id="card-list"),
    pytest.param(_with(vetter=torch.zeros(3)), "'vetter' is a Tensor, not a dict", id="vetter-tensor"),
    pytest.param(_with(vetter={"mean": torch.tensor([float("nan")] * 12)}), "weight 'mean' holds NaN",
                 id="vetter-nan"),
    pytest.param(_with(vetter={"mean": torch.zeros(12)}), "vetter weights do not fit the vetter",
                 id="vetter-incomplete"),
    pytest.param(_with(grid={"bins": 3}), "its grid", id="grid"),
    pytest.param(_config_with(lightcurve_length=2_000_000_000), "unusable model config: config: lightcurve_length",
                 id="length-2e9"),
    pytest.param(_config_with(cadence_minutes=float("inf")), "cadence_minutes: Input should be a finite",
                 id="config-inf"),
    pytest.param(lambda: [1, 2, 3], "not an exoperiod model file", id="a-list"),
]


@pytest.mark.parametrize(("make", "problem"), MODEL_CASES)
def test_forged_model_file_is_one_line(tmp_path, make, problem):
    path = tmp_path / "forged.pt"
    torch.save(make(), path)
    start = time.perf_counter()
    result = runner.invoke(app, ["predict", str(tmp_path / "none.csv"), "--model", str(path)])
    assert result.exit_code == 2
    line = one_error_line(result)
    assert line.startswith(f"error: {path}: ") and problem in line
    # Rejected from the payload, before a model is built from it (2e9 cells once grew
    # memory until the process was killed).
    assert time.perf_counter() - start < 30


def test_the_shipped_model_passes_the_checks(shipped_model):
    assert 0.1 < shipped_model.temperature < 10


# ------------------------------------------------------------------ builds


def _build(tmp_path: Path, *args: str, **settings) -> object:
    config = tmp_path / "build.json"
    config.write_text(json.dumps({"negative_sample_count": 3, **settings}))
    return runner.invoke(app, ["build-dataset", "--config", str(config), "--only", "negative", *args])


def test_output_root_that_is_a_file(tmp_path):
    blocker = tmp_path / "data"
    blocker.write_text("not a folder")
    result = _build(tmp_path, output_root=str(blocker))
    assert result.exit_code == 2
    assert one_error_line(result) == f"error: {blocker}: a file, where the dataset folder {blocker}/negative should be"


def test_a_build_where_every_star_failed_exits_non_zero(tmp_path):
    out = tmp_path / "data"
    # Simulated stars are one 4096-cell window with gaps, never 4096 valid cadences.
    result = _build(tmp_path, output_root=str(out), min_lightcurve_length=4096)
    assert result.exit_code == 2
    line = one_error_line(result)
    assert line == (f"error: {out}/negative: no sample written (all 3 stars failed; reasons in "
                    f"{out}/negative/failures.csv)")
    assert len((out / "negative" / "failures.csv").read_text().splitlines()) == 4


def test_a_build_asked_for_no_star_is_not_a_failure(tmp_path):
    result = _build(tmp_path, output_root=str(tmp_path / "data"), negative_sample_count=0)
    assert result.exit_code == 0, result.stderr


def test_a_second_build_into_the_same_folder_is_refused(tmp_path):
    folder = tmp_path / "data" / "negative"
    folder.mkdir(parents=True)
    stray = folder / "neg-000000-w0.tmp.npz"  # the first build's file in progress
    stray.write_bytes(b"partial")
    with FileLock(folder / "build.lock"):
        result = _build(tmp_path, output_root=str(tmp_path / "data"))
    assert result.exit_code == 2
    assert one_error_line(result) == f"error: {folder}: another build is writing to this folder; wait for it or " \
                                     "use another output_root"
    assert stray.read_bytes() == b"partial"
    assert _build(tmp_path, output_root=str(tmp_path / "data")).exit_code == 0  # the lock is free again


@pytest.fixture()
def tmpfs(tmp_path):
    """``tmpfs(options)``: a fresh tmpfs mounted with those options (needs root and a
    kernel that lets this process mount); unmounted after the test."""
    mounted = []

    def mount(options: str) -> Path:
        point = tmp_path / f"mount{len(mounted)}"
        point.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs: {done.stderr.decode().strip() or done.returncode}")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", str(point)], check=True)


def test_a_full_disk_is_one_line_and_leaves_no_table(tmp_path, tmpfs):
    disk = tmpfs("size=1m")
    out = disk / "data"
    result = _build(tmp_path, output_root=str(out), negative_sample_count=100)
    assert result.exit_code == 2
    assert one_error_line(result).endswith("cannot write the negative dataset (No space left on device)")
    folder = out / "negative"
    assert not (folder / "metadata.csv").exists() and not (folder / "metadata.parquet").exists()
    assert not list(folder.glob("*.tmp*"))
    assert (folder / "journal.jsonl").read_text().startswith('{"index": 0,')
    first = (folder / "neg-000000-w0.npz").stat().st_mtime_ns
    # With room again, the rerun keeps the journaled stars and finishes the others.
    subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
    result = _build(tmp_path, output_root=str(out), negative_sample_count=100)
    assert result.exit_code == 0, result.stderr
    assert (folder / "neg-000000-w0.npz").stat().st_mtime_ns == first
    assert len((folder / "metadata.csv").read_text().splitlines()) == 101


def test_a_model_file_on_a_full_disk_names_the_file_and_leaves_nothing(tmpfs):
    # torch's own writer says "RuntimeError: unexpected pos" and keeps the partial file.
    path = tmpfs("size=64k") / "model.pt"
    with pytest.raises(OSError) as err:
        save_checkpoint({"weights": torch.zeros(100_000)}, path)
    assert one_line(err.value) == f"{path}: No space left on device"
    assert not list(path.parent.iterdir())


def test_a_read_only_output_is_one_line(tmp_path, tmpfs):
    out = tmpfs("size=1m,ro") / "data"
    result = _build(tmp_path, output_root=str(out))
    assert result.exit_code == 2
    assert one_error_line(result) == f"error: {out}: cannot write the negative dataset (Read-only file system)"


def test_killed_build_leaves_no_worker_behind(tmp_path):
    psutil = pytest.importorskip("psutil")
    out = tmp_path / "data"
    config = tmp_path / "build.json"
    config.write_text(json.dumps({"negative_sample_count": 5000, "output_root": str(out)}))
    build = subprocess.Popen(
        [sys.executable, "-m", "exoperiod.cli", "build-dataset", "--config", str(config), "--only", "negative",
         "--workers", "2"],
        env={**os.environ, "PYTHONPATH": SRC}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not list((out / "negative").glob("neg-*.npz")):  # workers are making samples
            assert build.poll() is None and time.monotonic() < deadline
            time.sleep(0.5)
        family = psutil.Process(build.pid).children(recursive=True)
        assert len(family) >= 2
    finally:
        build.send_signal(signal.SIGKILL)
        build.wait()
    gone, alive = psutil.wait_procs(family, timeout=20)
    assert not alive, [p.cmdline() for p in alive]


def test_evaluating_a_missing_dataset_is_one_line(tmp_path):
    result = runner.invoke(app, ["evaluate", "--data", str(tmp_path / "nothing"), "--out", str(tmp_path / "ev")])
    assert result.exit_code == 2
    assert one_error_line(result) == f"error: {tmp_path / 'nothing'}: no samples in split 'test'"


def test_os_errors_name_the_path_and_the_cause():
    full = OSError(28, "No space left on device", "data/negative/neg-000001-w0.npz")
    assert one_line(full) == "data/negative/neg-000001-w0.npz: No space left on device"
    moved = IsADirectoryError(21, "Is a directory", "out.json.tmp", None, "out.json")
    assert one_line(moved) == "out.json.tmp -> out.json: Is a directory"
    assert one_line("a\nb\x1b[31m") == "a\\nb\\x1b[31m"
