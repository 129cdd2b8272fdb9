"""Predictions as tables and folded light curves, for work in a notebook.

Place in the flow (search side): readers -> inputs -> preprocess -> fold -> model -> refine
(ephemeris, offgrid) -> vetting -> predict -> views, plots, **results** -> outputs, batch.

:class:`~exoperiod.search.predict.Prediction` delegates its ``to_pandas``, ``to_table`` and
``fold`` methods here (``plot`` to :func:`exoperiod.search.plots.report_figure`);
:func:`predictions_to_pandas` makes one table of a batch. Rows are candidates, with the
columns of the JSON ``candidates`` objects, so a table and the JSON say the same thing.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..files import atomic_write

if TYPE_CHECKING:  # imported lazily: matplotlib and lightkurve are slow to import
    import lightkurve as lk
    from astropy.table import Table

    from .predict import Prediction
    from .refine import Candidate

__all__ = ["candidates_frame", "candidates_summary", "candidates_table", "fold_candidate", "predictions_to_pandas",
           "write_csv"]

#: Columns naming the input of each row in a batch table.
INPUT_COLUMNS = ("input", "target", "mission", "rank")


def candidates_frame(prediction: Prediction) -> pd.DataFrame:
    """One row per candidate, best first: ``rank`` (1-based) and the JSON candidate keys.

    A prediction without candidates gives an empty table with the same columns.
    """
    from .refine import Candidate

    rows = [{"rank": i, **c.to_dict()} for i, c in enumerate(prediction.candidates, start=1)]
    return pd.DataFrame(rows, columns=["rank", *Candidate.JSON_KEYS])


def candidates_summary(candidates: Sequence[Candidate | dict]) -> str:
    """One line: ``18.1641 d (p=0.93, SNR 14.2), 0.9414 d (BLS, outside the grid, SNR 595.2)``.

    Candidates or their JSON objects (as a batch on Dask returns them)."""
    parts = []
    for c in (c if isinstance(c, dict) else c.to_dict() for c in candidates):
        origin = "BLS, outside the grid" if c["outside_grid"] else f"p={c['probability']:.2f}"
        parts.append(f"{c['period_days']:.4f} d ({origin}" + (f", SNR {c['snr']:.1f})" if c["snr"] is not None else ")"))
    return ", ".join(parts) or "no candidate"


def predictions_to_pandas(predictions: Sequence[Prediction | dict]) -> pd.DataFrame:
    """A batch as one table: a row per candidate of every prediction.

    Predictions or their JSON objects. An input without candidates (nothing found, or
    ``error`` set) still has one row, with its ``error`` and empty candidate columns, so
    that no input silently drops out.
    """
    from .refine import Candidate

    rows = []
    for p in (p if isinstance(p, dict) else p.to_dict() for p in predictions):
        candidates = [{"rank": i, **c} for i, c in enumerate(p["candidates"], start=1)] or [{"rank": 0}]
        rows += [{"input": p["input"], "target": p["target"], "mission": p.get("mission"), **c, "error": p["error"]}
                 for c in candidates]
    return pd.DataFrame(rows, columns=[*INPUT_COLUMNS, *Candidate.JSON_KEYS, "error"])


def candidates_table(prediction: Prediction) -> Table:
    """The candidates as an astropy Table, with units on the columns that have them."""
    import astropy.units as u
    from astropy.table import Table

    table = Table.from_pandas(candidates_frame(prediction))
    for suffix, unit in (("_days", u.day), ("_hours", u.hour), ("_ppm", u.def_unit("ppm", 1e-6 * u.one))):
        for name in table.colnames:
            if name.endswith(suffix) and table[name].dtype.kind == "f":
                table[name].unit = unit
    return table


def fold_candidate(prediction: Prediction, candidate: Candidate | int = 0) -> lk.FoldedLightCurve:
    """The detrended light curve folded at a candidate's period, mid-transit at phase 0.

    Parameters
    ----------
    candidate : Candidate or int
        The candidate, or its index in ``prediction.candidates``.
    """
    from astropy.time import Time

    if prediction.series is None:
        raise ValueError("the prediction carries no light curve (made by predict_paths?); use predict()")
    if isinstance(candidate, (int, np.integer)):
        if not 0 <= candidate < len(prediction.candidates):
            raise IndexError(f"candidate {candidate} does not exist ({len(prediction.candidates)} candidates)")
        candidate = prediction.candidates[candidate]
    detrended = prediction.series.detrended
    epoch = Time(candidate.t0_btjd_or_bkjd, format=detrended.time.format, scale=detrended.time.scale)
    return detrended.fold(period=candidate.period_days, epoch_time=epoch)


def write_csv(predictions: Sequence[Prediction | dict], path: Path | None) -> None:
    """The batch table as CSV, to ``path`` (atomically: a temporary file, then a rename)
    or to stdout when ``path`` is None. Transit times are one space-separated cell."""
    frame = predictions_to_pandas(predictions)
    frame["transit_times_btjd_or_bkjd"] = [
        " ".join(f"{t:.6f}" for t in times) if isinstance(times, list) else ""
        for times in frame["transit_times_btjd_or_bkjd"]
    ]
    if path is None:
        frame.to_csv(sys.stdout, index=False)
        return
    with atomic_write(path) as tmp:
        frame.to_csv(tmp, index=False)
