"""Where to build: siting new facilities on the walking network.

Three steps, all pure:

1. :func:`candidate_points` -- candidate sites along the routable streets.
2. :func:`coverage_matrix` -- which candidate would cover which (still
   uncovered) resident, as a sparse boolean matrix, from one *bounded*
   search per candidate with exactly the edge-snapped distances of
   :meth:`lifecircle.access.Router.distances`.
3. The location models on that matrix: maximal covering with ``p`` new
   sites (:func:`solve_max_covering`), the fewest sites reaching a covered
   weight (:func:`solve_fewest_sites`) and the coverage curve
   (:func:`coverage_curve`). Each runs a lazy greedy first (ties: lowest
   candidate index), then an exact integer program with HiGHS under a time
   limit, warm-started from the greedy (improved by 1-swaps) on a shrunk
   model (identical residents merged, dominated candidates dropped). The
   result always carries the proven bound and the gap: a solution that is
   not proven optimal says so.
"""

from __future__ import annotations

import heapq
import logging
import math
import time
from dataclasses import dataclass, field

import geopandas as gpd
import highspy
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

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolMatrix = sp.csr_matrix

#: dense distance cells (candidates x nodes) held at once by :func:`coverage_matrix`
DEFAULT_BLOCK_CELLS = 8_000_000
#: relative MIP gap at which HiGHS stops and calls a solution optimal
DEFAULT_MIP_REL_GAP = 1e-6
#: shrunk models with fewer matrix entries go straight from the greedy to HiGHS
SMALL_MODEL_NNZ = 50_000

#: relative tolerance (of the total weight) when comparing covered weights summed in other orders
WEIGHT_REL_TOL = 1e-9

STATUS_OPTIMAL = "optimal"
STATUS_TIME_LIMIT = "time_limit"
STATUS_INFEASIBLE_TARGET = "infeasible_target"
STATUS_GREEDY = "greedy"  # no MILP run (time limit 0): gap from the greedy bound


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


# --------------------------------------------------------------------------- model shrinking


@dataclass(frozen=True)
class ShrunkModel:
    """A covering instance reduced without changing any optimum.

    ``cover`` is kept candidates x merged demand columns; ``candidates`` the
    original index of each kept row (ascending); ``column_of`` maps each
    original demand column to its merged column (-1: no candidate covers
    it); ``unreachable_weight`` is the weight of those columns.
    """

    cover: sp.csr_matrix
    weight: FloatArray
    candidates: IntArray
    column_of: IntArray
    unreachable_weight: float

    @property
    def reachable_weight(self) -> float:
        """Weight that opening every candidate would cover."""
        return float(self.weight.sum())


def _check_model(cover: sp.csr_matrix, weight: FloatArray) -> None:
    if cover.shape[1] != len(weight):
        msg = (
            f"{len(weight)} weights for {cover.shape[1]} demand columns: pass one weight per column"
        )
        raise InputError(msg)
    if len(weight) and not (np.isfinite(weight).all() and (weight >= 0).all()):
        msg = "demand weights must be finite and >= 0: drop or fix the bad rows"
        raise InputError(msg)


def _merge_columns(
    cover: sp.csr_matrix, weight: FloatArray
) -> tuple[sp.csr_matrix, FloatArray, IntArray]:
    """Merge demand columns covered by the same candidates (weights summed, first-seen order)."""
    csc = sp.csc_matrix(cover, dtype=bool)
    csc.sort_indices()
    column_of = np.full(cover.shape[1], -1, dtype=np.int64)
    keys: dict[bytes, int] = {}
    for j in range(cover.shape[1]):
        rows = csc.indices[csc.indptr[j] : csc.indptr[j + 1]]
        if len(rows):
            column_of[j] = keys.setdefault(rows.tobytes(), len(keys))
    ok = column_of >= 0
    merged_w = np.bincount(column_of[ok], weights=weight[ok], minlength=len(keys))
    nz_row, nz_col = cover.nonzero()
    merged = sp.csr_matrix(
        (np.ones(len(nz_row), dtype=np.int32), (nz_row, column_of[nz_col])),
        shape=(cover.shape[0], len(keys)),
    )
    merged.sum_duplicates()
    return sp.csr_matrix(merged, dtype=bool), merged_w.astype(np.float64), column_of


