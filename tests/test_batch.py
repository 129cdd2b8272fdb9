"""Archive-scale predict: lazy inputs, a Dask cluster, Parquet and JSON outputs that survive.

The light curves are simulated Kepler quarters (``exoperiod.learning.simulate``) written as .npz
and lightkurve FITS files; the reference is the single-process ``predict_paths``.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from distributed.diagnostics.plugin import WorkerPlugin
from typer.testing import CliRunner

from exoperiod.cli import app
from exoperiod.learning.simulate import simulate_star
from exoperiod.search.batch import PredictOptions, dask_executor, local_cluster, predict_archive
from exoperiod.search.inputs import iter_inputs
from exoperiod.search.outputs import JOURNAL_NAME, read_results
from exoperiod.search.predict import predict_paths

N_LIGHTCURVES = 20
OPTIONS = PredictOptions(top_k=2, max_planets=1)
CLI_OPTIONS = ["--top-k", "2", "--max-planets", "1"]
SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """20 simulated quarters (every fourth a FITS file) and one broken file."""
    folder = tmp_path_factory.mktemp("archive")
    for seed in range(N_LIGHTCURVES):
        lc, _ = simulate_star(seed, f"SIM-{seed}")
        if seed % 4 == 3:
            lc.to_fits(folder / f"sim{seed:02d}.fits")
        else:
            np.savez(folder / f"sim{seed:02d}.npz", time=lc.time.value, flux=lc.flux.value,
                     flux_err=lc.flux_err.value)
    (folder / "broken.npz").write_bytes(b"not an npz")
    return folder


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, untrained_model) -> Path:
    path = tmp_path_factory.mktemp("model") / "model.pt"
    untrained_model.save(path)
    return path


@pytest.fixture(scope="module")
def reference(archive, model_file) -> list[dict]:
    """The single-process predictions, in input order."""
    predictions = predict_paths([archive], model_file, top_k=OPTIONS.top_k, max_planets=OPTIONS.max_planets)
    return [p.to_dict() for p in predictions]


@pytest.fixture(scope="module")
def cluster():
    """The local Dask cluster that ``--workers 2`` starts."""
    from distributed import Client

    with local_cluster(2) as local, Client(local, set_as_default=False) as client:
        yield local, client


def _without_timing(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in ("timing_seconds", "index")}


def _assert_parquet_matches(results: Path | pd.DataFrame, reference: list[dict]) -> None:
    """One row per input, each equal (bit for bit) to the single-process prediction."""
    rows = results if isinstance(results, pd.DataFrame) else read_results(results)
    assert list(rows["input"]) == [r["input"] for r in reference]
    assert list(rows["index"]) == list(range(len(reference)))
    for (_, row), ref in zip(rows.iterrows(), reference):
        assert row["error"] == ref["error"]
        assert list(row["periods_days"]) == ref["periods"]
        # Parquet gives list columns (transit times) back as arrays.
        assert [{k: list(v) if isinstance(v, np.ndarray) else v for k, v in c.items()}
                for c in row["candidates"]] == ref["candidates"]
        assert list(row["notes"]) == ref["notes"]
        if ref["error"] is None:
            assert list(row["bin_probabilities"]) == ref["bin_probabilities"]
            assert row["timing_seconds"]["wall"] > 0
        else:
            assert row["bin_probabilities"] is None


@pytest.mark.slow
def test_a_cluster_of_two_matches_one_process(archive, model_file, reference, cluster, tmp_path):
    out, json_out = tmp_path / "results.parquet", tmp_path / "results.json"
    summary = predict_archive([archive], model_file, OPTIONS, scheduler=cluster[0].scheduler_address, out=out,
                              json_out=json_out, rows_per_part=6)
    assert (summary.predicted, summary.failed, summary.skipped) == (N_LIGHTCURVES, 1, 0)
    assert summary.dashboard and summary.dashboard.startswith("http")
    _assert_parquet_matches(out, reference)
    assert len(list(out.glob("part-*.parquet"))) == 4  # 21 rows, 6 per part
    assert (out / JOURNAL_NAME).read_bytes() == b""
    assert [_without_timing(r) for r in json.loads(json_out.read_text())] == [_without_timing(r) for r in reference]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json", "results.json.jsonl", "results.parquet"]


@pytest.mark.slow
def test_a_killed_worker_has_its_inputs_retried_and_the_run_completes(archive, model_file, reference, cluster,
                                                                     tmp_path):
    local, client = cluster
    out = tmp_path / "results.parquet"
    victim = next(iter(client.run(os.getpid).values()))
    killed = []

    def kill_once(row: dict) -> None:
        if not killed:  # the victim is busy with its next input: in-flight work is lost
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)

    summary = predict_archive([archive], model_file, OPTIONS, scheduler=local.scheduler_address, out=out,
                              on_result=kill_once)
    assert killed and victim not in client.run(os.getpid).values()
    assert summary.predicted + summary.failed == N_LIGHTCURVES + 1
    _assert_parquet_matches(out, reference)


def _journal_rows(folder: Path) -> int:
    journal = folder / JOURNAL_NAME
    return journal.read_bytes().count(b"\n") if journal.is_file() else 0


def _journal_inputs(journal: Path) -> set[str]:
    return {json.loads(line)["input"] for line in journal.read_text().splitlines()}


class _DiesOnPoison(WorkerPlugin):
    """A Dask worker plugin: the worker process dies, as an out-of-memory kill would, when
    it predicts an input whose name has "poison" in it (re-installed on restarted workers)."""

    def setup(self, worker) -> None:
        from exoperiod.search import batch

        predict_row = batch._predict_row

        def dying(index: int, path: str, *args):
            if "poison" in path:
                os._exit(1)
            return predict_row(index, path, *args)

        batch._predict_row = dying


@pytest.mark.slow
def test_an_input_that_kills_its_workers_becomes_an_error_row_and_its_task_mates_are_predicted(
        archive, model_file, reference, tmp_path):
    import dask
    from distributed import Client

    poison = tmp_path / "poison.npz"
    poison.write_bytes(next(archive.glob("*.npz")).read_bytes())
    # No retries on other workers: the first death of a task counts, which keeps the test short.
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), local_cluster(2) as local, \
            Client(local, set_as_default=False) as client:
        client.register_plugin(_DiesOnPoison(), name="dies-on-poison")
        out = tmp_path / "results.parquet"
        summary = predict_archive([archive, poison], model_file, OPTIONS, scheduler=local.scheduler_address,
                                  out=out)
    assert (summary.predicted, summary.failed) == (N_LIGHTCURVES, 2)
    rows = read_results(out)
    assert list(rows["index"]) == list(range(N_LIGHTCURVES + 2))
    assert "died" in rows["error"].iloc[-1] and rows["input"].iloc[-1] == str(poison)
    _assert_parquet_matches(rows.iloc[:-1], reference)


@pytest.mark.slow
def test_a_killed_run_resumes_without_duplicates_or_losses(archive, model_file, reference, tmp_path):
    out, json_out = tmp_path / "results.parquet", tmp_path / "results.json"
    command = [sys.executable, "-m", "exoperiod.cli", "predict", str(archive), "--model", str(model_file),
               *CLI_OPTIONS, "--out", str(out), "--json", str(json_out)]
    env = {**os.environ, "PYTHONPATH": SRC}
    first = subprocess.Popen([*command, "--workers", "2"], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while _journal_rows(out) < 5 and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    os.killpg(first.pid, signal.SIGKILL)  # the driver and its workers, as a crash or `kill -9` would
    first.communicate()
    assert not json_out.exists()
    # Both journals hold a row (the kill can fall between the two writes): not predicted again.
    done_before = _journal_inputs(out / JOURNAL_NAME) & _journal_inputs(tmp_path / "results.json.jsonl")
    assert 5 <= len(done_before) < N_LIGHTCURVES, "the run was not killed mid-way"

    # Resumed in this process this time: the outputs do not depend on where the work ran.
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert second.returncode == 0, second.stderr
    printed = [line.split(": ")[0] for line in second.stdout.splitlines() if not line.startswith("    note:")]
    assert sorted(printed) == [r["input"] for r in reference if r["error"] is None and r["input"] not in done_before]
    _assert_parquet_matches(out, reference)
    assert [_without_timing(r) for r in json.loads(json_out.read_text())] == [_without_timing(r) for r in reference]

    third = subprocess.run([*command, "--workers", "2"], env=env, capture_output=True, text=True, timeout=180)
    assert third.returncode == 0 and "all 21 inputs were already done" in third.stderr
    assert "Dask dashboard" not in third.stderr  # nothing to do: no cluster started
    _assert_parquet_matches(out, reference)


def test_json_to_a_folder_is_one_line_before_any_work(archive, model_file, tmp_path):
    result = CliRunner().invoke(app, ["predict", str(archive), "--model", str(model_file), "--json", str(tmp_path)])
    assert result.exit_code == 2
    assert f"{tmp_path}: is a folder" in " ".join(result.output.split()) and "Traceback" not in result.output


def test_a_full_disk_is_one_line_and_leaves_no_half_written_json(archive, model_file, tmp_path, monkeypatch):
    def no_space(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("exoperiod.search.outputs.os.replace", no_space)
    json_out = tmp_path / "out.json"
    result = CliRunner().invoke(app, ["predict", str(archive / "sim00.npz"), "--model", str(model_file),
                                      *CLI_OPTIONS, "--json", str(json_out)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"{json_out}: cannot write (No space left on device)" in " ".join(result.output.split())
    # The result is kept in the journal for the next run; no JSON, no temporary file.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json.jsonl"]


def test_inputs_are_lazy_sorted_and_take_lists_and_globs(tmp_path, monkeypatch):
    for name in ("b.fits", "a.npz", "notes.txt", "b/c.csv", "b.d/e.fits", ".hidden/f.fits", "q/r/s.fits"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    folder = [str(tmp_path / n) for n in ("a.npz", "b.fits", "b/c.csv", "b.d/e.fits", "q/r/s.fits")]
    assert list(iter_inputs([tmp_path])) == sorted([*folder, str(tmp_path / ".hidden/f.fits")])
    assert list(iter_inputs([str(tmp_path / "**" / "*.fits")])) == [str(tmp_path / n) for n in
                                                                     ("b.d/e.fits", "b.fits", "q/r/s.fits")]
    assert list(iter_inputs([str(tmp_path / "b*")])) == [str(tmp_path / n) for n in ("b.d/e.fits", "b.fits", "b/c.csv")]
    listing = tmp_path / "list.txt"
    listing.write_text(f"# inputs\n{tmp_path / 'a.npz'}\n\n  q  \nmissing.fits\n")
    monkeypatch.chdir(tmp_path)
    inputs = iter_inputs([f"@{listing}"])
    assert not isinstance(inputs, list)
    assert list(inputs) == [str(tmp_path / "a.npz"), "q/r/s.fits", "missing.fits"]
    with pytest.raises(FileNotFoundError, match="nope.txt: input list not found"):
        list(iter_inputs(["@nope.txt"]))


@pytest.mark.slow
def test_a_dataset_built_on_the_cluster_is_the_one_built_here(cluster, tmp_path):
    from exoperiod.config import config_from_dict
    from exoperiod.learning.datasets import build_datasets

    digests = []
    for name, engine in (("here", None), ("cluster", cluster[0].scheduler_address)):
        config = config_from_dict({"output_root": str(tmp_path / name), "synthetic_samples_count": 4})
        with dask_executor(scheduler=engine) if engine else nullcontext((None, 1)) as (pool, slots):
            summary = build_datasets(config, only=["synthetic"], workers=slots, pool=pool)
        assert summary.datasets[0].written >= 4
        folder = config.dataset_dir("synthetic")
        digests.append({p.name: p.read_bytes() for p in sorted(folder.iterdir())
                        if p.suffix == ".npz" or p.name == "metadata.csv"})
    assert digests[0] == digests[1]
    made_on_cluster = cluster[1].run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.task_prefixes))
    assert "make_samples" in made_on_cluster
