"""Facilities: OSM tags -> categories, external POI import, de-duplication.

The tag table (``lifecircle/data/facility_tags.csv``) is data users can edit
or replace (``--tags FILE``). Each row is ``category, subtype, key, value,
name_pattern, exclude_pattern``: it matches a feature when the tag ``key``
has one of the ``|``-separated values (``*`` = any) *and* the ``name``
matches the regular expression ``name_pattern`` (when given), and the name
does not match ``exclude_pattern``. Rows with no key match on the name alone.
The first matching row wins, so specific rows come first. A subtype such as
``primary+secondary`` counts for both subtypes.
"""

from __future__ import annotations

import difflib
import logging
import re
from dataclasses import dataclass
from importlib import resources
from io import StringIO

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from lifecircle.coords import DATUMS, Datum, to_wgs84
from lifecircle.errors import InputError

logger = logging.getLogger(__name__)

CATEGORIES: tuple[str, ...] = ("school", "health", "elderly_care", "culture")
FACILITY_COLUMNS = ["category", "subtype", "name", "source", "source_id", "geometry"]


@dataclass(frozen=True)
class TagRule:
    """One row of the tag table."""

    category: str
    subtype: str
    key: str
    values: frozenset[str]
    name_re: re.Pattern[str] | None
    exclude_re: re.Pattern[str] | None

    def matches(self, tags: dict[str, str]) -> bool:
        """Tell whether a feature's tags match this rule."""
        name = tags.get("name", "")
        if self.key:
            value = tags.get(self.key)
            if value is None:
                return False
            if "*" not in self.values and not (set(value.split(";")) & self.values):
                return False
        elif not name:
            return False
        if self.name_re is not None and not self.name_re.search(name):
            return False
        return not (self.exclude_re is not None and self.exclude_re.search(name))


def _read_package_csv(name: str) -> str:
    return resources.files("lifecircle").joinpath(f"data/{name}").read_text("utf-8")


def parse_tag_table(text: str) -> list[TagRule]:
    r"""Parse a tag table (CSV text) into rules, validating categories.

    Examples
    --------
    >>> rules = parse_tag_table(
    ...     "category,subtype,key,value,name_pattern,exclude_pattern\n"
    ...     "health,clinic,amenity,clinic,,\n"
    ... )
    >>> rules[0].matches({"amenity": "clinic"})
    True
    """
    table = pd.read_csv(StringIO(text), dtype=str, keep_default_na=False)
    required = {"category", "subtype", "key", "value", "name_pattern"}
    missing = required - set(table.columns)
    if missing:
        msg = f"tag table lacks columns {sorted(missing)}: see lifecircle/data/facility_tags.csv"
        raise InputError(msg)
    rules = []
    for row in table.itertuples(index=False):
        category = str(row.category).strip()
        if category not in CATEGORIES:
            msg = f"tag table: unknown category {category!r}: use one of {', '.join(CATEGORIES)}"
            raise InputError(msg)
        name_pattern = str(row.name_pattern).strip()
        exclude = str(getattr(row, "exclude_pattern", "")).strip()
        rules.append(
            TagRule(
                category=category,
                subtype=str(row.subtype).strip() or category,
                key=str(row.key).strip(),
                values=frozenset(v.strip() for v in str(row.value).split("|") if v.strip())
                or frozenset({"*"}),
                name_re=re.compile(name_pattern) if name_pattern else None,
                exclude_re=re.compile(exclude) if exclude else None,
            )
        )
    return rules


def default_tag_rules() -> list[TagRule]:
    """Return the rules of the packaged tag table."""
    return parse_tag_table(_read_package_csv("facility_tags.csv"))


