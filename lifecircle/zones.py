"""Zones for the gap analysis: administrative units, distance rings, user zones.

Administrative units are classified by :func:`classify_unit` from their
statistical code (China's national statistics division code: 2 digits
province, 2 city, 2 county, 3 town level, 3 village level; the town-level
block ``001-099`` is a sub-district 街道, ``100-199`` a town 镇, ``200-399`` a
township 乡, ``400-599`` a unit "like a township"; in Pudong's 2023 list the
``4xx`` ones are farms and the ``5xx`` ones development zones) or, without a
code, from the name's suffix.

Every resident belongs to at most one administrative unit
(:func:`assign_units`): a point inside or on the outline of a unit belongs
to it, and a point on a border shared by several units (or in an overlap of
their polygons) goes to the unit with the smallest code, then name.

User zones (``--zones FILE``, e.g. development-zone outlines) are compared
with a buffer ring around each (default 2 km) from which *every* user zone
is removed, so a ring never holds residents of another zone. Zones may
overlap: a resident in two zones counts in both (each zone's measures come
from its own membership, :func:`zone_membership`), and a warning names the
overlapping pairs.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from lifecircle.errors import CRSError, InputError

if TYPE_CHECKING:
    from lifecircle.network import WalkNetwork

UNIT_KINDS = ("subdistrict", "town", "township", "farm", "development_zone", "other")
DEFAULT_ZONE_RING_M = 2000.0
OVERLAP_SLIVER_SHARE = 1e-3  # overlaps below this share of the smaller zone are slivers


def unit_code_kind(code: str | None) -> str | None:
    """Return the unit kind a statistical division code gives, or None without a usable code.

    Accepts the 9-digit town-level code (``310115005``) and the 12-digit
    code whose last 3 (village-level) digits are ``000`` (``310115005000``).

    Examples
    --------
    >>> unit_code_kind("310115005000"), unit_code_kind("310115125"), unit_code_kind("310115401")
    ('subdistrict', 'town', 'farm')
    >>> unit_code_kind("310115503000"), unit_code_kind("310115005001"), unit_code_kind("")
    ('development_zone', None, None)
    """
    text = "" if code is None else str(code).strip()
    if not text.isdigit() or len(text) not in (9, 12) or (len(text) == 12 and text[9:] != "000"):
        return None
    block = int(text[6:9])
    if 1 <= block <= 99:
        return "subdistrict"
    if 100 <= block <= 199:
        return "town"
    if 200 <= block <= 399:
        return "township"
    if 400 <= block <= 499:
        return "farm"
    if 500 <= block <= 599:
        return "development_zone"
    return "other"


def classify_unit(name: str, code: str | None = None) -> str:
    """Classify a town-level unit: sub-district (街道), town (镇), township, farm, development zone.

    The statistical code decides when it is a usable 9- or 12-digit code
    (:func:`unit_code_kind`); otherwise the name's suffix does.

    Examples
    --------
    >>> classify_unit("陆家嘴街道"), classify_unit("张江镇"), classify_unit("x", "310115503")
    ('subdistrict', 'town', 'development_zone')
    >>> classify_unit("陆家嘴街道", "310115005000"), classify_unit("东海农场")
    ('subdistrict', 'farm')
    """
    by_code = unit_code_kind(code)
    if by_code is not None:
        return by_code
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


def classify_units(
    units: gpd.GeoDataFrame, codes: dict[str, str] | None = None
) -> gpd.GeoDataFrame:
    """Return a copy of `units` (``zone``, optional ``code``) with ``code`` and ``kind`` filled.

    A unit without a code of its own takes the code its name has in `codes`
    (a unit list such as Pudong's ``code,name`` table), then is classified
    by :func:`classify_unit`.
    """
    out = units.copy()
    names = [str(n) for n in out["zone"]]
    own = [str(c) for c in out["code"].fillna("")] if "code" in out else [""] * len(out)
    table = codes or {}
    code = [
        c if unit_code_kind(c) is not None else table.get(n, c)
        for n, c in zip(names, own, strict=True)
    ]
    out["code"] = code
    out["kind"] = [classify_unit(n, c or None) for n, c in zip(names, code, strict=True)]
    return out


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
        A ring is the zone buffered by `ring_m` minus the union of *all*
        zones. Overlapping zones are kept (each counts its own residents)
        with a warning naming the pairs.
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
    if name_field is not None and name_field not in polys.columns:
        columns = [str(c) for c in polys.columns if c != polys.geometry.name]
        shown = ", ".join(columns[:8]) + (", ..." if len(columns) > 8 else "")
        msg = f"--zones file has no column {name_field!r}: set --zones-name to one of {shown}"
        raise InputError(msg)
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
    geoms, names = _merge_repeated_names(geoms[overlap], names[overlap])
    _warn_overlaps(geoms, names)
    # every ring excludes ALL user zones, so a neighbour's residents never count as "around" a zone
    rings = shapely.difference(shapely.buffer(geoms, ring_m), shapely.union_all(geoms))
    return gpd.GeoDataFrame(
        {
            "zone": [*names, *[f"{n} (ring {ring_m / 1000:g} km)" for n in names]],
            "kind": ["zone"] * len(names) + ["ring"] * len(names),
        },
        geometry=[*geoms, *rings],
        crs=crs,
    )


def _merge_repeated_names(
    geoms: np.ndarray,
    names: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Merge polygons that share a zone name into one (multi)polygon, with a warning."""
    uniq, inverse = np.unique(names, return_inverse=True)
    if len(uniq) == len(names):
        return geoms, names
    repeated = sorted(str(n) for n, k in zip(uniq, np.bincount(inverse), strict=True) if k > 1)
    warnings.warn(
        f"--zones: several polygons named {', '.join(repeated)}: each name is treated as one zone",
        RuntimeWarning,
        stacklevel=3,
    )
    first = [int(np.flatnonzero(inverse == k)[0]) for k in range(len(uniq))]
    keep = np.argsort(first)  # keep the file's order of first appearance
    merged = np.array([shapely.union_all(geoms[inverse == k]) for k in keep], dtype=object)
    return merged, uniq[keep]


def _warn_overlaps(geoms: np.ndarray, names: np.ndarray) -> None:
    """Warn about user zones whose interiors overlap.

    Touching zones are fine, and so are digitising slivers: overlaps smaller
    than ``OVERLAP_SLIVER_SHARE`` of the smaller zone's area (Zhangjiang and
    Jinqiao's OSM outlines share 51 m² along a 10 km border) are not reported.
    """
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="intersects")
    found = []
    for i, j in sorted(
        {(min(int(i), int(j)), max(int(i), int(j))) for i, j in zip(a, b, strict=True) if i != j}
    ):
        area = shapely.intersection(geoms[i], geoms[j]).area
        if area > OVERLAP_SLIVER_SHARE * min(geoms[i].area, geoms[j].area):
            found.append(f"{names[i]} / {names[j]} ({area / 1e6:.2f} km²)")
    if found:
        warnings.warn(
            f"--zones: overlapping zones {', '.join(found)}: a resident in several zones "
            "counts in each of them",
            RuntimeWarning,
            stacklevel=3,
        )


