"""Facilities: OSM tags -> categories, external POI import, de-duplication, access.

The tag table (``lifecircle/data/facility_tags.csv``) is data users can edit
or replace (``--tags FILE``). Each row is ``category, subtype, key, value,
and_tags, name_pattern, exclude_pattern, source, note``. A row matches a
feature when the tag ``key`` has one of the ``|``-separated values (``*`` =
any; a ``;``-list in the feature matches when one of its items does), every
condition of ``and_tags`` holds (``&``-separated ``key=v1|v2``, ``key=*``
or ``!key`` for "tag absent"), the ``name`` matches the regular expression
``name_pattern`` (when given) and does not match ``exclude_pattern``.

Three kinds of rows:

* a category (``school``, ``health``, ``elderly_care``, ``culture``): a
  facility rule. The first matching facility or exclusion row wins, so
  specific rows come first. A subtype such as ``primary+secondary`` counts
  for both subtypes.
* an empty category: an exclusion rule. A feature it matches (transport
  stops, shops, restaurants, car parks, association offices, training and
  driving schools...) is not a facility.
* ``service_place``: the gate of the name rules. Rows with no ``key`` match
  on the name alone, and they only apply to a feature that some
  ``service_place`` row matches (its keys make it a place that hosts a
  service: ``amenity=school|hospital|...``, ``healthcare=*``,
  ``social_facility=*``, ``building=school|hospital|civic|public...``). A
  bus stop, a shop or a plain ``building=yes`` is never classified by its
  name.

``source`` names the line of the standard (GB 50180-2018, Shanghai's 2016
guideline) or of the OSM wiki that a rule follows. ``and_tags``,
``exclude_pattern``, ``source`` and ``note`` are optional columns, so a
table of the older five columns still reads.
"""

from __future__ import annotations

import difflib
import logging
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from lifecircle.checks import read_csv_text
from lifecircle.coords import DATUMS, Datum, to_wgs84
from lifecircle.errors import CRSError, InputError

logger = logging.getLogger(__name__)

CATEGORIES: tuple[str, ...] = ("school", "health", "elderly_care", "culture")
FACILITY_COLUMNS = ["category", "subtype", "name", "source", "source_id", "geometry"]

SERVICE_PLACE = "service_place"
"""Category word of the gate rows of the tag table."""

TOURISM_SUBTYPES: tuple[str, ...] = ("tourism_museum", "tourism_gallery")
"""Culture subtypes that are tourism venues (city-level, not GB 50180 community facilities).

A profile counts them or not; the recommended default is *not* to count them
for the life-circle culture figure (GB 50180-2018 lists the 文化活动中心/站,
the community's cultural activity centre and station), and to report them
separately if wanted.
"""

COMMUNITY_CULTURE_SUBTYPES: tuple[str, ...] = (
    "community_centre",
    "library",
    "arts_centre",
    "theatre",
)
"""Culture subtypes that are not tourism venues (the recommended default for a profile)."""

SCHOOL_STAGE_SUBTYPES: tuple[str, ...] = ("kindergarten", "primary", "secondary")
"""School subtypes of a known stage.

``school`` is a school whose stage neither tags (``isced:level``, ``grades``)
nor name tell; a profile decides whether it counts (see the README).
"""

_CONDITION_RE = re.compile(r"^(?:!(?P<absent>[^=!&\s]+)|(?P<key>[^=!&\s]+)=(?P<values>[^=&]+))$")

Condition = tuple[str, frozenset[str] | None]
"""A tag condition: ``(key, values)``; ``values`` None means "tag absent", ``{"*"}`` any value."""


def _value_matches(value: str | None, values: frozenset[str]) -> bool:
    if value is None:
        return False
    return "*" in values or bool({v.strip() for v in value.split(";")} & values)


