"""Siting, step 3a: the covering model reduced, and its fast heuristics and bounds.

:func:`shrink_model` merges residents covered by the same candidates and
drops dominated candidates; :func:`greedy_cover` (lazy evaluation, ties:
lowest index), :func:`swap_improve` (best 1-swaps), :func:`greedy_bound`
(Minoux's on-line bound) and :func:`lagrangian_bound` (subgradient on the
relaxed cover rows) work on the (shrunk) boolean candidates x demand matrix.
"""

from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from lifecircle.errors import InputError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: relative tolerance (of the total weight) when comparing covered weights summed in other orders
WEIGHT_REL_TOL = 1e-9

__all__ = [
    "ShrunkModel",
    "covered_columns",
    "covered_weight",
    "greedy_bound",
    "greedy_cover",
    "lagrangian_bound",
    "lagrangian_value",
    "rank_sites",
    "shrink_model",
    "swap_improve",
    "tabu_search",
    "target_lagrangian_bound",
    "target_lagrangian_value",
]


def weight_tol(weight: FloatArray) -> float:
    """Absolute tolerance for covered-weight comparisons (rounding of sums, not modelling)."""
    return WEIGHT_REL_TOL * max(float(weight.sum()), 1.0)


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
    tol = weight_tol(weight)
    while heap and len(sites) < limit:
        if target_weight is not None and total >= target_weight - tol:
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
    deltas = _SwapDeltas(cover, weight)
    while time.perf_counter() < deadline:
        count = np.bincount(sp.csr_matrix(cover[sites]).indices, minlength=cover.shape[1])
        delta = deltas(sites, count)
        k, s = np.unravel_index(int(np.argmax(delta)), delta.shape)
        if delta[k, s] <= eps:
            break
        sites[s] = k
    return sites


def target_lagrangian_value(
    cover: sp.csr_matrix, weight: FloatArray, target_weight: float, lam: FloatArray
) -> float:
    """Return the Lagrangian lower bound on the fewest sites covering `target_weight`, at `lam`.

    Relaxing ``y_j <= sum_{i covers j} x_i`` with ``lambda_j >= 0`` leaves
    ``sum_i min(0, 1 - sum_{j in cover(i)} lambda_j)`` plus the cheapest
    fractional choice of ``y`` (cost ``lambda_j`` per column) with
    ``w.y >= T``: a lower bound for every such lambda.
    """
    lam = np.clip(np.nan_to_num(np.asarray(lam, dtype=np.float64)), 0.0, None)
    score = np.asarray(sp.csr_matrix(cover, dtype=np.float64) @ lam).ravel()
    sites_part = float(np.minimum(0.0, 1.0 - score).sum())
    pos = np.flatnonzero(weight > 0)
    order = pos[np.argsort(lam[pos] / weight[pos], kind="stable")]
    cum = np.cumsum(weight[order])
    k = int(np.searchsorted(cum, target_weight))  # items before k are taken whole
    if k >= len(order):
        return np.inf  # the target cannot be covered at all
    before = float(cum[k - 1]) if k else 0.0
    frac = (target_weight - before) / weight[order[k]]
    return float(sites_part + float(lam[order[:k]].sum()) + frac * float(lam[order[k]]))


def target_lagrangian_bound(
    cover: sp.csr_matrix,
    weight: FloatArray,
    target_weight: float,
    *,
    upper: int,
    seconds: float,
) -> float:
    """Lower bound on the fewest sites covering `target_weight` (subgradient on the cover rows).

    Starts from ``lambda = w * upper / T`` (each unit of weight priced at
    what a site of the known solution with `upper` sites covers) and
    climbs :func:`target_lagrangian_value` (Polyak steps towards `upper`).
    """
    deadline = time.perf_counter() + seconds
    as_float = sp.csr_matrix(cover, dtype=np.float64)
    lam = weight * (upper / max(target_weight, 1e-12))
    best, mu, stall = -np.inf, 2.0, 0
    while time.perf_counter() < deadline and mu > 1e-4:
        value = target_lagrangian_value(cover, weight, target_weight, lam)
        if value > best + 1e-9 * max(abs(best), 1.0) if np.isfinite(best) else True:
            best, stall = value, 0
        else:
            stall += 1
            if stall >= 20:
                mu, stall = mu / 2, 0
        if math.ceil(best - 1e-6) >= upper:
            break
        x = (np.asarray(as_float @ lam).ravel() > 1.0).astype(np.float64)
        y = _knapsack_y(weight, target_weight, lam)
        grad = y - np.asarray(as_float.T @ x).ravel()
        norm = float(np.dot(grad, grad))
        if norm == 0:
            break
        lam = np.maximum(lam + mu * (upper - value) / norm * grad, 0.0)
    return best


def _knapsack_y(weight: FloatArray, target_weight: float, lam: FloatArray) -> FloatArray:
    """Return the y of :func:`target_lagrangian_value` (cheapest weight first, up to the target)."""
    y = np.zeros(len(weight))
    pos = np.flatnonzero(weight > 0)
    order = pos[np.argsort(lam[pos] / weight[pos], kind="stable")]
    cum = np.cumsum(weight[order])
    k = int(np.searchsorted(cum, target_weight))
    y[order[:k]] = 1.0
    if k < len(order):
        y[order[k]] = (target_weight - (float(cum[k - 1]) if k else 0.0)) / weight[order[k]]
    return y