def _dominated(cover: sp.csr_matrix, *, block_rows: int = 2000) -> npt.NDArray[np.bool_]:
    """Return which candidates cover nothing or a subset of another's cover.

    Of candidates with identical covers the lowest index stays.
    """
    size = np.diff(cover.indptr).astype(np.int64)
    out: npt.NDArray[np.bool_] = size == 0
    c = sp.csr_matrix(cover, dtype=np.int32)
    ct = sp.csr_matrix(c.T)
    for start in range(0, cover.shape[0], block_rows):
        shared = sp.coo_matrix(c[start : start + block_rows] @ ct)
        i, k = shared.row + start, shared.col
        subset = (shared.data == size[i]) & (i != k)
        larger = (size[k] > size[i]) | ((size[k] == size[i]) & (k < i))
        out[i[subset & larger]] = True
    return np.asarray(out, dtype=bool)


def shrink_model(cover: sp.csr_matrix, weight: FloatArray) -> ShrunkModel:
    """Merge identical demand columns and drop dominated candidates.

    Parameters
    ----------
    cover
        Candidates x demand, bool (:func:`coverage_matrix`).
    weight
        One weight per demand column (>= 0).

    Returns
    -------
    ShrunkModel
        Every optimum of the shrunk model is an optimum of the original
        (a dominated candidate can always be replaced by its dominator).
    """
    weight = np.asarray(weight, dtype=np.float64)
    _check_model(cover, weight)
    merged, merged_w, column_of = _merge_columns(sp.csr_matrix(cover), weight)
    keep = np.flatnonzero(~_dominated(merged))
    return ShrunkModel(
        cover=sp.csr_matrix(merged[keep]),
        weight=merged_w,
        candidates=keep.astype(np.int64),
        column_of=column_of,
        unreachable_weight=float(weight[column_of < 0].sum()),
    )


# --------------------------------------------------------------------------- greedy


def _row(cover: sp.csr_matrix, i: int) -> IntArray:
    return np.asarray(cover.indices[cover.indptr[i] : cover.indptr[i + 1]], dtype=np.int64)


def greedy_cover(
    cover: sp.csr_matrix,
    weight: FloatArray,
    *,
    max_sites: int | None = None,
    target_weight: float | None = None,
) -> tuple[IntArray, FloatArray]:
    """Add sites one at a time, each covering the most uncovered weight (lazy evaluation).

    Ties go to the lowest candidate index. Stops after `max_sites`, once
    `target_weight` is covered, or when no site adds weight.

    Returns
    -------
    tuple
        The sites in the order chosen and the weight each newly covers.
    """
    weight = np.asarray(weight, dtype=np.float64)
    covered = np.zeros(cover.shape[1], dtype=bool)
    gains0 = np.asarray(cover @ weight, dtype=np.float64).ravel()
    heap = [(-float(g), i) for i, g in enumerate(gains0) if g > 0]
    heapq.heapify(heap)
    sites: list[int] = []
    gains: list[float] = []
    total = 0.0
    limit = cover.shape[0] if max_sites is None else max_sites
    while heap and len(sites) < limit:
        if target_weight is not None and total >= target_weight - _tol(weight):
            break
        _, i = heapq.heappop(heap)
        cols = _row(cover, i)
        fresh = cols[~covered[cols]]
        g = float(weight[fresh].sum())
        if g <= 0:
            continue
        if heap and (-g, i) > heap[0]:
            heapq.heappush(heap, (-g, i))
            continue
        sites.append(i)
        gains.append(g)
        covered[fresh] = True
        total += g
    return np.array(sites, dtype=np.int64), np.array(gains, dtype=np.float64)


def rank_sites(
    cover: sp.csr_matrix, weight: FloatArray, sites: IntArray
) -> tuple[IntArray, FloatArray]:
    """Order `sites` greedily (most newly covered weight first, ties: lowest index)."""
    sub = sp.csr_matrix(cover[np.sort(sites)])
    order, gains = greedy_cover(sub, weight)
    chosen = np.sort(sites)[order]
    rest = np.setdiff1d(sites, chosen)  # sites adding nothing go last
    return np.concatenate([chosen, rest]), np.concatenate([gains, np.zeros(len(rest))])


def covered_weight(cover: sp.csr_matrix, weight: FloatArray, sites: IntArray) -> float:
    """Return the weight of demand columns covered by at least one of `sites`."""
    return float(weight[covered_columns(cover, sites)].sum())


