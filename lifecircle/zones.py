"""Zones for the gap analysis: administrative units, distance rings, user zones.

Administrative units are classified from their statistical code (Chinese
town-level codes: ``0xx`` sub-district 街道, ``1xx`` town 镇, ``2xx``
township 乡, ``4xx`` farm, ``5xx`` development zone) or, without a code,
from the name's suffix. User zones (``--zones FILE``, e.g. development-zone
outlines) are compared with a buffer ring around each (default 2 km).
"""

from __future__ import annotations

import itertools
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from lifecircle.errors import CRSError, InputError

UNIT_KINDS = ("subdistrict", "town", "township", "farm", "development_zone", "other")
DEFAULT_ZONE_RING_M = 2000.0
_CODE_KIND = {
    "0": "subdistrict",
    "1": "town",
    "2": "township",
    "4": "farm",
    "5": "development_zone",
}


def classify_unit(name: str, code: str | None = None) -> str:
    """Classify a town-level unit as sub-district (街道), town (镇) or other.

    Examples
    --------
    >>> classify_unit("陆家嘴街道"), classify_unit("张江镇"), classify_unit("x", "310115503")
    ('subdistrict', 'town', 'development_zone')
    """
    if code is not None and len(str(code)) == 9 and str(code).isdigit():
        return _CODE_KIND.get(str(code)[6], "other")
    name = str(name)
    if name.endswith("街道"):
        return "subdistrict"
    if name.endswith("镇"):
        return "town"
    if name.endswith("乡"):
        return "township"
    if "农场" in name:
        return "farm"
    if "开发区" in name or "园区" in name or "片区" in name:
        return "development_zone"
    return "other"


def unit_table(units: pd.DataFrame) -> pd.DataFrame:
    """Classify every unit of a ``code,name`` table (e.g. Pudong's 42 units)."""
    if not {"code", "name"} <= set(units.columns):
        msg = "unit list needs columns code,name"
        raise InputError(msg)
    out = units[["code", "name"]].astype(str).copy()
    out["kind"] = [classify_unit(n, c) for n, c in zip(out["name"], out["code"], strict=True)]
    return out


def ring_polygons(
    core: BaseGeometry, edges_km: tuple[float, ...], area: BaseGeometry, *, crs: str
) -> gpd.GeoDataFrame:
    """Return the distance rings around `core` clipped to `area` (metric CRS)."""
    rows = []
    for a, b in itertools.pairwise(edges_km):
        outer = shapely.buffer(core, b * 1000, quad_segs=32)
        ring = outer if a == 0 else shapely.difference(outer, shapely.buffer(core, a * 1000))
        rows.append({"zone": f"{a:g}-{b:g} km", "geometry": shapely.intersection(ring, area)})
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=crs)


def prepare_user_zones(
    zones: gpd.GeoDataFrame,
    *,
    area: BaseGeometry,
    crs: str,
    name_field: str | None = None,
    ring_m: float = DEFAULT_ZONE_RING_M,
) -> gpd.GeoDataFrame:
    """Check and repair user zones, and add a buffer ring around each.

    Parameters
    ----------
    zones
        Polygons with a CRS.
    area
        The district polygon in `crs`; zones must overlap it.
    crs
        Metric CRS.
    name_field
        Column naming the zones (default: ``name`` if present, else the row number).
    ring_m
        Width of the comparison ring around each zone.

    Returns
    -------
    GeoDataFrame
        Columns ``zone``, ``kind`` ("zone" or "ring") and geometry in `crs`.
    """
    if zones.crs is None:
        msg = "--zones file has no CRS: save it with one (GeoJSON is WGS-84 by definition)"
        raise CRSError(msg)
    polys = zones.loc[zones.geom_type.isin(["Polygon", "MultiPolygon"])]
    if polys.empty:
        msg = "--zones file has no polygons: give zone outlines"
        raise InputError(msg)
    geoms = polys.to_crs(crs).geometry.to_numpy()
    bad = ~shapely.is_valid(geoms)
    if bad.any():
        warnings.warn(
            f"--zones: repaired {int(bad.sum())} invalid polygon(s) with make_valid",
            RuntimeWarning,
            stacklevel=2,
        )
        geoms = shapely.make_valid(geoms)
        geoms = np.array(
            [
                shapely.union_all(
                    shapely.get_parts(g)[shapely.get_dimensions(shapely.get_parts(g)) == 2]
                )
                for g in geoms
            ],
            dtype=object,
        )
    field = name_field or ("name" if "name" in polys.columns else None)
    names = (
        polys[field].astype(str).to_numpy()
        if field is not None and field in polys.columns
        else np.array([f"zone {i + 1}" for i in range(len(polys))])
    )
    overlap = shapely.intersects(geoms, area)
    if not overlap.any():
        msg = "--zones: no zone overlaps the district: check the file's CRS and extent"
        raise InputError(msg)
    if not overlap.all():
        warnings.warn(
            f"--zones: {int((~overlap).sum())} zone(s) outside the district are ignored",
            RuntimeWarning,
            stacklevel=2,
        )
    geoms, names = geoms[overlap], names[overlap]
    rings = shapely.difference(shapely.buffer(geoms, ring_m), geoms)
    return gpd.GeoDataFrame(
        {
            "zone": [*names, *[f"{n} (ring {ring_m / 1000:g} km)" for n in names]],
            "kind": ["zone"] * len(names) + ["ring"] * len(names),
        },
        geometry=[*geoms, *rings],
        crs=crs,
    )


def label_points(points: gpd.GeoDataFrame, zones: gpd.GeoDataFrame) -> pd.Series:
    """Return the first zone holding each point (NaN when none), aligned to `points`."""
    tree = shapely.STRtree(zones.geometry.to_numpy())
    p_idx, z_idx = tree.query(points.geometry.to_numpy(), predicate="within")
    order = np.lexsort((z_idx, p_idx))
    p_idx, z_idx = p_idx[order], z_idx[order]
    first = np.ones(len(p_idx), dtype=bool)
    first[1:] = p_idx[1:] != p_idx[:-1]
    labels = np.full(len(points), np.nan, dtype=object)
    labels[p_idx[first]] = zones["zone"].to_numpy()[z_idx[first]]
    return pd.Series(labels, index=points.index, dtype=object)
