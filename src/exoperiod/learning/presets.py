"""The training recipe with one command (the shipped model is its run: README, Datasets).

Place in the flow (learning side): simulate, instruments, catalog (http) -> inject -> datasets, curves ->
train -> vetting -> evaluate; **presets**, demo.

``exoperiod train --preset default`` writes the default training set of whole light curves
(:func:`exoperiod.learning.curves.write_curves`: 3,000 light curves of 8 days to 17 Kepler quarters,
1-13 TESS-like sectors and K2-like campaigns, a quarter of them on real planet-free stars of
../shared/data when it is there, the simulated ones in four variability families and with
their instrument's signatures (:mod:`exoperiod.learning.instruments`); each
star detrended with its own window; resumable), trains the scorer on their cached fold
features with the settings below, and fits the candidates' vetter on 1,000 more light
curves drawn the same way and 250 with an eclipsing binary
(:func:`exoperiod.learning.vetting.add_vetter`; resumable too).
"""

from __future__ import annotations

from pathlib import Path

from ..config import Config
from ..paths import shared_data_dir
from .train import TrainSettings

DEFAULT_DATA_ROOT = Path("data/default")
DEFAULT_CURVES = 3000
#: ``rank_weight`` 0.03. The scorer's top bin on 4-year light curves at total SNR 7/8/10/12
#: (n = 40 each) was the planet's for 12/28/30/47 % with it, 15/20/17/40 % without and
#: 17/38/33/50 % with 0.1; a bin >= 0.5 on 100 planet-free light curves of the held-out
#: noise family (and of held-out real stars) for 7 % (4 %) with 0.03, 33 % (4 %) without,
#: 35 % (7 %) with 0.1, 15 % (8 %) with 0.01: false alarms off the training distribution
#: swing widely between runs, and 0.03 was the best of these.
DEFAULT_SETTINGS = TrainSettings(epochs=30, samples_per_epoch=4000, batch_size=64, lr=3e-3,
                                 mix={"curves": 1.0}, rank_weight=0.03)


def default_config(config: Config) -> Config:
    """``config`` with the output folder of the default recipe."""
    return config.model_copy(update={"output_root": str(DEFAULT_DATA_ROOT)})


def prepare_default(config: Config, progress=None, workers: int = 2) -> tuple[Config, Path, TrainSettings]:
    """Write (or resume) the default training light curves; return what training needs.

    ``progress("curves", done, total)`` is called as they are written.
    """
    from .curves import write_curves

    config = default_config(config)
    write_curves(config, DEFAULT_CURVES, shared=shared_data_dir(), workers=workers, progress=progress)
    return config, Path(config.output_root), DEFAULT_SETTINGS