def covered_columns(cover: sp.csr_matrix, sites: IntArray) -> npt.NDArray[np.bool_]:
    """Return which demand columns at least one of `sites` covers."""
    out = np.zeros(cover.shape[1], dtype=bool)
    if len(sites):
        out[sp.csr_matrix(cover[np.asarray(sites)]).indices] = True
    return out


def greedy_bound(cover: sp.csr_matrix, weight: FloatArray, sites: IntArray, p: int) -> float:
    """Upper bound on the best covered weight with `p` sites, from a solution `sites`.

    Submodularity: ``OPT_p <= f(S) + sum of the p largest marginal gains
    w.r.t. S`` (Nemhauser, Wolsey & Fisher 1978; Minoux's on-line bound).
    """
    covered = covered_columns(cover, sites)
    marginal = np.asarray(cover @ np.where(covered, 0.0, weight), dtype=np.float64).ravel()
    top = np.sort(marginal)[::-1][:p]
    return float(weight[covered].sum() + top.sum())


def swap_improve(
    cover: sp.csr_matrix, weight: FloatArray, sites: IntArray, *, seconds: float
) -> IntArray:
    """Improve a maximal-covering solution by best 1-swaps (one site out, one in) until none helps.

    Ties: the lowest entering candidate, then the earliest leaving site.
    """
    sites = np.array(sites, dtype=np.int64)
    if not len(sites):
        return sites
    deadline = time.perf_counter() + seconds
    eps = 1e-12 * max(float(weight.sum()), 1.0)
    as_float = sp.csr_matrix(cover, dtype=np.float64)
    while time.perf_counter() < deadline:
        chosen = sp.csr_matrix(as_float[sites])
        count = np.asarray(chosen.sum(axis=0)).ravel()
        free = np.where(count == 0, weight, 0.0)
        once = np.where(count == 1, weight, 0.0)
        gain_in = np.asarray(as_float @ free).ravel()
        loss_out = np.asarray(chosen @ once).ravel()
        overlap = (sp.csr_matrix(as_float.multiply(once)) @ chosen.T).toarray()
        delta = gain_in[:, None] + overlap - loss_out[None, :]
        delta[sites, :] = -np.inf
        k, s = np.unravel_index(int(np.argmax(delta)), delta.shape)
        if delta[k, s] <= eps:
            break
        sites[s] = k
    return sites


def lagrangian_bound(
    cover: sp.csr_matrix,
    weight: FloatArray,
    p: int,
    *,
    incumbent: float,
    seconds: float,
    rel_tol: float = 1e-6,
) -> tuple[float, IntArray, float]:
    """Bound maximal covering by Lagrangian relaxation of the cover rows (subgradient method).

    Relaxing ``y_j <= sum_{i covers j} x_i`` with multipliers
    ``0 <= lambda_j <= w_j`` gives, for every lambda, the upper bound
    ``sum_j (w_j - lambda_j) + (sum of the p largest sum_{j in cover(i)} lambda_j)``
    (as tight as the LP relaxation at best; Galvao & ReVelle 1996). Each
    relaxed solution (those p candidates) is also a feasible siting.

    Parameters
    ----------
    cover, weight
        The model.
    p
        Number of sites.
    incumbent
        Best known covered weight (Polyak step target).
    seconds
        Time budget.
    rel_tol
        Stop once bound and best solution are this close (relative).

    Returns
    -------
    tuple
        The best bound, the best relaxed solution's sites and its covered weight.
    """
    deadline = time.perf_counter() + seconds
    as_float = sp.csr_matrix(cover, dtype=np.float64)
    lam = 0.5 * weight
    best_bound, best_sites, best_value = np.inf, np.zeros(0, dtype=np.int64), -np.inf
    mu, stall = 2.0, 0
    while time.perf_counter() < deadline and mu > 1e-4:
        score = np.asarray(as_float @ lam).ravel()
        top = np.sort(np.argsort(-score, kind="stable")[:p]).astype(np.int64)
        bound = float(np.maximum(weight - lam, 0.0).sum() + score[top].sum())
        count = np.bincount(sp.csr_matrix(cover[top]).indices, minlength=cover.shape[1])
        value = float(weight[count > 0].sum())
        if value > best_value:
            best_value, best_sites = value, top
        if bound < best_bound - 1e-9 * abs(best_bound if np.isfinite(best_bound) else 1.0):
            best_bound, stall = bound, 0
        else:
            stall += 1
            if stall >= 20:
                mu, stall = mu / 2, 0
        target = max(incumbent, best_value)
        if best_bound - target <= rel_tol * max(abs(best_bound), 1e-12):
            break
        grad = count - (weight > lam)  # dL/dlambda
        norm = float(np.dot(grad, grad))
        if norm == 0:
            break
        lam = np.clip(lam - mu * (bound - target) / norm * grad, 0.0, weight)
    return best_bound, best_sites, best_value


