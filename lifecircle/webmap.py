"""The interactive web map: one self-contained HTML page per run.

``coverage`` writes ``web_map.html`` and ``gaps`` writes ``gaps_web_map.html``
(each command owns its file in the output set). The page shows the resident
points coloured by walking minutes to the nearest facility of the category
chosen in a switcher (and to the farthest of all four), the chosen
category's walking reach, the facilities (name, category and sub-type in a
popup), the 街道/镇 units with their coverage per category in a popup, the
gap clusters (``gaps``), a legend, a scale bar and a layer control.

It works offline: Leaflet 1.9.4 (BSD-2-Clause, vendored from the npm
registry in ``lifecircle/data/leaflet``) is inlined with its CSS, its images
as ``data:`` URIs, and every marker is a circle drawn on a canvas, so the
page requests nothing. The OpenStreetMap tile layer is a base layer of the
layer control, off by default: an offline page then logs no failed request,
and a reader online switches it on.

Everything here is pure (frames in, HTML string out) except reading the
packaged Leaflet files and the template through :func:`lifecircle.io.read_package_file`.
"""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from lifecircle import io
from lifecircle.i18n import DEFAULT_LANG, Lang, category_label, subtype_label, text

if TYPE_CHECKING:
    from lifecircle.pipeline import CoverageResult, GapResult
    from lifecircle.prepare import PreparedArea

MAX_RESIDENT_POINTS = 20_000
"""Above this many resident points, residents are drawn as grid cells (see :func:`grid_cells`)."""
FIRST_CELL_M = 100.0
"""The grid's first cell side; it doubles until at most MAX_RESIDENT_POINTS cells hold residents."""
COORD_DECIMALS = 6
"""Decimals of the WGS-84 coordinates in the page (1e-6 degree is about 0.1 m)."""
ISOCHRONE_TOLERANCE_M = 5.0
"""Douglas-Peucker tolerance of the reach and cluster polygons (metres, in the metric CRS)."""
UNIT_TOLERANCE_M = 10.0
"""Douglas-Peucker tolerance of the 街道/镇 outlines (metres)."""
RAMP_COLOURS = ("#1a9850", "#91cf60", "#d9ef8b", "#fee08b", "#fc8d59", "#d73027")
"""Colours of the minute classes, nearest first (ColorBrewer RdYlGn, 6 classes, reversed)."""
UNREACHABLE_COLOUR = "#6f6f6f"
RAMP_FRACTIONS = (1 / 3, 2 / 3, 1.0, 4 / 3, 2.0)
"""Upper class limits as fractions of the run's minutes (15 min: 5, 10, 15, 20, 30)."""
CATEGORY_COLOURS = {
    "school": "#1f77b4",
    "health": "#d62728",
    "elderly_care": "#9467bd",
    "culture": "#ff7f0e",
}
OTHER_COLOUR = "#8c564b"
ALL_KEY = "all"
OSM_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
OSM_ATTRIBUTION = "© OpenStreetMap contributors"
FloatArray = npt.NDArray[np.float64]


@dataclass
class WebMapData:
    """What a web map shows, in the analysis's metric CRS (not yet WGS-84).

    ``residents`` needs ``dist_<category>_m`` columns (inf or NaN when
    unreachable), optionally ``resident_id``, ``weight`` and ``status``;
    ``facilities`` ``category``, ``subtype``, ``name`` (``reachable``
    optional); ``units`` ``zone`` (``kind`` optional); ``isochrones``
    ``category``; ``clusters`` ``rank``, ``points``, ``missing``
    (``area_km2`` optional); ``extent`` the analysed area (the walking
    network's extent, drawn as a dashed outline). ``unit_coverage`` maps a unit to its coverage
    share per category (``all`` for all four); ``unit_notes`` a unit
    without figures to why.
    """

    area: str
    categories: tuple[str, ...]
    minutes: float
    speed_kmh: float
    target: float
    residents: gpd.GeoDataFrame
    facilities: gpd.GeoDataFrame | None = None
    units: gpd.GeoDataFrame | None = None
    unit_coverage: dict[str, dict[str, float | None]] = field(default_factory=dict)
    unit_notes: dict[str, str] = field(default_factory=dict)
    isochrones: gpd.GeoDataFrame | None = None
    clusters: gpd.GeoDataFrame | None = None
    extent: gpd.GeoDataFrame | None = None


