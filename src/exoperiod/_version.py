"""The package version, in a module of its own so that any module can import it.

Place in the flow: base module: used by the search side and the learning side, imports
neither.
"""

__version__ = "0.1.0"
