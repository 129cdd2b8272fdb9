"""Evaluation metrics and report (exoperiod.learning.evaluate) and the BLS/TLS benchmark's core."""

from __future__ import annotations

import importlib.util
import itertools
import json
import math
import sys
from pathlib import Path

import lightkurve as lk
import numpy as np
import pytest

from exoperiod.config import Config, DistributionParams, PeriodDistribution, config_from_dict, load_config
from exoperiod.grid import PeriodGrid
from exoperiod.learning.datasets import build_datasets
from exoperiod.learning.evaluate import (
    EvaluationResult,
    bin_alias,
    bls_duration_hours,
    evaluate_model,
    false_alarm_rates,
    period_alias,
    period_recovered,
    recovery_by,
    reliability,
    tier_labels,
)

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "vs_bls_tls.py"
NON_HOST_Q7 = "lightcurves/kepler/1430163/kplr001430163-2010355172524_llc.fits"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    """20 simulated stars with and without injected planets (~1 s to build)."""
    root = tmp_path_factory.mktemp("data")
    config = load_config().model_copy(update={
        "output_root": str(root), "synthetic_samples_count": 20, "negative_sample_count": 20})
    build_datasets(config, source="simulated", only=("negative", "synthetic"))
    return config, root


@pytest.fixture(scope="module")
def evaluation(tiny_dataset, untrained_model, tmp_path_factory):
    config, root = tiny_dataset
    out = tmp_path_factory.mktemp("report")
    stages: list[tuple[str, int, int]] = []
    result = evaluate_model(untrained_model, root, config, split="train", out_dir=out,
                            progress=lambda *call: stages.append(call))
    return result, out, stages


# ------------------------------------------------------------------- evaluate_model


def _rates(result: EvaluationResult) -> list[float]:
    rows = [*result.by_snr, *result.by_period, *result.by_kind]
    return [result.top1, result.top3, result.alias_rate, *result.aliases.values(), *result.false_alarm.values(),
            result.calibration_soft.ece, result.calibration_hard.ece,
            *[r.top1 for r in rows], *[r.top3 for r in rows]]


def test_metrics_are_rates(evaluation):
    result, _, _ = evaluation
    assert result.n_samples == result.n_with_planet + result.n_negative > 0
    assert result.n_with_planet and result.n_negative
    for value in _rates(result):
        assert 0.0 <= value <= 1.0
    assert result.top1 <= result.top3
    assert sum(r.n for r in result.by_snr) == sum(r.n for r in result.by_period) == result.n_with_planet


def test_report_and_plots_are_written(evaluation):
    _, out, stages = evaluation
    report = (out / "report.md").read_text()
    pngs = ["recovery_vs_snr.png", "recovery_vs_period.png", "reliability.png", "false_alarm.png"]
    for name in pngs:
        assert (out / name).read_bytes()[:8] == PNG_MAGIC
        assert f"({name})" in report
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_samples"] > 0 and set(metrics["false_alarm"]) == {"0.1", "0.3", "0.5", "0.7", "0.9"}
    assert not [p for p in out.iterdir() if ".tmp" in p.name]
    assert {s for s, _, _ in stages} == {"load", "model", "report"}
    assert ("model", stages[-3][2], stages[-3][2]) in stages  # the model stage ends at its total


def test_refined_evaluation_sets_refined_and_bls_durations_beside_the_head(tiny_dataset, shipped_model, tmp_path):
    config, root = tiny_dataset
    result = evaluate_model(shipped_model, root, config, split="train", out_dir=tmp_path, refine=True)
    refined = result.refined
    # 20 simulated synthetics; the shipped model finds most of them at the right period.
    assert refined.n_duration >= 5
    assert 0.0 <= refined.bls_duration_top1 <= 1.0 and 0.0 <= refined.duration_top1 <= 1.0
    report = (tmp_path / "report.md").read_text()
    assert f"refined (limb-darkened fit, T14), top-1 period right ({refined.n_duration} planets)" in report
    assert "astropy BLS's best box at the same period, same planets" in report
    assert "`distribution_params.duration` (a linear grid of 1-20 h in 100 bins of 0.19 h)" in report
    assert (f"refined, on a log grid of 1-20 h in 100 bins of 3 % instead, same planets | "
            f"{100 * refined.duration_top1_other_spacing:.1f} %") in report
    # The SNR tiers split the same planets: their counts and hits add up to the totals.
    tiers = refined.duration_by_snr
    assert sum(row.n for row in tiers) == refined.n_duration
    assert sum(row.n * row.refined for row in tiers) == pytest.approx(refined.n_duration * refined.duration_top1)
    assert all(f"| {row.group} | {row.n} |" in report for row in tiers)


