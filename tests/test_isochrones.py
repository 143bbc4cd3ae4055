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


def test_fast_polygon_of_a_tiny_reach_keeps_its_round_ends() -> None:
    # a facility 3 m off an isolated 8 m path: all of it is reached; the exact isochrone is
    # the 25 m buffer (32-gon ends) of the path and the access leg, drawn here by hand
    net = toy_network([(0, 0), (8, 0)], [(0, 1)])
    fac = gpd.GeoDataFrame(
        {"category": ["school"], "subtype": ["x"], "name": ["a"]},
        geometry=[shapely.Point(4, 3)],
        crs="EPSG:32651",
    )
    snapped = snap_points(fac, net)
    fast = facility_isochrones(Router.from_network(net), fac, snapped, threshold_m=1000)
    path = shapely.LineString([(0, 0), (8, 0)])
    leg = shapely.LineString([(4, 3), (4, 0)])
    exact = shapely.union_all(shapely.buffer([path, leg], 25, quad_segs=8))
    # the old 12-gon ends lost 3.3 % of this area (overlap 0.967)
    assert overlap_ratio(fast.geometry.iloc[0], exact) >= 0.995


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


# --- local searches (issue 12): the same pieces as a whole-network search, touching only
# the neighbourhood of each facility


def _whole_network_reach(net, snapped, points, threshold_m):  # type: ignore[no-untyped-def]
    """The former method: one whole-network search per facility, every edge scanned."""
    from scipy.sparse.csgraph import dijkstra

    router = Router.from_network(net)
    n = net.n_nodes
    graph = router.with_sources(snapped, separate=True)
    dist = dijkstra(graph, directed=True, indices=n + np.arange(len(snapped)), limit=threshold_m)
    return [
        reachable_segments(net, dist[j, :n], threshold_m, snapped[j : j + 1], points[[j]])
        for j in range(len(snapped))
    ]


def _networkx_reach(net, source, point, threshold_m):  # type: ignore[no-untyped-def]
    """Brute force: networkx Dijkstra from a virtual node joined to the source edge's ends."""
    import networkx as nx

    G = nx.Graph()
    for a, b, w in zip(net.u.tolist(), net.v.tolist(), net.length_m.tolist(), strict=True):
        if not G.has_edge(a, b) or G[a][b]["weight"] > w:
            G.add_edge(a, b, weight=w)
    e, along, off = (source[c].iloc[0] for c in ("edge", "along_m", "offset_m"))
    to_v = off + net.length_m[e] - along
    G.add_edge("s", int(net.u[e]), weight=off + along)
    if not G.has_edge("s", int(net.v[e])) or G["s"][int(net.v[e])]["weight"] > to_v:
        G.add_edge("s", int(net.v[e]), weight=to_v)
    lengths = nx.single_source_dijkstra_path_length(G, "s", cutoff=threshold_m)
    node_dist = np.full(net.n_nodes, np.inf)
    for node, d in lengths.items():
        if node != "s":
            node_dist[node] = d
    return reachable_segments(net, node_dist, threshold_m, source, point)


def _assert_same_reach(a, b) -> None:  # type: ignore[no-untyped-def]
    assert np.array_equal(a.edge, b.edge)
    np.testing.assert_allclose(a.coords, b.coords, atol=1e-6)