# --------------------------------------------------------------------------- exact model


@dataclass(frozen=True)
class _MilpResult:
    sites: IntArray  # rows of the shrunk model
    objective: float
    bound: float
    optimal: bool
    ran: bool


def _milp(
    model: ShrunkModel,
    *,
    sites_limit: int | None,
    target_weight: float | None,
    start: IntArray,
    time_limit_s: float,
    mip_rel_gap: float,
) -> _MilpResult:
    """Solve the covering MILP with HiGHS, warm-started from `start`.

    Variables: ``x_i`` binary (open candidate ``i``), ``y_j`` in [0, 1]
    (column ``j`` covered); rows ``y_j - sum_{i covers j} x_i <= 0``.
    Maximal covering: max ``w.y`` with ``sum x <= p``; fewest sites: min
    ``sum x`` with ``w.y >= T``.
    """
    n_c, n_d = model.cover.shape
    ci, cj = model.cover.nonzero()
    if sites_limit is not None:  # last row: sum x <= p
        last_col, last_val = np.arange(n_c), np.ones(n_c)
        row_lo = np.concatenate([np.full(n_d, -np.inf), [-np.inf]])
        row_hi = np.concatenate([np.zeros(n_d), [float(sites_limit)]])
        cost = np.concatenate([np.zeros(n_c), model.weight])
    else:  # last row: w.y >= T
        last_col, last_val = n_c + np.arange(n_d), model.weight
        row_lo = np.concatenate([np.full(n_d, -np.inf), [float(target_weight or 0.0)]])
        row_hi = np.concatenate([np.zeros(n_d), [np.inf]])
        cost = np.concatenate([np.ones(n_c), np.zeros(n_d)])
    a = sp.csr_matrix(
        (
            np.concatenate([-np.ones(len(ci)), np.ones(n_d), last_val]),
            (
                np.concatenate([cj, np.arange(n_d), np.full(len(last_col), n_d)]),
                np.concatenate([ci, n_c + np.arange(n_d), last_col]),
            ),
        ),
        shape=(n_d + 1, n_c + n_d),
    )
    h = highspy.Highs()  # type: ignore[no-untyped-call]
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", max(float(time_limit_s), 0.01))
    h.setOptionValue("mip_rel_gap", float(mip_rel_gap))
    if model.cover.nnz > SMALL_MODEL_NNZ:
        # big models: shrink_model has done the reductions that matter, and the
        # interior point method reaches the root bound far sooner than the simplex
        h.setOptionValue("presolve", "off")
        h.setOptionValue("mip_lp_solver", "ipm")
    inf = h.getInfinity()
    h.addVars(n_c + n_d, np.zeros(n_c + n_d), np.ones(n_c + n_d))
    h.changeColsCost(n_c + n_d, np.arange(n_c + n_d, dtype=np.int32), cost)
    h.changeColsIntegrality(
        n_c, np.arange(n_c, dtype=np.int32), np.full(n_c, highspy.HighsVarType.kInteger)
    )
    a.sort_indices()
    h.addRows(
        n_d + 1,
        np.where(np.isinf(row_lo), -inf, row_lo),
        np.where(np.isinf(row_hi), inf, row_hi),
        a.nnz,
        a.indptr[:-1].astype(np.int32),
        a.indices.astype(np.int32),
        a.data.astype(np.float64),
    )
    if sites_limit is not None:
        h.changeObjectiveSense(highspy.ObjSense.kMaximize)
    warm = highspy.HighsSolution()
    x0 = np.zeros(n_c)
    x0[start] = 1.0
    warm.col_value = list(np.concatenate([x0, covered_columns(model.cover, start).astype(float)]))
    h.setSolution(warm)
    h.run()
    status = h.getModelStatus()
    info = h.getInfo()
    values = np.asarray(h.getSolution().col_value, dtype=np.float64)
    ok = len(values) == n_c + n_d and info.primal_solution_status == 2
    sites = np.flatnonzero(values[:n_c] > 0.5) if ok else np.zeros(0, dtype=np.int64)
    return _MilpResult(
        sites=sites.astype(np.int64),
        objective=float(info.objective_function_value),
        bound=float(info.mip_dual_bound),
        optimal=status == highspy.HighsModelStatus.kOptimal,
        ran=ok,
    )


