"""Siting, step 3a: the covering model reduced, and its fast heuristics and bounds.

:func:`shrink_model` merges residents covered by the same candidates and
drops dominated candidates; :func:`greedy_cover` (lazy evaluation, ties:
lowest index), :func:`swap_improve` (best 1-swaps),
:func:`iterated_swap_search` (random swaps, then best 1-swaps, repeated),
:func:`greedy_bound` (Minoux's on-line bound) and :func:`lagrangian_bound`
(subgradient on the relaxed cover rows) work on the (shrunk) boolean
candidates x demand matrix. The swap searches keep the gain of every
1-swap up to date incrementally (:class:`_SwapState`).
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
#: subgradient steps without a better bound before the step size is halved
STALL_STEPS = 20

__all__ = [
    "ShrunkModel",
    "covered_columns",
    "covered_weight",
    "greedy_bound",
    "greedy_cover",
    "iterated_swap_search",
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
    state = _SwapState(cover, weight, sites)
    deadline = time.perf_counter() + seconds  # from here: at least one pass, however short
    tol = weight_tol(state.w)
    while time.perf_counter() < deadline:
        move = state.best_swap(tol)
        if move is None:
            break
        state.swap(*move)
    return state.sites


def _descend(state: _SwapState, tol: float, deadline: float) -> list[tuple[int, int]]:
    """Make best improving swaps until none is left; return the moves (closed site, position)."""
    done: list[tuple[int, int]] = []
    while time.perf_counter() < deadline:
        move = state.best_swap(tol)
        if move is None:
            break
        done.append((state.swap(*move), move[1]))
    return done


def iterated_swap_search(
    cover: sp.csr_matrix,
    weight: FloatArray,
    sites: IntArray,
    *,
    seconds: float,
    pool: IntArray | None = None,
    kick: int = 3,
    seed: int = 0,
    stop_weight: float = np.inf,
) -> IntArray:
    """Improve a maximal-covering solution by iterated local search over 1-swaps; return the best.

    Each round swaps `kick` random sites for random unopened candidates of
    `pool` (default: all), then makes best 1-swaps (any candidate) until
    none helps; the round is kept when it is no worse, else undone. The
    1-swap gains are kept up to date incrementally (:class:`_SwapState`),
    so a round costs a few milliseconds. Stops after `seconds` or once
    `stop_weight` is covered. Deterministic for a given number of rounds
    (random generator seeded with `seed`).
    """
    state = _SwapState(cover, weight, np.array(sites, dtype=np.int64))
    n = cover.shape[0]
    if not state.p or state.p >= n:
        return state.sites
    deadline = time.perf_counter() + seconds
    tol = weight_tol(state.w)
    rng = np.random.default_rng(seed)
    pool = np.arange(n, dtype=np.int64) if pool is None else np.asarray(pool, dtype=np.int64)
    _descend(state, tol, deadline)
    best, best_value = state.sites.copy(), state.value
    while time.perf_counter() < deadline and best_value < stop_weight:
        base = state.value
        moves: list[tuple[int, int]] = []
        for _ in range(kick):
            closed = pool[~state.is_open[pool]]
            if not len(closed):
                break
            s = int(rng.integers(state.p))
            moves.append((state.swap(int(closed[rng.integers(len(closed))]), s), s))
        moves += _descend(state, tol, deadline)
        if state.value > best_value + tol:
            best, best_value = state.sites.copy(), state.value
        elif state.value < base - tol:
            for out, s in reversed(moves):
                state.swap(out, s)
    return best


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
    return _target_lagrangian(sp.csr_matrix(cover, dtype=np.float64), weight, target_weight, lam)[0]


def _target_lagrangian(
    as_float: sp.csr_matrix, weight: FloatArray, target_weight: float, lam: FloatArray
) -> tuple[float, FloatArray]:
    """Return :func:`target_lagrangian_value` at `lam` (>= 0) and a subgradient there."""
    score = np.asarray(as_float @ lam).ravel()
    sites_part = float(np.minimum(0.0, 1.0 - score).sum())
    pos = np.flatnonzero(weight > 0)
    order = pos[np.argsort(lam[pos] / weight[pos], kind="stable")]
    cum = np.cumsum(weight[order])
    k = int(np.searchsorted(cum, target_weight))  # items before k are taken whole
    if k >= len(order):
        return np.inf, np.zeros(len(weight))  # the target cannot be covered at all
    frac = (target_weight - (float(cum[k - 1]) if k else 0.0)) / weight[order[k]]
    value = sites_part + float(lam[order[:k]].sum()) + frac * float(lam[order[k]])
    y = np.zeros(len(weight))
    y[order[:k]] = 1.0
    y[order[k]] = frac
    opened = (score > 1.0).astype(np.float64)
    return float(value), y - np.asarray(as_float.T @ opened).ravel()


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
        value, grad = _target_lagrangian(as_float, weight, target_weight, lam)
        if value > best + 1e-9 * max(abs(best), 1.0) if np.isfinite(best) else True:
            best, stall = value, 0
        else:
            stall += 1
            if stall >= STALL_STEPS:
                mu, stall = mu / 2, 0
        if math.ceil(best - 1e-6) >= upper:
            break
        norm = float(np.dot(grad, grad))
        if norm == 0:
            break
        lam = np.maximum(lam + mu * (upper - value) / norm * grad, 0.0)
    return best


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
    state = _SwapState(cover, weight, sites)
    tol = weight_tol(state.w)
    best, best_value = sites.copy(), state.value
    until_in = np.zeros(cover.shape[0], dtype=np.int64)
    until_out = np.zeros(cover.shape[0], dtype=np.int64)
    step = 0
    while time.perf_counter() < deadline and best_value < stop_weight:
        step += 1
        delta = state.deltas()
        tabu = (until_in[:, None] > step) | (until_out[state.sites][None, :] > step)
        delta[tabu & (state.value + delta <= best_value + tol)] = -np.inf
        k, s = divmod(int(np.argmax(delta)), state.p)
        if not np.isfinite(delta[k, s]):
            break
        out = state.swap(k, s)
        until_in[out], until_out[k] = step + tenure, step + tenure // 2
        if state.value > best_value + tol:
            best, best_value = state.sites.copy(), state.value
    return best


def _ragged(indptr: npt.NDArray[np.integer], rows: IntArray) -> tuple[IntArray, IntArray]:
    """Return the entry positions of `rows` of a CSR/CSC index and each entry's row position."""
    starts = indptr[rows]
    lens = indptr[rows + 1] - starts
    before = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    owner = np.repeat(np.arange(len(rows), dtype=np.int64), lens)
    return np.repeat(starts - before, lens) + np.arange(int(lens.sum()), dtype=np.int64), owner