# --------------------------------------------------------------------------- colours


def minute_breaks(minutes: float) -> list[float]:
    """Return the upper limits of the minute classes (upper-inclusive), to 0.1 minute.

    The threshold itself (fraction 1) is kept exact, so the class limit at
    the threshold is the coverage rule's; the other limits are rounded to
    0.1 minute, as the legend and the popups show them.

    Examples
    --------
    >>> minute_breaks(15)
    [5.0, 10.0, 15.0, 20.0, 30.0]
    >>> minute_breaks(10)
    [3.3, 6.7, 10.0, 13.3, 20.0]
    """
    return [float(minutes) if f == 1.0 else round(minutes * f, 1) for f in RAMP_FRACTIONS]


def minute_classes(walk_minutes: npt.ArrayLike, minutes: float) -> npt.NDArray[np.int64]:
    """Return each value's class: 0 .. 5 along the ramp, 6 for unreachable (inf or NaN).

    A value equal to a limit is in the class below it, as a resident exactly
    at the threshold counts as covered.

    Examples
    --------
    >>> minute_classes([0, 5, 5.01, 15, 31, float("inf")], 15).tolist()
    [0, 0, 1, 2, 5, 6]
    """
    values = np.asarray(walk_minutes, dtype=float)
    classes = np.searchsorted(np.array(minute_breaks(minutes)), values, side="left")
    return np.where(np.isfinite(values), classes, len(RAMP_COLOURS)).astype(np.int64)


def ramp_labels(minutes: float) -> list[str]:
    """Return the legend labels of the minute classes.

    Examples
    --------
    >>> ramp_labels(15)
    ['≤ 5', '5–10', '10–15', '15–20', '20–30', '> 30']
    >>> ramp_labels(10)
    ['≤ 3.3', '3.3–6.7', '6.7–10', '10–13.3', '13.3–20', '> 20']
    """
    limits = [f"{b:g}" for b in minute_breaks(minutes)]
    middle = [f"{lo}–{hi}" for lo, hi in itertools.pairwise(limits)]
    return [f"≤ {limits[0]}", *middle, f"> {limits[-1]}"]


# --------------------------------------------------------------------------- residents


def grid_cells(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    cap: int,
    first_cell_m: float = FIRST_CELL_M,
) -> tuple[npt.NDArray[np.int64], float]:
    """Assign points to square cells, doubling the side until at most `cap` cells are used.

    Returns
    -------
    tuple
        The cell index of each point (0 .. n_cells - 1) and the cell side in metres.
    """
    if cap < 1:
        msg = f"cap must be at least 1, got {cap}"
        raise ValueError(msg)
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    cell = float(first_cell_m)
    while True:
        kx, ky = np.floor(x / cell).astype(np.int64), np.floor(y / cell).astype(np.int64)
        if len(x):  # one int64 key per cell, ordered as the (column, row) pairs
            kx, ky = kx - kx.min(), ky - ky.min()
        _, inverse = np.unique(kx * (int(ky.max(initial=0)) + 1) + ky, return_inverse=True)
        inverse = inverse.reshape(-1)
        if len(x) == 0 or int(inverse.max()) + 1 <= cap:
            return inverse.astype(np.int64), cell
        cell *= 2.0


