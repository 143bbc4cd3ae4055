"""Exceptions raised by lifecircle.

Every error a user can cause derives from :class:`LifecircleError`; the
subclasses also derive from :class:`ValueError` (or :class:`OSError`) so
callers can catch either, as r5py does.
"""

from __future__ import annotations


class LifecircleError(Exception):
    """Base class of every lifecircle error."""


class InputError(ValueError, LifecircleError):
    """An argument or an input file is invalid (unknown district, bad column, ...)."""


class CRSError(ValueError, LifecircleError):
    """A layer has a missing or unsuitable coordinate reference system."""


class DataError(ValueError, LifecircleError):
    """Input data is unreadable, empty or inconsistent."""


class NoDataError(DataError):
    """No usable data inside the analysed area (no network, no residents)."""


class OutputError(OSError, LifecircleError):
    """An output cannot be written (unwritable folder, existing file)."""
