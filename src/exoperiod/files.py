"""Writing files so that a file that exists is complete, and JSON that any reader takes.

Place in the flow: base module: used by the search side and the learning side, imports
neither.

Every output of exoperiod (models, datasets, tables, plots, views, results) is written
to a temporary file beside its target and renamed over it: a killed run leaves either
the old file or the new one, never half of one (``os.replace`` is atomic on POSIX and
Windows within one filesystem).
"""

from __future__ import annotations

import math
import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np


@contextmanager
def atomic_write(path: str | os.PathLike, *, fsync: bool = False) -> Iterator[Path]:
    """A temporary path beside ``path``, renamed over ``path`` if the block succeeds.

    The temporary name is hidden and keeps the suffix of ``path``, since numpy and
    matplotlib choose the format from it; it is removed if the block fails. An
    ``OSError`` names ``path``, not the temporary file.

    Parameters
    ----------
    path
        The file to write; its folder is created.
    fsync
        Flush the file to disk before the rename, for journals and results a later
        run resumes from (a power cut could otherwise leave an empty renamed file).

    Examples
    --------
    >>> with atomic_write(tmp_path / "table.csv") as tmp:  # doctest: +SKIP
    ...     frame.to_csv(tmp)
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp{path.suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        if fsync:
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as err:
        if err.strerror is None:
            raise
        raise OSError(err.errno, err.strerror, str(path)) from None
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | os.PathLike, text: str, *, fsync: bool = False) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_write`; returns ``path``."""
    with atomic_write(path, fsync=fsync) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def json_safe(value: Any) -> Any:
    """``value`` with numpy scalars and arrays as Python numbers and lists, and NaN or
    infinity as ``None``: strict JSON (``allow_nan=False``) has neither NaN nor numpy."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value