def weighted_median(
    values: npt.NDArray[np.float64], weights: npt.NDArray[np.float64], groups: npt.NDArray[np.int64]
) -> npt.NDArray[np.float64]:
    """Return per group the smallest value whose cumulative weight reaches half the group's.

    NaN counts as infinite (unreachable); a group of zero weight takes its smallest value.

    Examples
    --------
    >>> weighted_median(np.array([1.0, 2.0, 9.0, 4.0]), np.array([1.0, 1.0, 3.0, 1.0]),
    ...                 np.array([0, 0, 0, 1])).tolist()
    [9.0, 4.0]
    """
    vals = np.where(np.isnan(values), np.inf, values)
    order = np.lexsort((vals, groups))
    g, v, w = groups[order], vals[order], weights[order]
    n = int(groups.max()) + 1 if len(groups) else 0
    total = np.bincount(g, weights=w, minlength=n)
    cum = np.cumsum(w)
    before = np.concatenate([[0.0], np.cumsum(total)[:-1]])
    reached = (cum - before[g]) >= total[g] / 2.0 - 1e-9 * np.maximum(total[g], 1.0)
    first = np.full(n, -1, dtype=np.int64)
    idx = np.flatnonzero(reached)[::-1]  # reversed, so the first index of a group is kept
    first[g[idx]] = idx
    return v[first]


def resident_minutes(
    residents: pd.DataFrame, categories: Sequence[str], speed_kmh: float
) -> pd.DataFrame:
    """Return walking minutes per category (inf when unreachable) and ``all``, the farthest of them.

    A resident whose ``status`` is not ``ok`` (no street within the snap
    limit) is unreachable in every category.
    """
    per_minute_m = speed_kmh * 1000.0 / 60.0
    out = pd.DataFrame(index=residents.index)
    ok = (
        residents["status"].to_numpy() == "ok"
        if "status" in residents
        else np.ones(len(residents), dtype=bool)
    )
    for cat in categories:
        dist = residents[f"dist_{cat}_m"].to_numpy(dtype=float)
        dist = np.where(np.isnan(dist) | ~ok, np.inf, dist)
        out[cat] = dist / per_minute_m
    out[ALL_KEY] = out[list(categories)].max(axis=1) if categories else np.inf
    return out


def _cells(
    res: gpd.GeoDataFrame, mins: pd.DataFrame, keys: list[str], cap: int
) -> tuple[FloatArray, FloatArray, FloatArray, list[dict[str, Any]], str]:
    """Group the residents in grid cells: weighted centroid and weighted median minutes."""
    x, y = res.geometry.x.to_numpy(dtype=float), res.geometry.y.to_numpy(dtype=float)
    cells, cell_m = grid_cells(x, y, cap=cap)
    w = res["weight"].to_numpy(dtype=float) if "weight" in res else np.ones(len(res))
    n = int(cells.max()) + 1
    total = np.bincount(cells, weights=w, minlength=n)
    count = np.bincount(cells, minlength=n)
    heavy = total > 0
    safe = np.where(heavy, total, 1.0)
    px = np.where(heavy, np.bincount(cells, w * x, n) / safe, np.bincount(cells, x, n) / count)
    py = np.where(heavy, np.bincount(cells, w * y, n) / safe, np.bincount(cells, y, n) / count)
    table = np.column_stack([weighted_median(mins[k].to_numpy(), w, cells) for k in keys])
    props: list[dict[str, Any]] = [{"id": i, "n": int(c)} for i, c in enumerate(count)]
    note = "|".join(str(v) for v in (len(res), n, f"{cell_m:g}", cap))
    return px, py, table, props, note


def resident_points(data: WebMapData, cap: int = MAX_RESIDENT_POINTS) -> tuple[list[str], str]:
    """Return the residents' GeoJSON features and the aggregation note ('' when none).

    Up to `cap` points are drawn one by one; above it, the points are grouped
    in square cells (:func:`grid_cells`), each drawn at its weighted centroid
    and coloured by its residents' weighted median minutes. Each feature holds
    ``m``, the minutes per category and ``all`` (rounded to 0.1, null when
    unreachable), and ``b``, their classes (:func:`minute_classes`, from the
    unrounded minutes).
    """
    res = data.residents
    keys = [*data.categories, ALL_KEY]
    mins = resident_minutes(res, data.categories, data.speed_kmh)
    if len(res) <= cap:
        ids = res["resident_id"].to_numpy() if "resident_id" in res else np.arange(len(res))
        props: list[dict[str, Any]] = [{"id": int(i)} for i in ids]
        px, py = res.geometry.x.to_numpy(dtype=float), res.geometry.y.to_numpy(dtype=float)
        table, note = mins[keys].to_numpy(dtype=float), ""
    else:
        px, py, table, props, note = _cells(res, mins, keys, cap)
    lon, lat = _to_lonlat(px, py, res.crs)
    classes = minute_classes(table, data.minutes)
    shown = np.where(np.isfinite(table), np.round(table, 1), np.nan)
    features = []
    for k, p in enumerate(props):
        p["m"] = [None if np.isnan(v) else float(v) for v in shown[k]]
        p["b"] = classes[k].tolist()
        features.append(_point_feature(lon[k], lat[k], p))
    return features, note


