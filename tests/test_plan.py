"""Siting (lifecircle.plan): coverage matrix vs independent distances, models vs brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import shapely

from lifecircle.access import Router
from lifecircle.errors import InputError
from lifecircle.plan import (
    STATUS_INFEASIBLE_TARGET,
    STATUS_OPTIMAL,
    candidate_points,
    coverage_curve,
    coverage_matrix,
    greedy_bound,
    greedy_cover,
    lagrangian_bound,
    shrink_model,
    solve_fewest_sites,
    solve_max_covering,
)
from tests.conftest import care_home, toy_network


def _snap(rows: list[tuple[int, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["edge", "along_m", "offset_m"])


# --------------------------------------------------------------------------- candidates


def test_candidate_points_spacing_by_hand() -> None:
    # a 250 m street and a 40 m street, spacing 100 m: 3 points at 250/6, 125, 5*250/6; 1 midpoint
    net = toy_network([(0, 0), (250, 0), (250, 40)], [(0, 1), (1, 2)])
    out = candidate_points(net, np.array([True, True]), spacing_m=100)
    assert out["edge"].tolist() == [0, 0, 0, 1]
    assert out["along_m"].to_numpy() == pytest.approx([250 / 6, 125, 250 * 5 / 6, 20])
    assert out.geometry.x.to_numpy() == pytest.approx([250 / 6, 125, 250 * 5 / 6, 250])
    assert out.geometry.y.to_numpy() == pytest.approx([0, 0, 0, 20])
    # not routable: skipped; outside the extent: dropped
    only = candidate_points(net, np.array([True, False]), spacing_m=100)
    assert only["edge"].tolist() == [0, 0, 0]
    inside = candidate_points(
        net, np.array([True, True]), spacing_m=100, extent=shapely.box(100, -1, 300, 50)
    )
    assert inside["along_m"].to_numpy() == pytest.approx([125, 250 * 5 / 6, 20])
    assert inside["candidate"].tolist() == [0, 1, 2]


def test_candidate_points_bad_spacing() -> None:
    net = toy_network([(0, 0), (250, 0)], [(0, 1)])
    with pytest.raises(InputError, match="candidate-spacing-m"):
        candidate_points(net, np.array([True]), spacing_m=0)


# --------------------------------------------------------------------------- coverage matrix


def _toy() -> tuple[Router, pd.DataFrame, pd.DataFrame]:
    # edges: 0 = 0-1, 1 = 1-2, 2 = 1-3, each 100 m
    net = toy_network([(0, 0), (100, 0), (200, 0), (100, 100)], [(0, 1), (1, 2), (1, 3)])
    cands = _snap([(0, 10.0, 0.0), (1, 90.0, 5.0), (2, 50.0, 0.0), (-1, np.nan, np.nan)])
    demand = _snap(
        [(0, 80.0, 10.0), (1, 20.0, 0.0), (2, 95.0, 20.0), (0, 0.0, 0.0), (-1, np.nan, np.nan)]
    )
    return Router.from_network(net), cands, demand


def test_coverage_matrix_by_hand() -> None:
    router, cands, demand = _toy()
    got = coverage_matrix(router, cands, demand, threshold_m=125.0).toarray()
    # c0 (edge 0 at 10 m): d0 same edge 10+70=80, d1 90+20=110, d2 90+95+20=205, d3 10
    # c1 (edge 1 at 90 m, 5 m off): node 1 at 95: d0 20+95+10=125 (= threshold: in), d1 5+70=75
    # c2 (edge 2 at 50 m): d0 20+50+10=80, d1 50+20=70, d2 same edge 45+20=65, d3 150
    # c3 and d4 are unreachable
    expected = np.array(
        [
            [1, 1, 0, 1, 0],
            [1, 1, 0, 0, 0],
            [1, 1, 1, 0, 0],
            [0, 0, 0, 0, 0],
        ],
        dtype=bool,
    )
    np.testing.assert_array_equal(got, expected)
    assert coverage_matrix(router, cands, demand, threshold_m=124.999).toarray()[1, 0] == 0


def test_coverage_matrix_toy_equals_router_per_candidate() -> None:
    router, cands, demand = _toy()
    for threshold in (50.0, 80.0, 125.0, 300.0):
        got = coverage_matrix(router, cands, demand, threshold_m=threshold, block_cells=4)
        for i in range(len(cands)):
            d = router.distances(demand, cands.iloc[[i]], limit_m=threshold)
            np.testing.assert_array_equal(got[[i]].toarray().ravel(), d <= threshold)


@pytest.fixture(scope="module")
def lujiazui_area():  # type: ignore[no-untyped-def]
    from lifecircle.pipeline import facility_access_layer
    from lifecircle.prepare import AreaRequest, prepare_area
    from lifecircle.snapping import snap_area

    prepared = prepare_area(AreaRequest(district="pudong"))
    access = facility_access_layer(prepared.facilities, prepared.facility_access)
    return prepared, snap_area(prepared.network, prepared.residents, access)


def test_coverage_matrix_lujiazui_equals_router_per_candidate(lujiazui_area) -> None:  # type: ignore[no-untyped-def]
    from lifecircle.snapping import snap_to_routable

    prepared, snapped = lujiazui_area
    net = prepared.network
    cands = candidate_points(
        net, snapped.routable, spacing_m=100, extent=prepared.extent.geometry.iloc[0]
    )
    rng = np.random.default_rng(10)
    pick = np.sort(rng.choice(len(cands), 300, replace=False))
    # candidates reached like facilities: snapped to the routable network
    c_snap = snap_to_routable(cands.iloc[pick], net, routable=snapped.routable)
    router = Router.from_network(net)
    threshold = 1000.0
    # blocks of 32 candidates, so several blocks are exercised
    got = coverage_matrix(
        router, c_snap, snapped.residents, threshold_m=threshold, block_cells=32 * net.n_nodes
    )
    assert got.shape == (300, len(snapped.residents))
    assert 0 < got.nnz < got.shape[0] * got.shape[1]
    for i in range(len(c_snap)):
        d = router.distances(snapped.residents, c_snap.iloc[[i]], limit_m=threshold)
        np.testing.assert_array_equal(got[[i]].toarray().ravel(), d <= threshold)


# --------------------------------------------------------------------------- models


def _instance(seed: int, n_c: int = 12, n_d: int = 40) -> tuple[sp.csr_matrix, np.ndarray]:
    rng = np.random.default_rng(seed)
    cover = rng.random((n_c, n_d)) < 0.15
    weight = rng.integers(1, 20, n_d).astype(float)
    return sp.csr_matrix(cover), weight


def _brute_max(cover: sp.csr_matrix, weight: np.ndarray, p: int) -> float:
    dense = cover.toarray()
    return max(
        float(weight[dense[list(s)].any(axis=0)].sum())
        for s in itertools.combinations(range(dense.shape[0]), p)
    )


def _brute_fewest(cover: sp.csr_matrix, weight: np.ndarray, target: float) -> int | None:
    dense = cover.toarray()
    for k in range(dense.shape[0] + 1):
        for s in itertools.combinations(range(dense.shape[0]), k):
            if weight[dense[list(s)].any(axis=0)].sum() >= target:
                return k
    return None


@pytest.mark.parametrize("seed", range(8))
def test_max_covering_equals_brute_force(seed: int) -> None:
    cover, weight = _instance(seed)
    best = _brute_max(cover, weight, 3)
    sol = solve_max_covering(cover, weight, 3, mip_rel_gap=0.0)
    assert sol.status == STATUS_OPTIMAL
    assert sol.proven
    assert sol.covered_weight == pytest.approx(best)
    assert sol.bound == pytest.approx(best)
    assert sol.gap == 0.0
    assert sol.n_sites <= 3
    # the sites really cover that much, and gains are the ranked marginal weights
    covered = cover.toarray()[sol.sites].any(axis=0)
    assert weight[covered].sum() == pytest.approx(best)
    assert sol.gains.sum() == pytest.approx(best)
    assert list(sol.gains) == sorted(sol.gains, reverse=True)
    # greedy alone and the relaxations give valid bounds
    g_sites, g_gains = greedy_cover(cover, weight, max_sites=3)
    assert g_gains.sum() <= best + 1e-9 <= greedy_bound(cover, weight, g_sites, 3) + 1e-9
    lag, _, lag_value = lagrangian_bound(cover, weight, 3, incumbent=0.0, seconds=2.0)
    assert lag_value <= best + 1e-9 <= lag + 1e-6


@pytest.mark.parametrize("seed", range(6))
def test_fewest_sites_equals_brute_force(seed: int) -> None:
    cover, weight = _instance(seed)
    reachable = weight[cover.toarray().any(axis=0)].sum()
    for share in (0.3, 0.6, 0.9):
        target = share * reachable
        need = _brute_fewest(cover, weight, target)
        sol = solve_fewest_sites(cover, weight, target, mip_rel_gap=0.0)
        assert sol.status == STATUS_OPTIMAL
        assert sol.n_sites == need
        assert sol.objective == need
        assert sol.bound == need
        assert sol.covered_weight >= target - 1e-9
        assert weight[cover.toarray()[sol.sites].any(axis=0)].sum() >= target - 1e-9


def test_fewest_sites_target_out_of_reach() -> None:
    cover, weight = _instance(3)
    dense = cover.toarray()
    reachable = weight[dense.any(axis=0)].sum()
    assert reachable < weight.sum()  # some demand no candidate covers
    sol = solve_fewest_sites(cover, weight, weight.sum(), mip_rel_gap=0.0)
    assert sol.status == STATUS_INFEASIBLE_TARGET
    assert sol.proven
    assert sol.covered_weight == pytest.approx(reachable)
    assert sol.n_sites == _brute_fewest(cover, weight, reachable)
    assert sol.unreachable_weight == pytest.approx(weight.sum() - reachable)
    assert sol.reachable_weight == pytest.approx(reachable)


def test_fewest_sites_zero_target() -> None:
    cover, weight = _instance(1)
    sol = solve_fewest_sites(cover, weight, 0.0)
    assert sol.n_sites == 0
    assert sol.status == STATUS_OPTIMAL


def test_ties_go_to_the_lowest_index() -> None:
    # candidates 1 and 3 are identical and best; 0 and 2 tie for second place
    cover = sp.csr_matrix(
        np.array(
            [
                [1, 0, 0, 0, 0],
                [0, 1, 1, 1, 0],
                [0, 0, 0, 0, 1],
                [0, 1, 1, 1, 0],
            ],
            dtype=bool,
        )
    )
    weight = np.array([2.0, 1.0, 1.0, 1.0, 2.0])
    sites, gains = greedy_cover(cover, weight, max_sites=2)
    assert sites.tolist() == [1, 0]
    assert gains.tolist() == [3.0, 2.0]
    for _ in range(3):
        sol = solve_max_covering(cover, weight, 2, mip_rel_gap=0.0)
        assert sol.sites.tolist() == [1, 0]
    assert solve_fewest_sites(cover, weight, 3.0).sites.tolist() == [1]


def test_shrink_merges_columns_and_drops_dominated() -> None:
    cover = sp.csr_matrix(
        np.array(
            [
                [1, 1, 0, 0],  # dominated by candidate 2
                [0, 0, 0, 0],  # covers nothing
                [1, 1, 1, 0],
                [0, 0, 1, 0],  # dominated by candidate 2
                [1, 1, 1, 0],  # same as 2: the lower index stays
            ],
            dtype=bool,
        )
    )
    model = shrink_model(cover, np.array([1.0, 2.0, 4.0, 8.0]))
    assert model.candidates.tolist() == [2]
    # columns 0 and 1 have the same candidates {0, 2, 4}: merged; column 3 is unreachable
    assert model.column_of.tolist() == [0, 0, 1, -1]
    assert model.weight.tolist() == [3.0, 4.0]
    assert model.unreachable_weight == 8.0


def test_bad_weights() -> None:
    cover, weight = _instance(0)
    with pytest.raises(InputError, match="weights"):
        solve_max_covering(cover, weight[:-1], 2)
    with pytest.raises(InputError, match=">= 0"):
        solve_max_covering(cover, -weight, 2)


def test_coverage_curve_each_k_is_the_brute_force_optimum() -> None:
    cover, weight = _instance(5)
    curve = coverage_curve(cover, weight, 4, mip_rel_gap=0.0)
    assert [s.n_sites for s in curve] == [1, 2, 3, 4]
    for k, sol in enumerate(curve, start=1):
        assert sol.status == STATUS_OPTIMAL
        assert sol.covered_weight == pytest.approx(_brute_max(cover, weight, k))
    greedy = coverage_curve(cover, weight, 4, time_limit_s=0)
    for g, exact in zip(greedy, curve, strict=True):
        assert g.covered_weight <= exact.covered_weight + 1e-9 <= g.bound + 1e-9


@pytest.mark.parametrize("seed", range(4))
def test_max_covering_large_model_path_equals_brute_force(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # force the path of big models: 1-swaps and the Lagrangian bound before HiGHS
    import lifecircle.plan_solve as plan_solve

    monkeypatch.setattr(plan_solve, "SMALL_MODEL_NNZ", 0)
    cover, weight = _instance(seed + 20, n_c=14, n_d=60)
    best = _brute_max(cover, weight, 4)
    sol = solve_max_covering(cover, weight, 4, time_limit_s=30, mip_rel_gap=0.0)
    assert sol.status == STATUS_OPTIMAL
    assert sol.covered_weight == pytest.approx(best)
    # no MILP: the greedy with its bound, never called optimal unless the bound proves it
    quick = solve_max_covering(cover, weight, 4, time_limit_s=0)
    assert quick.covered_weight <= best + 1e-9 <= quick.bound + 1e-9
    assert quick.gap == pytest.approx((quick.bound - quick.covered_weight) / quick.bound)
    assert (quick.status == STATUS_OPTIMAL) == (quick.covered_weight == quick.bound)
    target = 0.8 * weight[cover.toarray().any(axis=0)].sum()
    fewest = solve_fewest_sites(cover, weight, target, time_limit_s=30, mip_rel_gap=0.0)
    assert fewest.status == STATUS_OPTIMAL
    assert fewest.n_sites == _brute_fewest(cover, weight, target)


def test_time_limit_is_reported_not_hidden() -> None:
    # a tiny time limit on a model HiGHS can't close at once: the gap and status say so
    rng = np.random.default_rng(0)
    cover = sp.csr_matrix(rng.random((300, 2000)) < 0.02)
    weight = rng.integers(1, 100, 2000).astype(float)
    greedy = solve_max_covering(cover, weight, 25, time_limit_s=0)
    sol = solve_max_covering(cover, weight, 25, time_limit_s=0.05)
    assert sol.status == "time_limit"
    assert not sol.proven
    assert sol.bound > sol.covered_weight
    assert sol.gap == pytest.approx((sol.bound - sol.covered_weight) / sol.bound)
    # the 1-swaps improved the greedy, the bound is no worse than the greedy's
    assert sol.covered_weight > greedy.covered_weight
    assert sol.bound <= greedy.bound


def test_plan_lujiazui_elderly_care_reproduced_by_coverage(lujiazui_area) -> None:  # type: ignore[no-untyped-def]
    """The plan's predicted coverage is what coverage computes with the sites added."""
    import geopandas as gpd

    from lifecircle.pipeline import CoverageOptions, compute_coverage, scenario_area
    from lifecircle.plan import plan_category
    from lifecircle.snapping import snap_to_routable

    prepared, snapped = lujiazui_area
    prepared = scenario_area(prepared, add=care_home())  # Lujiazui maps no elderly care
    net = prepared.network
    options = CoverageOptions(categories=("elderly_care",), isochrones=False, make_map=False)
    before = compute_coverage(prepared, options).residents
    cands = candidate_points(
        net, snapped.routable, spacing_m=100, extent=prepared.extent.geometry.iloc[0]
    )
    c_snap = snap_to_routable(cands, net, routable=snapped.routable)
    plan = plan_category(
        Router.from_network(net),
        snapped.residents,
        prepared.residents["weight"].to_numpy(dtype=float),
        before["covered_elderly_care"].to_numpy(dtype=bool),
        c_snap,
        threshold_m=1000.0,
        target=0.99,
        max_sites=3,
        time_limit_s=30,
    )
    assert 0 < plan.coverage_now < 0.99
    assert plan.fewest.n_sites >= 1
    assert plan.fewest.status in {STATUS_OPTIMAL, STATUS_INFEASIBLE_TARGET}
    # the curve rises and its k = n point can't beat the target before n sites
    assert plan.curve_coverage == sorted(plan.curve_coverage)
    sites = cands.iloc[plan.fewest.sites]
    added = gpd.GeoDataFrame(
        {"category": ["elderly_care"] * len(sites), "subtype": "nursing_home", "name": ""},
        geometry=sites.geometry.to_numpy(),
        crs=prepared.facilities.crs,
    )
    after = compute_coverage(scenario_area(prepared, add=added), options)
    covered = after.residents["covered_elderly_care"].to_numpy(dtype=bool)
    expected = before["covered_elderly_care"].to_numpy(dtype=bool) | plan.newly_covered
    np.testing.assert_array_equal(covered, expected)
    weight = prepared.residents["weight"].to_numpy(dtype=float)
    assert weight[covered].sum() / weight.sum() == pytest.approx(plan.coverage_reached, abs=1e-12)
    if plan.fewest.status == STATUS_OPTIMAL:
        assert plan.coverage_reached >= 0.99


