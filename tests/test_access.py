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


def test_compiled_search_equals_scipy_bit_for_bit_on_lujiazui(lujiazui_net) -> None:  # type: ignore[no-untyped-def]
    """The compiled Dijkstra gives scipy's distances exactly, at and around the limit."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import dijkstra

    from lifecircle.access import bounded_dijkstra

    router = Router.from_network(lujiazui_net)
    rng = np.random.default_rng(12)
    n = lujiazui_net.n_nodes
    for k in (1, 7, 60):
        e = rng.integers(0, lujiazui_net.n_edges, k)
        graph = router.with_sources(_snap(e.tolist(), [3.0] * k, [2.5] * k))
        for limit in (0.0, 250.0, 1000.0, 1e9):
            want = dijkstra(graph, directed=True, indices=n, limit=limit)
            got = bounded_dijkstra(graph, n, limit)
            np.testing.assert_array_equal(got, want)
        # a node exactly at the limit is reached, as scipy reaches it
        edge_node = int(lujiazui_net.u[e[0]])
        at = float(dijkstra(graph, directed=True, indices=n)[edge_node])
        assert bounded_dijkstra(graph, n, at)[edge_node] == at
        assert dijkstra(graph, directed=True, indices=n, limit=at)[edge_node] == at
    # zero-length edges are edges (scipy keeps explicit zeros of a sparse matrix)
    zero = sp.csr_matrix(
        (np.array([0.0, 5.0, 0.0]), np.array([1, 2, 0]), np.array([0, 1, 2, 3, 3])), shape=(4, 4)
    )
    assert bounded_dijkstra(zero, 0, 10.0).tolist() == [0.0, 0.0, 5.0, np.inf]
    for bad in (-1.0, float("nan")):  # scipy refuses a negative limit; NaN would not bound
        with pytest.raises(ValueError, match="limit must be >= 0"):
            bounded_dijkstra(zero, 0, bad)


def test_groups_searched_on_two_threads_equal_one_by_one(lujiazui_net) -> None:  # type: ignore[no-untyped-def]
    router = Router.from_network(lujiazui_net)
    rng = np.random.default_rng(3)
    m = lujiazui_net.n_edges
    fac = _snap(rng.integers(0, m, 40).tolist(), [1.0] * 40, [4.0] * 40)
    res = _snap(rng.integers(0, m, 500).tolist(), [2.0] * 500, [7.0] * 500)
    groups = {f"g{i}": np.arange(40) % 5 == i for i in range(5)}
    got = nearest_distances(router, res, fac, groups, limit_m=800)
    for name, mask in groups.items():
        np.testing.assert_array_equal(
            got[name].to_numpy(), router.distances(res, fac.loc[mask], limit_m=800)
        )


@pytest.mark.parametrize("bad", [-1.0, float("nan")])
def test_negative_or_missing_lengths_are_refused_before_any_search(bad: float) -> None:
    # the compiled search assumes lengths >= 0 (with a NaN or negative one it would not end)
    from lifecircle.access import bounded_dijkstra
    from lifecircle.errors import DataError

    net = toy_network([(0, 0), (100, 0), (200, 0)], [(0, 1), (1, 2)], lengths=[100.0, bad])
    with pytest.raises(DataError, match="1 edge lengths that are negative or missing"):
        Router.from_network(net)
    good = Router.from_network(toy_network([(0, 0), (100, 0)], [(0, 1)]))
    graph = good.csr.copy()
    graph.data[:] = bad
    with pytest.raises(DataError, match="negative or missing"):
        bounded_dijkstra(graph, 0, 1000.0)
