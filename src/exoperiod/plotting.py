"""matplotlib for files only: the one place the backend is chosen.

Place in the flow: base module: used by the search side and the learning side, imports
neither.

exoperiod draws PNGs (prediction reports, training curves, evaluation plots) on
machines without a display, so it uses the Agg backend, chosen here before pyplot is
imported and only when a plot is made (``import exoperiod`` stays fast).
"""

from __future__ import annotations

import os

from .files import atomic_write


def pyplot():
    """``matplotlib.pyplot`` on the file-only Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | os.PathLike, dpi: int = 110) -> None:
    """Save ``fig`` as PNG atomically (:func:`~exoperiod.files.atomic_write`) and close it."""
    try:
        with atomic_write(path) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi)
    finally:
        pyplot().close(fig)