def test_no_candidates_or_no_reach() -> None:
    router, _, demand = _toy()
    none = _snap([(-1, np.nan, np.nan)])
    cover = coverage_matrix(router, none, demand, threshold_m=100.0)
    assert cover.shape == (1, 5)
    assert cover.nnz == 0
    weight = np.ones(5)
    sol = solve_fewest_sites(cover, weight, 2.0)
    assert sol.status == STATUS_INFEASIBLE_TARGET
    assert sol.n_sites == 0
    assert sol.unreachable_weight == 5.0
    assert solve_max_covering(cover, weight, 3).covered_weight == 0.0
    assert coverage_curve(cover, weight, 3)[0].covered_weight == 0.0


@pytest.mark.parametrize("seed", range(4))
def test_lagrangian_values_bound_the_brute_force_optimum(seed: int) -> None:
    # any multipliers >= 0 give valid bounds: above the best covered weight with p sites,
    # below the fewest sites reaching a target (both brute-forced here)
    from lifecircle.plan_model import lagrangian_value, target_lagrangian_value

    cover, weight = _instance(seed + 40, n_c=10, n_d=40)
    rng = np.random.default_rng(seed)
    best3 = _brute_max(cover, weight, 3)
    target = 0.7 * weight[cover.toarray().any(axis=0)].sum()
    fewest = _brute_fewest(cover, weight, target)
    assert fewest is not None
    for _ in range(30):
        lam = weight * rng.random(len(weight)) * rng.choice([0.1, 1.0, 3.0])
        assert lagrangian_value(cover, weight, 3, lam)[0] >= best3 - 1e-9
        assert target_lagrangian_value(cover, weight, target, lam / weight.max()) <= fewest + 1e-9


