"""Residents (demand points) and their weights.

Bases, from strongest to weakest, always recorded in the ``basis`` column:

``population+buildings``
    A population layer (raster cells or polygons) spread over the
    residential buildings inside each cell/polygon in proportion to floor
    area; cells without a building keep one point at their centre.
``population``
    A population layer with no residential buildings (or point data).
``buildings``
    Residential buildings from OSM, weighted by floor area = footprint area x
    levels. A building is residential when ``building`` is one of
    :data:`RESIDENTIAL_BUILDING_VALUES`, or when ``building=yes`` and it lies
    in ``landuse=residential``. Levels come from ``building:levels``, else
    ``height`` / 3 m, else the median known levels of residential buildings
    in the same data, else :data:`DEFAULT_LEVELS` (6, a typical Shanghai
    walk-up).
``landuse_grid``
    A regular grid of points over residential land use (equal weights).
``area_grid``
    A regular grid over the analysed area (the weakest basis: it measures
    territory, not people).
"""

from __future__ import annotations

import logging
import re

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from lifecircle.errors import CRSError, InputError, NoDataError

logger = logging.getLogger(__name__)

RESIDENTIAL_BUILDING_VALUES = frozenset(
    {
        "residential",
        "apartments",
        "house",
        "detached",
        "semidetached_house",
        "terrace",
        "dormitory",
        "bungalow",
        "cabin",
        "farm",
        "static_caravan",
        "houseboat",
    }
)
DEFAULT_LEVELS = 6.0
METRES_PER_LEVEL = 3.0
BASES = ("population+buildings", "population", "buildings", "landuse_grid", "area_grid")
RESIDENT_COLUMNS = ["weight", "basis", "source_id", "geometry"]

_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")


def _parse_number(value: object) -> float:
    match = _NUMBER.search(str(value)) if value is not None else None
    return float(match.group()) if match else np.nan


def residential_buildings(
    features: gpd.GeoDataFrame, *, crs: str, area: BaseGeometry | None = None
) -> gpd.GeoDataFrame:
    """Select residential buildings and estimate their floor area.

    Parameters
    ----------
    features
        ``OSMData.features`` (WGS-84, ``tags`` column).
    crs
        Metric CRS for areas.
    area
        Optional polygon in `crs`: buildings whose point is outside are dropped.

    Returns
    -------
    GeoDataFrame
        Polygons in `crs` with ``source_id``, ``levels``, ``levels_source``
        ("tag", "height", "median", "default"), ``footprint_m2`` and ``floor_area_m2``.
    """
    is_poly = features.geom_type.isin(["Polygon", "MultiPolygon"]).to_numpy()
    polys = features.loc[is_poly].to_crs(crs)
    tags = polys["tags"].tolist()
    building = np.array([t.get("building", "") for t in tags], dtype=object)
    landuse = np.array([t.get("landuse", "") for t in tags], dtype=object)
    residential_land = polys.geometry.to_numpy()[landuse == "residential"]
    in_landuse = np.zeros(len(polys), dtype=bool)
    if len(residential_land):
        tree = shapely.STRtree(residential_land)
        points = shapely.point_on_surface(polys.geometry.to_numpy())
        hit, _ = tree.query(points, predicate="within")
        in_landuse[np.unique(hit)] = True
    tagged = np.isin(building, list(RESIDENTIAL_BUILDING_VALUES))
    keep = tagged | ((building == "yes") & in_landuse)
    sel = polys.loc[keep]
    sel_tags = [t for t, k in zip(tags, keep, strict=True) if k]
    levels = np.array([_parse_number(t.get("building:levels")) for t in sel_tags])
    height = np.array([_parse_number(t.get("height")) for t in sel_tags])
    source = np.where(np.isfinite(levels) & (levels > 0), "tag", "")
    from_height = (source == "") & np.isfinite(height) & (height > 0)
    levels = np.where(from_height, np.maximum(1.0, np.round(height / METRES_PER_LEVEL)), levels)
    source = np.where(from_height, "height", source)
    known = levels[source != ""]
    fill, fill_source = (
        (float(np.median(known)), "median") if len(known) else (DEFAULT_LEVELS, "default")
    )
    missing = source == ""
    levels = np.where(missing, fill, levels)
    source = np.where(missing, fill_source, source)
    footprint = sel.geometry.area.to_numpy()
    out = gpd.GeoDataFrame(
        {
            "source_id": [f"{t}/{i}" for t, i in zip(sel["osm_type"], sel["osm_id"], strict=True)],
            "levels": levels,
            "levels_source": source,
            "footprint_m2": footprint,
            "floor_area_m2": footprint * levels,
        },
        geometry=sel.geometry.to_numpy(),
        crs=crs,
    )
    if area is not None and not out.empty:
        inside = shapely.within(shapely.point_on_surface(out.geometry.to_numpy()), area)
        out = out.loc[inside]
    return out.reset_index(drop=True)


