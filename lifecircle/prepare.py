"""Build or reuse the processed cache of an area: boundary, network, facilities, residents.

This is the ``fetch`` step. It combines :mod:`lifecircle.io` (reading and
writing) with the pure core.

Folder: ``<cache>/processed/<key>/`` for a district with no extra data
options, ``<key>-<8 hex>/`` otherwise, the suffix hashing the request's
options (POI files and their columns, population, tag table, OSM file,
margin), so two requests that differ in what they ask for never share a
folder (:func:`cache_folder_name`).

Reuse: the folder is reused while its manifest's ``cache_key`` matches, a
hash of every input file's bytes (boundary, OSM, POIs, mappings,
population, tag table, every data-folder file the district entry names),
the parameters, the lifecircle version and :func:`lifecircle.io.package_fingerprint`
(the package code and its packaged tables). Otherwise it is rebuilt, into
a fresh folder beside it that replaces it whole only once complete
(:func:`lifecircle.io.replaced_dir`): an interrupted build leaves the old
complete cache, or none, never a mix.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import datetime as dt
import hashlib
import json
import logging
import warnings
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from lifecircle import __version__, io, settings
from lifecircle.areas import area_key, boundary_to_wgs84, dissolve, parse_bbox, utm_crs_for
from lifecircle.checks import no_poi_inside_message
from lifecircle.coords import Datum
from lifecircle.districts import District, get_district
from lifecircle.errors import DataError, InputError, NoDataError, OutputError
from lifecircle.facilities import (
    CATEGORIES,
    PoiMapping,
    amap_mapping,
    combine_facilities,
    deduplicate,
    deduplicate_within,
    default_tag_rules,
    facilities_from_osm,
    facilities_from_table,
    facility_access,
    facility_shapes,
    parse_poi_mapping,
    parse_tag_table,
)
from lifecircle.network import (
    WalkNetwork,
    analysed_extent,
    attach_derived,
    build_walk_network,
    derived_tables,
    network_from_tables,
    network_tables,
    summarize_network,
)
from lifecircle.osmdata import HighwayWays
from lifecircle.residents import build_residents, summarize_residents
from lifecircle.snapping import (
    DEFAULT_FRAGMENT_MAX_M,
    DEFAULT_MAX_SNAP_M,
    AccessSnap,
    SnapIndex,
    snap_access,
    snap_residents,
)

logger = logging.getLogger(__name__)

PROCESSING_VERSION = "3"  # 2: standard categories, facility_access, landuse infill, levels_source
# 3: network as plain Parquet tables (no edge geometry), residents as GeoParquet (issue 12)
DEFAULT_MARGIN_M = settings.DEFAULT_MARGIN_M
MANIFEST = "manifest.json"
RESIDENT_SNAP = "residents_snap.parquet"
ACCESS_SNAP = "facility_access_snap.parquet"
NETWORK_PER_NODE = "network_components.parquet"  # network.derived_tables
NETWORK_ADJACENCY = "network_adjacency.parquet"
CACHE_FILES = frozenset(
    {
        MANIFEST,
        "boundary.gpkg",
        "network_nodes.parquet",
        "network_edges.parquet",
        NETWORK_PER_NODE,
        NETWORK_ADJACENCY,
        "facilities.gpkg",
        "facility_access.gpkg",
        "residents.parquet",
        "residents_snap.parquet",
        "facility_access_snap.parquet",
        "extent.gpkg",
        "zones.gpkg",
    }
)
"""The processed cache's own files: an output set in the cache folder never removes them."""


@dataclass(frozen=True)
class PoiSource:
    """An external POI file and how to read it."""

    path: Path
    datum: Datum = "wgs84"
    lon_col: str = "lon"
    lat_col: str = "lat"
    name_col: str = "name"
    category_field: str = "type"
    mapping_file: Path | None = None


@dataclass(frozen=True)
class AreaRequest:
    """What the user asked for: one of district, boundary file or bbox, plus data options."""

    district: str | None = None
    boundary_file: Path | None = None
    bbox: str | None = None
    osm_file: Path | None = None
    name: str | None = None
    pois: tuple[PoiSource, ...] = ()
    population_file: Path | None = None
    population_column: str = "population"
    tags_file: Path | None = None
    margin_m: float = DEFAULT_MARGIN_M
    offline: bool = False