@dataclass(frozen=True)
class TagRule:
    """One row of the tag table (a facility, exclusion or ``service_place`` gate row)."""

    category: str
    subtype: str
    key: str
    values: frozenset[str]
    name_re: re.Pattern[str] | None
    exclude_re: re.Pattern[str] | None
    conditions: tuple[Condition, ...] = ()
    source: str = ""

    @property
    def kind(self) -> str:
        """Return "facility", "exclude" or "service_place"."""
        if self.category == SERVICE_PLACE:
            return SERVICE_PLACE
        return "facility" if self.category else "exclude"

    def matches(self, tags: dict[str, str]) -> bool:
        """Tell whether a feature's tags match this rule (the gate is not checked here)."""
        name = tags.get("name", "")
        if self.key:
            if not _value_matches(tags.get(self.key), self.values):
                return False
        elif not name:
            return False
        for key, values in self.conditions:
            present = tags.get(key)
            if values is None:
                if present is not None:
                    return False
            elif not _value_matches(present, values):
                return False
        if self.name_re is not None and not self.name_re.search(name):
            return False
        return not (self.exclude_re is not None and self.exclude_re.search(name))


def _read_package_csv(name: str) -> str:
    return resources.files("lifecircle").joinpath(f"data/{name}").read_text("utf-8")


def _split_values(text: str) -> frozenset[str]:
    return frozenset(v.strip() for v in text.split("|") if v.strip()) or frozenset({"*"})


def parse_conditions(text: str) -> tuple[Condition, ...]:
    """Parse an ``and_tags`` cell: ``key=v1|v2 & !other & third=*``.

    Examples
    --------
    >>> conditions = parse_conditions("social_facility:for=senior|elderly & !operator")
    >>> [(key, sorted(values) if values else values) for key, values in conditions]
    [('social_facility:for', ['elderly', 'senior']), ('operator', None)]
    """
    out: list[Condition] = []
    for part in (p.strip() for p in text.split("&")):
        if not part:
            continue
        match = _CONDITION_RE.match(part)
        if match is None:
            msg = (
                f"tag table: bad and_tags condition {part!r}: write key=v1|v2, key=* or !key, "
                "joined by &"
            )
            raise InputError(msg)
        if match["absent"]:
            out.append((match["absent"], None))
        else:
            out.append((match["key"], _split_values(match["values"])))
    return tuple(out)


def _compile(pattern: str, column: str) -> re.Pattern[str] | None:
    if not pattern:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        msg = f"tag table: bad regular expression in {column} {pattern!r}: {exc}"
        raise InputError(msg) from exc


def parse_tag_table(text: str) -> list[TagRule]:
    r"""Parse a tag table (CSV text) into rules, validating categories and conditions.

    Examples
    --------
    >>> rules = parse_tag_table(
    ...     "category,subtype,key,value,name_pattern,exclude_pattern,source\n"
    ...     "health,clinic,amenity,clinic,,,OSM wiki\n"
    ... )
    >>> rules[0].matches({"amenity": "clinic"})
    True
    """
    table = read_csv_text(text, what="tag table (--tags)")
    required = {"category", "subtype", "key", "value", "name_pattern"}
    missing = required - set(table.columns)
    if missing:
        msg = f"tag table lacks columns {sorted(missing)}: see lifecircle/data/facility_tags.csv"
        raise InputError(msg)
    rules = []
    for row in table.itertuples(index=False):
        category = str(row.category).strip()
        if category and category not in (*CATEGORIES, SERVICE_PLACE):
            msg = (
                f"tag table: unknown category {category!r}: use one of {', '.join(CATEGORIES)}, "
                f"{SERVICE_PLACE} (gate) or leave it empty (exclusion)"
            )
            raise InputError(msg)
        key = str(row.key).strip()
        if category == SERVICE_PLACE and not key:
            msg = "tag table: a service_place row needs a key (e.g. amenity=school|hospital)"
            raise InputError(msg)
        rules.append(
            TagRule(
                category=category,
                subtype=str(row.subtype).strip() or category,
                key=key,
                values=_split_values(str(row.value)),
                name_re=_compile(str(row.name_pattern).strip(), "name_pattern"),
                exclude_re=_compile(
                    str(getattr(row, "exclude_pattern", "")).strip(), "exclude_pattern"
                ),
                conditions=parse_conditions(str(getattr(row, "and_tags", ""))),
                source=str(getattr(row, "source", "")).strip(),
            )
        )
    return rules


