"""Siting, step 1 and 2: candidate sites and the sparse coverage matrix.

:func:`candidate_points` puts candidate sites along the routable streets;
:func:`coverage_matrix` finds which candidate would cover which (still
uncovered) resident, from one *bounded* search per candidate with exactly
the edge-snapped distances of :meth:`lifecircle.access.Router.distances`.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import dijkstra
from shapely.geometry.base import BaseGeometry

from lifecircle.access import Router
from lifecircle.errors import InputError
from lifecircle.network import WalkNetwork, min_per_pair

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: dense distance cells (candidates x nodes) held at once by :func:`coverage_matrix`
DEFAULT_BLOCK_CELLS = 8_000_000

__all__ = ["DEFAULT_BLOCK_CELLS", "candidate_points", "coverage_matrix"]


# --------------------------------------------------------------------------- candidates


def candidate_points(
    net: WalkNetwork,
    routable: npt.NDArray[np.bool_],
    *,
    spacing_m: float,
    extent: BaseGeometry | None = None,
) -> gpd.GeoDataFrame:
    """Return candidate sites along the routable streets, about every `spacing_m`.

    Each routable edge of length ``L`` gets ``n = ceil(L / spacing_m)``
    points at ``(k + 0.5) * L / n`` from its ``u`` end, so every street
    position lies within ``spacing_m / 2`` of a candidate on its own edge
    and an edge shorter than `spacing_m` gets its midpoint. The order is
    deterministic (edge order, then distance along).

    Parameters
    ----------
    net
        The network.
    routable
        Boolean mask over edges (:func:`lifecircle.snapping.routable_edges`).
    spacing_m
        Spacing along the street, metres (> 0).
    extent
        Keep only candidates inside (or on the border of) this polygon,
        in the network's CRS.

    Returns
    -------
    GeoDataFrame
        ``candidate`` (0..n-1), ``edge``, ``along_m`` and point geometry in
        the network's CRS.

    Examples
    --------
    >>> import numpy as np
    >>> from lifecircle.network import WalkNetwork, min_per_pair
    >>> net = WalkNetwork(np.arange(2), np.array([0.0, 250.0]), np.zeros(2), np.array([0]),
    ...     np.array([1]), np.array([250.0]), np.zeros(1, int),
    ...     np.array(["footway"], dtype=object), "EPSG:32651")
    >>> candidate_points(net, np.array([True]), spacing_m=100)["along_m"].round(3).tolist()
    [41.667, 125.0, 208.333]
    """
    if not (np.isfinite(spacing_m) and spacing_m > 0):
        msg = f"--candidate-spacing-m must be a finite number > 0, got {spacing_m}"
        raise InputError(msg)
    edges = np.flatnonzero(routable)
    length = net.length_m[edges]
    count = np.maximum(1, np.ceil(length / spacing_m)).astype(np.int64)
    edge = np.repeat(edges, count)
    k = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
    n = np.repeat(count, count)
    t = (k + 0.5) / n
    along = t * net.length_m[edge]
    x = net.x[net.u[edge]] + t * (net.x[net.v[edge]] - net.x[net.u[edge]])
    y = net.y[net.u[edge]] + t * (net.y[net.v[edge]] - net.y[net.u[edge]])
    if extent is not None:
        inside = shapely.intersects_xy(extent, x, y)
        edge, along, x, y = edge[inside], along[inside], x[inside], y[inside]
    return gpd.GeoDataFrame(
        {"candidate": np.arange(len(edge)), "edge": edge, "along_m": along},
        geometry=shapely.points(x, y),
        crs=net.crs,
    )


# --------------------------------------------------------------------------- coverage matrix


def _group_by(keys: IntArray, size: int) -> tuple[IntArray, IntArray]:
    """Return ``order`` and ``ptr`` so that ``order[ptr[k]:ptr[k+1]]`` are the rows with key k."""
    order = np.argsort(keys, kind="stable")
    ptr = np.concatenate([[0], np.cumsum(np.bincount(keys, minlength=size))])
    return order.astype(np.int64), ptr.astype(np.int64)


def _expand(keys: IntArray, order: IntArray, ptr: IntArray) -> tuple[IntArray, IntArray]:
    """Return, for each item of `keys`, the rows grouped under its key: (item, row) pairs."""
    count = ptr[keys + 1] - ptr[keys]
    item = np.repeat(np.arange(len(keys)), count)
    first = np.repeat(ptr[keys] - (np.cumsum(count) - count), count)
    return item, order[first + np.arange(len(item))]


@dataclass(frozen=True)
class _Demand:
    """Reachable demand points on their edges (positions into the original rows).

    ``ends`` holds, for the ``u`` then the ``v`` end of the demand edges,
    the demand grouped by node (``_group_by``) and the leg to that end.
    """

    rows: IntArray
    edge: IntArray
    along: FloatArray
    offset: FloatArray
    ends: tuple[tuple[IntArray, IntArray, FloatArray], ...]

    @classmethod
    def of(cls, net: WalkNetwork, snap: pd.DataFrame) -> _Demand:
        e = snap["edge"].to_numpy()
        ok = np.flatnonzero(e >= 0)
        along = snap["along_m"].to_numpy(dtype=float)[ok]
        eo = e[ok].astype(np.int64)
        leg_v = net.length_m[eo] - along  # as Router.point_distances computes it
        ends = tuple(
            (*_group_by(node[eo].astype(np.int64), net.n_nodes), leg)
            for node, leg in ((net.u, along), (net.v, leg_v))
        )
        offset = snap["offset_m"].to_numpy(dtype=float)[ok]
        return cls(ok, eo, along, offset, ends)


def _via_nodes(
    dem: _Demand, ci: IntArray, node: IntArray, d: FloatArray, threshold_m: float
) -> tuple[IntArray, IntArray]:
    """Return (source, demand position) pairs covered through an end of the demand's edge.

    ``(ci, node, d)`` are the reached nodes of each source and their
    distances. Same arithmetic as :meth:`Router.point_distances`:
    ``offset + (along + d[u])`` and ``offset + ((length - along) + d[v])``.
    """
    rows, cols = [], []
    for order, ptr, leg in dem.ends:
        item, j = _expand(node, order, ptr)
        keep = dem.offset[j] + (leg[j] + d[item]) <= threshold_m
        rows.append(ci[item[keep]])
        cols.append(j[keep])
    return np.concatenate(rows).astype(np.int64), np.concatenate(cols).astype(np.int64)


def _stretch(net: WalkNetwork) -> float:
    """Return max(1, straight distance / length) over the edges.

    Walking d metres stays within ``d * stretch`` metres (straight line) of
    the start; 1 whenever edge lengths are the lengths of their geometry.
    """
    straight = np.hypot(net.x[net.u] - net.x[net.v], net.y[net.u] - net.y[net.v])
    ok = net.length_m > 0
    ratio = straight[ok] / net.length_m[ok]
    big = bool((straight[~ok] > 0).any())
    return np.inf if big else max(1.0, float(ratio.max()) if len(ratio) else 1.0)


def _blocks(net: WalkNetwork, edge: IntArray, cell_m: float) -> list[IntArray]:
    """Group candidates (on edges `edge`) by square cells of `cell_m` of their edge's midpoint."""
    mx = 0.5 * (net.x[net.u[edge]] + net.x[net.v[edge]])
    my = 0.5 * (net.y[net.u[edge]] + net.y[net.v[edge]])
    gx = np.floor((mx - mx.min()) / cell_m).astype(np.int64) if len(edge) else mx.astype(np.int64)
    gy = np.floor((my - my.min()) / cell_m).astype(np.int64) if len(edge) else gx
    key = gy * (int(gx.max()) + 1 if len(gx) else 1) + gx
    order = np.argsort(key, kind="stable")
    cuts = np.flatnonzero(np.diff(key[order])) + 1
    return [np.sort(b) for b in np.split(order, cuts)]