def _unit_order(units: gpd.GeoDataFrame) -> np.ndarray:
    """Rank of each unit in the tie-break order: smallest code first, then name."""
    codes = (
        units["code"].fillna("").astype(str).to_numpy()
        if "code" in units
        else np.full(len(units), "", dtype=object)
    )
    keys = [(c == "", c, str(n)) for c, n in zip(codes, units["zone"], strict=True)]
    order = sorted(range(len(keys)), key=keys.__getitem__)
    rank = np.empty(len(keys), dtype=np.int64)
    rank[order] = np.arange(len(keys))
    return rank


def assign_units(points: gpd.GeoDataFrame, units: gpd.GeoDataFrame) -> pd.Series:
    """Assign each point to exactly one administrative unit (NaN when it is in none).

    A point inside a unit or on its outline belongs to it. A point on a
    border shared by several units (or in an overlap of their polygons)
    goes to the unit with the smallest statistical code, then the smallest
    name (units without a code come last): a rule that does not depend on
    the order of the file. Overlapping polygons (not just touching ones)
    are reported with a warning.

    Parameters
    ----------
    points
        Points in the CRS of `units`.
    units
        Polygons with a ``zone`` column and, optionally, ``code``.

    Returns
    -------
    Series
        The unit name of each point, aligned to `points`.
    """
    labels = np.full(len(points), np.nan, dtype=object)
    if len(points) == 0 or len(units) == 0:
        return pd.Series(labels, index=points.index, dtype=object)
    geoms = units.geometry.to_numpy()
    tree = shapely.STRtree(geoms)
    pts = points.geometry.to_numpy()
    p_idx, u_idx = tree.query(pts, predicate="intersects")
    rank = _unit_order(units)
    order = np.lexsort((rank[u_idx], p_idx))
    p_idx, u_idx = p_idx[order], u_idx[order]
    first = np.ones(len(p_idx), dtype=bool)
    first[1:] = p_idx[1:] != p_idx[:-1]
    labels[p_idx[first]] = units["zone"].astype(str).to_numpy()[u_idx[first]]
    inside, _ = tree.query(pts, predicate="within")
    doubled = int((np.bincount(inside, minlength=len(pts)) > 1).sum())
    if doubled:
        warnings.warn(
            f"administrative units overlap: {doubled} point(s) lie inside several units; "
            "each goes to the unit with the smallest code",
            RuntimeWarning,
            stacklevel=2,
        )
    return pd.Series(labels, index=points.index, dtype=object)