@dataclass
class PreparedArea:
    """Everything the analysis steps need, loaded from or written to the cache."""

    key: str
    folder: Path
    crs: str
    boundary: gpd.GeoDataFrame
    network: WalkNetwork
    facilities: gpd.GeoDataFrame
    residents: gpd.GeoDataFrame
    extent: gpd.GeoDataFrame
    manifest: dict[str, Any]
    district: District | None = None
    zones: gpd.GeoDataFrame | None = None
    notes: list[str] = field(default_factory=list)
    facility_access: gpd.GeoDataFrame | None = None
    """Where each facility is reached (``facilities.facility_access``): metric CRS,
    one row per point, entrance or polygon outline, keyed by ``facility_id``."""
    resident_snap: pd.DataFrame | None = None
    """The residents snapped with the default limits (:func:`snapping.snap_residents`),
    kept in the cache; see :meth:`resident_snap_for`."""
    access_snap: AccessSnap | None = None
    """The ``facility_access`` layer snapped with the default limits
    (:func:`snapping.snap_access`), kept in the cache; see :meth:`access_snap_for`."""
    cache_written: Future[None] | None = None
    """A cache being written in the background (``prepare_area(..., background=True)``);
    :meth:`wait_for_cache` before writing into :attr:`folder` or returning."""

    def wait_for_cache(self) -> None:
        """Wait until the processed cache is written; raise what writing it raised."""
        if self.cache_written is not None:
            self.cache_written.result()

    def resident_snap_for(self, max_snap_m: float, fragment_max_m: float) -> pd.DataFrame | None:
        """Return the cached resident snap when it was made with these limits, else None."""
        params = self.manifest.get("resident_snap")
        if self.resident_snap is None or params != {
            "max_snap_m": float(max_snap_m),
            "fragment_max_m": float(fragment_max_m),
        }:
            return None
        return self.resident_snap

    def access_snap_for(self, max_snap_m: float, fragment_max_m: float) -> AccessSnap | None:
        """Return the cached facility access snap when it was made with these limits, else None.

        It is the snap of the cached ``facility_access`` layer (a scenario may change the
        layer: :func:`snapping.snap_area` takes only the rows it finds unchanged).
        """
        params = self.manifest.get("access_snap")
        wanted = {"max_snap_m": float(max_snap_m), "fragment_max_m": float(fragment_max_m)}
        return self.access_snap if params == wanted else None

    @property
    def boundary_m(self) -> BaseGeometry:
        """The boundary polygon in the metric CRS."""
        return dissolve(self.boundary.to_crs(self.crs))


# --------------------------------------------------------------------------- resolving


def _data_file(relative: str | None) -> Path | None:
    root = settings.data_dir()
    if relative is None or root is None:
        return None
    path = root / relative
    return path if path.is_file() else None


def _district_boundary(
    district: District, *, offline: bool
) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    src = district.boundary
    local = _data_file(src.file)
    if local is not None:
        gdf = io.read_vector(local)
        if src.filter_field is not None:
            gdf = gdf.loc[gdf[src.filter_field].astype(str) == str(src.filter_value)]
        datum: Datum = src.datum  # type: ignore[assignment]
        info = {"path": str(local), "sha256": io.file_sha256(local), "datum": src.datum}
        return boundary_to_wgs84(gdf, datum=datum), info
    cached = settings.raw_dir() / district.key / "boundary.geojson"
    if cached.is_file():
        info = {"path": str(cached), "sha256": io.file_sha256(cached), "datum": "wgs84"}
        return boundary_to_wgs84(io.read_vector(cached)), info
    if offline or not src.geocode:
        msg = (
            f"no boundary for {district.key}: set LIFECIRCLE_DATA_DIR to a data folder "
            "holding it, go online, or give --boundary FILE"
        )
        raise DataError(msg)
    gdf = io.geocode_boundary(src.geocode, cache_folder=settings.raw_dir() / "http")
    io.save_text(gdf.to_json(), cached)
    info = {"path": str(cached), "sha256": io.file_sha256(cached), "geocoded": src.geocode}
    return gdf, info