@dataclass(frozen=True)
class _Nodes:
    """Network nodes sorted by x, to crop the network to a box without scanning every node."""

    order: IntArray
    x_sorted: FloatArray

    @classmethod
    def of(cls, net: WalkNetwork) -> _Nodes:
        order = np.argsort(net.x, kind="stable").astype(np.int64)
        return cls(order, net.x[order])


def _crop(
    router: Router, nodes: _Nodes, edge: IntArray, margin_m: float
) -> tuple[IntArray, sp.csr_matrix]:
    """Return the nodes within `margin_m` (bounding box) of the ends of `edge`, and the subgraph."""
    net = router.net
    ex = np.concatenate([net.x[net.u[edge]], net.x[net.v[edge]]])
    ey = np.concatenate([net.y[net.u[edge]], net.y[net.v[edge]]])
    lo = np.searchsorted(nodes.x_sorted, ex.min() - margin_m, "left")
    hi = np.searchsorted(nodes.x_sorted, ex.max() + margin_m, "right")
    strip = nodes.order[lo:hi]
    y = net.y[strip]
    keep = np.sort(strip[(y >= ey.min() - margin_m) & (y <= ey.max() + margin_m)])
    return keep, sp.csr_matrix(router.csr[keep][:, keep])


def _reach(
    router: Router,
    cand: pd.DataFrame,
    src: IntArray,
    nodes: _Nodes,
    *,
    threshold_m: float,
    margin_m: float,
    block_cells: int,
) -> tuple[IntArray, IntArray, FloatArray]:
    """Bounded searches from candidates `src` on the network cropped to their reach.

    The crop (:func:`_crop`) holds every node within `threshold_m` of
    walking from a candidate when `margin_m` is `threshold_m` times the
    network's :func:`_stretch`. Each candidate is a virtual source node
    joined to both ends of its edge, as in :meth:`Router.with_sources`.
    Returns (index into `src`, node, distance) of the reached nodes.
    """
    net = router.net
    e = cand["edge"].to_numpy()[src].astype(np.int64)
    keep, sub = _crop(router, nodes, e, margin_m)
    along = cand["along_m"].to_numpy(dtype=float)[src]
    offset = cand["offset_m"].to_numpy(dtype=float)[src]
    n, out = len(keep), []
    step = max(1, block_cells // max(n, 1))
    for lo in range(0, len(src), step):
        which = np.arange(lo, min(lo + step, len(src)))
        k = len(which)
        r, c, w = min_per_pair(
            np.concatenate([which, which]) - lo,
            np.searchsorted(keep, np.concatenate([net.u[e[which]], net.v[e[which]]])),
            np.concatenate(
                [
                    offset[which] + along[which],
                    offset[which] + (net.length_m[e[which]] - along[which]),
                ]
            ),
        )
        indptr = np.concatenate(
            [sub.indptr, sub.indptr[-1] + np.cumsum(np.bincount(r, minlength=k))]
        )
        graph = sp.csr_matrix(
            (np.concatenate([sub.data, w]), np.concatenate([sub.indices, c]), indptr),
            shape=(n + k, n + k),
        )
        dist = np.asarray(
            dijkstra(graph, directed=True, indices=n + np.arange(k), limit=threshold_m)
        )
        ci, node = np.nonzero(np.isfinite(dist[:, :n]))
        out.append((which[ci], keep[node], dist[ci, node]))
    return tuple(np.concatenate([o[i] for o in out]) for i in range(3))  # type: ignore[return-value]


def _same_edge(
    net: WalkNetwork, dem: _Demand, cand: pd.DataFrame, threshold_m: float
) -> tuple[IntArray, IntArray]:
    """Return (candidate, demand position) pairs covered by the direct walk along a shared edge."""
    e = cand["edge"].to_numpy().astype(np.int64)
    s_along = cand["along_m"].to_numpy(dtype=float)
    s_off = cand["offset_m"].to_numpy(dtype=float)
    order, ptr = _group_by(dem.edge, net.n_edges)
    item, j = _expand(e, order, ptr)
    direct = dem.offset[j] + s_off[item] + np.abs(dem.along[j] - s_along[item])
    keep = direct <= threshold_m
    return item[keep], j[keep]


def coverage_matrix(
    router: Router,
    candidates_snap: pd.DataFrame,
    demand_snap: pd.DataFrame,
    *,
    threshold_m: float,
    block_cells: int = DEFAULT_BLOCK_CELLS,
) -> sp.csr_matrix:
    """Return which candidate covers which demand point (candidates x demand, bool).

    One bounded search per candidate (scipy's Dijkstra with
    ``limit=threshold_m``, candidates in blocks of virtual source nodes from
    :meth:`Router.with_sources` with ``separate=True``). Entry ``(i, j)`` is
    True exactly when ``Router.distances(demand.iloc[[j]],
    candidates.iloc[[i]], limit_m=threshold_m) <= threshold_m``: the
    demand's access leg and the walk to an end of its edge, the network,
    then the candidate's part of its edge and access leg, or the direct
    walk along a shared edge (the same floating-point operations).

    Parameters
    ----------
    router
        The prepared network.
    candidates_snap, demand_snap
        Snapped points (``edge``, ``along_m``, ``offset_m``); rows with
        ``edge == -1`` get an empty row / column.
    threshold_m
        Walking threshold, metres.
    block_cells
        Dense distance cells (candidates x nodes) computed at once.

    Returns
    -------
    scipy.sparse.csr_matrix
        Boolean, ``len(candidates_snap) x len(demand_snap)``.
    """
    net = router.net
    shape = (len(candidates_snap), len(demand_snap))
    c_rows = np.flatnonzero(candidates_snap["edge"].to_numpy() >= 0)
    cand = candidates_snap.iloc[c_rows]
    dem = _Demand.of(net, demand_snap)
    rows, cols = [], []
    if len(c_rows) and len(dem.rows):
        margin, nodes = threshold_m * _stretch(net), _Nodes.of(net)
        for src in _blocks(net, cand["edge"].to_numpy().astype(np.int64), max(threshold_m, 100.0)):
            ci, node, d = _reach(
                router,
                cand,
                src,
                nodes,
                threshold_m=threshold_m,
                margin_m=margin,
                block_cells=block_cells,
            )
            r, c = _via_nodes(dem, ci, node, d, threshold_m)
            rows.append(src[r])
            cols.append(c)
        r, c = _same_edge(net, dem, cand, threshold_m)
        rows.append(r)
        cols.append(c)
    i = c_rows[np.concatenate(rows)] if rows else np.zeros(0, dtype=np.int64)
    j = dem.rows[np.concatenate(cols)] if cols else np.zeros(0, dtype=np.int64)
    counts = sp.csr_matrix((np.ones(len(i), dtype=np.int32), (i, j)), shape=shape)
    counts.sum_duplicates()
    return sp.csr_matrix(counts, dtype=bool)