def classify_tags(tags: dict[str, str], rules: list[TagRule]) -> tuple[str, str] | None:
    """Return ``(category, subtype)`` of the first matching rule, or None.

    Examples
    --------
    >>> classify_tags({"amenity": "school", "name": "崂山小学"}, default_tag_rules())
    ('school', 'primary')
    >>> classify_tags({"building": "yes", "name": "陆家嘴街道老年协会"}, default_tag_rules())
    ('elderly_care', 'senior_centre')
    >>> classify_tags({"amenity": "toilets", "name": "卫生间"}, default_tag_rules()) is None
    True
    """
    for rule in rules:
        if rule.matches(tags):
            return rule.category, rule.subtype
    return None


def facilities_from_osm(
    features: gpd.GeoDataFrame, rules: list[TagRule] | None = None
) -> gpd.GeoDataFrame:
    """Classify OSM features into facilities, polygons reduced to a point inside them.

    Parameters
    ----------
    features
        ``OSMData.features`` (WGS-84, with a ``tags`` dict column).
    rules
        Tag rules (default: the packaged table).

    Returns
    -------
    GeoDataFrame
        Columns ``category``, ``subtype``, ``name``, ``source`` ("osm"),
        ``source_id`` (e.g. "way/957008785"), WGS-84 points.
    """
    rules = default_tag_rules() if rules is None else rules
    found = [classify_tags(tags, rules) for tags in features["tags"]]
    keep = np.array([f is not None for f in found], dtype=bool)
    kept = features.loc[keep]
    pairs = [f for f in found if f is not None]
    points = shapely.point_on_surface(kept.geometry.to_numpy())
    out = gpd.GeoDataFrame(
        {
            "category": [p[0] for p in pairs],
            "subtype": [p[1] for p in pairs],
            "name": [t.get("name", "") for t in kept["tags"]],
            "source": "osm",
            "source_id": [
                f"{t}/{i}" for t, i in zip(kept["osm_type"], kept["osm_id"], strict=True)
            ],
        },
        geometry=gpd.GeoSeries(points, crs=features.crs),
        crs=features.crs,
    )
    logger.info("OSM facilities: %s", out["category"].value_counts().to_dict())
    return out.reset_index(drop=True)


@dataclass(frozen=True)
class PoiMapping:
    """Maps a source's own category field to ours: regex pattern -> (category, subtype)."""

    field: str
    rules: tuple[tuple[re.Pattern[str], str, str], ...]

    def classify(self, value: str) -> tuple[str, str] | None:
        """Return ``(category, subtype)`` for a source value; None drops the POI.

        A value may hold several ``|``-separated paths (Amap): the first path
        that a rule maps decides. A rule with an empty category drops the POI.
        """
        for path in str(value).split("|"):
            for pattern, category, subtype in self.rules:
                if pattern.search(path):
                    return (category, subtype) if category else None
        return None


def parse_poi_mapping(text: str, *, field: str = "type") -> PoiMapping:
    """Parse a POI mapping table (CSV ``pattern,category,subtype``)."""
    table = pd.read_csv(StringIO(text), dtype=str, keep_default_na=False)
    if not {"pattern", "category", "subtype"} <= set(table.columns):
        msg = "POI mapping needs columns pattern,category,subtype: see data/poi_mappings/amap.csv"
        raise InputError(msg)
    rules = []
    for row in table.itertuples(index=False):
        category = str(row.category).strip()
        if category and category not in CATEGORIES:
            msg = f"POI mapping: unknown category {category!r}: use one of {', '.join(CATEGORIES)}"
            raise InputError(msg)
        rules.append((re.compile(str(row.pattern)), category, str(row.subtype).strip() or category))
    return PoiMapping(field=field, rules=tuple(rules))


def amap_mapping() -> PoiMapping:
    """Return the packaged mapping of Amap ``type`` paths to categories."""
    return parse_poi_mapping(_read_package_csv("poi_mappings/amap.csv"), field="type")