def test_refined_evaluation_searches_whole_light_curves_on_their_raw_flux(shipped_model, tmp_path):
    from exoperiod.learning.curves import write_curves
    from exoperiod.learning.datasets.store import read_split
    from exoperiod.paths import shared_data_dir

    root = tmp_path / "data"
    config = shipped_model.config.model_copy(update={"output_root": str(root)})
    folder = write_curves(config, 6, seed=3, shared=shared_data_dir())
    with_planet = {split: [s for s in read_split(root, config, split) if s.planets] for split in ("train", "val", "test")}
    split = max(with_planet, key=lambda k: len(with_planet[k]))
    assert with_planet[split]
    result = evaluate_model(shipped_model, root, config, split=split, refine=True)
    assert result.refined.n_raw == result.refined.n == len(with_planet[split])
    # A stored series its seed no longer gives is searched as stored.
    path = folder / f"{with_planet[split][0].sample_id}.npz"
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["arr_0"] = arrays["arr_0"] + np.float32(0.01)
    np.savez_compressed(path, **arrays)
    again = evaluate_model(shipped_model, root, config, split=split, refine=True)
    assert again.refined.n_raw == result.refined.n - 1


def test_bls_duration_is_the_box_of_a_boxy_transit():
    rng = np.random.default_rng(3)
    time_days = np.arange(0.0, 60.0, 0.5 / 24)
    period_days, duration_hours = 3.7, 4.0
    in_transit = np.abs((time_days - 1.0 + 0.5 * period_days) % period_days - 0.5 * period_days) < duration_hours / 48
    flux = 1.0 - 1e-3 * in_transit + 1e-4 * rng.standard_normal(time_days.size)
    lc = lk.LightCurve(time=time_days, flux=flux)
    trials = np.geomspace(1.0, 20.0, 100)
    assert bls_duration_hours(lc, period_days, trials) == pytest.approx(duration_hours, rel=0.04)
    # No box of a quarter of the period or longer: a 1-day period leaves boxes under 6 h.
    assert bls_duration_hours(lc, 1.0, trials) < 6.0


def test_mismatched_config_is_refused(tiny_dataset, untrained_model):
    config, root = tiny_dataset
    other = config.model_copy(update={
        "distribution_params": DistributionParams(period=PeriodDistribution(min=1.0, max=20.0, bins=100))})
    with pytest.raises(ValueError, match="grid"):
        evaluate_model(untrained_model, root, other, split="train")


# ---------------------------------------------------------------------------- metrics


def test_top_k_recovery_on_hand_made_logits():
    logits = np.zeros((4, 10))
    logits[0, [2, 5]] = [3.0, 1.0]          # true bin 2 ranks first
    logits[1, [7, 3, 4]] = [3.0, 2.0, 1.0]  # true bin 4 ranks third
    logits[2, [1, 2, 3, 6]] = [4, 3, 2, 1]  # true bin 6 ranks fourth
    logits[3, 9] = 5.0                      # no planet: not counted
    true_bins = [[2], [4], [6], []]
    rows = recovery_by(logits, true_bins, ["a", "a", "b", "a"], ["a", "b", "c"])
    assert [(r.group, r.n) for r in rows] == [("a", 3), ("b", 1)]
    assert rows[0].top1 == pytest.approx(1 / 2) and rows[0].top3 == pytest.approx(1.0)
    assert rows[1].top1 == 0.0 and rows[1].top3 == 0.0


def test_period_recovery_tolerance():
    assert period_recovered([10.1, 3.0], [10.0], 1)          # 1 % off
    assert not period_recovered([10.3, 3.0], [10.0], 1)      # 3 % off
    assert period_recovered([3.0, 9.85], [10.0], 2)
    assert not period_recovered([3.0, 9.85], [10.0], 1)


def test_alias_detection():
    grid = PeriodGrid()
    p = 6.0
    assert bin_alias(grid.index(2 * p), [p], grid) == "2P"
    assert bin_alias(grid.index(p / 3), [p], grid) == "P/3"
    assert bin_alias(grid.index(p), [p], grid) is None
    assert bin_alias(grid.index(p * 1.4), [p], grid) is None
    assert period_alias(p / 2 * 1.01, [p]) == "P/2"
    assert period_alias(3 * p * 0.99, [p]) == "3P"
    assert period_alias(p, [p]) is None
    assert period_alias(p * 2.5, [p]) is None