def _tiled(net, n: int = 3, gap_m: float = 50.0):  # type: ignore[no-untyped-def]
    """n x n translated copies of a network, 50 m apart and not joined (as bench.tile_pbf)."""
    from lifecircle.network import WalkNetwork

    w = net.x.max() - net.x.min() + gap_m
    h = net.y.max() - net.y.min() + gap_m
    k = n * n
    shift = np.arange(k) * net.n_nodes
    return WalkNetwork(
        node_osmid=np.concatenate([net.node_osmid + i * 10**12 for i in range(k)]),
        x=np.concatenate([net.x + (i % n) * w for i in range(k)]),
        y=np.concatenate([net.y + (i // n) * h for i in range(k)]),
        u=np.concatenate([net.u + s for s in shift]),
        v=np.concatenate([net.v + s for s in shift]),
        length_m=np.tile(net.length_m, k),
        way_id=np.concatenate([net.way_id + i * 10**12 for i in range(k)]),
        highway=np.tile(net.highway, k),
        crs=net.crs,
    )


def _street_facilities(net, k: int, seed: int) -> gpd.GeoDataFrame:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    e = rng.choice(net.n_edges, k, replace=False)
    f = rng.uniform(0, 1, k)
    x = net.x[net.u[e]] + f * (net.x[net.v[e]] - net.x[net.u[e]]) + rng.normal(0, 15, k)
    y = net.y[net.u[e]] + f * (net.y[net.v[e]] - net.y[net.u[e]]) + rng.normal(0, 15, k)
    return gpd.GeoDataFrame(
        {"category": ["school"] * k, "subtype": "x", "name": ""},
        geometry=shapely.points(x, y),
        crs=net.crs,
    )


def test_local_reach_is_the_whole_network_reach_on_lujiazui(lujiazui_net) -> None:  # type: ignore[no-untyped-def]
    from lifecircle.isochrones import build_node_grid, local_reach

    net = lujiazui_net
    fac = _street_facilities(net, 30, seed=1)
    snapped = snap_points(fac, net).reset_index(drop=True)
    snapped = snapped.loc[snapped["edge"] >= 0].reset_index(drop=True)
    pts = fac.geometry.to_numpy()[snap_points(fac, net)["edge"].to_numpy() >= 0]
    router, grid = Router.from_network(net), build_node_grid(net)
    old = _whole_network_reach(net, snapped, pts, 1000.0)
    for j in range(len(snapped)):
        new = local_reach(router, grid, snapped[j : j + 1], 1000.0, pts[[j]])
        _assert_same_reach(new, old[j])
        assert len(new.edge) > 50  # a real neighbourhood, not an empty reach
    for j in range(3):  # and brute force networkx
        brute = _networkx_reach(net, snapped[j : j + 1], pts[[j]], 1000.0)
        _assert_same_reach(local_reach(router, grid, snapped[j : j + 1], 1000.0, pts[[j]]), brute)


def test_local_isochrones_on_a_tiled_network_match_the_exact_method(lujiazui_net) -> None:  # type: ignore[no-untyped-def]
    from lifecircle.isochrones import build_node_grid, local_reach

    net = _tiled(lujiazui_net)
    # facilities near the seams: their straight-line radius covers other (unjoined) copies
    fac = _street_facilities(net, 400, seed=2)
    gx = (net.x.max() - net.x.min() + 50) / 3
    near_seam = np.abs(((shapely.get_x(fac.geometry.to_numpy()) - net.x.min()) % gx) - gx) < 800
    fac = fac.loc[near_seam].head(12)
    snapped = snap_points(fac, net).reset_index(drop=True)
    assert (snapped["edge"] >= 0).all()
    pts = fac.geometry.to_numpy()
    router, grid = Router.from_network(net), build_node_grid(net)
    old = _whole_network_reach(net, snapped, pts, 1000.0)
    for j in range(len(snapped)):
        _assert_same_reach(local_reach(router, grid, snapped[j : j + 1], 1000.0, pts[[j]]), old[j])
    fast = facility_isochrones(router, fac.head(4), snapped.head(4), threshold_m=1000, grid=grid)
    exact = [segments_to_polygon(r.coords, buffer_m=25, method="exact") for r in old[:4]]
    assert min(overlap_ratio(a, b) for a, b in zip(fast.geometry, exact, strict=True)) >= 0.98


def test_local_search_handles_edges_shorter_than_their_span() -> None:
    # lengths from another source (e.g. great-circle) can be shorter than the straight line:
    # node 1 lies 1,500 m away but 500 m of walking (a search bounded by a straight-line radius
    # would miss it; the search is bounded by walking distance only)
    from lifecircle.isochrones import build_node_grid, local_reach

    net = toy_network([(0, 0), (1500, 0), (1500, 300)], [(0, 1), (1, 2)], lengths=[500.0, 300.0])
    src = pd.DataFrame({"edge": [0], "along_m": [0.0], "offset_m": [0.0]})
    grid = build_node_grid(net)
    reach = local_reach(Router.from_network(net), grid, src, 1000.0)
    # whole of both edges is within 800 m: both reached, plus the source's own edge
    assert sorted(reach.edge.tolist()) == [0, 0, 1]
    node_dist = Router.from_network(net).node_distances(src, limit_m=1000.0)
    _assert_same_reach(reach, reachable_segments(net, node_dist, 1000.0, src))


def test_each_facility_search_touches_only_its_neighbourhood(lujiazui_net, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # each search sets distances only at nodes within the threshold of walking (so within it in
    # a straight line), never across the whole network (the former method did), and leaves its
    # network-sized work arrays as it found them
    import lifecircle.isochrones as iso

    net = _tiled(lujiazui_net, n=2)
    touched: list[int] = []
    real = iso.local_search

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        found = real(*args, **kwargs)
        touched.append(found.touched)
        return found

    monkeypatch.setattr(iso, "local_search", spy)
    fac = _street_facilities(net, 8, seed=3)
    snapped = snap_points(fac, net)
    router = Router.from_network(net)
    scratch = iso.search_scratch(router)
    monkeypatch.setattr(iso, "search_scratch", lambda _router: scratch)
    out = facility_isochrones(router, fac, snapped, threshold_m=1000)
    assert len(out) == 8
    assert len(touched) == 8
    for count, (x, y) in zip(
        touched, zip(fac.geometry.x, fac.geometry.y, strict=True), strict=True
    ):
        near = int((np.hypot(net.x - x, net.y - y) <= 1000 + 200).sum())
        assert 50 < count <= near < net.n_nodes / 2
    assert np.isinf(scratch.dist).all()
    assert not scratch.edge_seen.any()


def test_street_raster_inks_every_street_and_nothing_else(lujiazui_net) -> None:  # type: ignore[no-untyped-def]
    # maps draw streets as one image at the map's pixel size (issue 12): check it by value
    import matplotlib.pyplot as plt

    from lifecircle.plot import add_streets, new_axes

    net = lujiazui_net
    bounds = (net.x.min() - 300, net.y.min() - 300, net.x.max() + 300, net.y.max() + 300)
    fig, ax = new_axes(None, (10, 10))
    image = add_streets(ax, net, bounds=bounds)
    ink = np.asarray(image.get_array())[..., 3] > 0
    x0, x1, y0, y1 = image.get_extent()
    px = (x1 - x0) / ink.shape[1]
    assert (y1 - y0) / ink.shape[0] == pytest.approx(px)
    assert 1 < px < 10  # about the saved map's pixel (150 dpi on a 10-inch figure)
    for f in (0.0, 1.0):  # both ends of every edge are inked
        x = net.x[net.u] + f * (net.x[net.v] - net.x[net.u])
        y = net.y[net.u] + f * (net.y[net.v] - net.y[net.u])
        assert ink[np.floor((y1 - y) / px).astype(int), np.floor((x - x0) / px).astype(int)].all()
    # and no gaps: every point along every edge (tenths) has ink in its pixel or a neighbour
    padded = np.pad(ink, 1)
    near = np.zeros_like(padded)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            near |= np.roll(np.roll(padded, dr, axis=0), dc, axis=1)
    for f in np.linspace(0.1, 0.9, 9):
        x = net.x[net.u] + f * (net.x[net.v] - net.x[net.u])
        y = net.y[net.u] + f * (net.y[net.v] - net.y[net.u])
        row = np.floor((y1 - y) / px).astype(int) + 1
        col = np.floor((x - x0) / px).astype(int) + 1
        assert near[row, col].all()
    # and every inked pixel has a street passing through it (centre within half a diagonal)
    rows, cols = np.nonzero(ink)
    centres = shapely.points(x0 + (cols + 0.5) * px, y1 - (rows + 0.5) * px)
    lines = shapely.linestrings(
        np.stack(
            [
                np.column_stack([net.x[net.u], net.y[net.u]]),
                np.column_stack([net.x[net.v], net.y[net.v]]),
            ],
            axis=1,
        )
    )
    _, dist = shapely.STRtree(lines).query_nearest(centres, return_distance=True, all_matches=False)
    assert dist.max() <= px * np.sqrt(2) / 2 + 1e-6
    plt.close(fig)


def test_street_raster_is_reused_for_the_same_network_and_view(lujiazui_net) -> None:  # type: ignore[no-untyped-def]
    from lifecircle.plot import _street_raster_once, street_raster

    net = lujiazui_net
    bounds = (float(net.x.min()), float(net.y.min()), float(net.x.max()), float(net.y.max()))
    first = _street_raster_once(net, bounds, 5.0)
    assert np.array_equal(first, street_raster(net, bounds, 5.0))
    assert _street_raster_once(net, bounds, 5.0) is first  # drawn once, reused
    assert _street_raster_once(net, bounds, 4.0) is not first  # another pixel size: recomputed


def test_tiled_dissolve_is_the_global_overlay_on_lujiazui(lujiazui_net) -> None:  # type: ignore[no-untyped-def]
    from lifecircle.isochrones import dissolve_tiled

    net = lujiazui_net
    fac = _street_facilities(net, 12, seed=5)
    iso = facility_isochrones(Router.from_network(net), fac, snap_points(fac, net), threshold_m=600)
    polys = iso.geometry.to_numpy()
    a, b = polys[::2], polys[1::2]  # two tiers: where both are reached
    rng = np.random.default_rng(2)
    x0, y0 = net.x.min(), net.y.min()
    pts = rng.uniform(0, 1, (300, 2)) * [np.ptp(net.x), np.ptp(net.y)] + [x0, y0]
    legs = shapely.buffer(shapely.linestrings(np.stack([pts, pts + 40.0], axis=1)), 25)
    want = shapely.union(shapely.intersection(shapely.union_all(a), shapely.union_all(b)),
                         shapely.union_all(legs))  # fmt: skip
    got = dissolve_tiled([a, b], legs, tile_m=300.0)  # many tiles cut through the polygons
    assert shapely.is_valid(got)
    assert got.area == pytest.approx(want.area, rel=1e-9)
    assert shapely.symmetric_difference(got, want).area < 1e-6 * want.area
    one = dissolve_tiled([polys], tile_m=300.0)
    assert shapely.symmetric_difference(one, shapely.union_all(polys)).area < 1e-6 * one.area


def test_search_work_arrays_must_fit_the_network_and_are_reset_after_an_interrupt(
    lujiazui_net, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    import lifecircle.fields as fields_module
    import lifecircle.isochrones as iso

    router, grid = Router.from_network(lujiazui_net), iso.build_node_grid(lujiazui_net)
    small = toy_network([(0, 0), (100, 0)], [(0, 1)])
    wrong = iso.search_scratch(Router.from_network(small))
    with pytest.raises(ValueError, match="another network"):
        iso.local_search(router, grid, 0, 1.0, 0.0, 1000.0, scratch=wrong)
    scratch = iso.search_scratch(router)
    want = iso.local_search(router, grid, 5, 1.0, 0.0, 1000.0, scratch=scratch)
    real = fields_module.compiled

    def interrupted(py):  # type: ignore[no-untyped-def]
        if py is iso._edges_at_py:

            def stop(*args):  # type: ignore[no-untyped-def]
                real(py)(*args)  # edges marked, then the user presses Ctrl-C
                raise KeyboardInterrupt

            return stop
        return real(py)

    monkeypatch.setattr(fields_module, "compiled", interrupted)
    with pytest.raises(KeyboardInterrupt):
        iso.local_search(router, grid, 5, 1.0, 0.0, 1000.0, scratch=scratch)
    monkeypatch.setattr(fields_module, "compiled", real)
    assert np.isinf(scratch.dist).all()
    assert not scratch.edge_seen.any()
    again = iso.local_search(router, grid, 5, 1.0, 0.0, 1000.0, scratch=scratch)
    np.testing.assert_array_equal(again.edges, want.edges)
    np.testing.assert_array_equal(again.du, want.du)
