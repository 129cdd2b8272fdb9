"""The main job: what a new user runs first, offline, in a few minutes.

Place in the flow (learning side): simulate, instruments, catalog (http) -> inject -> datasets, curves ->
train -> vetting -> evaluate; presets, **demo**.

It builds a small simulated dataset, evaluates the shipped model on its held-out test
stars, predicts the periods of an example simulated light curve with two planets (and of
real Kepler hosts when the shared data folder is there), and writes a report folder.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Callable

import numpy as np

from ..config import Config
from ..files import atomic_write, atomic_write_text
from ..paths import shared_data_dir
from ..search.model import PeriodModel

# Real Kepler hosts shown when the shared data folder is present (path, KOI periods in days).
REAL_EXAMPLES = (
    ("lightcurves/kepler/9002278/kplr009002278-2012179063303_llc.fits", "Kepler-62 Q13"),
    ("lightcurves/kepler/4139816/kplr004139816_Q1-Q17_anomaly_standardized.npz", "Kepler-235 Q1-Q17"),
)
EXAMPLE_PLANETS_DAYS = (4.7, 13.9)
#: Simulated stars of the main job's dataset, and the share of them with injected planets.
MAIN_JOB_SAMPLES = 2000
SYNTHETIC_SHARE = 0.75


def example_lightcurve(path: Path, config: Config) -> tuple[Path, list[float]]:
    """Write a simulated Kepler-like quarter with two injected planets as a FITS file."""
    from astropy.stats import mad_std

    from ..search.preprocess import clean_and_detrend
    from .inject import inject_transits, planet_for_snr
    from .simulate import sample_star, simulate_lightcurve

    rng = np.random.default_rng([config.seed, 99])
    # A quietish star, so the example shows what a detection looks like; the evaluation
    # above covers the whole population, spotted stars included.
    sim = sample_star(rng, "SIM-EXAMPLE")
    while sim.variability_ppm > 1000 or sim.rotation_period_days < 5:
        sim = sample_star(rng, "SIM-EXAMPLE")
    lc = simulate_lightcurve(sim, rng, duration_days=90.0)
    time = lc.time.value[np.isfinite(lc.flux.value)]
    # SNR against the noise left after detrending, as in the datasets (see README).
    detrended, _ = clean_and_detrend(lc, config.detrend_window_days, config.adaptive_detrending)
    noise = float(mad_std(detrended.flux.value - 1.0) * 1e6)
    planets = [planet_for_snr(time, snr, p, time[0] + 0.37 * p, 0.3, sim.star, noise)
               for p, snr in zip(EXAMPLE_PLANETS_DAYS, (25.0, 18.0))]

    lc = inject_transits(lc, planets, sim.star)
    with atomic_write(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lc.to_fits(path=str(tmp), overwrite=True, OBJECT="SIM-EXAMPLE", MISSION="Kepler",
                   QUALITY=np.asarray(lc["quality"].value))
    return path, [p.period_days for p in planets]


def run_main_job(
    out_dir: str | Path,
    config: Config,
    model: PeriodModel | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    workers: int = 2,
    samples: int = MAIN_JOB_SAMPLES,
) -> Path:
    """Run the main job into ``out_dir``; return the path of its ``README.md`` summary.

    ``progress(stage, done, total)`` reports the dataset build, evaluation and predictions.
    ``samples`` simulated stars are built (:data:`SYNTHETIC_SHARE` of them with planets);
    fewer make a quicker, noisier evaluation.
    """
    from ..search.predict import predict_paths, write_json
    from ..search.results import candidates_summary
    from .datasets import build_datasets
    from .evaluate import evaluate_model, markdown_table

    out = Path(out_dir)
    model = model or PeriodModel.load()
    synthetic = round(SYNTHETIC_SHARE * samples)
    counts = {"synthetic_samples_count": synthetic, "negative_sample_count": samples - synthetic,
              "positive_sample_count": 0}
    data_config = config.model_copy(update={**counts, "output_root": str(out / "data")})
    build_datasets(data_config, source="simulated", only=("negative", "synthetic"), workers=workers,
                   progress=progress)
    evaluation = evaluate_model(model, out / "data", data_config, split="test", out_dir=out / "evaluation",
                                progress=progress)

    example, true_periods = example_lightcurve(out / "examples" / "simulated_example.fits", config)
    inputs = [(str(example), "simulated example, planets at " + ", ".join(f"{p:.2f}" for p in true_periods) + " d")]
    shared = shared_data_dir()
    if shared is not None:
        inputs += [(str(shared / rel), name) for rel, name in REAL_EXAMPLES if (shared / rel).is_file()]
    predictions = predict_paths([p for p, _ in inputs], model, plots_dir=out / "predictions",
                                progress=(lambda d, t, _p: progress("predict", d, t)) if progress else None)
    write_json(predictions, out / "predictions" / "predictions.json")

    rows = []
    for (path, name), pred in zip(inputs, predictions):
        found = pred.error or candidates_summary(pred.candidates)
        rows.append([name, found, f"predictions/{Path(path).name}.png"])
    summary = [
        "# exoperiod main job", "",
        f"Model: `{model.card.get('command', 'exoperiod model')}` "
        f"(validation top-1 {model.card.get('metrics', {}).get('val_top1', float('nan')):.3f}).", "",
        "## Evaluation on held-out simulated stars", "",
        markdown_table(["samples", "with planet", "top-1", "top-3", "alias rate"],
                       [[evaluation.n_samples, evaluation.n_with_planet, f"{evaluation.top1:.3f}",
                         f"{evaluation.top3:.3f}", f"{evaluation.alias_rate:.3f}"]]),
        "", "Full report: [evaluation/report.md](evaluation/report.md)", "",
        "## Predictions", "",
        markdown_table(["light curve", "refined periods (best first)", "report"], rows), "",
        "" if shared is not None else "The shared data folder was not found: real Kepler examples skipped.",
    ]
    return atomic_write_text(out / "README.md", "\n".join(summary) + "\n")
