"""District registry: names and aliases -> boundary source, metric CRS, core point, zones.

The registry is data (``lifecircle/data/districts.toml``); adding a district is
a new table in that file, not a code change.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from lifecircle.errors import InputError


@dataclass(frozen=True)
class BoundarySource:
    """Where a district boundary comes from."""

    file: str | None = None
    datum: str = "wgs84"
    filter_field: str | None = None
    filter_value: str | None = None
    geocode: str | None = None


@dataclass(frozen=True)
class ZoneSource:
    """Administrative (town-level) units with boundaries, and the full list of unit names/codes.

    ``filter_field``/``filter_value`` pick the district's rows of a file
    holding several districts; ``code_field`` names the statistical code
    column (it classifies 街道/镇/farm/development zone).
    """

    file: str | None = None
    datum: str = "wgs84"
    name_field: str = "name"
    code_field: str | None = None
    filter_field: str | None = None
    filter_value: str | None = None
    units_file: str | None = None


@dataclass(frozen=True)
class District:
    """One registry entry."""

    key: str
    name: str
    name_zh: str
    adcode: str
    crs: str
    core_lonlat: tuple[float, float]
    aliases: tuple[str, ...] = ()
    land_area_km2: float | None = None
    land_area_source: str | None = None
    population: int | None = None
    population_source: str | None = None
    boundary: BoundarySource = field(default_factory=BoundarySource)
    zones: ZoneSource = field(default_factory=ZoneSource)


def _parse(key: str, entry: dict[str, Any]) -> District:
    core = entry["core"]
    return District(
        key=key,
        name=str(entry["name"]),
        name_zh=str(entry.get("name_zh", "")),
        adcode=str(entry.get("adcode", "")),
        crs=str(entry["crs"]),
        core_lonlat=(float(core[0]), float(core[1])),
        aliases=tuple(str(a) for a in entry.get("aliases", [])),
        land_area_km2=entry.get("land_area_km2"),
        land_area_source=entry.get("land_area_source"),
        population=entry.get("population"),
        population_source=entry.get("population_source"),
        boundary=BoundarySource(**entry.get("boundary", {})),
        zones=ZoneSource(**entry.get("zones", {})),
    )


@cache
def load_registry() -> dict[str, District]:
    """Return every registered district, keyed by its canonical key.

    Examples
    --------
    >>> "pudong" in load_registry()
    True
    """
    text = resources.files("lifecircle").joinpath("data/districts.toml").read_text("utf-8")
    raw = tomllib.loads(text)
    return {key: _parse(key, entry) for key, entry in raw.items()}


def list_districts() -> list[str]:
    """Return the canonical keys of all registered districts, sorted."""
    return sorted(load_registry())


def get_district(name: str) -> District:
    """Look a district up by key, name, Chinese name, alias or adcode.

    Parameters
    ----------
    name
        For example ``"pudong"``, ``"浦东新区"`` or ``"310115"``.

    Returns
    -------
    District

    Examples
    --------
    >>> get_district("浦东").key
    'pudong'
    """
    wanted = name.strip().casefold()
    for district in load_registry().values():
        names = {district.key, district.name, district.name_zh, district.adcode, *district.aliases}
        if wanted in {n.casefold() for n in names if n}:
            return district
    known = ", ".join(list_districts())
    msg = (
        f"unknown district {name!r}: use one of {known}, or give --boundary FILE or --bbox W,S,E,N"
    )
    raise InputError(msg)
