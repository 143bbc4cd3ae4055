"""Run whole analyses: the one place the CLI, batch runs and notebooks call.

``run_fetch`` builds or reuses the processed cache; ``run_coverage`` computes
network distances, coverage against the target (by category, for all
categories, by zone and by distance ring), isochrones, and writes
``coverage.json``, the layers and the map atomically.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from lifecircle import __version__, io, settings
from lifecircle.access import Router, nearest_distances
from lifecircle.coverage import (
    DEFAULT_MINUTES,
    DEFAULT_PROFILE,
    DEFAULT_SPEED_KMH,
    DEFAULT_TARGET,
    Target,
    check_categories,
    check_target,
    coverage_by_zone,
    covered_frame,
    distance_column,
    facility_thresholds,
    format_unassigned,
    known_subtypes,
    load_profile,
    ring_labels,
    target_mask,
    unassigned_facilities,
)
from lifecircle.errors import InputError, OutputError
from lifecircle.facilities import (
    CATEGORIES,
    change_facilities,
    change_facility_access,
)
from lifecircle.fields import (
    tiled_field,
    tiled_intersect,
    tiled_lower_segments,
    tiled_polygon,
)
from lifecircle.i18n import Lang, check_lang
from lifecircle.isochrones import (
    DEFAULT_BUFFER_M,
    Sink,
    build_node_grid,
    dissolve_tiled,
    facility_isochrones,
    field_cell_m,
    field_reach_m,
)
from lifecircle.network import WalkNetwork
from lifecircle.prepare import (
    CACHE_FILES,
    DEFAULT_MARGIN_M,
    AreaRequest,
    PreparedArea,
    admin_units,
    check_nonempty,
    prepare_area,
    release_freed_memory,
)
from lifecircle.progress import step, track
from lifecircle.snapping import (
    DEFAULT_FRAGMENT_MAX_M,
    DEFAULT_MAX_SNAP_M,
    STATUS_OK,
    SnappedArea,
    snap_area,
    snapped_xy,
)
from lifecircle.summary import coverage_summary, gaps_summary
from lifecircle.zones import admin_coverage

if TYPE_CHECKING:  # imported where used: scipy.ndimage costs 0.2 s at every start
    from lifecircle.hierarchy import HierarchyOptions

logger = logging.getLogger(__name__)

DEFAULT_RING_EDGES_KM = settings.DEFAULT_RING_EDGES_KM
DEFAULT_MAX_SITES = settings.DEFAULT_MAX_SITES
DEFAULT_CANDIDATE_SPACING_M = settings.DEFAULT_CANDIDATE_SPACING_M
DEFAULT_TIME_LIMIT_S = settings.DEFAULT_TIME_LIMIT_S
DEFAULT_SEARCH_LIMIT_M = 3000.0


@dataclass(frozen=True)
class CoverageOptions:
    """Analysis parameters; every run records them in ``coverage.json``."""

    minutes: float = DEFAULT_MINUTES
    speed_kmh: float = DEFAULT_SPEED_KMH
    target: float = DEFAULT_TARGET
    profile: str = DEFAULT_PROFILE
    categories: tuple[str, ...] = CATEGORIES
    max_snap_m: float = DEFAULT_MAX_SNAP_M
    facility_max_snap_m: float | None = None
    fragment_max_m: float = DEFAULT_FRAGMENT_MAX_M
    search_limit_m: float = DEFAULT_SEARCH_LIMIT_M
    ring_edges_km: tuple[float, ...] = DEFAULT_RING_EDGES_KM
    isochrone_buffer_m: float = DEFAULT_BUFFER_M
    isochrones: bool = True
    make_map: bool = True
    floor_area_per_person_m2: float = settings.DEFAULT_FLOOR_AREA_PER_PERSON_M2
    population_total: float | None = None
    langs: tuple[str, ...] = (settings.DEFAULT_LANG,)


@dataclass
class CoverageResult:
    """What ``run_coverage`` computed and wrote."""

    summary: dict[str, Any]
    residents: gpd.GeoDataFrame
    isochrones: gpd.GeoDataFrame | None
    category_isochrones: gpd.GeoDataFrame | None
    out_dir: Path
    files: list[Path] = field(default_factory=list)
    prepared: PreparedArea | None = None
    facilities: gpd.GeoDataFrame | None = None


def run_fetch(req: AreaRequest, *, rebuild: bool = False, background: bool = False) -> PreparedArea:
    """Build or reuse the processed cache of an area (the ``fetch`` step).

    With `background`, a newly built cache is written on a thread: the caller
    must :meth:`~lifecircle.prepare.PreparedArea.wait_for_cache`.
    """
    with step("preparing the area (reading OSM, building the walking network)"):
        prepared = prepare_area(req, rebuild=rebuild, background=background)
    try:
        check_nonempty(prepared)
    except BaseException:
        prepared.wait_for_cache()
        raise
    return prepared


def _targets(
    options: CoverageOptions, facilities: pd.DataFrame | None = None
) -> tuple[tuple[str, ...], list[Target]]:
    """Validate the options and read the profile's tiers.

    With `facilities`, warn about tier subtypes that no rule produces.
    """
    check_target(options.target)
    categories = check_categories(options.categories)
    targets = load_profile(
        options.profile,
        minutes=options.minutes,
        speed_kmh=options.speed_kmh,
        categories=categories,
        known_subtypes=None if facilities is None else known_subtypes(facilities),
    )
    return categories, targets


def facility_access_layer(
    facilities: gpd.GeoDataFrame, access: gpd.GeoDataFrame | None
) -> gpd.GeoDataFrame:
    """Return the access geometries of `facilities` (their own points when none are given)."""
    if access is None:
        return gpd.GeoDataFrame(
            {"facility_id": facilities.index.to_numpy()},
            geometry=facilities.geometry.to_numpy(),
            crs=facilities.crs,
        )
    keep = access["facility_id"].isin(facilities.index).to_numpy()
    return access.loc[keep].reset_index(drop=True)


def search_limit(
    options: CoverageOptions, targets: list[Target], margin_m: float
) -> tuple[float, list[str]]:
    """Return the search radius and the notes that explain it.

    Facilities are loaded only within `margin_m` of the boundary, so a
    distance longer than the margin may miss a nearer facility beyond it:
    the search stops at the margin (never below the largest threshold).
    """
    need = max(t.threshold_m for t in targets)
    limit = max(options.search_limit_m, need)
    notes: list[str] = []
    if margin_m < need:
        msg = (
            f"the margin ({margin_m:g} m) is smaller than the walking threshold ({need:g} m): "
            "facilities just beyond the boundary are missing, so coverage near it is "
            f"under-estimated; use --margin-m {need:g} or more"
        )
        warnings.warn(msg, RuntimeWarning, stacklevel=3)
        notes.append(msg)
    if margin_m < limit:
        limit = max(margin_m, need)
        notes.append(
            f"distances are searched up to {limit:g} m only: facilities are loaded within "
            f"--margin-m {margin_m:g} m of the boundary, so a longer distance could miss a "
            "nearer facility beyond it"
        )
    return limit, notes


def _target_groups(
    facilities: pd.DataFrame,
    access: pd.DataFrame,
    targets: list[Target],
    categories: tuple[str, ...],
) -> dict[str, npt.NDArray[np.bool_]]:
    """Distance column -> mask over access rows of the facilities that serve it."""
    fac_ids = access["facility_id"].to_numpy()
    groups: dict[str, npt.NDArray[np.bool_]] = {}
    masks = [(t.column, target_mask(facilities, t)) for t in targets]
    masks += [
        (distance_column(c), facilities["category"].to_numpy() == c)
        for c in categories
        if distance_column(c) not in dict(masks)
    ]
    for column, mask in masks:
        groups[column] = np.isin(fac_ids, facilities.index.to_numpy()[mask])
    return groups


LONG_LEG_M = 100.0


def long_leg_warning(facilities: pd.DataFrame) -> list[str]:
    """Warn when reachable facilities hang on long straight legs off the mapped streets."""
    legs = facilities.loc[facilities["reachable"].to_numpy(dtype=bool), "access_leg_m"]
    long = legs[legs > LONG_LEG_M]
    if long.empty:
        return []
    msg = (
        f"{len(long)} of {len(legs)} reachable facilities are more than {LONG_LEG_M:g} m from the "
        f"nearest mapped street (up to {long.max():.0f} m), often beyond the extract's streets: "
        "their straight access legs make coverage near them approximate; see access_leg_m in "
        "facilities_reach.gpkg, or set --facility-max-snap-m to leave them out"
    )
    warnings.warn(msg, RuntimeWarning, stacklevel=3)
    return [msg]


def _missing_warnings(groups: dict[str, npt.NDArray[np.bool_]]) -> list[str]:
    warn = []
    for column, mask in groups.items():
        if not mask.any():
            label = column[len("dist_") : -len("_m")]
            msg = f"no {label} facilities in the area: its coverage is 0%; add some with --pois"
            warnings.warn(msg, RuntimeWarning, stacklevel=3)
            warn.append(msg)
    return warn


def resident_table(
    residents: gpd.GeoDataFrame, snapped: SnappedArea, distances: pd.DataFrame, net: WalkNetwork
) -> gpd.GeoDataFrame:
    """Return the residents with their snap and distance columns.

    ``street_x``/``street_y`` is where the resident's access leg meets the street.
    """
    out = residents.copy()
    snap = snapped.residents
    out["status"] = snap["status"].to_numpy()
    out["snap_offset_m"] = snap["offset_m"].to_numpy()
    out["moved_off_fragment"] = snap["moved_off_fragment"].to_numpy()
    out["extra_access_m"] = snap["extra_access_m"].to_numpy()
    out["street_x"], out["street_y"] = snapped_xy(snap, net)
    for column in distances.columns:
        out[column] = distances[column].to_numpy()
    return out


def facility_table(facilities: gpd.GeoDataFrame, snapped: SnappedArea) -> gpd.GeoDataFrame:
    """Return the facilities with ``reachable`` (from where residents live) and the access leg."""
    out = facilities.copy()
    acc = snapped.access
    ok = acc["edge"].to_numpy() >= 0
    best = acc.loc[ok].groupby("facility_id")["offset_m"].min()
    out["reachable"] = snapped.facility_reachable.reindex(out.index, fill_value=False).to_numpy(
        dtype=bool
    )
    out["access_leg_m"] = best.reindex(out.index).to_numpy(dtype=float)
    return out


def _isochrones(
    router: Router,
    facilities: gpd.GeoDataFrame,
    snapped: SnappedArea,
    targets: list[Target],
    buffer_m: float,
    residents: gpd.GeoDataFrame | None = None,
) -> tuple[gpd.GeoDataFrame | None, gpd.GeoDataFrame | None]:
    """One isochrone per facility at its own threshold, and the category layers.

    A category's layer is where every required tier is met, each tier drawn
    at its own threshold (a school serving the 10 and 15 minute tiers
    counts for the 10 minute tier with its 10 minute reach), plus the legs
    of the residents its figures count as covered (`residents`). Layers are
    contoured from tiled distance fields (:class:`lifecircle.isochrones.Sink`),
    one tier after the other.
    """
    acc = snapped.access
    fac = facilities.loc[acc["facility_id"].to_numpy()]
    thresholds = facility_thresholds(fac, targets)
    legs = gpd.GeoDataFrame(
        {c: fac[c].to_numpy() for c in ("category", "subtype", "name")},
        geometry=shapely.points(acc["leg_x"].to_numpy(), acc["leg_y"].to_numpy()),
        crs=facilities.crs,
    )
    grid = build_node_grid(router.net)  # once: each facility then searches its neighbourhood
    parts, layers = [], []
    cats = legs["category"].to_numpy()
    for cat in dict.fromkeys(cats[np.isfinite(thresholds)]):
        rows = (cats == cat) & np.isfinite(thresholds)
        done = np.zeros(len(rows), dtype=bool)
        layer = None
        for tier in [t for t in targets if t.category == cat and t.required]:
            serves = target_mask(fac, tier) & rows
            own = rows & (thresholds == tier.threshold_m) & ~done  # each polygon once
            done |= own
            canvas = tiled_field(cell_m=field_cell_m(buffer_m), reach_m=field_reach_m(buffer_m))
            need = serves | own
            iso = facility_isochrones(
                router,
                legs.loc[need],
                acc.loc[need],
                threshold_m=tier.threshold_m,
                buffer_m=buffer_m,
                grid=grid,
                sinks=[Sink(canvas, serves[need])],
                polygons=own[need],
            )
            parts.append(iso.assign(facility_id=acc["facility_id"].to_numpy()[iso.index]))
            layer = canvas if layer is None else tiled_intersect(layer, canvas)
        if layer is not None:
            column = f"covered_{cat}"
            if residents is not None and column in residents:
                tiled_lower_segments(layer, leg_coords(residents, column))
            layers.append({"category": cat, "geometry": tiled_polygon(layer, buffer_m)})
            del layer
            release_freed_memory()  # a city's tier fields are ~1 GB; hand them back
    if not parts:
        return None, None
    iso = dissolve_by_facility(gpd.GeoDataFrame(pd.concat(parts), crs=router.net.crs))
    counts = iso.groupby("category", sort=False).size()
    frame = gpd.GeoDataFrame(layers, geometry="geometry", crs=iso.crs)
    frame.insert(1, "facilities", frame["category"].map(counts).fillna(0).astype(int))
    return iso, frame


def dissolve_by_facility(iso: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Union the isochrones of a facility's several access points into one."""
    if not iso["facility_id"].duplicated().any():
        return iso.set_index("facility_id")
    geoms = iso.groupby("facility_id").geometry.apply(lambda g: shapely.union_all(g.to_numpy()))
    first = iso.drop(columns="geometry").groupby("facility_id").first()
    return gpd.GeoDataFrame(first, geometry=geoms.reindex(first.index).to_numpy(), crs=iso.crs)


