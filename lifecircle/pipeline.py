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
from dataclasses import asdict, dataclass, field, replace
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


def _start_run(
    req: AreaRequest,
    options: CoverageOptions,
    out_dir: Path | None,
    marker: str,
    *,
    overwrite: bool,
    rebuild: bool,
    prepared: PreparedArea | None,
) -> tuple[PreparedArea, Path]:
    """Check the options and the output folder before any work, then prepare the area.

    An explicit `out_dir` that already holds `marker` needs `overwrite`; the
    default folder (the area's processed cache) may always be overwritten.
    """
    check_target(options.target)
    check_categories(options.categories)
    threshold_from(options.minutes, options.speed_kmh)
    if out_dir is not None:
        io.ensure_writable_dir(out_dir)
        if not overwrite and io.path_exists(out_dir / marker):
            msg = f"{out_dir / marker} exists: use --overwrite or another --out"
            raise OutputError(msg)
    prepared = prepared or run_fetch(req, rebuild=rebuild)
    target_dir = out_dir if out_dir is not None else prepared.folder
    io.ensure_writable_dir(target_dir)
    return prepared, target_dir


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
    prepared, target_dir = _start_run(
        req,
        options,
        out_dir,
        "coverage.json",
        overwrite=overwrite,
        rebuild=rebuild,
        prepared=prepared,
    )
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


# --------------------------------------------------------------------------- gaps


@dataclass(frozen=True)
class GapOptions:
    """Parameters of the gap analysis (recorded in ``gaps.json``)."""

    lag_points: float = 10.0
    cluster_eps_m: float = 250.0
    zones_file: Path | None = None
    zones_name_field: str | None = None
    zone_ring_m: float = 2000.0
    admin_level: str = "8"
    pdf: bool = True


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


def _admin_units(
    prepared: PreparedArea, req: AreaRequest, options: GapOptions
) -> gpd.GeoDataFrame | None:
    """Administrative units with boundaries: the data folder, the raw cache, or Overpass."""
    from lifecircle import settings
    from lifecircle.errors import DataError
    from lifecircle.zones import classify_unit

    units = prepared.zones
    if units is None and prepared.district is not None:
        cached = settings.raw_dir() / prepared.key / "admin_units.geojson"
        if cached.is_file():
            raw = io.read_vector(cached)
        elif req.offline:
            raw = None
        else:
            boundary = gpd.GeoSeries([prepared.boundary_m.buffer(0)], crs=prepared.crs).to_crs(4326)
            try:
                raw = io.download_admin_units(
                    boundary.iloc[0],
                    cache_folder=settings.raw_dir() / "http",
                    admin_level=options.admin_level,
                )
                io.save_text(raw.to_json(), cached)
            except DataError as exc:
                warnings.warn(f"{exc}; zones: distance rings only", RuntimeWarning, stacklevel=2)
                raw = None
        if raw is not None and not raw.empty:
            units = gpd.GeoDataFrame(
                {
                    "zone": raw["name"].astype(str).to_numpy(),
                    "code": raw.get("code", pd.Series("", index=raw.index)).astype(str).to_numpy(),
                },
                geometry=raw.geometry.to_numpy(),
                crs=raw.crs,
            ).to_crs(prepared.crs)
    if units is None or units.empty:
        return None
    codes = _unit_codes(prepared)
    units = units.copy()
    units["kind"] = [
        classify_unit(n, codes.get(n) or (c if "code" in units else None))
        for n, c in zip(units["zone"], units.get("code", units["zone"]), strict=True)
    ]
    return units


