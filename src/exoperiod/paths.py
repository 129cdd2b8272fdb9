"""Where exoperiod finds the shared real-data folder and its own packaged files.

Place in the flow: base module: used by the search side and the learning side, imports
neither.
"""

from __future__ import annotations

import os
from pathlib import Path

SHARED_DATA_ENV = "EXOPERIOD_SHARED_DATA"
PACKAGE_DATA = Path(__file__).resolve().parent / "data"


def shared_data_dir() -> Path | None:
    """Return the folder of real Kepler/K2/TESS files, or None when it is absent.

    ``$EXOPERIOD_SHARED_DATA`` wins; otherwise ``../shared/data`` beside the current
    directory, then beside the source checkout (``<repo>/../shared/data``).
    """
    env = os.environ.get(SHARED_DATA_ENV)
    if env:
        path = Path(env).expanduser()
        return path if path.is_dir() else None
    candidates = [
        Path.cwd().parent / "shared" / "data",
        Path(__file__).resolve().parents[3] / "shared" / "data",
    ]
    for path in candidates:
        if (path / "MANIFEST.csv").is_file():
            return path
    return None
