"""Small weighted statistics shared by the coverage and gap summaries.

One definition of the weighted quantile is used everywhere (coverage
medians and 90th percentiles, zone tables, gap clusters), so the figures in
``coverage.json`` and ``gaps.json`` agree.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def weighted_quantile(values: FloatArray, weights: FloatArray, q: float) -> float:
    """Return the lower weighted `q` quantile of `values`.

    The result is the smallest value whose cumulative weight (values sorted
    ascending, ties in input order) reaches ``q`` times the total weight.
    ``inf`` values (beyond the search limit) sort last, so the result is
    ``inf`` when more than ``1 - q`` of the weight lies beyond the limit.

    Parameters
    ----------
    values
        Values (e.g. distances in metres); ``inf`` allowed, NaN not.
    weights
        Non-negative weights aligned to `values`.
    q
        Quantile in ``[0, 1]``.

    Returns
    -------
    float
        The quantile, or NaN when there are no values or no weight.

    Examples
    --------
    >>> weighted_quantile(np.array([1.0, 2.0, 3.0]), np.array([1.0, 1.0, 2.0]), 0.5)
    2.0
    >>> weighted_quantile(np.array([1.0, np.inf]), np.array([1.0, 3.0]), 0.5)
    inf
    """
    values = np.asarray(values, dtype=float)
    weights = np.asarray(weights, dtype=float)
    if len(values) == 0 or not weights.sum() > 0:
        return float("nan")
    if (weights == weights[0]).all():
        # equal weights (grid points): the cumulative weight does not depend on the order,
        # so the answer is the value of rank `pos`, found without sorting everything
        cum = np.cumsum(weights)
        pos = min(int(np.searchsorted(cum, q * cum[-1])), len(values) - 1)
        return float(np.partition(values, pos)[pos])
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order])
    pos = int(np.searchsorted(cum, q * cum[-1]))
    return float(values[order][min(pos, len(values) - 1)])


def quantile_fields(
    values: FloatArray, weights: FloatArray, q: float, name: str, *, ndigits: int = 1
) -> dict[str, Any]:
    """Return a quantile as JSON-ready fields: the value and whether it lies beyond the limit.

    An infinite quantile (more weight beyond the search limit than ``1 - q``)
    becomes ``None`` and its sibling ``<prefix>_beyond_search_limit`` (the
    part of `name` before the first underscore, e.g. ``p90``) is True, so
    strict JSON keeps the meaning "farther than the search went".

    Examples
    --------
    >>> quantile_fields(np.array([10.0, np.inf]), np.array([1.0, 1.0]), 0.9, "p90_distance_m")
    {'p90_distance_m': None, 'p90_beyond_search_limit': True}
    """
    value = weighted_quantile(values, weights, q)
    beyond = bool(np.isposinf(value))
    return {
        name: round(value, ndigits) if np.isfinite(value) else None,
        f"{name.split('_')[0]}_beyond_search_limit": beyond,
    }


def distance_quantiles(distances_m: FloatArray, weights: FloatArray) -> dict[str, Any]:
    """Weighted median and 90th-percentile distance, as the zone and tier tables give them.

    A quantile beyond the search limit (infinite distance) is NaN with its
    ``*_beyond_search_limit`` flag set.

    Examples
    --------
    >>> q = distance_quantiles(np.array([100.0, 200.0, np.inf]), np.array([1.0, 1.0, 3.0]))
    >>> q["median_beyond_search_limit"], q["p90_beyond_search_limit"]
    (True, True)
    >>> distance_quantiles(np.array([100.0, 300.0]), np.array([3.0, 1.0]))["median_m"]
    100.0
    """
    median = weighted_quantile(distances_m, weights, 0.5)
    p90 = weighted_quantile(distances_m, weights, 0.9)
    return {
        "median_m": median if np.isfinite(median) else np.nan,
        "median_beyond_search_limit": bool(np.isposinf(median)),
        "p90_m": p90 if np.isfinite(p90) else np.nan,
        "p90_beyond_search_limit": bool(np.isposinf(p90)),
    }
