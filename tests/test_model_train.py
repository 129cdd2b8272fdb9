"""The period model: training, resuming, determinism, model files, and the shipped model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from exoperiod import PeriodModel
from exoperiod.config import load_config
from exoperiod.grid import PeriodGrid, period_weights
from exoperiod.learning.inject import Planet, Star, inject_transits
from exoperiod.learning.train import TrainSettings, _rank_loss, train
from exoperiod.search.model import ModelLoadError
from exoperiod.search.predict import peak_probability
from exoperiod.search.readers import read_lightcurve

QUIET_NON_HOST = "lightcurves/kepler/1430163/kplr001430163-2010355172524_llc.fits"


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    from exoperiod.learning.datasets import build_datasets

    root = tmp_path_factory.mktemp("data")
    config = load_config().model_copy(update={
        "output_root": str(root), "synthetic_samples_count": 160, "negative_sample_count": 60})
    build_datasets(config, source="simulated", only=("negative", "synthetic"), workers=1)
    return config, root


SETTINGS = TrainSettings(epochs=2, samples_per_epoch=192, batch_size=32, lr=1e-2)


class _Interrupt(Exception):
    pass


def _stop_after_first_epoch(stage, done, total, metrics):
    if stage == "epoch" and done == 1:
        raise _Interrupt


def test_tiny_training_run_learns_and_an_interrupted_run_resumes_to_the_same_model(tiny_dataset, tmp_path):
    config, root = tiny_dataset
    model = train(config, root, tmp_path / "full", SETTINGS)
    metrics = pd.read_csv(tmp_path / "full" / "metrics.csv")
    assert list(metrics["epoch"]) == [1, 2]
    assert metrics["train_loss"].iloc[1] < metrics["train_loss"].iloc[0]
    assert metrics["val_loss"].iloc[1] < 0.69  # below an untrained sigmoid's log(2)
    assert (tmp_path / "full" / "curves.png").stat().st_size > 10_000
    assert model.card["n_train"] > 0 and "val_top1" in model.card["metrics"]

    with pytest.raises(_Interrupt):
        train(config, root, tmp_path / "cut", SETTINGS, progress=_stop_after_first_epoch)
    assert list(pd.read_csv(tmp_path / "cut" / "metrics.csv")["epoch"]) == [1]
    resumed = train(config, root, tmp_path / "cut", SETTINGS, resume=True)
    again = pd.read_csv(tmp_path / "cut" / "metrics.csv")
    columns = ["epoch", "train_loss", "val_loss", "val_top1", "val_top3"]
    pd.testing.assert_frame_equal(again[columns], metrics[columns])
    for (name, x), (_, y) in zip(model.net.state_dict().items(), resumed.net.state_dict().items()):
        assert torch.equal(x, y), name


def test_truncated_or_foreign_model_files_fail_clearly(tmp_path, untrained_model):
    path = tmp_path / "model.pt"
    untrained_model.save(path)
    assert PeriodModel.load(path).grid == untrained_model.grid
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ModelLoadError) as err:
        PeriodModel.load(truncated)
    assert "truncated.pt" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ModelLoadError, match="trained on grid"):
        PeriodModel.load(path, grid=PeriodGrid(1.0, 20.0, 50))
    not_a_model = tmp_path / "weights.pt"
    torch.save({"w": torch.zeros(3)}, not_a_model)
    with pytest.raises(ModelLoadError, match="not an exoperiod model"):
        PeriodModel.load(not_a_model)


def test_predict_proba_shapes(untrained_model):
    # The coherent search takes a series of any length: a window, or 500 cells (10 days).
    n = untrained_model.config.lightcurve_length
    bins = untrained_model.grid.bins
    noise = np.random.default_rng(0).standard_normal((3, n))
    assert untrained_model.predict_proba(noise[0]).shape == (bins,)
    assert untrained_model.predict_proba(noise).shape == (3, bins)
    assert untrained_model.predict_proba(noise[0, :500]).shape == (bins,)


def test_shipped_model_finds_an_injected_transit_in_a_real_quarter(shipped_model, shared_data):
    lc = read_lightcurve(shared_data / QUIET_NON_HOST)
    star = Star(radius_rsun=1.0, mass_msun=1.0, teff_k=5800, logg_cgs=4.44)
    for period in (2.7, 6.3, 14.2):
        planet = Planet(period_days=period, t0_days=float(lc.time.value[0]) + 1.1, rp_rs=0.03, impact=0.2)
        proba = shipped_model.predict_proba(inject_transits(lc, [planet], star))
        top = shipped_model.grid.index(period)
        assert proba.argmax() == top, period
        # Soft labels share a planet between its bin and its neighbours: judge the peak
        # (the candidate's probability) against the bins away from it.
        far = np.r_[proba[:max(top - 2, 0)], proba[top + 3:]]
        assert peak_probability(proba, top) > 0.3 and far.max() < 0.1, period


def test_shipped_model_card_documents_its_training(shipped_model):
    card = shipped_model.card
    assert card["command"].startswith("exoperiod train --preset default")
    # The current recipe's validation light curves (8 days to 17 quarters, total SNR from 4).
    assert card["metrics"]["val_top1"] > 0.6
    assert card["train_seconds"] > 0


def test_two_processes_under_torchrun_train_the_same_model_as_one(tiny_dataset, tmp_path):
    # DistributedDataParallel on gloo: each process takes half of every batch and the
    # gradients are averaged, so one epoch on 2 processes follows one process up to the
    # order of floating-point sums (and the duration loss, a mean over each half's planets).
    import json
    import os
    import subprocess
    import sys

    config, root = tiny_dataset
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config.model_dump(mode="json", exclude={"username", "key"})))
    args = ["train", "--config", str(config_file), "--data", str(root), "--epochs", "2", "--samples-per-epoch", "128"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = subprocess.run([sys.executable, "-m", "exoperiod.cli", *args, "--out", str(tmp_path / "one")],
                         capture_output=True, text=True, env=env, timeout=600)
    assert one.returncode == 0, one.stderr[-2000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "exoperiod.cli", *args, "--out", str(tmp_path / "two")],
                         capture_output=True, text=True, env=env, timeout=600)
    assert two.returncode == 0, two.stderr[-2000:]
    a, b = (pd.read_csv(tmp_path / run / "metrics.csv") for run in ("one", "two"))
    assert list(b["epoch"]) == [1, 2]
    np.testing.assert_allclose(b["val_loss"], a["val_loss"], rtol=0.05)
    one_model, two_model = (PeriodModel.load(tmp_path / run / "model.pt") for run in ("one", "two"))
    assert two_model.card["n_train"] == one_model.card["n_train"]
    for (name, x), (_, y) in zip(one_model.net.state_dict().items(), two_model.net.state_dict().items()):
        # AdamW steps of ~lr (3e-3) per weight: the small gradient differences stay within a few.
        np.testing.assert_allclose(y.numpy(), x.numpy(), atol=0.02, err_msg=name)


def test_rank_loss_rewards_the_planets_own_bin_and_ignores_planet_free_rows():
    grid = PeriodGrid(1.0, 40.0, 20)
    labels = np.zeros((2, 20), np.float32)
    labels[0] = period_weights(grid, [5.0]).weights
    own = int(np.argmax(labels[0]))
    peaked = torch.zeros(2, 20)
    at_own, at_neighbour = peaked.clone(), peaked.clone()
    at_own[0, own], at_neighbour[0, own + 1] = 5.0, 5.0
    # The neighbour carries ~0.16 of the soft label, but the sharpened target leaves it
    # almost nothing: a peak one bin off costs nearly as much as no peak at all.
    assert _rank_loss(at_own, labels) < 0.1 * _rank_loss(at_neighbour, labels)
    assert _rank_loss(at_neighbour, labels) > 0.9 * _rank_loss(peaked, labels)
    # A planet-free light curve says nothing about where a planet would be.
    at_own[1] = torch.randn(20) * 10
    assert _rank_loss(at_own, labels) == pytest.approx(_rank_loss(at_own[:1], labels[:1]))
    assert _rank_loss(peaked[1:], labels[1:]).item() == 0.0



def test_the_rank_weight_flag_reaches_the_training_settings(tiny_dataset, tmp_path):
    import json

    from typer.testing import CliRunner

    from exoperiod.cli import app

    config, root = tiny_dataset
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config.model_dump(mode="json", exclude={"username", "key"})))
    result = CliRunner().invoke(app, ["train", "--config", str(config_file), "--data", str(root), "--epochs", "1",
                                      "--samples-per-epoch", "64", "--rank-weight", "0.1", "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output[-2000:]
    assert PeriodModel.load(tmp_path / "r" / "model.pt").card["settings"]["rank_weight"] == 0.1
