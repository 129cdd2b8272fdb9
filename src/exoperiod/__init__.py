"""exoperiod: period probabilities for transiting exoplanets in Kepler, K2 and TESS data.

>>> from exoperiod import PeriodModel, read_lightcurve
>>> model = PeriodModel.load()                  # the shipped model
>>> proba = model.predict_proba(read_lightcurve("kplr009002278-2012179063303_llc.fits"))
"""

import warnings

# lightkurve warns at import about an optional PRF dependency exoperiod never uses.
warnings.filterwarnings("ignore", message=".*tpfmodel submodule is not available.*")

__version__ = "0.1.0"

_LAZY = {
    "Config": "config", "load_config": "config", "ConfigError": "config",
    "PeriodGrid": "grid", "period_weights": "grid",
    "read_lightcurve": "readers", "LightCurveReadError": "readers",
    "to_windows": "preprocess", "PreprocessError": "preprocess",
    "PeriodModel": "model", "ModelLoadError": "model",
    "predict": "predict", "Prediction": "predict",
    "vetting_views": "views", "write_views": "views",
}
__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str):
    # Lazy: `import exoperiod` stays fast; torch and lightkurve load on first use.
    if name in _LAZY:
        from importlib import import_module

        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        # Importing the submodule `predict` set this package's attribute `predict` to the
        # module: bind the function instead, or `from exoperiod import predict` gets the module.
        globals()[name] = value
        return value
    raise AttributeError(f"module 'exoperiod' has no attribute {name!r}")
