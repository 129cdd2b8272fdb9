"""The names the README imports from the package itself."""

from __future__ import annotations

import importlib
import inspect

import exoperiod


def test_every_public_name_imports_from_the_package() -> None:
    for name in exoperiod.__all__:
        assert getattr(exoperiod, name) is not None, name


def test_predict_is_the_function_even_after_its_module_is_imported() -> None:
    module = importlib.import_module("exoperiod.search.predict")  # sets exoperiod.search.predict, a module
    from exoperiod import Prediction, predict

    assert inspect.isfunction(exoperiod.predict) and exoperiod.predict is module.predict
    assert predict is module.predict and Prediction is module.Prediction
    assert exoperiod.Prediction.__module__ == "exoperiod.search.predict"


def test_the_errors_are_value_errors_with_their_modules() -> None:
    from exoperiod import (
        ConfigError,
        InputError,
        LightCurveReadError,
        ModelLoadError,
        PreprocessError,
    )

    for error in (ConfigError, InputError, LightCurveReadError, ModelLoadError, PreprocessError):
        assert issubclass(error, ValueError)
    assert issubclass(InputError, LightCurveReadError)
