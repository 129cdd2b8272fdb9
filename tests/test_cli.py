"""The command line: help, one-line errors, exit codes, JSON output."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from exoperiod.cli import app

runner = CliRunner()
KEPLER62_Q13 = "lightcurves/kepler/9002278/kplr009002278-2012179063303_llc.fits"


def test_help_lists_the_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("build-dataset", "pack-dataset", "train", "predict", "evaluate", "run"):
        assert command in result.output


def test_a_bad_config_is_one_line_not_a_traceback(tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text(json.dumps({"lightcurve_length": 4096, "colour": "blue"}))
    result = runner.invoke(app, ["build-dataset", "--config", str(bad)])
    assert result.exit_code == 2
    assert "colour: unknown key" in result.output and "Traceback" not in result.output


@pytest.fixture()
def model_file(tmp_path, untrained_model):
    path = tmp_path / "model.pt"
    untrained_model.save(path)
    return path


def test_predict_goes_on_after_a_bad_file_and_writes_json(tmp_path, shared_data, model_file):
    broken = tmp_path / "broken.fits"
    broken.write_bytes((shared_data / KEPLER62_Q13).read_bytes()[:20000])
    out = tmp_path / "out.json"
    good = str(shared_data / KEPLER62_Q13)
    result = runner.invoke(app, ["predict", str(broken), good, "--model", str(model_file), "--json", str(out),
                                 "--max-planets", "1"])
    assert result.exit_code == 0, result.output
    records = json.loads(out.read_text())
    assert [r["input"] for r in records] == [str(broken), good]
    assert records[0]["error"] and "broken.fits" in records[0]["error"] and records[0]["periods"] == []
    assert records[1]["error"] is None and len(records[1]["bin_probabilities"]) == 100


def test_predict_fails_when_nothing_could_be_processed(tmp_path, model_file):
    broken = tmp_path / "broken.csv"
    broken.write_text("a,b\n1,2\n")
    result = runner.invoke(app, ["predict", str(broken), "--model", str(model_file)])
    assert result.exit_code == 1
    assert "broken.csv" in result.output


def test_a_truncated_model_is_one_line(tmp_path, model_file):
    cut = tmp_path / "cut.pt"
    cut.write_bytes(model_file.read_bytes()[:1000])
    result = runner.invoke(app, ["predict", str(tmp_path), "--model", str(cut)])
    assert result.exit_code == 2 and "cut.pt" in result.output and "Traceback" not in result.output
