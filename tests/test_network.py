from __future__ import annotations

import re

import networkx as nx
import numpy as np
import pytest

from lifecircle.errors import NoDataError
from lifecircle.network import (
    WALK_EXCLUDE,
    analysed_extent,
    build_walk_network,
    component_labels,
    is_walkable,
    network_csr,
    network_from_gdfs,
    network_to_gdfs,
    network_to_graph,
    summarize_network,
    walk_overpass_filter,
)
from lifecircle.osmdata import HighwayWays
from tests.conftest import LUJIAZUI, toy_network


@pytest.mark.parametrize(
    ("tags", "ok"),
    [
        ({"highway": "footway"}, True),
        ({"highway": "service"}, True),
        ({"highway": "primary", "sidewalk": "both"}, True),
        ({"highway": "motorway"}, False),
        ({"highway": "motorway_link"}, False),
        ({"highway": "cycleway"}, False),
        ({"highway": "construction"}, False),
        ({"highway": "footway", "access": "private"}, False),
        ({"highway": "residential", "foot": "no"}, False),
        ({"highway": "service", "service": "private"}, False),
        ({"highway": "primary", "sidewalk": "separate"}, False),
        ({"highway": "pedestrian", "area": "yes"}, False),
        ({"building": "yes"}, False),
    ],
)
def test_walk_filter_matches_osmnx_semantics(tags: dict[str, str], ok: bool) -> None:
    assert is_walkable(tags) is ok


def _ways() -> HighwayWays:
    # way 10: nodes 1-2-3 (footway); way 11: 3-4 (motorway, dropped); way 12: 5-6 (an island)
    return HighwayWays(
        way_ids=np.array([10, 11, 12]),
        offsets=np.array([0, 3, 5, 7]),
        node_ids=np.array([1, 2, 3, 3, 4, 5, 6]),
        lon=np.array([121.5, 121.501, 121.502, 121.502, 121.503, 121.6, 121.601]),
        lat=np.array([31.2, 31.2, 31.2, 31.2, 31.2, 31.3, 31.3]),
        tags=[{"highway": "footway"}, {"highway": "motorway"}, {"highway": "path"}],
    )


def test_build_toy_network() -> None:
    net = build_walk_network(_ways(), crs="EPSG:32651")
    assert net.node_osmid.tolist() == [1, 2, 3, 5, 6]
    assert net.n_edges == 3
    # 0.001 degree of longitude at 31.2 N is about 95.2 m
    assert net.length_m[:2] == pytest.approx([95.2, 95.2], abs=0.5)
    summary = summarize_network(net)
    assert summary["components"] == 2
    assert summary["largest_component_share"] == pytest.approx(2 / 3, abs=0.01)


def test_clip_keeps_edges_with_one_end_inside() -> None:
    import shapely

    clip = shapely.box(121.4995, 31.19, 121.5005, 31.21)  # only node 1 inside
    net = build_walk_network(_ways(), crs="EPSG:32651", clip=clip)
    assert net.n_edges == 1
    with pytest.raises(NoDataError, match="no walkable street"):
        build_walk_network(_ways(), crs="EPSG:32651", clip=shapely.box(0, 0, 1, 1))


def test_csr_keeps_shortest_of_parallel_edges() -> None:
    net = toy_network([(0, 0), (100, 0)], [(0, 1), (1, 0), (0, 1)], lengths=[100.0, 70.0, 120.0])
    csr = network_csr(net)
    assert csr[0, 1] == 70.0
    assert csr[1, 0] == 70.0
    assert csr.nnz == 2


def test_component_labels_rank_by_length() -> None:
    net = toy_network([(0, 0), (10, 0), (100, 0), (400, 0)], [(0, 1), (2, 3)])
    assert component_labels(net).tolist() == [1, 1, 0, 0]


def test_lujiazui_network(lujiazui_net) -> None:  # type: ignore[no-untyped-def]
    s = summarize_network(lujiazui_net)
    assert s["nodes"] == 6076
    assert s["edges"] == 6785
    assert s["length_km"] == pytest.approx(140.87, abs=0.01)
    assert 0.8 < s["largest_component_share"] < 0.9
    assert analysed_extent(lujiazui_net)["area_km2"].iloc[0] == pytest.approx(6.24, abs=0.01)