def default_tag_rules() -> list[TagRule]:
    """Return the rules of the packaged tag table."""
    return parse_tag_table(_read_package_csv("facility_tags.csv"))


def is_service_place(tags: dict[str, str], rules: list[TagRule]) -> bool:
    """Tell whether a feature's keys make it a service place (the gate of the name rules).

    Examples
    --------
    >>> rules = default_tag_rules()
    >>> is_service_place({"amenity": "clinic", "name": "x"}, rules)
    True
    >>> is_service_place({"highway": "bus_stop", "name": "东方医院"}, rules)
    False
    """
    return any(r.matches(tags) for r in rules if r.category == SERVICE_PLACE)


def classify_tags(tags: dict[str, str], rules: list[TagRule]) -> tuple[str, str] | None:
    """Return ``(category, subtype)`` of the first matching rule, or None.

    Exclusion rows (empty category) return None when they match first; rows
    with no key (name rules) are skipped unless the feature is a service place.

    Examples
    --------
    >>> classify_tags({"amenity": "school", "name": "崂山小学"}, default_tag_rules())
    ('school', 'primary')
    >>> rules = default_tag_rules()
    >>> classify_tags({"building": "yes", "name": "陆家嘴街道老年协会"}, rules) is None
    True
    >>> classify_tags({"highway": "bus_stop", "name": "东方医院"}, default_tag_rules()) is None
    True
    """
    service = None
    for rule in rules:
        if rule.category == SERVICE_PLACE:
            continue
        if not rule.key and rule.category:
            if service is None:
                service = is_service_place(tags, rules)
            if not service:
                continue
        if rule.matches(tags):
            return (rule.category, rule.subtype) if rule.category else None
    return None


def classify_many(
    tag_dicts: Iterable[dict[str, str]], rules: list[TagRule]
) -> list[tuple[str, str] | None]:
    """Return :func:`classify_tags` of each tag dict, classifying each distinct tag set once.

    A city's features repeat few tag sets (Porto Alegre 7 x 7: 42,091 features, 445
    distinct), and the class depends on the tags alone.

    Examples
    --------
    >>> rules = default_tag_rules()
    >>> classify_many([{"amenity": "school"}, {"building": "yes"}, {"amenity": "school"}], rules)
    [('school', 'school'), None, ('school', 'school')]
    """
    known: dict[frozenset[tuple[str, str]], tuple[str, str] | None] = {}
    out: list[tuple[str, str] | None] = []
    for tags in tag_dicts:
        key = frozenset(tags.items())
        if key not in known:
            known[key] = classify_tags(tags, rules)
        out.append(known[key])
    return out


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
    found = classify_many(features["tags"], rules)
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
class PoiRule:
    """One row of a POI mapping: a source-category pattern, optional name conditions, a result."""

    pattern: re.Pattern[str]
    category: str
    subtype: str
    name_re: re.Pattern[str] | None = None
    exclude_name_re: re.Pattern[str] | None = None

    def matches(self, path: str, name: str) -> bool:
        """Tell whether one category path (and the POI's name) match this rule."""
        if not self.pattern.search(path):
            return False
        if self.name_re is not None and not self.name_re.search(name):
            return False
        return not (self.exclude_name_re is not None and self.exclude_name_re.search(name))