def test_target_lagrangian_bound_by_hand() -> None:
    # three disjoint candidates of weight 5 each, target 12: two cover 10 < 12, so 3 are needed;
    # the LP bound is 12 / 5 = 2.4, hence a proven bound of ceil(2.4) = 3
    from lifecircle.plan_model import target_lagrangian_bound

    cover = sp.csr_matrix(np.kron(np.eye(3, dtype=bool), np.ones((1, 5), dtype=bool)))
    weight = np.ones(15)
    bound = target_lagrangian_bound(cover, weight, 12.0, upper=3, seconds=5.0)
    assert 2.0 < bound <= 2.4 + 1e-9
    sol = solve_fewest_sites(cover, weight, 12.0, time_limit_s=5)
    assert sol.n_sites == 3
    assert sol.status == STATUS_OPTIMAL


@pytest.mark.parametrize("seed", range(3))
def test_tabu_search_never_worse_and_within_the_optimum(seed: int) -> None:
    from lifecircle.plan_model import covered_weight, swap_improve, tabu_search

    cover, weight = _instance(seed + 60, n_c=14, n_d=60)
    start, _ = greedy_cover(cover, weight, max_sites=4)
    local = swap_improve(cover, weight, start, seconds=5)
    tabu = tabu_search(cover, weight, local, seconds=0.5)
    best = _brute_max(cover, weight, 4)
    assert len(set(tabu.tolist())) == 4
    assert covered_weight(cover, weight, local) <= covered_weight(cover, weight, tabu) <= best
    # on instances this small the tabu search reaches the brute-force optimum
    assert covered_weight(cover, weight, tabu) == pytest.approx(best)