# --------------------------------------------------------------------------- layers


def _to_lonlat(x: npt.ArrayLike, y: npt.ArrayLike, crs: Any) -> tuple[FloatArray, FloatArray]:
    xy = np.column_stack([np.asarray(x, dtype=float), np.asarray(y, dtype=float)])
    pts = gpd.GeoSeries(shapely.points(xy), crs=crs).to_crs(4326)
    return (
        np.round(pts.x.to_numpy(), COORD_DECIMALS),
        np.round(pts.y.to_numpy(), COORD_DECIMALS),
    )


def _point_feature(lon: float, lat: float, props: dict[str, Any]) -> str:
    geom = f'{{"type":"Point","coordinates":[{float(lon)!r},{float(lat)!r}]}}'
    return f'{{"type":"Feature","geometry":{geom},"properties":{_json(props)}}}'


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


TOPOLOGY_SIMPLIFY_MAX_VERTICES = 200_000


def simplify_rings(geoms: npt.ArrayLike, tolerance_m: float) -> npt.NDArray[np.object_]:
    """Simplify every ring of polygons as a line (Douglas-Peucker), for drawing.

    GEOS's polygon simplification repairs each result (a buffer by zero),
    which takes minutes on a city's isochrone layer; here each ring is
    simplified on its own and the polygons rebuilt as they were (a ring
    that collapses below 4 points is dropped, with its holes if it is a
    shell). The result may self-touch by up to `tolerance_m`: invisible in
    a drawing, not for overlay.
    """
    arr = np.asarray(geoms, dtype=object)
    parts, part_of = shapely.get_parts(arr, return_index=True)
    rings, ring_of = shapely.get_rings(parts, return_index=True)
    coords, idx = shapely.get_coordinates(rings, return_index=True)
    lines = np.asarray(
        shapely.simplify(
            shapely.linestrings(coords, indices=idx), tolerance_m, preserve_topology=False
        ),
        dtype=object,
    )
    shell = np.r_[True, ring_of[1:] != ring_of[:-1]] if len(ring_of) else np.zeros(0, bool)
    ok = np.asarray(shapely.get_num_coordinates(lines) >= 4, dtype=bool)
    shell_ok = np.zeros(len(parts), dtype=bool)
    shell_ok[ring_of[shell]] = ok[shell]
    keep = ok & shell_ok[ring_of]
    out = np.array([shapely.Polygon()] * len(arr), dtype=object)
    if not keep.any():
        return out
    coords, idx = shapely.get_coordinates(lines[keep], return_index=True)
    new_rings = np.asarray(shapely.linearrings(coords, indices=idx), dtype=object)
    kept_parts, poly_idx = np.unique(ring_of[keep], return_inverse=True)
    polys = np.asarray(shapely.polygons(new_rings, indices=poly_idx), dtype=object)
    geom_of = part_of[kept_parts]
    present, geom_idx = np.unique(geom_of, return_inverse=True)
    out[present] = shapely.multipolygons(polys, indices=geom_idx)
    return out