@dataclass
class CoverageFrames:
    """What :func:`compute_coverage` returns (nothing written yet)."""

    summary: dict[str, Any]
    residents: gpd.GeoDataFrame
    isochrones: gpd.GeoDataFrame | None
    facilities: gpd.GeoDataFrame
    snapped: SnappedArea
    router: Router
    targets: list[Target]
    category_isochrones: gpd.GeoDataFrame | None = None


def scenario_area(
    prepared: PreparedArea,
    *,
    add: gpd.GeoDataFrame | None = None,
    remove: pd.DataFrame | None = None,
) -> PreparedArea:
    """Return the area with facilities added and removed, access layer kept in step."""
    facilities = change_facilities(prepared.facilities, add=add, remove=remove)
    access = (
        change_facility_access(prepared.facility_access, facilities, add=add)
        if prepared.facility_access is not None
        else None
    )
    return replace(prepared, facilities=facilities, facility_access=access)


def compute_coverage(prepared: PreparedArea, options: CoverageOptions) -> CoverageFrames:
    """Compute distances, coverage and isochrones (no writing).

    Stages: snap (residents and facility access points to the routable
    network), route (nearest facility per threshold), aggregate (coverage by
    category, unit and ring), summarise (the ``coverage.json`` content).

    Returns
    -------
    CoverageFrames
        The ``coverage.json`` content, residents with distance, status and
        coverage columns, facility isochrones (or None) and the facility
        table (``reachable``, ``access_leg_m``).
    """
    categories, targets = _targets(options, prepared.facilities)
    net = prepared.network
    facilities = prepared.facilities.loc[prepared.facilities["category"].isin(categories)]
    access = facility_access_layer(facilities, prepared.facility_access)
    with step("snapping residents and facilities to the streets"):
        snapped = snap_area(
            net,
            prepared.residents,
            access,
            max_snap_m=options.max_snap_m,
            fragment_max_m=options.fragment_max_m,
            facility_max_snap_m=options.facility_max_snap_m,
            resident_snap=prepared.resident_snap_for(options.max_snap_m, options.fragment_max_m),
            access_snap=prepared.access_snap_for(
                options.max_snap_m
                if options.facility_max_snap_m is None
                else options.facility_max_snap_m,
                options.fragment_max_m,
            ),
        )
    margin_m = float(prepared.manifest.get("parameters", {}).get("margin_m", DEFAULT_MARGIN_M))
    limit, notes = search_limit(options, targets, margin_m)
    groups = _target_groups(facilities, snapped.access, targets, categories)
    optional = {t.column for t in targets if not t.required}  # reported only: no 0% warning
    warn = _missing_warnings({c: m for c, m in groups.items() if c not in optional})
    with step("routing: walking distance to the nearest facilities"):
        router = Router.from_network(net)
        distances = nearest_distances(
            router, snapped.residents, snapped.access, groups, limit_m=limit
        )
    with_persons = _with_persons(prepared.residents, options, warn)
    residents = resident_table(with_persons, snapped, distances, net)
    covered = covered_frame(residents, targets)
    for col in covered.columns:
        residents[f"covered_{col}"] = covered[col].to_numpy()
    fac_table = facility_table(facilities, snapped)
    if note := format_unassigned(unassigned_facilities(fac_table, targets), options.profile):
        warnings.warn(note, RuntimeWarning, stacklevel=2)
        warn.append(note)
    warn += long_leg_warning(fac_table)
    zones_out = _zone_coverage(prepared, residents, covered, options)
    isochrones = layers = None
    if options.isochrones:
        with step("isochrones"):
            isochrones, layers = _isochrones(
                router, facilities, snapped, targets, options.isochrone_buffer_m, residents
            )
    summary = coverage_summary(
        prepared,
        options,
        residents=residents,
        covered=covered,
        targets=targets,
        facilities=fac_table,
        snapped=snapped,
        search_limit_m=limit,
        zones=zones_out,
        warnings_=[*warn, *notes],
    )
    return CoverageFrames(
        summary, residents, isochrones, fac_table, snapped, router, targets, layers
    )


