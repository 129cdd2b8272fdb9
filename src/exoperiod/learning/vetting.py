"""Fitting the candidates' vetter (:mod:`exoperiod.search.vetting`) of a trained model.

Place in the flow (learning side): simulate, instruments, catalog (http) -> inject -> datasets, curves ->
train -> **vetting** -> evaluate; presets, demo.

The vetter learns what the scorer's probability and a candidate's own transits say
together. Its examples are the candidates ``predict`` gives (its top 3, one search
pass) on light curves drawn exactly like the training set's
(:func:`exoperiod.learning.curves.make_sample`) but from other seeds: light curves the
scorer never trained on, so that its probabilities there are what a user meets. A
candidate is a planet when its period is within
:data:`~exoperiod.learning.evaluate.PERIOD_TOLERANCE` of an injected one.

A share of them (:data:`DEFAULT_VETTER_BINARIES` beside :data:`DEFAULT_VETTER_CURVES`)
carry an eclipsing binary (:func:`~exoperiod.learning.curves.add_eclipsing_binary`): the
training curves have none, and without them the vetter took a real eclipsing binary's
box-shaped, consistent eclipses for a planet's transits.

The candidates are written to ``<out>/vetting_candidates.csv`` as each light curve
finishes; a stopped run resumes from there (no light curve is searched twice).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..config import Config
from ..errors import ExoperiodError
from ..search.model import VETTING_FEATURES, PeriodModel, Vetter
from ..search.preprocess import PreprocessError
from .curves import make_sample, training_backgrounds
from .evaluate import PERIOD_TOLERANCE

#: Light curves whose candidates fit the shipped vetter. 600 gave 1,600 candidates (280
#: planets), a cross-validated log-loss of 0.101 against 0.125 for a logistic regression
#: on the same features (notes of 2026-11-27).
DEFAULT_VETTER_CURVES = 1000
#: Light curves with an eclipsing binary added, beside those (1 in 5 of the vetter's).
DEFAULT_VETTER_BINARIES = 250
#: Full-batch AdamW: a few thousand rows and 12 features converge in a few hundred steps.
FIT_STEPS = 400
FIT_LR = 1e-2
FIT_WEIGHT_DECAY = 1e-2
CANDIDATES_FILE = "vetting_candidates.csv"
#: The model's candidates per light curve the vetter learns from: ``predict``'s default top 3.
TOP_K = 3


class VettingError(ExoperiodError):
    """A vetter that cannot be fitted; the message is one line."""


def vetter_seeds(config: Config, n: int, binaries: int = 0) -> list[int]:
    """Seeds of the vetter's light curves: ``(config.seed + 1) * 1_000_000 + i`` for the
    ``n`` drawn like the training set's, then ``(config.seed + 2) * 1_000_000 + i`` for
    the ``binaries`` with an eclipsing binary; never among the training curves'
    ``config.seed * 1_000_000 + i``."""
    return ([(config.seed + 1) * 1_000_000 + i for i in range(n)]
            + [(config.seed + 2) * 1_000_000 + i for i in range(binaries)])


def candidate_rows(seed: int, model_path: str, config: Config, real_files: list[str] | None) -> list[dict]:
    """The vetting features of ``predict``'s candidates on the light curve of ``seed``
    (with an eclipsing binary when :func:`vetter_seeds` says so), each with ``planet``
    (its period is an injected planet's) and ``seed``; one row with ``planet`` None when
    the light curve gave no candidate to vet."""
    from ..search.predict import predict

    model = _worker_model(model_path)
    try:
        sample = make_sample(seed, config, real_files, binary=seed // 1_000_000 == config.seed + 2)
    except PreprocessError:  # too little valid data left: write_curves skips it too
        return [{"seed": seed, "planet": None}]
    found = predict(sample.raw, model, top_k=TOP_K, max_planets=1, off_grid=False)
    truth = [p.period_days for p in sample.planets]
    rows = []
    for candidate in found.candidates:
        if candidate.vetting_features is None:
            continue  # predict does not vet it either (search.vetting.vet)
        row = dict(zip(VETTING_FEATURES, candidate.vetting_features.tolist()))
        row["planet"] = any(abs(candidate.period_days / t - 1) < PERIOD_TOLERANCE for t in truth)
        rows.append(row)
    return [{"seed": seed, **row} for row in rows] or [{"seed": seed, "planet": None}]


_MODELS: dict[str, PeriodModel] = {}


def _worker_model(path: str) -> PeriodModel:
    """The model of ``path``, loaded once per process and without a vetter: the vetter
    learns from the scorer's probabilities."""
    if path not in _MODELS:
        torch.set_num_threads(1)
        model = PeriodModel.load(path)
        model.vetter = None
        _MODELS[path] = model
    return _MODELS[path]


def collect_candidates(model_path: str | Path, config: Config, n: int, out_dir: str | Path,
                       shared: Path | None = None, workers: int = 1,
                       progress: Callable[[str, int, int], None] | None = None, binaries: int = 0) -> pd.DataFrame:
    """The vetting rows of the light curves :func:`vetter_seeds` gives, appended to
    ``out_dir/vetting_candidates.csv`` as they come; seeds already there are skipped."""
    from .datasets.build import worker_pool

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = out_dir / CANDIDATES_FILE
    done = pd.read_csv(table) if table.is_file() else pd.DataFrame(columns=["seed"])
    seeds = vetter_seeds(config, n, binaries)
    todo = sorted(set(seeds) - set(done["seed"].astype(int)))
    job = partial(candidate_rows, model_path=str(model_path), config=config, real_files=training_backgrounds(shared))
    finished = len(seeds) - len(todo)
    with worker_pool(workers) if workers > 1 else nullcontext() as pool:
        for rows in (pool.map(job, todo, chunksize=2) if pool else map(job, todo)):
            frame = pd.DataFrame(rows, columns=["seed", *VETTING_FEATURES, "planet"])
            frame.to_csv(table, mode="a", header=not table.is_file(), index=False)
            finished += 1
            if progress:
                progress("vetting", finished, len(seeds))
    rows = pd.read_csv(table)
    return rows[rows["seed"].isin(seeds) & rows["planet"].notna()]


def fit_vetter(features: np.ndarray, planet: np.ndarray, seed: int) -> Vetter:
    """A :class:`~exoperiod.search.model.Vetter` fitted by binary cross-entropy.

    Parameters
    ----------
    features : ndarray, shape (n, len(VETTING_FEATURES))
    planet : ndarray of bool, shape (n,)
    seed : int
        Seeds the initial weights.
    """
    features, planet = np.asarray(features, np.float32), np.asarray(planet, bool)
    if features.ndim != 2 or features.shape[1] != len(VETTING_FEATURES) or len(features) != len(planet):
        raise VettingError(f"vetting features must be (n, {len(VETTING_FEATURES)}) with one label each")
    if planet.all() or not planet.any():
        raise VettingError(f"{len(planet)} candidates, all {'planets' if planet.all() else 'false'}: "
                           "the vetter needs both (more light curves?)")
    torch.manual_seed(seed)
    vetter = Vetter()
    x, y = torch.from_numpy(features), torch.from_numpy(planet.astype(np.float32))
    vetter.mean.copy_(x.mean(0))
    vetter.scale.copy_(x.std(0).clamp_min(1e-6))
    opt = torch.optim.AdamW(vetter.parameters(), lr=FIT_LR, weight_decay=FIT_WEIGHT_DECAY)
    for _ in range(FIT_STEPS):
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(vetter(x), y)
        loss.backward()
        opt.step()
    return vetter.eval()


def add_vetter(model_path: str | Path, out_path: str | Path, n: int = DEFAULT_VETTER_CURVES,
               shared: Path | None = None, workers: int = 1,
               progress: Callable[[str, int, int], None] | None = None,
               binaries: int = DEFAULT_VETTER_BINARIES) -> PeriodModel:
    """Fit the vetter of the model in ``model_path`` and write the model with it to ``out_path``.

    The light curves are drawn with the model's own configuration (grid, cadence,
    detrending; :func:`vetter_seeds` from its seed). The candidates are kept beside
    ``out_path`` (:data:`CANDIDATES_FILE`, resumable); the model card records how many
    light curves and candidates the vetter saw.
    """
    out_path = Path(out_path)
    model = PeriodModel.load(model_path)
    config = model.config
    rows = collect_candidates(model_path, config, n, out_path.parent, shared, workers, progress, binaries)
    model.vetter = fit_vetter(rows[list(VETTING_FEATURES)].to_numpy(np.float32),
                              rows["planet"].astype(bool).to_numpy(), config.seed)
    model.card = {**model.card, "vetter": {"light_curves": n, "with_binaries": binaries,
                                           "candidates": int(len(rows)),
                                           "planets": int(rows["planet"].astype(bool).sum())}}
    model.save(out_path)
    return model