def polygon_features(
    gdf: gpd.GeoDataFrame, props: Sequence[dict[str, Any]], *, tolerance_m: float
) -> list[str]:
    """Return GeoJSON features of polygons simplified by `tolerance_m`, in rounded WGS-84.

    Up to :data:`TOPOLOGY_SIMPLIFY_MAX_VERTICES` vertices the simplification
    keeps each polygon valid (shared unit borders stay shared); above it
    (a city's isochrone layers), each ring is simplified as a line
    (:func:`simplify_rings`): GEOS's polygon simplification took minutes there.
    """
    arr = gdf.geometry.to_numpy()
    if int(shapely.get_num_coordinates(arr).sum()) <= TOPOLOGY_SIMPLIFY_MAX_VERTICES:
        geoms = shapely.simplify(arr, tolerance_m, preserve_topology=True)
    else:
        geoms = simplify_rings(arr, tolerance_m)
    wgs = gpd.GeoSeries(geoms, crs=gdf.crs).to_crs(4326).to_numpy()
    wgs = shapely.transform(wgs, lambda c: np.round(c, COORD_DECIMALS))
    return [
        f'{{"type":"Feature","geometry":{shapely.to_geojson(g)},"properties":{_json(p)}}}'
        for g, p in zip(wgs, props, strict=True)
        if g is not None and not g.is_empty
    ]


def facility_features(facilities: gpd.GeoDataFrame, lang: Lang) -> list[str]:
    """Return the facilities as GeoJSON points: name, category and sub-type labels, reachability."""
    pts = facilities.geometry.representative_point()
    lon, lat = _to_lonlat(pts.x.to_numpy(dtype=float), pts.y.to_numpy(dtype=float), facilities.crs)
    reach = (
        facilities["reachable"].to_numpy(dtype=bool)
        if "reachable" in facilities
        else np.ones(len(facilities), dtype=bool)
    )
    names = facilities["name"] if "name" in facilities else pd.Series([""] * len(facilities))
    subtypes = facilities["subtype"] if "subtype" in facilities else names.map(lambda _: "")
    out = []
    for k, (cat, sub, name) in enumerate(zip(facilities["category"], subtypes, names, strict=True)):
        props = {
            "c": str(cat),
            "name": "" if pd.isna(name) else str(name),
            "cat": category_label(str(cat), lang),
            "sub": "" if pd.isna(sub) or not sub else subtype_label(str(sub), lang),
            "r": bool(reach[k]),
        }
        out.append(_point_feature(lon[k], lat[k], props))
    return out


def analysed_shares(units: gpd.GeoDataFrame, extent: gpd.GeoDataFrame | None) -> list[float | None]:
    """Return the share of each unit's area inside the analysed area (None without an extent).

    A unit's figures describe only its residents inside the analysed area, so a
    popup says so when the share is below 1 (the Lujiazui extract covers 62%
    of 陆家嘴街道 and 11% of 潍坊新村街道).
    """
    if extent is None or extent.empty:
        return [None] * len(units)
    same = extent if units.crs is None else extent.to_crs(units.crs)
    area = shapely.union_all(same.geometry.to_numpy())
    geoms = units.geometry.to_numpy()
    whole = shapely.area(geoms)
    inside = shapely.area(shapely.intersection(geoms, area))
    return [None if w <= 0 else round(float(i / w), 4) for i, w in zip(inside, whole, strict=True)]


def unit_features(data: WebMapData) -> list[str]:
    """Return the 街道/镇 units with their coverage per category (or why they have none)."""
    if data.units is None or data.units.empty:
        return []
    props = []
    shares = analysed_shares(data.units, data.extent)
    for (_, row), share in zip(data.units.iterrows(), shares, strict=True):
        zone = str(row["zone"])
        props.append(
            {
                "name": zone,
                "kind": str(row["kind"]) if "kind" in row and pd.notna(row["kind"]) else "",
                "cov": data.unit_coverage.get(zone),
                "note": data.unit_notes.get(zone, ""),
                "share": share,
            }
        )
    return polygon_features(data.units, props, tolerance_m=UNIT_TOLERANCE_M)


def cluster_features(clusters: gpd.GeoDataFrame | None, lang: Lang) -> list[str]:
    """Return the gap clusters: rank, resident points, missing categories and area."""
    if clusters is None or clusters.empty:
        return []
    props = []
    for _, row in clusters.iterrows():
        missing = [m for m in str(row.get("missing", "") or "").split(",") if m]
        props.append(
            {
                "rank": int(row["rank"]),
                "points": int(row["points"]),
                "missing": ", ".join(category_label(m.strip(), lang) for m in missing),
                "area": None if pd.isna(row.get("area_km2")) else round(float(row["area_km2"]), 2),
            }
        )
    return polygon_features(clusters, props, tolerance_m=ISOCHRONE_TOLERANCE_M)


