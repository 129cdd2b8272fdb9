"""The inputs of a batch: files, folders, globs and ``@list`` files, yielded lazily.

An archive holds millions of light curves, so nothing here builds a list of them: folders
are walked one directory listing at a time, a glob is matched while walking, and an
``@list.txt`` file is read line by line. The order is stable (that of the sorted full
path strings), so that two runs over the same archive see the inputs in the same order.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Iterator
from fnmatch import fnmatchcase
from pathlib import Path

from .readers import READABLE_SUFFIXES


def iter_inputs(paths: Iterable[str | os.PathLike]) -> Iterator[str]:
    """Files to process, one at a time.

    Parameters
    ----------
    paths : iterable of path
        Each a file (kept as given), a folder (its readable files, recursively), a glob
        (``*``, ``?``, ``[...]``, ``**`` for any depth; matched folders give all their
        readable files), or ``@FILE``: a text file with one such path per line (blank
        lines and lines starting with ``#`` skipped; relative paths are relative to the
        working directory, as on the command line).

    Yields
    ------
    str
        Paths with a readable ending (:data:`exoperiod.readers.READABLE_SUFFIXES`), in
        sorted order within each given path. A path that is neither a folder nor a
        matching glob is yielded as given, so that the reader says what is wrong with it.

    Raises
    ------
    FileNotFoundError
        An ``@FILE`` list does not exist.
    """
    for given in map(str, paths):
        if given.startswith("@") and not Path(given).exists():
            yield from _expand(_list_lines(Path(given[1:])))
        else:
            yield from _expand([given])


def _expand(paths: Iterable[str]) -> Iterator[str]:
    for given in paths:
        if Path(given).is_dir():
            yield from _walk(str(Path(given)))
        elif not Path(given).exists() and glob.has_magic(given):
            found = False
            for path in _glob(given):
                found = True
                yield path
            if not found:
                yield given
        else:
            yield given


def _list_lines(list_file: Path) -> Iterator[str]:
    if not list_file.is_file():
        raise FileNotFoundError(f"{list_file}: input list not found (@FILE names a text file, one path a line)")
    with list_file.open(encoding="utf-8") as lines:
        for line in lines:
            line = line.strip()
            if line and not line.startswith("#"):
                yield line


def _sorted_entries(folder: str) -> list[os.DirEntry]:
    """One directory's entries in the order of their full path strings: a folder sorts as
    ``name/``, so ``b.fits`` comes before the files of folder ``b.d``, after those of ``b``."""
    try:
        with os.scandir(folder or ".") as entries:
            listed = list(entries)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return []
    return sorted(listed, key=lambda e: e.name + "/" if e.is_dir(follow_symlinks=False) else e.name)


def _readable(name: str) -> bool:
    return name.lower().endswith(READABLE_SUFFIXES)


def _walk(folder: str) -> Iterator[str]:
    """Readable files below ``folder``, recursively, sorted by full path."""
    for entry in _sorted_entries(folder):
        path = os.path.join(folder, entry.name)
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(path)
        elif _readable(entry.name) and entry.is_file():
            yield path


def _glob(pattern: str) -> Iterator[str]:
    """Readable files matching ``pattern`` (and all those in matching folders), sorted."""
    parts = Path(pattern).parts
    fixed = 0
    while fixed < len(parts) - 1 and not glob.has_magic(parts[fixed]):
        fixed += 1
    root = os.path.join(*parts[:fixed]) if fixed else ""
    yield from _glob_below(root, (), parts[fixed:])


def _glob_below(folder: str, rel: tuple[str, ...], comps: tuple[str, ...]) -> Iterator[str]:
    for entry in _sorted_entries(folder):
        path, parts = os.path.join(folder, entry.name), (*rel, entry.name)
        if entry.is_dir(follow_symlinks=False):
            if _matches(parts, comps):
                yield from _walk(path)
            elif _may_match_below(parts, comps):
                yield from _glob_below(path, parts, comps)
        elif _readable(entry.name) and _matches(parts, comps) and entry.is_file():
            yield path


def _component_matches(name: str, comp: str) -> bool:
    # As glob: a wildcard does not match a leading dot.
    return fnmatchcase(name, comp) and (not name.startswith(".") or comp.startswith("."))


def _matches(parts: tuple[str, ...], comps: tuple[str, ...]) -> bool:
    if not comps:
        return not parts
    if comps[0] == "**":
        return any(_matches(parts[i:], comps[1:]) for i in range(len(parts) + 1)
                   if not any(p.startswith(".") for p in parts[:i]))
    return bool(parts) and _component_matches(parts[0], comps[0]) and _matches(parts[1:], comps[1:])


def _may_match_below(parts: tuple[str, ...], comps: tuple[str, ...]) -> bool:
    """A path inside folder ``parts`` can still match: its components match the
    pattern's up to the first ``**`` (beyond which anything can follow)."""
    fixed = comps.index("**") if "**" in comps else len(comps)
    if "**" not in comps and len(parts) >= len(comps):
        return False
    return all(_component_matches(p, c) for p, c in zip(parts[:fixed], comps[:fixed]))