def zone_membership(points: gpd.GeoDataFrame, zones: gpd.GeoDataFrame) -> pd.DataFrame:
    """Return every (point, zone) pair where the zone covers the point (outline included).

    A point in several zones appears once per zone: measures per zone are
    computed from each zone's own members.

    Returns
    -------
    DataFrame
        ``point`` (the index label of `points`) and ``zone``, ordered by zone
        (in `zones` order), then point.
    """
    tree = shapely.STRtree(zones.geometry.to_numpy())
    p_idx, z_idx = tree.query(points.geometry.to_numpy(), predicate="intersects")
    order = np.lexsort((p_idx, z_idx))
    return pd.DataFrame(
        {
            "point": points.index.to_numpy()[p_idx[order]],
            "zone": zones["zone"].astype(str).to_numpy()[z_idx[order]],
        }
    )


def user_zone_membership(points: gpd.GeoDataFrame, user: gpd.GeoDataFrame) -> pd.DataFrame:
    """Membership of points in user zones and their rings (see :func:`prepare_user_zones`).

    A point on a zone's outline belongs to the zone, never to a ring (of
    that zone or of another one).

    Returns
    -------
    DataFrame
        ``point``, ``zone`` and ``kind`` ("zone" or "ring").
    """
    inner = zone_membership(points, user.loc[user["kind"] == "zone"]).assign(kind="zone")
    ring = zone_membership(points, user.loc[user["kind"] == "ring"]).assign(kind="ring")
    ring = ring.loc[~ring["point"].isin(inner["point"])]
    return pd.concat([inner, ring], ignore_index=True)


def membership_measures(
    residents: pd.DataFrame,
    membership: pd.DataFrame,
    categories: Sequence[str],
    *,
    kind: str,
) -> pd.DataFrame:
    """Zone measures (:func:`lifecircle.gaps.zone_measures`) from a point-to-zone membership table.

    Each zone is measured on its own members, so a resident in two
    overlapping zones counts in both.
    """
    from lifecircle.gaps import zone_measures

    parts = []
    for zone, members in membership.groupby("zone", sort=False):
        inside = residents.index.isin(members["point"].to_numpy())
        values = np.full(len(residents), np.nan, dtype=object)
        values[inside] = str(zone)
        labels = pd.Series(values, index=residents.index, dtype=object)
        parts.append(zone_measures(residents, labels, categories, kind=kind))
    if not parts:
        return zone_measures(residents, pd.Series(np.nan, index=residents.index), [], kind=kind)
    return pd.concat(parts, ignore_index=True)