def residential_landuse(features: gpd.GeoDataFrame, *, crs: str) -> BaseGeometry | None:
    """Return the union of ``landuse=residential`` polygons in `crs`, or None."""
    is_res = np.array([t.get("landuse") == "residential" for t in features["tags"]], dtype=bool)
    polys = features.loc[is_res & features.geom_type.isin(["Polygon", "MultiPolygon"]).to_numpy()]
    if polys.empty:
        return None
    return shapely.union_all(polys.to_crs(crs).geometry.to_numpy())


def grid_points(area: BaseGeometry, *, spacing_m: float) -> gpd.GeoSeries:
    """Return a regular grid of points inside `area` (cell centres, metric units).

    Examples
    --------
    >>> len(grid_points(shapely.box(0, 0, 300, 200), spacing_m=100))
    6
    """
    minx, miny, maxx, maxy = area.bounds
    xs = np.arange(np.floor(minx / spacing_m), np.ceil(maxx / spacing_m)) * spacing_m
    ys = np.arange(np.floor(miny / spacing_m), np.ceil(maxy / spacing_m)) * spacing_m
    gx, gy = np.meshgrid(xs + spacing_m / 2, ys + spacing_m / 2)
    px, py = gx.ravel(), gy.ravel()
    inside = shapely.contains_xy(area, px, py)
    return gpd.GeoSeries(shapely.points(px[inside], py[inside]))


def spread_population(
    population: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
    *,
    column: str,
) -> gpd.GeoDataFrame:
    """Spread polygon (or cell) populations over the buildings inside, by floor area.

    A polygon without buildings keeps its population at a point inside it.
    Point population layers are used as they are.

    Returns
    -------
    GeoDataFrame
        Resident points in the buildings' CRS with ``weight`` (persons).
    """
    crs = buildings.crs
    assert crs is not None
    pop = population.to_crs(crs)
    values = pd.to_numeric(pop[column], errors="coerce").fillna(0.0).to_numpy()
    geoms = pop.geometry.to_numpy()
    is_point = shapely.get_type_id(geoms) == 0
    parts = []
    if is_point.any():
        parts.append(
            pd.DataFrame(
                {
                    "weight": values[is_point],
                    "source_id": "population/point",
                    "geometry": geoms[is_point],
                }
            )
        )
    poly_idx = np.flatnonzero(~is_point & (values > 0))
    if len(poly_idx):
        bpoints = shapely.point_on_surface(buildings.geometry.to_numpy())
        b_of, p_of = (
            shapely.STRtree(geoms[poly_idx]).query(bpoints, predicate="within")
            if len(bpoints)
            else (np.array([], int), np.array([], int))
        )
        floor = buildings["floor_area_m2"].to_numpy() if len(bpoints) else np.array([])
        share_den = np.bincount(p_of, weights=floor[b_of], minlength=len(poly_idx))
        with np.errstate(invalid="ignore", divide="ignore"):
            w = values[poly_idx][p_of] * floor[b_of] / share_den[p_of]
        parts.append(
            pd.DataFrame(
                {
                    "weight": w,
                    "source_id": buildings["source_id"].to_numpy()[b_of],
                    "geometry": bpoints[b_of],
                }
            )
        )
        empty = np.setdiff1d(np.arange(len(poly_idx)), p_of)
        parts.append(
            pd.DataFrame(
                {
                    "weight": values[poly_idx][empty],
                    "source_id": "population/cell",
                    "geometry": shapely.point_on_surface(geoms[poly_idx][empty]),
                }
            )
        )
    frame = (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame({"weight": [], "source_id": [], "geometry": []})
    )
    return gpd.GeoDataFrame(frame, geometry="geometry", crs=crs)


