"""Issue 12: the faster cache and snapping give exactly the answers of the direct computation."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import shapely

from lifecircle.errors import NoDataError
from lifecircle.network import (
    WalkNetwork,
    attach_derived,
    component_labels,
    derived_tables,
    min_per_pair,
    network_csr,
    network_from_tables,
    network_tables,
)
from lifecircle.pipeline import (
    CoverageOptions,
    compute_coverage,
    facility_access_layer,
    scenario_area,
)
from lifecircle.prepare import AreaRequest, prepare_area
from lifecircle.snapping import (
    SPATIAL_ORDER_MIN,
    EdgeIndex,
    SnapIndex,
    routable_edges,
    snap_access,
    snap_area,
    snap_geometries,
    snap_residents,
    snap_to_routable,
    spatial_order,
)
from tests.conftest import care_home


def test_network_tables_round_trip_is_exact(lujiazui_net: WalkNetwork) -> None:
    nodes, edges = network_tables(lujiazui_net)
    assert edges["u"].dtype == np.int32  # compact positions; coordinates stay float64
    back = network_from_tables(nodes, edges, crs=lujiazui_net.crs)
    for name in ("node_osmid", "x", "y", "u", "v", "length_m", "way_id"):
        np.testing.assert_array_equal(getattr(back, name), getattr(lujiazui_net, name))
    assert back.highway.tolist() == lujiazui_net.highway.tolist()


def test_csr_matches_a_dictionary_of_shortest_parallel_edges(lujiazui_net: WalkNetwork) -> None:
    """The one-key sort and the direct indptr give scipy's matrix of the shortest edges."""
    net = replace(lujiazui_net)  # a fresh object: nothing remembered
    best: dict[tuple[int, int], float] = {}
    for a, b, w in zip(net.u.tolist(), net.v.tolist(), net.length_m.tolist(), strict=True):
        for key in ((a, b), (b, a)):
            best[key] = min(best.get(key, np.inf), w)
    rows, cols = np.array(list(best)).T
    want = sp.csr_matrix((list(best.values()), (rows, cols)), shape=(net.n_nodes,) * 2)
    got = network_csr(net)
    assert (got != want).nnz == 0
    assert got.nnz == len(best)  # zero-length edges stay explicit entries
    assert network_csr(net) is got  # computed once per network


def test_cached_matrix_and_components_equal_a_fresh_computation(lujiazui_net: WalkNetwork) -> None:
    """The cache's matrix and labels, through its own tables, equal networkx and a new build."""
    import networkx as nx

    nodes, edges = network_tables(lujiazui_net)
    per_node, adjacency = derived_tables(replace(lujiazui_net))
    loaded = network_from_tables(nodes, edges, crs=lujiazui_net.crs)
    attach_derived(loaded, per_node, adjacency)
    fresh = replace(lujiazui_net)  # a fresh object: nothing remembered
    assert (network_csr(loaded) != network_csr(fresh)).nnz == 0
    np.testing.assert_array_equal(network_csr(loaded).indptr, network_csr(fresh).indptr)
    labels = component_labels(loaded)
    np.testing.assert_array_equal(labels, component_labels(fresh))
    # independent: networkx's components hold the same node sets, the longest labelled 0
    graph = nx.Graph()
    graph.add_nodes_from(range(loaded.n_nodes))
    graph.add_edges_from(zip(loaded.u.tolist(), loaded.v.tolist(), strict=True))
    for comp in nx.connected_components(graph):
        assert len(set(labels[list(comp)].tolist())) == 1
    assert len(np.unique(labels)) == nx.number_connected_components(graph)
    longest = max(
        nx.connected_components(graph),
        key=lambda c: loaded.length_m[np.isin(loaded.u, list(c))].sum(),
    )
    assert set(labels[list(longest)].tolist()) == {0}