# --------------------------------------------------------------------------- solutions


@dataclass(frozen=True)
class PlanSolution:
    """A siting solution on the original candidate and demand indices.

    Attributes
    ----------
    sites
        Candidate indices, ranked: each adds the most newly covered weight
        given the ones before it (ties: lowest index).
    gains
        Weight newly covered by each ranked site (sums to `covered_weight`).
    covered_weight
        Demand weight covered by the sites.
    objective
        Maximal covering: `covered_weight`; fewest sites: the number of sites.
    bound
        Proven bound on the objective: an upper bound on the covered weight
        (maximal covering) or a lower bound on the number of sites.
    gap
        ``|bound - objective| / max(|bound|, |objective|)``; 0 when proven
        optimal (up to HiGHS's ``mip_rel_gap``).
    status
        ``optimal`` (proven), ``time_limit`` (the time ran out: the gap
        says how far from proven), ``greedy`` (no MILP asked for: the
        gap comes from the greedy bound), or ``infeasible_target`` (the
        target weight cannot be covered by all candidates together: the
        solution is for the best reachable coverage, ``proven`` tells
        whether that one is optimal).
    proven
        The MILP proved the objective optimal.
    seconds
        Wall time, shrinking and greedy included.
    method
        How the returned sites were found (``greedy``, ``greedy+swap``,
        ``milp``).
    target_weight
        The weight asked for (fewest sites), else None.
    reachable_weight
        Weight that opening every candidate would cover.
    unreachable_weight
        Weight of demand no candidate covers.
    """

    sites: IntArray
    gains: FloatArray
    covered_weight: float
    objective: float
    bound: float
    gap: float
    status: str
    proven: bool
    seconds: float
    method: str
    target_weight: float | None = None
    reachable_weight: float = 0.0
    unreachable_weight: float = 0.0
    details: dict[str, float] = field(default_factory=dict)

    @property
    def n_sites(self) -> int:
        """Number of sites."""
        return len(self.sites)


def _tol(weight: FloatArray) -> float:
    """Absolute tolerance for covered-weight comparisons (rounding of sums, not modelling)."""
    return WEIGHT_REL_TOL * max(float(weight.sum()), 1.0)


def _gap(objective: float, bound: float) -> float:
    scale = max(abs(objective), abs(bound))
    return 0.0 if scale == 0 else max(0.0, abs(bound - objective) / scale)


def _finish(
    model: ShrunkModel,
    rows: IntArray,
    **fields: object,
) -> PlanSolution:
    ranked, gains = rank_sites(model.cover, model.weight, rows)
    return PlanSolution(
        sites=model.candidates[ranked],
        gains=gains,
        covered_weight=float(gains.sum()),
        reachable_weight=model.reachable_weight,
        unreachable_weight=model.unreachable_weight,
        **fields,  # type: ignore[arg-type]
    )


def _check_limits(time_limit_s: float, count: int, name: str) -> None:
    if not (np.isfinite(time_limit_s) and time_limit_s >= 0):
        msg = f"--time-limit-s must be a finite number >= 0, got {time_limit_s}"
        raise InputError(msg)
    if count < 0:
        msg = f"{name} must be >= 0, got {count}"
        raise InputError(msg)


