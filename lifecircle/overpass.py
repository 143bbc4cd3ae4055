"""Overpass queries, pieces and answers: the pure part of an online download.

The HTTP side (polite waiting on ``/status``, retries, the per-piece cache)
is in :func:`lifecircle.io.download_osm`; this module only decides *what* to
ask and whether an answer is complete. It does not use osmnx's private
functions: the area is cut into pieces here (shapely), the query is built
from the project's own walk filter and tag table.

Pieces
------
An area is cut along a grid of equal cells no larger than a square of
:data:`PIECE_KM2` (50 km², about 7 x 7 km) in the local UTM zone; each piece
is the convex hull of the area inside one cell, so pieces never overlap and
a piece is never larger than its cell. A piece that fails (Overpass timed out or ran out of
memory) is cut in four along its bounding box's midlines, down to
:data:`MIN_PIECE_KM2`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from pyproj import Geod
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

from lifecircle.facilities import TagRule
from lifecircle.settings import DEFAULT_OVERPASS_MAX_KM2

# A piece of a district (a dense 50 km² of Shanghai asks for a few hundred thousand nodes)
# stays well inside a public server's default 180 s and 512 MiB.
PIECE_KM2 = 50.0
# A failed piece is split in four while it is larger than this.
MIN_PIECE_KM2 = 1.0
# Refuse larger areas online unless explicitly allowed (LIFECIRCLE_OVERPASS_MAX_KM2).
MAX_AREA_KM2 = DEFAULT_OVERPASS_MAX_KM2
# Server-side limits sent with every query.
QUERY_TIMEOUT_S = 180

_GEOD = Geod(ellps="WGS84")
_ERE_SPECIAL = re.compile(r"[.^$*+?()\[\]{}|\\\"]")  # POSIX ERE specials, and the quote
_SLOT_IN_RE = re.compile(r"Slot available after: \S+, in (-?\d+) s")
_SLOTS_NOW_RE = re.compile(r"^(\d+) slots? available now\.", re.MULTILINE)


def area_km2(geom: BaseGeometry) -> float:
    """Return the geodesic area of a WGS-84 (multi)polygon in km².

    Examples
    --------
    >>> round(area_km2(shapely.box(121.0, 31.0, 121.1, 31.1)), 1)
    105.8
    """
    return abs(_GEOD.geometry_area_perimeter(geom)[0]) / 1e6


def split_area(polygon: BaseGeometry, *, piece_km2: float = PIECE_KM2) -> list[Polygon]:
    """Cut a WGS-84 area into pieces of at most `piece_km2` (grid cells, convex hulls).

    Parameters
    ----------
    polygon
        Area to download, WGS-84 (a Polygon or MultiPolygon).
    piece_km2
        Area of one grid square.

    Returns
    -------
    list of Polygon
        WGS-84 pieces, row by row from the south-west; together they cover
        `polygon`.
    """
    if piece_km2 <= 0:
        msg = f"piece_km2 must be > 0, got {piece_km2}"
        raise ValueError(msg)
    series = gpd.GeoSeries([polygon], crs=4326)
    crs = series.estimate_utm_crs()
    area_m = series.to_crs(crs).iloc[0]
    side_m = math.sqrt(piece_km2) * 1000.0
    x0, y0, x1, y1 = area_m.bounds
    nx_, ny_ = max(1, math.ceil((x1 - x0) / side_m)), max(1, math.ceil((y1 - y0) / side_m))
    # equal cells no larger than a square of `piece_km2`: no thin strips along the edges
    w_m, h_m = (x1 - x0) / nx_, (y1 - y0) / ny_
    xs, ys = np.meshgrid(np.arange(nx_), np.arange(ny_))
    squares = shapely.box(
        x0 + xs.ravel() * w_m,
        y0 + ys.ravel() * h_m,
        x0 + (xs.ravel() + 1) * w_m,
        y0 + (ys.ravel() + 1) * h_m,
    )
    inside = shapely.intersection(squares, area_m)
    hulls = shapely.convex_hull(inside[~shapely.is_empty(inside)])
    hulls = hulls[shapely.get_type_id(hulls) == 3]  # polygons (drop degenerate points/lines)
    return [g for g in gpd.GeoSeries(hulls, crs=crs).to_crs(4326) if isinstance(g, Polygon)]


def split_piece(piece: Polygon) -> list[Polygon]:
    """Cut a WGS-84 piece in four along its bounding box's midlines.

    Examples
    --------
    >>> parts = split_piece(shapely.box(0.0, 0.0, 2.0, 2.0))
    >>> len(parts), sorted(p.area for p in parts)
    (4, [1.0, 1.0, 1.0, 1.0])
    """
    x0, y0, x1, y1 = piece.bounds
    xm, ym = (x0 + x1) / 2, (y0 + y1) / 2
    quads = shapely.box([x0, xm, x0, xm], [y0, y0, ym, ym], [xm, x1, xm, x1], [ym, ym, y1, y1])
    parts = shapely.convex_hull(shapely.intersection(quads, piece))
    return [p for p in parts if p.geom_type == "Polygon" and not p.is_empty]


def poly_string(piece: Polygon) -> str:
    """Return a piece's exterior as Overpass ``poly:`` text ("lat lon lat lon ...", 6 decimals).

    Rounding to 6 decimals (about 0.1 m) keeps the query, and so its cache
    key, identical from one run to the next.

    Examples
    --------
    >>> poly_string(shapely.box(121.5, 31.2, 121.6, 31.3)).split()[:4]
    ['31.200000', '121.600000', '31.300000', '121.600000']
    """
    xy = np.asarray(piece.exterior.coords)
    return " ".join(f"{lat:.6f} {lon:.6f}" for lon, lat in xy)


def query_settings(*, timeout_s: int = QUERY_TIMEOUT_S) -> str:
    """Return the Overpass QL settings line (JSON output, server time limit)."""
    return f"[out:json][timeout:{int(timeout_s)}]"


def facility_filters(rules: Iterable[TagRule]) -> list[str]:
    r"""Return Overpass tag filters for every key a facility or service-place row asks for.

    One filter per key: ``["key"]`` when any value counts, else a regular
    expression matching the values as whole items of a ``;``-separated tag
    (``amenity=school;kindergarten`` is read both ways, as the tag table
    does). Exclusion rows ask for nothing.

    Examples
    --------
    >>> from lifecircle.facilities import parse_tag_table
    >>> facility_filters(parse_tag_table(
    ...     "category,subtype,key,value,name_pattern\n"
    ...     "health,clinic,amenity,clinic|doctors,\n"
    ...     "health,clinic,healthcare,*,\n"
    ...     ",,shop,*,\n"
    ... ))
    ['["amenity"~"(^|;) *(clinic|doctors) *(;|$)"]', '["healthcare"]']
    """
    values: dict[str, set[str] | None] = {}
    for rule in rules:
        if not rule.key or not rule.category:  # exclusion rows ask for nothing
            continue
        if "*" in rule.values or values.get(rule.key, set()) is None:
            values[rule.key] = None
        else:
            values.setdefault(rule.key, set())
            values[rule.key] |= set(rule.values)  # type: ignore[operator]
    out = []
    for key, vals in values.items():
        if vals is None:
            out.append(f'["{key}"]')
        else:
            alternatives = "|".join(_ERE_SPECIAL.sub(r"\\\g<0>", v) for v in sorted(vals))
            out.append(f'["{key}"~"(^|;) *({alternatives}) *(;|$)"]')
    return out


def build_query(
    poly: str, settings_line: str, *, walk_filter: str, facility_filters: Iterable[str]
) -> str:
    """Return the Overpass QL query for one piece.

    It asks for the walking network (`walk_filter`), every object a
    facility row or service-place gate of the tag table may match
    (`facility_filters`), the entrance nodes (``node["entrance"]``, doors
    and gates of facility grounds), buildings and residential land use,
    plus the nodes and ways they reference.
    """
    area = f'(poly:"{poly}")'
    parts = [f"way{walk_filter}{area};"]
    parts += [f"nwr{f}{area};" for f in facility_filters]
    parts += [
        f'node["entrance"]{area};',
        f"way[building]{area};",
        f"relation[building]{area};",
        f'nwr["landuse"="residential"]{area};',
    ]
    return f"{settings_line};({''.join(parts)});(._;>;);out;"


def answer_problem(answer: Any) -> str | None:
    """Return why an Overpass answer is not complete, or None when it is.

    Overpass answers a query that ran out of time or memory with HTTP 200,
    a ``remark`` ("runtime error: Query timed out ...") and *partial*
    elements: any remark makes the answer incomplete.

    Examples
    --------
    >>> answer_problem({"elements": []}) is None
    True
    >>> answer_problem({"elements": [{}], "remark": "runtime error: Query timed out"})
    'Overpass remarked: runtime error: Query timed out'
    """
    if not isinstance(answer, dict):
        return f"Overpass answered a {type(answer).__name__}, not an object"
    remark = answer.get("remark")
    if remark:
        return "Overpass remarked: " + " ".join(str(remark).split())
    if not isinstance(answer.get("elements"), list):
        return "Overpass answered without an elements list"
    return None


def status_pause_s(text: str) -> float:
    r"""Return how long to wait for a free slot, from an Overpass ``/status`` page.

    Examples
    --------
    >>> status_pause_s("Rate limit: 2\n2 slots available now.\n")
    0.0
    >>> status_pause_s("Rate limit: 2\nSlot available after: 2026-01-01T00:00:05Z, in 5 s")
    5.0
    """
    if _SLOTS_NOW_RE.search(text) or "Rate limit: 0" in text:
        return 0.0
    waits = [int(s) for s in _SLOT_IN_RE.findall(text)]
    if waits:
        return float(max(1, min(waits)))
    return 0.0 if "Rate limit" not in text else 5.0
