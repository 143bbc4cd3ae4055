"""lifecircle: 15-minute community life circle coverage from OpenStreetMap."""

from __future__ import annotations

__version__ = "0.1.0"

from lifecircle.errors import (
    CRSError,
    DataError,
    InputError,
    LifecircleError,
    NoDataError,
    OutputError,
)

__all__ = [
    "CRSError",
    "DataError",
    "InputError",
    "LifecircleError",
    "NoDataError",
    "OutputError",
    "__version__",
]
