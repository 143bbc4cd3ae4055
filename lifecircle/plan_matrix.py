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
from lifecircle.network import WalkNetwork

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
    >>> from lifecircle.network import WalkNetwork
    >>> net = WalkNetwork(np.arange(2), np.array([0.0, 250.0]), np.zeros(2), np.array([0]),
    ...     np.array([1]), np.array([250.0]), np.zeros(1, int),
    ...     np.array(["footway"], dtype=object), "EPSG:32651")
    >>> candidate_points(net, np.array([True]), spacing_m=100)["along_m"].tolist()
    [41.666666666666664, 125.0, 208.33333333333331]
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
    """Reachable demand points on their edges (positions into the original rows)."""

    rows: IntArray
    edge: IntArray
    along: FloatArray
    offset: FloatArray
    leg_v: FloatArray  # length - along, as Router.point_distances computes it

    @classmethod
    def of(cls, net: WalkNetwork, snap: pd.DataFrame) -> _Demand:
        e = snap["edge"].to_numpy()
        ok = np.flatnonzero(e >= 0)
        along = snap["along_m"].to_numpy(dtype=float)[ok]
        eo = e[ok].astype(np.int64)
        return cls(
            ok, eo, along, snap["offset_m"].to_numpy(dtype=float)[ok], net.length_m[eo] - along
        )


def _via_nodes(
    net: WalkNetwork,
    dem: _Demand,
    dist: FloatArray,
    threshold_m: float,
) -> tuple[IntArray, IntArray]:
    """Return (row of `dist`, demand position) pairs covered through an end of the demand's edge.

    Same arithmetic as :meth:`Router.point_distances`:
    ``offset + (along + d[u])`` and ``offset + ((length - along) + d[v])``.
    """
    ci, node = np.nonzero(np.isfinite(dist))
    d = dist[ci, node]
    rows, cols = [], []
    for ends, leg in ((net.u, dem.along), (net.v, dem.leg_v)):
        order, ptr = _group_by(ends[dem.edge], net.n_nodes)
        item, j = _expand(node.astype(np.int64), order, ptr)
        keep = dem.offset[j] + (leg[j] + d[item]) <= threshold_m
        rows.append(ci[item[keep]])
        cols.append(j[keep])
    return np.concatenate(rows).astype(np.int64), np.concatenate(cols).astype(np.int64)


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
    n, shape = net.n_nodes, (len(candidates_snap), len(demand_snap))
    c_rows = np.flatnonzero(candidates_snap["edge"].to_numpy() >= 0)
    cand = candidates_snap.iloc[c_rows]
    dem = _Demand.of(net, demand_snap)
    rows, cols = [], []
    if len(c_rows) and len(dem.rows):
        block = max(1, min(len(c_rows), block_cells // n))
        for start in range(0, len(c_rows), block):
            src = np.arange(start, min(start + block, len(c_rows)))
            graph = router.with_sources(cand.iloc[src], separate=True)
            dist = dijkstra(
                graph, directed=True, indices=n + np.arange(len(src)), limit=threshold_m
            )
            r, c = _via_nodes(net, dem, np.asarray(dist)[:, :n], threshold_m)
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