def _with_persons(
    residents: gpd.GeoDataFrame, options: CoverageOptions, warn: list[str]
) -> gpd.GeoDataFrame:
    """Add ``persons`` (estimated residents) to the residents; note when unknown."""
    from lifecircle.residents import estimate_persons

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        out = estimate_persons(
            residents,
            floor_area_per_person_m2=options.floor_area_per_person_m2,
            population_total=options.population_total,
        )
    for w in caught:
        warnings.warn(str(w.message), RuntimeWarning, stacklevel=3)
        warn.append(str(w.message))
    return out


def _zone_coverage(
    prepared: PreparedArea,
    residents: gpd.GeoDataFrame,
    covered: pd.DataFrame,
    options: CoverageOptions,
) -> dict[str, Any]:
    """Coverage by administrative unit (where boundaries exist) and by distance ring.

    Adds ``core_distance_km`` and ``ring`` (and ``admin_unit``) to `residents`.
    """
    zones_out: dict[str, Any] = {}
    if prepared.zones is not None and not prepared.zones.empty:
        zones_out.update(
            admin_coverage(
                residents, covered, prepared.zones, prepared.network, target=options.target
            )
        )
    core = _core_point(prepared)
    dist_km = shapely.distance(residents.geometry.to_numpy(), core) / 1000.0
    residents["core_distance_km"] = dist_km
    rings = ring_labels(dist_km, options.ring_edges_km)
    rings.index = residents.index
    residents["ring"] = rings
    zones_out["rings"] = coverage_by_zone(residents, covered, rings, target=options.target)
    return zones_out


def _core_point(prepared: PreparedArea) -> BaseGeometry:
    if prepared.district is not None:
        lon, lat = prepared.district.core_lonlat
        pt = gpd.GeoSeries([shapely.Point(lon, lat)], crs=4326).to_crs(prepared.crs)
        return pt.iloc[0]
    return prepared.boundary_m.centroid


def leg_coords(residents: gpd.GeoDataFrame, column: str) -> npt.NDArray[np.float64]:
    """Return the access legs (resident point to street) where `column` is True, ``(k, 2, 2)``."""
    sel = residents[column].to_numpy(dtype=bool)
    start = np.column_stack(
        [residents.geometry.x.to_numpy()[sel], residents.geometry.y.to_numpy()[sel]]
    )
    end = np.column_stack(
        [residents["street_x"].to_numpy()[sel], residents["street_y"].to_numpy()[sel]]
    )
    return np.stack([start, end], axis=1).reshape(-1, 2, 2)


def covered_legs(residents: gpd.GeoDataFrame, column: str) -> npt.NDArray[np.object_]:
    """Return the access legs (resident point to street) of the residents where `column` is True."""
    return np.asarray(shapely.linestrings(leg_coords(residents, column)), dtype=object)


def _tier_polygon(
    group: pd.DataFrame,
    tiers: list[Target],
    extra: npt.NDArray[np.object_] | None = None,
) -> shapely.Geometry:
    """Where every required tier is met: the intersection of each tier's union of reach.

    `extra` polygons (the covered residents' buffered legs) are added; the
    overlays run in tiles on a thread pool (:func:`dissolve_tiled`).
    """
    geoms = group.geometry.to_numpy()
    sets = [geoms[target_mask(group, t)] for t in tiers] if tiers else [geoms]
    return dissolve_tiled(sets, extra)


def dissolve_isochrones(
    isochrones: gpd.GeoDataFrame,
    residents: gpd.GeoDataFrame | None = None,
    targets: list[Target] | None = None,
    *,
    buffer_m: float = DEFAULT_BUFFER_M,
) -> gpd.GeoDataFrame:
    """Dissolve facility isochrone polygons into one polygon per category (a polygon overlay).

    The pipeline builds its layers from distance fields instead (:func:`_isochrones`,
    each tier at its own threshold); this overlays given polygons, a facility's
    polygon standing for every tier it serves, and is the tests' exact reference.

    With `targets`, a category's polygon is where *every* required tier is
    reached (the intersection of each tier's reach), as its coverage figure
    counts. With `residents` (``street_x``/``street_y`` and
    ``covered_<category>`` columns), the access legs of the residents covered
    for a category are added, buffered like the streets, so every resident
    the figures count as covered lies inside the drawn isochrone.
    """
    rows = []
    for cat, group in isochrones.groupby("category", sort=False):
        tiers = [t for t in targets or [] if t.category == cat and t.required]
        column = f"covered_{cat}"
        legs = None
        if residents is not None and column in residents:
            legs = shapely.buffer(covered_legs(residents, column), buffer_m, quad_segs=3)
        geom = _tier_polygon(group, tiers, legs)
        rows.append({"category": cat, "facilities": len(group), "geometry": geom})
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=isochrones.crs)


RUN_SUMMARIES = ("coverage.json", "gaps.json", "plan.json")
_SIGNATURE_KEYS = ("minutes", "speed_kmh", "target", "profile", "categories", "max_snap_m")


def _run_parameters(summary: dict[str, Any]) -> dict[str, Any]:
    params = summary.get("parameters", {}) if "coverage" not in summary else {}
    params = params or summary.get("coverage", {}).get("parameters", {})
    return {k: params.get(k) for k in _SIGNATURE_KEYS}


def other_runs(folder: Path, marker: str, options: CoverageOptions) -> list[tuple[str, str]]:
    """Return the other commands' runs in `folder` made with other analysis parameters.

    Each item is ``(summary name, what differs)``; a folder holds one run's figures.
    """
    mine = {
        "minutes": options.minutes,
        "speed_kmh": options.speed_kmh,
        "target": options.target,
        "profile": options.profile,
        "categories": list(check_categories(options.categories)),
        "max_snap_m": options.max_snap_m,
    }
    found = []
    for name in RUN_SUMMARIES:
        if name == marker or not io.path_exists(folder / name):
            continue
        theirs = _run_parameters(io.load_json(folder / name))
        diff = [f"{k} {theirs[k]} vs {mine[k]}" for k in _SIGNATURE_KEYS if theirs[k] != mine[k]]
        if diff:
            found.append((name, ", ".join(diff)))
    return found


def _start_run(
    req: AreaRequest,
    options: CoverageOptions,
    out_dir: Path | None,
    marker: str,
    *,
    overwrite: bool,
    rebuild: bool,
    prepared: PreparedArea | None,
    background: bool = False,
) -> tuple[PreparedArea, Path]:
    """Check the options and the output folder before any work, then prepare the area.

    An explicit `out_dir` that already holds `marker` needs `overwrite`; the
    default folder (the area's processed cache) may always be overwritten.
    With `background`, see :func:`run_fetch`.
    """
    _targets(options)  # refuses bad options (e.g. --minutes with a tiered profile) before work
    if out_dir is not None:
        io.check_writable_dir(out_dir)  # creates nothing: a refused run leaves no trace
        if not overwrite and io.path_exists(out_dir / marker):
            msg = f"{out_dir / marker} exists: use --overwrite or another --out"
            raise OutputError(msg)
        clash = other_runs(out_dir, marker, options)
        if clash and not overwrite:
            name, diff = clash[0]
            msg = (
                f"{out_dir} holds {name} from a run with other parameters ({diff}): use another "
                "--out, or --overwrite to replace that run too"
            )
            raise OutputError(msg)
    prepared = prepared or run_fetch(req, rebuild=rebuild, background=background)
    target_dir = out_dir if out_dir is not None else prepared.folder
    try:
        io.check_writable_dir(target_dir)
    except BaseException:
        prepared.wait_for_cache()
        raise
    return prepared, target_dir