# --------------------------------------------------------------------------- fast local search


def _swap_values(cover: sp.csr_matrix, weight: np.ndarray, sites: np.ndarray) -> np.ndarray:
    """Covered weight after every swap (candidate in, position out), recomputed from scratch."""
    dense = cover.toarray()
    out = np.full((dense.shape[0], len(sites)), -np.inf)
    for k in range(dense.shape[0]):
        if k in sites:
            continue
        for s in range(len(sites)):
            trial = sites.copy()
            trial[s] = k
            out[k, s] = weight[dense[trial].any(axis=0)].sum()
    return out


@pytest.mark.parametrize("seed", range(4))
def test_incremental_swap_gains_equal_recomputation(seed: int) -> None:
    # the 1-swap gains kept up to date swap after swap equal the covered weight recomputed
    # from the dense matrix for every (candidate in, site out), along a random walk of swaps
    from lifecircle.plan_model import _SwapState

    rng = np.random.default_rng(seed)
    cover = sp.csr_matrix(rng.random((15, 50)) < 0.25)
    weight = rng.random(50) * 10
    sites = rng.choice(15, size=4, replace=False)
    state = _SwapState(cover, weight, sites)
    for _ in range(25):
        now = weight[cover.toarray()[state.sites].any(axis=0)].sum()
        assert state.value == pytest.approx(now)
        expected = _swap_values(cover, weight, state.sites) - now
        got = state.deltas()
        np.testing.assert_allclose(got[np.isfinite(expected)], expected[np.isfinite(expected)])
        assert np.isneginf(got[~np.isfinite(expected)]).all()
        k = int(rng.choice(np.flatnonzero(~state.is_open)))
        state.swap(k, int(rng.integers(4)))