def facilities_from_table(
    table: pd.DataFrame,
    mapping: PoiMapping,
    *,
    lon_col: str = "lon",
    lat_col: str = "lat",
    name_col: str = "name",
    datum: Datum = "wgs84",
    source: str = "pois",
) -> gpd.GeoDataFrame:
    """Turn an external POI table into facilities (WGS-84 points).

    Parameters
    ----------
    table
        POIs as read from CSV (coordinate columns) or a vector file
        (a ``geometry`` column; then `lon_col`/`lat_col` are ignored).
    mapping
        Source category field -> our categories.
    lon_col, lat_col, name_col
        Column names in `table`.
    datum
        Datum of the coordinates: "wgs84", "gcj02" (Amap, Tencent) or "bd09" (Baidu).
    source
        Label stored in the ``source`` column.

    Returns
    -------
    GeoDataFrame
        Same columns as :func:`facilities_from_osm`.
    """
    if datum not in DATUMS:
        msg = f"unknown datum {datum!r}: use one of {', '.join(DATUMS)}"
        raise InputError(msg)
    columns = list(table.columns)
    if mapping.field not in table.columns:
        msg = f"POI table has no category column {mapping.field!r} (columns: {columns})"
        raise InputError(msg)
    if isinstance(table, gpd.GeoDataFrame):
        pts = table.geometry.to_crs(4326) if table.crs is not None else table.geometry
        lon = pts.x.to_numpy()
        lat = pts.y.to_numpy()
    else:
        for col, flag in ((lon_col, "--pois-lon"), (lat_col, "--pois-lat")):
            if col not in table.columns:
                msg = f"POI table has no column {col!r}: set {flag} to one of {columns}"
                raise InputError(msg)
        lon = pd.to_numeric(table[lon_col], errors="coerce").to_numpy(dtype=float)
        lat = pd.to_numeric(table[lat_col], errors="coerce").to_numpy(dtype=float)
    valid = np.isfinite(lon) & np.isfinite(lat) & (np.abs(lat) <= 90) & (np.abs(lon) <= 180)
    if valid.sum() == 0:
        msg = f"POI table has no valid coordinates in {lon_col!r}/{lat_col!r}: check the columns"
        raise InputError(msg)
    wlon, wlat = to_wgs84(lon[valid], lat[valid], datum)
    sub = table.loc[valid]
    found = [mapping.classify(v) for v in sub[mapping.field].astype(str)]
    keep = np.array([f is not None for f in found], dtype=bool)
    pairs = [f for f in found if f is not None]
    names = sub[name_col].astype(str) if name_col in sub.columns else pd.Series("", index=sub.index)
    out = gpd.GeoDataFrame(
        {
            "category": [p[0] for p in pairs],
            "subtype": [p[1] for p in pairs],
            "name": names.to_numpy()[keep],
            "source": source,
            "source_id": [f"{source}/{i}" for i in np.flatnonzero(valid)[keep]],
        },
        geometry=gpd.points_from_xy(wlon[keep], wlat[keep], crs="EPSG:4326"),
        crs="EPSG:4326",
    )
    return out


def _similar(a: str, b: str, *, min_ratio: float) -> bool:
    a, b = a.strip(), b.strip()
    if not a or not b:
        return True
    if a in b or b in a:
        return True
    return difflib.SequenceMatcher(None, a, b).ratio() >= min_ratio


