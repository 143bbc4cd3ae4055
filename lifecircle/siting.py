"""Where to build: candidate sites and the tables of a plan (solving: :mod:`lifecircle.plan`).

A candidate is planned at one point: a point candidate at itself, a polygon
(a parcel, a vacant building) at the point of its outline nearest to a
routable street, which is where its access leg would start. The proposed
sites are written at that point, so ``coverage --add-facilities sites.gpkg``
snaps them to the same street position and reproduces the plan exactly.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from lifecircle.errors import CRSError, InputError
from lifecircle.network import WalkNetwork
from lifecircle.plan import CategoryPlan, PlanSolution
from lifecircle.snapping import EdgeIndex, snap_geometries


def candidates_from_layer(
    layer: gpd.GeoDataFrame,
    net: WalkNetwork,
    routable: npt.NDArray[np.bool_],
    *,
    max_snap_m: float,
) -> gpd.GeoDataFrame:
    """Turn a user layer of candidate sites into planning points.

    Parameters
    ----------
    layer
        Points, lines or polygons with a CRS (any columns; ``name`` kept).
    net
        The network.
    routable
        Mask of routable edges.
    max_snap_m
        Candidates with no routable street within this distance are dropped.

    Returns
    -------
    GeoDataFrame
        ``candidate`` (row of `layer`), ``name``, ``source_geometry`` (the
        geometry type given) and the planning point, in the network's CRS.
    """
    if layer.crs is None:
        msg = "the candidates file has no CRS: save it with one (e.g. EPSG:4326)"
        raise CRSError(msg)
    if layer.empty:
        msg = "the candidates file holds no features: give points or polygons of possible sites"
        raise InputError(msg)
    geoms = layer.to_crs(net.crs).geometry.to_numpy()
    outline = np.where(
        shapely.get_type_id(geoms) >= 3, shapely.boundary(geoms), geoms
    )  # polygons are reached from their outline
    snap = snap_geometries(outline, net, EdgeIndex.build(net, routable), max_snap_m=max_snap_m)
    ok = snap["edge"].to_numpy() >= 0
    names = layer["name"].astype(str) if "name" in layer else pd.Series("", index=layer.index)
    return gpd.GeoDataFrame(
        {
            "candidate": np.flatnonzero(ok),
            "name": names.to_numpy()[ok],
            "source_geometry": shapely.get_type_id(geoms)[ok],
        },
        geometry=shapely.points(snap["leg_x"].to_numpy()[ok], snap["leg_y"].to_numpy()[ok]),
        crs=net.crs,
    ).assign(
        source_geometry=lambda d: d["source_geometry"].map(
            {
                0: "Point",
                1: "LineString",
                3: "Polygon",
                4: "MultiPoint",
                5: "MultiLineString",
                6: "MultiPolygon",
            }
        )
    )


def sites_table(
    candidates: gpd.GeoDataFrame,
    plan: CategoryPlan,
    *,
    category: str,
    subtype: str,
    total_weight: float,
    units: pd.Series | None = None,
) -> gpd.GeoDataFrame:
    """Return the proposed sites of a plan, ranked (``sites.gpkg``).

    Columns: ``rank``, ``category``, ``subtype``, ``candidate``, ``name``,
    ``residents_newly_covered`` (weight each site adds, in rank order),
    ``cumulative_coverage`` (share of all residents once sites 1..rank are
    built) and ``unit`` (the 街道/镇 the site lies in, when known).
    """
    solution = plan.fewest
    rows = candidates.iloc[np.asarray(solution.sites, dtype=np.int64)]
    gains = np.asarray(solution.gains, dtype=float)
    cumulative = plan.coverage_now + np.cumsum(gains) / total_weight if total_weight else gains
    return gpd.GeoDataFrame(
        {
            "rank": np.arange(1, len(rows) + 1),
            "category": category,
            "subtype": subtype,
            "candidate": rows["candidate"].to_numpy(),
            "name": rows["name"].to_numpy() if "name" in rows else "",
            "residents_newly_covered": np.round(gains, 3),
            "cumulative_coverage": np.round(cumulative, 6),
            "unit": units.to_numpy() if units is not None else None,
        },
        geometry=rows.geometry.to_numpy(),
        crs=candidates.crs,
    )


def _solution_dict(sol: PlanSolution) -> dict[str, Any]:
    return {
        "sites": sol.n_sites,
        "covered_weight": round(float(sol.covered_weight), 3),
        "status": sol.status,
        "proven_optimal": bool(sol.proven),
        "bound": round(float(sol.bound), 3) if np.isfinite(sol.bound) else None,
        "gap": round(float(sol.gap), 6) if np.isfinite(sol.gap) else None,
        "seconds": round(float(sol.seconds), 2),
        "method": sol.method,
    }


def plan_summary(
    plan: CategoryPlan, *, threshold_m: float, tier: str, candidates: int
) -> dict[str, Any]:
    """Return the ``plan.json`` entry of one category."""
    fewest = plan.fewest
    reachable = plan.target_weight <= fewest.reachable_weight + 1e-9 * max(1.0, plan.target_weight)
    return {
        "tier": tier,
        "threshold_m": round(threshold_m, 1),
        "coverage_now": round(plan.coverage_now, 6),
        "target": plan.target,
        "target_reachable": bool(reachable) or plan.target_weight <= 0,
        "sites_needed": fewest.n_sites,
        "coverage_reached": round(plan.coverage_reached, 6),
        "solution": _solution_dict(fewest),
        "curve": [
            {"k": k + 1, "coverage": round(cov, 6), **_solution_dict(sol)}
            for k, (sol, cov) in enumerate(zip(plan.curve, plan.curve_coverage, strict=True))
        ],
        "candidates": candidates,
        "demand_points": plan.n_demand,
        "matrix_entries": plan.matrix_entries,
        "matrix_seconds": round(plan.matrix_seconds, 2),
        "note": (
            None
            if reachable or plan.target_weight <= 0
            else "the target cannot be reached from these candidates (residents with no "
            "candidate within the threshold): the plan covers all the candidates can reach"
        ),
    }
