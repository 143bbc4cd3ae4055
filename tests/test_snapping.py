from __future__ import annotations

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
import shapely

from lifecircle.errors import InputError
from lifecircle.network import edge_lines
from lifecircle.snapping import (
    EdgeIndex,
    routable_edges,
    snap_area,
    snap_points,
    snap_to_routable,
)
from tests.conftest import toy_network

CRS = "EPSG:32651"


def _pts(xy: list[tuple[float, float]]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(geometry=[shapely.Point(x, y) for x, y in xy], crs=CRS)


def _two_parts():  # type: ignore[no-untyped-def]
    # main street: 0-1-2 along y=0, 2,000 m; a 40 m footway fragment 3-4 at y=20 above x=500
    return toy_network(
        [(0, 0), (1000, 0), (2000, 0), (480, 20), (520, 20)], [(0, 1), (1, 2), (3, 4)]
    )


def test_fragment_is_skipped_when_a_routable_edge_is_within_the_limit() -> None:
    net = _two_parts()
    assert routable_edges(net).tolist() == [True, True, False]
    # 25 m above the main street, 5 m above the fragment
    snap = snap_to_routable(_pts([(500, 25)]), net, routable=routable_edges(net), max_snap_m=300)
    row = snap.iloc[0]
    assert row["edge"] == 0
    assert row["along_m"] == pytest.approx(500.0)
    assert row["offset_m"] == pytest.approx(25.0)
    assert bool(row["moved_off_fragment"]) is True
    assert row["extra_access_m"] == pytest.approx(20.0)  # 25 m instead of 5 m


def test_isolated_only_when_no_routable_edge_within_the_limit() -> None:
    net = _two_parts()
    # 10 m from the fragment, 30 m from the main street: the limit decides
    snap = snap_to_routable(_pts([(500, 30)]), net, routable=routable_edges(net), max_snap_m=20)
    assert snap["edge"].tolist() == [-1]
    assert np.isnan(snap["extra_access_m"].iloc[0])
    snap = snap_to_routable(_pts([(500, 30)]), net, routable=routable_edges(net), max_snap_m=31)
    assert snap["edge"].tolist() == [0]


def test_the_old_snap_to_any_edge_lands_on_the_fragment() -> None:
    net = _two_parts()
    assert snap_points(_pts([(500, 25)]), net)["edge"].tolist() == [2]


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_snap_limit_is_refused(bad: float) -> None:
    net = _two_parts()
    with pytest.raises(InputError, match="--max-snap-m"):
        snap_points(_pts([(0, 1)]), net, max_snap_m=bad)


def test_polygon_is_reached_from_its_outline() -> None:
    net = _two_parts()
    # a 100 x 100 m campus whose south side is 40 m north of the street, x 900-1000
    campus = gpd.GeoDataFrame(geometry=[shapely.box(900, 40, 1000, 140)], crs=CRS)
    row = snap_points(campus, net, index=EdgeIndex.build(net, routable_edges(net))).iloc[0]
    assert row["offset_m"] == pytest.approx(40.0)
    assert 900.0 <= row["along_m"] <= 1000.0  # somewhere under its south side
    # an interior point would have walked 90 m
    inner = snap_points(_pts([(950, 90)]), net).iloc[0]
    assert inner["offset_m"] == pytest.approx(90.0)
    # a polygon the street runs through is reached at 0 m
    across = gpd.GeoDataFrame(geometry=[shapely.box(1500, -10, 1600, 10)], crs=CRS)
    assert snap_points(across, net)["offset_m"].iloc[0] == pytest.approx(0.0)


def test_facility_on_a_component_without_residents_is_not_reachable() -> None:
    # two long streets 2 km apart (a river between): residents only on the first
    net = toy_network([(0, 0), (2000, 0), (0, 2000), (2000, 2000)], [(0, 1), (2, 3)])
    residents = _pts([(100, 10)])
    access = gpd.GeoDataFrame(
        {"facility_id": [7, 8]}, geometry=[shapely.Point(500, 5), shapely.Point(500, 1995)], crs=CRS
    )
    snapped = snap_area(net, residents, access)
    assert snapped.facility_reachable.to_dict() == {7: True, 8: False}
    assert snapped.residents["status"].tolist() == ["ok"]


def test_lujiazui_fragments_by_brute_force(lujiazui_net) -> None:  # type: ignore[no-untyped-def]
    """Snap report on the real network against networkx components and brute-force distances."""
    from lifecircle.prepare import AreaRequest, prepare_area

    net = lujiazui_net
    residents = prepare_area(AreaRequest(district="pudong")).residents.to_crs(CRS)
    # independent components: networkx on the edge list, lengths from coordinates
    G = nx.Graph()
    length = np.hypot(net.x[net.u] - net.x[net.v], net.y[net.u] - net.y[net.v])
    for a, b, w in zip(net.u.tolist(), net.v.tolist(), length.tolist(), strict=True):
        G.add_edge(a, b, w=G.get_edge_data(a, b, {"w": 0})["w"] + w)
    comp_len = {}
    for comp in nx.connected_components(G):
        total = sum(length[i] for i in range(net.n_edges) if net.u[i] in comp)
        comp_len[frozenset(comp)] = total
    longest = max(comp_len.values())
    fragment_nodes = set()
    for comp, total in comp_len.items():
        if total < 1000 and total != longest:
            fragment_nodes |= comp
    fragment = np.array([u in fragment_nodes for u in net.u.tolist()])
    lines = edge_lines(net)
    moved, extra = 0, []
    for geom in residents.geometry:
        d = shapely.distance(geom, lines)
        best_any, best_routable = d.min(), d[~fragment].min()
        if fragment[int(np.argmin(d))] and best_routable <= 300:
            moved += 1
            extra.append(best_routable - best_any)
    snap = snap_to_routable(residents, net, routable=routable_edges(net), max_snap_m=300)
    assert int(snap["moved_off_fragment"].sum()) == moved == 7
    got = np.sort(snap.loc[snap["moved_off_fragment"], "extra_access_m"].to_numpy())
    assert got == pytest.approx(np.sort(extra), abs=1e-6)
    assert float(np.median(got)) == pytest.approx(10.6, abs=0.05)
    assert float(got.max()) == pytest.approx(42.6, abs=0.05)


def test_a_footway_crossing_the_outline_is_an_access() -> None:
    # street y=0 from x=0 to 2,000; a footway leaves it at x=1,500 and runs north 400 m
    # into a campus whose outline spans y=200..300, x=1,450..1,550 (crossed at y=200 and y=300)
    net = toy_network([(0, 0), (1500, 0), (2000, 0), (1500, 400)], [(0, 1), (1, 2), (1, 3)])
    outline = shapely.box(1450, 200, 1550, 300).exterior
    access = gpd.GeoDataFrame({"facility_id": [1]}, geometry=[outline], crs=CRS)
    snapped = snap_area(net, _pts([(100, 5)]), access)
    acc = snapped.access.sort_values("along_m")
    # the nearest-edge access: the footway itself runs through the outline (0 m), plus the
    # two crossings at 200 m and 300 m along the footway (edge 2, from node 1)
    cross = acc.loc[acc["edge"] == 2, "along_m"].round(6).unique().tolist()
    assert 200.0 in cross
    assert 300.0 in cross
    assert (acc["offset_m"] == 0).all()
    from lifecircle.access import Router

    dist = Router.from_network(net).distances(snapped.residents, snapped.access, limit_m=5000)
    # 5 m leg + 1,400 m along the street + 200 m up the footway to the outline
    assert dist.tolist() == pytest.approx([1605.0])


def test_facility_snap_limit_is_separate() -> None:
    net = _two_parts()
    residents = _pts([(100, 10)])
    access = gpd.GeoDataFrame({"facility_id": [1]}, geometry=[shapely.Point(600, 150)], crs=CRS)
    assert snap_area(net, residents, access).access["edge"].tolist() == [0]  # 150 m leg
    tight = snap_area(net, residents, access, facility_max_snap_m=100)
    assert tight.access["edge"].tolist() == [-1]
    assert tight.residents["edge"].tolist() == [0]  # residents keep their own limit
    assert tight.facility_reachable.to_dict() == {1: False}


def _old_snap_geometries(geoms, net, index, max_snap_m):  # type: ignore[no-untyped-def]
    """The snap as written before `nearest_within`: GEOS's own max_distance screen."""
    from lifecircle.snapping import _project, spatial_order

    n = len(geoms)
    edge = np.full(n, -1, dtype=np.int64)
    along, offset = np.full(n, np.nan), np.full(n, np.nan)
    order = spatial_order(geoms)
    g_idx, t_idx = index.tree.query_nearest(
        geoms[order], max_distance=max_snap_m, all_matches=False
    )
    g_idx = order[g_idx]
    e_idx = index.positions[t_idx]
    a, o, _, _ = _project(geoms[g_idx], e_idx, net)
    edge[g_idx], along[g_idx], offset[g_idx] = e_idx, a, o
    return edge, along, offset


@pytest.mark.parametrize(("parallel_min", "threads"), [(10**9, 1), (1, 2), (1, 3)])
def test_nearest_within_equals_the_screened_geos_search_on_lujiazui(  # type: ignore[no-untyped-def]
    lujiazui_net, monkeypatch, parallel_min: int, threads: int
) -> None:
    """Same edge and position as GEOS's max_distance search, and the brute-force distance.

    One thread, and blocks searched by 2 and 3 threads at once.
    """
    from lifecircle import snapping
    from lifecircle.prepare import AreaRequest, prepare_area
    from lifecircle.snapping import SnapIndex, nearest_within, snap_geometries

    monkeypatch.setattr(snapping, "PARALLEL_MIN", parallel_min)
    monkeypatch.setattr(snapping, "search_threads", lambda: threads)

    net = lujiazui_net
    prepared = prepare_area(AreaRequest(district="pudong"))
    residents = prepared.residents.to_crs(CRS).geometry.to_numpy()
    outlines = prepared.facility_access.to_crs(CRS).geometry.to_numpy()
    west = int(np.argmin(net.x))  # points west of the westernmost node: 5 km, 250 m, 299.9 m
    x0, y0 = float(net.x[west]), float(net.y[west])
    far = shapely.points([x0 - 5000, x0 - 250, x0 - 299.9], [y0, y0, y0])
    geoms = np.concatenate([residents, outlines, far])
    routable, fragments = SnapIndex(net).indexes()
    for index in (routable, fragments):
        for limit in (300.0, 40.0):
            want = index.tree.query_nearest(geoms, max_distance=limit, all_matches=False)
            got = nearest_within(index.tree, geoms, limit)
            assert np.array_equal(np.vstack(got), want)
            old = _old_snap_geometries(geoms, net, index, limit)
            new = snap_geometries(geoms, net, index, max_snap_m=limit)
            assert np.array_equal(new["edge"].to_numpy(), old[0])
            assert np.array_equal(new["along_m"].to_numpy(), old[1], equal_nan=True)
            assert np.array_equal(new["offset_m"].to_numpy(), old[2], equal_nan=True)
    # brute force: the chosen edge is at the least distance over every routable edge
    lines = routable.lines[routable.positions]
    snap = snap_geometries(geoms, net, routable, max_snap_m=300.0)
    sample = np.r_[np.arange(0, len(residents), 7), np.arange(len(residents), len(geoms))]
    for i in sample.tolist():
        d = shapely.distance(geoms[i], lines)
        e = int(snap["edge"].iloc[i])
        if d.min() > 300.0:
            assert e == -1
        else:
            assert e >= 0
            assert float(shapely.distance(geoms[i], routable.lines[e])) == float(d.min())
    assert (snap["edge"].to_numpy()[-3:] >= 0).tolist() == [False, True, True]
