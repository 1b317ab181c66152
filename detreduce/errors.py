"""The small error hierarchy of detreduce.

Every error a user can cause derives from :class:`DetReduceError`; the CLI turns
them into one line and a non-zero exit code, never a traceback.
"""

from __future__ import annotations


class DetReduceError(Exception):
    """Base class of every error detreduce raises on purpose."""


class DatasetError(DetReduceError):
    """A dataset cannot be read, or a problem was found under ``on_error='raise'``."""


class ConfigError(DetReduceError, ValueError):
    """A parameter has a value outside what is accepted (says which and what arrived)."""


class WeightsNotFoundError(DetReduceError):
    """Pretrained weights are not available offline (says what package or file provides them)."""


class OutputExistsError(DetReduceError):
    """An output exists and ``overwrite`` was not given."""