def _improve(
    model: ShrunkModel, p: int, start: IntArray, *, seconds: float
) -> tuple[IntArray, str, float, float]:
    """Greedy start -> 1-swaps, then the Lagrangian bound and its best relaxed solution, swapped.

    Returns the best sites, how they were found, their covered weight and
    the best bound (greedy on-line or Lagrangian).
    """
    cover, w = model.cover, model.weight
    began = time.perf_counter()
    best, method = swap_improve(cover, w, start, seconds=0.4 * seconds), "greedy+swap"
    value = covered_weight(cover, w, best)
    if value <= covered_weight(cover, w, start):
        best, method = start, "greedy"
    bound = greedy_bound(cover, w, start, p)
    left = max(0.0, seconds - (time.perf_counter() - began))
    lag, lag_sites, lag_value = lagrangian_bound(cover, w, p, incumbent=value, seconds=0.8 * left)
    bound = min(bound, lag)
    if lag_value > 0 and _gap(value, bound) > 0:
        left = max(0.0, seconds - (time.perf_counter() - began))
        swapped = swap_improve(cover, w, lag_sites, seconds=left)
        if covered_weight(cover, w, swapped) > value:
            best, method, value = swapped, "lagrangian+swap", covered_weight(cover, w, swapped)
    return best, method, value, max(bound, value)


def _max_covering(
    model: ShrunkModel,
    p: int,
    *,
    start: IntArray,
    time_limit_s: float,
    mip_rel_gap: float,
    began: float,
) -> PlanSolution:
    """Maximal covering on a shrunk model, from a greedy start `start` (rows).

    Greedy, then 1-swaps and, on models with more than ``SMALL_MODEL_NNZ``
    entries, the Lagrangian bound (within a third of the time), then
    HiGHS warm-started from the best solution with the rest of the time,
    unless the bound already proves it optimal.
    """
    cover, w = model.cover, model.weight
    best, method, value = start, "greedy", covered_weight(cover, w, start)
    bound = max(greedy_bound(cover, w, start, p), value)
    # the greedy stops early only when every coverable weight is covered
    proven = len(start) < p or _gap(value, bound) <= mip_rel_gap
    if not proven and time_limit_s > 0 and cover.nnz > SMALL_MODEL_NNZ:
        best, method, value, bound = _improve(model, p, start, seconds=time_limit_s / 3)
        proven = _gap(value, bound) <= mip_rel_gap
    elif not proven and time_limit_s > 0:
        swapped = swap_improve(cover, w, start, seconds=time_limit_s / 10)
        if covered_weight(cover, w, swapped) > value:
            best, method, value = swapped, "greedy+swap", covered_weight(cover, w, swapped)
    if not proven and time_limit_s > 0:
        left = time_limit_s - (time.perf_counter() - began)
        res = _milp(
            model,
            sites_limit=p,
            target_weight=None,
            start=best,
            time_limit_s=left,
            mip_rel_gap=mip_rel_gap,
        )
        if res.ran and covered_weight(cover, w, res.sites) > value:
            best, method, value = res.sites, "milp", covered_weight(cover, w, res.sites)
        bound = max(min(bound, res.bound), value) if np.isfinite(res.bound) else bound
        proven = res.optimal
    status = STATUS_OPTIMAL if proven else STATUS_TIME_LIMIT if time_limit_s > 0 else STATUS_GREEDY
    return _finish(
        model,
        best,
        objective=value,
        bound=value if proven else bound,
        gap=0.0 if proven else _gap(value, bound),
        status=status,
        proven=proven,
        seconds=time.perf_counter() - began,
        method=method,
    )


def solve_max_covering(
    cover: sp.csr_matrix,
    weight: FloatArray,
    p: int,
    *,
    time_limit_s: float = 60.0,
    mip_rel_gap: float = DEFAULT_MIP_REL_GAP,
) -> PlanSolution:
    """Choose `p` new sites covering the most demand weight (maximal covering, MCLP).

    Lazy greedy first, then (if it is not provably optimal) a best-1-swap
    local search and the exact MILP with HiGHS, warm-started from the best
    of those, on the shrunk model (:func:`shrink_model`), within
    `time_limit_s` in all; ``time_limit_s=0`` returns the greedy with its
    bound (:func:`greedy_bound`).

    Parameters
    ----------
    cover
        Candidates x demand, bool (:func:`coverage_matrix`).
    weight
        Demand weights (e.g. residents), one per column.
    p
        Number of new sites (fewer are returned when fewer suffice to cover
        everything coverable).
    time_limit_s
        Wall-clock budget, seconds.
    mip_rel_gap
        HiGHS stops when the relative gap is below this.

    Returns
    -------
    PlanSolution
    """
    began = time.perf_counter()
    _check_limits(time_limit_s, p, "the number of sites")
    model = shrink_model(cover, weight)
    start, _ = greedy_cover(model.cover, model.weight, max_sites=p)
    return _max_covering(
        model, p, start=start, time_limit_s=time_limit_s, mip_rel_gap=mip_rel_gap, began=began
    )