def _with_added_facilities(
    prepared: PreparedArea, path: Path, out_dir: Path | None
) -> PreparedArea:
    if out_dir is None:
        msg = "--add-facilities needs --out: the cache folder keeps the run without them"
        raise InputError(msg)
    layer = io.read_vector(path)
    if "category" not in layer.columns:
        msg = f"{path} has no 'category' column: give each facility one of {', '.join(CATEGORIES)}"
        raise InputError(msg)
    return scenario_area(prepared, add=layer)


def run_coverage(
    req: AreaRequest,
    options: CoverageOptions | None = None,
    *,
    out_dir: Path | None = None,
    overwrite: bool = False,
    rebuild: bool = False,
    prepared: PreparedArea | None = None,
    add_facilities: Path | None = None,
) -> CoverageResult:
    """Run the whole coverage analysis and write its outputs.

    Parameters
    ----------
    req
        Area and data options (as for ``fetch``).
    options
        Analysis parameters.
    out_dir
        Output folder (default: the area's processed cache folder, which
        may be overwritten; an explicit folder needs `overwrite` to replace
        an earlier ``coverage.json``).
    overwrite
        Replace existing outputs in an explicit `out_dir`.
    rebuild
        Rebuild the processed cache.
    prepared
        An already prepared area (batch runs share one per area).
    add_facilities
        A layer of facilities to add (a ``category`` column, optional
        ``subtype`` and ``name``; points or polygons), e.g. a plan's
        ``sites.gpkg``. Needs `out_dir`: the cache folder keeps the baseline.

    Returns
    -------
    CoverageResult
    """
    options = options or CoverageOptions()
    prepared, target_dir = _start_run(
        req,
        options,
        out_dir,
        "coverage.json",
        overwrite=overwrite,
        rebuild=rebuild,
        prepared=prepared,
        background=True,  # a new cache is written while the distances are computed
    )
    base = prepared
    try:
        if add_facilities is not None:
            prepared = _with_added_facilities(prepared, add_facilities, out_dir)
        frames = compute_coverage(prepared, options)
    finally:
        base.wait_for_cache()  # before writing (the default folder is the cache's)
    summary, residents, iso = frames.summary, frames.residents, frames.isochrones
    if add_facilities is not None:
        summary["parameters"]["added_facilities"] = str(add_facilities)
    files = []
    keep = [c for c in residents.columns if c not in {"ring"}] + ["ring"]
    cat_iso = None
    # staged, then swapped in: the folder holds this run's files only, or the last run's
    replaces = [n for n, _ in other_runs(target_dir, "coverage.json", options)]
    with io.output_set(target_dir, "coverage.json", keep=CACHE_FILES, replaces=replaces) as out:
        files.append(io.save_gdf(residents[keep], out.path("residents_coverage.gpkg")))
        files.append(io.save_gdf(frames.facilities, out.path("facilities_reach.gpkg")))
        if iso is not None and not iso.empty:
            files.append(io.save_gdf(iso, out.path("isochrones.gpkg")))
            cat_iso = frames.category_isochrones
            if cat_iso is not None:
                files.append(io.save_gdf(cat_iso, out.path("category_isochrones.gpkg")))
        if options.make_map:
            from lifecircle.report import report_file_name
            from lifecircle.webmap import area_name, coverage_web_map

            for lang in _langs(options):
                figs = coverage_figures(prepared, frames, cat_iso, lang=lang)
                files += _save_figures({_lang_file(n, lang): f for n, f in figs.items()}, out)
                page = coverage_web_map(
                    summary,
                    residents,
                    frames.facilities,
                    units=prepared.zones,
                    isochrones=cat_iso,
                    extent=prepared.extent,
                    area_name=area_name(prepared, lang),
                    lang=lang,
                )
                name = report_file_name("web_map", "html", lang)
                files.append(io.save_text(page, out.path(name)))
        summary["outputs"] = [p.name for p in files] + ["coverage.json"]
        io.save_json(summary, out.path("coverage.json"))
    files = out.files
    return CoverageResult(
        summary=summary,
        residents=residents,
        isochrones=iso,
        category_isochrones=cat_iso,
        out_dir=target_dir,
        files=files,
        prepared=prepared,
        facilities=frames.facilities,
    )


def coverage_figures(
    prepared: PreparedArea,
    frames: CoverageFrames,
    category_isochrones: gpd.GeoDataFrame | None,
    *,
    lang: Lang = "en",
) -> dict[str, Any]:
    """Return the maps and charts of a coverage run by file name (not saved).

    ``coverage_map.png`` (one panel per category), ``coverage_by_category.png``
    and ``accessibility_curves.png``.
    """
    from lifecircle.charts import coverage_charts
    from lifecircle.plot import plot_coverage_small_multiples

    with step("coverage maps and charts"):
        fig, _ = plot_coverage_small_multiples(
            prepared, frames.residents, category_isochrones, frames.summary, lang=lang
        )
        return {
            "coverage_map.png": fig,
            **coverage_charts(frames.summary, frames.residents, lang=lang),
        }


def _save_figures(figures: dict[str, Any], out: io.OutputSet) -> list[Path]:
    """Save figures under their file names in the output set, and close them."""
    import matplotlib.pyplot as plt

    files = []
    for name, fig in track(figures.items(), "saving figures", total=len(figures)):
        files.append(io.save_figure(fig, out.path(name)))
        plt.close(fig)
    return files


def options_dict(options: CoverageOptions) -> dict[str, Any]:
    """Return the options as a plain dict (for manifests and batch hashes)."""
    return asdict(options)


# --------------------------------------------------------------------------- gaps


def _default_hierarchy() -> HierarchyOptions:
    from lifecircle.hierarchy import HierarchyOptions

    return HierarchyOptions()


@dataclass(frozen=True)
class GapOptions:
    """Parameters of the gap analysis (recorded in ``gaps.json``)."""

    lag_points: float = settings.DEFAULT_LAG_POINTS
    cluster_eps_m: float = settings.DEFAULT_CLUSTER_EPS_M
    zones_file: Path | None = None
    zones_name_field: str | None = None
    zone_ring_m: float = settings.DEFAULT_ZONE_RING_M
    admin_level: str = "8"
    pdf: bool = True
    central_file: Path | None = None
    centres_file: Path | None = None
    osm_places: bool = False
    hierarchy: HierarchyOptions = field(default_factory=_default_hierarchy)


@dataclass
class GapResult:
    """What ``run_gaps`` computed and wrote."""

    summary: dict[str, Any]
    tables: dict[str, pd.DataFrame]
    clusters: gpd.GeoDataFrame
    residents: gpd.GeoDataFrame
    out_dir: Path
    admin: gpd.GeoDataFrame | None = None
    files: list[Path] = field(default_factory=list)
    facilities: gpd.GeoDataFrame | None = None
    tier_table: pd.DataFrame | None = None
    degurba_grid: gpd.GeoDataFrame | None = None
    prepared: PreparedArea | None = None


def _tier_persons(residents: pd.DataFrame) -> tuple[npt.NDArray[np.float64], str]:
    """Persons per resident point for the tiers' density grid, and their basis.

    The estimated residents (``persons``, see :func:`lifecircle.residents.estimate_persons`).
    Without an estimate (grid points and no ``--population-total``) no cell can
    reach a density threshold: every cell is rural, suburban cores come only
    from town seats, and a warning says so.
    """
    persons = residents["persons"].to_numpy(dtype=float) if "persons" in residents else None
    if persons is not None and len(persons) and np.isfinite(persons).all():
        return persons, str(residents.attrs.get("persons_basis", "estimated residents"))
    if residents.attrs.get("weight_unit") == "persons":
        return residents["weight"].to_numpy(dtype=float), "resident weights (persons)"
    msg = (
        "residents have no estimate in persons (give --population-total or --population): "
        "the Degree of Urbanisation grid finds no urban cells, so suburban cores come only "
        "from --centres / --osm-places"
    )
    warnings.warn(msg, RuntimeWarning, stacklevel=3)
    return np.zeros(len(residents)), "none (no estimate in persons)"