def user_zone_tables(
    residents: gpd.GeoDataFrame, user: gpd.GeoDataFrame, categories: Sequence[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Measures of the user zones (kind ``user_zone``) and of their rings (``user_zone_ring``)."""
    member = user_zone_membership(residents, user)
    zone_rows = member.loc[member["kind"] == "zone"]
    ring_rows = member.loc[member["kind"] == "ring"]
    return (
        membership_measures(residents, zone_rows, categories, kind="user_zone"),
        membership_measures(residents, ring_rows, categories, kind="user_zone_ring"),
    )


def unit_status(
    units: gpd.GeoDataFrame,
    labels: pd.Series,
    weights: pd.Series,
    *,
    node_x: np.ndarray,
    node_y: np.ndarray,
) -> pd.DataFrame:
    """Residents and walking-network nodes per administrative unit.

    Parameters
    ----------
    units
        Units with ``zone`` (and ``code``, ``kind`` when known), metric CRS.
    labels
        Unit of each resident (:func:`assign_units`).
    weights
        Resident weight, aligned to `labels`.
    node_x, node_y
        Walking-network node coordinates in the units' CRS.

    Returns
    -------
    DataFrame
        One row per unit, in `units` order: ``zone``, ``code``, ``kind``,
        ``resident_points``, ``weight`` (residents' weight), ``network_nodes`` and
        ``status``: "residents", "no residents" (a network but nobody
        living there) or "no network" (no walking network in the data).
    """
    w = weights.reindex(labels.index).to_numpy(dtype=float)
    lab = labels.to_numpy()
    counts = _nodes_per_unit(units, node_x, node_y)
    rows = []
    for i, zone in enumerate(units["zone"].astype(str)):
        sel = lab == zone
        nodes = int(counts[i])
        status = "residents" if sel.any() else ("no residents" if nodes else "no network")
        rows.append(
            {
                "zone": zone,
                "code": str(units["code"].iloc[i]) if "code" in units else "",
                "kind": str(units["kind"].iloc[i]) if "kind" in units else classify_unit(zone),
                "resident_points": int(sel.sum()),
                "weight": float(w[sel].sum()),
                "network_nodes": nodes,
                "status": status,
            }
        )
    return pd.DataFrame(rows)


def admin_coverage(
    residents: gpd.GeoDataFrame,
    covered: pd.DataFrame,
    units: gpd.GeoDataFrame,
    network: WalkNetwork,
    *,
    target: float,
) -> dict[str, Any]:
    """Coverage per administrative unit for ``coverage.json``.

    Returns
    -------
    dict
        ``admin``: per unit holding residents, its coverage entries
        (:func:`lifecircle.coverage.coverage_by_zone`) plus ``code`` and
        ``kind``; ``admin_units_without_residents`` and
        ``admin_units_without_network`` (names, sorted); ``admin_units``:
        :func:`unit_status` records of every unit.
    """
    from lifecircle.coverage import coverage_by_zone

    if "kind" not in units:
        units = classify_units(units)
    labels = assign_units(residents, units)
    status = unit_status(units, labels, residents["weight"], node_x=network.x, node_y=network.y)
    info = status.set_index("zone")
    rows = [
        {**z, "code": info.at[z["zone"], "code"], "kind": info.at[z["zone"], "kind"]}
        for z in coverage_by_zone(residents, covered, labels, target=target)
    ]
    return {
        "admin": rows,
        "admin_units_without_residents": sorted(status.loc[status["resident_points"] == 0, "zone"]),
        "admin_units_without_network": sorted(status.loc[status["status"] == "no network", "zone"]),
        "admin_units": status.to_dict("records"),
    }


def _nodes_per_unit(
    units: gpd.GeoDataFrame,
    node_x: np.ndarray,
    node_y: np.ndarray,
) -> np.ndarray:
    """Count the network nodes inside (or on the outline of) each unit."""
    tree = shapely.STRtree(units.geometry.to_numpy())
    _, unit_idx = tree.query(shapely.points(node_x, node_y), predicate="intersects")
    return np.bincount(unit_idx, minlength=len(units))


def units_without_network(units: gpd.GeoDataFrame, network: WalkNetwork) -> list[str]:
    """Return the names of the units holding no walking-network node (no network in the data)."""
    counts = _nodes_per_unit(units, network.x, network.y)
    return [str(z) for z, n in zip(units["zone"], counts, strict=True) if n == 0]


def user_zone_comparison(
    zone_table: pd.DataFrame, ring_table: pd.DataFrame, *, ring_m: float
) -> list[dict[str, Any]]:
    """Compare each user zone's coverage with its comparison ring's, per category.

    Parameters
    ----------
    zone_table, ring_table
        The two tables of :func:`user_zone_tables`.
    ring_m
        Ring width (names the ring rows, e.g. ``"张江镇 (ring 2 km)"``).

    Returns
    -------
    list of dict
        ``zone``, ``category``, ``zone_coverage``, ``ring_coverage`` (None
        when the ring holds no residents) and ``difference_points``.
    """
    suffix = f" (ring {ring_m / 1000:g} km)"
    ring_cov = ring_table.set_index(["zone", "category"])["coverage"]
    out = []
    zones = zone_table["zone"].astype(str).tolist()
    cats = zone_table["category"].astype(str).tolist()
    covs = zone_table["coverage"].to_numpy(dtype=float)
    for zone, cat, cov in zip(zones, cats, covs, strict=True):
        other = float(ring_cov.get((f"{zone}{suffix}", cat), np.nan))
        both = bool(np.isfinite(other) and np.isfinite(cov))
        out.append(
            {
                "zone": zone,
                "category": cat,
                "zone_coverage": float(cov) if np.isfinite(cov) else None,
                "ring_coverage": other if np.isfinite(other) else None,
                "difference_points": (float(cov) - other) * 100 if both else None,
            }
        )
    return out