def _resolve_area(
    req: AreaRequest,
) -> tuple[str, str, gpd.GeoDataFrame, dict[str, Any], District | None]:
    given = [x is not None for x in (req.district, req.boundary_file, req.bbox)]
    if sum(given) != 1:
        msg = "give exactly one of --district, --boundary FILE or --bbox W,S,E,N"
        raise InputError(msg)
    if req.district is not None:
        district = get_district(req.district)
        boundary, info = _district_boundary(district, offline=req.offline)
        return district.key, district.crs, boundary, info, district
    if req.boundary_file is not None:
        path = Path(req.boundary_file)
        boundary = boundary_to_wgs84(io.read_vector(path))
        sha = io.file_sha256(path)
        key = req.name or area_key("area", sha)
        info = {"path": str(path), "sha256": sha}
    else:
        assert req.bbox is not None
        west, south, east, north = parse_bbox(req.bbox)
        boundary = gpd.GeoDataFrame(
            {"name": [req.bbox]}, geometry=[shapely.box(west, south, east, north)], crs=4326
        )
        key = req.name or area_key("bbox", req.bbox)
        info = {"bbox": [west, south, east, north]}
    return key, utm_crs_for(dissolve(boundary)), boundary, info, None


def _osm_source(req: AreaRequest, key: str) -> Path | None:
    """Find the OSM file: --osm-file, then the data folder, then the raw cache."""
    if req.osm_file is not None:
        if Path(req.osm_file).is_dir():
            msg = f"--osm-file {req.osm_file} is a folder: give a .osm, .osm.bz2 or .osm.pbf file"
            raise InputError(msg)
        if not Path(req.osm_file).is_file():
            msg = f"--osm-file {req.osm_file} does not exist: check the path"
            raise InputError(msg)
        return Path(req.osm_file)
    root = settings.data_dir()
    if root is not None:
        found = io.find_osm_files(root / key / "osm")
        if found:
            if len(found) > 1:
                logger.warning("several OSM files in %s: using %s", found[0].parent, found[0].name)
            return found[0]
    cached = settings.raw_dir() / key / "overpass.osm.pbf"
    return cached if cached.is_file() else None


def _buffered_wgs84(boundary_m: BaseGeometry, crs: str, margin_m: float) -> BaseGeometry:
    buffered = gpd.GeoSeries([boundary_m.buffer(margin_m)], crs=crs).to_crs(4326)
    return buffered.iloc[0]


