"""Siting: the covering models handed to HiGHS (MILP and LP relaxation), stopped at a deadline.

Variables ``x_i`` (open candidate ``i``) then ``y_j`` (demand column ``j``
covered); see :func:`_constraints`. Used by :mod:`lifecircle.plan_solve`.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import highspy
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from lifecircle.plan_model import ShrunkModel, covered_columns

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

__all__ = ["MilpResult", "lp_relaxation", "milp"]


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Send the process's standard output (file descriptor 1) to /dev/null for the block."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


@dataclass(frozen=True)
class MilpResult:
    """What HiGHS returned: sites (rows of the shrunk model), objective, bound, proven, ran."""

    sites: IntArray  # rows of the shrunk model
    objective: float
    bound: float
    optimal: bool
    ran: bool


def _constraints(
    model: ShrunkModel, sites_limit: int | None, target_weight: float | None
) -> tuple[sp.csr_matrix, FloatArray, FloatArray, FloatArray]:
    """Return the rows (A, lower, upper) and the costs of the covering model.

    Variables: ``x_i`` (open candidate ``i``), then ``y_j`` in [0, 1]
    (column ``j`` covered); rows ``y_j - sum_{i covers j} x_i <= 0``, then
    ``sum x <= p`` (maximal covering, max ``w.y``) or ``w.y >= T`` (fewest
    sites, min ``sum x``).
    """
    n_c, n_d = model.cover.shape
    ci, cj = model.cover.nonzero()
    if sites_limit is not None:
        last_col, last_val = np.arange(n_c), np.ones(n_c)
        last_lo, last_hi = -np.inf, float(sites_limit)
        cost = np.concatenate([np.zeros(n_c), model.weight])
    else:
        last_col, last_val = n_c + np.arange(n_d), model.weight
        last_lo, last_hi = float(target_weight or 0.0), np.inf
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
    a.sort_indices()
    lo = np.concatenate([np.full(n_d, -np.inf), [last_lo]])
    hi = np.concatenate([np.zeros(n_d), [last_hi]])
    return a, lo, hi, cost


def _highs(
    model: ShrunkModel,
    *,
    sites_limit: int | None,
    target_weight: float | None,
    integer: bool,
    deadline: float,
) -> highspy.Highs:
    """Return a HiGHS instance holding the covering model, interrupted at `deadline` (perf_counter).

    The interrupt callbacks of the simplex, the interior point method and
    the branch and bound stop HiGHS at the deadline even inside the root LP
    (HiGHS's own ``time_limit`` is checked less often).
    """
    a, lo, hi, cost = _constraints(model, sites_limit, target_weight)
    n_c = model.cover.shape[0]
    n = a.shape[1]
    with _quiet_stdout():  # HiGHS prints a banner from C when it starts, whatever its options
        h = highspy.Highs()  # type: ignore[no-untyped-call]
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", max(deadline - time.perf_counter(), 0.01))
    inf = h.getInfinity()
    h.addVars(n, np.zeros(n), np.ones(n))
    h.changeColsCost(n, np.arange(n, dtype=np.int32), cost)
    if integer:
        kind = np.full(n_c, highspy.HighsVarType.kInteger)
        h.changeColsIntegrality(n_c, np.arange(n_c, dtype=np.int32), kind)
    h.addRows(
        a.shape[0],
        np.where(np.isinf(lo), -inf, lo),
        np.where(np.isinf(hi), inf, hi),
        a.nnz,
        a.indptr[:-1].astype(np.int32),
        a.indices.astype(np.int32),
        a.data.astype(np.float64),
    )
    if sites_limit is not None:
        h.changeObjectiveSense(highspy.ObjSense.kMaximize)

    def stop(event: object) -> None:
        if time.perf_counter() >= deadline:
            event.interrupt()  # type: ignore[attr-defined]

    for hook in (h.cbSimplexInterrupt, h.cbIpmInterrupt, h.cbMipInterrupt):
        hook.subscribe(stop)
    return h


def milp(
    model: ShrunkModel,
    *,
    sites_limit: int | None,
    target_weight: float | None,
    start: IntArray,
    time_limit_s: float,
    mip_rel_gap: float,
    big: bool,
) -> MilpResult:
    """Solve the covering MILP (:func:`_constraints`) with HiGHS, warm-started from `start`."""
    n_c, n_d = model.cover.shape
    deadline = time.perf_counter() + max(float(time_limit_s), 0.01)
    h = _highs(
        model, sites_limit=sites_limit, target_weight=target_weight, integer=True, deadline=deadline
    )
    h.setOptionValue("mip_rel_gap", float(mip_rel_gap))
    if big:
        # big models: shrink_model has done the reductions that matter, and the
        # interior point method reaches the root bound far sooner than the simplex
        h.setOptionValue("presolve", "off")
        h.setOptionValue("mip_lp_solver", "ipm")
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
    return MilpResult(
        sites=sites.astype(np.int64),
        objective=float(info.objective_function_value),
        bound=float(info.mip_dual_bound),
        optimal=status == highspy.HighsModelStatus.kOptimal,
        ran=ok,
    )


def lp_relaxation(
    model: ShrunkModel, p: int, *, seconds: float
) -> tuple[FloatArray, FloatArray] | None:
    """Solve the LP relaxation of maximal covering (interior point); return (x, cover-row duals).

    None when it did not finish within `seconds`. The duals are only used
    as Lagrangian multipliers, whose bound :func:`lagrangian_value`
    recomputes exactly, so no solver tolerance enters the bound.
    """
    n_c, n_d = model.cover.shape
    deadline = time.perf_counter() + max(float(seconds), 0.01)
    h = _highs(model, sites_limit=p, target_weight=None, integer=False, deadline=deadline)
    h.setOptionValue("solver", "ipm")
    h.setOptionValue("presolve", "off")
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    sol = h.getSolution()
    x = np.asarray(sol.col_value, dtype=np.float64)[:n_c]
    duals = np.abs(np.asarray(sol.row_dual, dtype=np.float64)[:n_d])
    return x, duals
