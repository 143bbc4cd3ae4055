"""Resolve what area to analyse: a registry district, a boundary file or a bbox.

Pure helpers: geometry datum conversion, bbox parsing and validation, CRS
choice, and a stable cache key for free-form areas.
"""

from __future__ import annotations

import hashlib

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from lifecircle.coords import Datum, to_wgs84
from lifecircle.errors import CRSError, InputError


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    """Parse ``"W,S,E,N"`` (WGS-84 degrees) and check it.

    Examples
    --------
    >>> parse_bbox("121.49,31.22,121.51,31.245")
    (121.49, 31.22, 121.51, 31.245)
    """
    try:
        west, south, east, north = (float(v) for v in text.split(","))
    except ValueError:
        msg = f"--bbox {text!r} is not W,S,E,N: give four comma-separated numbers in degrees"
        raise InputError(msg) from None
    if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
        msg = f"--bbox {text!r} is not a valid W,S,E,N box in degrees (W<E, S<N, lon/lat ranges)"
        raise InputError(msg)
    check_area_size(shapely.box(west, south, east, north), what=f"--bbox {text}")
    return west, south, east, north


MAX_AREA_KM2 = 20_000.0
"""Largest area analysed in one run: a big city (Shanghai is 6,340 km², Beijing 16,410 km²)."""


def check_area_size(geom_wgs84: BaseGeometry, *, what: str) -> float:
    """Refuse an area larger than :data:`MAX_AREA_KM2` (a box typed as a continent); return km².

    The area is computed on the WGS-84 ellipsoid.

    Examples
    --------
    >>> round(check_area_size(shapely.box(121.49, 31.22, 121.52, 31.245), what="box"), 1)
    7.9
    """
    from pyproj import Geod

    area_km2 = abs(Geod(ellps="WGS84").geometry_area_perimeter(geom_wgs84)[0]) / 1e6
    if area_km2 > MAX_AREA_KM2:
        msg = (
            f"{what} covers {area_km2:,.0f} km², more than the {MAX_AREA_KM2:,.0f} km² of one "
            "city analysed in a run: give a district-size area (use `batch` for many areas, "
            "or a local extract with --osm-file for a city)"
        )
        raise InputError(msg)
    return area_km2


def convert_geometry_datum(geom: BaseGeometry, datum: Datum) -> BaseGeometry:
    """Convert every vertex of a WGS-84-like geometry from `datum` to WGS-84."""
    if datum == "wgs84":
        return geom

    def _fn(coords: np.ndarray) -> np.ndarray:
        lon, lat = to_wgs84(coords[:, 0], coords[:, 1], datum)
        return np.column_stack([lon, lat])

    return shapely.transform(geom, _fn)


def boundary_to_wgs84(gdf: gpd.GeoDataFrame, *, datum: Datum = "wgs84") -> gpd.GeoDataFrame:
    """Return a boundary layer in WGS-84, with a datum shift for GCJ-02/BD-09 files.

    A layer without CRS is refused: a silent guess puts the district in the
    wrong place.
    """
    if gdf.crs is None:
        msg = "boundary file has no CRS: save it with one (GeoJSON is WGS-84 by definition)"
        raise CRSError(msg)
    if gdf.empty or gdf.geometry.is_empty.all():
        msg = "boundary file has no geometry: give a polygon layer"
        raise InputError(msg)
    polys = gdf.loc[gdf.geom_type.isin(["Polygon", "MultiPolygon"])]
    if polys.empty:
        msg = f"boundary must be polygons, got {sorted(set(gdf.geom_type))}"
        raise InputError(msg)
    out = polys.to_crs(4326)
    bounds = out.total_bounds
    if not (-180 <= bounds[0] <= bounds[2] <= 180 and -90 <= bounds[1] <= bounds[3] <= 90):
        msg = f"boundary coordinates {bounds.round(1).tolist()} are not degrees: check its CRS"
        raise CRSError(msg)
    geoms = [convert_geometry_datum(g, datum) for g in out.geometry]
    fixed = shapely.make_valid(np.asarray(geoms, dtype=object))
    check_area_size(shapely.union_all(fixed), what="the boundary")
    return gpd.GeoDataFrame(out.drop(columns="geometry"), geometry=list(fixed), crs=4326)


def utm_crs_for(geom: BaseGeometry) -> str:
    """Return the EPSG code of the UTM zone holding a WGS-84 geometry's centroid.

    Examples
    --------
    >>> utm_crs_for(shapely.Point(121.5, 31.2))
    'EPSG:32651'
    """
    c = geom.centroid
    zone = int((c.x + 180) // 6) + 1
    return f"EPSG:{32600 + zone if c.y >= 0 else 32700 + zone}"


def area_key(prefix: str, text: str) -> str:
    """Return a readable cache key for a free-form area (``prefix-<sha1[:10]>``)."""
    return f"{prefix}-{hashlib.sha1(text.encode('utf-8')).hexdigest()[:10]}"


def dissolve(gdf: gpd.GeoDataFrame) -> BaseGeometry:
    """Return the union of a layer's geometries."""
    return shapely.union_all(gdf.geometry.to_numpy())