def _centre_points(
    prepared: PreparedArea, req: AreaRequest, gap_options: GapOptions
) -> tuple[gpd.GeoDataFrame, list[str]]:
    """Town seats from --centres FILE and, with --osm-places, OSM place nodes (metric CRS)."""
    parts: list[gpd.GeoDataFrame] = []
    sources: list[str] = []
    if gap_options.centres_file is not None:
        kinds = ("Point", "MultiPoint")
        given = _user_layer(gap_options.centres_file, "--centres", kinds, "points (town seats)")
        parts.append(given[["geometry"]].to_crs(prepared.crs))
        sources.append(f"{len(given)} centres from {Path(gap_options.centres_file).name}")
    if gap_options.osm_places:
        if req.offline:
            msg = "--osm-places downloads OSM place nodes: drop --offline or give --centres FILE"
            raise InputError(msg)
        nodes = io.download_place_nodes(
            prepared.boundary.to_crs(4326).union_all(), cache_folder=settings.raw_dir() / "http"
        )
        parts.append(nodes[["geometry"]].to_crs(prepared.crs))
        sources.append(f"{len(nodes)} OSM place=town|suburb|village nodes")
    if not parts:
        return gpd.GeoDataFrame(geometry=gpd.GeoSeries([], crs=prepared.crs)), sources
    return gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=prepared.crs), sources


def _user_layer(path: Path, option: str, kinds: tuple[str, ...], what: str) -> gpd.GeoDataFrame:
    """Read `option`'s layer: it must state a CRS, hold only `kinds`, and be lon/lat if WGS-84."""
    given = io.read_vector(path)
    if given.crs is None:
        msg = f"{option} {path} has no CRS: set one (e.g. EPSG:4326)"
        raise InputError(msg)
    if not given.geom_type.isin(list(kinds)).all():
        msg = f"{option} {path} must hold {what}"
        raise InputError(msg)
    _check_lonlat(given, f"{option} {path}")
    return given


