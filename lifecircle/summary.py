"""Summarise a coverage run as the plain dict written to ``coverage.json``.

The only place that shapes the coverage output: it takes the frames of the
earlier stages (residents with distances and status, the covered frame, the
facility table, the snap report) and returns JSON-ready values.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd

from lifecircle import __version__
from lifecircle.coverage import (
    Target,
    describe_thresholds,
    summarize_coverage,
    target_mask,
    threshold_label,
    unassigned_facilities,
    uniform_threshold_m,
)
from lifecircle.residents import persons_summary
from lifecircle.snapping import STATUS_UNREACHABLE, SnappedArea, snap_report

if TYPE_CHECKING:
    from lifecircle.pipeline import CoverageOptions, GapOptions
    from lifecircle.prepare import PreparedArea

PARTIAL_SHARE = 0.5
ATTRIBUTION = "© OpenStreetMap contributors"


def facility_counts(
    facilities: pd.DataFrame, categories: list[str], targets: list[Target]
) -> dict[str, dict[str, int]]:
    """Count per category the facilities that count and are reachable, and all of them.

    A facility counts when it serves a required tier; it is reachable when
    it lies on a network component where residents live.
    """
    reachable = facilities["reachable"].to_numpy(dtype=bool)
    cats = facilities["category"].to_numpy()
    out = {}
    for cat in categories:
        serves = np.zeros(len(facilities), dtype=bool)
        for t in targets:
            if t.category == cat and t.required:
                serves |= target_mask(facilities, t)
        out[cat] = {
            "reachable": int(((cats == cat) & reachable & serves).sum()),
            "total": int((cats == cat).sum()),
        }
    return out


def data_section(
    prepared: PreparedArea,
    residents: pd.DataFrame,
    snapped: SnappedArea,
) -> dict[str, Any]:
    """Return the ``data`` section: extent, residents, snapping, network, OSM, facilities."""
    w = residents["weight"].to_numpy(dtype=float)
    status = residents["status"].to_numpy()
    man = prepared.manifest
    extent = man["extent"]
    share = extent["analysed_share"]
    partial = bool(share is not None and share < PARTIAL_SHARE)
    unreachable = status == STATUS_UNREACHABLE
    people = persons_summary(residents) if "persons" in residents else {}
    persons = residents["persons"].to_numpy(dtype=float) if people else np.zeros(len(w))
    lost = float(persons[unreachable].sum())
    return {
        "analysed_area_km2": extent["analysed_area_km2"],
        "district_area_km2": extent["district_area_km2"],
        "district_area_source": extent["district_area_source"],
        "analysed_share": share,
        "partial": partial,
        "note": (
            f"The walking network covers {extent['analysed_area_km2']:.1f} km² of "
            f"{extent['district_area_km2']:.1f} km²: the figures describe the analysed area only."
            if partial
            else "The walking network covers at least half of the district's land."
        ),
        "residents": {
            **man["residents"],
            **people,
            "unreachable": {
                "count": int(unreachable.sum()),
                "weight": round(float(w[unreachable].sum()), 3),
                "estimated_residents": round(lost, 1) if np.isfinite(lost) else None,
            },
        },
        "amap_pois": amap_pois_used(man),
        "snapping": {
            "residents": snap_report(snapped.residents, w),
            "facility_access_points": snap_report(snapped.access),
            "routable_edges": int(snapped.routable.sum()),
            "fragment_edges": int((~snapped.routable).sum()),
        },
        "network": man["network"],
        "osm": {**man["osm"], "attribution": ATTRIBUTION},
        "facilities": man["facilities"],
    }


def amap_pois_used(manifest: dict[str, Any]) -> bool:
    """Return whether facilities were imported from POI files read with the Amap type mapping.

    A POI file given without ``--pois-mapping`` is read with the default mapping of
    Amap category paths; the Amap caveats apply only then, and only if it added facilities.
    """
    pois = manifest.get("inputs", {}).get("pois", [])
    imported = sum(int(v.get("imported", 0)) for v in manifest.get("facilities", {}).values())
    return bool(imported) and any(p.get("mapping") is None for p in pois)


def coverage_summary(
    prepared: PreparedArea,
    options: CoverageOptions,
    *,
    residents: gpd.GeoDataFrame,
    covered: pd.DataFrame,
    targets: list[Target],
    facilities: pd.DataFrame,
    snapped: SnappedArea,
    search_limit_m: float,
    zones: dict[str, Any],
    warnings_: list[str],
) -> dict[str, Any]:
    """Assemble ``coverage.json`` from the stages' frames.

    Returns
    -------
    dict
        ``parameters``, ``categories``, ``all_categories``, ``data``,
        ``zones`` and ``warnings``.
    """
    categories = list(covered.columns.drop("all_categories"))
    body = summarize_coverage(
        residents,
        covered,
        targets,
        target=options.target,
        facility_counts=facility_counts(facilities, categories, targets),
        unassigned=unassigned_facilities(facilities, targets),
    )
    uniform_m = uniform_threshold_m(targets)
    return {
        "lifecircle_version": __version__,
        "generated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "area": prepared.key,
        "parameters": {
            "threshold_m": None if uniform_m is None else round(uniform_m, 3),
            "threshold_label": threshold_label(targets),
            "thresholds": describe_thresholds(targets),
            "minutes": options.minutes,
            "speed_kmh": options.speed_kmh,
            "target": options.target,
            "profile": options.profile,
            "categories": categories,
            "max_snap_m": options.max_snap_m,
            "facility_max_snap_m": options.facility_max_snap_m or options.max_snap_m,
            "fragment_max_length_m": options.fragment_max_m,
            "search_limit_m": search_limit_m,
            "ring_edges_km": list(options.ring_edges_km),
            "isochrone_buffer_m": options.isochrone_buffer_m,
        },
        **body,
        "data": data_section(prepared, residents, snapped),
        "zones": zones,
        "warnings": warnings_,
    }


def gaps_summary(
    area: str,
    options: CoverageOptions,
    gap_options: GapOptions,
    *,
    coverage: dict[str, Any],
    cap_m: float,
    tables: dict[str, pd.DataFrame],
    gradient: dict[str, Any],
    inequality: dict[str, Any],
    comparison: list[dict[str, Any]],
    clusters: gpd.GeoDataFrame,
    flags: list[str],
    units: list[str],
    units_without_network: list[str],
) -> dict[str, Any]:
    """Assemble ``gaps.json`` from the gap stages' results (`units`: every admin unit's name)."""
    admin = tables.get("admin")
    with_residents = set(admin["zone"]) if admin is not None else set()
    return {
        "lifecircle_version": __version__,
        "area": area,
        "parameters": {
            "lag_points": gap_options.lag_points,
            "cap_m": cap_m,
            "cluster_eps_m": gap_options.cluster_eps_m,
            "zone_ring_m": gap_options.zone_ring_m,
            "ring_edges_km": list(options.ring_edges_km),
        },
        "coverage": coverage,
        "gradient": gradient,
        "inequality": {"zones": "distance rings", "categories": inequality},
        "zones": {k: v.to_dict("records") for k, v in tables.items()},
        "user_zone_comparison": comparison,
        "admin_units_without_residents": sorted(set(units) - with_residents),
        "admin_units_without_network": sorted(units_without_network),
        "clusters": clusters.drop(columns="geometry").to_dict("records"),
        "flags": flags,
    }