def test_a_cached_matrix_that_does_not_fit_the_network_is_refused(
    lujiazui_net: WalkNetwork,
) -> None:
    per_node, adjacency = derived_tables(replace(lujiazui_net))
    with pytest.raises(NoDataError, match="rebuild"):
        attach_derived(replace(lujiazui_net), per_node.iloc[:-1], adjacency)
    with pytest.raises(NoDataError, match="rebuild"):
        attach_derived(replace(lujiazui_net), per_node, adjacency.iloc[:-1])
    shifted = per_node.assign(component=np.roll(per_node["component"].to_numpy(), 1))
    with pytest.raises(NoDataError, match="rebuild"):  # a street would join two components
        attach_derived(replace(lujiazui_net), shifted, adjacency)
    negative = adjacency.assign(col=adjacency["col"].where(adjacency.index != 5, -1))
    with pytest.raises(NoDataError, match="rebuild"):
        attach_derived(replace(lujiazui_net), per_node, negative)


@pytest.mark.filterwarnings("ignore:no elderly_care facilities:RuntimeWarning")
def test_cached_resident_snap_gives_identical_coverage(private_cache: Path) -> None:
    """A run from the cache (stored snap) equals one that snaps the residents again."""
    req = AreaRequest(district="pudong")
    prepare_area(req)  # build
    cached = prepare_area(req)  # load
    assert cached.resident_snap is not None
    fresh = snap_residents(cached.network, cached.residents)
    pd.testing.assert_frame_equal(
        cached.resident_snap, fresh, check_names=False, check_index_type=False
    )
    area = scenario_area(cached, add=care_home())
    opts = CoverageOptions(isochrones=False)
    with_cache = compute_coverage(area, opts)
    without = compute_coverage(replace(area, resident_snap=None), opts)
    cols = [c for c in without.residents.columns if c.startswith(("dist_", "covered_"))]
    assert len(cols) >= 8
    pd.testing.assert_frame_equal(with_cache.residents[cols], without.residents[cols])
    assert with_cache.summary["categories"] == without.summary["categories"]
    # other limits: the stored snap is not used
    assert area.resident_snap_for(150.0, 1000.0) is None


def _brute_force_fragment_offset(
    net: WalkNetwork, routable: np.ndarray, pts: np.ndarray
) -> np.ndarray:
    """Straight-line distance from each point to its nearest fragment edge (every edge tried)."""
    frag = np.flatnonzero(~routable)
    ax, ay = net.x[net.u[frag]], net.y[net.u[frag]]
    bx, by = net.x[net.v[frag]], net.y[net.v[frag]]
    best = np.full(len(pts), np.inf)
    for px, py, i in zip(pts[:, 0], pts[:, 1], range(len(pts)), strict=True):
        dx, dy = bx - ax, by - ay
        seg2 = dx * dx + dy * dy
        t = np.clip(
            np.where(seg2 > 0, ((px - ax) * dx + (py - ay) * dy) / np.where(seg2 > 0, seg2, 1), 0),
            0,
            1,
        )
        best[i] = np.hypot(px - (ax + t * dx), py - (ay + t * dy)).min()
    return best


def test_fragment_check_only_where_a_fragment_is_nearer_matches_brute_force(
    lujiazui_net: WalkNetwork,
) -> None:
    """Moved-off-fragment flags and extra legs equal a search of every fragment edge by every point.

    The snap searches the fragment edges only for points with one within their routable
    offset; the reference measures every point against every fragment edge.
    """
    net = lujiazui_net
    routable = routable_edges(net)
    assert (~routable).sum() >= 5  # Lujiazui has fragments (footway pieces, plazas)
    rng = np.random.default_rng(12)
    frag = np.flatnonzero(~routable)
    # points around the fragments (where moves happen) and anywhere in the area
    near = np.column_stack([net.x[net.u[frag]], net.y[net.u[frag]]]).repeat(20, axis=0)
    near = near + rng.uniform(-80, 80, near.shape)
    anywhere = np.column_stack(
        [rng.uniform(net.x.min(), net.x.max(), 3000), rng.uniform(net.y.min(), net.y.max(), 3000)]
    )
    pts = np.vstack([near, anywhere])
    layer = gpd.GeoDataFrame(geometry=shapely.points(pts), crs=net.crs)
    snap = snap_to_routable(layer, net, routable=routable, max_snap_m=300)
    frag_offset = _brute_force_fragment_offset(net, routable, pts)
    offset = snap["offset_m"].to_numpy()
    ok = snap["edge"].to_numpy() >= 0
    want_moved = ok & (frag_offset <= 300) & (frag_offset < offset - 1e-9)
    moved = snap["moved_off_fragment"].to_numpy()
    assert want_moved.sum() >= 50  # the case is exercised
    np.testing.assert_array_equal(moved, want_moved)
    np.testing.assert_allclose(
        snap["extra_access_m"].to_numpy()[moved], (offset - frag_offset)[moved], atol=1e-9
    )
    assert (snap["extra_access_m"].to_numpy()[ok & ~moved] == 0).all()