def deduplicate(
    osm: gpd.GeoDataFrame,
    imported: gpd.GeoDataFrame,
    *,
    crs: str,
    max_distance_m: float = 100.0,
    min_name_ratio: float = 0.6,
) -> tuple[gpd.GeoDataFrame, int]:
    """Drop imported POIs that duplicate an OSM facility.

    A POI duplicates an OSM facility of the same category within
    `max_distance_m` whose name is similar (one contains the other, or a
    ``difflib`` ratio of at least `min_name_ratio`; a missing name on either
    side counts as similar).

    Returns
    -------
    kept, dropped
        The imported POIs that are not duplicates, and how many were dropped.
    """
    if osm.empty or imported.empty:
        return imported, 0
    a = osm.to_crs(crs)
    b = imported.to_crs(crs)
    tree = shapely.STRtree(a.geometry.to_numpy())
    idx_b, idx_a = tree.query(b.geometry.to_numpy(), predicate="dwithin", distance=max_distance_m)
    cat_a = a["category"].to_numpy()
    cat_b = b["category"].to_numpy()
    name_a = a["name"].astype(str).to_numpy()
    name_b = b["name"].astype(str).to_numpy()
    duplicate = np.zeros(len(b), dtype=bool)
    for i, j in zip(idx_b, idx_a, strict=True):
        if not duplicate[i] and cat_a[j] == cat_b[i]:
            duplicate[i] = _similar(name_a[j], name_b[i], min_ratio=min_name_ratio)
    return imported.loc[~duplicate].reset_index(drop=True), int(duplicate.sum())


def combine_facilities(parts: list[gpd.GeoDataFrame]) -> gpd.GeoDataFrame:
    """Concatenate facility tables into one with a fresh ``facility_id`` index."""
    frames = [p[FACILITY_COLUMNS] for p in parts if not p.empty]
    if not frames:
        return gpd.GeoDataFrame(
            {c: pd.Series(dtype=str) for c in FACILITY_COLUMNS[:-1]},
            geometry=gpd.GeoSeries([], crs="EPSG:4326"),
            crs="EPSG:4326",
        )
    out = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=frames[0].crs)
    out.index.name = "facility_id"
    return out


def subtype_set(subtype: str) -> set[str]:
    """Split a compound subtype (``primary+secondary``) into its parts."""
    return {s for s in subtype.split("+") if s}


def change_facilities(
    facilities: gpd.GeoDataFrame,
    *,
    add: gpd.GeoDataFrame | None = None,
    remove: pd.DataFrame | None = None,
) -> gpd.GeoDataFrame:
    """Return a scenario's facilities: some added, some removed (the input is not changed).

    Parameters
    ----------
    facilities
        Current facilities.
    add
        New facilities with ``category`` (and optional ``subtype``, ``name``)
        and point geometry with a CRS.
    remove
        Rows naming facilities to drop, by ``source_id`` or else by ``name``.

    Returns
    -------
    GeoDataFrame
        In the CRS of `facilities`, with a fresh ``facility_id`` index.
    """
    out = facilities.copy()
    crs = out.crs if out.crs is not None else "EPSG:4326"
    if remove is not None and len(remove):
        if "source_id" in remove.columns:
            out = out.loc[~out["source_id"].isin(remove["source_id"].astype(str))]
        elif "name" in remove.columns:
            out = out.loc[~out["name"].isin(remove["name"].astype(str))]
        else:
            msg = "facilities to remove need a source_id or name column"
            raise InputError(msg)
    if add is not None and len(add):
        if add.crs is None:
            msg = "added facilities have no CRS: save the file with one"
            raise InputError(msg)
        bad = sorted(set(add["category"]) - set(CATEGORIES)) if "category" in add else ["(none)"]
        if bad:
            msg = (
                f"added facilities: unknown category {bad[0]!r}: use one of {', '.join(CATEGORIES)}"
            )
            raise InputError(msg)
        new = gpd.GeoDataFrame(
            {
                "category": add["category"].astype(str).to_numpy(),
                "subtype": (add["subtype"] if "subtype" in add else add["category"])
                .astype(str)
                .to_numpy(),
                "name": (add["name"] if "name" in add else pd.Series("", index=add.index))
                .astype(str)
                .to_numpy(),
                "source": "scenario",
                "source_id": [f"scenario/{i}" for i in range(len(add))],
            },
            geometry=shapely.point_on_surface(add.to_crs(crs).geometry.to_numpy()),
            crs=crs,
        )
        out = gpd.GeoDataFrame(pd.concat([out, new], ignore_index=True), crs=out.crs)
    out = out.reset_index(drop=True)
    out.index.name = "facility_id"
    return out
