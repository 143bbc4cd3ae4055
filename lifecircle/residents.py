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
    in ``landuse=residential``. Levels come from ``building:levels``
    (``levels_source`` "tagged_levels"), else ``height`` / 3 m ("height"),
    else the **median** known levels of all residential buildings in the
    data ("imputed_median"), else :data:`DEFAULT_LEVELS` ("default": 6, a
    typical Shanghai walk-up). :func:`summarize_residents` reports the
    weight share resting on imputed levels.
``landuse_infill``
    Added to ``buildings``: residential land use with no mapped residential
    building (OSM often maps the estate outline before its blocks) gets
    grid points sharing ``land area x median floor area ratio of the
    residential land that does hold mapped buildings``; see
    :func:`landuse_infill`. Weights stay in floor area (m²).
``landuse_grid``
    A regular grid of points over residential land use (equal weights),
    when the data hold no residential building at all.
``area_grid``
    A regular grid over the analysed area (the weakest basis: it measures
    territory, not people).
"""

from __future__ import annotations

import logging
import re
import warnings
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from lifecircle.errors import CRSError, InputError, NoDataError
from lifecircle.settings import DEFAULT_FLOOR_AREA_PER_PERSON_M2

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
BASES = (
    "population+buildings",
    "population",
    "buildings",
    "landuse_infill",
    "landuse_grid",
    "area_grid",
)
# Where a resident's building levels come from; the last two are imputed.
LEVELS_SOURCES = ("tagged_levels", "height", "imputed_median", "default", "none")
IMPUTED_LEVELS = ("imputed_median", "default")
# Residential land pieces smaller than this get no infill point (slivers between polygons).
INFILL_MIN_AREA_M2 = 500.0
RESIDENT_COLUMNS = ["weight", "basis", "source_id", "levels_source", "geometry"]

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
        (one of :data:`LEVELS_SOURCES`), ``footprint_m2`` and ``floor_area_m2``;
        ``attrs["imputed_levels"]`` is the value given to buildings without
        levels (the median of the known levels of all residential buildings
        in `features`, before the `area` filter).
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
    source = np.where(np.isfinite(levels) & (levels > 0), "tagged_levels", "")
    from_height = (source == "") & np.isfinite(height) & (height > 0)
    levels = np.where(from_height, np.maximum(1.0, np.round(height / METRES_PER_LEVEL)), levels)
    source = np.where(from_height, "height", source)
    known = levels[source != ""]
    fill, fill_source = (
        (float(np.median(known)), "imputed_median") if len(known) else (DEFAULT_LEVELS, "default")
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
    out = out.reset_index(drop=True)
    out.attrs["imputed_levels"] = fill
    return out


def residential_landuse(features: gpd.GeoDataFrame, *, crs: str) -> BaseGeometry | None:
    """Return the union of ``landuse=residential`` polygons in `crs`, or None."""
    is_res = np.array([t.get("landuse") == "residential" for t in features["tags"]], dtype=bool)
    polys = features.loc[is_res & features.geom_type.isin(["Polygon", "MultiPolygon"]).to_numpy()]
    if polys.empty:
        return None
    return shapely.union_all(polys.to_crs(crs).geometry.to_numpy())


def _residential_land_parts(features: gpd.GeoDataFrame, *, crs: str) -> gpd.GeoDataFrame:
    """Return the ``landuse=residential`` polygons exploded into parts, in `crs`."""
    is_res = np.array([t.get("landuse") == "residential" for t in features["tags"]], dtype=bool)
    is_poly = features.geom_type.isin(["Polygon", "MultiPolygon"]).to_numpy()
    land = features.loc[is_res & is_poly]
    parts = gpd.GeoDataFrame(
        {"source_id": [f"{t}/{i}" for t, i in zip(land["osm_type"], land["osm_id"], strict=True)]},
        geometry=land.geometry.to_numpy(),
        crs=features.crs,
    )
    return parts.to_crs(crs).explode(index_parts=False).reset_index(drop=True)


def landuse_infill(
    features: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
    *,
    crs: str,
    spacing_m: float = 100.0,
    min_area_m2: float = INFILL_MIN_AREA_M2,
) -> tuple[gpd.GeoDataFrame, float | None]:
    """Give residents to residential land that holds no mapped residential building.

    Each part of a ``landuse=residential`` polygon either holds residential
    buildings (their point on surface lies in it) or not. The built parts
    give the floor area ratio (FAR: residential floor area / land area) of
    each part; their **median** is the density assumed on the empty parts.
    The empty land (empty parts minus built parts, so overlapping polygons
    are not counted twice) is split into connected pieces; a piece of at
    least `min_area_m2` gets the grid points of :func:`grid_points` inside
    it (one point on its surface if none falls inside), sharing
    ``piece area x median FAR`` square metres of floor area equally.

    Parameters
    ----------
    features
        ``OSMData.features`` (WGS-84).
    buildings
        :func:`residential_buildings` of the same features (all of them, not
        filtered by area).
    crs
        Metric CRS.
    spacing_m
        Grid spacing.
    min_area_m2
        Smaller pieces (slivers) are skipped.

    Returns
    -------
    points, far
        Points in `crs` with ``weight`` (floor area m²), ``source_id`` (the
        landuse polygon) and ``basis`` "landuse_infill"; and the median FAR
        used (None when no residential land holds a building, in which case
        no point is made).

    Examples
    --------
    >>> import geopandas as gpd
    >>> land = gpd.GeoDataFrame({"osm_type": "way", "osm_id": [1, 2],
    ...     "tags": [{"landuse": "residential"}] * 2},
    ...     geometry=[shapely.box(0, 0, 100, 100), shapely.box(200, 0, 400, 100)],
    ...     crs="EPSG:32651")
    >>> houses = gpd.GeoDataFrame({"floor_area_m2": [15000.0]},
    ...     geometry=[shapely.box(10, 10, 60, 60)], crs="EPSG:32651")
    >>> pts, far = landuse_infill(land, houses, crs="EPSG:32651")
    >>> far, pts["weight"].tolist()
    (1.5, [15000.0, 15000.0])
    """
    empty_out = gpd.GeoDataFrame(
        {"weight": [], "source_id": [], "basis": []}, geometry=gpd.GeoSeries([]), crs=crs
    )
    parts = _residential_land_parts(features, crs=crs)
    if parts.empty:
        return empty_out, None
    geoms = parts.geometry.to_numpy()
    floor = np.zeros(len(parts))
    if len(buildings):
        bpoints = shapely.point_on_surface(buildings.to_crs(crs).geometry.to_numpy())
        b_of, p_of = shapely.STRtree(geoms).query(bpoints, predicate="within")
        np.add.at(floor, p_of, buildings["floor_area_m2"].to_numpy(dtype=float)[b_of])
    built = floor > 0
    if not built.any():
        return empty_out, None
    far = float(np.median(floor[built] / shapely.area(geoms[built])))
    if built.all():
        return empty_out, far
    land = shapely.difference(shapely.union_all(geoms[~built]), shapely.union_all(geoms[built]))
    pieces = np.asarray(shapely.get_parts(land), dtype=object)
    pieces = pieces[shapely.area(pieces) >= min_area_m2]
    owner = shapely.STRtree(geoms[~built]).query_nearest(
        shapely.point_on_surface(pieces), all_matches=False
    )[1]
    rows = []
    for piece, own in zip(pieces, owner, strict=True):
        pts = grid_points(piece, spacing_m=spacing_m).to_numpy()
        if len(pts) == 0:
            pts = np.array([shapely.point_on_surface(piece)], dtype=object)
        source = parts["source_id"].to_numpy()[~built][own]
        share = float(piece.area) * far / len(pts)
        rows += [{"weight": share, "source_id": source, "geometry": pt} for pt in pts]
    if not rows:
        return empty_out, far
    out = gpd.GeoDataFrame(rows, geometry="geometry", crs=crs).assign(basis="landuse_infill")
    return out, far


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
        levels_source = (
            buildings["levels_source"].to_numpy()[b_of]
            if "levels_source" in buildings
            else np.full(len(b_of), "none", dtype=object)
        )
        parts.append(
            pd.DataFrame(
                {
                    "weight": w,
                    "source_id": buildings["source_id"].to_numpy()[b_of],
                    "levels_source": levels_source,
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
    frame["levels_source"] = frame.get("levels_source", pd.Series(dtype=object)).fillna("none")
    return gpd.GeoDataFrame(frame, geometry="geometry", crs=crs)


def _check_population_values(values: pd.Series, column: str) -> None:
    """Refuse negative or infinite counts; warn that values which are no numbers count as 0."""
    numbers = pd.to_numeric(values, errors="coerce")
    bad = int((numbers < 0).sum() + np.isinf(numbers).sum())
    if bad:
        msg = (
            f"population column {column!r} holds {bad} negative or infinite value(s): "
            "give counts of persons >= 0 (no-data cells as 0 or empty)"
        )
        raise InputError(msg)
    text = values.astype(object).where(values.notna(), "").astype(str).str.strip()
    unreadable = int((numbers.isna() & (text != "") & (text.str.lower() != "nan")).sum())
    if unreadable:
        warnings.warn(
            f"population column {column!r}: {unreadable} value(s) are not numbers and count "
            "as 0 persons",
            RuntimeWarning,
            stacklevel=3,
        )


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
    everywhere = residential_buildings(features, crs=crs)
    inside = shapely.within(shapely.point_on_surface(everywhere.geometry.to_numpy()), area)
    buildings = everywhere.loc[np.asarray(inside, dtype=bool)].reset_index(drop=True)
    far = None
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
        _check_population_values(population[population_column], population_column)
        pts = spread_population(population, buildings, column=population_column)
        basis = "population+buildings" if len(buildings) else "population"
        residents = pts.assign(basis=basis)
        unit = "persons"
    elif len(buildings):
        residents, far = _building_residents(
            features, buildings, everywhere, crs=crs, spacing_m=grid_spacing_m
        )
        unit = "floor_area_m2"
    else:
        residents = _grid_residents(
            features, crs=crs, area=area, analysed=analysed, spacing_m=grid_spacing_m
        )
        unit = "grid_point"
    # contains on the prepared area, not within(points, area): 567k points against a city
    # boundary took 2.3 s unprepared (the same predicate, converse arguments)
    shapely.prepare(area)
    residents = residents.loc[shapely.contains(area, residents.geometry.to_numpy())]
    residents = residents.loc[residents["weight"].to_numpy(dtype=float) > 0]
    if residents.empty:
        msg = "no residents inside the area: check the boundary, or give --population"
        raise NoDataError(msg)
    if "levels_source" not in residents:
        residents = residents.assign(levels_source="none")
    out = gpd.GeoDataFrame(residents[RESIDENT_COLUMNS].reset_index(drop=True), crs=crs)
    out.index.name = "resident_id"
    out.attrs["weight_unit"] = unit
    out.attrs["imputed_levels"] = everywhere.attrs.get("imputed_levels")
    out.attrs["landuse_infill_floor_area_ratio"] = far
    logger.info(
        "residents: %d points, bases %s", len(out), ", ".join(out["basis"].unique().tolist())
    )
    return out


def _building_residents(
    features: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
    everywhere: gpd.GeoDataFrame,
    *,
    crs: str,
    spacing_m: float,
) -> tuple[gpd.GeoDataFrame, float | None]:
    """Residents at residential buildings (floor area), plus :func:`landuse_infill` points.

    `buildings` are those in the area, `everywhere` all of the data's (the
    density of mapped residential land is measured on all of them).
    """
    at_buildings = gpd.GeoDataFrame(
        {
            "weight": buildings["floor_area_m2"].to_numpy(),
            "source_id": buildings["source_id"].to_numpy(),
            "levels_source": buildings["levels_source"].to_numpy(),
            "basis": "buildings",
        },
        geometry=shapely.point_on_surface(buildings.geometry.to_numpy()),
        crs=crs,
    )
    infill, far = landuse_infill(features, everywhere, crs=crs, spacing_m=spacing_m)
    if far is None and len(_residential_land_parts(features, crs=crs)):
        warnings.warn(
            "no residential land use holds a mapped residential building, so residential "
            "land without buildings gets no residents (no density to assume)",
            RuntimeWarning,
            stacklevel=3,
        )
    residents = pd.concat([at_buildings, infill.assign(levels_source="none")], ignore_index=True)
    return gpd.GeoDataFrame(residents, geometry="geometry", crs=crs), far


def _grid_residents(
    features: gpd.GeoDataFrame,
    *,
    crs: str,
    area: BaseGeometry,
    analysed: BaseGeometry | None,
    spacing_m: float,
) -> gpd.GeoDataFrame:
    """Equal-weight grid points over residential land use, else over the analysed area."""
    land = residential_landuse(features, crs=crs)
    land = shapely.intersection(land, area) if land is not None else None
    if land is not None and not land.is_empty:
        pts_s, basis = grid_points(land, spacing_m=spacing_m), "landuse_grid"
    else:
        base = area if analysed is None else shapely.intersection(analysed, area)
        pts_s, basis = grid_points(base, spacing_m=spacing_m), "area_grid"
    n_pts = len(pts_s)
    return gpd.GeoDataFrame(
        {"weight": np.ones(n_pts), "source_id": [basis] * n_pts, "basis": [basis] * n_pts},
        geometry=pts_s.to_numpy(),
        crs=crs,
    )


def summarize_residents(residents: gpd.GeoDataFrame) -> dict[str, Any]:
    """Describe the residents' bases and how much of their weight rests on imputed levels.

    Returns
    -------
    dict
        For the manifest and ``coverage.json``: ``count``, ``weight_unit``,
        ``total_weight``, ``basis`` (the basis holding most weight),
        ``bases`` (per basis, most weight first: ``points`` and
        ``weight_share``), ``levels_source`` (weight share per source),
        ``imputed_levels_share`` (weight share whose building levels were
        imputed: ``imputed_median`` or ``default``),
        ``imputed_levels_share_of_buildings`` (the same among residents
        placed at buildings), ``imputed_levels`` (the value used) and
        ``landuse_infill_floor_area_ratio`` (the median FAR given to
        residential land without buildings).

    Examples
    --------
    >>> r = gpd.GeoDataFrame({"weight": [3.0, 1.0], "basis": "buildings",
    ...     "levels_source": ["imputed_median", "tagged_levels"]},
    ...     geometry=[shapely.Point(0, 0)] * 2)
    >>> summarize_residents(r)["imputed_levels_share"]
    0.75
    """
    w = residents["weight"].to_numpy(dtype=float)
    total = float(w.sum())

    def shares(column: str) -> dict[str, float]:
        by = pd.Series(w, index=residents[column].astype(str).to_numpy()).groupby(level=0).sum()
        by = by.sort_values(ascending=False, kind="stable")
        return {str(k): round(float(v) / total, 6) if total > 0 else 0.0 for k, v in by.items()}

    bases = shares("basis")
    counts = residents["basis"].astype(str).value_counts()
    levels = shares("levels_source") if "levels_source" in residents else {}
    far = residents.attrs.get("landuse_infill_floor_area_ratio")
    imputed = residents.attrs.get("imputed_levels")
    imputed_share = sum(levels.get(k, 0.0) for k in IMPUTED_LEVELS)
    building_share = 1.0 - levels.get("none", 0.0) if levels else 0.0
    return {
        "count": len(residents),
        "weight_unit": residents.attrs.get("weight_unit"),
        "total_weight": total,
        "basis": next(iter(bases), ""),
        "bases": {b: {"points": int(counts[b]), "weight_share": s} for b, s in bases.items()},
        "levels_source": levels,
        "imputed_levels_share": round(imputed_share, 6),
        "imputed_levels_share_of_buildings": (
            round(imputed_share / building_share, 6) if building_share > 0 else None
        ),
        "imputed_levels": float(imputed) if imputed is not None else None,
        "landuse_infill_floor_area_ratio": round(far, 4) if far is not None else None,
    }


# --------------------------------------------------------------------------- persons

PERSONS_METHODS = ("population_layer", "floor_area", "population_total", "unknown")


def persons_factor(
    weight_unit: str | None,
    total_weight: float,
    *,
    floor_area_per_person_m2: float = DEFAULT_FLOOR_AREA_PER_PERSON_M2,
    population_total: float | None = None,
) -> tuple[float | None, str, float | None]:
    """Return how many persons one unit of resident weight stands for, and why.

    Persons are always proportional to the weight, so coverage shares (weighted
    by either) are the same. The bases, strongest first:

    ``population_total``
        `population_total` given: every point's share of the total weight
        times the known total of the analysed area (any weight unit).
    ``population_layer``
        The weights are persons already (``--population``).
    ``floor_area``
        Floor area (m²) divided by `floor_area_per_person_m2`.
    ``unknown``
        Equal-weight grid points with no floor area: persons cannot be
        estimated (factor None); reports give shares only.

    Parameters
    ----------
    weight_unit
        ``residents.attrs["weight_unit"]``: "persons", "floor_area_m2" or "grid_point".
    total_weight
        Sum of the residents' weights (used with `population_total`).
    floor_area_per_person_m2
        Residential floor area per person.
    population_total
        Known number of residents of the analysed area, or None.

    Returns
    -------
    factor, method, parameter
        Persons per unit of weight (None when unknown), one of
        :data:`PERSONS_METHODS`, and the number the method used (m² per
        person, the total, or None).

    Examples
    --------
    >>> persons_factor("floor_area_m2", 1000.0, floor_area_per_person_m2=40.0)
    (0.025, 'floor_area', 40.0)
    >>> persons_factor("grid_point", 10.0, population_total=500.0)
    (50.0, 'population_total', 500.0)
    >>> persons_factor("grid_point", 10.0)
    (None, 'unknown', None)
    """
    fa = float(floor_area_per_person_m2)
    if not (np.isfinite(fa) and fa > 0):
        msg = (
            "--floor-area-per-person-m2 must be a finite number > 0, got "
            f"{floor_area_per_person_m2}: give square metres of residential floor area per "
            f"person, e.g. {DEFAULT_FLOOR_AREA_PER_PERSON_M2:g}"
        )
        raise InputError(msg)
    if population_total is not None:
        total = float(population_total)
        if not (np.isfinite(total) and total > 0):
            msg = (
                f"--population-total must be a finite number > 0, got {population_total}: give "
                "the number of residents of the analysed area, e.g. 120000"
            )
            raise InputError(msg)
        if not total_weight > 0:
            msg = "--population-total cannot be spread: the residents have no weight"
            raise InputError(msg)
        if weight_unit == "persons":
            warnings.warn(
                f"--population-total {total:,.0f} replaces the population layer's "
                f"{total_weight:,.0f} persons: its counts are scaled to the total (leave "
                "--population-total out to keep the layer's counts)",
                stacklevel=2,
            )
        if total < 1:
            warnings.warn(
                f"--population-total {total:g} is less than one resident: is it a share? "
                "Give the number of residents of the analysed area (e.g. 120000)",
                stacklevel=2,
            )
        return total / float(total_weight), "population_total", total
    if weight_unit == "persons":
        return 1.0, "population_layer", None
    if weight_unit == "floor_area_m2":
        return 1.0 / fa, "floor_area", fa
    return None, "unknown", None


def describe_persons_basis(method: str, parameter: float | None, weight_unit: str | None) -> str:
    """Say in one English sentence how the estimated residents were obtained.

    Examples
    --------
    >>> describe_persons_basis("floor_area", 37.8, "floor_area_m2")
    'residential floor area / 37.8 m² per person'
    """
    if method == "population_layer":
        return "population layer (--population)"
    if method == "floor_area":
        return f"residential floor area / {parameter:g} m² per person"
    if method == "population_total":
        unit = {"floor_area_m2": "floor area", "persons": "population layer"}.get(
            str(weight_unit), "equal grid points"
        )
        return f"scaled to --population-total {parameter:,.0f} (in proportion to {unit})"
    return "unknown: equal-weight grid points without floor area (give --population-total)"


def estimate_persons(
    residents: gpd.GeoDataFrame,
    *,
    floor_area_per_person_m2: float = DEFAULT_FLOOR_AREA_PER_PERSON_M2,
    population_total: float | None = None,
) -> gpd.GeoDataFrame:
    """Return a copy of `residents` with ``persons`` (estimated residents) beside ``weight``.

    See :func:`persons_factor` for the bases. When persons cannot be
    estimated (grid points, no total given), ``persons`` is NaN and a
    RuntimeWarning says so.

    Returns
    -------
    GeoDataFrame
        `residents` plus ``persons`` (float); ``attrs`` gains
        ``persons_method``, ``persons_parameter``, ``persons_per_weight``
        and ``persons_basis`` (a sentence).

    Examples
    --------
    >>> r = gpd.GeoDataFrame({"weight": [378.0, 37.8]}, geometry=[shapely.Point(0, 0)] * 2)
    >>> r.attrs["weight_unit"] = "floor_area_m2"
    >>> estimate_persons(r)["persons"].round(6).tolist()
    [10.0, 1.0]
    """
    w = residents["weight"].to_numpy(dtype=float)
    unit = residents.attrs.get("weight_unit")
    factor, method, parameter = persons_factor(
        unit,
        float(w.sum()),
        floor_area_per_person_m2=floor_area_per_person_m2,
        population_total=population_total,
    )
    out = residents.copy()
    out.attrs = dict(residents.attrs)
    out["persons"] = w * factor if factor is not None else np.full(len(w), np.nan)
    basis = describe_persons_basis(method, parameter, unit)
    if factor is None:
        warnings.warn(
            "residents are equal-weight grid points with no floor area or population: "
            "persons are not estimated and reports give shares only; give --population or "
            "--population-total N",
            RuntimeWarning,
            stacklevel=2,
        )
    out.attrs.update(
        persons_method=method,
        persons_parameter=parameter,
        persons_per_weight=factor,
        persons_basis=basis,
    )
    return out


def persons_summary(residents: pd.DataFrame) -> dict[str, Any]:
    """Return the JSON fields of the estimated residents (after :func:`estimate_persons`).

    Returns
    -------
    dict
        ``estimated_residents`` (rounded persons, None when unknown),
        ``estimated_residents_basis`` (the sentence), ``persons_method``,
        ``persons_parameter`` and ``persons_per_weight``.
    """
    factor = residents.attrs.get("persons_per_weight")
    total = float(np.nansum(residents["persons"].to_numpy(dtype=float)))
    return {
        "estimated_residents": round(total) if factor is not None else None,
        "estimated_residents_basis": residents.attrs.get("persons_basis", ""),
        "persons_method": residents.attrs.get("persons_method"),
        "persons_parameter": residents.attrs.get("persons_parameter"),
        "persons_per_weight": factor,
    }
