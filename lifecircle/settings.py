"""Environment knobs, read at call time.

Only the environment lives here: where data and caches are, and which
Overpass and Nominatim servers to ask. Analysis parameters (minutes, speed,
categories) are always explicit function arguments.

Environment variables
---------------------
``LIFECIRCLE_DATA_DIR``
    A local data folder laid out as ``<district>/osm/*.osm[.bz2|.pbf]``,
    ``<district>/boundaries/...`` (unset: no local data folder).
``LIFECIRCLE_CACHE_DIR``
    Root of the cache: ``raw/`` (inputs as obtained) and ``processed/``
    (derived files). Default ``./data``.
``LIFECIRCLE_OVERPASS_URL``
    Overpass API base URL (default: osmnx's, ``https://overpass-api.de/api``).
``LIFECIRCLE_NOMINATIM_URL``
    Nominatim base URL (default: osmnx's).
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_OVERPASS_URL = "https://overpass-api.de/api"
DEFAULT_NOMINATIM_URL = "https://nominatim.openstreetmap.org/"
# streets and facilities are loaded this far beyond the boundary; distances are exact up to it
DEFAULT_MARGIN_M = 3000.0


def data_dir() -> Path | None:
    """Return the local data folder, or None when ``LIFECIRCLE_DATA_DIR`` is unset."""
    value = os.environ.get("LIFECIRCLE_DATA_DIR", "").strip()
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """Return the cache root holding ``raw/`` and ``processed/``."""
    return Path(os.environ.get("LIFECIRCLE_CACHE_DIR", "data")).expanduser()


def raw_dir() -> Path:
    """Return the folder for inputs as obtained (``<cache>/raw``)."""
    return cache_dir() / "raw"


def processed_dir() -> Path:
    """Return the folder for derived files (``<cache>/processed``)."""
    return cache_dir() / "processed"


def overpass_url() -> str:
    """Return the Overpass API base URL."""
    return os.environ.get("LIFECIRCLE_OVERPASS_URL", DEFAULT_OVERPASS_URL)


def nominatim_url() -> str:
    """Return the Nominatim base URL."""
    return os.environ.get("LIFECIRCLE_NOMINATIM_URL", DEFAULT_NOMINATIM_URL)
