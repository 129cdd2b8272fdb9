"""The one family of errors a user can cause, and the one line each of them is shown as.

Place in the flow: base module: used by the search side and the learning side, imports
neither.

Every problem a user can fix (a bad file, flag, config, model file, dataset folder,
unreachable archive or unusable output) raises a subclass of :class:`ExoperiodError`,
defined beside the code that detects it, as lightkurve's errors derive from
``LightkurveError``. The CLI catches that one class (and ``OSError``: a missing file, a
full disk, a read-only folder) and prints ``error: <what>: <problem>`` on one line, exit
code 2: never a traceback, never a message wrapped over several lines (logs and CI are
read with ``grep``). Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import re

# Control characters (a newline in a file name, say) would break the one line.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ExoperiodError(ValueError):
    """A problem the user can fix, said in one line that names the file or setting.

    A ``ValueError`` so that code catching bad values (``except ValueError``) also
    catches exoperiod's.
    """


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