def test_roundtrip_gdfs_and_networkx(lujiazui_net) -> None:  # type: ignore[no-untyped-def]
    nodes, edges = network_to_gdfs(lujiazui_net)
    back = network_from_gdfs(nodes, edges)
    assert np.array_equal(back.node_osmid, lujiazui_net.node_osmid)
    assert np.allclose(back.length_m, lujiazui_net.length_m)
    G = network_to_graph(lujiazui_net)
    assert G.number_of_nodes() == 6076
    assert G.number_of_edges() == 2 * 6785
    assert G.graph["crs"] == "EPSG:32651"
    _u, _v, data = next(iter(G.edges(data=True)))
    assert {"length", "osmid", "highway"} <= set(data)
    # osmnx can read it back
    import osmnx as ox

    gdf_nodes, _gdf_edges = ox.graph_to_gdfs(G)
    assert len(gdf_nodes) == 6076
    assert nx.number_weakly_connected_components(G) == s_components(lujiazui_net)


def s_components(net) -> int:  # type: ignore[no-untyped-def]
    return int(summarize_network(net)["components"])


# --------------------------------------------------------------------------- osmnx's own filter

_CLAUSE = re.compile(r'\["([^"]+)"(?:(!?~)"([^"]*)")?\]')


def _osmnx_walk_clauses() -> list[tuple[str, str, str]]:
    """osmnx's walk filter string, parsed into (key, op, regex) clauses.

    osmnx builds it in a private function; if osmnx renames or changes it,
    this test fails loudly and the filter must be reviewed.
    """
    from osmnx import _overpass

    text = _overpass._get_network_filter("walk")
    clauses = [(k, op or "", rx or "") for k, op, rx in _CLAUSE.findall(text)]
    assert "".join(f'["{k}"{op}"{rx}"]' if op else f'["{k}"]' for k, op, rx in clauses) == text, (
        "osmnx's walk filter uses syntax this parser does not know"
    )
    return clauses


def _osmnx_keeps(tags: dict[str, str], clauses: list[tuple[str, str, str]]) -> bool:
    """Evaluate Overpass semantics: ["k"] needs k; ["k"!~"re"] passes when k is absent."""
    for key, op, rx in clauses:
        if op == "":
            if key not in tags:
                return False
        elif op == "!~":
            if key in tags and re.search(rx, tags[key]):
                return False
        elif op == "~" and not (key in tags and re.search(rx, tags[key])):
            return False
    return True


def test_walk_filter_agrees_with_osmnx_on_every_lujiazui_way(data_dir) -> None:  # type: ignore[no-untyped-def]
    import osmium

    clauses = _osmnx_walk_clauses()
    ways = [
        dict(w.tags)
        for w in osmium.FileProcessor(str(LUJIAZUI), osmium.osm.WAY)
        if "highway" in w.tags
    ]
    assert len(ways) == 1500
    ref = [_osmnx_keeps(t, clauses) for t in ways]
    ours = [is_walkable(t) for t in ways]
    disagree = [t for t, a, b in zip(ways, ref, ours, strict=True) if a != b]
    assert disagree == []
    assert sum(ref) == 1322  # the data README's count of walkable ways
    # the data exercise the exclusions that matter here (22 cycleways among them)
    assert sum(t["highway"] == "cycleway" for t in ways) == 22


def test_walk_filter_agrees_with_osmnx_on_every_excluded_value() -> None:
    clauses = _osmnx_walk_clauses()
    cases = [{"highway": "footway"}, {"building": "yes"}]
    for key, op, rx in clauses:
        for value in rx.split("|") if op else []:
            base = {"highway": value} if key == "highway" else {"highway": "footway", key: value}
            cases += [base, {**base, key: f"x{value}x"}]  # regex search, not full match
    for tags in cases:
        assert is_walkable(tags) is _osmnx_keeps(tags, clauses), tags


def test_download_query_uses_the_same_filter() -> None:
    from osmnx import _overpass

    from lifecircle.io import build_overpass_query

    assert walk_overpass_filter() == _overpass._get_network_filter("walk")
    query = build_overpass_query("31.2 121.5 31.3 121.5 31.3 121.6", "[out:json]")
    assert f"way{walk_overpass_filter()}(poly:" in query
    assert set(WALK_EXCLUDE) == {k for k, op, _ in _osmnx_walk_clauses() if op}