def lagrangian_value(
    cover: sp.csr_matrix, weight: FloatArray, p: int, lam: FloatArray
) -> tuple[float, IntArray]:
    """Return the Lagrangian upper bound of maximal covering at multipliers `lam`, and its sites.

    Relaxing the cover rows ``y_j <= sum_{i covers j} x_i`` with
    multipliers ``lambda_j >= 0`` gives ``sum_j max(w_j - lambda_j, 0) +
    (sum of the p largest sum_{j in cover(i)} lambda_j)``, an upper bound on
    the best covered weight with `p` sites for *every* such lambda (the
    bound is checked here, whatever produced `lam`). The sites are the p
    best-scoring candidates (ties: lowest index), ascending.
    """
    lam = np.clip(np.nan_to_num(np.asarray(lam, dtype=np.float64)), 0.0, None)
    score = np.asarray(sp.csr_matrix(cover, dtype=np.float64) @ lam).ravel()
    top = np.sort(np.argsort(-score, kind="stable")[:p]).astype(np.int64)
    return float(np.maximum(weight - lam, 0.0).sum() + score[top].sum()), top


def tabu_search(
    cover: sp.csr_matrix,
    weight: FloatArray,
    sites: IntArray,
    *,
    seconds: float,
    tenure: int = 30,
    stop_weight: float = np.inf,
) -> IntArray:
    """Improve a maximal-covering solution by tabu search over 1-swaps; return the best found.

    Each step makes the best swap (one site out, one candidate in), even a
    worsening one, except that a candidate swapped out may not come back
    for `tenure` steps and one swapped in may not leave for `tenure // 2`
    (unless the swap gives a new best). Ties: the lowest entering
    candidate, then the earliest leaving site. Stops after `seconds` or
    once `stop_weight` is covered. Deterministic for a given number of
    steps.
    """
    sites = np.array(sites, dtype=np.int64)
    if not len(sites) or len(sites) >= cover.shape[0]:
        return sites
    deadline = time.perf_counter() + seconds
    deltas = _SwapDeltas(cover, weight)
    count = np.bincount(sp.csr_matrix(cover[sites]).indices, minlength=cover.shape[1])
    value = float(weight[count > 0].sum())
    best, best_value = sites.copy(), value
    until_in = np.zeros(cover.shape[0], dtype=np.int64)
    until_out = np.zeros(cover.shape[0], dtype=np.int64)
    step = 0
    while time.perf_counter() < deadline and best_value < stop_weight:
        step += 1
        delta = deltas(sites, count)
        tabu = (until_in[:, None] > step) | (until_out[sites][None, :] > step)
        delta[tabu & (value + delta <= best_value + 1e-9 * max(best_value, 1.0))] = -np.inf
        k, s = np.unravel_index(int(np.argmax(delta)), delta.shape)
        if not np.isfinite(delta[k, s]):
            break
        out = sites[s]
        count[_row(cover, int(out))] -= 1
        count[_row(cover, int(k))] += 1
        sites[s] = k
        value = float(weight[count > 0].sum())
        until_in[out], until_out[k] = step + tenure, step + tenure // 2
        if value > best_value:
            best, best_value = sites.copy(), value
    return best


class _SwapDeltas:
    """Change of covered weight for every 1-swap, from the entries of the matrix (vectorised).

    For candidate ``k`` in and site position ``s`` out: ``free(k) + once(k, s)
    - once(s)``, where ``free`` is the uncovered weight ``k`` would add,
    ``once(s)`` the weight only site ``s`` covers and ``once(k, s)`` the
    part of that ``k`` covers too.
    """

    def __init__(self, cover: sp.csr_matrix, weight: FloatArray) -> None:
        coo = sp.coo_matrix(cover)
        self.cover, self.weight = cover, weight
        self.row, self.col = coo.row.astype(np.int64), coo.col.astype(np.int64)

    def __call__(self, sites: IntArray, count: IntArray) -> FloatArray:
        n, p = self.cover.shape[0], len(sites)
        w = self.weight
        gain_in = np.bincount(self.row, weights=np.where(count == 0, w, 0.0)[self.col], minlength=n)
        owner = np.full(len(count), -1, dtype=np.int64)
        for pos, i in enumerate(sites):
            cols = _row(self.cover, int(i))
            owner[cols[count[cols] == 1]] = pos
        loss_out = np.bincount(owner[owner >= 0], weights=w[owner >= 0], minlength=p)
        hit = owner[self.col] >= 0
        overlap = np.bincount(
            self.row[hit] * p + owner[self.col[hit]], weights=w[self.col[hit]], minlength=n * p
        ).reshape(n, p)
        delta = np.asarray(gain_in[:, None] + overlap - loss_out[None, :], dtype=np.float64)
        delta[sites, :] = -np.inf
        return delta


def lagrangian_bound(
    cover: sp.csr_matrix,
    weight: FloatArray,
    p: int,
    *,
    incumbent: float,
    seconds: float,
    rel_tol: float = 1e-6,
    lam0: FloatArray | None = None,
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
    lam0
        Starting multipliers (default ``weight / 2``), e.g. the LP duals.

    Returns
    -------
    tuple
        The best bound, the best relaxed solution's sites and its covered weight.
    """
    deadline = time.perf_counter() + seconds
    lam = 0.5 * weight if lam0 is None else np.clip(lam0, 0.0, weight)
    best_bound, best_sites, best_value = np.inf, np.zeros(0, dtype=np.int64), -np.inf
    mu, stall = 2.0, 0
    while time.perf_counter() < deadline and mu > 1e-4:
        bound, top = lagrangian_value(cover, weight, p, lam)
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
