"""Fixtures shared by the test modules."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from exoperiod.paths import shared_data_dir

# The fixture generators (tests/data/make_fixtures.py) import as a module.
sys.path.insert(0, str(Path(__file__).with_name("data")))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real Kepler/K2/TESS data folder; tests that need it skip when it is absent."""
    path = shared_data_dir()
    if path is None:
        pytest.skip("real data folder ../shared/data not found; set EXOPERIOD_SHARED_DATA")
    return path


@pytest.fixture(scope="session")
def shipped_model():
    """The trained model shipped in the package; tests that need it skip when it is absent."""
    from exoperiod.search.model import DEFAULT_MODEL_PATH, PeriodModel

    if not DEFAULT_MODEL_PATH.is_file():
        pytest.skip(f"{DEFAULT_MODEL_PATH} not found: the shipped model has not been trained yet")
    return PeriodModel.load()


#: Kepler-62 Q13: five planets, two (5.71 d, 18.16 d) found in one quarter.
KEPLER62_Q13 = "lightcurves/kepler/9002278/kplr009002278-2012179063303_llc.fits"


@pytest.fixture(scope="session")
def kepler62(shared_data, shipped_model):
    """Kepler-62 Q13 predicted by the shipped model, once for the session (read only)."""
    from exoperiod import predict

    return predict(shared_data / KEPLER62_Q13, shipped_model)


@pytest.fixture(scope="session")
def untrained_model():
    """A randomly initialised model (fixed seed): for tests of the machinery, not of skill."""
    import torch

    from exoperiod.config import load_config
    from exoperiod.search.model import PeriodModel

    torch.manual_seed(0)
    return PeriodModel(load_config())


@pytest.fixture(scope="session")
def kepler_cut(tmp_path_factory) -> Path:
    """A 1,000-cadence Kepler long-cadence FITS file of a simulated star, in MAST's llc
    layout (``tests/data/make_fixtures.py``), so that reader/preprocess/fold tests run
    without ../shared/data."""
    from make_fixtures import write_kepler_llc

    return write_kepler_llc(tmp_path_factory.mktemp("fixtures") / "kplr012345678-2012179063303_llc.fits")


@pytest.fixture(scope="session")
def kepler_cut_truncated(kepler_cut, tmp_path_factory) -> Path:
    """:func:`kepler_cut` cut at 60 % of its bytes, as a killed download leaves it."""
    from make_fixtures import write_truncated

    return write_truncated(kepler_cut, tmp_path_factory.mktemp("fixtures") / "truncated_llc.fits")
