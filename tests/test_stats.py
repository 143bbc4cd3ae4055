"""The weighted quantile's equal-weight path gives what sorting everything gives."""

from __future__ import annotations

import numpy as np
import pytest

from lifecircle.stats import weighted_quantile


def _by_sorting(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The definition: smallest value whose cumulative weight (sorted ascending) reaches q."""
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order])
    for i, c in enumerate(cum):
        if c >= q * cum[-1]:
            return float(values[order][i])
    return float(values[order][-1])


@pytest.mark.parametrize("weight", [1.0, 0.3, 7.0, 1e-3])
def test_equal_weights_match_the_sorted_definition(weight: float) -> None:
    rng = np.random.default_rng(3)
    for n in (1, 2, 5, 100, 1001):
        values = np.round(rng.uniform(0, 2000, n), 0)  # ties
        values[rng.random(n) < 0.3] = np.inf  # beyond the search limit
        weights = np.full(n, weight)
        for q in (0.0, 0.1, 0.5, 0.9, 0.99, 1.0):
            assert weighted_quantile(values, weights, q) == _by_sorting(values, weights, q)


def test_unequal_weights_still_sort() -> None:
    values = np.array([5.0, 1.0, 3.0, np.inf])
    weights = np.array([1.0, 1.0, 5.0, 1.0])
    assert weighted_quantile(values, weights, 0.5) == 3.0 == _by_sorting(values, weights, 0.5)
