"""exoperiod: period probabilities for transiting exoplanets in Kepler, K2 and TESS data."""

__version__ = "0.1.0"
