"""Environment knobs, read at call time.

The environment lives here: where data and caches are, and which Overpass
and Nominatim servers to ask. So do the analysis *defaults* (the CLI shows
them); the analysis parameters themselves are always explicit function
arguments.

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
``LIFECIRCLE_OVERPASS_MAX_KM2``
    Largest area downloaded from Overpass (default 5,000 km²; a larger one
    is refused: use a local extract, or raise this on purpose).

Explicit settings
-----------------
A caller that must not depend on the process environment (a batch task on a
multi-threaded Dask worker, where tasks of different runs share one
``os.environ``) passes a frozen :class:`Settings` and runs its work inside
``with settings.using(s):``. The accessors below read the settings active in
the current context (a :class:`contextvars.ContextVar`, so each thread and
each ``contextvars.Context`` has its own) before the environment.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

DEFAULT_OVERPASS_URL = "https://overpass-api.de/api"
DEFAULT_NOMINATIM_URL = "https://nominatim.openstreetmap.org/"
# streets and facilities are loaded this far beyond the boundary; distances are exact up to it
DEFAULT_MARGIN_M = 3000.0

# Analysis defaults, in one cheap module so the CLI shows them without importing the
# pipeline. The modules that use them alias these names; tests/test_cli.py pins that
# every module constant and dataclass default equals its settings constant.
CATEGORIES: tuple[str, ...] = ("school", "health", "elderly_care", "culture")
PROFILES: tuple[str, ...] = ("default", "shanghai")
DEFAULT_PROFILE = "default"
DEFAULT_MINUTES = 15.0
DEFAULT_SPEED_KMH = 4.0
DEFAULT_TARGET = 0.99
DEFAULT_MAX_SNAP_M = 300.0
DEFAULT_RING_EDGES_KM: tuple[float, ...] = (0, 3, 6, 10, 15, 25)
DEFAULT_ISOCHRONE_BUFFER_M = 25.0
DEFAULT_LAG_POINTS = 10.0
DEFAULT_CLUSTER_EPS_M = 250.0
DEFAULT_ZONE_RING_M = 2000.0
DEFAULT_POI_DATUM = "wgs84"
DEFAULT_POI_LON_COL = "lon"
DEFAULT_POI_LAT_COL = "lat"
DEFAULT_POI_NAME_COL = "name"
DEFAULT_POI_CATEGORY_FIELD = "type"
DEFAULT_POPULATION_COLUMN = "population"
DEFAULT_MAX_SITES = 10
DEFAULT_CANDIDATE_SPACING_M = 100.0
DEFAULT_TIME_LIMIT_S = 60.0
# Residential floor area per person (m²) turning building floor area into estimated residents:
# Shanghai's per capita housing floor area, about 37.8 m² in 2020 (a secondary summary of the
# 2020 statistics, fangchan1.com 2023-09-04: total housing floor area / total resident
# population, all residents, not only urban ones); see lifecircle.residents.estimate_persons.
DEFAULT_FLOOR_AREA_PER_PERSON_M2 = 37.8
DEFAULT_LANG = "en"


@dataclass(frozen=True)
class Settings:
    """The environment knobs as one explicit, immutable value.

    Attributes mirror the environment variables above; ``None`` for
    `data_dir` means no local data folder.
    """

    data_dir: Path | None = None
    cache_dir: Path = Path("data")
    overpass_url: str = DEFAULT_OVERPASS_URL
    nominatim_url: str = DEFAULT_NOMINATIM_URL

    @classmethod
    def from_environment(cls) -> Settings:
        """Read the settings from the ``LIFECIRCLE_*`` environment variables."""
        data = os.environ.get("LIFECIRCLE_DATA_DIR", "").strip()
        return cls(
            data_dir=Path(data).expanduser() if data else None,
            cache_dir=Path(os.environ.get("LIFECIRCLE_CACHE_DIR", "data")).expanduser(),
            overpass_url=os.environ.get("LIFECIRCLE_OVERPASS_URL", DEFAULT_OVERPASS_URL),
            nominatim_url=os.environ.get("LIFECIRCLE_NOMINATIM_URL", DEFAULT_NOMINATIM_URL),
        )

    def resolved(self) -> Settings:
        """Return a copy with absolute folders (valid in another working directory)."""
        return Settings(
            data_dir=self.data_dir.resolve() if self.data_dir is not None else None,
            cache_dir=self.cache_dir.resolve(),
            overpass_url=self.overpass_url,
            nominatim_url=self.nominatim_url,
        )


_ACTIVE: ContextVar[Settings | None] = ContextVar("lifecircle_settings", default=None)


@contextlib.contextmanager
def using(active: Settings) -> Iterator[Settings]:
    """Make `active` the settings of the current context for the ``with`` block.

    Only the calling thread (or ``contextvars.Context``) sees them; the
    process environment is not touched, and the previous settings come back
    on exit, also after an exception.
    """
    token = _ACTIVE.set(active)
    try:
        yield active
    finally:
        _ACTIVE.reset(token)


def current() -> Settings:
    """Return the settings of the current context, else those of the environment."""
    active = _ACTIVE.get()
    return active if active is not None else Settings.from_environment()


def data_dir() -> Path | None:
    """Return the local data folder, or None when ``LIFECIRCLE_DATA_DIR`` is unset."""
    return current().data_dir


def cache_dir() -> Path:
    """Return the cache root holding ``raw/`` and ``processed/``."""
    return current().cache_dir


def raw_dir() -> Path:
    """Return the folder for inputs as obtained (``<cache>/raw``)."""
    return cache_dir() / "raw"


def processed_dir() -> Path:
    """Return the folder for derived files (``<cache>/processed``)."""
    return cache_dir() / "processed"


def overpass_url() -> str:
    """Return the Overpass API base URL."""
    return current().overpass_url


def nominatim_url() -> str:
    """Return the Nominatim base URL."""
    return current().nominatim_url


DEFAULT_OVERPASS_MAX_KM2 = 5000.0
# the settlement hierarchy (lifecircle.hierarchy): Degree of Urbanisation grid (UN 2020) and test
DEFAULT_CELL_M = 1000.0
DEFAULT_CENTRE_DENSITY_KM2 = 1500.0
DEFAULT_CENTRE_MIN_PERSONS = 50000.0
DEFAULT_CLUSTER_DENSITY_KM2 = 300.0
DEFAULT_CLUSTER_MIN_PERSONS = 5000.0
DEFAULT_CENTRE_RADIUS_M = 1500.0
DEFAULT_BOOTSTRAP = 1000
DEFAULT_SEED = 13
DEFAULT_MIN_TIER_POINTS = 30  # a tier with fewer resident points decides no pair of the test


def overpass_max_area_km2() -> float:
    """Return the largest area an online download may ask Overpass for, in km²."""
    value = os.environ.get("LIFECIRCLE_OVERPASS_MAX_KM2", "").strip()
    if not value:
        return DEFAULT_OVERPASS_MAX_KM2
    try:
        limit = float(value)
    except ValueError:
        limit = float("nan")
    if not limit > 0:
        from lifecircle.errors import InputError

        msg = f"LIFECIRCLE_OVERPASS_MAX_KM2 must be a positive number of km², got {value!r}"
        raise InputError(msg)
    return limit


FILE_BACKENDS = frozenset({"agg", "pdf", "svg", "ps", "pgf", "cairo"})


def use_file_backend() -> None:
    """Select matplotlib's Agg backend for runs that only write files (CLI, batch jobs).

    Importing :mod:`lifecircle.plot` leaves the backend alone, so notebooks keep
    their inline figures; the CLI and batch jobs call this instead. A backend
    chosen already for files or inline display (``module://...``) is kept; an
    unchosen one (matplotlib would pick a window toolkit when a display is
    present, and none on a headless server) or a window toolkit becomes Agg.

    When matplotlib is not imported yet (the CLI's start), the choice is made by
    ``MPLBACKEND`` (kept when it names a file or inline backend, else set to Agg),
    read by matplotlib when something imports it, so that a run drawing no map never
    imports it (0.1-0.3 s).
    """
    if "matplotlib" not in sys.modules:
        chosen_env = os.environ.get("MPLBACKEND", "").lower()
        if chosen_env not in FILE_BACKENDS and not chosen_env.startswith("module://"):
            os.environ["MPLBACKEND"] = "agg"
        return
    import matplotlib

    # the backend chosen so far, without resolving one (None: not chosen yet)
    getter = getattr(matplotlib.rcParams, "_get_backend_or_none", None)
    chosen = getter() if getter is not None else None
    name = str(chosen or "").lower()
    if name in FILE_BACKENDS or name.startswith("module://"):
        return
    matplotlib.use("Agg")
