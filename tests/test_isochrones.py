from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from lifecircle.access import Router
from lifecircle.isochrones import (
    facility_isochrones,
    overlap_ratio,
    reachable_segments,
    segments_to_polygon,
)
from lifecircle.snapping import snap_points
from tests.conftest import toy_network


def test_partial_edges_by_hand() -> None:
    # a line 0 -- 1 -- 2, 600 m each; facility at node 0 on the street; threshold 1000 m
    net = toy_network([(0, 0), (600, 0), (1200, 0)], [(0, 1), (1, 2)])
    src = pd.DataFrame({"edge": [0], "along_m": [0.0], "offset_m": [0.0]})
    node_dist = Router.from_network(net).node_distances(src, limit_m=1000)
    segs = reachable_segments(net, node_dist, 1000.0, src).coords
    lines = shapely.union_all(shapely.linestrings(segs))
    assert lines.length == pytest.approx(1000.0)  # all of edge 0, 400 m of edge 1
    poly = segments_to_polygon(segs, buffer_m=25, method="exact")
    assert poly.bounds == pytest.approx((-25, -25, 1025, 25))


def test_fast_polygons_match_exact_on_lujiazui(lujiazui_net, lujiazui_osm) -> None:  # type: ignore[no-untyped-def]
    from lifecircle.facilities import facilities_from_osm

    net = lujiazui_net
    fac = facilities_from_osm(lujiazui_osm.features).to_crs(net.crs)
    snapped = snap_points(fac, net)
    router = Router.from_network(net)
    fast = facility_isochrones(router, fac, snapped, threshold_m=1000)
    exact = facility_isochrones(router, fac, snapped, threshold_m=1000, method="exact")
    assert len(fast) == len(exact) == int((snapped["edge"] >= 0).sum())
    ratios = [overlap_ratio(a, b) for a, b in zip(fast.geometry, exact.geometry, strict=True)]
    assert min(ratios) >= 0.98
    # polygons follow streets: far smaller than a 1 km disc, and never a convex hull
    assert fast.area.max() < np.pi * 1000**2 * 0.6
    hull = fast.geometry.convex_hull
    assert (fast.area / hull.area).max() < 0.9


def test_isochrone_of_unreachable_facility_is_skipped() -> None:
    net = toy_network([(0, 0), (100, 0)], [(0, 1)])
    fac = gpd.GeoDataFrame(
        {"category": ["school"], "subtype": ["x"], "name": ["far"]},
        geometry=[shapely.Point(0, 5000)],
        crs="EPSG:32651",
    )
    snapped = snap_points(fac, net)
    out = facility_isochrones(Router.from_network(net), fac, snapped, threshold_m=1000)
    assert out.empty