def extent_features(extent: gpd.GeoDataFrame | None) -> list[str]:
    """Return the analysed area's outline (simplified like the units)."""
    if extent is None or extent.empty:
        return []
    return polygon_features(extent, [{}] * len(extent), tolerance_m=UNIT_TOLERANCE_M)


def isochrone_features(isochrones: gpd.GeoDataFrame | None) -> list[str]:
    """Return one walking-reach polygon per category."""
    if isochrones is None or isochrones.empty:
        return []
    props = [{"c": str(c)} for c in isochrones["category"]]
    return polygon_features(isochrones, props, tolerance_m=ISOCHRONE_TOLERANCE_M)


# --------------------------------------------------------------------------- page


def _labels(data: WebMapData, lang: Lang, note: str) -> dict[str, Any]:
    """Every word the page's script shows, in `lang`."""
    cats = {c: category_label(c, lang) for c in data.categories}
    four = len(data.categories) == len(CATEGORY_COLOURS)
    n = len(data.categories)
    cats[ALL_KEY] = text("all_walk", lang) if four else text("all_walk_n", lang).format(n=n)
    every = category_label(ALL_KEY, lang) if four else text("all_services_n", lang).format(n=n)
    aggregated = ""
    if note:
        points, cells, cell_m, cap = note.split("|")
        aggregated = text("aggregated_note", lang).format(
            points=f"{int(points):,}", cells=f"{int(cells):,}", cell_m=cell_m, cap=f"{int(cap):,}"
        )
    keys = [
        "colour_by",
        "residents_layer",
        "resident_point",
        "isochrones_layer",
        "facilities_layer",
        "units_layer",
        "clusters_layer",
        "osm_tiles",
        "no_background",
        "tiles_note",
        "reachable",
        "not_reachable",
        "unreachable",
        "unreachable_note",
        "cell_points",
        "median_minutes",
        "missing",
        "points",
        "area_km2",
        "coverage",
        "target",
        "minutes",
        "walking_minutes",
        "meets_target",
        "below_target",
        "unit",
        "analysed_area",
        "unit_analysed_share",
    ]
    return {
        "categories": cats,
        "coverageCategories": {**cats, ALL_KEY: every},
        "text": {k: text(k, lang) for k in keys},
        "ramp": ramp_labels(data.minutes),
        "aggregated": aggregated,
    }


def _leaflet_css() -> str:
    """Leaflet's CSS with its images inlined as data: URIs (the page requests nothing)."""
    css = io.read_package_file("data/leaflet/leaflet.css").decode("utf-8")
    for name in ("layers-2x.png", "layers.png", "marker-icon.png"):
        png = base64.b64encode(io.read_package_file(f"data/leaflet/images/{name}")).decode()
        css = css.replace(f"url(images/{name})", f"url(data:image/png;base64,{png})")
    return css


def _script_json(value: Any) -> str:
    """JSON safe inside a <script> element (no '<' can close it)."""
    return _json(value).replace("<", "\\u003c")