def _unit_codes(prepared: PreparedArea) -> dict[str, str]:
    """Map unit names to statistical codes from the registry's unit list, when there is one."""
    from lifecircle import settings

    root = settings.data_dir()
    if prepared.district is None or prepared.district.zones.units_file is None or root is None:
        return {}
    path = root / prepared.district.zones.units_file
    if not path.is_file():
        return {}
    table = io.read_table(path)
    return dict(zip(table["name"].astype(str), table["code"].astype(str), strict=True))


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
        cov_summary, residents, _ = compute_coverage(prepared, replace(options, isochrones=False))
    else:
        cov_summary, residents = coverage[0], coverage[1].copy()
    cap_m = float(cov_summary["parameters"]["search_limit_m"])
    tables: dict[str, pd.DataFrame] = {
        "rings": gaps.zone_measures(residents, residents["ring"], categories, kind="ring")
    }
    admin = _admin_units(prepared, req, gap_options)
    if admin is not None:
        labels = zones.label_points(residents, admin)
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
        inner, ring = user.loc[user["kind"] == "zone"], user.loc[user["kind"] == "ring"]
        t_in = gaps.zone_measures(
            residents, zones.label_points(residents, inner), categories, kind="user_zone"
        )
        t_ring = gaps.zone_measures(
            residents, zones.label_points(residents, ring), categories, kind="user_zone_ring"
        )
        tables["user_zones"] = pd.concat([t_in, t_ring], ignore_index=True)
        suffix = f" (ring {gap_options.zone_ring_m / 1000:g} km)"
        for _, row in t_in.iterrows():
            other = t_ring.loc[
                (t_ring["zone"] == row["zone"] + suffix) & (t_ring["category"] == row["category"])
            ]
            ring_cov = float(other["coverage"].iloc[0]) if len(other) else float("nan")
            comparison.append(
                {
                    "zone": row["zone"],
                    "category": row["category"],
                    "zone_coverage": row["coverage"],
                    "ring_coverage": ring_cov,
                    "difference_points": (row["coverage"] - ring_cov) * 100,
                }
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
    summary: dict[str, Any] = {
        "lifecircle_version": __version__,
        "area": prepared.key,
        "parameters": {
            "lag_points": gap_options.lag_points,
            "cap_m": cap_m,
            "cluster_eps_m": gap_options.cluster_eps_m,
            "zone_ring_m": gap_options.zone_ring_m,
            "ring_edges_km": list(options.ring_edges_km),
        },
        "coverage": cov_summary,
        "gradient": grad,
        "inequality": {"zones": "distance rings", "categories": ineq},
        "zones": {k: v.to_dict("records") for k, v in tables.items()},
        "user_zone_comparison": comparison,
        "admin_units_without_residents": (
            sorted(set(admin["zone"]) - set(tables["admin"]["zone"])) if admin is not None else []
        ),
        "clusters": clusters.drop(columns="geometry").to_dict("records"),
        "flags": flag_list,
    }
    return GapResult(
        summary=summary,
        tables=tables,
        clusters=clusters,
        residents=residents,
        out_dir=prepared.folder,
        admin=admin,
    )


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
    ``gaps_report.html`` (self-contained) and ``gaps_report.md``.
    """
    import matplotlib.pyplot as plt

    from lifecircle import zones
    from lifecircle.plot import plot_gap_map
    from lifecircle.report import gap_report_sections, render_html, render_markdown

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
    files: list[Path] = []
    long = pd.concat(result.tables.values(), ignore_index=True)
    files.append(io.save_text(long.to_csv(index=False), target_dir / "zone_measures.csv"))
    clusters = result.clusters
    files.append(
        io.save_text(
            clusters.drop(columns="geometry").to_csv(index=False), target_dir / "gap_clusters.csv"
        )
    )
    if len(clusters):
        files.append(io.save_gdf(clusters, target_dir / "gap_clusters.gpkg"))
    ring_polys = zones.ring_polygons(
        _core_point(prepared), options.ring_edges_km, prepared.boundary_m, crs=prepared.crs
    )
    admin = result.admin
    figures: list[tuple[str, str]] = []
    images: dict[str, bytes] = {}
    categories = check_categories(options.categories)
    for cat in [*categories, "all_categories"]:
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
        fig, _ = plot_gap_map(prepared, result.residents, rings, clusters, cat, admin=adm)
        png = target_dir / f"gap_map_{cat}.png"
        files.append(io.save_figure(fig, png))
        if gap_options.pdf:
            files.append(io.save_figure(fig, target_dir / f"gap_map_{cat}.pdf"))
        plt.close(fig)
        figures.append((f"Gaps in {cat.replace('_', ' ')} coverage", png.name))
        images[png.name] = png.read_bytes()
    sections = gap_report_sections(result.summary, result.tables, clusters, figures)
    title = f"15-minute life circle gaps: {prepared.key}"
    files.append(io.save_text(render_markdown(title, sections), target_dir / "gaps_report.md"))
    files.append(
        io.save_text(render_html(title, sections, images), target_dir / "gaps_report.html")
    )
    result.summary["outputs"] = [p.name for p in files] + ["gaps.json"]
    files.append(io.save_json(result.summary, target_dir / "gaps.json"))
    result.files = files
    return result