@pytest.mark.parametrize("seed", range(6))
def test_iterated_swap_search_reaches_the_brute_force_optimum(seed: int) -> None:
    from lifecircle.plan_model import covered_weight, iterated_swap_search, swap_improve

    cover, weight = _instance(seed + 80, n_c=16, n_d=70)
    best = _brute_max(cover, weight, 4)
    start, _ = greedy_cover(cover, weight, max_sites=4)
    local = swap_improve(cover, weight, start, seconds=5)
    # a local optimum: no single swap improves it (checked from scratch), never above the optimum
    value = covered_weight(cover, weight, local)
    assert (_swap_values(cover, weight, local) <= value + 1e-9).all()
    assert covered_weight(cover, weight, start) <= value <= best + 1e-9
    found = iterated_swap_search(cover, weight, local, seconds=10, stop_weight=best)
    assert len(set(found.tolist())) == 4
    assert covered_weight(cover, weight, found) == pytest.approx(best)
    # same seed, same moves: the same sites, run after run
    again = iterated_swap_search(cover, weight, local, seconds=10, stop_weight=best)
    assert again.tolist() == found.tolist()
    # a pool restricts the random moves only; the pool here is the optimum's complement plus it
    pooled = iterated_swap_search(
        cover, weight, local, seconds=10, pool=np.arange(16), stop_weight=best
    )
    assert covered_weight(cover, weight, pooled) == pytest.approx(best)