@dataclass(frozen=True)
class PoiMapping:
    """Maps a source's own category field (and the name) to ours: rules in order."""

    field: str
    rules: tuple[PoiRule, ...]

    def classify(self, value: str, name: str = "") -> tuple[str, str] | None:
        """Return ``(category, subtype)`` for a source value; None drops the POI.

        A value may hold several ``|``-separated paths (Amap): the first path
        that a rule maps decides. A rule with an empty category drops the POI.

        Examples
        --------
        >>> amap_mapping().classify("科教文化服务;学校;幼儿园", "东园幼儿园")
        ('school', 'kindergarten')
        >>> amap_mapping().classify("科教文化服务;学校;幼儿园", "金宝贝早教中心") is None
        True
        """
        for path in str(value).split("|"):
            for rule in self.rules:
                if rule.matches(path, name):
                    return (rule.category, rule.subtype) if rule.category else None
        return None

    def classify_many(self, values: pd.Series, names: pd.Series) -> npt.NDArray[np.int64]:
        """Return, per row, the index of the rule that decides it (-1: no rule), vectorised.

        The same decision as :meth:`classify` row by row, but each rule's
        source-category pattern runs once per *distinct* category path and
        each name pattern once per distinct name, whatever the number of
        rows: a table of millions of POIs with a few hundred category
        values costs a few hundred regular-expression searches per rule.

        Examples
        --------
        >>> m = amap_mapping()
        >>> idx = m.classify_many(
        ...     pd.Series(["科教文化服务;学校;小学", "餐饮服务"]), pd.Series(["崂山小学", "x"])
        ... )
        >>> [(m.rules[i].category, m.rules[i].subtype) if i >= 0 else None for i in idx]
        [('school', 'primary'), None]
        """
        codes, uniques = pd.factorize(values.astype(str).to_numpy())
        name_codes, unique_names = pd.factorize(names.astype(str).to_numpy())
        split = [str(u).split("|") for u in uniques]
        path_codes, paths = pd.factorize(
            np.array([p for parts in split for p in parts], dtype=object)
        )
        depth = max((len(parts) for parts in split), default=0)
        by_depth = np.full((depth, len(uniques)), -1, dtype=np.int64)
        start = 0
        for j, parts in enumerate(split):  # per distinct value
            by_depth[: len(parts), j] = path_codes[start : start + len(parts)]
            start += len(parts)
        hits = [
            np.array([r.pattern.search(p) is not None for p in paths], dtype=bool)
            for r in self.rules
        ]
        name_ok: dict[int, npt.NDArray[np.bool_]] = {}
        decided = np.full(len(codes), -1, dtype=np.int64)
        for k in range(depth):
            path = by_depth[k][codes]
            for i, rule in enumerate(self.rules):
                match = (decided < 0) & (path >= 0)
                match[match] = hits[i][path[match]]
                if rule.name_re is not None or rule.exclude_name_re is not None:
                    if i not in name_ok:
                        name_ok[i] = np.array(
                            [_name_ok(rule, str(n)) for n in unique_names], dtype=bool
                        )
                    match &= name_ok[i][name_codes]
                decided[match] = i
        return decided


def _name_ok(rule: PoiRule, name: str) -> bool:
    if rule.name_re is not None and not rule.name_re.search(name):
        return False
    return not (rule.exclude_name_re is not None and rule.exclude_name_re.search(name))


