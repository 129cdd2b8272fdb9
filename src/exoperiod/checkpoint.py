"""What a model file must hold before anything is built from it.

Place in the flow: base module: used by the search side and the learning side, imports
neither.

``torch.load(..., weights_only=True)`` refuses code, but not a payload that is merely
wrong: a missing key, a tensor where a dict belongs, a temperature that is no number,
NaN weights, or a config whose window length would make the model allocate gigabytes.
:func:`validate_checkpoint` checks the payload as a whole, so that a forged or damaged
file fails once, on load, with one line, instead of on every input or by exhausting
memory. Which layers the weights belong to is left to ``load_state_dict``, which
reports missing, unexpected and misshapen weights itself.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, Mapping

import torch

from .config import ConfigError, config_from_dict
from .errors import ExoperiodError
from .files import atomic_write

MODEL_FORMAT = "exoperiod-model/2"

_REQUIRED = {"format": str, "state_dict": dict, "config": dict, "grid": dict, "temperature": torch.Tensor}
_OPTIONAL = {"card": dict, "vetter": dict}


class ModelLoadError(ExoperiodError):
    """A model file that cannot be used; the message is one line."""


def validate_checkpoint(payload: Any, path: str | os.PathLike) -> None:
    """Check a loaded model-file payload; raise :class:`ModelLoadError` naming the problem.

    Parameters
    ----------
    payload : object
        What ``torch.load`` returned.
    path : path
        The file, for the message.

    Raises
    ------
    ModelLoadError
        Not a dict of the model format; a key missing or of the wrong type; a
        ``state_dict`` (or ``vetter``) that is not a mapping of names to finite tensors; a config that a
        config file could not hold (same bounds, see :mod:`exoperiod.config`); a grid
        that is not the config's; a ``temperature`` that is not one positive finite number.
    """
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise ModelLoadError(f"{path}: not an exoperiod model file (format {MODEL_FORMAT} expected)")
    for key, kind in (_REQUIRED | {k: v for k, v in _OPTIONAL.items() if k in payload}).items():
        if key not in payload:
            raise ModelLoadError(f"{path}: damaged model file: no {key!r}")
        if not isinstance(payload[key], kind):
            raise ModelLoadError(
                f"{path}: damaged model file: {key!r} is a {type(payload[key]).__name__}, not a {kind.__name__}"
            )
    for key in ("state_dict", "vetter"):
        if key in payload:
            _check_weights(payload[key], path, key)
    try:
        config = config_from_dict(payload["config"], "config")
    except ConfigError as err:
        raise ModelLoadError(f"{path}: unusable model config: {err}") from None
    if payload["grid"] != config.grid().to_dict():
        raise ModelLoadError(f"{path}: damaged model file: its grid {payload['grid']} is not its config's")
    temperature = payload["temperature"]
    if temperature.numel() != 1 or not temperature.is_floating_point() or not bool(
            torch.isfinite(temperature).all() and (temperature > 0).all()):
        raise ModelLoadError(f"{path}: damaged model file: temperature must be one positive finite number")


def save_checkpoint(payload: Mapping[str, Any], path: str | os.PathLike) -> None:
    """``torch.save`` to ``path`` atomically, with errors a user can act on.

    The payload is serialised in memory (model files are small) and written with plain
    file I/O under a temporary name, then renamed: torch's own writer reports a full disk
    as ``RuntimeError: unexpected pos``, and leaves the partial file behind.

    Raises
    ------
    OSError
        The file cannot be written; ``filename`` is ``path``. No temporary file is left.
    """
    path = Path(path)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with atomic_write(path) as tmp:
        tmp.write_bytes(buffer.getbuffer())


def _check_weights(state_dict: Mapping[Any, Any], path: str | os.PathLike, key: str) -> None:
    for name, value in state_dict.items():
        if not isinstance(name, str) or not isinstance(value, torch.Tensor):
            raise ModelLoadError(f"{path}: damaged model file: {key} must map names to tensors")
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise ModelLoadError(f"{path}: damaged model file: weight {name!r} holds NaN or infinity")