def test_swap_ties_go_to_the_lowest_candidate_then_position() -> None:
    # sites {0, 1}; candidates 2 and 3 are identical and each improves on swapping out either
    # site by the same amount: the lowest candidate (2) replaces the earliest position (0)
    from lifecircle.plan_model import swap_improve

    cover = sp.csr_matrix(
        np.array(
            [
                [1, 0, 0, 0],
                [0, 1, 0, 0],
                [0, 0, 1, 1],
                [0, 0, 1, 1],
            ],
            dtype=bool,
        )
    )
    weight = np.array([1.0, 1.0, 2.0, 2.0])
    assert swap_improve(cover, weight, np.array([0, 1]), seconds=5).tolist() == [2, 1]
    assert swap_improve(cover, weight, np.array([1, 0]), seconds=5).tolist() == [2, 0]


@pytest.mark.parametrize("seed", range(3))
def test_target_lagrangian_subgradient_is_a_subgradient(seed: int) -> None:
    # the Lagrangian of the fewest-sites model is concave in lambda: L(mu) <= L(lam) + g.(mu - lam)
    # for the subgradient g the bound's ascent uses, at any lam, mu >= 0
    from lifecircle.plan_model import _target_lagrangian, target_lagrangian_value

    cover, weight = _instance(seed + 90, n_c=10, n_d=40)
    target = 0.6 * weight[cover.toarray().any(axis=0)].sum()
    as_float = sp.csr_matrix(cover, dtype=np.float64)
    rng = np.random.default_rng(seed)
    for _ in range(30):
        lam, mu = rng.random(40) * 0.3, rng.random(40) * 0.3
        value, grad = _target_lagrangian(as_float, weight, target, lam)
        assert value == pytest.approx(target_lagrangian_value(cover, weight, target, lam))
        at_mu = target_lagrangian_value(cover, weight, target, mu)
        assert at_mu <= value + grad @ (mu - lam) + 1e-9


