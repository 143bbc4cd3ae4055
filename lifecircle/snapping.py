"""Attach points (and facility outlines) to the routable walking network.

Every edge is a straight segment, so the projection is exact: the snapped
position is the closest point of the nearest edge, ``offset_m`` is the
straight-line access leg from the geometry to it (walked, so it counts), and
``along_m`` is the distance from the edge's ``u`` end.

*Routable* edges are those of every component except *fragments*: a
component with less than ``fragment_max_m`` metres of street (1,000 m by
default) is a fragment, unless it is the longest component. Points snap to
the nearest routable edge, as users of osmnx (``retain_all=False``), pandana
or r5 expect; a fragment edge nearer than that is skipped and reported. A
point is *unreachable* only when no routable edge lies within
``max_snap_m``.
"""

from __future__ import annotations

import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from lifecircle.errors import CRSError, InputError
from lifecircle.network import WalkNetwork, component_labels, component_lengths_m, edge_lines

DEFAULT_MAX_SNAP_M = 300.0
DEFAULT_FRAGMENT_MAX_M = 1000.0

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class EdgeIndex:
    """A spatial index over a subset of the network's edges.

    ``positions[i]`` is the network edge position of the tree's item ``i``.
    """

    lines: npt.NDArray[np.object_]
    positions: npt.NDArray[np.int64]
    tree: shapely.STRtree

    @classmethod
    def build(
        cls,
        net: WalkNetwork,
        mask: npt.NDArray[np.bool_] | None = None,
        *,
        lines: npt.NDArray[np.object_] | None = None,
    ) -> EdgeIndex:
        """Index the edges where `mask` is True (all edges by default).

        `lines` are the network's :func:`edge_lines` when the caller has them already
        (building two million LineStrings costs seconds; two indexes can share them).
        """
        lines = edge_lines(net) if lines is None else lines
        positions = np.arange(net.n_edges, dtype=np.int64)
        if mask is not None:
            positions = positions[mask]
        return cls(lines=lines, positions=positions, tree=shapely.STRtree(lines[positions]))


def routable_edges(
    net: WalkNetwork, *, fragment_max_m: float = DEFAULT_FRAGMENT_MAX_M
) -> npt.NDArray[np.bool_]:
    """Return which edges are routable (not on a fragment).

    Parameters
    ----------
    net
        The network.
    fragment_max_m
        A component with less street than this is a fragment, except the
        longest component.

    Examples
    --------
    >>> import numpy as np
    >>> from lifecircle.network import WalkNetwork
    >>> net = WalkNetwork(np.arange(4), np.array([0.0, 2000, 0, 50]), np.zeros(4),
    ...     np.array([0, 2]), np.array([1, 3]), np.array([2000.0, 50.0]), np.zeros(2, int),
    ...     np.array(["footway"] * 2, dtype=object), "EPSG:32651")
    >>> routable_edges(net).tolist()
    [True, False]
    """
    if net.n_edges == 0:
        return np.zeros(0, dtype=bool)
    return _routable_from_labels(net, component_labels(net), fragment_max_m)


def _routable_from_labels(
    net: WalkNetwork, labels: npt.NDArray[np.int64], fragment_max_m: float
) -> npt.NDArray[np.bool_]:
    lengths = component_lengths_m(net, labels)
    fragment = lengths < fragment_max_m
    fragment[0] = False  # the longest component is never a fragment
    return np.asarray(~fragment[labels[net.u]], dtype=bool)


class SnapIndex:
    """What snapping needs from one network, built once and shared by every layer of a run.

    ``labels`` (component of each node) and ``routable`` (edge mask, :func:`routable_edges`)
    are computed at once; the edge lines and the routable and fragment
    :class:`EdgeIndex` trees only when a layer must be searched (:meth:`indexes`), since at
    two million edges they cost seconds and a run from the processed cache may not need them.
    """

    def __init__(self, net: WalkNetwork, *, fragment_max_m: float = DEFAULT_FRAGMENT_MAX_M):
        self.net = net
        self.fragment_max_m = float(fragment_max_m)
        self.labels: npt.NDArray[np.int64] = (
            component_labels(net) if net.n_edges else np.zeros(net.n_nodes, dtype=np.int64)
        )
        self.routable: npt.NDArray[np.bool_] = (
            _routable_from_labels(net, self.labels, fragment_max_m)
            if net.n_edges
            else np.zeros(0, dtype=bool)
        )
        self._indexes: tuple[EdgeIndex, EdgeIndex] | None = None

    def indexes(self) -> tuple[EdgeIndex, EdgeIndex]:
        """Return the ``(routable, fragment)`` edge indexes (built once, over one set of lines)."""
        if self._indexes is None:
            lines = edge_lines(self.net)
            self._indexes = (
                EdgeIndex.build(self.net, self.routable, lines=lines),
                EdgeIndex.build(self.net, ~self.routable, lines=lines),
            )
        return self._indexes


