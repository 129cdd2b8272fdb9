"""exoperiod: period probabilities for transiting exoplanets in Kepler, K2 and TESS data.

>>> from exoperiod import PeriodModel, predict, read_lightcurve
>>> model = PeriodModel.load()                  # the shipped model
>>> result = predict(read_lightcurve("kplr009002278-2012179063303_llc.fits"), model=model)
"""

import warnings

# lightkurve warns at import about an optional PRF dependency exoperiod never uses.
warnings.filterwarnings("ignore", message=".*tpfmodel submodule is not available.*")

from ._version import __version__

_LAZY = {
    "Config": "config", "load_config": "config", "ConfigError": "config",
    "ExoperiodError": "errors",
    "PeriodGrid": "grid", "period_weights": "grid",
    "read_lightcurve": "search.readers", "LightCurveReadError": "search.readers",
    "as_lightcurve": "search.inputs", "InputError": "search.inputs",
    "to_windows": "search.preprocess", "PreprocessError": "search.preprocess",
    "PeriodModel": "search.model", "ModelLoadError": "checkpoint",
    "predict": "search.predict", "Prediction": "search.predict", "predictions_to_pandas": "search.results",
    "vetting_views": "search.views", "write_views": "search.views",
}
__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str):
    # Lazy: `import exoperiod` stays fast; torch and lightkurve load on first use.
    if name in _LAZY:
        from importlib import import_module

        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'exoperiod' has no attribute {name!r}")

