"""Dataset folders packed into Parquet shards: training reads them as it reads the folders,
flux and all round-trip, a killed pack resumes, and a bad store is one line."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from exoperiod.cli import app
from exoperiod.config import config_from_dict
from exoperiod.grid import period_weights
from exoperiod.learning.curves import write_curves
from exoperiod.learning.datasets import DatasetError, build_datasets
from exoperiod.learning.datasets.shards import STORE_FILE, pack_dataset, read_series
from exoperiod.learning.datasets.store import read_split
from exoperiod.learning.evaluate import evaluate_model, other_spacing
from exoperiod.learning.train import load_split

SPLITS = ("train", "val", "test")
#: Four samples a shard: several shards per split, and shards that span two kinds.
ROWS = 4


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """Fixed windows without features (negative, synthetic) and whole light curves with
    theirs, packed before anything else reads the folders."""
    root = tmp_path_factory.mktemp("data")
    config = config_from_dict({"output_root": str(root), "negative_sample_count": 3, "synthetic_samples_count": 10})
    build_datasets(config, only=("negative", "synthetic"))
    write_curves(config, 3, seed=1)
    before = _files(root)
    store = root.parent / "store"
    summary = pack_dataset(root, config, store, rows_per_shard=ROWS)
    assert _files(root) == before, "packing wrote into the dataset folders"
    return config, root, store, summary


def test_training_reads_the_store_as_it_reads_the_folders_without_the_flux(packed, monkeypatch):
    config, root, store, summary = packed
    assert summary.samples == {"train": 13, "val": 2, "test": 1} and summary.written == summary.shards == 6
    columns_read = []
    read_table = pq.read_table

    def spy(path, columns=None, **kwargs):
        if isinstance(path, Path) and path.is_relative_to(store):
            columns_read.append(columns)
        return read_table(path, columns=columns, **kwargs)

    monkeypatch.setattr(pq, "read_table", spy)
    for split in SPLITS:
        shards, folders = load_split(store, config, split), load_split(root, config, split)
        np.testing.assert_array_equal(shards.features, folders.features)
        assert shards.features.dtype == folders.features.dtype == np.float32
        np.testing.assert_array_equal(shards.labels, folders.labels)
        np.testing.assert_array_equal(shards.kind, folders.kind)
        np.testing.assert_array_equal(shards.snr, folders.snr)
        assert shards.true_bins == folders.true_bins
        assert len(shards.durations) == len(folders.durations)
        for (i, b, w), (j, c, v) in zip(shards.durations, folders.durations):
            assert (i, b) == (j, c)
            np.testing.assert_array_equal(w, v)
        for s, f in zip(shards.samples, folders.samples):
            assert s.path.parent == store / split and s.path.suffix == ".parquet"
            assert replace(s, path=f.path) == replace(f, noise_ppm=s.noise_ppm) and \
                (s.noise_ppm == f.noise_ppm or math.isnan(s.noise_ppm) and math.isnan(f.noise_ppm))
    assert {"curves", "negative", "synthetic"} <= set(load_split(store, config, "train").kind)
    assert columns_read and all(c is not None and "flux" not in c and "mask" not in c for c in columns_read)


def test_every_array_round_trips(packed):
    config, root, store, _ = packed
    for split in SPLITS:
        samples = read_split(root, config, split)
        table = pd.concat([pd.read_parquet(p) for p in sorted((store / split).glob("part-*.parquet"))],
                          ignore_index=True)
        assert list(table["sample_id"]) == [s.sample_id for s in samples]
        assert set(table["split"]) == {split}
        for sample, row, series in zip(samples, table.itertuples(), read_series(
                replace(s, path=store / split / f"part-{i // ROWS:05d}.parquet") for i, s in enumerate(samples))):
            with np.load(sample.path, allow_pickle=False) as z:
                np.testing.assert_array_equal(row.flux, z["arr_0"])
                np.testing.assert_array_equal(row.mask, z["mask"])
                np.testing.assert_array_equal(series[0], z["arr_0"])
                np.testing.assert_array_equal(series[1], z["mask"])
                assert series[1].dtype == bool
                np.testing.assert_array_equal(row.arr_1, z["arr_1"])
                assert row.star_id == str(z["star_id"]) and row.kind == sample.kind
                assert json.loads(row.planets) == sample.planets
                if sample.kind == "curves":
                    np.testing.assert_array_equal(row.arr_2, z["arr_2"])
                    np.testing.assert_array_equal(row.features, z["features"].ravel())
                    assert row.start_time_days == series[2] == float(z["start_time_days"])
                    assert row.cadence_days == float(z["cadence_days"])
                else:
                    assert row.arr_2 is None and series[2] is None and pd.isna(row.start_time_days)


def test_a_killed_pack_resumes_to_the_same_bytes(packed, tmp_path):
    config, root, store, _ = packed
    killed = tmp_path / "killed"
    shutil.copytree(store, killed)
    # Killed while writing the last training shard: its temporary file is there, the
    # shard and store.json are not.
    last = killed / "train" / "part-00003.parquet"
    last.unlink()
    (killed / STORE_FILE).unlink()
    stray = killed / "train" / ".part-00003.999-deadbeef.tmp.parquet"
    stray.write_bytes(b"half a shard")
    with pytest.raises(DatasetError, match="unfinished pack"):
        load_split(killed, config, "train")
    summary = pack_dataset(root, config, killed, rows_per_shard=ROWS)
    assert summary.written == 1
    assert _files(killed) == _files(store)
    ids = pd.read_parquet(killed / "train", columns=["sample_id"])["sample_id"]
    assert len(ids) == ids.nunique() == 13

    # Other rows per shard: other shards, none left over, the same samples.
    summary = pack_dataset(root, config, killed, rows_per_shard=5)
    assert sorted(p.name for p in (killed / "train").iterdir()) == [f"part-{i:05d}.parquet" for i in range(3)]
    assert list(pd.read_parquet(killed / "train", columns=["sample_id"])["sample_id"]) == list(ids)


def test_a_store_of_another_config_or_a_corrupt_shard_is_one_line(packed, tmp_path):
    config, root, store, _ = packed
    settings = config.model_dump()
    settings["distribution_params"]["period"]["bins"] = 50
    other = config_from_dict(settings)
    with pytest.raises(DatasetError, match=rf"^{store / STORE_FILE}: packed with grid .* the config gives") as err:
        load_split(store, other, "train")
    assert "\n" not in str(err.value)

    broken = tmp_path / "broken"
    shutil.copytree(store, broken)
    shard = broken / "train" / "part-00001.parquet"
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    with pytest.raises(DatasetError, match=rf"^{shard}: not a readable shard") as err:
        load_split(broken, config, "train")
    assert "\n" not in str(err.value)
    # Packing again replaces the broken shard.
    assert pack_dataset(root, config, broken, rows_per_shard=ROWS).written == 1


def test_evaluation_reads_the_series_from_the_shards(packed, untrained_model):
    config, root, store, _ = packed
    shards, folders = (evaluate_model(untrained_model, data, config, split="val", refine=True) for data in (store, root))
    assert shards.refined.n == folders.refined.n == 1
    for field in ("n_samples", "top1", "top3", "false_alarm"):
        assert getattr(shards, field) == getattr(folders, field)
    assert (shards.refined.top1, shards.refined.top3) == (folders.refined.top1, folders.refined.top3)


def test_the_command_line_packs_and_trains_on_the_shards(packed, tmp_path):
    config, root, _, _ = packed
    config_file = tmp_path / "config.json"
    config_file.write_text(config.model_dump_json())
    out, run = tmp_path / "shards", tmp_path / "run"
    runner = CliRunner()
    result = runner.invoke(app, ["pack-dataset", "--data", str(root), "--out", str(out), "--rows-per-shard", "8",
                                 "--config", str(config_file)])
    assert result.exit_code == 0, result.output
    assert "13 train, 2 val, 1 test samples in 4 shards (4 written)" in result.output
    result = runner.invoke(app, ["train", "--config", str(config_file), "--data", str(out), "--out", str(run),
                                 "--epochs", "1", "--samples-per-epoch", "16"])
    assert result.exit_code == 0, result.output
    assert (run / "model.pt").is_file() and (run / "metrics.csv").is_file()
    result = runner.invoke(app, ["pack-dataset", "--data", str(tmp_path / "nothing"), "--out", str(out),
                                 "--config", str(config_file)])
    assert result.exit_code == 2 and "no dataset folder" in result.output


def test_a_curve_written_on_another_duration_grid_is_packed_with_labels_on_the_store_s(tmp_path):
    # Curves written before the default duration grid became linear hold arr_2 on the log
    # grid, with the same number of bins: the store recomputes them from the planets.
    config = config_from_dict({"output_root": str(tmp_path / "data")})
    folder = write_curves(config, 2, seed=1)
    log = other_spacing(config.duration_grid())
    for path in folder.glob("*.npz"):
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        planets = [p["duration_hours"] for p in json.loads(pd.read_parquet(folder / "metadata.parquet")
                                                           .set_index("sample_id").loc[str(arrays["sample_id"]), "planets"])]
        arrays["arr_2"] = period_weights(log, planets).weights
        np.savez_compressed(path, **arrays)
    pack_dataset(tmp_path / "data", config, tmp_path / "store", rows_per_shard=ROWS)
    table = pd.concat(pd.read_parquet(p, columns=["sample_id", "planets", "arr_2"])
                      for p in sorted((tmp_path / "store").rglob("*.parquet")))
    assert len(table) == 2
    for _, row in table.iterrows():
        durations = [p["duration_hours"] for p in json.loads(row["planets"])]
        np.testing.assert_array_equal(row["arr_2"], period_weights(config.duration_grid(), durations).weights)