def _check_lonlat(given: gpd.GeoDataFrame, what: str) -> None:
    """Refuse a layer read as WGS-84 whose coordinates are not longitudes/latitudes.

    A GeoJSON without a ``crs`` member is read as WGS-84; projected metres in
    it would otherwise turn into no match at all, silently.
    """
    if given.crs is None or not given.crs.is_geographic or len(given) == 0:
        return
    x0, y0, x1, y1 = given.total_bounds
    if not (-180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
        msg = (
            f"{what} has coordinates outside longitude/latitude ({x0:.0f}, {y0:.0f}) but is read "
            f"as {given.crs.to_string()} (a GeoJSON without a crs member is WGS-84): reproject "
            "it to WGS-84 or give a GeoPackage that states its CRS"
        )
        raise InputError(msg)


def _central_area(
    prepared: PreparedArea, gap_options: GapOptions, admin: gpd.GeoDataFrame | None
) -> tuple[BaseGeometry | None, str]:
    """Return the central city: the --central polygon, else the 街道 sub-districts."""
    from lifecircle.i18n import text

    if gap_options.central_file is not None:
        kinds, what = ("Polygon", "MultiPolygon"), "polygons (the central city)"
        given = _user_layer(gap_options.central_file, "--central", kinds, what)
        if len(given) == 0 or given.geometry.is_empty.all():
            msg = (
                f"--central {gap_options.central_file} holds no polygon: give the central city "
                "as one or more polygons, or drop --central to use the 街道 sub-districts"
            )
            raise InputError(msg)
        return given.to_crs(prepared.crs).union_all(), Path(gap_options.central_file).name
    if admin is None or "kind" not in admin:
        warnings.warn(
            "no administrative units and no --central polygon: no resident is central city",
            RuntimeWarning,
            stacklevel=3,
        )
        return None, "none (no administrative units)"
    subs = admin.loc[admin["kind"] == "subdistrict"]
    return (
        subs.union_all() if len(subs) else None,
        text("central_subdistricts", "en").format(n=len(subs)),
    )


def _central_zh(source: str, admin: gpd.GeoDataFrame | None) -> str:
    """Return the central-city source in Chinese (a file name stays as it is)."""
    from lifecircle.i18n import text

    if source.startswith("街道 sub-districts") and admin is not None and "kind" in admin:
        return text("central_subdistricts", "zh").format(
            n=int((admin["kind"] == "subdistrict").sum())
        )
    if source.startswith("none"):
        return "无（没有行政单元）"
    return source


def _persons_zh(residents: pd.DataFrame, basis: str) -> str:
    """Return the persons basis in Chinese, from the residents' estimate."""
    from lifecircle.report import persons_basis_text

    if basis.startswith("none"):
        return "无（没有人口估算）"
    if basis.startswith("resident weights"):
        return "居民权重（人）"
    return persons_basis_text(
        {
            "persons_method": residents.attrs.get("persons_method"),
            "persons_parameter": residents.attrs.get("persons_parameter"),
        },
        "zh",
    )


def _hierarchy(
    prepared: PreparedArea,
    req: AreaRequest,
    residents: gpd.GeoDataFrame,
    admin: gpd.GeoDataFrame | None,
    categories: tuple[str, ...],
    gap_options: GapOptions,
) -> tuple[dict[str, Any], pd.DataFrame, gpd.GeoDataFrame]:
    """Tiers per resident (adds ``tier`` and ``degurba`` columns), tier table, ordering test."""
    from lifecircle import hierarchy as hi

    opts = gap_options.hierarchy
    hi.check_hierarchy_options(opts)
    persons, persons_basis = _tier_persons(residents)
    central_area, central_source = _central_area(prepared, gap_options, admin)
    xs = np.asarray(residents.geometry.x, dtype=np.float64)
    ys = np.asarray(residents.geometry.y, dtype=np.float64)
    degurba, grid, classes = hi.degurba_of_points(xs, ys, persons, opts)
    centres, centre_sources = _centre_points(prepared, req, gap_options)
    near = hi.near_points(residents, centres, radius_m=opts.centre_radius_m)
    core = (degurba != "rural") | near
    tiers = hi.assign_tiers(hi.inside(residents, central_area), core)
    residents["tier"] = tiers
    residents["degurba"] = degurba
    covered, dist = hi.category_arrays(residents, categories)
    units = residents["admin_unit"].to_numpy(dtype=object) if "admin_unit" in residents else None
    # without persons (grid points, no total) shares are still defined by the resident weights
    known = bool(persons.sum() > 0)
    weights = persons if known else residents["weight"].to_numpy(dtype=float)
    table = hi.tier_measures(tiers, weights, covered, dist, units=units)
    if not known:
        table[["persons", "left_out_persons"]] = np.nan
    test = hi.ordering_test(
        tiers,
        weights,
        covered,
        bootstrap=opts.bootstrap,
        seed=opts.seed,
        min_tier_points=opts.min_tier_points,
    )
    for cat, entry in test.items():
        entry["sentence_en"] = hi.verdict_sentence(cat, entry, "en")
        entry["sentence_zh"] = hi.verdict_sentence(cat, entry, "zh")
    empty = [t for t in hi.TIERS if not (weights[tiers == t].sum() > 0)]
    if gap_options.central_file is not None and "central" in empty:
        warnings.warn(
            f"--central {Path(gap_options.central_file).name} contains no resident: check that it "
            "covers part of the analysed area (and its CRS)",
            RuntimeWarning,
            stacklevel=2,
        )
    cells = hi.grid_frame(grid, classes, crs=prepared.crs)
    summary = {
        "method": hi.method_note(opts),
        "method_zh": hi.method_note(opts, "zh"),
        "parameters": {
            **asdict(opts),
            "central": central_source,
            "central_zh": _central_zh(central_source, admin),
            "centres": centre_sources,
            "persons": persons_basis,
            "persons_zh": _persons_zh(residents, persons_basis),
        },
        "tiers": {
            t: {
                "resident_points": int((tiers == t).sum()),
                "persons": round(float(persons[tiers == t].sum()), 1),
            }
            for t in hi.TIERS
        },
        "empty_tiers": empty,
        "empty_tiers_note": {
            "en": hi.empty_tiers_sentence(empty, "en"),
            "zh": hi.empty_tiers_sentence(empty, "zh"),
        },
        "degurba_cells": {c: int((cells["degurba"] == c).sum()) for c in hi.DEGURBA_CLASSES},
        "table": table.to_dict("records"),
        "test": test,
    }
    return summary, table, cells


def _gap_zone_tables(
    prepared: PreparedArea,
    req: AreaRequest,
    residents: gpd.GeoDataFrame,
    categories: tuple[str, ...],
    gap_options: GapOptions,
) -> tuple[dict[str, pd.DataFrame], gpd.GeoDataFrame | None, list[dict[str, Any]]]:
    """Zone measures by ring, administrative unit and user zone (with its comparison ring)."""
    from lifecircle import gaps, zones

    tables: dict[str, pd.DataFrame] = {
        "rings": gaps.zone_measures(residents, residents["ring"], categories, kind="ring")
    }
    admin = admin_units(prepared, offline=req.offline, admin_level=gap_options.admin_level)
    if admin is not None:
        labels = zones.assign_units(residents, admin)
        residents["admin_unit"] = labels
        table = gaps.zone_measures(residents, labels, categories, kind="admin")
        kinds = dict(zip(admin["zone"], admin["kind"], strict=True))
        table.insert(2, "unit_kind", table["zone"].map(kinds))
        tables["admin"] = table
    comparison: list[dict[str, Any]] = []
    if gap_options.zones_file is not None:
        user = zones.prepare_user_zones(
            io.read_vector(gap_options.zones_file),
            area=prepared.boundary_m,
            crs=prepared.crs,
            name_field=gap_options.zones_name_field,
            ring_m=gap_options.zone_ring_m,
        )
        t_in, t_ring = zones.user_zone_tables(residents, user, categories)
        tables["user_zones"] = pd.concat([t_in, t_ring], ignore_index=True)
        comparison = zones.user_zone_comparison(t_in, t_ring, ring_m=gap_options.zone_ring_m)
    return tables, admin, comparison


def compute_gaps(
    prepared: PreparedArea,
    req: AreaRequest,
    options: CoverageOptions,
    gap_options: GapOptions,
    *,
    coverage: tuple[dict[str, Any], gpd.GeoDataFrame] | None = None,
) -> GapResult:
    """Compute zone measures, the gradient, inequality, gap clusters and flags (no writing).

    `coverage` is an already computed ``(summary, residents)`` pair for the
    same area and options (a batch job passes its coverage run's); without
    it, coverage is computed here.
    """
    from lifecircle import gaps, zones

    check_target(options.target)
    categories = check_categories(options.categories)
    if coverage is None:
        frames = compute_coverage(prepared, replace(options, isochrones=False))
        cov_summary, residents = frames.summary, frames.residents
        facilities = frames.facilities
    else:
        cov_summary, residents = coverage[0], coverage[1].copy()
        facilities = prepared.facilities.loc[prepared.facilities["category"].isin(categories)]
    cap_m = float(cov_summary["parameters"]["search_limit_m"])
    tables, admin, comparison = _gap_zone_tables(prepared, req, residents, categories, gap_options)
    tier_summary, tier_table, cells = _hierarchy(
        prepared, req, residents, admin, categories, gap_options
    )
    grad = gaps.gradient(tables["rings"], lag_points=gap_options.lag_points)
    groups = residents["ring"].fillna("outside rings").astype(str).to_numpy()
    ineq = gaps.inequality_by_category(residents, categories, list(groups), cap_m=cap_m)
    clusters = gaps.gap_clusters(residents, categories, eps_m=gap_options.cluster_eps_m)
    flag_list = gaps.flags(
        tables["rings"],
        tables.get("admin"),
        grad,
        clusters,
        target=options.target,
        lag_points=gap_options.lag_points,
    )
    summary = gaps_summary(
        prepared.key,
        options,
        gap_options,
        coverage=cov_summary,
        cap_m=cap_m,
        tables=tables,
        gradient=grad,
        inequality=ineq,
        comparison=comparison,
        clusters=clusters,
        flags=flag_list,
        units=list(admin["zone"]) if admin is not None else [],
        units_without_network=(
            zones.units_without_network(admin, prepared.network) if admin is not None else []
        ),
    )
    summary["hierarchy"] = tier_summary
    return GapResult(
        summary=summary,
        tables=tables,
        clusters=clusters,
        residents=residents,
        out_dir=prepared.folder,
        admin=admin,
        facilities=facilities,
        tier_table=tier_table,
        degurba_grid=cells,
    )


def _langs(options: CoverageOptions) -> list[Lang]:
    return [check_lang(name) for name in options.langs]


def area_title(prepared: PreparedArea, lang: str) -> str:
    """Name the area in a title: the district's Chinese or English name, else its cache key."""
    from lifecircle.webmap import area_name

    return area_name(prepared, check_lang(lang))


def _gap_reports(
    result: GapResult,
    options: CoverageOptions,
    gap_options: GapOptions,
    prepared: PreparedArea,
    figures: dict[str, list[tuple[str, str]]],
    images: dict[str, bytes],
    out: io.OutputSet,
    tier_figures: dict[str, list[tuple[str, str]]],
    charts: dict[str, list[tuple[str, str]]],
) -> list[Path]:
    """Write ``gaps_report.html``/``.md`` per language (``gaps_report.zh.html`` for Chinese)."""
    from lifecircle import gaps
    from lifecircle.i18n import check_lang, text
    from lifecircle.report import (
        Section,
        gap_report_sections,
        hierarchy_sections,
        persons_basis_text,
    )
    from lifecircle.report import (
        category_display as _display,
    )

    files = []
    for name in options.langs:
        lang = check_lang(name)
        captions = [
            (
                text("gap_map_caption", lang).format(cat=_display(cat, lang)),
                png,
            )
            for cat, png in figures[lang]
        ]
        flags = gaps.flags(
            result.tables["rings"],
            result.tables.get("admin"),
            result.summary["gradient"],
            result.clusters,
            target=options.target,
            lag_points=gap_options.lag_points,
            lang=lang,
        )
        sections = gap_report_sections(
            result.summary, result.tables, result.clusters, captions, lang=lang, flags=flags
        )
        if "hierarchy" in result.summary:
            tiers = hierarchy_sections(
                result.summary["hierarchy"],
                tier_figures.get(lang, []),
                lang=lang,
                persons_basis=persons_basis_text(
                    result.summary["coverage"]["data"]["residents"], lang
                ),
            )
            sections[-1:-1] = tiers
        if charts.get(lang):
            charts_section = Section(text("charts_section", lang), figures=charts[lang])
            sections.insert(min(1, len(sections)), charts_section)
        title = text("gaps_title", lang).format(area=area_title(prepared, lang))
        files += _write_report("gaps_report", title, sections, images, lang, out)
    return files


def _hierarchy_outputs(
    prepared: PreparedArea,
    result: GapResult,
    out: io.OutputSet,
    files: list[Path],
    images: dict[str, bytes],
    *,
    pdf: bool,
    langs: list[Lang],
) -> dict[str, list[tuple[str, str]]]:
    """Write the tier table, the resident layer with tiers, the DEGURBA grid, tier map and chart.

    Returns the tier map and chart ``(caption, file name)`` per report language.
    """
    import matplotlib.pyplot as plt

    from lifecircle.plot_hierarchy import plot_tier_chart, plot_tier_map

    table = result.tier_table
    if table is None:
        return {}
    files.append(io.save_text(table.to_csv(index=False), out.path("tier_measures.csv")))
    res = result.residents
    keep = [
        c
        for c in res.columns
        if c in ("weight", "persons", "basis", "tier", "degurba", "admin_unit", "ring", "geometry")
        or c.startswith(("covered_", "dist_"))
    ]
    files.append(io.save_gdf(res[keep], out.path("residents_tiers.gpkg")))
    if result.degurba_grid is not None and len(result.degurba_grid):
        files.append(io.save_gdf(result.degurba_grid, out.path("degurba_grid.gpkg")))
    from lifecircle.i18n import text

    figures: dict[str, list[tuple[str, str]]] = {}
    for lang in langs:
        fig, _ = plot_tier_map(prepared, res, table, grid=result.degurba_grid, lang=lang)
        png = out.path(_lang_file("tier_map.png", lang))
        files.append(io.save_figure(fig, png))
        if pdf:
            files.append(io.save_figure(fig, out.path(_lang_file("tier_map.pdf", lang))))
        plt.close(fig)
        fig, _ = plot_tier_chart(result.summary["hierarchy"]["test"], lang=lang)
        chart = out.path(_lang_file("tier_chart.png", lang))
        files.append(io.save_figure(fig, chart))
        plt.close(fig)
        figures[lang] = [
            (text("tier_map_caption", lang), png.name),
            (text("tier_chart_caption", lang), chart.name),
        ]
        for _, name in figures[lang]:
            images[name] = out.path(name).read_bytes()
    return figures


def run_gaps(
    req: AreaRequest,
    options: CoverageOptions | None = None,
    gap_options: GapOptions | None = None,
    *,
    out_dir: Path | None = None,
    overwrite: bool = False,
    rebuild: bool = False,
    prepared: PreparedArea | None = None,
    coverage: tuple[dict[str, Any], gpd.GeoDataFrame] | None = None,
) -> GapResult:
    """Run the gap analysis and write ``gaps.json``, tables, layers, maps and reports.

    Outputs (in `out_dir`, default the area's processed folder): ``gaps.json``,
    ``zone_measures.csv``, ``gap_clusters.gpkg`` and ``.csv``,
    ``gap_map_<category>.png`` and ``.pdf`` (and ``all_categories``),
    ``gaps_report.html`` (self-contained), ``gaps_report.md`` and the web
    map ``gaps_web_map.html``, one of each per language of ``options.langs``
    (``gaps_report.zh.html``, ``gaps_web_map.zh.html`` for Chinese).
    """
    import matplotlib.pyplot as plt

    from lifecircle import zones
    from lifecircle.plot import deferred_drawing, new_axes, plot_gap_map

    options = options or CoverageOptions()
    gap_options = gap_options or GapOptions()
    prepared, target_dir = _start_run(
        req,
        options,
        out_dir,
        "gaps.json",
        overwrite=overwrite,
        rebuild=rebuild,
        prepared=prepared,
    )
    result = compute_gaps(prepared, req, options, gap_options, coverage=coverage)
    result.out_dir = target_dir
    result.prepared = prepared
    files: list[Path] = []
    replaces = [n for n, _ in other_runs(target_dir, "gaps.json", options)]
    with io.output_set(target_dir, "gaps.json", keep=CACHE_FILES, replaces=replaces) as out:
        long = pd.concat(result.tables.values(), ignore_index=True)
        files.append(io.save_text(long.to_csv(index=False), out.path("zone_measures.csv")))
        clusters = result.clusters
        files.append(
            io.save_text(
                clusters.drop(columns="geometry").to_csv(index=False), out.path("gap_clusters.csv")
            )
        )
        if len(clusters):
            files.append(io.save_gdf(clusters, out.path("gap_clusters.gpkg")))
        ring_polys = zones.ring_polygons(
            _core_point(prepared), options.ring_edges_km, prepared.boundary_m, crs=prepared.crs
        )
        admin = result.admin
        figures: dict[str, list[tuple[str, str]]] = {lang: [] for lang in _langs(options)}
        images: dict[str, bytes] = {}
        categories = check_categories(options.categories)
        maps = [(lang, cat) for lang in _langs(options) for cat in [*categories, "all_categories"]]
        for lang, cat in track(maps, "gap maps"):
            rt = result.tables["rings"]
            cov = rt.loc[rt["category"] == cat].set_index("zone")["coverage"]
            rings = ring_polys.assign(coverage=ring_polys["zone"].map(cov))
            adm = None
            if admin is not None and "admin" in result.tables:
                at = result.tables["admin"]
                adm = admin.assign(
                    coverage=admin["zone"].map(
                        at.loc[at["category"] == cat].set_index("zone")["coverage"]
                    )
                )
            fig, ax = new_axes(None, (10, 10))
            with deferred_drawing(fig):  # rendered once, when saved
                plot_gap_map(
                    prepared, result.residents, rings, clusters, cat, admin=adm, ax=ax, lang=lang
                )
            png = out.path(_lang_file(f"gap_map_{cat}.png", lang))  # gap_map_school.zh.png
            files.append(io.save_figure(fig, png))
            if gap_options.pdf:
                files.append(io.save_figure(fig, out.path(_lang_file(f"gap_map_{cat}.pdf", lang))))
            plt.close(fig)
            figures[lang].append((cat, png.name))
            images[png.name] = png.read_bytes()
        tier_figures = _hierarchy_outputs(
            prepared, result, out, files, images, pdf=gap_options.pdf, langs=_langs(options)
        )
        charts: dict[str, list[tuple[str, str]]] = {}
        for lang in _langs(options):
            figs = gap_figures(result, prepared, options, lang=lang)
            saved = _save_figures({_lang_file(n, lang): f for n, f in figs.items()}, out)
            files += saved
            images.update({p.name: p.read_bytes() for p in saved})
            charts[lang] = _chart_captions(list(figs), lang)
        files += _gap_reports(
            result, options, gap_options, prepared, figures, images, out, tier_figures, charts
        )
        from lifecircle.report import report_file_name

        for lang in _langs(options):
            page = _gaps_web_map(result, prepared, lang)
            name = report_file_name("gaps_web_map", "html", lang)
            files.append(io.save_text(page, out.path(name)))
        result.summary["outputs"] = [p.name for p in files] + ["gaps.json"]
        io.save_json(result.summary, out.path("gaps.json"))
    files = out.files
    result.files = files
    return result


def _gaps_web_map(result: GapResult, prepared: PreparedArea, lang: Lang) -> str:
    from lifecircle.webmap import gaps_result_map

    result.prepared = prepared
    return gaps_result_map(result, lang=lang)


def gap_figures(
    result: GapResult, prepared: PreparedArea, options: CoverageOptions, *, lang: Lang = "en"
) -> dict[str, Any]:
    """Return the charts of a gap run by file name (not saved).

    The coverage charts (by category, cumulative accessibility curves) of
    the run's residents, the ring gradient, and coverage by 街道/镇 per
    category when the area has administrative units.
    """
    from lifecircle.charts import coverage_charts, gap_charts

    cov = result.summary["coverage"]
    with step("gap charts"):
        return {
            **coverage_charts(cov, result.residents, lang=lang),
            **gap_charts(
                result.tables,
                target=options.target,
                units_without_residents=result.summary.get("admin_units_without_residents", []),
                lang=lang,
            ),
        }


def _chart_captions(names: list[str], lang: Lang = "en") -> list[tuple[str, str]]:
    """``(caption, file name)`` of charts named in English, saved under :func:`_lang_file`."""
    from lifecircle.charts import chart_caption

    return [(chart_caption(name, lang), _lang_file(name, lang)) for name in names]


def _lang_file(name: str, lang: Lang) -> str:
    """Name a figure by language: ``chart.png`` in English, ``chart.zh.png`` in Chinese.

    Examples
    --------
    >>> _lang_file("coverage_map.png", "zh"), _lang_file("coverage_map.png", "en")
    ('coverage_map.zh.png', 'coverage_map.png')
    """
    stem, suffix = name.rsplit(".", 1)
    return stem + "." + suffix if lang == "en" else f"{stem}.{lang}.{suffix}"


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class PlanOptions:
    """Parameters of ``lifecircle plan`` (recorded in ``plan.json``)."""

    max_sites: int = DEFAULT_MAX_SITES
    candidates_file: Path | None = None
    candidate_spacing_m: float = DEFAULT_CANDIDATE_SPACING_M
    time_limit_s: float = DEFAULT_TIME_LIMIT_S
    tier: str | None = None


@dataclass
class PlanResult:
    """What ``run_plan`` computed and wrote."""

    summary: dict[str, Any]
    sites: gpd.GeoDataFrame
    candidates: gpd.GeoDataFrame
    plans: dict[str, Any]
    out_dir: Path
    files: list[Path] = field(default_factory=list)
    prepared: PreparedArea | None = None

    def covered_after(self, key: str) -> npt.NDArray[np.bool_]:
        """Return which residents are covered for plan `key` once its sites are built."""
        return np.asarray(self.plans[key]["_covered_after"], dtype=bool)


def _plan_tiers(targets: list[Target], tier: str | None) -> list[Target]:
    """Return the tiers to plan: every required tier, or the one named."""
    required = [t for t in targets if t.required]
    if tier is None:
        return required
    chosen = [t for t in targets if tier in (t.tier, *t.subtypes)]
    if not chosen:
        names = ", ".join(sorted({f"{t.category}:{t.tier}" for t in targets}))
        msg = f"--tier {tier!r} is not a tier of this profile: use one of {names}"
        raise InputError(msg)
    return chosen


def _plan_candidates(
    prepared: PreparedArea, frames: CoverageFrames, options: CoverageOptions, plan: PlanOptions
) -> gpd.GeoDataFrame:
    """Candidate sites: the user's file, else points along the routable streets."""
    from lifecircle.plan import candidate_points
    from lifecircle.siting import candidates_from_layer

    net, routable = prepared.network, frames.snapped.routable
    if plan.candidates_file is not None:
        layer = io.read_vector(plan.candidates_file)
        return candidates_from_layer(layer, net, routable, max_snap_m=options.max_snap_m)
    extent = prepared.extent.geometry.iloc[0]
    pts = candidate_points(net, routable, spacing_m=plan.candidate_spacing_m, extent=extent)
    return pts.assign(name="", source_geometry="street point")[
        ["candidate", "name", "source_geometry", "geometry"]
    ]


def compute_plan(
    prepared: PreparedArea, options: CoverageOptions, plan_options: PlanOptions
) -> PlanResult:
    """Plan the fewest new sites per category (and tier) that reach the target (no writing)."""
    from lifecircle.plan import plan_category
    from lifecircle.siting import plan_summary, sites_table
    from lifecircle.snapping import snap_to_routable

    check_plan_options(plan_options)
    frames = compute_coverage(prepared, replace(options, isochrones=False, make_map=False))
    residents, snapped = frames.residents, frames.snapped
    cands = _plan_candidates(prepared, frames, options, plan_options)
    cand_snap = snap_to_routable(
        cands, prepared.network, routable=snapped.routable, max_snap_m=options.max_snap_m
    )
    weight = residents["weight"].to_numpy(dtype=float)
    ok = residents["status"].to_numpy() == STATUS_OK
    units = _site_units(prepared, cands)
    plans: dict[str, Any] = {}
    tables = []
    for t in _plan_tiers(frames.targets, plan_options.tier):
        covered_now = ok & (residents[t.column].to_numpy(dtype=float) <= t.threshold_m)
        plan = plan_category(
            frames.router,
            snapped.residents,
            weight,
            covered_now,
            cand_snap,
            threshold_m=t.threshold_m,
            target=options.target,
            max_sites=plan_options.max_sites,
            time_limit_s=plan_options.time_limit_s,
        )
        key = t.category if t.any_subtype else f"{t.category}:{t.tier}"
        plans[key] = {
            "category": t.category,
            **plan_summary(plan, threshold_m=t.threshold_m, tier=t.tier, candidates=len(cands)),
        }
        subtype = t.category if t.any_subtype else t.subtypes[0]
        table = sites_table(
            cands,
            plan,
            category=t.category,
            subtype=subtype,
            total_weight=float(weight.sum()),
            units=units.iloc[list(plan.fewest.sites)] if units is not None else None,
        )
        tables.append(table.assign(tier=t.tier))
        plans[key]["_plan"] = plan
        plans[key]["_covered_after"] = covered_now | plan.newly_covered
    sites = (
        gpd.GeoDataFrame(pd.concat(tables, ignore_index=True), crs=prepared.crs)
        if tables
        else gpd.GeoDataFrame(geometry=[], crs=prepared.crs)
    )
    summary = {
        "lifecircle_version": __version__,
        "area": prepared.key,
        "parameters": {
            **{k: v for k, v in asdict(plan_options).items() if k != "candidates_file"},
            "candidates_file": str(plan_options.candidates_file or ""),
            "target": options.target,
            "profile": options.profile,
            "minutes": options.minutes,
            "speed_kmh": options.speed_kmh,
        },
        "coverage": frames.summary,
        "categories": {
            k: {x: y for x, y in v.items() if not x.startswith("_")} for k, v in plans.items()
        },
    }
    return PlanResult(summary, sites, cands, plans, prepared.folder, prepared=prepared)


def _site_units(prepared: PreparedArea, cands: gpd.GeoDataFrame) -> pd.Series | None:
    from lifecircle import zones

    if prepared.zones is None or prepared.zones.empty:
        return None
    return zones.assign_units(cands, prepared.zones).reset_index(drop=True)


def check_plan_options(plan: PlanOptions) -> None:
    """Refuse impossible plan options in one line."""
    if plan.max_sites < 0:
        msg = f"--max-sites must be >= 0, got {plan.max_sites}"
        raise InputError(msg)
    if not (np.isfinite(plan.time_limit_s) and plan.time_limit_s > 0):
        msg = f"--time-limit-s must be a finite number > 0, got {plan.time_limit_s}"
        raise InputError(msg)
    if not (np.isfinite(plan.candidate_spacing_m) and plan.candidate_spacing_m > 0):
        msg = f"--candidate-spacing-m must be a finite number > 0, got {plan.candidate_spacing_m}"
        raise InputError(msg)


def _plan_figures(
    result: PlanResult, prepared: PreparedArea, target: float, out: io.OutputSet, lang: Lang
) -> list[Path]:
    """Draw and save each plan's curve and site map in `lang` (``plan_curve_<key>.zh.png``)."""
    import matplotlib.pyplot as plt

    from lifecircle.plot import plot_plan_curve, plot_plan_map

    files = []
    for key, entry in result.plans.items():
        plan, name = entry["_plan"], key.replace(":", "_")
        fig, _ = plot_plan_curve(
            key,
            plan.coverage_now,
            plan.curve_coverage,
            target,
            sites_needed=plan.fewest.n_sites if entry["target_reachable"] else None,
            lang=lang,
        )
        files.append(io.save_figure(fig, out.path(_lang_file(f"plan_curve_{name}.png", lang))))
        plt.close(fig)
        sites = result.sites
        mine = (sites["tier"] == entry["tier"]) & (sites["category"] == entry["category"])
        fig, _ = plot_plan_map(
            prepared,
            prepared.residents,
            sites.loc[mine],
            entry["category"],
            covered_after=result.covered_after(key),
            lang=lang,
        )
        files.append(io.save_figure(fig, out.path(_lang_file(f"plan_map_{name}.png", lang))))
        plt.close(fig)
    return files


def _plan_report(
    result: PlanResult, key: str, out: io.OutputSet, langs: tuple[str, ...] = ("en",)
) -> list[Path]:
    """Write ``plan_report.html`` (figures embedded) and ``.md`` per language."""
    from lifecircle.i18n import category_label, check_lang, text
    from lifecircle.report import (
        plan_report_sections,
    )

    sites = pd.DataFrame(result.sites.drop(columns="geometry"))
    files = []
    for name in langs:
        lang = check_lang(name)
        names = {
            k: tuple(
                _lang_file(f"plan_{kind}_{k.replace(':', '_')}.png", lang)
                for kind in ("curve", "map")
            )
            for k in result.plans
        }
        images = {n: out.path(n).read_bytes() for pair in names.values() for n in pair}
        figures = {}
        for k, (curve, site_map) in names.items():
            entry = result.plans[k]
            label = category_label(entry["category"], lang)
            label += "" if entry["tier"] == "any" else f" · {entry['tier']}"
            figures[k] = [
                (text("plan_curve_caption", lang).format(cat=label), curve),
                (text("plan_map_caption", lang).format(cat=label), site_map),
            ]
        sections = plan_report_sections(result.summary, sites, figures, lang=lang)
        area = area_title(result.prepared, lang) if result.prepared is not None else key
        title = text("plan_title", lang).format(area=area)
        files += _write_report("plan_report", title, sections, images, lang, out)
    return files


def _write_report(
    stem: str,
    title: str,
    sections: list[Any],
    images: dict[str, bytes],
    lang: Lang,
    out: io.OutputSet,
) -> list[Path]:
    """Write ``<stem>.md`` and the self-contained ``<stem>.html`` (``<stem>.zh.*`` in Chinese)."""
    from lifecircle.report import render_html, render_markdown, report_file_name

    md = out.path(report_file_name(stem, "md", lang))
    page = out.path(report_file_name(stem, "html", lang))
    return [
        io.save_text(render_markdown(title, sections), md),
        io.save_text(render_html(title, sections, images, lang=lang), page),
    ]


def run_plan(
    req: AreaRequest,
    options: CoverageOptions | None = None,
    plan_options: PlanOptions | None = None,
    *,
    out_dir: Path | None = None,
    overwrite: bool = False,
    rebuild: bool = False,
    prepared: PreparedArea | None = None,
) -> PlanResult:
    """Plan new sites; write ``plan.json``, ``sites.gpkg``, ``candidates.gpkg``, maps and curves."""
    options = options or CoverageOptions()
    plan_options = plan_options or PlanOptions()
    check_plan_options(plan_options)
    _plan_tiers(_targets(options)[1], plan_options.tier)  # a wrong --tier fails before any work
    prepared, target_dir = _start_run(
        req, options, out_dir, "plan.json", overwrite=overwrite, rebuild=rebuild, prepared=prepared
    )
    result = compute_plan(prepared, options, plan_options)
    result.out_dir = target_dir
    replaces = [n for n, _ in other_runs(target_dir, "plan.json", options)]
    with io.output_set(target_dir, "plan.json", keep=CACHE_FILES, replaces=replaces) as out:
        files = [io.save_gdf(result.sites, out.path("sites.gpkg"))]
        files.append(io.save_gdf(result.candidates, out.path("candidates.gpkg")))
        for lang in _langs(options):
            files += _plan_figures(result, prepared, options.target, out, lang)
        files += _plan_report(result, prepared.key, out, options.langs)
        result.summary["outputs"] = [p.name for p in files] + ["plan.json"]
        io.save_json(result.summary, out.path("plan.json"))
    result.files = out.files
    return result