def parse_poi_mapping(text: str, *, field: str = "type") -> PoiMapping:
    """Parse a POI mapping table.

    CSV columns ``pattern,category,subtype`` and optional ``name_pattern``
    (the POI's name must match) and ``exclude_name`` (it must not), all
    regular expressions; ``source`` and ``note`` are documentation.
    """
    table = read_csv_text(text, what="POI mapping (--pois-mapping)")
    if not {"pattern", "category", "subtype"} <= set(table.columns):
        msg = "POI mapping needs columns pattern,category,subtype: see data/poi_mappings/amap.csv"
        raise InputError(msg)
    rules = []
    for line, row in enumerate(table.itertuples(index=False), start=2):
        category = str(row.category).strip()
        if category and category not in CATEGORIES:
            msg = f"POI mapping: unknown category {category!r}: use one of {', '.join(CATEGORIES)}"
            raise InputError(msg)
        try:
            rules.append(
                PoiRule(
                    pattern=re.compile(str(row.pattern)),
                    category=category,
                    subtype=str(row.subtype).strip() or category,
                    name_re=_compile_opt(str(getattr(row, "name_pattern", "")).strip()),
                    exclude_name_re=_compile_opt(str(getattr(row, "exclude_name", "")).strip()),
                )
            )
        except re.error as exc:
            msg = (
                f"POI mapping, line {line} (pattern {str(row.pattern)!r}): bad regular "
                f"expression: {exc}; fix the pattern (escape ( ) [ ] with a backslash)"
            )
            raise InputError(msg) from exc
    return PoiMapping(field=field, rules=tuple(rules))


def _compile_opt(pattern: str) -> re.Pattern[str] | None:
    return re.compile(pattern) if pattern else None


def amap_mapping() -> PoiMapping:
    """Return the packaged mapping of Amap ``type`` paths to categories."""
    return parse_poi_mapping(_read_package_csv("poi_mappings/amap.csv"), field="type")


