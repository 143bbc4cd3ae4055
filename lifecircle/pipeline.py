"""Run whole analyses: the one place the CLI, batch runs and notebooks call.

``run_fetch`` builds or reuses the processed cache; ``run_coverage`` computes
network distances, coverage against the target (by category, for all
categories, by zone and by distance ring), isochrones, and writes
``coverage.json``, the layers and the map atomically.
"""

from __future__ import annotations

import datetime as dt
import logging
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from lifecircle import __version__, io
from lifecircle.access import Router
from lifecircle.coverage import (
    DEFAULT_MINUTES,
    DEFAULT_SPEED_KMH,
    DEFAULT_TARGET,
    STATUS_ISLAND,
    STATUS_OK,
    STATUS_UNREACHABLE,
    Target,
    check_categories,
    check_target,
    coverage_by_zone,
    covered_frame,
    distance_column,
    parse_profile,
    read_profile_text,
    ring_labels,
    summarize_coverage,
    target_mask,
    threshold_from,
)
from lifecircle.errors import OutputError
from lifecircle.facilities import CATEGORIES, subtype_set
from lifecircle.isochrones import DEFAULT_BUFFER_M, facility_isochrones
from lifecircle.network import component_labels, component_lengths_m, edge_lines
from lifecircle.prepare import AreaRequest, PreparedArea, check_nonempty, prepare_area
from lifecircle.snapping import DEFAULT_MAX_SNAP_M, snap_points

logger = logging.getLogger(__name__)

DEFAULT_RING_EDGES_KM: tuple[float, ...] = (0, 3, 6, 10, 15, 25)
DEFAULT_SEARCH_LIMIT_M = 3000.0
DEFAULT_ISLAND_MAX_M = 1000.0
PARTIAL_SHARE = 0.5
ATTRIBUTION = "© OpenStreetMap contributors"


@dataclass(frozen=True)
class CoverageOptions:
    """Analysis parameters; every run records them in ``coverage.json``."""

    minutes: float = DEFAULT_MINUTES
    speed_kmh: float = DEFAULT_SPEED_KMH
    target: float = DEFAULT_TARGET
    profile: str = "default"
    categories: tuple[str, ...] = CATEGORIES
    max_snap_m: float = DEFAULT_MAX_SNAP_M
    island_max_length_m: float = DEFAULT_ISLAND_MAX_M
    search_limit_m: float = DEFAULT_SEARCH_LIMIT_M
    ring_edges_km: tuple[float, ...] = DEFAULT_RING_EDGES_KM
    isochrone_buffer_m: float = DEFAULT_BUFFER_M
    isochrones: bool = True
    make_map: bool = True


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


def run_fetch(req: AreaRequest, *, rebuild: bool = False) -> PreparedArea:
    """Build or reuse the processed cache of an area (the ``fetch`` step)."""
    prepared = prepare_area(req, rebuild=rebuild)
    check_nonempty(prepared)
    return prepared


def _facility_threshold(fac: pd.DataFrame, targets: list[Target]) -> npt.NDArray[np.float64]:
    """Each facility's own walking threshold: its subtype's row, else its category's ``*`` row."""
    out = np.full(len(fac), np.nan)
    cats = fac["category"].to_numpy()
    subs = fac["subtype"].astype(str).to_numpy()
    for i, (cat, sub) in enumerate(zip(cats, subs, strict=True)):
        rows = [t for t in targets if t.category == cat]
        specific = [
            t.threshold_m for t in rows if t.subtype != "*" and t.subtype in subtype_set(sub)
        ]
        general = [t.threshold_m for t in rows if t.subtype == "*"]
        chosen = specific or general or [max((t.threshold_m for t in rows), default=np.nan)]
        out[i] = max(chosen)
    return out