@pytest.mark.parametrize("seed", range(3))
def test_huge_fewest_sites_model_gets_the_lagrangian_bound_only(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # above MILP_MAX_NNZ HiGHS is not started (its root LP alone would outlast the limit):
    # the answer is the greedy with a proven Lagrangian bound <= the brute-force optimum
    import lifecircle.plan_solve as plan_solve

    def no_milp(*args: object, **kwargs: object) -> None:
        raise AssertionError("HiGHS started on a model above MILP_MAX_NNZ")

    monkeypatch.setattr(plan_solve, "SMALL_MODEL_NNZ", 0)
    monkeypatch.setattr(plan_solve, "MILP_MAX_NNZ", 0)
    monkeypatch.setattr(plan_solve, "milp", no_milp)
    cover, weight = _instance(seed + 30, n_c=12, n_d=60)
    target = 0.8 * weight[cover.toarray().any(axis=0)].sum()
    need = _brute_fewest(cover, weight, target)
    assert need is not None
    sol = solve_fewest_sites(cover, weight, target, time_limit_s=1.0)
    assert sol.covered_weight >= target - 1e-9
    assert 1 <= sol.bound <= need <= sol.n_sites
    assert sol.proven == (sol.bound == sol.n_sites)
    assert sol.seconds < 2.0


@pytest.mark.parametrize("seed", range(4))
def test_max_covering_bound_is_above_the_brute_force_optimum(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # big-model path (LP bound, swaps, iterated local search) without HiGHS afterwards: whatever
    # is returned, the reported bound is >= the brute-force optimum >= the covered weight
    import lifecircle.plan_solve as plan_solve

    monkeypatch.setattr(plan_solve, "SMALL_MODEL_NNZ", 0)
    monkeypatch.setattr(plan_solve, "MILP_LP_FACTOR", np.inf)  # never worth running HiGHS
    cover, weight = _instance(seed + 100, n_c=16, n_d=70)
    best = _brute_max(cover, weight, 3)
    sol = solve_max_covering(cover, weight, 3, time_limit_s=0.5, mip_rel_gap=0.0)
    assert sol.covered_weight <= best + 1e-9 <= sol.bound + 1e-6
    assert sol.gap == pytest.approx((sol.bound - sol.covered_weight) / sol.bound)
    assert sol.proven == (sol.gap == 0.0)
    assert "milp" not in sol.method
    assert weight[cover.toarray()[sol.sites].any(axis=0)].sum() == pytest.approx(sol.covered_weight)
