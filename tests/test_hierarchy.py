"""The settlement hierarchy: DEGURBA grid, tiers, tier measures and the ordering test."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from lifecircle import hierarchy as hi
from lifecircle.errors import InputError
from lifecircle.hierarchy import HierarchyOptions, PopulationGrid
from tests.conftest import STATUS, ReplayServer

CRS = "EPSG:32651"
X0, Y0 = 350_000.0, 3_450_000.0  # a multiple of 1 km, so cell (i, j) is [X0 + j km, X0 + (j+1) km)


# --------------------------------------------------------------------------- DEGURBA grid


def _hand_grid() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 10 x 12 grid of persons per 1 km cell and its classes, worked out by hand.

    Returns persons, the classes with the majority-rule gap filling, and without it.
    """
    p = np.zeros((10, 12))
    # A: a 2 x 2 block of 20,000/km²: 4-connected, 80,000 >= 50,000 -> urban centre
    p[1:3, 1:3] = 20_000
    # a 400-person cell below A: >= 300/km² and 8-connected to A -> urban cluster (not centre)
    p[3, 1] = 400
    # B: two 30,000 cells touching at a corner only: as 4-connected groups each holds 30,000
    # < 50,000 (no centre); 8-connected they hold 60,000 >= 5,000 -> both urban cluster
    p[6, 1] = p[7, 2] = 30_000
    # C: a lone 2,000-person cell: dense (>= 1,500) but 2,000 < 50,000 and < 5,000 -> rural
    p[8, 5] = 2_000
    # D: exactly 50,000 in two edge-sharing cells -> urban centre (the threshold is >=)
    p[1, 6] = p[1, 7] = 25_000
    # E: 49,999 in two edge-sharing cells -> no centre, but an urban cluster
    p[4, 6] = 24_999
    p[4, 7] = 25_000
    # F: a ring of eight 10,000 cells around an empty cell (a park): the ring is one 4-connected
    # centre of 80,000; the park has 8 of 8 neighbours in it, so the majority rule fills it
    p[6:9, 9:12] = 10_000
    p[7, 10] = 0
    # G: 299 persons next to the ring: below 300/km², not part of any cluster -> rural
    p[5, 9] = 299
    no_fill = np.zeros((10, 12), dtype=np.int8)
    no_fill[1:3, 1:3] = 2
    no_fill[3, 1] = 1
    no_fill[6, 1] = no_fill[7, 2] = 1
    no_fill[1, 6] = no_fill[1, 7] = 2
    no_fill[4, 6] = no_fill[4, 7] = 1
    no_fill[6:9, 9:12] = 2
    no_fill[7, 10] = 0
    filled = no_fill.copy()
    filled[7, 10] = 2
    return p, filled, no_fill


def test_degurba_classes_match_the_hand_computed_grid() -> None:
    persons, filled, no_fill = _hand_grid()
    grid = PopulationGrid(persons, X0, Y0, 1000.0)
    np.testing.assert_array_equal(hi.degurba_classes(grid, HierarchyOptions()), filled)
    got = hi.degurba_classes(grid, HierarchyOptions(fill_gaps=False))
    np.testing.assert_array_equal(got, no_fill)


def test_degurba_majority_rule_needs_five_of_eight_neighbours() -> None:
    # an L of five 12,000 cells around (2, 2): 60,000 -> centre. (2, 2) has 5 neighbours in it
    # (joins); (1, 1) has 3 and a cell with 4 stays out
    p = np.zeros((6, 6))
    for r, c in [(1, 2), (1, 3), (2, 3), (3, 3), (3, 2)]:
        p[r, c] = 12_000
    classes = hi.degurba_classes(PopulationGrid(p, 0.0, 0.0, 1000.0), HierarchyOptions())
    assert classes[2, 2] == 2  # neighbours (1,2),(1,3),(2,3),(3,3),(3,2): five
    assert classes[2, 4] == 0  # neighbours (1,3),(2,3),(3,3): three
    without = hi.degurba_classes(
        PopulationGrid(p, 0.0, 0.0, 1000.0), HierarchyOptions(fill_gaps=False)
    )
    assert without[2, 2] == 0


def test_degurba_thresholds_are_parameters() -> None:
    persons, _, _ = _hand_grid()
    grid = PopulationGrid(persons, X0, Y0, 1000.0)
    # a 100,000 minimum turns block A (80,000) into an urban cluster only
    classes = hi.degurba_classes(grid, HierarchyOptions(centre_min_persons=100_000))
    assert classes[1, 1] == 1
    # a 1,000 cluster minimum turns the lone 2,000 cell C into an urban cluster
    classes = hi.degurba_classes(grid, HierarchyOptions(cluster_min_persons=1_000))
    assert classes[8, 5] == 1
    # 0.5 km cells: the same persons are four times as dense per km²
    assert PopulationGrid(persons, 0, 0, 500.0).cell_km2 == 0.25


