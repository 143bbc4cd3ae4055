"""Attach points to the nearest network edge, at their projected position along it.

Every edge is a straight segment, so the projection is exact: the snapped
position is the closest point of the nearest edge, ``offset_m`` is the
straight-line access leg from the point to it (walked, so it counts), and
``along_m`` is the distance from the edge's ``u`` end.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from lifecircle.errors import CRSError
from lifecircle.network import WalkNetwork, edge_lines

DEFAULT_MAX_SNAP_M = 300.0


def snap_points(
    points: gpd.GeoDataFrame,
    net: WalkNetwork,
    *,
    max_snap_m: float = DEFAULT_MAX_SNAP_M,
    tree: shapely.STRtree | None = None,
) -> pd.DataFrame:
    """Snap points to their nearest edge.

    Parameters
    ----------
    points
        Points in the network's CRS.
    net
        The network.
    max_snap_m
        Points farther than this from every edge are unreachable
        (``edge = -1``), not silently snapped.
    tree
        Optional pre-built ``STRtree`` over :func:`edge_lines` (reuse it when
        snapping several layers).

    Returns
    -------
    DataFrame
        Aligned to ``points.index``: ``edge`` (position, -1 if unreachable),
        ``along_m``, ``offset_m`` (NaN if unreachable).
    """
    if points.crs is None or points.crs != net.crs:
        if points.crs is not None and points.crs.equals(net.crs):
            pass
        else:
            msg = f"points must be in the network CRS {net.crs}, got {points.crs!r}: use to_crs"
            raise CRSError(msg)
    geoms = points.geometry.to_numpy()
    n = len(geoms)
    edge = np.full(n, -1, dtype=np.int64)
    along = np.full(n, np.nan)
    offset = np.full(n, np.nan)
    if n and net.n_edges:
        tree = tree if tree is not None else shapely.STRtree(edge_lines(net))
        p_idx, e_idx = tree.query_nearest(geoms, max_distance=max_snap_m, all_matches=False)
        px, py = shapely.get_x(geoms[p_idx]), shapely.get_y(geoms[p_idx])
        ax, ay = net.x[net.u[e_idx]], net.y[net.u[e_idx]]
        bx, by = net.x[net.v[e_idx]], net.y[net.v[e_idx]]
        dx, dy = bx - ax, by - ay
        seg2 = dx * dx + dy * dy
        with np.errstate(invalid="ignore", divide="ignore"):
            t = np.where(seg2 > 0, ((px - ax) * dx + (py - ay) * dy) / seg2, 0.0)
        t = np.clip(t, 0.0, 1.0)
        edge[p_idx] = e_idx
        along[p_idx] = t * net.length_m[e_idx]
        offset[p_idx] = np.hypot(px - (ax + t * dx), py - (ay + t * dy))
    return pd.DataFrame({"edge": edge, "along_m": along, "offset_m": offset}, index=points.index)