def _poi_lon_lat(
    table: gpd.GeoDataFrame,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Longitudes and latitudes of a POI layer; a polygon or line stands for a point inside it.

    A layer without a CRS is refused (as boundaries, zones and population
    layers are): guessing WGS-84 would put projected coordinates nowhere.
    Missing or empty geometries give NaN (dropped as invalid coordinates).
    """
    if table.crs is None:
        msg = "POI layer has no CRS: save it with one (GeoJSON is WGS-84 by definition)"
        raise CRSError(msg)
    geoms = table.geometry.to_crs(4326)
    kinds = geoms.geom_type.fillna("")
    shaped = ~kinds.isin(["Point", ""])
    if shaped.any():
        found = ", ".join(sorted(set(kinds[shaped])))
        warnings.warn(
            f"POI layer holds {int(shaped.sum())} {found} feature(s): each is counted as one "
            "facility at a point inside it (representative point)",
            RuntimeWarning,
            stacklevel=3,
        )
    arr = geoms.to_numpy()
    arr = np.where(shaped.to_numpy(), shapely.point_on_surface(arr), arr)
    missing = shapely.is_missing(arr) | shapely.is_empty(arr)
    lon = np.full(len(arr), np.nan)
    lat = np.full(len(arr), np.nan)
    lon[~missing] = shapely.get_x(arr[~missing])
    lat[~missing] = shapely.get_y(arr[~missing])
    return lon, lat


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
        lon, lat = _poi_lon_lat(table)
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
    if not valid.all():
        warnings.warn(
            f"POI table: {int((~valid).sum())} of {len(valid)} rows have no valid coordinates "
            f"in {lon_col!r}/{lat_col!r} and are skipped",
            RuntimeWarning,
            stacklevel=2,
        )
    wlon, wlat = to_wgs84(lon[valid], lat[valid], datum)
    sub = table.loc[valid]
    names = sub[name_col].astype(str) if name_col in sub.columns else pd.Series("", index=sub.index)
    decided = mapping.classify_many(sub[mapping.field], names)
    categories = np.array([r.category for r in mapping.rules] + [""], dtype=object)[decided]
    subtypes = np.array([r.subtype for r in mapping.rules] + [""], dtype=object)[decided]
    keep = categories != ""
    if len(decided) and not keep.any():
        warnings.warn(
            f"POI table: none of its {len(decided)} values of {mapping.field!r} matches the POI "
            "mapping, so no POI is imported: check --pois-field and --pois-mapping",
            RuntimeWarning,
            stacklevel=2,
        )
    out = gpd.GeoDataFrame(
        {
            "category": categories[keep],
            "subtype": subtypes[keep],
            "name": names.to_numpy()[keep],
            "source": source,
            "source_id": (
                f"{source}/" + pd.Series(np.flatnonzero(valid)[keep]).astype(str)
            ).to_numpy(),
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


def deduplicate_within(
    pois: gpd.GeoDataFrame,
    *,
    crs: str,
    max_distance_m: float = 100.0,
    min_name_ratio: float = 0.6,
) -> tuple[gpd.GeoDataFrame, int]:
    """Drop POIs that repeat an earlier POI of the same list (same rule as :func:`deduplicate`).

    Amap lists one hospital several times (its 门诊, 住院部, 急诊 ...): a POI of
    the same category within `max_distance_m` of an earlier one with a
    similar name is dropped, so a facility counts once.

    Returns
    -------
    kept, dropped
    """
    if len(pois) < 2:
        return pois, 0
    pts = pois.to_crs(crs).geometry.to_numpy()
    left, right = shapely.STRtree(pts).query(pts, predicate="dwithin", distance=max_distance_m)
    later = left > right  # pairs (later, earlier)
    cat = pois["category"].to_numpy()
    name = pois["name"].astype(str).to_numpy()
    duplicate = np.zeros(len(pois), dtype=bool)
    for i, j in sorted(zip(left[later].tolist(), right[later].tolist(), strict=True)):
        if not duplicate[i] and not duplicate[j] and cat[i] == cat[j]:
            duplicate[i] = _similar(name[j], name[i], min_ratio=min_name_ratio)
    return pois.loc[~duplicate].reset_index(drop=True), int(duplicate.sum())


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


# --------------------------------------------------------------------------- access geometry

ACCESS_COLUMNS = ["facility_id", "source_id", "access", "entrance_id", "geometry"]
"""Columns of an access layer: ``access`` is "point", "entrance" or "outline"."""

ENTRANCE_SKIP_VALUES: frozenset[str] = frozenset(
    {"no", "exit", "emergency", "service", "garage", "staircase", "home"}
)
"""``entrance=*`` values that are no way in for a visitor (OSM wiki Key:entrance)."""

ENTRANCE_SKIP_ACCESS: frozenset[str] = frozenset({"no", "private"})
"""``access=*`` values that close an entrance to the public."""


def usable_entrances(entrances: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Keep the entrances a visitor may use.

    Drops exits, emergency, service and garage doors, flat and home doors
    (:data:`ENTRANCE_SKIP_VALUES`), entrances with ``access=no|private`` and
    public transport entrances (``railway=*``, ``public_transport=*``: a
    metro entrance is not a door of the facility around it).
    """

    def usable(tags: dict[str, str]) -> bool:
        if tags.get("entrance", "yes") in ENTRANCE_SKIP_VALUES:
            return False
        if tags.get("access", "yes") in ENTRANCE_SKIP_ACCESS:
            return False
        return "railway" not in tags and "public_transport" not in tags

    keep = np.array([usable(t) for t in entrances["tags"]], dtype=bool)
    return entrances.loc[keep]


def facility_shapes(facilities: gpd.GeoDataFrame, features: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Return `facilities` with each OSM facility's mapped geometry (polygon or point).

    Parameters
    ----------
    facilities
        Facilities as built by :func:`facilities_from_osm` (and others): the
        ``source_id`` of an OSM row is ``"<osm_type>/<osm_id>"``.
    features
        The OSM features they were classified from (``OSMData.features``).

    Returns
    -------
    GeoDataFrame
        A copy of `facilities` in their CRS, same index; rows not from OSM
        keep their point.
    """
    keys = [f"{t}/{i}" for t, i in zip(features["osm_type"], features["osm_id"], strict=True)]
    crs = facilities.crs if facilities.crs is not None else "EPSG:4326"
    lookup = pd.Series(features.geometry.to_crs(crs).to_numpy(), index=keys)
    lookup = lookup.loc[~lookup.index.duplicated()]
    out = facilities.copy()
    # positions through the index, not Series.isin: on pandas' Arrow strings isin took
    # seconds against 42k keys at city scale
    pos = lookup.index.get_indexer(pd.Index(out["source_id"].to_numpy(dtype=object)))
    osm = out["source"].eq("osm").to_numpy() & (pos >= 0)
    geoms = out.geometry.to_numpy().copy()
    geoms[osm] = lookup.to_numpy()[pos[osm]]
    return out.set_geometry(gpd.GeoSeries(geoms, index=out.index, crs=out.crs))


def _outline(geom: shapely.Geometry) -> shapely.Geometry:
    """Exterior ring(s) of a polygon as a (Multi)LineString; other lines as they are."""
    if isinstance(geom, shapely.Polygon):
        return shapely.LineString(geom.exterior.coords)
    if isinstance(geom, shapely.MultiPolygon):
        rings = [list(p.exterior.coords) for p in geom.geoms]
        return shapely.LineString(rings[0]) if len(rings) == 1 else shapely.MultiLineString(rings)
    return geom


def facility_access(
    facilities: gpd.GeoDataFrame,
    entrances: gpd.GeoDataFrame,
    *,
    crs: str,
    tolerance_m: float = 5.0,
) -> gpd.GeoDataFrame:
    """Return the geometries a facility is reached from: one row per access geometry.

    A point facility is reached at its point. A polygon facility (campus,
    hospital grounds) is reached at its mapped entrances, the usable
    ``entrance=*`` nodes (:func:`usable_entrances`) within `tolerance_m` of
    its outline (the exterior rings); a polygon with no such entrance is
    reached from its outline itself (a LineString or MultiLineString), so the
    snapper can start from the outline's point nearest the network instead of
    an interior point. Entrances deeper inside a polygon are doors of
    buildings within the grounds, not ways into them, and are not used.

    Parameters
    ----------
    facilities
        Facilities with their real geometry (:func:`facility_shapes`), any CRS.
    entrances
        Entrance nodes (``OSMData.entrances``: ``osm_id``, ``tags``, points).
    crs
        Metric CRS of the result.
    tolerance_m
        How far from its polygon's outline (either side) an entrance may lie
        and still count.

    Returns
    -------
    GeoDataFrame
        Columns ``facility_id`` (the index of `facilities`), ``source_id``,
        ``access`` ("point", "entrance" or "outline"), ``entrance_id`` (the
        entrance's OSM node id, -1 otherwise), geometry in `crs`.

    Examples
    --------
    >>> fac = gpd.GeoDataFrame(
    ...     {"source_id": ["a", "b"]},
    ...     geometry=[shapely.Point(0, 0), shapely.box(10, 0, 20, 10)],
    ...     crs="EPSG:32651",
    ... )
    >>> ent = gpd.GeoDataFrame(
    ...     {"osm_id": [7], "tags": [{"entrance": "main"}]},
    ...     geometry=[shapely.Point(10, 5)],
    ...     crs="EPSG:32651",
    ... )
    >>> facility_access(fac, ent, crs="EPSG:32651")[["facility_id", "access"]].values.tolist()
    [[0, 'point'], [1, 'entrance']]
    """
    if tolerance_m < 0:
        msg = f"tolerance_m must be >= 0, got {tolerance_m}"
        raise InputError(msg)
    shapes = facilities.to_crs(crs)
    geoms = shapes.geometry.to_numpy()
    areal = np.isin(shapely.get_type_id(geoms), [3, 6])  # Polygon, MultiPolygon
    usable = usable_entrances(entrances).to_crs(crs)
    ent_geoms = usable.geometry.to_numpy()
    outlines = np.array(
        [_outline(g) if a else g for g, a in zip(geoms, areal, strict=True)], dtype=object
    )
    fac_idx, ent_idx = shapely.STRtree(ent_geoms).query(
        outlines, predicate="dwithin", distance=tolerance_m
    )
    on_outline = areal[fac_idx]
    fac_idx, ent_idx = fac_idx[on_outline], ent_idx[on_outline]
    has_entrance = np.zeros(len(shapes), dtype=bool)
    has_entrance[fac_idx] = True
    ids = shapes.index.to_numpy()
    src = (
        shapes["source_id"].astype(str).to_numpy()
        if "source_id" in shapes
        else np.asarray([""] * len(shapes), dtype=object)
    )
    plain = ~areal | ~has_entrance
    plain_geoms = outlines[plain]
    parts = pd.DataFrame(
        {
            "row": np.concatenate([np.flatnonzero(plain), fac_idx]),
            "access": np.concatenate(
                [np.where(areal[plain], "outline", "point"), np.full(len(fac_idx), "entrance")]
            ),
            "entrance_id": np.concatenate(
                [
                    np.full(int(plain.sum()), -1, dtype=np.int64),
                    usable["osm_id"].to_numpy(dtype=np.int64)[ent_idx],
                ]
            ),
            "geometry": np.concatenate([plain_geoms, ent_geoms[ent_idx]]),
        }
    ).sort_values(["row", "entrance_id"], kind="stable")
    rows = parts["row"].to_numpy()
    out = gpd.GeoDataFrame(
        {
            "facility_id": ids[rows],
            "source_id": src[rows],
            "access": parts["access"].to_numpy(),
            "entrance_id": parts["entrance_id"].to_numpy(),
        },
        geometry=gpd.GeoSeries(parts["geometry"].to_numpy(), crs=crs),
        crs=crs,
    )
    logger.info(
        "facility access: %d facilities, %d polygons, %d with entrances",
        len(shapes),
        int(areal.sum()),
        int(has_entrance.sum()),
    )
    return out.reset_index(drop=True)


def change_facility_access(
    access: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    *,
    add: gpd.GeoDataFrame | None = None,
) -> gpd.GeoDataFrame:
    """Return the access layer of a scenario's facilities (see :func:`change_facilities`).

    Parameters
    ----------
    access
        The access layer of the current facilities (:func:`facility_access`).
    facilities
        The scenario's facilities, as returned by :func:`change_facilities`
        (fresh ``facility_id`` index; added rows have ``source_id``
        ``scenario/<i>``, `i` their row in `add`).
    add
        The added facilities as given (polygons or points): a polygon is
        reached from its outline, a point at the point.

    Returns
    -------
    GeoDataFrame
        The access rows of the kept facilities, re-keyed to the new
        ``facility_id``, plus those of the added ones; in the CRS of `access`.
    """
    crs = access.crs if access.crs is not None else facilities.crs
    new_id = pd.Series(facilities.index.to_numpy(), index=facilities["source_id"].astype(str))
    new_id = new_id.loc[~new_id.index.duplicated()]
    kept = access.loc[access["source_id"].astype(str).isin(new_id.index)].copy()
    kept["facility_id"] = new_id.loc[kept["source_id"].astype(str)].to_numpy()
    parts = [kept]
    scenario = facilities.loc[facilities["source"].eq("scenario")]
    if add is not None and len(scenario):
        shapes = gpd.GeoDataFrame(
            {"source_id": [f"scenario/{i}" for i in range(len(add))]},
            geometry=add.geometry.to_numpy(),
            crs=add.crs,
        )
        shapes = shapes.loc[shapes["source_id"].isin(scenario["source_id"])]
        shapes.index = new_id.loc[shapes["source_id"]].to_numpy()
        empty = gpd.GeoDataFrame(
            {"osm_id": np.zeros(0, dtype=np.int64), "tags": []},
            geometry=gpd.GeoSeries([], crs=crs),
            crs=crs,
        )
        parts.append(facility_access(shapes, empty, crs=str(crs)))
    out = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=crs)
    return out.sort_values("facility_id", kind="stable").reset_index(drop=True)
