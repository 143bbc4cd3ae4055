"""Walking network: pedestrian filter, metric CRS, compact arrays for routing.

The network is unsimplified: every OSM node of a walkable way is a network
node and every pair of consecutive nodes is a straight edge, so an edge's
geometry is its two end points and its length is their distance in the
metric CRS. Walking is undirected (one-way tags do not apply to people).

Walk filter: :data:`WALK_EXCLUDE` is its one definition. It has the same
semantics as osmnx's ``network_type="walk"`` (osmnx 2.x), each test a
regular-expression search on the tag value, as Overpass does: keep ways
with a ``highway`` tag, except ``area~yes``, ``access~private``,
``highway~abandoned|bus_guideway|construction|cycleway|motor|no|planned|
platform|proposed|raceway|razed|rest_area|services``, ``foot~no``,
``service~private`` and ``sidewalk``/``sidewalk:both``/``sidewalk:left``/
``sidewalk:right~separate`` (the separately mapped sidewalk carries the
walking instead). :func:`is_walkable` applies it to a local extract and
:func:`walk_overpass_filter` writes it as the Overpass QL filter of a
download, so both always agree; the tests check it against osmnx's own
filter string.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp
import shapely
from pyproj import Transformer
from shapely.geometry.base import BaseGeometry

from lifecircle.errors import NoDataError
from lifecircle.osmdata import HighwayWays

if TYPE_CHECKING:
    import networkx as nx  # imported where used: 0.3 s at every start otherwise

logger = logging.getLogger(__name__)

WALK_EXCLUDE: dict[str, str] = {
    "area": "yes",
    "access": "private",
    "highway": (
        "abandoned|bus_guideway|construction|cycleway|motor|no|planned|platform|proposed|"
        "raceway|razed|rest_area|services"
    ),
    "foot": "no",
    "service": "private",
    "sidewalk": "separate",
    "sidewalk:both": "separate",
    "sidewalk:left": "separate",
    "sidewalk:right": "separate",
}
_WALK_EXCLUDE_RE = {key: re.compile(pattern) for key, pattern in WALK_EXCLUDE.items()}

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass
class WalkNetwork:
    """An undirected walking network as arrays, in a metric CRS.

    Nodes are positions ``0..n_nodes-1``; edge ``i`` joins ``u[i]`` and
    ``v[i]`` with a straight segment of ``length_m[i]`` metres.
    """

    node_osmid: IntArray
    x: FloatArray
    y: FloatArray
    u: IntArray
    v: IntArray
    length_m: FloatArray
    way_id: IntArray
    highway: npt.NDArray[np.object_]
    crs: str

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return len(self.node_osmid)

    @property
    def n_edges(self) -> int:
        """Number of (undirected) edges."""
        return len(self.u)


def walk_overpass_filter() -> str:
    """Return :data:`WALK_EXCLUDE` as an Overpass QL way filter (osmnx's syntax).

    Examples
    --------
    >>> walk_overpass_filter().startswith('["highway"]["area"!~"yes"]["access"!~"private"]')
    True
    """
    return '["highway"]' + "".join(f'["{k}"!~"{v}"]' for k, v in WALK_EXCLUDE.items())


def is_walkable(tags: dict[str, str]) -> bool:
    """Tell whether a highway way's tags pass the walk filter.

    Examples
    --------
    >>> is_walkable({"highway": "footway"}), is_walkable({"highway": "motorway"})
    (True, False)
    >>> is_walkable({"highway": "service", "service": "private"})
    False
    """
    if "highway" not in tags:
        return False
    return not any(
        key in tags and pattern.search(tags[key]) for key, pattern in _WALK_EXCLUDE_RE.items()
    )


def build_walk_network(
    ways: HighwayWays, *, crs: str, clip: BaseGeometry | None = None
) -> WalkNetwork:
    """Build the walking network from highway ways.

    Parameters
    ----------
    ways
        Highway ways from :func:`lifecircle.io.read_osm`.
    crs
        Metric CRS for the network (e.g. ``"EPSG:32651"``, UTM 51N).
    clip
        Optional WGS-84 polygon: edges with neither end inside are dropped
        (edges crossing it are kept whole, like osmnx's ``truncate_by_edge``).

    Returns
    -------
    WalkNetwork
    """
    n_ways = len(ways)
    tag_of_way, distinct_tags = _distinct_tags(ways.tags)
    keep_way = np.array([is_walkable(t) for t in distinct_tags], dtype=bool)[tag_of_way]
    counts = np.diff(ways.offsets)
    way_of_pos = np.repeat(np.arange(n_ways), counts)
    last_pos = ways.offsets[1:] - 1
    is_last = np.zeros(len(ways.node_ids), dtype=bool)
    is_last[last_pos[counts > 0]] = True
    start = np.flatnonzero(~is_last & keep_way[way_of_pos]) if n_ways else np.array([], int)
    end = start + 1
    if clip is not None and len(start):
        inside = shapely.contains_xy(clip, ways.lon, ways.lat)
        start_mask = inside[start] | inside[end]
        start, end = start[start_mask], end[start_mask]
    u_id, v_id = ways.node_ids[start], ways.node_ids[end]
    not_loop = u_id != v_id
    start, end, u_id, v_id = start[not_loop], end[not_loop], u_id[not_loop], v_id[not_loop]
    if len(start) == 0:
        msg = "no walkable street inside the area: check the boundary, --bbox or the OSM extract"
        raise NoDataError(msg)

    all_ids = np.concatenate([u_id, v_id])
    all_pos = np.concatenate([start, end])
    node_osmid, first, inverse = np.unique(all_ids, return_index=True, return_inverse=True)
    node_pos = all_pos[first]
    transformer = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    x, y = transformer.transform(ways.lon[node_pos], ways.lat[node_pos])
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    m = len(start)
    u = inverse[:m].astype(np.int64)
    v = inverse[m:].astype(np.int64)
    highway_of_tags = np.empty(len(distinct_tags), dtype=object)
    highway_of_tags[:] = [t.get("highway", "") for t in distinct_tags]
    highway_of_way = highway_of_tags[tag_of_way]
    net = WalkNetwork(
        node_osmid=node_osmid.astype(np.int64),
        x=x,
        y=y,
        u=u,
        v=v,
        length_m=np.hypot(x[u] - x[v], y[u] - y[v]),
        way_id=ways.way_ids[way_of_pos[start]],
        highway=highway_of_way[way_of_pos[start]],
        crs=crs,
    )
    logger.info(
        "walking network: %d nodes, %d edges, %.1f km",
        net.n_nodes,
        net.n_edges,
        net.length_m.sum() / 1000,
    )
    return net


def _distinct_tags(tags: list[dict[str, str]]) -> tuple[IntArray, list[dict[str, str]]]:
    """Group ways by their tag dict object (read_osm shares one dict per distinct tags).

    Returns the group of each way and one dict per group, so the walk filter runs
    once per distinct dict rather than once per way (two million ways, a few
    hundred dicts). Equal dicts that are distinct objects just form separate groups.
    """
    if not tags:
        return np.zeros(0, dtype=np.int64), []
    ids = np.fromiter(map(id, tags), dtype=np.uint64, count=len(tags))
    _, first, group = np.unique(ids, return_index=True, return_inverse=True)
    return group.astype(np.int64).reshape(-1), [tags[i] for i in first.tolist()]


def network_csr(net: WalkNetwork) -> sp.csr_matrix:
    """Return the symmetric sparse adjacency matrix, weights in metres.

    Parallel edges between the same two nodes keep the shortest length (a
    scipy sparse matrix would otherwise *sum* duplicates). Zero-length edges
    stay explicit entries, which scipy's csgraph routines treat as edges.

    """
    cached = _derived(net, "csr")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    rows = np.concatenate([net.u, net.v])
    cols = np.concatenate([net.v, net.u])
    weights = np.concatenate([net.length_m, net.length_m])
    rows, cols, weights = min_per_pair(rows, cols, weights)
    indptr = np.zeros(net.n_nodes + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=net.n_nodes), out=indptr[1:])
    csr = sp.csr_matrix((weights, cols, indptr), shape=(net.n_nodes, net.n_nodes))
    _remember(net, "csr", csr)
    return csr


def _derived(net: WalkNetwork, name: str) -> Any:
    """Return what :func:`_remember` stored on `net` under `name`, if its arrays are unchanged.

    The CSR matrix and the component labels are needed by several stages (snapping,
    routing, the network summary); at two million nodes each costs seconds, so they are
    computed once per network object. The stored value is tied to the identity of the
    ``u``, ``v`` and ``length_m`` arrays: a network with replaced arrays recomputes it.
    """
    store = net.__dict__.get("_derived", {})
    hit = store.get(name)
    if hit is None or hit[0] != (id(net.u), id(net.v), id(net.length_m), net.n_nodes):
        return None
    return hit[1]


def _remember(net: WalkNetwork, name: str, value: Any) -> Any:
    store = net.__dict__.setdefault("_derived", {})
    store[name] = ((id(net.u), id(net.v), id(net.length_m), net.n_nodes), value)
    return value


def min_per_pair(
    rows: IntArray, cols: IntArray, weights: FloatArray
) -> tuple[IntArray, IntArray, FloatArray]:
    """Keep the smallest weight of each (row, col) pair, sorted by row then column.

    Examples
    --------
    >>> r, c, w = min_per_pair(np.array([0, 0, 1]), np.array([1, 1, 0]), np.array([5.0, 3.0, 2.0]))
    >>> r.tolist(), c.tolist(), w.tolist()
    ([0, 1], [1, 0], [3.0, 2.0])
    """
    if len(rows) == 0:
        return rows, cols, weights
    n_cols = int(cols.max()) + 1
    if int(rows.max()) >= np.iinfo(np.int64).max // n_cols:  # pragma: no cover - ids > 3e9
        order = np.lexsort((weights, cols, rows))
        rows, cols, weights = rows[order], cols[order], weights[order]
        first = np.ones(len(rows), dtype=bool)
        first[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
        return rows[first], cols[first], weights[first]
    # one int64 key, one unstable sort (5x faster than sorting by key and weight), then the
    # smallest weight of each run of equal keys (fmin: a NaN weight loses, as it sorted last)
    key = rows.astype(np.int64) * n_cols + cols
    order = np.argsort(key)
    key = key[order]
    first = np.ones(len(key), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    starts = np.flatnonzero(first)
    sorted_w = weights[order]
    best = sorted_w[starts] if len(starts) == len(key) else np.fmin.reduceat(sorted_w, starts)
    return rows[order][starts], cols[order][starts], best


def component_labels(net: WalkNetwork) -> IntArray:
    """Return the connected-component label of every node (0 = the longest component)."""
    cached = _derived(net, "components")
    if cached is not None:
        return cached.copy()  # type: ignore[no-any-return]
    from scipy.sparse.csgraph import connected_components  # 60 ms: a cached run has the labels

    _, labels = connected_components(network_csr(net), directed=False)
    length_by_label = np.bincount(labels[net.u], weights=net.length_m)
    rank = np.empty(len(length_by_label), dtype=np.int64)
    rank[np.argsort(-length_by_label, kind="stable")] = np.arange(len(length_by_label))
    return _remember(net, "components", rank[labels]).copy()  # type: ignore[no-any-return]


def component_lengths_m(net: WalkNetwork, labels: IntArray) -> FloatArray:
    """Return the total street length of each component label."""
    counts = np.bincount(labels[net.u], weights=net.length_m, minlength=int(labels.max()) + 1)
    return np.asarray(counts, dtype=np.float64)


def summarize_network(net: WalkNetwork) -> dict[str, Any]:
    """Count nodes, edges, kilometres and components.

    Returns
    -------
    dict
        ``nodes``, ``edges``, ``length_km``, ``components`` and
        ``largest_component_share`` (of street length).
    """
    labels = component_labels(net)
    lengths = component_lengths_m(net, labels)
    total = float(net.length_m.sum())
    return {
        "nodes": net.n_nodes,
        "edges": net.n_edges,
        "length_km": round(total / 1000, 3),
        "components": len(lengths),
        "largest_component_share": round(float(lengths[0]) / total, 4) if total else 0.0,
    }


def analysed_extent(net: WalkNetwork, *, cell_m: float = 200.0) -> gpd.GeoDataFrame:
    """Return the area the network covers: the grid cells holding a node or an edge midpoint.

    Parameters
    ----------
    net
        The network.
    cell_m
        Grid cell size in metres.

    Returns
    -------
    GeoDataFrame
        One (multi)polygon in the network's CRS with ``area_km2``.
    """
    px = np.concatenate([net.x, (net.x[net.u] + net.x[net.v]) / 2])
    py = np.concatenate([net.y, (net.y[net.u] + net.y[net.v]) / 2])
    cx, cy = np.floor(px / cell_m).astype(np.int64), np.floor(py / cell_m).astype(np.int64)
    span = int(cy.max() - cy.min()) + 1 if len(cy) else 1
    key = np.unique(
        (cx - (cx.min() if len(cx) else 0)) * span + (cy - (cy.min() if len(cy) else 0))
    )
    cells = np.column_stack(  # the same cells, sorted by x then y, as np.unique(axis=0) gives
        [key // span + (cx.min() if len(cx) else 0), key % span + (cy.min() if len(cy) else 0)]
    ).astype(np.float64)
    boxes = shapely.box(
        cells[:, 0] * cell_m,
        cells[:, 1] * cell_m,
        (cells[:, 0] + 1) * cell_m,
        (cells[:, 1] + 1) * cell_m,
    )
    union = shapely.coverage_union_all(boxes)
    return gpd.GeoDataFrame(
        {"area_km2": [len(cells) * cell_m * cell_m / 1e6], "cell_m": [cell_m]},
        geometry=[union],
        crs=net.crs,
    )


def edge_lines(net: WalkNetwork) -> npt.NDArray[np.object_]:
    """Return the edges as an array of shapely LineStrings (network CRS)."""
    start = np.column_stack([net.x[net.u], net.y[net.u]])
    end = np.column_stack([net.x[net.v], net.y[net.v]])
    return np.asarray(shapely.linestrings(np.stack([start, end], axis=1)), dtype=object)


def network_to_gdfs(net: WalkNetwork) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Convert the network to node and edge GeoDataFrames (the cached form).

    Returns
    -------
    nodes, edges
        ``nodes`` indexed by OSM id with ``x``, ``y``; ``edges`` with ``u``,
        ``v`` (OSM node ids), ``osmid`` (way id), ``highway``, ``length_m``.
    """
    nodes = gpd.GeoDataFrame(
        {"osmid": net.node_osmid, "x": net.x, "y": net.y},
        geometry=shapely.points(net.x, net.y),
        crs=net.crs,
    )
    edges = gpd.GeoDataFrame(
        {
            "u": net.node_osmid[net.u],
            "v": net.node_osmid[net.v],
            "osmid": net.way_id,
            "highway": net.highway.astype(str),
            "length_m": net.length_m,
        },
        geometry=edge_lines(net),
        crs=net.crs,
    )
    return nodes, edges


def network_tables(net: WalkNetwork) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Convert the network to plain node and edge tables (the cached form, no geometry).

    Returns
    -------
    nodes, edges
        ``nodes`` (sorted by ``osmid``) with ``osmid``, ``x``, ``y`` (metres, float64);
        ``edges`` with ``u``, ``v`` (node positions, int32), ``osmid`` (way id),
        ``highway`` (categorical) and ``length_m`` (float64). Nothing is rounded:
        :func:`network_from_tables` gives back the same arrays.
    """
    pos_type = np.int32 if net.n_nodes < np.iinfo(np.int32).max else np.int64
    nodes = pd.DataFrame({"osmid": net.node_osmid, "x": net.x, "y": net.y})
    edges = pd.DataFrame(
        {
            "u": net.u.astype(pos_type),
            "v": net.v.astype(pos_type),
            "osmid": net.way_id,
            "highway": pd.Categorical(net.highway),  # object array of str: no <U copy
            "length_m": net.length_m,
        }
    )
    return nodes, edges


def network_from_tables(nodes: pd.DataFrame, edges: pd.DataFrame, *, crs: str) -> WalkNetwork:
    """Rebuild a :class:`WalkNetwork` from :func:`network_tables` output."""
    node_osmid = nodes["osmid"].to_numpy(dtype=np.int64)
    if len(node_osmid) > 1 and np.any(np.diff(node_osmid) <= 0):
        msg = "cached network nodes are not sorted by OSM id: rebuild the cache (--rebuild)"
        raise NoDataError(msg)
    u = edges["u"].to_numpy(dtype=np.int64)
    v = edges["v"].to_numpy(dtype=np.int64)
    if len(u) and (min(u.min(), v.min()) < 0 or max(u.max(), v.max()) >= len(node_osmid)):
        msg = "cached network edges name nodes that do not exist: rebuild the cache (--rebuild)"
        raise NoDataError(msg)
    return WalkNetwork(
        node_osmid=node_osmid,
        x=nodes["x"].to_numpy(dtype=np.float64),
        y=nodes["y"].to_numpy(dtype=np.float64),
        u=u,
        v=v,
        length_m=edges["length_m"].to_numpy(dtype=np.float64),
        way_id=edges["osmid"].to_numpy(dtype=np.int64),
        highway=np.asarray(edges["highway"].astype(object).to_numpy(), dtype=object),
        crs=crs,
    )


def derived_tables(net: WalkNetwork) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return what :func:`network_csr` and :func:`component_labels` derive, as tables.

    The processed cache stores them so a run from the cache does not sort four
    million entries and label the components again (about 0.9 s at 1.9 million
    nodes); :func:`attach_derived` gives them back to a network.

    Returns
    -------
    per_node, adjacency
        ``per_node``: ``component`` (label, 0 = the longest) and ``degree``
        (entries in the node's row of the matrix), one row per node;
        ``adjacency``: ``col`` and ``length_m``, the matrix entries row by row.
    """
    csr = network_csr(net)
    col_type = np.int32 if net.n_nodes < np.iinfo(np.int32).max else np.int64
    per_node = pd.DataFrame(
        {"component": component_labels(net), "degree": np.diff(csr.indptr).astype(np.int64)}
    )
    adjacency = pd.DataFrame(
        {"col": csr.indices.astype(col_type), "length_m": csr.data.astype(np.float64)}
    )
    return per_node, adjacency


def attach_derived(net: WalkNetwork, per_node: pd.DataFrame, adjacency: pd.DataFrame) -> None:
    """Make `net` answer :func:`network_csr` and :func:`component_labels` from cached tables.

    Raises
    ------
    NoDataError
        If the tables do not fit the network (a damaged cache).
    """
    degree = per_node["degree"].to_numpy(dtype=np.int64)
    cols = adjacency["col"].to_numpy(dtype=np.int64)
    n = net.n_nodes
    labels = per_node["component"].to_numpy(dtype=np.int64)
    fits = (
        len(per_node) == n
        and int(degree.sum()) == len(cols)
        and (len(cols) == 0 or (int(cols.min()) >= 0 and int(cols.max()) < n))
        and bool(np.all(labels[net.u] == labels[net.v]))  # a street joins one component
    )
    if not fits:
        msg = "the cached network matrix does not fit the cached network: rebuild (--rebuild)"
        raise NoDataError(msg)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(degree, out=indptr[1:])
    weights = adjacency["length_m"].to_numpy(dtype=np.float64)
    _remember(net, "csr", sp.csr_matrix((weights, cols, indptr), shape=(n, n)))
    _remember(net, "components", labels)


def network_from_gdfs(nodes: gpd.GeoDataFrame, edges: gpd.GeoDataFrame) -> WalkNetwork:
    """Rebuild a :class:`WalkNetwork` from :func:`network_to_gdfs` output."""
    if nodes.crs is None or not nodes.crs.is_projected:
        msg = f"network nodes must have a projected CRS, got {nodes.crs!r}"
        raise NoDataError(msg)
    node_osmid = nodes["osmid"].to_numpy(dtype=np.int64)
    order = np.argsort(node_osmid)
    node_osmid = node_osmid[order]
    u = np.searchsorted(node_osmid, edges["u"].to_numpy(dtype=np.int64))
    v = np.searchsorted(node_osmid, edges["v"].to_numpy(dtype=np.int64))
    return WalkNetwork(
        node_osmid=node_osmid,
        x=nodes["x"].to_numpy(dtype=np.float64)[order],
        y=nodes["y"].to_numpy(dtype=np.float64)[order],
        u=u.astype(np.int64),
        v=v.astype(np.int64),
        length_m=edges["length_m"].to_numpy(dtype=np.float64),
        way_id=edges["osmid"].to_numpy(dtype=np.int64),
        highway=edges["highway"].to_numpy(dtype=object),
        crs=nodes.crs.to_string(),
    )


def network_to_graph(net: WalkNetwork) -> nx.MultiDiGraph[int]:
    """Convert to an osmnx-style ``MultiDiGraph`` (both directions of every edge).

    Nodes are OSM ids with ``x``/``y`` in the network CRS; edges carry
    ``osmid`` (way id), ``highway``, ``length`` (metres), ``oneway=False`` and
    ``reversed``. The graph's ``crs`` attribute makes it usable with
    ``osmnx.graph_to_gdfs`` and ``osmnx.distance.nearest_nodes``.
    """
    import networkx as nx

    G: nx.MultiDiGraph[int] = nx.MultiDiGraph(crs=net.crs, simplified=False)
    G.add_nodes_from(
        (int(i), {"x": float(x), "y": float(y)})
        for i, x, y in zip(net.node_osmid, net.x, net.y, strict=True)
    )
    ids = net.node_osmid
    for reverse in (False, True):
        a, b = (net.v, net.u) if reverse else (net.u, net.v)
        G.add_edges_from(
            (
                int(ids[i]),
                int(ids[j]),
                {
                    "osmid": int(w),
                    "highway": str(h),
                    "length": float(length),
                    "oneway": False,
                    "reversed": reverse,
                },
            )
            for i, j, w, h, length in zip(a, b, net.way_id, net.highway, net.length_m, strict=True)
        )
    return G


def edges_frame(net: WalkNetwork) -> pd.DataFrame:
    """Return the edges as a plain DataFrame of positions (for array work)."""
    return pd.DataFrame({"u": net.u, "v": net.v, "length_m": net.length_m})
