"""Where to build: siting new facilities on the walking network.

Three steps, all pure:

1. :func:`candidate_points` -- candidate sites along the routable streets
   (:mod:`lifecircle.plan_matrix`).
2. :func:`coverage_matrix` -- which candidate would cover which (still
   uncovered) resident, as a sparse boolean matrix, from one *bounded*
   search per candidate with exactly the edge-snapped distances of
   :meth:`lifecircle.access.Router.distances` (:mod:`lifecircle.plan_matrix`).
3. The location models on that matrix (:mod:`lifecircle.plan_solve`, with
   the shrinking, heuristics and bounds of :mod:`lifecircle.plan_model`):
   maximal covering with ``p`` new sites (:func:`solve_max_covering`), the
   fewest sites reaching a covered weight (:func:`solve_fewest_sites`) and
   the coverage curve (:func:`coverage_curve`), each with its proven bound
   and gap.

:func:`plan_category` chains them for one category, the existing
facilities kept.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from lifecircle.access import Router
from lifecircle.plan_matrix import DEFAULT_BLOCK_CELLS, candidate_points, coverage_matrix
from lifecircle.plan_model import (
    ShrunkModel,
    covered_columns,
    covered_weight,
    greedy_bound,
    greedy_cover,
    lagrangian_bound,
    rank_sites,
    shrink_model,
    swap_improve,
)
from lifecircle.plan_solve import (
    DEFAULT_MIP_REL_GAP,
    STATUS_GREEDY,
    STATUS_INFEASIBLE_TARGET,
    STATUS_OPTIMAL,
    STATUS_TIME_LIMIT,
    PlanSolution,
    coverage_curve,
    solve_fewest_sites,
    solve_max_covering,
)

FloatArray = npt.NDArray[np.float64]

__all__ = [
    "DEFAULT_BLOCK_CELLS",
    "DEFAULT_MIP_REL_GAP",
    "STATUS_GREEDY",
    "STATUS_INFEASIBLE_TARGET",
    "STATUS_OPTIMAL",
    "STATUS_TIME_LIMIT",
    "CategoryPlan",
    "PlanSolution",
    "ShrunkModel",
    "candidate_points",
    "coverage_curve",
    "coverage_matrix",
    "covered_columns",
    "covered_weight",
    "greedy_bound",
    "greedy_cover",
    "lagrangian_bound",
    "plan_category",
    "rank_sites",
    "shrink_model",
    "solve_fewest_sites",
    "solve_max_covering",
    "swap_improve",
]


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