@pytest.mark.filterwarnings("ignore:no elderly_care facilities:RuntimeWarning")
def test_cached_access_snap_equals_a_fresh_snap(private_cache: Path) -> None:
    """The stored facility snap equals a fresh one; scenarios reuse the unchanged rows exactly."""
    req = AreaRequest(district="pudong")
    prepare_area(req)  # build
    cached = prepare_area(req)  # load
    stored = cached.access_snap_for(300.0, 1000.0)
    assert stored is not None
    assert cached.facility_access is not None
    fresh = snap_access(cached.facility_access, SnapIndex(cached.network))
    pd.testing.assert_frame_equal(stored.table, fresh)
    assert (fresh["item"].duplicated()).any()  # outline crossings are stored too
    # a scenario: one facility removed, one campus added, one category left out
    drop = cached.facilities.iloc[[0]][["source_id"]]
    area = scenario_area(cached, add=care_home(), remove=drop)
    for cats in (("school", "health", "elderly_care", "culture"), ("health", "elderly_care")):
        facilities = area.facilities.loc[area.facilities["category"].isin(cats)]
        access = facility_access_layer(facilities, area.facility_access)
        kw = {"resident_snap": area.resident_snap}
        with_cache = snap_area(area.network, area.residents, access, access_snap=stored, **kw)
        without = snap_area(area.network, area.residents, access, **kw)
        pd.testing.assert_frame_equal(with_cache.access, without.access)
        pd.testing.assert_series_equal(with_cache.facility_reachable, without.facility_reachable)
    # other limits: the stored snap is not used
    assert cached.access_snap_for(150.0, 1000.0) is None


def test_min_per_pair_keeps_the_smallest_weight_of_each_pair() -> None:
    """Against a dictionary: many repeated pairs, in random order, with tied weights."""
    rng = np.random.default_rng(5)
    rows = rng.integers(0, 30, 5000)
    cols = rng.integers(0, 40, 5000)
    weights = np.round(rng.uniform(0, 10, 5000), 1)
    best: dict[tuple[int, int], float] = {}
    for a, b, w in zip(rows.tolist(), cols.tolist(), weights.tolist(), strict=True):
        best[(a, b)] = min(best.get((a, b), np.inf), w)
    r, c, w = min_per_pair(rows, cols, weights)
    assert list(zip(r.tolist(), c.tolist(), strict=True)) == sorted(best)
    assert w.tolist() == [best[k] for k in sorted(best)]


def test_searching_in_hilbert_order_changes_no_snap(lujiazui_net: WalkNetwork) -> None:
    """Large layers are searched along a Hilbert curve; each point's edge stays the one
    the tree gives it when searched in the given order (ties included)."""
    net = lujiazui_net
    rng = np.random.default_rng(8)
    n = SPATIAL_ORDER_MIN + 2000
    # grid points (many ties at street corners) and random points
    side = int(np.sqrt(n / 2))
    gx, gy = np.meshgrid(
        np.linspace(net.x.min(), net.x.max(), side), np.linspace(net.y.min(), net.y.max(), side)
    )
    xy = np.vstack(
        [
            np.column_stack([gx.ravel(), gy.ravel()]),
            np.column_stack(
                [
                    rng.uniform(net.x.min(), net.x.max(), n - side * side),
                    rng.uniform(net.y.min(), net.y.max(), n - side * side),
                ]
            ),
        ]
    )
    geoms = shapely.points(xy)
    assert not np.array_equal(spatial_order(geoms), np.arange(n))
    index = EdgeIndex.build(net, routable_edges(net))
    got = snap_geometries(geoms, net, index, max_snap_m=300)
    g_idx, t_idx = index.tree.query_nearest(geoms, max_distance=300, all_matches=False)
    want = np.full(n, -1)
    want[g_idx] = index.positions[t_idx]
    np.testing.assert_array_equal(got["edge"].to_numpy(), want)