def _drop_redundant(cover: sp.csr_matrix, w: FloatArray, sites: IntArray, need: float) -> IntArray:
    """Drop sites, last chosen first, while the rest still cover `need`."""
    keep = list(sites)
    for s in reversed(list(sites)):
        rest = np.array([k for k in keep if k != s], dtype=np.int64)
        if covered_weight(cover, w, rest) >= need - _tol(w):
            keep = list(rest)
    return np.array(keep, dtype=np.int64)


def solve_fewest_sites(
    cover: sp.csr_matrix,
    weight: FloatArray,
    target_weight: float,
    *,
    time_limit_s: float = 60.0,
    mip_rel_gap: float = DEFAULT_MIP_REL_GAP,
) -> PlanSolution:
    """Choose the fewest new sites that cover at least `target_weight` (LSCP with a target).

    ``min sum x`` subject to ``sum_j w_j y_j >= T`` and
    ``y_j <= sum_{i covers j} x_i``. When even every candidate together
    cannot cover `target_weight`, the status is ``infeasible_target`` and
    the solution is the fewest sites covering all that the candidates can
    reach. Greedy (then redundant sites dropped) first, then the MILP with
    HiGHS warm-started from it, within `time_limit_s`.

    Parameters
    ----------
    cover
        Candidates x demand, bool (:func:`coverage_matrix`).
    weight
        Demand weights, one per column.
    target_weight
        Demand weight to cover (same unit as `weight`); <= 0 needs no site.
    time_limit_s
        Wall-clock budget, seconds (0: greedy only).
    mip_rel_gap
        HiGHS stops when the relative gap is below this.

    Returns
    -------
    PlanSolution
    """
    began = time.perf_counter()
    _check_limits(time_limit_s, 0, "")
    model = shrink_model(cover, weight)
    reachable = model.reachable_weight
    feasible = target_weight <= reachable + _tol(model.weight)
    need = float(target_weight) if feasible else reachable
    if need <= 0:
        return _finish(
            model,
            np.zeros(0, dtype=np.int64),
            objective=0.0,
            bound=0.0,
            gap=0.0,
            status=STATUS_OPTIMAL if feasible else STATUS_INFEASIBLE_TARGET,
            proven=True,
            seconds=time.perf_counter() - began,
            method="greedy",
            target_weight=float(target_weight),
        )
    start, _ = greedy_cover(model.cover, model.weight, target_weight=need)
    start = _drop_redundant(model.cover, model.weight, start, need)
    best, method, bound, proven = start, "greedy", 1.0, len(start) <= 1
    if not proven and time_limit_s > 0:
        left = time_limit_s - (time.perf_counter() - began)
        res = _milp(
            model,
            sites_limit=None,
            target_weight=need,
            start=start,
            time_limit_s=left,
            mip_rel_gap=mip_rel_gap,
        )
        if (
            res.ran
            and len(res.sites) < len(best)
            and covered_weight(model.cover, model.weight, res.sites) >= need - _tol(model.weight)
        ):
            best, method = res.sites, "milp"
        if np.isfinite(res.bound):
            bound = max(bound, math.ceil(res.bound - 1e-6))
        proven = res.optimal
    n = float(len(best))
    bound = n if proven else min(bound, n)
    status = STATUS_OPTIMAL if proven else STATUS_TIME_LIMIT if time_limit_s > 0 else STATUS_GREEDY
    return _finish(
        model,
        best,
        objective=n,
        bound=bound,
        gap=_gap(n, bound),
        status=status if feasible else STATUS_INFEASIBLE_TARGET,
        proven=proven,
        seconds=time.perf_counter() - began,
        method=method,
        target_weight=float(target_weight),
    )


