"""Summarise a coverage run as the plain dict written to ``coverage.json``.

The only place that shapes the coverage output: it takes the frames of the
earlier stages (residents with distances and status, the covered frame, the
facility table, the snap report) and returns JSON-ready values.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import pandas as pd

from lifecircle import __version__
from lifecircle.coverage import Target, summarize_coverage, threshold_from
from lifecircle.snapping import STATUS_UNREACHABLE, SnappedArea, snap_report

if TYPE_CHECKING:
    from lifecircle.pipeline import CoverageOptions
    from lifecircle.prepare import PreparedArea

PARTIAL_SHARE = 0.5
ATTRIBUTION = "© OpenStreetMap contributors"


def facility_counts(facilities: pd.DataFrame, categories: list[str]) -> dict[str, dict[str, int]]:
    """Count per category the facilities reachable from where residents live, and all."""
    reachable = facilities["reachable"].to_numpy(dtype=bool)
    cats = facilities["category"].to_numpy()
    return {
        cat: {
            "reachable": int(((cats == cat) & reachable).sum()),
            "total": int((cats == cat).sum()),
        }
        for cat in categories
    }


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
            "unreachable": {
                "count": int(unreachable.sum()),
                "weight": round(float(w[unreachable].sum()), 3),
            },
        },
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
        facility_counts=facility_counts(facilities, categories),
    )
    return {
        "lifecircle_version": __version__,
        "generated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "area": prepared.key,
        "parameters": {
            "threshold_m": round(threshold_from(options.minutes, options.speed_kmh), 3),
            "minutes": options.minutes,
            "speed_kmh": options.speed_kmh,
            "target": options.target,
            "profile": options.profile,
            "categories": categories,
            "max_snap_m": options.max_snap_m,
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