def render_web_map(
    data: WebMapData, *, lang: Lang = DEFAULT_LANG, cap: int = MAX_RESIDENT_POINTS
) -> str:
    """Return the self-contained HTML page of the web map.

    Parameters
    ----------
    data
        The layers, in the analysis's metric CRS.
    lang
        Language of every label (``"en"`` or ``"zh"``).
    cap
        Most resident points drawn one by one (see :func:`resident_points`).
    """
    import jinja2

    residents, note = resident_points(data, cap=cap)
    facilities = facility_features(data.facilities, lang) if data.facilities is not None else []
    layers = (
        '{"residents":{"type":"FeatureCollection","features":[' + ",".join(residents) + "]},"
        '"facilities":{"type":"FeatureCollection","features":[' + ",".join(facilities) + "]},"
        '"units":{"type":"FeatureCollection","features":[' + ",".join(unit_features(data)) + "]},"
        '"isochrones":{"type":"FeatureCollection","features":['
        + ",".join(isochrone_features(data.isochrones))
        + "]},"
        '"clusters":{"type":"FeatureCollection","features":['
        + ",".join(cluster_features(data.clusters, lang))
        + "]},"
        '"extent":{"type":"FeatureCollection","features":['
        + ",".join(extent_features(data.extent))
        + "]}}"
    )
    config = {
        "categories": [*data.categories, ALL_KEY],
        "ramp": list(RAMP_COLOURS),
        "unreachable": UNREACHABLE_COLOUR,
        "categoryColours": {**CATEGORY_COLOURS, ALL_KEY: "#333333"},
        "otherColour": OTHER_COLOUR,
        "target": data.target,
        "tiles": OSM_TILES,
        "osmAttribution": OSM_ATTRIBUTION,
        "labels": _labels(data, lang, note),
    }
    template = jinja2.Environment(autoescape=True).from_string(
        io.read_package_file("data/web_map.html.j2").decode("utf-8")
    )
    return template.render(
        lang="zh-CN" if lang == "zh" else "en",
        title=text("web_map_title_minutes", lang).format(minutes=data.minutes, area=data.area),
        leaflet_css=_leaflet_css(),
        leaflet_js=io.read_package_file("data/leaflet/leaflet.js").decode("utf-8"),
        leaflet_license=io.read_package_file("data/leaflet/LICENSE").decode().replace("\r\n", "\n"),
        layers_json=layers.replace("<", "\\u003c"),
        config_json=_script_json(config),
    )


# --------------------------------------------------------------------------- runs


def _summary_parameters(summary: Mapping[str, Any]) -> dict[str, Any]:
    """Return the analysis parameters of a ``coverage.json`` or ``gaps.json`` summary."""
    if "coverage" in summary and isinstance(summary["coverage"], Mapping):
        return dict(summary["coverage"].get("parameters", {}))
    return dict(summary.get("parameters", {}))


def coverage_unit_figures(summary: Mapping[str, Any]) -> dict[str, dict[str, float | None]]:
    """Coverage share per unit and category from ``coverage.json``'s ``zones.admin``."""
    out: dict[str, dict[str, float | None]] = {}
    for row in summary.get("zones", {}).get("admin", []):
        figures = {
            (ALL_KEY if k == "all_categories" else k): v.get("coverage")
            for k, v in row.items()
            if isinstance(v, Mapping) and "coverage" in v
        }
        out[str(row["zone"])] = figures
    return out


def gap_unit_figures(table: pd.DataFrame | None) -> dict[str, dict[str, float | None]]:
    """Coverage share per unit and category from the gap analysis's ``admin`` table."""
    out: dict[str, dict[str, float | None]] = {}
    if table is None or table.empty:
        return out
    for zone, cat, cov in zip(table["zone"], table["category"], table["coverage"], strict=True):
        key = ALL_KEY if cat == "all_categories" else str(cat)
        out.setdefault(str(zone), {})[key] = None if pd.isna(cov) else float(cov)
    return out


def unit_notes(
    without_residents: Sequence[str], without_network: Sequence[str], lang: Lang
) -> dict[str, str]:
    """Why a unit has no figures: no walking network in the data, or no resident in the area."""
    notes = {str(z): text("no_residents_unit", lang) for z in without_residents}
    notes.update({str(z): text("no_network_unit", lang) for z in without_network})
    return notes


def coverage_web_map(
    summary: Mapping[str, Any],
    residents: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame | None = None,
    *,
    units: gpd.GeoDataFrame | None = None,
    isochrones: gpd.GeoDataFrame | None = None,
    extent: gpd.GeoDataFrame | None = None,
    area_name: str | None = None,
    lang: Lang = DEFAULT_LANG,
) -> str:
    """Return the web map of a coverage run (``web_map.html``) as an HTML string.

    From a notebook: ``coverage_web_map(result.summary, result.residents,
    result.facilities, units=result.prepared.zones,
    isochrones=result.category_isochrones, extent=result.prepared.extent)``;
    show it with :func:`iframe`.
    """
    data = WebMapData(
        **_run_fields(summary, summary.get("zones", {}), area_name, lang),
        residents=residents,
        facilities=facilities,
        units=units,
        unit_coverage=coverage_unit_figures(summary),
        isochrones=isochrones,
        extent=extent,
    )
    return render_web_map(data, lang=lang)


