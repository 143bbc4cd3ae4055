"""Siting, step 3b: the location models, exact with HiGHS under a time limit.

Maximal covering with ``p`` new sites (:func:`solve_max_covering`), the
fewest sites reaching a covered weight (:func:`solve_fewest_sites`) and the
coverage curve (:func:`coverage_curve`). Each runs a lazy greedy first
(ties: lowest candidate index), then an exact integer program with HiGHS
under a time limit, warm-started from the greedy (improved by 1-swaps and,
on big models, an iterated local search from the LP relaxation) on a
shrunk model (identical residents merged, dominated candidates dropped).
The result always carries the proven bound and the gap: a solution that is
not proven optimal says so.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from lifecircle.errors import InputError
from lifecircle.plan_highs import lp_relaxation, milp
from lifecircle.plan_model import (
    ShrunkModel,
    covered_weight,
    greedy_bound,
    greedy_cover,
    iterated_swap_search,
    lagrangian_bound,
    lagrangian_value,
    rank_sites,
    shrink_model,
    swap_improve,
    target_lagrangian_bound,
    weight_tol,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: relative MIP gap at which HiGHS stops and calls a solution optimal
DEFAULT_MIP_REL_GAP = 1e-6
#: shrunk models with fewer matrix entries go straight from the greedy to HiGHS
SMALL_MODEL_NNZ = 50_000
#: fewest sites: models with more matrix entries get the Lagrangian bound only, no HiGHS (its
#: root LP alone outlasts the time limit: 9 s at 241,000 entries, not done in 60 s at 2.7 million)
MILP_MAX_NNZ = 1_000_000
#: share of the time limit big models spend on the LP bound and the local search before HiGHS
IMPROVE_SHARE = 0.6
#: HiGHS runs after the local search only with more than this many times the LP's seconds left
MILP_LP_FACTOR = 10.0
#: random swaps per round of the iterated local search (:func:`iterated_swap_search`)
ILS_KICK = 4
#: LP values above this put a candidate in the pool the iterated local search draws from
LP_SUPPORT_TOL = 1e-6
#: seconds kept for ranking the sites and returning, out of the time limit
SAFETY_S = 0.2
#: HiGHS is not started with less time than this left, seconds (it could not even read the model)
MIN_MILP_S = 0.05

STATUS_OPTIMAL = "optimal"
STATUS_TIME_LIMIT = "time_limit"
STATUS_INFEASIBLE_TARGET = "infeasible_target"
STATUS_GREEDY = "greedy"  # no MILP run (time limit 0): gap from the greedy bound

__all__ = [
    "DEFAULT_MIP_REL_GAP",
    "STATUS_GREEDY",
    "STATUS_INFEASIBLE_TARGET",
    "STATUS_OPTIMAL",
    "STATUS_TIME_LIMIT",
    "PlanSolution",
    "coverage_curve",
    "solve_fewest_sites",
    "solve_max_covering",
]


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
        ``|bound - objective| / max(|bound|, |objective|)``, always from the
        proven bound (at most ``mip_rel_gap`` when the status is ``optimal``).
    status
        ``optimal`` (proven optimal within ``mip_rel_gap``: the default
        1e-6 means optimal; 0.01 means "within 1% of the bound"),
        ``time_limit`` (the time ran out: the gap says how far from proven),
        ``greedy`` (no MILP asked for: the gap comes from the greedy bound),
        or ``infeasible_target`` (the target weight cannot be covered by
        all candidates together: the solution is for the best reachable coverage, ``proven`` tells
        whether that one is optimal).
    proven
        The MILP proved the objective optimal.
    seconds
        Wall time, shrinking and greedy included.
    method
        How the returned sites were found, steps joined by ``+``:
        ``greedy``, ``lp`` (the LP relaxation's largest values) or
        ``lagrangian`` (a Lagrangian relaxed solution), then ``swap``
        (best 1-swaps) and ``ils`` (iterated local search); or ``milp``
        (HiGHS).
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


def _bound_and_start(
    model: ShrunkModel, p: int, incumbent: float, *, seconds: float
) -> tuple[float, IntArray, str, npt.NDArray[np.bool_] | None]:
    """Return a proven upper bound and a starting solution from the LP relaxation.

    The LP's cover-row duals, as Lagrangian multipliers, give the bound
    (:func:`lagrangian_value`, recomputed exactly) and its p largest
    ``x_i`` the start (ties: lowest index), and its support (``x_i > 0``:
    the candidates the local search draws from). When the LP does not
    finish in `seconds`, the subgradient method (:func:`lagrangian_bound`)
    gives the bound and the start, and the support is None.
    """
    cover, w = model.cover, model.weight
    began = time.perf_counter()
    lp = lp_relaxation(model, p, seconds=seconds)
    if lp is not None:
        bound, _ = lagrangian_value(cover, w, p, lp[1])
        lam, support = lp[1], lp[0] > LP_SUPPORT_TOL
        start, how = np.sort(np.argsort(-lp[0], kind="stable")[:p]).astype(np.int64), "lp"
    else:
        bound, start, _ = lagrangian_bound(cover, w, p, incumbent=incumbent, seconds=seconds)
        lam, how, support = None, "lagrangian", None
    left = max(0.0, 0.5 * seconds - (time.perf_counter() - began))
    if left > 0 and lam is not None:  # a few subgradient steps from the LP duals, never worse
        polished, _, _ = lagrangian_bound(
            cover, w, p, incumbent=incumbent, seconds=min(left, 1.0), lam0=lam
        )
        bound = min(bound, polished)
    return bound, start, how, support


def _improve(
    model: ShrunkModel, p: int, start: IntArray, *, seconds: float, mip_rel_gap: float
) -> tuple[IntArray, str, float, float, float | None]:
    """Greedy start -> 1-swaps; the LP bound and start (:func:`_bound_and_start`); local search.

    The iterated local search (:func:`iterated_swap_search`, drawing from
    the LP support) starts from the best of the greedy + swaps and the LP
    start + swaps and stops once within `mip_rel_gap` of the bound. HiGHS
    is worth running only when the time left after the LP is over
    ``MILP_LP_FACTOR`` times what the LP took (its root alone is that LP):
    then the local search leaves it ``1 - IMPROVE_SHARE`` of `seconds`, else
    the local search has all of `seconds`. Returns the best sites, how they
    were found, their covered weight, the best proven bound (greedy
    on-line, LP or Lagrangian) and the LP's seconds when HiGHS is worth
    running (None otherwise): HiGHS can overrun its deadline by about one LP
    solve (a root LP re-solve it does not interrupt), so it is stopped that
    much earlier.
    """
    cover, w = model.cover, model.weight
    began = time.perf_counter()

    def left() -> float:
        return max(0.0, seconds - (time.perf_counter() - began))

    best, method = swap_improve(cover, w, start, seconds=0.1 * seconds), "greedy+swap"
    value = covered_weight(cover, w, best)
    if value <= covered_weight(cover, w, start):
        best, method = start, "greedy"
    bound = greedy_bound(cover, w, start, p)
    t_lp = time.perf_counter()
    relaxed, relaxed_start, how, support = _bound_and_start(model, p, value, seconds=0.4 * left())
    bound = min(bound, relaxed)
    t_lp = time.perf_counter() - t_lp
    worth_milp = left() > MILP_LP_FACTOR * t_lp
    reserve = (1.0 - IMPROVE_SHARE) * seconds if worth_milp else 0.0
    other = swap_improve(cover, w, relaxed_start, seconds=0.2 * left())
    if covered_weight(cover, w, other) > value:
        best, method, value = other, f"{how}+swap", covered_weight(cover, w, other)
    goal = bound * (1.0 - mip_rel_gap)
    if value < goal and left() > reserve:
        pool = np.union1d(np.flatnonzero(support), best) if support is not None else None
        found = iterated_swap_search(
            cover, w, best, seconds=left() - reserve, pool=pool, kick=ILS_KICK, stop_weight=goal
        )
        if covered_weight(cover, w, found) > value:
            best, method, value = found, f"{method}+ils", covered_weight(cover, w, found)
    return best, method, value, max(bound, value), t_lp if worth_milp else None


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
    entries, the LP bound and the iterated local search (:func:`_improve`, within
    ``IMPROVE_SHARE`` of the time), then HiGHS warm-started from the best
    solution with the rest of the time, unless the bound already proves it
    within `mip_rel_gap`. The bound and gap returned are the proven ones.
    """
    cover, w = model.cover, model.weight
    best, method, value = start, "greedy", covered_weight(cover, w, start)
    bound = max(greedy_bound(cover, w, start, p), value)
    # the greedy stops early only when every coverable weight is covered
    proven = len(start) < p or _gap(value, bound) <= mip_rel_gap
    lp_s: float | None = 0.0
    if not proven and time_limit_s > 0 and cover.nnz > SMALL_MODEL_NNZ:
        best, method, value, bound, lp_s = _improve(
            model,
            p,
            start,
            seconds=time_limit_s - (time.perf_counter() - began) - SAFETY_S,
            mip_rel_gap=mip_rel_gap,
        )
        proven = _gap(value, bound) <= mip_rel_gap
    elif not proven and time_limit_s > 0:
        swapped = swap_improve(cover, w, start, seconds=time_limit_s / 10)
        if covered_weight(cover, w, swapped) > value:
            best, method, value = swapped, "greedy+swap", covered_weight(cover, w, swapped)
    left = time_limit_s - (time.perf_counter() - began) - (lp_s or 0.0)
    if not proven and lp_s is not None and left > MIN_MILP_S:
        res = milp(
            model,
            sites_limit=p,
            target_weight=None,
            start=best,
            time_limit_s=left,
            mip_rel_gap=mip_rel_gap,
            big=model.cover.nnz > SMALL_MODEL_NNZ,
        )
        if res.ran and covered_weight(cover, w, res.sites) > value:
            best, method, value = res.sites, "milp", covered_weight(cover, w, res.sites)
        bound = max(min(bound, res.bound), value) if np.isfinite(res.bound) else bound
        proven = res.optimal or _gap(value, bound) <= mip_rel_gap
    status = STATUS_OPTIMAL if proven else STATUS_TIME_LIMIT if time_limit_s > 0 else STATUS_GREEDY
    bound = max(bound, value)
    return _finish(
        model,
        best,
        objective=value,
        bound=bound,
        gap=_gap(value, bound),
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
    count = np.bincount(sp.csr_matrix(cover[sites]).indices, minlength=cover.shape[1])
    value, tol = float(w[count > 0].sum()), weight_tol(w)
    keep = np.ones(len(sites), dtype=bool)
    for pos in range(len(sites) - 1, -1, -1):
        cols = cover.indices[cover.indptr[sites[pos]] : cover.indptr[sites[pos] + 1]]
        loss = float(w[cols[count[cols] == 1]].sum())
        if value - loss >= need - tol:
            keep[pos] = False
            count[cols] -= 1
            value -= loss
    return np.asarray(sites, dtype=np.int64)[keep]


def _fewest_exact(
    model: ShrunkModel,
    need: float,
    start: IntArray,
    *,
    time_limit_s: float,
    mip_rel_gap: float,
    began: float,
) -> tuple[IntArray, str, float, bool]:
    """Improve the lower bound (Lagrangian on big models, then HiGHS) and maybe the greedy `start`.

    Models with more than ``MILP_MAX_NNZ`` entries get the Lagrangian bound
    with the whole time limit and no HiGHS. Returns the best sites, how
    they were found, the proven lower bound on the number of sites and
    whether HiGHS proved optimality.
    """
    best, method, bound, proven = start, "greedy", 1.0, len(start) <= 1
    huge = model.cover.nnz > MILP_MAX_NNZ  # HiGHS would not get past its root LP: no HiGHS
    if not proven and time_limit_s > 0 and model.cover.nnz > SMALL_MODEL_NNZ:
        share = 1.0 if huge else 1.0 - IMPROVE_SHARE
        lagr = target_lagrangian_bound(
            model.cover,
            model.weight,
            need,
            upper=len(start),
            seconds=share * (time_limit_s - (time.perf_counter() - began) - SAFETY_S),
        )
        bound = max(bound, math.ceil(lagr - 1e-6 * max(1.0, abs(lagr))))
        proven = bound >= len(start)
    left = time_limit_s - (time.perf_counter() - began) - SAFETY_S
    if not proven and not huge and time_limit_s > 0 and left > MIN_MILP_S:
        res = milp(
            model,
            sites_limit=None,
            target_weight=need,
            start=start,
            time_limit_s=left,
            mip_rel_gap=mip_rel_gap,
            big=model.cover.nnz > SMALL_MODEL_NNZ,
        )
        if (
            res.ran
            and len(res.sites) < len(best)
            and covered_weight(model.cover, model.weight, res.sites)
            >= need - weight_tol(model.weight)
        ):
            best, method = res.sites, "milp"
        if np.isfinite(res.bound):
            bound = max(bound, math.ceil(res.bound - 1e-6))
        proven = res.optimal
    return best, method, bound, proven


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
    feasible = target_weight <= reachable + weight_tol(model.weight)
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
    best, method, bound, proven = _fewest_exact(
        model, need, start, time_limit_s=time_limit_s, mip_rel_gap=mip_rel_gap, began=began
    )
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
        if sol.covered_weight >= model.reachable_weight - weight_tol(model.weight):
            break
    return out