def compute_coverage(
    prepared: PreparedArea, options: CoverageOptions
) -> tuple[dict[str, Any], gpd.GeoDataFrame, gpd.GeoDataFrame | None]:
    """Compute distances, coverage and isochrones (no writing).

    Returns
    -------
    summary, residents, isochrones
        The ``coverage.json`` content, residents with distance, status and
        coverage columns, and facility isochrones (or None).
    """
    check_target(options.target)
    categories = check_categories(options.categories)
    threshold_m = threshold_from(options.minutes, options.speed_kmh)
    targets = parse_profile(
        read_profile_text(options.profile),
        minutes=options.minutes,
        speed_kmh=options.speed_kmh,
        categories=categories,
    )
    net = prepared.network
    router = Router.from_network(net)
    tree = shapely.STRtree(edge_lines(net))
    residents = prepared.residents.copy()
    facilities = prepared.facilities.loc[prepared.facilities["category"].isin(categories)].copy()
    res_snap = snap_points(residents, net, max_snap_m=options.max_snap_m, tree=tree)
    fac_snap = snap_points(facilities, net, max_snap_m=options.max_snap_m, tree=tree)

    labels = component_labels(net)
    lengths = component_lengths_m(net, labels)
    small = lengths < options.island_max_length_m
    small[0] = False  # the longest component is never an island
    edge = res_snap["edge"].to_numpy()
    on_island = np.zeros(len(edge), dtype=bool)
    on_island[edge >= 0] = small[labels[net.u[edge[edge >= 0]]]]
    status = np.where(edge < 0, STATUS_UNREACHABLE, np.where(on_island, STATUS_ISLAND, STATUS_OK))
    residents["status"] = status
    residents["snap_offset_m"] = res_snap["offset_m"].to_numpy()

    limit = max(options.search_limit_m, max(t.threshold_m for t in targets))
    warn: list[str] = []
    columns: dict[str, Target | None] = {}
    for t in targets:
        columns[t.column] = t
    for cat in categories:
        columns.setdefault(distance_column(cat), None)
    for col, tgt in columns.items():
        if tgt is None:
            cat = col[len("dist_") : -len("_m")]
            mask = facilities["category"].to_numpy() == cat
        else:
            mask = target_mask(facilities, tgt)
        if not mask.any():
            label = col[len("dist_") : -len("_m")]
            msg = f"no {label} facilities in the area: its coverage is 0%; add some with --pois"
            warnings.warn(msg, RuntimeWarning, stacklevel=2)
            warn.append(msg)
        residents[col] = router.distances(res_snap, fac_snap.loc[mask], limit_m=limit)

    covered = covered_frame(residents, targets)
    for col in covered.columns:
        residents[f"covered_{col}"] = covered[col].to_numpy()

    reachable = fac_snap["edge"].to_numpy() >= 0
    counts = {
        cat: {
            "reachable": int(((facilities["category"] == cat).to_numpy() & reachable).sum()),
            "total": int((facilities["category"] == cat).sum()),
        }
        for cat in categories
    }
    summary = summarize_coverage(
        residents, covered, targets, target=options.target, facility_counts=counts
    )

    # zones: administrative units with boundaries, then distance rings from the core
    zones_out: dict[str, Any] = {}
    if prepared.zones is not None and not prepared.zones.empty:
        joined = gpd.sjoin(
            residents[["geometry"]],
            prepared.zones[["zone", "geometry"]],
            how="left",
            predicate="within",
        )
        zone_labels = joined.loc[~joined.index.duplicated(), "zone"]
        zones_out["admin"] = [
            {**z, "kind": _unit_kind(z["zone"])}
            for z in coverage_by_zone(residents, covered, zone_labels, target=options.target)
        ]
        zones_out["admin_units_without_residents"] = sorted(
            set(prepared.zones["zone"]) - {z["zone"] for z in zones_out["admin"]}
        )
    core = _core_point(prepared)
    dist_km = shapely.distance(residents.geometry.to_numpy(), core) / 1000.0
    residents["core_distance_km"] = dist_km
    rings = ring_labels(dist_km, options.ring_edges_km)
    rings.index = residents.index
    residents["ring"] = rings
    zones_out["rings"] = coverage_by_zone(residents, covered, rings, target=options.target)

    isochrones = None
    if options.isochrones:
        thresholds = _facility_threshold(facilities, targets)
        parts = []
        for value in np.unique(thresholds[np.isfinite(thresholds)]):
            sel = thresholds == value
            parts.append(
                facility_isochrones(
                    router,
                    facilities.loc[sel],
                    fac_snap.loc[sel],
                    threshold_m=float(value),
                    buffer_m=options.isochrone_buffer_m,
                )
            )
        isochrones = gpd.GeoDataFrame(pd.concat(parts), crs=net.crs) if parts else None

    w = residents["weight"].to_numpy(dtype=float)
    man = prepared.manifest
    extent = man["extent"]
    partial = bool(
        extent["analysed_share"] is not None and extent["analysed_share"] < PARTIAL_SHARE
    )
    summary = {
        "lifecircle_version": __version__,
        "generated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "area": prepared.key,
        "parameters": {
            "threshold_m": round(threshold_m, 3),
            "minutes": options.minutes,
            "speed_kmh": options.speed_kmh,
            "target": options.target,
            "profile": options.profile,
            "categories": list(categories),
            "max_snap_m": options.max_snap_m,
            "island_max_length_m": options.island_max_length_m,
            "search_limit_m": limit,
            "ring_edges_km": list(options.ring_edges_km),
            "isochrone_buffer_m": options.isochrone_buffer_m,
        },
        **summary,
        "data": {
            "analysed_area_km2": extent["analysed_area_km2"],
            "district_area_km2": extent["district_area_km2"],
            "district_area_source": extent["district_area_source"],
            "analysed_share": extent["analysed_share"],
            "partial": partial,
            "note": (
                f"The walking network covers {extent['analysed_area_km2']:.1f} km² of "
                f"{extent['district_area_km2']:.1f} km²: the figures describe the analysed "
                "area only."
                if partial
                else "The walking network covers at least half of the district's land."
            ),
            "residents": {
                **man["residents"],
                "unreachable": {
                    "count": int((status == STATUS_UNREACHABLE).sum()),
                    "weight": round(float(w[status == STATUS_UNREACHABLE].sum()), 3),
                },
                "island": {
                    "count": int((status == STATUS_ISLAND).sum()),
                    "weight": round(float(w[status == STATUS_ISLAND].sum()), 3),
                },
            },
            "network": man["network"],
            "osm": {**man["osm"], "attribution": ATTRIBUTION},
            "facilities": man["facilities"],
        },
        "zones": zones_out,
        "warnings": warn,
    }
    return summary, residents, isochrones


