from __future__ import annotations

import itertools

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely

from lifecircle.access import Router, nearest_distances
from lifecircle.snapping import snap_points
from tests.conftest import toy_network


def _snap(edge: list[int], along: list[float], offset: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"edge": edge, "along_m": along, "offset_m": offset})


def test_toy_square_by_hand() -> None:
    #  3 ---- 2
    #  |      |      100 m square; facility on edge 0-1 at 30 m from node 0, 4 m off street;
    #  0 ---- 1      resident on edge 2-3 at 10 m from node 2, 6 m off street.
    net = toy_network([(0, 0), (100, 0), (100, 100), (0, 100)], [(0, 1), (1, 2), (2, 3), (3, 0)])
    fac = _snap([0], [30.0], [4.0])
    res = _snap([2], [10.0], [6.0])
    router = Router.from_network(net)
    # via node 1 then 2: 4 + 70 + 100 + 10 + 6 = 190; via node 0 then 3: 4 + 30 + 100 + 90 + 6 = 230
    assert router.distances(res, fac, limit_m=1000).tolist() == [190.0]
    assert router.distances(res, fac, limit_m=150).tolist() == [np.inf]


def test_same_edge_walks_straight_along_it() -> None:
    net = toy_network([(0, 0), (100, 0)], [(0, 1)])
    fac = _snap([0], [40.0], [0.0])
    res = _snap([0, 0], [55.0, 0.0], [5.0, 0.0])
    out = Router.from_network(net).distances(res, fac, limit_m=1000)
    assert out.tolist() == [20.0, 40.0]


def test_parallel_edges_use_the_shortest() -> None:
    net = toy_network(
        [(0, 0), (100, 0), (200, 0)], [(0, 1), (0, 1), (1, 2)], lengths=[300.0, 100.0, 100.0]
    )
    out = Router.from_network(net).distances(
        _snap([2], [100.0], [0.0]), _snap([1], [0.0], [0.0]), limit_m=1000
    )
    assert out.tolist() == [200.0]


def test_unreachable_and_no_sources() -> None:
    net = toy_network([(0, 0), (100, 0)], [(0, 1)])
    router = Router.from_network(net)
    out = router.distances(
        _snap([-1, 0], [np.nan, 1.0], [np.nan, 0.0]), _snap([-1], [0], [0]), limit_m=1000
    )
    assert np.isinf(out).all()


def test_snapping_to_edge_position_not_node() -> None:
    net = toy_network([(0, 0), (100, 0)], [(0, 1)])
    pts = gpd.GeoDataFrame(
        geometry=[shapely.Point(30, 8), shapely.Point(50, 400)], crs="EPSG:32651"
    )
    snapped = snap_points(pts, net, max_snap_m=300)
    assert snapped["edge"].tolist() == [0, -1]
    assert snapped["along_m"].iloc[0] == pytest.approx(30.0)
    assert snapped["offset_m"].iloc[0] == pytest.approx(8.0)


def _networkx_distances(net, res_geom, res_snap, fac_geom, fac_snap):  # type: ignore[no-untyped-def]
    """Independent check: split edges at every snapped point, then networkx Dijkstra."""
    G = nx.Graph()
    by_edge: dict[int, list[tuple[float, object]]] = {}
    for kind, snap, _geoms in (("r", res_snap, res_geom), ("f", fac_snap, fac_geom)):
        for i, (e, a, o) in enumerate(
            snap[["edge", "along_m", "offset_m"]].itertuples(index=False)
        ):
            if e < 0:
                continue
            on = (kind, "on", i)
            by_edge.setdefault(int(e), []).append((float(a), on))
            G.add_edge((kind, i), on, weight=float(o))
    for e in range(net.n_edges):
        u, v, length = int(net.u[e]), int(net.v[e]), float(net.length_m[e])
        chain = [(0.0, u), *sorted(by_edge.get(e, []), key=lambda t: t[0]), (length, v)]
        for (a0, n0), (a1, n1) in itertools.pairwise(chain):
            w = a1 - a0
            if G.has_edge(n0, n1):
                w = min(w, G[n0][n1]["weight"])
            G.add_edge(n0, n1, weight=w)
    sources = [("f", i) for i in range(len(fac_snap)) if fac_snap["edge"].iloc[i] >= 0]
    dist = nx.multi_source_dijkstra_path_length(G, sources, weight="weight")
    return np.array([dist.get(("r", i), np.inf) for i in range(len(res_snap))])


def test_matches_networkx_on_lujiazui(lujiazui_net, lujiazui_osm) -> None:  # type: ignore[no-untyped-def]
    from lifecircle.facilities import facilities_from_osm
    from lifecircle.residents import build_residents

    net = lujiazui_net
    area = shapely.box(0, 0, 1e7, 1e7)
    residents = build_residents(lujiazui_osm.features, crs=net.crs, area=area)
    fac = facilities_from_osm(lujiazui_osm.features).to_crs(net.crs)
    res_snap = snap_points(residents, net)
    fac_snap = snap_points(fac, net)
    router = Router.from_network(net)
    groups = {c: (fac["category"] == c).to_numpy() for c in ("school", "health", "culture")}
    ours = nearest_distances(router, res_snap, fac_snap, groups, limit_m=1e9)
    for cat, mask in groups.items():
        ref = _networkx_distances(net, residents, res_snap, fac.loc[mask], fac_snap.loc[mask])
        got = ours[cat].to_numpy()
        finite = np.isfinite(ref)
        assert finite.sum() > 200
        assert np.array_equal(np.isfinite(got), finite)
        assert np.abs(got[finite] - ref[finite]).max() < 0.01
