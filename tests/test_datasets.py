"""Dataset building: labels from the real KOI table and real Kepler files, simulated
negatives and synthetics, the output format, and resuming after kill -9."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from exoperiod.config import config_from_dict
from exoperiod.learning.datasets import (
    DatasetError,
    Negatives,
    Positives,
    Synthetics,
    build_datasets,
)
from exoperiod.learning.datasets.store import METADATA_COLUMNS

SRC = Path(__file__).resolve().parents[1] / "src"

# KOI periods (days) of the confirmed planets below 40 d of the stars in ../shared/data.
KOI_PERIODS = {
    "KIC 2307415": {"Kepler-356 b": 4.612674, "Kepler-356 c": 13.121622},
    "KIC 3102384": {"Kepler-454 b": 10.573751},
    "KIC 4139816": {"Kepler-235 b": 3.340219, "Kepler-235 c": 7.825022, "Kepler-235 d": 20.060363},
    "KIC 9002278": {"Kepler-62 b": 5.714897, "Kepler-62 c": 12.441800, "Kepler-62 d": 18.164073},
}


def _config(root: Path, **overrides):
    return config_from_dict({"output_root": str(root), **overrides})


def _load(folder: Path, sample_id: str) -> dict[str, np.ndarray]:
    with np.load(folder / f"{sample_id}.npz", allow_pickle=False) as z:
        return {key: z[key] for key in z.files}


def _peak_bins(weights: np.ndarray, n: int) -> list[int]:
    return sorted(int(i) for i in np.argsort(-weights)[:n])


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())
            if p.suffix == ".npz" or p.name == "metadata.csv"}


@pytest.fixture(scope="module")
def local_build(tmp_path_factory, shared_data):
    """Positives, negatives and synthetics from the real files of ../shared/data."""
    root = tmp_path_factory.mktemp("local")
    config = _config(root, koi_table=str(shared_data / "tables" / "koi_cumulative.csv"),
                     synthetic_samples_count=8)
    summary = build_datasets(config, source="local", local_dir=shared_data)
    return config, summary


def test_positive_labels_peak_at_the_koi_periods(local_build):
    config, summary = local_build
    grid = config.grid()
    folder = config.dataset_dir("positive")
    meta = pd.read_csv(folder / "metadata.csv")
    for star_id, planets in KOI_PERIODS.items():
        rows = meta[meta["star_id"] == star_id]
        assert len(rows) >= 1, star_id
        expected = sorted(grid.index(p) for p in planets.values())
        for row in rows.itertuples():
            labelled = json.loads(row.planets)
            assert {p["name"]: p["period_days"] for p in labelled} == pytest.approx(planets, abs=1e-5)
            assert all(p["injected"] is False for p in labelled)
            sample = _load(folder, row.sample_id)
            assert _peak_bins(sample["arr_1"], len(planets)) == expected, row.sample_id
            assert sample["arr_1"][expected].min() > 0.45
    # The Q1-Q17 light curves give one sample per ~84-day window.
    assert (meta["star_id"] == "KIC 4139816").sum() >= 16
    assert summary.datasets[0].written == len(meta)


def test_positive_metadata_describes_each_window(local_build):
    config, _ = local_build
    meta = pd.read_csv(config.dataset_dir("positive") / "metadata.csv")
    assert list(meta.columns) == list(METADATA_COLUMNS)
    row = meta[meta["sample_id"] == "pos-KIC9002278-Q13-w0"].iloc[0]
    assert (row.mission, row.quarter_or_window, row.source, row.kind) == ("Kepler", "Q13", "local", "positive")
    assert row.window_start_days == pytest.approx(1182.7, abs=0.5)  # Q13 starts at BKJD 1182.7
    planets = {p["name"]: p for p in json.loads(row.planets)}
    # Per-window SNR from the KOI depth and duration: Kepler-62 b is clear, c is faint.
    assert planets["Kepler-62 b"]["snr"] > 10 > planets["Kepler-62 c"]["snr"] > 1
    assert planets["Kepler-62 b"]["depth_ppm"] == pytest.approx(425.9)
    # Every sample of a star is in the star's split.
    assert meta.groupby("star_id")["split"].nunique().max() == 1
    failures = pd.read_csv(config.dataset_dir("positive") / "failures.csv")
    # Kepler-6 and Kepler-2 are 9.7-day Q0 files: too short for a window.
    assert set(failures["star_id"]) == {"KIC 10874614", "KIC 10666592"}
    assert failures["reason"].str.contains("fewer than min_lightcurve_length").all()


def test_real_negatives_are_non_kois_with_zero_labels(local_build, shared_data):
    config, _ = local_build
    folder = config.dataset_dir("negative")
    meta = pd.read_csv(folder / "metadata.csv")
    koi = pd.read_csv(shared_data / "tables" / "koi_cumulative.csv", comment="#")
    kepids = {int(s.split()[1]) for s in meta["star_id"]}
    assert kepids and not kepids & set(koi["kepid"])
    assert {5110407, 9726699, 10002792, 1430163} <= kepids
    assert (meta["n_planets"] == 0).all()
    for sample_id in meta["sample_id"]:
        assert not _load(folder, sample_id)["arr_1"].any()


def test_synthetics_from_real_stars_are_labelled_with_their_injections(local_build):
    config, _ = local_build
    grid = config.grid()
    folder = config.dataset_dir("synthetic")
    meta = pd.read_csv(folder / "metadata.csv")
    negatives = set(pd.read_csv(config.dataset_dir("negative") / "metadata.csv")["star_id"])
    assert set(meta["star_id"]) <= negatives and meta["star_index"].nunique() == 8
    for row in meta.itertuples():
        planets = json.loads(row.planets)
        assert 1 <= len(planets) <= config.planets_per_synthetic_star
        assert all(p["injected"] and p["rp_rs"] > 0 and p["depth_ppm"] > 0 for p in planets)
        weights = _load(folder, row.sample_id)["arr_1"]
        assert _peak_bins(weights, len(planets)) == sorted(grid.index(p["period_days"]) for p in planets)


def test_simulated_negatives_and_synthetics(tmp_path):
    config = _config(tmp_path, negative_sample_count=4, synthetic_samples_count=6, planets_per_synthetic_star=3)
    calls = []
    summary = build_datasets(config, progress=lambda *call: calls.append(call))
    positive, negative, synthetic = summary.datasets
    assert positive.written == 0 and "need real light curves" in positive.note
    assert (negative.written, synthetic.written, summary.failed) == (4, 6, 0)
    assert calls[-1] == ("synthetic", 6, 6) and ("negative", 4, 4) in calls
    grid = config.grid()
    neg = pd.read_csv(config.dataset_dir("negative") / "metadata.csv")
    syn = pd.read_csv(config.dataset_dir("synthetic") / "metadata.csv")
    assert neg["sample_id"].tolist() == [f"neg-{i:06d}-w0" for i in range(4)]
    for row in neg.itertuples():
        sample = _load(config.dataset_dir("negative"), row.sample_id)
        assert not sample["arr_1"].any()
        assert sample["arr_0"].dtype == np.float32 and sample["arr_0"].shape == (config.lightcurve_length,)
        assert sample["mask"].dtype == bool and sample["mask"].mean() > 0.8
        assert str(sample["sample_id"]) == row.sample_id and str(sample["star_id"]) == row.star_id
        assert not sample["arr_0"][~sample["mask"]].any()  # gaps are zeros
    counts = set()
    for row in syn.itertuples():
        planets = json.loads(row.planets)
        counts.add(len(planets))
        weights = _load(config.dataset_dir("synthetic"), row.sample_id)["arr_1"]
        assert weights.shape == (grid.bins,) and weights.dtype == np.float32
        assert _peak_bins(weights, len(planets)) == sorted(grid.index(p["period_days"]) for p in planets)
        assert all(p["snr"] > 0 and p["duration_hours"] > 0 for p in planets)
    assert len(counts) > 1  # 1..3 planets per star
    # Negative i and synthetic i are the same simulated star, in the same split.
    merged = neg.merge(syn, on="star_index", suffixes=("_n", "_s"))
    assert (merged["star_id_n"] == merged["star_id_s"]).all() and (merged["split_n"] == merged["split_s"]).all()
    assert merged["cdpp6_ppm_n"].tolist() == merged["cdpp6_ppm_s"].tolist()


def test_rebuild_skips_finished_samples_and_cleans_up(tmp_path):
    config = _config(tmp_path, synthetic_samples_count=5)
    first = Synthetics(config).build()
    folder = config.dataset_dir("synthetic")
    before = _digests(folder)
    (folder / "syn-000001-w0.tmp.npz").write_bytes(b"half a file")  # a kill mid-write
    (folder / "syn-999999-w0.npz").write_bytes(b"not claimed by any star")
    second = Synthetics(config).build()
    assert (first.written, second.written, second.skipped) == (5, 0, 5)
    assert _digests(folder) == before
    assert not list(folder.glob("*.tmp*")) and not (folder / "journal.jsonl").exists()
    # Fewer stars asked for: the dataset shrinks to exactly what that build would make.
    Synthetics(config.model_copy(update={"synthetic_samples_count": 3})).build()
    assert sorted(p.name for p in folder.glob("*.npz")) == [f"syn-{i:06d}-w0.npz" for i in range(3)]


def test_output_does_not_depend_on_worker_count(tmp_path):
    one = _config(tmp_path / "one", synthetic_samples_count=6)
    two = _config(tmp_path / "two", synthetic_samples_count=6)
    Synthetics(one).build(workers=1)
    Synthetics(two).build(workers=2)
    assert _digests(one.dataset_dir("synthetic")) == _digests(two.dataset_dir("synthetic"))


_BUILD_SCRIPT = """
import sys
from exoperiod.config import load_config
from exoperiod.learning.datasets import Synthetics
Synthetics(load_config(sys.argv[1])).build()
"""


def test_kill_and_resume_gives_the_same_files(tmp_path):
    """kill -9 in the middle of a build, build again: the same bytes as an unbroken build."""
    count = 60
    reference = _config(tmp_path / "reference", synthetic_samples_count=count)
    Synthetics(reference).build()
    killed = _config(tmp_path / "killed", synthetic_samples_count=count)
    config_path = tmp_path / "killed.json"
    config_path.write_text(killed.model_dump_json())
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    process = subprocess.Popen([sys.executable, "-c", _BUILD_SCRIPT, str(config_path)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    folder = killed.dataset_dir("synthetic")
    journal = folder / "journal.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if journal.is_file() and journal.read_text().count("\n") >= 10:
            break
        time.sleep(0.005)
    assert process.poll() is None, "the build ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (folder / "metadata.csv").exists()  # killed mid-build
    written = len(list(folder.glob("syn-*.npz")))
    assert 10 <= written < count
    summary = Synthetics(killed).build()
    assert summary.skipped >= 10 and summary.skipped + summary.written == count
    assert _digests(folder) == _digests(reference.dataset_dir("synthetic"))
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        p.name for p in reference.dataset_dir("synthetic").iterdir())


def test_folder_built_with_other_settings_is_refused(tmp_path):
    config = _config(tmp_path, negative_sample_count=2)
    Negatives(config).build()
    with pytest.raises(DatasetError) as err:
        Negatives(config.model_copy(update={"seed": 7})).build()
    assert "built with seed=42, now 7" in str(err.value) and "\n" not in str(err.value)


def test_another_star_list_replaces_the_stale_stars(tmp_path, shared_data):
    """Resuming with another star catalogue must not keep samples of stars it lacks."""
    koi = str(shared_data / "tables" / "koi_cumulative.csv")
    Negatives(_config(tmp_path, koi_table=koi, negative_sample_count=2), source="local",
              local_dir=shared_data).build()
    catalog = tmp_path / "stars.csv"
    catalog.write_text("kepid,nkoi\n9726699,0\n10001893,0\n")
    config = _config(tmp_path, koi_table=koi, negative_sample_count=2, star_catalog_files=[str(catalog)])
    Negatives(config, source="local", local_dir=shared_data).build()
    folder = config.dataset_dir("negative")
    meta = pd.read_csv(folder / "metadata.csv")
    assert set(meta["star_id"]) == {"KIC 9726699", "KIC 10001893"}
    assert sorted(p.stem for p in folder.glob("*.npz")) == sorted(meta["sample_id"])


def test_user_mistakes_are_one_line_errors(tmp_path, shared_data):
    config = _config(tmp_path, koi_table=str(shared_data / "tables" / "koi_cumulative.csv"))
    with pytest.raises(DatasetError, match=r"^unknown source 'kaggle' \(known: simulated, local, mast\)$"):
        Negatives(config, source="kaggle")
    with pytest.raises(DatasetError, match=r"^unknown dataset\(s\) positives"):
        build_datasets(config, only=["positives"])
    with pytest.raises(DatasetError, match="positives need real light curves"):
        Positives(config, source="simulated")
    with pytest.raises(DatasetError, match="no light-curve files found"):
        Negatives(config, source="local", local_dir=tmp_path / "empty").build()


def test_training_reads_the_built_datasets(tmp_path):
    """The consumer's view: exoperiod.learning.train loads the samples of a split."""
    train = pytest.importorskip("exoperiod.learning.train")
    config = _config(tmp_path, negative_sample_count=3, synthetic_samples_count=10)
    build_datasets(config, only=("negative", "synthetic"))
    loaded = sum(len(train.load_split(tmp_path, config, split)) for split in ("train", "val", "test"))
    assert loaded == 13