def _unit_kind(name: str) -> str:
    """Classify a unit as urban sub-district (街道) or town (镇) from its name."""
    if name.endswith("街道"):
        return "subdistrict"
    if name.endswith("镇"):
        return "town"
    return "other"


def _core_point(prepared: PreparedArea) -> BaseGeometry:
    if prepared.district is not None:
        lon, lat = prepared.district.core_lonlat
        pt = gpd.GeoSeries([shapely.Point(lon, lat)], crs=4326).to_crs(prepared.crs)
        return pt.iloc[0]
    return prepared.boundary_m.centroid


def dissolve_isochrones(isochrones: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Dissolve facility isochrones into one polygon per category."""
    rows = []
    for cat, group in isochrones.groupby("category", sort=False):
        rows.append(
            {
                "category": cat,
                "facilities": len(group),
                "geometry": shapely.union_all(group.geometry.to_numpy()),
            }
        )
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=isochrones.crs)


def run_coverage(
    req: AreaRequest,
    options: CoverageOptions | None = None,
    *,
    out_dir: Path | None = None,
    overwrite: bool = False,
    rebuild: bool = False,
    prepared: PreparedArea | None = None,
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

    Returns
    -------
    CoverageResult
    """
    options = options or CoverageOptions()
    check_target(options.target)
    check_categories(options.categories)
    threshold_from(options.minutes, options.speed_kmh)
    explicit = out_dir is not None
    if explicit:
        assert out_dir is not None
        io.ensure_writable_dir(out_dir)
        if not overwrite and io.path_exists(out_dir / "coverage.json"):
            msg = f"{out_dir / 'coverage.json'} exists: use --overwrite or another --out"
            raise OutputError(msg)
    prepared = prepared or run_fetch(req, rebuild=rebuild)
    target_dir = out_dir if out_dir is not None else prepared.folder
    io.ensure_writable_dir(target_dir)
    summary, residents, iso = compute_coverage(prepared, options)
    files = []
    keep = [c for c in residents.columns if c not in {"ring"}] + ["ring"]
    files.append(io.save_gdf(residents[keep], target_dir / "residents_coverage.gpkg"))
    cat_iso = None
    if iso is not None and not iso.empty:
        files.append(io.save_gdf(iso, target_dir / "isochrones.gpkg"))
        cat_iso = dissolve_isochrones(iso)
        files.append(io.save_gdf(cat_iso, target_dir / "category_isochrones.gpkg"))
    if options.make_map:
        from lifecircle.plot import plot_coverage_map

        fig, _ = plot_coverage_map(prepared, residents, cat_iso, summary)
        files.append(io.save_figure(fig, target_dir / "coverage_map.png"))
        import matplotlib.pyplot as plt

        plt.close(fig)
    summary["outputs"] = [p.name for p in files] + ["coverage.json"]
    files.append(io.save_json(summary, target_dir / "coverage.json"))
    return CoverageResult(
        summary=summary,
        residents=residents,
        isochrones=iso,
        category_isochrones=cat_iso,
        out_dir=target_dir,
        files=files,
        prepared=prepared,
    )


def options_dict(options: CoverageOptions) -> dict[str, Any]:
    """Return the options as a plain dict (for manifests and batch hashes)."""
    return asdict(options)