def coverage_curve(
    cover: sp.csr_matrix,
    weight: FloatArray,
    max_sites: int,
    *,
    time_limit_s: float = 60.0,
    mip_rel_gap: float = DEFAULT_MIP_REL_GAP,
) -> list[PlanSolution]:
    """Return the best coverage with k = 1..`max_sites` new sites (one maximal covering each).

    The model is shrunk once; each k starts from the greedy's first k sites
    (the greedy is nested) and gets an equal share of what remains of
    `time_limit_s`, so a small k finishing early leaves more time to the
    larger ones. ``time_limit_s=0`` gives the greedy curve with the
    on-line bound per k. The curve stops early once everything coverable
    is covered.
    """
    began = time.perf_counter()
    _check_limits(time_limit_s, max_sites, "--max-sites")
    model = shrink_model(cover, weight)
    order, _ = greedy_cover(model.cover, model.weight, max_sites=max_sites)
    out: list[PlanSolution] = []
    for k in range(1, max_sites + 1):
        t0 = time.perf_counter()
        left = max(0.0, time_limit_s - (t0 - began)) / (max_sites - k + 1)
        sol = _max_covering(
            model,
            k,
            start=order[:k],
            time_limit_s=left if time_limit_s else 0.0,
            mip_rel_gap=mip_rel_gap,
            began=t0,
        )
        out.append(sol)
        if sol.covered_weight >= model.reachable_weight - _tol(model.weight):
            break
    return out


# --------------------------------------------------------------------------- one category


@dataclass(frozen=True)
class CategoryPlan:
    """The plan of one category (what ``plan.json`` reports), on weights.

    ``fewest`` is the fewest-sites solution to the target (sites are rows of
    the candidates frame), ``curve`` the maximal-covering curve for k = 1..K;
    ``newly_covered`` marks, over all residents, those the ``fewest`` sites
    newly cover. Shares are of the total resident weight.
    """

    coverage_now: float
    target: float
    target_weight: float
    fewest: PlanSolution
    coverage_reached: float
    curve: list[PlanSolution]
    curve_coverage: list[float]
    newly_covered: npt.NDArray[np.bool_]
    n_candidates: int
    n_demand: int
    matrix_entries: int
    matrix_seconds: float


def plan_category(
    router: Router,
    residents_snap: pd.DataFrame,
    weight: FloatArray,
    covered_now: npt.NDArray[np.bool_],
    candidates_snap: pd.DataFrame,
    *,
    threshold_m: float,
    target: float,
    max_sites: int,
    time_limit_s: float = 60.0,
) -> CategoryPlan:
    """Plan new sites for one category, the existing facilities kept.

    Parameters
    ----------
    router
        The prepared network.
    residents_snap
        All residents, snapped (``SnappedArea.residents``).
    weight
        Resident weights (the ``weight`` column), aligned to `residents_snap`.
    covered_now
        Residents already covered (the coverage stage's ``covered_<category>``).
    candidates_snap
        Candidate sites snapped the way facilities are
        (:func:`lifecircle.snapping.snap_to_routable` of
        :func:`candidate_points` or of a user file), so that
        ``coverage --add-facilities`` reproduces the plan.
    threshold_m
        The category's (or the chosen tier's) walking threshold.
    target
        Target share of the resident weight (e.g. 0.99).
    max_sites
        K of the curve.
    time_limit_s
        Budget of each of the two solves (fewest sites, curve).

    Returns
    -------
    CategoryPlan
    """
    weight = np.asarray(weight, dtype=np.float64)
    total = float(weight.sum())
    now = float(weight[covered_now].sum())
    need_rows = np.flatnonzero(~covered_now & (residents_snap["edge"].to_numpy() >= 0))
    began = time.perf_counter()
    cover = coverage_matrix(
        router, candidates_snap, residents_snap.iloc[need_rows], threshold_m=threshold_m
    )
    matrix_s = time.perf_counter() - began
    w = weight[need_rows]
    target_weight = target * total - now
    fewest = solve_fewest_sites(cover, w, target_weight, time_limit_s=time_limit_s)
    curve = coverage_curve(cover, w, max_sites, time_limit_s=time_limit_s) if max_sites else []
    newly = np.zeros(len(weight), dtype=bool)
    newly[need_rows[covered_columns(cover, fewest.sites)]] = True

    def share(x: float) -> float:
        return x / total if total > 0 else float("nan")

    return CategoryPlan(
        coverage_now=share(now),
        target=target,
        target_weight=target_weight,
        fewest=fewest,
        coverage_reached=share(float(weight[covered_now | newly].sum())),
        curve=curve,
        curve_coverage=[share(now + s.covered_weight) for s in curve],
        newly_covered=newly,
        n_candidates=len(candidates_snap),
        n_demand=len(need_rows),
        matrix_entries=int(cover.nnz),
        matrix_seconds=matrix_s,
    )