def test_ece_of_a_calibrated_toy_is_zero_and_of_an_overconfident_one_is_not():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 200_000)
    assert reliability(p, rng.uniform(0, 1, p.size) < p).ece < 0.01
    assert reliability(p, p).ece == pytest.approx(0.0, abs=1e-12)  # soft targets equal to p
    assert reliability(p, rng.uniform(0, 1, p.size) < p**2).ece > 0.1


def test_false_alarm_rate_counts_negatives_above_each_threshold():
    assert false_alarm_rates(np.array([0.05, 0.2, 0.6, 0.95])) == {0.1: 0.75, 0.3: 0.5, 0.5: 0.5, 0.7: 0.25,
                                                                   0.9: 0.25}
    rates = list(false_alarm_rates(np.random.default_rng(1).uniform(0, 1, 500)).values())
    assert all(a >= b for a, b in itertools.pairwise(rates))


def test_snr_tiers():
    groups, order = tier_labels([5.0, 7.0, 12.0, 60.0, math.nan], (7.0, 10.0, 15.0, 25.0, 50.0))
    assert groups == ["< 7", "7-10", "10-15", ">= 50", "unknown"]
    assert order == ["< 7", "7-10", "10-15", "15-25", "25-50", ">= 50", "unknown"]


# -------------------------------------------------------------------------- benchmark


@pytest.fixture(scope="module")
def bench_script():
    spec = importlib.util.spec_from_file_location("vs_bls_tls", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    sys.modules["vs_bls_tls"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_distinct_peaks_skips_the_shoulders_of_a_peak(bench_script):
    periods = np.array([5.0, 5.05, 5.2, 10.0, 10.1, 20.0])
    power = np.array([9.0, 8.0, 1.0, 7.0, 6.5, 2.0])
    assert bench_script.distinct_peaks(periods, power, 3) == [5.0, 10.0, 20.0]


@pytest.mark.slow
def test_benchmark_bls_smoke_run_on_a_real_quarter(bench_script, shared_data):
    cases = bench_script.make_cases(1, [50.0], seed=1, simulated=False, real_files=[str(shared_data / NON_HOST_Q7)])
    rows = bench_script.run_all(cases, methods=("bls",), workers=1)
    assert len(rows) == 1
    row = rows[0]
    assert row["method"] == "bls" and row["error"] is None and row["snr_reached"] == pytest.approx(50, rel=1e-3)
    assert row["top3"], f"BLS missed an SNR-50 planet at {row['true_period_days']:.3f} d: {row['periods_found']}"
    assert row["cpu_search_s"] > 0


def test_the_seed_repository_s_duration_key_gives_its_grid_and_the_report_scores_the_other_spacing_too():
    from exoperiod.learning.evaluate import other_spacing, within_one_bin

    # The seed repository's "duration": {"min": 1, "max": 20, "bins": 100} has no spacing:
    # evenly spaced hours, which is also the default.
    seed = config_from_dict({"distribution_params": {"duration": {"min": 1, "max": 20, "bins": 100}}})
    for grid in (seed.duration_grid(), Config().duration_grid()):
        assert grid.spacing == "linear" and len(grid.centers_days) == 100
        np.testing.assert_allclose(np.diff(grid.centers_days), 0.19)
        assert grid.index(3.0) == int((3.0 - 1.0) / 0.19)
    grid = seed.duration_grid()
    # Within one 0.19-h bin or not; a duration off the grid is never right.
    assert within_one_bin(grid, 3.0, 3.15) and not within_one_bin(grid, 3.0, 3.5)
    assert not within_one_bin(grid, 0.5, 1.05) and not within_one_bin(grid, 25.0, 19.95)
    # The other spacing: log bins of 3 %, narrower than 0.19 h below 6.3 h, wider above.
    log = other_spacing(grid)
    assert log.spacing == "log" and other_spacing(log) == grid
    assert within_one_bin(grid, 1.2, 1.3) and not within_one_bin(log, 1.2, 1.3)
    assert within_one_bin(log, 15.0, 15.4) and not within_one_bin(grid, 15.0, 15.4)


def test_a_duration_off_the_grid_is_not_within_one_bin():
    from exoperiod.learning.evaluate import duration_bin_hits

    label = np.zeros(100)
    label[0] = 1.0
    assert duration_bin_hits([0, 1, 2, -1], [label] * 4) == [True, True, False, False]