def build_residents(
    features: gpd.GeoDataFrame,
    *,
    crs: str,
    area: BaseGeometry,
    analysed: BaseGeometry | None = None,
    population: gpd.GeoDataFrame | None = None,
    population_column: str = "population",
    grid_spacing_m: float = 100.0,
) -> gpd.GeoDataFrame:
    """Build resident points with weights, choosing the strongest available basis.

    Parameters
    ----------
    features
        ``OSMData.features`` (WGS-84).
    crs
        Metric CRS.
    area
        District polygon in `crs`; residents outside are dropped.
    analysed
        The analysed extent in `crs` (for the weakest, area-grid basis).
    population
        Optional population layer (points or polygons with `population_column`).
    population_column
        Name of the population column.
    grid_spacing_m
        Spacing of the grid fallbacks.

    Returns
    -------
    GeoDataFrame
        Points in `crs`, index ``resident_id``, columns ``weight``, ``basis``
        and ``source_id``; ``attrs["weight_unit"]`` is "persons",
        "floor_area_m2" or "grid_point".
    """
    buildings = residential_buildings(features, crs=crs, area=area)
    if population is not None:
        if population.crs is None:
            msg = "population layer has no CRS: set one (e.g. EPSG:4326) in the file"
            raise CRSError(msg)
        if population_column not in population.columns:
            msg = (
                f"population layer has no column {population_column!r}: set "
                f"--population-column to one of {list(population.columns)}"
            )
            raise InputError(msg)
        pts = spread_population(population, buildings, column=population_column)
        basis = "population+buildings" if len(buildings) else "population"
        residents = pts.assign(basis=basis)
        unit = "persons"
    elif len(buildings):
        residents = gpd.GeoDataFrame(
            {"weight": buildings["floor_area_m2"], "source_id": buildings["source_id"]},
            geometry=shapely.point_on_surface(buildings.geometry.to_numpy()),
            crs=crs,
        ).assign(basis="buildings")
        unit = "floor_area_m2"
    else:
        land = residential_landuse(features, crs=crs)
        land = shapely.intersection(land, area) if land is not None else None
        if land is not None and not land.is_empty:
            pts_s, basis = grid_points(land, spacing_m=grid_spacing_m), "landuse_grid"
        else:
            base = area if analysed is None else shapely.intersection(analysed, area)
            pts_s, basis = grid_points(base, spacing_m=grid_spacing_m), "area_grid"
        n_pts = len(pts_s)
        residents = gpd.GeoDataFrame(
            {"weight": np.ones(n_pts), "source_id": [basis] * n_pts, "basis": [basis] * n_pts},
            geometry=pts_s.to_numpy(),
            crs=crs,
        )
        unit = "grid_point"
    residents = residents.loc[shapely.within(residents.geometry.to_numpy(), area)]
    residents = residents.loc[residents["weight"].to_numpy(dtype=float) > 0]
    if residents.empty:
        msg = "no residents inside the area: check the boundary, or give --population"
        raise NoDataError(msg)
    out = gpd.GeoDataFrame(residents[RESIDENT_COLUMNS].reset_index(drop=True), crs=crs)
    out.index.name = "resident_id"
    out.attrs["weight_unit"] = unit
    logger.info("residents: %d points, basis %s", len(out), out["basis"].iloc[0])
    return out
