"""The command line as astronomers script it: --version, -v/-q, JSON and CSV to stdout,
--config, period ranges, table columns and time systems."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest
from astropy.table import Table
from typer.testing import CliRunner

import exoperiod
from exoperiod import read_lightcurve
from exoperiod.cli import app

runner = CliRunner()
WASP_18 = "lightcurves/tess/100100827/wasp18b.fits"
KEPLER62_Q13 = "lightcurves/kepler/9002278/kplr009002278-2012179063303_llc.fits"
FAST = ["--max-planets", "1", "--top-k", "1"]


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"exoperiod {exoperiod.__version__}"


def test_json_to_stdout_is_only_json_and_reports_wasp18_b_first(shared_data) -> None:
    result = runner.invoke(app, ["predict", str(shared_data / WASP_18), "--json", "-", *FAST])
    assert result.exit_code == 0, result.output
    (record,) = json.loads(result.stdout)
    assert record["periods"][0] == pytest.approx(0.9415, rel=1e-3)
    assert record["candidates"][0]["outside_grid"] is True
    # The human summary went to stderr, so stdout stays parseable.
    assert "outside the grid" in result.stderr


def test_csv_to_stdout_and_to_a_file(shared_data, tmp_path) -> None:
    result = runner.invoke(app, ["-q", "predict", str(shared_data / WASP_18), "--csv", "-", *FAST])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(io.StringIO(result.stdout))
    assert table.loc[0, "period_days"] == pytest.approx(0.9415, rel=1e-3)
    assert len(table.loc[0, "transit_times_btjd_or_bkjd"].split()) >= 25
    out = tmp_path / "cands.csv"
    assert runner.invoke(app, ["-q", "predict", str(shared_data / WASP_18), "--csv", str(out), *FAST]).exit_code == 0
    assert pd.read_csv(out).loc[0, "input"] == str(shared_data / WASP_18)


def test_quiet_prints_nothing_but_errors_and_verbose_logs(shared_data, tmp_path) -> None:
    quiet = runner.invoke(app, ["-q", "predict", str(shared_data / WASP_18), *FAST])
    assert quiet.exit_code == 0 and quiet.output == ""
    verbose = runner.invoke(app, ["-vv", "predict", str(shared_data / WASP_18), *FAST])
    assert "model shipped" in verbose.stderr and "wasp18b.fits:" in verbose.stderr  # INFO and DEBUG lines
    missing = runner.invoke(app, ["-q", "predict", str(tmp_path / "none.fits")])
    assert missing.exit_code == 1 and "none.fits: file not found" in missing.output


def test_period_range_restricts_the_output_and_is_checked(shared_data) -> None:
    result = runner.invoke(app, ["predict", str(shared_data / WASP_18), "--json", "-", "--period-min", "1.5",
                                 "--period-max", "3", *FAST])
    (record,) = json.loads(result.stdout)
    assert record["periods"] and all(1.5 <= p <= 3 for p in record["periods"])
    bad = runner.invoke(app, ["predict", str(shared_data / WASP_18), "--period-min", "3", "--period-max", "1"])
    assert bad.exit_code == 2 and "--period-min (3) must be below --period-max (1)" in bad.output


def test_predict_takes_a_config(shared_data, tmp_path) -> None:
    config = tmp_path / "grid.json"
    config.write_text(json.dumps({"distribution_params": {"period": {"min": 1, "max": 20, "bins": 50}}}))
    result = runner.invoke(app, ["predict", str(shared_data / WASP_18), "--config", str(config)])
    # The shipped model was trained on another grid: one line, no traceback.
    assert result.exit_code == 2 and "trained on grid" in result.output and "Traceback" not in result.output


def test_table_columns_and_time_system(shared_data, tmp_path) -> None:
    lc = read_lightcurve(shared_data / KEPLER62_Q13)
    path = tmp_path / "kepler62.ecsv"
    Table({"BJD": lc.time.value + 2454833.0, "F": lc.flux.value}, meta={"OBJECT": "KIC 9002278"}).write(path)
    result = runner.invoke(app, ["predict", str(path), "--json", "-", "--time-column", "BJD", "--flux-column", "F",
                                 "--time-system", "bjd", *FAST])
    assert result.exit_code == 0, result.output
    (record,) = json.loads(result.stdout)
    assert "time given as BJD: converted to BKJD (BJD - 2454833)" in record["notes"]
    assert record["periods"][0] == pytest.approx(18.164, rel=1e-3)
    bad = runner.invoke(app, ["predict", str(path), "--time-system", "hjd"])
    assert bad.exit_code == 2 and "time system must be one of bkjd, btjd, bjd, jd" in bad.output