def _run_fields(
    summary: Mapping[str, Any], units_source: Mapping[str, Any], area_name: str | None, lang: Lang
) -> dict[str, Any]:
    """Return the :class:`WebMapData` fields a run's summary gives (title, speed, notes)."""
    params = _summary_parameters(summary)
    return {
        "area": area_name or str(summary.get("area", "")),
        "categories": tuple(params.get("categories", CATEGORY_COLOURS)),
        "minutes": float(params.get("minutes", 15.0)),
        "speed_kmh": float(params.get("speed_kmh", 4.0)),
        "target": float(params.get("target", 0.99)),
        "unit_notes": unit_notes(
            units_source.get("admin_units_without_residents", []),
            units_source.get("admin_units_without_network", []),
            lang,
        ),
    }


def gaps_web_map(
    summary: Mapping[str, Any],
    residents: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame | None = None,
    *,
    units: gpd.GeoDataFrame | None = None,
    unit_table: pd.DataFrame | None = None,
    clusters: gpd.GeoDataFrame | None = None,
    extent: gpd.GeoDataFrame | None = None,
    area_name: str | None = None,
    lang: Lang = DEFAULT_LANG,
) -> str:
    """Return the web map of a gap analysis (``gaps_web_map.html``) as an HTML string.

    `summary` is ``gaps.json``'s content, `unit_table` its ``admin`` table
    (``result.tables["admin"]``), `clusters` the gap clusters, `extent`
    the analysed area and `area_name` the title's area name.
    """
    data = WebMapData(
        **_run_fields(summary, summary, area_name, lang),
        residents=residents,
        facilities=facilities,
        units=units,
        unit_coverage=gap_unit_figures(unit_table),
        clusters=clusters,
        extent=extent,
    )
    return render_web_map(data, lang=lang)


def area_name(prepared: PreparedArea, lang: Lang = DEFAULT_LANG) -> str:
    """Return the area's name for the title: the district's name in `lang`, else the area's key."""
    d = prepared.district
    if d is None:
        return prepared.key
    return str(d.name_zh if lang == "zh" else d.name) or prepared.key


def coverage_result_map(result: CoverageResult, *, lang: Lang = DEFAULT_LANG) -> str:
    """Return the web map of a :func:`lifecircle.pipeline.run_coverage` result (for notebooks)."""
    prepared = result.prepared
    return coverage_web_map(
        result.summary,
        result.residents,
        result.facilities,
        units=prepared.zones if prepared is not None else None,
        isochrones=result.category_isochrones,
        extent=prepared.extent if prepared is not None else None,
        area_name=area_name(prepared, lang) if prepared is not None else None,
        lang=lang,
    )


def gaps_result_map(result: GapResult, *, lang: Lang = DEFAULT_LANG) -> str:
    """Return the web map of a :func:`lifecircle.pipeline.run_gaps` result (for notebooks).

    The same page as the run's ``gaps_web_map.html`` (the analysed area's
    outline and the district's name come from ``result.prepared``).
    """
    prepared = result.prepared
    return gaps_web_map(
        result.summary,
        result.residents,
        result.facilities,
        units=result.admin,
        unit_table=result.tables.get("admin"),
        clusters=result.clusters,
        extent=prepared.extent if prepared is not None else None,
        area_name=area_name(prepared, lang) if prepared is not None else None,
        lang=lang,
    )


def iframe(html: str, *, height_px: int = 600) -> str:
    """Wrap a web map in an ``<iframe srcdoc>`` for a notebook (``IPython.display.HTML``).

    Examples
    --------
    >>> iframe('<p title="a">x</p>', height_px=300)[:52]
    '<iframe srcdoc="&lt;p title=&quot;a&quot;&gt;x&lt;/p'
    """
    from html import escape

    return (
        f'<iframe srcdoc="{escape(html, quote=True)}" style="width:100%;height:{height_px}px;'
        'border:0" sandbox="allow-scripts allow-popups"></iframe>'
    )
