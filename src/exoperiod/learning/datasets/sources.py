"""Light curves already on disk: a folder indexed by KIC / EPIC / TIC number.

Place in the flow (learning side): simulate, instruments, catalog (http) -> inject -> **datasets**,
curves -> train -> vetting -> evaluate; presets, demo.

Any folder of files :func:`exoperiod.search.readers.read_lightcurve` can read will do (MAST
bulk-download trees, the MAST cache of earlier builds, ``../shared/data``). A file is
matched to its star by the identifier in its name (``kplr009002278-...``,
``ktwo211089792-...``, ``EPIC_210491860_mast.fits``, ``tess...-0000000358108509-...``)
and, failing that, by its header.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

from ...search.readers import (
    READABLE_SUFFIXES,
    LightCurveReadError,
    read_lightcurve,
    target_from_name,
)
from ..catalog import CatalogStar


def _stem(path: Path) -> str:
    return path.name.split(".")[0]


def _light_curve_files(root: Path) -> list[Path]:
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name.lower().endswith(READABLE_SUFFIXES))
    # A compact .npz copy beside its original holds one flux only: the original, which
    # honours flux_column, wins.
    originals = {(p.parent, _stem(p)) for p in files if not p.name.lower().endswith(".npz")}
    return [p for p in files if not (p.name.lower().endswith(".npz") and (p.parent, _stem(p)) in originals)]


def _identify(path: Path) -> tuple[str, int] | None:
    # The readers' own file-name parser, so a file is matched to the star it reads as.
    mission, target_id = target_from_name(path.name)
    if target_id is None:
        try:
            meta = read_lightcurve(path).meta
        except LightCurveReadError:
            return None  # not a light curve (a table, a stray file)
        mission, target_id = meta.get("MISSION"), meta.get("TARGETID")
    return (mission, int(target_id)) if mission and target_id is not None else None


class LocalArchive:
    """The light-curve files under a folder, by (mission, target id).

    Parameters
    ----------
    root : path
        Folder searched recursively.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        index: dict[tuple[str, int], list[str]] = defaultdict(list)
        if self.root.is_dir():
            for path in _light_curve_files(self.root):
                key = _identify(path)
                if key is not None:
                    index[key].append(str(path))
        self._index = {key: tuple(files) for key, files in index.items()}

    def __len__(self) -> int:
        return len(self._index)

    def targets(self) -> list[tuple[str, int]]:
        """Every (mission, target id) with at least one file, sorted."""
        return sorted(self._index)

    def files(self, star: CatalogStar) -> tuple[str, ...]:
        """The star's files (sorted paths; empty when the folder has none)."""
        return self._index.get(star.key, ())