def _file_info(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    return {"path": str(path), "sha256": io.file_sha256(path)}


def district_files(district: District) -> list[Path]:
    """Return the data-folder files a district entry names (boundary, zones, unit lists...).

    Every string field of the entry (at any depth) that names an existing
    file below ``LIFECIRCLE_DATA_DIR`` counts, so a new kind of file added
    to the registry is covered without a change here.
    """

    def strings(value: Any) -> list[str]:
        if isinstance(value, dict):
            return [s for v in value.values() for s in strings(v)]
        if isinstance(value, list | tuple):
            return [s for v in value for s in strings(v)]
        return [value] if isinstance(value, str) and value else []

    found = [_data_file(text) for text in strings(asdict(district)) if "/" in text]
    return sorted({p for p in found if p is not None})


def request_options(req: AreaRequest) -> dict[str, Any]:
    """Return what a request asks for beyond its area, for the cache folder name.

    File paths are resolved; file contents are not read (they belong in the
    cache key, see :func:`prepare_area`). A bbox or boundary file is part of
    it only when a ``name`` is given (otherwise the key already hashes it).
    """

    def resolved(path: Path | None) -> str | None:
        return str(Path(path).resolve()) if path is not None else None

    options: dict[str, Any] = {
        "pois": [
            {**asdict(p), "path": resolved(p.path), "mapping_file": resolved(p.mapping_file)}
            for p in req.pois
        ],
        "population_file": resolved(req.population_file),
        "population_column": req.population_column if req.population_file else None,
        "tags_file": resolved(req.tags_file),
        "osm_file": resolved(req.osm_file),
        "margin_m": float(req.margin_m),
    }
    if req.name is not None:
        options["bbox"] = req.bbox
        options["boundary_file"] = resolved(req.boundary_file)
    return options


def cache_folder_name(key: str, req: AreaRequest) -> str:
    """Return the processed cache folder name of a request.

    ``<key>`` when the request adds nothing to its area (a district with the
    data folder's OSM file, no POIs, population or tag table, the default
    margin), else ``<key>-<first 8 hex of the SHA-256 of its options>``.

    Examples
    --------
    >>> cache_folder_name("pudong", AreaRequest(district="pudong"))
    'pudong'
    >>> cache_folder_name("pudong", AreaRequest(district="pudong", margin_m=500)).startswith(
    ...     "pudong-"
    ... )
    True
    """
    options = request_options(req)
    if options == request_options(AreaRequest(name=req.name)):
        return key
    text = json.dumps(options, sort_keys=True, default=str)
    return f"{key}-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:8]}"


def _cache_key(inputs: dict[str, Any], params: dict[str, Any]) -> str:
    def strip(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if k != "path"}
        if isinstance(v, list):
            return [strip(x) for x in v]
        return v

    text = json.dumps({"inputs": strip(inputs), "params": params}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- building


def _load_pois(req: AreaRequest, crs: str, clip_wgs84: BaseGeometry) -> list[gpd.GeoDataFrame]:
    out = []
    for i, poi in enumerate(req.pois):
        path = Path(poi.path)
        table = (
            io.read_table(path) if path.suffix.lower() in {".csv", ".txt"} else io.read_vector(path)
        )
        mapping = (
            parse_poi_mapping(io.read_text(poi.mapping_file), field=poi.category_field)
            if poi.mapping_file is not None
            else PoiMapping(field=poi.category_field, rules=amap_mapping().rules)
        )
        pts = facilities_from_table(
            table,
            mapping,
            lon_col=poi.lon_col,
            lat_col=poi.lat_col,
            name_col=poi.name_col,
            datum=poi.datum,
            source=f"pois{i + 1}:{path.name}",
        )
        inside = shapely.within(pts.geometry.to_numpy(), clip_wgs84)
        if len(pts) and not inside.any():
            warnings.warn(no_poi_inside_message(path.name, len(pts)), RuntimeWarning, stacklevel=2)
        out.append(pts.loc[inside].reset_index(drop=True))
        logger.info(
            "%s: %d of %d POIs mapped inside the area", path.name, int(inside.sum()), len(table)
        )
    return out


def _zones_layer(district: District | None, crs: str) -> gpd.GeoDataFrame | None:
    """Return the district's town-level units from the data folder: zone, code, kind."""
    from lifecircle.zones import classify_units

    if district is None:
        return None
    src = district.zones
    path = _data_file(src.file)
    if path is None:
        return None
    gdf = io.read_vector(path)
    missing = [f for f in (src.name_field, src.code_field, src.filter_field) if f and f not in gdf]
    if missing:
        msg = f"units file {path} has no column {missing[0]!r}: fix [{district.key}.zones]"
        raise DataError(msg)
    if src.filter_field is not None:
        gdf = gdf.loc[gdf[src.filter_field].astype(str) == str(src.filter_value)]
    if gdf.empty:
        msg = f"units file {path} has no rows for {district.key}: fix [{district.key}.zones]"
        raise DataError(msg)
    gdf = boundary_to_wgs84(gdf, datum=src.datum)  # type: ignore[arg-type]
    units = gpd.GeoDataFrame(
        {
            "zone": gdf[src.name_field].astype(str).to_numpy(),
            "code": (
                gdf[src.code_field].fillna("").astype(str).to_numpy()
                if src.code_field
                else np.full(len(gdf), "", dtype=object)
            ),
        },
        geometry=gdf.geometry.to_numpy(),
        crs=4326,
    ).to_crs(crs)
    return classify_units(units, _unit_codes(district))


def _unit_codes(district: District | None) -> dict[str, str]:
    """Map unit names to statistical codes from the registry's unit list, when there is one."""
    path = _data_file(district.zones.units_file) if district is not None else None
    if path is None:
        return {}
    table = io.read_table(path)
    return dict(zip(table["name"].astype(str), table["code"].astype(str), strict=True))


def admin_units(
    prepared: PreparedArea, *, offline: bool, admin_level: str = "8"
) -> gpd.GeoDataFrame | None:
    """Town-level administrative units of a prepared area, in its metric CRS.

    From the data folder (the registry's ``[<key>.zones]`` file, already in
    ``prepared.zones``), else the raw cache
    (``<cache>/raw/<key>/admin_units.geojson``), else Overpass when online
    (:func:`lifecircle.io.download_admin_units`: ``boundary=administrative``
    *and* ``admin_level=8`` only). A failed download warns and returns None
    (the gap analysis then uses distance rings only).

    Returns
    -------
    GeoDataFrame or None
        ``zone``, ``code``, ``kind`` (:func:`lifecircle.zones.classify_unit`)
        and polygons.
    """
    from lifecircle.zones import classify_units

    units = prepared.zones
    if (units is None or units.empty) and prepared.district is not None:
        try:
            raw = io.load_admin_units(
                prepared.boundary.to_crs(4326).union_all(),
                settings.raw_dir() / prepared.key / "admin_units.geojson",
                cache_folder=settings.raw_dir() / "http",
                admin_level=admin_level,
                offline=offline,
            )
        except DataError as exc:
            warnings.warn(f"{exc}; zones: distance rings only", RuntimeWarning, stacklevel=2)
            raw = None
        units = (
            None
            if raw is None or raw.empty
            else gpd.GeoDataFrame(
                {"zone": raw["name"].astype(str).to_numpy(), "code": raw["code"].to_numpy()},
                geometry=raw.geometry.to_numpy(),
                crs=raw.crs,
            ).to_crs(prepared.crs)
        )
    if units is None or units.empty:
        return None
    return classify_units(units, _unit_codes(prepared.district))


def _facility_counts(fac: gpd.GeoDataFrame) -> dict[str, Any]:
    counts: dict[str, Any] = {}
    for cat in CATEGORIES:
        sub = fac.loc[fac["category"] == cat]
        counts[cat] = {
            "total": len(sub),
            "osm": int((sub["source"] == "osm").sum()),
            "imported": int((sub["source"] != "osm").sum()),
            "subtypes": {
                str(k): int(v) for k, v in sub["subtype"].value_counts().sort_index().items()
            },
        }
    return counts


def _build(
    req: AreaRequest,
    key: str,
    crs: str,
    boundary: gpd.GeoDataFrame,
    osm_path: Path,
    folder: Path,
    district: District | None,
) -> tuple[
    WalkNetwork,
    gpd.GeoDataFrame,
    gpd.GeoDataFrame,
    gpd.GeoDataFrame,
    gpd.GeoDataFrame,
    dict[str, Any],
    Future[SnapIndex],
]:
    boundary_m = dissolve(boundary.to_crs(crs))
    clip = _buffered_wgs84(boundary_m, crs, req.margin_m)
    osm = io.read_osm(osm_path)
    # the network, then its snap index, are built in a thread while the layers below are
    pending_net, pending_index = network_in_background(osm.ways, crs=crs, clip=clip)
    feats, entrances, osm_base = osm.features, osm.entrances, osm.osm_base
    del osm  # the thread holds the highway ways until the network is built
    rules = parse_tag_table(io.read_text(req.tags_file)) if req.tags_file else default_tag_rules()
    in_clip = shapely.within(shapely.point_on_surface(feats.geometry.to_numpy()), clip)
    osm_fac = facilities_from_osm(feats.loc[in_clip], rules)
    imported = _load_pois(req, crs, clip)
    dropped = 0
    kept_parts = []
    for part in imported:
        kept, n = deduplicate(osm_fac, part, crs=crs)
        kept, n_self = deduplicate_within(kept, crs=crs)  # one facility listed several times
        dropped += n + n_self
        kept_parts.append(kept)
    facilities = combine_facilities([osm_fac, *kept_parts]).to_crs(crs)
    access = facility_access(facility_shapes(facilities, feats), entrances, crs=crs)
    net = pending_net.result()
    extent = analysed_extent(net)
    extent_geom = shapely.intersection(extent.geometry.iloc[0], boundary_m)
    population = None
    if req.population_file is not None:
        path = Path(req.population_file)
        population = (
            io.read_raster_cells(path, area=clip)
            if path.suffix.lower() in io.RASTER_SUFFIXES
            else io.read_vector(path)
        )
    residents = build_residents(
        feats,
        crs=crs,
        area=boundary_m,
        analysed=extent_geom,
        population=population,
        population_column=req.population_column if req.population_file else "population",
    )
    analysed_km2 = float(extent_geom.area) / 1e6
    district_km2 = (
        float(district.land_area_km2)
        if district is not None and district.land_area_km2
        else float(boundary_m.area) / 1e6
    )
    info = {
        "osm": {"path": str(osm_path), "osm_base": osm_base},
        "network": summarize_network(net),
        "facilities": _facility_counts(facilities),
        "facility_access": {
            "polygons": int(access.loc[access["access"] != "point", "facility_id"].nunique()),
            "with_entrances": int(
                access.loc[access["access"] == "entrance", "facility_id"].nunique()
            ),
            "entrances": int((access["access"] == "entrance").sum()),
        },
        "duplicates_dropped": dropped,
        "residents": summarize_residents(residents),
        "extent": {
            "analysed_area_km2": round(analysed_km2, 3),
            "district_area_km2": round(district_km2, 3),
            "district_area_source": (
                district.land_area_source
                if district is not None and district.land_area_km2
                else "area of the boundary polygon"
            ),
            "boundary_area_km2": round(float(boundary_m.area) / 1e6, 3),
            "analysed_share": round(analysed_km2 / district_km2, 5) if district_km2 else None,
            "method": f"{int(extent['cell_m'].iloc[0])} m grid cells holding a walkable street, "
            "clipped to the boundary",
        },
    }
    extent = gpd.GeoDataFrame({"area_km2": [analysed_km2]}, geometry=[extent_geom], crs=crs)
    return net, facilities, access, residents, extent, info, pending_index


def network_in_background(
    ways: HighwayWays, *, crs: str, clip: BaseGeometry | None
) -> tuple[Future[WalkNetwork], Future[SnapIndex]]:
    """Start building the walking network, then its snap index, in one thread.

    Returns the futures of :func:`build_walk_network` (same arguments) and of the
    :class:`SnapIndex` of that network with its edge lines and trees built. Neither
    depends on the facilities, the imported POIs, the extent or the residents, which
    the caller builds meanwhile; both sides spend much of their time in numpy, scipy
    and GEOS, which release the GIL, so on two cores the first run at 1.9 million
    nodes is about 3 s shorter. The results are the objects the same calls give in
    the foreground.
    """
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lifecircle-network")
    try:
        net = pool.submit(build_walk_network, ways, crs=crs, clip=clip)
        return net, pool.submit(_index_of, net)  # one worker: runs once the network is built
    finally:
        pool.shutdown(wait=False)  # the thread ends when both are built


def _index_of(pending_net: Future[WalkNetwork]) -> SnapIndex:
    index = SnapIndex(pending_net.result())
    index.indexes()
    return index


def release_freed_memory() -> None:
    """Return the heap memory freed so far to the operating system (glibc only; else nothing).

    glibc gives each thread its own heap (arena) and keeps what is freed there for
    that thread's later use: the two million edge lines built by
    :func:`network_in_background` would otherwise stay in the process's resident memory
    (about 300 MB at 1.9 million nodes) after they are freed.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl): nothing to trim
        return


def _cache_inputs(
    req: AreaRequest, boundary_info: dict[str, Any], osm_path: Path, district: District | None
) -> dict[str, Any]:
    """Describe every input of a build, with the SHA-256 of each file's bytes."""
    return {
        "boundary": boundary_info,
        "osm": _file_info(osm_path),
        "pois": [
            {
                **(_file_info(p.path) or {}),
                "datum": p.datum,
                "lon": p.lon_col,
                "lat": p.lat_col,
                "name": p.name_col,
                "field": p.category_field,
                "mapping": _file_info(p.mapping_file),
            }
            for p in req.pois
        ],
        "population": _file_info(req.population_file),
        "population_column": req.population_column if req.population_file else None,
        "tags": _file_info(req.tags_file),
        "district_files": {
            str(p.relative_to(settings.data_dir() or p.parent)): io.file_sha256(p)
            for p in (district_files(district) if district is not None else [])
        },
        "package": {"version": __version__, **io.package_fingerprint()},
    }


def _locate_osm(req: AreaRequest, key: str, crs: str, boundary: gpd.GeoDataFrame) -> Path:
    """Return the OSM file of an area, downloading it when online and none is at hand."""
    osm_path = _osm_source(req, key)
    if osm_path is not None:
        return osm_path
    if req.offline:
        msg = (
            f"no OSM data for {key}: give --osm-file, set LIFECIRCLE_DATA_DIR to a folder "
            f"with {key}/osm/*.osm.pbf, or run online"
        )
        raise DataError(msg)
    boundary_m = dissolve(boundary.to_crs(crs))
    return io.download_osm(
        _buffered_wgs84(boundary_m, crs, req.margin_m),
        settings.raw_dir() / key / "overpass.osm.pbf",
        cache_folder=settings.raw_dir() / "http",
    )


def prepare_area(
    req: AreaRequest, *, rebuild: bool = False, background: bool = False
) -> PreparedArea:
    """Build or reuse the processed cache for an area.

    Parameters
    ----------
    req
        The area and data options.
    rebuild
        Rebuild even when the cache is current.
    background
        Write a newly built cache on a thread and return at once: the caller
        must call :meth:`PreparedArea.wait_for_cache` (a coverage run routes
        meanwhile; writing takes about 1 s at 1.9M nodes). The cache folder
        changes all at once either way.

    Returns
    -------
    PreparedArea
        Loaded from ``<cache>/processed/<folder>/`` (see :func:`cache_folder_name`)
        when its manifest's ``cache_key`` matches, else freshly built there.
    """
    if req.margin_m < 0:
        msg = f"margin must be >= 0 m, got {req.margin_m}"
        raise InputError(msg)
    key, crs, boundary, boundary_info, district = _resolve_area(req)
    folder = settings.processed_dir() / cache_folder_name(key, req)
    osm_path = _locate_osm(req, key, crs, boundary)
    inputs = _cache_inputs(req, boundary_info, osm_path, district)
    params = {"crs": crs, "margin_m": req.margin_m, "processing_version": PROCESSING_VERSION}
    cache_key = _cache_key(inputs, params)
    manifest = io.load_json(folder / MANIFEST)
    if not rebuild and manifest.get("cache_key") == cache_key:
        try:
            prepared = _load(folder, key, crs, manifest, district)
            logger.info("reusing the processed cache in %s", folder)
            for note in manifest.get("warnings", []):  # what the build warned about still holds
                warnings.warn(str(note), RuntimeWarning, stacklevel=2)
            return prepared
        except (OSError, ValueError, KeyError) as exc:
            logger.warning("processed cache in %s is unreadable (%s): rebuilding", folder, exc)

    io.check_writable_dir(folder, fix=io.CACHE_FIX)  # before the work, not after it
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        net, facilities, access, residents, extent, info, pending_index = _build(
            req, key, crs, boundary, osm_path, folder, district
        )
    notes = list(dict.fromkeys(str(w.message) for w in caught if w.category is RuntimeWarning))
    for w in caught:  # emitted now, and stored so that a run reusing the cache says them too
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    info["warnings"] = notes
    zones = _zones_layer(district, crs)
    index = pending_index.result()  # one set of edge lines and trees for both layers
    resident_snap = snap_residents(net, residents, index=index)  # default limits, cached
    access_snap = AccessSnap(access, snap_access(access, index))
    del index  # the trees hold two million lines: free them before the analysis
    release_freed_memory()  # they were built in a thread: see the function
    manifest = {
        "lifecircle_version": __version__,
        "key": key,
        "cache_key": cache_key,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "crs": crs,
        "district": district.key if district else None,
        "inputs": inputs,
        "parameters": params,
        "zones": zones is not None,
        "resident_snap": {
            "max_snap_m": float(DEFAULT_MAX_SNAP_M),
            "fragment_max_m": float(DEFAULT_FRAGMENT_MAX_M),
        },
        "access_snap": {
            "max_snap_m": float(DEFAULT_MAX_SNAP_M),
            "fragment_max_m": float(DEFAULT_FRAGMENT_MAX_M),
        },
        **info,
    }
    nodes, edges = network_tables(net)
    per_node, adjacency = derived_tables(net)
    tables = {
        "network_nodes.parquet": nodes,
        "network_edges.parquet": edges,
        NETWORK_PER_NODE: per_node,
        NETWORK_ADJACENCY: adjacency,
        RESIDENT_SNAP: resident_snap.reset_index(names="resident_id"),
        ACCESS_SNAP: access_snap.table,
    }
    layers = {
        "boundary.gpkg": boundary,
        "facilities.gpkg": facilities,
        "facility_access.gpkg": access,
        "residents.parquet": residents,
        "extent.gpkg": extent,
        **({"zones.gpkg": zones} if zones is not None else {}),
    }
    write = partial(_write_cache, folder, tables, layers, manifest)
    pending = None
    if background:
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lifecircle-cache")
        pending = pool.submit(write)
        pool.shutdown(wait=False)  # the thread ends when the cache is written
    else:
        write()
    return PreparedArea(
        key=key,
        folder=folder,
        crs=crs,
        boundary=boundary,
        network=net,
        facilities=facilities,
        residents=residents,
        extent=extent,
        manifest=manifest,
        district=district,
        zones=zones,
        facility_access=access,
        resident_snap=resident_snap,
        access_snap=access_snap,
        cache_written=pending,
    )


def _write_cache(
    folder: Path,
    tables: dict[str, pd.DataFrame],
    layers: dict[str, gpd.GeoDataFrame],
    manifest: dict[str, Any],
) -> None:
    """Write the processed cache into `folder`, all or nothing (see the module docstring).

    Raises
    ------
    OutputError
        If a file cannot be written (e.g. a full disk), naming the folder and the fix.
    """
    try:
        with io.replaced_dir(folder) as staging:
            _write_files(staging, tables, layers)
            io.save_json(manifest, staging / MANIFEST)  # last: its presence marks a whole cache
    except OutputError:
        raise
    except OSError as exc:
        msg = (
            f"cannot write the processed cache in {folder.parent}: {exc.strerror or exc}; free "
            "disk space there, or set LIFECIRCLE_CACHE_DIR to a folder on another disk"
        )
        raise OutputError(msg) from exc


def _write_files(
    folder: Path, tables: dict[str, pd.DataFrame], layers: dict[str, gpd.GeoDataFrame]
) -> None:
    """Write the cache's tables and layers into `folder`, two at a time, largest first.

    Parquet encoding and compression run in Arrow without Python's lock, so two
    writers overlap (at 1.9M nodes the cache's 1.6 s of writing takes about 1 s).
    The first error is raised once both writers have stopped.
    """
    writes: dict[str, Callable[[], Any]] = {
        n: partial(io.save_table, t, folder / n) for n, t in tables.items()
    }
    writes |= {n: partial(io.save_gdf, g, folder / n) for n, g in layers.items()}
    size = {n: len(f) * f.shape[1] for n, f in (tables | layers).items()}
    _two_at_a_time({n: writes[n] for n in sorted(writes, key=lambda n: -size[n])})


def _two_at_a_time(calls: dict[str, Callable[[], Any]]) -> dict[str, Any]:
    """Run the calls on two threads, in order; return their results by name.

    For reading and writing the cache's files: Arrow and GEOS work without
    Python's lock, so two overlap. The first error is raised once both threads
    have stopped.
    """
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="lifecircle-files") as pool:
        pending = {name: pool.submit(call) for name, call in calls.items()}
    return {name: job.result() for name, job in pending.items()}


def _read_files(folder: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Read the cache's tables and layers by file name, two at a time, largest first.

    Parquet decoding and the geometry parsing run without Python's lock, so two
    readers overlap. The first error is raised once both readers have stopped.
    """
    tables = [NETWORK_ADJACENCY, "network_edges.parquet", "network_nodes.parquet"]
    tables += [NETWORK_PER_NODE]
    tables += [RESIDENT_SNAP] if manifest.get("resident_snap") is not None else []
    tables += [ACCESS_SNAP] if manifest.get("access_snap") is not None else []
    layers = ["residents.parquet", "facilities.gpkg", "facility_access.gpkg"]
    layers += ["zones.gpkg"] if manifest.get("zones") else []
    layers += ["boundary.gpkg", "extent.gpkg"]
    reads: dict[str, Callable[[], Any]] = {layers[0]: partial(io.load_gdf, folder / layers[0])}
    reads |= {n: partial(io.load_table, folder / n) for n in tables}
    reads |= {n: partial(io.load_gdf, folder / n) for n in layers[1:]}
    return _two_at_a_time(reads)


def _load(
    folder: Path, key: str, crs: str, manifest: dict[str, Any], district: District | None
) -> PreparedArea:
    f = _read_files(folder, manifest)
    net = network_from_tables(f["network_nodes.parquet"], f["network_edges.parquet"], crs=crs)
    attach_derived(net, f[NETWORK_PER_NODE], f[NETWORK_ADJACENCY])
    residents = f["residents.parquet"]
    if "resident_id" in residents.columns:
        residents = residents.set_index("resident_id")
    residents.attrs["weight_unit"] = manifest["residents"]["weight_unit"]
    facilities = f["facilities.gpkg"]
    if "facility_id" in facilities.columns:
        facilities = facilities.set_index("facility_id")
    access = f["facility_access.gpkg"]
    snap = None
    if RESIDENT_SNAP in f:
        snap = f[RESIDENT_SNAP].set_index("resident_id")
        snap.index = residents.index if len(snap) == len(residents) else snap.index
    access_snap = AccessSnap(access, f[ACCESS_SNAP]) if ACCESS_SNAP in f else None
    return PreparedArea(
        key=key,
        folder=folder,
        crs=crs,
        boundary=f["boundary.gpkg"],
        network=net,
        facilities=facilities,
        residents=residents,
        extent=f["extent.gpkg"],
        manifest=manifest,
        district=district,
        zones=f.get("zones.gpkg"),
        facility_access=access,
        resident_snap=snap,
        access_snap=access_snap,
    )


def check_nonempty(prepared: PreparedArea) -> None:
    """Raise if the prepared area has no network or no residents."""
    if prepared.network.n_edges == 0:
        msg = "the walking network is empty: check the boundary and the OSM extract"
        raise NoDataError(msg)
    if prepared.residents.empty:
        msg = "no residents in the area: check the boundary or give --population"
        raise NoDataError(msg)


def float_or_none(value: float) -> float | None:
    """Return a JSON-safe float (None for inf/NaN)."""
    return float(value) if np.isfinite(value) else None