class _SwapState:
    """A maximal-covering solution and the covered-weight change of every 1-swap, kept up to date.

    For candidate ``k`` in and site position ``s`` out the change is
    ``gain[k] + extra[k, s] - loss[s]``: ``gain`` the uncovered weight
    ``k`` would add, ``loss[s]`` the weight only site ``s`` covers and
    ``extra[k, s]`` the part of that ``k`` covers too. A swap changes the
    cover counts of the columns of the two sites only, so :meth:`swap`
    updates the three from the candidates covering those columns (the CSC
    index), instead of from the whole matrix. ``owner`` of a column covered
    once is the sum of the positions of the sites covering it.
    """

    def __init__(self, cover: sp.csr_matrix, weight: FloatArray, sites: IntArray) -> None:
        self.csr = sp.csr_matrix(cover, dtype=bool)
        self.csc = sp.csc_matrix(self.csr)
        self.w = np.asarray(weight, dtype=np.float64)
        self.n, m = self.csr.shape
        self.sites = np.array(sites, dtype=np.int64)
        self.p = p = len(self.sites)
        entries, pos = _ragged(self.csr.indptr, self.sites)
        cols = self.csr.indices[entries]
        self.count = np.bincount(cols, minlength=m).astype(np.int64)
        self.owner = np.bincount(cols, weights=pos, minlength=m).astype(np.int64)
        self.is_open = np.zeros(self.n, dtype=bool)
        self.is_open[self.sites] = True
        coo = sp.coo_matrix(self.csr)
        r, c = coo.row.astype(np.int64), coo.col.astype(np.int64)
        free = np.where(self.count == 0, self.w, 0.0)
        self.gain: FloatArray = np.bincount(r, weights=free[c], minlength=self.n).astype(np.float64)
        once = self.count[c] == 1
        self.extra = np.bincount(
            r[once] * p + self.owner[c[once]], weights=self.w[c[once]], minlength=self.n * p
        )
        solo = self.count == 1
        loss = np.bincount(self.owner[solo], weights=self.w[solo], minlength=p)
        self.loss: FloatArray = np.asarray(loss, dtype=np.float64)
        self.value = float(self.w[self.count > 0].sum())

    def deltas(self) -> FloatArray:
        """Change of covered weight of every swap (candidate x site position); open rows -inf."""
        delta = self.gain[:, None] + self.extra.reshape(self.n, self.p) - self.loss[None, :]
        delta[self.sites, :] = -np.inf
        return np.asarray(delta, dtype=np.float64)

    def _cols(self, i: int) -> IntArray:
        return np.asarray(self.csr.indices[self.csr.indptr[i] : self.csr.indptr[i + 1]])

    def swap(self, k: int, s: int) -> int:
        """Open candidate `k` in place of the site at position `s`; return the site closed."""
        out = int(self.sites[s])
        c_out, c_in = self._cols(out), self._cols(k)
        cols = np.union1d(c_out, c_in)
        old_n, old_o = self.count[cols].copy(), self.owner[cols].copy()
        self.count[c_out] -= 1
        self.owner[c_out] -= s
        self.count[c_in] += 1
        self.owner[c_in] += s
        new_n, new_o = self.count[cols], self.owner[cols]
        w = self.w[cols]
        self.value = self.value + float(w @ ((new_n > 0).astype(np.float64) - (old_n > 0)))
        entries, at = _ragged(self.csc.indptr, cols)
        rows = self.csc.indices[entries].astype(np.int64)
        free = w * ((new_n == 0).astype(np.float64) - (old_n == 0))
        hit = (free != 0)[at]
        self.gain += np.bincount(rows[hit], weights=free[at[hit]], minlength=self.n)
        was, now = old_n == 1, new_n == 1
        moved = (was != now) | (was & (old_o != new_o))
        for sign, mask, own in ((-1.0, was & moved, old_o), (1.0, now & moved, new_o)):
            self.loss += sign * np.bincount(own[mask], weights=w[mask], minlength=self.p)
            hit = mask[at]
            np.add.at(self.extra, rows[hit] * self.p + own[at[hit]], sign * w[at[hit]])
        self.is_open[out], self.is_open[k] = False, True
        self.sites[s] = k
        return out

    def best_swap(self, tol: float) -> tuple[int, int] | None:
        """Return the best improving swap (ties: lowest candidate, then position), or None."""
        delta = self.deltas()
        k, s = divmod(int(np.argmax(delta)), self.p)
        return (k, s) if delta[k, s] > tol else None


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
