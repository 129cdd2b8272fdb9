"""The errors a user can cause, and the one line each of them is shown as.

A command that fails on bad input, a bad file or an unusable output folder prints one
line, ``error: <what>: <problem>``, and exits 2: never a traceback, never a message
wrapped over several lines (logs and CI are read with ``grep``).
"""

from __future__ import annotations

import re

# Control characters (a newline in a file name, say) would break the one line.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def user_errors() -> tuple[type[BaseException], ...]:
    """The exception classes whose message is meant for the user.

    ``ConfigError`` covers its subclasses ``DatasetError`` and ``CatalogError``;
    ``OSError`` covers a missing file, a full disk, a read-only or unwritable folder.
    Imported here, not at module level, so that ``exoperiod --help`` stays fast.
    """
    from .config import ConfigError
    from .datasets.http import DownloadError
    from .datasets.mast import MastError
    from .checkpoint import ModelLoadError
    from .preprocess import PreprocessError
    from .readers import LightCurveReadError
    from .train import TrainError

    return (ConfigError, ModelLoadError, PreprocessError, LightCurveReadError, TrainError, DownloadError,
            MastError, OSError)


def one_line(error: BaseException | str) -> str:
    """The message of ``error`` as one line.

    An ``OSError`` says which path and why (``data/x.npz: No space left on device``)
    rather than Python's ``[Errno 28] ...`` form; control characters are escaped as
    ``\\n``, ``\\x1b``, ... so that a file name holding a newline stays on one line.
    """
    if isinstance(error, OSError) and error.strerror and error.filename is not None:
        paths = [error.filename] + ([error.filename2] if error.filename2 is not None else [])
        text = f"{' -> '.join(map(str, paths))}: {error.strerror}"
    elif isinstance(error, BaseException):
        text = str(error) or type(error).__name__
    else:
        text = error
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)