def test_population_grid_sums_points_into_crs_aligned_cells() -> None:
    x = np.array([X0 + 10, X0 + 990, X0 + 1010, X0 + 2500])
    y = np.array([Y0 + 10, Y0 + 500, Y0 + 10, Y0 + 1500])
    grid, row, col = hi.population_grid(x, y, np.array([1.0, 2.0, 4.0, 8.0]), cell_m=1000.0)
    assert (grid.x0, grid.y0) == (X0 - 1000, Y0 - 1000)  # one empty cell of margin
    assert grid.persons[1, 1] == 3.0
    assert grid.persons[1, 2] == 4.0
    assert grid.persons[2, 3] == 8.0
    assert grid.persons.sum() == 15.0
    assert list(zip(row.tolist(), col.tolist(), strict=True)) == [(1, 1), (1, 1), (1, 2), (2, 3)]


def test_cluster_density_above_centre_density_is_refused() -> None:
    with pytest.raises(InputError, match="--cluster-density-km2 2000 exceeds"):
        hi.check_hierarchy_options(HierarchyOptions(cluster_density_km2=2000.0))


# --------------------------------------------------------------------------- ordering test


def _arrays(spec: dict[str, tuple[int, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tiers and covered flags from {tier: (points, covered points)}, one person each."""
    tiers, covered = [], []
    for tier, (n, k) in spec.items():
        tiers += [tier] * n
        covered += [True] * k + [False] * (n - k)
    return np.array(tiers, dtype=object), np.ones(len(tiers)), np.array(covered)


def _brute_force_ci(
    covered: np.ndarray, persons: np.ndarray, tiers: np.ndarray, a: str, b: str, seed: int
) -> tuple[float, float]:
    """Resample resident points by hand (rng.choice, probability ~ persons) within each tier."""
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(2000):
        share = {}
        for t in (a, b):
            idx = np.flatnonzero(tiers == t)
            p = persons[idx] / persons[idx].sum()
            draw = rng.choice(idx, size=len(idx), replace=True, p=p)
            share[t] = covered[draw].mean()
        diffs.append((share[a] - share[b]) * 100)
    return float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))


def test_ordering_holds_with_known_coverage_and_brute_force_intervals() -> None:
    tiers, persons, covered = _arrays(
        {"central": (200, 186), "suburban_core": (150, 105), "remote": (120, 48)}
    )
    test = hi.ordering_test(tiers, persons, {"elderly_care": covered}, bootstrap=2000, seed=1)
    e = test["elderly_care"]
    assert e["coverage"] == {"central": 0.93, "suburban_core": 0.70, "remote": 0.40}
    assert e["verdict"] == "holds"
    diffs = {d["pair"]: d for d in e["differences"]}
    assert diffs["central-suburban_core"]["points"] == pytest.approx(23.0)
    assert diffs["suburban_core-remote"]["points"] == pytest.approx(30.0)
    assert diffs["central-remote"]["points"] == pytest.approx(53.0)
    for pair in ("central-suburban_core", "suburban_core-remote"):
        a, b = pair.split("-")
        low, high = _brute_force_ci(covered, persons, tiers, a, b, seed=7)
        assert diffs[pair]["ci_low"] == pytest.approx(low, abs=2.0)
        assert diffs[pair]["ci_high"] == pytest.approx(high, abs=2.0)
        assert diffs[pair]["status"] == "higher"
    assert hi.verdict_sentence("elderly_care", e, "zh") == (
        "养老: 中心城区 93% > 郊区核心 70% > 边远地区 40%（符合论文的排序）"
    )


def test_ordering_fails_when_the_core_beats_the_central_city() -> None:
    tiers, persons, covered = _arrays(
        {"central": (200, 120), "suburban_core": (200, 180), "remote": (100, 30)}
    )
    e = hi.ordering_test(tiers, persons, {"health": covered})["health"]
    assert e["verdict"] == "fails"
    assert [d["status"] for d in e["differences"]] == ["lower", "higher", "higher"]
    assert hi.verdict_sentence("health", e) == (
        "Health care: central city 60% < suburban core 90% > remote areas 30% "
        "(the paper's ordering fails)"
    )


def test_three_buildings_cannot_flip_the_verdict() -> None:
    # the core holds three resident points (2 covered: 67%) against 60% in the central city:
    # the point estimate says "lower", the interval says undecided
    tiers, persons, covered = _arrays(
        {"central": (300, 180), "suburban_core": (3, 2), "remote": (300, 60)}
    )
    e = hi.ordering_test(tiers, persons, {"school": covered})["school"]
    first = e["differences"][0]
    assert first["points"] < 0
    assert first["ci_low"] < 0 < first["ci_high"]
    assert first["status"] == "undecided"
    assert e["verdict"] == "undecided"
    assert "≈" in hi.verdict_sentence("school", e)


def test_weights_are_persons_not_points() -> None:
    # central: one covered point of 9 persons and one uncovered of 1 person -> 90%, not 50%
    tiers = np.array(["central", "central", "suburban_core", "remote"], dtype=object)
    persons = np.array([9.0, 1.0, 5.0, 5.0])
    covered = np.array([True, False, True, False])
    e = hi.ordering_test(tiers, persons, {"culture": covered})["culture"]
    assert e["coverage"]["central"] == pytest.approx(0.9)


def test_identical_full_coverage_is_equal_and_holds() -> None:
    tiers, persons, covered = _arrays(
        {"central": (50, 50), "suburban_core": (40, 40), "remote": (30, 30)}
    )
    e = hi.ordering_test(tiers, persons, {"school": covered})["school"]
    assert [d["status"] for d in e["differences"]] == ["equal", "equal", "equal"]
    assert e["verdict"] == "holds"


def test_a_tier_without_residents_is_not_testable() -> None:
    tiers, persons, covered = _arrays({"central": (50, 40)})
    e = hi.ordering_test(tiers, persons, {"school": covered})["school"]
    assert e["verdict"] == "not testable"
    assert e["coverage"]["remote"] is None
    assert e["differences"] == []
    assert hi.verdict_sentence("school", e) == (
        "School: central city 80%; the suburban-core and remote tiers hold no residents "
        "(not testable)"
    )
    assert hi.verdict_sentence("school", e, "zh") == (
        "学校: 中心城区 80%；郊区核心、边远地区均无居民（无法检验）"
    )


def test_tier_measures_by_hand() -> None:
    tiers = np.array(["central", "central", "central", "remote", "remote"], dtype=object)
    persons = np.array([1.0, 1.0, 2.0, 3.0, 1.0])
    covered = {"school": np.array([True, True, False, False, False])}
    dist = {"school": np.array([100.0, 200.0, 900.0, np.inf, 2000.0])}
    units = np.array(["a", "a", "b", "c", None], dtype=object)
    t = hi.tier_measures(tiers, persons, covered, dist, units=units).set_index("tier")
    c, r, s = t.loc["central"], t.loc["remote"], t.loc["suburban_core"]
    assert c["coverage"] == pytest.approx(0.5)
    assert c["left_out_persons"] == 2.0
    assert c["median_m"] == 200.0  # cumulative persons 1, 2 of 4 reach half at 200 m
    assert c["p90_m"] == 900.0
    assert (c["units"], c["zero_coverage_units"], c["zero_coverage_unit_names"]) == (2, 1, "b")
    assert c["zero_coverage_unit_share"] == 0.5
    assert np.isnan(r["median_m"])
    assert r["median_beyond_search_limit"]
    assert r["units"] == 1
    assert r["zero_coverage_units"] == 1
    assert s["resident_points"] == 0
    assert np.isnan(s["coverage"])


# --------------------------------------------------------------------------- a synthetic district


def _district(central: int, core: int, remote: int) -> gpd.GeoDataFrame:
    """100 central points, 50 in a dense core 10 km out, 50 sparse remote points 15-19 km out.

    `central`, `core`, `remote`: how many points of each group are covered.
    """
    rng = np.random.default_rng(0)
    rows = []

    def add(n: int, k: int, x: tuple[float, float], y: tuple[float, float], persons: float) -> None:
        xs, ys = rng.uniform(*x, n), rng.uniform(*y, n)
        for i in range(n):
            rows.append(
                {
                    "geometry": shapely.Point(X0 + xs[i], Y0 + ys[i]),
                    "persons": persons,
                    "covered": i < k,
                }
            )

    add(100, central, (100, 1900), (100, 1900), 2000.0)  # central unit 0-2 km
    add(50, core, (10_100, 10_900), (5_100, 5_900), 1200.0)  # one cell of 60,000 -> urban centre
    add(50, remote, (15_000, 19_000), (0, 9_000), 20.0)  # sparse -> rural
    res = gpd.GeoDataFrame(rows, crs=CRS)
    res["weight"] = res["persons"]
    res.attrs["weight_unit"] = "persons"
    res["covered_school"] = res["covered"]
    res["covered_all_categories"] = res["covered"]
    res["dist_school_m"] = np.where(res["covered"], 500.0, 2500.0)
    return res.drop(columns=["covered", "persons"])


def _units() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "zone": ["甲街道", "乙镇"],
            "code": ["310115005000", "310115125000"],
            "kind": ["subdistrict", "town"],
        },
        geometry=[
            shapely.box(X0, Y0, X0 + 2000, Y0 + 2000),
            shapely.box(X0 + 2000, Y0, X0 + 20_000, Y0 + 10_000),
        ],
        crs=CRS,
    )


def _run(residents: gpd.GeoDataFrame, *, offline: bool = True, **gap: object) -> dict:  # type: ignore[type-arg]
    from lifecircle.pipeline import GapOptions, _hierarchy
    from lifecircle.prepare import AreaRequest
    from lifecircle.zones import assign_units

    units = _units()
    residents["admin_unit"] = assign_units(residents, units)
    prepared = SimpleNamespace(
        crs=CRS, boundary=gpd.GeoDataFrame(geometry=[units.union_all()], crs=CRS)
    )
    summary, _, _ = _hierarchy(
        prepared, AreaRequest(offline=offline), residents, units, ("school",), GapOptions(**gap)
    )
    return summary


@pytest.mark.parametrize(
    ("covered", "verdict", "coverage"),
    [
        ((95, 35, 20), "holds", (0.95, 0.70, 0.40)),
        ((60, 45, 20), "fails", (0.60, 0.90, 0.40)),
        ((80, 42, 40), "undecided", (0.80, 0.84, 0.80)),
    ],
)
def test_synthetic_district_tiers_and_verdicts(
    covered: tuple[int, int, int], verdict: str, coverage: tuple[float, float, float]
) -> None:
    res = _district(*covered)
    summary = _run(res)
    assert res["tier"].tolist() == ["central"] * 100 + ["suburban_core"] * 50 + ["remote"] * 50
    assert res["degurba"].iloc[100] == "urban_centre"
    assert res["degurba"].iloc[199] == "rural"
    assert summary["tiers"]["suburban_core"] == {"resident_points": 50, "persons": 60000.0}
    e = summary["test"]["school"]
    assert e["verdict"] == verdict
    assert tuple(round(e["coverage"][t], 6) for t in hi.TIERS) == coverage
    assert summary["empty_tiers"] == []
    json.dumps(summary, allow_nan=True)


def test_town_seats_make_remote_residents_core(tmp_path: Path) -> None:
    res = _district(95, 35, 20)
    remote = res.geometry.iloc[150]
    seats = gpd.GeoDataFrame(geometry=[remote], crs=CRS).to_crs(4326)
    seats.to_file(tmp_path / "seats.geojson", driver="GeoJSON")
    _run(
        res,
        centres_file=tmp_path / "seats.geojson",
        hierarchy=HierarchyOptions(centre_radius_m=300.0),
    )
    near = res.geometry.iloc[150:].distance(remote) <= 300.0
    assert (res["tier"].iloc[150:] == np.where(near, "suburban_core", "remote")).all()
    assert near.sum() >= 1


def test_central_polygon_replaces_the_subdistricts(tmp_path: Path) -> None:
    res = _district(95, 35, 20)
    # a central city reaching 12 km east takes in the dense core too
    poly = gpd.GeoDataFrame(geometry=[shapely.box(X0, Y0, X0 + 12_000, Y0 + 10_000)], crs=CRS)
    poly.to_file(tmp_path / "central.geojson", driver="GeoJSON")
    summary = _run(res, central_file=tmp_path / "central.geojson")
    assert (res["tier"].iloc[:150] == "central").all()
    assert summary["empty_tiers"] == ["suburban_core"]
    assert summary["test"]["school"]["verdict"] == "not testable"
    assert summary["empty_tiers_note"]["en"] == "the suburban-core tier holds no residents"


def test_centres_file_must_hold_points(tmp_path: Path) -> None:
    res = _district(95, 35, 20)
    gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 1, 1)], crs=4326).to_file(
        tmp_path / "seats.geojson", driver="GeoJSON"
    )
    with pytest.raises(InputError, match="must hold points"):
        _run(res, centres_file=tmp_path / "seats.geojson")


def test_osm_place_nodes_from_the_replay_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """Place nodes come through the Overpass answer path (local replay server)."""
    res = _district(95, 35, 20)
    seat = gpd.GeoSeries([res.geometry.iloc[160]], crs=CRS).to_crs(4326).iloc[0]
    answer = {
        "version": 0.6,
        "osm3s": {"timestamp_osm_base": "2026-08-15T00:00:00Z"},
        "elements": [
            {
                "type": "node",
                "id": 1,
                "lat": seat.y,
                "lon": seat.x,
                "tags": {"place": "village", "name": "某村"},
            },
        ],
    }
    with ReplayServer(
        {"/api/status": STATUS, "/api/interpreter": json.dumps(answer).encode()}
    ) as server:
        monkeypatch.setenv("LIFECIRCLE_OVERPASS_URL", server.url + "/api")
        _run(res, offline=False, osm_places=True, hierarchy=HierarchyOptions(centre_radius_m=1.0))
        body = server.requests[-1][2]
    assert b"place" in body
    assert b"village" in body
    assert res["tier"].iloc[160] == "suburban_core"
    assert (res["tier"].iloc[150:160] == "remote").all()


def test_osm_places_offline_is_refused() -> None:
    res = _district(95, 35, 20)
    from lifecircle.pipeline import GapOptions, _hierarchy
    from lifecircle.prepare import AreaRequest

    prepared = SimpleNamespace(crs=CRS, boundary=None)
    with pytest.raises(InputError, match="--osm-places"):
        _hierarchy(
            prepared,
            AreaRequest(offline=True),
            res,
            _units(),
            ("school",),
            GapOptions(osm_places=True),
        )


def test_tier_persons_use_the_estimate_and_warn_without_one() -> None:
    from lifecircle.pipeline import _tier_persons

    res = pd.DataFrame({"weight": [360.0, 72.0]})
    res.attrs["weight_unit"] = "grid_point"
    with pytest.warns(RuntimeWarning, match="no estimate in persons"):
        persons, basis = _tier_persons(res.assign(persons=[np.nan, np.nan]))
    assert persons.tolist() == [0.0, 0.0]
    assert basis.startswith("none")
    assert _tier_persons(res.assign(persons=[3.0, 4.0]))[0].tolist() == [3.0, 4.0]
    res.attrs["weight_unit"] = "persons"
    assert _tier_persons(res)[0].tolist() == [360.0, 72.0]


def test_bootstrap_and_seed_are_checked() -> None:
    with pytest.raises(InputError, match="--bootstrap must be >= 1"):
        hi.check_hierarchy_options(HierarchyOptions(bootstrap=0))
    with pytest.raises(InputError, match="--seed must be >= 0"):
        hi.check_hierarchy_options(HierarchyOptions(seed=-1))
    with pytest.warns(RuntimeWarning, match="unstable"):
        hi.check_hierarchy_options(HierarchyOptions(bootstrap=50))


# --------------------------------------------------------------------------- review fixes


def _uniform_bootstrap_ci(
    covered: np.ndarray, persons: np.ndarray, tiers: np.ndarray, a: str, b: str, seed: int
) -> tuple[float, float]:
    """Resample resident points uniformly (rng.choice), persons-weighted share of each resample."""
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(3000):
        share = {}
        for t in (a, b):
            idx = np.flatnonzero(tiers == t)
            draw = rng.choice(idx, size=len(idx), replace=True)
            share[t] = float((persons[draw] * covered[draw]).sum() / persons[draw].sum())
        diffs.append((share[a] - share[b]) * 100)
    return float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))


def test_three_towers_among_many_houses_cannot_flip_the_verdict() -> None:
    # the core: three covered towers of 3,000 persons and 300 uncovered 1-person houses:
    # 96.8% of persons are covered, but only because of three buildings. Central: 90% of 300
    # equal buildings. Resampling buildings, a replicate without any tower (about 5% of them)
    # has core coverage 0, so central - core (-6.8 points) is undecided; drawing persons as
    # independent (Binomial over 303 points) called it "lower" and the claim "fails"
    tiers = np.array(["central"] * 300 + ["suburban_core"] * 303 + ["remote"] * 300, dtype=object)
    persons = np.concatenate([np.full(300, 30.0), np.full(3, 3000.0), np.ones(300), np.ones(300)])
    covered = np.concatenate(
        [np.arange(300) < 270, np.arange(303) < 3, np.arange(300) < 30]
    ).astype(bool)
    e = hi.ordering_test(tiers, persons, {"school": covered}, bootstrap=2000, seed=3)["school"]
    first = e["differences"][0]
    assert first["points"] == pytest.approx((0.9 - 9000 / 9300) * 100)
    low, high = _uniform_bootstrap_ci(covered, persons, tiers, "central", "suburban_core", 11)
    assert first["ci_low"] == pytest.approx(low, abs=2.0)
    assert first["ci_high"] == pytest.approx(high, abs=4.0)
    assert first["ci_high"] > 50  # the replicates without a tower
    assert first["status"] == "undecided"
    assert e["verdict"] == "undecided"
    # the per-tier interval of the core reaches down to 0 coverage
    assert e["coverage_ci"]["suburban_core"][0] == 0.0


def test_unequal_persons_intervals_match_building_resampling() -> None:
    # one tier, persons from 1 to 100 per building: the interval of the coverage must match
    # a brute-force resampling of buildings, which is wider than the Binomial one
    rng = np.random.default_rng(5)
    persons = np.round(rng.pareto(1.2, 400) * 20 + 1)
    covered = rng.random(400) < 0.6
    reps = hi.bootstrap_coverage(covered, persons, bootstrap=4000, rng=np.random.default_rng(1))
    brute = []
    for _ in range(4000):
        draw = rng.integers(0, 400, 400)
        brute.append((persons[draw] * covered[draw]).sum() / persons[draw].sum())
    assert np.percentile(reps, 2.5) == pytest.approx(np.percentile(brute, 2.5), abs=0.02)
    assert np.percentile(reps, 97.5) == pytest.approx(np.percentile(brute, 97.5), abs=0.02)
    p = (persons * covered).sum() / persons.sum()
    binomial_width = 2 * 1.96 * np.sqrt(p * (1 - p) / 400)
    assert np.percentile(reps, 97.5) - np.percentile(reps, 2.5) > 1.3 * binomial_width


def test_central_below_remote_fails_the_claim_even_with_a_small_core() -> None:
    # central 60% < remote 80% on 400 residents each (an interval far below 0); the core of ten
    # points (70%) is undecided against both: central >= core >= remote would imply central >=
    # remote, so the claim fails (it was called "undecided")
    tiers, persons, covered = _arrays(
        {"central": (400, 240), "suburban_core": (10, 7), "remote": (400, 320)}
    )
    e = hi.ordering_test(tiers, persons, {"culture": covered})["culture"]
    status = {d["pair"]: d["status"] for d in e["differences"]}
    assert status == {
        "central-suburban_core": "undecided",
        "suburban_core-remote": "undecided",
        "central-remote": "lower",
    }
    assert e["verdict"] == "fails"


def test_an_empty_central_polygon_is_refused(tmp_path: Path) -> None:
    # an empty --central file used to give "no resident is central city" without a word
    (tmp_path / "empty.geojson").write_text('{"type": "FeatureCollection", "features": []}')
    with pytest.raises(InputError, match="holds no polygon"):
        _run(_district(95, 35, 20), central_file=tmp_path / "empty.geojson")


def test_projected_coordinates_in_a_geojson_without_crs_are_refused(tmp_path: Path) -> None:
    # metres in a GeoJSON without a crs member are read as lon/lat: the central city was silently
    # empty (central city 2 km x 2 km at the district's origin: the 100 central residents)
    ring = [[X0, Y0], [X0 + 2000, Y0], [X0 + 2000, Y0 + 2000], [X0, Y0 + 2000], [X0, Y0]]
    feature = {
        "type": "Feature",
        "properties": {},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }
    (tmp_path / "c.geojson").write_text(
        json.dumps({"type": "FeatureCollection", "features": [feature]})
    )
    with pytest.raises(InputError, match="outside longitude/latitude"):
        _run(_district(95, 35, 20), central_file=tmp_path / "c.geojson")
    seat = {
        "type": "Feature",
        "properties": {},
        "geometry": {"type": "Point", "coordinates": [X0 + 16_000, Y0 + 4000]},
    }
    (tmp_path / "s.geojson").write_text(
        json.dumps({"type": "FeatureCollection", "features": [seat]})
    )
    with pytest.raises(InputError, match="outside longitude/latitude"):
        _run(_district(95, 35, 20), centres_file=tmp_path / "s.geojson")


def test_a_central_polygon_away_from_the_residents_warns(tmp_path: Path) -> None:
    poly = gpd.GeoDataFrame(geometry=[shapely.box(X0 - 9000, Y0, X0 - 8000, Y0 + 1000)], crs=CRS)
    poly.to_file(tmp_path / "far.geojson", driver="GeoJSON")
    with pytest.warns(RuntimeWarning, match="contains no resident"):
        _run(_district(95, 35, 20), central_file=tmp_path / "far.geojson")


def test_without_persons_the_tiers_still_hold_their_residents() -> None:
    # grid points and no population total: the density grid is empty (every cell rural) but the
    # 100 central and 100 remote points are residents; shares are weighted by the resident
    # weights, not zero persons (which reported every tier as empty and every coverage as NaN)
    res = _district(95, 35, 20)
    res["persons"] = np.nan
    res.attrs["weight_unit"] = "grid_point"
    with pytest.warns(RuntimeWarning, match="no estimate in persons"):
        summary = _run(res)
    assert summary["empty_tiers"] == ["suburban_core"]
    e = summary["test"]["school"]
    # central: 95 of 100 covered (2,000 weight each); remote: the dense core's 35 of 50 (1,200
    # each) and 20 of 50 sparse (20 each) are all remote without a grid
    assert e["coverage"]["central"] == pytest.approx(0.95)
    assert e["coverage"]["remote"] == pytest.approx((35 * 1200 + 20 * 20) / (50 * 1200 + 50 * 20))
    central = next(r for r in summary["table"] if r["tier"] == "central")
    assert np.isnan(central["persons"])
    assert central["coverage"] == pytest.approx(0.95)


def test_the_chinese_tier_section_holds_no_english() -> None:
    # the method note, the central-city source, the persons basis, the pair names and the
    # verdicts of the differences table were English in gaps_report.zh
    import re

    from lifecircle.report import hierarchy_sections

    res = _district(95, 35, 20)
    res["persons"] = res["weight"]
    res.attrs.update(
        persons_method="floor_area",
        persons_parameter=37.8,
        persons_basis="residential floor area / 37.8 m² per person",
    )
    summary = _run(res)
    (section,) = hierarchy_sections(summary, [], lang="zh")
    cells = [str(v) for _, t in section.tables for v in [*t.columns, *t.to_numpy().ravel()]]
    words = set(
        re.findall(r"[A-Za-z]{3,}", " ".join([*section.paragraphs, *section.bullets, *cells]))
    )
    assert words <= {"Degree", "Urbanisation", "central", "OSM"}, words
    diffs = section.tables[1][1]
    assert diffs.iloc[0].tolist()[1:] == [
        "中心城区 − 郊区核心",
        "+25.0",
        diffs.iloc[0, 3],
        "更高",
        "排序成立",
    ]
    assert "街道（统计代码 0xx）：1 个" in section.paragraphs[2]
    assert "居住建筑面积 ÷ 人均 37.8 平方米" in section.paragraphs[2]
    (english,) = hierarchy_sections(summary, [], lang="en")
    assert english.tables[1][1].iloc[0].tolist()[1] == "central city − suburban core"


def test_urban_clusters_join_diagonal_cells_urban_centres_do_not() -> None:
    # two 3,000-person cells touching at a corner: 3,000 < 5,000 each, 6,000 together. Only
    # 8-connectivity (diagonals) makes them one urban cluster; they are no urban centre
    p = np.zeros((5, 5))
    p[1, 1] = p[2, 2] = 3000
    classes = hi.degurba_classes(PopulationGrid(p, 0.0, 0.0, 1000.0), HierarchyOptions())
    assert classes[1, 1] == classes[2, 2] == 1
    assert classes.sum() == 2


def test_majority_rule_leaves_a_cell_with_four_neighbours_out() -> None:
    # the centre (1,1)-(1,2)-(1,3)-(2,3), 15,000 each (60,000); cell (2,2) touches exactly four of
    # its cells: below the majority of five, it stays rural (and nothing else has four)
    p = np.zeros((6, 6))
    for r, c in [(1, 1), (1, 2), (1, 3), (2, 3)]:
        p[r, c] = 15_000
    classes = hi.degurba_classes(PopulationGrid(p, 0.0, 0.0, 1000.0), HierarchyOptions())
    assert classes[2, 2] == 0
    assert int((classes == 2).sum()) == 4


def test_a_cell_of_exactly_1500_per_km2_is_dense() -> None:
    # 48,500 + exactly 1,500 (the density threshold, >=) make exactly 50,000: an urban centre
    p = np.zeros((4, 5))
    p[1, 1], p[1, 2] = 48_500, 1_500
    classes = hi.degurba_classes(PopulationGrid(p, 0.0, 0.0, 1000.0), HierarchyOptions())
    assert classes[1, 1] == classes[1, 2] == 2


def test_tier_quantiles_are_weighted_by_persons() -> None:
    # persons 5,1,1,1,1,1 at 100..600 m: cumulative 5,6,7,8,9,10 of 10 -> median 100 m (5 >= 5),
    # 90th percentile 500 m (9 >= 9); unweighted they would be 300 m and 600 m
    tiers = np.array(["central"] * 6, dtype=object)
    persons = np.array([5.0, 1, 1, 1, 1, 1])
    dist = {"school": np.arange(100.0, 700.0, 100.0)}
    covered = {"school": np.ones(6, dtype=bool)}
    row = hi.tier_measures(tiers, persons, covered, dist).set_index("tier").loc["central"]
    assert (row["median_m"], row["p90_m"]) == (100.0, 500.0)


def test_two_covered_buildings_cannot_make_the_core_lower() -> None:
    # the remote tier: two buildings, both covered (100%, a bootstrap interval of zero width);
    # the core 95% of 200: its interval [-8, -2] alone called core - remote "lower" and the claim
    # "fails" (seen on Lujiazui with --central/--centres). A tier under 30 points decides nothing
    tiers, persons, covered = _arrays(
        {"central": (200, 198), "suburban_core": (200, 190), "remote": (2, 2)}
    )
    e = hi.ordering_test(tiers, persons, {"school": covered}, bootstrap=2000)["school"]
    status = {d["pair"]: d["status"] for d in e["differences"]}
    core_remote = e["differences"][1]
    assert core_remote["ci_high"] < 0  # the interval alone would say "lower"
    assert status == {
        "central-suburban_core": "higher",
        "suburban_core-remote": "undecided",
        "central-remote": "undecided",
    }
    assert e["verdict"] == "undecided"
    # the sentence says why (the interval alone excludes 0)
    assert hi.verdict_sentence("school", e).endswith(
        "(undecided: the remote tier holds fewer than 30 resident points)"
    )
    assert hi.verdict_sentence("school", e, "zh").endswith(
        "（尚无定论：边远地区的居民点少于 30 个）"
    )
    # the threshold is a parameter: with min_tier_points=2 the old reading comes back
    e2 = hi.ordering_test(tiers, persons, {"school": covered}, min_tier_points=2)["school"]
    assert e2["verdict"] == "fails"


def test_min_tier_points_is_checked_and_reaches_the_test(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from lifecircle.cli import main

    out = tmp_path / "o"
    result = CliRunner().invoke(
        main, ["gaps", "--district", "pudong", "--min-tier-points", "0", "--out", str(out)]
    )
    assert result.exit_code == 1
    assert "--min-tier-points must be >= 1, got 0" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()
    # the option reaches the ordering test: 2 points of 3 decide nothing under 3, everything under 1
    tiers = np.array(["central"] * 40 + ["suburban_core"] * 40 + ["remote"] * 2)
    persons = np.ones(len(tiers))
    covered = {"school": np.r_[np.ones(40, bool), np.zeros(40, bool), np.ones(2, bool)]}
    small = hi.ordering_test(tiers, persons, covered, bootstrap=200, seed=1, min_tier_points=3)
    large = hi.ordering_test(tiers, persons, covered, bootstrap=200, seed=1, min_tier_points=1)
    assert small["school"]["small_tiers"] == ["remote"]
    assert large["school"]["small_tiers"] == []


def test_density_grid_refuses_a_cell_size_that_cannot_work() -> None:
    """The pure API refuses what the CLI refuses (it raised OverflowError or allocated freely)."""
    xs, ys, ps = np.array([0.0, 5000.0]), np.array([0.0, 5000.0]), np.array([1.0, 1.0])
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(InputError, match="cell size must be a positive number of metres"):
            hi.population_grid(xs, ys, ps, cell_m=bad)
    with pytest.raises(InputError, match="use a larger --cell-m"):
        hi.population_grid(xs, ys, ps, cell_m=0.5)  # 10,002 x 10,002 cells
    grid, _, _ = hi.population_grid(xs, ys, ps, cell_m=1000.0)
    # cells -1..6 on each axis (one empty cell of margin): points in cells (0, 0) and (5, 5)
    assert grid.persons.shape == (8, 8)
    assert grid.persons[1, 1] == grid.persons[6, 6] == 1.0
    assert float(grid.persons.sum()) == 2.0


def test_a_city_tier_uses_the_normal_limit_of_building_resampling() -> None:
    # 30,000 buildings with heavy-tailed persons: resampling them 1,000 times (brute force here)
    # and the normal limit the code uses above 20,000 points give the same 95% interval
    rng = np.random.default_rng(11)
    n = 30_000
    persons = np.round(rng.pareto(1.5, n) * 30 + 1)
    covered = rng.random(n) < 0.7
    assert n > hi.BOOTSTRAP_RESAMPLE_MAX_POINTS
    reps = hi.bootstrap_coverage(covered, persons, bootstrap=4000, rng=np.random.default_rng(2))
    brute = np.empty(1000)
    for k in range(1000):
        draw = rng.integers(0, n, n)
        brute[k] = (persons[draw] * covered[draw]).sum() / persons[draw].sum()
    width = np.percentile(brute, 97.5) - np.percentile(brute, 2.5)
    assert width > 0.005
    assert np.percentile(reps, 2.5) == pytest.approx(np.percentile(brute, 2.5), abs=0.08 * width)
    assert np.percentile(reps, 97.5) == pytest.approx(np.percentile(brute, 97.5), abs=0.08 * width)
    assert np.mean(reps) == pytest.approx((persons * covered).sum() / persons.sum(), abs=1e-3)
