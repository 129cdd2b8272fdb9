"""exoperiod: period probabilities for transiting exoplanets in Kepler, K2 and TESS data.

>>> from exoperiod import PeriodModel, predict, read_lightcurve
>>> model = PeriodModel.load()                  # the shipped model
>>> result = predict(read_lightcurve("kplr009002278-2012179063303_llc.fits"), model=model)
"""

import sys
import warnings
from types import ModuleType

# lightkurve warns at import about an optional PRF dependency exoperiod never uses.
warnings.filterwarnings("ignore", message=".*tpfmodel submodule is not available.*")

__version__ = "0.1.0"

_LAZY = {
    "Config": "config", "load_config": "config", "ConfigError": "config",
    "PeriodGrid": "grid", "period_weights": "grid",
    "read_lightcurve": "readers", "LightCurveReadError": "readers",
    "as_lightcurve": "inputs", "InputError": "inputs",
    "to_windows": "preprocess", "PreprocessError": "preprocess",
    "PeriodModel": "model", "ModelLoadError": "model",
    "predict": "predict", "Prediction": "predict", "predictions_to_pandas": "results",
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


class _Package(ModuleType):
    """The package module, keeping public names that share a submodule's name.

    Importing ``exoperiod.predict`` (the module) makes Python set the package attribute
    ``predict`` to that module, which would shadow the function of the same name that
    the README imports (``from exoperiod import predict``). Those attributes are not
    stored, so they keep resolving through :func:`__getattr__` to the function; the
    module stays importable as ``from exoperiod.predict import ...``.
    """

    def __setattr__(self, name: str, value) -> None:
        if isinstance(value, ModuleType) and _LAZY.get(name) == name:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