def _check_crs(points: gpd.GeoDataFrame, net: WalkNetwork) -> None:
    if points.crs is None or not points.crs.equals(net.crs):
        msg = f"points must be in the network CRS {net.crs}, got {points.crs!r}: use to_crs"
        raise CRSError(msg)


def _project(
    geoms: npt.NDArray[np.object_], e_idx: npt.NDArray[np.int64], net: WalkNetwork
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Return ``along_m``, ``offset_m`` and the leg's start (x, y) on each geometry.

    A point is projected onto its edge; a line or polygon is joined to its
    edge by the shortest line between them (0 m where they touch).
    """
    ax, ay = net.x[net.u[e_idx]], net.y[net.u[e_idx]]
    bx, by = net.x[net.v[e_idx]], net.y[net.v[e_idx]]
    n = len(geoms)
    gx, gy = np.empty(n), np.empty(n)  # the geometry's side of the access leg
    is_point = shapely.get_type_id(geoms) == 0
    gx[is_point], gy[is_point] = shapely.get_x(geoms[is_point]), shapely.get_y(geoms[is_point])
    px, py = gx.copy(), gy.copy()  # the position projected onto the edge
    other = ~is_point
    if other.any():
        segs = shapely.linestrings(
            np.stack([np.column_stack([ax, ay]), np.column_stack([bx, by])], axis=1)[other]
        )
        leg = shapely.shortest_line(geoms[other], segs)
        near, on_edge = shapely.get_point(leg, 0), shapely.get_point(leg, 1)
        gx[other], gy[other] = shapely.get_x(near), shapely.get_y(near)
        px[other], py[other] = shapely.get_x(on_edge), shapely.get_y(on_edge)
    dx, dy = bx - ax, by - ay
    seg2 = dx * dx + dy * dy
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(seg2 > 0, ((px - ax) * dx + (py - ay) * dy) / seg2, 0.0)
    t = np.clip(t, 0.0, 1.0)
    along = t * net.length_m[e_idx]
    offset = np.hypot(gx - (ax + t * dx), gy - (ay + t * dy))
    return along, offset, gx, gy


SPATIAL_ORDER_MIN = 10_000


def spatial_order(geoms: npt.NDArray[np.object_]) -> npt.NDArray[np.int64]:
    """Return an order of `geoms` along a Hilbert curve (identity for small or empty input).

    Each nearest-edge search is independent of the others, so the order changes no
    result; searching neighbours one after another keeps the tree's nodes in the CPU
    cache (600k residents: about 30% less time than in grid-row order).
    """
    n = len(geoms)
    if n < SPATIAL_ORDER_MIN or bool((shapely.is_missing(geoms) | shapely.is_empty(geoms)).any()):
        return np.arange(n, dtype=np.int64)
    key = gpd.GeoSeries(geoms).hilbert_distance(level=16).to_numpy()
    return np.asarray(np.argsort(key, kind="stable"), dtype=np.int64)


def nearest_within(
    tree: shapely.STRtree, geoms: npt.NDArray[np.object_], max_distance_m: float
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Return ``(geometry, tree item)`` positions of the nearest item within `max_distance_m`.

    The same pairs as ``tree.query_nearest(geoms, max_distance=max_distance_m,
    all_matches=False)``, faster: there, `max_distance` only pre-screens each geometry with
    an envelope query (which in a dense city visits hundreds of edges per point, a third
    of the time) and then drops the pairs farther than it; the nearest-item search itself
    is the same. Here the search runs unscreened and the pairs with a distance above
    `max_distance_m` are dropped after, by the same ``<=`` test on the same GEOS distance.

    Each geometry's search is independent of the others and GEOS releases the GIL, so
    from :data:`PARALLEL_MIN` geometries on, consecutive blocks (neighbours, when `geoms`
    are in :func:`spatial_order`) are searched by :func:`search_threads` threads at once.
    """
    n = len(geoms)
    threads = search_threads() if n >= PARALLEL_MIN else 1
    bounds = np.linspace(0, n, threads + 1).astype(np.int64)
    blocks = [(int(a), int(b)) for a, b in itertools.pairwise(bounds.tolist())]

    def search(block: tuple[int, int]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        start, stop = block
        (g, t), dist = tree.query_nearest(
            geoms[start:stop], return_distance=True, all_matches=False
        )
        keep = dist <= max_distance_m
        return np.asarray(g[keep], dtype=np.int64) + start, np.asarray(t[keep], dtype=np.int64)

    if threads == 1:
        return search((0, n))
    with ThreadPoolExecutor(max_workers=threads) as pool:
        parts = list(pool.map(search, blocks))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


PARALLEL_MIN = 20_000
"""Fewer geometries than this are searched by one thread (threads cost more than they save)."""


def search_threads() -> int:
    """Return how many threads search nearest edges: the usable CPUs, at most 2.

    Two, as the isochrones use by default: the analysis runs beside other work (batch
    workers, other areas), and the searches are a small share of a run.
    """
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform
        usable = os.cpu_count() or 1
    return max(1, min(2, usable))


def snap_geometries(
    geoms: npt.NDArray[np.object_],
    net: WalkNetwork,
    index: EdgeIndex,
    *,
    max_snap_m: float = DEFAULT_MAX_SNAP_M,
) -> pd.DataFrame:
    """Snap geometries (points, lines, polygons) to the nearest indexed edge.

    Parameters
    ----------
    geoms
        Geometries in the network's CRS; a line or polygon is reached from
        its point nearest to the street.
    net
        The network.
    index
        The edges allowed (:meth:`EdgeIndex.build`).
    max_snap_m
        Geometries farther than this from every indexed edge get ``edge = -1``.

    Returns
    -------
    DataFrame
        ``edge`` (network position, -1 if none within `max_snap_m`),
        ``along_m``, ``offset_m`` (NaN if none), and ``leg_x``/``leg_y``,
        where the access leg leaves the geometry; in the order of `geoms`.
    """
    if not np.isfinite(max_snap_m) or max_snap_m <= 0:
        msg = f"--max-snap-m must be a finite number > 0, got {max_snap_m}"
        raise InputError(msg)
    n = len(geoms)
    edge = np.full(n, -1, dtype=np.int64)
    along, offset, leg_x, leg_y = (np.full(n, np.nan) for _ in range(4))
    if n and len(index.positions):
        order = spatial_order(geoms)
        g_idx, t_idx = nearest_within(index.tree, geoms[order], max_snap_m)
        g_idx = order[g_idx]
        e_idx = index.positions[t_idx]
        a, o, lx, ly = _project(geoms[g_idx], e_idx, net)
        edge[g_idx], along[g_idx], offset[g_idx] = e_idx, a, o
        leg_x[g_idx], leg_y[g_idx] = lx, ly
    return pd.DataFrame(
        {"edge": edge, "along_m": along, "offset_m": offset, "leg_x": leg_x, "leg_y": leg_y}
    )


def outline_crossings(
    geoms: npt.NDArray[np.object_], net: WalkNetwork, index: EdgeIndex
) -> pd.DataFrame:
    """Return where indexed edges cross or touch facility outlines (lines).

    A footway that enters a campus reaches the facility where it crosses
    the outline, whatever street lies nearest: each crossing is an access
    point with a 0 m leg. Points are ignored.

    Returns
    -------
    DataFrame
        ``item`` (position in `geoms`), ``edge``, ``along_m``, ``offset_m``
        (0), ``leg_x``, ``leg_y``; one row per distinct crossing.
    """
    columns = ["item", "edge", "along_m", "offset_m", "leg_x", "leg_y"]
    lines = np.flatnonzero(shapely.get_type_id(geoms) != 0)
    if not len(lines) or not len(index.positions):
        return pd.DataFrame({c: pd.Series(dtype=float) for c in columns})
    g_idx, t_idx = index.tree.query(geoms[lines], predicate="intersects")
    item, edge = lines[g_idx], index.positions[t_idx]
    inter = shapely.intersection(index.lines[edge], geoms[item])
    coords, which = shapely.get_coordinates(inter, return_index=True)
    item, edge = item[which], edge[which]
    ax, ay = net.x[net.u[edge]], net.y[net.u[edge]]
    along = np.minimum(np.hypot(coords[:, 0] - ax, coords[:, 1] - ay), net.length_m[edge])
    out = pd.DataFrame(
        {
            "item": item,
            "edge": edge,
            "along_m": along,
            "offset_m": 0.0,
            "leg_x": coords[:, 0],
            "leg_y": coords[:, 1],
        }
    )
    out = out.loc[~out[["item", "edge"]].assign(a=out["along_m"].round(3)).duplicated()]
    return out.sort_values(["item", "edge", "along_m"], kind="stable").reset_index(drop=True)


def snap_points(
    points: gpd.GeoDataFrame,
    net: WalkNetwork,
    *,
    max_snap_m: float = DEFAULT_MAX_SNAP_M,
    index: EdgeIndex | None = None,
) -> pd.DataFrame:
    """Snap a layer to the nearest edge of `index` (default: every edge).

    Parameters
    ----------
    points
        Points (or lines, polygons) in the network's CRS.
    net
        The network.
    max_snap_m
        Points farther than this from every edge are unreachable
        (``edge = -1``), not silently snapped.
    index
        The edges to snap to, e.g. ``EdgeIndex.build(net, routable_edges(net))``.

    Returns
    -------
    DataFrame
        Aligned to ``points.index``: ``edge`` (position, -1 if unreachable),
        ``along_m``, ``offset_m`` (NaN if unreachable).
    """
    _check_crs(points, net)
    index = index if index is not None else EdgeIndex.build(net)
    out = snap_geometries(points.geometry.to_numpy(), net, index, max_snap_m=max_snap_m)
    out.index = points.index
    return out


def snap_to_routable(
    points: gpd.GeoDataFrame,
    net: WalkNetwork,
    *,
    routable: npt.NDArray[np.bool_],
    max_snap_m: float = DEFAULT_MAX_SNAP_M,
    indexes: tuple[EdgeIndex, EdgeIndex] | None = None,
) -> pd.DataFrame:
    """Snap to the nearest routable edge and report what a snap to any edge would have done.

    Parameters
    ----------
    points
        Points (or facility outlines) in the network's CRS.
    net
        The network.
    routable
        Boolean mask over edges (:func:`routable_edges`).
    max_snap_m
        Snap limit in metres.
    indexes
        Pre-built ``(routable, fragment)`` edge indexes, to reuse over layers.

    Returns
    -------
    DataFrame
        Aligned to ``points.index``: ``edge``, ``along_m``, ``offset_m`` of
        the routable snap; ``moved_off_fragment`` (the nearest edge lies on
        a fragment) and ``extra_access_m`` (the extra straight leg that costs,
        0 when not moved; NaN when unreachable).
    """
    _check_crs(points, net)
    if indexes is None:
        lines = edge_lines(net)
        indexes = (
            EdgeIndex.build(net, routable, lines=lines),
            EdgeIndex.build(net, ~routable, lines=lines),
        )
    idx_routable, idx_fragments = indexes
    geoms = points.geometry.to_numpy()
    snap = snap_geometries(geoms, net, idx_routable, max_snap_m=max_snap_m)
    offset = snap["offset_m"].to_numpy()
    # a point moved off a fragment when a fragment edge lies nearer than its routable edge:
    # only the points with a fragment edge within their routable offset are searched again
    near = _fragment_candidates(geoms, offset, idx_fragments)
    frag = snap_geometries(geoms[near], net, idx_fragments, max_snap_m=max_snap_m)
    frag_offset = np.full(len(geoms), np.nan)
    frag_offset[near] = frag["offset_m"].to_numpy()
    moved = np.zeros(len(geoms), dtype=bool)
    moved[near] = frag["edge"].to_numpy() >= 0
    moved[moved] = frag_offset[moved] < offset[moved]
    snap["moved_off_fragment"] = moved
    snap["extra_access_m"] = np.where(moved, offset - frag_offset, 0.0)
    snap.loc[snap["edge"] < 0, "extra_access_m"] = np.nan
    snap.index = points.index
    return snap


# GEOS distances and the projection in :func:`_project` may differ in the last bits:
# the candidate search reaches this far beyond the routable offset
_CANDIDATE_SLACK_M = 1e-6


def _fragment_candidates(
    geoms: npt.NDArray[np.object_], offset: FloatArray, idx_fragments: EdgeIndex
) -> npt.NDArray[np.int64]:
    """Return the positions of `geoms` with a fragment edge within their routable `offset`.

    Only those can have moved off a fragment (nearest fragment edge nearer than the
    routable one); every other point's fragment search is skipped. Unsnapped
    points (NaN offset) never moved.
    """
    ok = np.flatnonzero(np.isfinite(offset))
    if not len(ok) or not len(idx_fragments.positions):
        return np.zeros(0, dtype=np.int64)
    reach = offset[ok] * (1.0 + 1e-9) + _CANDIDATE_SLACK_M
    g_idx, _ = idx_fragments.tree.query(geoms[ok], predicate="dwithin", distance=reach)
    return np.asarray(ok[np.unique(g_idx)], dtype=np.int64)


def snapped_xy(snap: pd.DataFrame, net: WalkNetwork) -> tuple[FloatArray, FloatArray]:
    """Return the coordinates of snapped positions on their edges (NaN when unsnapped)."""
    e = snap["edge"].to_numpy()
    ok = e >= 0
    x = np.full(len(e), np.nan)
    y = np.full(len(e), np.nan)
    eo = e[ok]
    length = net.length_m[eo]
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(length > 0, snap["along_m"].to_numpy()[ok] / length, 0.0)
    x[ok] = net.x[net.u[eo]] + t * (net.x[net.v[eo]] - net.x[net.u[eo]])
    y[ok] = net.y[net.u[eo]] + t * (net.y[net.v[eo]] - net.y[net.u[eo]])
    return x, y


STATUS_OK = "ok"
STATUS_UNREACHABLE = "unreachable"


@dataclass
class SnappedArea:
    """The snap stage's result.

    ``residents`` and ``access`` hold the snap columns of
    :func:`snap_to_routable` (``access`` also ``facility_id``);
    ``residents["status"]`` is ``ok`` or ``unreachable``;
    ``facility_reachable`` tells, per facility id, whether any of its access
    points lies on a component where residents live.
    """

    residents: pd.DataFrame
    access: pd.DataFrame
    facility_reachable: pd.Series
    routable: npt.NDArray[np.bool_]


def snap_residents(
    net: WalkNetwork,
    residents: gpd.GeoDataFrame,
    *,
    routable: npt.NDArray[np.bool_] | None = None,
    max_snap_m: float = DEFAULT_MAX_SNAP_M,
    fragment_max_m: float = DEFAULT_FRAGMENT_MAX_M,
    indexes: tuple[EdgeIndex, EdgeIndex] | None = None,
    index: SnapIndex | None = None,
) -> pd.DataFrame:
    """Snap residents to the routable network: :func:`snap_to_routable` plus ``status``.

    This is the residents' part of :func:`snap_area`; the processed cache stores its
    result for the default limits so that a run from the cache skips it. `index`
    (built with `fragment_max_m`) supplies the routable mask and the edge indexes when
    the caller snaps other layers too.
    """
    if index is not None:
        routable, indexes = index.routable, index.indexes()
    elif routable is None:
        routable = routable_edges(net, fragment_max_m=fragment_max_m)
    res = snap_to_routable(
        residents, net, routable=routable, max_snap_m=max_snap_m, indexes=indexes
    )
    res["status"] = np.where(res["edge"].to_numpy() >= 0, STATUS_OK, STATUS_UNREACHABLE)
    return res


def snap_access(
    access: gpd.GeoDataFrame, index: SnapIndex, *, max_snap_m: float = DEFAULT_MAX_SNAP_M
) -> pd.DataFrame:
    """Snap facility access geometries: the nearest routable edge of each, plus outline crossings.

    Parameters
    ----------
    access
        Access geometries with a ``facility_id`` column, in the network CRS.
    index
        The network's :class:`SnapIndex`.
    max_snap_m
        Snap limit of the facilities (metres).

    Returns
    -------
    DataFrame
        One row per geometry (its :func:`snap_to_routable` columns), in the order of
        `access`, then one per :func:`outline_crossings` (0 m leg, never moved); with
        ``facility_id`` and ``item`` (the geometry's position in `access`).
    """
    net = index.net
    indexes = index.indexes()
    acc = snap_to_routable(
        access, net, routable=index.routable, max_snap_m=max_snap_m, indexes=indexes
    )
    acc.index = pd.RangeIndex(len(acc))
    acc["facility_id"] = access["facility_id"].to_numpy()
    acc["item"] = np.arange(len(acc), dtype=np.int64)
    cross = outline_crossings(access.geometry.to_numpy(), net, indexes[0])
    if len(cross):
        cross["facility_id"] = access["facility_id"].to_numpy()[cross["item"].to_numpy()]
        cross["moved_off_fragment"] = False
        cross["extra_access_m"] = 0.0
        acc = pd.concat([acc, cross[list(acc.columns)]], ignore_index=True)
    return acc


@dataclass(frozen=True)
class AccessSnap:
    """A facility access layer and its :func:`snap_access` (the processed cache keeps one)."""

    layer: gpd.GeoDataFrame
    table: pd.DataFrame


def _access_keys(access: gpd.GeoDataFrame) -> list[tuple[object, bytes]]:
    """One hashable key per access row: its facility id and exact geometry (WKB)."""
    wkb = shapely.to_wkb(access.geometry.to_numpy())
    return list(zip(access["facility_id"].to_numpy().tolist(), wkb.tolist(), strict=True))


def reuse_access_snap(
    access: gpd.GeoDataFrame, stored_layer: gpd.GeoDataFrame, stored: pd.DataFrame
) -> tuple[pd.DataFrame, npt.NDArray[np.int64]]:
    """Take the snap of `access` rows from a stored :func:`snap_access` of `stored_layer`.

    A row is taken when `stored_layer` holds the same facility id with the same
    geometry (bit for bit): a row's snap does not depend on the other rows.

    Returns
    -------
    tuple
        The :func:`snap_access` rows of the rows found (``item`` renumbered to
        positions in `access`, nearest-edge rows first), and the positions of the
        rows not found.
    """
    first: dict[tuple[object, bytes], int] = {}
    for i, key in enumerate(_access_keys(stored_layer)):
        first.setdefault(key, i)
    where = np.array([first.get(k, -1) for k in _access_keys(access)], dtype=np.int64)
    found = np.flatnonzero(where >= 0)
    items = stored["item"].to_numpy()
    order = np.argsort(items, kind="stable")  # the rows of each stored item, in stored order
    lo = np.searchsorted(items[order], where[found], side="left")
    count = np.searchsorted(items[order], where[found], side="right") - lo
    take = order[np.repeat(lo - np.cumsum(count) + count, count) + np.arange(count.sum())]
    rows = stored.iloc[take].copy()
    rows["item"] = np.repeat(found, count)
    is_nearest = ~rows["item"].duplicated().to_numpy()
    rows = pd.concat([rows.loc[is_nearest], rows.loc[~is_nearest]])
    return rows, np.flatnonzero(where < 0)


def _combine_access(parts: list[pd.DataFrame], n_items: int) -> pd.DataFrame:
    """Order access snap rows as :func:`snap_access` of the whole layer gives them."""
    rows = pd.concat(parts, ignore_index=True)
    nearest = rows.loc[~rows["item"].duplicated()].sort_values("item")
    # the first row of an item is its nearest-edge row (snap_access lists those first)
    cross = rows.drop(index=nearest.index)
    cross = cross.sort_values(["item", "edge", "along_m"], kind="stable")
    if len(nearest) != n_items:  # pragma: no cover - every item has its nearest row
        msg = "access snap rows do not cover the layer"
        raise ValueError(msg)
    return pd.concat([nearest, cross], ignore_index=True)


def snap_area(
    net: WalkNetwork,
    residents: gpd.GeoDataFrame,
    access: gpd.GeoDataFrame,
    *,
    max_snap_m: float = DEFAULT_MAX_SNAP_M,
    fragment_max_m: float = DEFAULT_FRAGMENT_MAX_M,
    facility_max_snap_m: float | None = None,
    resident_snap: pd.DataFrame | None = None,
    access_snap: AccessSnap | None = None,
    index: SnapIndex | None = None,
) -> SnappedArea:
    """Snap residents and facility access geometries to the routable network.

    Parameters
    ----------
    net
        The network.
    residents
        Resident points in the network CRS.
    access
        Facility access geometries (points, outlines, entrances) with a
        ``facility_id`` column, in the network CRS. An outline is reached
        from its nearest routable edge and, with a 0 m leg, wherever a
        routable edge crosses it (:func:`outline_crossings`).
    max_snap_m
        Snap limit (metres).
    fragment_max_m
        Components with less street than this are fragments (never snapped to).
    facility_max_snap_m
        Snap limit of the facilities (default: `max_snap_m`).
    resident_snap
        The residents' snap computed before with the same network, residents,
        `max_snap_m` and `fragment_max_m` (:func:`snap_residents`, kept in the
        processed cache): used as it is instead of searching two million edges again.
    access_snap
        A stored :func:`snap_access` of an access layer made with the same network,
        facility limit and `fragment_max_m` (the processed cache keeps the default one).
        The rows of `access` found in it (same facility id and geometry) are taken from
        it; only the others are searched.
    index
        The network's :class:`SnapIndex` for `fragment_max_m`, when the caller has it.

    Returns
    -------
    SnappedArea
    """
    index = index if index is not None else SnapIndex(net, fragment_max_m=fragment_max_m)
    routable = index.routable
    if resident_snap is not None and resident_snap.index.equals(residents.index):
        res = resident_snap.copy()
    else:
        res = snap_residents(net, residents, max_snap_m=max_snap_m, index=index)
    fac_limit = max_snap_m if facility_max_snap_m is None else facility_max_snap_m
    acc = _snap_access_reusing(access, index, fac_limit, access_snap).drop(columns="item")
    labels = index.labels
    lived = np.zeros(int(labels.max()) + 1 if len(labels) else 0, dtype=bool)
    r_edge = res["edge"].to_numpy()
    lived[labels[net.u[r_edge[r_edge >= 0]]]] = True
    a_edge = acc["edge"].to_numpy()
    on_lived = np.zeros(len(a_edge), dtype=bool)
    on_lived[a_edge >= 0] = lived[labels[net.u[a_edge[a_edge >= 0]]]]
    reach = pd.Series(on_lived, index=acc.index).groupby(acc["facility_id"].to_numpy()).any()
    return SnappedArea(residents=res, access=acc, facility_reachable=reach, routable=routable)


def _snap_access_reusing(
    access: gpd.GeoDataFrame,
    index: SnapIndex,
    max_snap_m: float,
    stored: AccessSnap | None,
) -> pd.DataFrame:
    """:func:`snap_access` of `access`, taking what `stored` holds and searching the rest."""
    if stored is None:
        return snap_access(access, index, max_snap_m=max_snap_m)
    _check_crs(access, index.net)
    reused, missing = reuse_access_snap(access, stored.layer, stored.table)
    parts = [reused]
    if len(missing):
        fresh = snap_access(access.iloc[missing], index, max_snap_m=max_snap_m)
        fresh["item"] = missing[fresh["item"].to_numpy()]
        parts.append(fresh)
    return _combine_access(parts, len(access))


def snap_report(
    snapped: pd.DataFrame, weights: npt.NDArray[np.float64] | None = None
) -> dict[str, float | int | None]:
    """Summarise what snapping to the routable network changed.

    Returns
    -------
    dict
        ``moved_off_fragment`` (count), its ``weight`` (when `weights` are
        given), the median and largest ``extra_access_m`` of those moved, and
        the ``unreachable`` count.
    """
    moved = snapped["moved_off_fragment"].to_numpy(dtype=bool)
    extra = snapped["extra_access_m"].to_numpy(dtype=float)[moved]
    out: dict[str, float | int | None] = {
        "moved_off_fragment": int(moved.sum()),
        "extra_access_m_median": round(float(np.median(extra)), 1) if len(extra) else None,
        "extra_access_m_max": round(float(extra.max()), 1) if len(extra) else None,
        "unreachable": int((snapped["edge"].to_numpy() < 0).sum()),
    }
    if weights is not None:
        out["moved_weight"] = round(float(weights[moved].sum()), 3)
    return out
